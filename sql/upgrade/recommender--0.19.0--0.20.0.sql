-- recommender 0.19.0 -> 0.20.0, a security release (README "Upgrades"):
--   * refresh_embeddings, process_queue and rebuild_user_profiles name pg_catalog in the types of
--     their DECLARE sections (timestamptz, text, record). PL/pgSQL resolves those types when it
--     compiles the procedure, before its first statement pins the search_path: with a database
--     search_path that puts a schema the database owner controls before pg_catalog, a domain
--     named timestamptz (or text, record) there ran its CHECK as the superuser or pg_cron job
--     that called the procedure.
--   * clock(), _clean_price, _clean_stock and _item, which keep the caller's search_path so the
--     planner can inline them, name pg_catalog for every type, function and operator (clock()
--     is the default of impressions.shown_at and email_sends: an INSERT by a superuser under
--     such a path resolved its cast there).
-- The queue worker (library, no SQL) calls only functions of the installed extension.
-- Released: never edit.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.20.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION recommender.clock() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(CASE WHEN pg_catalog.current_setting('recommender.as_of', true) OPERATOR(pg_catalog.=) ''
                      THEN NULL ELSE pg_catalog.current_setting('recommender.as_of', true) END::pg_catalog.timestamptz,
                      pg_catalog.now()) $$;

CREATE OR REPLACE FUNCTION recommender._clean_price(p numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN p OPERATOR(pg_catalog.>=) 0 AND p OPERATOR(pg_catalog.<=) 1e12 THEN p END $$;

CREATE OR REPLACE FUNCTION recommender._clean_stock(s numeric) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN s OPERATOR(pg_catalog.>=) -2147483648 AND s OPERATOR(pg_catalog.<=) 2147483647
                  THEN pg_catalog.round(s)::integer
                  WHEN s OPERATOR(pg_catalog.>) 2147483647 THEN 2147483647
                  WHEN s OPERATOR(pg_catalog.<) -2147483648 THEN 0 END $$;

CREATE OR REPLACE FUNCTION recommender._item(r anyelement) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
SELECT pg_catalog.jsonb_build_object(
           'product_id', j OPERATOR(pg_catalog.->) 'product_id',
           'external_product_id', j OPERATOR(pg_catalog.->) 'external_product_id',
           'name', j OPERATOR(pg_catalog.->) 'name', 'category', j OPERATOR(pg_catalog.->) 'category',
           'price', j OPERATOR(pg_catalog.->) 'price', 'image_url', j OPERATOR(pg_catalog.->) 'image_url',
           'score', pg_catalog.round((j OPERATOR(pg_catalog.->>) 'score')::numeric, 6),
           'position', j OPERATOR(pg_catalog.->) 'position')
  FROM (SELECT pg_catalog.to_jsonb(r) AS j) s
$$;

CREATE OR REPLACE PROCEDURE recommender.refresh_embeddings(batch_size integer DEFAULT 256, force boolean DEFAULT false)
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

CREATE OR REPLACE PROCEDURE recommender.process_queue(batch_size integer DEFAULT NULL, retry_now boolean DEFAULT false)
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

CREATE OR REPLACE PROCEDURE recommender.rebuild_user_profiles(batch_size integer DEFAULT 200)
LANGUAGE plpgsql
AS $$
DECLARE
    total      bigint;
    done       bigint := 0;
    users      pg_catalog.text[];
    u          pg_catalog.text;
    last_user  pg_catalog.text := '';
    started    pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    last_note  pg_catalog.timestamptz := pg_catalog.clock_timestamp();
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);  -- and after every COMMIT (README "Privileges")
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 100000 THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT pg_catalog.count(DISTINCT i.user_id) INTO total FROM recommender.interactions i;
    RAISE NOTICE 'recommender: rebuilding % user profile(s)', total;
    LOOP
        SELECT pg_catalog.array_agg(s.user_id ORDER BY s.user_id) INTO users
          FROM (SELECT DISTINCT i.user_id FROM recommender.interactions i WHERE i.user_id > last_user
                 ORDER BY i.user_id LIMIT batch_size) s;
        EXIT WHEN users IS NULL;
        FOREACH u IN ARRAY users LOOP
            PERFORM recommender.rebuild_user_profile(u);
        END LOOP;
        done := done + pg_catalog.cardinality(users);
        last_user := users[pg_catalog.cardinality(users)];
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF pg_catalog.clock_timestamp() - last_note >= interval '2 seconds' THEN
            RAISE NOTICE 'recommender: rebuilt %/% profiles', done, total;
            last_note := pg_catalog.clock_timestamp();
        END IF;
    END LOOP;
    DELETE FROM recommender.user_profiles p
     WHERE NOT EXISTS (SELECT 1 FROM recommender.interactions i WHERE i.user_id = p.user_id);
    RAISE NOTICE 'recommender: rebuilt %/% profiles in % s', done, total,
        pg_catalog.round(extract(epoch FROM pg_catalog.clock_timestamp() - started)::numeric, 1);
END
$$;
