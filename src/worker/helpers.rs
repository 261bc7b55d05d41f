//! Bulk embedding helpers (0.15.0): dynamic background workers that `CALL refresh_embeddings()`
//! and `CALL process_queue()` start, up to `recommender.embedding_workers`, so that one call runs
//! the encoder in several processes (one core each) instead of one. No `shared_preload_libraries`
//! is needed: a running backend registers them, as parallel query does.
//!
//! - A helper connects to the caller's database as the caller's role, so it has exactly the
//!   caller's rights. It first checks that it would load the same models as the caller (a
//!   fingerprint of the settings that choose them); if not, it leaves the work to the caller.
//! - It then runs the caller's batch function until nothing is left, one transaction per batch:
//!   `_refresh_batch(…, skip_locked => true)` or `_process_queue_batch`. Both claim their rows with
//!   SKIP LOCKED, so no two processes embed the same product, and a crash or cancel loses at most
//!   the batches in flight.
//! - The caller waits for its helpers (`wait`) and then sweeps once more without SKIP LOCKED, so a
//!   helper that could not start or stopped early, or a row an application transaction held, is
//!   embedded by the caller: the result is the same as without helpers.
//! - When the caller's transaction aborts (cancel, statement_timeout, an error, its backend being
//!   terminated) an abort callback sends its helpers SIGTERM, which stops them at the next
//!   interrupt check, inside a model run too. A helper also stops when the caller's backend is gone.
use std::cell::RefCell;
use std::panic::AssertUnwindSafe;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime};
use pgrx::prelude::*;
use pgrx::PgMemoryContexts;
use recommender_core::bulk::{fingerprint, Job, Work};

