-- recommender 0.2.0 -> 0.3.0 (released with 0.3.0; never edit after release)
--   * deferred embedding: recommender.embedding_mode, embedding_queue, process_queue(), the queue
--     worker (recommender.worker_databases); a failed sync embedding is queued, not only left stale
--   * sync_status gains pending/failing/last_error; new staleness view; warmup()
--   * impressions, record_impressions(), recommender.log_impressions for the JSON forms;
--     recommendation_performance is now per day and context with CTR, conversions and revenue
--   * cart abandonment and email: user_email_preferences, email_campaigns, email_sends,
--     record_email_send(), abandoned_carts()
--   * fix: deleting a product that has interactions failed (the aggregate triggers decremented
--     rows the cascade had already removed)
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.3.0'" to load this file. \quit

-- recommender.warmup() (Rust)
CREATE FUNCTION recommender."warmup"() RETURNS TABLE (
	"model" TEXT,  /* String */
	"loaded" bool,  /* bool */
	"warmup_ms" double precision  /* f64 */
)
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'warmup_wrapper';

------------------------------------------------------------------------------------------------
-- Deferred embedding: the queue and its drain (README "Deferred embedding")
------------------------------------------------------------------------------------------------
-- Products waiting for the model: changed while recommender.embedding_mode = deferred, or changed
-- in sync mode while the model could not run. A row leaves when its product is embedded; a failed
-- one stays with its error and is retried later, one product at a time.
CREATE TABLE recommender.embedding_queue (
    product_id      bigint PRIMARY KEY REFERENCES recommender.products ON DELETE CASCADE,
    enqueued_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts        integer NOT NULL DEFAULT 0,             -- failed embedding attempts so far
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    last_error      text,
    last_error_at   timestamptz
);
CREATE INDEX embedding_queue_due ON recommender.embedding_queue (attempts, enqueued_at, next_attempt_at);
COMMENT ON TABLE recommender.embedding_queue IS
    'Products waiting to be (re-)embedded; drained by the queue worker or CALL recommender.process_queue().';
SELECT pg_catalog.pg_extension_config_dump('recommender.embedding_queue', '');

-- (Re-)queues products; a product queued again starts over (its new text may fix an old error).
CREATE FUNCTION recommender._enqueue(ids bigint[], error text) RETURNS void
LANGUAGE sql VOLATILE
AS $$
INSERT INTO recommender.embedding_queue AS q (product_id, last_error, last_error_at)
SELECT u.id, error, CASE WHEN error IS NOT NULL THEN clock_timestamp() END
  FROM unnest(ids) AS u(id)
 ORDER BY 1
    ON CONFLICT (product_id) DO UPDATE
   SET enqueued_at = clock_timestamp(), attempts = 0, next_attempt_at = '-infinity',
       last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at
$$;

-- One unit of queue work, in the caller's transaction: up to batch_size new products (NULL:
-- recommender.queue_batch_size), else one product whose earlier attempt failed and is due again.
-- Queue rows and products are locked with SKIP LOCKED, so concurrent drains (worker, process_queue,
-- pg_cron) split the work, and a product an app transaction is still writing waits for the next
-- round instead of blocking (or deadlocking with) that transaction. A failure is recorded on the
-- batch's rows (attempts, error, next attempt after recommender.queue_retry_seconds, doubling per
-- failure, at most 1 hour) and the function returns normally; cancel and timeouts propagate.
CREATE FUNCTION recommender._process_queue_batch(batch_size integer, OUT processed integer, OUT failed integer)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    n     integer := coalesce(batch_size, current_setting('recommender.queue_batch_size', true)::integer, 64);
    retry interval := coalesce(nullif(current_setting('recommender.queue_retry_seconds', true), ''), '30s')::interval;
    ids   bigint[];
