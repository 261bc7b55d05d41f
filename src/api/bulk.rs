//! The bulk procedures' helpers (`worker::helpers`): started and awaited by
//! `CALL refresh_embeddings()` and `CALL process_queue()`. Internal, granted like `_reembed`.
use pgrx::prelude::*;
use recommender_core::bulk::Work;

use crate::error::RecError;
use crate::gucs;

/// Starts up to `wanted` helpers (at most `recommender.embedding_workers`) running `kind`'s batches
/// ('refresh': `_refresh_batch(…, batch_size, force, since)`, `since_us` the call's start in
/// microseconds since 1970; 'queue': `_process_queue_batch(batch_size)`). Returns how many
/// started: 0 on a standby, inside a SECURITY DEFINER function, or when max_worker_processes is full.
#[pg_extern(volatile, parallel_unsafe, name = "_start_embedding_helpers")]
fn start_embedding_helpers(
    kind: &str,
    batch_size: Option<i32>,
    force: bool,
    since_us: i64,
    wanted: i32,
) -> i32 {
    let work = match kind {
        "refresh" => Work::Refresh {
            batch_size: batch_size.filter(|b| *b > 0).unwrap_or(256),
            force,
            since_us,
        },
        "queue" => Work::Queue {
            batch_size: batch_size.filter(|b| *b > 0),
        },
        _ => RecError::invalid(
            format!("unknown helper job \"{kind}\""),
            "The job is 'refresh' or 'queue'.",
        )
        .raise(),
    };
    let wanted = usize::try_from(wanted)
        .unwrap_or(0)
        .min(gucs::embedding_workers());
    crate::worker::helpers::start(work, wanted) as i32
}

/// Waits until this session's helpers have exited (interruptible).
#[pg_extern(volatile, parallel_unsafe, name = "_wait_embedding_helpers")]
fn wait_embedding_helpers() {
    crate::worker::helpers::wait();
}
