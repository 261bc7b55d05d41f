#!/usr/bin/env bash
# The cross-encoder on one thread and on two (recommender.rerank_threads), on Complete Journey
# (recommender_cj) with the real model's size (6 x 384, deterministic weights): homepage(user, 12)
# when every one of its 20 pairs is new (the first visit, the call after an interaction without
# precompute). ROUNDS times, alternating which setting goes first:
#   - server side (clock_timestamp() around the call) in a warm backend, 40 households, one client,
#     then two clients at once (both cores busy);
#   - connect to result in a fresh backend, 20 households no backend has scored.
# Writes bench/results/rerank-threads.txt.
#   bench/rerank_threads.sh [ROUNDS]   (default 3)
source "$(dirname "$0")/../scripts/lib.sh"
ROUNDS=${1:-3}
DB=${CJ_DB:-recommender_cj}
OUT="$ROOT/bench/results/rerank-threads.txt"
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
"$ROOT/scripts/cluster.sh" start
ce="$("$PG_CONFIG" --sharedir)/recommender/bench-models/cross-encoder"
MODEL_DIR="$(dirname "$ce")" "$ROOT/models/materialize.sh" --bench-cross-encoder >/dev/null
# no score kept anywhere: every call runs the model for its 20 pairs
opts() { echo "-c recommender.as_of=2018-01-01 -c recommender.cross_encoder_dir=$ce -c recommender.rerank_share_seconds=0 -c recommender.rerank_cache_size=0 -c recommender.rerank_threads=$1"; }

warm() {  # $1 threads, $2 salt of the household sample -> "p50 p95" ms, server side
  PGOPTIONS="$(opts "$1")" psql -XAtq -d "$DB" <<SQL | tail -1
SELECT count(*) FROM recommender.homepage((SELECT min(user_id) FROM recommender.interactions), 12);
CREATE TEMP TABLE t (ms float8);
DO \$\$
DECLARE u text; t0 timestamptz;
BEGIN
  FOR u IN SELECT user_id FROM (SELECT DISTINCT user_id FROM recommender.interactions) s ORDER BY md5(user_id || '$2') LIMIT 40 LOOP
    PERFORM count(*) FROM recommender.homepage(u, 12);  -- profile and candidates now cached
    t0 := clock_timestamp();
    PERFORM count(*) FROM recommender.homepage(u, 12);
    INSERT INTO t VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;  -- one transaction per household, as an app's calls are (two clients at once)
  END LOOP;
END \$\$;
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' || round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM t;
SQL
}
ms() { date +%s%N | awk '{printf "%.1f", $1 / 1e6}'; }
fresh() {  # $1 threads, $2 salt -> "p50 p95" ms, connect to result
  local u t0 t1 times=()
  for u in $(psql -XAtq -d "$DB" -c "SELECT user_id FROM (SELECT DISTINCT user_id FROM recommender.interactions) s ORDER BY md5(user_id || '$2') LIMIT 20"); do
    t0=$(ms)
    PGOPTIONS="$(opts "$1")" psql -XAtq -d "$DB" -c "SELECT count(*) FROM recommender.homepage('$u', 12)" >/dev/null
    t1=$(ms)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)], a[int((NR * 95 + 99) / 100)]}'
}
{
  echo "rerank threads: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo -dirty), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "command: bench/rerank_threads.sh $ROUNDS; homepage(user, 12) on $DB, cross-encoder 6x384 reranking 20, every pair new (rerank_cache_size 0, rerank_share_seconds 0); ms p50 / p95"
  echo "round | threads | warm backend, 1 client | warm backend, each of 2 clients at once | fresh backend, connect to result"
} > "$OUT.tmp"
for r in $(seq "$ROUNDS"); do
  order="1 2"; [ $((r % 2)) = 1 ] || order="2 1"
  for t in $order; do
    one=$(warm "$t" "w$r")
    warm "$t" "a$r" > "$RUN/rerank-threads-a" & warm "$t" "b$r" > "$RUN/rerank-threads-b"; wait
    f=$(fresh "$t" "f$r$t")
    echo "$r | $t | $one | $(cat "$RUN/rerank-threads-a") and $(cat "$RUN/rerank-threads-b") | $f" | tee -a "$OUT.tmp"
  done
done
awk -F' [|] ' 'NR > 3 { split($3, w, " "); split($5, f, " "); n[$2]++; s[$2] += w[1]; fs[$2] += f[1]; fp[$2] += f[2] }
  END { for (t in n) printf "threads %s: mean over rounds of the warm p50 %.1f ms, fresh p50 %.1f, fresh p95 %.1f\n", t, s[t] / n[t], fs[t] / n[t], fp[t] / n[t] }' "$OUT.tmp" | sort | tee -a "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
