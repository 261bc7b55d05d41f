//! Per-backend model sessions. Nothing here loads before the first call that needs a model, and
//! never in the postmaster. The cache is keyed by the model dir and the files' identity, so a
//! changed `recommender.model_dir` or a replaced file is picked up on the next call.
pub mod encoder;
pub mod manifest;
pub mod runtime;
pub mod score_cache;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{RecError, Result};
use crate::gucs;
use recommender_core::pooling::mean_pool_normalize;
use recommender_core::text::encoder_input;

use encoder::{LoadedModel, ModelFiles};

/// Dimension of the catalogue's `vector(384)` column.
pub const DIM: usize = 384;

static ENCODER: Mutex<Option<LoadedModel>> = Mutex::new(None);
static CROSS_ENCODER: Mutex<Option<LoadedModel>> = Mutex::new(None);

/// Backend-local counters, shown by `recommender.model_info()`.
pub static TEXTS_EMBEDDED: AtomicU64 = AtomicU64::new(0);
pub static ENCODER_RUNS: AtomicU64 = AtomicU64::new(0);
pub static ENCODER_LOADS: AtomicU64 = AtomicU64::new(0);

fn with_model<T>(
    slot: &Mutex<Option<LoadedModel>>,
    role: &'static str,
    f: impl FnOnce(&mut LoadedModel) -> Result<T>,
) -> Result<T> {
    let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
    let dir = match role {
        "encoder" => std::path::Path::new(&gucs::model_dir()).join("encoder"),
        _ => std::path::PathBuf::from(gucs::cross_encoder_dir()),
    };
    let files = ModelFiles::locate(dir, role)?;
    // The encoder's cached session runs one thread (bulk calls build their own); the
    // cross-encoder's runs `recommender.rerank_threads`.
    let threads = match role {
        "encoder" => 1,
        _ => gucs::rerank_threads(),
    };
    if !is_current(guard.as_ref(), &files, threads) {
        // Drop the old session (and its mapping) before loading the new one.
        *guard = None;
        let (before, _) = heap();
        let m = LoadedModel::load(files, gucs::enable_checksums(), false, threads)?;
        // What loading took is the model, not activations: it moves the base of `settle_heap`.
        let (after, _) = heap();
        let base = HEAP_BASE.load(Ordering::Relaxed);
        let base = if base == 0 {
            after
        } else {
            base + after.saturating_sub(before)
        };
        HEAP_BASE.store(base, Ordering::Relaxed);
        if role == "encoder" {
            ENCODER_LOADS.fetch_add(1, Ordering::Relaxed);
        }
        *guard = Some(m);
    }
    let m = guard.as_mut().expect("model loaded above");
    let out = f(m);
    if out.is_ok() {
        settle_heap(m)?;
    }
    out
}

/// Whether `loaded` is a session of `files` as they are now, with `threads` intra-op threads.
fn is_current(loaded: Option<&LoadedModel>, files: &ModelFiles, threads: usize) -> bool {
    loaded.is_some_and(|m| {
        &m.files == files && files.ids().as_ref() == Some(&m.ids) && m.threads == threads
    })
}

/// Whether this backend holds a current session of the cross-encoder (a call would not load it).
fn cross_encoder_loaded() -> bool {
    let guard = CROSS_ENCODER.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::path::PathBuf::from(gucs::cross_encoder_dir());
    ModelFiles::locate(dir, "cross-encoder")
        .is_ok_and(|files| is_current(guard.as_ref(), &files, gucs::rerank_threads()))
}

/// The encoder runs for texts in `order` (sorted by token count): at most `batch_size` rows and
/// `core::batch::MAX_RUN_TOKENS` padded tokens per intra-op thread each, so a cancel waits for one
/// short run at most.
fn runs_of<'a>(
    order: &'a [usize],
    toks: &[(Vec<u32>, Vec<u32>)],
    batch_size: usize,
    threads: usize,
) -> impl Iterator<Item = &'a [usize]> {
    let lens: Vec<usize> = order.iter().map(|&i| toks[i].0.len()).collect();
    let max_tokens = recommender_core::batch::MAX_RUN_TOKENS * threads.max(1);
    recommender_core::batch::runs(&lens, batch_size, max_tokens)
        .into_iter()
        .map(move |r| &order[r])
}

