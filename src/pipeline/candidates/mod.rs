//! Stage 1: candidate sources, one file each. A source returns (product, raw score) pairs; the
//! pool keeps content similarity as it is (a cosine), normalises every collaborative list to
//! [0, 1], keeps the larger score per product among the sources that explore and the user's own
//! repeat score apart, and records which sources named each
//! product (the `sources` column, `recommender_core::scoring::source`). Stage 2 weighs repeat
//! against explore by `recommender.repeat_share` (`scoring::collaborative_blend`).
//!
//! Adding a source: a file here with its query, a bit in `scoring::source`, and a line in the
//! context that uses it (`contexts/`).
pub mod content;
pub mod copurchase;
pub mod item_model;
pub mod popular;
pub mod repeat;
pub mod similar_users;

use std::collections::HashMap;

use recommender_core::scoring::{self, source, Weights};

use crate::error::Result;

/// Raw signals gathered in stage 1, keyed by product.
#[derive(Default)]
pub(crate) struct Pool {
    pub content: HashMap<i64, f64>,
    /// Normalised explore signal: the larger of the explore sources' scores.
    pub collab: HashMap<i64, f64>,
    /// Normalised repeat score of the user's own purchases (homepage only).
    pub repeat: HashMap<i64, f64>,
    /// The share of the collaborative signal repeat gets (0 where the pool has no repeat source).
    pub repeat_share: f64,
    /// Stage 2's weights for this context; `None` takes the shared ones (`gucs::weights`).
    pub weights: Option<Weights>,
    pub sources: HashMap<i64, u8>,
}

impl Pool {
    pub fn add(&mut self, id: i64, src: u8) {
        *self.sources.entry(id).or_default() |= src;
    }

    /// A collaborative candidate with a normalised score. A repeat entry (exactly the REPEAT bit)
    /// is kept apart; among the explore sources the larger score wins.
    pub fn add_collab(&mut self, id: i64, score: f64, src: u8) {
        let e = if src == source::REPEAT {
            self.repeat.entry(id).or_default()
        } else {
            self.collab.entry(id).or_default()
        };
        *e = e.max(score);
        self.add(id, src);
    }

    /// Stage 2's collaborative signal of a product: explore and repeat blended.
    pub fn collaborative(&self, id: i64) -> f64 {
        let explore = self.collab.get(&id).copied().unwrap_or(0.0);
        if self.repeat_share <= 0.0 {
            return explore;
        }
        let repeat = self.repeat.get(&id).copied().unwrap_or(0.0);
        scoring::collaborative_blend(explore, repeat, self.repeat_share)
    }
}

/// Adds a collaborative source's list, its scores normalised to [0, 1] (core::scoring).
pub(crate) fn merge_collab(pool: &mut Pool, items: Vec<(i64, f64)>, src: u8) {
    let norm = scoring::normalize(&items.iter().map(|i| i.1).collect::<Vec<_>>());
    for ((id, _), n) in items.into_iter().zip(norm) {
        pool.add_collab(id, n, src);
    }
}

/// A user's collaborative candidates, as the profile cache keeps them: the user's own re-bought
/// products (entries with exactly the REPEAT bit, normalised repeat score), and the products the
/// user would explore (never the REPEAT bit): the item model's, when it links the user's
/// purchases to anything; otherwise (no model built yet, purchases outside it) the products of
/// similar users and co-purchase partners of the user's recent purchases, each list normalised
/// and the larger score kept. On Complete Journey's validation split the item model alone beat
/// the three explore sources fused (BENCHMARKS.md, issue 14). A product may have one entry of
/// each kind; `Pool::add_collab` takes them apart again. Sorted by product id, repeat entries
/// first.
pub(crate) fn collaborative(user_id: &str, n: usize) -> Result<Vec<(i64, f64, u8)>> {
    let mut pool = Pool::default();
    merge_collab(&mut pool, repeat::of_user(user_id, n)?, source::REPEAT);
    let model = item_model::of_user(user_id, n)?;
    if model.is_empty() {
        merge_collab(
            &mut pool,
            similar_users::products(user_id, n)?,
            source::SIMILAR_USERS,
        );
        merge_collab(
            &mut pool,
            copurchase::of_user(user_id, n)?,
            source::CO_PURCHASE,
        );
    } else {
        merge_collab(&mut pool, model, source::ITEM_MODEL);
    }
    let explore_bits = |id: &i64| pool.sources.get(id).copied().unwrap_or(0) & !source::REPEAT;
    let mut out: Vec<(i64, f64, u8)> = pool
        .repeat
        .iter()
        .map(|(&id, &s)| (id, s, source::REPEAT))
        .chain(
            pool.collab
                .iter()
                .map(|(&id, &s)| (id, s, explore_bits(&id))),
        )
        .collect();
    out.sort_by_key(|c| (c.0, c.2 != source::REPEAT));
    Ok(out)
}
