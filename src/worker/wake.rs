//! Waking the queue workers when work arrives, instead of at their next `worker_naptime`.
//!
//! Each worker writes its pid and database into a free slot of a small shared-memory table when
//! it starts. A statement that adds to a queue (the triggers on `embedding_queue` and
//! `homepage_queue`, `recommender._wake_queue_workers()`) asks for a wake-up at its transaction's
//! commit: then the queued rows are visible, and every worker of the database gets SIGUSR1, which
//! sets its latch (PostgreSQL's handler for a background worker with a database connection) and
//! ends its wait. A transaction that rolls back wakes nobody, nor does `COMMIT PREPARED` (the
//! worker finds its rows at the naptime). Without `shared_preload_libraries` there is neither a
//! worker nor the table, and the trigger does nothing.
//!
//! Best effort by design: a slot whose worker exited abnormally is skipped (and taken by the next
//! worker to start) unless its pid is a live backend's again, and a spurious SIGUSR1 to a live
//! backend only sets its latch. `SLOTS` workers at a time are woken; any further ones keep their
//! naptime.
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::{pg_shmem_init, PgXactCallbackEvent};

/// Workers with a slot.
const SLOTS: usize = 32;

/// The workers' pids and databases; 0 marks a free slot.
#[derive(Clone, Copy, Default)]
pub struct Slots {
    pid: [i32; SLOTS],
    db: [u32; SLOTS],
}

// SAFETY: plain integers, no pointers.
unsafe impl PGRXSharedMemory for Slots {}

static WORKERS: PgLwLock<Slots> = unsafe { PgLwLock::new(c"recommender_queue_workers") };

/// Set in the postmaster once the tables are attached (this one, and `requests`'s, whose
/// `init` runs first) (the library preloaded, `startup` after
/// pgrx's own hook); its children inherit it. A backend that loads the library itself has no
/// table and no worker to wake, and neither has a server where another library's startup hook
/// did not call ours.
static SHARED: AtomicBool = AtomicBool::new(false);

/// The shared-memory startup hook before ours (pgrx's, which attach `WORKERS` and, chained before
/// it, `requests`' table).
static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;

#[pg_guard]
unsafe extern "C-unwind" fn startup() {
    // SAFETY: written once in _PG_init, before the postmaster calls the hooks.
    if let Some(prev) = unsafe { PREV_STARTUP } {
        unsafe { prev() };
        SHARED.store(true, Ordering::Relaxed);
    }
}

thread_local! {
    /// Whether this transaction already asked for a wake-up at commit.
    static ASKED: Cell<bool> = const { Cell::new(false) };
}

/// From `_PG_init`: requests the table while shared_preload_libraries is being processed.
// pg_shmem_init! tests pgrx's pg13/pg14 features, which this crate does not have (it supports 15+)
#[allow(unexpected_cfgs)]
pub fn init() {
    // SAFETY: a plain flag of the postmaster, read in _PG_init.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(WORKERS);
        // SAFETY: the postmaster's hooks, set in _PG_init as PostgreSQL documents; ours chains
        // pgrx's, so SHARED is only set once WORKERS is attached.
        unsafe {
            PREV_STARTUP = pg_sys::shmem_startup_hook;
            pg_sys::shmem_startup_hook = Some(startup);
        }
    }
}

thread_local! {
    /// The slot this worker took (`enter`), if any.
    static MINE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Whether `pid` is a live backend's (a shared lock on the proc array).
pub(super) fn live(pid: i32) -> bool {
    // SAFETY: looks the pid up in the proc array; no pointer is kept.
    pid != 0 && !unsafe { pg_sys::BackendPidGetProc(pid) }.is_null()
}

/// The calling worker takes a free slot (or one whose worker exited abnormally), if one is left.
pub fn enter() {
    if !SHARED.load(Ordering::Relaxed) {
        return;
    }
    let mut s = WORKERS.exclusive();
    if let Some(i) = (0..SLOTS).find(|&i| !live(s.pid[i])) {
        // SAFETY: set once the worker is connected to its database.
        s.db[i] = unsafe { pg_sys::MyDatabaseId }.to_u32();
        s.pid[i] = unsafe { pg_sys::MyProcPid };
        MINE.set(Some(i));
    }
}

/// The worker leaves its slot (a normal exit; an abnormal one leaves a pid that is not live).
pub fn leave() {
    if let Some(i) = MINE.take() {
        let mut s = WORKERS.exclusive();
        s.pid[i] = 0;
        s.db[i] = 0;
    }
}

/// The pids of this backend's database's live queue workers (none without the table).
fn live_workers() -> Vec<i32> {
    if !SHARED.load(Ordering::Relaxed) {
        return Vec::new();
    }
    // SAFETY: set for every backend connected to a database.
    let db = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let pids: Vec<i32> = {
        let s = WORKERS.share();
        (0..SLOTS)
            .filter(|&i| s.pid[i] != 0 && s.db[i] == db)
            .map(|i| s.pid[i])
            .collect()
    };
    pids.into_iter().filter(|&pid| live(pid)).collect()
}

/// Whether a live queue worker serves this backend's database.
pub fn serves_this_database() -> bool {
    !live_workers().is_empty()
}

/// Asks for this database's workers to be woken when the current transaction commits (once per
/// transaction).
pub fn at_commit() {
    if !SHARED.load(Ordering::Relaxed) || ASKED.get() {
        return;
    }
    ASKED.set(true);
    pgrx::register_xact_callback(PgXactCallbackEvent::Commit, || {
        ASKED.set(false);
        wake();
    });
    pgrx::register_xact_callback(PgXactCallbackEvent::Abort, || ASKED.set(false));
    // PREPARE TRANSACTION: COMMIT PREPARED wakes nobody (the worker finds the rows at its naptime)
    pgrx::register_xact_callback(PgXactCallbackEvent::Prepare, || ASKED.set(false));
}

/// Whether the workers' shared-memory tables are attached (the library preloaded).
pub(super) fn shared() -> bool {
    SHARED.load(Ordering::Relaxed)
}

/// SIGUSR1 to every live worker of this database. Runs after commit (or outside any write, for
/// `requests::ask`): nothing here may raise.
pub(super) fn wake() {
    for pid in live_workers() {
        // SAFETY: a live backend's pid; SIGUSR1 with no ProcSignal reason set only sets its
        // latch (PostgreSQL signals a backend so when a worker it registered starts or stops).
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    }
}
