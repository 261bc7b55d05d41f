//! The recommendation pipeline, run inside one SQL call:
//! 1. candidates (`candidates/`: one file per source: content, repeat, similar users,
//!    co-purchase, popularity),
//! 2. hybrid score, 3. rerank of the top N (`rerank`: the cross-encoder, or the bi-encoder when
//!    none is installed), 4. business rules with refill (`stages`, over `recommender_core::scoring`),
//!
//! for each context (`contexts/`: home page, product page, cart, frequently bought together, cold
//! start). `profile` keeps users' preference vectors, `details` reads what a row (`rec`) shows,
//! `db` and `plans` are the SPI helpers every statement goes through, `give_way` the
//! subtransaction that keeps a cache write from waiting for another transaction.
mod candidates;
mod contexts;
mod db;
mod details;
pub(crate) mod give_way;
mod plans;
pub mod profile;
pub mod rec;
pub mod rerank;
mod stages;

pub use contexts::cart::{cart, user_cart};
pub use contexts::fbt::frequently_bought_together;
pub use contexts::homepage::homepage;
pub use contexts::similar::similar;
pub use plans::install_hook;
pub use rec::Rec;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