/// Embeds texts with the sentence encoder: tokenise (truncated at 256 tokens), sort by length,
/// run in batches of at most `recommender.embed_batch_size` texts and 256 padded tokens,
/// mean-pool and L2-normalise. Checks for query cancel between batches. Identical texts are run
/// once.
pub fn embed(all: &[&str]) -> Result<Vec<Vec<f32>>> {
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let (texts, slots) = recommender_core::batch::distinct(all);
    let vecs = embed_distinct(&texts)?;
    Ok(slots.into_iter().map(|i| vecs[i].clone()).collect())
}

fn embed_distinct(texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    let batch_size = gucs::embed_batch_size();
    let threads = gucs::embedding_threads();
    with_model(&ENCODER, "encoder", |m| {
        if texts.len() >= BULK_TEXTS && (threads > 1 || !m.files.prepacked()) {
            // The same files (already verified, identity unchanged), on a session with
            // pre-packed weights and `recommender.embedding_threads` intra-op threads that lives
            // for this call only.
            m.heap_dirty = true;
            let mut bulk = LoadedModel::load(m.files.clone(), false, true, threads)?;
            if bulk.ids == m.ids {
                return embed_on(&mut bulk, texts, batch_size, threads);
            }
        }
        embed_on(m, texts, batch_size, 1)
    })
}

/// Growth of the heap in use (glibc's allocated chunks, mmapped ones included) since the last
/// shrink above which a model call gives back what ONNX Runtime's arena keeps. The arena keeps
/// each run's activations for the next run of that size (its memory pattern: BENCHMARKS.md,
/// "Model runtime"); the encoder's grows to ~6 / ~14 / ~32 MiB after runs of 252 / 512 / 768+
/// padded tokens, a small cross-encoder's far less. Everyday calls (queries, reranks of ~20 texts)
/// keep their activations; a backend stays within its 40 MiB budget of private memory.
const ARENA_KEEP: usize = 14 << 20;

/// Heap in use after the last arena shrink, plus what models loaded since took (0: no model
/// loaded yet in this backend).
static HEAP_BASE: AtomicUsize = AtomicUsize::new(0);

/// Free heap a backend may keep between model calls: beyond it, freed memory (the arena shrunk,
/// the per-call bulk session) is handed back to the OS instead of staying in glibc's free lists.
const HEAP_SLACK: usize = 8 << 20;

/// `settle_heap` looks at the heap at least once every this many model calls.
const SETTLE_EVERY: u32 = 16;

/// Heap in use (glibc's allocated chunks, mmapped ones included) and free in its lists.
fn heap() -> (usize, usize) {
    // SAFETY: mallinfo2 only reads allocator statistics.
    let mi = unsafe { libc::mallinfo2() };
    (mi.uordblks + mi.hblkhd, mi.fordblks)
}

/// Ends a model call (`with_model`). When the heap in use grew by more than `ARENA_KEEP` since
/// the last shrink (model loads not counted), runs the model once more on a two-token input with
/// arena shrinkage: ONNX Runtime frees the arena's unused chunks only at the end of a run. Then,
/// when more than `HEAP_SLACK` bytes are free (the arena shrunk, a per-call bulk session
/// dropped), returns them to the OS. `mallinfo2` walks the allocator's free lists (~0.1 ms), so
/// this looks only after a call that ran a larger input than any since the last look or built a
/// per-call session, and after every `SETTLE_EVERY`th call.
fn settle_heap(m: &mut LoadedModel) -> Result<()> {
    m.calls = m.calls.wrapping_add(1);
    if !m.heap_dirty && !m.calls.is_multiple_of(SETTLE_EVERY) {
        return Ok(());
    }
    m.heap_dirty = false;
    let (now, mut free) = heap();
    let base = HEAP_BASE.load(Ordering::Relaxed);
    if base == 0 || now < base {
        HEAP_BASE.store(now, Ordering::Relaxed);
    } else if now - base > ARENA_KEEP {
        let toks = m.tokenize(vec![""])?;
        let b = m.batch(&[&toks[0]]);
        m.run(&b, true)?;
        let (after, f) = heap();
        free = f;
        HEAP_BASE.store(after, Ordering::Relaxed);
        // The arena is empty again: the next large run may regrow it.
        m.peak_tokens = 0;
        pgrx::debug2!(
            "recommender: {} arena shrunk, heap in use {} -> {} MiB",
            m.files.role,
            now >> 20,
            after >> 20
        );
    }
    if free > HEAP_SLACK {
        // SAFETY: malloc_trim only releases free pages.
        unsafe { libc::malloc_trim(0) };
    }
    Ok(())
}

