//! Popularity: summed positive interaction weights over `recommender.popularity_window_days`
//! before the clock (`recommender.product_daily`), as candidates (cold start) and as the
//! popularity signal of any candidate (stage 2).
use std::collections::HashMap;

use pgrx::prelude::*;

use crate::error::Result;
use crate::gucs;
use crate::pipeline::db::{can_write, pairs};

/// The most popular products over the window before the clock. Ranking every product of the
/// window costs ~50 ms on Complete Journey, so the top 1,000 are cached per (clock day, window)
/// for POPULAR_TTL; callers that may not write (STABLE functions) read a fresh cache or compute,
/// and so does every caller on a standby or in a read-only transaction.
pub(crate) fn top(want: usize, can_store: bool) -> Result<Vec<(i64, f64)>> {
    const CACHED: usize = 1000;
    let (window, _) = gucs::windows();
    // SAFETY: backend-global state. The cache is UNLOGGED, so a standby cannot read it.
    let in_recovery = unsafe { pg_sys::RecoveryInProgress() };
    if want <= CACHED && !in_recovery {
        let hit = pairs(
            "SELECT product_id, score FROM recommender.popular_cache
              WHERE clock_day = recommender.clock()::date AND window_days = $1
                AND computed_at > clock_timestamp() - interval '5 minutes'
              ORDER BY score DESC, product_id LIMIT $2",
            &[window.into(), (want as i64).into()],
        )?;
        if !hit.is_empty() {
            return Ok(hit);
        }
    }
    let top = pairs(
        "SELECT d.product_id, sum(d.weight)::float8
           FROM recommender.product_daily d
          WHERE d.day > (recommender.clock() - make_interval(days => $1))::date
            AND d.day <= recommender.clock()::date
          GROUP BY 1 HAVING sum(d.weight) > 0
          ORDER BY 2 DESC, 1 LIMIT $2",
        &[window.into(), (want.max(CACHED) as i64).into()],
    )?;
    if can_store && can_write() && !top.is_empty() {
        let ids: Vec<i64> = top.iter().map(|t| t.0).collect();
        let scores: Vec<f64> = top.iter().map(|t| t.1).collect();
        Spi::run_with_args(
            "DELETE FROM recommender.popular_cache
              WHERE (clock_day = recommender.clock()::date AND window_days = $1)
                 OR computed_at < clock_timestamp() - interval '1 day'",
            &[window.into()],
        )?;
        Spi::run_with_args(
            "INSERT INTO recommender.popular_cache (clock_day, window_days, product_id, score, computed_at)
             SELECT recommender.clock()::date, $1, u.id, u.s, clock_timestamp() FROM unnest($2::bigint[], $3::float8[]) u(id, s)
             ON CONFLICT DO NOTHING",
            &[window.into(), ids.into(), scores.into()],
        )?;
    }
    Ok(top.into_iter().take(want).collect())
}

/// Popularity of candidates over the window before the clock.
pub(crate) fn of(ids: &[i64]) -> Result<HashMap<i64, f64>> {
    let (window, _) = gucs::windows();
    Ok(pairs(
        "SELECT product_id, sum(weight)::float8 FROM recommender.product_daily
          WHERE product_id = ANY($1)
            AND day > (recommender.clock() - make_interval(days => $2))::date AND day <= recommender.clock()::date
          GROUP BY 1",
        &[ids.to_vec().into(), window.into()],
    )?
    .into_iter()
    .collect())
}
