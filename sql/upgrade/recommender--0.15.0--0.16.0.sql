-- recommender 0.15.0 -> 0.16.0: a path to a superuser's rights closed (README "Trust model").
-- Released: never edit.
--   * recommender.rebuild_user_profiles() (replaced): names count, array_agg, cardinality,
--     clock_timestamp and round with pg_catalog. A procedure cannot pin its search_path, so it ran
--     those calls with the caller's: a role that may create objects in a schema on a superuser's
--     path (the database's owner, in public) could plant count(text), array_agg(text) or
--     cardinality(text[]), which match closer than the built-ins' "any" and polymorphic arguments,
--     and have them run with the superuser's rights by its next CALL rebuild_user_profiles().
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.16.0'" to load this file. \quit

CREATE OR REPLACE PROCEDURE recommender.rebuild_user_profiles(batch_size integer DEFAULT 200)
LANGUAGE plpgsql
AS $$
DECLARE
    total      bigint;
    done       bigint := 0;
    users      text[];
    u          text;
    last_user  text := '';
    started    timestamptz := pg_catalog.clock_timestamp();
    last_note  timestamptz := pg_catalog.clock_timestamp();
BEGIN
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
