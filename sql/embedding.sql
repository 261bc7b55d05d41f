-- recommender, unit "embedding" (src/lib.rs wires the units and their order).
-- Embedding from SQL: embed(text), embed(text[]) over the Rust _embed functions, and the bulk
-- refresh_embeddings() procedure.

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
COMMENT ON PROCEDURE recommender.refresh_embeddings(integer, boolean) IS
    'Embeds every stale product (all with force => true), committing per batch, with progress NOTICEs. Call it outside an explicit transaction block.';
