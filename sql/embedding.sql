-- recommender, unit "embedding" (src/lib.rs wires the units and their order).
-- Embedding from SQL: embed(text), embed(text[]) over the Rust _embed functions, and the bulk
-- refresh_embeddings() procedure.

------------------------------------------------------------------------------------------------
-- Embedding: SQL surface
------------------------------------------------------------------------------------------------
-- The real[] of _embed becomes a vector by pgvector's assignment cast, applied to the result: the
-- body names no type, so the function runs with search_path = pg_catalog, pg_temp like the others
-- (0.16.0; before, its path named vector's schema, which that schema's owner could rename).
CREATE FUNCTION recommender.embed(text text) RETURNS vector(384)
LANGUAGE sql STABLE STRICT PARALLEL RESTRICTED
AS $$ SELECT recommender._embed($1) $$;
COMMENT ON FUNCTION recommender.embed(text) IS
    'all-MiniLM-L6-v2 embedding (384-d, L2-normalised) of a text; truncated at 256 tokens. NULL gives NULL.';

-- VOLATILE on purpose (the result is stable): the planner evaluates STABLE functions with constant
-- arguments to estimate row counts, e.g. for unnest(recommender.embed($1)), which would run the
-- model twice. embed(text) stays STABLE so ORDER BY embedding <=> embed('...') can use the index.
CREATE FUNCTION recommender._vector(v real[]) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT $1 $$;
COMMENT ON FUNCTION recommender._vector(real[]) IS
    'A real[] as a vector, by pgvector''s assignment cast on the result (embed(text[]) names no type).';
-- pgvector's cosine distance, bound by oid when the extension is created: a SQL-standard body is
-- kept as a parse tree, so nothing in it is looked up by name again, and the planner inlines it
-- (no SET clause: recommender._unpinned_functions()), so an ORDER BY of it uses the HNSW index.
-- The pipeline's statements name it instead of pgvector's operator, which they would have to name
-- with vector's schema, whose owner could rename that schema under them (0.26.0).
CREATE FUNCTION recommender._distance(a vector, b vector) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN a <=> b;
COMMENT ON FUNCTION recommender._distance(vector, vector) IS
    'pgvector''s cosine distance (<=>), bound when the extension was created; inlined, so the HNSW index serves an ORDER BY of it.';
CREATE FUNCTION recommender.embed(texts text[]) RETURNS vector(384)[]
LANGUAGE sql VOLATILE STRICT PARALLEL RESTRICTED
AS $$
    SELECT coalesce(pg_catalog.array_agg(recommender._vector(e) ORDER BY n), '{}')
      FROM recommender._embed_many($1) WITH ORDINALITY AS t(e, n)
$$;
COMMENT ON FUNCTION recommender.embed(text[]) IS
    'Embeddings of many texts in one batched model call, in input order; NULL elements give NULL.';

