//! Every setting of the extension, declared once in the table below: name, default, range,
//! context, unit and descriptions. The `settings!` macro turns each row into its static and its
//! registration; typed accessors follow. README.md's settings table shows the same defaults to
//! users, and a pg_test compares it with pg_settings.
use std::ffi::{CStr, CString};

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

use recommender_core::limits;

/// The long description of the pipeline's tuning knobs.
const AB_TEST: &CStr = c"USERSET: an A/B test can SET LOCAL it.";

/// One row per setting: `STATIC: kind = default; name, context[, [min, max]][, UNIT]; short,
/// long;` (kind: bool, int, real, string, enum).
macro_rules! settings {
    ($($stat:ident: $kind:ident = $default:expr; $name:literal, $ctx:ident $(, [$min:expr, $max:expr])? $(, $unit:ident)?;
        $short:literal, $long:expr;)*) => {
        $(static $stat: GucSetting<settings!(@ty $kind)> = GucSetting::<settings!(@ty $kind)>::new($default);)*

        /// Registers every row of the table.
        fn define_table() {
            $(settings!(@define $kind, $name, $short, $long, &$stat, GucContext::$ctx,
                        GucFlags::default() $(| GucFlags::$unit)? $(, $min, $max)?);)*
        }
    };
    (@ty bool) => { bool };
    (@ty int) => { i32 };
    (@ty real) => { f64 };
    (@ty string) => { Option<CString> };
    (@ty enum) => { EmbeddingMode };
    (@define bool, $n:expr, $s:expr, $l:expr, $v:expr, $c:expr, $f:expr) => {
        GucRegistry::define_bool_guc($n, $s, $l, $v, $c, $f)
    };
    (@define string, $n:expr, $s:expr, $l:expr, $v:expr, $c:expr, $f:expr) => {
        GucRegistry::define_string_guc($n, $s, $l, $v, $c, $f)
    };
    (@define enum, $n:expr, $s:expr, $l:expr, $v:expr, $c:expr, $f:expr) => {
        GucRegistry::define_enum_guc($n, $s, $l, $v, $c, $f)
    };
    (@define int, $n:expr, $s:expr, $l:expr, $v:expr, $c:expr, $f:expr, $min:expr, $max:expr) => {
        GucRegistry::define_int_guc($n, $s, $l, $v, $min, $max, $c, $f)
    };
    (@define real, $n:expr, $s:expr, $l:expr, $v:expr, $c:expr, $f:expr, $min:expr, $max:expr) => {
        GucRegistry::define_float_guc($n, $s, $l, $v, $min, $max, $c, $f)
    };
}

