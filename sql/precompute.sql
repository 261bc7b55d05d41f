-- recommender, unit "precompute": the cross-encoder's scores shared by every backend of the
-- database, and the homepages the queue worker computes ahead of a user's next call (0.12.0).

-- A (query, document) pair's cross-encoder logit. The key is the library's (the first 16 bytes
-- of the SHA-256 of the model files' identities and the two texts), so a changed product text,
-- a changed profile or a replaced model makes new keys and old rows are never read again.
-- Written by the recommendation functions (as the owner) when they run the model, through
-- _keep_rerank_scores(); read by every backend before it runs the model; no role other than the
-- owner has rights on it. A cache: UNLOGGED (no WAL; emptied by a crash, not read on a standby),
-- not dumped, pruned to recommender.rerank_share_seconds.
CREATE UNLOGGED TABLE recommender.rerank_scores (
    pair      bytea       PRIMARY KEY,
    score     real        NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rerank_scores_stored_at ON recommender.rerank_scores (stored_at);
COMMENT ON TABLE recommender.rerank_scores IS
    'recommender cross-encoder scores shared by every backend: (pair key, logit). A cache written by the recommendation functions; pruned to recommender.rerank_share_seconds.';

-- Shared scores stored before this have expired (recommender.rerank_share_seconds ago; 0.13.0).
CREATE FUNCTION recommender._rerank_scores_expiry() RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
SELECT now() - recommender._setting('recommender.rerank_share_seconds')::interval
$$;

-- Stores pairs the cross-encoder just scored, in key order, and deletes up to prune of the
-- expired ones (oldest first), so the table stays bounded without the queue worker. A pair
-- stored already is kept from now on (0.22.0: a call that read it in the second half of its time
-- passes it, so a pair still read is not pruned), unless another transaction holds it: rows
-- another holds are skipped, never waited for. Never waits more than 10 ms for another
-- transaction and never fails the call: a pair another transaction is storing, a lock, a
-- deadlock or a serialization conflict leaves the pairs unstored (another call stores them).
CREATE FUNCTION recommender._keep_rerank_scores(pairs bytea[], scores real[], prune integer) RETURNS void
LANGUAGE plpgsql VOLATILE SET lock_timeout = '10ms'
AS $$
BEGIN
    INSERT INTO recommender.rerank_scores (pair, score)
    SELECT u.p, u.s FROM ROWS FROM (unnest(pairs), unnest(scores)) AS u(p, s)
     WHERE u.p IS NOT NULL AND u.s IS NOT NULL
     ORDER BY u.p
    ON CONFLICT (pair) DO NOTHING;
    UPDATE recommender.rerank_scores r SET stored_at = now()
     WHERE r.ctid = ANY (ARRAY(
           SELECT o.ctid FROM recommender.rerank_scores o
            WHERE o.pair = ANY (pairs) AND o.stored_at < now()
            ORDER BY o.pair
              FOR UPDATE SKIP LOCKED));
    IF prune > 0 THEN
        DELETE FROM recommender.rerank_scores r
         WHERE r.ctid = ANY (ARRAY(
               SELECT o.ctid FROM recommender.rerank_scores o
                WHERE o.stored_at < (SELECT recommender._rerank_scores_expiry())
                ORDER BY o.stored_at
                LIMIT prune
                  FOR UPDATE SKIP LOCKED));
    END IF;
EXCEPTION WHEN lock_not_available OR deadlock_detected OR serialization_failure OR unique_violation THEN
    NULL;
END
$$;

-- Users whose interactions changed while recommender.precompute_homepage was on (the
-- interactions trigger queues them), or whom queue_homepages() queued (warm_start, 0.22.0), one
-- row each, for the queue worker. It takes those of a warm start after the others, so a user
-- who is active now never waits behind a warm start of every user.
CREATE TABLE recommender.homepage_queue (
    user_id    text        PRIMARY KEY,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    warm_start boolean     NOT NULL DEFAULT false
);
CREATE INDEX homepage_queue_order ON recommender.homepage_queue (warm_start, queued_at, user_id);
COMMENT ON TABLE recommender.homepage_queue IS
    'recommender users whose homepage the queue worker computes ahead of their next call (recommender.precompute_homepage).';
-- A statement that queues users wakes the queue workers at its commit, as for embedding_queue.
CREATE TRIGGER wake_queue_workers AFTER INSERT ON recommender.homepage_queue
    FOR EACH STATEMENT EXECUTE FUNCTION recommender._wake_queue_workers();

-- Deletes the shared scores stored more than recommender.rerank_share_seconds ago (all of them
-- at 0); returns how many. The queue worker runs it every minute (the recommendation functions
-- also delete a few at a time as they store new ones). Rows another transaction holds (one
-- renewing them) are left for the next run, never waited for (0.22.0). Owner or superuser.
CREATE FUNCTION recommender.prune_rerank_scores() RETURNS bigint
LANGUAGE sql VOLATILE
AS $$
WITH gone AS (
    DELETE FROM recommender.rerank_scores r
     WHERE r.ctid = ANY (ARRAY(
           SELECT o.ctid FROM recommender.rerank_scores o
            WHERE o.stored_at < (SELECT recommender._rerank_scores_expiry())
              FOR UPDATE SKIP LOCKED))
    RETURNING 1)
SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION recommender.prune_rerank_scores() IS
    'Deletes the shared cross-encoder scores older than recommender.rerank_share_seconds; returns how many. The queue worker runs it every minute.';

-- Takes the n users queued longest off the queue, those of a warm start last (0.22.0) (the queue
-- worker commits this at once, so a track() of the same user meanwhile never waits for a
-- precompute: it queues the user again).
CREATE FUNCTION recommender._dequeue_homepages(n integer) RETURNS text[]
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    users text[];
BEGIN
    IF n IS NULL OR n < 1 OR n > recommender._max_array() THEN
        RAISE EXCEPTION 'recommender: n must be between 1 and %, got %', recommender._max_array(), n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH taken AS (
        DELETE FROM recommender.homepage_queue q
         WHERE q.user_id IN (SELECT h.user_id FROM recommender.homepage_queue h
                              ORDER BY h.warm_start, h.queued_at, h.user_id
                              LIMIT n
                                FOR UPDATE SKIP LOCKED)
        RETURNING q.user_id)
    SELECT array_agg(user_id ORDER BY user_id) INTO users FROM taken;
    RETURN coalesce(users, '{}');
END
$$;

-- Computes the homepage of each user, each in its own subtransaction: the profile and the
-- collaborative candidates are refreshed and the rerank pairs scored into
-- recommender.rerank_scores, so the user's next call finds them. A user whose homepage fails, or
-- waits more than a second for a lock, gets a WARNING (a precompute is only a head start: the
-- user's own call computes it); since 0.26.0 the homepage's cache writes never wait (a profile
-- another transaction holds, the user's own call say, is left unstored). The queue worker calls
-- it with what _dequeue_homepages() took; owner or superuser. It keeps no scores of its own in
-- the backend (0.22.0): a pair it scored before is looked up in the shared table, and scored and
-- stored there again once pruned, so everything it computed is in the shared table.
CREATE FUNCTION recommender._precompute_homepages(users text[], OUT processed integer, OUT failed integer)
LANGUAGE plpgsql VOLATILE SET lock_timeout = '1s' SET recommender.rerank_cache_size = 0
AS $$
DECLARE
    u text;
    -- the page size whose refill rounds cover the most candidates a caller's k is likely to need
    k integer := greatest(recommender._setting('recommender.rerank_top_n')::integer, 10);
BEGIN
    processed := 0;
    failed := 0;
    FOREACH u IN ARRAY coalesce(users, '{}') LOOP
        BEGIN
            PERFORM FROM recommender.homepage(u, k);
            processed := processed + 1;
        EXCEPTION WHEN OTHERS THEN
            failed := failed + 1;
            RAISE WARNING 'recommender: the homepage of user % was not precomputed: %', u, SQLERRM;
        END;
    END LOOP;
END
$$;

-- Queues users for the queue worker to compute their homepage ahead, as precompute_homepage does
-- after an interaction (0.22.0): every user with an interaction in the `active_within` before the
-- clock (NULL, or one reaching past the earliest time: every user), the most recently active
-- first (their queued_at one microsecond apart), all after the users an interaction queues, also
-- later ones (warm_start). A warm start: after a new cross-encoder (every shared pair's key
-- changes) or on a schedule, so that a returning user's call in a fresh backend finds its pairs. A user already queued keeps its place. Returns how many users it queued; warns
-- when no queue worker runs in this database (as far as the caller may see). Owner or superuser:
-- each queued user costs the worker one homepage. Its rows stay locked until the caller commits
-- (a track() of a queued user waits for that): call it in a transaction of its own.
CREATE FUNCTION recommender.queue_homepages(active_within interval DEFAULT interval '30 days') RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    till pg_catalog.timestamptz := recommender.clock();
    since pg_catalog.timestamptz;   -- NULL: every user
    base pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    queued pg_catalog.int8;
BEGIN
    IF active_within OPERATOR(pg_catalog.<=) interval '0' THEN
        RAISE EXCEPTION 'recommender: active_within must be a positive interval, or NULL for every user; got %', active_within
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF active_within IS NOT NULL THEN
        BEGIN
            since := till OPERATOR(pg_catalog.-) active_within;
        EXCEPTION WHEN datetime_field_overflow THEN
            NULL;   -- reaches past the earliest timestamp: every user
        END;
    END IF;
    WITH active AS (
        SELECT i.user_id, pg_catalog.max(i.occurred_at) AS last_at FROM recommender.interactions i
         WHERE i.occurred_at OPERATOR(pg_catalog.<=) till
           AND (since IS NULL OR i.occurred_at OPERATOR(pg_catalog.>) since)
         GROUP BY i.user_id),
    added AS (
        INSERT INTO recommender.homepage_queue (user_id, queued_at, warm_start)
        SELECT a.user_id, base OPERATOR(pg_catalog.+)
                          pg_catalog.make_interval(secs => (pg_catalog.row_number() OVER (ORDER BY a.last_at DESC, a.user_id))::pg_catalog.float8 OPERATOR(pg_catalog./) 1e6),
               true
          FROM active a
         ORDER BY a.user_id   -- rows locked in key order, as the interactions trigger queues them
        ON CONFLICT (user_id) DO NOTHING
        RETURNING 1)
    SELECT pg_catalog.count(*) INTO queued FROM added;
    -- (a role without pg_read_all_stats does not see the worker's row: no warning then)
    IF queued OPERATOR(pg_catalog.>) 0 AND pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE') AND NOT EXISTS (
           SELECT FROM pg_catalog.pg_stat_activity a
            WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
              AND a.backend_type OPERATOR(pg_catalog.=) 'recommender queue worker') THEN
        RAISE WARNING 'recommender: no queue worker runs in database %; the users queued (%) wait in recommender.homepage_queue', pg_catalog.current_database(), queued
            USING HINT = 'Add recommender to shared_preload_libraries and this database to recommender.worker_databases (README "Operations").';
    END IF;
    RETURN queued;
END
$$;
COMMENT ON FUNCTION recommender.queue_homepages(interval) IS
    'Queues the users active within the interval before the clock (NULL: all) for the queue worker to compute their homepage ahead; returns how many. Owner or superuser.';
