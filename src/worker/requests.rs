//! Homepages a recommendation call leaves to the queue worker (`recommender.rerank_budget`,
//! 0.27.0): the call asks through a small table in shared memory (`recommender_core::requests`)
//! and wakes the database's workers; a worker moves the requests of its database into
//! `recommender.homepage_queue` in a transaction of its own and computes them as any queued user.
//! So the asking call writes nothing in its own transaction (no row another transaction could
//! wait for until it commits, no subtransaction in a batch of calls), and it asks even from a
//! read-only transaction. Best effort: a full table, or a user id longer than
//! `requests::ID_BYTES`, leaves the user unqueued (the user's next call asks again); requests die
//! with the server. Without `shared_preload_libraries` there is no table, and nothing is asked.
use pgrx::lwlock::PgLwLock;
use pgrx::pg_shmem_init;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use recommender_core::requests::{Asked, Requests};

use super::wake;

#[derive(Clone, Copy, Default)]
pub struct Table(Requests);

// SAFETY: plain integers and bytes, no pointers.
unsafe impl PGRXSharedMemory for Table {}

static REQUESTS: PgLwLock<Table> = unsafe { PgLwLock::new(c"recommender_homepage_requests") };

/// From `_PG_init`, before `wake::init`: requests the table while shared_preload_libraries is
/// being processed (`wake`'s startup hook, which marks the tables attached, then runs after this
/// table's).
// pg_shmem_init! tests pgrx's pg13/pg14 features, which this crate does not have (it supports 15+)
#[allow(unexpected_cfgs)]
pub fn init() {
    // SAFETY: a plain flag of the postmaster, read in _PG_init.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(REQUESTS);
    }
}

fn database() -> u32 {
    // SAFETY: set for every backend connected to a database.
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

/// Asks this database's queue workers for `user_id`'s homepage and wakes them: true when the
/// request is in the table (added now, or already there).
pub fn ask(user_id: &str) -> bool {
    if !wake::shared() {
        return false;
    }
    let asked = REQUESTS.exclusive().0.ask(database(), user_id);
    match asked {
        Asked::Added => {
            wake::wake();
            true
        }
        Asked::Already => true,
        Asked::Full | Asked::Unfit => false,
    }
}

/// The worker takes its database's requests off the table.
pub(super) fn take() -> Vec<String> {
    if !wake::shared() {
        return Vec::new();
    }
    REQUESTS.exclusive().0.take(database())
}
