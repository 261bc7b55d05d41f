-- Every public function, called with NULL in each argument position and then with random
-- argument combinations for a bounded time: the backend never dies, and no call fails with an
-- internal error (XX000) or a crash-class SQLSTATE. Outcomes other than that are listed.
\set VERBOSITY terse
SET recommender.as_of = '2024-03-01 00:00+00';
-- errors only: how many calls the time allows varies, and so would their warnings (queue_homepages()
-- warns when no queue worker runs); outcomes are SQLSTATEs, listed below
SET client_min_messages = error;
CREATE TEMP TABLE fuzz_targets AS
SELECT p.oid::regprocedure AS fn, p.proname::text AS name, p.proargtypes::regtype[] AS types, p.proretset
  FROM pg_proc p
 WHERE p.pronamespace = 'recommender'::regnamespace AND p.prokind = 'f' AND p.proname NOT LIKE '\_%'
   AND p.prorettype <> 'trigger'::regtype
   -- tune() may adopt what it finds for the database (ALTER DATABASE ... SET, by design), which
   -- would reach the files after this one; evaluate.sql covers its arguments
   AND p.proname <> 'tune';
-- Candidate values per argument type, as SQL literals.
CREATE FUNCTION pg_temp.pool(t regtype) RETURNS text[] LANGUAGE sql AS $$
SELECT CASE t
  WHEN 'text'::regtype THEN ARRAY['NULL', $q$''$q$, $q$'alice'$q$, $q$'nobody'$q$, $q$'x''); DROP TABLE recommender.products; --'$q$,
                                  $q$repeat('ab ', 50000)$q$, $q$'☕️ קפה cafe' || U&'\0301'$q$, $q$E'\t\n'$q$, $q$'coffee beans'$q$]
  WHEN 'integer'::regtype THEN ARRAY['NULL', '0', '-1', '1', '3', '1000', '1001', '2147483647', '-2147483648']
  WHEN 'bigint'::regtype THEN ARRAY['NULL', '-1', '0', '1', '3', '9223372036854775807',
                                    '(SELECT min(product_id) FROM recommender.products)']
  WHEN 'text[]'::regtype THEN ARRAY['NULL', $q$'{}'::text[]$q$, $q$ARRAY[NULL]::text[]$q$, $q$ARRAY['tea', NULL, '']$q$,
                                    $q$array_fill('coffee'::text, ARRAY[50])$q$, $q$ARRAY[repeat('x', 100000)]$q$]
  WHEN 'bigint[]'::regtype THEN ARRAY['NULL', $q$'{}'::bigint[]$q$, $q$ARRAY[NULL]::bigint[]$q$, $q$ARRAY[-1, 1, 2]::bigint[]$q$,
                                      $q$ARRAY(SELECT product_id FROM recommender.products)$q$]
  WHEN 'boolean'::regtype THEN ARRAY['NULL', 'true', 'false', 'false']
  WHEN 'numeric'::regtype THEN ARRAY['NULL', $q$'NaN'::numeric$q$, '-1', '0', '1e30', '2.5']
  WHEN 'double precision'::regtype THEN ARRAY['NULL', $q$'NaN'::float8$q$, $q$'Infinity'::float8$q$, '-1', '0', '9.99']
  WHEN 'timestamp with time zone'::regtype THEN ARRAY['NULL', $q$'infinity'::timestamptz$q$, $q$'-infinity'::timestamptz$q$,
                                                       $q$'2024-02-01'::timestamptz$q$, $q$'1900-01-01'::timestamptz$q$]
  WHEN 'recommender.interaction_type'::regtype THEN ARRAY['NULL', $q$'VIEW'$q$, $q$'PURCHASE'$q$, $q$'CART_REMOVE'$q$]
  WHEN 'regclass'::regtype THEN ARRAY['NULL', $q$'recommender.products'::regclass$q$, $q$'pg_class'::regclass$q$,
                                      $q$'shop.fuzz'::regclass$q$]
  WHEN 'interval'::regtype THEN ARRAY['NULL', $q$'-1 hour'$q$, $q$'0'$q$, $q$'1 day'$q$, $q$'1000 years'$q$]
  WHEN 'name'::regtype THEN ARRAY['NULL', $q$'x"; DROP TABLE shop.fuzz; --'$q$, $q$''$q$, $q$'id'$q$, $q$'title'$q$]
