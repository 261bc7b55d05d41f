#!/usr/bin/env bash
# Tunes the homepage's settings for MovieLens with recommender.tune() on recommender_ml, whose test
# ratings bench/evaluate_movielens.sh has deleted already (never its test ratings): split 'user'
# holds out each user's last 10 training ratings for validation, every user, not adopted. The
# session has the evaluation's settings (popularity over 3650 days, lists without the user's own
# movies). Writes bench/results/tuning-movielens.txt, then evaluates the winner on the test ratings
# (bench/results/evaluation-movielens-tuned.txt). Run bench/evaluate_movielens.sh first.
source "$(dirname "$0")/../scripts/lib.sh"

DB=${ML_DB:-recommender_ml}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
q() { psql -XAtq -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
R="$ROOT/bench/results"
"$ROOT/scripts/cluster.sh" start
q -c "SELECT count(*) FROM ml_split" >/dev/null 2>&1 || die "no $DB: run bench/evaluate_movielens.sh first"
q -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE" >/dev/null
ensure_item_model "$DB"
log "tune-movielens: recommender.tune(split => 'user', holdout => 10) on $DB"
t0=$(date +%s)
{ echo "recommender.tune(split => 'user', holdout => 10, sample => NULL, adopt => false) on $DB, test ratings deleted ($(date -u +%F))"
  q -P footer=off -A -F ' | ' <<SQL 2>&1
SET recommender.popularity_window_days = 3650;
SET recommender.enable_repurchase = off;
SET client_min_messages = notice;
\pset tuples_only off
SELECT * FROM recommender.tune(split => 'user', holdout => 10, sample => NULL, adopt => false);
\i $ROOT/bench/tuning.sql
SQL
  echo "took $(( $(date +%s) - t0 )) s"; } | tee "$R/tuning-movielens.txt"
opts=$(tuned_options "$DB")
log "tune-movielens: evaluating the winner on the test ratings (${opts:-the settings in force})"
PGOPTIONS="$opts" ML_OUT="$R/evaluation-movielens-tuned.txt" bash "$ROOT/bench/evaluate_movielens.sh"
