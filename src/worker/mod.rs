//! The queue background worker: one per database in `recommender.worker_databases`, registered
//! only when the library is in `shared_preload_libraries`. It embeds queued products and, from
//! 0.12.0, computes queued users' homepages ahead (`recommender.precompute_homepage`) and prunes
//! the shared cross-encoder scores.
//!
//! The postmaster only registers the workers; each one is a forked process that connects to its
//! database and loads the encoder there on first use (ONNX Runtime never runs in the postmaster).
//! The work itself is SQL, `recommender._process_queue_batch()`, one transaction per batch, the
//! same code `CALL recommender.process_queue()` runs. A failing batch is recorded on its queue rows
//! by that function and the loop goes on; an unexpected error ends the process, and the postmaster
//! starts it again after `RESTART`. A commit that queued work wakes the database's workers at
//! once (`wake`); `worker_naptime` is how often they look without being woken.
use std::time::Duration;

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::prelude::*;

use crate::gucs;

pub mod helpers;
pub mod requests;
pub mod wake;

const RESTART: Duration = Duration::from_secs(10);

/// Sets this worker session's `search_path` to `pg_catalog, pg_temp`, over any the database or
/// role sets (`ALTER DATABASE … SET search_path` applies to a worker's session too, and the queue
/// worker is a superuser). Its own statements name everything with its schema and the functions
/// they call pin their path: this is defence in depth. Call once, after connecting.
fn pin_search_path() {
    // SAFETY: a built-in setting and a constant value, set once for the session after it
    // connected, outside any transaction's GUC nesting.
    unsafe {
        pg_sys::SetConfigOption(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        )
    };
}

/// Called from `_PG_init`: registers `recommender.workers_per_database` workers per configured
/// database, only while shared_preload_libraries is being processed (in the postmaster). The
/// argument is the database's index times `gucs::MAX_WORKERS_PER_DATABASE` plus the worker's number.
pub fn register() {
    // SAFETY: a plain flag of the postmaster, read in _PG_init.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    let per_db = gucs::workers_per_database();
    for (i, db) in gucs::worker_databases().iter().enumerate() {
        for n in 0..per_db {
            let name = if n == 0 {
                format!("recommender queue worker {db}")
            } else {
                format!("recommender queue worker {db} ({})", n + 1)
            };
            BackgroundWorkerBuilder::new(&name)
                .set_type("recommender queue worker")
                .set_library("recommender")
                .set_function("recommender_queue_worker_main")
                .set_argument(Some(pg_sys::Datum::from(
                    i * gucs::MAX_WORKERS_PER_DATABASE + n,
                )))
                .enable_spi_access()
                // a standby cannot write embeddings: the worker starts once the server is a primary
                .set_start_time(BgWorkerStartTime::RecoveryFinished)
                .set_restart_time(Some(RESTART))
                .load();
        }
    }
}

/// Whether the function `$1` (a signature) is the installed extension's own: a member of the
/// extension `recommender`, which only a superuser can create. The worker is a superuser, so it
/// calls nothing else: in a listed database without the extension (or after `DROP EXTENSION`),
/// whoever may create a schema there could otherwise plant `recommender._process_queue_batch`
/// and have it run as the superuser (found in review, fixed in 0.20.0). Checked in every
/// transaction that calls one, just before the call.
const EXTENSION_FUNCTION: &str = "SELECT EXISTS (
    SELECT FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND d.objid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure($1)
       AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.deptype OPERATOR(pg_catalog.=) 'e' AND e.extname OPERATOR(pg_catalog.=) 'recommender')";

/// Whether `signature` is the extension's own function (`EXTENSION_FUNCTION`), in the current
/// transaction.
pub(crate) fn extension_function(signature: &str) -> Result<bool, pgrx::spi::Error> {
    Ok(Spi::get_one_with_args::<bool>(EXTENSION_FUNCTION, &[signature.into()])?.unwrap_or(false))
}

/// The queue function (the extension at >= 0.3.0).
pub(crate) const QUEUE_BATCH: &str = "recommender._process_queue_batch(integer)";

/// The homepage queue's functions (the extension at >= 0.12.0).
const DEQUEUE: &str = "recommender._dequeue_homepages(integer)";
const PRECOMPUTE: &str = "recommender._precompute_homepages(text[])";
const PRUNE: &str = "recommender.prune_rerank_scores()";
/// The queue's `warm_start` column came with it (0.22.0).
const WARM_START: &str = "recommender.queue_homepages(interval)";

/// One batch of the embedding queue: (processed, failed).
const EMBED_BATCH: &str =
    "SELECT processed, failed FROM recommender._process_queue_batch(NULL::pg_catalog.int4)";

/// How often the worker deletes expired shared cross-encoder scores.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Runs `f` in a transaction of its own. An error the batch functions do not record themselves
/// ends the process (the postmaster restarts it).
fn in_transaction<T>(db: &str, f: impl FnOnce() -> Result<T, pgrx::spi::Error>) -> T {
    // Unwind-safe: an error ends the process, so no state is seen after it.
    BackgroundWorker::transaction(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|e| {
        pgrx::error!("recommender: queue worker in database \"{db}\": {e}");
    })
}

