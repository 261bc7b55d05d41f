//! `recommender.model_info()`: what this backend has loaded, for operators and tests.
use pgrx::prelude::*;
use std::sync::atomic::Ordering;

use crate::error::OrRaise;
use crate::{gucs, model};

/// The encoder as seen by this backend: configured paths, whether it is loaded, whether its
/// files passed the manifest checksum, load time, and counters of texts embedded and model runs
/// since the backend started. VOLATILE: it reports backend state.
#[pg_extern(volatile)]
fn model_info() -> TableIterator<
    'static,
    (
        name!(role, String),
        name!(model_dir, String),
        name!(onnxruntime_library, String),
        name!(loaded, bool),
        name!(name, Option<String>),
        name!(source, Option<String>),
        name!(model_file, Option<String>),
        name!(checksum_verified, bool),
        name!(load_ms, Option<f64>),
        name!(texts_embedded, i64),
        name!(model_runs, i64),
        name!(loads, i64),
    ),
> {
    let e = model::encoder_info();
    TableIterator::once((
        "encoder".to_string(),
        gucs::model_dir(),
        model::runtime::loaded_library()
            .map(str::to_string)
            .unwrap_or_else(gucs::onnxruntime_library),
        e.loaded,
        e.name,
        e.source,
        e.path,
        e.verified,
        e.load_ms,
        model::TEXTS_EMBEDDED.load(Ordering::Relaxed) as i64,
        model::ENCODER_RUNS.load(Ordering::Relaxed) as i64,
        model::ENCODER_LOADS.load(Ordering::Relaxed) as i64,
    ))
}

/// Loads the encoder in this backend now, so the first real call pays no load time (e.g. from a
/// connection pool's connect hook). Returns the load time in ms (0 when already loaded).
#[pg_extern(volatile)]
fn preload_models() -> f64 {
    let before = model::ENCODER_LOADS.load(Ordering::Relaxed);
    model::preload().or_raise();
    if model::ENCODER_LOADS.load(Ordering::Relaxed) > before {
        model::encoder_info().load_ms.unwrap_or(0.0)
    } else {
        0.0
    }
}

/// Makes this backend ready to answer at full speed: loads the encoder and, when one is
/// installed, the cross-encoder, and runs each once on a short text (the first run of a session
/// allocates its buffers). For a pooler's connect hook: `SELECT * FROM recommender.warmup()`.
/// One row per model: loaded or not, and the ms this call spent on it (small when it already
/// was). VOLATILE: it changes backend state.
#[pg_extern(volatile)]
fn warmup() -> TableIterator<
    'static,
    (
        name!(model, String),
        name!(loaded, bool),
        name!(warmup_ms, f64),
    ),
> {
    let t = std::time::Instant::now();
    model::embed(&["warmup"]).or_raise();
    let encoder_ms = t.elapsed().as_secs_f64() * 1e3;
    let cross = if model::cross_encoder_installed() {
        let t = std::time::Instant::now();
        model::warm_cross_encoder().or_raise();
        (true, t.elapsed().as_secs_f64() * 1e3)
    } else {
        (false, 0.0)
    };
    TableIterator::new(vec![
        ("encoder".to_string(), true, encoder_ms),
        ("cross-encoder".to_string(), cross.0, cross.1),
    ])
}
