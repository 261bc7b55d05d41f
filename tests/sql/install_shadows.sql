-- Look-alikes planted before CREATE EXTENSION (0.16.0). An extension script runs with
-- search_path = recommender, <vector's schema>: pg_catalog comes first, but a function or operator
-- in vector's schema whose argument types match better than pg_catalog's (pg_catalog often has
-- only (oid, oid), (numeric, numeric), "any" or polymorphic versions) is chosen, and bound for
-- good into what the script creates: CHECK constraints, generated columns, index predicates,
-- views; the install's own statements would run it as the superuser who installs. The database's
-- owner, not a superuser, may create objects in public, where vector usually lives. It plants
-- look-alikes of the built-ins under many argument types, with result types that fit, IMMUTABLE
-- (index predicates need that), before a superuser creates the extension. Nothing the extension
-- creates may depend on them, none may run, and every function but the documented few is pinned.
\set regress_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sec_install;
DROP ROLE IF EXISTS regress_sec_dbo;
CREATE ROLE regress_sec_dbo;
CREATE DATABASE regress_sec_install OWNER regress_sec_dbo;
\c regress_sec_install
SET client_min_messages = warning;
CREATE EXTENSION vector;   -- in public
CREATE TABLE public.shadow_runs (attacker name, ran_as name, fn text);
GRANT INSERT ON public.shadow_runs TO PUBLIC;
CREATE FUNCTION public.shadow_hit(attacker name, fn text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.shadow_runs VALUES (attacker, current_user, fn);
END
$$;
GRANT EXECUTE ON FUNCTION public.shadow_hit(name, text) TO PUBLIC;
CREATE FUNCTION public.shadow_plant(sql text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 1;
EXCEPTION WHEN duplicate_function OR duplicate_object OR invalid_function_definition OR wrong_object_type OR undefined_function OR invalid_parameter_value OR feature_not_supported OR syntax_error OR datatype_mismatch THEN
    RETURN 0;
END
$$;
GRANT EXECUTE ON FUNCTION public.shadow_plant(text) TO PUBLIC;
CREATE TABLE public.shadow_names AS
SELECT DISTINCT f.proname::text AS name
  FROM pg_proc f
 WHERE f.pronamespace = 'pg_catalog'::regnamespace AND f.pronargs <= 2
   AND (f.proname = ANY (ARRAY['array_agg', 'avg', 'bool_or', 'clock_timestamp', 'concat_ws', 'count', 'current_setting',
                               'date_part', 'exp', 'extract', 'format', 'greatest', 'jsonb_agg', 'jsonb_build_object',
                               'least', 'left', 'ln', 'make_interval', 'max', 'md5', 'min', 'now', 'nullif',
                               'power', 'quote_ident', 'round', 'string_agg', 'sum', 'to_jsonb', 'unnest',
                               'cardinality', 'coalesce', 'array_length', 'jsonb_array_length', 'gen_random_uuid',
                               'set_config', 'lower', 'sqrt', 'abs', 'floor', 'ceil', 'random', 'length'])
        OR f.proname IN ('to_tsvector', 'setweight', 'char_length', 'btrim', 'trim', 'substr', 'upper', 'position', 'strpos', 'replace', 'regexp_replace', 'split_part', 'array_to_string', 'array_position', 'array_remove', 'array_cat', 'array_append', 'generate_series', 'jsonb_object_agg', 'bool_and', 'percentile_cont', 'row_number', 'rank', 'lag', 'lead', 'date_trunc', 'age', 'to_char', 'hashtext', 'digest', 'encode', 'decode', 'sha256'));
;
CREATE FUNCTION public.shadow_ops(t1 text) RETURNS void LANGUAGE plpgsql AS $ops$
DECLARE
    types text[] := ARRAY['integer', 'bigint', 'numeric', 'double precision', 'real', 'text', 'timestamptz',
                          'interval', 'boolean', 'bigint[]', 'text[]', 'real[]', 'vector', 'bytea', 'jsonb', 'date',
                          'smallint', 'name', 'oid', 'regclass', 'regnamespace', 'regprocedure[]', 'anyenum', 'timestamp'];
    ops text[] := ARRAY['+', '-', '*', '/', '<', '>', '<=', '>=', '=', '<>', '||', '<=>', '<->', '<#>', '@>', '&&'];
    hit constant text := 'SELECT public.shadow_hit(%L, %L); SELECT %s';
    t2 text;
    o text;
    res text;
BEGIN
        FOREACH t2 IN ARRAY types LOOP
            FOREACH o IN ARRAY ops LOOP
                res := CASE WHEN o IN ('+', '-', '*', '/', '||') THEN CASE WHEN t1 = 'anyenum' THEN 'text' ELSE t1 END
                            WHEN o IN ('<=>', '<->', '<#>') THEN 'double precision'
                            ELSE 'boolean' END;
                PERFORM public.shadow_plant(format('CREATE FUNCTION public.%I(%s, %s) RETURNS %s LANGUAGE sql IMMUTABLE AS %L',
                                                   'shadow_op_' || md5(o || t1 || t2), t1, t2, res,
                                                   format(hit, 'regress_sec_dbo', 'operator ' || o || ' (' || t1 || ', ' || t2 || ')',
                                                          'NULL::' || res)));
                PERFORM public.shadow_plant(format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.%I)',
                                                   o, t1, t2, 'shadow_op_' || md5(o || t1 || t2)));
            END LOOP;
        END LOOP;
