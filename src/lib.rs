//! `recommender`: an e-commerce recommendation pipeline inside PostgreSQL.
//!
//! This file only wires the pieces together: module magic, `_PG_init` (GUCs) and the SQL files.
//! - `core`: pure Rust (no pgrx): text template, pooling, argument rules. Unit-tested without Postgres.
//! - `model`: per-backend ONNX Runtime sessions, loaded lazily on first use.
//! - `api`: the `#[pg_extern]` entry points, thin.
//! - `pipeline`: the recommendation stages over SPI.
//! - `worker`: the embedding-queue background worker.
use pgrx::prelude::*;

pub mod api;
pub mod core;
pub mod error;
pub mod gucs;
pub mod model;
pub mod pipeline;
pub mod worker;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// Registers the GUCs and, under shared_preload_libraries, the queue workers. Loads no model:
/// `_PG_init` may run in the postmaster, and ONNX Runtime threads do not survive `fork`.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    worker::register();
}

#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
