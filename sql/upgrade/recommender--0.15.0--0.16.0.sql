-- recommender 0.15.0 -> 0.16.0: three paths to the owner's or a superuser's rights closed, and a leak (README
-- "Trust model" and "Upgrades").
-- Released: never edit.
--   * recommender.rebuild_user_profiles() (replaced): names count, array_agg, cardinality,
--     clock_timestamp and round with pg_catalog. A procedure cannot pin its search_path, so it ran
--     those calls with the caller's: a role that may create objects in a schema on a superuser's
--     path (the database's owner, in public) could plant count(text), array_agg(text) or
--     cardinality(text[]), which match closer than the built-ins' "any" and polymorphic arguments,
--     and have them run with the superuser's rights by its next CALL rebuild_user_profiles().
--   * recommender._sync_trigger() (replaced): runs only as one of the triggers sync_products()
--     creates. Attached by hand without transition tables, the names new_rows and old_rows it
--     reads resolved to relations, such as a writer's temporary view calling the writer's own
--     function, which then ran with the owner's rights.
--   * Refuses to run when the schema recommender does not belong to a superuser.
--   * recommender.embed(text), recommender.embed(text[]) (replaced) and the new recommender._vector():
--     the bodies name no type (pgvector's assignment cast makes the vectors), so their search_path
--     no longer names vector's schema, which that schema's owner could rename and replace.
--   * recommender.sync_sources: row-level security. A writer inserts, updates and deletes only the
--     rows of tables it owns; before, it could remap another role's synced table (copying a column
--     it may not read into the catalogue) or stop its sync.
--   * The views sync_status, staleness, recommendation_performance, item_neighbors and tuning
--     (replaced): every function and operator named with pg_catalog. CREATE and ALTER EXTENSION
--     run with vector's schema on the path, so a look-alike planted there beforehand (a better
--     match for the arguments than pg_catalog's) was bound into the view and ran as whoever
--     queried it. The same holds for the tables' CHECK constraints, generated columns and index
--     predicates, and for the install's own statements, which a fresh 0.16.0 install now
--     qualifies; in a database updated from an older release they keep what its CREATE EXTENSION
--     bound (README "Upgrades" shows how to check).
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.16.0'" to load this file. \quit

-- The schema must be a superuser's: the extension's owner names its objects by it, and its owner
-- could rename it and put look-alikes in its place (the install checks the same, sql/bootstrap.sql).
DO $$
DECLARE
    owner_name name;
BEGIN
    SELECT r.rolname INTO owner_name
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'recommender'::pg_catalog.name AND NOT r.rolsuper;
    IF FOUND THEN
        RAISE EXCEPTION 'recommender: the schema "recommender" belongs to %, who is not a superuser', owner_name
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Its owner could have replaced the extension''s objects: check them (README "Upgrades", 0.16.0), ALTER SCHEMA recommender OWNER TO a superuser, then update.';
    END IF;
END
$$;

CREATE OR REPLACE PROCEDURE recommender.rebuild_user_profiles(batch_size integer DEFAULT 200)
LANGUAGE plpgsql
AS $$
DECLARE
    total      bigint;
    done       bigint := 0;
    users      text[];
    u          text;
    last_user  text := '';
    started    timestamptz := pg_catalog.clock_timestamp();
    last_note  timestamptz := pg_catalog.clock_timestamp();
BEGIN
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 100000 THEN
        RAISE EXCEPTION 'recommender: batch_size must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT pg_catalog.count(DISTINCT i.user_id) INTO total FROM recommender.interactions i;
    RAISE NOTICE 'recommender: rebuilding % user profile(s)', total;
    LOOP
        SELECT pg_catalog.array_agg(s.user_id ORDER BY s.user_id) INTO users
          FROM (SELECT DISTINCT i.user_id FROM recommender.interactions i WHERE i.user_id > last_user
                 ORDER BY i.user_id LIMIT batch_size) s;
        EXIT WHEN users IS NULL;
        FOREACH u IN ARRAY users LOOP
            PERFORM recommender.rebuild_user_profile(u);
        END LOOP;
        done := done + pg_catalog.cardinality(users);
        last_user := users[pg_catalog.cardinality(users)];
        COMMIT;
        IF pg_catalog.clock_timestamp() - last_note >= interval '2 seconds' THEN
            RAISE NOTICE 'recommender: rebuilt %/% profiles', done, total;
            last_note := pg_catalog.clock_timestamp();
        END IF;
    END LOOP;
    DELETE FROM recommender.user_profiles p
     WHERE NOT EXISTS (SELECT 1 FROM recommender.interactions i WHERE i.user_id = p.user_id);
    RAISE NOTICE 'recommender: rebuilt %/% profiles in % s', done, total,
        pg_catalog.round(extract(epoch FROM pg_catalog.clock_timestamp() - started)::numeric, 1);
END
$$;

CREATE OR REPLACE FUNCTION recommender._sync_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s recommender.sync_sources;
BEGIN
    IF TG_LEVEL <> 'STATEMENT' OR TG_WHEN <> 'AFTER'
       OR NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                       WHERE t.tgrelid = TG_RELID AND t.tgname = TG_NAME
                         AND t.tgname IN ('recommender_sync_insert', 'recommender_sync_update',
                                          'recommender_sync_delete', 'recommender_sync_truncate')
                         AND (TG_OP NOT IN ('INSERT', 'UPDATE') OR t.tgnewtable IS NOT DISTINCT FROM 'new_rows')
                         AND (TG_OP NOT IN ('UPDATE', 'DELETE') OR t.tgoldtable IS NOT DISTINCT FROM 'old_rows')) THEN
        RAISE EXCEPTION 'recommender: _sync_trigger() fired by trigger % on %, which recommender.sync_products() did not create', TG_NAME, TG_RELID::regclass
            USING ERRCODE = 'triggered_action_exception',
                  HINT = 'Install the sync triggers with SELECT recommender.sync_products(...); do not attach _sync_trigger() by hand.';
    END IF;
    SELECT * INTO s FROM recommender.sync_sources WHERE source = TG_RELID;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        EXECUTE recommender._sync_upsert_sql(s, 'new_rows') USING s.source;
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE recommender._sync_delete_sql(s, 'old_rows', 'new_rows') USING s.source;
        EXECUTE recommender._sync_upsert_sql(s, 'new_rows') USING s.source;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE recommender._sync_delete_sql(s, 'old_rows', NULL) USING s.source;
    ELSIF TG_OP = 'TRUNCATE' THEN
        DELETE FROM recommender.products WHERE source = s.source;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE VIEW recommender.sync_status AS
