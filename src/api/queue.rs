//! The queues' trigger: a statement that adds to `embedding_queue` or `homepage_queue` wakes the
//! database's queue workers when its transaction commits (`worker::wake`).
use pgrx::prelude::*;
use pgrx::AllocatedByPostgres;

/// `AFTER INSERT … FOR EACH STATEMENT` on both queues. Never raises; does nothing without
/// `shared_preload_libraries` (no worker runs then).
#[pg_trigger]
fn _wake_queue_workers<'a>(
    _trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgHeapTupleError> {
    crate::worker::wake::at_commit();
    Ok(None)
}
