//! Cold start and fallbacks: the most popular products, newest ones when there is no activity.
use pgrx::prelude::*;
use recommender_core::scoring::{self, apply_rules, hybrid, source};

use crate::error::{RecError, Result};
use crate::gucs;
use crate::pipeline::candidates::popular;
use crate::pipeline::details::details;
use crate::pipeline::plans;
use crate::pipeline::rec::Rec;

/// Cold start and fallbacks: popularity over the window, newest products when there is none.
pub fn popular(k: usize, exclude: &[i64], can_store: bool) -> Result<Vec<Rec>> {
    let want = k * 3 + 50;
    let mut top = popular::top(want, can_store)?;
    if top.len() < k {
        // No (or too little) recent activity: newest in-stock products.
        let newest: Vec<i64> = Spi::connect(|c| {
            let t = plans::select(
                c,
                "SELECT product_id FROM recommender.products WHERE in_stock AND created_at <= (SELECT recommender.clock())
                  ORDER BY created_at DESC, product_id LIMIT $1",
                None,
                &[(want as i64).into()],
            )?;
            let mut v = Vec::new();
            for r in t {
                v.extend(r.get::<i64>(1)?);
            }
            Ok::<_, RecError>(v)
        })?;
        for id in newest {
            if !top.iter().any(|t| t.0 == id) {
                top.push((id, 0.0));
            }
        }
    }
    let ids: Vec<i64> = top
        .iter()
        .map(|t| t.0)
        .filter(|id| !exclude.contains(id))
        .collect();
    let det = details(&ids, None, None)?;
    let mut cands = Vec::new();
    for (id, p) in &top {
        if let Some(d) = det.get(id) {
            let mut c = d.0.clone();
            c.popularity = *p;
            c.sources = source::POPULAR;
            cands.push(c);
        }
    }
    let w = scoring::Weights {
        alpha: 0.0,
        beta: 0.0,
        gamma: 1.0,
    };
    let kept = apply_rules(hybrid(cands, w), k, gucs::rules());
    Ok(kept
        .into_iter()
        .map(|s| det[&s.cand.product_id].1.rec(s, "none"))
        .collect())
}