SELECT coalesce(coalesce(s.source, p.source)::text, '(direct)') AS source,
       s.source IS NOT NULL                          AS synced,
       coalesce(p.products, 0)                       AS products,
       coalesce(p.embedded, 0)                       AS embedded,
       coalesce(p.stale, 0)                          AS stale,
       coalesce(p.out_of_stock, 0)                   AS out_of_stock,
       p.last_change,
       p.last_embedded,
       s.synced_at,
       coalesce(q.pending, 0)                        AS pending,
       coalesce(q.failing, 0)                        AS failing,
       q.last_error,
       q.last_error_at
  FROM recommender.sync_sources s
  FULL JOIN (SELECT source,
                    pg_catalog.count(*)                                                            AS products,
                    pg_catalog.count(*) FILTER (WHERE NOT recommender._stale(embedding, embedded_hash, text_hash)) AS embedded,
                    pg_catalog.count(*) FILTER (WHERE recommender._stale(embedding, embedded_hash, text_hash)) AS stale,
                    pg_catalog.count(*) FILTER (WHERE NOT in_stock)                                AS out_of_stock,
                    pg_catalog.max(updated_at)                                                     AS last_change,
                    pg_catalog.max(embedded_at)                                                    AS last_embedded
               FROM recommender.products
              GROUP BY source) p ON p.source::pg_catalog.oid OPERATOR(pg_catalog.=) s.source::pg_catalog.oid
  LEFT JOIN (SELECT pr.source,
                    pg_catalog.count(*)                                                 AS pending,
                    pg_catalog.count(*) FILTER (WHERE q.attempts OPERATOR(pg_catalog.>) 0) AS failing,
                    (pg_catalog.array_agg(q.last_error ORDER BY q.last_error_at DESC)
                         FILTER (WHERE q.last_error IS NOT NULL))[1]                    AS last_error,
                    pg_catalog.max(q.last_error_at)                                     AS last_error_at
               FROM recommender.embedding_queue q
               JOIN recommender.products pr ON pr.product_id OPERATOR(pg_catalog.=) q.product_id
              GROUP BY pr.source) q
         ON q.source::pg_catalog.oid IS NOT DISTINCT FROM coalesce(s.source, p.source)::pg_catalog.oid;

