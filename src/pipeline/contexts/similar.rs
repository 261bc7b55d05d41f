//! A product page: the product's content neighbours and co-purchase partners.
use pgrx::prelude::*;
use recommender_core::scoring::{self, source};

use crate::error::{RecError, Result};
use crate::gucs;
use crate::pipeline::candidates::{content, copurchase, merge_collab, Pool};
use crate::pipeline::plans;
use crate::pipeline::rec::Rec;
use crate::pipeline::rerank;
use crate::pipeline::stages::{finish, Request};

/// A product page: content neighbours of the product blended with its co-purchase partners,
/// reranked against the product's own text. In stock only; no category cap (similar products
/// share a category by nature). Unknown or not yet embedded product: no rows.
pub fn similar(product_id: i64, k: usize) -> Result<Vec<Rec>> {
    let started = std::time::Instant::now();
    let row: Option<(Vec<f32>, String)> = Spi::connect(|c| {
        let t = plans::select(
            c,
            "SELECT embedding::real[], recommender._rerank_doc(name, category, description)
               FROM recommender.products WHERE product_id = $1 AND embedding IS NOT NULL",
            None,
            &[product_id.into()],
        )?;
        let mut out = None;
        for r in t {
            out = r
                .get::<Vec<f32>>(1)?
                .map(|e| (e, r.get::<String>(2).ok().flatten().unwrap_or_default()));
        }
        Ok::<_, RecError>(out)
    })?;
    let Some((centre, doc)) = row else {
        return Ok(Vec::new());
    };
    let (n_content, n_collab) = gucs::candidate_counts();
    let mut pool = Pool::default();
    for (id, s) in content::neighbours(&centre, n_content.max(k), &[product_id])? {
        pool.content.insert(id, s);
        pool.add(id, source::CONTENT);
    }
    merge_collab(
        &mut pool,
        copurchase::of(&[product_id], n_collab)?,
        source::CO_PURCHASE,
    );
    let rules = scoring::Rules {
        max_per_category: usize::MAX,
        allow_purchased: true,
        ..gucs::rules()
    };
    let exclude = [product_id];
    // The bi-encoder's query is the product itself: its stored embedding, no model run.
    let query_vec = Some(centre.clone());
    let req = Request::new(Some(&centre), None, &exclude, &doc, query_vec, k, rules)?
        .within(rerank::budget(started, None)?);
    finish(pool, req)
}