/// One batch function's (processed, failed), in a transaction of its own, when `function` is the
/// extension's own (else (0, 0)). The arguments are made inside it (an array datum needs the
/// catalogue).
fn batch(
    db: &str,
    function: &str,
    sql: &str,
    args: impl FnOnce() -> Vec<pgrx::datum::DatumWithOid<'static>>,
) -> (i32, i32) {
    in_transaction(db, || {
        if !extension_function(function)? {
            return Ok((0, 0));
        }
        Spi::connect(|c| {
            let t = c.select(sql, None, &args())?;
            let row = t.first();
            Ok((
                row.get::<i32>(1)?.unwrap_or(0),
                row.get::<i32>(2)?.unwrap_or(0),
            ))
        })
    })
}

/// The homepage of the user queued longest: taken off the queue in one transaction (committed at
/// once, so the user's next track() never waits for the computation), computed in the next.
/// Returns (processed, failed), (0, 0) when the queue is empty. A crash between the two loses
/// only the head start: the user's own call computes the homepage.
fn precompute_one(db: &str) -> (i32, i32) {
    let users = in_transaction(db, || {
        if !extension_function(DEQUEUE)? {
            return Ok(None);
        }
        Spi::get_one::<Vec<String>>("SELECT recommender._dequeue_homepages(1)")
    })
    .unwrap_or_default();
    if users.is_empty() {
        return (0, 0);
    }
    batch(
        db,
        PRECOMPUTE,
        "SELECT processed, failed FROM recommender._precompute_homepages($1)",
        || vec![users.into()],
    )
}

/// Moves the homepages calls asked for (`requests`) into `recommender.homepage_queue`, where
/// they are taken as users an interaction queued (a user a warm start queued moves up), in key
/// order. Never waits for another transaction's row (`give_way`): a batch that meets one is
/// dropped whole, as are requests that reach a database without the queue's `warm_start`
/// (0.22.0); those users' next calls load the model or ask again (`pipeline::rerank`).
fn queue_requests(db: &str) {
    let users = requests::take();
    if users.is_empty() {
        return;
    }
    in_transaction(db, || {
        if !extension_function(WARM_START)? {
            return Ok(());
        }
        crate::pipeline::give_way::store(|| {
            Spi::run_with_args(
                "INSERT INTO recommender.homepage_queue (user_id)
                 SELECT u FROM unnest($1::text[]) u ORDER BY u
                 ON CONFLICT (user_id) DO UPDATE SET warm_start = false, queued_at = now()
                  WHERE recommender.homepage_queue.warm_start",
                &[users.into()],
            )
        })?;
        Ok(())
    });
}

/// Set by pgrx's SIGTERM handler (next to the flag `wait_latch` consumes), never reset.
fn shutdown_requested() -> bool {
    // SAFETY: a sig_atomic_t written only by the signal handler.
    unsafe { std::ptr::read_volatile(&raw const pg_sys::ShutdownRequestPending) != 0 }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn recommender_queue_worker_main(arg: pg_sys::Datum) {
    let index = arg.value() / gucs::MAX_WORKERS_PER_DATABASE;
    // The first worker of a database also prunes the shared scores; the others only drain.
    let first = arg.value().is_multiple_of(gucs::MAX_WORKERS_PER_DATABASE);
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let Some(db) = gucs::worker_databases().get(index).cloned() else {
        return;
    };
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
    pin_search_path();
    wake::enter();
    log!("recommender: queue worker started in database \"{db}\"");
    let mut said_missing = false;
    let mut last_prune: Option<std::time::Instant> = None;
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
            BackgroundWorker::transaction(|| extension_function(QUEUE_BATCH).ok()).unwrap_or(false);
        if !installed {
            if !said_missing {
                log!("recommender: queue worker: database \"{db}\" has no recommender >= 0.3.0 yet; checking again every naptime");
                said_missing = true;
            }
            continue;
        }
        said_missing = false;
        let precompute =
            BackgroundWorker::transaction(|| extension_function(PRECOMPUTE).ok()).unwrap_or(false);
        // Drain until nothing is due: the embedding queue first, then one queued homepage at a
        // time (the embedding queue is checked again between them). A SIGTERM ends the loop
        // after the transaction in flight.
        loop {
            // checked inside the drain too: a steady stream of interactions keeps it going
            if first && precompute && last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                in_transaction(&db, || {
                    if extension_function(PRUNE)? {
                        Spi::run("SELECT recommender.prune_rerank_scores()")?;
                    }
                    Ok(())
                });
                last_prune = Some(std::time::Instant::now());
            }
            let (processed, failed) = batch(&db, QUEUE_BATCH, EMBED_BATCH, Vec::new);
            if processed + failed == 0 {
                if precompute {
                    queue_requests(&db);
                }
                let (processed, failed) = if precompute {
                    precompute_one(&db)
                } else {
                    (0, 0)
                };
                if processed + failed == 0 {
                    break;
                }
            }
            if shutdown_requested() {
                break;
            }
        }
        if shutdown_requested() {
            break;
        }
    }
    wake::leave();
    log!("recommender: queue worker in database \"{db}\" stopping");
}
