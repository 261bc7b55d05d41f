-- Hostile input, argument by argument: a clear error (SQLSTATE shown) or a documented fallback,
-- never a crash, and nothing written that should not be.
\set VERBOSITY terse
SET recommender.as_of = '2024-03-01 00:00+00';
CREATE TEMP TABLE counts_before AS
SELECT (SELECT count(*) FROM recommender.products) AS products, (SELECT count(*) FROM recommender.interactions) AS interactions;

-- Injection attempts through text arguments are data: every argument is bound, never spliced.
SELECT count(*) AS recs FROM recommender.homepage($$x'); DROP TABLE recommender.products; --$$, 3);
SELECT count(*) AS recs FROM recommender.cart($$' OR 1=1; DELETE FROM recommender.interactions; --$$, 3);
SELECT count(*) AS reranked FROM recommender.rerank($$'); DROP TABLE recommender.products; --$$, ARRAY[$$"; DROP SCHEMA recommender CASCADE; --$$]);
SELECT vector_dims(recommender.embed($$'); DROP TABLE recommender.products; --$$)) AS dims;
SELECT recommender.track($$'); DELETE FROM recommender.interactions; --$$, product_id, 'VIEW',
                         basket_id => $$'; TRUNCATE recommender.copurchase; --$$, request_id => $$"); --$$) > 0 AS tracked
  FROM recommender.products WHERE external_id = 'cof-1';
SELECT user_id, basket_id FROM recommender.interactions WHERE user_id LIKE '%DELETE FROM%';
-- ... and through the identifiers of sync_products: a table and columns with hostile names sync
-- like any other, because identifiers are only ever quoted with format('%I').
CREATE TABLE shop."items; DROP TABLE shop.items; --" ("id""; DROP TABLE shop.items; --" text PRIMARY KEY, "name'); --" text);
SELECT recommender.sync_products('shop."items; DROP TABLE shop.items; --"',
       id_column => 'id"; DROP TABLE shop.items; --', name_column => $$name'); --$$) AS synced;
INSERT INTO shop."items; DROP TABLE shop.items; --" VALUES ('h-1', $$Robert'); DROP TABLE students; --$$);
SELECT external_id, name, embedding IS NOT NULL AS embedded FROM recommender.products WHERE external_id = 'h-1';
SELECT recommender.unsync_products('shop."items; DROP TABLE shop.items; --"', delete_products => true) AS unsynced;
DROP TABLE shop."items; DROP TABLE shop.items; --";
-- The catalogue itself and the system catalogs are no sync source (that would recurse).
SELECT recommender.sync_products('recommender.products', id_column => 'external_id');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT recommender.sync_products('pg_class', id_column => 'oid', name_column => 'relname');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS shop_items_still_there FROM shop.items;

-- Huge inputs: a 10 MB text is embedded from its first 64 KiB (README "Bad input"); a 10 MB
-- product description is stored whole and embedded.
SELECT vector_dims(recommender.embed(repeat('grind ', 1747627))) AS dims_of_10mb_text;
INSERT INTO recommender.products (external_id, name, description, category)
VALUES ('huge-1', 'Coffee sampler', repeat('arabica robusta ', 655360), 'Coffee');
SELECT length(description) AS description_bytes, embedding IS NOT NULL AND embedded_hash = text_hash AS embedded
  FROM recommender.products WHERE external_id = 'huge-1';
DELETE FROM recommender.products WHERE external_id = 'huge-1';
-- 100,000-element arrays are refused up front (at most 10,000 per call).
SELECT cardinality(recommender.embed(array_fill('x'::text, ARRAY[100000])));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM recommender.rerank('q', array_fill('doc'::text, ARRAY[100000]));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM recommender.cart(ARRAY(SELECT generate_series(1, 100000)::bigint), 3);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- k at the int4 limits is 22023 everywhere.
SELECT count(*) FROM recommender.homepage('alice', 2147483647);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM recommender.similar_products(1, 2147483647);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM recommender.cart(ARRAY[1]::bigint[], 2147483647);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM recommender.cart('alice', -2147483648);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM recommender.frequently_bought_together(1, 2147483647);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT recommender.homepage_json('alice', 2147483647);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Ids at the int8 limits are unknown products: no rows.
SELECT count(*) AS rows FROM recommender.similar_products(9223372036854775807, 3);
SELECT count(*) AS rows FROM recommender.frequently_bought_together(-9223372036854775808, 3);

-- NaN and infinite prices: refused by the catalogue's CHECK (23514) when written directly ...
INSERT INTO recommender.products (external_id, name, price) VALUES ('nan-1', 'x', 'NaN');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO recommender.products (external_id, name, price) VALUES ('inf-1', 'x', 'Infinity');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... and stored as NULL (unknown) when they come from a synced app table, whose write succeeds.
ALTER TABLE shop.items ALTER COLUMN cost TYPE numeric;
INSERT INTO shop.items VALUES ('nan-2', 'Mystery coffee', NULL, 'Coffee', 'NaN', 1),
                              ('inf-2', 'Priceless coffee', NULL, 'Coffee', '-Infinity', 1);
SELECT external_id, price FROM recommender.products WHERE external_id IN ('nan-2', 'inf-2') ORDER BY 1;
DELETE FROM shop.items WHERE sku IN ('nan-2', 'inf-2');
-- Weights and the clock reject NaN / garbage.
SET recommender.weight_content = 'NaN';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET recommender.weight_popularity = '-Infinity';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET recommender.as_of = 'not a time';
SELECT count(*) FROM recommender.homepage('alice', 3);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET recommender.as_of = '2024-03-01 00:00+00';

-- Emoji, right-to-left scripts, combining characters, zero-width and control characters.
-- (their lengths, not the texts: psql's display width of such text differs between majors)
SELECT length(t) AS chars, vector_dims(recommender.embed(t)) AS dims
  FROM unnest(ARRAY['☕️🫘 coffee 👩‍👩‍👧', 'קפה שחור', 'قهوة عربية', 'cafe' || U&'\0301', U&'zero\200Bwidth\FEFF', E'tab\tnew\nline']) t;
SELECT round((1 - (recommender.embed('café') <=> recommender.embed('cafe' || U&'\0301')))::numeric, 3) AS composed_vs_combining;
INSERT INTO recommender.products (external_id, name, category) VALUES ('uni-1', 'קפה ☕️ cafe' || U&'\0301', 'Coffee');
SELECT external_id, embedding IS NOT NULL AS embedded FROM recommender.products WHERE external_id = 'uni-1';
DELETE FROM recommender.products WHERE external_id = 'uni-1';
SELECT count(*) AS recs FROM recommender.homepage('👩‍👩‍👧', 3);

-- Nothing above changed the catalogue or lost an interaction (one tracked row was added).
SELECT (SELECT count(*) FROM recommender.products) - products AS products_delta,
       (SELECT count(*) FROM recommender.interactions) - interactions AS interactions_delta
  FROM counts_before;
DELETE FROM recommender.interactions WHERE user_id LIKE '%DELETE FROM%';
RESET recommender.as_of;
