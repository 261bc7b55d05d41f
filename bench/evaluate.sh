#!/usr/bin/env bash
# Offline evaluation on Complete Journey (README "Quality") through recommender.evaluate(): a time
# split (the last EVAL_TEST_DAYS days held out), the aggregates, profiles and item model rebuilt
# from the training period only, every product in the catalogue a candidate (no sampled
# negatives); homepage against popularity, repeat purchases, item-kNN and the item model alone;
# HR, Recall, NDCG and coverage @10 with standard errors, and homepage minus each baseline paired
# over the same households. The function rolls everything back: the database is left as it was.
#
#   bench/evaluate.sh            (needs recommender_cj: bench/load_complete_journey.sh)
#   EVAL_TEST_DAYS=28 EVAL_USERS=0 (0 = every household with a test purchase)
#   PGOPTIONS='-c recommender.max_per_category=10' bench/evaluate.sh   (the homepage's settings)
#   EVAL_OUT=file (default .run/evaluation.txt)
source "$(dirname "$0")/../scripts/lib.sh"

DB=${EVAL_DB:-${CJ_DB:-recommender_cj}}
TEST_DAYS=${EVAL_TEST_DAYS:-28}
USERS=${EVAL_USERS:-0}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
q() { psql -XAtq -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

"$ROOT/scripts/cluster.sh" start
q -c "SELECT 1" >/dev/null 2>&1 || die "no $DB database: run bench/load_complete_journey.sh first"
q -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE" >/dev/null
ensure_item_model "$DB"   # evaluate() rebuilds it from the training period inside its run
out="${EVAL_OUT:-$RUN/evaluation.txt}"
log "evaluate: recommender.evaluate(holdout => $TEST_DAYS, sample => $USERS) on $DB${PGOPTIONS:+ with $PGOPTIONS}"
t0=$(date +%s)
q -P footer=off -A -F ' | ' <<SQL 2>&1 | tee "$out"
SET client_min_messages = notice;
\pset tuples_only off
SELECT items, method, users, round(hr::numeric, 4) AS "HR@10", round(recall::numeric, 4) AS "Recall@10",
       round(ndcg::numeric, 4) AS "NDCG@10", round(coverage::numeric, 4) AS coverage,
       round(hr_se::numeric, 4) AS "SE HR", round(recall_se::numeric, 4) AS "SE Recall", round(ndcg_se::numeric, 4) AS "SE NDCG",
       round(ndcg_diff::numeric, 4) AS "homepage - it, NDCG", round(ndcg_diff_se::numeric, 4) AS "SE",
       round(recall_diff::numeric, 4) AS "homepage - it, Recall", round(recall_diff_se::numeric, 4) AS "SE"
  FROM recommender.evaluate(holdout => $TEST_DAYS, sample => NULLIF($USERS, 0));
SQL
echo "took $(( $(date +%s) - t0 )) s; $(date -u +%F); settings: ${PGOPTIONS:-defaults}" | tee -a "$out"
