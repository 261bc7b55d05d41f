//! Item model: products the item-to-item model (`recommender.item_model`, EASE, built by
//! `CALL recommender.build_item_model()`) links to everything the user bought: a product's score
//! is the sum of its links from the user's purchased products (EASE's prediction, with each
//! product's weaker links dropped). Only products the user has not bought: the model explores,
//! and the user's own products are the repeat source's (with `enable_repurchase` off the rules
//! would drop them, and the list would come back short of new products). Reaches the whole
//! history, where co-purchase reads the 10 most recent purchases; each product counts alike, or
//! by its recency rank with `recommender.item_model_recency` (0.25.0). Finds nothing until the
//! model is built, and on a database still at a release without it.
use pgrx::prelude::*;
use rustc_hash::FxHashMap;

use recommender_core::item_model::recency_weight;

use crate::error::Result;
use crate::gucs;
use crate::pipeline::db::{one, pairs};
use crate::pipeline::plans;

/// The `n` products the user's purchases link to most strongly, none the user bought.
pub(crate) fn of_user(user_id: &str, n: usize) -> Result<Vec<(i64, f64)>> {
    if n == 0
        || !one::<bool>(
            "SELECT to_regclass('recommender.item_model') IS NOT NULL",
            &[],
        )?
        .unwrap_or(false)
    {
        return Ok(Vec::new());
    }
    // Newest first (by the latest interaction with the product, at most the clock), so that the
    // r-th counts recency_weight(r) when recommender.item_model_recency is set.
    let bought: Vec<i64> = pairs(
        "SELECT product_id, 0::float8 FROM recommender.user_products
          WHERE user_id = $1 AND purchases > 0 AND first_at <= (SELECT recommender.clock())
          ORDER BY least(last_at, (SELECT recommender.clock())) DESC, product_id",
        &[user_id.into()],
    )?
    .into_iter()
    .map(|p| p.0)
    .collect();
    if bought.is_empty() {
        return Ok(Vec::new());
    }
    let recency = gucs::item_model_recency();
    let weight: FxHashMap<i64, f64> = bought
        .iter()
        .enumerate()
        .map(|(rank, &id)| (id, recency_weight(rank, recency)))
        .collect();
    // One row (one index probe) per bought product, its links summed here: reading the links one
    // per row and summing them in SQL took 8–12 ms for a household with ~200 products.
    // ~20,000 additions for a household of ~200 products: a fast hash of the ids (std's SipHash
    // took about a third of this function)
    let mut sum: FxHashMap<i64, f64> = FxHashMap::default();
    Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT product_id, neighbor_ids, scores FROM recommender.item_model WHERE product_id = ANY($1)",
            None,
            &[bought.into()],
        )?;
        for r in t {
            // read in place; a row with NULL elements (build_item_model never writes one) is skipped
            let (Some(from), Some(ids), Some(scores)) = (
                r.get::<i64>(1)?,
                r.get::<pgrx::Array<i64>>(2)?,
                r.get::<pgrx::Array<f32>>(3)?,
            ) else {
                continue;
            };
            let (Ok(ids), Ok(scores)) = (ids.as_slice(), scores.as_slice()) else {
                continue;
            };
            let w = weight.get(&from).copied().unwrap_or(1.0);
            for (&id, &s) in ids.iter().zip(scores) {
                *sum.entry(id).or_default() += w * s as f64;
            }
        }
        Ok::<_, pgrx::spi::SpiError>(())
    })?;
    let mut scored: Vec<(i64, f64)> = sum
        .into_iter()
        .filter(|(id, s)| *s > 0.0 && !weight.contains_key(id))
        .collect();
    scored.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(n);
    Ok(scored)
}
