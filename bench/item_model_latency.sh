#!/usr/bin/env bash
# Homepage latency without rerank (server-side, clock_timestamp(), one backend; 300 households, one
# warm-up call each) with the item model built as EASE alone and as the default blend with the
# adoption model, ROUNDS runs each, on Complete Journey in full (bench/load_complete_journey.sh).
# Ends with the default blend built (clock 2017-12-04, as bench/item_model_build.sh).
#   bench/item_model_latency.sh        LATENCY_OUT=file (default bench/results/item-model-latency.txt)
#   WEIGHTS="0 0.2" (the adoption weights built), RECENCIES="0" (recommender.item_model_recency
#   values measured on each build, 0.25.0)
source "$(dirname "$0")/../scripts/lib.sh"

DB=${CJ_DB:-recommender_cj}
ROUNDS=${ROUNDS:-2}
WEIGHTS=${WEIGHTS:-0 0.2}
RECENCIES=${RECENCIES:-0}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
out="${LATENCY_OUT:-$ROOT/bench/results/item-model-latency.txt}"
"$ROOT/scripts/cluster.sh" start
psql -XAtq -d "$DB" -c "SELECT 1" >/dev/null 2>&1 || die "no $DB database: run bench/load_complete_journey.sh first"
{
  echo "homepage(user, 12) without rerank on $DB, 300 households, $ROUNDS round(s) per build ($(date -u +%F), $(nproc) cores)"
  for w in $WEIGHTS; do
    psql -XAtq -v ON_ERROR_STOP=1 -d "$DB" -c "SET recommender.as_of = '2017-12-04'" -c "SET client_min_messages = warning" \
      -c "CALL recommender.build_item_model(adoption_weight => $w)"
    for r in $(seq "$ROUNDS"); do
      for n in $RECENCIES; do
        echo "== adoption_weight $w, item_model_recency $n, round $r"
        PGOPTIONS="-c recommender.item_model_recency=$n" \
          psql -Xq -v ON_ERROR_STOP=1 -d "$DB" -v bench="$ROOT/bench" -f "$ROOT/bench/item_model_latency.sql"
      done
    done
  done
} | tee "$out"
