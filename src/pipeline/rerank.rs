//! Stage 3: rerank with the cross-encoder when one is installed, else with the bi-encoder
//! (cosine between the query's embedding and the documents'). Scores are mapped to [0, 1]:
//! sigmoid(logit) for the cross-encoder, (cosine + 1) / 2 for the bi-encoder.
use pgrx::prelude::*;

use crate::error::{RecError, Result};
use crate::gucs;
use crate::model;
use recommender_core::pooling::cosine;
use recommender_core::requests;
use recommender_core::scoring::sigmoid;

pub const CROSS: &str = "cross-encoder";
pub const BI: &str = "bi-encoder";
/// No reranker ran: the cross-encoder could not score every pair within
/// `recommender.rerank_budget` (the rest is left to the queue worker or the next call).
pub const DEFERRED: &str = "deferred";

/// What [`score`] found.
pub struct Reranked {
    /// One score in [0, 1] per document.
    pub scores: Vec<f64>,
    /// `CROSS` or `BI`.
    pub reranker: &'static str,
    /// The query's bi-encoder embedding when it was computed here (so the caller can keep it).
    pub query_vec: Option<Vec<f32>>,
}

/// Scores catalogue products (`ids`, with their short documents `docs`) against `query`. The
/// bi-encoder path reuses the products' stored embeddings and `query_vec` when given: at most one
/// model run, for the query. With a `budget` (the cross-encoder only), None when the
/// cross-encoder left some pair unscored ([`model::cross_scores`]).
pub fn score(
    query: &str,
    query_vec: Option<&[f32]>,
    docs: &[String],
    ids: &[i64],
    budget: Option<model::Budget>,
) -> Result<Option<Reranked>> {
    if model::cross_encoder_installed() {
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let Some(logits) = model::cross_scores(query, &refs, Some(&SharedTable), budget)? else {
            return Ok(None);
        };
        return Ok(Some(Reranked {
            scores: logits.into_iter().map(sigmoid).collect(),
            reranker: CROSS,
            query_vec: None,
        }));
    }
    let (q, made) = match query_vec {
        Some(v) => (v.to_vec(), None),
        None => {
            let v = model::embed(&[query])?.pop().unwrap_or_default();
            (v.clone(), Some(v))
        }
    };
    let embs: std::collections::HashMap<i64, Vec<f32>> = Spi::connect(|c| {
        let t = super::plans::select(
            c,
            "SELECT product_id, embedding::real[] FROM recommender.products WHERE product_id = ANY($1) AND embedding IS NOT NULL",
            None,
            &[ids.to_vec().into()],
        )?;
        let mut m = std::collections::HashMap::new();
        for r in t {
            if let (Some(id), Some(e)) = (r.get::<i64>(1)?, r.get::<Vec<f32>>(2)?) {
                m.insert(id, e);
            }
        }
        Ok::<_, RecError>(m)
    })?;
    let scores = ids
        .iter()
        .map(|id| {
            embs.get(id)
                .map(|e| (cosine(&q, e) + 1.0) / 2.0)
                .unwrap_or(0.0)
        })
        .collect();
    Ok(Some(Reranked {
        scores,
        reranker: BI,
        query_vec: made,
    }))
}

/// The cross-encoder's scores shared by every backend of the database, and by the queue worker's
/// precompute (`recommender.rerank_scores`, 0.12.0). Best effort: used only while
/// `recommender.rerank_share_seconds` > 0, not on a standby (the table is UNLOGGED) and not in a
/// SERIALIZABLE transaction (its reads would take predicate locks); written only by a call that
/// may write, through `_keep_rerank_scores()`, which never waits more than 10 ms nor fails the
/// call. The recommendation functions run as the extension's owner; `recommender.rerank()` with
/// a caller's own texts neither reads nor writes it.
struct SharedTable;

