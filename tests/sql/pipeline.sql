-- The recommendation pipeline as a user calls it. The clock is fixed so decay, popularity
-- windows and new arrivals are reproducible.
SET recommender.as_of = '2024-03-01 00:00+00';
SELECT recommender.clock();
SELECT type, weight FROM recommender.interaction_weights ORDER BY weight DESC;

-- Interactions: track() one at a time (returns the interaction id) ...
SELECT recommender.track('alice', product_id, 'PURCHASE', basket_id => 'a-1', occurred_at => '2024-02-01') > 0 AS tracked
  FROM recommender.products WHERE external_id IN ('cof-1', 'kit-2');
SELECT recommender.track('alice', product_id, 'VIEW', occurred_at => '2024-02-20') > 0 AS tracked
  FROM recommender.products WHERE external_id = 'cof-3';
-- ... or plain INSERT / COPY: the aggregates follow by trigger either way.
INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
SELECT u, p.product_id, 'PURCHASE', b, at::timestamptz
  FROM (VALUES ('bob', 'cof-1', 'b-1', '2024-02-05'), ('bob', 'kit-1', 'b-1', '2024-02-05'),
               ('carol', 'cof-1', 'c-1', '2024-02-06'), ('carol', 'kit-1', 'c-1', '2024-02-06'),
               ('carol', 'tea-1', 'c-2', '2024-02-16'), ('dave', 'aud-1', 'd-1', '2024-02-07'),
               ('dave', 'aud-2', 'd-1', '2024-02-07')) v(u, ext, b, at)
  JOIN recommender.products p ON p.external_id = v.ext;
SELECT a.external_id AS product, b.external_id AS bought_with, c.baskets
  FROM recommender.copurchase c
  JOIN recommender.products a ON a.product_id = c.product_a
  JOIN recommender.products b ON b.product_id = c.product_b
 ORDER BY 1, 2;

-- homepage: candidates, hybrid score, rerank, business rules; every stage's score is shown.
SELECT position, external_product_id, category, round(score::numeric, 2) AS score,
       round(content_score::numeric, 2) AS content, round(collaborative_score::numeric, 2) AS collab,
       round(popularity_score::numeric, 2) AS popular, round(rerank_score::numeric, 2) AS rerank, sources, reranker
  FROM recommender.homepage('alice', 5);
-- The profile it used: cached, and rebuilt when alice has other interactions at the clock.
SELECT user_id, top_categories, interaction_count FROM recommender.user_profiles ORDER BY 1;
-- Weights are USERSET GUCs: an A/B test can SET LOCAL them.
BEGIN;
SET LOCAL recommender.homepage_weight_content = 0;
SET LOCAL recommender.homepage_weight_collaborative = 0;
SET LOCAL recommender.homepage_weight_popularity = 1;
SET LOCAL recommender.enable_rerank = off;
SELECT position, external_product_id, round(popularity_score::numeric, 2) AS popular FROM recommender.homepage('alice', 3);
COMMIT;
-- Business rules: one per category, no repurchase.
SET recommender.max_per_category = 1;
SET recommender.enable_repurchase = off;
SELECT position, external_product_id, category FROM recommender.homepage('alice', 5);
RESET recommender.max_per_category;
RESET recommender.enable_repurchase;
-- A user without history gets popular products; so does an unknown one.
SELECT position, external_product_id, sources FROM recommender.homepage('nobody', 3);

-- Cart: never the cart's own items; unknown ids are ignored with a NOTICE.
SELECT position, external_product_id, sources
  FROM recommender.cart(ARRAY(SELECT product_id FROM recommender.products WHERE external_id = 'cof-1') || -1::bigint, 3);
SELECT recommender.track('erin', product_id, 'CART_ADD', occurred_at => '2024-02-29') > 0 AS tracked
  FROM recommender.products WHERE external_id = 'aud-1';
SELECT position, external_product_id, category FROM recommender.cart('erin', 2);

-- Frequently bought together: co-purchase first, similarity when data runs out.
SELECT position, external_product_id, round(score::numeric, 2) AS score, source
  FROM recommender.frequently_bought_together((SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 3);

-- Rerank any texts. Without a cross-encoder installed, the bi-encoder does it and says so.
SELECT index, round(score::numeric, 2) AS score, reranker
  FROM recommender.rerank('coffee beans', ARRAY['running shoes', 'fresh roasted coffee beans', NULL]);
-- With the repo's deterministic test cross-encoder (its scores mean nothing, but are stable).
SELECT set_config('recommender.cross_encoder_dir',
                  (SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/recommender/test-models/cross-encoder', false) IS NOT NULL AS set;
SELECT index, round(score::numeric, 4) AS score, reranker
  FROM recommender.rerank('coffee beans', ARRAY['running shoes', 'fresh roasted coffee beans']);
SELECT DISTINCT reranker FROM recommender.homepage('alice', 3);
RESET recommender.cross_encoder_dir;

-- JSON, in the shape an HTTP layer passes through.
SELECT jsonb_pretty(recommender.homepage_json('alice', 2) - 'request_id');
SELECT recommender.frequently_bought_together_json(
         (SELECT product_id FROM recommender.products WHERE external_id = 'cof-1'), 1)->'recommendations'->0->>'external_product_id' AS top;

-- Bad input: k out of range is 22023; NULLs give no rows (the functions are STRICT).
SELECT * FROM recommender.homepage('alice', 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM recommender.cart('alice', 1001);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS null_user FROM recommender.homepage(NULL, 5);
SELECT recommender.track('alice', -5, 'VIEW');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Maintenance: rebuild every profile (committing per batch), recompute the aggregates.
SET client_min_messages = warning;
CALL recommender.rebuild_user_profiles();
SELECT recommender.refresh_aggregates();
RESET client_min_messages;
SELECT count(*) AS profiles FROM recommender.user_profiles;
SELECT recommender.track('alice', product_id, 'RECOMMENDATION_CLICK', request_id => 'req-1', "position" => 2,
                         occurred_at => '2024-02-29 12:00+00') > 0 AS tracked
  FROM recommender.products WHERE external_id = 'tea-1';
SELECT * FROM recommender.recommendation_performance;
RESET recommender.as_of;
