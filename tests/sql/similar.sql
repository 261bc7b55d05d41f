-- Content similarity over the HNSW index; excludes the product itself and out-of-stock products.
SELECT position, external_product_id, name, category, price, round(score::numeric, 2) AS score
  FROM recommender.similar_products((SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 4);
SELECT position, external_product_id, name, round(score::numeric, 2) AS score
  FROM recommender.similar_products((SELECT product_id FROM recommender.products WHERE external_id = 'aud-1'), 3);
-- Out of stock (cof-4, qty 0) never appears.
SELECT count(*) AS out_of_stock_returned
  FROM recommender.products p, recommender.similar_products(p.product_id, 100) s
  JOIN recommender.products q ON q.product_id = s.product_id
 WHERE NOT q.in_stock;
-- k larger than the catalogue returns every other in-stock product once.
SELECT count(*) AS rows, count(DISTINCT product_id) AS distinct_products
  FROM recommender.similar_products((SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 1000);
-- Function settings: pinned search_path, iterative HNSW scan.
SELECT proconfig FROM pg_proc WHERE proname = 'similar_products';
-- Unknown product and NULL: zero rows, not an error.
SELECT count(*) AS unknown_product FROM recommender.similar_products(-1, 5);
SELECT count(*) AS null_product FROM recommender.similar_products(NULL, 5);
-- k out of range: SQLSTATE 22023 with a hint.
\set VERBOSITY default
SELECT * FROM recommender.similar_products(1, 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM recommender.similar_products(1, 1001);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM recommender.similar_products(1, 2147483647);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- The session keeps working.
SELECT count(*) AS still_fine FROM recommender.similar_products(1, 2);
