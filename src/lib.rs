//! `recommender`: an e-commerce recommendation pipeline inside PostgreSQL.
//!
//! This file only wires the pieces together: module magic, `_PG_init` (GUCs) and the SQL units.
//! - `recommender_core` (crates/core): pure Rust, no pgrx: text template, pooling, scoring and
//!   rules, limits. Unit-tested without Postgres.
//! - `model`: per-backend ONNX Runtime sessions, loaded lazily on first use.
//! - `api`: the `#[pg_extern]` entry points, thin.
//! - `pipeline`: the recommendation stages over SPI.
//! - `learn`: models built from the store's interactions (the item model).
//! - `worker`: the queue background worker, and waking it when work is queued.
use pgrx::prelude::*;

pub mod api;
pub mod error;
pub mod gucs;
pub mod learn;
pub mod model;
pub mod pipeline;
pub mod worker;

::pgrx::pg_module_magic!(name, version);

// The SQL, one unit per topic (sql/<unit>.sql), in the order each needs the one before: a unit's
// LANGUAGE sql functions are checked against the objects they name when they are created.
// Released scripts live in sql/install and sql/upgrade and are never edited.
extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!(
    "../sql/catalogue.sql",
    name = "catalogue",
    requires = [
        api::catalog::product_text,
        api::catalog::text_hash,
        api::catalog::reembed,
        api::sql_support::setting
    ]
);
extension_sql_file!(
    "../sql/embedding.sql",
    name = "embedding",
    requires = [
        "catalogue",
        api::sql_support::max_array,
        api::embed::embed_one,
        api::embed::embed_many,
        api::catalog::reembed,
        api::bulk::start_embedding_helpers,
        api::bulk::wait_embedding_helpers
    ]
);
extension_sql_file!(
    "../sql/queue.sql",
    name = "queue",
    requires = [
        "embedding",
        api::queue::_wake_queue_workers,
        api::catalog::reembed,
        api::sql_support::setting,
        api::sql_support::max_array
    ]
);
extension_sql_file!("../sql/sync.sql", name = "sync", requires = ["queue"]);
extension_sql_file!(
    "../sql/catalogue_views.sql",
    name = "catalogue_views",
    requires = ["sync"]
);
extension_sql_file!(
    "../sql/interactions.sql",
    name = "interactions",
    requires = ["catalogue_views"]
);
extension_sql_file!(
    "../sql/tracking.sql",
    name = "tracking",
    requires = ["interactions"]
);
extension_sql_file!(
    "../sql/json.sql",
    name = "json",
    requires = [
        "tracking",
        api::sql_support::setting,
        api::recommend::homepage,
        api::recommend::cart_items,
        api::recommend::cart_user,
        api::recommend::frequently_bought_together,
        api::similar::similar_products
    ]
);
extension_sql_file!(
    "../sql/impressions.sql",
    name = "impressions",
    requires = [
        "json",
        api::sql_support::setting,
        api::sql_support::max_array
    ]
);
extension_sql_file!(
    "../sql/email.sql",
    name = "email",
    requires = ["impressions"]
);
extension_sql_file!(
    "../sql/item_model.sql",
    name = "item_model",
    requires = ["email", api::learn::_build_item_model]
);
extension_sql_file!(
    "../sql/precompute.sql",
    name = "precompute",
    requires = [
        "item_model",
        api::recommend::homepage,
        api::sql_support::setting,
        api::sql_support::max_array
    ]
);
extension_sql_file!(
    "../sql/evaluate.sql",
    name = "evaluate",
    requires = [
        "precompute",
        "item_model",
        api::recommend::homepage,
        api::learn::_build_item_model,
        api::sql_support::setting
    ]
);
// Function settings and privileges, over everything above.
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// Registers the GUCs and, under shared_preload_libraries, the queue workers. Loads no model:
/// `_PG_init` may run in the postmaster, and ONNX Runtime threads do not survive `fork`.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    pipeline::install_hook();
    // the request table before the wake table: wake's startup hook marks both attached
    worker::requests::init();
    worker::wake::init();
    worker::register();
}

#[cfg(any(test, feature = "pg_test"))]
pub mod testing;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
