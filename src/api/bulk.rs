//! The bulk procedures' helpers (`worker::helpers`): started and awaited by
//! `CALL refresh_embeddings()` and `CALL process_queue()`. Internal, granted like `_reembed`.
use pgrx::prelude::*;
use recommender_core::bulk::Work;

use crate::error::RecError;
use crate::gucs;

/// Starts up to `wanted` helpers (at most `recommender.embedding_workers`) running `kind`'s batches
/// ('refresh': `_refresh_batch(…, batch_size, force, since)`, since the call's start; 'queue':
/// `_process_queue_batch(batch_size)`). Returns how many started: 0 outside a top-level CALL, on
/// a standby, inside a SECURITY DEFINER function, or when max_worker_processes is full (see
/// `worker::helpers::start`). A bad kind or batch size is 22023.
#[pg_extern(volatile, parallel_unsafe, name = "_start_embedding_helpers")]
fn start_embedding_helpers(
    kind: &str,
    batch_size: Option<i32>,
    force: bool,
    since: Option<TimestampWithTimeZone>,
    wanted: i32,
) -> i32 {
    let since = since.map(pg_sys::TimestampTz::from);
    let work = Work::new(kind, batch_size, force, since)
        .unwrap_or_else(|e| RecError::invalid(e.message, e.hint).raise());
    let wanted = usize::try_from(wanted)
        .unwrap_or(0)
        .min(gucs::embedding_workers());
    crate::worker::helpers::start(work, wanted) as i32
}

/// Waits up to `timeout_ms` for this session's helpers to exit (interruptible); true when none is
/// left. The procedures commit between waits, so no snapshot is held while helpers drain.
#[pg_extern(volatile, parallel_unsafe, name = "_wait_embedding_helpers")]
fn wait_embedding_helpers(timeout_ms: i32) -> bool {
    crate::worker::helpers::wait(std::time::Duration::from_millis(timeout_ms.max(0) as u64))
}
