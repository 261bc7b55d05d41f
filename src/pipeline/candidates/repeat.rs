//! Repeat ("buy it again"): the user's own purchases, each product scored by its time-decayed
//! frequency over the user's baskets: Σ over the baskets that hold it of exp(−age/τ), τ =
//! `recommender.decay_days`, ages at the clock. This is the personal item frequency of TIFU-KNN
//! (Hu et al., SIGIR 2020) with a time decay in place of its basket-group decay: a product bought
//! in many recent baskets (milk) comes first, one bought once long ago (a kettle) last. It reads
//! the user's `PROFILE_INTERACTIONS` most recent purchase lines, as the profile does. The rules
//! drop these products when `recommender.enable_repurchase` is off.
use recommender_core::limits::PROFILE_INTERACTIONS;

use crate::error::Result;
use crate::gucs;
use crate::pipeline::db::pairs;

/// The user's `n` most re-bought products at the clock, by decayed basket frequency.
pub(crate) fn of_user(user_id: &str, n: usize) -> Result<Vec<(i64, f64)>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let (_, tau) = gucs::windows();
    pairs(
        "WITH lines AS (
             SELECT product_id, basket_key, occurred_at FROM recommender.interactions
              WHERE user_id = $1 AND type = 'PURCHASE' AND occurred_at <= (SELECT recommender.clock())
              ORDER BY occurred_at DESC, interaction_id DESC LIMIT $3),
         baskets AS (   -- a product counts once per basket, at the basket's newest line
             SELECT product_id, max(occurred_at) AS at FROM lines GROUP BY product_id, basket_key)
         SELECT product_id,
                sum(exp((date_part('epoch', at) - date_part('epoch', (SELECT recommender.clock()))) / (86400 * $2)))
           FROM baskets GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $4",
        &[
            user_id.into(),
            tau.into(),
            (PROFILE_INTERACTIONS as i64).into(),
            (n as i64).into(),
        ],
    )
}
