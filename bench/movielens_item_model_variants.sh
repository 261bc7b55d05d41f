#!/usr/bin/env bash
# The item model's own arguments on MovieLens' validation split (never its test ratings, which
# bench/evaluate_movielens.sh has deleted from recommender_ml): for each (items, adoption_weight),
# a build with them at the split's clock (evaluate() rebuilds with the latest build's arguments),
# then recommender.evaluate(split => 'user', holdout => 10) on the training ratings with the
# evaluation's settings. All items only. Then builds again with the arguments of the build that
# was the latest before it (bench/evaluate_movielens.sh and tune() build with those).
#
#   bench/movielens_item_model_variants.sh ["items:weight" ...]   (default 5000:0.2 5000:0 9000:0.2 9000:0)
source "$(dirname "$0")/../scripts/lib.sh"

DB=${ML_DB:-recommender_ml}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
"$ROOT/scripts/cluster.sh" start
T=$(psql -XAtq -d "$DB" -c "SELECT t FROM ml_split") || die "no $DB: run bench/evaluate_movielens.sh first"
was=$(psql -XAtq -d "$DB" -c "SELECT format('%s, %s, %s, %s, %s, %s', items, lambda, neighbors, adoption_days, adoption_lambda, adoption_weight)
                                 FROM recommender.item_model_builds ORDER BY build_id DESC LIMIT 1")
for v in ${*:-5000:0.2 5000:0 9000:0.2 9000:0}; do
  items=${v%%:*} w=${v##*:}
  echo "== items $items adoption_weight $w"
  psql -XAq -v ON_ERROR_STOP=1 -d "$DB" -P footer=off -F ' | ' <<SQL 2>&1 | grep -v "lists of"
SET recommender.as_of = '$T';
SET client_min_messages = warning;
CALL recommender.build_item_model(items => $items, adoption_weight => $w);
RESET recommender.as_of;
SET recommender.popularity_window_days = 3650;
SET recommender.enable_repurchase = off;
SELECT items, method, users, round(recall::numeric, 4) AS recall, round(ndcg::numeric, 4) AS ndcg, round(ndcg_se::numeric, 4) AS se,
       round(ndcg_diff::numeric, 4) AS ndcg_diff, round(ndcg_diff_se::numeric, 4) AS diff_se
  FROM recommender.evaluate(split => 'user', holdout => 10) WHERE items = 'all';
SQL
done
log "movielens: building the item model again as it was (${was:-the defaults})"
psql -XAtq -v ON_ERROR_STOP=1 -d "$DB" -c "SET recommender.as_of = '$T'" -c "SET client_min_messages = warning" \
  -c "CALL recommender.build_item_model($was)"
