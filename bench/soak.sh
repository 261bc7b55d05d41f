#!/usr/bin/env bash
# `make soak`: pgbench with 8 clients for SOAK_SECONDS (default 300) on a copy of the demo store,
# mixing homepage, similar_products, track() and updates of the app's product table that re-embed
# the product inside the writing transaction. Afterwards it checks: 0 failed transactions, 0
# deadlocks, private memory per backend flat between the first and the last minute, every tracked
# interaction present, every product change synced and embedded (count and hash checks).
# Result: bench/results/soak-<date>.txt (quoted in README "Guarantees").
source "$(dirname "$0")/../scripts/lib.sh"

SECONDS_TOTAL=${SOAK_SECONDS:-300}
CLIENTS=${SOAK_CLIENTS:-8}
DB=recommender_soak
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
q() { psql -XAtq -d "$DB" -v ON_ERROR_STOP=1 "$@"; }

"$ROOT/scripts/demo.sh" >/dev/null
dropdb --if-exists "$DB" 2>/dev/null
createdb -T recommender_demo "$DB"
q <<'SQL'
CREATE TABLE public.soak_users AS SELECT row_number() OVER (ORDER BY user_id) AS n, user_id
  FROM (SELECT DISTINCT user_id FROM recommender.interactions) u;
CREATE TABLE public.soak_products AS SELECT row_number() OVER (ORDER BY product_id) AS n, product_id
  FROM recommender.products WHERE embedding IS NOT NULL;
CREATE TABLE public.soak_apps AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM shop.products;
CREATE TABLE public.soak_changes (change_id bigserial PRIMARY KEY, id bigint NOT NULL, title text NOT NULL);
ALTER DATABASE recommender_soak SET recommender.as_of = '2018-01-01';
SQL
nu=$(q -c "SELECT count(*) FROM soak_users"); np=$(q -c "SELECT count(*) FROM soak_products"); na=$(q -c "SELECT count(*) FROM soak_apps")
W="$RUN/soak"; rm -rf "$W"; mkdir -p "$W"
cat >"$W/homepage.sql" <<SQL
\set n random(1, $nu)
SELECT count(*) FROM recommender.homepage((SELECT user_id FROM soak_users WHERE n = :n), 10);
SQL
cat >"$W/similar.sql" <<SQL
\set n random(1, $np)
SELECT count(*) FROM recommender.similar_products((SELECT product_id FROM soak_products WHERE n = :n), 10);
SQL
cat >"$W/track.sql" <<SQL
\set n random(1, $np)
\set t random(1, 3)
SELECT recommender.track('soak-' || :client_id, (SELECT product_id FROM soak_products WHERE n = :n),
                         (ARRAY['VIEW', 'CART_ADD', 'PURCHASE'])[:t]::recommender.interaction_type, request_id => 'soak');
SQL
# The app renames a product: the sync trigger updates the catalogue and re-embeds it in the same
# transaction; soak_changes logs what was written, to be checked afterwards.
cat >"$W/update.sql" <<SQL
\set n random(1, $na)
\set v random(1, 1000000)
BEGIN;
WITH p AS (SELECT id FROM soak_apps WHERE n = :n),
     u AS (UPDATE shop.products s SET title = regexp_replace(s.title, ' \(v[0-9]+\)$', '') || ' (v' || :v || ')'
             FROM p WHERE s.id = p.id RETURNING s.id, s.title)
INSERT INTO soak_changes (id, title) SELECT id, title FROM u;
END;
SQL

deadlocks0=$(q -c "SELECT deadlocks FROM pg_stat_database WHERE datname = '$DB'")
mem() {   # private memory (Private_Clean + Private_Dirty, MiB) of each pgbench backend
  for pid in $(q -c "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND application_name = 'pgbench'"); do
    awk '/^Private_(Clean|Dirty)/ {s += $2} END {printf "%.1f\n", s / 1024}' "/proc/$pid/smaps_rollup" 2>/dev/null
  done | sort -n | awk '{a[NR] = $1} END {if (NR) printf "min %s / median %s / max %s MiB over %d backends", a[1], a[int((NR + 1) / 2)], a[NR], NR}'
}
log "soak: pgbench, $CLIENTS clients, $SECONDS_TOTAL s (homepage 4 : similar 3 : track 2 : update 1)"
started=$(date -u +%FT%TZ)
"$PG_BIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$SECONDS_TOTAL" -P 60 \
  -f "$W/homepage.sql@4" -f "$W/similar.sql@3" -f "$W/track.sql@2" -f "$W/update.sql@1" "$DB" >"$W/pgbench.out" 2>&1 &
bench=$!
sleep 60; mem_first=$(mem)
sleep $((SECONDS_TOTAL - 70)); mem_last=$(mem)
wait $bench; rc=$?
cat "$W/pgbench.out"

