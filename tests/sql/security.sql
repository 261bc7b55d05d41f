-- Privilege escalation: no role below superuser gains the extension owner's rights (README
-- "Privileges", trust model). Each attack is written as the attacker would; each check asserts
-- the attacker gained nothing: not a superuser, and no function of the attacker's ever ran as
-- another role (a shadow that runs logs the role it ran as, tries ALTER ROLE ... SUPERUSER, and
-- raises a WARNING, which would show in this file's output).
\set VERBOSITY terse
SET client_min_messages = warning;
SET recommender.as_of = '2024-03-01 00:00+00';
DROP ROLE IF EXISTS regress_sec_app, regress_sec_owner, regress_sec_reader;   -- left by an interrupted run
CREATE ROLE regress_sec_app IN ROLE recommender_writer;       -- an app role that owns its table
CREATE ROLE regress_sec_owner;                                 -- becomes this database's owner
CREATE ROLE regress_sec_reader IN ROLE recommender_reader;
CREATE TABLE public.shadow_runs (attacker name, ran_as name, fn text);
GRANT INSERT ON public.shadow_runs TO PUBLIC;
CREATE FUNCTION public.shadow_hit(attacker name, fn text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.shadow_runs VALUES (attacker, current_user, fn);
    IF current_user <> attacker THEN
        BEGIN
            EXECUTE format('ALTER ROLE %I SUPERUSER', attacker);
        EXCEPTION WHEN insufficient_privilege THEN NULL;
        END;
        RAISE WARNING 'shadow % ran as %', fn, current_user;
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION public.shadow_hit(name, text) TO PUBLIC;
CREATE VIEW public.escalations AS
SELECT r.rolname, r.rolsuper,
       (SELECT count(*) FROM public.shadow_runs s WHERE s.attacker = r.rolname AND s.ran_as <> r.rolname) AS shadows_run_as_others
  FROM pg_roles r WHERE r.rolname IN ('regress_sec_app', 'regress_sec_owner');

------------------------------------------------------------------------------------------------
-- 1. The sync trigger must not evaluate the table owner's casts, operators or domains.
------------------------------------------------------------------------------------------------
CREATE SCHEMA regress_shop AUTHORIZATION regress_sec_app;
SET ROLE regress_sec_app;
CREATE TABLE regress_shop.items (id text PRIMARY KEY, name text, description text, category text,
                                 price numeric, stock integer, image text, created timestamptz);
RESET ROLE;
-- a superuser syncs the app's table ...
SELECT recommender.sync_products('regress_shop.items', description_column => 'description',
       category_column => 'category', price_column => 'price', stock_column => 'stock',
       image_url_column => 'image', created_at_column => 'created');
-- ... and the app role retypes every mapped column to a type of its own, with casts to each
-- type the trigger converts to (text, numeric, timestamptz, boolean), an implicit one among them,
-- operators, and a domain whose check calls its function.
SET ROLE regress_sec_app;
CREATE TYPE regress_shop.evil AS ENUM ('sec-1', 'sec-2', 'sec-3', 'Evil espresso', 'Evil tea', 'Dark', 'Coffee', '7',
                                       '2024-01-01', 'img', 't');
CREATE FUNCTION regress_shop.to_text(regress_shop.evil) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM public.shadow_hit('regress_sec_app', 'cast evil->text'); RETURN format('%s', $1); END $$;
CREATE FUNCTION regress_shop.to_numeric(regress_shop.evil) RETURNS numeric LANGUAGE plpgsql AS
$$ BEGIN PERFORM public.shadow_hit('regress_sec_app', 'cast evil->numeric'); RETURN 1; END $$;
CREATE FUNCTION regress_shop.to_timestamptz(regress_shop.evil) RETURNS timestamptz LANGUAGE plpgsql AS
$$ BEGIN PERFORM public.shadow_hit('regress_sec_app', 'cast evil->timestamptz'); RETURN now(); END $$;
CREATE FUNCTION regress_shop.to_boolean(regress_shop.evil) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN PERFORM public.shadow_hit('regress_sec_app', 'cast evil->boolean'); RETURN true; END $$;
CREATE FUNCTION regress_shop.eq(regress_shop.evil, regress_shop.evil) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN PERFORM public.shadow_hit('regress_sec_app', 'operator evil = evil'); RETURN $1::text = $2::text; END $$;
CREATE FUNCTION regress_shop.check(boolean) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN PERFORM public.shadow_hit('regress_sec_app', 'domain check'); RETURN true; END $$;
CREATE CAST (regress_shop.evil AS text) WITH FUNCTION regress_shop.to_text(regress_shop.evil) AS IMPLICIT;
CREATE CAST (regress_shop.evil AS numeric) WITH FUNCTION regress_shop.to_numeric(regress_shop.evil);
CREATE CAST (regress_shop.evil AS timestamptz) WITH FUNCTION regress_shop.to_timestamptz(regress_shop.evil);
CREATE CAST (regress_shop.evil AS boolean) WITH FUNCTION regress_shop.to_boolean(regress_shop.evil);
CREATE OPERATOR regress_shop.= (LEFTARG = regress_shop.evil, RIGHTARG = regress_shop.evil, FUNCTION = regress_shop.eq);
CREATE DOMAIN regress_shop.evil_bool AS boolean CHECK (regress_shop.check(VALUE));
ALTER TABLE regress_shop.items
    ALTER COLUMN id TYPE regress_shop.evil USING id::regress_shop.evil,
    ALTER COLUMN name TYPE regress_shop.evil USING name::regress_shop.evil,
    ALTER COLUMN description TYPE regress_shop.evil USING description::regress_shop.evil,
    ALTER COLUMN category TYPE regress_shop.evil USING category::regress_shop.evil,
    ALTER COLUMN price TYPE regress_shop.evil USING NULL,
    ALTER COLUMN stock TYPE regress_shop.evil USING NULL,
    ALTER COLUMN image TYPE regress_shop.evil USING image::regress_shop.evil,
    ALTER COLUMN created TYPE regress_shop.evil USING NULL;
-- Its own writes fire the trigger (insert, update, delete, truncate).
INSERT INTO regress_shop.items VALUES ('sec-1', 'Evil espresso', 'Dark', 'Coffee', '7', '7', 'img', '2024-01-01'),
                                      ('sec-2', 'Evil tea', NULL, 'Coffee', NULL, NULL, NULL, NULL);
UPDATE regress_shop.items SET name = 'Evil tea', id = 'sec-3' WHERE id = 'sec-1';
DELETE FROM regress_shop.items WHERE id = 'sec-2';
RESET ROLE;
SELECT external_id, name, description, category, price, stock, image_url, created_at
  FROM recommender.products WHERE source = 'regress_shop.items'::regclass ORDER BY 1;
SELECT * FROM public.escalations ORDER BY 1;
-- A boolean stock column of the app's domain type. A superuser resyncing the retyped table (the
-- initial load reads every row) runs nothing of the app's either.
SET ROLE regress_sec_app;
ALTER TABLE regress_shop.items DROP COLUMN stock, ADD COLUMN stock regress_shop.evil_bool;
RESET ROLE;
SELECT recommender.sync_products('regress_shop.items', description_column => 'description',
       category_column => 'category', stock_column => 'stock', image_url_column => 'image');
SET ROLE regress_sec_app;
UPDATE regress_shop.items SET stock = false;
RESET ROLE;
SELECT external_id, stock, in_stock FROM recommender.products WHERE source = 'regress_shop.items'::regclass ORDER BY 1;
SELECT * FROM public.escalations ORDER BY 1;
-- The app's own casts ran only as the app, when it converted its data itself.
SELECT DISTINCT attacker, ran_as, fn FROM public.shadow_runs ORDER BY 1, 2, 3;
TRUNCATE public.shadow_runs;

-- A writer syncs a table it owns (README "Privileges"), without further grants.
SET ROLE regress_sec_app;
CREATE TABLE regress_shop.own (sku integer PRIMARY KEY, title text);
INSERT INTO regress_shop.own VALUES (1, 'Writer''s own kettle');
SELECT recommender.sync_products('regress_shop.own', id_column => 'sku', name_column => 'title');
INSERT INTO regress_shop.own VALUES (2, 'Writer''s own teapot');
SELECT external_id, name FROM recommender.products WHERE source = 'regress_shop.own'::regclass ORDER BY 1;
SELECT recommender.unsync_products('regress_shop.own', delete_products => true);
TRUNCATE regress_shop.items;
SELECT recommender.unsync_products('regress_shop.items', delete_products => true);

-- ... but cannot attach the sync trigger by hand without its transition tables, where new_rows
-- would be read from a temporary view of its own calling its own function as the owner (0.16.0).
CREATE TEMP TABLE own_tmp (id integer, name text);
INSERT INTO recommender.sync_sources (source, id_column, name_column) VALUES ('pg_temp.own_tmp'::regclass, 'id', 'name');
CREATE TRIGGER recommender_sync_insert AFTER INSERT ON pg_temp.own_tmp
    FOR EACH STATEMENT EXECUTE FUNCTION recommender._sync_trigger();
CREATE FUNCTION pg_temp.grab() RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM public.shadow_hit('regress_sec_app', 'temp view new_rows'); RETURN '1'; END $$;
CREATE TEMP VIEW new_rows AS SELECT pg_temp.grab() AS id, 'n'::text AS name;
INSERT INTO pg_temp.own_tmp VALUES (1, 'a');
-- ... nor as a row trigger, nor for DELETE without old_rows (the names are the sync's own).
DROP TRIGGER recommender_sync_insert ON pg_temp.own_tmp;
CREATE TRIGGER recommender_sync_insert AFTER INSERT ON pg_temp.own_tmp
    FOR EACH ROW EXECUTE FUNCTION recommender._sync_trigger();
INSERT INTO pg_temp.own_tmp VALUES (1, 'a');
DROP TRIGGER recommender_sync_insert ON pg_temp.own_tmp;
CREATE VIEW pg_temp.old_rows AS SELECT pg_temp.grab() AS id, 'n'::text AS name;
CREATE TRIGGER recommender_sync_delete AFTER DELETE ON pg_temp.own_tmp
    FOR EACH STATEMENT EXECUTE FUNCTION recommender._sync_trigger();
DELETE FROM pg_temp.own_tmp;
DELETE FROM recommender.sync_sources WHERE source = 'pg_temp.own_tmp'::regclass;
DROP TABLE pg_temp.own_tmp;
DROP VIEW pg_temp.new_rows, pg_temp.old_rows;
RESET ROLE;
SELECT * FROM public.shadow_runs;

------------------------------------------------------------------------------------------------
-- 2. Shadowing built-ins: the database's owner (not a superuser) may create objects in public,
--    the schema that holds vector. It plants a look-alike of every built-in function, aggregate
--    and operator the extension calls, under the built-in's own argument types and under the
--    argument types of a closer match, then lets everyone use the extension.
------------------------------------------------------------------------------------------------
ALTER DATABASE :"DBNAME" OWNER TO regress_sec_owner;
-- Names called unqualified: those in the SQL and PL/pgSQL bodies of the extension's functions,
-- and those in the Rust pipeline's statements (src/).
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
        OR EXISTS (SELECT 1 FROM pg_proc r
                    WHERE r.pronamespace = 'recommender'::regnamespace AND r.prolang <> 13   -- 13: C
                      AND r.prosrc ~ ('\m' || f.proname || '\s*\(')));
GRANT SELECT ON public.shadow_names TO regress_sec_owner;
-- shadow_plant: runs one CREATE as its caller; a signature pgvector already has in public is skipped.
CREATE FUNCTION public.shadow_plant(sql text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 1;
EXCEPTION WHEN duplicate_function OR duplicate_object THEN
    RETURN 0;
END
$$;
GRANT EXECUTE ON FUNCTION public.shadow_plant(text) TO PUBLIC;
SET ROLE regress_sec_owner;
SET search_path = pg_catalog, public;   -- the attacker's own session: its shadows must not hit it
CREATE FUNCTION public.shadow_domain(t text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.shadow_hit('regress_sec_owner', 'domain ' || t); RETURN true; END $$;
DO $plant$
DECLARE
    types text[] := ARRAY['integer', 'bigint', 'numeric', 'double precision', 'real', 'text', 'timestamptz',
                          'interval', 'boolean', 'bigint[]', 'text[]', 'real[]', 'vector', 'bytea', 'jsonb', 'date'];
    ops text[] := ARRAY['+', '-', '*', '/', '<', '>', '<=', '>=', '=', '<>', '||', '<=>', '<->', '<#>', '@>', '&&', '->', '->>'];
    hit constant text := 'SELECT public.shadow_hit(%L, %L); SELECT %s';
    f record;
    t1 text;
    t2 text;
    o text;
BEGIN
    FOR f IN SELECT s.name, bool_or(p.prokind = 'a') AS agg, array_agg(DISTINCT p.pronargs) AS arities
               FROM public.shadow_names s JOIN pg_catalog.pg_proc p
                 ON p.proname = s.name AND p.pronamespace = 'pg_catalog'::regnamespace AND p.pronargs <= 2
              GROUP BY s.name LOOP
        IF 0 = ANY (f.arities) AND NOT f.agg THEN
            PERFORM public.shadow_plant(format('CREATE FUNCTION public.%I() RETURNS text LANGUAGE sql AS %L', f.name,
                                               format(hit, 'regress_sec_owner', f.name || '()', 'NULL::text')));
        END IF;
        FOREACH t1 IN ARRAY types LOOP
            IF f.agg AND 1 = ANY (f.arities) THEN
                PERFORM public.shadow_plant(format('CREATE FUNCTION public.%I(%s, %s) RETURNS %s LANGUAGE sql AS %L',
                                                   'shadow_sfunc_' || md5(f.name || t1), t1, t1, t1,
                                                   format(hit, 'regress_sec_owner', f.name || '(' || t1 || ')', '$1')));
                PERFORM public.shadow_plant(format('CREATE AGGREGATE public.%I(%s) (SFUNC = public.%I, STYPE = %s)',
                                                   f.name, t1, 'shadow_sfunc_' || md5(f.name || t1), t1));
            ELSIF NOT f.agg AND 1 = ANY (f.arities) THEN
                PERFORM public.shadow_plant(format('CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE sql AS %L', f.name, t1, t1,
                                                   format(hit, 'regress_sec_owner', f.name || '(' || t1 || ')', 'NULL::' || t1)));
            END IF;
            IF NOT f.agg AND 2 = ANY (f.arities) THEN
                FOREACH t2 IN ARRAY types LOOP
                    PERFORM public.shadow_plant(format('CREATE FUNCTION public.%I(%s, %s) RETURNS %s LANGUAGE sql AS %L',
                                                       f.name, t1, t2, t1,
                                                       format(hit, 'regress_sec_owner', f.name || '(' || t1 || ', ' || t2 || ')',
                                                              'NULL::' || t1)));
                END LOOP;
            END IF;
        END LOOP;
    END LOOP;
    FOREACH t1 IN ARRAY types LOOP
        FOREACH t2 IN ARRAY types LOOP
            PERFORM public.shadow_plant(format('CREATE FUNCTION public.%I(%s, %s) RETURNS boolean LANGUAGE sql AS %L',
                                               'shadow_op_' || md5(t1 || t2), t1, t2,
                                               format(hit, 'regress_sec_owner', 'operator (' || t1 || ', ' || t2 || ')',
                                                      'NULL::boolean')));
            FOREACH o IN ARRAY ops LOOP
                PERFORM public.shadow_plant(format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.%I)',
                                                   o, t1, t2, 'shadow_op_' || md5(t1 || t2)));
            END LOOP;
        END LOOP;
    END LOOP;
    -- look-alike types: a domain named like each built-in type the extension names without a
    -- keyword (a keyword such as integer always means pg_catalog's), whose check is a shadow
    FOREACH t1 IN ARRAY ARRAY['timestamptz', 'text', 'record', 'jsonb', 'bytea', 'regclass', 'regprocedure', 'oid',
                              'name', 'int4', 'int8', 'float8', 'bool', 'date'] LOOP
        PERFORM public.shadow_plant(format('CREATE DOMAIN public.%I AS pg_catalog.%s CHECK (public.shadow_domain(%L))',
                                           t1, CASE t1 WHEN 'record' THEN 'int4' ELSE t1 END, t1));
    END LOOP;
END
$plant$;
RESET search_path;
RESET ROLE;
SELECT count(*) > 3000 AS shadows_planted FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
 WHERE r.rolname = 'regress_sec_owner';

-- Everyone uses the extension, with the default search_path ("$user", public). The database owner
-- itself, with the reader's rights (the issue's path: homepage for a user with history) ...
GRANT recommender_reader TO regress_sec_owner;
SET ROLE regress_sec_owner;
SELECT pg_catalog.count(*) > 0 AS homepage FROM recommender.homepage('alice', 5);
SELECT pg_catalog.count(*) >= 0 AS cold_start FROM recommender.homepage('nobody-at-all', 5);
SELECT pg_catalog.count(*) > 0 AS similar
  FROM recommender.similar_products((SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 3);
SELECT pg_catalog.count(*) > 0 AS cart
  FROM recommender.cart(ARRAY(SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 3);
SELECT pg_catalog.count(*) >= 0 AS user_cart FROM recommender.cart('erin', 3);
SELECT pg_catalog.count(*) > 0 AS fbt
  FROM recommender.frequently_bought_together((SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 3);
SELECT pg_catalog.count(*) AS reranked FROM recommender.rerank('coffee', ARRAY['tea', 'coffee']);
SELECT recommender.homepage_json('alice', 2) IS NOT NULL AS json;
SELECT recommender.record_impressions('homepage', 'sec-user', ARRAY[1::bigint]) IS NOT NULL AS logged;
SELECT recommender.embed('coffee') IS NOT NULL AS embedded;
SELECT recommender.warmup() IS NOT NULL AS warm;
RESET ROLE;
-- ... a writer (tracking, the catalogue and its sync, the queue, abandoned carts) ...
SET ROLE regress_sec_app;
SELECT recommender.track('sec-user', (SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 'CART_ADD',
                         occurred_at => '2024-02-20') > 0 AS tracked;
INSERT INTO recommender.products (external_id, name, category, price, stock) VALUES ('sec-w', 'Shadowed mug', 'Kitchen', 9.5, 3);
UPDATE recommender.products SET name = 'Shadowed cup' WHERE external_id = 'sec-w';
SELECT recommender.embed_product((SELECT product_id FROM recommender.products WHERE external_id = 'sec-w'), force => true);
SET recommender.embedding_mode = deferred;
UPDATE recommender.products SET name = 'Shadowed beaker' WHERE external_id = 'sec-w';
RESET recommender.embedding_mode;
CALL recommender.process_queue();
CALL recommender.refresh_embeddings();
CREATE TABLE regress_shop.own2 (id integer PRIMARY KEY, name text, price numeric, created date);
INSERT INTO regress_shop.own2 VALUES (1, 'Shadowed kettle', 12, '2024-01-02');
SELECT recommender.sync_products('regress_shop.own2', price_column => 'price', created_at_column => 'created');
UPDATE regress_shop.own2 SET name = 'Shadowed kettle 2';
SELECT pg_catalog.count(*) >= 0 AS abandoned FROM recommender.abandoned_carts(interval '1 hour', 2);
SELECT recommender.unsync_products('regress_shop.own2', delete_products => true);
DELETE FROM recommender.products WHERE external_id = 'sec-w';
RESET ROLE;
-- ... and a superuser running maintenance.
SELECT recommender.rebuild_user_profile('alice') > 0 AS rebuilt;
SELECT recommender.refresh_aggregates();
CALL recommender.rebuild_user_profiles();   -- a procedure: the caller's search_path (0.16.0)
SELECT pg_catalog.count(*) > 0 AS homepage_after FROM recommender.homepage('alice', 5);
-- The database owner sets every session's search_path, a superuser's too, with its own schema
-- before pg_catalog; a superuser then runs the maintenance procedures (pg_cron's sessions take the
-- database's settings as well). Each procedure pins its own path, after every COMMIT too (0.18.0).
SET ROLE regress_sec_owner;
ALTER DATABASE :"DBNAME" SET search_path = public, pg_catalog;
RESET ROLE;
\c
\set VERBOSITY terse
SET client_min_messages = warning;
SET recommender.as_of = '2024-03-01 00:00+00';
SHOW search_path;
CALL recommender.build_item_model();
CALL recommender.rebuild_user_profiles(batch_size => 1);
SET recommender.embedding_mode = deferred;   -- this session's own statements name pg_catalog
UPDATE recommender.products SET name = pg_catalog.concat(name, ' (renamed)')
 WHERE external_id OPERATOR(pg_catalog.=) 'cof-1';
RESET recommender.embedding_mode;
CALL recommender.process_queue(retry_now => true);
UPDATE recommender.products SET name = pg_catalog.replace(name, ' (renamed)', '')
 WHERE external_id OPERATOR(pg_catalog.=) 'cof-1';
CALL recommender.refresh_embeddings(batch_size => 1, force => true);
-- the functions that keep the caller's path, called directly (clock() is also the default of
-- impressions.shown_at): they name pg_catalog for every type, function and operator (0.20.0)
SELECT recommender.clock() IS NOT NULL AS clock,
       recommender._clean_price(5) AS price, recommender._clean_stock(7.4) AS stock,
       recommender._item(r) OPERATOR(pg_catalog.->>) 'score' AS item
  FROM (SELECT 1 AS product_id, 0.5 AS score) r;
INSERT INTO recommender.impressions (request_id, context, product_id, position) VALUES ('sec', 'security', 1, 1);
DELETE FROM recommender.impressions WHERE request_id OPERATOR(pg_catalog.=) 'sec';
SET search_path = pg_catalog, public;
ALTER DATABASE :"DBNAME" RESET search_path;
SELECT * FROM public.escalations ORDER BY 1;
SELECT pg_catalog.count(*) AS shadows_run FROM public.shadow_runs;

-- Every function but the documented few resolves names with pg_catalog first and never in a
-- schema others may create in; SECURITY DEFINER ones all do.
SELECT p.oid::regprocedure AS keeps_callers_search_path, p.prosecdef
  FROM pg_proc p
 WHERE p.pronamespace = 'recommender'::regnamespace AND p.prokind = 'f'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) c WHERE c LIKE 'search_path=pg\_catalog, %')
 ORDER BY p.oid::regprocedure::text;
SELECT DISTINCT c AS pinned_search_path
  FROM pg_proc p, pg_catalog.unnest(p.proconfig) c
 WHERE p.pronamespace = 'recommender'::regnamespace AND c LIKE 'search_path=%' ORDER BY 1;

-- Clean up: the shadows go with their owner (one statement each: thousands of objects exceed
-- one transaction's locks).
ALTER DATABASE :"DBNAME" OWNER TO postgres;
\set ECHO none
SELECT pg_catalog.format('DROP ROUTINE %s CASCADE', p.oid::regprocedure)
  FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
 WHERE r.rolname = 'regress_sec_owner' AND p.prokind = 'a' ORDER BY p.oid \gexec
SELECT pg_catalog.format('DROP ROUTINE %s CASCADE', p.oid::regprocedure)
  FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
 WHERE r.rolname = 'regress_sec_owner' ORDER BY p.oid \gexec
\set ECHO all
DROP OWNED BY regress_sec_owner, regress_sec_app, regress_sec_reader CASCADE;
DROP SCHEMA IF EXISTS regress_shop CASCADE;
DROP VIEW public.escalations;
DROP TABLE public.shadow_runs, public.shadow_names;
DROP FUNCTION public.shadow_hit(name, text), public.shadow_plant(text);
DELETE FROM recommender.interactions WHERE user_id = 'sec-user';
DELETE FROM recommender.impressions WHERE user_id = 'sec-user';
DROP ROLE regress_sec_app, regress_sec_owner, regress_sec_reader;
RESET recommender.as_of;

------------------------------------------------------------------------------------------------
-- 3. vector in a schema of its own, where another role may create objects: the pipeline names
--    pgvector's type and operators with that schema, and look-alikes planted there (other
--    argument types for <=>, a function named like the cast's) are never picked.
------------------------------------------------------------------------------------------------
\set regress_db :DBNAME
DROP DATABASE IF EXISTS regress_sec_vecs;
DROP ROLE IF EXISTS regress_sec_creator;
CREATE ROLE regress_sec_creator;
CREATE DATABASE regress_sec_vecs;
\c regress_sec_vecs
SET client_min_messages = warning;
CREATE SCHEMA vecs;
CREATE EXTENSION vector SCHEMA vecs;
CREATE EXTENSION recommender;
GRANT CREATE, USAGE ON SCHEMA vecs TO regress_sec_creator;
SET ROLE regress_sec_creator;
CREATE FUNCTION vecs.shadow(vecs.vector, real[]) RETURNS double precision LANGUAGE plpgsql AS
$$ BEGIN RAISE WARNING 'shadow ran as %', current_user; ALTER ROLE regress_sec_creator SUPERUSER; RETURN 0; END $$;
CREATE FUNCTION vecs.shadow(real[], vecs.vector) RETURNS double precision LANGUAGE plpgsql AS
$$ BEGIN RAISE WARNING 'shadow ran as %', current_user; ALTER ROLE regress_sec_creator SUPERUSER; RETURN 0; END $$;
CREATE OPERATOR vecs.<=> (LEFTARG = vecs.vector, RIGHTARG = real[], FUNCTION = vecs.shadow);
CREATE OPERATOR vecs.<=> (LEFTARG = real[], RIGHTARG = vecs.vector, FUNCTION = vecs.shadow);
CREATE FUNCTION vecs.vector(real[]) RETURNS vecs.vector LANGUAGE plpgsql AS
$$ BEGIN RAISE WARNING 'shadow ran as %', current_user; ALTER ROLE regress_sec_creator SUPERUSER; RETURN NULL; END $$;
RESET ROLE;
SET recommender.as_of = '2024-03-01 00:00+00';
INSERT INTO recommender.products (external_id, name, category, price, stock) VALUES
    ('v-1', 'Espresso beans', 'Coffee', 12, 5), ('v-2', 'Filter coffee', 'Coffee', 8, 5),
    ('v-3', 'Green tea', 'Tea', 4, 5), ('v-4', 'Milk frother', 'Kitchen', 20, 5);
INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
SELECT 'vera', product_id, 'PURCHASE', 'vb-1', '2024-02-01' FROM recommender.products WHERE external_id IN ('v-1', 'v-4');
SELECT external_product_id, sources FROM recommender.homepage('vera', 2) ORDER BY position;
SELECT external_product_id FROM recommender.similar_products((SELECT product_id FROM recommender.products WHERE external_id = 'v-1'), 2)
 ORDER BY position;
SELECT vecs.vector_dims(recommender.embed('coffee')) AS dims, cardinality(recommender.embed(ARRAY['a', 'b'])) AS many;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sec_creator';
-- The role owns vector's schema (as the database's owner owns public on PostgreSQL 15+): it renames
-- it under this backend, whose kept statements name it, and makes a schema of the old name with a
-- domain called vector (its check runs its function) and an operator <=> for it. The statements
-- are prepared again with the schema's new name; embed() names no schema at all (0.16.0).
ALTER SCHEMA vecs OWNER TO regress_sec_creator;
GRANT CREATE ON DATABASE regress_sec_vecs TO regress_sec_creator;
SET ROLE regress_sec_creator;
CREATE FUNCTION vecs.grab(vecs.vector) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN RAISE WARNING 'look-alike ran as %', current_user; ALTER ROLE regress_sec_creator SUPERUSER; RETURN true; END $$;
ALTER SCHEMA vecs RENAME TO vecs_moved;
CREATE SCHEMA vecs;
CREATE DOMAIN vecs.vector AS vecs_moved.vector CHECK (vecs_moved.grab(VALUE));
CREATE FUNCTION vecs.near(vecs_moved.vector, vecs.vector) RETURNS double precision LANGUAGE plpgsql AS
$$ BEGIN RAISE WARNING 'look-alike ran as %', current_user; ALTER ROLE regress_sec_creator SUPERUSER; RETURN 0; END $$;
CREATE OPERATOR vecs.<=> (LEFTARG = vecs_moved.vector, RIGHTARG = vecs.vector, FUNCTION = vecs.near);
RESET ROLE;
SELECT external_product_id, sources FROM recommender.homepage('vera', 2) ORDER BY position;
SELECT external_product_id FROM recommender.similar_products((SELECT product_id FROM recommender.products WHERE external_id = 'v-1'), 2)
 ORDER BY position;
SELECT vecs_moved.vector_dims(recommender.embed('coffee')) AS dims, cardinality(recommender.embed(ARRAY['a', 'b'])) AS many;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sec_creator';
-- The superuser moves pgvector to another schema (ALTER EXTENSION ... SET SCHEMA changes no
-- schema, only pgvector's types and operators) under this backend's kept statements, and the
-- role that owns the old schema plants the same look-alikes there: the statements are prepared
-- again with the new name (0.25.0).
CREATE SCHEMA vecs_other;
GRANT USAGE ON SCHEMA vecs_other TO PUBLIC;
SELECT count(*) AS shown FROM recommender.homepage('vera', 2);
ALTER EXTENSION vector SET SCHEMA vecs_other;
SET ROLE regress_sec_creator;
CREATE FUNCTION vecs_moved.grab_moved(vecs_other.vector) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN RAISE WARNING 'look-alike ran as %', current_user; ALTER ROLE regress_sec_creator SUPERUSER; RETURN true; END $$;
CREATE DOMAIN vecs_moved.vector AS vecs_other.vector CHECK (vecs_moved.grab_moved(VALUE));
CREATE FUNCTION vecs_moved.near(vecs_other.vector, vecs_moved.vector) RETURNS double precision LANGUAGE plpgsql AS
$$ BEGIN RAISE WARNING 'look-alike ran as %', current_user; ALTER ROLE regress_sec_creator SUPERUSER; RETURN 0; END $$;
CREATE OPERATOR vecs_moved.<=> (LEFTARG = vecs_other.vector, RIGHTARG = vecs_moved.vector, FUNCTION = vecs_moved.near);
RESET ROLE;
SELECT external_product_id, sources FROM recommender.homepage('vera', 2) ORDER BY position;
SELECT external_product_id FROM recommender.similar_products((SELECT product_id FROM recommender.products WHERE external_id = 'v-1'), 2)
 ORDER BY position;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sec_creator';
\c :regress_db
DROP DATABASE regress_sec_vecs;
DROP ROLE regress_sec_creator;
