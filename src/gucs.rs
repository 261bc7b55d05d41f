//! Every setting of the extension. Each is a private static with a typed accessor; the `///` on the
//! accessor states the default and why. README.md has the same table for users.
use std::ffi::{CStr, CString};

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

use crate::core::limits;

static MODEL_DIR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ONNXRUNTIME_LIBRARY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ENABLE_CHECKSUMS: GucSetting<bool> = GucSetting::<bool>::new(true);
static EMBED_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(32);
static ENABLE_SYNC_EMBEDDING: GucSetting<bool> = GucSetting::<bool>::new(true);
static AS_OF: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static CROSS_ENCODER_DIR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static WEIGHT_CONTENT: GucSetting<f64> = GucSetting::<f64>::new(0.5);
static WEIGHT_COLLABORATIVE: GucSetting<f64> = GucSetting::<f64>::new(0.3);
static WEIGHT_POPULARITY: GucSetting<f64> = GucSetting::<f64>::new(0.2);
static CONTENT_CANDIDATES: GucSetting<i32> = GucSetting::<i32>::new(50);
static COLLABORATIVE_CANDIDATES: GucSetting<i32> = GucSetting::<i32>::new(50);
static COLLABORATIVE_CACHE_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(600);
static RERANK_TOP_N: GucSetting<i32> = GucSetting::<i32>::new(20);
static RERANK_WEIGHT: GucSetting<f64> = GucSetting::<f64>::new(0.5);
static ENABLE_RERANK: GucSetting<bool> = GucSetting::<bool>::new(true);
static MAX_PER_CATEGORY: GucSetting<i32> = GucSetting::<i32>::new(3);
static NEW_ARRIVAL_DAYS: GucSetting<i32> = GucSetting::<i32>::new(30);
static NEW_ARRIVAL_BOOST: GucSetting<f64> = GucSetting::<f64>::new(0.1);
static ENABLE_REPURCHASE: GucSetting<bool> = GucSetting::<bool>::new(true);
static POPULARITY_WINDOW_DAYS: GucSetting<i32> = GucSetting::<i32>::new(30);
static DECAY_DAYS: GucSetting<f64> = GucSetting::<f64>::new(30.0);
static EMBEDDING_MODE: GucSetting<EmbeddingMode> =
    GucSetting::<EmbeddingMode>::new(EmbeddingMode::Sync);
static QUEUE_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(64);
static QUEUE_RETRY_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(30);
static WORKER_DATABASES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static WORKER_NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);
static LOG_IMPRESSIONS: GucSetting<bool> = GucSetting::<bool>::new(false);
static ATTRIBUTION_DAYS: GucSetting<i32> = GucSetting::<i32>::new(7);

/// `recommender.embedding_mode`: when a changed product is embedded.
#[derive(Clone, Copy, PartialEq, Eq, Debug, pgrx::PostgresGucEnum)]
pub enum EmbeddingMode {
    /// inside the writing statement
    #[name = c"sync"]
    Sync,
    /// queued in recommender.embedding_queue for the worker or process_queue()
    #[name = c"deferred"]
    Deferred,
}

/// The ONNX Runtime file the setup script installs, under `$libdir/recommender/`.
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.32.0";

