-- recommender 0.24.0 -> 0.25.0: the item model's recency (issue 14; README "Upgrades").
-- Released: never edit.
--   * recommender.item_model_recency (a setting of the library, 0 by default: every product of
--     the user's history counts alike in the item model's sum, as before): n > 0 counts the r-th
--     most recently bought exp(-r / n).
--   * _tunable_settings(): tune() searches it (0, 5, 10, 30, 100) after the other coordinates.
--   * The library (no SQL here) also closes a privilege path: a backend's kept statements that
--     name pgvector's schema are prepared again after ALTER EXTENSION vector SET SCHEMA.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.25.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION recommender._tunable_settings()
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
ALTER FUNCTION recommender._tunable_settings() SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recommender.tune(integer, text, integer, boolean, integer, timestamp with time zone, double precision) IS
    'Learns the homepage''s settings on a validation split (as evaluate() makes it, sample users): coordinate ascent over the blend''s weights, repeat share, decay, category cap, rerank, collaborative candidates and the item model''s recency for NDCG@k; adopts the winner for the database (ALTER DATABASE SET) when it beats the settings in force by margin (2) standard errors; runs in recommender.tuning_runs and recommender.tuning. Owner or superuser.';
