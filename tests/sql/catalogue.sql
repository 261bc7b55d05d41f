-- An app's own product table, synced into the catalogue by triggers.
CREATE SCHEMA shop;
CREATE TABLE shop.items (
    sku      text PRIMARY KEY,
    title    text NOT NULL,
    blurb    text,
    dept     text,
    cost     numeric(10,2),
    qty      integer
);
INSERT INTO shop.items VALUES
  ('cof-1', 'Dark roast whole bean coffee', 'Fair trade arabica, 1 kg bag', 'Coffee', 14.50, 12),
  ('cof-2', 'Espresso ground coffee', 'Intense Italian roast, 250 g', 'Coffee', 6.90, 30),
  ('cof-3', 'Colombian medium roast coffee beans', 'Single origin, 500 g', 'Coffee', 11.00, 8),
  ('cof-4', 'Decaf coffee capsules', '30 pods, compatible machines', 'Coffee', 9.00, 0),
  ('tea-1', 'Japanese green tea', 'Sencha, 40 bags', 'Tea', 4.20, 50),
  ('tea-2', 'Earl Grey black tea', 'Bergamot, loose leaf 200 g', 'Tea', 7.50, 20),
  ('aud-1', 'Wireless noise-cancelling headphones', 'Over-ear, 30-hour battery', 'Audio', 199.00, 3),
  ('aud-2', 'Bluetooth earbuds', 'In-ear, charging case', 'Audio', 59.00, 9),
  ('aud-3', 'Portable bluetooth speaker', 'Waterproof, 12-hour battery', 'Audio', 45.00, 14),
  ('kit-1', 'Burr coffee grinder', 'Conical burrs, 15 settings', 'Kitchen', 89.00, 4),
  ('kit-2', 'Milk frother', 'Handheld, battery powered', 'Kitchen', 12.00, 25),
  ('kit-3', 'Stainless steel water bottle', '750 ml, keeps drinks cold 24 h', 'Kitchen', 19.00, 40);

-- Initial load: rows land in the catalogue, embedding is left to refresh_embeddings().
SELECT recommender.sync_products('shop.items', id_column => 'sku', name_column => 'title',
       description_column => 'blurb', category_column => 'dept', price_column => 'cost', stock_column => 'qty');
SELECT source, synced, products, embedded, stale, out_of_stock FROM recommender.sync_status;
-- Bulk embedding, committed per batch (progress NOTICEs carry timings, so they are muted here).
SET client_min_messages = warning;
CALL recommender.refresh_embeddings(batch_size => 5);
RESET client_min_messages;
SELECT source, products, embedded, stale FROM recommender.sync_status;
SELECT external_id, name, category, price, stock, in_stock, vector_dims(embedding) AS dims,
       embedded_hash = text_hash AS fresh
  FROM recommender.products ORDER BY external_id;

-- Writes to the app table flow in. A new product is embedded by the statement that inserts it.
INSERT INTO shop.items VALUES ('tea-3', 'Chamomile herbal tea', 'Caffeine free, 20 bags', 'Tea', 3.90, 10);
SELECT external_id, name, embedding IS NOT NULL AS embedded FROM recommender.products WHERE external_id = 'tea-3';

-- A price or stock change does not run the model (same price band, same text).
-- (A price that crosses a band boundary changes the text, and does re-embed.)
SELECT texts_embedded AS before FROM recommender.model_info() \gset
UPDATE shop.items SET cost = cost + 0.5, qty = qty * 2;
SELECT texts_embedded - :before AS texts_embedded_by_price_update FROM recommender.model_info();
-- A text change re-embeds exactly the changed product.
UPDATE shop.items SET blurb = 'Fair trade arabica, 2 kg bag' WHERE sku = 'cof-1';
SELECT texts_embedded - :before AS texts_embedded_after_text_change FROM recommender.model_info();
SELECT count(*) FILTER (WHERE embedded_hash IS DISTINCT FROM text_hash) AS stale FROM recommender.products;

-- Deletes and key changes follow.
DELETE FROM shop.items WHERE sku = 'kit-3';
UPDATE shop.items SET sku = 'tea-9' WHERE sku = 'tea-3';
SELECT external_id FROM recommender.products WHERE category = 'Tea' OR external_id = 'kit-3' ORDER BY 1;

-- Writing directly to the catalogue works too (source NULL).
INSERT INTO recommender.products (external_id, name, category, price, stock)
VALUES ('manual-1', 'French press coffee maker', 'Kitchen', 29.00, 6);
SELECT source, products, embedded, stale FROM recommender.sync_status ORDER BY source;

-- Re-embed one product on demand.
SELECT recommender.embed_product(product_id) AS ran_model FROM recommender.products WHERE external_id = 'cof-2';
SELECT recommender.embed_product(product_id, force => true) AS ran_model FROM recommender.products WHERE external_id = 'cof-2';

