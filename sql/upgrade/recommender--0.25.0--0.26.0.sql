-- recommender 0.25.0 -> 0.26.0, a security release (README "Upgrades"): the pipeline's statements
-- name neither pgvector's type nor its operator; sync_products() locks the table it syncs, and
-- its schema's row, before checking it; the library's cache writes never wait.
-- Released: never edit.
--   * recommender._distance(vector, vector) (new): pgvector's cosine distance with a SQL-standard
--     body, bound by oid here and inlined by the planner (unpinned, listed in
--     recommender._unpinned_functions(), replaced). The 0.26.0 library calls it, and
--     recommender._vector(), instead of naming pgvector's operator and type with vector's
--     schema, whose owner (the database's owner, for public) could rename that schema and have a
--     statement re-parsed under the name's new meaning run a look-alike as the extension's owner.
--   * recommender.sync_products(): the table was checked by its oid and then read, and given its
--     triggers, by its name, with no lock on it until then; the owner of the table or of its
--     schema could make the name mean another table in between, with columns of its own types
--     whose casts the caller (a superuser) ran. It now locks the table first (checking that the
--     lock is on that oid; in the mode CREATE TRIGGER takes, so syncs of one table take turns)
--     and then, for a superuser caller, the row in pg_namespace of the schema the table is in,
--     which stops the schema's renaming, checking that the name it locked is the one the
--     backend's catalogue cache gives, before any check.
--   * The library (nothing here): the recommendation functions waited for rows another
--     transaction held to keep their caches.
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.26.0'" to load this file. \quit

CREATE FUNCTION recommender._distance(a vector, b vector) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN a <=> b;
COMMENT ON FUNCTION recommender._distance(vector, vector) IS
    'pgvector''s cosine distance (<=>), bound when the extension was created; inlined, so the HNSW index serves an ORDER BY of it.';
REVOKE ALL ON FUNCTION recommender._distance(vector, vector) FROM PUBLIC;

CREATE OR REPLACE FUNCTION recommender._unpinned_functions() RETURNS regprocedure[]
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
    schema_now pg_catalog.name;
    kind   "char";
    n      bigint;
    stale  bigint;
    ev     text;
BEGIN
    IF source IS NULL OR id_column IS NULL OR name_column IS NULL THEN
        RAISE EXCEPTION 'recommender: source, id_column and name_column must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- The table is checked by its oid but read, and given its triggers, by its name (0.26.0):
    -- what the name means must not change until the commit. First the table is locked (its
    -- renaming, moving to another schema, dropping and retyping then wait for the commit), in
    -- the mode CREATE TRIGGER takes below, so two syncs of one table take turns. It is locked
    -- through its name, which could have meant another relation at that moment: the lock on the
    -- oid is checked. Then, for a superuser caller (only a superuser may lock catalogue rows),
    -- the row of the schema the table is in now, in pg_namespace: renaming the schema then
    -- waits too, and no other relation can take the name.
    EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', source);
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_locks l
                    WHERE l.locktype OPERATOR(pg_catalog.=) 'relation'
                      AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                                                              WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                      AND l.relation OPERATOR(pg_catalog.=) source
                      AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() AND l.granted) THEN
        RAISE EXCEPTION 'recommender: % was renamed or replaced while sync_products locked it', source
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Call it again.';
    END IF;
    -- A rename of the schema committed before that lock (one it waited for, say) may not have
    -- reached this backend's catalogue cache yet, which is what renders `source` as text: the
    -- locked row's name must be the one the cache gives, else the call stops.
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        SELECT n.nspname INTO schema_now FROM pg_catalog.pg_namespace n
         WHERE n.oid OPERATOR(pg_catalog.=) (SELECT c.relnamespace FROM pg_catalog.pg_class c
                                              WHERE c.oid OPERATOR(pg_catalog.=) source)
           FOR SHARE;
        IF pg_catalog.quote_ident(schema_now) OPERATOR(pg_catalog.<>)
           (SELECT c.relnamespace::pg_catalog.regnamespace::pg_catalog.text FROM pg_catalog.pg_class c
             WHERE c.oid OPERATOR(pg_catalog.=) source) THEN
            RAISE EXCEPTION 'recommender: the schema of % was renamed while sync_products locked it', source
                USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Call it again.';
        END IF;
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
                   'AND NOT EXISTS (SELECT 1 FROM (SELECT %s AS external_id FROM %s) t WHERE t.external_id = p.external_id)',
                   recommender._sync_read(source, s.id_column, 'text'), source)
        USING source;
    EXECUTE recommender._sync_upsert_sql(s, source::text) USING source;
    SELECT count(*) INTO n FROM recommender.products p WHERE p.source = sync_products.source;
    SELECT count(*) INTO stale FROM recommender.products p
     WHERE p.source = sync_products.source AND recommender._stale(p.embedding, p.embedded_hash, p.text_hash);
    RAISE NOTICE 'recommender: % product(s) from % in the catalogue, % to embed%', n, source, stale,
        CASE WHEN stale > 0 THEN ': CALL recommender.refresh_embeddings()' ELSE '' END;
    RETURN n;
END
$$;
ALTER FUNCTION recommender.sync_products(regclass, name, name, name, name, name, name, name, name)
    SET search_path = pg_catalog, pg_temp;