/// Without a pre-packed copy of the model (`model.packed.*`, made by models/materialize.py for
/// this CPU), calls with at least this many texts (bulk embedding: refresh_embeddings, large
/// embed(text[])) build a session with pre-packed weights for the call: ~1.75x the throughput,
/// and the extra ~40 MiB of private memory is released when the call ends. Small calls use the
/// cached session, whose weights stay in the shared file mapping. With the pre-packed copy the
/// cached session is already both fast and shared, and is used for everything, unless
/// `recommender.embedding_threads` asks for more than one thread: then such calls get a session of
/// their own with that many intra-op threads (the cached session always runs one).
const BULK_TEXTS: usize = 64;

/// Embeds `texts` on `m`, which runs `threads` intra-op threads.
fn embed_on(
    m: &mut LoadedModel,
    texts: &[&str],
    batch_size: usize,
    threads: usize,
) -> Result<Vec<Vec<f32>>> {
    let inputs: Vec<String> = texts
        .iter()
        .map(|t| encoder_input(t).into_owned())
        .collect();
    let toks = m.tokenize(inputs)?;
    let mut order: Vec<usize> = (0..toks.len()).collect();
    order.sort_by_key(|&i| (toks[i].0.len(), i));
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
    for chunk in runs_of(&order, &toks, batch_size, threads) {
        pgrx::check_for_interrupts!();
        let refs: Vec<_> = chunk.iter().map(|&i| &toks[i]).collect();
        let b = m.batch(&refs);
        let (shape, data) = m.run(&b, false)?;
        let vecs = match shape.as_slice() {
            [rows, seq, dim] if *rows as usize == b.rows && *seq as usize == b.seq => {
                mean_pool_normalize(&data, &b.mask, b.rows, b.seq, *dim as usize)
            }
            // An export with pooling inside: [batch, dim].
            [rows, dim] if *rows as usize == b.rows => data
                .chunks(*dim as usize)
                .map(|r| recommender_core::pooling::normalize(&r.iter().map(|&x| x as f64).collect::<Vec<_>>()))
                .collect(),
            other => {
                return Err(RecError::external(
                    format!("encoder output has shape {other:?}, expected [batch, seq, {DIM}] or [batch, {DIM}]"),
                    "The encoder must be a BERT-style sentence encoder export (last_hidden_state output).",
                ))
            }
        };
        if let Some(v) = vecs.first().filter(|v| v.len() != DIM) {
            return Err(RecError::external(
                format!(
                    "encoder produces {}-dimensional vectors; the catalogue stores vector({DIM})",
                    v.len()
                ),
                "Install a 384-dimensional encoder such as all-MiniLM-L6-v2.",
            ));
        }
        for (&i, v) in chunk.iter().zip(vecs) {
            out[i] = v;
        }
        ENCODER_RUNS.fetch_add(1, Ordering::Relaxed);
        TEXTS_EMBEDDED.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    Ok(out)
}

/// What `recommender.model_info()` shows about the encoder in this backend.
pub struct EncoderInfo {
    pub loaded: bool,
    pub name: Option<String>,
    pub source: Option<String>,
    pub path: Option<String>,
    pub verified: bool,
    pub load_ms: Option<f64>,
}

pub fn encoder_info() -> EncoderInfo {
    let guard = ENCODER.lock().unwrap_or_else(|p| p.into_inner());
    match guard.as_ref() {
        Some(m) => EncoderInfo {
            loaded: true,
            name: Some(m.name.clone()),
            source: Some(m.source.clone()),
            path: Some(m.files.model.display().to_string()),
            verified: m.verified,
            load_ms: Some(m.load_ms),
        },
        None => EncoderInfo {
            loaded: false,
            name: None,
            source: None,
            path: None,
            verified: false,
            load_ms: None,
        },
    }
}

/// Loads the encoder now (if not loaded) so the next call pays no load time.
pub fn preload() -> Result<()> {
    with_model(&ENCODER, "encoder", |_| Ok(()))
}

/// Loads the cross-encoder now (if not loaded) and runs it once, past the score caches, so the
/// next call that needs the model pays neither load time nor first-run setup.
pub fn warm_cross_encoder() -> Result<()> {
    let batch_size = gucs::embed_batch_size();
    with_model(&CROSS_ENCODER, "cross-encoder", |m| {
        cross_run(m, "warmup", &["warmup"], batch_size, None).map(|_| ())
    })
}

/// Whether a cross-encoder is installed (its files exist); otherwise reranking uses the bi-encoder.
pub fn cross_encoder_installed() -> bool {
    ModelFiles::present(std::path::Path::new(&gucs::cross_encoder_dir()))
}

/// Cross-encoder scores kept outside this backend (the pipeline's shared table), keyed by
/// [`pair_key`]; the model layer runs no SQL itself.
pub trait SharedScores {
    /// Per key, None or the logit and how long ago it was stored or last renewed (a pair still
    /// in use is kept again in the second half of its time, so it stays while it is read).
    fn fetch(&self, keys: &[PairKey]) -> Result<Vec<Option<(f32, Duration)>>>;
    /// Keeps logits the model just computed, or found due for renewal; false when it could not
    /// (a standby, a read-only transaction, sharing off).
    fn keep(&self, scored: &[(PairKey, f32)]) -> Result<bool>;
}

/// A (query, document) pair's key outside this backend: the first 16 bytes of the SHA-256 of the
/// cross-encoder files' identities and the two texts (in encoder input form), so it is the same in
/// every backend of this server and changes with a replaced model file or a changed text.
pub type PairKey = [u8; 16];

/// Counters of the cross-encoder's shared scores in this backend (pg_tests read them): pairs
/// found in the shared table, and pairs the model ran for.
pub static SHARED_HITS: AtomicU64 = AtomicU64::new(0);
pub static PAIRS_RUN: AtomicU64 = AtomicU64::new(0);

fn pair_key(model: &[encoder::FileId], query: &str, doc: &str) -> PairKey {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"recommender cross-encoder pair 1\0");
    h.update((model.len() as u64).to_le_bytes());
    for id in model {
        h.update(id.to_bytes());
    }
    h.update((query.len() as u64).to_le_bytes());
    h.update(query.as_bytes());
    h.update(doc.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize()[..16]);
    k
}

