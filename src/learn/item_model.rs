//! `build_item_model`: the item-to-item model (`recommender_core::item_model`) from the
//! purchases in `recommender.user_products` at the clock, into `recommender.item_model` (one row
//! per product, its links as two parallel arrays): EASE, blended with the adoption model (what the
//! histories of the last `adoption_days` before the clock led customers to buy for the first
//! time) when `adoption_weight` is above 0 and at least `MIN_ADOPTERS` customers did.
//! One transaction: readers keep the previous model until it commits, and a cancel or an error
//! leaves it as it was. Cancel is honoured between users, between written chunks and around the
//! factorisation (which itself runs uninterrupted: ~3 s at 5,000 items on one core).
use std::time::Instant;

use pgrx::prelude::*;
use recommender_core::item_model::{
    blend, sparsify, Adoption, Gram, MAX_ITEMS, MAX_NEIGHBORS, MIN_ADOPTERS,
};

use crate::error::{RecError, Result};

/// The model's items: the `$1` products the most users bought, at the clock.
const ITEMS: &str = "SELECT product_id FROM recommender.user_products
                      WHERE purchases > 0 AND first_at <= (SELECT recommender.clock())
                      GROUP BY 1 ORDER BY count(*) DESC, product_id LIMIT $1";
/// Each user's purchased items among them, as 0-based indices into `$1`, and those of them the
/// user first bought in the `$2` days before the clock (the adoption model's window; NULL when none).
const USERS: &str = "SELECT array_agg((t.idx - 1)::int4),
                            array_agg((t.idx - 1)::int4)
                              FILTER (WHERE up.first_at > (SELECT recommender.clock() - make_interval(days => $2)))
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
/// Longest adoption window, in days.
const MAX_ADOPTION_DAYS: i32 = 3650;
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

/// What to build: EASE's arguments, and the adoption model's (`weight` 0: EASE alone).
#[derive(Clone, Copy)]
pub struct Params {
    pub items: i32,
    pub lambda: f64,
    pub neighbors: i32,
    pub adoption_days: i32,
    pub adoption_lambda: f64,
    pub adoption_weight: f64,
}

/// A row's array of 0-based item indices (NULL: none).
fn indices(v: Option<Vec<i32>>) -> Vec<u32> {
    v.unwrap_or_default()
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

/// Checks the arguments against their ranges (22023 with a hint).
pub fn check(
    items: Option<i32>,
    lambda: Option<f64>,
    neighbors: Option<i32>,
    adoption_days: Option<i32>,
    adoption_lambda: Option<f64>,
    adoption_weight: Option<f64>,
) -> Result<Params> {
    let null = || {
        RecError::invalid(
            "no argument of build_item_model may be NULL",
            "Leave an argument out to use its default: CALL recommender.build_item_model();",
        )
    };
    let p = Params {
        items: items.ok_or_else(null)?,
        lambda: lambda.ok_or_else(null)?,
        neighbors: neighbors.ok_or_else(null)?,
        adoption_days: adoption_days.ok_or_else(null)?,
        adoption_lambda: adoption_lambda.ok_or_else(null)?,
        adoption_weight: adoption_weight.ok_or_else(null)?,
    };
    if !(1..=MAX_ITEMS as i32).contains(&p.items) {
        return Err(RecError::invalid(
            format!("items must be between 1 and {MAX_ITEMS}, got {}", p.items),
            "The model spans the products the most customers bought; building it holds up to four items x items matrices of 4-byte floats at once (5000 items: 400 MB; two without the adoption model).",
        ));
    }
    for (name, l) in [("lambda", p.lambda), ("adoption_lambda", p.adoption_lambda)] {
        if !(l > 0.0 && l <= MAX_LAMBDA) {
            return Err(RecError::invalid(
                format!("{name} must be above 0 and at most {MAX_LAMBDA}, got {l}"),
                "lambda and adoption_lambda are the two models' L2 regularisation: larger gives smoother, more popular neighbours.",
            ));
        }
    }
    if !(1..=MAX_NEIGHBORS as i32).contains(&p.neighbors) {
        return Err(RecError::invalid(
            format!(
                "neighbors must be between 1 and {MAX_NEIGHBORS}, got {}",
                p.neighbors
            ),
            "Each product keeps this many of its strongest links.",
        ));
    }
    if !(1..=MAX_ADOPTION_DAYS).contains(&p.adoption_days) {
        return Err(RecError::invalid(
            format!("adoption_days must be between 1 and {MAX_ADOPTION_DAYS}, got {}", p.adoption_days),
            "The adoption model learns from what customers first bought in this many days before the clock.",
        ));
    }
    if !(0.0..=1.0).contains(&p.adoption_weight) {
        return Err(RecError::invalid(
            format!("adoption_weight must be between 0 and 1, got {}", p.adoption_weight),
            "0 builds EASE alone; w blends (1 - w) EASE + w the adoption model, each scaled by the mean of its products' largest weights.",
        ));
    }
    Ok(p)
}

/// Rebuilds `recommender.item_model`, with progress NOTICEs.
pub fn build(p: Params) -> Result<Built> {
    let Params {
        items,
        lambda,
        neighbors,
        adoption_days,
        adoption_lambda,
        adoption_weight,
    } = p;
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
        let mut adoption =
            (adoption_weight > 0.0).then(|| Adoption::new(ids.len(), adoption_lambda as f32));
        let (mut users, mut adopters) = (0i64, 0i64);
        {
            let mut cursor =
                client.try_open_cursor(USERS, &[ids.clone().into(), adoption_days.into()])?;
            loop {
                pgrx::check_for_interrupts!();
                let rows = cursor.fetch(CHUNK as libc::c_long)?;
                if rows.is_empty() {
                    break;
                }
                for r in rows {
                    let all = indices(r.get::<Vec<i32>>(1)?);
                    gram.add_user(&all);
                    users += 1;
                    if let Some(a) = adoption.as_mut() {
                        let mut new = indices(r.get::<Vec<i32>>(2)?);
                        new.sort_unstable();
                        let before: Vec<u32> = all
                            .into_iter()
                            .filter(|i| new.binary_search(i).is_err())
                            .collect();
                        adopters += i64::from(!new.is_empty());
                        a.add_user(&before, &new);
                    }
                }
            }
        }
        pgrx::notice!(
            "recommender: item model: {users} customer(s) read in {:.1} s; solving",
            started.elapsed().as_secs_f64()
        );
        pgrx::check_for_interrupts!();
        let not_pd =
            || RecError::Internal("the item model's Gram matrix is not positive definite".into());
        if adoption.is_some() && adopters < MIN_ADOPTERS as i64 {
            // too little to learn from: freed before EASE is solved
            adoption = None;
            pgrx::notice!(
                "recommender: item model: {adopters} customer(s) first bought a product in the {adoption_days} day(s) before the clock, fewer than the adoption model's {MIN_ADOPTERS}: EASE alone"
            );
        }
        let mut weights = gram.weights().ok_or_else(not_pd)?;
        if let Some(a) = adoption {
            pgrx::check_for_interrupts!();
            pgrx::notice!(
                "recommender: item model: EASE solved in {:.1} s; the adoption model: {adopters} customer(s) first bought a product in the {adoption_days} day(s) before the clock",
                started.elapsed().as_secs_f64()
            );
            let b = a.weights().ok_or_else(not_pd)?;
            blend(&mut weights, &b, adoption_weight as f32);
        }
        let model = sparsify(&weights, neighbors as usize);
        drop(weights);
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
