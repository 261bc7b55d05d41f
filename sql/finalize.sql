-- recommender, unit "finalize": runs last (pgrx finalize), after every other unit.
-- Only what applies to all of them: the function settings (search_path of every function) and
-- the privileges of the roles.

-- The functions that keep the caller's search_path (see "Function settings" below), with why.
-- tests/sql/security.sql checks that every other function pins pg_catalog first.
CREATE FUNCTION recommender._unpinned_functions() RETURNS regprocedure[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT ARRAY[
    -- inlined into the pipeline's statements and the stale-products index (per row)
    'recommender.clock()', 'recommender._clean_price(numeric)', 'recommender._clean_stock(numeric)',
    'recommender._item(anyelement)', 'recommender._stale'::pg_catalog.regproc::pg_catalog.oid::pg_catalog.text,
    'recommender._needs_embedding'::pg_catalog.regproc::pg_catalog.oid::pg_catalog.text,
    -- a SQL-standard body (a parse tree bound at creation: no name in it is looked up again),
    -- inlined so that the HNSW index serves its ORDER BY (0.26.0)
    'recommender._distance'::pg_catalog.regproc::pg_catalog.oid::pg_catalog.text,
    -- C, no SQL: the catalogue's generated text_hash column and the pipeline call them per row
    'recommender.product_text(text, text, text, double precision)', 'recommender._text_hash(text)',
    'recommender._rerank_doc(text, text, text)',
    -- this list itself
    'recommender._unpinned_functions()'
]::regprocedure[]
$$;

------------------------------------------------------------------------------------------------
-- Function settings
------------------------------------------------------------------------------------------------
-- The search_path of every function of the extension (README "Privileges"): pg_catalog first,
-- and no schema that a role other than a superuser may create objects in, so that no function
-- (SECURITY DEFINER above all) can be made to call a look-alike of a built-in (CVE-2018-1058).
--   * Everything runs with pg_catalog, pg_temp: unqualified functions and operators (ln, sum,
--     unnest, =, ...) resolve in pg_catalog only (pg_temp is never searched for them). The
--     pipeline's statements name neither pgvector's type nor its operators (0.26.0): they call
--     recommender._vector() and recommender._distance(), bound when the extension was created
--     (src/pipeline/plans.rs names vector's schema only for an install older than that).
--   * The two SQL embed() functions name no type in their bodies (0.16.0): pgvector's assignment
--     cast turns their results into vectors, so no function's path names vector's schema, which
--     that schema's owner could rename and replace.
--   * Left unpinned: SQL functions the planner inlines into the statements that call them (a SET
--     clause would stop that) and C functions that run no SQL. Inside a pinned function they
--     resolve names with its path; called directly they run with the caller's own rights.
--   * Procedures cannot carry a SET clause (they COMMIT); theirs qualify polymorphic calls.
DO $$
DECLARE
    f regprocedure;
BEGIN
    -- Operators named with their schema: this runs as CREATE EXTENSION's caller with vector's
    -- schema on the path, where a look-alike matching (oid, regnamespace) better than
    -- pg_catalog's (oid, oid) would otherwise leave every function unpinned (0.16.0).
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'recommender'::pg_catalog.regnamespace::pg_catalog.oid
                AND p.prokind OPERATOR(pg_catalog.=) 'f'::"char"
                AND p.oid::pg_catalog.oid OPERATOR(pg_catalog.<>) ALL (recommender._unpinned_functions()::pg_catalog.oid[])
              ORDER BY p.oid LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$$;
-- Iterative HNSW scans keep returning neighbours until LIMIT is met, so filters (in stock, not
-- the product itself) never starve the result.
ALTER FUNCTION recommender.similar_products(bigint, integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';
ALTER FUNCTION recommender.homepage(text, integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';
ALTER FUNCTION recommender.cart(bigint[], integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';
ALTER FUNCTION recommender.cart(text, integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';
ALTER FUNCTION recommender.frequently_bought_together(bigint, integer)
    SET hnsw.iterative_scan = 'strict_order' SET hnsw.ef_search = '100';

------------------------------------------------------------------------------------------------
-- Privileges (README "Privileges")
------------------------------------------------------------------------------------------------
-- The recommendation functions read every user's interactions and aggregates (similar users,
-- co-purchase, popularity) and keep the profile and popularity caches. Readers must not see that
-- raw data, so these five run as the extension's owner (SECURITY DEFINER, search_path pinned
-- above). Their only inputs are bound as SPI parameters; no argument becomes SQL text.
ALTER FUNCTION recommender.homepage(text, integer) SECURITY DEFINER;
ALTER FUNCTION recommender.similar_products(bigint, integer) SECURITY DEFINER;
ALTER FUNCTION recommender.cart(bigint[], integer) SECURITY DEFINER;
ALTER FUNCTION recommender.cart(text, integer) SECURITY DEFINER;
ALTER FUNCTION recommender.frequently_bought_together(bigint, integer) SECURITY DEFINER;

-- Two group roles, cluster-wide: created by the first CREATE EXTENSION in any database, kept by
-- DROP EXTENSION (other databases may use them). Grant them to application roles. A role of
-- either name that exists already gets everything below, so it must be one this script could have
-- made (0.23.0): no login or other attribute, no object of its own, no ADMIN OPTION on it held by
-- a non-superuser, no membership in it granted by one. Checked after the creation, so that one
-- made meanwhile is checked too. Otherwise a role made ahead by a non-superuser (on PostgreSQL
-- 16 and later CREATEROLE keeps ADMIN OPTION on the roles it makes) would gain these rights.
DO $$
DECLARE
    r pg_catalog.name;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'recommender_reader'::pg_catalog.name) THEN
        CREATE ROLE recommender_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'recommender_writer'::pg_catalog.name) THEN
        CREATE ROLE recommender_writer NOLOGIN;
    END IF;
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
            RAISE EXCEPTION 'recommender: the role % exists and is not one this extension would make', r
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'It can log in, has a role attribute, owns an object in some database, or a role that is not a superuser holds ADMIN OPTION on it or granted membership in it; installing would give it the extension''s grants.',
                      HINT = 'If it is yours, make it NOLOGIN with no other attribute, give its objects to another role (REASSIGN OWNED, in each database), and grant its memberships as a superuser (README "Privileges"); otherwise drop it.';
        END IF;
    END LOOP;
    IF NOT pg_catalog.pg_has_role('recommender_writer', 'recommender_reader', 'MEMBER') THEN
        GRANT recommender_reader TO recommender_writer;
    END IF;
END
$$;

-- Nothing is executable by PUBLIC; each role gets exactly its list.
REVOKE ALL ON ALL ROUTINES IN SCHEMA recommender FROM PUBLIC;
GRANT USAGE ON SCHEMA recommender TO recommender_reader;
GRANT USAGE ON TYPE recommender.interaction_type TO recommender_reader;

-- Reader: recommendations, rerank, embed, the catalogue and the aggregate views. No raw
-- interactions, per-user aggregates or profiles; model paths are superuser-only settings.
GRANT EXECUTE ON FUNCTION
    recommender.homepage(text, integer), recommender.homepage_json(text, integer),
    recommender.similar_products(bigint, integer), recommender.similar_products_json(bigint, integer),
    recommender.cart(bigint[], integer), recommender.cart_json(bigint[], integer),
    recommender.cart(text, integer), recommender.cart_json(text, integer),
    recommender.frequently_bought_together(bigint, integer),
    recommender.frequently_bought_together_json(bigint, integer),
    recommender.rerank(text, text[]),
    recommender.embed(text), recommender.embed(text[]), recommender._embed(text), recommender._embed_many(text[]),
    recommender._vector(real[]), recommender._response(text, text, jsonb), recommender._item(anyelement),
    recommender.clock(), recommender.model_info(), recommender.preload_models(),
    recommender.product_text(text, text, text, double precision), recommender._text_hash(text),
    recommender._setting(text), recommender._max_array(), recommender._stale(vector, bytea, bytea)
TO recommender_reader;
GRANT SELECT ON recommender.products, recommender.interaction_weights,
                recommender.sync_status, recommender.recommendation_performance
TO recommender_reader;

-- Writer: reader + track() + the catalogue (direct writes, sync, embedding).
GRANT EXECUTE ON FUNCTION
    recommender.track(text, bigint, recommender.interaction_type, numeric, numeric, text, text, integer, timestamptz),
    recommender.embed_product(bigint, boolean), recommender._reembed(bigint[], boolean),
    recommender._needs_embedding(vector, bytea, bytea, timestamptz, boolean, timestamptz),
    recommender._refresh_batch(bigint, integer, boolean, timestamptz, boolean),
    recommender._start_embedding_helpers(text, integer, boolean, timestamptz, integer),
    recommender._wait_embedding_helpers(integer),
    recommender.sync_products(regclass, name, name, name, name, name, name, name, name),
    recommender.unsync_products(regclass, boolean),
    recommender._sync_check_column(regclass, name, text, text), recommender._sync_read(regclass, name, text),
    recommender._sync_missing(text, text),
    recommender._sync_select(recommender.sync_sources, text), recommender._sync_trigger(),
    recommender._sync_upsert_sql(recommender.sync_sources, text),
    recommender._sync_delete_sql(recommender.sync_sources, text, text),
    recommender._clean_price(numeric), recommender._clean_stock(numeric)
TO recommender_writer;
GRANT EXECUTE ON PROCEDURE recommender.refresh_embeddings(integer, boolean) TO recommender_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON recommender.products, recommender.sync_sources TO recommender_writer;
-- INSERT (track, COPY) but no reading back of other users' rows: RETURNING needs the id only.
GRANT INSERT, SELECT (interaction_id) ON recommender.interactions TO recommender_writer;

-- Operations (0.3.0). Reader: warm-up, the staleness view, logging what it shows. Writer: the
-- embedding queue (its triggers queue products as the writing role), the email audience.
GRANT EXECUTE ON FUNCTION
    recommender.warmup(), recommender.record_impressions(text, text, bigint[], text)
TO recommender_reader;
GRANT SELECT ON recommender.staleness TO recommender_reader;
GRANT EXECUTE ON FUNCTION
    recommender._enqueue(bigint[], text), recommender._process_queue_batch(integer),
    recommender.abandoned_carts(interval, integer, boolean),
    recommender.record_email_send(bigint, text, bigint[])
TO recommender_writer;
GRANT EXECUTE ON PROCEDURE recommender.process_queue(integer, boolean) TO recommender_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON recommender.embedding_queue, recommender.user_email_preferences,
                                        recommender.email_campaigns TO recommender_writer;
GRANT SELECT, INSERT ON recommender.email_sends TO recommender_writer;
GRANT SELECT ON recommender.impressions TO recommender_writer;
