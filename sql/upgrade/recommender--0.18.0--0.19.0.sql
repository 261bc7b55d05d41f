-- recommender 0.18.0 -> 0.19.0: the first refresh of a profile after profile_rebuild_seconds
-- checks what it was made from instead of rebuilding it from all of the user's interactions (README
-- "The pipeline", profiles).
-- Released: never edit.
--   * recommender.user_profiles.sums_check (new column): a sum over the interactions the
--     profile's running sums were made from of a hash of each one (id, type, time) and of its
--     product (category, price, embedding). Equal to theirs now: the sums are the ones a rebuild
--     would make, so they are updated and the interval restarts. Profiles stored before the
--     update have none and are rebuilt once, as before.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.19.0'" to load this file. \quit

ALTER TABLE recommender.user_profiles ADD COLUMN sums_check bigint;
