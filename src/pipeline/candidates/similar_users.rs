//! Similar users: products of the users who interacted with the same products.
use crate::error::Result;
use crate::pipeline::db::pairs;

/// Users who interacted with the same products as this user (through
/// the user's 20 most recent products, at most 100 users each), then the 100 strongest products
/// of the 20 most overlapping users, weighted by overlap and their own interaction weight.
pub(crate) fn products(user_id: &str, n: usize) -> Result<Vec<(i64, f64)>> {
    pairs(
        "WITH mine AS (
             SELECT product_id FROM recommender.user_products
              WHERE user_id = $1 AND weight > 0 AND last_at <= (SELECT recommender.clock())
              ORDER BY last_at DESC, product_id LIMIT 20),
         neighbours AS (
             SELECT o.user_id, count(*) AS overlap
               FROM mine m
               CROSS JOIN LATERAL (SELECT u.user_id FROM recommender.user_products u
                                    WHERE u.product_id = m.product_id AND u.user_id <> $1 AND u.weight > 0
                                    ORDER BY u.weight DESC LIMIT 100) o
              GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20)
         SELECT u.product_id, sum(n.overlap * ln(1 + u.weight))::float8
           FROM neighbours n
           CROSS JOIN LATERAL (SELECT p.product_id, p.weight FROM recommender.user_products p
                                WHERE p.user_id = n.user_id AND p.weight > 0
                                ORDER BY p.weight DESC LIMIT 100) u
          WHERE u.product_id NOT IN (SELECT product_id FROM mine)
          GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $2",
        &[user_id.into(), (n as i64).into()],
    )
}
