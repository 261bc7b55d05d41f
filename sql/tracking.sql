-- recommender, unit "tracking" (src/lib.rs wires the units and their order).
-- Tracking and profile maintenance: track() and friends.

CREATE FUNCTION recommender.track(
    user_id     text,
    product_id  bigint,
    type        recommender.interaction_type,
    quantity    numeric DEFAULT 1,
    value       numeric DEFAULT NULL,
    basket_id   text DEFAULT NULL,
    request_id  text DEFAULT NULL,
    "position"  integer DEFAULT NULL,
    occurred_at timestamptz DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    id bigint;
BEGIN
    IF track.user_id IS NULL OR track.product_id IS NULL OR track.type IS NULL THEN
        RAISE EXCEPTION 'recommender: user_id, product_id and type must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM recommender.products p WHERE p.product_id = track.product_id) THEN
        RAISE EXCEPTION 'recommender: product % does not exist', track.product_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'product_id is recommender.products.product_id; look it up by external_id there.';
    END IF;
    INSERT INTO recommender.interactions AS i
           (user_id, product_id, type, quantity, value, basket_id, request_id, position, occurred_at)
    VALUES (track.user_id, track.product_id, track.type, coalesce(track.quantity, 1), track.value, track.basket_id,
            track.request_id, track."position", coalesce(track.occurred_at, recommender.clock()))
    RETURNING i.interaction_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION recommender.track(text, bigint, recommender.interaction_type, numeric, numeric, text, text, integer, timestamptz) IS
    'Records one interaction (at the clock unless occurred_at is given) and returns its id. uuid/bigint user ids: pass user_id::text.';

CREATE PROCEDURE recommender.rebuild_user_profiles(batch_size integer DEFAULT 200)
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
