//! Pure Rust: no `pgrx` import anywhere below this module, so `cargo test --lib core` runs
//! without Postgres.
pub mod batch;
pub mod limits;
pub mod pooling;
pub mod scoring;
pub mod text;
