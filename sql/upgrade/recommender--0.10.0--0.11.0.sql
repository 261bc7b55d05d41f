-- recommender 0.10.0 -> 0.11.0: profiles updated with a user's new interactions (issue 17).
-- Released: never edit.
--   * recommender.user_profiles.pref_norm / pref_day / categories / category_weights / full_at:
--     the running sums a profile is updated from. A new interaction adds one decayed term to them
--     instead of rebuilding the profile from all of the user's interactions; the first refresh
--     more than recommender.profile_rebuild_seconds after the last full rebuild still rebuilds
--     from all of them. Empty until a profile's
--     next rebuild, which the first call after the update makes (the weights version now names
--     the decay too).
--   * recommender.interactions_user includes the columns the per-user reads need (type,
--     product_id, basket_key), so a profile's and the repeat source's reads are index-only scans.
--     The new index is built before the old one is dropped: writes to interactions wait for the
--     build (Complete Journey's 1.46 million interactions: a few seconds) while reads go on; the
--     drop then waits for the reads in progress and holds an exclusive lock until the commit.
--   * recommender._interactions_changed(): an UPDATE or DELETE of interactions makes the next
--     refresh of its users' profiles a rebuild from all interactions (their running sums may hold
--     the old rows).
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.11.0'" to load this file. \quit

-- first, under a lock that lets reads go on; the locks taken after it are held only to the commit
CREATE INDEX interactions_user_0_11_0 ON recommender.interactions (user_id, occurred_at)
    INCLUDE (interaction_id, type, product_id, basket_key);
DROP INDEX recommender.interactions_user;
ALTER INDEX recommender.interactions_user_0_11_0 RENAME TO interactions_user;

ALTER TABLE recommender.user_profiles
    ADD COLUMN pref_norm float8,
    ADD COLUMN pref_day float8,
    ADD COLUMN categories text[],
    ADD COLUMN category_weights float8[],
    ADD COLUMN full_at timestamptz;

CREATE OR REPLACE FUNCTION recommender._interactions_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        FOREACH q IN ARRAY recommender._aggregate_sql('old_rows', -1) LOOP EXECUTE q; END LOOP;
        EXECUTE recommender._copurchase_sql('old_rows', -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        FOREACH q IN ARRAY recommender._aggregate_sql('new_rows', 1) LOOP EXECUTE q; END LOOP;
        EXECUTE recommender._copurchase_sql('new_rows', 1);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        -- The running sums of these users' profiles may hold the rows as they were: their next
        -- refresh rebuilds them from all interactions (0.11.0). The rows are locked in key
        -- order, as the aggregates' are, so concurrent statements cannot deadlock on them.
        EXECUTE format($q$
            UPDATE recommender.user_profiles u SET full_at = NULL
              FROM (SELECT p.user_id FROM recommender.user_profiles p
                     WHERE p.full_at IS NOT NULL
                       AND p.user_id IN (SELECT user_id FROM old_rows%s)
                     ORDER BY p.user_id FOR UPDATE OF p) l
             WHERE u.user_id = l.user_id$q$,
            CASE WHEN TG_OP = 'UPDATE' THEN ' UNION SELECT user_id FROM new_rows' ELSE '' END);
    END IF;
    RETURN NULL;
END
$$;