tx() { grep -A4 "$1" "$W/pgbench.out" | grep -oE '[0-9]+ transactions' | head -1 | cut -d' ' -f1; }
failed=$(grep -oE '^number of failed transactions: [0-9]+' "$W/pgbench.out" | grep -oE '[0-9]+$' || echo "?")
aborted=$(grep -c 'aborted' "$W/pgbench.out" || true)
deadlocks=$(( $(q -c "SELECT deadlocks FROM pg_stat_database WHERE datname = '$DB'") - deadlocks0 ))
tracked=$(tx track.sql); tracked_rows=$(q -c "SELECT count(*) FROM recommender.interactions WHERE request_id = 'soak'")
updates=$(tx update.sql); changes=$(q -c "SELECT count(*) FROM soak_changes")
# every product's last logged title is what the app table, and the catalogue, hold now
lost=$(q -c "SELECT count(*) FROM (SELECT DISTINCT ON (id) id, title FROM soak_changes ORDER BY id, change_id DESC) c
              JOIN shop.products s USING (id)
              LEFT JOIN recommender.products p ON p.source = 'shop.products'::regclass AND p.external_id = s.id::text
             WHERE s.title <> c.title OR p.name IS DISTINCT FROM c.title")
stale=$(q -c "SELECT count(*) FROM recommender.products WHERE embedding IS NULL OR embedded_hash IS DISTINCT FROM text_hash")
wrong=$(q -c "SELECT count(*) FROM (SELECT p.embedding, recommender.embed(recommender.product_text(p.name, p.description, p.category, p.price::float8)) AS fresh
                FROM recommender.products p JOIN (SELECT DISTINCT id FROM soak_changes) c
                  ON p.source = 'shop.products'::regclass AND p.external_id = c.id::text) s
              WHERE 1 - (embedding <=> fresh) < 0.9999")
changed=$(q -c "SELECT count(DISTINCT id) FROM soak_changes")
# the per-user aggregates written by concurrent statement triggers equal a recount
drift=$(q -c "SELECT count(*) FROM (SELECT i.user_id, i.product_id, sum(w.weight) AS weight
                                      FROM recommender.interactions i JOIN recommender.interaction_weights w USING (type)
                                     WHERE i.user_id LIKE 'soak-%' GROUP BY 1, 2) a
               FULL JOIN (SELECT user_id, product_id, weight FROM recommender.user_products WHERE user_id LIKE 'soak-%') b
               USING (user_id, product_id) WHERE a.weight IS DISTINCT FROM b.weight")
median() { grep -oE 'median [0-9.]+' <<<"$1" | cut -d' ' -f2; }
tps=$(grep -oE 'tps = [0-9.]+' "$W/pgbench.out" | head -1)

mkdir -p "$ROOT/bench/results"
out="$ROOT/bench/results/soak-$(date -u +%F).txt"
{
  echo "soak: $started, $SECONDS_TOTAL s, $CLIENTS clients, commit $(git -C "$ROOT" describe --always --dirty 2>/dev/null), $(nproc) cores"
  echo "command: make soak (bench/soak.sh)"
  echo "pgbench exit code: $rc, $tps, failed transactions: $failed, aborted clients: $aborted, deadlocks: $deadlocks"
  grep -E '^SQL script|^ - [0-9]+ transactions|latency average' "$W/pgbench.out" | sed 's/^/  /'
  echo "private memory per backend, minute 1:    $mem_first"
  echo "private memory per backend, last minute: $mem_last"
  echo "track() calls counted by pgbench: $tracked, interactions present: $tracked_rows (pgbench does not count the <= $CLIENTS calls in flight when -T ends)"
  echo "user_products rows differing from a recount of the interactions: $drift"
  echo "product updates: $updates, changes logged: $changes, products changed: $changed, last change missing or not synced: $lost"
  echo "stale products after the run: $stale, changed products whose vector differs from their text's (cosine < 0.9999): $wrong"
} | tee "$out"
verdict=ok
[ "$rc" = 0 ] && [ "$failed" = 0 ] && [ "$aborted" = 0 ] && [ "$deadlocks" = 0 ] || verdict=FAIL
in_range() { [ "$2" -ge "$1" ] && [ "$2" -le $(( $1 + CLIENTS )) ]; }
in_range "$tracked" "$tracked_rows" && in_range "$updates" "$changes" || verdict=FAIL
[ "$lost" = 0 ] && [ "$stale" = 0 ] && [ "$wrong" = 0 ] && [ "$drift" = 0 ] || verdict=FAIL
# flat memory: the median backend grew by less than 5 MiB between the first and the last minute
awk -v a="$(median "$mem_first")" -v b="$(median "$mem_last")" 'BEGIN {exit !(a != "" && b != "" && b - a < 5)}' || verdict=FAIL
echo "verdict: $verdict" | tee -a "$out"
[ "$verdict" = ok ]
