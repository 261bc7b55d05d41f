-- Installing: vector comes along through CASCADE.
CREATE EXTENSION recommender CASCADE;
SELECT extname, extversion FROM pg_extension WHERE extname IN ('vector', 'recommender') ORDER BY 1;
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