settings! {
    MODEL_DIR: string = None; c"recommender.model_dir", Suset;
        c"Directory holding manifest.json and the encoder/ and cross-encoder/ model folders.",
        c"Empty means <sharedir>/recommender/models, where models/materialize.sh installs them. Superuser only: it decides which files a backend loads.";
    ONNXRUNTIME_LIBRARY: string = None; c"recommender.onnxruntime_library", Suset;
        c"Absolute path of libonnxruntime.so (ONNX Runtime >= 1.31).",
        c"Empty means $libdir/recommender/libonnxruntime.so.1.32.0. Read once per backend, at the first model use; a change applies to new sessions. Superuser only.";
    ENABLE_CHECKSUMS: bool = true; c"recommender.enable_checksums", Suset;
        c"Verify model files against the sha256 in the installed manifest.json before loading them.",
        c"A truncated or replaced model file is refused instead of producing wrong vectors. Costs one read of the file per backend and load.";
    EMBED_BATCH_SIZE: int = 32; c"recommender.embed_batch_size", Userset, [1, limits::MAX_EMBED_BATCH as i32];
        c"Texts per encoder run in bulk embedding.",
        c"Larger batches amortise per-run overhead, and texts are sorted by length so padding stays small.";
    EMBEDDING_THREADS: int = 1; c"recommender.embedding_threads", Suset, [1, 64];
        c"CPU threads one bulk embedding call may use (refresh_embeddings, process_queue, the queue worker, embed() of 64 texts or more).",
        c"Each such call runs the encoder on a session of its own with this many intra-op threads, dropped when the call ends; calls of fewer texts always use one. Superuser only: it decides how many cores one backend takes.";
    EMBEDDING_WORKERS: int = 1; c"recommender.embedding_workers", Suset, [0, limits::MAX_EMBEDDING_WORKERS as i32];
        c"Background helpers CALL refresh_embeddings() and CALL process_queue() start to embed alongside the calling session.",
        c"Each helper is one more process running the encoder (one more core), taken from max_worker_processes only while the call runs; 0 embeds in the calling session alone. Superuser only: it decides how many cores one call takes.";
    RERANK_THREADS: int = 1; c"recommender.rerank_threads", Suset, [1, 64];
        c"CPU threads the cross-encoder uses for one call's pairs.",
        c"Read when a backend loads the cross-encoder (a change reloads it at the next use). More than 1 makes a call that scores new pairs (a first visit, the call after an interaction) faster on idle cores; under full load it buys nothing. Superuser only: it decides how many cores one call takes.";
    ENABLE_SYNC_EMBEDDING: bool = true; c"recommender.enable_sync_embedding", Userset;
        c"Embed changed products inside the writing statement (on) or leave them stale for refresh_embeddings() (off).",
        c"On, a product is searchable as soon as its write commits. Turn it off for large imports and run CALL recommender.refresh_embeddings() afterwards.";
    AS_OF: string = None; c"recommender.as_of", Userset;
        c"The pipeline's clock: a timestamptz, or empty for now().",
        c"Decay, popularity windows, the new-arrival boost and which interactions count (those at or before the clock) all read it, so evaluation on historical data can SET it.";
    CROSS_ENCODER_DIR: string = None; c"recommender.cross_encoder_dir", Suset;
        c"Directory holding the cross-encoder's model.onnx (or .ort) and tokenizer.json.",
        c"Empty means <model_dir>/cross-encoder. When no cross-encoder is installed, reranking uses the bi-encoder. Superuser only.";
    WEIGHT_CONTENT: real = 0.5; c"recommender.weight_content", Userset, [0.0, 10.0];
        c"alpha: weight of content similarity in the hybrid score (similar_products, cart, frequently_bought_together; homepage has its own).",
        AB_TEST;
    WEIGHT_COLLABORATIVE: real = 0.3; c"recommender.weight_collaborative", Userset, [0.0, 10.0];
        c"beta: weight of collaborative signals (co-purchase) in the hybrid score (similar_products, cart, frequently_bought_together).",
        AB_TEST;
    WEIGHT_POPULARITY: real = 0.2; c"recommender.weight_popularity", Userset, [0.0, 10.0];
        c"gamma: weight of popularity over recommender.popularity_window_days (similar_products, cart, frequently_bought_together).",
        AB_TEST;
    HOMEPAGE_WEIGHT_CONTENT: real = 0.05; c"recommender.homepage_weight_content", Userset, [0.0, 10.0];
        c"alpha of homepage(): weight of the user's profile's content similarity.",
        c"homepage() has weights of its own (collaborative first: what customers buy, and buy again, says more than text about what they buy next); the other contexts use recommender.weight_content and its siblings. USERSET: an A/B test can SET LOCAL it.";
    HOMEPAGE_WEIGHT_COLLABORATIVE: real = 0.9; c"recommender.homepage_weight_collaborative", Userset, [0.0, 10.0];
        c"beta of homepage(): weight of the collaborative signal (repeat purchases and the item model or similar users and co-purchase; see recommender.repeat_share).",
        AB_TEST;
    HOMEPAGE_WEIGHT_POPULARITY: real = 0.05; c"recommender.homepage_weight_popularity", Userset, [0.0, 10.0];
        c"gamma of homepage(): weight of popularity over recommender.popularity_window_days.",
        AB_TEST;
    REPEAT_SHARE: real = 0.9; c"recommender.repeat_share", Userset, [0.0, 1.0];
        c"Share of the collaborative signal that comes from the user's own repeat purchases (homepage).",
        c"collaborative = (1 - share) * explore + share * repeat, each in [0, 1]: explore is the item model's score (or, without one, the larger of the similar-users and co-purchase scores), repeat the user's time-decayed basket frequency. 1 ranks what the user buys again first; 0 only what other users suggest.";
    CONTENT_CANDIDATES: int = 50; c"recommender.content_candidates", Userset, [0, 1000];
        c"Candidates taken from the HNSW index (stage 1).",
        AB_TEST;
    COLLABORATIVE_CANDIDATES: int = 50; c"recommender.collaborative_candidates", Userset, [0, 1000];
        c"Candidates from each collaborative source: repeat purchases, the item model (or similar users and co-purchase), and the bestsellers homepage adds (stage 1).",
        AB_TEST;
    ITEM_MODEL_RECENCY: int = 0; c"recommender.item_model_recency", Userset, [0, 100_000];
        c"How the item model weighs the user's history: 0 counts every product the user bought alike; n > 0 counts the r-th most recently bought (from 0) exp(-r / n).",
        c"On a film catalogue (MovieLens) 5 to 10 ranked better; on a grocery store (Complete Journey), whose whole history matters, 0. recommender.tune() searches it. USERSET: an A/B test can SET LOCAL it.";
    COLLABORATIVE_CACHE_SECONDS: int = 600; c"recommender.collaborative_cache_seconds", Userset, [0, 86400];
        c"How long a user's collaborative candidates (repeat purchases, item model or similar users and co-purchase) are reused from the profile cache; 0 recomputes them on every call.",
        AB_TEST;
    PROFILE_REBUILD_SECONDS: int = 3600; c"recommender.profile_rebuild_seconds", Userset, [0, 604_800], UNIT_S;
        c"How long after a profile's last rebuild from all of the user's interactions its refreshes only add the new ones; 0 rebuilds it at every refresh.",
        c"A profile is refreshed by the first call after the user's new interaction. An update adds the new interactions' decayed terms to the stored sums, which equals a rebuild as long as the products the user interacted with keep their text, category and price; a product changed since reaches the profile at the first refresh after this interval.";
    RERANK_TOP_N: int = 20; c"recommender.rerank_top_n", Userset, [0, 200];
        c"How many top hybrid candidates the reranker scores (stage 3); 0 turns reranking off.",
        AB_TEST;
    RERANK_WEIGHT: real = 0.5; c"recommender.rerank_weight", Userset, [0.0, 1.0];
        c"lambda: final score = (1 - lambda) * hybrid + lambda * rerank.",
        AB_TEST;
    ENABLE_RERANK: bool = true; c"recommender.enable_rerank", Userset;
        c"Run stage 3 (cross-encoder, or bi-encoder when none is installed).",
        c"Off skips stage 3 whatever recommender.rerank_top_n says.";
    RERANK_CACHE_SIZE: int = 20000; c"recommender.rerank_cache_size", Userset, [0, 1_000_000];
        c"Cross-encoder scores of (query, document) pairs a backend keeps for later calls; 0 keeps none.",
        c"A pair's score depends only on its two texts and the model, so a repeat visit whose profile has not changed, or a product page seen before, runs no model. Changed texts make new pairs and a replaced model empties the cache; about 20 bytes per entry, per backend.";
    RERANK_SHARE_SECONDS: int = 86400; c"recommender.rerank_share_seconds", Suset, [0, 2_592_000], UNIT_S;
        c"How long cross-encoder scores are kept in recommender.rerank_scores, shared by every backend and the queue worker; 0 neither reads nor writes it.",
        c"A pair scored by one backend (or precomputed by the queue worker, recommender.precompute_homepage) runs no model in another; a pair read from the table in the second half of this time is renewed, so a pair other backends keep reading stays. Written only by the recommendation functions, never on a standby, in a read-only or a serializable transaction; older scores are deleted by the queue worker, a few at a time by the calls that store new ones, or by recommender.prune_rerank_scores(). Superuser only: it decides what the table holds.";
    RERANK_BUDGET: int = 0; c"recommender.rerank_budget", Suset, [0, 60_000], UNIT_MS;
        c"Time from the start of a recommendation call within which the cross-encoder must score the call's new pairs; 0 sets no limit.",
        c"Past it the call answers without stage 3 (reranker 'deferred'): the pairs scored so far are kept for the next call, and a homepage's user is queued for the queue worker, which scores the rest. A backend that has not loaded the cross-encoder leaves a homepage's pairs to the worker, without loading the model, when a worker serves the database and the call may write. Client backends only. Superuser only: it decides how much work the queue worker takes on.";
    MAX_PER_CATEGORY: int = 3; c"recommender.max_per_category", Userset, [1, 1000];
        c"Business rule: at most this many results per category.",
        AB_TEST;
    NEW_ARRIVAL_DAYS: int = 30; c"recommender.new_arrival_days", Userset, [0, 3650];
        c"Products created less than this many days before the clock get the new-arrival boost.",
        AB_TEST;
    NEW_ARRIVAL_BOOST: real = 0.1; c"recommender.new_arrival_boost", Userset, [0.0, 10.0];
        c"Relative boost of new arrivals: score * (1 + boost).",
        AB_TEST;
    ENABLE_REPURCHASE: bool = true; c"recommender.enable_repurchase", Userset;
        c"Allow products the user already bought to be recommended again.",
        c"Repeat buying is normal in groceries. Cart contents are always excluded from cart().";
    POPULARITY_WINDOW_DAYS: int = 30; c"recommender.popularity_window_days", Userset, [1, 3650];
        c"Popularity counts interactions of this many days before the clock.",
        AB_TEST;
    SHARE_POPULARITY: bool = true; c"recommender.share_popularity", Userset;
        c"Read and keep the popularity sums in the shared cache recommender.popular_cache.",
        c"Off, the session sums popularity itself once per transaction and neither reads nor writes the shared cache: no other session's sums reach its lists and no call of another session waits for it. recommender.evaluate() and recommender.tune() turn it off for their run.";
    DECAY_DAYS: real = 90.0; c"recommender.decay_days", Userset, [0.1, 3650.0];
        c"Interaction weights decay by exp(-age_days / decay_days) in preference vectors and repeat-purchase scores.",
        AB_TEST;
    EMBEDDING_MODE: enum = EmbeddingMode::Sync; c"recommender.embedding_mode", Userset;
        c"sync: embed changed products inside the writing statement; deferred: only queue them.",
        c"deferred makes catalogue writes fast: changed products go to recommender.embedding_queue, which the background worker (recommender.worker_databases) or CALL recommender.process_queue() drains. Read by the catalogue triggers of the writing session.";
    QUEUE_BATCH_SIZE: int = 64; c"recommender.queue_batch_size", Userset, [1, limits::MAX_ARRAY as i32];
        c"Products embedded per transaction when the embedding queue is drained.",
        c"Small batches keep a cancel or SIGTERM short (about half a second of model time at the default) and a failed batch delays few products.";
    QUEUE_RETRY_SECONDS: int = 30; c"recommender.queue_retry_seconds", Userset, [1, 3600], UNIT_S;
        c"Delay before a queued product whose embedding failed is tried again; doubles per failure, at most 1 hour.",
        c"Failed products are retried one at a time, so one bad product cannot hold back a batch twice.";
    WORKER_NAPTIME_MS: int = 1000; c"recommender.worker_naptime", Sighup, [10, 3_600_000], UNIT_MS;
        c"How long the queue worker waits before it looks at the queues again unwoken; a commit that queues work wakes it at once.",
        c"A new value applies at the next reload (SIGHUP).";
    PRECOMPUTE_HOMEPAGE: bool = false; c"recommender.precompute_homepage", Suset;
        c"Queue a user whose interactions change for the queue worker, which then computes their homepage ahead of their next call.",
        c"The worker refreshes the profile and the collaborative candidates and scores the rerank pairs into recommender.rerank_scores, so the user's next homepage needs no model run. Needs the queue worker in the database (recommender.worker_databases); turn it off in a session that bulk-loads interactions. Superuser only (e.g. ALTER DATABASE): each queued user costs the worker a homepage.";
    LOG_IMPRESSIONS: bool = false; c"recommender.log_impressions", Userset;
        c"Record what the *_json recommendation functions return in recommender.impressions.",
        c"On, every product a JSON response shows is logged with the response's request_id, context, user and position; clicks tracked with that request_id then count in recommender.recommendation_performance. A no-op with a NOTICE on a standby or in a read-only transaction.";
    ATTRIBUTION_DAYS: int = 7; c"recommender.attribution_days", Userset, [1, 365];
        c"A purchase of a clicked product by the same user within this many days counts as a conversion of the click.",
        c"Read by the recommender.recommendation_performance view when it is queried.";
}

