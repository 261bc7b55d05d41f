-- Operations (0.3.0): deferred embedding and its queue, visibility views, warm-up, read-only
-- transactions, impression logging and recommendation performance, cart abandonment and email.
-- The queue worker, pg_cron and a streaming standby are in tests/operations.sh (own cluster).
SET recommender.as_of = '2024-03-01 00:00+00';
CREATE SCHEMA ops;
CREATE TABLE ops.items (sku text PRIMARY KEY, title text NOT NULL, body text, kind text, price numeric, qty integer);
INSERT INTO ops.items
SELECT 'ops-' || g, 'Ops product ' || g, 'Description of ops product ' || g, 'OpsCat' || (g % 4), 10 + g, 5
  FROM generate_series(1, 12) g;
SELECT recommender.sync_products('ops.items', id_column => 'sku', name_column => 'title', description_column => 'body',
                                 category_column => 'kind', price_column => 'price', stock_column => 'qty') AS synced;

-- Warm-up for a pooler's connect hook: the encoder, and the cross-encoder when one is installed.
SELECT model, loaded, warmup_ms >= 0 AS timed FROM recommender.warmup();

------------------------------------------------------------------------------------------------
-- Deferred embedding: writes only queue; process_queue() embeds.
------------------------------------------------------------------------------------------------
SET recommender.embedding_mode = deferred;
UPDATE ops.items SET title = title || ' (new)' WHERE sku IN ('ops-1', 'ops-2', 'ops-3', 'ops-4', 'ops-5');
SELECT count(*) AS queued FROM recommender.embedding_queue;
SELECT source, products, embedded, stale, pending, failing, last_error FROM recommender.sync_status WHERE source = 'ops.items';
SELECT external_id, queued, attempts, last_error FROM recommender.staleness WHERE source = 'ops.items' ORDER BY 1;
-- queued again before it is processed: one queue row, attempts start over
UPDATE ops.items SET price = price + 1 WHERE sku = 'ops-1';
SELECT count(*) AS queued FROM recommender.embedding_queue;
-- process_queue's NOTICEs report elapsed time, which varies: checked by tests/faults.sh instead
SET client_min_messages = warning;
CALL recommender.process_queue();
RESET client_min_messages;
SELECT count(*) AS queued FROM recommender.embedding_queue;
SELECT stale, pending FROM recommender.sync_status WHERE source = 'ops.items';
-- the stored vectors are those of the new texts
SELECT count(*) AS matching
  FROM recommender.products p
 WHERE p.source = 'ops.items'::regclass
   AND 1 - (p.embedding <=> recommender.embed(recommender.product_text(p.name, p.description, p.category, p.price::float8))) >= 0.9999;
-- a statement that does not change the embedded text queues nothing
UPDATE ops.items SET qty = 7 WHERE sku = 'ops-6';
SELECT count(*) AS queued FROM recommender.embedding_queue;

-- A failing batch is recorded and the rest goes on: a trigger refuses to store product ops-7's
-- vector. Its batch of 4 fails; the others are retried one at a time and succeed; ops-7 stays
-- queued with its error and a later retry time.
CREATE FUNCTION ops.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.external_id = 'ops-7' AND NEW.embedded_hash IS DISTINCT FROM OLD.embedded_hash THEN
        RAISE EXCEPTION 'ops-7 is poisoned';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE UPDATE ON recommender.products FOR EACH ROW EXECUTE FUNCTION ops.refuse();
UPDATE ops.items SET body = body || ' v2' WHERE sku IN ('ops-6', 'ops-7', 'ops-8', 'ops-9', 'ops-10', 'ops-11', 'ops-12');
SET recommender.queue_batch_size = 4;
SET client_min_messages = error;
CALL recommender.process_queue(retry_now => true);
CALL recommender.process_queue(retry_now => true);
RESET client_min_messages;
SELECT p.external_id, q.attempts, q.last_error, q.next_attempt_at > clock_timestamp() AS retry_later
  FROM recommender.embedding_queue q JOIN recommender.products p USING (product_id) ORDER BY 1;
