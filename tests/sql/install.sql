-- Installing: vector comes along through CASCADE.
CREATE EXTENSION recommender CASCADE;
-- (pgvector's patch release differs by PostgreSQL major: 0.8.0 on 15, 0.8.5 on 16, 0.8.6 on 18.)
SELECT extname, CASE extname WHEN 'vector' THEN left(extversion, 3) ELSE extversion END AS extversion
  FROM pg_extension WHERE extname IN ('vector', 'recommender') ORDER BY 1;
-- The public surface (internal helpers start with an underscore).
SELECT p.oid::regprocedure AS function,
       CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END AS volatility,
       p.proisstrict AS strict
  FROM pg_proc p
 WHERE p.pronamespace = 'recommender'::regnamespace AND p.proname NOT LIKE '\_%'
 ORDER BY p.oid::regprocedure::text;
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'recommender'::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1;
-- Settings, with their defaults.
SELECT name, setting, context FROM pg_settings WHERE name LIKE 'recommender.%' AND name NOT IN ('recommender.model_dir', 'recommender.onnxruntime_library') ORDER BY 1;
SELECT name, context, setting = '' AS uses_default FROM pg_settings
 WHERE name IN ('recommender.model_dir', 'recommender.onnxruntime_library') ORDER BY 1;
