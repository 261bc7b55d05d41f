-- Server-side latency of the first homepage call after a user's new interaction (issue 17): 200
-- Complete Journey households, no rerank, one backend, clock_timestamp() around each call; a
-- warm call, then track() of a VIEW and the homepage, a warm call again, then track() of a
-- PURCHASE and the homepage. Everything runs in one transaction that is rolled back, so the
-- store is left as it was.
--   psql -d recommender_cj -f bench/after_interaction.sql     (after bench/load_complete_journey.sh)
BEGIN;
SET LOCAL recommender.as_of = '2018-01-01';
SET LOCAL client_min_messages = warning;
SET LOCAL recommender.enable_rerank = off;
CREATE TEMP TABLE users ON COMMIT DROP AS
  SELECT user_id, (SELECT product_id FROM recommender.products ORDER BY md5(user_id || product_id::text) LIMIT 1) AS pid
    FROM (SELECT DISTINCT user_id FROM recommender.interactions) s ORDER BY md5(user_id) LIMIT 200;
CREATE TEMP TABLE timings (fn text, ms double precision) ON COMMIT DROP;
CREATE FUNCTION pg_temp.after(fn text, u text, pid bigint, t recommender.interaction_type) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
  PERFORM recommender.track(u, pid, t, occurred_at => '2017-12-31 12:00');
  t0 := clock_timestamp();
  PERFORM count(*) FROM recommender.homepage(u, 12);
  INSERT INTO timings VALUES (fn, extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;
CREATE FUNCTION pg_temp.warm(fn text, u text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
  t0 := clock_timestamp();
  PERFORM count(*) FROM recommender.homepage(u, 12);
  INSERT INTO timings VALUES (fn, extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;
\o /dev/null
SELECT recommender.preload_models();
SELECT count(*) FROM users u, LATERAL recommender.homepage(u.user_id, 12) h;
SELECT pg_temp.warm('1 warm', user_id) FROM users;
SELECT pg_temp.after('2 first after a VIEW', user_id, pid, 'VIEW') FROM users;
SELECT pg_temp.warm('3 warm again', user_id) FROM users;
SELECT pg_temp.after('4 first after a PURCHASE', user_id, pid, 'PURCHASE') FROM users;
\o
SELECT fn, count(*) AS calls,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p50_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p95_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p99_ms
  FROM timings GROUP BY fn ORDER BY fn;
ROLLBACK;
