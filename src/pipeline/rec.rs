//! The row every recommendation function returns.
use pgrx::prelude::*;
use recommender_core::scoring::Scored;

/// One output row of every recommendation function.
#[derive(Debug, Clone)]
pub struct Rec {
    pub product_id: i64,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub price: Option<AnyNumeric>,
    pub image_url: Option<String>,
    pub scored: Scored,
    pub reranker: &'static str,
}
