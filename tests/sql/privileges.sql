-- Privileges: install needs a superuser once; afterwards two group roles decide what others can do.
\set VERBOSITY terse
SET recommender.as_of = '2024-03-01 00:00+00';
CREATE ROLE regress_app_reader IN ROLE recommender_reader;
CREATE ROLE regress_app_writer IN ROLE recommender_writer;
CREATE ROLE regress_nobody;
-- Only the recommendation functions run as the owner, each with a pinned search_path; every
-- other function is SECURITY INVOKER (the two SECURITY DEFINER trigger functions are documented
-- in README "Privileges").
SELECT p.oid::regprocedure AS security_definer,
       EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%') AS search_path_pinned
  FROM pg_proc p WHERE p.pronamespace = 'recommender'::regnamespace AND p.prosecdef ORDER BY p.oid::regprocedure::text;
-- Nothing is executable by PUBLIC.
SELECT count(*) AS public_executable FROM pg_proc p
 WHERE p.pronamespace = 'recommender'::regnamespace AND has_function_privilege('regress_nobody', p.oid, 'EXECUTE');

-- A reader gets recommendations, reranks and embeds ...
SET ROLE regress_app_reader;
SELECT count(*) AS homepage FROM recommender.homepage('alice', 3);
SELECT count(*) AS similar FROM recommender.similar_products((SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 3);
SELECT count(*) AS cart FROM recommender.cart(ARRAY(SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 3);
SELECT count(*) AS user_cart FROM recommender.cart('erin', 2);
SELECT count(*) AS fbt FROM recommender.frequently_bought_together((SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 3);
SELECT count(*) AS reranked FROM recommender.rerank('coffee', ARRAY['tea', 'coffee']);
SELECT vector_dims(recommender.embed('coffee')) AS dims;
SELECT recommender.homepage_json('alice', 1)->'recommendations'->0 ? 'product_id' AS json_ok;
SELECT count(*) > 0 AS sees_catalogue FROM recommender.products;
-- ... but reads no raw interactions or per-user data, tracks nothing, changes no catalogue row
SELECT count(*) FROM recommender.interactions;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM recommender.user_products;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM recommender.user_profiles;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT recommender.track('alice', 1, 'VIEW');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE recommender.products SET name = 'x' WHERE external_id = 'cof-1';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT recommender.refresh_aggregates();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... nor build or read the item model (it is learned from everyone's purchases) ...
CALL recommender.build_item_model();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM recommender._build_item_model(10, 1, 1, 28, 1, 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM recommender.item_neighbors;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM recommender.item_model;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... and cannot point the backend at other model files or another ONNX Runtime.
SET recommender.model_dir = '/tmp';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET recommender.cross_encoder_dir = '/tmp';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET recommender.onnxruntime_library = '/tmp/evil.so';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET recommender.enable_checksums = off;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Tuning settings are the session's own.
SET recommender.weight_content = 0.7;
RESET recommender.weight_content;
RESET ROLE;

-- A writer also tracks and manages the catalogue (the insert embeds the new product) ...
SET ROLE regress_app_writer;
SELECT recommender.track('frank', (SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 'VIEW') > 0 AS tracked;
INSERT INTO recommender.products (external_id, name, category) VALUES ('w-1', 'Writer''s espresso cups', 'Coffee');
UPDATE recommender.products SET description = 'Set of two, 80 ml' WHERE external_id = 'w-1';
SELECT external_id, embedding IS NOT NULL AND embedded_hash = text_hash AS embedded FROM recommender.products WHERE external_id = 'w-1';
SELECT recommender.embed_product((SELECT product_id FROM recommender.products WHERE external_id = 'w-1'), force => true);
CALL recommender.refresh_embeddings();
DELETE FROM recommender.products WHERE external_id = 'w-1';
-- ... still without reading other users' interactions, building the item model from them, or
-- queueing every user's homepage for the worker (0.22.0).
SELECT user_id FROM recommender.interactions;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CALL recommender.build_item_model();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT recommender.queue_homepages();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
-- ... nor touch the sync of a table it does not own (0.16.0): no remapping, no unsyncing.
CREATE TABLE public.regress_priv_shop (id integer PRIMARY KEY, name text, secret text);
SELECT recommender.sync_products('public.regress_priv_shop') AS synced;
SET ROLE regress_app_writer;
SELECT source, description_column FROM recommender.sync_sources WHERE source = 'public.regress_priv_shop'::regclass;
WITH u AS (UPDATE recommender.sync_sources SET description_column = 'secret'
            WHERE source = 'public.regress_priv_shop'::regclass RETURNING 1)
SELECT count(*) AS remapped FROM u;
WITH d AS (DELETE FROM recommender.sync_sources WHERE source = 'public.regress_priv_shop'::regclass RETURNING 1)
SELECT count(*) AS unsynced FROM d;
SELECT recommender.unsync_products('public.regress_priv_shop');
INSERT INTO recommender.sync_sources (source, id_column, name_column, description_column)
VALUES ('public.regress_priv_shop'::regclass, 'id', 'name', 'secret')
ON CONFLICT (source) DO UPDATE SET description_column = 'secret';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT source, description_column FROM recommender.sync_sources WHERE source = 'public.regress_priv_shop'::regclass;
SELECT recommender.unsync_products('public.regress_priv_shop');
DROP TABLE public.regress_priv_shop;
SELECT count(*) AS franks_view_recorded FROM recommender.interactions WHERE user_id = 'frank';
DELETE FROM recommender.interactions WHERE user_id = 'frank';

-- A role with neither gets nothing.
SET ROLE regress_nobody;
SELECT count(*) FROM recommender.homepage('alice', 3);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_app_reader, regress_app_writer, regress_nobody;
RESET recommender.as_of;

-- A group role of the extension's name that someone else could have made would get every grant
-- of the install: CREATE EXTENSION refuses it (0.23.0), here one a non-superuser holds ADMIN
-- OPTION on (what PostgreSQL 16 and later give a CREATEROLE role that makes it), in a new
-- database; with the role put right, the install goes through.
\set regress_db :DBNAME
CREATE ROLE regress_squatter;
GRANT recommender_writer TO regress_squatter WITH ADMIN OPTION;
CREATE DATABASE regress_squat;
\c regress_squat
SET client_min_messages = warning;
\set VERBOSITY terse
CREATE EXTENSION recommender CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'recommender';
\c :regress_db
DROP ROLE regress_squatter;
\c regress_squat
SET client_min_messages = warning;
CREATE EXTENSION recommender CASCADE;
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'recommender';
\c :regress_db
DROP DATABASE regress_squat;
