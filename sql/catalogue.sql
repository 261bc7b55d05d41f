-- recommender, unit "catalogue" (src/lib.rs wires the units and their order).
-- The catalogue: recommender.products, its indexes, and the trigger that embeds (or queues)
-- products whose text changed. The generated text_hash column calls two Rust functions
-- (product_text, _text_hash), so this unit follows them.

CREATE TABLE recommender.products (
    product_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          regclass,               -- the app table it is synced from; NULL = written directly
    external_id     text NOT NULL,          -- the app's own id
    name            text NOT NULL DEFAULT '',
    description     text,
    category        text,
    price           numeric CHECK (price IS NULL OR (price OPERATOR(pg_catalog.>=) 0 AND price OPERATOR(pg_catalog.<=) 1e12)),
    stock           integer,                -- quantity; NULL = not tracked (counts as in stock)
    in_stock        boolean GENERATED ALWAYS AS (stock IS NULL OR stock OPERATOR(pg_catalog.>) 0) STORED,
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
    'recommender catalogue: one row per product, with its MiniLM embedding. Stale (recommender._stale) when it has no embedding or one made from another text.';

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

CREATE INDEX products_embedding_hnsw ON recommender.products USING hnsw (embedding vector_cosine_ops);
CREATE INDEX products_stale ON recommender.products (product_id)
    WHERE recommender._stale(embedding, embedded_hash, text_hash);
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
CREATE TRIGGER embed_inserted AFTER INSERT ON recommender.products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recommender._products_embed_changed();
CREATE TRIGGER embed_updated AFTER UPDATE ON recommender.products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recommender._products_embed_changed();
