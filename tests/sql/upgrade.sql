-- Upgrades: the previous release installs, gets data, and ALTER EXTENSION UPDATE brings it to the
-- current version keeping every row and embedding; the result equals a fresh install.
\set VERBOSITY terse
SET client_min_messages = warning;
-- Everything that defines the extension, one row per object (roles' grants included).
CREATE FUNCTION pg_temp.definition() RETURNS TABLE (kind text, object text, definition text)
LANGUAGE sql AS $$
SELECT 'function', p.oid::regprocedure::text,
       concat_ws(' | ', p.prokind, p.prosrc, p.probin, p.provolatile, p.proisstrict, p.prosecdef, p.proparallel,
                 p.proconfig::text, p.proacl::text, pg_get_function_result(p.oid), pg_get_function_arguments(p.oid),
                 obj_description(p.oid, 'pg_proc'))
  FROM pg_proc p WHERE p.pronamespace = 'recommender'::regnamespace
UNION ALL
SELECT 'relation', c.relname,
       concat_ws(' | ', c.relkind, c.relpersistence, c.relacl::text, c.reloptions::text, obj_description(c.oid, 'pg_class'),
                 CASE c.relkind WHEN 'v' THEN pg_get_viewdef(c.oid) WHEN 'i' THEN pg_get_indexdef(c.oid) END,
                 (SELECT string_agg(concat_ws(':', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                              a.attgenerated, a.attidentity, pg_get_expr(d.adbin, d.adrelid), a.attacl::text), ', '
                                    ORDER BY a.attnum)
                    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
  FROM pg_class c WHERE c.relnamespace = 'recommender'::regnamespace
UNION ALL
SELECT 'trigger', t.tgrelid::regclass || '.' || t.tgname, pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'recommender'::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'constraint', n.conrelid::regclass || '.' || n.conname, pg_get_constraintdef(n.oid)
  FROM pg_constraint n WHERE n.connamespace = 'recommender'::regnamespace
UNION ALL
SELECT 'type', t.typname, concat_ws(' | ', t.typacl::text,
       (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
  FROM pg_type t WHERE t.typnamespace = 'recommender'::regnamespace
UNION ALL
SELECT 'schema', n.nspname, n.nspacl::text FROM pg_namespace n WHERE n.nspname = 'recommender'
UNION ALL
SELECT 'extension', e.extname, concat_ws(' | ', e.extversion,
       (SELECT string_agg(c::regclass::text || ':' || coalesce(w, ''), ',' ORDER BY c::regclass::text)
          FROM unnest(e.extconfig, e.extcondition) u(c, w)))
  FROM pg_extension e WHERE e.extname = 'recommender'
$$;
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.definition();

DROP EXTENSION recommender CASCADE;
SELECT name, version, installed FROM pg_available_extension_versions WHERE name = 'recommender' ORDER BY 2;
CREATE EXTENSION recommender VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'recommender';
-- Data under the old version: products (embedded on insert) and interactions.
INSERT INTO recommender.products (external_id, name, description, category, price, stock)
VALUES ('u-1', 'Espresso beans', 'Dark roast, 1 kg', 'Coffee', 19.90, 10),
       ('u-2', 'Milk frother', 'Handheld, battery', 'Kitchen', 12.50, 3),
       ('u-3', 'Green tea', 'Sencha, 100 g', 'Tea', 7.00, NULL);
INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
SELECT 'zoe', product_id, 'PURCHASE', 'z-1', '2024-02-01' FROM recommender.products;
-- An item model built under 0.8.0, one link per row (0.9.0 keeps it one row per product).
ALTER EXTENSION recommender UPDATE TO '0.8.0';
INSERT INTO recommender.item_neighbors (product_id, neighbor_id, score)
SELECT a.product_id, b.product_id, CASE WHEN b.external_id = 'u-3' THEN -0.5 ELSE 0.25 END
  FROM recommender.products a, recommender.products b WHERE a.product_id <> b.product_id;
CREATE TEMP TABLE model_before AS SELECT * FROM recommender.item_neighbors;
CREATE TEMP TABLE before AS
SELECT p.product_id, p.external_id, p.embedding::text AS embedding, p.embedded_hash, p.text_hash,
       (SELECT count(*) FROM recommender.interactions i WHERE i.product_id = p.product_id) AS interactions,
       (SELECT count(*) FROM recommender.copurchase c WHERE c.product_a = p.product_id) AS pairs
  FROM recommender.products p;
-- A profile stored under 0.10.0, without the running sums of 0.11.0 (the library of this tree
-- runs on the older schema): the first call after the update rebuilds it with them.
ALTER EXTENSION recommender UPDATE TO '0.10.0';
SET recommender.as_of = '2024-03-01';
SELECT external_product_id FROM recommender.homepage('zoe', 2) ORDER BY 1;
-- The same under 0.16.0, before the item model's key on the candidates (0.17.0), computing them
-- afresh (0 seconds: never reused).
ALTER EXTENSION recommender UPDATE TO '0.16.0';
SET recommender.collaborative_cache_seconds = 0;
SELECT external_product_id FROM recommender.homepage('zoe', 2) ORDER BY 1;
RESET recommender.collaborative_cache_seconds;
RESET recommender.as_of;
-- Running sums stored under 0.18.0, before their check (0.19.0).
ALTER EXTENSION recommender UPDATE TO '0.18.0';
SELECT recommender.rebuild_user_profile('zoe') AS interactions;

ALTER EXTENSION recommender UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'recommender';
-- Every row and embedding is kept ...
SELECT count(*) AS products, count(*) FILTER (WHERE embedding IS NOT NULL) AS embedded FROM before;
SELECT count(*) AS changed_or_lost FROM before b
 WHERE NOT EXISTS (SELECT 1 FROM recommender.products p
                    WHERE p.product_id = b.product_id AND p.embedding::text = b.embedding
                      AND p.embedded_hash = b.embedded_hash AND p.text_hash = b.text_hash
                      AND (SELECT count(*) FROM recommender.interactions i WHERE i.product_id = p.product_id) = b.interactions
                      AND (SELECT count(*) FROM recommender.copurchase c WHERE c.product_a = p.product_id) = b.pairs);
-- ... and so is every link of the item model ...
SELECT count(*) AS links, (SELECT count(*) FROM recommender.item_model) AS products FROM recommender.item_neighbors;
SELECT count(*) AS changed_or_lost
  FROM (SELECT * FROM model_before EXCEPT SELECT * FROM recommender.item_neighbors) d;
-- ... the updated extension is the one a fresh install creates ...
SELECT 'fresh only' AS side, * FROM (SELECT * FROM fresh EXCEPT SELECT * FROM pg_temp.definition()) f
UNION ALL
SELECT 'upgraded only', * FROM (SELECT * FROM pg_temp.definition() EXCEPT SELECT * FROM fresh) u
ORDER BY 2, 3, 1;
-- ... and it works. The running sums stored under 0.18.0 have no check: they are updated
-- within the interval, and rebuilt with a check after it.
SELECT interaction_count, sums_check IS NULL AS unchecked FROM recommender.user_profiles WHERE user_id = 'zoe';
SELECT recommender.track('zoe', product_id, 'VIEW', occurred_at => '2024-02-02') > 0 AS tracked
  FROM recommender.products WHERE external_id = 'u-3';
SET recommender.as_of = '2024-03-01';
SELECT external_product_id FROM recommender.homepage('zoe', 2) ORDER BY 1;
SELECT interaction_count, pref_day IS NOT NULL AS has_sums, full_at IS NOT NULL AS rebuilt,
       sums_check IS NULL AS unchecked
  FROM recommender.user_profiles WHERE user_id = 'zoe';
-- the interval passed: sums without a check are rebuilt, and get one
UPDATE recommender.user_profiles SET full_at = now() - interval '2 hours' WHERE user_id = 'zoe';
SELECT recommender.track('zoe', product_id, 'VIEW', occurred_at => '2024-02-03') > 0 AS tracked
  FROM recommender.products WHERE external_id = 'u-1';
SELECT external_product_id FROM recommender.homepage('zoe', 2) ORDER BY 1;
SELECT interaction_count, full_at > now() - interval '1 minute' AS rebuilt, sums_check IS NULL AS unchecked
  FROM recommender.user_profiles WHERE user_id = 'zoe';
RESET recommender.as_of;
-- A backend keeps the plans of the pipeline's statements (src/pipeline/plans.rs). Dropping and
-- creating the extension in the same session re-plans them against the new tables.
SELECT count(*) AS similar FROM recommender.similar_products(
  (SELECT product_id FROM recommender.products WHERE external_id = 'u-1'), 2);
DROP EXTENSION recommender CASCADE;
CREATE EXTENSION recommender;
INSERT INTO recommender.products (external_id, name, description, category, price, stock)
VALUES ('r-1', 'Espresso beans', 'Dark roast, 1 kg', 'Coffee', 19.90, 10),
       ('r-2', 'Espresso cups', 'Porcelain, set of 2', 'Kitchen', 12.50, 3),
       ('r-3', 'Green tea', 'Sencha, 100 g', 'Tea', 7.00, 5);
INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
SELECT 'zoe', product_id, 'PURCHASE', 'z-2', '2024-02-01' FROM recommender.products WHERE external_id IN ('r-1', 'r-2');
SET recommender.as_of = '2024-03-01';
SELECT external_product_id FROM recommender.homepage('zoe', 2) ORDER BY 1;
SELECT external_product_id FROM recommender.similar_products(
  (SELECT product_id FROM recommender.products WHERE external_id = 'r-1'), 2) ORDER BY 1;
RESET recommender.as_of;
-- A profile marked for a rebuild by an UPDATE of its interactions before 0.21.0 kept its cache
-- key and was served until the user's next interaction: the update to 0.22.0 clears the key of
-- every marked profile, so the next call rebuilds it.
DROP EXTENSION recommender CASCADE;
CREATE EXTENSION recommender VERSION '0.20.0';
INSERT INTO recommender.products (external_id, name, description, category, price, stock)
VALUES ('y-1', 'Espresso beans', 'Dark roast, 1 kg', 'Coffee', 19.90, 10),
       ('y-2', 'Green tea', 'Sencha, 100 g', 'Tea', 7.00, 5);
INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
SELECT 'yann', product_id, 'PURCHASE', 'y-1', '2024-02-01' FROM recommender.products;
SET recommender.as_of = '2024-03-01';
SELECT count(*) AS shown FROM recommender.homepage('yann', 2);
UPDATE recommender.interactions SET quantity = 2 WHERE user_id = 'yann';
SELECT full_at IS NULL AS marked, weights_version IS NULL AS key_cleared
  FROM recommender.user_profiles WHERE user_id = 'yann';
ALTER EXTENSION recommender UPDATE;
SELECT full_at IS NULL AS marked, weights_version IS NULL AS key_cleared
  FROM recommender.user_profiles WHERE user_id = 'yann';
SELECT count(*) AS shown FROM recommender.homepage('yann', 2);
SELECT full_at IS NOT NULL AS rebuilt, weights_version IS NOT NULL AS keyed
  FROM recommender.user_profiles WHERE user_id = 'yann';
RESET recommender.as_of;
