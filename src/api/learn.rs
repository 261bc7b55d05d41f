//! Maintenance entry points that build models from the store's interactions (`crate::learn`).
use pgrx::prelude::*;

use crate::error::OrRaise;
use crate::learn;

/// Rebuilds the item-to-item model (`CALL recommender.build_item_model()` wraps it). Not granted
/// to any role: owner or superuser. Not STRICT: a NULL argument is refused (22023), not ignored.
#[pg_extern(volatile, parallel_unsafe)]
fn _build_item_model(
    items: Option<i32>,
    lambda: Option<f64>,
    neighbors: Option<i32>,
    adoption_days: Option<i32>,
    adoption_lambda: Option<f64>,
    adoption_weight: Option<f64>,
) -> TableIterator<
    'static,
    (
        name!(products, i64),
        name!(customers, i64),
        name!(pairs, i64),
        name!(seconds, f64),
    ),
> {
    use learn::item_model::{build, check};
    let p = check(
        items,
        lambda,
        neighbors,
        adoption_days,
        adoption_lambda,
        adoption_weight,
    )
    .or_raise();
    let b = build(p).or_raise();
    TableIterator::once((b.items, b.customers, b.pairs, b.seconds))
}
