-- bench/item_model_latency.sh: homepage latency without rerank, 300 households (the clock of
-- bench/pipeline_bench.sh)
\set n 300
SET recommender.as_of = '2018-01-01';
CREATE TEMP TABLE users AS
  SELECT user_id FROM recommender.user_products GROUP BY 1 ORDER BY md5(user_id) LIMIT :n;
\i :bench/time_it.sql
\o /dev/null
SET recommender.enable_rerank = off;
SELECT count(*) FROM users u, LATERAL recommender.homepage(u.user_id, 12) h;
SELECT pg_temp.time_it('homepage (no rerank)', 'SELECT count(*) FROM recommender.homepage($1, 12)', user_id) FROM users;
SET recommender.collaborative_cache_seconds = 0;
SELECT pg_temp.time_it('homepage (no rerank, collaborative recomputed)', 'SELECT count(*) FROM recommender.homepage($1, 12)', user_id) FROM users;
\o
SELECT fn, count(*) AS calls, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p50_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p95_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p99_ms
  FROM timings GROUP BY 1 ORDER BY 1;
