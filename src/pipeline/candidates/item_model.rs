//! Item model: products the item-to-item model (`recommender.item_neighbors`, EASE, built by
//! `CALL recommender.build_item_model()`) links to everything the user bought: a product's score
//! is the sum of its links from the user's purchased products (EASE's prediction, with each
//! product's weaker links dropped). Only products the user has not bought: the model explores,
//! and the user's own products are the repeat source's (with `enable_repurchase` off the rules
//! would drop them, and the list would come back short of new products). Reaches the whole
//! history, where co-purchase reads the 10 most recent purchases. Finds nothing until the model
//! is built, and on a database still at a release without it.
use std::collections::HashSet;

use crate::error::Result;
use crate::pipeline::db::{one, pairs};

/// The `n` products the user's purchases link to most strongly, none the user bought.
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
    let bought: Vec<i64> = pairs(
        "SELECT product_id, 0::float8 FROM recommender.user_products
          WHERE user_id = $1 AND purchases > 0 AND first_at <= recommender.clock()",
        &[user_id.into()],
    )?
    .into_iter()
    .map(|p| p.0)
    .collect();
    if bought.is_empty() {
        return Ok(Vec::new());
    }
    // One index probe per bought product (`= ANY`); a join planned from the user's rows chose a
    // scan of the whole model (136 ms against 12 ms on Complete Journey).
    let mut scored = pairs(
        "SELECT neighbor_id, sum(score)::float8 FROM recommender.item_neighbors
          WHERE product_id = ANY($1) GROUP BY 1 HAVING sum(score) > 0",
        &[bought.clone().into()],
    )?;
    let own: HashSet<i64> = bought.into_iter().collect();
    scored.retain(|(id, _)| !own.contains(id));
    scored.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(n);
    Ok(scored)
}