-- What refresh_embeddings() embeds: every stale product (recommender._stale), and with force every
-- product not embedded since the call began (since, its first transaction's now()): a product
-- another process embedded after that already has the current model's vector. Inlined like _stale, so the stale-products index
-- serves the call without force.
CREATE FUNCTION recommender._needs_embedding(embedding vector, embedded_hash bytea, text_hash bytea,
                                             embedded_at timestamptz, force boolean, since timestamptz)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT recommender._stale($1, $2, $3)
    OR ($5 AND ($4 IS NULL OR $4 OPERATOR(pg_catalog.<) $6))
$$;

-- One batch of refresh_embeddings(), in the caller's transaction: the next batch_size products
-- after product id `after` that need embedding. With skip_locked, rows another process holds are
-- left to it: the call and its helpers (src/worker/helpers.rs) run this side by side. Without, the
-- batch waits for them (the call's last sweep). Returns the batch's last id (NULL when no product
-- is left) and how many products got a vector.
CREATE FUNCTION recommender._refresh_batch(after bigint, batch_size integer, force boolean, since timestamptz,
                                           skip_locked boolean, OUT last_id bigint, OUT embedded bigint)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    ids bigint[];
BEGIN
    IF skip_locked THEN
        SELECT array_agg(s.product_id ORDER BY s.product_id) INTO ids
          FROM (SELECT p.product_id FROM recommender.products p
                 WHERE p.product_id > after
                   AND recommender._needs_embedding(p.embedding, p.embedded_hash, p.text_hash, p.embedded_at, force, since)
                 ORDER BY p.product_id
                 LIMIT batch_size
                   FOR NO KEY UPDATE SKIP LOCKED) s;
    ELSE
        SELECT array_agg(s.product_id ORDER BY s.product_id) INTO ids
          FROM (SELECT p.product_id FROM recommender.products p
                 WHERE p.product_id > after
                   AND recommender._needs_embedding(p.embedding, p.embedded_hash, p.text_hash, p.embedded_at, force, since)
                 ORDER BY p.product_id
                 LIMIT batch_size) s;
    END IF;
    IF ids IS NULL THEN
        RETURN;
    END IF;
    embedded := recommender._reembed(ids, force);
    DELETE FROM recommender.embedding_queue q WHERE q.product_id = ANY(ids);
    last_id := ids[cardinality(ids)];
END
$$;

-- Bulk (re-)embedding of every stale product, committing after each batch: a cancel, a
-- statement_timeout or a crash loses at most the batches in flight, and rerunning continues.
-- More than one batch to do: up to recommender.embedding_workers helpers take batches alongside
-- the session (SKIP LOCKED); the session then waits for them and sweeps what is left, waiting for
-- rows other transactions hold. Its abort stops them (src/worker/helpers.rs).
-- A procedure that commits cannot pin its search_path (SET clause): the two procedures call
-- polymorphic functions as pg_catalog.<name> and every other function and operator with
-- arguments of exactly its built-in types, so a look-alike in a schema on the caller's
-- search_path is never a better match than the built-in (README "Privileges").
CREATE PROCEDURE recommender.refresh_embeddings(batch_size integer DEFAULT 256, force boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    total      bigint;
    done       bigint := 0;
    r          pg_catalog.record;
    after      bigint := 0;
    since      pg_catalog.timestamptz := pg_catalog.now();
    helpers    integer := 0;
    skip       boolean;
    started    pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    last_note  pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    secs       double precision;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);  -- and after every COMMIT (README "Privileges")
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > recommender._max_array() THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and %, got %', recommender._max_array(), coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The default of 256 commits every few seconds.';
    END IF;
    force := coalesce(force, false);
    SELECT count(*) INTO total FROM recommender.products p
     WHERE recommender._needs_embedding(p.embedding, p.embedded_hash, p.text_hash, p.embedded_at, force, since);
    RAISE NOTICE 'recommender: % product(s) to embed', total;
    IF total > batch_size THEN
        helpers := recommender._start_embedding_helpers('refresh', batch_size, force, since,
                                                        ((total - 1) / batch_size)::integer);
        IF helpers > 0 THEN
            RAISE NOTICE 'recommender: started % helper process(es) to embed alongside this session (recommender.embedding_workers)', helpers;
        END IF;
    END IF;
    skip := helpers > 0;
    LOOP
        SELECT * INTO r FROM recommender._refresh_batch(after, batch_size, force, since, skip);
        IF r.last_id IS NULL THEN
            EXIT WHEN NOT skip;
            -- The rest is in the helpers' hands: wait for them a second at a time, committing in
            -- between (no snapshot held meanwhile) and taking any batch they leave; once they are
            -- gone, sweep once more without SKIP LOCKED.
            IF recommender._wait_embedding_helpers(1000) THEN
                skip := false;
            ELSE
                COMMIT;
                PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            END IF;
            after := 0;
            CONTINUE;
        END IF;
        done := done + r.embedded;
        after := r.last_id;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF clock_timestamp() - last_note >= interval '2 seconds' THEN
            IF helpers > 0 THEN  -- the helpers' share too: every product embedded since the call began
                SELECT least(count(*), total) INTO done FROM recommender.products p WHERE p.embedded_at >= since;
            END IF;
            secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
            RAISE NOTICE 'recommender: embedded %/% products (% products/s)', done, total, round((done::double precision / secs)::numeric, 1);
            last_note := clock_timestamp();
        END IF;
    END LOOP;
    IF helpers > 0 THEN
        SELECT least(count(*), total) INTO done FROM recommender.products p WHERE p.embedded_at >= since;
    END IF;
    secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
    RAISE NOTICE 'recommender: embedded %/% products in % s (% products/s)',
        done, total, round(secs::numeric, 1), round((done::double precision / secs)::numeric, 1);
END
$$;
COMMENT ON PROCEDURE recommender.refresh_embeddings(integer, boolean) IS
    'Embeds every stale product (all with force => true), committing per batch, with progress NOTICEs; up to recommender.embedding_workers helper processes share the batches. Call it outside an explicit transaction block.';
