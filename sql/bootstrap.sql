-- recommender, unit "bootstrap": runs first (pgrx bootstrap), before anything is created.
-- The schema must be a superuser's and empty (0.16.0). CREATE EXTENSION puts everything into the
-- schema named recommender and reuses one that exists already. Whoever owned such a schema could
-- later rename it and create another recommender schema with look-alikes of the extension's
-- tables and functions: the recommendation functions, which run as the extension's owner (a
-- superuser), name them by schema and would use the look-alikes.
DO $$
DECLARE
    owner_name name;
    owner_super boolean;
    held bigint;
BEGIN
    SELECT r.rolname, r.rolsuper INTO owner_name, owner_super
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'recommender'::pg_catalog.name;
    IF NOT owner_super THEN
        RAISE EXCEPTION 'recommender: the schema "recommender" exists already and belongs to %, who is not a superuser', owner_name
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The extension''s owner is a superuser and names its objects by this schema: its owner could replace them. DROP SCHEMA recommender, or ALTER SCHEMA recommender OWNER TO a superuser, then CREATE EXTENSION recommender again.';
    END IF;
    SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) n.oid)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) n.oid)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) n.oid)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_operator o WHERE o.oprnamespace OPERATOR(pg_catalog.=) n.oid)
      INTO held
      FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) 'recommender'::pg_catalog.name;
    IF held OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'recommender: the schema "recommender" exists already and holds % object(s)', held
            USING ERRCODE = 'duplicate_schema',
                  HINT = 'CREATE EXTENSION recommender needs the schema empty (or absent): move or drop what it holds first.';
    END IF;
END
$$;