BEGIN
    processed := 0;
    failed := 0;
    IF n < 1 OR n > 10000 THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and 10000, got %', n
            USING ERRCODE = 'invalid_parameter_value', HINT = 'NULL uses recommender.queue_batch_size (64).';
    END IF;
    SELECT array_agg(d.product_id ORDER BY d.product_id) INTO ids
      FROM (SELECT q.product_id
              FROM recommender.embedding_queue q JOIN recommender.products p USING (product_id)
             WHERE q.attempts = 0
             ORDER BY q.enqueued_at, q.product_id
             LIMIT n
               FOR UPDATE OF q SKIP LOCKED
               FOR NO KEY UPDATE OF p SKIP LOCKED) d;
    IF ids IS NULL THEN
        SELECT array_agg(d.product_id) INTO ids
          FROM (SELECT q.product_id
                  FROM recommender.embedding_queue q JOIN recommender.products p USING (product_id)
                 WHERE q.attempts > 0 AND q.next_attempt_at <= clock_timestamp()
                 ORDER BY q.next_attempt_at, q.product_id
                 LIMIT 1
                   FOR UPDATE OF q SKIP LOCKED
                   FOR NO KEY UPDATE OF p SKIP LOCKED) d;
    END IF;
    IF ids IS NULL THEN
        RETURN;
    END IF;
    BEGIN
        PERFORM recommender._reembed(ids, false);
        DELETE FROM recommender.embedding_queue q WHERE q.product_id = ANY(ids);
        processed := cardinality(ids);
    EXCEPTION WHEN OTHERS THEN
        failed := cardinality(ids);
        UPDATE recommender.embedding_queue q
           SET attempts = q.attempts + 1, last_error = SQLERRM, last_error_at = clock_timestamp(),
               next_attempt_at = clock_timestamp() + least(retry * power(2, least(q.attempts, 12)), interval '1 hour')
         WHERE q.product_id = ANY(ids);
        RAISE WARNING 'recommender: % queued product(s) not embedded (retried after % or later): %', failed, retry, SQLERRM;
    END;
END
$$;

