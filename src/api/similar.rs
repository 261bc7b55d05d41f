//! `recommender.similar_products(product_id, k)`: the product-page context of the pipeline.
use pgrx::prelude::*;

use crate::error::{OrRaise, RecError};
use crate::pipeline;
use recommender_core::limits::check_k;

/// Products like `product_id`, as a product page shows them: content neighbours (HNSW) blended
/// with co-purchase partners and popularity, reranked against the product's text, in stock only,
/// never the product itself. An unknown product, or one not embedded yet, gives zero rows. k
/// outside 1..1000: 22023. The function runs with hnsw.iterative_scan = strict_order
/// (sql/finalize.sql) and falls back to an exact scan, so k up to 1000 always fills when that
/// many in-stock products exist.
#[pg_extern(stable, strict)]
fn similar_products(
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
    ),
> {
    let k = check_k(k).map_err(RecError::from).or_raise();
    let recs = pipeline::similar(product_id, k).or_raise();
    TableIterator::new(recs.into_iter().enumerate().map(|(i, r)| {
        (
            i as i32 + 1,
            r.product_id,
            r.external_id,
            r.name,
            r.category,
            r.price,
            r.image_url,
            r.scored.score,
        )
    }))
}