SELECT source, stale, pending, failing, last_error FROM recommender.sync_status WHERE source = 'ops.items';
-- fixed: retried now, nothing left
DROP TRIGGER refuse ON recommender.products;
CALL recommender.process_queue(retry_now => true);
SELECT count(*) AS queued, (SELECT count(*) FROM recommender.staleness WHERE source = 'ops.items') AS stale
  FROM recommender.embedding_queue;
RESET recommender.queue_batch_size;
-- arguments
CALL recommender.process_queue(batch_size => 0);
SELECT * FROM recommender._process_queue_batch(20000);
-- deleting a queued product removes its queue row
UPDATE ops.items SET title = 'Ops product 12 (gone)' WHERE sku = 'ops-12';
DELETE FROM ops.items WHERE sku = 'ops-12';
SELECT count(*) AS queued FROM recommender.embedding_queue;
RESET recommender.embedding_mode;

-- In sync mode a write whose embedding fails is queued with the error (errors.sql shows the
-- WARNING); the queue retries it.
SET recommender.model_dir = '/nonexistent';
SET client_min_messages = error;
UPDATE ops.items SET title = 'Ops product 11 (renamed)' WHERE sku = 'ops-11';
RESET client_min_messages;
RESET recommender.model_dir;
SELECT p.external_id, q.attempts, q.last_error LIKE '%does not exist%' AS error_kept
  FROM recommender.embedding_queue q JOIN recommender.products p USING (product_id);
SET client_min_messages = warning;
CALL recommender.process_queue();
RESET client_min_messages;
SELECT count(*) AS queued FROM recommender.embedding_queue;

------------------------------------------------------------------------------------------------
-- Read-only transactions (a standby behaves the same; tests/operations.sh checks one)
------------------------------------------------------------------------------------------------
SELECT recommender.track('ops-ro', product_id, 'PURCHASE', occurred_at => '2024-02-20')
       > 0 AS tracked FROM recommender.products WHERE external_id = 'ops-2';
SELECT count(*) AS cached_profiles FROM recommender.user_profiles WHERE user_id = 'ops-ro';
BEGIN READ ONLY;
SELECT count(*) > 0 AS recommended FROM recommender.homepage('ops-ro', 5);
SELECT count(*) > 0 AS recommended FROM recommender.homepage('ops-nobody', 5);
SELECT count(*) > 0 AS recommended FROM recommender.similar_products((SELECT product_id FROM recommender.products WHERE external_id = 'ops-2'), 3);
SET LOCAL recommender.log_impressions = on;
SELECT jsonb_array_length(recommender.homepage_json('ops-ro', 3)->'recommendations') AS shown;
SELECT jsonb_array_length(recommender.homepage_json('ops-ro', 3)->'recommendations') AS shown_again_without_notice;
COMMIT;
SELECT count(*) AS cached_profiles, (SELECT count(*) FROM recommender.impressions WHERE user_id = 'ops-ro') AS impressions
  FROM recommender.user_profiles WHERE user_id = 'ops-ro';
BEGIN READ ONLY;
SELECT recommender.rebuild_user_profile('ops-ro');
ROLLBACK;
-- on a writable primary the profile is cached as before
SELECT count(*) > 0 AS recommended FROM recommender.homepage('ops-ro', 5);
SELECT count(*) AS cached_profiles FROM recommender.user_profiles WHERE user_id = 'ops-ro';

------------------------------------------------------------------------------------------------
-- Impressions and recommendation performance
------------------------------------------------------------------------------------------------
SET recommender.log_impressions = on;
CREATE TEMP TABLE responses AS
SELECT 'home' AS what, recommender.homepage_json('ops-ro', 4) AS r
UNION ALL
SELECT 'similar', recommender.similar_products_json((SELECT product_id FROM recommender.products WHERE external_id = 'ops-3'), 3);
RESET recommender.log_impressions;
SELECT i.context, count(*) AS impressions, min(i.position) AS first, max(i.position) AS last,
       bool_and(i.request_id = (SELECT r->>'request_id' FROM responses WHERE r->>'context' = i.context)) AS same_request_id
  FROM recommender.impressions i WHERE i.request_id IN (SELECT r->>'request_id' FROM responses) GROUP BY 1 ORDER BY 1;
