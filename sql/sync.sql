-- recommender, unit "sync" (src/lib.rs wires the units and their order).
-- Sync from the app's own product table (README "Sync", "Privileges").

CREATE TABLE recommender.sync_sources (
    source              regclass PRIMARY KEY,
    id_column           name NOT NULL,
    name_column         name NOT NULL,
    description_column  name,
    category_column     name,
    price_column        name,
    stock_column        name,
    image_url_column    name,
    created_at_column   name,
    stock_is_boolean    boolean NOT NULL DEFAULT false,
    synced_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recommender.sync_sources IS 'App tables synced into recommender.products, with their column mapping.';
SELECT pg_catalog.pg_extension_config_dump('recommender.sync_sources', '');
-- A writer manages the sync of tables it owns only (0.16.0): otherwise it could remap another
-- role's synced table, copying a column it may not read into the catalogue at that table's next
-- write, or stop its sync. Everyone who may read the table sees every row, and any writer may
-- remove the row of a table that no longer exists; the extension's owner (the sync trigger, the
-- views) and superusers are not subject to the policies.
ALTER TABLE recommender.sync_sources ENABLE ROW LEVEL SECURITY;
CREATE POLICY sync_sources_read ON recommender.sync_sources FOR SELECT USING (true);
CREATE POLICY sync_sources_own_tables ON recommender.sync_sources
    USING (pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c
                                    WHERE c.oid OPERATOR(pg_catalog.=) source::pg_catalog.oid), 'USAGE')
           OR NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) source::pg_catalog.oid))
    WITH CHECK (pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c
                                         WHERE c.oid OPERATOR(pg_catalog.=) source::pg_catalog.oid), 'USAGE'));

