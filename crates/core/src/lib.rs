//! The extension's pure logic: the product text template, pooling and normalisation, hybrid
//! scoring and the business rules, the item-to-item model (EASE), the user profile's running sums, batching, the bulk helpers' job description, the cross-encoder's score cache, the homepages left to the queue worker, and the limits every layer shares. A crate of its
//! own without pgrx, so nothing here can reach Postgres and `cargo test -p recommender-core`
//! runs with no `pg_config` (the extension crate uses it as `recommender_core`).
pub mod batch;
pub mod bulk;
pub mod cache;
pub mod item_model;
pub mod limits;
pub mod pooling;
pub mod profile;
pub mod requests;
pub mod scoring;
pub mod text;
