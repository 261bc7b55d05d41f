//! Item model: products the item-to-item model (`recommender.item_neighbors`, EASE, built by
//! `CALL recommender.build_item_model()`) links to everything the user bought: a product's score
//! is the sum of its links from the user's purchased products (EASE's prediction, with each
//! product's weaker links dropped). Only products the user has not bought: the model explores,
//! and the user's own products are the repeat source's (with `enable_repurchase` off the rules
//! would drop them, and the list would come back short of new products). Reaches the whole history, where co-purchase reads the 10 most
//! recent purchases. Finds nothing until the model is built, and on a database still at a release
//! without it.
use crate::error::Result;
use crate::pipeline::db::{one, pairs};

/// The `n` products the user's purchases link to most strongly.
pub(crate) fn of_user(user_id: &str, n: usize) -> Result<Vec<(i64, f64)>> {
    if n == 0
        || !one::<bool>(
            "SELECT to_regclass('recommender.item_neighbors') IS NOT NULL",
            &[],
        )?
        .unwrap_or(false)
    {
        return Ok(Vec::new());
    }
    pairs(
        "WITH bought AS MATERIALIZED (
             SELECT product_id FROM recommender.user_products
              WHERE user_id = $1 AND purchases > 0 AND first_at <= recommender.clock())
         SELECT nb.neighbor_id, sum(nb.score)::float8
           FROM bought b JOIN recommender.item_neighbors nb ON nb.product_id = b.product_id
          WHERE NOT EXISTS (SELECT FROM bought o WHERE o.product_id = nb.neighbor_id)
          GROUP BY 1 HAVING sum(nb.score) > 0 ORDER BY 2 DESC, 1 LIMIT $2",
        &[user_id.into(), (n as i64).into()],
    )
}