END $$;
CREATE FUNCTION pg_temp.try(fn regprocedure, name text, types regtype[], args text[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    call text := format('SELECT count(*) FROM recommender.%I(%s)', name,
                        (SELECT string_agg(format('(%s)::%s', a, t), ', ' ORDER BY i)
                           FROM unnest(args, types) WITH ORDINALITY u(a, t, i)));
BEGIN
    EXECUTE call;
    RETURN '00000';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
CREATE SCHEMA IF NOT EXISTS shop;
CREATE TABLE shop.fuzz (id text PRIMARY KEY, title text);
INSERT INTO shop.fuzz VALUES ('f-1', 'Fuzzy coffee mug');

-- NULL in each position, the other arguments sensible: STRICT functions give NULL / no rows,
-- the others a 23502 (null_value_not_allowed) or a documented default.
CREATE TEMP TABLE null_calls AS
SELECT f.fn, pos, pg_temp.try(f.fn, f.name, f.types,
                              ARRAY(SELECT CASE WHEN i = pos THEN 'NULL' ELSE (pg_temp.pool(t))[4] END
                                      FROM unnest(f.types) WITH ORDINALITY u(t, i) ORDER BY i)) AS outcome
  FROM fuzz_targets f, generate_series(1, cardinality(f.types)) pos;
SELECT f.fn, p.proisstrict AS strict, string_agg(DISTINCT n.outcome, ',') AS outcomes_with_a_null_argument
  FROM fuzz_targets f JOIN pg_proc p ON p.oid = f.fn LEFT JOIN null_calls n ON n.fn = f.fn
 WHERE cardinality(f.types) > 0
 GROUP BY 1, 2 ORDER BY f.fn::text;

-- Random combinations: up to 1500 calls or 40 seconds, from a fixed seed.
SELECT setseed(0.1234);
CREATE TEMP TABLE fuzz_calls (fn regprocedure, args text[], outcome text);
DO $$
DECLARE
    started timestamptz := clock_timestamp();
    f record;
    args text[];
    n integer := 0;
BEGIN
    WHILE n < 1500 AND clock_timestamp() < started + interval '40 seconds' LOOP
        SELECT * INTO f FROM fuzz_targets ORDER BY random() LIMIT 1;
        args := ARRAY(SELECT p[1 + floor(random() * cardinality(p))::int]
                        FROM unnest(f.types) WITH ORDINALITY u(t, i), pg_temp.pool(t) p ORDER BY i);
        INSERT INTO fuzz_calls VALUES (f.fn, args, pg_temp.try(f.fn, f.name, f.types, args));
        n := n + 1;
    END LOOP;
END $$;
SELECT count(*) >= 100 AS enough_calls, count(DISTINCT fn) = (SELECT count(*) FROM fuzz_targets) AS every_function_called,
       count(*) FILTER (WHERE outcome = '00000') > 0 AS some_succeeded
  FROM fuzz_calls;
-- Internal errors, crashes of the model runtime, or anything outside the expected classes
-- (22 data exception, 23 integrity, 42 syntax/privilege/undefined object, 54 limits, 0A not supported).
SELECT fn, args, outcome FROM fuzz_calls
 WHERE outcome <> '00000' AND left(outcome, 2) NOT IN ('22', '23', '42', '54', '0A')
 ORDER BY 1::text, 3 LIMIT 20;
SELECT 'backend alive' AS status;
SELECT count(recommender.unsync_products(source)) >= 0 AS unsynced FROM recommender.sync_sources WHERE source = 'shop.fuzz'::regclass;
DROP TABLE shop.fuzz CASCADE;
RESET client_min_messages;
RESET recommender.as_of;
