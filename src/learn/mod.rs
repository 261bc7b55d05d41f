//! Models learned from the store's own interactions, built inside the database by maintenance
//! calls (owner or superuser; schedulable with pg_cron) and read by the pipeline's sources.
//! - `item_model`: EASE item-to-item weights (`recommender_core::item_model`) into
//!   `recommender.item_model`, the homepage's `item_model` source.
pub mod item_model;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
