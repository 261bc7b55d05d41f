-- recommender 0.9.0 -> 0.10.0: collaborative candidates kept across profile rebuilds (issue 17).
-- Released: never edit.
--   * recommender.user_profiles.collab_purchases / collab_last_purchase: the user's purchases the
--     cached collaborative candidates were computed from. A new interaction rebuilds the profile;
--     the candidates are kept while these two are unchanged (a view or a cart add) and none came
--     from similar users (whose neighbourhoods views change). Empty until the next recompute.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.10.0'" to load this file. \quit

ALTER TABLE recommender.user_profiles
    ADD COLUMN collab_purchases bigint,
    ADD COLUMN collab_last_purchase bigint;
