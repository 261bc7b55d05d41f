-- recommender 0.21.0 -> 0.22.0: queue_homepages(), a warm start for the shared cross-encoder
-- scores; shared scores kept while they are read; profiles marked before 0.21.0 are rebuilt at
-- the next call (README "Upgrades").
-- Released: never edit.
--   * queue_homepages(interval) (new; owner or superuser) queues the users active within the
--     interval for the queue worker to compute their homepage ahead; homepage_queue.warm_start
--     (new) marks them, and _dequeue_homepages takes them after users queued by interactions.
--   * _precompute_homepages keeps no scores in the worker's backend, so a pair it scored before
--     and the shared table has since pruned is stored there again.
--   * _keep_rerank_scores keeps a pair stored already from now on (the library passes the pairs
--     it read in the second half of their time), skipping rows another transaction holds, so a
--     pair still read is not pruned; prune_rerank_scores skips such rows too, never waiting.
--   * _sync_read reads a mapped name the synced table no longer has as a call of the new
--     _sync_missing, which fails the statement as a missing column does; before, a name that is
--     also a relation's in the statement (the trigger's new_rows, old_rows) read the whole row.
--   * A profile marked for a rebuild by an UPDATE or DELETE of its user's interactions before
--     0.21.0 kept its cache key and was served until the user's next interaction: its key is
--     cleared now, so the next call rebuilds it (as 0.21.0's trigger does for later marks).
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.22.0'" to load this file. \quit

UPDATE recommender.user_profiles SET weights_version = NULL
 WHERE full_at IS NULL AND weights_version IS NOT NULL;

-- Users queued by queue_homepages() are taken after those queued by their interactions.
ALTER TABLE recommender.homepage_queue ADD COLUMN warm_start boolean NOT NULL DEFAULT false;
DROP INDEX recommender.homepage_queue_queued_at;
CREATE INDEX homepage_queue_order ON recommender.homepage_queue (warm_start, queued_at, user_id);

-- Takes the n users queued longest off the queue, those of a warm start last (0.22.0) (the queue
-- worker commits this at once, so a track() of the same user meanwhile never waits for a
-- precompute: it queues the user again).
CREATE OR REPLACE FUNCTION recommender._dequeue_homepages(n integer) RETURNS text[]
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
ALTER FUNCTION recommender._dequeue_homepages(integer) SET search_path = pg_catalog, pg_temp;

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
REVOKE ALL ON FUNCTION recommender.queue_homepages(interval) FROM PUBLIC;

-- Computes the homepage of each user, each in its own subtransaction: the profile and the
-- collaborative candidates are refreshed and the rerank pairs scored into
-- recommender.rerank_scores, so the user's next call finds them. A user whose homepage fails, or
-- waits more than a second for a lock (the user's own call holding the profile), gets a WARNING
-- (a precompute is only a head start: the user's own call computes it). The queue worker calls
-- it with what _dequeue_homepages() took; owner or superuser. It keeps no scores of its own in
-- the backend (0.22.0): a pair it scored before is looked up in the shared table, and scored and
-- stored there again once pruned, so everything it computed is in the shared table.
CREATE OR REPLACE FUNCTION recommender._precompute_homepages(users text[], OUT processed integer, OUT failed integer)
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
ALTER FUNCTION recommender._precompute_homepages(text[]) SET search_path = pg_catalog, pg_temp;

-- Stores pairs the cross-encoder just scored, in key order, and deletes up to prune of the
-- expired ones (oldest first), so the table stays bounded without the queue worker. A pair
-- stored already is kept from now on (0.22.0: a call that read it in the second half of its time
-- passes it, so a pair still read is not pruned), unless another transaction holds it: rows
-- another holds are skipped, never waited for. Never waits more than 10 ms for another
-- transaction and never fails the call: a pair another transaction is storing, a lock, a
-- deadlock or a serialization conflict leaves the pairs unstored (another call stores them).
CREATE OR REPLACE FUNCTION recommender._keep_rerank_scores(pairs bytea[], scores real[], prune integer) RETURNS void
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
ALTER FUNCTION recommender._keep_rerank_scores(bytea[], real[], integer) SET search_path = pg_catalog, pg_temp;

-- Deletes the shared scores stored more than recommender.rerank_share_seconds ago (all of them
-- at 0); returns how many. The queue worker runs it every minute (the recommendation functions
-- also delete a few at a time as they store new ones). Rows another transaction holds (one
-- renewing them) are left for the next run, never waited for (0.22.0). Owner or superuser.
CREATE OR REPLACE FUNCTION recommender.prune_rerank_scores() RETURNS bigint
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
ALTER FUNCTION recommender.prune_rerank_scores() SET search_path = pg_catalog, pg_temp;

-- Fails like a missing column: _sync_read's reading of a mapped column the synced table no longer
-- has (0.22.0). IMMUTABLE, so the statement fails when it is planned, with or without rows.
CREATE FUNCTION recommender._sync_missing(source text, col text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'recommender: column "%" of %, mapped by sync_products(), does not exist', col, source
        USING ERRCODE = 'undefined_column',
              HINT = 'Map the table as it is now: SELECT recommender.sync_products(...) with its current column names.';
END
$$;
ALTER FUNCTION recommender._sync_missing(text, text) SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION recommender._sync_missing(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recommender._sync_missing(text, text) TO recommender_writer;

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
--   * a mapped name the table no longer has (a column dropped or renamed after sync_products) is
--     read as a call of _sync_missing, which fails the statement as a missing column does
--     (0.22.0: before, the name was spliced in, and one that is also a relation's in the
--     statement, the trigger's new_rows or old_rows, read the whole row as text).
-- target is one of a fixed set of built-in type names: the callers below pass literals.
CREATE OR REPLACE FUNCTION recommender._sync_read(source regclass, col name, target text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT CASE WHEN t.typ IS NULL
            THEN pg_catalog.format('recommender._sync_missing(%L, %L)::pg_catalog.%s', source::text, col, target)
            WHEN t.typ < 16384::oid
            THEN pg_catalog.format('(%I)::pg_catalog.%s', col, target)
            ELSE pg_catalog.format('(CASE WHEN (%1$I) IS NULL THEN NULL ELSE pg_catalog.format(''%%s'', %1$I) END)::pg_catalog.%2$s',
                                   col, target) END
  FROM (SELECT (SELECT a.atttypid FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped) AS typ) t
$$;
ALTER FUNCTION recommender._sync_read(regclass, name, text) SET search_path = pg_catalog, pg_temp;
