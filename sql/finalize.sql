-- recommender: catalogue, sync triggers, bulk embedding, views.
-- Runs after the Rust functions exist (pgrx "finalize"), because the catalogue's generated
-- column calls recommender.product_text() and recommender._text_hash().

------------------------------------------------------------------------------------------------
-- Catalogue
------------------------------------------------------------------------------------------------
CREATE TABLE recommender.products (
    product_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          regclass,               -- the app table it is synced from; NULL = written directly
    external_id     text NOT NULL,          -- the app's own id
    name            text NOT NULL DEFAULT '',
    description     text,
    category        text,
    price           numeric CHECK (price IS NULL OR price BETWEEN 0 AND 1e12),
    stock           integer,                -- quantity; NULL = not tracked (counts as in stock)
    in_stock        boolean GENERATED ALWAYS AS (stock IS NULL OR stock > 0) STORED,
    image_url       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- sha256 of the embedded text (template: README "Embedded text")
    text_hash       bytea GENERATED ALWAYS AS (
                        recommender._text_hash(recommender.product_text(name, description, category, price::float8))
                    ) STORED,
    embedding       vector(384),
    embedded_hash   bytea,                  -- text_hash of the text the embedding was made from
    embedded_at     timestamptz,
    CONSTRAINT products_source_external_id_key UNIQUE NULLS NOT DISTINCT (source, external_id)
);
COMMENT ON TABLE recommender.products IS
    'recommender catalogue: one row per product, with its MiniLM embedding. Stale when embedding IS NULL or embedded_hash <> text_hash.';

CREATE INDEX products_embedding_hnsw ON recommender.products USING hnsw (embedding vector_cosine_ops);
CREATE INDEX products_stale ON recommender.products (product_id)
    WHERE embedding IS NULL OR embedded_hash IS DISTINCT FROM text_hash;
CREATE INDEX products_category ON recommender.products (category);
-- Products with the same text share one vector: re-embedding looks up a current one here first.
-- Not partial (WHERE embedding IS NOT NULL): right after a bulk load the statistics still say
-- "no embeddings", and the planner then scanned a partial index in full to read 20 products.
CREATE INDEX products_embedded_hash ON recommender.products (embedded_hash);

-- User data in extension tables is dumped by pg_dump.
SELECT pg_catalog.pg_extension_config_dump('recommender.products', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.products_product_id_seq', '');

-- updated_at follows real changes of the catalogue fields (not embedding bookkeeping).
CREATE FUNCTION recommender._products_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.external_id, NEW.name, NEW.description, NEW.category, NEW.price, NEW.stock, NEW.image_url)
       IS DISTINCT FROM
       (OLD.external_id, OLD.name, OLD.description, OLD.category, OLD.price, OLD.stock, OLD.image_url)
       AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER touch BEFORE UPDATE ON recommender.products
    FOR EACH ROW EXECUTE FUNCTION recommender._products_touch();

-- Embeds the rows of a statement whose text changed, in batches, before the statement returns
-- (recommender.embedding_mode = sync), or only queues them (deferred) for the queue worker or
-- process_queue(). With recommender.enable_sync_embedding = off they are only left stale, for
-- refresh_embeddings(). When the model cannot run (files missing or refused), the write still
-- succeeds: the rows are queued with the error, a WARNING says so, and the queue retries them.
-- Nothing the app wrote is lost.
CREATE FUNCTION recommender._products_embed_changed() RETURNS trigger
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
CREATE TRIGGER embed_inserted AFTER INSERT ON recommender.products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recommender._products_embed_changed();
CREATE TRIGGER embed_updated AFTER UPDATE ON recommender.products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recommender._products_embed_changed();

------------------------------------------------------------------------------------------------
-- Embedding: SQL surface
------------------------------------------------------------------------------------------------
CREATE FUNCTION recommender.embed(text text) RETURNS vector(384)
LANGUAGE sql STABLE STRICT PARALLEL RESTRICTED
AS $$ SELECT recommender._embed($1)::vector(384) $$;
COMMENT ON FUNCTION recommender.embed(text) IS
    'all-MiniLM-L6-v2 embedding (384-d, L2-normalised) of a text; truncated at 256 tokens. NULL gives NULL.';

