#!/usr/bin/env bash
# The first homepage after a user's new interaction with the real-size cross-encoder, with and
# without the queue worker computing it ahead (recommender.precompute_homepage; issue 17), on
# Complete Journey in full (bench/load_complete_journey.sh first). Restarts the project cluster
# with the library preloaded and the worker in the database for the run, and restarts it as it
# was afterwards; the worker reads the clock and the cross-encoder from the database's settings,
# which are set for the run and reset afterwards. Writes bench/results/precompute.txt
# (precompute-pause-<s>-naptime-<ms>.txt for another pause or naptime).
# WAKE=off disables the queues' wake-up triggers for the run (0.14.0; the worker then looks every
# naptime only, as before) and writes ...-nowake.txt; they are enabled again at the end (after a
# kill -9 of the script: ALTER TABLE recommender.homepage_queue ENABLE TRIGGER wake_queue_workers,
# and the same for recommender.embedding_queue).
#   [NAPTIME=ms] [WAKE=off] bench/precompute.sh [households] [pause seconds]
source "$(dirname "$0")/../scripts/lib.sh"

DB=${CJ_DB:-recommender_cj}
N=${1:-60}
THINK=${2:-2}
NAPTIME=${NAPTIME:-1000}   # ms, recommender.worker_naptime (the default)
WAKE=${WAKE:-on}
ce="$("$PG_CONFIG" --sharedir)/recommender/bench-models/cross-encoder"
MODEL_DIR="$(dirname "$ce")" "$ROOT/models/materialize.sh" --bench-cross-encoder >/dev/null
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/bench/requirements.txt"
PY="$VENV/bin/python"
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres

"$ROOT/scripts/cluster.sh" start
psql -XAtq -d "$DB" -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE"
ensure_item_model "$DB"
# the wake-up triggers (0.14.0) on or off for the run
wake() {
  for t in embedding_queue homepage_queue; do
    psql -XAtq -d "$DB" -c "SELECT 1 FROM pg_trigger WHERE tgname = 'wake_queue_workers' AND tgrelid = 'recommender.$t'::regclass" | grep -q 1 \
      && psql -XAtq -d "$DB" -c "ALTER TABLE recommender.$t $1 TRIGGER wake_queue_workers" >/dev/null
  done
}
restore() {
  wake ENABLE || true
  psql -XAtq -d "$DB" -c "ALTER DATABASE $DB RESET recommender.as_of" \
                      -c "ALTER DATABASE $DB RESET recommender.cross_encoder_dir" >/dev/null 2>&1 || true
  "$ROOT/scripts/cluster.sh" stop
  "$ROOT/scripts/cluster.sh" start
}
trap restore EXIT
[ "$WAKE" = off ] && wake DISABLE
psql -XAtq -d "$DB" -c "ALTER DATABASE $DB SET recommender.as_of = '2018-01-01'" \
                    -c "ALTER DATABASE $DB SET recommender.cross_encoder_dir = '$ce'"
cluster_with_worker "$DB" -c recommender.worker_naptime=$NAPTIME
out="$ROOT/bench/results/precompute.txt"
[ "$THINK" = 2 ] && [ "$NAPTIME" = 1000 ] || out="$ROOT/bench/results/precompute-pause-$THINK-naptime-$NAPTIME.txt"
[ "$WAKE" = off ] && out="${out%.txt}-nowake.txt"
{
  echo "# bench/precompute.sh $N $THINK on $(date -u +%F), $(nproc) cores; real-size cross-encoder (6x384) reranking 20, worker naptime $(psql -XAtq -d "$DB" -c 'SHOW recommender.worker_naptime'), wake-up at commit $WAKE"
  "$PY" "$ROOT/bench/precompute.py" --db "$DB" --users "$N" --think "$THINK" --ce "$ce"
} | tee "$out"
