-- Each user's last 10 ratings by time (ties by product) move to table :held, deleted from
-- recommender.interactions through the extension's triggers so no aggregate, profile or item model
-- sees them (the model is emptied; the scripts rebuild it from what is left); :split holds the
-- clock just after the last of them. Used by bench/evaluate_movielens.sh (the test set);
-- bench/tune_movielens.sh then tunes on what is left with recommender.tune(split => 'user').
CREATE TABLE :held AS
SELECT user_id, product_id, occurred_at FROM (
  SELECT user_id, product_id, occurred_at,
         row_number() OVER (PARTITION BY user_id ORDER BY occurred_at DESC, product_id DESC) AS rk
    FROM recommender.interactions) s
 WHERE rk <= 10;
DELETE FROM recommender.interactions i USING :held h
 WHERE i.user_id = h.user_id AND i.product_id = h.product_id AND i.occurred_at = h.occurred_at;
CREATE TABLE :split AS SELECT max(occurred_at) + interval '1 second' AS t FROM :held;
TRUNCATE recommender.user_profiles, recommender.popular_cache, recommender.item_model;
VACUUM ANALYZE;
