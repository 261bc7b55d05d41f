-- The timing harness of the server-side latency benchmarks (bench/pipeline_bench.sh,
-- bench/item_model_latency.sql): pg_temp.time_it(fn, query, arg) runs the query with $1 = arg and
-- records its wall time in ms, inside this backend, in the temp table timings.
CREATE TEMP TABLE timings (fn text, ms double precision);
CREATE FUNCTION pg_temp.time_it(fn text, q text, arg text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
  t0 := clock_timestamp();
  EXECUTE q USING arg;
  INSERT INTO timings VALUES (fn, extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;