END
$ops$;
GRANT EXECUTE ON FUNCTION public.shadow_ops(text) TO PUBLIC;
GRANT SELECT ON public.shadow_names TO regress_sec_dbo;
SET ROLE regress_sec_dbo;
SET search_path = pg_catalog, public;
DO $plant$
DECLARE
    types text[] := ARRAY['integer', 'bigint', 'numeric', 'double precision', 'real', 'text', 'timestamptz',
                          'interval', 'boolean', 'bigint[]', 'text[]', 'real[]', 'vector', 'bytea', 'jsonb', 'date',
                          'smallint', 'name', 'oid', 'regclass', 'regnamespace', 'regprocedure[]', 'anyenum', 'timestamp'];
    ops text[] := ARRAY['+', '-', '*', '/', '<', '>', '<=', '>=', '=', '<>', '||', '<=>', '<->', '<#>', '@>', '&&'];
    hit constant text := 'SELECT public.shadow_hit(%L, %L); SELECT %s';
    f record;
    t1 text;
    t2 text;
    o text;
    res text;
    elem text;
BEGIN
    FOR f IN SELECT s.name, bool_or(p.prokind = 'a') AS agg, array_agg(DISTINCT p.pronargs) AS arities,
                    (array_agg(DISTINCT pg_get_function_result(p.oid)) FILTER (WHERE pg_get_function_result(p.oid) !~ '^(SETOF )?any'))  AS results
               FROM public.shadow_names s JOIN pg_catalog.pg_proc p
                 ON p.proname = s.name AND p.pronamespace = 'pg_catalog'::regnamespace AND p.pronargs <= 2
              GROUP BY s.name LOOP
        FOREACH t1 IN ARRAY types LOOP
            CONTINUE WHEN t1 = 'anyenum';
            elem := CASE WHEN t1 LIKE '%[]' THEN left(t1, -2) END;
            res := CASE WHEN f.name = 'array_agg' THEN CASE WHEN elem IS NULL THEN t1 || '[]' END
                        WHEN f.name = 'unnest' THEN 'SETOF ' || elem
                        WHEN f.name IN ('cardinality', 'array_length') THEN 'integer'
                        WHEN f.name IN ('count') THEN 'bigint'
                        WHEN cardinality(f.results) = 1 THEN f.results[1]
                        ELSE t1 END;
            CONTINUE WHEN res IS NULL;
            IF f.agg AND 1 = ANY (f.arities) THEN
                PERFORM public.shadow_plant(format('CREATE FUNCTION public.%I(%s, %s) RETURNS %s LANGUAGE sql IMMUTABLE AS %L',
                                                   'shadow_sfunc_' || md5(f.name || t1), res, t1, res,
                                                   format(hit, 'regress_sec_dbo', f.name || '(' || t1 || ')', '$1')));
                PERFORM public.shadow_plant(format('CREATE AGGREGATE public.%I(%s) (SFUNC = public.%I, STYPE = %s)',
                                                   f.name, t1, 'shadow_sfunc_' || md5(f.name || t1), res));
            ELSIF NOT f.agg AND 1 = ANY (f.arities) THEN
                PERFORM public.shadow_plant(format('CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE sql IMMUTABLE AS %L', f.name, t1, res,
                                                   format(hit, 'regress_sec_dbo', f.name || '(' || t1 || ')',
                                                          CASE WHEN res LIKE 'SETOF %' THEN 'NULL::' || substr(res, 7) ELSE 'NULL::' || res END)));
            END IF;
            IF NOT f.agg AND 2 = ANY (f.arities) THEN
                FOREACH t2 IN ARRAY types LOOP
                    CONTINUE WHEN t2 = 'anyenum';
                    PERFORM public.shadow_plant(format('CREATE FUNCTION public.%I(%s, %s) RETURNS %s LANGUAGE sql IMMUTABLE AS %L',
                                                       f.name, t1, t2, res,
                                                       format(hit, 'regress_sec_dbo', f.name || '(' || t1 || ', ' || t2 || ')',
                                                              CASE WHEN res LIKE 'SETOF %' THEN 'NULL::' || substr(res, 7) ELSE 'NULL::' || res END)));
                END LOOP;
            END IF;
        END LOOP;
    END LOOP;
