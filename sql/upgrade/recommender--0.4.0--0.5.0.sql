-- recommender 0.4.0 -> 0.5.0 (released with 0.5.0; never edit after release)
--   * security (README "Privileges"): every function resolves names with pg_catalog first and
--     searches no schema another role may create objects in; the pipeline names pgvector's
--     objects with their schema. The sync trigger reads an app table's columns without
--     evaluating any cast, operator or function of the table's owner (_sync_read); writers may
--     sync tables they own
--   * one definition of a user's cart (_cart), respecting recommender.as_of, for cart(user_id, k)
--     and abandoned_carts(); user_products.cart is gone
--   * _item is STABLE (to_jsonb depends on TimeZone)
--   * (no SQL change: profiles are built from the user's 10,000 most recent interactions; sync
--     re-embedding holds one chunk of texts at a time)
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.5.0'" to load this file. \quit

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
        SELECT pg_catalog.array_agg(product_id ORDER BY product_id) INTO ids
          FROM (SELECT p.product_id FROM recommender.products p
                 WHERE p.product_id > last_id
                   AND (force OR p.embedding IS NULL OR p.embedded_hash IS DISTINCT FROM p.text_hash)
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

-- VOLATILE on purpose (the result is stable): the planner evaluates STABLE functions with constant
-- arguments to estimate row counts, e.g. for unnest(recommender.embed($1)), which would run the
-- model twice. embed(text) stays STABLE so ORDER BY embedding <=> embed('...') can use the index.
CREATE OR REPLACE FUNCTION recommender.embed(texts text[]) RETURNS vector(384)[]
LANGUAGE sql VOLATILE STRICT PARALLEL RESTRICTED
AS $$
    SELECT coalesce(pg_catalog.array_agg(e::vector(384) ORDER BY n), '{}')
      FROM recommender._embed_many($1) WITH ORDINALITY AS t(e, n)
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

-- How the sync code reads a mapped column of an app table as a built-in type: an expression over
-- the column, built here once for every conversion the sync path makes (id, texts, price, stock,
-- created_at, deletes). The app's table belongs to an app role, and so may the column's type
-- with its casts, operators and domains; the sync trigger runs as the extension's owner
-- (SECURITY DEFINER), so it must never evaluate any of them (README "Privileges").
--   * a built-in type (oid below FirstNormalObjectId, 16384) is cast: a cast between built-in
--     types can only have been created by a superuser;
--   * any other type (enum, domain, composite, array, an extension's type) is printed by its
--     output function through format('%s'), which uses no cast, and the text is read by the
--     built-in target type's input function. Output functions of base types are C functions,
--     which only a superuser can create; enums, domains, composites and arrays print through the
--     built-in enum_out/record_out/array_out and their base types'. IS NULL is a null test, not
--     an operator.
-- target is one of a fixed set of built-in type names: the callers below pass literals.
CREATE FUNCTION recommender._sync_read(source regclass, col name, target text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT CASE WHEN t.typ IS NULL OR t.typ < 16384::oid   -- a dropped column fails as "does not exist"
            THEN pg_catalog.format('(%I)::pg_catalog.%s', col, target)
            ELSE pg_catalog.format('(CASE WHEN (%1$I) IS NULL THEN NULL ELSE pg_catalog.format(''%%s'', %1$I) END)::pg_catalog.%2$s',
                                   col, target) END
  FROM (SELECT (SELECT a.atttypid FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped) AS typ) t
$$;

-- The SELECT that maps a source relation (the table itself, or a trigger's transition table) to
-- catalogue columns. Identifiers are quoted with format('%I'); the relation is a regclass's
-- own quoted output or a fixed transition-table name; every column is read by _sync_read.
CREATE OR REPLACE FUNCTION recommender._sync_select(s recommender.sync_sources, rel text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT pg_catalog.format(
    'SELECT DISTINCT ON (external_id) * FROM (SELECT %s AS external_id, coalesce(%s, %L) AS name, '
    '%s AS description, %s AS category, %s AS price, %s AS stock, %s AS image_url, %s AS created_at FROM %s) r '
    'WHERE external_id IS NOT NULL ORDER BY external_id',
    recommender._sync_read(s.source, s.id_column, 'text'),
    recommender._sync_read(s.source, s.name_column, 'text'), '',
    CASE WHEN s.description_column IS NULL THEN 'NULL::pg_catalog.text'
         ELSE recommender._sync_read(s.source, s.description_column, 'text') END,
    CASE WHEN s.category_column IS NULL THEN 'NULL::pg_catalog.text'
         ELSE recommender._sync_read(s.source, s.category_column, 'text') END,
    CASE WHEN s.price_column IS NULL THEN 'NULL::pg_catalog.numeric'
         ELSE pg_catalog.format('recommender._clean_price(%s)', recommender._sync_read(s.source, s.price_column, 'numeric')) END,
    CASE WHEN s.stock_column IS NULL THEN 'NULL::pg_catalog.int4'
         WHEN s.stock_is_boolean THEN pg_catalog.format('(CASE WHEN %1$s THEN 1 WHEN NOT %1$s THEN 0 END)',
                                                       recommender._sync_read(s.source, s.stock_column, 'bool'))
         ELSE pg_catalog.format('recommender._clean_stock(%s)', recommender._sync_read(s.source, s.stock_column, 'numeric')) END,
    CASE WHEN s.image_url_column IS NULL THEN 'NULL::pg_catalog.text'
         ELSE recommender._sync_read(s.source, s.image_url_column, 'text') END,
    CASE WHEN s.created_at_column IS NULL THEN 'NULL::pg_catalog.timestamptz'
         ELSE recommender._sync_read(s.source, s.created_at_column, 'timestamptz') END,
    rel)
$$;

-- Deletes catalogue rows of this source whose id is in `gone` but not in `kept` (kept may be NULL).
CREATE OR REPLACE FUNCTION recommender._sync_delete_sql(s recommender.sync_sources, gone text, kept text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT pg_catalog.format(
    'DELETE FROM recommender.products p USING (SELECT %1$s AS external_id FROM %2$s %3$s) d '
    'WHERE p.source = $1 AND p.external_id = d.external_id',
    recommender._sync_read(s.source, s.id_column, 'text'), gone,
    CASE WHEN kept IS NULL THEN ''
         ELSE pg_catalog.format('EXCEPT SELECT %s FROM %s', recommender._sync_read(s.source, s.id_column, 'text'), kept) END)
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
     WHERE p.source = sync_products.source AND (p.embedding IS NULL OR p.embedded_hash IS DISTINCT FROM p.text_hash);
    RAISE NOTICE 'recommender: % product(s) from % in the catalogue, % to embed%', n, source, stale,
        CASE WHEN stale > 0 THEN ': CALL recommender.refresh_embeddings()' ELSE '' END;
    RETURN n;
END
$$;

-- The cart is recommender._cart; the count kept here followed CART_ADD/CART_REMOVE only.
ALTER TABLE recommender.user_products DROP COLUMN cart;

-- Keeps the aggregates exact under INSERT, UPDATE and DELETE of interactions (set-based, per
-- statement). sign = +1 for new rows, -1 for old rows. Rows are upserted in key order, so
-- concurrent writers lock aggregate rows in the same order and cannot deadlock on them.
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
    INSERT INTO recommender.user_products AS u (user_id, product_id, weight, purchases, first_at, last_at)
    SELECT r.user_id, r.product_id, %2$s * sum(w.weight),
           %2$s * count(*) FILTER (WHERE r.type = 'PURCHASE'),
           min(r.occurred_at), max(r.occurred_at)
      FROM %1$s r JOIN recommender.interaction_weights w ON w.type = r.type%3$s
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, product_id) DO UPDATE
       SET weight = u.weight + EXCLUDED.weight, purchases = u.purchases + EXCLUDED.purchases,
           first_at = least(u.first_at, EXCLUDED.first_at), last_at = greatest(u.last_at, EXCLUDED.last_at)$q$, rel, sign, live)
]
  FROM (SELECT CASE WHEN sign < 0
                    THEN ' JOIN recommender.products p ON p.product_id = r.product_id' ELSE '' END AS live) l
$$;

-- One recommendation row (any of the functions' row types) as the response's item object.
-- STABLE, not IMMUTABLE: to_jsonb prints timestamps by the session's TimeZone.
CREATE OR REPLACE FUNCTION recommender._item(r anyelement) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
SELECT jsonb_build_object('product_id', j->'product_id', 'external_product_id', j->'external_product_id',
                          'name', j->'name', 'category', j->'category', 'price', j->'price',
                          'image_url', j->'image_url', 'score', round((j->>'score')::numeric, 6),
                          'position', j->'position')
  FROM (SELECT to_jsonb(r) AS j) s
$$;

-- A user's cart at a time, the one definition cart(user_id, k) and abandoned_carts() share: the
-- products whose last cart event (CART_ADD, CART_REMOVE or PURCHASE of it) at or before `at` is
-- a CART_ADD, added no earlier than the user's last PURCHASE of anything (a checkout empties the
-- cart). Reads only the user's events since that purchase (index interactions_user).
CREATE FUNCTION recommender._cart(user_id text, at timestamptz)
RETURNS TABLE (product_id bigint, added_at timestamptz)
LANGUAGE sql STABLE
AS $$
SELECT e.product_id, e.occurred_at
  FROM (SELECT DISTINCT ON (i.product_id) i.product_id, i.type, i.occurred_at
          FROM recommender.interactions i
         WHERE i.user_id = $1 AND i.occurred_at <= $2
           AND i.type IN ('CART_ADD', 'CART_REMOVE', 'PURCHASE')
           AND i.occurred_at >= coalesce((SELECT max(b.occurred_at) FROM recommender.interactions b
                                           WHERE b.user_id = $1 AND b.type = 'PURCHASE' AND b.occurred_at <= $2),
                                         '-infinity')
         ORDER BY i.product_id, i.occurred_at DESC, i.interaction_id DESC) e
 WHERE e.type = 'CART_ADD'
$$;

-- Users whose cart (recommender._cart at the clock) has products added at least older_than
-- before the clock. Opted-out users are left out, and so are users
-- already emailed since their last cart addition (unless include_emailed). Each row carries the
-- cart's value and k cart recommendations (recommender.cart). SECURITY DEFINER: it reads every
-- user's interactions; granted to recommender_writer only.
CREATE OR REPLACE FUNCTION recommender.abandoned_carts(older_than interval DEFAULT '1 day', k integer DEFAULT 5,
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
        SELECT u.user_id, array_agg(e.product_id ORDER BY e.added_at, e.product_id) AS ids, max(e.added_at) AS last_add
          FROM users u
          CROSS JOIN LATERAL recommender._cart(u.user_id, t) e
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

-- The functions that keep the caller's search_path (see "Function settings" below), with why.
-- tests/sql/security.sql checks that every other function pins pg_catalog first.
CREATE FUNCTION recommender._unpinned_functions() RETURNS regprocedure[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT ARRAY[
    -- inlined into the pipeline's statements (per row)
    'recommender.clock()', 'recommender._clean_price(numeric)', 'recommender._clean_stock(numeric)',
    'recommender._rerank_doc(text, text, text)', 'recommender._item(anyelement)',
    -- C, no SQL: the catalogue's generated text_hash column calls them per row
    'recommender.product_text(text, text, text, double precision)', 'recommender._text_hash(text)',
    -- this list itself
    'recommender._unpinned_functions()'
]::regprocedure[]
$$;

-- The search_path of every function of the extension (README "Privileges"): pg_catalog first,
-- and no schema that a role other than a superuser may create objects in, so that no function
-- (SECURITY DEFINER above all) can be made to call a look-alike of a built-in (CVE-2018-1058).
--   * Everything runs with pg_catalog, pg_temp: unqualified functions and operators (ln, sum,
--     unnest, =, ...) resolve in pg_catalog only (pg_temp is never searched for them). The
--     pipeline's statements name pgvector's type and operators with vector's schema
--     (src/pipeline/plans.rs), wherever CREATE EXTENSION put it.
--   * The two SQL embed() functions cast to vector(384) by name, so vector's schema follows
--     pg_catalog there; their bodies call nothing else unqualified.
--   * Left unpinned: SQL functions the planner inlines into the statements that call them (a SET
--     clause would stop that) and C functions that run no SQL. Inside a pinned function they
--     resolve names with its path; called directly they run with the caller's own rights.
--   * Procedures cannot carry a SET clause (they COMMIT); theirs qualify polymorphic calls.
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

-- New functions are nobody's but the owner's; writers may sync tables they own.
REVOKE ALL ON FUNCTION recommender._sync_read(regclass, name, text), recommender._cart(text, timestamptz),
    recommender._unpinned_functions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recommender._sync_read(regclass, name, text), recommender._sync_trigger()
TO recommender_writer;
