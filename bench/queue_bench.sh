#!/usr/bin/env bash
# `make bench-queue`: a bulk UPDATE of 10,000 products, embedding_mode = sync vs deferred, and how
# long until every one is re-embedded. Runs on a server of its own (the queue worker needs
# shared_preload_libraries) holding 10,000 products of the demo store, vectors included, copied
# from the project cluster (run `make demo` first). Writes bench/results/queue.txt.
#   [QUEUE_WORKERS=n] bench/queue_bench.sh [N]   (default 10000; n workers per database, default 1:
#   writes bench/results/queue-workers-n.txt then; QUEUE_SKIP_SYNC=1: no sync round, for
#   bench/queue_scaling.sh; QUEUE_CPUS=0: the server, every process it starts included, on those
#   CPUs only (taskset), so one worker's rate is a single core's)
source "$(dirname "$0")/../scripts/lib.sh"
N=${1:-10000}
BATCH=${QUEUE_BATCH_SIZE:-64}   # recommender.queue_batch_size for the worker
WORKERS=${QUEUE_WORKERS:-1}     # recommender.workers_per_database
SKIP_SYNC=${QUEUE_SKIP_SYNC:-0}
CPUS=${QUEUE_CPUS:-}
R="$ROOT/bench/results"
OUT="$R/queue.txt"
[ "$WORKERS" = 1 ] || OUT="$R/queue-workers-$WORKERS.txt"
[ "$SKIP_SYNC" != 1 ] || OUT="$RUN/queue-scaling-$WORKERS.txt"
BASE="$(dirname "$(pgdata_dir)")/queue-bench"
PORT=$((PGPORT + 3))
mkdir -p "$R"

"$ROOT/scripts/install-extension.sh"
"$ROOT/scripts/cluster.sh" start
have=$(psql -X -At -d recommender_demo -c "SELECT count(*) FROM recommender.products WHERE embedding IS NOT NULL" 2>/dev/null || echo 0)
[ "${have:-0}" -ge "$N" ] || die "the demo store needs >= $N embedded products (make demo)"

stop() { [ -f "$BASE/data/postmaster.pid" ] && aux_pgctl -D "$BASE/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop EXIT
stop
rm -rf "$BASE"
aux_cluster_init "$BASE/data" "$PORT" bench_queue postgres
echo "recommender.workers_per_database = $WORKERS" >> "$BASE/data/postgresql.conf"
touch "$BASE/log" && chown postgres:postgres "$BASE/log"
aux_pgctl -D "$BASE/data" -l "$BASE/log" -w -t 60 start >/dev/null || die "bench server did not start"
pm=$(head -1 "$BASE/data/postmaster.pid")
if [ -n "$CPUS" ]; then  # the postmaster and its children; backends forked later inherit it
  for p in "$pm" $(pgrep -P "$pm" || true); do taskset -a -c -p "$CPUS" "$p" >/dev/null 2>&1 || true; done
fi
affinity=$(taskset -c -p "$pm" | sed 's/.*: //')
b() { psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d bench_queue "$@"; }
psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "ALTER SYSTEM SET recommender.queue_batch_size = $BATCH" -c "SELECT pg_reload_conf()" >/dev/null
psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE bench_queue"
b -c "CREATE EXTENSION vector" -c "CREATE EXTENSION recommender"
log "queue bench: copying $N products with their vectors from the demo store"
psql -X -q -d recommender_demo -c "\copy (SELECT external_id, name, description, category, price, stock, embedding, embedded_hash, embedded_at FROM recommender.products WHERE embedding IS NOT NULL ORDER BY product_id LIMIT $N) TO STDOUT" \
  | b -c "\copy recommender.products (external_id, name, description, category, price, stock, embedding, embedded_hash, embedded_at) FROM STDIN"
b -c "VACUUM ANALYZE recommender.products"
[ "$(b -c "SELECT count(*) FROM recommender.staleness")" = 0 ] || die "copied products are stale"

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# sync: the UPDATE embeds inside the statement
sync_ms=0
if [ "$SKIP_SYNC" != 1 ]; then
  log "queue bench: UPDATE of $N products, embedding_mode = sync"
  t=$(date +%s%N)
  b -c "SET recommender.embedding_mode = sync" -c "UPDATE recommender.products SET description = description || ' (sync round)'"
  sync_ms=$(ms "$t")
  [ "$(b -c "SELECT count(*) FROM recommender.staleness")" = 0 ] || die "sync round left stale products"
fi

# deferred: the UPDATE only queues; the worker drains while we poll
log "queue bench: UPDATE of $N products, embedding_mode = deferred, then the worker drains"
t=$(date +%s%N)
b -c "SET recommender.embedding_mode = deferred" -c "UPDATE recommender.products SET description = description || ' (deferred round)'"
deferred_ms=$(ms "$t")
queued_after=$(b -c "SELECT count(*) FROM recommender.embedding_queue")
while [ "$(b -c "SELECT count(*) FROM recommender.embedding_queue")" != 0 ]; do sleep 0.5; done
drained_ms=$(ms "$t")
[ "$(b -c "SELECT count(*) FROM recommender.staleness")" = 0 ] || die "deferred round left stale products"
vacuums=$(b -c "SELECT string_agg(relname || ' ' || autovacuum_count || '/' || autoanalyze_count, ', ' ORDER BY relname)
                   FROM pg_stat_user_tables WHERE schemaname = 'recommender' AND autovacuum_count + autoanalyze_count > 0")
vacuuming=$(b -c "SELECT count(*) FROM pg_stat_progress_vacuum")
bad=$(b -c "SELECT count(*) FROM (SELECT * FROM recommender.products ORDER BY random() LIMIT 100) p
            WHERE 1 - (p.embedding <=> recommender.embed(recommender.product_text(p.name, p.description, p.category, p.price::float8))) < 0.9999")

{
  echo "queue bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo -dirty), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "command: $([ "$SKIP_SYNC" = 1 ] && echo "QUEUE_SKIP_SYNC=1 bench/queue_bench.sh $N" || echo "make bench-queue (bench/queue_bench.sh $N)"); $N demo-store products on a server of its own, $WORKERS queue worker(s), queue_batch_size $BATCH; the postmaster's CPUs: $affinity"
  [ "$SKIP_SYNC" = 1 ] || echo "sync:     UPDATE of $N products returned after $sync_ms ms, every product re-embedded at commit ($(( N * 1000 / (sync_ms > 0 ? sync_ms : 1) )) products/s)"
  echo "deferred: UPDATE of $N products returned after $deferred_ms ms ($queued_after still queued when first counted); all re-embedded by the worker after $drained_ms ms ($(( N * 1000 / (drained_ms > 0 ? drained_ms : 1) )) products/s)"
  echo "from the UPDATE's commit (its return): $(( N * 1000 / (drained_ms - deferred_ms > 0 ? drained_ms - deferred_ms : 1) )) products/s"
  [ "$SKIP_SYNC" = 1 ] || echo "write latency, sync / deferred: $(awk -v a="$sync_ms" -v b="$deferred_ms" 'BEGIN { printf "%.0f", a / (b > 0 ? b : 1) }')x"
  echo "autovacuum by the end (table autovacuums/autoanalyzes): ${vacuums:-none}; vacuums running then: $vacuuming"
  echo "vectors: 100 sampled after the deferred round differing from embed(text) at cosine < 0.9999: $bad"
} | tee "$OUT"