thread_local! {
    /// The handles of this backend's running helpers (allocated in TopMemoryContext).
    static HELPERS: RefCell<Vec<*mut pg_sys::BackgroundWorkerHandle>> = const { RefCell::new(Vec::new()) };
    /// Whether `on_abort` is registered (once per backend).
    static REGISTERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The settings that decide which encoder a process loads and how, by name: helpers whose own
/// values differ (a superuser's session SET) would write other vectors, so they do nothing.
const MODEL_SETTINGS: [&std::ffi::CStr; 3] = [
    c"recommender.model_dir",
    c"recommender.onnxruntime_library",
    c"recommender.enable_checksums",
];

/// A setting's text: its current value, or with `reset` the one a new session of the role gets.
fn setting(name: &std::ffi::CStr, reset: bool) -> String {
    // SAFETY: settings this library defined; both calls return a string owned by the GUC
    // machinery (or NULL), copied at once.
    unsafe {
        let p = if reset {
            pg_sys::GetConfigOptionResetString(name.as_ptr())
        } else {
            pg_sys::GetConfigOption(name.as_ptr(), true, false)
        };
        if p.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// The fingerprint of this process's model settings, which caller and helper compare.
fn models_fingerprint() -> u64 {
    let values: Vec<String> = MODEL_SETTINGS.iter().map(|n| setting(n, false)).collect();
    fingerprint(&values.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Whether this session's model settings are those a new session of its role gets (the ones a
/// helper will see): not changed with SET.
fn model_settings_are_the_defaults() -> bool {
    MODEL_SETTINGS
        .iter()
        .all(|n| setting(n, false) == setting(n, true))
}

/// A helper connects as a role that may not log in (a caller's SET ROLE) only from PostgreSQL
/// 17 on; before, such a caller embeds alone.
#[cfg(any(feature = "pg17", feature = "pg18"))]
const BYPASS_LOGIN_CHECK: Option<u32> = Some(pg_sys::BGWORKER_BYPASS_ROLELOGINCHECK);
#[cfg(not(any(feature = "pg17", feature = "pg18")))]
const BYPASS_LOGIN_CHECK: Option<u32> = None;

/// Whether a helper can connect as `role` (`BYPASS_LOGIN_CHECK`, else the role may log in).
fn can_connect_as(role: pg_sys::Oid) -> bool {
    if BYPASS_LOGIN_CHECK.is_some() {
        return true;
    }
    Spi::get_one_with_args::<bool>(
        "SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE oid = $1",
        &[role.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// Starts up to `wanted` helpers for `work` and returns how many started. Starts none outside a
/// procedure that may commit (a CALL at top level, not in a transaction block or an EXCEPTION
/// block: the helpers are stopped by the call's abort, and only such a call has one), on a
/// standby, in a security-restricted operation or under a role other than the session's current
/// one (inside a SECURITY DEFINER function), when the session SET other model settings than its
/// role's, or (before PostgreSQL 17) when its role cannot log in; fewer when
/// max_worker_processes has no free slot.
pub fn start(work: Work, wanted: usize) -> usize {
    // SAFETY: plain reads of the backend's state.
    let (procedure, restricted, recovery, role, outer, database, me) = unsafe {
        (
            pg_sys::SPI_inside_nonatomic_context(),
            pg_sys::InSecurityRestrictedOperation() || pg_sys::InLocalUserIdChange(),
            pg_sys::RecoveryInProgress(),
            pg_sys::GetUserId(),
            pg_sys::GetOuterUserId(),
            pg_sys::MyDatabaseId,
            pg_sys::MyProcPid,
        )
    };
    if wanted == 0
        || !procedure
        || restricted
        || recovery
        || role != outer
        || !model_settings_are_the_defaults()
        || !can_connect_as(role)
    {
        return 0;
    }
    terminate_all(); // none are left from an earlier call, but never keep two sets
    register_abort_callback();
    let job = Job {
        database: database.to_u32(),
        role: role.to_u32(),
        models: models_fingerprint(),
        work,
    }
    .encode();
    let mut started = 0;
    for n in 1..=wanted {
        let builder = BackgroundWorkerBuilder::new(&format!(
            "recommender embedding helper {n} of backend {me}"
        ))
        .set_type("recommender embedding helper")
        .set_library("recommender")
        .set_function("recommender_embedding_helper_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .set_notify_pid(me)
        .set_extra(&job);
        let mut bgw = pg_sys::BackgroundWorker::from(&builder);
        let mut handle: *mut pg_sys::BackgroundWorkerHandle = std::ptr::null_mut();
        // SAFETY: bgw is a complete registration; the handle is allocated in TopMemoryContext so
        // that it outlives the transaction (the procedure commits per batch).
        let ok = unsafe {
            PgMemoryContexts::TopMemoryContext
                .switch_to(|_| pg_sys::RegisterDynamicBackgroundWorker(&mut bgw, &mut handle))
        };
        if !ok {
            break; // no free slot in max_worker_processes
        }
        HELPERS.with_borrow_mut(|h| h.push(handle));
        let mut pid = 0;
        // SAFETY: a handle just registered with this backend as its notify pid.
        let status = unsafe { pg_sys::WaitForBackgroundWorkerStartup(handle, &mut pid) };
        if status == pg_sys::BgwHandleStatus::BGWH_STARTED {
            started += 1;
        }
    }
    started
}

/// Waits up to `timeout` for every helper of this backend to exit; true when none is left.
/// Interruptible: a cancel raises here and the abort callback stops the helpers. The postmaster
/// sets this backend's latch when one of them exits (it is their notify pid).
pub fn wait(timeout: std::time::Duration) -> bool {
    let until = std::time::Instant::now() + timeout;
    loop {
        let Some(handle) = HELPERS.with_borrow(|h| h.last().copied()) else {
            return true;
        };
        let mut pid = 0;
        // SAFETY: a live handle of this backend.
        let status = unsafe { pg_sys::GetBackgroundWorkerPid(handle, &mut pid) };
        if status == pg_sys::BgwHandleStatus::BGWH_STOPPED {
            HELPERS.with_borrow_mut(|h| h.pop());
            // SAFETY: allocated by RegisterDynamicBackgroundWorker in TopMemoryContext, now unused.
            unsafe { pg_sys::pfree(handle.cast()) };
            continue;
        }
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        // SAFETY: the backend's own latch; the wait ends at the timeout, a set latch or the
        // postmaster's death (which ends the process).
        unsafe {
            pg_sys::WaitLatch(
                pg_sys::MyLatch,
                (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                left.as_millis().clamp(1, i32::MAX as u128) as std::ffi::c_long,
                pg_sys::PG_WAIT_EXTENSION,
            );
            pg_sys::ResetLatch(pg_sys::MyLatch);
        }
        pg_sys::check_for_interrupts!();
    }
}

/// SIGTERM to every helper of this backend, and forgets them. Never raises.
fn terminate_all() {
    for handle in HELPERS.with_borrow_mut(std::mem::take) {
        // SAFETY: handles of this backend's helpers; terminating a stopped one does nothing.
        unsafe {
            pg_sys::TerminateBackgroundWorker(handle);
            pg_sys::pfree(handle.cast());
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_abort(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    if event == pg_sys::XactEvent::XACT_EVENT_ABORT {
        terminate_all();
    }
}

fn register_abort_callback() {
    if !REGISTERED.get() {
        // SAFETY: a callback with no argument, registered once for the backend's lifetime.
        unsafe { pg_sys::RegisterXactCallback(Some(on_abort), std::ptr::null_mut()) };
        REGISTERED.set(true);
    }
}

/// The bulk re-embed's batch function (the queue's is `super::QUEUE_BATCH`).
const REFRESH_BATCH: &str =
    "recommender._refresh_batch(bigint, integer, boolean, timestamp with time zone, boolean)";

/// One batch of the job in a transaction of its own: whether there may be more. Like the queue
/// worker, a helper calls only the installed extension's own batch function (its caller's
/// extension may have been dropped, and the schema made again, before it connected).
fn step(work: &Work, last_id: &mut i64) -> bool {
    let function = match work {
        Work::Refresh { .. } => REFRESH_BATCH,
        Work::Queue { .. } => super::QUEUE_BATCH,
    };
    let result = BackgroundWorker::transaction(AssertUnwindSafe(|| match *work {
        _ if !super::extension_function(function)? => Ok(false),
        Work::Refresh {
            batch_size,
            force,
            since_us,
        } => Spi::connect(|c| {
            // a timestamptz the caller read from now(): always in range; otherwise the caller's
            // last sweep does the work
            let Ok(since) = TimestampWithTimeZone::try_from(since_us) else {
                return Ok(false);
            };
            let t = c.select(
                "SELECT last_id, embedded FROM recommender._refresh_batch($1, $2, $3, $4, true)",
                None,
                &[
                    (*last_id).into(),
                    batch_size.into(),
                    force.into(),
                    since.into(),
                ],
            )?;
            match t.first().get::<i64>(1)? {
                Some(id) => {
                    *last_id = id;
                    Ok(true)
                }
                None => Ok(false),
            }
        }),
        Work::Queue { batch_size } => Spi::connect(|c| {
            let t = c.select(
                "SELECT processed + failed FROM recommender._process_queue_batch($1)",
                None,
                &[batch_size.into()],
            )?;
            Ok(t.first().get::<i32>(1)?.unwrap_or(0) > 0)
        }),
    }));
    result.unwrap_or_else(|e: pgrx::spi::Error| {
        pgrx::error!("recommender: embedding helper: {e}");
    })
}

unsafe extern "C-unwind" {
    /// PostgreSQL's SIGTERM handler of a backend (`pg_sys::die` is pgrx's guarded wrapper, which
    /// is not a signal handler).
    #[link_name = "die"]
    fn postgres_die(signal: std::ffi::c_int);
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn recommender_embedding_helper_main(_arg: pg_sys::Datum) {
    // SIGTERM (the caller's abort, pg_terminate_backend, shutdown) sets ProcDiePending, which the
    // next CHECK_FOR_INTERRUPTS acts on, as in a parallel worker.
    // SAFETY: installing PostgreSQL's own handler before signals are unblocked.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        pg_sys::pqsignal(libc::SIGTERM, Some(postgres_die));
        #[cfg(feature = "pg18")]
        pg_sys::pqsignal_be(libc::SIGTERM, Some(postgres_die));
        pg_sys::BackgroundWorkerUnblockSignals();
    }
    let Some(job) = Job::decode(BackgroundWorker::get_extra()) else {
        log!("recommender: embedding helper started without a readable job; exiting");
        return;
    };
    // SAFETY: set by the postmaster for every background worker.
    let caller = unsafe { (*pg_sys::MyBgworkerEntry).bgw_notify_pid };
    // The caller may be a role without LOGIN it SET ROLE to (`BYPASS_LOGIN_CHECK`).
    let flags = BYPASS_LOGIN_CHECK.unwrap_or(0);
    // SAFETY: the documented connection call of a background worker, once, before any SPI use.
    unsafe {
        pg_sys::BackgroundWorkerInitializeConnectionByOid(
            pg_sys::Oid::from(job.database),
            pg_sys::Oid::from(job.role),
            flags,
        )
    };
    // The batch functions name everything with its schema; the few operators of the statements
    // below resolve in pg_catalog alone, whatever the role's own search_path says.
    super::pin_search_path();
    if models_fingerprint() != job.models {
        log!("recommender: embedding helper: the calling session's model settings differ from this database's; leaving the work to the session");
        return;
    }
    let mut last_id = 0;
    loop {
        pg_sys::check_for_interrupts!();
        if !super::wake::live(caller) || !step(&job.work, &mut last_id) {
            break;
        }
    }
}
