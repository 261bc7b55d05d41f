#!/usr/bin/env bash
# pgbench against Complete Journey (recommender_cj): homepage alone with 1, 2, 4 and 8 clients,
# then a mixed script (homepage, track(), product updates that re-embed) with 8 clients.
# Writes bench/results/concurrency.txt: clients, TPS, latency average and failed transactions.
#   bench/concurrency.sh [seconds per run, default 30]
source "$(dirname "$0")/../scripts/lib.sh"

DB=${CJ_DB:-recommender_cj}
SECS=${1:-30}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
q() { psql -XAtq -d "$DB" -v ON_ERROR_STOP=1 "$@"; }
"$ROOT/scripts/cluster.sh" start
q <<'SQL'
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS public.bench_users AS
SELECT row_number() OVER (ORDER BY md5(user_id)) AS n, user_id FROM (SELECT DISTINCT user_id FROM recommender.interactions) u;
CREATE TABLE IF NOT EXISTS public.bench_products AS
SELECT row_number() OVER (ORDER BY product_id) AS n, product_id FROM recommender.products WHERE embedding IS NOT NULL;
SQL
nu=$(q -c "SELECT count(*) FROM bench_users"); np=$(q -c "SELECT count(*) FROM bench_products")
# warm: every household's profile and collaborative candidates cached (they are reused for
# recommender.collaborative_cache_seconds, 600 s, longer than the runs below)
log "concurrency: warming $nu households"
q -c "SET recommender.as_of = '2018-01-01'" -c "SELECT count(*) FROM bench_users u, LATERAL recommender.homepage(u.user_id, 12) h" >/dev/null
W="$RUN/concurrency"; mkdir -p "$W"
cat >"$W/homepage.sql" <<SQL
\set n random(1, $nu)
SET recommender.as_of = '2018-01-01';
SELECT count(*) FROM recommender.homepage((SELECT user_id FROM bench_users WHERE n = :n), 12);
SQL
cat >"$W/track.sql" <<SQL
\set n random(1, $np)
SELECT recommender.track('bench-' || :client_id, (SELECT product_id FROM bench_products WHERE n = :n), 'VIEW', occurred_at => '2017-12-31');
SQL
cat >"$W/update.sql" <<SQL
\set n random(1, $np)
\set v random(1, 1000000)
UPDATE shop.groceries g SET name = regexp_replace(g.name, ' \(v[0-9]+\)$', '') || ' (v' || :v || ')'
  FROM recommender.products p WHERE p.product_id = (SELECT product_id FROM bench_products WHERE n = :n)
   AND p.source = 'shop.groceries'::regclass AND g.product_id = p.external_id::bigint;
SQL
out="$ROOT/bench/results/concurrency.txt"
mkdir -p "$(dirname "$out")"
echo "pgbench on $DB, $SECS s per run, $(nproc) cores, $(date -u +%F), commit $(git -C "$ROOT" describe --always --dirty)" >"$out"
echo "script | clients | tps | latency avg ms | failed" >>"$out"
run() {
  local label=$1 clients=$2; shift 2
  "$PG_BIN/pgbench" -n -c "$clients" -j "$(( clients < 2 ? clients : 2 ))" -T "$SECS" "$@" "$DB" >"$W/out.txt" 2>&1 || true
  local tps lat failed
  tps=$(grep -oE '^tps = [0-9.]+' "$W/out.txt" | head -1 | cut -d' ' -f3)
  lat=$(grep -oE '^latency average = [0-9.]+' "$W/out.txt" | head -1 | cut -d' ' -f4)
  failed=$(grep -oE '^number of failed transactions: [0-9]+' "$W/out.txt" | grep -oE '[0-9]+$' || echo "?")
  grep -q aborted "$W/out.txt" && failed="aborted"
  echo "$label | $clients | $tps | $lat | $failed" | tee -a "$out"
}
for c in 1 2 4 8; do run homepage "$c" -f "$W/homepage.sql"; done
run "mixed (homepage 8 : track 1 : update 1)" 8 -f "$W/homepage.sql@8" -f "$W/track.sql@1" -f "$W/update.sql@1"
q -c "DELETE FROM recommender.interactions WHERE user_id LIKE 'bench-%'"
# put the renamed products back (they are re-embedded from their original text)
q -c "SET client_min_messages = warning" -c "UPDATE shop.groceries SET name = regexp_replace(name, ' \(v[0-9]+\)$', '') WHERE name ~ ' \(v[0-9]+\)$'"