/// A time limit on the cross-encoder's part of a call (`recommender.rerank_budget`).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// The model starts no run after this instant (nor one it expects to end after it).
    pub until: Instant,
    /// Whether the call may load the model when this backend has no session of it (false: the
    /// queue worker will score the pairs, so a backend without the model does not load it).
    pub may_load: bool,
}

/// Nanoseconds per padded token of this backend's last cross-encoder run (0: none yet): how a
/// budgeted call predicts whether its next run ends in time.
static CROSS_NS_PER_TOKEN: AtomicU64 = AtomicU64::new(0);

/// Runs shorter than this (padded tokens; a warm-up's) are mostly fixed overhead and do not set
/// `CROSS_NS_PER_TOKEN`.
const MIN_TIMED_TOKENS: u64 = 64;

/// Cross-encoder logits for (query, document) pairs: `[CLS] query [SEP] doc [SEP]` with
/// token_type_ids 0 then 1, one logit per pair. Each distinct document is scored once. A pair is
/// looked up first in this backend's `score_cache` (`recommender.rerank_cache_size`), then in
/// `shared` when given (another backend, or the queue worker's precompute, may have scored it;
/// one found there that is due for renewal is kept there again); only the rest run the model,
/// batched like the encoder, and are kept in both. A call whose pairs are all found loads no
/// model. With a `budget`, None when some pair is left unscored: the time ran out, or the model
/// would have to be loaded and `may_load` is false; the pairs scored until then are kept.
pub fn cross_scores(
    query: &str,
    docs: &[&str],
    shared: Option<&dyn SharedScores>,
    budget: Option<Budget>,
) -> Result<Option<Vec<f64>>> {
    if docs.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let batch_size = gucs::embed_batch_size();
    let capacity = gucs::rerank_cache_size();
    let q = encoder_input(query).into_owned();
    let inputs: Vec<String> = docs.iter().map(|d| encoder_input(d).into_owned()).collect();
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let (distinct, slots) = recommender_core::batch::distinct(&refs);
    let dir = std::path::PathBuf::from(gucs::cross_encoder_dir());
    // The files' identities as the session would see them; unreadable files load (and fail) below.
    let ids = ModelFiles::locate(dir, "cross-encoder")?.ids();
    // A pair is kept in the shared table again once half of rerank_share_seconds has passed since
    // it was stored or renewed there (0.22.0), also one this backend finds in its own cache
    // (0.23.0), so it stays there while it is used, or is stored again if it was pruned.
    let share = gucs::rerank_share_seconds();
    let renew_after = shared
        .filter(|_| share > 0)
        .map(|_| Duration::from_secs_f64(share as f64 / 2.0));
    let now = Instant::now();
    let local = match &ids {
        Some(ids) => score_cache::lookup(ids, capacity, &q, &distinct, renew_after),
        None => vec![None; distinct.len()],
    };
    let mut out: Vec<Option<f32>> = local.iter().map(|v| v.map(|(v, _)| v)).collect();
    let due = |age: Duration| renew_after.is_some_and(|after| age >= after);
    if let (Some(ids), Some(shared)) = (&ids, shared) {
        let found_here: Vec<(&str, f32)> = local
            .iter()
            .zip(&distinct)
            .filter_map(|(v, d)| v.filter(|&(_, due)| due).map(|(v, _)| (*d, v)))
            .collect();
        if !found_here.is_empty() {
            if let Some(at) = keep_shared(shared, ids, &q, &found_here, now)? {
                score_cache::store(&q, found_here.iter().map(|&(d, v)| (d, v, Some(at))));
            }
        }
        let (todo, keys): (Vec<usize>, Vec<PairKey>) = (0..distinct.len())
            .filter(|&i| out[i].is_none())
            .map(|i| (i, pair_key(ids, &q, distinct[i])))
            .unzip();
        if !todo.is_empty() {
            let hits: Vec<(usize, PairKey, f32, Duration)> = todo
                .iter()
                .zip(&keys)
                .zip(shared.fetch(&keys)?)
                .filter_map(|((&i, &key), v)| v.map(|(v, age)| (i, key, v, age)))
                .collect();
            let renew: Vec<(PairKey, f32)> = hits
                .iter()
                .filter(|h| due(h.3))
                .map(|h| (h.1, h.2))
                .collect();
            let renewed = !renew.is_empty() && shared.keep(&renew)?;
            SHARED_HITS.fetch_add(hits.len() as u64, Ordering::Relaxed);
            for &(i, _, v, _) in &hits {
                out[i] = Some(v);
            }
            score_cache::store(
                &q,
                hits.iter().map(|&(i, _, v, age)| {
                    let at = if renewed && due(age) {
                        Some(now)
                    } else {
                        now.checked_sub(age)
                    };
                    (distinct[i], v, at)
                }),
            );
        }
    }
    let todo: Vec<usize> = (0..distinct.len()).filter(|&i| out[i].is_none()).collect();
    if !todo.is_empty() {
        if let Some(b) = budget {
            if Instant::now() >= b.until || (!b.may_load && !cross_encoder_loaded()) {
                return Ok(None);
            }
        }
        let docs: Vec<&str> = todo.iter().map(|&i| distinct[i]).collect();
        let until = budget.map(|b| b.until);
        let (fresh, model_ids) = with_model(&CROSS_ENCODER, "cross-encoder", |m| {
            Ok((cross_run(m, &q, &docs, batch_size, until)?, m.ids.clone()))
        })?;
        let scored: Vec<(&str, f32)> = docs
            .iter()
            .zip(&fresh)
            .filter_map(|(&d, v)| v.map(|v| (d, v)))
            .collect();
        PAIRS_RUN.fetch_add(scored.len() as u64, Ordering::Relaxed);
        // Kept only under the identities the session was loaded with (a file replaced between
        // the lookup and the load keeps nothing under the old ones).
        if ids.as_ref() == Some(&model_ids) {
            let at = match shared {
                Some(shared) => keep_shared(shared, &model_ids, &q, &scored, now)?,
                None => None,
            };
            score_cache::store(&q, scored.iter().map(|&(d, v)| (d, v, at)));
        }
        for (&i, v) in todo.iter().zip(fresh) {
            out[i] = v;
        }
    }
    // (only a budgeted run leaves pairs unscored)
    if out.iter().any(Option::is_none) {
        return Ok(None);
    }
    Ok(Some(
        slots
            .into_iter()
            .map(|i| out[i].unwrap_or_default() as f64)
            .collect(),
    ))
}

