-- recommender 0.22.0 -> 0.23.0: a user a warm start queued is taken as soon as they interact
-- (README "Upgrades").
-- Released: never edit.
--   * _interactions_changed: a user queued by queue_homepages() who interacts before the queue
--     worker reaches them is taken with the users their interactions queued (warm_start cleared,
--     queued_at the interaction's; a row another transaction holds is skipped, never waited
--     for); before, they kept the warm start's place, after every other queued user.
--   * CREATE EXTENSION refuses a group role of the extension's name that someone else could have
--     made (sql/finalize.sql); the update only warns about such a role, since an install's roles
--     are granted already.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.23.0'" to load this file. \quit

DO $$
DECLARE
    r pg_catalog.name;
BEGIN
    FOREACH r IN ARRAY ARRAY['recommender_reader', 'recommender_writer']::pg_catalog.name[] LOOP
        IF EXISTS (
            SELECT FROM pg_catalog.pg_roles o
             WHERE o.rolname OPERATOR(pg_catalog.=) r
               AND (o.rolcanlogin OR o.rolsuper OR o.rolcreaterole OR o.rolcreatedb
                    OR o.rolreplication OR o.rolbypassrls
                    OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                                 JOIN pg_catalog.pg_roles a ON a.oid OPERATOR(pg_catalog.=) m.member
                                WHERE m.roleid OPERATOR(pg_catalog.=) o.oid AND m.admin_option AND NOT a.rolsuper)
                    OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                                 JOIN pg_catalog.pg_roles g ON g.oid OPERATOR(pg_catalog.=) m.grantor
                                WHERE m.roleid OPERATOR(pg_catalog.=) o.oid AND NOT g.rolsuper)
                    OR EXISTS (SELECT FROM pg_catalog.pg_shdepend d
                                WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_authid'::pg_catalog.regclass
                                  AND d.refobjid OPERATOR(pg_catalog.=) o.oid
                                  AND d.deptype OPERATOR(pg_catalog.=) 'o'::pg_catalog."char"))) THEN
            RAISE WARNING 'recommender: the role % can log in, has a role attribute, owns an object in some database, or a role that is not a superuser holds ADMIN OPTION on it or granted membership in it', r
                USING HINT = 'A new install refuses such a role (README "Privileges"): check that it is yours and who may grant it.';
        END IF;
    END LOOP;
END
$$;

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
        -- refresh rebuilds them from all interactions (0.11.0), and that refresh is the next
        -- call, since the stored profile no longer matches its key (0.21.0: an UPDATE keeps the
        -- count and the newest id). The rows are locked in key order, as the aggregates' are,
        -- so concurrent statements cannot deadlock on them.
        EXECUTE format($q$
            UPDATE recommender.user_profiles u SET full_at = NULL, weights_version = NULL
              FROM (SELECT p.user_id FROM recommender.user_profiles p
                     WHERE (p.full_at IS NOT NULL OR p.weights_version IS NOT NULL)
                       AND p.user_id IN (SELECT user_id FROM old_rows%s)
                     ORDER BY p.user_id FOR UPDATE OF p) l
             WHERE u.user_id = l.user_id$q$,
            CASE WHEN TG_OP = 'UPDATE' THEN ' UNION SELECT user_id FROM new_rows' ELSE '' END);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE')
       AND recommender._setting('recommender.precompute_homepage')::boolean THEN
        -- the queue worker computes their next homepage ahead (0.12.0); in key order. Under
        -- REPEATABLE READ a user queued by a transaction committed since the snapshot is a
        -- serialization failure: they are queued already, so the interaction is kept.
        BEGIN
            INSERT INTO recommender.homepage_queue (user_id)
            SELECT DISTINCT n.user_id FROM new_rows n ORDER BY 1
            ON CONFLICT (user_id) DO NOTHING;
        EXCEPTION WHEN serialization_failure THEN
            NULL;
        END;
        -- A user a warm start queued is taken as one an interaction queued from now on (0.23.0).
        -- Only such rows are locked, and none is waited for: one another transaction holds is
        -- being taken by the worker or moved already (a row this snapshot cannot see, or cannot
        -- lock under REPEATABLE READ, keeps its warm start's place).
        BEGIN
            UPDATE recommender.homepage_queue q SET warm_start = false, queued_at = now()
              FROM (SELECT h.user_id FROM recommender.homepage_queue h
                     WHERE h.warm_start AND h.user_id IN (SELECT n.user_id FROM new_rows n)
                     ORDER BY h.user_id FOR UPDATE SKIP LOCKED) w
             WHERE q.user_id = w.user_id;
        EXCEPTION WHEN serialization_failure THEN
            NULL;
        END;
    END IF;
    RETURN NULL;
END
$$;