/// `recommender.worker_databases` is the one setting outside the table: it can only be defined
/// while shared_preload_libraries is processed (see `init`).
static WORKER_DATABASES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// `recommender.workers_per_database`, defined (like worker_databases) only under
/// shared_preload_libraries.
static WORKERS_PER_DATABASE: GucSetting<i32> = GucSetting::<i32>::new(1);
/// The largest `recommender.workers_per_database`.
pub const MAX_WORKERS_PER_DATABASE: usize = 8;

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
    define_table();
    // A server-start setting can only be defined while shared_preload_libraries is processed;
    // loaded later (no worker possible), the library leaves it undefined.
    // SAFETY: a plain flag of the postmaster, read in _PG_init.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        GucRegistry::define_string_guc(
            c"recommender.worker_databases",
            c"Comma-separated databases in which a background worker drains recommender.embedding_queue.",
            c"Empty starts no worker. Read at server start, and only when recommender is in shared_preload_libraries: one worker per database.",
            &WORKER_DATABASES,
            GucContext::Postmaster,
            GucFlags::default(),
        );
        GucRegistry::define_int_guc(
            c"recommender.workers_per_database",
            c"Queue workers per database in recommender.worker_databases.",
            c"Each drains the embedding queue and the homepage queue; they split the work (SKIP LOCKED), so bulk embedding and precompute use that many cores. Read at server start.",
            &WORKERS_PER_DATABASE,
            1,
            MAX_WORKERS_PER_DATABASE as i32,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
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

/// `recommender.model_dir`, or `<sharedir>/recommender/models` when empty.
pub fn model_dir() -> String {
    string_setting(&MODEL_DIR).unwrap_or_else(|| format!("{}/recommender/models", share_dir()))
}

/// `recommender.onnxruntime_library`, or `$libdir/recommender/<ORT_LIBRARY_FILE>` when empty.
pub fn onnxruntime_library() -> String {
    string_setting(&ONNXRUNTIME_LIBRARY)
        .unwrap_or_else(|| format!("{}/recommender/{ORT_LIBRARY_FILE}", pkglib_dir()))
}

/// `recommender.enable_checksums`.
pub fn enable_checksums() -> bool {
    ENABLE_CHECKSUMS.get()
}

/// `recommender.embed_batch_size`.
pub fn embed_batch_size() -> usize {
    EMBED_BATCH_SIZE.get().max(1) as usize
}

/// `recommender.enable_sync_embedding`.
pub fn enable_sync_embedding() -> bool {
    ENABLE_SYNC_EMBEDDING.get()
}

/// `recommender.worker_databases`, split (empty: no worker).
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

/// `recommender.workers_per_database` (1 when the library is not preloaded).
pub fn workers_per_database() -> usize {
    (WORKERS_PER_DATABASE.get().max(1) as usize).min(MAX_WORKERS_PER_DATABASE)
}

/// `recommender.worker_naptime`. (embedding_mode, queue_batch_size,
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

/// `recommender.cross_encoder_dir`, or `<model_dir>/cross-encoder` when empty.
pub fn cross_encoder_dir() -> String {
    string_setting(&CROSS_ENCODER_DIR).unwrap_or_else(|| format!("{}/cross-encoder", model_dir()))
}

/// Stage weights α, β, γ of every context but homepage().
pub fn weights() -> recommender_core::scoring::Weights {
    recommender_core::scoring::Weights {
        alpha: WEIGHT_CONTENT.get(),
        beta: WEIGHT_COLLABORATIVE.get(),
        gamma: WEIGHT_POPULARITY.get(),
    }
}

/// homepage()'s own stage weights α, β, γ.
pub fn homepage_weights() -> recommender_core::scoring::Weights {
    recommender_core::scoring::Weights {
        alpha: HOMEPAGE_WEIGHT_CONTENT.get(),
        beta: HOMEPAGE_WEIGHT_COLLABORATIVE.get(),
        gamma: HOMEPAGE_WEIGHT_POPULARITY.get(),
    }
}

/// The repeat share of homepage's collaborative signal.
pub fn repeat_share() -> f64 {
    REPEAT_SHARE.get()
}

/// Business rules.
pub fn rules() -> recommender_core::scoring::Rules {
    recommender_core::scoring::Rules {
        max_per_category: MAX_PER_CATEGORY.get().max(1) as usize,
        new_arrival_days: NEW_ARRIVAL_DAYS.get() as f64,
        new_arrival_boost: NEW_ARRIVAL_BOOST.get(),
        allow_purchased: ENABLE_REPURCHASE.get(),
    }
}

/// Candidate counts (content, collaborative).
pub fn candidate_counts() -> (usize, usize) {
    (
        CONTENT_CANDIDATES.get().max(0) as usize,
        COLLABORATIVE_CANDIDATES.get().max(0) as usize,
    )
}

/// Seconds a user's collaborative candidates are reused. They follow the user's
/// own interactions exactly (the profile key) but other users' new interactions only after this.
pub fn collaborative_cache_seconds() -> i32 {
    COLLABORATIVE_CACHE_SECONDS.get().max(0)
}

/// How long a profile is updated incrementally before a rebuild from all interactions.
pub fn profile_rebuild_seconds() -> i32 {
    PROFILE_REBUILD_SECONDS.get().max(0)
}

/// Rerank size (0 when enable_rerank = off) and blend weight λ.
pub fn rerank() -> (usize, f64) {
    let n = if ENABLE_RERANK.get() {
        RERANK_TOP_N.get().max(0) as usize
    } else {
        0
    };
    (n, RERANK_WEIGHT.get())
}

/// Intra-op threads of a bulk embedding call's session.
pub fn embedding_threads() -> usize {
    EMBEDDING_THREADS.get().max(1) as usize
}

/// Intra-op threads of the cross-encoder's session.
pub fn rerank_threads() -> usize {
    RERANK_THREADS.get().max(1) as usize
}

/// Helpers one bulk embedding call may start.
pub fn embedding_workers() -> usize {
    EMBEDDING_WORKERS.get().max(0) as usize
}

/// Entries of the backend's cross-encoder score cache (0: no cache).
pub fn rerank_cache_size() -> usize {
    RERANK_CACHE_SIZE.get().max(0) as usize
}

/// How long shared cross-encoder scores are kept (0: not shared).
pub fn rerank_share_seconds() -> i32 {
    RERANK_SHARE_SECONDS.get().max(0)
}

/// The settings that decide a homepage besides the data: its candidates, their scores, the
/// pairs it reranks. The queue worker computes with the database's and the server's values, so a
/// call whose value of one differs from its session's start (SET, SET LOCAL, set_config, a
/// function's SET clause: an A/B arm, `evaluate()`, `tune()`) gets no rerank budget.
pub const PAGE_SETTINGS: &[&CStr] = &[
    c"recommender.as_of",
    c"recommender.model_dir",
    c"recommender.cross_encoder_dir",
    c"recommender.weight_content",
    c"recommender.weight_collaborative",
    c"recommender.weight_popularity",
    c"recommender.homepage_weight_content",
    c"recommender.homepage_weight_collaborative",
    c"recommender.homepage_weight_popularity",
    c"recommender.repeat_share",
    c"recommender.content_candidates",
    c"recommender.collaborative_candidates",
    c"recommender.item_model_recency",
    c"recommender.rerank_top_n",
    c"recommender.rerank_weight",
    c"recommender.enable_rerank",
    c"recommender.max_per_category",
    c"recommender.new_arrival_days",
    c"recommender.new_arrival_boost",
    c"recommender.enable_repurchase",
    c"recommender.popularity_window_days",
    c"recommender.decay_days",
];

/// Whether one of `PAGE_SETTINGS` has another value than at the session's start.
pub fn page_settings_changed() -> bool {
    let text = |p: *const std::ffi::c_char| {
        // SAFETY: NULL or a NUL-terminated string Postgres owns, copied at once (both functions
        // format numbers into a static buffer of their own).
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_owned())
    };
    PAGE_SETTINGS.iter().any(|name| {
        // SAFETY: lookups of a defined setting by name; missing_ok, no privilege restriction.
        let now = text(unsafe { pgrx::pg_sys::GetConfigOption(name.as_ptr(), true, false) });
        let reset = text(unsafe { pgrx::pg_sys::GetConfigOptionResetString(name.as_ptr()) });
        now != reset
    })
}

/// recommender.rerank_budget (None: no limit).
pub fn rerank_budget() -> Option<std::time::Duration> {
    let ms = RERANK_BUDGET.get();
    (ms > 0).then(|| std::time::Duration::from_millis(ms as u64))
}

/// recommender.share_popularity: whether the popularity sums come from the shared cache.
pub fn share_popularity() -> bool {
    SHARE_POPULARITY.get()
}

/// recommender.item_model_recency: 0, or the rank at which a product of the user's history
/// counts 1/e in the item model's sum (`recommender_core::item_model::recency_weight`).
pub fn item_model_recency() -> u32 {
    ITEM_MODEL_RECENCY.get().max(0) as u32
}

/// Popularity window and decay constant, in days.
pub fn windows() -> (i32, f64) {
    (POPULARITY_WINDOW_DAYS.get(), DECAY_DAYS.get())
}

#[cfg(any(test, feature = "pg_test"))]
mod tests;