CREATE OR REPLACE VIEW recommender.staleness AS
SELECT p.product_id,
       p.external_id,
       coalesce(p.source::text, '(direct)')               AS source,
       p.name,
       p.updated_at                                       AS changed_at,
       pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) p.updated_at AS stale_for,
       q.product_id IS NOT NULL                           AS queued,
       coalesce(q.attempts, 0)                            AS attempts,
       q.next_attempt_at,
       q.last_error,
       q.last_error_at
  FROM recommender.products p
  LEFT JOIN recommender.embedding_queue q ON q.product_id OPERATOR(pg_catalog.=) p.product_id
 WHERE recommender._stale(p.embedding, p.embedded_hash, p.text_hash);

CREATE OR REPLACE VIEW recommender.recommendation_performance AS
WITH req AS (
    SELECT i.request_id, pg_catalog.min(i.context) AS context
      FROM recommender.impressions i
     GROUP BY i.request_id
), shown AS (
    SELECT (i.shown_at AT TIME ZONE 'UTC')::date AS day, i.context,
           pg_catalog.count(DISTINCT i.request_id) AS requests, pg_catalog.count(*) AS impressions
      FROM recommender.impressions i
     GROUP BY 1, 2
), clicks AS (
    SELECT c.interaction_id, c.user_id, c.product_id, c.occurred_at,
           (c.occurred_at AT TIME ZONE 'UTC')::date AS day,
           coalesce(r.context, '(not logged)') AS context
      FROM recommender.interactions c
      LEFT JOIN req r ON r.request_id OPERATOR(pg_catalog.=) c.request_id
     WHERE c.request_id IS NOT NULL
       AND c.type OPERATOR(pg_catalog.=) 'RECOMMENDATION_CLICK'::recommender.interaction_type
), attributed AS (
    SELECT DISTINCT ON (p.interaction_id) k.interaction_id AS click_id, coalesce(p.value, 0) AS value
      FROM clicks k
      JOIN recommender.interactions p
        ON p.user_id OPERATOR(pg_catalog.=) k.user_id AND p.product_id OPERATOR(pg_catalog.=) k.product_id
       AND p.type OPERATOR(pg_catalog.=) 'PURCHASE'::recommender.interaction_type
       AND p.occurred_at OPERATOR(pg_catalog.>=) k.occurred_at
       AND p.occurred_at OPERATOR(pg_catalog.<) (k.occurred_at OPERATOR(pg_catalog.+)
           pg_catalog.make_interval(days => recommender._setting('recommender.attribution_days')::integer))
     ORDER BY p.interaction_id, k.occurred_at DESC, k.interaction_id DESC
), clicked AS (
    SELECT k.day, k.context, pg_catalog.count(*) AS clicks, pg_catalog.count(a.click_id) AS conversions,
           coalesce(pg_catalog.sum(a.revenue), 0) AS revenue
      FROM clicks k
      LEFT JOIN (SELECT click_id, pg_catalog.sum(value) AS revenue FROM attributed GROUP BY click_id) a
             ON a.click_id OPERATOR(pg_catalog.=) k.interaction_id
     GROUP BY 1, 2
)
SELECT coalesce(s.day, c.day)                                    AS day,
       coalesce(s.context, c.context)                            AS context,
       coalesce(s.requests, 0)                                   AS requests,
       coalesce(s.impressions, 0)                                AS impressions,
       coalesce(c.clicks, 0)                                     AS clicks,
       pg_catalog.round(c.clicks::numeric OPERATOR(pg_catalog./) nullif(s.impressions, 0), 4) AS ctr,
       coalesce(c.conversions, 0)                                AS conversions,
       pg_catalog.round(c.conversions::numeric OPERATOR(pg_catalog./) nullif(c.clicks, 0), 4) AS conversion_rate,
       coalesce(c.revenue, 0)                                    AS attributed_revenue
  FROM shown s
  FULL JOIN clicked c ON c.day OPERATOR(pg_catalog.=) s.day AND c.context OPERATOR(pg_catalog.=) s.context;

