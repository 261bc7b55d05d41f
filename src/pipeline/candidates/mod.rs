//! Stage 1: candidate sources, one file each. A source returns (product, raw score) pairs; the
//! pool keeps content similarity as it is (a cosine), normalises every collaborative list to
//! [0, 1] and keeps the larger score per product, and records which sources named each product
//! (the `sources` column, `recommender_core::scoring::source`).
//!
//! Adding a source: a file here with its query, a bit in `scoring::source`, and a line in the
//! context that uses it (`contexts/`).
pub mod content;
pub mod copurchase;
pub mod popular;
pub mod repeat;
pub mod similar_users;

use std::collections::HashMap;

use recommender_core::scoring::{self, source};

use crate::error::Result;

/// Raw signals gathered in stage 1, keyed by product.
#[derive(Default)]
pub(crate) struct Pool {
    pub content: HashMap<i64, f64>,
    pub collab: HashMap<i64, f64>,
    pub sources: HashMap<i64, u8>,
}

impl Pool {
    pub fn add(&mut self, id: i64, src: u8) {
        *self.sources.entry(id).or_default() |= src;
    }

    /// A collaborative candidate with a normalised score; the larger score of two sources wins.
    pub fn add_collab(&mut self, id: i64, score: f64, src: u8) {
        let e = self.collab.entry(id).or_default();
        *e = e.max(score);
        self.add(id, src);
    }
}

/// Adds a collaborative source's list, its scores normalised to [0, 1] (core::scoring).
pub(crate) fn merge_collab(pool: &mut Pool, items: Vec<(i64, f64)>, src: u8) {
    let norm = scoring::normalize(&items.iter().map(|i| i.1).collect::<Vec<_>>());
    for ((id, _), n) in items.into_iter().zip(norm) {
        pool.add_collab(id, n, src);
    }
}

/// A user's collaborative candidates: the user's own re-bought products, products of similar
/// users and co-purchase partners of the user's recent purchases, each list normalised, the
/// larger score kept (sorted by product id).
pub(crate) fn collaborative(user_id: &str, n: usize) -> Result<Vec<(i64, f64, u8)>> {
    let mut pool = Pool::default();
    merge_collab(&mut pool, repeat::of_user(user_id, n)?, source::REPEAT);
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
    let mut out: Vec<(i64, f64, u8)> = pool
        .collab
        .iter()
        .map(|(&id, &s)| (id, s, pool.sources.get(&id).copied().unwrap_or(0)))
        .collect();
    out.sort_by_key(|c| c.0);
    Ok(out)
}
