-- recommender 0.18.0 -> 0.19.0: the first refresh of a profile after profile_rebuild_seconds
-- checks its products instead of rebuilding it from all of the user's interactions (README
-- "The pipeline", profiles).
-- Released: never edit.
--   * recommender.user_profiles.products_check (new column): a sum over the interactions the
--     profile's running sums were made from of a hash of each one's product (category, price,
--     embedding time). Equal to the products' now: the sums are the ones a rebuild would make,
--     so they are updated and the interval restarts. Profiles stored before the update have none
--     and are rebuilt once, as before.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.19.0'" to load this file. \quit

ALTER TABLE recommender.user_profiles ADD COLUMN products_check bigint;