/// Keeps `pairs` (documents in encoder input form and their logits for `q`) in `shared`: `now`
/// when it took them (they count as stored there from then on), None when it could not.
fn keep_shared(
    shared: &dyn SharedScores,
    model: &[encoder::FileId],
    q: &str,
    pairs: &[(&str, f32)],
    now: Instant,
) -> Result<Option<Instant>> {
    let keys: Vec<(PairKey, f32)> = pairs
        .iter()
        .map(|&(d, v)| (pair_key(model, q, d), v))
        .collect();
    Ok(shared.keep(&keys)?.then_some(now))
}

/// Runs the cross-encoder on (`q`, each of `docs`), already in encoder input form. With `until`,
/// starts no run at or after that instant, nor, after its first, one that this backend's last
/// run's speed says would end after it: the documents of the runs not started get None.
fn cross_run(
    m: &mut LoadedModel,
    q: &str,
    docs: &[&str],
    batch_size: usize,
    until: Option<Instant>,
) -> Result<Vec<Option<f32>>> {
    let pairs: Vec<(String, String)> = docs
        .iter()
        .map(|d| (q.to_owned(), (*d).to_owned()))
        .collect();
    let toks = m.tokenize(pairs)?;
    let mut order: Vec<usize> = (0..toks.len()).collect();
    order.sort_by_key(|&i| (toks[i].0.len(), i));
    let mut out = vec![None; docs.len()];
    let mut ran = false;
    let threads = m.threads;
    for chunk in runs_of(&order, &toks, batch_size, threads) {
        pgrx::check_for_interrupts!();
        let refs: Vec<_> = chunk.iter().map(|&i| &toks[i]).collect();
        let b = m.batch(&refs);
        let padded = (b.rows * b.seq) as u64;
        if let Some(until) = until {
            // The call's first run starts whenever there is time left, so a backend whose last
            // run was slow (its speed is only measured by runs it starts) still gets on.
            let expected = if ran {
                Duration::from_nanos(
                    CROSS_NS_PER_TOKEN
                        .load(Ordering::Relaxed)
                        .saturating_mul(padded),
                )
            } else {
                Duration::ZERO
            };
            if Instant::now() + expected >= until {
                break;
            }
        }
        ran = true;
        let started = Instant::now();
        let (shape, data) = m.run(&b, false)?;
        if padded >= MIN_TIMED_TOKENS {
            let ns = started.elapsed().as_nanos() as u64 / padded;
            CROSS_NS_PER_TOKEN.store(ns, Ordering::Relaxed);
        }
        let per_row = if shape.len() == 2 {
            shape[1].max(1) as usize
        } else {
            1
        };
        if data.len() != b.rows * per_row {
            return Err(RecError::external(
                format!("cross-encoder output has shape {shape:?}, expected [batch, 1]"),
                "The cross-encoder must be a BERT sequence-classification export with one logit (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2).",
            ));
        }
        for (r, &i) in chunk.iter().enumerate() {
            // With several labels, the last one is taken as "relevant".
            out[i] = Some(data[r * per_row + per_row - 1]);
        }
    }
    Ok(out)
}

#[cfg(any(test, feature = "pg_test"))]
mod tests;
