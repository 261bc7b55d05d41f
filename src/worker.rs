//! The embedding-queue background worker: one per database in `recommender.worker_databases`,
//! registered only when the library is in `shared_preload_libraries`.
//!
//! The postmaster only registers the workers; each one is a forked process that connects to its
//! database and loads the encoder there on first use (ONNX Runtime never runs in the postmaster).
//! The work itself is SQL, `recommender._process_queue_batch()`, one transaction per batch, the
//! same code `CALL recommender.process_queue()` runs. A failing batch is recorded on its queue rows
//! by that function and the loop goes on; an unexpected error ends the process, and the postmaster
//! starts it again after `RESTART`.
use std::time::Duration;

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::prelude::*;

use crate::gucs;

const RESTART: Duration = Duration::from_secs(10);

/// Called from `_PG_init`: registers one worker per configured database, only while
/// shared_preload_libraries is being processed (in the postmaster).
pub fn register() {
    // SAFETY: a plain flag of the postmaster, read in _PG_init.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    for (i, db) in gucs::worker_databases().iter().enumerate() {
        BackgroundWorkerBuilder::new(&format!("recommender queue worker {db}"))
            .set_type("recommender queue worker")
            .set_library("recommender")
            .set_function("recommender_queue_worker_main")
            .set_argument(Some(pg_sys::Datum::from(i)))
            .enable_spi_access()
            // a standby cannot write embeddings: the worker starts once the server is a primary
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(Some(RESTART))
            .load();
    }
}

/// Whether this database has the queue function (the extension at >= 0.3.0).
const HAS_QUEUE: &str =
    "SELECT pg_catalog.to_regprocedure('recommender._process_queue_batch(integer)') IS NOT NULL";

/// Set by pgrx's SIGTERM handler (next to the flag `wait_latch` consumes), never reset.
fn shutdown_requested() -> bool {
    // SAFETY: a sig_atomic_t written only by the signal handler.
    unsafe { std::ptr::read_volatile(&raw const pg_sys::ShutdownRequestPending) != 0 }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn recommender_queue_worker_main(arg: pg_sys::Datum) {
    let index = arg.value();
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let Some(db) = gucs::worker_databases().get(index).cloned() else {
        return;
    };
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
    log!("recommender: queue worker started in database \"{db}\"");
    let mut said_missing = false;
    while BackgroundWorker::wait_latch(Some(gucs::worker_naptime())) {
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a background worker to apply a reload.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            log!(
                "recommender: queue worker in database \"{db}\" reloaded its configuration (naptime {} ms)",
                gucs::worker_naptime().as_millis()
            );
        }
        let installed =
            BackgroundWorker::transaction(|| Spi::get_one::<bool>(HAS_QUEUE).ok().flatten())
                .unwrap_or(false);
        if !installed {
            if !said_missing {
                log!("recommender: queue worker: database \"{db}\" has no recommender >= 0.3.0 yet; checking again every naptime");
                said_missing = true;
            }
            continue;
        }
        said_missing = false;
        // Drain until a batch finds nothing due; a SIGTERM ends the loop after the batch in flight.
        loop {
            let (processed, failed) = BackgroundWorker::transaction(|| {
                Spi::connect(|c| {
                    let t = c.select(
                        "SELECT processed, failed FROM recommender._process_queue_batch(NULL)",
                        None,
                        &[],
                    )?;
                    let row = t.first();
                    Ok::<_, pgrx::spi::Error>((
                        row.get::<i32>(1)?.unwrap_or(0),
                        row.get::<i32>(2)?.unwrap_or(0),
                    ))
                })
            })
            .unwrap_or_else(|e| {
                pgrx::error!("recommender: queue worker in database \"{db}\": {e}");
            });
            if processed + failed == 0 || shutdown_requested() {
                break;
            }
        }
        if shutdown_requested() {
            break;
        }
    }
    log!("recommender: queue worker in database \"{db}\" stopping");
}
