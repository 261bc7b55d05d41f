//! Popularity: summed interaction weights over `recommender.popularity_window_days` before the
//! clock (`recommender.product_daily`), as candidates (bestsellers, cold start) and as the
//! popularity signal of any candidate (stage 2).
//!
//! Summing the window for every product costs ~50–100 ms on Complete Journey, so the sums are
//! kept per (clock day, window) for five minutes in the UNLOGGED `recommender.popular_cache`, at
//! most [`CACHED`] products (the largest sums). Each backend holds a copy of those rows
//! ([`Snapshot`]): a call checks with one index probe that the table still holds the rows it
//! copied (a rolled-back or newer computation replaces them), then reads the bestsellers and the
//! candidates' scores from memory. Callers that may not write (STABLE functions, a standby, a
//! read-only transaction) use a fresh cache when there is one and otherwise sum product_daily, as
//! do callers whose store gave way to another transaction replacing the same rows (0.26.0).
//! With `recommender.share_popularity` off a session keeps its own sums, once per transaction,
//! and never touches the shared cache (`evaluate()` and `tune()`: 0.13.0).
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::prelude::*;

use crate::error::Result;
use crate::gucs;
use crate::pipeline::db::{can_write, one, pairs};
use crate::pipeline::give_way;

/// Most products the cache keeps per (clock day, window).
const CACHED: i64 = 50_000;

/// This backend's copy of the cache rows of one (clock day, window).
struct Snapshot {
    /// `computed_at` (µs since the epoch) of the first row in key order: a computation replaces
    /// every row, so an equal value means the same rows.
    key: i64,
    /// Every cached product by score, largest first.
    ranked: Vec<(i64, f64)>,
    score: HashMap<i64, f64>,
    /// Fewer than CACHED products: every product with interactions in the window is cached, so
    /// one that is missing has none.
    complete: bool,
}

thread_local! {
    static SNAPSHOT: RefCell<Option<Rc<Snapshot>>> = const { RefCell::new(None) };
    /// With `recommender.share_popularity` off: this session's own sums, for the transaction,
    /// clock day and window in [`Private`].
    static PRIVATE: RefCell<Option<(Private, Rc<Snapshot>)>> = const { RefCell::new(None) };
}

/// What a private snapshot was computed for: the transaction's start (µs), the clock day and
/// the window.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Private {
    transaction: i64,
    day: i32,
    window: i32,
}

/// The cache's key for the clock day and window, if it is fresh: the first row's, one index
/// probe (filtering every row on freshness would read all of a stale cache's rows: 10 ms).
const PROBE: &str = "SELECT (extract(epoch FROM computed_at) * 1000000)::int8
   FROM (SELECT computed_at FROM recommender.popular_cache
          WHERE clock_day = (SELECT recommender.clock()::date) AND window_days = $1
          ORDER BY product_id LIMIT 1) first
  WHERE computed_at > (SELECT clock_timestamp() - interval '5 minutes')";

/// Summed weights over the window before the clock, largest first (the cache's computation).
const RANKED: &str = "SELECT d.product_id, sum(d.weight)::float8
   FROM recommender.product_daily d
  WHERE d.day > (SELECT (recommender.clock() - make_interval(days => $1))::date)
    AND d.day <= (SELECT recommender.clock()::date)
  GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $2";

/// The fresh cache's key, None when there is no fresh cache.
fn probe(window: i32) -> Result<Option<i64>> {
    one::<i64>(PROBE, &[window.into()])
}

/// The cache rows of the clock day and window as this backend holds them, copied again when the
/// table's rows changed, and computed and stored first when the cache is missing or stale and
/// the caller may store it. None: no fresh cache that this caller may read or make.
fn snapshot(window: i32, can_store: bool) -> Result<Option<Rc<Snapshot>>> {
    // SAFETY: backend-global state. The cache is UNLOGGED, so a standby cannot read it.
    if unsafe { pg_sys::RecoveryInProgress() } {
        return Ok(None);
    }
    if !gucs::share_popularity() {
        return private(window).map(Some);
    }
    let mut key = probe(window)?;
    if key.is_none() && can_store && can_write() && give_way::store(|| store(window))? {
        key = probe(window)?;
    }
    let Some(key) = key else { return Ok(None) };
    if let Some(s) = SNAPSHOT
        .with(|s| s.borrow().clone())
        .filter(|s| s.key == key)
    {
        return Ok(Some(s));
    }
    let ranked = pairs(
        "SELECT product_id, score FROM recommender.popular_cache
          WHERE clock_day = (SELECT recommender.clock()::date) AND window_days = $1
          ORDER BY score DESC, product_id",
        &[window.into()],
    )?;
    let s = Rc::new(Snapshot {
        key,
        complete: (ranked.len() as i64) < CACHED,
        score: ranked.iter().copied().collect(),
        ranked,
    });
    SNAPSHOT.with(|c| *c.borrow_mut() = Some(s.clone()));
    Ok(Some(s))
}