-- logging is off by default
CREATE TEMP TABLE before AS SELECT count(*) AS n FROM recommender.impressions;
SELECT jsonb_array_length(recommender.homepage_json('ops-ro', 4)->'recommendations') AS shown,
       (SELECT count(*) FROM recommender.impressions) - (SELECT n FROM before) AS new_impressions;
-- a click on the homepage's second product, then a purchase of it within the attribution window,
-- and a purchase of the first product that was never clicked
SELECT recommender.track('ops-ro', (r->'recommendations'->1->>'product_id')::bigint, 'RECOMMENDATION_CLICK',
                         request_id => r->>'request_id', "position" => 2, occurred_at => '2024-03-01 00:00+00') > 0 AS clicked
  FROM responses WHERE what = 'home';
SELECT recommender.track('ops-ro', (r->'recommendations'->1->>'product_id')::bigint, 'PURCHASE', value => 19.50,
                         occurred_at => '2024-03-03 00:00+00') > 0 AS bought
  FROM responses WHERE what = 'home';
SELECT recommender.track('ops-ro', (r->'recommendations'->0->>'product_id')::bigint, 'PURCHASE', value => 5,
                         occurred_at => '2024-03-03 00:00+00') > 0 AS bought
  FROM responses WHERE what = 'home';
SELECT * FROM recommender.recommendation_performance WHERE day = '2024-03-01' AND context IN ('homepage', 'product') ORDER BY context;
-- outside a 1-day window the purchase is no conversion
SET recommender.attribution_days = 1;
SELECT context, clicks, conversions, attributed_revenue FROM recommender.recommendation_performance
 WHERE day = '2024-03-01' AND context = 'homepage';
RESET recommender.attribution_days;
-- record_impressions() for the set-returning functions; arguments
SELECT recommender.record_impressions('homepage', 'ops-x', ARRAY[1, 2, 3], 'req-fixed') AS request_id;
SELECT count(*) FROM recommender.impressions WHERE request_id = 'req-fixed';
SELECT recommender.record_impressions('', 'ops-x', ARRAY[1]);
SELECT recommender.record_impressions(repeat('c', 65), 'ops-x', ARRAY[1]);
SELECT recommender.record_impressions('homepage', 'ops-x', array_fill(1::bigint, ARRAY[10001]));

------------------------------------------------------------------------------------------------
-- Cart abandonment and email audiences
------------------------------------------------------------------------------------------------
-- ann: two products in the cart two days ago, one removed again: abandoned with one product.
-- ben: added, then bought: not abandoned. cy: added an hour ago: too recent for 1 day.
-- dee: abandoned but opted out.
INSERT INTO recommender.interactions (user_id, product_id, type, occurred_at)
SELECT v.u, p.product_id, v.t::recommender.interaction_type, v.at::timestamptz
  FROM (VALUES ('ann', 'ops-4', 'CART_ADD', '2024-02-27 10:00+00'), ('ann', 'ops-5', 'CART_ADD', '2024-02-27 10:05+00'),
               ('ann', 'ops-5', 'CART_REMOVE', '2024-02-27 10:06+00'),
               ('ben', 'ops-4', 'CART_ADD', '2024-02-26 09:00+00'), ('ben', 'ops-4', 'PURCHASE', '2024-02-26 09:10+00'),
               ('cy', 'ops-6', 'CART_ADD', '2024-02-29 23:00+00'),
               ('dee', 'ops-8', 'CART_ADD', '2024-02-20 08:00+00')) v(u, ext, t, at)
  JOIN recommender.products p ON p.external_id = v.ext;
INSERT INTO recommender.user_email_preferences (user_id, opted_out) VALUES ('dee', true), ('ann', false);
SELECT c.user_id, (SELECT array_agg(p.external_id ORDER BY p.external_id) FROM recommender.products p WHERE p.product_id = ANY(c.product_ids)) AS cart,
       c.cart_value, c.last_added_at, cardinality(c.recommended_product_ids) AS recommended,
       NOT (c.recommended_product_ids && c.product_ids) AS recommends_other_products
  FROM recommender.abandoned_carts(interval '1 day', 3) c;
