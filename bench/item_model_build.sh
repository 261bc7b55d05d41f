#!/usr/bin/env bash
# Build time and backend peak memory of CALL recommender.build_item_model() on Complete Journey in
# full (README "The pipeline", BENCHMARKS.md): EASE alone (adoption_weight => 0) and the default
# blend with the adoption model, ROUNDS times each, each in a fresh backend, the clock at the end of
# the data (2017-12-04). The backend's VmHWM (peak resident set, /proc) is read by the backend itself
# (pg_read_file, as superuser). Leaves the default blend built last, so evaluate() rebuilds with it.
#
#   bench/item_model_build.sh          (needs recommender_cj: bench/load_complete_journey.sh)
#   ROUNDS=3 BUILD_OUT=file            (default bench/results/item-model-build.txt)
source "$(dirname "$0")/../scripts/lib.sh"

DB=${CJ_DB:-recommender_cj}
ROUNDS=${ROUNDS:-3}
CLOCK=${CLOCK:-2017-12-04}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
out="${BUILD_OUT:-$ROOT/bench/results/item-model-build.txt}"
"$ROOT/scripts/cluster.sh" start
psql -XAtq -d "$DB" -c "SELECT 1" >/dev/null 2>&1 || die "no $DB database: run bench/load_complete_journey.sh first"
psql -XAtq -d "$DB" -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE" >/dev/null

one() {  # $1 = adoption_weight: prints seconds and peak kB
  psql -XAtq -v ON_ERROR_STOP=1 -d "$DB" -F ' ' <<SQL
SET recommender.as_of = '$CLOCK';
SET client_min_messages = warning;
CALL recommender.build_item_model(adoption_weight => $1);
SELECT b.seconds, substring(pg_read_file('/proc/' || pg_backend_pid() || '/status') FROM 'VmHWM:\s+(\d+) kB')
  FROM recommender.item_model_builds b ORDER BY b.build_id DESC LIMIT 1;
SQL
}

{
  echo "build_item_model() on $DB, clock $CLOCK, $ROUNDS round(s) each, fresh backend each ($(date -u +%F), $(nproc) cores)"
  echo "adoption_weight | seconds | backend peak (VmHWM, MB)"
  for w in 0 0.2; do
    for _ in $(seq "$ROUNDS"); do
      one "$w" | awk -v w="$w" '{printf "%s | %.2f | %.0f\n", w, $1, $2 / 1024}'
    done
  done
} | tee "$out"
