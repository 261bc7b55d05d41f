-- recommender 0.1.0 -> 0.2.0 (released with 0.2.0; never edit after release)
--   * user_profiles keeps the rerank query, its embedding and the collaborative candidates
--   * interactions_user covers (user_id, occurred_at) and includes interaction_id
--   * aggregate upserts in key order (no deadlocks between concurrent writers)
--   * embed(text[]) VOLATILE (the planner ran a STABLE one once more to estimate unnest's rows)
--   * sync_products refuses sources in the recommender schema and the system catalogs
--   * recommender_reader / recommender_writer roles, grants, SECURITY DEFINER recommendation functions
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.2.0'" to load this file. \quit

-- per-call work kept with the profile: rerank query, its embedding, collaborative candidates
ALTER TABLE recommender.user_profiles
    ADD COLUMN rerank_query         text,
    ADD COLUMN query_embedding      vector(384),
    ADD COLUMN collab_ids           bigint[],
    ADD COLUMN collab_scores        float8[],
    ADD COLUMN collab_sources       integer[],
    ADD COLUMN collab_n             integer,
    ADD COLUMN collab_clock         timestamptz,
    ADD COLUMN collab_at            timestamptz;

-- a profile's cache key (count and newest id at the clock) as an index-only scan
DROP INDEX recommender.interactions_user;
CREATE INDEX interactions_user ON recommender.interactions (user_id, occurred_at) INCLUDE (interaction_id);

CREATE OR REPLACE FUNCTION recommender._aggregate_sql(rel text, sign integer) RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
SELECT ARRAY[
  format($q$
    INSERT INTO recommender.product_daily AS d (product_id, day, weight, purchases)
    SELECT r.product_id, (r.occurred_at AT TIME ZONE 'UTC')::date,
           %2$s * sum(greatest(w.weight, 0)), %2$s * count(*) FILTER (WHERE r.type = 'PURCHASE')
      FROM %1$s r JOIN recommender.interaction_weights w ON w.type = r.type
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (product_id, day) DO UPDATE
       SET weight = d.weight + EXCLUDED.weight, purchases = d.purchases + EXCLUDED.purchases$q$, rel, sign),
  format($q$
    INSERT INTO recommender.user_products AS u (user_id, product_id, weight, purchases, cart, first_at, last_at)
    SELECT r.user_id, r.product_id, %2$s * sum(w.weight),
           %2$s * count(*) FILTER (WHERE r.type = 'PURCHASE'),
           %2$s * coalesce(sum(CASE r.type WHEN 'CART_ADD' THEN r.quantity WHEN 'CART_REMOVE' THEN -r.quantity END), 0),
           min(r.occurred_at), max(r.occurred_at)
      FROM %1$s r JOIN recommender.interaction_weights w ON w.type = r.type
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, product_id) DO UPDATE
       SET weight = u.weight + EXCLUDED.weight, purchases = u.purchases + EXCLUDED.purchases,
           cart = u.cart + EXCLUDED.cart,
           first_at = least(u.first_at, EXCLUDED.first_at), last_at = greatest(u.last_at, EXCLUDED.last_at)$q$, rel, sign)
]
$$;

CREATE OR REPLACE FUNCTION recommender._copurchase_sql(rel text, sign integer) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
SELECT format($q$
    WITH changed AS (
        SELECT DISTINCT basket_key, product_id FROM %1$s WHERE type = 'PURCHASE'),
    others AS (   -- the same baskets without the changed rows
        SELECT DISTINCT i.basket_key, i.product_id
          FROM recommender.interactions i
         WHERE i.type = 'PURCHASE' AND i.basket_key IN (SELECT basket_key FROM changed)
           AND NOT EXISTS (SELECT 1 FROM %1$s n WHERE n.interaction_id = i.interaction_id)),
    after AS (    -- the baskets with the changed rows; kept = also there without them
        SELECT basket_key, product_id, bool_or(kept) AS kept
          FROM (SELECT basket_key, product_id, false AS kept FROM changed
                UNION ALL SELECT basket_key, product_id, true FROM others) u
         GROUP BY 1, 2)
    INSERT INTO recommender.copurchase AS c (product_a, product_b, baskets)
    SELECT a.product_id, b.product_id, %2$s * count(*)
      FROM after a JOIN after b ON a.basket_key = b.basket_key AND a.product_id <> b.product_id
     WHERE NOT (a.kept AND b.kept)      -- a pair both sides of which were already there is not new
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (product_a, product_b) DO UPDATE SET baskets = c.baskets + EXCLUDED.baskets$q$, rel, sign)
$$;

