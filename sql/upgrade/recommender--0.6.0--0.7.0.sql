-- recommender 0.6.0 -> 0.7.0: removing interactions keeps user_products exact. Released: never edit.
--   * recommender._aggregate_sql: after a DELETE (or UPDATE) of interactions, each touched
--     user/product pair's first_at and last_at are recomputed from its remaining interactions,
--     and a pair with none left is deleted. Before, they kept the removed interactions' times (a
--     min and a max cannot be subtracted), so a deleted purchase stayed "the most recent" for the
--     pipeline's seeds (similar users, co-purchase) and for any reader ordering by last_at.
--   * The pairs this left wrong are repaired once, below: one pass over interactions and
--     user_products (on a 2-core machine: 10 s for Complete Journey's 1.46 million interactions
--     with nothing to fix, 24 s for 1.35 million after 101,000 deleted purchases).
\echo Use "ALTER EXTENSION recommender UPDATE TO '0.7.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION recommender._aggregate_sql(rel text, sign integer) RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
SELECT ARRAY[
  format($q$
    INSERT INTO recommender.product_daily AS d (product_id, day, weight, purchases)
    SELECT r.product_id, (r.occurred_at AT TIME ZONE 'UTC')::date,
           %2$s * sum(greatest(w.weight, 0)), %2$s * count(*) FILTER (WHERE r.type = 'PURCHASE')
      FROM %1$s r JOIN recommender.interaction_weights w ON w.type = r.type%3$s
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (product_id, day) DO UPDATE
       SET weight = d.weight + EXCLUDED.weight, purchases = d.purchases + EXCLUDED.purchases$q$, rel, sign, live),
  format($q$
    INSERT INTO recommender.user_products AS u (user_id, product_id, weight, purchases, first_at, last_at)
    SELECT r.user_id, r.product_id, %2$s * sum(w.weight),
           %2$s * count(*) FILTER (WHERE r.type = 'PURCHASE'),
           min(r.occurred_at), max(r.occurred_at)
      FROM %1$s r JOIN recommender.interaction_weights w ON w.type = r.type%3$s
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, product_id) DO UPDATE
       SET weight = u.weight + EXCLUDED.weight, purchases = u.purchases + EXCLUDED.purchases,
           first_at = least(u.first_at, EXCLUDED.first_at), last_at = greatest(u.last_at, EXCLUDED.last_at)$q$, rel, sign, live)
] || CASE WHEN sign < 0 THEN ARRAY[
  format($q$
    WITH remaining AS (
        SELECT t.user_id, t.product_id, min(i.occurred_at) AS first_at, max(i.occurred_at) AS last_at
          FROM (SELECT DISTINCT user_id, product_id FROM %1$s) t
          LEFT JOIN recommender.interactions i ON i.user_id = t.user_id AND i.product_id = t.product_id
         GROUP BY 1, 2),
    bounds AS (
        UPDATE recommender.user_products u SET first_at = r.first_at, last_at = r.last_at
          FROM remaining r
         WHERE r.last_at IS NOT NULL AND u.user_id = r.user_id AND u.product_id = r.product_id
           AND (u.first_at, u.last_at) IS DISTINCT FROM (r.first_at, r.last_at))
    DELETE FROM recommender.user_products u USING remaining r
     WHERE r.last_at IS NULL AND u.user_id = r.user_id AND u.product_id = r.product_id$q$, rel)
] ELSE ARRAY[]::text[] END
  FROM (SELECT CASE WHEN sign < 0
                    THEN ' JOIN recommender.products p ON p.product_id = r.product_id' ELSE '' END AS live) l
$$;
-- CREATE OR REPLACE drops the function's settings: back to every function's search_path (finalize.sql).
ALTER FUNCTION recommender._aggregate_sql(text, integer) SET search_path = pg_catalog, pg_temp;

UPDATE recommender.user_products u SET first_at = m.first_at, last_at = m.last_at
  FROM (SELECT user_id, product_id, min(occurred_at) AS first_at, max(occurred_at) AS last_at
          FROM recommender.interactions GROUP BY 1, 2) m
 WHERE m.user_id = u.user_id AND m.product_id = u.product_id
   AND (u.first_at, u.last_at) IS DISTINCT FROM (m.first_at, m.last_at);
DELETE FROM recommender.user_products u
 WHERE NOT EXISTS (SELECT 1 FROM recommender.interactions i
                    WHERE i.user_id = u.user_id AND i.product_id = u.product_id);
