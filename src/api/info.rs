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