-- VOLATILE on purpose (the result is stable): the planner evaluates STABLE functions with constant
-- arguments to estimate row counts, e.g. for unnest(recommender.embed($1)), which would run the
-- model twice. embed(text) stays STABLE so ORDER BY embedding <=> embed('...') can use the index.
CREATE FUNCTION recommender.embed(texts text[]) RETURNS vector(384)[]
LANGUAGE sql VOLATILE STRICT PARALLEL RESTRICTED
AS $$
    SELECT coalesce(pg_catalog.array_agg(e::vector(384) ORDER BY n), '{}')
      FROM recommender._embed_many($1) WITH ORDINALITY AS t(e, n)
$$;
COMMENT ON FUNCTION recommender.embed(text[]) IS
    'Embeddings of many texts in one batched model call, in input order; NULL elements give NULL.';

-- Bulk (re-)embedding of every stale product, committing after each batch: a cancel, a
-- statement_timeout or a crash loses at most the batch in flight, and rerunning continues.
-- A procedure that commits cannot pin its search_path (SET clause): the two procedures call
-- polymorphic functions as pg_catalog.<name> and every other function and operator with
-- arguments of exactly its built-in types, so a look-alike in a schema on the caller's
-- search_path is never a better match than the built-in (README "Privileges").
CREATE PROCEDURE recommender.refresh_embeddings(batch_size integer DEFAULT 256, force boolean DEFAULT false)
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
COMMENT ON PROCEDURE recommender.refresh_embeddings(integer, boolean) IS
    'Embeds every stale product (all with force => true), committing per batch, with progress NOTICEs. Call it outside an explicit transaction block.';

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
COMMENT ON PROCEDURE recommender.process_queue(integer, boolean) IS
    'Embeds every queued product that is due, committing per batch; retry_now => true retries failed ones at once. Call it outside an explicit transaction block.';

