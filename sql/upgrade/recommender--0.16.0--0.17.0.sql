-- recommender 0.16.0 -> 0.17.0: collaborative candidates from the item model outlive
-- collaborative_cache_seconds (README "The pipeline", stage 1).
-- Released: never edit.
--   * recommender.user_profiles.collab_model (new column): the item model build a user's
--     collaborative candidates came from, when only the item model and repeat supplied them.
--     Such a list depends only on the user's purchases (checked already) and the model, so it is
--     reused until the next build_item_model(), not recomputed every collaborative_cache_seconds.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.17.0'" to load this file. \quit

ALTER TABLE recommender.user_profiles ADD COLUMN collab_model bigint;
