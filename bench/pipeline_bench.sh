#!/usr/bin/env bash
# Server-side latency of the recommendation functions on Complete Journey in full (run
# bench/load_complete_journey.sh first). Each function is called once per household to warm up,
# then timed inside one backend with clock_timestamp(); prints p50/p95/p99 in ms. The database is
# updated to this release and its item model built first, if it has none.
# The cross-encoder rows use a deterministic one of the real model's size (6 layers x 384,
# ms-marco-MiniLM-L-6-v2's shape; models/manifest.json "bench-cross-encoder"), built once.
#   bench/pipeline_bench.sh [calls]        (default 200 timed calls per function)
source "$(dirname "$0")/../scripts/lib.sh"

DB=${CJ_DB:-recommender_cj}
N=${1:-200}
CE_MODELS="$("$PG_CONFIG" --sharedir)/recommender/bench-models"
MODEL_DIR="$CE_MODELS" "$ROOT/models/materialize.sh" --bench-cross-encoder >/dev/null
"$ROOT/scripts/cluster.sh" start
psql -XAtq -d "$DB" -c "SET client_min_messages = warning" -c "ALTER EXTENSION recommender UPDATE"
ensure_item_model "$DB"
psql -q -d "$DB" -v n="$N" -v ce="$CE_MODELS/cross-encoder" -v bench="$ROOT/bench" <<'SQL'
SET recommender.as_of = '2018-01-01';
SET client_min_messages = warning;
CREATE TEMP TABLE users AS
  SELECT user_id FROM (SELECT DISTINCT user_id FROM recommender.interactions) s ORDER BY md5(user_id) LIMIT :n;
INSERT INTO users SELECT 'cold-start-' || g FROM generate_series(1, :n / 10) g;
CREATE TEMP TABLE items AS
  SELECT product_id FROM recommender.product_daily GROUP BY 1 ORDER BY md5(product_id::text) LIMIT :n;
\i :bench/time_it.sql
\o /dev/null
SELECT recommender.preload_models();
-- warm-up
SELECT count(*) FROM users u, LATERAL recommender.homepage(u.user_id, 12) h;
SELECT count(*) FROM items i, LATERAL recommender.similar_products(i.product_id, 12) s;
-- timed
SELECT pg_temp.time_it('homepage (bi-encoder rerank)', 'SELECT count(*) FROM recommender.homepage($1, 12)', user_id) FROM users;
SET recommender.enable_rerank = off;
SELECT pg_temp.time_it('homepage (no rerank)', 'SELECT count(*) FROM recommender.homepage($1, 12)', user_id) FROM users;
-- What the first call after a user's new interaction pays for stage 1: the collaborative
-- candidates (repeat and the item model, or similar users and co-purchase) recomputed.
SET recommender.collaborative_cache_seconds = 0;
SELECT pg_temp.time_it('homepage (no rerank, collaborative recomputed)', 'SELECT count(*) FROM recommender.homepage($1, 12)', user_id) FROM users;
RESET recommender.collaborative_cache_seconds;
RESET recommender.enable_rerank;
SELECT pg_temp.time_it('similar_products', 'SELECT count(*) FROM recommender.similar_products($1::bigint, 12)', product_id::text) FROM items;
SELECT pg_temp.time_it('cart (3 items)', 'SELECT count(*) FROM recommender.cart(ARRAY(SELECT product_id FROM items ORDER BY abs(product_id - $1::bigint) LIMIT 3), 8)', product_id::text) FROM items;
SELECT pg_temp.time_it('frequently_bought_together', 'SELECT count(*) FROM recommender.frequently_bought_together($1::bigint, 8)', product_id::text) FROM items;
-- Real-size cross-encoder. Every pair scored: the score cache off. Then with it: a user's first
-- visit (no pair of that profile's query scored yet), then the repeat visit with the profile
-- unchanged; a product page's first and second view.
-- The pairs shared between backends (rerank_scores, 0.12.0) are not read: an earlier run scored the
-- same pairs (bench/precompute.sh and bench/first_call.sh measure the shared scores).
SET recommender.cross_encoder_dir = :'ce';
SET recommender.rerank_share_seconds = 0;
SELECT recommender.rerank('warm up', ARRAY['the model loads here']) IS NOT NULL AS loaded;
SET recommender.rerank_cache_size = 0;
SELECT pg_temp.time_it('homepage (cross-encoder 6x384, no score cache)', 'SELECT count(*) FROM recommender.homepage($1, 12)', user_id) FROM users;
RESET recommender.rerank_cache_size;
SELECT pg_temp.time_it('homepage (cross-encoder 6x384, first visit)', 'SELECT count(*) FROM recommender.homepage($1, 12)', user_id) FROM users;
SELECT pg_temp.time_it('homepage (cross-encoder 6x384, repeat visit)', 'SELECT count(*) FROM recommender.homepage($1, 12)', user_id) FROM users;
SELECT pg_temp.time_it('similar_products (cross-encoder 6x384, first view)', 'SELECT count(*) FROM recommender.similar_products($1::bigint, 12)', product_id::text) FROM items;
SELECT pg_temp.time_it('similar_products (cross-encoder 6x384, viewed before)', 'SELECT count(*) FROM recommender.similar_products($1::bigint, 12)', product_id::text) FROM items;
RESET recommender.cross_encoder_dir;
RESET recommender.rerank_share_seconds;
SELECT pg_temp.time_it('rerank (20 documents)', $q$SELECT count(*) FROM recommender.rerank('fresh fruit and vegetables', ARRAY(SELECT name FROM recommender.products ORDER BY abs(product_id - $1::bigint) LIMIT 20))$q$, product_id::text) FROM items;
\o
\pset footer off
SELECT fn AS function, count(*) AS calls,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p50_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p95_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p99_ms
  FROM timings GROUP BY fn ORDER BY fn;
SQL
