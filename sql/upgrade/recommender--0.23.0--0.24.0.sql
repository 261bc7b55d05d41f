-- recommender 0.23.0 -> 0.24.0: the adoption model blended into the item model (issue 14; README
-- "Upgrades"). Released: never edit.
--   * build_item_model(items, lambda, neighbors, adoption_days, adoption_lambda, adoption_weight):
--     EASE blended with the adoption model, a ridge regression of what customers first bought in
--     the last adoption_days before the clock on what they had bought before (0.2 of it by
--     default; adoption_weight 0 builds EASE alone, as before). Replaces the three-argument
--     procedure and recommender._build_item_model; a scheduled CALL with no arguments builds the
--     blend from the next run on. Nothing is rebuilt during the update.
--   * item_model_builds: the three new arguments of every build (0 weight for earlier builds).
--   * _evaluate_run(): evaluate() and tune() rebuild with the latest build's six arguments.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.24.0'" to load this file. \quit

ALTER TABLE recommender.item_model_builds
    ADD COLUMN adoption_days integer NOT NULL DEFAULT 28,
    ADD COLUMN adoption_lambda double precision NOT NULL DEFAULT 10000,
    ADD COLUMN adoption_weight double precision NOT NULL DEFAULT 0;
COMMENT ON TABLE recommender.item_model_builds IS
    'recommender.build_item_model() calls: the clock, the arguments (items, lambda, neighbors; adoption_days, adoption_lambda, adoption_weight), what the build read and wrote, and how long it took. evaluate() and tune() rebuild with the latest build''s arguments.';
COMMENT ON TABLE recommender.item_model IS
    'recommender item-to-item model: per product, its strongest links (neighbor_ids, scores) of EASE blended with the adoption model. Rebuilt by CALL recommender.build_item_model().';

DROP PROCEDURE recommender.build_item_model(integer, double precision, integer);
DROP FUNCTION recommender._build_item_model(integer, double precision, integer);
CREATE FUNCTION recommender._build_item_model(items integer, lambda double precision, neighbors integer,
                                              adoption_days integer, adoption_lambda double precision,
                                              adoption_weight double precision)
RETURNS TABLE (products bigint, customers bigint, pairs bigint, seconds double precision)
VOLATILE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', '_build_item_model_wrapper';
ALTER FUNCTION recommender._build_item_model(integer, double precision, integer, integer, double precision, double precision) SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION recommender._build_item_model(integer, double precision, integer, integer, double precision, double precision) FROM PUBLIC;

CREATE PROCEDURE recommender.build_item_model(items integer DEFAULT 5000,
                                              lambda double precision DEFAULT 1000,
                                              neighbors integer DEFAULT 100,
                                              adoption_days integer DEFAULT 28,
                                              adoption_lambda double precision DEFAULT 10000,
                                              adoption_weight double precision DEFAULT 0.2)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO recommender.item_model_builds (clock, items, lambda, neighbors, products, customers, pairs, seconds,
                                               adoption_days, adoption_lambda, adoption_weight)
    SELECT recommender.clock(), $1, $2, $3, b.products, b.customers, b.pairs, b.seconds, $4, $5, $6
      FROM recommender._build_item_model($1, $2, $3, $4, $5, $6) AS b;
END
$$;
COMMENT ON PROCEDURE recommender.build_item_model(integer, double precision, integer, integer, double precision, double precision) IS
    'Rebuilds recommender.item_model (the homepage''s item_model source): EASE over the items most customers bought (lambda its regularisation), blended with adoption_weight of the adoption model (what the histories led customers to buy for the first time in the adoption_days before the clock; adoption_lambda its regularisation; 0: EASE alone), neighbors links kept per product; records the build in recommender.item_model_builds. One transaction, progress NOTICEs; owner or superuser.';
REVOKE ALL ON PROCEDURE recommender.build_item_model(integer, double precision, integer, integer, double precision, double precision) FROM PUBLIC;

CREATE OR REPLACE FUNCTION recommender._evaluate_run(k integer, split text, holdout integer, sample integer,
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
ALTER FUNCTION recommender._evaluate_run(integer, text, integer, integer, timestamp with time zone, jsonb, boolean) SET search_path = pg_catalog, pg_temp;