/// Every this many stores, a backend also deletes up to `PRUNE_ROWS` expired pairs, so the table
/// stays bounded without the queue worker (20 stored pairs per call at most, 31 deleted).
const PRUNE_EVERY: u64 = 32;
const PRUNE_ROWS: i32 = 1000;
static STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl SharedTable {
    fn usable() -> Result<bool> {
        // SAFETY: reads of backend-global state, inside a transaction.
        let excluded = unsafe {
            pg_sys::RecoveryInProgress() || pg_sys::XactIsoLevel == pg_sys::XACT_SERIALIZABLE as i32
        };
        if excluded || gucs::rerank_share_seconds() == 0 {
            return Ok(false);
        }
        Ok(super::db::one::<bool>(
            "SELECT pg_catalog.to_regclass('recommender.rerank_scores') IS NOT NULL",
            &[],
        )?
        .unwrap_or(false))
    }
}

impl model::SharedScores for SharedTable {
    fn fetch(&self, keys: &[model::PairKey]) -> Result<Vec<Option<(f32, std::time::Duration)>>> {
        if !Self::usable()? {
            return Ok(vec![None; keys.len()]);
        }
        let arg: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        // with the time since it was stored or last renewed, by the transaction's clock, as the
        // renewal in _keep_rerank_scores and the prune count it
        let found: std::collections::HashMap<Vec<u8>, (f32, f64)> = Spi::connect(|c| {
            let t = super::plans::select(
                c,
                "SELECT pair, score, extract(epoch FROM now() - stored_at)::float8
                   FROM recommender.rerank_scores WHERE pair = ANY($1)",
                None,
                &[arg.into()],
            )?;
            let mut m = std::collections::HashMap::new();
            for r in t {
                if let (Some(k), Some(v)) = (r.get::<Vec<u8>>(1)?, r.get::<f32>(2)?) {
                    m.insert(k, (v, r.get::<f64>(3)?.unwrap_or(0.0)));
                }
            }
            Ok::<_, RecError>(m)
        })?;
        Ok(keys
            .iter()
            .map(|k| {
                found.get(k.as_slice()).map(|&(v, age)| {
                    let age = if age.is_finite() { age.max(0.0) } else { 0.0 };
                    (v, std::time::Duration::from_secs_f64(age))
                })
            })
            .collect())
    }

    fn keep(&self, scored: &[(model::PairKey, f32)]) -> Result<bool> {
        if scored.is_empty() || !super::db::can_write() || !Self::usable()? {
            return Ok(false);
        }
        let keys: Vec<&[u8]> = scored.iter().map(|(k, _)| k.as_slice()).collect();
        let scores: Vec<f32> = scored.iter().map(|&(_, v)| v).collect();
        let n = STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prune = if n % PRUNE_EVERY == PRUNE_EVERY - 1 {
            PRUNE_ROWS
        } else {
            0
        };
        super::plans::run(
            "SELECT recommender._keep_rerank_scores($1, $2, $3)",
            &[keys.into(), scores.into(), prune.into()],
        )?;
        Ok(true)
    }
}

/// The cross-encoder's time limit for a call that started at `started`
/// (`recommender.rerank_budget`). None when it is 0, outside a client backend (the queue worker's
/// precompute has none), and when one of the settings that decide a page was changed in the
/// session (`gucs::page_settings_changed`: an A/B arm, `evaluate()`, `tune()`), whose page the
/// worker could not compute. `homepage_of`: the call is that user's homepage, whose pairs the
/// queue worker can score ([`leave_to_worker`]); then a backend without the model does not load
/// it, unless it left this user to the worker less than `LEFT_FOR` ago (the worker's pairs did
/// not reach it).
pub fn budget(
    started: std::time::Instant,
    homepage_of: Option<&str>,
) -> Result<Option<model::Budget>> {
    let Some(limit) = gucs::rerank_budget() else {
        return Ok(None);
    };
    #[cfg(feature = "pg_test")]
    let changed =
        gucs::page_settings_changed() && !KEEP_BUDGET.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "pg_test"))]
    let changed = gucs::page_settings_changed();
    // SAFETY: a backend-global constant.
    if unsafe { pg_sys::MyBackendType } != pg_sys::BackendType::B_BACKEND || changed {
        return Ok(None);
    }
    let may_load = match homepage_of.map(left) {
        Some(Left::Waiting) => false,
        Some(Left::Late) | None => true,
        Some(Left::No) => !(homepage_of.is_some_and(requests::fits) && worker_can_score()?),
    };
    #[cfg(feature = "pg_test")]
    let started = started
        .checked_sub(std::time::Duration::from_millis(
            SPENT_MS.load(std::sync::atomic::Ordering::Relaxed),
        ))
        .unwrap_or(started);
    Ok(Some(model::Budget {
        until: started + limit,
        may_load,
    }))
}

