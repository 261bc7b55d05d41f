#!/usr/bin/env bash
# Bulk embedding on two cores from one call (issue 17, >= 1.8x): CALL refresh_embeddings(force => true)
# and CALL process_queue() over N demo-store products, each with recommender.embedding_workers = 0
# (the session alone) and = 1 (one helper process), ROUNDS times (odd rounds the session alone first,
# even rounds the helper first, so a drift of the machine favours neither). Rates are N / the CALL's
# wall time. Then the vectors: those of the last round's run with a helper against the same
# products' vectors from the round's run alone (min cosine), and 100 sampled against embed(text).
# Runs in a database of its own on the project cluster (copied from the demo store: make demo
# first). Writes bench/results/refresh-scaling.txt.
#   bench/refresh_scaling.sh [ROUNDS] [N]   (default 3 rounds, 5000 products)
source "$(dirname "$0")/../scripts/lib.sh"
ROUNDS=${1:-3}
N=${2:-5000}
DB=bench_refresh
OUT="$ROOT/bench/results/refresh-scaling.txt"
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
"$ROOT/scripts/install-extension.sh"
"$ROOT/scripts/cluster.sh" start
have=$(psql -XAt -d recommender_demo -c "SELECT count(*) FROM recommender.products WHERE embedding IS NOT NULL" 2>/dev/null || echo 0)
[ "${have:-0}" -ge "$N" ] || die "the demo store needs >= $N embedded products (make demo)"
b() { psql -XqAt -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
dropdb --if-exists "$DB" && createdb "$DB" || die "cannot create $DB"
b -c "CREATE EXTENSION vector" -c "CREATE EXTENSION recommender"
log "refresh scaling: copying $N products with their vectors from the demo store"
psql -Xq -d recommender_demo -c "\copy (SELECT external_id, name, description, category, price, stock, embedding, embedded_hash, embedded_at FROM recommender.products WHERE embedding IS NOT NULL ORDER BY product_id LIMIT $N) TO STDOUT" \
  | b -c "\copy recommender.products (external_id, name, description, category, price, stock, embedding, embedded_hash, embedded_at) FROM STDIN"
b -c "VACUUM ANALYZE recommender.products"

# seconds of one CALL with `workers` helpers allowed; the second argument is the CALL
timed() {
  local t0 t1
  # the runs before left ~N dead rows: vacuumed and checkpointed first, untimed, so that autovacuum
  # (the HNSW index's above all) and a checkpoint do not take a core from one side and not the other
  b -c "VACUUM recommender.products" -c "VACUUM recommender.embedding_queue" -c "CHECKPOINT"
  t0=$(date +%s%N)
  b -c "SET client_min_messages = warning" -c "SET recommender.embedding_workers = $1" -c "$2"
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}
refresh() { timed "$1" "CALL recommender.refresh_embeddings(force => true)"; }
queue() {  # the re-queueing UPDATE is not timed: only the CALL that drains
  b -c "SET recommender.embedding_mode = deferred" -c "UPDATE recommender.products SET description = description || ' .'"
  timed "$1" "CALL recommender.process_queue()"
}
{
  echo "refresh scaling: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo -dirty), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "command: bench/refresh_scaling.sh $ROUNDS $N ($N demo-store products; refresh_embeddings(force => true) with batch_size 256, process_queue() with queue_batch_size $(b -c "LOAD 'recommender'" -c "SHOW recommender.queue_batch_size"); embedding_threads $(b -c "LOAD 'recommender'" -c "SHOW recommender.embedding_threads"))"
  echo "round | refresh alone s | refresh + 1 helper s | ratio | queue alone s | queue + 1 helper s | ratio"
} > "$OUT.tmp"
for r in $(seq "$ROUNDS"); do
  order="0 1"; [ $((r % 2)) = 1 ] || order="1 0"
  declare -A rs=() qs=()
  for w in $order; do  # both refreshes embed the same texts (the queue runs change them)
    rs[$w]=$(refresh "$w")
    b -c "DROP TABLE IF EXISTS vectors_$w" -c "CREATE TABLE vectors_$w AS SELECT product_id, embedding FROM recommender.products"
  done
  for w in $order; do
    qs[$w]=$(queue "$w")
  done
  awk -v r="$r" -v a="${rs[0]}" -v h="${rs[1]}" -v qa="${qs[0]}" -v qh="${qs[1]}" \
    'BEGIN { printf "%s | %s | %s | %.3f | %s | %s | %.3f\n", r, a, h, a / h, qa, qh, qa / qh }' | tee -a "$OUT.tmp"
done
awk -F' [|] ' 'NR > 3 { n++; a += $4; aa += $4 * $4; b += $7; bb += $7 * $7 }
  END { if (n > 1) printf "mean ratio (products/s with a helper over alone): refresh_embeddings %.3f +/- %.3f, process_queue %.3f +/- %.3f (%d rounds; +/- is the standard error)\n",
        a / n, sqrt(sd(aa - a * a / n) / (n - 1) / n), b / n, sqrt(sd(bb - b * b / n) / (n - 1) / n), n }
  function sd(x) { return x > 0 ? x : 0 }' "$OUT.tmp" | tee -a "$OUT.tmp"
awk -F' [|] ' -v n="$N" 'NR > 3 && $1 ~ /^[0-9]+$/ { printf "round %s products/s: refresh %.0f alone, %.0f with a helper; queue %.0f alone, %.0f with a helper\n", $1, n / $2, n / $3, n / $5, n / $6 }' "$OUT.tmp" >> "$OUT.tmp"
same=$(b -c "SELECT min(1 - (a.embedding <=> h.embedding)) FROM vectors_0 a JOIN vectors_1 h USING (product_id)")
bad=$(b -c "SELECT count(*) FROM (SELECT * FROM recommender.products ORDER BY random() LIMIT 100) p
            WHERE 1 - (p.embedding <=> recommender.embed(recommender.product_text(p.name, p.description, p.category, p.price::float8))) < 0.9999")
echo "vectors: refresh with a helper against refresh alone (last round, $N products): min cosine $same; 100 sampled after the last queue run differing from embed(text) at cosine < 0.9999: $bad" | tee -a "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
dropdb "$DB"
