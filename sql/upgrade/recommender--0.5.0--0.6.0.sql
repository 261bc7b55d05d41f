-- recommender 0.5.0 -> 0.6.0: each fact defined once (issue 15). Released: never edit.
--   * recommender._stale(embedding, embedded_hash, text_hash): the one definition of a stale
--     product, used by the partial index, the embedding trigger, refresh_embeddings, sync_products
--     and the two catalogue views (the condition was written out in each).
--   * recommender._setting(name): the extension's settings as the library defines them; the SQL
--     no longer restates their defaults in coalesce(current_setting(name, true), default).
--   * recommender._max_array(): the array/batch limit of recommender_core::limits, read by
--     refresh_embeddings, the queue and record_impressions instead of a literal 10000.
--   * recommender._rerank_doc is the Rust template (recommender_core::text::rerank_doc), beside
--     the embedding text's template; it was an SQL function with the same output.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.6.0'" to load this file. \quit

CREATE FUNCTION recommender._setting(name text) RETURNS text
STRICT STABLE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'setting_wrapper';

CREATE FUNCTION recommender._max_array() RETURNS integer
STRICT IMMUTABLE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'max_array_wrapper';

CREATE OR REPLACE FUNCTION recommender._rerank_doc(name text, category text, description text) RETURNS text
IMMUTABLE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'rerank_doc_wrapper';

-- The one definition of a stale product: no embedding, or one made from another text than the
-- current one (embedded_hash IS DISTINCT FROM text_hash). The partial index below and every
-- statement that looks for stale products call it. IMMUTABLE and without a SET clause, so the
-- planner inlines it (and matches the index); its operators are named with their schema, so the
-- caller's search_path cannot change what it means.
CREATE FUNCTION recommender._stale(embedding vector, embedded_hash bytea, text_hash bytea) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT $1 IS NULL
    OR coalesce(NOT ($2 OPERATOR(pg_catalog.=) $3), ($2 IS NULL) OPERATOR(pg_catalog.<>) ($3 IS NULL))
$$;

COMMENT ON TABLE recommender.products IS
    'recommender catalogue: one row per product, with its MiniLM embedding. Stale (recommender._stale) when it has no embedding or one made from another text.';

DROP INDEX recommender.products_stale;
CREATE INDEX products_stale ON recommender.products (product_id)
    WHERE recommender._stale(embedding, embedded_hash, text_hash);

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
    IF NOT recommender._setting('recommender.enable_sync_embedding')::boolean THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(product_id ORDER BY product_id) INTO ids
      FROM new_rows
     WHERE recommender._stale(embedding, embedded_hash, text_hash);
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    IF recommender._setting('recommender.embedding_mode') = 'deferred' THEN
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

-- Bulk (re-)embedding of every stale product, committing after each batch: a cancel, a
-- statement_timeout or a crash loses at most the batch in flight, and rerunning continues.
-- A procedure that commits cannot pin its search_path (SET clause): the two procedures call
-- polymorphic functions as pg_catalog.<name> and every other function and operator with
-- arguments of exactly its built-in types, so a look-alike in a schema on the caller's
-- search_path is never a better match than the built-in (README "Privileges").
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
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > recommender._max_array() THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and %, got %', recommender._max_array(), coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The default of 256 commits every few seconds.';
    END IF;
    force := coalesce(force, false);
    SELECT count(*) INTO total FROM recommender.products p
     WHERE force OR recommender._stale(p.embedding, p.embedded_hash, p.text_hash);
    RAISE NOTICE 'recommender: % product(s) to embed', total;
    LOOP
        SELECT pg_catalog.array_agg(product_id ORDER BY product_id) INTO ids
          FROM (SELECT p.product_id FROM recommender.products p
                 WHERE p.product_id > last_id
                   AND (force OR recommender._stale(p.embedding, p.embedded_hash, p.text_hash))
                 ORDER BY p.product_id
                 LIMIT batch_size) s;
        EXIT WHEN ids IS NULL;
        done := done + recommender._reembed(ids, force);
        DELETE FROM recommender.embedding_queue q WHERE q.product_id = ANY(ids);
        last_id := ids[pg_catalog.cardinality(ids)];
        COMMIT;
        IF clock_timestamp() - last_note >= interval '2 seconds' THEN
            secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
            RAISE NOTICE 'recommender: embedded %/% products (% products/s)', done, total, round((done::double precision / secs)::numeric, 1);
            last_note := clock_timestamp();
        END IF;
    END LOOP;
    secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
    RAISE NOTICE 'recommender: embedded %/% products in % s (% products/s)',
        done, total, round(secs::numeric, 1), round((done::double precision / secs)::numeric, 1);
