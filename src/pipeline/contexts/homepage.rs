//! The home page: the user's preference vector (`profile`) against the catalogue, plus the
//! user's collaborative candidates and the store's bestsellers, through every stage.
use recommender_core::scoring::source;

use super::cold_start::popular;
use crate::error::Result;
use crate::gucs;
use crate::pipeline::candidates::{collaborative, content, popular, Pool};
use crate::pipeline::profile;
use crate::pipeline::rec::Rec;
use crate::pipeline::rerank;
use crate::pipeline::stages::{finish, Request};

/// The user's home page: the full pipeline, or popularity for a user without history.
pub fn homepage(user_id: &str, k: usize) -> Result<Vec<Rec>> {
    let started = std::time::Instant::now();
    let Some(prof) = profile::get(user_id)?.filter(|p| p.preference.is_some()) else {
        return popular(k, &[], true);
    };
    let pref = prof.preference.clone().unwrap_or_default();
    let (n_content, n_collab) = gucs::candidate_counts();
    let rules = gucs::rules();
    let mut pool = Pool {
        // With repurchase off the rules drop every repeat product: explore alone counts.
        repeat_share: if rules.allow_purchased {
            gucs::repeat_share()
        } else {
            0.0
        },
        weights: Some(gucs::homepage_weights()),
        ..Pool::default()
    };
    for (id, s) in content::neighbours(&pref, n_content.max(k), &[])? {
        pool.content.insert(id, s);
        pool.add(id, source::CONTENT);
    }
    // The store's bestsellers compete too (as many as each collaborative source brings): without
    // them the popularity weight could only reorder what the other sources found, and a
    // bestseller the user never met would never be shown.
    if n_collab > 0 {
        for (id, _) in popular::top(n_collab, true)? {
            pool.add(id, source::POPULAR);
        }
    }
    let collab = match prof.collab {
        Some(c) => c,
        None if n_collab > 0 => {
            // read first: the candidates are never older than the purchases and the item model
            // build they are kept for
            let bought = match prof.purchases {
                Some(b) => b,
                None => profile::purchases(user_id)?,
            };
            let build = profile::model_build()?;
            let c = collaborative(user_id, n_collab)?;
            profile::store_collab(user_id, &c, n_collab, bought, build)?;
            c
        }
        None => Vec::new(),
    };
    for (id, s, src) in collab {
        pool.add_collab(id, s, src);
    }
    let req = Request::new(
        Some(&pref),
        Some(user_id),
        &[],
        &prof.query,
        prof.query_embedding.clone(),
        k,
        rules,
    )?
    .within(rerank::budget(started, Some(user_id))?);
    let rows = finish(pool, req)?;
    // A rerank left unfinished within recommender.rerank_budget: the worker finishes it.
    if rows.first().is_some_and(|r| r.reranker == rerank::DEFERRED) {
        rerank::leave_to_worker(user_id)?;
    }
    Ok(rows)
}
