//! The recommendation contexts: homepage, cart, frequently bought together, rerank, and profile
//! maintenance. Thin: validate, call `pipeline`, shape rows.
use pgrx::prelude::*;

use crate::error::{OrRaise, RecError};
use crate::pipeline::{self, Rec};
use recommender_core::limits::{check_array, check_k};
use recommender_core::scoring::source;

/// Declares a `#[pg_extern]` returning the recommendation row shape (pgrx needs the tuple spelled
/// out in the signature, so a macro writes it once for all contexts).
macro_rules! rec_extern {
    ($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$attr])*
        fn $name($($arg: $ty),*) -> TableIterator<
            'static,
            (
                name!(position, i32),
                name!(product_id, i64),
                name!(external_product_id, Option<String>),
                name!(name, Option<String>),
                name!(category, Option<String>),
                name!(price, Option<AnyNumeric>),
                name!(image_url, Option<String>),
                name!(score, f64),
                name!(content_score, f64),
                name!(collaborative_score, f64),
                name!(popularity_score, f64),
                name!(hybrid_score, f64),
                name!(rerank_score, Option<f64>),
                name!(sources, String),
                name!(reranker, String),
            ),
        > $body
    };
}

type RecRow = (
    i32,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<AnyNumeric>,
    Option<String>,
    f64,
    f64,
    f64,
    f64,
    f64,
    Option<f64>,
    String,
    String,
);

fn k_or_raise(k: i32) -> usize {
    check_k(k).map_err(RecError::from).or_raise()
}

fn rows(recs: Vec<Rec>) -> impl Iterator<Item = RecRow> {
    recs.into_iter().enumerate().map(|(i, r)| {
        let s = r.scored;
        (
            i as i32 + 1,
            r.product_id,
            r.external_id,
            r.name,
            r.category,
            r.price,
            r.image_url,
            s.score,
            s.content,
            s.collaborative,
            s.popularity,
            s.hybrid,
            s.rerank,
            source::names(s.cand.sources).join(","),
            r.reranker.to_string(),
        )
    })
}

rec_extern! {
    /// Home page recommendations for a user: candidates (content neighbours of the preference
    /// vector, similar users, co-purchase), hybrid score, rerank, business rules. A user without
    /// history gets popular products. VOLATILE: it refreshes the user's cached profile.
    #[pg_extern(volatile, strict)]
    fn homepage(user_id: &str, k: i32) {
        let k = k_or_raise(k);
        TableIterator::new(rows(pipeline::homepage(user_id, k).or_raise()))
    }
}

rec_extern! {
    /// What to add to a cart of products: neighbours of the cart's mean embedding and co-purchase
    /// partners, never the cart's own items. Unknown ids are ignored with a NOTICE.
    #[pg_extern(stable, strict, name = "cart")]
    fn cart_items(product_ids: Vec<Option<i64>>, k: i32) {
    let k = k_or_raise(k);
    let mut ids: Vec<i64> = product_ids.into_iter().flatten().collect();
    ids.sort_unstable();
    ids.dedup();
    check_array(ids.len(), "product ids").map_err(RecError::from).or_raise();
    TableIterator::new(rows(pipeline::cart(&ids, k).or_raise()))
    }
}

rec_extern! {
    /// The same for a user's current cart (CART_ADD minus CART_REMOVE). Empty cart: popular products.
    #[pg_extern(stable, strict, name = "cart")]
    fn cart_user(user_id: &str, k: i32) {
        let k = k_or_raise(k);
        let ids = pipeline::user_cart(user_id).or_raise();
        TableIterator::new(rows(pipeline::cart(&ids, k).or_raise()))
    }
}

/// Products bought in the same baskets as this one (or, without a basket id, by the same user
/// on the same day). With too little co-purchase data the rest comes from content similarity;
/// `source` says which produced each row.
#[pg_extern(stable, strict)]
fn frequently_bought_together(
    product_id: i64,
    k: i32,
) -> TableIterator<
    'static,
    (
        name!(position, i32),
        name!(product_id, i64),
        name!(external_product_id, Option<String>),
        name!(name, Option<String>),
        name!(category, Option<String>),
        name!(price, Option<AnyNumeric>),
        name!(image_url, Option<String>),
        name!(score, f64),
        name!(source, String),
    ),
> {
    let k = k_or_raise(k);
    let out = pipeline::frequently_bought_together(product_id, k).or_raise();
    TableIterator::new(out.into_iter().enumerate().map(|(i, (r, src))| {
        (
            i as i32 + 1,
            r.product_id,
            r.external_id,
            r.name,
            r.category,
            r.price,
            r.image_url,
            r.scored.score,
            src.to_string(),
        )
    }))
}

/// Scores documents against a query with the cross-encoder (or the bi-encoder when none is
/// installed), best first. `index` is the document's 1-based position in the array; NULL
/// documents are skipped.
#[pg_extern(stable, strict)]
fn rerank(
    query: &str,
    documents: Vec<Option<String>>,
) -> TableIterator<
    'static,
    (
        name!(index, i32),
        name!(score, f64),
        name!(reranker, String),
    ),
> {
    check_array(documents.len(), "documents")
        .map_err(RecError::from)
        .or_raise();
    let present: Vec<(i32, &str)> = documents
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.as_deref().map(|d| (i as i32 + 1, d)))
        .collect();
    let texts: Vec<&str> = present.iter().map(|p| p.1).collect();
    let (scores, which) = pipeline::rerank::texts(query, &texts).or_raise();
    let mut out: Vec<(i32, f64, String)> = present
        .iter()
        .zip(scores)
        .map(|(p, s)| (p.0, s, which.to_string()))
        .collect();
    out.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.cmp(&b.0))
    });
    TableIterator::new(out)
}

/// Rebuilds one user's preference profile now; returns the interactions it was built from.
#[pg_extern(volatile, strict)]
fn rebuild_user_profile(user_id: &str) -> i64 {
    pipeline::profile::rebuild(user_id).or_raise()
}
