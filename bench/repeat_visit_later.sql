-- Server-side latency of a repeat visit after collaborative_cache_seconds have passed (0.17.0):
-- 300 Complete Journey households, no rerank, one backend, clock_timestamp() around each call.
-- A warm-up pass, then a visit within the seconds; then the candidates' age is set back by an
-- hour and the households visit again (0.17.0 reuses a list of the item model and repeat alone);
-- then the same with collaborative_cache_seconds = 0 (every list recomputed, as 0.16.0 did an
-- hour later). One transaction, rolled back: the store is left as it was. Needs the item model.
--   psql -d recommender_cj -f bench/repeat_visit_later.sql    (after bench/load_complete_journey.sh)
BEGIN;
SET LOCAL recommender.as_of = '2018-01-01';
SET LOCAL client_min_messages = warning;
SET LOCAL recommender.enable_rerank = off;
CREATE TEMP TABLE users ON COMMIT DROP AS
  SELECT user_id FROM (SELECT DISTINCT user_id FROM recommender.interactions) s ORDER BY md5(user_id) LIMIT 300;
CREATE TEMP TABLE timings (visit text, ms double precision) ON COMMIT DROP;
CREATE FUNCTION pg_temp.pass(visit text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE r record; t0 timestamptz;
BEGIN
  FOR r IN SELECT user_id FROM users LOOP
    t0 := clock_timestamp();
    PERFORM count(*) FROM recommender.homepage(r.user_id, 12);
    INSERT INTO timings VALUES (visit, 1000 * extract(epoch FROM clock_timestamp() - t0));
  END LOOP;
END $$;
SELECT pg_temp.pass('warm-up');
SELECT pg_temp.pass('1. within collaborative_cache_seconds');
UPDATE recommender.user_profiles SET collab_at = collab_at - interval '1 hour' WHERE user_id IN (SELECT user_id FROM users);
SELECT pg_temp.pass('2. an hour later');
UPDATE recommender.user_profiles SET collab_at = collab_at - interval '1 hour' WHERE user_id IN (SELECT user_id FROM users);
SET LOCAL recommender.collaborative_cache_seconds = 0;
SELECT pg_temp.pass('3. every list recomputed (0.16.0 an hour later)');
SELECT visit, count(*) AS calls,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p50,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p95,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p99
  FROM timings WHERE visit <> 'warm-up' GROUP BY visit ORDER BY visit;
SELECT count(*) FILTER (WHERE collab_model IS NOT NULL) AS lists_kept_until_the_next_build, count(*) AS profiles
  FROM recommender.user_profiles WHERE user_id IN (SELECT user_id FROM users);
ROLLBACK;
