#!/usr/bin/env bash
# Tunes the homepage's settings with recommender.tune() on a validation split carved out of the
# evaluation's training period (never its test period): until => the first day of bench/evaluate.sh's
# test period, so everything from then on is left out, and the last 28 days before it are held out
# for validation; TUNE_USERS (500) households; not adopted. Writes bench/results/tuning.txt, then
# evaluates the winner on the test period (bench/results/evaluation-tuned.txt).
source "$(dirname "$0")/../scripts/lib.sh"

DB=${EVAL_DB:-${CJ_DB:-recommender_cj}}
TEST_DAYS=${EVAL_TEST_DAYS:-28}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
q() { psql -XAtq -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
R="$ROOT/bench/results"
"$ROOT/scripts/cluster.sh" start
q -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE" >/dev/null
ensure_item_model "$DB"
T=$(q -c "SELECT (max(occurred_at) - interval '$TEST_DAYS days')::date::timestamptz FROM recommender.interactions")
log "tune: recommender.tune(until => '$T', ${TUNE_USERS:-500} households) on $DB"
t0=$(date +%s)
{ echo "recommender.tune(holdout => 28, sample => ${TUNE_USERS:-500}, adopt => false, until => '$T') on $DB ($(date -u +%F))"
  q -P footer=off -A -F ' | ' <<SQL 2>&1
SET client_min_messages = notice;
\pset tuples_only off
SELECT * FROM recommender.tune(holdout => 28, sample => ${TUNE_USERS:-500}, adopt => false, until => '$T');
\i $ROOT/bench/tuning.sql
SQL
  echo "took $(( $(date +%s) - t0 )) s"; } | tee "$R/tuning.txt"
opts=$(tuned_options "$DB")
log "tune: evaluating the winner on the test period (${opts:-the settings in force})"
PGOPTIONS="$opts" EVAL_OUT="$R/evaluation-tuned.txt" bash "$ROOT/bench/evaluate.sh"
