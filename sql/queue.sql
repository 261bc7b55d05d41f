-- recommender, unit "queue" (src/lib.rs wires the units and their order).
-- Deferred embedding: the queue and its drains (README "Deferred embedding").

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
-- A statement that queues products wakes the database's queue workers when its transaction commits
-- (0.14.0; before, they looked every recommender.worker_naptime). Nothing without the worker.
CREATE TRIGGER wake_queue_workers AFTER INSERT ON recommender.embedding_queue
    FOR EACH STATEMENT EXECUTE FUNCTION recommender._wake_queue_workers();

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
-- For databases without the queue worker; pg_cron can run it on a schedule. More than one batch
-- due: up to recommender.embedding_workers helpers drain alongside the session (as
-- refresh_embeddings() does), which waits for them and then drains what is left.
CREATE PROCEDURE recommender.process_queue(batch_size integer DEFAULT NULL, retry_now boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    r          pg_catalog.record;
    n          integer;
    total      bigint;
    done       bigint := 0;
    bad        bigint := 0;
    helpers    integer := 0;
    waited     boolean := false;
    started    pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    last_note  pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    secs       double precision;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);  -- and after every COMMIT (README "Privileges")
    n := coalesce(batch_size, recommender._setting('recommender.queue_batch_size')::integer);
    IF batch_size IS NOT NULL AND (batch_size < 1 OR batch_size > recommender._max_array()) THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and %, got %', recommender._max_array(), batch_size
            USING ERRCODE = 'invalid_parameter_value', HINT = 'NULL uses recommender.queue_batch_size.';
    END IF;
    IF coalesce(retry_now, false) THEN
        UPDATE recommender.embedding_queue q SET next_attempt_at = '-infinity' WHERE q.attempts > 0;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
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
                PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            END IF;
            CONTINUE;
        END IF;
        done := done + r.processed;
        bad := bad + r.failed;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
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
COMMENT ON PROCEDURE recommender.process_queue(integer, boolean) IS
    'Embeds every queued product that is due, committing per batch; retry_now => true retries failed ones at once. Call it outside an explicit transaction block.';