pub fn init() {
    GucRegistry::define_string_guc(
        c"recommender.model_dir",
        c"Directory holding manifest.json and the encoder/ and cross-encoder/ model folders.",
        c"Empty means <sharedir>/recommender/models, where models/materialize.sh installs them. Superuser only: it decides which files a backend loads.",
        &MODEL_DIR,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"recommender.onnxruntime_library",
        c"Absolute path of libonnxruntime.so (ONNX Runtime >= 1.31).",
        c"Empty means $libdir/recommender/libonnxruntime.so.1.32.0. Read once per backend, at the first model use; a change applies to new sessions. Superuser only.",
        &ONNXRUNTIME_LIBRARY,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"recommender.enable_checksums",
        c"Verify model files against the sha256 in the installed manifest.json before loading them.",
        c"On by default: a truncated or replaced model file is refused instead of producing wrong vectors. Costs one read of the file per backend and load.",
        &ENABLE_CHECKSUMS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"recommender.embed_batch_size",
        c"Texts per encoder run in bulk embedding.",
        c"32 by default: larger batches amortise per-run overhead, and texts are sorted by length so padding stays small.",
        &EMBED_BATCH_SIZE,
        1,
        limits::MAX_EMBED_BATCH as i32,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"recommender.enable_sync_embedding",
        c"Embed changed products inside the writing statement (on) or leave them stale for refresh_embeddings() (off).",
        c"On by default, so a product is searchable as soon as its write commits. Turn it off for large imports and run CALL recommender.refresh_embeddings() afterwards.",
        &ENABLE_SYNC_EMBEDDING,
        GucContext::Userset,
        GucFlags::default(),
    );

    GucRegistry::define_string_guc(
        c"recommender.as_of",
        c"The pipeline's clock: a timestamptz, or empty for now().",
        c"Decay, popularity windows, the new-arrival boost and which interactions count (those at or before the clock) all read it, so evaluation on historical data can SET it.",
        &AS_OF,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"recommender.cross_encoder_dir",
        c"Directory holding the cross-encoder's model.onnx (or .ort) and tokenizer.json.",
        c"Empty means <model_dir>/cross-encoder. When no cross-encoder is installed, reranking uses the bi-encoder. Superuser only.",
        &CROSS_ENCODER_DIR,
        GucContext::Suset,
        GucFlags::default(),
    );
    real(
        c"recommender.weight_content",
        c"alpha: weight of content similarity in the hybrid score.",
        &WEIGHT_CONTENT,
        0.0,
        10.0,
    );
    real(
        c"recommender.weight_collaborative",
        c"beta: weight of collaborative signals (similar users, co-purchase).",
        &WEIGHT_COLLABORATIVE,
        0.0,
        10.0,
    );
    real(
        c"recommender.weight_popularity",
        c"gamma: weight of popularity over recommender.popularity_window_days.",
        &WEIGHT_POPULARITY,
        0.0,
        10.0,
    );
    int(
        c"recommender.content_candidates",
        c"Candidates taken from the HNSW index (stage 1).",
        &CONTENT_CANDIDATES,
        0,
        1000,
    );
    int(
        c"recommender.collaborative_candidates",
        c"Candidates from similar users and co-purchase (stage 1).",
        &COLLABORATIVE_CANDIDATES,
        0,
        1000,
    );
    int(
        c"recommender.collaborative_cache_seconds",
        c"How long a user's collaborative candidates (similar users, co-purchase) are reused from the profile cache; 0 recomputes them on every call.",
        &COLLABORATIVE_CACHE_SECONDS,
        0,
        86400,
    );
    int(
        c"recommender.rerank_top_n",
        c"How many top hybrid candidates the reranker scores (stage 3); 0 turns reranking off.",
        &RERANK_TOP_N,
        0,
        200,
    );
    real(
        c"recommender.rerank_weight",
        c"lambda: final score = (1 - lambda) * hybrid + lambda * rerank.",
        &RERANK_WEIGHT,
        0.0,
        1.0,
    );
    GucRegistry::define_bool_guc(
        c"recommender.enable_rerank",
        c"Run stage 3 (cross-encoder, or bi-encoder when none is installed).",
        c"On by default.",
        &ENABLE_RERANK,
        GucContext::Userset,
        GucFlags::default(),
    );
    int(
        c"recommender.max_per_category",
        c"Business rule: at most this many results per category.",
        &MAX_PER_CATEGORY,
        1,
        1000,
    );
    int(
        c"recommender.new_arrival_days",
        c"Products created less than this many days before the clock get the new-arrival boost.",
        &NEW_ARRIVAL_DAYS,
        0,
        3650,
    );
    real(
        c"recommender.new_arrival_boost",
        c"Relative boost of new arrivals: score * (1 + boost).",
        &NEW_ARRIVAL_BOOST,
        0.0,
        10.0,
    );
    GucRegistry::define_bool_guc(
        c"recommender.enable_repurchase",
        c"Allow products the user already bought to be recommended again.",
        c"On by default: repeat buying is normal in groceries. Cart contents are always excluded from cart().",
        &ENABLE_REPURCHASE,
        GucContext::Userset,
        GucFlags::default(),
    );
    int(
        c"recommender.popularity_window_days",
        c"Popularity counts interactions of this many days before the clock.",
        &POPULARITY_WINDOW_DAYS,
        1,
        3650,
    );
    real(
        c"recommender.decay_days",
        c"Interaction weights decay by exp(-age_days / decay_days) in preference vectors.",
        &DECAY_DAYS,
        0.1,
        3650.0,
    );
    GucRegistry::define_enum_guc(
        c"recommender.embedding_mode",
        c"sync: embed changed products inside the writing statement; deferred: only queue them.",
        c"sync by default. deferred makes catalogue writes fast: changed products go to recommender.embedding_queue, which the background worker (recommender.worker_databases) or CALL recommender.process_queue() drains. Read by the catalogue triggers of the writing session.",
        &EMBEDDING_MODE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"recommender.queue_batch_size",
        c"Products embedded per transaction when the embedding queue is drained.",
        c"64 by default: about half a second of model time, so a cancel or SIGTERM waits at most that long and a failed batch delays few products.",
        &QUEUE_BATCH_SIZE,
        1,
        10000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"recommender.queue_retry_seconds",
        c"Delay before a queued product whose embedding failed is tried again; doubles per failure, at most 1 hour.",
        c"30 s by default. Failed products are retried one at a time, so one bad product cannot hold back a batch twice.",
        &QUEUE_RETRY_SECONDS,
        0,
        3600,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    // A server-start setting can only be defined while shared_preload_libraries is processed;
    // loaded later (no worker possible), the library leaves it undefined.
    // SAFETY: a plain flag of the postmaster, read in _PG_init.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        GucRegistry::define_string_guc(
            c"recommender.worker_databases",
            c"Comma-separated databases in which a background worker drains recommender.embedding_queue.",
            c"Empty (the default) starts no worker. Read at server start, and only when recommender is in shared_preload_libraries: one worker per database.",
            &WORKER_DATABASES,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
    GucRegistry::define_int_guc(
        c"recommender.worker_naptime",
        c"How long the queue worker sleeps when the queue is empty.",
        c"1 second by default. A new value applies at the next reload (SIGHUP).",
        &WORKER_NAPTIME_MS,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_bool_guc(
        c"recommender.log_impressions",
        c"Record what the *_json recommendation functions return in recommender.impressions.",
        c"Off by default. With it on, every product a JSON response shows is logged with the response's request_id, context, user and position; clicks tracked with that request_id then count in recommender.recommendation_performance. A no-op with a NOTICE on a standby or in a read-only transaction.",
        &LOG_IMPRESSIONS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"recommender.attribution_days",
        c"A purchase of a clicked product by the same user within this many days counts as a conversion of the click.",
        c"7 days by default. Read by the recommender.recommendation_performance view when it is queried.",
        &ATTRIBUTION_DAYS,
        1,
        365,
        GucContext::Userset,
        GucFlags::default(),
    );
    // SAFETY: called from _PG_init with a static NUL-terminated string; warns about and removes
    // misspelled recommender.* placeholders.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"recommender".as_ptr()) };
}

fn string_setting(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `recommender.model_dir`; default `<sharedir>/recommender/models`.
pub fn model_dir() -> String {
    string_setting(&MODEL_DIR).unwrap_or_else(|| format!("{}/recommender/models", share_dir()))
}

/// `recommender.onnxruntime_library`; default `$libdir/recommender/libonnxruntime.so.1.32.0`.
pub fn onnxruntime_library() -> String {
    string_setting(&ONNXRUNTIME_LIBRARY)
        .unwrap_or_else(|| format!("{}/recommender/{ORT_LIBRARY_FILE}", pkglib_dir()))
}

/// `recommender.enable_checksums`; default on.
pub fn enable_checksums() -> bool {
    ENABLE_CHECKSUMS.get()
}

/// `recommender.embed_batch_size`; default 32.
pub fn embed_batch_size() -> usize {
    EMBED_BATCH_SIZE.get().max(1) as usize
}

/// `recommender.enable_sync_embedding`; default on.
pub fn enable_sync_embedding() -> bool {
    ENABLE_SYNC_EMBEDDING.get()
}

/// `recommender.worker_databases`, split; empty by default (no worker).
pub fn worker_databases() -> Vec<String> {
    string_setting(&WORKER_DATABASES)
        .map(|s| {
            s.split(',')
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `recommender.worker_naptime`; default 1 s. (embedding_mode, queue_batch_size,
/// queue_retry_seconds, log_impressions and attribution_days are read by the SQL that uses them.)
pub fn worker_naptime() -> std::time::Duration {
    std::time::Duration::from_millis(WORKER_NAPTIME_MS.get() as u64)
}

fn share_dir() -> String {
    let mut buf = vec![0 as std::ffi::c_char; pgrx::pg_sys::MAXPGPATH as usize];
    // SAFETY: my_exec_path is a NUL-terminated global set at backend start; get_share_path writes
    // at most MAXPGPATH bytes into buf.
    unsafe {
        pgrx::pg_sys::get_share_path(
            std::ptr::addr_of!(pgrx::pg_sys::my_exec_path) as *const std::ffi::c_char,
            buf.as_mut_ptr(),
        );
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

fn pkglib_dir() -> String {
    // SAFETY: pkglib_path is a NUL-terminated global filled at backend start.
    unsafe {
        CStr::from_ptr(std::ptr::addr_of!(pgrx::pg_sys::pkglib_path) as *const std::ffi::c_char)
            .to_string_lossy()
            .into_owned()
    }
}

fn real(
    name: &'static CStr,
    short: &'static CStr,
    setting: &'static GucSetting<f64>,
    min: f64,
    max: f64,
) {
    GucRegistry::define_float_guc(
        name,
        short,
        c"USERSET: an A/B test can SET LOCAL it.",
        setting,
        min,
        max,
        GucContext::Userset,
        GucFlags::default(),
    );
}

fn int(
    name: &'static CStr,
    short: &'static CStr,
    setting: &'static GucSetting<i32>,
    min: i32,
    max: i32,
) {
    GucRegistry::define_int_guc(
        name,
        short,
        c"USERSET: an A/B test can SET LOCAL it.",
        setting,
        min,
        max,
        GucContext::Userset,
        GucFlags::default(),
    );
}

/// `recommender.cross_encoder_dir`; default `<model_dir>/cross-encoder`.
pub fn cross_encoder_dir() -> String {
    string_setting(&CROSS_ENCODER_DIR).unwrap_or_else(|| format!("{}/cross-encoder", model_dir()))
}

/// Stage weights α, β, γ (defaults 0.5, 0.3, 0.2).
pub fn weights() -> crate::core::scoring::Weights {
    crate::core::scoring::Weights {
        alpha: WEIGHT_CONTENT.get(),
        beta: WEIGHT_COLLABORATIVE.get(),
        gamma: WEIGHT_POPULARITY.get(),
    }
}

/// Business rules (defaults: 3 per category, 30-day new arrivals boosted by 10 %, repurchase allowed).
pub fn rules() -> crate::core::scoring::Rules {
    crate::core::scoring::Rules {
        max_per_category: MAX_PER_CATEGORY.get().max(1) as usize,
        new_arrival_days: NEW_ARRIVAL_DAYS.get() as f64,
        new_arrival_boost: NEW_ARRIVAL_BOOST.get(),
        allow_purchased: ENABLE_REPURCHASE.get(),
    }
}

/// Candidate counts (defaults 50 content, 50 collaborative).
pub fn candidate_counts() -> (usize, usize) {
    (
        CONTENT_CANDIDATES.get().max(0) as usize,
        COLLABORATIVE_CANDIDATES.get().max(0) as usize,
    )
}

/// Seconds a user's collaborative candidates are reused (default 600). They follow the user's
/// own interactions exactly (the profile key) but other users' new interactions only after this.
pub fn collaborative_cache_seconds() -> i32 {
    COLLABORATIVE_CACHE_SECONDS.get().max(0)
}

/// Rerank size (default 20; 0 or enable_rerank = off disables) and blend weight λ (default 0.5).
pub fn rerank() -> (usize, f64) {
    let n = if ENABLE_RERANK.get() {
        RERANK_TOP_N.get().max(0) as usize
    } else {
        0
    };
    (n, RERANK_WEIGHT.get())
}

/// Popularity window (default 30 days) and decay constant (default 30 days).
pub fn windows() -> (i32, f64) {
    (POPULARITY_WINDOW_DAYS.get(), DECAY_DAYS.get())
}