------------------------------------------------------------------------------------------------
-- Sync from the app's own product table
------------------------------------------------------------------------------------------------
CREATE TABLE recommender.sync_sources (
    source              regclass PRIMARY KEY,
    id_column           name NOT NULL,
    name_column         name NOT NULL,
    description_column  name,
    category_column     name,
    price_column        name,
    stock_column        name,
    image_url_column    name,
    created_at_column   name,
    stock_is_boolean    boolean NOT NULL DEFAULT false,
    synced_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recommender.sync_sources IS 'App tables synced into recommender.products, with their column mapping.';
SELECT pg_catalog.pg_extension_config_dump('recommender.sync_sources', '');

-- Out-of-range prices (negative, NaN, infinite) become NULL instead of failing the app's write.
CREATE FUNCTION recommender._clean_price(p numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN p BETWEEN 0 AND 1e12 THEN p END $$;

CREATE FUNCTION recommender._clean_stock(s numeric) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN s BETWEEN -2147483648 AND 2147483647 THEN round(s)::integer
                  WHEN s > 2147483647 THEN 2147483647
                  WHEN s < -2147483648 THEN 0 END $$;

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
CREATE FUNCTION recommender._sync_select(s recommender.sync_sources, rel text) RETURNS text
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

CREATE FUNCTION recommender._sync_upsert_sql(s recommender.sync_sources, rel text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT format($q$
    INSERT INTO recommender.products AS p
           (source, external_id, name, description, category, price, stock, image_url, created_at)
    SELECT $1, r.external_id, r.name, r.description, r.category, r.price, r.stock, r.image_url,
           coalesce(r.created_at, now())
      FROM (%s) r
    ON CONFLICT (source, external_id) DO UPDATE
       SET name = EXCLUDED.name, description = EXCLUDED.description, category = EXCLUDED.category,
           price = EXCLUDED.price, stock = EXCLUDED.stock, image_url = EXCLUDED.image_url
     WHERE (p.name, p.description, p.category, p.price, p.stock, p.image_url)
           IS DISTINCT FROM
           (EXCLUDED.name, EXCLUDED.description, EXCLUDED.category, EXCLUDED.price, EXCLUDED.stock, EXCLUDED.image_url)
$q$, recommender._sync_select(s, rel))
$$;

-- Deletes catalogue rows of this source whose id is in `gone` but not in `kept` (kept may be NULL).
CREATE FUNCTION recommender._sync_delete_sql(s recommender.sync_sources, gone text, kept text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT pg_catalog.format(
    'DELETE FROM recommender.products p USING (SELECT %1$s AS external_id FROM %2$s %3$s) d '
    'WHERE p.source = $1 AND p.external_id = d.external_id',
    recommender._sync_read(s.source, s.id_column, 'text'), gone,
    CASE WHEN kept IS NULL THEN ''
         ELSE pg_catalog.format('EXCEPT SELECT %s FROM %s', recommender._sync_read(s.source, s.id_column, 'text'), kept) END)
$$;

-- One statement-level trigger function for every event on a synced table. SECURITY DEFINER so
-- that app roles writing their own table need no privileges on the catalogue. It evaluates
-- nothing the table's owner can define: every column is read through _sync_read, the statements
-- it runs name only built-in and recommender objects, and its search_path is pinned (pg_catalog
-- first). Writers may attach it to tables they own (sync_products as a recommender_writer).
CREATE FUNCTION recommender._sync_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s recommender.sync_sources;
BEGIN
    SELECT * INTO s FROM recommender.sync_sources WHERE source = TG_RELID;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        EXECUTE recommender._sync_upsert_sql(s, 'new_rows') USING s.source;
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE recommender._sync_delete_sql(s, 'old_rows', 'new_rows') USING s.source;
        EXECUTE recommender._sync_upsert_sql(s, 'new_rows') USING s.source;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE recommender._sync_delete_sql(s, 'old_rows', NULL) USING s.source;
    ELSIF TG_OP = 'TRUNCATE' THEN
        DELETE FROM recommender.products WHERE source = s.source;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION recommender._sync_check_column(source regclass, col name, what text, categories text)
RETURNS boolean  -- true when the column is boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    typ oid;
    cat text;
BEGIN
    SELECT a.atttypid INTO typ FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'recommender: column "%" (the %) does not exist in %', col, what, source
            USING ERRCODE = 'undefined_column',
                  HINT = format('Columns of %s: %s. Name the right one with %s_column => ..., or pass NULL to leave it unmapped.',
                                source,
                                (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_catalog.pg_attribute
                                  WHERE attrelid = source AND attnum > 0 AND NOT attisdropped),
                                what);
    END IF;
    SELECT t.typcategory INTO cat FROM pg_catalog.pg_type t WHERE t.oid = typ;
    IF categories IS NOT NULL AND strpos(categories, cat) = 0 THEN
        RAISE EXCEPTION 'recommender: column "%" of % has type %, which cannot be the %', col, source, typ::regtype, what
            USING ERRCODE = 'datatype_mismatch',
                  HINT = CASE what WHEN 'price' THEN 'The price column must be numeric (integer, numeric, real, ...).'
                                   ELSE 'The stock column must be a number (quantity) or a boolean (in stock).' END;
    END IF;
    RETURN cat = 'B';
END
$$;

CREATE FUNCTION recommender.sync_products(
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
COMMENT ON FUNCTION recommender.sync_products(regclass, name, name, name, name, name, name, name, name) IS
    'Loads an app table into the catalogue and installs triggers that keep it in sync. New rows are left for CALL recommender.refresh_embeddings(); later writes are embedded as they happen.';

CREATE FUNCTION recommender.unsync_products(source regclass, delete_products boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql STRICT
AS $$
DECLARE
    ev text;
BEGIN
    FOR ev IN SELECT t.tgname FROM pg_catalog.pg_trigger t
               WHERE t.tgrelid = source AND t.tgname IN ('recommender_sync_insert', 'recommender_sync_update',
                                                        'recommender_sync_delete', 'recommender_sync_truncate') LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', ev, source);
    END LOOP;
    DELETE FROM recommender.sync_sources s WHERE s.source = unsync_products.source;
    IF delete_products THEN
        DELETE FROM recommender.products p WHERE p.source = unsync_products.source;
    END IF;
END
$$;
COMMENT ON FUNCTION recommender.unsync_products(regclass, boolean) IS
    'Removes the sync triggers from an app table; its products stay in the catalogue unless delete_products.';

------------------------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------------------------
CREATE VIEW recommender.sync_status AS
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

------------------------------------------------------------------------------------------------
-- Interactions, user profiles and maintained aggregates (the pipeline's inputs)
------------------------------------------------------------------------------------------------
CREATE TYPE recommender.interaction_type AS ENUM
    ('PURCHASE', 'CART_ADD', 'CART_REMOVE', 'WISHLIST_ADD', 'RECOMMENDATION_CLICK', 'VIEW');

-- Weight of each interaction type in preference vectors and popularity. Edit to taste; profiles
-- are rebuilt lazily (the weights' version is part of their freshness check).
CREATE TABLE recommender.interaction_weights (
    type    recommender.interaction_type PRIMARY KEY,
    weight  double precision NOT NULL CHECK (weight BETWEEN -100 AND 100)
);
INSERT INTO recommender.interaction_weights VALUES
    ('PURCHASE', 5), ('CART_ADD', 3), ('WISHLIST_ADD', 2), ('RECOMMENDATION_CLICK', 1.5), ('VIEW', 1), ('CART_REMOVE', -1);
SELECT pg_catalog.pg_extension_config_dump('recommender.interaction_weights', '');

-- The clock of the pipeline: recommender.as_of when set, else now(). Decay, popularity windows
-- and the new-arrival boost all read it, so history can be replayed at any date.
CREATE FUNCTION recommender.clock() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting('recommender.as_of', true), '')::timestamptz, now()) $$;

CREATE TABLE recommender.interactions (
    interaction_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         text NOT NULL CHECK (user_id <> ''),
    product_id      bigint NOT NULL REFERENCES recommender.products ON DELETE CASCADE,
    type            recommender.interaction_type NOT NULL,
    quantity        numeric NOT NULL DEFAULT 1 CHECK (quantity >= 0),
    value           numeric,
    basket_id       text,
    request_id      text,       -- the recommendation request this came from, if any
    position        integer,    -- its position in that response
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    -- Co-purchase groups by basket; without a basket id, a user's purchases of one (UTC) day.
    basket_key      text GENERATED ALWAYS AS (coalesce(basket_id,
                        user_id || '@' || ((occurred_at AT TIME ZONE 'UTC')::date - date '2000-01-01')::text)) STORED
);
-- (user_id, occurred_at) with the id included: a profile's cache key (count and newest id at the
-- clock) is an index-only scan.
CREATE INDEX interactions_user ON recommender.interactions (user_id, occurred_at) INCLUDE (interaction_id);
CREATE INDEX interactions_product ON recommender.interactions (product_id);
CREATE INDEX interactions_basket ON recommender.interactions (basket_key) WHERE type = 'PURCHASE';
SELECT pg_catalog.pg_extension_config_dump('recommender.interactions', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.interactions_interaction_id_seq', '');
COMMENT ON TABLE recommender.interactions IS
    'What users did with products. Write with recommender.track() or plain INSERT/COPY: the aggregates follow by trigger.';

-- Per product and day: summed positive weights and purchase count (popularity windows). Each
-- interaction counts once whatever its quantity: 40 litres of fuel are one purchase, not 40.
CREATE TABLE recommender.product_daily (
    product_id  bigint NOT NULL REFERENCES recommender.products ON DELETE CASCADE,
    day         date NOT NULL,
    weight      double precision NOT NULL,
    purchases   bigint NOT NULL,
    PRIMARY KEY (product_id, day)
);
CREATE INDEX product_daily_day ON recommender.product_daily (day);

-- Per user and product: summed weights and the last interaction (similar users, history).
-- (0.1.0-0.4.0 also kept a cart count here; the cart is recommender._cart since 0.5.0.)
CREATE TABLE recommender.user_products (
    user_id     text NOT NULL,
    product_id  bigint NOT NULL REFERENCES recommender.products ON DELETE CASCADE,
    weight      double precision NOT NULL,
    purchases   bigint NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX user_products_product ON recommender.user_products (product_id, weight DESC);

CREATE INDEX user_products_user_rank ON recommender.user_products (user_id, weight DESC);
CREATE INDEX user_products_user_recent ON recommender.user_products (user_id, last_at DESC);

-- The top of the popularity ranking per (clock day, window), cached for 5 minutes by homepage's
-- cold start (ranking every product of the window is the expensive part).
CREATE UNLOGGED TABLE recommender.popular_cache (
    clock_day    date NOT NULL,
    window_days  integer NOT NULL,
    product_id   bigint NOT NULL,
    score        double precision NOT NULL,
    computed_at  timestamptz NOT NULL,
    PRIMARY KEY (clock_day, window_days, product_id)
);

-- Products bought in the same basket: one row per ordered pair, counting distinct baskets.
CREATE TABLE recommender.copurchase (
    product_a  bigint NOT NULL REFERENCES recommender.products ON DELETE CASCADE,
    product_b  bigint NOT NULL REFERENCES recommender.products ON DELETE CASCADE,
    baskets    bigint NOT NULL,
    PRIMARY KEY (product_a, product_b)
);
CREATE INDEX copurchase_a_rank ON recommender.copurchase (product_a, baskets DESC);

-- A user's preference: normalised Σ weight × exp(-age/decay) × embedding, with context.
-- Rebuilt lazily when the user has interactions newer than last_interaction_id.
CREATE TABLE recommender.user_profiles (
    user_id              text PRIMARY KEY,
    preference           vector(384),
    top_categories       text[] NOT NULL DEFAULT '{}',
    price_min            numeric,
    price_max            numeric,
    interaction_count    bigint NOT NULL DEFAULT 0,
    last_interaction_id  bigint NOT NULL DEFAULT 0,
    last_interaction_at  timestamptz,
    weights_version      text,
    computed_at          timestamptz NOT NULL DEFAULT now(),
    -- per-call work kept with the profile (0.2.0); all reset when the profile is rebuilt
    rerank_query         text,           -- the reranker's query: top categories, recent products
    query_embedding      vector(384),    -- its bi-encoder embedding, made on first use
    collab_ids           bigint[],       -- collaborative candidates (similar users, co-purchase),
    collab_scores        float8[],       --   their normalised scores
    collab_sources       integer[],      --   and source bits,
    collab_n             integer,        --   computed for this recommender.collaborative_candidates,
    collab_clock         timestamptz,    --   at this recommender.as_of (NULL: the live clock),
    collab_at            timestamptz     --   at this time (reused for collaborative_cache_seconds)
);

-- Keeps the aggregates exact under INSERT, UPDATE and DELETE of interactions (set-based, per
-- statement). sign = +1 for new rows, -1 for old rows. Rows are upserted in key order, so
-- concurrent writers lock aggregate rows in the same order and cannot deadlock on them.
-- Removals (sign -1) skip rows whose product is gone: deleting a product deletes its aggregates
-- by cascade before the interactions' statement trigger runs, so there is nothing to decrement.
CREATE FUNCTION recommender._aggregate_sql(rel text, sign integer) RETURNS text[]
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

-- Co-purchase pairs gained (sign +1) or lost (-1) by a statement: a pair counts once per basket,
-- so only pairs that did not (or no longer) exist in the basket without the changed rows count.
-- Removals skip products that are gone (their pairs went by cascade).
CREATE FUNCTION recommender._copurchase_sql(rel text, sign integer) RETURNS text
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

CREATE FUNCTION recommender._interactions_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        FOREACH q IN ARRAY recommender._aggregate_sql('old_rows', -1) LOOP EXECUTE q; END LOOP;
        EXECUTE recommender._copurchase_sql('old_rows', -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        FOREACH q IN ARRAY recommender._aggregate_sql('new_rows', 1) LOOP EXECUTE q; END LOOP;
        EXECUTE recommender._copurchase_sql('new_rows', 1);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER aggregates_insert AFTER INSERT ON recommender.interactions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recommender._interactions_changed();
CREATE TRIGGER aggregates_update AFTER UPDATE ON recommender.interactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recommender._interactions_changed();
CREATE TRIGGER aggregates_delete AFTER DELETE ON recommender.interactions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION recommender._interactions_changed();
-- A product removed from the catalogue takes its interactions with it (ON DELETE CASCADE); the
-- aggregates referencing it cascade too.

-- Recomputes every aggregate from the interactions table (after changing interaction_weights,
-- or to verify). Progress NOTICEs; one transaction.
CREATE FUNCTION recommender.refresh_aggregates() RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    q text;
    t0 timestamptz := clock_timestamp();
BEGIN
    LOCK TABLE recommender.interactions IN SHARE MODE;
    TRUNCATE recommender.product_daily, recommender.user_products, recommender.copurchase;
    RAISE NOTICE 'recommender: rebuilding popularity and user/product aggregates';
    FOREACH q IN ARRAY recommender._aggregate_sql('recommender.interactions', 1) LOOP EXECUTE q; END LOOP;
    RAISE NOTICE 'recommender: rebuilding co-purchase pairs (% s so far)', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
    WITH bp AS MATERIALIZED (
        SELECT DISTINCT basket_key, product_id FROM recommender.interactions WHERE type = 'PURCHASE')
    INSERT INTO recommender.copurchase (product_a, product_b, baskets)
    SELECT a.product_id, b.product_id, count(*)
      FROM bp a JOIN bp b ON a.basket_key = b.basket_key AND a.product_id <> b.product_id
     GROUP BY 1, 2;
    UPDATE recommender.user_profiles SET last_interaction_id = 0;   -- rebuilt lazily
    RAISE NOTICE 'recommender: aggregates rebuilt in % s', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
END
$$;

-- The reranker's document for a product: name, category and the start of the description.
CREATE FUNCTION recommender._rerank_doc(name text, category text, description text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT left(concat_ws('. ', name, 'Category: ' || category, left(description, 200)), 400) $$;

------------------------------------------------------------------------------------------------
-- Tracking and profile maintenance
------------------------------------------------------------------------------------------------
CREATE FUNCTION recommender.track(
    user_id     text,
    product_id  bigint,
    type        recommender.interaction_type,
    quantity    numeric DEFAULT 1,
    value       numeric DEFAULT NULL,
    basket_id   text DEFAULT NULL,
    request_id  text DEFAULT NULL,
    "position"  integer DEFAULT NULL,
    occurred_at timestamptz DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    id bigint;
BEGIN
    IF track.user_id IS NULL OR track.product_id IS NULL OR track.type IS NULL THEN
        RAISE EXCEPTION 'recommender: user_id, product_id and type must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM recommender.products p WHERE p.product_id = track.product_id) THEN
        RAISE EXCEPTION 'recommender: product % does not exist', track.product_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'product_id is recommender.products.product_id; look it up by external_id there.';
    END IF;
    INSERT INTO recommender.interactions AS i
           (user_id, product_id, type, quantity, value, basket_id, request_id, position, occurred_at)
    VALUES (track.user_id, track.product_id, track.type, coalesce(track.quantity, 1), track.value, track.basket_id,
            track.request_id, track."position", coalesce(track.occurred_at, recommender.clock()))
    RETURNING i.interaction_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION recommender.track(text, bigint, recommender.interaction_type, numeric, numeric, text, text, integer, timestamptz) IS
    'Records one interaction (at the clock unless occurred_at is given) and returns its id. uuid/bigint user ids: pass user_id::text.';

CREATE PROCEDURE recommender.rebuild_user_profiles(batch_size integer DEFAULT 200)
LANGUAGE plpgsql
AS $$
DECLARE
    total      bigint;
    done       bigint := 0;
    users      text[];
    u          text;
    last_user  text := '';
    started    timestamptz := clock_timestamp();
    last_note  timestamptz := clock_timestamp();
BEGIN
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 100000 THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT count(DISTINCT i.user_id) INTO total FROM recommender.interactions i;
    RAISE NOTICE 'recommender: rebuilding % user profile(s)', total;
    LOOP
        SELECT array_agg(s.user_id ORDER BY s.user_id) INTO users
          FROM (SELECT DISTINCT i.user_id FROM recommender.interactions i WHERE i.user_id > last_user
                 ORDER BY i.user_id LIMIT batch_size) s;
        EXIT WHEN users IS NULL;
        FOREACH u IN ARRAY users LOOP
            PERFORM recommender.rebuild_user_profile(u);
        END LOOP;
        done := done + cardinality(users);
        last_user := users[cardinality(users)];
        COMMIT;
        IF clock_timestamp() - last_note >= interval '2 seconds' THEN
            RAISE NOTICE 'recommender: rebuilt %/% profiles', done, total;
            last_note := clock_timestamp();
        END IF;
    END LOOP;
    DELETE FROM recommender.user_profiles p
     WHERE NOT EXISTS (SELECT 1 FROM recommender.interactions i WHERE i.user_id = p.user_id);
    RAISE NOTICE 'recommender: rebuilt %/% profiles in % s', done, total,
        round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
END
$$;

------------------------------------------------------------------------------------------------
-- JSON forms: the response shape an HTTP layer can pass through unchanged
------------------------------------------------------------------------------------------------
-- The response object; with recommender.log_impressions on, its products are also logged as
-- impressions under its request_id.
CREATE FUNCTION recommender._response(context text, user_id text, recs jsonb) RETURNS jsonb
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

-- One recommendation row (any of the functions' row types) as the response's item object.
-- STABLE, not IMMUTABLE: to_jsonb prints timestamps by the session's TimeZone.
CREATE FUNCTION recommender._item(r anyelement) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
SELECT jsonb_build_object('product_id', j->'product_id', 'external_product_id', j->'external_product_id',
                          'name', j->'name', 'category', j->'category', 'price', j->'price',
                          'image_url', j->'image_url', 'score', round((j->>'score')::numeric, 6),
                          'position', j->'position')
  FROM (SELECT to_jsonb(r) AS j) s
$$;

CREATE FUNCTION recommender.homepage_json(user_id text, k integer) RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
SELECT recommender._response('homepage', $1,
       (SELECT jsonb_agg(recommender._item(r) ORDER BY r.position) FROM recommender.homepage($1, $2) r))
$$;

CREATE FUNCTION recommender.similar_products_json(product_id bigint, k integer) RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
SELECT recommender._response('product', NULL,
       (SELECT jsonb_agg(recommender._item(r) ORDER BY r.position) FROM recommender.similar_products($1, $2) r))
$$;

CREATE FUNCTION recommender.cart_json(product_ids bigint[], k integer) RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
SELECT recommender._response('cart', NULL,
       (SELECT jsonb_agg(recommender._item(r) ORDER BY r.position) FROM recommender.cart($1, $2) r))
$$;

CREATE FUNCTION recommender.cart_json(user_id text, k integer) RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
SELECT recommender._response('cart', $1,
       (SELECT jsonb_agg(recommender._item(r) ORDER BY r.position) FROM recommender.cart($1, $2) r))
$$;

CREATE FUNCTION recommender.frequently_bought_together_json(product_id bigint, k integer) RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
SELECT recommender._response('frequently_bought_together', NULL,
       (SELECT jsonb_agg(recommender._item(r) ORDER BY r.position) FROM recommender.frequently_bought_together($1, $2) r))
$$;

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
COMMENT ON FUNCTION recommender.abandoned_carts(interval, integer, boolean) IS
    'Users with products in the cart for at least older_than (clock) and no purchase since, not opted out, not emailed since; with k cart recommendations.';

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

------------------------------------------------------------------------------------------------
-- Function settings
------------------------------------------------------------------------------------------------
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
-- Iterative HNSW scans keep returning neighbours until LIMIT is met, so filters (in stock, not
-- the product itself) never starve the result.
ALTER FUNCTION recommender.similar_products(bigint, integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';
ALTER FUNCTION recommender.homepage(text, integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';
ALTER FUNCTION recommender.cart(bigint[], integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';
ALTER FUNCTION recommender.cart(text, integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';
ALTER FUNCTION recommender.frequently_bought_together(bigint, integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';

------------------------------------------------------------------------------------------------
-- Privileges (README "Privileges")
------------------------------------------------------------------------------------------------
-- The recommendation functions read every user's interactions and aggregates (similar users,
-- co-purchase, popularity) and keep the profile and popularity caches. Readers must not see that
-- raw data, so these five run as the extension's owner (SECURITY DEFINER, search_path pinned
-- above). Their only inputs are bound as SPI parameters; no argument becomes SQL text.
ALTER FUNCTION recommender.homepage(text, integer) SECURITY DEFINER;
ALTER FUNCTION recommender.similar_products(bigint, integer) SECURITY DEFINER;
ALTER FUNCTION recommender.cart(bigint[], integer) SECURITY DEFINER;
ALTER FUNCTION recommender.cart(text, integer) SECURITY DEFINER;
ALTER FUNCTION recommender.frequently_bought_together(bigint, integer) SECURITY DEFINER;

-- Two group roles, cluster-wide: created by the first CREATE EXTENSION in any database, kept by
-- DROP EXTENSION (other databases may use them). Grant them to application roles.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'recommender_reader') THEN
        CREATE ROLE recommender_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'recommender_writer') THEN
        CREATE ROLE recommender_writer NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('recommender_writer', 'recommender_reader', 'MEMBER') THEN
        GRANT recommender_reader TO recommender_writer;
    END IF;
END
$$;

-- Nothing is executable by PUBLIC; each role gets exactly its list.
REVOKE ALL ON ALL ROUTINES IN SCHEMA recommender FROM PUBLIC;
GRANT USAGE ON SCHEMA recommender TO recommender_reader;
GRANT USAGE ON TYPE recommender.interaction_type TO recommender_reader;

-- Reader: recommendations, rerank, embed, the catalogue and the aggregate views. No raw
-- interactions, per-user aggregates or profiles; model paths are superuser-only settings.
GRANT EXECUTE ON FUNCTION
    recommender.homepage(text, integer), recommender.homepage_json(text, integer),
    recommender.similar_products(bigint, integer), recommender.similar_products_json(bigint, integer),
    recommender.cart(bigint[], integer), recommender.cart_json(bigint[], integer),
    recommender.cart(text, integer), recommender.cart_json(text, integer),
    recommender.frequently_bought_together(bigint, integer),
    recommender.frequently_bought_together_json(bigint, integer),
    recommender.rerank(text, text[]),
    recommender.embed(text), recommender.embed(text[]), recommender._embed(text), recommender._embed_many(text[]),
    recommender._response(text, text, jsonb), recommender._item(anyelement),
    recommender.clock(), recommender.model_info(), recommender.preload_models(),
    recommender.product_text(text, text, text, double precision), recommender._text_hash(text)
TO recommender_reader;
GRANT SELECT ON recommender.products, recommender.interaction_weights,
                recommender.sync_status, recommender.recommendation_performance
TO recommender_reader;

-- Writer: reader + track() + the catalogue (direct writes, sync, embedding).
GRANT EXECUTE ON FUNCTION
    recommender.track(text, bigint, recommender.interaction_type, numeric, numeric, text, text, integer, timestamptz),
    recommender.embed_product(bigint, boolean), recommender._reembed(bigint[], boolean),
    recommender.sync_products(regclass, name, name, name, name, name, name, name, name),
    recommender.unsync_products(regclass, boolean),
    recommender._sync_check_column(regclass, name, text, text), recommender._sync_read(regclass, name, text),
    recommender._sync_select(recommender.sync_sources, text), recommender._sync_trigger(),
    recommender._sync_upsert_sql(recommender.sync_sources, text),
    recommender._sync_delete_sql(recommender.sync_sources, text, text),
    recommender._clean_price(numeric), recommender._clean_stock(numeric)
TO recommender_writer;
GRANT EXECUTE ON PROCEDURE recommender.refresh_embeddings(integer, boolean) TO recommender_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON recommender.products, recommender.sync_sources TO recommender_writer;
-- INSERT (track, COPY) but no reading back of other users' rows: RETURNING needs the id only.
GRANT INSERT, SELECT (interaction_id) ON recommender.interactions TO recommender_writer;

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
