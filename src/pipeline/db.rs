//! The SPI helpers of the read path: every statement goes through a kept plan (`plans`), and
//! none of them assigns a transaction id, so all of them run on a hot standby.
//!
//! Statements read the clock as `(SELECT recommender.clock())` and cast a query vector as
//! `(SELECT recommender._vector($1::real[]))`: an InitPlan, evaluated once per statement. Written
//! bare, `recommender.clock()` is inlined and, in a filter or a select list, reads (and under a
//! replayed clock parses) `recommender.as_of` once per row; under a generic plan the cast would
//! convert the 384 floats once per row. Together that was ~2 ms of a 13 ms homepage call.
use pgrx::prelude::*;

use super::plans;
use crate::error::Result;

/// Whether this call may keep what it computed in the caches (profile, collaborative candidates,
/// rerank query embedding, popularity): not on a hot standby and not in a read-only transaction.
/// Otherwise every call computes afresh and writes nothing.
pub fn can_write() -> bool {
    // SAFETY: reads of backend-global state, inside a transaction.
    unsafe { !pg_sys::RecoveryInProgress() && !pg_sys::XactReadOnly }
}

/// The first column of the first row, None when it is NULL or there is no row; read-only.
/// (pgrx's `Spi::get_one*` go through `connect_mut`, which assigns a transaction id: an error on
/// a hot standby.)
pub(crate) fn one<T: FromDatum + IntoDatum>(
    sql: &'static str,
    args: &[pgrx::datum::DatumWithOid],
) -> Result<Option<T>> {
    Ok(Spi::connect(|c| {
        let t = plans::select(c, sql, Some(1), args)?;
        if t.is_empty() {
            return Ok(None);
        }
        t.first().get_one::<T>()
    })?)
}

/// Rows of (product, score).
pub(crate) fn pairs(
    sql: &'static str,
    args: &[pgrx::datum::DatumWithOid],
) -> Result<Vec<(i64, f64)>> {
    Spi::connect(|c| {
        let t = plans::select(c, sql, None, args)?;
        let mut v = Vec::new();
        for r in t {
            v.push((
                r.get::<i64>(1)?.unwrap_or(0),
                r.get::<f64>(2)?.unwrap_or(0.0),
            ));
        }
        Ok(v)
    })
}

/// The first column of every row, as text.
pub(crate) fn pairs_text(
    sql: &'static str,
    args: &[pgrx::datum::DatumWithOid],
) -> Result<Vec<String>> {
    Spi::connect(|c| {
        let t = plans::select(c, sql, None, args)?;
        let mut v = Vec::new();
        for r in t {
            v.extend(r.get::<String>(1)?);
        }
        Ok(v)
    })
}
