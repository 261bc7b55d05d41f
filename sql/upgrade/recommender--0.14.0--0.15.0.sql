-- recommender 0.14.0 -> 0.15.0: bulk embedding on several cores (issue 17).
-- Released: never edit.
--   * recommender._start_embedding_helpers(), recommender._wait_embedding_helpers(): start and await
--     up to recommender.embedding_workers helper processes (dynamic background workers) that run the
--     calling procedure's batches alongside it; its abort stops them.
--   * recommender._needs_embedding(): what refresh_embeddings() embeds (stale; with force, every
--     product not embedded since the call began). Inlined, like _stale.
--   * recommender._refresh_batch(): one batch of refresh_embeddings(), with or without SKIP LOCKED.
--   * recommender.refresh_embeddings(), recommender.process_queue(): start helpers when more than
--     one batch is to do, wait for them and sweep what is left (replaced).
--   * recommender._unpinned_functions(): lists _needs_embedding (replaced).
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.15.0'" to load this file. \quit

CREATE FUNCTION recommender._start_embedding_helpers(kind text, batch_size integer, force boolean, since timestamptz, wanted integer)
RETURNS integer
LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'start_embedding_helpers_wrapper';
CREATE FUNCTION recommender._wait_embedding_helpers(timeout_ms integer) RETURNS boolean
LANGUAGE c STRICT VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'wait_embedding_helpers_wrapper';

CREATE FUNCTION recommender._needs_embedding(embedding vector, embedded_hash bytea, text_hash bytea,
                                             embedded_at timestamptz, force boolean, since timestamptz)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT recommender._stale($1, $2, $3)
    OR ($5 AND ($4 IS NULL OR $4 OPERATOR(pg_catalog.<) $6))
$$;

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

CREATE OR REPLACE PROCEDURE recommender.refresh_embeddings(batch_size integer DEFAULT 256, force boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    total      bigint;
    done       bigint := 0;
    r          record;
    after      bigint := 0;
    since      timestamptz := now();
    helpers    integer := 0;
    skip       boolean;
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
            END IF;
            after := 0;
            CONTINUE;
        END IF;
        done := done + r.embedded;
        after := r.last_id;
        COMMIT;
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


CREATE OR REPLACE PROCEDURE recommender.process_queue(batch_size integer DEFAULT NULL, retry_now boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    r          record;
    n          integer := coalesce(batch_size, recommender._setting('recommender.queue_batch_size')::integer);
    total      bigint;
    done       bigint := 0;
    bad        bigint := 0;
    helpers    integer := 0;
    waited     boolean := false;
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
    IF total > n THEN
        helpers := recommender._start_embedding_helpers('queue', n, false, NULL::timestamptz, ((total - 1) / n)::integer);
        IF helpers > 0 THEN
            RAISE NOTICE 'recommender: started % helper process(es) to drain alongside this session (recommender.embedding_workers)', helpers;
        END IF;
    END IF;
    LOOP
        SELECT * INTO r FROM recommender._process_queue_batch(batch_size);
        IF r.processed + r.failed = 0 THEN
            EXIT WHEN helpers = 0 OR waited;
            -- The rest is in the helpers' hands: wait for them a second at a time, committing in
            -- between (no snapshot held meanwhile) and taking any batch they leave; once they are
            -- gone, drain once more.
            IF recommender._wait_embedding_helpers(1000) THEN
                waited := true;
            ELSE
                COMMIT;
            END IF;
            CONTINUE;
        END IF;
        done := done + r.processed;
        bad := bad + r.failed;
        COMMIT;
        IF clock_timestamp() - last_note >= interval '2 seconds' THEN
            IF helpers > 0 THEN
                SELECT total - count(*) INTO done FROM recommender.embedding_queue q
                 WHERE q.attempts = 0 OR q.last_error_at >= started;
            END IF;
            secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
            RAISE NOTICE 'recommender: processed %/% queued products (% products/s)', done, total, round((done::double precision / secs)::numeric, 1);
            last_note := clock_timestamp();
        END IF;
    END LOOP;
    IF helpers > 0 THEN
        -- the helpers' share: what left the queue, and the failures recorded since the start
        SELECT count(*) INTO bad FROM recommender.embedding_queue q WHERE q.last_error_at >= started;
        SELECT greatest(total - count(*), 0) INTO done FROM recommender.embedding_queue q
         WHERE q.attempts = 0 OR q.last_error_at >= started;
    END IF;
    secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
    IF bad > 0 THEN
        RAISE NOTICE 'recommender: processed % queued product(s) in % s; % attempt(s) failed and stay queued (recommender.staleness)',
            done, round(secs::numeric, 1), bad;
    ELSE
        RAISE NOTICE 'recommender: processed % queued product(s) in % s', done, round(secs::numeric, 1);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION recommender._unpinned_functions() RETURNS regprocedure[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT ARRAY[
    -- inlined into the pipeline's statements and the stale-products index (per row)
    'recommender.clock()', 'recommender._clean_price(numeric)', 'recommender._clean_stock(numeric)',
    'recommender._item(anyelement)', 'recommender._stale'::pg_catalog.regproc::pg_catalog.oid::pg_catalog.text,
    'recommender._needs_embedding'::pg_catalog.regproc::pg_catalog.oid::pg_catalog.text,
    -- C, no SQL: the catalogue's generated text_hash column and the pipeline call them per row
    'recommender.product_text(text, text, text, double precision)', 'recommender._text_hash(text)',
    'recommender._rerank_doc(text, text, text)',
    -- this list itself
    'recommender._unpinned_functions()'
]::regprocedure[]
$$;


ALTER FUNCTION recommender._start_embedding_helpers(text, integer, boolean, timestamptz, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recommender._wait_embedding_helpers(integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recommender._refresh_batch(bigint, integer, boolean, timestamptz, boolean) SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION recommender._start_embedding_helpers(text, integer, boolean, timestamptz, integer),
    recommender._wait_embedding_helpers(integer),
    recommender._needs_embedding(vector, bytea, bytea, timestamptz, boolean, timestamptz),
    recommender._refresh_batch(bigint, integer, boolean, timestamptz, boolean)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    recommender._needs_embedding(vector, bytea, bytea, timestamptz, boolean, timestamptz),
    recommender._refresh_batch(bigint, integer, boolean, timestamptz, boolean),
    recommender._start_embedding_helpers(text, integer, boolean, timestamptz, integer),
    recommender._wait_embedding_helpers(integer)
TO recommender_writer;