/// Tests: every call counts as having run this long when it started.
#[cfg(feature = "pg_test")]
pub static SPENT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tests (which set the clock and the cross-encoder in the session): the budget applies with
/// page settings changed in the session.
#[cfg(feature = "pg_test")]
pub static KEEP_BUDGET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How long after asking the worker for a user's page this backend waits for it: a call for that
/// user meanwhile that finds pairs unscored defers again without loading the model.
const WORKER_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long after asking the worker for a user's page (or failing to: a full table) this backend
/// asks again. After `WORKER_GRACE` (at once when the ask failed) a call for that user that still
/// finds pairs unscored loads the model and scores what fits in its budget: the worker is behind,
/// or the user's calls use settings the worker does not share (a role's, a connection's).
const LEFT_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Users this backend remembers leaving to the worker; beyond it, it forgets them all.
const LEFT_KEPT: usize = 1024;

thread_local! {
    /// The users this backend left to the worker: when, and whether the worker was asked.
    static LEFT: std::cell::RefCell<std::collections::HashMap<String, (std::time::Instant, bool)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Where a user stands with this backend's asks ([`leave_to_worker`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Asked less than `WORKER_GRACE` ago: the worker is on it.
    Waiting,
    /// Asked (or failed to) less than `LEFT_FOR` ago, and not waiting any more.
    Late,
    /// Not asked for `LEFT_FOR`.
    No,
}

fn left(user_id: &str) -> Left {
    LEFT.with_borrow(|m| match m.get(user_id) {
        Some(&(at, asked)) if asked && at.elapsed() < WORKER_GRACE => Left::Waiting,
        Some(&(at, _)) if at.elapsed() < LEFT_FOR => Left::Late,
        _ => Left::No,
    })
}

/// Whether the worker's precompute would reach this call: a worker serves the database, and the
/// call reads the shared scores (`SharedTable::usable`: shared, not a standby, not SERIALIZABLE).
fn worker_can_score() -> Result<bool> {
    Ok(crate::worker::wake::serves_this_database() && SharedTable::usable()?)
}

/// Asks the queue worker for `user_id`'s homepage (`worker::requests`), which computes it and
/// keeps its pairs' scores in `rerank_scores` (a call that deferred its rerank). Writes nothing in
/// the caller's transaction; at most once per `LEFT_FOR` per user and backend.
pub fn leave_to_worker(user_id: &str) -> Result<()> {
    if left(user_id) != Left::No || !worker_can_score()? {
        return Ok(());
    }
    let asked = crate::worker::requests::ask(user_id);
    LEFT.with_borrow_mut(|m| {
        if m.len() >= LEFT_KEPT {
            m.clear();
        }
        m.insert(user_id.to_owned(), (std::time::Instant::now(), asked));
    });
    Ok(())
}

/// `recommender.rerank(query, documents)`: arbitrary texts, so the bi-encoder embeds them too.
pub fn texts(query: &str, docs: &[&str]) -> Result<(Vec<f64>, &'static str)> {
    if docs.is_empty() {
        return Ok((
            Vec::new(),
            if model::cross_encoder_installed() {
                CROSS
            } else {
                BI
            },
        ));
    }
    if model::cross_encoder_installed() {
        return Ok((
            model::cross_scores(query, docs, None, None)?
                .unwrap_or_default()
                .into_iter()
                .map(sigmoid)
                .collect(),
            CROSS,
        ));
    }
    let mut all: Vec<&str> = Vec::with_capacity(docs.len() + 1);
    all.push(query);
    all.extend_from_slice(docs);
    let v = model::embed(&all)?;
    Ok((
        v[1..]
            .iter()
            .map(|d| (cosine(&v[0], d) + 1.0) / 2.0)
            .collect(),
        BI,
    ))
}