END
$$;

-- One unit of queue work, in the caller's transaction: up to batch_size new products (NULL:
-- recommender.queue_batch_size), else one product whose earlier attempt failed and is due again.
-- Queue rows and products are locked with SKIP LOCKED, so concurrent drains (worker, process_queue,
-- pg_cron) split the work, and a product an app transaction is still writing waits for the next
-- round instead of blocking (or deadlocking with) that transaction. A failure is recorded on the
-- batch's rows (attempts, error, next attempt after recommender.queue_retry_seconds, doubling per
-- failure, at most 1 hour) and the function returns normally; cancel and timeouts propagate.
CREATE OR REPLACE FUNCTION recommender._process_queue_batch(batch_size integer, OUT processed integer, OUT failed integer)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    n     integer := coalesce(batch_size, recommender._setting('recommender.queue_batch_size')::integer);
    retry interval := recommender._setting('recommender.queue_retry_seconds')::interval;
    ids   bigint[];
BEGIN
    processed := 0;
    failed := 0;
    IF n < 1 OR n > recommender._max_array() THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and %, got %', recommender._max_array(), n
            USING ERRCODE = 'invalid_parameter_value', HINT = 'NULL uses recommender.queue_batch_size.';
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
CREATE OR REPLACE PROCEDURE recommender.process_queue(batch_size integer DEFAULT NULL, retry_now boolean DEFAULT false)
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
    IF batch_size IS NOT NULL AND (batch_size < 1 OR batch_size > recommender._max_array()) THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and %, got %', recommender._max_array(), batch_size
            USING ERRCODE = 'invalid_parameter_value', HINT = 'NULL uses recommender.queue_batch_size.';
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
            RAISE NOTICE 'recommender: processed %/% queued products (% products/s)', done, total, round((done::double precision / secs)::numeric, 1);
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