CREATE OR REPLACE VIEW recommender.item_neighbors AS
SELECT m.product_id, l.neighbor_id, l.score
  FROM recommender.item_model m,
       ROWS FROM (pg_catalog.unnest(m.neighbor_ids), pg_catalog.unnest(m.scores)) AS l(neighbor_id, score);

CREATE OR REPLACE VIEW recommender.tuning AS
SELECT r.run_id, r.tuned_at, s.key AS setting, r.in_force OPERATOR(pg_catalog.->>) s.key AS in_force,
       s.value OPERATOR(pg_catalog.#>>) '{}'::text[] AS tuned,
       r.adopted, r.ndcg_in_force, r.ndcg_in_force_se, r.ndcg_tuned, r.ndcg_tuned_se, r.gain, r.gain_se, r.users
  FROM (SELECT * FROM recommender.tuning_runs ORDER BY run_id DESC LIMIT 1) r
 CROSS JOIN LATERAL pg_catalog.jsonb_each(r.tuned) s;

ALTER TABLE recommender.sync_sources ENABLE ROW LEVEL SECURITY;
CREATE POLICY sync_sources_read ON recommender.sync_sources FOR SELECT USING (true);
CREATE POLICY sync_sources_own_tables ON recommender.sync_sources
    USING (pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c
                                    WHERE c.oid OPERATOR(pg_catalog.=) source::pg_catalog.oid), 'USAGE')
           OR NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) source::pg_catalog.oid))
    WITH CHECK (pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c
                                         WHERE c.oid OPERATOR(pg_catalog.=) source::pg_catalog.oid), 'USAGE'));

CREATE OR REPLACE FUNCTION recommender.embed(text text) RETURNS vector(384)
LANGUAGE sql STABLE STRICT PARALLEL RESTRICTED
AS $$ SELECT recommender._embed($1) $$;
CREATE FUNCTION recommender._vector(v real[]) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT $1 $$;
COMMENT ON FUNCTION recommender._vector(real[]) IS
    'A real[] as a vector, by pgvector''s assignment cast on the result (embed(text[]) names no type).';
CREATE OR REPLACE FUNCTION recommender.embed(texts text[]) RETURNS vector(384)[]
LANGUAGE sql VOLATILE STRICT PARALLEL RESTRICTED
AS $$
    SELECT coalesce(pg_catalog.array_agg(recommender._vector(e) ORDER BY n), '{}')
      FROM recommender._embed_many($1) WITH ORDINALITY AS t(e, n)
$$;
ALTER FUNCTION recommender.embed(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recommender.embed(text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recommender._vector(real[]) SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION recommender._vector(real[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recommender._vector(real[]) TO recommender_reader;
