#!/usr/bin/env bash
# Tunes the homepage's settings for MovieLens on a validation split carved out of the training
# ratings of bench/evaluate_movielens.sh (never its test ratings): recommender_ml_val is
# recommender_ml minus each user's last 10 training ratings, which become the validation set.
# Writes bench/results/tuning-movielens.txt. Run bench/evaluate_movielens.sh first.
source "$(dirname "$0")/../scripts/lib.sh"

SRC=${ML_DB:-recommender_ml}
DB=${ML_VAL_DB:-recommender_ml_val}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
q() { psql -XAtq -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
data="$RUN/data/movielens-val"
mkdir -p "$data"
"$ROOT/scripts/cluster.sh" start
psql -XAtq -d "$SRC" -c "SELECT count(*) FROM ml_split" >/dev/null 2>&1 || die "no $SRC: run bench/evaluate_movielens.sh first"
fresh=
if [ "$(q -c "SELECT count(*) FROM ml_val_split" 2>/dev/null)" != 1 ]; then
  log "tune-movielens: $DB = $SRC minus each user's last 10 training ratings"
  dropdb --if-exists "$DB"
  createdb -T "$SRC" "$DB"
  fresh=1
fi
q -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE" >/dev/null
[ -z "$fresh" ] || q -v held=ml_val -v split=ml_val_split -f "$ROOT/bench/movielens_holdout.sql"
ensure_item_model "$DB"
T=$(q -c "SELECT t FROM ml_val_split")
q -c "\copy (SELECT user_id, p.external_id, (extract(epoch FROM occurred_at))::bigint FROM recommender.interactions JOIN recommender.products p USING (product_id)) TO '$data/train.csv' WITH (FORMAT csv)"
q -c "\copy (SELECT user_id, p.external_id FROM ml_val JOIN recommender.products p USING (product_id)) TO '$data/test.csv' WITH (FORMAT csv)"
: > "$data/homepage.csv"
while IFS='|' read -r label opts; do
  [ -n "$label" ] || continue
  log "tune-movielens: $label"
  PGOPTIONS="$opts" q <<SQL
SET recommender.as_of = '$T';
SET recommender.popularity_window_days = 3650;
SET recommender.enable_repurchase = off;
SET client_min_messages = warning;
TRUNCATE recommender.user_profiles;
\copy (SELECT '$label', u.user_id, h.position, h.external_product_id FROM (SELECT DISTINCT user_id FROM ml_val) u CROSS JOIN LATERAL recommender.homepage(u.user_id, 10) h) TO '$data/homepage-part.csv' WITH (FORMAT csv)
SQL
  cat "$data/homepage-part.csv" >> "$data/homepage.csv"
done <<'EOF'
defaults (0.05/0.9/0.05)|
0.5/0.3/0.2 (the 0.7.0 defaults)|-c recommender.homepage_weight_content=0.5 -c recommender.homepage_weight_collaborative=0.3 -c recommender.homepage_weight_popularity=0.2
0.1/0.6/0.3|-c recommender.homepage_weight_content=0.1 -c recommender.homepage_weight_collaborative=0.6 -c recommender.homepage_weight_popularity=0.3
0.1/0.8/0.1|-c recommender.homepage_weight_content=0.1 -c recommender.homepage_weight_collaborative=0.8 -c recommender.homepage_weight_popularity=0.1
0.2/0.6/0.2, no rerank|-c recommender.homepage_weight_content=0.2 -c recommender.homepage_weight_collaborative=0.6 -c recommender.homepage_weight_popularity=0.2 -c recommender.enable_rerank=off
0.1/0.7/0.2, 200 collaborative candidates, no rerank|-c recommender.homepage_weight_content=0.1 -c recommender.homepage_weight_collaborative=0.7 -c recommender.homepage_weight_popularity=0.2 -c recommender.collaborative_candidates=200 -c recommender.enable_rerank=off
0.05/0.9/0.05, cap 10, no rerank|-c recommender.max_per_category=10 -c recommender.enable_rerank=off
0/1/0, cap 10, no rerank|-c recommender.homepage_weight_content=0 -c recommender.homepage_weight_collaborative=1 -c recommender.homepage_weight_popularity=0 -c recommender.max_per_category=10 -c recommender.enable_rerank=off
EOF
out="$ROOT/bench/results/tuning-movielens.txt"
{ echo "MovieLens validation split (each user's last 10 training ratings); homepage per setting ($(date -u +%F))"
  "$VENV/bin/python" "$ROOT/bench/movielens.py" score "$data" --homepage-only; } | tee "$out"