CREATE OR REPLACE FUNCTION recommender.sync_products(
    source              regclass,
    id_column           name DEFAULT 'id',
    name_column         name DEFAULT 'name',
    description_column  name DEFAULT NULL,
    category_column     name DEFAULT NULL,
    price_column        name DEFAULT NULL,
    stock_column        name DEFAULT NULL,
    image_url_column    name DEFAULT NULL,
    created_at_column   name DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql
SET recommender.enable_sync_embedding = off
AS $$
DECLARE
    s      recommender.sync_sources;
    kind   "char";
    n      bigint;
    stale  bigint;
    ev     text;
BEGIN
    IF source IS NULL OR id_column IS NULL OR name_column IS NULL THEN
        RAISE EXCEPTION 'recommender: source, id_column and name_column must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = source;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'recommender: % is not a table', source
            USING ERRCODE = 'wrong_object_type', HINT = 'Sync from an ordinary or partitioned table; views have no triggers for this.';
    END IF;
    IF (SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid = source)
       IN ('recommender'::regnamespace, 'pg_catalog'::regnamespace) THEN
        RAISE EXCEPTION 'recommender: % cannot be a sync source', source
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Sync from the application''s own product table, not from the recommender schema or the system catalogs.';
    END IF;
    PERFORM recommender._sync_check_column(source, id_column, 'id', NULL);
    PERFORM recommender._sync_check_column(source, name_column, 'name', NULL);
    IF description_column IS NOT NULL THEN PERFORM recommender._sync_check_column(source, description_column, 'description', NULL); END IF;
    IF category_column IS NOT NULL THEN PERFORM recommender._sync_check_column(source, category_column, 'category', NULL); END IF;
    IF price_column IS NOT NULL THEN PERFORM recommender._sync_check_column(source, price_column, 'price', 'N'); END IF;
    IF image_url_column IS NOT NULL THEN PERFORM recommender._sync_check_column(source, image_url_column, 'image_url', NULL); END IF;
    IF created_at_column IS NOT NULL THEN PERFORM recommender._sync_check_column(source, created_at_column, 'created_at', 'D'); END IF;

    INSERT INTO recommender.sync_sources AS t
           (source, id_column, name_column, description_column, category_column, price_column,
            stock_column, image_url_column, created_at_column, stock_is_boolean)
    VALUES (source, id_column, name_column, description_column, category_column, price_column,
            stock_column, image_url_column, created_at_column,
            stock_column IS NOT NULL AND recommender._sync_check_column(source, stock_column, 'stock', 'NB'))
    ON CONFLICT ON CONSTRAINT sync_sources_pkey DO UPDATE
       SET id_column = EXCLUDED.id_column, name_column = EXCLUDED.name_column,
           description_column = EXCLUDED.description_column, category_column = EXCLUDED.category_column,
           price_column = EXCLUDED.price_column, stock_column = EXCLUDED.stock_column,
           image_url_column = EXCLUDED.image_url_column, created_at_column = EXCLUDED.created_at_column,
           stock_is_boolean = EXCLUDED.stock_is_boolean, synced_at = now()
    RETURNING * INTO s;

    -- (Re)install the triggers. `source` is a regclass: its text form is a quoted identifier.
    FOR ev IN SELECT t.tgname FROM pg_catalog.pg_trigger t
               WHERE t.tgrelid = source AND t.tgname IN ('recommender_sync_insert', 'recommender_sync_update',
                                                        'recommender_sync_delete', 'recommender_sync_truncate') LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', ev, source);
    END LOOP;
    EXECUTE format('CREATE TRIGGER recommender_sync_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION recommender._sync_trigger()', source);
    EXECUTE format('CREATE TRIGGER recommender_sync_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION recommender._sync_trigger()', source);
    EXECUTE format('CREATE TRIGGER recommender_sync_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION recommender._sync_trigger()', source);
    EXECUTE format('CREATE TRIGGER recommender_sync_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION recommender._sync_trigger()', source);

    -- Initial load (or resync): upsert every row, drop catalogue rows the source no longer has.
    EXECUTE format('DELETE FROM recommender.products p WHERE p.source = $1 '
                   'AND NOT EXISTS (SELECT 1 FROM (SELECT %s AS external_id FROM %s) t WHERE t.external_id = p.external_id)',
                   recommender._sync_read(source, s.id_column, 'text'), source)
        USING source;
    EXECUTE recommender._sync_upsert_sql(s, source::text) USING source;
    SELECT count(*) INTO n FROM recommender.products p WHERE p.source = sync_products.source;
    SELECT count(*) INTO stale FROM recommender.products p
     WHERE p.source = sync_products.source AND recommender._stale(p.embedding, p.embedded_hash, p.text_hash);
    RAISE NOTICE 'recommender: % product(s) from % in the catalogue, % to embed%', n, source, stale,
        CASE WHEN stale > 0 THEN ': CALL recommender.refresh_embeddings()' ELSE '' END;
    RETURN n;
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
                    count(*) FILTER (WHERE NOT recommender._stale(embedding, embedded_hash, text_hash)) AS embedded,
                    count(*) FILTER (WHERE recommender._stale(embedding, embedded_hash, text_hash)) AS stale,
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
              GROUP BY pr.source) q ON q.source IS NOT DISTINCT FROM coalesce(s.source, p.source);;

-- Every stale product: since when, whether it is queued, and why it failed if it did.
CREATE OR REPLACE VIEW recommender.staleness AS
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
 WHERE recommender._stale(p.embedding, p.embedded_hash, p.text_hash);;