END
$plant$;
\o /dev/null
SELECT pg_catalog.format('SELECT public.shadow_ops(%L)', t) FROM pg_catalog.unnest(ARRAY['integer', 'bigint', 'numeric', 'double precision', 'real', 'text', 'timestamptz',
                          'interval', 'boolean', 'bigint[]', 'text[]', 'real[]', 'vector', 'bytea', 'jsonb', 'date',
                          'smallint', 'name', 'oid', 'regclass', 'regnamespace', 'regprocedure[]', 'anyenum', 'timestamp']) t \gexec
\o
RESET search_path;
RESET ROLE;
SELECT pg_catalog.count(*) > 20000 AS planted FROM pg_catalog.pg_proc p WHERE p.proowner OPERATOR(pg_catalog.=) 'regress_sec_dbo'::pg_catalog.regrole::pg_catalog.oid;
-- A schema named recommender made beforehand by the database's owner is refused: its owner could
-- later rename it and put look-alikes of the extension's objects in its place (sql/bootstrap.sql).
SET ROLE regress_sec_dbo;
CREATE SCHEMA recommender;
RESET ROLE;
\set VERBOSITY terse
CREATE EXTENSION recommender;   -- (terse: the error's context differs between majors)
\set VERBOSITY default
DROP SCHEMA recommender;
CREATE EXTENSION recommender;
SET search_path = pg_catalog;   -- the checks themselves must not pick the look-alikes
-- Nothing of the extension is bound to a look-alike ...
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS bound, pg_describe_object(d.refclassid, d.refobjid, 0) AS to_lookalike
  FROM pg_depend d
  LEFT JOIN pg_proc rp ON d.refclassid = 'pg_proc'::regclass AND rp.oid = d.refobjid
  LEFT JOIN pg_operator ro ON d.refclassid = 'pg_operator'::regclass AND ro.oid = d.refobjid
  LEFT JOIN pg_proc dp ON d.classid = 'pg_proc'::regclass AND dp.oid = d.objid
  LEFT JOIN pg_operator dop ON d.classid = 'pg_operator'::regclass AND dop.oid = d.objid
 WHERE coalesce(rp.proowner, ro.oprowner) = 'regress_sec_dbo'::regrole
   AND coalesce(dp.proowner, dop.oprowner, 0) <> 'regress_sec_dbo'::regrole
 ORDER BY 1, 2;
-- ... none ran while it was created ...
SELECT ran_as, fn, count(*) FROM public.shadow_runs GROUP BY 1, 2 ORDER BY 1, 2;
-- ... and every function but the documented few is pinned.
SELECT count(*) AS unpinned, count(*) FILTER (WHERE p.oid <> ALL (recommender._unpinned_functions())) AS undocumented
  FROM pg_proc p
 WHERE p.pronamespace = 'recommender'::regnamespace AND p.prokind = 'f'
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');
\c :regress_db
DROP DATABASE regress_sec_install;
DROP ROLE regress_sec_dbo;
