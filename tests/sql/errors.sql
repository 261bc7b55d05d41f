-- Bad configuration and hostile input: clear errors with SQLSTATEs, and the session survives.
\set VERBOSITY default
\set SHOW_CONTEXT never
-- A wrong ONNX Runtime path is reported at first use, not at CREATE EXTENSION (fresh backend).
\c
SET recommender.onnxruntime_library = '/nonexistent/libonnxruntime.so';
SELECT recommender.embed('x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\c
-- A missing model directory: 58P01, the hint names the GUC and the set-up command.
SET recommender.model_dir = '/nonexistent/models';
SELECT recommender.embed('x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Writes still succeed: the product is saved and left stale, with a WARNING.
INSERT INTO shop.items VALUES ('kit-9', 'Coffee scale', 'Timer, 0.1 g', 'Kitchen', 25.00, 5);
SELECT external_id, embedding IS NULL AS waiting FROM recommender.products WHERE external_id = 'kit-9';
RESET recommender.model_dir;
SET client_min_messages = warning;
CALL recommender.refresh_embeddings();
RESET client_min_messages;
SELECT external_id, embedding IS NOT NULL AS embedded FROM recommender.products WHERE external_id = 'kit-9';
-- Model paths are superuser-only settings.
CREATE ROLE recommender_regress_user;
SET ROLE recommender_regress_user;
SET recommender.model_dir = '/tmp';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET recommender.onnxruntime_library = '/tmp/evil.so';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE recommender_regress_user;
-- Hostile identifiers are quoted, never spliced: this names a column that does not exist.
SELECT recommender.sync_products('shop.items', id_column => 'sku', name_column => 'title"; DROP TABLE shop.items; --');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT recommender.sync_products('shop.items; DROP TABLE shop.items');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT recommender.sync_products('shop.items', id_column => 'sku', name_column => 'title', price_column => 'blurb');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS shop_items_still_there FROM shop.items;
-- Bad batch size.
CALL recommender.refresh_embeddings(batch_size => 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Unknown product for embed_product.
SELECT recommender.embed_product(-1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT 'session still usable' AS status;