-- The response object; with recommender.log_impressions on, its products are also logged as
-- impressions under its request_id.
CREATE OR REPLACE FUNCTION recommender._response(context text, user_id text, recs jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rid text := gen_random_uuid()::text;
BEGIN
    IF recommender._setting('recommender.log_impressions')::boolean
       AND jsonb_array_length(coalesce(recs, '[]'::jsonb)) > 0 THEN
        PERFORM recommender.record_impressions(context, user_id,
                    ARRAY(SELECT (e->>'product_id')::bigint FROM jsonb_array_elements(recs) WITH ORDINALITY AS t(e, n) ORDER BY t.n),
                    rid);
    END IF;
    RETURN jsonb_build_object('recommendations', coalesce(recs, '[]'::jsonb), 'request_id', rid,
                              'context', context, 'user_id', user_id, 'generated_at', recommender.clock());
END
$$;

-- Logs the products of one response, in order (position 1 first), and returns its request id
-- (a new uuid when request_id is NULL). SECURITY DEFINER: readers log what they show but cannot
-- read the log. On a standby or in a read-only transaction it logs nothing and says so once per
-- session (NOTICE): recommendations keep working there.
CREATE OR REPLACE FUNCTION recommender.record_impressions(context text, user_id text, product_ids bigint[], request_id text DEFAULT NULL)
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
    IF cardinality(product_ids) > recommender._max_array() THEN
        RAISE EXCEPTION 'recommender: at most % product ids per response, got %', recommender._max_array(), cardinality(product_ids)
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

-- Per day and context: what was shown, clicked and bought. A click is a RECOMMENDATION_CLICK
-- interaction carrying the response's request_id; its context is the logged request's, or
-- '(not logged)'. A conversion is a click followed, within recommender.attribution_days, by a
-- PURCHASE of the same product by the same user; each purchase is attributed to the latest such
-- click, and counts on that click's day with its value as revenue.
CREATE OR REPLACE VIEW recommender.recommendation_performance AS
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
           + make_interval(days => recommender._setting('recommender.attribution_days')::integer)
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
  FULL JOIN clicked c ON c.day = s.day AND c.context = s.context;;

-- The functions that keep the caller's search_path (see "Function settings" below), with why.
-- tests/sql/security.sql checks that every other function pins pg_catalog first.
CREATE OR REPLACE FUNCTION recommender._unpinned_functions() RETURNS regprocedure[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT ARRAY[
    -- inlined into the pipeline's statements and the stale-products index (per row)
    'recommender.clock()', 'recommender._clean_price(numeric)', 'recommender._clean_stock(numeric)',
    'recommender._item(anyelement)', 'recommender._stale'::pg_catalog.regproc::pg_catalog.oid::pg_catalog.text,
    -- C, no SQL: the catalogue's generated text_hash column and the pipeline call them per row
    'recommender.product_text(text, text, text, double precision)', 'recommender._text_hash(text)',
    'recommender._rerank_doc(text, text, text)',
    -- this list itself
    'recommender._unpinned_functions()'
]::regprocedure[]
$$;

-- CREATE OR REPLACE resets a function's settings: pin every function again, as finalize.sql does.
DO $$
DECLARE
    vs text := (SELECT n.nspname FROM pg_catalog.pg_extension e
                  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector');
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'recommender'::regnamespace AND p.prokind = 'f'
                AND p.oid <> ALL (recommender._unpinned_functions())
              ORDER BY p.oid LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
    FOREACH f IN ARRAY ARRAY['recommender.embed(text)', 'recommender.embed(text[])']::regprocedure[] LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, vs);
    END LOOP;
END
$$;

-- New functions are nobody's but the owner's until granted; readers' views, JSON forms and
-- impressions, and writers' triggers and procedures, call them.
REVOKE ALL ON FUNCTION recommender._setting(text), recommender._max_array(),
    recommender._stale(vector, bytea, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recommender._setting(text), recommender._max_array(),
    recommender._stale(vector, bytea, bytea)
TO recommender_reader;
