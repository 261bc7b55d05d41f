#!/usr/bin/env bash
# First homepage call in a fresh backend (connect -> result, psql start-up included) and private
# memory per backend with both models loaded, on Complete Journey (recommender_cj).
# Writes bench/results/first_call.txt.
source "$(dirname "$0")/../scripts/lib.sh"

DB=${CJ_DB:-recommender_cj}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
"$ROOT/scripts/cluster.sh" start
# the real model's size (6 x 384, deterministic weights), installed by bench/pipeline_bench.sh
ce="$("$PG_CONFIG" --sharedir)/recommender/bench-models/cross-encoder"
MODEL_DIR="$(dirname "$ce")" "$ROOT/models/materialize.sh" --bench-cross-encoder >/dev/null
users=$(psql -XAtq -d "$DB" -c "SELECT user_id FROM (SELECT DISTINCT user_id FROM recommender.interactions) s ORDER BY md5(user_id || 'first') LIMIT 20")
ms() { date +%s%N | awk '{printf "%.1f", $1 / 1e6}'; }
first_calls() {  # $1 = recommender.cross_encoder_dir, $2 = share seconds; prints "p50 p95 max" over the 20 households
  local u t0 t1 times=() sorted n
  for u in $users; do
    t0=$(ms)
    PGOPTIONS="-c recommender.as_of=2018-01-01 -c recommender.cross_encoder_dir=$1 -c recommender.rerank_share_seconds=$2" \
      psql -XAtq -d "$DB" -c "SELECT count(*) FROM recommender.homepage('$u', 12)" >/dev/null
    t1=$(ms)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')")
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  n=${#times[@]}
  echo "$(sed -n "$(( (n + 1) / 2 ))p" <<<"$sorted") $(sed -n "$(( (n * 95 + 99) / 100 ))p" <<<"$sorted") $(tail -1 <<<"$sorted")"
}
# without a cross-encoder (the default install: bi-encoder rerank), then with the real-size one
read -r bi50 bi95 bimax < <(first_calls "/nonexistent" 0)
# no pair scored anywhere before (scores not shared), then a backend whose pairs another backend
# scored (0.12.0: the first of two passes shares them, the second is timed)
read -r p50 p95 max < <(first_calls "$ce" 0)
first_calls "$ce" 86400 >/dev/null
read -r s50 s95 smax < <(first_calls "$ce" 86400)

# memory: two backends with the encoder and the cross-encoder loaded (the second shows what a
# backend costs once the read-only model mappings are shared)
mem_of() {  # backend pid -> "private MiB (clean+dirty), of which anonymous MiB"
  awk '/^Private_(Clean|Dirty)/ {p += $2} /^Anonymous/ {a += $2} END {printf "%.1f MiB private (%.1f MiB anonymous)", p / 1024, a / 1024}' "/proc/$1/smaps_rollup"
}
load_sql="SET recommender.as_of = '2018-01-01'; SET recommender.cross_encoder_dir = '$ce';
SELECT count(*) FROM recommender.homepage((SELECT min(user_id) FROM recommender.interactions), 12);
SELECT count(*) FROM recommender.rerank('milk', ARRAY['whole milk', 'bread']);
SELECT pg_backend_pid();"
coproc A { psql -XAtq -d "$DB"; }
echo "$load_sql" >&"${A[1]}"
read -r _ <&"${A[0]}"; read -r _ <&"${A[0]}"; read -r pid_a <&"${A[0]}"
coproc B { psql -XAtq -d "$DB"; }
echo "$load_sql" >&"${B[1]}"
read -r _ <&"${B[0]}"; read -r _ <&"${B[0]}"; read -r pid_b <&"${B[0]}"
mem_a=$(mem_of "$pid_a"); mem_b=$(mem_of "$pid_b")
echo '\q' >&"${A[1]}"; echo '\q' >&"${B[1]}"

out="$ROOT/bench/results/first_call.txt"
mkdir -p "$(dirname "$out")"
{
  echo "first homepage call in a fresh backend (connect -> result, psql start-up included, models loaded on the way), 20 households:"
  echo "  bi-encoder rerank (no cross-encoder installed): p50 ${bi50} ms, p95 ${bi95} ms, max ${bimax} ms"
  echo "  cross-encoder 6x384 reranking 20, no pair scored before: p50 ${p50} ms, p95 ${p95} ms, max ${max} ms"
  echo "  cross-encoder 6x384 reranking 20, pairs scored by another backend (rerank_scores): p50 ${s50} ms, p95 ${s95} ms, max ${smax} ms"
  echo "backend 1 with encoder + cross-encoder loaded: $mem_a"
  echo "backend 2 with encoder + cross-encoder loaded: $mem_b"
} | tee "$out"
