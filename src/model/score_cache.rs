//! The cross-encoder's scores kept between calls, per backend. A pair's logit depends only on the
//! query text, the document text and the model, so the key is a hash of the two texts and the
//! cache is emptied when the cross-encoder's files change. A changed product text or profile
//! makes new keys; the old entries age out of the bounded cache. Memory only: nothing is written,
//! so it works the same on a standby.
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
    map: TwoGenCache<u64, f32>,
}

static SCORES: Mutex<Option<Scores>> = Mutex::new(None);

fn key(seed: &RandomState, query: &str, doc: &str) -> u64 {
    let mut h = seed.build_hasher();
    query.hash(&mut h);
    doc.hash(&mut h);
    h.finish()
}

/// Looks up each document's logit for `query` under the model `model` with room for `capacity`
/// entries; returns one `Option` per document (None: not cached).
pub fn lookup(model: &[FileId], capacity: usize, query: &str, docs: &[&str]) -> Vec<Option<f32>> {
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
    let out: Vec<Option<f32>> = docs
        .iter()
        .map(|d| s.map.get(&key(&s.seed, query, d)))
        .collect();
    let hits = out.iter().filter(|v| v.is_some()).count() as u64;
    HITS.fetch_add(hits, Ordering::Relaxed);
    MISSES.fetch_add(docs.len() as u64 - hits, Ordering::Relaxed);
    out
}

/// Keeps the logits the model just computed (after `lookup` with the same model).
pub fn store(query: &str, scored: &[(&str, f32)]) {
    let mut guard = SCORES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = guard.as_mut() {
        for &(d, v) in scored {
            let k = key(&s.seed, query, d);
            s.map.put(k, v);
        }
    }
}
