#!/usr/bin/env bash
# A catalogue load on two cores (issue 17): Complete Journey's 92,331 products (40,199 distinct
# texts) copied without vectors into a fresh database, as after a bulk import with
# enable_sync_embedding off, then CALL refresh_embeddings() (no force: a product whose text was
# embedded already copies that vector), once with recommender.embedding_workers = 1 (one helper
# process) and once with 0 (the session alone), each in a fresh copy. Then the two runs' vectors
# are compared, all of them. Needs recommender_cj (make bench loads it). Writes
# bench/results/load-scaling.txt.
#   bench/load_scaling.sh
source "$(dirname "$0")/../scripts/lib.sh"
SRC=${CJ_DB:-recommender_cj}
DB=bench_cjload
OUT="$ROOT/bench/results/load-scaling.txt"
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
"$ROOT/scripts/install-extension.sh"
"$ROOT/scripts/cluster.sh" start
[ "$(psql -XAtq -d "$SRC" -c "SELECT count(*) FROM recommender.products" 2>/dev/null || echo 0)" -gt 0 ] \
  || die "no products in $SRC (make bench loads Complete Journey)"
b() { psql -XqAt -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
{
  echo "load scaling: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo -dirty), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "command: bench/load_scaling.sh ($SRC's products copied without vectors into a fresh database, VACUUM ANALYZE and CHECKPOINT, then CALL refresh_embeddings() with embedding_workers 1, then again in a fresh copy with 0; progress NOTICEs left out)"
} > "$OUT.tmp"
for w in 1 0; do
  dropdb --if-exists "$DB" 2>/dev/null; createdb "$DB"
  b -c "CREATE EXTENSION vector" -c "CREATE EXTENSION recommender"
  psql -Xq -d "$SRC" -c "\copy (SELECT external_id, name, description, category, price, stock FROM recommender.products ORDER BY product_id) TO STDOUT" \
    | b -c "SET recommender.enable_sync_embedding = off" -c "\copy recommender.products (external_id, name, description, category, price, stock) FROM STDIN"
  b -c "VACUUM ANALYZE recommender.products" -c "CHECKPOINT"
  echo "embedding_workers = $w: $(b -c "SELECT count(*) || ' products, ' || count(DISTINCT text_hash) || ' distinct texts, ' || count(*) FILTER (WHERE embedding IS NULL) || ' without a vector' FROM recommender.products")" | tee -a "$OUT.tmp"
  t0=$(date +%s%N)
  b -c "SET recommender.embedding_workers = $w" -c "CALL recommender.refresh_embeddings()" 2>&1 | grep -v "embedded [0-9]*/[0-9]* products (" | tee -a "$OUT.tmp"
  t1=$(date +%s%N)
  echo "embedding_workers = $w: $(( (t1 - t0) / 1000000 )) ms for the CALL, client side; stale after: $(b -c 'SELECT count(*) FROM recommender.products WHERE recommender._stale(embedding, embedded_hash, text_hash)')" | tee -a "$OUT.tmp"
  # the vectors, by external id, for the comparison below
  b -c "\copy (SELECT external_id, embedding FROM recommender.products ORDER BY external_id) TO '$RUN/load-scaling-$w.copy'"
done
dropdb "$DB"
if cmp -s "$RUN/load-scaling-0.copy" "$RUN/load-scaling-1.copy"; then same="identical"; else same="DIFFERENT"; fi
echo "vectors of all products, with a helper against alone (text form, by external id): $same" | tee -a "$OUT.tmp"
rm -f "$RUN"/load-scaling-[01].copy
mv "$OUT.tmp" "$OUT"
