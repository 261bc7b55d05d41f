-- recommender, unit "evaluate": the offline protocol of README "Quality" as functions (0.13.0):
-- recommender.evaluate() measures the homepage against the baselines on the store's own data,
-- recommender.tune() searches its settings the same way and adopts the winner for the database.
--
-- Both hold out the most recent part of the store's interactions, let the extension's own
-- triggers take them out of every aggregate, rebuild the item model from what is left, rank the
-- full catalogue for a sample of the users with held-out purchases and score the lists against
-- those purchases. Then they roll all of it back: the work runs in a subtransaction ended by an
-- error of their own (SQLSTATE RE001, caught), and only the figures survive. Nothing from the
-- held-out part reaches the aggregates, profiles, caches or model that produce the lists, and
-- nothing of the store changes.
--
-- While they run (seconds on a small store, minutes on a large one) the deleted rows, the
-- aggregate rows they touched and the held-out users' profiles stay locked, so a track() of the
-- same products and those users' homepage calls wait until they return: run them on a copy
-- (CREATE DATABASE eval TEMPLATE shop) or at a quiet hour. Owner or superuser.
--
-- split 'time': every interaction in the last `holdout` days (default 28) is held out; the clock
-- is the first of those days. split 'user': each user's last `holdout` purchases (default 10) and
-- everything the user did from the first of them on are held out; the clock is just after the
-- last interaction. `until`: interactions at or after it are left out too, unscored, as if the
-- store ended there (a validation split that never sees the test period after it). Relevant: the
-- products a user bought in the held-out part. "new" scores only products the user never bought
-- before it, with lists that leave those out (homepage with recommender.enable_repurchase = off).

