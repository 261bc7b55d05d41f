#!/usr/bin/env bash
# A returning household's first homepage in a fresh backend with the real-size cross-encoder (6 x
# 384) reranking 20, on Complete Journey in full (bench/load_complete_journey.sh first): with no
# pair scored anywhere, and after `SELECT recommender.queue_homepages()` and the queue worker's
# drain (issue 17). Restarts the project cluster with the library preloaded and one worker in the
# database for the run, and as it was afterwards; the clock and the cross-encoder are set for the
# database during the run (the worker computes with the database's settings) and reset after.
# Empties recommender.rerank_scores (a cache). Writes bench/results/warm-start.txt (with another
# ACTIVE, the households active within that interval before the clock, warm-start-ACTIVE.txt).
# A third mode (0.27.0's library) sets recommender.rerank_budget: the first call of a household
# no backend has scored answers without stage 3 and queues it; its next call follows the worker.
#   [ACTIVE='30 days'] [MODES=cold,warm,budget] bench/warm_start.sh [households per mode]   (default 40)
source "$(dirname "$0")/../scripts/lib.sh"

DB=${CJ_DB:-recommender_cj}
N=${1:-40}
ACTIVE=${ACTIVE:-30 days}
MODES=${MODES:-cold,warm,budget}
OUT="$ROOT/bench/results/warm-start.txt"
[ "$ACTIVE" = "30 days" ] || OUT="$ROOT/bench/results/warm-start-${ACTIVE// /-}.txt"
[ "$MODES" = "cold,warm,budget" ] || OUT="${OUT%.txt}-${MODES//,/-}.txt"
ce="$("$PG_CONFIG" --sharedir)/recommender/bench-models/cross-encoder"
MODEL_DIR="$(dirname "$ce")" "$ROOT/models/materialize.sh" --bench-cross-encoder >/dev/null
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/bench/requirements.txt"
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres

"$ROOT/scripts/cluster.sh" start
psql -XAtq -d "$DB" -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE"
ensure_item_model "$DB"
restore() {
  psql -XAtq -d "$DB" -c "ALTER DATABASE $DB RESET recommender.as_of" \
                      -c "ALTER DATABASE $DB RESET recommender.cross_encoder_dir" >/dev/null 2>&1 || true
  "$ROOT/scripts/cluster.sh" stop
  "$ROOT/scripts/cluster.sh" start
}
trap restore EXIT
psql -XAtq -d "$DB" -c "ALTER DATABASE $DB SET recommender.as_of = '2018-01-01'" \
                    -c "ALTER DATABASE $DB SET recommender.cross_encoder_dir = '$ce'"
cluster_with_worker "$DB"
{
  echo "# bench/warm_start.sh $N on $(date -u +%FT%TZ), commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo -dirty), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); real-size cross-encoder (6x384) reranking 20, rerank_threads $(psql -XAtq -d "$DB" -c 'SHOW recommender.rerank_threads')"
  "$VENV/bin/python" "$ROOT/bench/warm_start.py" --db "$DB" --users "$N" --active "$ACTIVE" --modes "$MODES"
} | tee "$OUT"