-- Drains the queue now: every product due, committing after each batch, with progress NOTICEs.
-- For databases without the queue worker; pg_cron can run it on a schedule.
CREATE PROCEDURE recommender.process_queue(batch_size integer DEFAULT NULL, retry_now boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    r          record;
    total      bigint;
    done       bigint := 0;
    bad        bigint := 0;
    started    timestamptz := clock_timestamp();
    last_note  timestamptz := clock_timestamp();
    secs       double precision;
BEGIN
    IF batch_size IS NOT NULL AND (batch_size < 1 OR batch_size > 10000) THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and 10000, got %', batch_size
            USING ERRCODE = 'invalid_parameter_value', HINT = 'NULL uses recommender.queue_batch_size (64).';
    END IF;
    IF coalesce(retry_now, false) THEN
        UPDATE recommender.embedding_queue q SET next_attempt_at = '-infinity' WHERE q.attempts > 0;
        COMMIT;
    END IF;
    SELECT count(*) INTO total FROM recommender.embedding_queue q
     WHERE q.attempts = 0 OR q.next_attempt_at <= clock_timestamp();
    RAISE NOTICE 'recommender: % queued product(s) due', total;
    LOOP
        SELECT * INTO r FROM recommender._process_queue_batch(batch_size);
        EXIT WHEN r.processed + r.failed = 0;
        done := done + r.processed;
        bad := bad + r.failed;
        COMMIT;
        IF clock_timestamp() - last_note >= interval '2 seconds' THEN
            secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
            RAISE NOTICE 'recommender: processed %/% queued products (% products/s)', done, total, round((done / secs)::numeric, 1);
            last_note := clock_timestamp();
        END IF;
    END LOOP;
    secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
    IF bad > 0 THEN
        RAISE NOTICE 'recommender: processed % queued product(s) in % s; % attempt(s) failed and stay queued (recommender.staleness)',
            done, round(secs::numeric, 1), bad;
    ELSE
        RAISE NOTICE 'recommender: processed % queued product(s) in % s', done, round(secs::numeric, 1);
    END IF;
END
$$;
COMMENT ON PROCEDURE recommender.process_queue(integer, boolean) IS
    'Embeds every queued product that is due, committing per batch; retry_now => true retries failed ones at once. Call it outside an explicit transaction block.';

-- Embeds the rows of a statement whose text changed, in batches, before the statement returns
-- (recommender.embedding_mode = sync), or only queues them (deferred) for the queue worker or
-- process_queue(). With recommender.enable_sync_embedding = off they are only left stale, for
-- refresh_embeddings(). When the model cannot run (files missing or refused), the write still
-- succeeds: the rows are queued with the error, a WARNING says so, and the queue retries them.
-- Nothing the app wrote is lost.
CREATE OR REPLACE FUNCTION recommender._products_embed_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    IF NOT coalesce(current_setting('recommender.enable_sync_embedding', true), 'on')::boolean THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(product_id ORDER BY product_id) INTO ids
      FROM new_rows
     WHERE embedding IS NULL OR embedded_hash IS DISTINCT FROM text_hash;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    IF coalesce(current_setting('recommender.embedding_mode', true), 'sync') = 'deferred' THEN
        PERFORM recommender._enqueue(ids, NULL);
        RETURN NULL;
    END IF;
    BEGIN
        PERFORM recommender._reembed(ids, false);
    EXCEPTION WHEN undefined_file OR external_routine_exception OR invalid_parameter_value THEN
        PERFORM recommender._enqueue(ids, SQLERRM);
        RAISE WARNING 'recommender: % product(s) saved but not embedded: %', cardinality(ids), SQLERRM
            USING HINT = 'They wait in recommender.embedding_queue (see recommender.staleness); fix the cause, then CALL recommender.process_queue(retry_now => true), or let the queue worker retry them.';
        RETURN NULL;
    END;
    -- products queued earlier and embedded now leave the queue
    IF EXISTS (SELECT FROM recommender.embedding_queue) THEN
        DELETE FROM recommender.embedding_queue q WHERE q.product_id = ANY(ids);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE PROCEDURE recommender.refresh_embeddings(batch_size integer DEFAULT 256, force boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    total      bigint;
    done       bigint := 0;
    ids        bigint[];
    last_id    bigint := 0;
    started    timestamptz := clock_timestamp();
    last_note  timestamptz := clock_timestamp();
    secs       double precision;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 10000 THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and 10000, got %', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The default of 256 commits every few seconds.';
    END IF;
    force := coalesce(force, false);
    SELECT count(*) INTO total FROM recommender.products p
     WHERE force OR p.embedding IS NULL OR p.embedded_hash IS DISTINCT FROM p.text_hash;
    RAISE NOTICE 'recommender: % product(s) to embed', total;
    LOOP
        SELECT array_agg(product_id ORDER BY product_id) INTO ids
          FROM (SELECT p.product_id FROM recommender.products p
                 WHERE p.product_id > last_id
                   AND (force OR p.embedding IS NULL OR p.embedded_hash IS DISTINCT FROM p.text_hash)
                 ORDER BY p.product_id
                 LIMIT batch_size) s;
        EXIT WHEN ids IS NULL;
        done := done + recommender._reembed(ids, force);
        DELETE FROM recommender.embedding_queue q WHERE q.product_id = ANY(ids);
        last_id := ids[cardinality(ids)];
        COMMIT;
        IF clock_timestamp() - last_note >= interval '2 seconds' THEN
            secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
            RAISE NOTICE 'recommender: embedded %/% products (% products/s)', done, total, round((done / secs)::numeric, 1);
            last_note := clock_timestamp();
        END IF;
    END LOOP;
    secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
    RAISE NOTICE 'recommender: embedded %/% products in % s (% products/s)',
        done, total, round(secs::numeric, 1), round((done / secs)::numeric, 1);
END
$$;

CREATE OR REPLACE VIEW recommender.sync_status AS
SELECT coalesce(coalesce(s.source, p.source)::text, '(direct)') AS source,
       s.source IS NOT NULL                          AS synced,
       coalesce(p.products, 0)                       AS products,
       coalesce(p.embedded, 0)                       AS embedded,
       coalesce(p.stale, 0)                          AS stale,
       coalesce(p.out_of_stock, 0)                   AS out_of_stock,
       p.last_change,
       p.last_embedded,
       s.synced_at,
       coalesce(q.pending, 0)                        AS pending,
       coalesce(q.failing, 0)                        AS failing,
       q.last_error,
       q.last_error_at
  FROM recommender.sync_sources s
  FULL JOIN (SELECT source,
                    count(*)                                                                       AS products,
                    count(*) FILTER (WHERE embedding IS NOT NULL AND embedded_hash = text_hash)    AS embedded,
                    count(*) FILTER (WHERE embedding IS NULL OR embedded_hash IS DISTINCT FROM text_hash) AS stale,
                    count(*) FILTER (WHERE NOT in_stock)                                           AS out_of_stock,
                    max(updated_at)                                                                AS last_change,
                    max(embedded_at)                                                               AS last_embedded
               FROM recommender.products
              GROUP BY source) p ON p.source = s.source
  LEFT JOIN (SELECT pr.source,
                    count(*)                                 AS pending,
                    count(*) FILTER (WHERE q.attempts > 0)   AS failing,
                    (array_agg(q.last_error ORDER BY q.last_error_at DESC)
                         FILTER (WHERE q.last_error IS NOT NULL))[1] AS last_error,
                    max(q.last_error_at)                     AS last_error_at
               FROM recommender.embedding_queue q
               JOIN recommender.products pr USING (product_id)
              GROUP BY pr.source) q ON q.source IS NOT DISTINCT FROM coalesce(s.source, p.source);
COMMENT ON VIEW recommender.sync_status IS
    'Per source table: products in the catalogue, embedded, stale (waiting for the model), out of stock; queued (pending), failing, and the newest queue error.';

-- Every stale product: since when, whether it is queued, and why it failed if it did.
CREATE VIEW recommender.staleness AS
SELECT p.product_id,
       p.external_id,
       coalesce(p.source::text, '(direct)')               AS source,
       p.name,
       p.updated_at                                       AS changed_at,
       clock_timestamp() - p.updated_at                   AS stale_for,
       q.product_id IS NOT NULL                           AS queued,
       coalesce(q.attempts, 0)                            AS attempts,
       q.next_attempt_at,
       q.last_error,
       q.last_error_at
  FROM recommender.products p
  LEFT JOIN recommender.embedding_queue q USING (product_id)
 WHERE p.embedding IS NULL OR p.embedded_hash IS DISTINCT FROM p.text_hash;
COMMENT ON VIEW recommender.staleness IS
    'Products whose embedding is missing or older than their text: how long, queued or not, failed attempts and the last error.';

-- The response object; with recommender.log_impressions on, its products are also logged as
-- impressions under its request_id.
CREATE OR REPLACE FUNCTION recommender._response(context text, user_id text, recs jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rid text := gen_random_uuid()::text;
BEGIN
    IF coalesce(current_setting('recommender.log_impressions', true), 'off')::boolean
       AND jsonb_array_length(coalesce(recs, '[]'::jsonb)) > 0 THEN
        PERFORM recommender.record_impressions(context, user_id,
                    ARRAY(SELECT (e->>'product_id')::bigint FROM jsonb_array_elements(recs) WITH ORDINALITY AS t(e, n) ORDER BY t.n),
                    rid);
    END IF;
    RETURN jsonb_build_object('recommendations', coalesce(recs, '[]'::jsonb), 'request_id', rid,
                              'context', context, 'user_id', user_id, 'generated_at', recommender.clock());
END
$$;

-- deleting a product with interactions no longer fails in the aggregate triggers
-- Removals (sign -1) skip rows whose product is gone: deleting a product deletes its aggregates
-- by cascade before the interactions' statement trigger runs, so there is nothing to decrement.
CREATE OR REPLACE FUNCTION recommender._aggregate_sql(rel text, sign integer) RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
SELECT ARRAY[
  format($q$
    INSERT INTO recommender.product_daily AS d (product_id, day, weight, purchases)
    SELECT r.product_id, (r.occurred_at AT TIME ZONE 'UTC')::date,
           %2$s * sum(greatest(w.weight, 0)), %2$s * count(*) FILTER (WHERE r.type = 'PURCHASE')
      FROM %1$s r JOIN recommender.interaction_weights w ON w.type = r.type%3$s
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (product_id, day) DO UPDATE
       SET weight = d.weight + EXCLUDED.weight, purchases = d.purchases + EXCLUDED.purchases$q$, rel, sign, live),
  format($q$
    INSERT INTO recommender.user_products AS u (user_id, product_id, weight, purchases, cart, first_at, last_at)
    SELECT r.user_id, r.product_id, %2$s * sum(w.weight),
           %2$s * count(*) FILTER (WHERE r.type = 'PURCHASE'),
           %2$s * coalesce(sum(CASE r.type WHEN 'CART_ADD' THEN r.quantity WHEN 'CART_REMOVE' THEN -r.quantity END), 0),
           min(r.occurred_at), max(r.occurred_at)
      FROM %1$s r JOIN recommender.interaction_weights w ON w.type = r.type%3$s
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, product_id) DO UPDATE
       SET weight = u.weight + EXCLUDED.weight, purchases = u.purchases + EXCLUDED.purchases,
           cart = u.cart + EXCLUDED.cart,
           first_at = least(u.first_at, EXCLUDED.first_at), last_at = greatest(u.last_at, EXCLUDED.last_at)$q$, rel, sign, live)
]
  FROM (SELECT CASE WHEN sign < 0
                    THEN ' JOIN recommender.products p ON p.product_id = r.product_id' ELSE '' END AS live) l
$$;

-- Co-purchase pairs gained (sign +1) or lost (-1) by a statement: a pair counts once per basket,
-- so only pairs that did not (or no longer) exist in the basket without the changed rows count.
-- Removals skip products that are gone (their pairs went by cascade).
CREATE OR REPLACE FUNCTION recommender._copurchase_sql(rel text, sign integer) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
SELECT format($q$
    WITH changed AS (
        SELECT DISTINCT basket_key, product_id FROM %1$s r WHERE type = 'PURCHASE'%3$s),
    others AS (   -- the same baskets without the changed rows
        SELECT DISTINCT i.basket_key, i.product_id
          FROM recommender.interactions i
         WHERE i.type = 'PURCHASE' AND i.basket_key IN (SELECT basket_key FROM changed)
           AND NOT EXISTS (SELECT 1 FROM %1$s n WHERE n.interaction_id = i.interaction_id)),
    after AS (    -- the baskets with the changed rows; kept = also there without them
        SELECT basket_key, product_id, bool_or(kept) AS kept
          FROM (SELECT basket_key, product_id, false AS kept FROM changed
                UNION ALL SELECT basket_key, product_id, true FROM others) u
         GROUP BY 1, 2)
    INSERT INTO recommender.copurchase AS c (product_a, product_b, baskets)
    SELECT a.product_id, b.product_id, %2$s * count(*)
      FROM after a JOIN after b ON a.basket_key = b.basket_key AND a.product_id <> b.product_id
     WHERE NOT (a.kept AND b.kept)      -- a pair both sides of which were already there is not new
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (product_a, product_b) DO UPDATE SET baskets = c.baskets + EXCLUDED.baskets$q$, rel, sign,
              CASE WHEN sign < 0
                   THEN ' AND EXISTS (SELECT 1 FROM recommender.products p WHERE p.product_id = r.product_id)' ELSE '' END)
$$;

-- recommendation_performance changes shape (per day and context); its old columns are gone
DROP VIEW recommender.recommendation_performance;

------------------------------------------------------------------------------------------------
-- Impressions and recommendation performance (README "Recommendation performance")
------------------------------------------------------------------------------------------------
-- What was shown, one row per product of a logged response (recommender.log_impressions, or
-- record_impressions() for the set-returning functions and other channels).
CREATE TABLE recommender.impressions (
    impression_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id    text NOT NULL,
    context       text NOT NULL CHECK (context <> '' AND length(context) <= 64),
    user_id       text,
    product_id    bigint NOT NULL,          -- no foreign key: history outlives the catalogue row
    position      integer NOT NULL,
    shown_at      timestamptz NOT NULL DEFAULT recommender.clock()
);
CREATE INDEX impressions_request ON recommender.impressions (request_id);
CREATE INDEX impressions_shown ON recommender.impressions (shown_at);
SELECT pg_catalog.pg_extension_config_dump('recommender.impressions', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.impressions_impression_id_seq', '');
-- clicks and purchases that carry a request id (the performance view starts from them)
CREATE INDEX interactions_request ON recommender.interactions (request_id) WHERE request_id IS NOT NULL;

-- Logs the products of one response, in order (position 1 first), and returns its request id
-- (a new uuid when request_id is NULL). SECURITY DEFINER: readers log what they show but cannot
-- read the log. On a standby or in a read-only transaction it logs nothing and says so once per
-- session (NOTICE): recommendations keep working there.
CREATE FUNCTION recommender.record_impressions(context text, user_id text, product_ids bigint[], request_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rid text := coalesce(record_impressions.request_id, gen_random_uuid()::text);
BEGIN
    IF record_impressions.context IS NULL OR record_impressions.context = '' OR length(record_impressions.context) > 64 THEN
        RAISE EXCEPTION 'recommender: context must be a non-empty text of at most 64 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The built-in contexts are homepage, product, cart, frequently_bought_together and email.';
    END IF;
    IF cardinality(product_ids) > 10000 THEN
        RAISE EXCEPTION 'recommender: at most 10000 product ids per response, got %', cardinality(product_ids)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean THEN
        IF current_setting('recommender_session.impressions_skipped', true) IS DISTINCT FROM 'on' THEN
            RAISE NOTICE 'recommender: impressions are not logged on a standby or in a read-only transaction'
                USING HINT = 'Recommendations are unaffected. Log impressions on the primary, or turn recommender.log_impressions off here.';
            PERFORM set_config('recommender_session.impressions_skipped', 'on', false);
        END IF;
        RETURN rid;
    END IF;
    INSERT INTO recommender.impressions (request_id, context, user_id, product_id, position)
    SELECT rid, record_impressions.context, record_impressions.user_id, u.id, u.n
      FROM unnest(product_ids) WITH ORDINALITY AS u(id, n)
     WHERE u.id IS NOT NULL;
    RETURN rid;
END
$$;
COMMENT ON FUNCTION recommender.record_impressions(text, text, bigint[], text) IS
    'Logs the products one response showed (in position order) under a request id, which it returns; a no-op with a NOTICE on a standby.';

-- Per day and context: what was shown, clicked and bought. A click is a RECOMMENDATION_CLICK
-- interaction carrying the response's request_id; its context is the logged request's, or
-- '(not logged)'. A conversion is a click followed, within recommender.attribution_days, by a
-- PURCHASE of the same product by the same user; each purchase is attributed to the latest such
-- click, and counts on that click's day with its value as revenue.
CREATE VIEW recommender.recommendation_performance AS
WITH req AS (
    SELECT i.request_id, min(i.context) AS context
      FROM recommender.impressions i
     GROUP BY i.request_id
), shown AS (
    SELECT (i.shown_at AT TIME ZONE 'UTC')::date AS day, i.context,
           count(DISTINCT i.request_id) AS requests, count(*) AS impressions
      FROM recommender.impressions i
     GROUP BY 1, 2
), clicks AS (
    SELECT c.interaction_id, c.user_id, c.product_id, c.occurred_at,
           (c.occurred_at AT TIME ZONE 'UTC')::date AS day,
           coalesce(r.context, '(not logged)') AS context
      FROM recommender.interactions c
      LEFT JOIN req r ON r.request_id = c.request_id
     WHERE c.request_id IS NOT NULL AND c.type = 'RECOMMENDATION_CLICK'
), attributed AS (
    SELECT DISTINCT ON (p.interaction_id) k.interaction_id AS click_id, coalesce(p.value, 0) AS value
      FROM clicks k
      JOIN recommender.interactions p
        ON p.user_id = k.user_id AND p.product_id = k.product_id AND p.type = 'PURCHASE'
       AND p.occurred_at >= k.occurred_at
       AND p.occurred_at < k.occurred_at
           + make_interval(days => coalesce(nullif(current_setting('recommender.attribution_days', true), ''), '7')::integer)
     ORDER BY p.interaction_id, k.occurred_at DESC, k.interaction_id DESC
), clicked AS (
    SELECT k.day, k.context, count(*) AS clicks, count(a.click_id) AS conversions,
           coalesce(sum(a.revenue), 0) AS revenue
      FROM clicks k
      LEFT JOIN (SELECT click_id, sum(value) AS revenue FROM attributed GROUP BY click_id) a
             ON a.click_id = k.interaction_id
     GROUP BY 1, 2
)
SELECT coalesce(s.day, c.day)                                    AS day,
       coalesce(s.context, c.context)                            AS context,
       coalesce(s.requests, 0)                                   AS requests,
       coalesce(s.impressions, 0)                                AS impressions,
       coalesce(c.clicks, 0)                                     AS clicks,
       round(c.clicks::numeric / nullif(s.impressions, 0), 4)    AS ctr,
       coalesce(c.conversions, 0)                                AS conversions,
       round(c.conversions::numeric / nullif(c.clicks, 0), 4)    AS conversion_rate,
       coalesce(c.revenue, 0)                                    AS attributed_revenue
  FROM shown s
  FULL JOIN clicked c ON c.day = s.day AND c.context = s.context;
COMMENT ON VIEW recommender.recommendation_performance IS
    'Per day and context: requests, impressions, clicks, CTR, conversions (purchase of the clicked product within recommender.attribution_days), conversion rate, attributed revenue.';

------------------------------------------------------------------------------------------------
-- Cart abandonment and email audiences (README "Cart abandonment and email")
------------------------------------------------------------------------------------------------
CREATE TABLE recommender.user_email_preferences (
    user_id    text PRIMARY KEY CHECK (user_id <> ''),
    opted_out  boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recommender.user_email_preferences IS
    'Per user: opted out of marketing email. Opted-out users are never in abandoned_carts() and cannot be sent to.';

CREATE TABLE recommender.email_campaigns (
    campaign_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    kind        text NOT NULL DEFAULT 'cart_abandonment',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One email sent to one user: its products and the request id its links carry. Each send is
-- also logged as impressions (context 'email'), so its clicks and conversions appear in
-- recommendation_performance.
CREATE TABLE recommender.email_sends (
    send_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES recommender.email_campaigns ON DELETE CASCADE,
    user_id     text NOT NULL CHECK (user_id <> ''),
    request_id  text NOT NULL UNIQUE,
    product_ids bigint[] NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT recommender.clock()
);
CREATE INDEX email_sends_user ON recommender.email_sends (user_id, sent_at);
SELECT pg_catalog.pg_extension_config_dump('recommender.user_email_preferences', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.email_campaigns', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.email_campaigns_campaign_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.email_sends', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.email_sends_send_id_seq', '');
-- cart events per user (abandoned_carts)
CREATE INDEX interactions_cart ON recommender.interactions (user_id, occurred_at)
    WHERE type IN ('CART_ADD', 'CART_REMOVE');

-- Records one email of a campaign to a user and returns the request id for its links
-- (track(..., 'RECOMMENDATION_CLICK', request_id => ...)). Opted-out users: 22023, nothing recorded.
CREATE FUNCTION recommender.record_email_send(campaign_id bigint, user_id text, product_ids bigint[])
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rid text := gen_random_uuid()::text;
BEGIN
    IF record_email_send.campaign_id IS NULL OR record_email_send.user_id IS NULL OR record_email_send.product_ids IS NULL THEN
        RAISE EXCEPTION 'recommender: campaign_id, user_id and product_ids must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM recommender.email_campaigns c WHERE c.campaign_id = record_email_send.campaign_id) THEN
        RAISE EXCEPTION 'recommender: email campaign % does not exist', record_email_send.campaign_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'INSERT INTO recommender.email_campaigns (name) VALUES (...) RETURNING campaign_id.';
    END IF;
    IF EXISTS (SELECT FROM recommender.user_email_preferences e WHERE e.user_id = record_email_send.user_id AND e.opted_out) THEN
        RAISE EXCEPTION 'recommender: user % opted out of email', record_email_send.user_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'recommender.abandoned_carts() leaves opted-out users out.';
    END IF;
    INSERT INTO recommender.email_sends (campaign_id, user_id, request_id, product_ids)
    VALUES (record_email_send.campaign_id, record_email_send.user_id, rid, record_email_send.product_ids);
    PERFORM recommender.record_impressions('email', record_email_send.user_id, record_email_send.product_ids, rid);
    RETURN rid;
END
$$;
COMMENT ON FUNCTION recommender.record_email_send(bigint, text, bigint[]) IS
    'Records an email send (its products are logged as impressions, context email) and returns the request id its links carry.';

-- Users whose cart has products added at least older_than before the clock and not bought since:
-- a product is in the cart when its last CART_ADD is newer than any CART_REMOVE or PURCHASE of it
-- and than the user's last PURCHASE of anything. Opted-out users are left out, and so are users
-- already emailed since their last cart addition (unless include_emailed). Each row carries the
-- cart's value and k cart recommendations (recommender.cart). SECURITY DEFINER: it reads every
-- user's interactions; granted to recommender_writer only.
CREATE FUNCTION recommender.abandoned_carts(older_than interval DEFAULT '1 day', k integer DEFAULT 5,
                                            include_emailed boolean DEFAULT false)
RETURNS TABLE (user_id text, product_ids bigint[], cart_value numeric, last_added_at timestamptz,
               recommended_product_ids bigint[])
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz := recommender.clock();
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'recommender: older_than must be a non-negative interval'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example abandoned_carts(interval ''2 hours'').';
    END IF;
    IF k IS NULL OR k < 0 OR k > 1000 THEN
        RAISE EXCEPTION 'recommender: k must be between 0 and 1000, got %', coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'k = 0 returns no recommendations.';
    END IF;
    RETURN QUERY
    WITH users AS (
        SELECT DISTINCT c.user_id FROM recommender.interactions c
         WHERE c.type = 'CART_ADD' AND c.occurred_at <= t
    ), carts AS (
        SELECT u.user_id, array_agg(e.product_id ORDER BY e.occurred_at, e.product_id) AS ids, max(e.occurred_at) AS last_add
          FROM users u
          CROSS JOIN LATERAL (
                SELECT DISTINCT ON (i.product_id) i.product_id, i.type, i.occurred_at
                  FROM recommender.interactions i
                 WHERE i.user_id = u.user_id AND i.occurred_at <= t
                   AND i.type IN ('CART_ADD', 'CART_REMOVE', 'PURCHASE')
                 ORDER BY i.product_id, i.occurred_at DESC, i.interaction_id DESC) e
         WHERE e.type = 'CART_ADD'
           AND NOT EXISTS (SELECT FROM recommender.interactions b
                            WHERE b.user_id = u.user_id AND b.type = 'PURCHASE'
                              AND b.occurred_at > e.occurred_at AND b.occurred_at <= t)
         GROUP BY u.user_id
    )
    SELECT c.user_id, c.ids,
           (SELECT sum(p.price) FROM recommender.products p WHERE p.product_id = ANY(c.ids)),
           c.last_add,
           CASE WHEN k > 0
                THEN ARRAY(SELECT r.product_id FROM recommender.cart(c.ids, k) r ORDER BY r.position)
                ELSE '{}'::bigint[] END
      FROM carts c
     WHERE c.last_add <= t - older_than
       AND NOT EXISTS (SELECT FROM recommender.user_email_preferences e WHERE e.user_id = c.user_id AND e.opted_out)
       AND (coalesce(include_emailed, false)
            OR NOT EXISTS (SELECT FROM recommender.email_sends s WHERE s.user_id = c.user_id AND s.sent_at >= c.last_add))
     ORDER BY c.last_add, c.user_id;
END
$$;
COMMENT ON FUNCTION recommender.abandoned_carts(interval, integer, boolean) IS
    'Users with products in the cart for at least older_than (clock) and no purchase since, not opted out, not emailed since; with k cart recommendations.';

-- New routines: nothing for PUBLIC; the re-created view keeps its reader grant
REVOKE ALL ON ALL ROUTINES IN SCHEMA recommender FROM PUBLIC;
GRANT SELECT ON recommender.recommendation_performance TO recommender_reader;

-- Operations (0.3.0). Reader: warm-up, the staleness view, logging what it shows. Writer: the
-- embedding queue (its triggers queue products as the writing role), the email audience.
GRANT EXECUTE ON FUNCTION
    recommender.warmup(), recommender.record_impressions(text, text, bigint[], text)
TO recommender_reader;
GRANT SELECT ON recommender.staleness TO recommender_reader;
GRANT EXECUTE ON FUNCTION
    recommender._enqueue(bigint[], text), recommender._process_queue_batch(integer),
    recommender.abandoned_carts(interval, integer, boolean),
    recommender.record_email_send(bigint, text, bigint[])
TO recommender_writer;
GRANT EXECUTE ON PROCEDURE recommender.process_queue(integer, boolean) TO recommender_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON recommender.embedding_queue, recommender.user_email_preferences,
                                        recommender.email_campaigns TO recommender_writer;
GRANT SELECT, INSERT ON recommender.email_sends TO recommender_writer;
GRANT SELECT ON recommender.impressions TO recommender_writer;
