-- recommender 0.3.0 -> 0.4.0 (released with 0.4.0; never edit after release)
--   * products with the same text share one vector: re-embedding copies a current vector of a
--     product with the same text_hash instead of running the model (new index
--     products_embedded_hash); identical texts in one embed() call run once
--   * (no other SQL change: the pipeline's statements are now prepared once per backend, and
--     stage 3 reranks one candidate per name)
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.4.0'" to load this file. \quit

-- Products with the same text share one vector: re-embedding looks up a current one here first.
-- Not partial (WHERE embedding IS NOT NULL): right after a bulk load the statistics still say
-- "no embeddings", and the planner then scanned a partial index in full to read 20 products.
CREATE INDEX products_embedded_hash ON recommender.products (embedded_hash);