CREATE OR REPLACE FUNCTION recommender.sync_products(
    source              regclass,
    id_column           name DEFAULT 'id',
    name_column         name DEFAULT 'name',
    description_column  name DEFAULT NULL,
    category_column     name DEFAULT NULL,
    price_column        name DEFAULT NULL,
    stock_column        name DEFAULT NULL,
    image_url_column    name DEFAULT NULL,
    created_at_column   name DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql
SET recommender.enable_sync_embedding = off
AS $$
DECLARE
    s      recommender.sync_sources;
    kind   "char";
    n      bigint;
    stale  bigint;
    ev     text;
BEGIN
    IF source IS NULL OR id_column IS NULL OR name_column IS NULL THEN
        RAISE EXCEPTION 'recommender: source, id_column and name_column must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = source;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'recommender: % is not a table', source
            USING ERRCODE = 'wrong_object_type', HINT = 'Sync from an ordinary or partitioned table; views have no triggers for this.';
    END IF;
    IF (SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid = source)
       IN ('recommender'::regnamespace, 'pg_catalog'::regnamespace) THEN
        RAISE EXCEPTION 'recommender: % cannot be a sync source', source
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Sync from the application''s own product table, not from the recommender schema or the system catalogs.';
    END IF;
    PERFORM recommender._sync_check_column(source, id_column, 'id', NULL);
    PERFORM recommender._sync_check_column(source, name_column, 'name', NULL);
    IF description_column IS NOT NULL THEN PERFORM recommender._sync_check_column(source, description_column, 'description', NULL); END IF;
    IF category_column IS NOT NULL THEN PERFORM recommender._sync_check_column(source, category_column, 'category', NULL); END IF;
    IF price_column IS NOT NULL THEN PERFORM recommender._sync_check_column(source, price_column, 'price', 'N'); END IF;
    IF image_url_column IS NOT NULL THEN PERFORM recommender._sync_check_column(source, image_url_column, 'image_url', NULL); END IF;
    IF created_at_column IS NOT NULL THEN PERFORM recommender._sync_check_column(source, created_at_column, 'created_at', 'D'); END IF;

    INSERT INTO recommender.sync_sources AS t
           (source, id_column, name_column, description_column, category_column, price_column,
            stock_column, image_url_column, created_at_column, stock_is_boolean)
    VALUES (source, id_column, name_column, description_column, category_column, price_column,
            stock_column, image_url_column, created_at_column,
            stock_column IS NOT NULL AND recommender._sync_check_column(source, stock_column, 'stock', 'NB'))
    ON CONFLICT ON CONSTRAINT sync_sources_pkey DO UPDATE
       SET id_column = EXCLUDED.id_column, name_column = EXCLUDED.name_column,
           description_column = EXCLUDED.description_column, category_column = EXCLUDED.category_column,
           price_column = EXCLUDED.price_column, stock_column = EXCLUDED.stock_column,
           image_url_column = EXCLUDED.image_url_column, created_at_column = EXCLUDED.created_at_column,
           stock_is_boolean = EXCLUDED.stock_is_boolean, synced_at = now()
    RETURNING * INTO s;

    -- (Re)install the triggers. `source` is a regclass: its text form is a quoted identifier.
    FOR ev IN SELECT t.tgname FROM pg_catalog.pg_trigger t
               WHERE t.tgrelid = source AND t.tgname IN ('recommender_sync_insert', 'recommender_sync_update',
                                                        'recommender_sync_delete', 'recommender_sync_truncate') LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', ev, source);
    END LOOP;
    EXECUTE format('CREATE TRIGGER recommender_sync_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION recommender._sync_trigger()', source);
    EXECUTE format('CREATE TRIGGER recommender_sync_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION recommender._sync_trigger()', source);
    EXECUTE format('CREATE TRIGGER recommender_sync_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION recommender._sync_trigger()', source);
    EXECUTE format('CREATE TRIGGER recommender_sync_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION recommender._sync_trigger()', source);

    -- Initial load (or resync): upsert every row, drop catalogue rows the source no longer has.
    EXECUTE format('DELETE FROM recommender.products p WHERE p.source = $1 '
                   'AND NOT EXISTS (SELECT 1 FROM %s t WHERE (t.%I)::text = p.external_id)', source, s.id_column)
        USING source;
    EXECUTE recommender._sync_upsert_sql(s, source::text) USING source;
    SELECT count(*) INTO n FROM recommender.products p WHERE p.source = sync_products.source;
    SELECT count(*) INTO stale FROM recommender.products p
     WHERE p.source = sync_products.source AND (p.embedding IS NULL OR p.embedded_hash IS DISTINCT FROM p.text_hash);
    RAISE NOTICE 'recommender: % product(s) from % in the catalogue, % to embed%', n, source, stale,
        CASE WHEN stale > 0 THEN ': CALL recommender.refresh_embeddings()' ELSE '' END;
    RETURN n;
END
$$;

-- embed(text[]) is VOLATILE: a STABLE one was evaluated twice under unnest()
ALTER FUNCTION recommender.embed(text[]) VOLATILE;

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
-- DROP EXTENSION (other databases may use them). Grant them to application roles.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'recommender_reader') THEN
        CREATE ROLE recommender_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'recommender_writer') THEN
        CREATE ROLE recommender_writer NOLOGIN;
    END IF;
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
    recommender._response(text, text, jsonb), recommender._item(anyelement),
    recommender.clock(), recommender.model_info(), recommender.preload_models(),
    recommender.product_text(text, text, text, double precision), recommender._text_hash(text)
TO recommender_reader;
GRANT SELECT ON recommender.products, recommender.interaction_weights,
                recommender.sync_status, recommender.recommendation_performance
TO recommender_reader;

-- Writer: reader + track() + the catalogue (direct writes, sync, embedding).
GRANT EXECUTE ON FUNCTION
    recommender.track(text, bigint, recommender.interaction_type, numeric, numeric, text, text, integer, timestamptz),
    recommender.embed_product(bigint, boolean), recommender._reembed(bigint[], boolean),
    recommender.sync_products(regclass, name, name, name, name, name, name, name, name),
    recommender.unsync_products(regclass, boolean),
    recommender._sync_check_column(regclass, name, text, text),
    recommender._sync_select(recommender.sync_sources, text),
    recommender._sync_upsert_sql(recommender.sync_sources, text),
    recommender._sync_delete_sql(recommender.sync_sources, text, text),
    recommender._clean_price(numeric), recommender._clean_stock(numeric)
TO recommender_writer;
GRANT EXECUTE ON PROCEDURE recommender.refresh_embeddings(integer, boolean) TO recommender_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON recommender.products, recommender.sync_sources TO recommender_writer;
-- INSERT (track, COPY) but no reading back of other users' rows: RETURNING needs the id only.
GRANT INSERT, SELECT (interaction_id) ON recommender.interactions TO recommender_writer;