SELECT user_id, cardinality(product_ids) AS in_cart FROM recommender.abandoned_carts(interval '0', 0)
 WHERE user_id IN ('ann', 'ben', 'cy', 'dee') ORDER BY 1;
-- one email to ann: it no longer appears (unless include_emailed), its send is logged as email
-- impressions, and a click on it counts for the 'email' context
INSERT INTO recommender.email_campaigns (name) VALUES ('cart reminder');
SELECT recommender.record_email_send(c.campaign_id, a.user_id, a.recommended_product_ids) IS NOT NULL AS sent
  FROM recommender.email_campaigns c, recommender.abandoned_carts(interval '1 day', 3) a WHERE c.name = 'cart reminder';
SELECT count(*) AS abandoned_not_emailed FROM recommender.abandoned_carts(interval '1 day', 3);
SELECT count(*) AS abandoned_all FROM recommender.abandoned_carts(interval '1 day', 3, include_emailed => true);
SELECT recommender.track('ann', s.product_ids[1], 'RECOMMENDATION_CLICK', request_id => s.request_id, "position" => 1) > 0 AS clicked
  FROM recommender.email_sends s WHERE s.user_id = 'ann';
SELECT context, requests, impressions, clicks FROM recommender.recommendation_performance
 WHERE context = 'email' AND day = '2024-03-01';
-- opted-out users cannot be sent to; bad arguments
SELECT recommender.record_email_send((SELECT campaign_id FROM recommender.email_campaigns), 'dee', ARRAY[1]::bigint[]);
SELECT recommender.record_email_send(-1, 'ann', ARRAY[1]::bigint[]);
SELECT * FROM recommender.abandoned_carts(interval '-1 day');
SELECT * FROM recommender.abandoned_carts(interval '1 day', 1001);

------------------------------------------------------------------------------------------------
-- Privileges of the new objects
------------------------------------------------------------------------------------------------
CREATE ROLE regress_ops_reader IN ROLE recommender_reader;
CREATE ROLE regress_ops_writer IN ROLE recommender_writer;
SET ROLE regress_ops_reader;
SELECT count(*) AS rows FROM recommender.warmup();
SELECT count(*) >= 0 AS readable FROM recommender.staleness;
SELECT recommender.record_impressions('homepage', 'ops-reader', ARRAY[1]) IS NOT NULL AS logged;
SELECT count(*) FROM recommender.impressions;
SELECT count(*) FROM recommender.abandoned_carts();
SET client_min_messages = warning;
CALL recommender.process_queue();
RESET client_min_messages;
RESET ROLE;
SET ROLE regress_ops_writer;
SET recommender.embedding_mode = deferred;
UPDATE recommender.products SET name = name || '!' WHERE external_id = 'ops-9';
SELECT count(*) AS queued FROM recommender.embedding_queue;
SET client_min_messages = warning;
CALL recommender.process_queue();
RESET client_min_messages;
SELECT count(*) >= 0 AS callable FROM recommender.abandoned_carts();
RESET ROLE;
RESET recommender.embedding_mode;
DROP ROLE regress_ops_reader;
DROP ROLE regress_ops_writer;
-- Deleting products that have interactions (clicks, purchases, carts) takes those along and
-- leaves the aggregates consistent (this failed in 0.2.0).
SELECT recommender.unsync_products('ops.items', delete_products => true) AS deleted;
SELECT count(*) AS interactions_left FROM recommender.interactions WHERE user_id IN ('ops-ro', 'ann', 'ben', 'cy', 'dee');
SELECT (SELECT count(*) FROM recommender.user_products u
          WHERE NOT EXISTS (SELECT FROM recommender.products p WHERE p.product_id = u.product_id)) AS orphan_user_products,
       (SELECT count(*) FROM (SELECT user_id, product_id, sum(w.weight) AS weight
                                FROM recommender.interactions JOIN recommender.interaction_weights w USING (type)
                               GROUP BY 1, 2) i
          FULL JOIN recommender.user_products u USING (user_id, product_id)
         WHERE abs(coalesce(i.weight, 0) - coalesce(u.weight, 0)) > 1e-9) AS user_products_differing_from_recount;
DROP SCHEMA ops CASCADE;
