//! A cart: neighbours of the mean of its items' embeddings plus their co-purchase partners; and
//! the user's own cart at the clock (`recommender._cart`).
use pgrx::prelude::*;
use recommender_core::pooling::weighted_mean;
use recommender_core::scoring::source;

use super::cold_start::popular;
use crate::error::{RecError, Result};
use crate::gucs;
use crate::model::DIM;
use crate::pipeline::candidates::{content, copurchase, merge_collab, Pool};
use crate::pipeline::plans;
use crate::pipeline::rec::Rec;
use crate::pipeline::rerank;
use crate::pipeline::stages::{finish, Request};

/// Items to add to a cart: neighbours of the cart's mean embedding plus co-purchase, never the
/// cart's own items.
pub fn cart(items: &[i64], k: usize) -> Result<Vec<Rec>> {
    let started = std::time::Instant::now();
    let CartCentre {
        found,
        names,
        centre,
    } = cart_centre(items)?;
    if found.is_empty() {
        return popular(k, items, false);
    }
    let (n_content, n_collab) = gucs::candidate_counts();
    let mut pool = Pool::default();
    if let Some(c) = &centre {
        for (id, s) in content::neighbours(c, n_content.max(k) + found.len(), &found)? {
            pool.content.insert(id, s);
            pool.add(id, source::CONTENT);
        }
    }
    let co = copurchase::of(&found, n_collab.max(k))?;
    merge_collab(&mut pool, co, source::CO_PURCHASE);
    let query = format!("Goes well with: {}", names.join("; "));
    // The bi-encoder's query is the cart itself: the mean of its items' stored embeddings.
    let query_vec = centre.clone();
    let req = Request::new(
        centre.as_deref(),
        None,
        &found,
        &query,
        query_vec,
        k,
        gucs::rules(),
    )?
    .within(rerank::budget(started, None)?);
    finish(pool, req)
}
/// Products in the user's cart at the clock (`recommender._cart`, the definition
/// `abandoned_carts` uses too), most recently added first; at most `MAX_ARRAY` of them.
pub fn user_cart(user_id: &str) -> Result<Vec<i64>> {
    Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT product_id FROM recommender._cart($1, (SELECT recommender.clock()))
              ORDER BY added_at DESC, product_id LIMIT $2",
            None,
            &[
                user_id.into(),
                (recommender_core::limits::MAX_ARRAY as i64).into(),
            ],
        )?;
        let mut v = Vec::new();
        for r in t {
            v.extend(r.get::<i64>(1)?);
        }
        Ok(v)
    })
}
/// A cart's resolved items.
pub(crate) struct CartCentre {
    /// The ids that exist (others are reported in a NOTICE).
    found: Vec<i64>,
    /// Up to five of their names (the reranker's query).
    names: Vec<String>,
    /// The normalised mean of their embeddings.
    centre: Option<Vec<f32>>,
}

pub(crate) fn cart_centre(items: &[i64]) -> Result<CartCentre> {
    let rows: Vec<(i64, Option<String>, Option<Vec<f32>>)> = Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT product_id, name, embedding::real[] FROM recommender.products WHERE product_id = ANY($1) ORDER BY product_id",
            None,
            &[items.to_vec().into()],
        )?;
        let mut v = Vec::new();
        for r in t {
            v.push((
                r.get::<i64>(1)?.unwrap_or(0),
                r.get::<String>(2)?,
                r.get::<Vec<f32>>(3)?,
            ));
        }
        Ok::<_, RecError>(v)
    })?;
    let found: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let missing: Vec<String> = items
        .iter()
        .filter(|i| !found.contains(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        let shown = missing
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        pgrx::notice!(
            "recommender: ignoring {} unknown product id(s): {shown}",
            missing.len()
        );
    }
    let vectors = rows.iter().filter_map(|r| r.2.as_deref()).map(|e| (1.0, e));
    let names = rows.iter().filter_map(|r| r.1.clone()).take(5).collect();
    Ok(CartCentre {
        found,
        names,
        centre: weighted_mean(vectors, DIM),
    })
}