-- One homepage list per sample user under `label`, with `settings` (setting name -> value) SET
-- LOCAL for the lists and put back after; also the "new" lists when new_too. Reads and writes the
-- temporary tables of _evaluate_run(), inside its subtransaction; each user's profile is rebuilt
-- for it (a cached one may hold another setting's work).
CREATE FUNCTION recommender._evaluate_lists(label text, settings jsonb, k integer, new_too boolean) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    s        record;
    saved    jsonb := '{}';
    u        record;
    done     integer := 0;
    total    integer := (SELECT count(*) FROM _rec_eval_users);
    t0       timestamptz := clock_timestamp();
BEGIN
    FOR s IN SELECT j.key, j.value #>> '{}' AS value FROM jsonb_each(settings) j LOOP
        IF s.key NOT IN (SELECT t.name FROM recommender._tunable_settings() t) THEN
            RAISE EXCEPTION 'recommender.evaluate: % is not a setting it varies', s.key
                  USING ERRCODE = 'invalid_parameter_value';
        END IF;
        saved := saved || jsonb_build_object(s.key, recommender._setting(s.key));
        PERFORM set_config(s.key, s.value, true);
    END LOOP;
    IF new_too THEN
        saved := jsonb_build_object('recommender.enable_repurchase', recommender._setting('recommender.enable_repurchase')) || saved;
    END IF;
    FOR u IN SELECT e.user_id FROM _rec_eval_users e ORDER BY e.user_id LOOP
        DELETE FROM recommender.user_profiles p WHERE p.user_id = u.user_id;
        INSERT INTO _rec_eval_lists
        SELECT label, 'all', u.user_id, h.position, h.product_id FROM recommender.homepage(u.user_id, k) h;
        IF new_too THEN
            PERFORM set_config('recommender.enable_repurchase', 'off', true);
            INSERT INTO _rec_eval_lists
            SELECT label, 'new', u.user_id, h.position, h.product_id FROM recommender.homepage(u.user_id, k) h
             WHERE NOT EXISTS (SELECT FROM _rec_eval_train r WHERE r.user_id = u.user_id AND r.product_id = h.product_id);
            PERFORM set_config('recommender.enable_repurchase', saved ->> 'recommender.enable_repurchase', true);
        END IF;
        done := done + 1;
        IF clock_timestamp() - t0 > interval '10 seconds' THEN
            RAISE NOTICE 'recommender.evaluate: lists of % for % of % users', label, done, total;
            t0 := clock_timestamp();
        END IF;
    END LOOP;
    FOR s IN SELECT j.key, j.value #>> '{}' AS value FROM jsonb_each(saved) j LOOP
        PERFORM set_config(s.key, s.value, true);
    END LOOP;
END
$$;

-- The settings tune() searches, and the values it tries: the coordinates of its ascent, in order.
-- One row per setting; settings tried together (the blend's three weights) share a group.
CREATE FUNCTION recommender._tunable_settings()
RETURNS TABLE (grp integer, name text, tried text[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
VALUES (1, 'recommender.homepage_weight_content',       '{0.05,0,0.1,0.2,0.3}'::text[]),
       (1, 'recommender.homepage_weight_collaborative', '{0.9,1,0.8,0.6,0.4}'),
       (1, 'recommender.homepage_weight_popularity',    '{0.05,0,0.1,0.2,0.3}'),
       (2, 'recommender.repeat_share',                  '{0.5,0.7,0.8,0.9,0.95,1}'),
       (3, 'recommender.decay_days',                    '{30,90,180,365}'),
       (4, 'recommender.max_per_category',              '{3,5,10}'),
       (5, 'recommender.enable_rerank',                 '{on,off}'),
       (6, 'recommender.collaborative_candidates',      '{50,100,200}'),
       (7, 'recommender.item_model_recency',            '{0,5,10,30,100}')
$$;

-- The run both functions share: the split, the homepage lists with the caller's settings (label
-- 'homepage'), then for each coordinate (a JSON array of variants, each an object of settings)
-- the lists with the best settings so far changed by each variant, keeping the variant with the
-- highest NDCG@k over all items (ties keep the settings before); the baselines when asked; the
-- figures. Returns them as JSON after rolling everything back.
CREATE FUNCTION recommender._evaluate_run(k integer, split text, holdout integer, sample integer,
                                          until timestamptz, coordinates jsonb, baselines boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    n_held    integer := coalesce(holdout, CASE split WHEN 'user' THEN 10 ELSE 28 END);
    t         timestamptz;
    had_model boolean;
    build     record;
    window_days integer := recommender._setting('recommender.popularity_window_days')::integer;
    total     integer;
    coord     jsonb;
    variant   jsonb;
    tried     jsonb;
    labels    text[];
    best      text := 'homepage';
    n         integer := 0;
    result    jsonb;
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'recommender.evaluate: k must be between 1 and 1000, not %', coalesce(k::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF split IS NULL OR split NOT IN ('time', 'user') THEN
        RAISE EXCEPTION 'recommender.evaluate: unknown split %', coalesce(quote_literal(split), 'NULL')
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'split => ''time'' holds out the last holdout days, split => ''user'' each user''s last holdout purchases.';
    END IF;
    IF n_held < 1 OR n_held > 3650 OR sample < 1 THEN
        RAISE EXCEPTION 'recommender.evaluate: holdout must be between 1 and 3650 and sample positive'
              USING ERRCODE = 'invalid_parameter_value', HINT = 'sample => NULL evaluates every user with held-out purchases.';
    END IF;

    BEGIN
        -- 1. The held-out interactions and the clock.
        IF until IS NOT NULL THEN
            DELETE FROM recommender.interactions i WHERE i.occurred_at >= until;
        END IF;
        IF split = 'time' THEN
            SELECT (max(i.occurred_at) - make_interval(days => n_held))::date::timestamptz INTO t
              FROM recommender.interactions i;
            CREATE TEMP TABLE _rec_eval_held ON COMMIT DROP AS
            SELECT i.interaction_id, i.user_id, i.product_id, i.type
              FROM recommender.interactions i WHERE i.occurred_at >= t;
        ELSE
            SELECT max(i.occurred_at) + interval '1 second' INTO t FROM recommender.interactions i;
            -- exactly n_held purchases per user (ties in time broken by interaction id), and the
            -- user's other interactions from the first of them on
            CREATE TEMP TABLE _rec_eval_held ON COMMIT DROP AS
            WITH last AS (
              SELECT r.interaction_id, r.user_id, r.occurred_at FROM (
                SELECT x.interaction_id, x.user_id, x.occurred_at,
                       row_number() OVER (PARTITION BY x.user_id ORDER BY x.occurred_at DESC, x.interaction_id DESC) AS rk
                  FROM recommender.interactions x WHERE x.type = 'PURCHASE') r
               WHERE r.rk <= n_held),
            since AS (SELECT l.user_id, min(l.occurred_at) AS since FROM last l GROUP BY 1)
            SELECT i.interaction_id, i.user_id, i.product_id, i.type
              FROM recommender.interactions i JOIN since c ON c.user_id = i.user_id AND i.occurred_at >= c.since
             WHERE i.type <> 'PURCHASE' OR i.interaction_id IN (SELECT l.interaction_id FROM last l);
        END IF;
        IF t IS NULL THEN
            RAISE EXCEPTION 'recommender.evaluate: no interactions to evaluate on'
                  USING ERRCODE = 'no_data_found';
        END IF;
        CREATE TEMP TABLE _rec_eval_test ON COMMIT DROP AS
        SELECT DISTINCT h.user_id, h.product_id FROM _rec_eval_held h WHERE h.type = 'PURCHASE';
        -- the sample, in a fixed pseudo-random order; every second one confirms what tune()'s
        -- search chose on the others
        CREATE TEMP TABLE _rec_eval_users ON COMMIT DROP AS
        SELECT s.user_id, row_number() OVER (ORDER BY md5(s.user_id), s.user_id) % 2 = 0 AS confirm
          FROM (SELECT d.user_id FROM (SELECT DISTINCT e.user_id FROM _rec_eval_test e) d
                 ORDER BY md5(d.user_id), d.user_id LIMIT sample) s;
        SELECT count(*) INTO total FROM _rec_eval_users;
        IF total = 0 THEN
            RAISE EXCEPTION 'recommender.evaluate: no purchases in the held-out part'
                  USING ERRCODE = 'invalid_parameter_value',
                        HINT = CASE split WHEN 'time' THEN 'A longer holdout, or split => ''user''.'
                                          ELSE 'The store has no purchases to hold out.' END;
        END IF;
        RAISE NOTICE 'recommender.evaluate: holding out % interactions (% purchases of % users) from %; clock %; % users sampled',
              (SELECT count(*) FROM _rec_eval_held), (SELECT count(*) FROM _rec_eval_test),
              (SELECT count(DISTINCT e.user_id) FROM _rec_eval_test e),
              CASE split WHEN 'time' THEN 'the last ' || n_held || ' days' ELSE 'each user''s last ' || n_held || ' purchases' END,
              t, total;

        -- 2. Out of the store, through the triggers (aggregates, co-purchase, profiles' sums).
        DELETE FROM recommender.interactions i USING _rec_eval_held h WHERE i.interaction_id = h.interaction_id;
        PERFORM set_config('recommender.as_of', t::text, true);
        -- popularity summed by this session alone: no other session's shared sums (made from
        -- everything) reach the lists, and no live call waits for this run's
        PERFORM set_config('recommender.share_popularity', 'off', true);
        had_model := EXISTS (SELECT FROM recommender.item_model);
        DELETE FROM recommender.item_model;
        IF had_model THEN
            -- with the latest build's arguments, else build_item_model()'s defaults (the build
            -- row this adds is rolled back with the rest)
            SELECT b.items, b.lambda, b.neighbors, b.adoption_days, b.adoption_lambda, b.adoption_weight
              INTO build FROM recommender.item_model_builds b
             ORDER BY b.build_id DESC LIMIT 1;
            IF found THEN
                RAISE NOTICE 'recommender.evaluate: rebuilding the item model from what is left (items %, lambda %, neighbors %, adoption_days %, adoption_lambda %, adoption_weight %, as last built)',
                    build.items, build.lambda, build.neighbors, build.adoption_days, build.adoption_lambda, build.adoption_weight;
                CALL recommender.build_item_model(build.items, build.lambda, build.neighbors,
                                                  build.adoption_days, build.adoption_lambda, build.adoption_weight);
            ELSE
                RAISE NOTICE 'recommender.evaluate: rebuilding the item model from what is left (build_item_model()''s defaults: no build recorded)';
                CALL recommender.build_item_model();
            END IF;
        END IF;
        CREATE TEMP TABLE _rec_eval_train ON COMMIT DROP AS
        SELECT DISTINCT i.user_id, i.product_id FROM recommender.interactions i JOIN _rec_eval_users e USING (user_id)
         WHERE i.type = 'PURCHASE';
        CREATE INDEX ON _rec_eval_train (user_id, product_id);
        ANALYZE _rec_eval_held, _rec_eval_test, _rec_eval_users, _rec_eval_train;
        RAISE NOTICE 'recommender.evaluate: % of the % sampled users bought nothing before the split (they get the cold-start list)',
              total - (SELECT count(DISTINCT r.user_id) FROM _rec_eval_train r), total;
        CREATE TEMP TABLE _rec_eval_rel ON COMMIT DROP AS
        SELECT 'all' AS mode, e.user_id, e.product_id FROM _rec_eval_test e JOIN _rec_eval_users USING (user_id)
        UNION ALL
        SELECT 'new', e.user_id, e.product_id FROM _rec_eval_test e JOIN _rec_eval_users USING (user_id)
         WHERE NOT EXISTS (SELECT FROM _rec_eval_train r WHERE r.user_id = e.user_id AND r.product_id = e.product_id);
        CREATE TEMP TABLE _rec_eval_nrel ON COMMIT DROP AS
        SELECT c.mode, c.user_id, c.n::float8 AS n,
               (SELECT sum(1 / log(2, g + 1)) FROM generate_series(1, least(c.n, k)) g)::float8 AS idcg
          FROM (SELECT r.mode, r.user_id, count(*)::integer AS n FROM _rec_eval_rel r GROUP BY 1, 2) c;
        CREATE TEMP TABLE _rec_eval_lists (method text, mode text, user_id text, rank integer, product_id bigint)
            ON COMMIT DROP;
        -- per method, mode and user: hits, relevant products, DCG and ideal DCG
        CREATE TEMP VIEW _rec_eval_per_user AS
        SELECT m.method, m.mode, n.user_id, count(r.product_id)::float8 AS hits, n.n,
               coalesce(sum(1 / log(2, l.rank + 1)) FILTER (WHERE r.product_id IS NOT NULL), 0)::float8 AS dcg, n.idcg
          FROM (SELECT DISTINCT x.method, x.mode FROM _rec_eval_lists x) m
          JOIN _rec_eval_nrel n ON n.mode = m.mode
          LEFT JOIN _rec_eval_lists l ON l.method = m.method AND l.mode = m.mode AND l.user_id = n.user_id
          LEFT JOIN _rec_eval_rel r ON r.mode = m.mode AND r.user_id = l.user_id AND r.product_id = l.product_id
         GROUP BY m.method, m.mode, n.user_id, n.n, n.idcg;

        -- 3. The lists: homepage as the caller's settings make it, then the search.
        PERFORM recommender._evaluate_lists('homepage', '{}', k, baselines);
        tried := jsonb_build_object('homepage', '{}'::jsonb);
        FOR coord IN SELECT c.value FROM jsonb_array_elements(coalesce(coordinates, '[]')) c LOOP
            labels := ARRAY[best];
            FOR variant IN SELECT v.value FROM jsonb_array_elements(coord) v LOOP
                -- relative to the caller's settings: a value equal to the one in force is left out
                SELECT coalesce(jsonb_object_agg(x.key, x.value), '{}') INTO variant
                  FROM jsonb_each((tried -> best) || variant) x
                 WHERE x.value #>> '{}' IS DISTINCT FROM recommender._setting(x.key);
                CONTINUE WHEN EXISTS (SELECT FROM jsonb_each(tried) x WHERE x.value = variant);
                n := n + 1;
                tried := tried || jsonb_build_object('v' || n, variant);
                labels := labels || ('v' || n);
                PERFORM recommender._evaluate_lists('v' || n, variant, k, false);
            END LOOP;
            best := coalesce((
                SELECT p.method FROM _rec_eval_per_user p
                 WHERE p.mode = 'all' AND p.method = ANY (labels)
                   AND NOT EXISTS (SELECT FROM _rec_eval_users e WHERE e.user_id = p.user_id AND e.confirm)
                 GROUP BY p.method ORDER BY avg(p.dcg / p.idcg) DESC, p.method = best DESC, p.method LIMIT 1), best);
            RAISE NOTICE 'recommender.tune: % of % variants tried; best so far %', n,
                  (SELECT sum(jsonb_array_length(c.value)) FROM jsonb_array_elements(coordinates) c), tried -> best;
        END LOOP;

        IF baselines THEN
            -- popularity: purchases in recommender.popularity_window_days before the clock
            CREATE TEMP TABLE _rec_eval_pop ON COMMIT DROP AS
            SELECT d.product_id, sum(d.purchases) AS n FROM recommender.product_daily d
             WHERE d.day > (t - make_interval(days => window_days))::date AND d.day <= t::date
             GROUP BY 1 HAVING sum(d.purchases) > 0 ORDER BY 2 DESC, 1 LIMIT 5000;
            INSERT INTO _rec_eval_lists
            SELECT 'popularity', 'all', e.user_id, p.rk, p.product_id
              FROM _rec_eval_users e
             CROSS JOIN (SELECT q.product_id, row_number() OVER (ORDER BY q.n DESC, q.product_id) AS rk FROM _rec_eval_pop q) p
             WHERE p.rk <= k;
            INSERT INTO _rec_eval_lists
            SELECT 'popularity', 'new', s.user_id, s.rk, s.product_id FROM (
              SELECT e.user_id, p.product_id, row_number() OVER (PARTITION BY e.user_id ORDER BY p.n DESC, p.product_id) AS rk
                FROM _rec_eval_users e CROSS JOIN _rec_eval_pop p
               WHERE NOT EXISTS (SELECT FROM _rec_eval_train r WHERE r.user_id = e.user_id AND r.product_id = p.product_id)) s
             WHERE s.rk <= k;
            -- repeat purchases: the user's own most bought ("buy it again"; nothing new by definition)
            INSERT INTO _rec_eval_lists
            SELECT 'repeat purchases', 'all', s.user_id, s.rk, s.product_id FROM (
              SELECT up.user_id, up.product_id,
                     row_number() OVER (PARTITION BY up.user_id ORDER BY up.purchases DESC, up.last_at DESC, up.product_id) AS rk
                FROM recommender.user_products up JOIN _rec_eval_users e USING (user_id) WHERE up.purchases > 0) s
             WHERE s.rk <= k;
            -- item-kNN: co-occurrence cosine over baskets, from the user's 50 most recent purchased
            -- products to each one's 100 most co-purchased partners
            CREATE TEMP TABLE _rec_eval_knn ON COMMIT DROP AS
            WITH seeds AS (
              SELECT r.user_id, r.product_id FROM (
                SELECT up.user_id, up.product_id,
                       row_number() OVER (PARTITION BY up.user_id ORDER BY up.last_at DESC, up.product_id) AS rk
                  FROM recommender.user_products up JOIN _rec_eval_users e USING (user_id) WHERE up.purchases > 0) r
               WHERE r.rk <= 50),
            partners AS (
              SELECT s.user_id, s.product_id AS seed, c.product_b, c.baskets
                FROM seeds s
               CROSS JOIN LATERAL (SELECT x.product_b, x.baskets FROM recommender.copurchase x
                                    WHERE x.product_a = s.product_id AND x.baskets > 0
                                    ORDER BY x.baskets DESC LIMIT 100) c),
            baskets AS (
              SELECT b.product_id, count(DISTINCT b.basket_key)::float8 AS n FROM recommender.interactions b
               WHERE b.type = 'PURCHASE'
                 AND b.product_id IN (SELECT p.seed FROM partners p UNION SELECT p.product_b FROM partners p)
               GROUP BY 1)
            SELECT p.user_id, p.product_b AS product_id, sum(p.baskets / sqrt(ba.n * bb.n)) AS score
              FROM partners p
              JOIN baskets ba ON ba.product_id = p.seed
              JOIN baskets bb ON bb.product_id = p.product_b
             GROUP BY 1, 2;
            -- the item model alone (EASE over the most bought products), when the store has one
            CREATE TEMP TABLE _rec_eval_ease ON COMMIT DROP AS
            SELECT up.user_id, l.neighbor_id AS product_id, sum(l.score)::float8 AS score
              FROM recommender.user_products up JOIN _rec_eval_users e USING (user_id)
              JOIN recommender.item_model m ON m.product_id = up.product_id
             CROSS JOIN LATERAL unnest(m.neighbor_ids, m.scores) AS l(neighbor_id, score)
             WHERE up.purchases > 0
             GROUP BY 1, 2;
            INSERT INTO _rec_eval_lists
            SELECT s.method, s.mode, s.user_id, s.rk, s.product_id FROM (
              SELECT x.method, m.mode, x.user_id, x.product_id,
                     row_number() OVER (PARTITION BY x.method, m.mode, x.user_id ORDER BY x.score DESC, x.product_id) AS rk
                FROM (SELECT 'item-kNN' AS method, * FROM _rec_eval_knn
                      UNION ALL SELECT 'item model', * FROM _rec_eval_ease WHERE had_model) x
               CROSS JOIN (VALUES ('all'), ('new')) m(mode)
               WHERE m.mode = 'all'
                  OR NOT EXISTS (SELECT FROM _rec_eval_train r WHERE r.user_id = x.user_id AND r.product_id = x.product_id)) s
             WHERE s.rk <= k;
        END IF;

        ANALYZE _rec_eval_lists, _rec_eval_rel, _rec_eval_nrel;
        -- 4. The figures: means over users with their standard errors (sd / sqrt(n)), and the
        -- caller's homepage minus each other list, paired over the same users.
        WITH per_user AS (SELECT * FROM _rec_eval_per_user),
        paired AS (
          SELECT b.method, b.mode, avg(h.dcg / h.idcg - b.dcg / b.idcg) AS nd,
                 stddev_samp(h.dcg / h.idcg - b.dcg / b.idcg) / sqrt(count(*)) AS nd_se,
                 avg(h.hits / h.n - b.hits / b.n) AS rd,
                 stddev_samp(h.hits / h.n - b.hits / b.n) / sqrt(count(*)) AS rd_se
            FROM per_user h JOIN per_user b ON b.mode = h.mode AND b.user_id = h.user_id
           WHERE h.method = 'homepage' AND b.method <> 'homepage'
           GROUP BY b.method, b.mode),
        covered AS (
          SELECT l.method, l.mode, count(DISTINCT l.product_id)::float8
                 / greatest((SELECT count(*) FROM recommender.products), 1) AS c
            FROM _rec_eval_lists l GROUP BY 1, 2)
        SELECT jsonb_build_object(
                 'clock', t, 'users', total, 'best', best, 'tried', tried,
                 -- the search's winner against the caller's settings on the confirming half only
                 'confirm', (SELECT jsonb_build_object(
                                'users', count(*),
                                'ndcg_in_force', avg(h.dcg / h.idcg),
                                'ndcg_in_force_se', stddev_samp(h.dcg / h.idcg) / sqrt(count(*)),
                                'ndcg_tuned', avg(b.dcg / b.idcg),
                                'ndcg_tuned_se', stddev_samp(b.dcg / b.idcg) / sqrt(count(*)),
                                'gain', avg(b.dcg / b.idcg - h.dcg / h.idcg),
                                'gain_se', stddev_samp(b.dcg / b.idcg - h.dcg / h.idcg) / sqrt(count(*)))
                               FROM _rec_eval_per_user h
                               JOIN _rec_eval_per_user b ON b.user_id = h.user_id AND b.mode = h.mode
                               JOIN _rec_eval_users e ON e.user_id = h.user_id AND e.confirm
                              WHERE h.mode = 'all' AND h.method = 'homepage' AND b.method = best),
                 'figures', jsonb_agg(to_jsonb(f) ORDER BY f.items, f.ndcg DESC, f.method))
          INTO result FROM (
          SELECT p.mode AS items, p.method, count(*) AS users,
                 avg((p.hits > 0)::int) AS hr, avg(p.hits / p.n) AS recall, avg(p.dcg / p.idcg) AS ndcg,
                 min(c.c) AS coverage,
                 stddev_samp((p.hits > 0)::int) / sqrt(count(*)) AS hr_se,
                 stddev_samp(p.hits / p.n) / sqrt(count(*)) AS recall_se,
                 stddev_samp(p.dcg / p.idcg) / sqrt(count(*)) AS ndcg_se,
                 min(d.nd) AS ndcg_diff, min(d.nd_se) AS ndcg_diff_se, min(d.rd) AS recall_diff, min(d.rd_se) AS recall_diff_se
            FROM per_user p
            JOIN covered c ON c.method = p.method AND c.mode = p.mode
            LEFT JOIN paired d ON d.method = p.method AND d.mode = p.mode
           GROUP BY p.mode, p.method) f;

        -- 5. Everything above is undone; only the figures survive the rollback.
        RAISE EXCEPTION USING ERRCODE = 'RE001', MESSAGE = 'recommender.evaluate: rolling back';
    EXCEPTION WHEN SQLSTATE 'RE001' THEN
        NULL;
    END;
    RETURN result;
END
$$;

-- One row of evaluate(): a method's figures over one kind of items ('all', 'new'). ndcg_diff and
-- recall_diff: homepage minus the method, paired over the same users (NULL for homepage itself).
CREATE TYPE recommender.evaluation AS (
    items text, method text, users bigint,
    hr double precision, recall double precision, ndcg double precision, coverage double precision,
    hr_se double precision, recall_se double precision, ndcg_se double precision,
    ndcg_diff double precision, ndcg_diff_se double precision,
    recall_diff double precision, recall_diff_se double precision
);
COMMENT ON TYPE recommender.evaluation IS
    'A row of recommender.evaluate(): one method''s HR, Recall, NDCG and coverage @k over all items or items new to the user, with standard errors and the paired difference homepage minus it.';

-- The offline evaluation: the homepage with the caller's settings (SET LOCAL a weight, call it,
-- and the figures are that setting's) against popularity, repeat purchases, item-kNN and the item
-- model alone.
CREATE FUNCTION recommender.evaluate(k integer DEFAULT 10,
                                     split text DEFAULT 'time',
                                     holdout integer DEFAULT NULL,
                                     sample integer DEFAULT NULL,
                                     until timestamptz DEFAULT NULL)
RETURNS SETOF recommender.evaluation
LANGUAGE sql VOLATILE
AS $$
SELECT * FROM jsonb_populate_recordset(NULL::recommender.evaluation,
                                       recommender._evaluate_run(k, split, holdout, sample, until, NULL, true) -> 'figures')
$$;
COMMENT ON FUNCTION recommender.evaluate(integer, text, integer, integer, timestamp with time zone) IS
    'Offline evaluation (README "Quality"): holds out the last holdout days (split ''time'', 28) or each user''s last holdout purchases (split ''user'', 10) and what comes at or after until, rebuilds aggregates and the item model without them, ranks the full catalogue with homepage (the caller''s settings) and the baselines for sample users, returns HR, Recall, NDCG and coverage @k with standard errors and paired differences to homepage; rolls everything back. Owner or superuser.';

-- tune()'s runs: the settings in force and the winner, with their validation figures.
CREATE TABLE recommender.tuning_runs (
    run_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tuned_at      timestamptz NOT NULL DEFAULT now(),
    split         text NOT NULL,
    holdout       integer,
    sample        integer,
    until         timestamptz,
    clock         timestamptz NOT NULL,      -- the validation split's clock
    users         integer NOT NULL,          -- the confirming half of the sample, the figures' users
    variants      integer NOT NULL,          -- settings tried besides those in force
    in_force      jsonb NOT NULL,            -- setting -> value when tune() ran
    tuned         jsonb NOT NULL,            -- setting -> value of the winner
    ndcg_in_force double precision NOT NULL, -- NDCG@k, all items, and its standard error
    ndcg_in_force_se double precision,
    ndcg_tuned    double precision NOT NULL,
    ndcg_tuned_se double precision,
    gain          double precision NOT NULL, -- tuned minus in force, paired over the same users
    gain_se       double precision,
    adopted       boolean NOT NULL,          -- set for the database (ALTER DATABASE ... SET)
    seconds       double precision NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('recommender.tuning_runs', '');
SELECT pg_catalog.pg_extension_config_dump('recommender.tuning_runs_run_id_seq', '');
COMMENT ON TABLE recommender.tuning_runs IS
    'recommender.tune() runs: the settings in force and the winner, NDCG@k on the confirming half of the validation split with standard errors, whether it was adopted.';

-- The latest run, one row per setting.
CREATE VIEW recommender.tuning WITH (security_barrier) AS
SELECT r.run_id, r.tuned_at, s.key AS setting, r.in_force OPERATOR(pg_catalog.->>) s.key AS in_force,
       s.value OPERATOR(pg_catalog.#>>) '{}'::text[] AS tuned,
       r.adopted, r.ndcg_in_force, r.ndcg_in_force_se, r.ndcg_tuned, r.ndcg_tuned_se, r.gain, r.gain_se, r.users
  FROM (SELECT * FROM recommender.tuning_runs ORDER BY run_id DESC LIMIT 1) r
 CROSS JOIN LATERAL pg_catalog.jsonb_each(r.tuned) s;
COMMENT ON VIEW recommender.tuning IS
    'recommender.tune()''s latest run, one row per setting: in force, tuned, adopted, and the validation NDCG@k of each with standard errors.';

-- Learns the homepage's settings from the store's own data: the validation split as evaluate()
-- makes it, a coordinate ascent over recommender._tunable_settings() (the blend's weights, the
-- repeat share, decay, category cap, rerank, collaborative candidates, the item model's recency)
-- from the settings in force, for NDCG@k over all items, choosing on every other user of the sample. The winner is
-- then compared with the settings in force on the other half, which the search never saw, and
-- adopted for the database (ALTER DATABASE ... SET of every searched setting, so a session's SET
-- and a role's settings still override it, from the next session on) only when adopt is on and it
-- beats them there by more than `margin` (2) standard errors of the paired difference.
-- Every run is kept in recommender.tuning_runs and shown by recommender.tuning. Owner or
-- superuser (and the database's owner, to adopt).
CREATE FUNCTION recommender.tune(holdout integer DEFAULT NULL,
                                 split text DEFAULT 'time',
                                 sample integer DEFAULT 500,
                                 adopt boolean DEFAULT true,
                                 k integer DEFAULT 10,
                                 until timestamptz DEFAULT NULL,
                                 margin double precision DEFAULT 2)
RETURNS TABLE (setting text, in_force text, tuned text, adopted boolean)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    t0       timestamptz := clock_timestamp();
    before   jsonb;
    coords   jsonb;
    run      jsonb;
    winner   jsonb;
    c        jsonb;
    take     boolean;
    s        record;
    id       bigint;
BEGIN
    IF adopt IS NULL THEN
        RAISE EXCEPTION 'recommender.tune: adopt must be true or false' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF margin IS NULL OR margin < 0 OR margin = 'NaN' THEN
        RAISE EXCEPTION 'recommender.tune: margin must be 0 or more, not %', coalesce(margin::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The winner is adopted when its gain is above margin standard errors (default 2).';
    END IF;
    IF adopt AND NOT EXISTS (SELECT FROM pg_database d WHERE d.datname = current_database()
                                                        AND pg_has_role(current_user, d.datdba, 'USAGE')) THEN
        RAISE EXCEPTION 'recommender.tune: adopting sets the database''s settings, which needs its owner'
              USING ERRCODE = 'insufficient_privilege',
                    HINT = 'adopt => false finds and shows the settings (recommender.tuning) without setting them.';
    END IF;
    SELECT jsonb_object_agg(x.name, recommender._setting(x.name)) INTO before FROM recommender._tunable_settings() x;
    -- one coordinate per group: its variants are the i-th value of every setting in it
    SELECT jsonb_agg(c.variants ORDER BY c.grp) INTO coords FROM (
      SELECT g.grp, jsonb_agg(g.variant ORDER BY g.i) AS variants FROM (
        SELECT x.grp, v.i, jsonb_object_agg(x.name, v.value) AS variant
          FROM recommender._tunable_settings() x CROSS JOIN LATERAL unnest(x.tried) WITH ORDINALITY AS v(value, i)
         GROUP BY x.grp, v.i) g
      GROUP BY g.grp) c;
    run := recommender._evaluate_run(k, split, holdout, sample, until, coords, false);
    winner := before || (run -> 'tried' -> (run ->> 'best'));
    -- judged on the confirming half of the sample, which the search never saw
    c := run -> 'confirm';
    take := coalesce(adopt AND run ->> 'best' <> 'homepage'
                     AND (c ->> 'gain')::float8 > 0
                     AND (c ->> 'gain')::float8 > margin * coalesce((c ->> 'gain_se')::float8, 'infinity'), false);
    IF take THEN
        -- every searched setting, so that sessions get the combination that was measured
        FOR s IN SELECT w.key, w.value #>> '{}' AS value FROM jsonb_each(winner) w ORDER BY 1 LOOP
            EXECUTE format('ALTER DATABASE %I SET %s = %L', current_database(), s.key, s.value);
        END LOOP;
    END IF;
    INSERT INTO recommender.tuning_runs (split, holdout, sample, until, clock, users, variants, in_force, tuned,
                                         ndcg_in_force, ndcg_in_force_se, ndcg_tuned, ndcg_tuned_se,
                                         gain, gain_se, adopted, seconds)
    VALUES (split, holdout, sample, until, (run ->> 'clock')::timestamptz, coalesce((c ->> 'users')::integer, 0),
            (SELECT count(*) - 1 FROM jsonb_object_keys(run -> 'tried')), before, winner,
            coalesce((c ->> 'ndcg_in_force')::float8, 'NaN'), (c ->> 'ndcg_in_force_se')::float8,
            coalesce((c ->> 'ndcg_tuned')::float8, 'NaN'), (c ->> 'ndcg_tuned_se')::float8,
            coalesce((c ->> 'gain')::float8, 0), (c ->> 'gain_se')::float8,
            take, extract(epoch FROM clock_timestamp() - t0))
    RETURNING run_id INTO id;
    RAISE NOTICE 'recommender.tune: on the % confirming users, NDCG@% in force %, tuned % (gain % +/- %); %',
          coalesce(c ->> 'users', '0'), k, round((c ->> 'ndcg_in_force')::numeric, 4), round((c ->> 'ndcg_tuned')::numeric, 4),
          round((c ->> 'gain')::numeric, 4), round((c ->> 'gain_se')::numeric, 4),
          CASE WHEN take THEN 'adopted for database ' || current_database() || ' from the next session on'
               WHEN NOT adopt THEN 'not adopted (adopt => false)'
               WHEN run ->> 'best' = 'homepage' THEN 'the settings in force stay'
               ELSE 'not adopted: not above the settings in force by ' || margin || ' standard errors' END;
    RETURN QUERY
    SELECT w.key, before ->> w.key, w.value #>> '{}', take FROM jsonb_each(winner) w ORDER BY 1;
END
$$;
COMMENT ON FUNCTION recommender.tune(integer, text, integer, boolean, integer, timestamp with time zone, double precision) IS
    'Learns the homepage''s settings on a validation split (as evaluate() makes it, sample users): coordinate ascent over the blend''s weights, repeat share, decay, category cap, rerank, collaborative candidates and the item model''s recency for NDCG@k; adopts the winner for the database (ALTER DATABASE SET) when it beats the settings in force by margin (2) standard errors; runs in recommender.tuning_runs and recommender.tuning. Owner or superuser.';
