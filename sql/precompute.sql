-- recommender, unit "precompute": the cross-encoder's scores shared by every backend of the
-- database, and the homepages the queue worker computes ahead of a user's next call (0.12.0).

-- A (query, document) pair's cross-encoder logit. The key is the library's (the first 16 bytes
-- of the SHA-256 of the model files' identities and the two texts), so a changed product text,
-- a changed profile or a replaced model makes new keys and old rows are never read again.
-- Written by the recommendation functions (as the owner) when they run the model, read by every
-- backend before it runs the model; no role other than the owner has rights on it. A cache: not
-- dumped, pruned to recommender.rerank_share_seconds by the queue worker or
-- recommender.prune_rerank_scores(). Logged, so a hot standby reads the primary's scores.
CREATE TABLE recommender.rerank_scores (
    pair      bytea       PRIMARY KEY,
    score     real        NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rerank_scores_stored_at ON recommender.rerank_scores (stored_at);
COMMENT ON TABLE recommender.rerank_scores IS
    'recommender cross-encoder scores shared by every backend: (pair key, logit). A cache written by the recommendation functions; pruned to recommender.rerank_share_seconds.';

-- Users whose interactions changed while recommender.precompute_homepage was on (the
-- interactions trigger queues them), one row each, for the queue worker.
CREATE TABLE recommender.homepage_queue (
    user_id   text        PRIMARY KEY,
    queued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX homepage_queue_queued_at ON recommender.homepage_queue (queued_at, user_id);
COMMENT ON TABLE recommender.homepage_queue IS
    'recommender users whose homepage the queue worker computes ahead of their next call (recommender.precompute_homepage).';

-- Deletes the shared scores stored more than recommender.rerank_share_seconds ago (all of them
-- at 0); returns how many. The queue worker runs it every minute; without the worker, schedule
-- it (pg_cron). Owner or superuser.
CREATE FUNCTION recommender.prune_rerank_scores() RETURNS bigint
LANGUAGE sql VOLATILE
AS $$
WITH gone AS (
    DELETE FROM recommender.rerank_scores
     WHERE stored_at < now() - recommender._setting('recommender.rerank_share_seconds')::interval
    RETURNING 1)
SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION recommender.prune_rerank_scores() IS
    'Deletes the shared cross-encoder scores older than recommender.rerank_share_seconds; returns how many. The queue worker runs it every minute.';

-- Takes the n users queued longest off the queue (the queue worker commits this at once, so a
-- track() of the same user meanwhile never waits for a precompute: it queues the user again).
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
                              ORDER BY h.queued_at, h.user_id
                              LIMIT n
                                FOR UPDATE SKIP LOCKED)
        RETURNING q.user_id)
    SELECT array_agg(user_id ORDER BY user_id) INTO users FROM taken;
    RETURN coalesce(users, '{}');
END
$$;

-- Computes the homepage of each user, each in its own subtransaction: the profile and the
-- collaborative candidates are refreshed and the rerank pairs scored into
-- recommender.rerank_scores, so the user's next call finds them. A user whose homepage fails gets
-- a WARNING (a precompute is only a head start: the user's own call computes it again). The
-- queue worker calls it with what _dequeue_homepages() took; owner or superuser.
CREATE FUNCTION recommender._precompute_homepages(users text[], OUT processed integer, OUT failed integer)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    u text;
BEGIN
    processed := 0;
    failed := 0;
    FOREACH u IN ARRAY coalesce(users, '{}') LOOP
        BEGIN
            -- any k up to recommender.rerank_top_n reranks the same candidates
            PERFORM FROM recommender.homepage(u, 10);
            processed := processed + 1;
        EXCEPTION WHEN OTHERS THEN
            failed := failed + 1;
            RAISE WARNING 'recommender: the homepage of user % was not precomputed: %', u, SQLERRM;
        END;
    END LOOP;
END
$$;
