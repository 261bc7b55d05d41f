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

-- Embeds the rows of a statement whose text changed, in batches, before the statement returns.
-- With recommender.enable_sync_embedding = off they are only left stale. When the model cannot
-- run (files missing or refused), the write still succeeds: the rows stay stale, a WARNING says
-- so, and refresh_embeddings() picks them up later. Nothing the app wrote is lost.
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
    BEGIN
        PERFORM recommender._reembed(ids, false);
    EXCEPTION WHEN undefined_file OR external_routine_exception OR invalid_parameter_value THEN
        RAISE WARNING 'recommender: % product(s) saved but not embedded: %', cardinality(ids), SQLERRM
            USING HINT = 'They are counted as stale in recommender.sync_status; fix the cause, then CALL recommender.refresh_embeddings().';
    END;
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

CREATE FUNCTION recommender.embed(texts text[]) RETURNS vector(384)[]
LANGUAGE sql STABLE STRICT PARALLEL RESTRICTED
AS $$
    SELECT coalesce(array_agg(e::vector(384) ORDER BY n), '{}')
      FROM recommender._embed_many($1) WITH ORDINALITY AS t(e, n)
$$;
COMMENT ON FUNCTION recommender.embed(text[]) IS
    'Embeddings of many texts in one batched model call, in input order; NULL elements give NULL.';

-- Bulk (re-)embedding of every stale product, committing after each batch: a cancel, a
-- statement_timeout or a crash loses at most the batch in flight, and rerunning continues.
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
        SELECT array_agg(product_id ORDER BY product_id) INTO ids
          FROM (SELECT p.product_id FROM recommender.products p
                 WHERE p.product_id > last_id
                   AND (force OR p.embedding IS NULL OR p.embedded_hash IS DISTINCT FROM p.text_hash)
                 ORDER BY p.product_id
                 LIMIT batch_size) s;
        EXIT WHEN ids IS NULL;
        done := done + recommender._reembed(ids, force);
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
COMMENT ON PROCEDURE recommender.refresh_embeddings(integer, boolean) IS
    'Embeds every stale product (all with force => true), committing per batch, with progress NOTICEs. Call it outside an explicit transaction block.';

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

-- The SELECT that maps a source relation (the table itself, or a trigger's transition table) to
-- catalogue columns. Identifiers are quoted with format('%I'); the relation is a regclass's
-- own quoted output or a fixed transition-table name.
CREATE FUNCTION recommender._sync_select(s recommender.sync_sources, rel text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT format(
    'SELECT DISTINCT ON (external_id) * FROM (SELECT (%I)::text AS external_id, coalesce((%I)::text, %L) AS name, '
    '%s AS description, %s AS category, %s AS price, %s AS stock, %s AS image_url, %s AS created_at FROM %s) r '
    'WHERE external_id IS NOT NULL ORDER BY external_id',
    s.id_column, s.name_column, '',
    CASE WHEN s.description_column IS NULL THEN 'NULL::text' ELSE format('(%I)::text', s.description_column) END,
    CASE WHEN s.category_column IS NULL THEN 'NULL::text' ELSE format('(%I)::text', s.category_column) END,
    CASE WHEN s.price_column IS NULL THEN 'NULL::numeric'
         ELSE format('recommender._clean_price((%I)::numeric)', s.price_column) END,
    CASE WHEN s.stock_column IS NULL THEN 'NULL::integer'
         WHEN s.stock_is_boolean THEN format('(CASE WHEN (%I) THEN 1 WHEN NOT (%I) THEN 0 END)', s.stock_column, s.stock_column)
         ELSE format('recommender._clean_stock((%I)::numeric)', s.stock_column) END,
    CASE WHEN s.image_url_column IS NULL THEN 'NULL::text' ELSE format('(%I)::text', s.image_url_column) END,
    CASE WHEN s.created_at_column IS NULL THEN 'NULL::timestamptz' ELSE format('(%I)::timestamptz', s.created_at_column) END,
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
SELECT format(
    'DELETE FROM recommender.products p USING (SELECT (%1$I)::text AS external_id FROM %2$s %3$s) d '
    'WHERE p.source = $1 AND p.external_id = d.external_id',
    s.id_column, gone,
    CASE WHEN kept IS NULL THEN '' ELSE format('EXCEPT SELECT (%I)::text FROM %s', s.id_column, kept) END)
$$;

-- One statement-level trigger function for every event on a synced table. SECURITY DEFINER so
-- that app roles writing their own table need no privileges on the catalogue; search_path is
-- pinned and every name below is schema-qualified.
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
                   'AND NOT EXISTS (SELECT 1 FROM %s t WHERE (t.%I)::text = p.external_id)', source, s.id_column)
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
       s.synced_at
  FROM recommender.sync_sources s
  FULL JOIN (SELECT source,
                    count(*)                                                                       AS products,
                    count(*) FILTER (WHERE embedding IS NOT NULL AND embedded_hash = text_hash)    AS embedded,
                    count(*) FILTER (WHERE embedding IS NULL OR embedded_hash IS DISTINCT FROM text_hash) AS stale,
                    count(*) FILTER (WHERE NOT in_stock)                                           AS out_of_stock,
                    max(updated_at)                                                                AS last_change,
                    max(embedded_at)                                                               AS last_embedded
               FROM recommender.products
              GROUP BY source) p ON p.source = s.source;
COMMENT ON VIEW recommender.sync_status IS
    'Per source table: products in the catalogue, embedded, stale (waiting for the model), out of stock.';

------------------------------------------------------------------------------------------------
-- Function settings
------------------------------------------------------------------------------------------------
-- Functions that use pgvector's type and operators pin their search_path to this schema and
-- vector's (wherever CREATE EXTENSION put it), so they work whatever the caller's search_path.
DO $$
DECLARE
    vs text := (SELECT n.nspname FROM pg_catalog.pg_extension e
                  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector');
    f regprocedure;
BEGIN
    FOREACH f IN ARRAY ARRAY['recommender.embed(text)', 'recommender.embed(text[])',
                             'recommender._reembed(bigint[], boolean)',
                             'recommender.similar_products(bigint, integer)']::regprocedure[] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = recommender, %I, pg_catalog, pg_temp', f, vs);
    END LOOP;
END
$$;
-- Iterative HNSW scans keep returning neighbours until LIMIT is met, so filters (in stock, not
-- the product itself) never starve the result.
ALTER FUNCTION recommender.similar_products(bigint, integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';