/// This session's own sums of the window before the clock, computed once per transaction, clock
/// day and window; the shared cache is neither read nor written.
fn private(window: i32) -> Result<Rc<Snapshot>> {
    let day = one::<i32>("SELECT recommender.clock()::date - date '2000-01-01'", &[])?.unwrap_or(0);
    // SAFETY: reads the current transaction's start time, inside a transaction.
    let transaction = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let want = Private {
        transaction,
        day,
        window,
    };
    if let Some(s) = PRIVATE.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|(k, _)| *k == want)
            .map(|(_, s)| s.clone())
    }) {
        return Ok(s);
    }
    let ranked = pairs(RANKED, &[window.into(), CACHED.into()])?;
    let s = Rc::new(Snapshot {
        key: transaction,
        complete: (ranked.len() as i64) < CACHED,
        score: ranked.iter().copied().collect(),
        ranked,
    });
    PRIVATE.with(|p| *p.borrow_mut() = Some((want, s.clone())));
    Ok(s)
}

/// Replaces the cache rows of the clock day and window (and drops any older than a day). One
/// `computed_at` for the whole computation: it is the snapshot's key. Run through
/// `give_way::store`: rows another transaction is replacing (another caller's open transaction)
/// leave the cache to it, and this call sums product_daily itself.
fn store(window: i32) -> Result<()> {
    Spi::run_with_args(
        "DELETE FROM recommender.popular_cache
          WHERE (clock_day = (SELECT recommender.clock()::date) AND window_days = $1)
             OR computed_at < (SELECT clock_timestamp() - interval '1 day')",
        &[window.into()],
    )?;
    Spi::run_with_args(
        &format!(
            "INSERT INTO recommender.popular_cache (clock_day, window_days, product_id, score, computed_at)
             SELECT (SELECT recommender.clock()::date), $1, r.product_id, r.sum, (SELECT clock_timestamp())
               FROM ({RANKED}) r
             ON CONFLICT DO NOTHING"
        ),
        &[window.into(), CACHED.into()],
    )?;
    Ok(())
}

/// The most popular products over the window before the clock (positive sums only), from the
/// cache when this caller may read or make it.
pub(crate) fn top(want: usize, can_store: bool) -> Result<Vec<(i64, f64)>> {
    let (window, _) = gucs::windows();
    if let Some(s) = snapshot(window, can_store)? {
        if s.complete || want <= s.ranked.len() {
            return Ok(s
                .ranked
                .iter()
                .copied()
                .filter(|p| p.1 > 0.0)
                .take(want)
                .collect());
        }
    }
    Ok(pairs(RANKED, &[window.into(), (want as i64).into()])?
        .into_iter()
        .filter(|p| p.1 > 0.0)
        .collect())
}

/// Popularity of candidates over the window before the clock: from a fresh cache, and from
/// product_daily for what the cache cannot answer.
pub(crate) fn of(ids: &[i64]) -> Result<HashMap<i64, f64>> {
    let (window, _) = gucs::windows();
    let mut out = HashMap::new();
    let mut missing = Vec::new();
    match snapshot(window, false)? {
        Some(s) => {
            for &id in ids {
                match s.score.get(&id) {
                    Some(&v) => {
                        out.insert(id, v);
                    }
                    None if !s.complete => missing.push(id),
                    None => {}
                }
            }
        }
        None => missing = ids.to_vec(),
    }
    if !missing.is_empty() {
        out.extend(pairs(
            "SELECT product_id, sum(weight)::float8 FROM recommender.product_daily
              WHERE product_id = ANY($1)
                AND day > (SELECT (recommender.clock() - make_interval(days => $2))::date)
                AND day <= (SELECT recommender.clock()::date)
              GROUP BY 1",
            &[missing.into(), window.into()],
        )?);
    }
    Ok(out)
}