-- Out-of-range prices (negative, NaN, infinite) become NULL instead of failing the app's write.
CREATE FUNCTION recommender._clean_price(p numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN p OPERATOR(pg_catalog.>=) 0 AND p OPERATOR(pg_catalog.<=) 1e12 THEN p END $$;

CREATE FUNCTION recommender._clean_stock(s numeric) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN s OPERATOR(pg_catalog.>=) -2147483648 AND s OPERATOR(pg_catalog.<=) 2147483647
                  THEN pg_catalog.round(s)::integer
                  WHEN s OPERATOR(pg_catalog.>) 2147483647 THEN 2147483647
                  WHEN s OPERATOR(pg_catalog.<) -2147483648 THEN 0 END $$;

-- Fails like a missing column: _sync_read's reading of a mapped column the synced table no longer
-- has (0.22.0). IMMUTABLE, so the statement fails when it is planned, with or without rows.
CREATE FUNCTION recommender._sync_missing(source text, col text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'recommender: column "%" of %, mapped by sync_products(), does not exist', col, source
        USING ERRCODE = 'undefined_column',
              HINT = 'Map the table as it is now: SELECT recommender.sync_products(...) with its current column names.';
END
$$;

-- How the sync code reads a mapped column of an app table as a built-in type: an expression over
-- the column, built here once for every conversion the sync path makes (id, texts, price, stock,
-- created_at, deletes). The app's table belongs to an app role, and so may the column's type
-- with its casts, operators and domains; the sync trigger runs as the extension's owner
-- (SECURITY DEFINER), so it must never evaluate any of them (README "Privileges").
--   * a built-in type (oid below FirstNormalObjectId, 16384) is cast: a cast between built-in
--     types can only have been created by a superuser;
--   * any other type (enum, domain, composite, array, an extension's type) is printed by its
--     output function through format('%s'), which uses no cast, and the text is read by the
--     built-in target type's input function. Output functions of base types are C functions,
--     which only a superuser can create; enums, domains, composites and arrays print through the
--     built-in enum_out/record_out/array_out and their base types'. IS NULL is a null test, not
--     an operator.
--   * a mapped name the table no longer has (a column dropped or renamed after sync_products) is
--     read as a call of _sync_missing, which fails the statement as a missing column does
--     (0.22.0: before, the name was spliced in, and one that is also a relation's in the
--     statement, the trigger's new_rows or old_rows, read the whole row as text).
-- target is one of a fixed set of built-in type names: the callers below pass literals.
CREATE FUNCTION recommender._sync_read(source regclass, col name, target text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT CASE WHEN t.typ IS NULL
            THEN pg_catalog.format('recommender._sync_missing(%L, %L)::pg_catalog.%s', source::text, col, target)
            WHEN t.typ < 16384::oid
            THEN pg_catalog.format('(%I)::pg_catalog.%s', col, target)
            ELSE pg_catalog.format('(CASE WHEN (%1$I) IS NULL THEN NULL ELSE pg_catalog.format(''%%s'', %1$I) END)::pg_catalog.%2$s',
                                   col, target) END
  FROM (SELECT (SELECT a.atttypid FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped) AS typ) t
$$;

-- The SELECT that maps a source relation (the table itself, or a trigger's transition table) to
-- catalogue columns. Identifiers are quoted with format('%I'); the relation is a regclass's
-- own quoted output or a fixed transition-table name; every column is read by _sync_read.
CREATE FUNCTION recommender._sync_select(s recommender.sync_sources, rel text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT pg_catalog.format(
    'SELECT DISTINCT ON (external_id) * FROM (SELECT %s AS external_id, coalesce(%s, %L) AS name, '
    '%s AS description, %s AS category, %s AS price, %s AS stock, %s AS image_url, %s AS created_at FROM %s) r '
    'WHERE external_id IS NOT NULL ORDER BY external_id',
    recommender._sync_read(s.source, s.id_column, 'text'),
    recommender._sync_read(s.source, s.name_column, 'text'), '',
    CASE WHEN s.description_column IS NULL THEN 'NULL::pg_catalog.text'
         ELSE recommender._sync_read(s.source, s.description_column, 'text') END,
    CASE WHEN s.category_column IS NULL THEN 'NULL::pg_catalog.text'
         ELSE recommender._sync_read(s.source, s.category_column, 'text') END,
    CASE WHEN s.price_column IS NULL THEN 'NULL::pg_catalog.numeric'
         ELSE pg_catalog.format('recommender._clean_price(%s)', recommender._sync_read(s.source, s.price_column, 'numeric')) END,
    CASE WHEN s.stock_column IS NULL THEN 'NULL::pg_catalog.int4'
         WHEN s.stock_is_boolean THEN pg_catalog.format('(CASE WHEN %1$s THEN 1 WHEN NOT %1$s THEN 0 END)',
                                                       recommender._sync_read(s.source, s.stock_column, 'bool'))
         ELSE pg_catalog.format('recommender._clean_stock(%s)', recommender._sync_read(s.source, s.stock_column, 'numeric')) END,
    CASE WHEN s.image_url_column IS NULL THEN 'NULL::pg_catalog.text'
         ELSE recommender._sync_read(s.source, s.image_url_column, 'text') END,
    CASE WHEN s.created_at_column IS NULL THEN 'NULL::pg_catalog.timestamptz'
         ELSE recommender._sync_read(s.source, s.created_at_column, 'timestamptz') END,
    rel)
$$;

CREATE FUNCTION recommender._sync_upsert_sql(s recommender.sync_sources, rel text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT format($q$
    INSERT INTO recommender.products AS p
           (source, external_id, name, description, category, price, stock, image_url, created_at)
    SELECT $1, r.external_id, r.name, r.description, r.category, r.price, r.stock, r.image_url,
           coalesce(r.created_at, now())
      FROM (%s) r
    ON CONFLICT (source, external_id) DO UPDATE
       SET name = EXCLUDED.name, description = EXCLUDED.description, category = EXCLUDED.category,
           price = EXCLUDED.price, stock = EXCLUDED.stock, image_url = EXCLUDED.image_url
     WHERE (p.name, p.description, p.category, p.price, p.stock, p.image_url)
           IS DISTINCT FROM
           (EXCLUDED.name, EXCLUDED.description, EXCLUDED.category, EXCLUDED.price, EXCLUDED.stock, EXCLUDED.image_url)
$q$, recommender._sync_select(s, rel))
$$;

-- Deletes catalogue rows of this source whose id is in `gone` but not in `kept` (kept may be NULL).
CREATE FUNCTION recommender._sync_delete_sql(s recommender.sync_sources, gone text, kept text) RETURNS text
LANGUAGE sql STABLE
AS $$
SELECT pg_catalog.format(
    'DELETE FROM recommender.products p USING (SELECT %1$s AS external_id FROM %2$s %3$s) d '
    'WHERE p.source = $1 AND p.external_id = d.external_id',
    recommender._sync_read(s.source, s.id_column, 'text'), gone,
    CASE WHEN kept IS NULL THEN ''
         ELSE pg_catalog.format('EXCEPT SELECT %s FROM %s', recommender._sync_read(s.source, s.id_column, 'text'), kept) END)
$$;

-- One statement-level trigger function for every event on a synced table. SECURITY DEFINER so
-- that app roles writing their own table need no privileges on the catalogue. It evaluates
-- nothing the table's owner can define: every column is read through _sync_read, the statements
-- it runs name only built-in and recommender objects, and its search_path is pinned (pg_catalog
-- first). Writers may attach it to tables they own (sync_products as a recommender_writer).
-- It runs only as one of the AFTER ... FOR EACH STATEMENT triggers sync_products() creates, whose
-- transition tables are named new_rows and old_rows: a trigger without them would leave those
-- names to resolve to relations, such as a temporary view of the caller's that calls the caller's
-- functions, which would then run with the owner's rights (0.16.0).
CREATE FUNCTION recommender._sync_trigger() RETURNS trigger
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

CREATE FUNCTION recommender._sync_check_column(source regclass, col name, what text, categories text)
RETURNS boolean  -- true when the column is boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    typ oid;
    cat text;
BEGIN
    SELECT a.atttypid INTO typ FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'recommender: column "%" (the %) does not exist in %', col, what, source
            USING ERRCODE = 'undefined_column',
                  HINT = format('Columns of %s: %s. Name the right one with %s_column => ..., or pass NULL to leave it unmapped.',
                                source,
                                (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_catalog.pg_attribute
                                  WHERE attrelid = source AND attnum > 0 AND NOT attisdropped),
                                what);
    END IF;
    SELECT t.typcategory INTO cat FROM pg_catalog.pg_type t WHERE t.oid = typ;
    IF categories IS NOT NULL AND strpos(categories, cat) = 0 THEN
        RAISE EXCEPTION 'recommender: column "%" of % has type %, which cannot be the %', col, source, typ::regtype, what
            USING ERRCODE = 'datatype_mismatch',
                  HINT = CASE what WHEN 'price' THEN 'The price column must be numeric (integer, numeric, real, ...).'
                                   ELSE 'The stock column must be a number (quantity) or a boolean (in stock).' END;
    END IF;
    RETURN cat = 'B';
END
$$;

CREATE FUNCTION recommender.sync_products(
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
COMMENT ON FUNCTION recommender.sync_products(regclass, name, name, name, name, name, name, name, name) IS
    'Loads an app table into the catalogue and installs triggers that keep it in sync. New rows are left for CALL recommender.refresh_embeddings(); later writes are embedded as they happen.';

CREATE FUNCTION recommender.unsync_products(source regclass, delete_products boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql STRICT
AS $$
DECLARE
    ev text;
BEGIN
    FOR ev IN SELECT t.tgname FROM pg_catalog.pg_trigger t
               WHERE t.tgrelid = source AND t.tgname IN ('recommender_sync_insert', 'recommender_sync_update',
                                                        'recommender_sync_delete', 'recommender_sync_truncate') LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', ev, source);
    END LOOP;
    DELETE FROM recommender.sync_sources s WHERE s.source = unsync_products.source;
    IF delete_products THEN
        DELETE FROM recommender.products p WHERE p.source = unsync_products.source;
    END IF;
END
$$;
COMMENT ON FUNCTION recommender.unsync_products(regclass, boolean) IS
    'Removes the sync triggers from an app table; its products stay in the catalogue unless delete_products.';
