//! `build_item_model`: the EASE item-to-item model (`recommender_core::item_model`) from the
//! purchases in `recommender.user_products` at the clock, into `recommender.item_model` (one row
//! per product, its links as two parallel arrays).
//! One transaction: readers keep the previous model until it commits, and a cancel or an error
//! leaves it as it was. Cancel is honoured between users, between written chunks and around the
//! factorisation (which itself runs uninterrupted: ~3 s at 5,000 items on one core).
use std::time::Instant;

use pgrx::prelude::*;
use recommender_core::item_model::{Gram, MAX_ITEMS, MAX_NEIGHBORS};

use crate::error::{RecError, Result};

/// The model's items: the `$1` products the most users bought, at the clock.
const ITEMS: &str = "SELECT product_id FROM recommender.user_products
                      WHERE purchases > 0 AND first_at <= (SELECT recommender.clock())
                      GROUP BY 1 ORDER BY count(*) DESC, product_id LIMIT $1";
/// Each user's purchased items among them, as 0-based indices into `$1`.
const USERS: &str = "SELECT array_agg((t.idx - 1)::int4)
                       FROM recommender.user_products up
                       JOIN unnest($1::bigint[]) WITH ORDINALITY AS t(product_id, idx) USING (product_id)
                      WHERE up.purchases > 0 AND up.first_at <= (SELECT recommender.clock())
                      GROUP BY up.user_id";
/// Writes a chunk of products: `$1` the products, `$2`/`$3` their links one after another, and
/// `$4`/`$5` where each product's links start and end in them (1-based, inclusive).
const WRITE: &str = "INSERT INTO recommender.item_model (product_id, neighbor_ids, scores)
                     SELECT t.product_id, ($2::bigint[])[t.lo:t.hi], ($3::real[])[t.lo:t.hi]
                       FROM unnest($1::bigint[], $4::int4[], $5::int4[]) AS t(product_id, lo, hi)";
/// Largest λ: far past any useful regularisation, and within f32 (the solve's precision).
const MAX_LAMBDA: f64 = 1e9;
/// Users read per fetch, and links written per statement.
const CHUNK: usize = 10_000;

/// Products and their links, written in one statement (`WRITE`).
#[derive(Default)]
struct Chunk {
    products: Vec<i64>,
    neighbors: Vec<i64>,
    scores: Vec<f32>,
    lo: Vec<i32>,
    hi: Vec<i32>,
}

/// What a build did.
pub struct Built {
    pub items: i64,
    pub customers: i64,
    pub pairs: i64,
    pub seconds: f64,
}

/// Checks the arguments against their ranges (22023 with a hint).
fn check(
    items: Option<i32>,
    lambda: Option<f64>,
    neighbors: Option<i32>,
) -> Result<(i32, f64, i32)> {
    let (Some(items), Some(lambda), Some(neighbors)) = (items, lambda, neighbors) else {
        return Err(RecError::invalid(
            "items, lambda and neighbors must not be NULL",
            "Leave an argument out to use its default: CALL recommender.build_item_model();",
        ));
    };
    if !(1..=MAX_ITEMS as i32).contains(&items) {
        return Err(RecError::invalid(
            format!("items must be between 1 and {MAX_ITEMS}, got {items}"),
            "The model spans the products the most customers bought; building it holds two items x items matrices of 4-byte floats (5000 items: 200 MB).",
        ));
    }
    if !(lambda > 0.0 && lambda <= MAX_LAMBDA) {
        return Err(RecError::invalid(
            format!("lambda must be above 0 and at most {MAX_LAMBDA}, got {lambda}"),
            "lambda is EASE's L2 regularisation: larger gives smoother, more popular neighbours.",
        ));
    }
    if !(1..=MAX_NEIGHBORS as i32).contains(&neighbors) {
        return Err(RecError::invalid(
            format!("neighbors must be between 1 and {MAX_NEIGHBORS}, got {neighbors}"),
            "Each product keeps this many of its strongest links.",
        ));
    }
    Ok((items, lambda, neighbors))
}

/// Rebuilds `recommender.item_model`, with progress NOTICEs.
pub fn build(items: Option<i32>, lambda: Option<f64>, neighbors: Option<i32>) -> Result<Built> {
    let (items, lambda, neighbors) = check(items, lambda, neighbors)?;
    let started = Instant::now();
    Spi::connect_mut(|client| {
        let current = client
            .select(
                "SELECT to_regclass('recommender.item_model') IS NOT NULL",
                None,
                &[],
            )?
            .first()
            .get_one::<bool>()?;
        if current != Some(true) {
            return Err(RecError::Prerequisite {
                message: "this database's recommender schema predates the item model's table (recommender.item_model)".into(),
                hint: "Run ALTER EXTENSION recommender UPDATE; then build the model again.".into(),
            });
        }
        let ids: Vec<i64> = client
            .select(ITEMS, None, &[(items as i64).into()])?
            .map(|r| r.get::<i64>(1))
            .collect::<std::result::Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        pgrx::notice!(
            "recommender: item model over the {} most bought product(s)",
            ids.len()
        );
        let mut gram = Gram::new(ids.len(), lambda as f32);
        let mut users = 0i64;
        {
            let mut cursor = client.try_open_cursor(USERS, &[ids.clone().into()])?;
            loop {
                pgrx::check_for_interrupts!();
                let rows = cursor.fetch(CHUNK as libc::c_long)?;
                if rows.is_empty() {
                    break;
                }
                for r in rows {
                    let v: Vec<i32> = r.get(1)?.unwrap_or_default();
                    let v: Vec<u32> = v.into_iter().map(|i| i as u32).collect();
                    gram.add_user(&v);
                    users += 1;
                }
            }
        }
        pgrx::notice!(
            "recommender: item model: {users} customer(s) read in {:.1} s; solving",
            started.elapsed().as_secs_f64()
        );
        pgrx::check_for_interrupts!();
        let model = gram.neighbors(neighbors as usize).ok_or_else(|| {
            RecError::Internal("the item model's Gram matrix is not positive definite".into())
        })?;
        pgrx::check_for_interrupts!();
        client.update("DELETE FROM recommender.item_model", None, &[])?;
        let mut chunk = Chunk::default();
        let mut pairs = 0i64;
        for (i, row) in model.iter().enumerate() {
            if !row.is_empty() {
                chunk.lo.push(chunk.neighbors.len() as i32 + 1);
                for &(j, w) in row {
                    chunk.neighbors.push(ids[j as usize]);
                    chunk.scores.push(w);
                }
                chunk.hi.push(chunk.neighbors.len() as i32);
                chunk.products.push(ids[i]);
            }
            if chunk.neighbors.len() >= CHUNK || i + 1 == model.len() {
                pgrx::check_for_interrupts!();
                pairs += chunk.neighbors.len() as i64;
                let c = std::mem::take(&mut chunk);
                client.update(
                    WRITE,
                    None,
                    &[
                        c.products.into(),
                        c.neighbors.into(),
                        c.scores.into(),
                        c.lo.into(),
                        c.hi.into(),
                    ],
                )?;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        pgrx::notice!(
            "recommender: item model built: {} product(s), {users} customer(s), {pairs} pair(s) in {seconds:.1} s",
            ids.len()
        );
        Ok(Built {
            items: ids.len() as i64,
            customers: users,
            pairs,
            seconds,
        })
    })
}