-- Bulk refresh honours statement_timeout between batches; committed batches are kept, and a
-- rerun finishes the rest. (2,000 products take several seconds at the speeds in BENCHMARKS.md.)
SET recommender.enable_sync_embedding = off;
INSERT INTO recommender.products (external_id, name, category, price)
SELECT 'bulk-' || g, 'Bulk item number ' || g, 'Bulk', g % 100 FROM generate_series(1, 2000) g;
RESET recommender.enable_sync_embedding;
SELECT stale FROM recommender.sync_status WHERE source = '(direct)';
SET statement_timeout = '1s';
SET client_min_messages = warning;
\set VERBOSITY terse
CALL recommender.refresh_embeddings(batch_size => 10);
\set VERBOSITY default
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT embedded % 10 = 1 AS whole_batches_only, stale > 0 AS rest_still_stale
  FROM recommender.sync_status WHERE source = '(direct)';
CALL recommender.refresh_embeddings();
RESET client_min_messages;
SELECT products, embedded, stale FROM recommender.sync_status WHERE source = '(direct)';
DELETE FROM recommender.products WHERE category = 'Bulk';

-- Products with the same text share one vector: only the first runs the model, the others copy
-- its vector (within one statement too). force => true runs the model again.
SELECT texts_embedded AS runs0 FROM recommender.model_info() WHERE role = 'encoder' \gset
INSERT INTO recommender.products (external_id, name, description, category, price, stock)
VALUES ('twin-1', 'Glass teapot', '1.2 l, borosilicate', 'Kitchen', 24.00, 5);
INSERT INTO recommender.products (external_id, name, description, category, price, stock)
VALUES ('twin-2', 'Glass teapot', '1.2 l, borosilicate', 'Kitchen', 24.00, 2),
       ('twin-3', 'Glass teapot', '1.2 l, borosilicate', 'Kitchen', 24.00, 0),
       ('twin-4', 'Glass teapot', '1.5 l, borosilicate', 'Kitchen', 24.00, 1),
       ('twin-5', 'Glass teapot', '1.5 l, borosilicate', 'Kitchen', 24.00, 1);
SELECT texts_embedded - :runs0 AS texts_through_model FROM recommender.model_info() WHERE role = 'encoder';
SELECT count(DISTINCT embedding::text) AS vectors, bool_and(embedded_hash = text_hash) AS current
  FROM recommender.products WHERE external_id LIKE 'twin-%' GROUP BY description ORDER BY description;
SELECT recommender.embed_product(product_id, force => true) AS ran_model
  FROM recommender.products WHERE external_id = 'twin-2';
SELECT texts_embedded - :runs0 AS texts_through_model FROM recommender.model_info() WHERE role = 'encoder';
SELECT (SELECT embedding FROM recommender.products WHERE external_id = 'twin-1')
     = (SELECT embedding FROM recommender.products WHERE external_id = 'twin-2') AS same_vector;
DELETE FROM recommender.products WHERE external_id LIKE 'twin-%';

-- A mapped column dropped after sync_products fails the app's statements that read it as a
-- missing column, with its name and table (0.22.0), also when the name is one of the trigger's
-- transition tables: before, an INSERT synced the whole row as text, and a DELETE by an id column
-- named old_rows deleted nothing.
CREATE TABLE shop.shelf (id text PRIMARY KEY, title text, new_rows text);
INSERT INTO shop.shelf VALUES ('s-1', 'Tea caddy', 'Tin, 250 g');
SELECT recommender.sync_products('shop.shelf', name_column => 'title', description_column => 'new_rows');
SELECT external_id, description FROM recommender.products WHERE source = 'shop.shelf'::regclass;
ALTER TABLE shop.shelf DROP COLUMN new_rows;
\set VERBOSITY terse
INSERT INTO shop.shelf VALUES ('s-2', 'Tea strainer');
\set VERBOSITY default
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS synced FROM recommender.products WHERE source = 'shop.shelf'::regclass;
SELECT recommender.sync_products('shop.shelf', name_column => 'title');
INSERT INTO shop.shelf VALUES ('s-2', 'Tea strainer');
SELECT external_id, name, description FROM recommender.products WHERE source = 'shop.shelf'::regclass ORDER BY 1;
SELECT recommender.unsync_products('shop.shelf', delete_products => true);
DROP TABLE shop.shelf;
CREATE TABLE shop.crate (old_rows text PRIMARY KEY, title text);
INSERT INTO shop.crate VALUES ('c-1', 'Tea crate');
SELECT recommender.sync_products('shop.crate', id_column => 'old_rows', name_column => 'title');
ALTER TABLE shop.crate RENAME COLUMN old_rows TO code;
\set VERBOSITY terse
UPDATE shop.crate SET title = 'Wooden tea crate';
DELETE FROM shop.crate;
\set VERBOSITY default
SELECT external_id, name FROM recommender.products WHERE source = 'shop.crate'::regclass;
SELECT recommender.unsync_products('shop.crate', delete_products => true);
DROP TABLE shop.crate;
