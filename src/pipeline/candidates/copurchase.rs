//! Co-purchase: products bought in the same baskets (`recommender.copurchase`, maintained by the
//! interactions trigger).
use crate::error::Result;
use crate::pipeline::db::pairs;

/// Co-purchase partners of the user's 10 most recent purchases.
pub(crate) fn of_user(user_id: &str, n: usize) -> Result<Vec<(i64, f64)>> {
    let recent: Vec<i64> = pairs(
        "SELECT product_id, 0::float8 FROM recommender.user_products
          WHERE user_id = $1 AND purchases > 0 AND last_at <= (SELECT recommender.clock())
          ORDER BY last_at DESC, product_id LIMIT 10",
        &[user_id.into()],
    )?
    .into_iter()
    .map(|p| p.0)
    .collect();
    of(&recent, n)
}

/// Products bought in the same baskets as any of `items`, by number of shared baskets.
pub(crate) fn of(items: &[i64], n: usize) -> Result<Vec<(i64, f64)>> {
    if items.is_empty() || n == 0 {
        return Ok(Vec::new());
    }
    pairs(
        "SELECT c.product_b, sum(c.baskets)::float8 FROM unnest($1::bigint[]) AS a(id)
           CROSS JOIN LATERAL (SELECT product_b, baskets FROM recommender.copurchase
                                WHERE product_a = a.id AND baskets > 0 ORDER BY baskets DESC LIMIT 200) c
          WHERE NOT (c.product_b = ANY($1))
          GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $2",
        &[items.to_vec().into(), (n as i64).into()],
    )
}
