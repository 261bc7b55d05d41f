//! The cross-encoder's scores kept between calls, per backend. A pair's logit depends only on the
//! query text, the document text and the model, so the key is a hash of the two texts and the
//! cache is emptied when the cross-encoder's files change. A changed product text or profile
//! makes new keys; the old entries age out of the bounded cache. Memory only: nothing is written,
//! so it works the same on a standby. Each entry also remembers when the pair was last stored in
//! (or read from) the shared table, so a pair this backend keeps using is kept there too (0.23.0).
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use recommender_core::cache::TwoGenCache;

use super::encoder::FileId;

/// Backend-local counters (pg_tests and the DEBUG2 log read them).
pub static HITS: AtomicU64 = AtomicU64::new(0);
pub static MISSES: AtomicU64 = AtomicU64::new(0);

struct Scores {
    /// The cross-encoder's file identities the entries were computed with.
    model: Vec<FileId>,
    /// Keyed per backend (random seed), so texts cannot be crafted to collide.
    seed: RandomState,
    /// The logit, and when the pair was stored in the shared table or last renewed there, as far
    /// as this backend knows (None: not known to be there).
    map: TwoGenCache<u64, (f32, Option<Instant>)>,
}

static SCORES: Mutex<Option<Scores>> = Mutex::new(None);

fn key(seed: &RandomState, query: &str, doc: &str) -> u64 {
    let mut h = seed.build_hasher();
    query.hash(&mut h);
    doc.hash(&mut h);
    h.finish()
}

/// Looks up each document's logit for `query` under the model `model` with room for `capacity`
/// entries; returns one `Option` per document (None: not cached), with whether the pair is due to
/// be kept in the shared table again: stored or renewed there `renew_after` or longer ago, or not
/// known to be there (never due without `renew_after`).
pub fn lookup(
    model: &[FileId],
    capacity: usize,
    query: &str,
    docs: &[&str],
    renew_after: Option<Duration>,
) -> Vec<Option<(f32, bool)>> {
    let mut guard = SCORES.lock().unwrap_or_else(|p| p.into_inner());
    let s = guard.get_or_insert_with(|| Scores {
        model: model.to_vec(),
        seed: RandomState::new(),
        map: TwoGenCache::new(capacity),
    });
    if s.model != model || s.map.capacity() != capacity {
        s.model = model.to_vec();
        s.map.reset(capacity);
    }
    let out: Vec<Option<(f32, bool)>> = docs
        .iter()
        .map(|d| {
            s.map.get(&key(&s.seed, query, d)).map(|(v, kept)| {
                let due =
                    renew_after.is_some_and(|after| kept.is_none_or(|at| at.elapsed() >= after));
                (v, due)
            })
        })
        .collect();
    let hits = out.iter().filter(|v| v.is_some()).count() as u64;
    HITS.fetch_add(hits, Ordering::Relaxed);
    MISSES.fetch_add(docs.len() as u64 - hits, Ordering::Relaxed);
    out
}

/// Keeps logits (after `lookup` with the same model), each with when it was stored in the shared
/// table or last renewed there (None: not known to be there).
pub fn store<'a>(query: &str, scored: impl IntoIterator<Item = (&'a str, f32, Option<Instant>)>) {
    let mut guard = SCORES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = guard.as_mut() {
        for (d, v, kept) in scored {
            let k = key(&s.seed, query, d);
            s.map.put(k, (v, kept));
        }
    }
}
