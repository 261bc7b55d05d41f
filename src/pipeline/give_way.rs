//! Cache writes that never make a call wait (0.26.0).
//!
//! The recommendation functions keep what they computed (the profile, the collaborative
//! candidates, the rerank query's embedding, the popularity sums) in the caller's transaction.
//! A row that another transaction holds must not make the call wait for it: that transaction
//! may be another caller's, left open and idle after a homepage call, so one role's open
//! transaction would stall everyone's homepage for a user (the profile row) or for everyone
//! (the popularity cache at a new clock day). Such a write runs here, in a subtransaction with
//! `lock_timeout` at most [`LOCK_TIMEOUT`]: a lock it does not get in time, a deadlock, a
//! serialization conflict or another transaction's insert of the same key rolls the
//! subtransaction back and leaves the cache as it was. The call goes on with what it computed;
//! a later call stores it. Any other error (cancel, statement_timeout, a real fault) is raised
//! as before, after the subtransaction is rolled back.
//!
//! A subtransaction that writes takes a subtransaction id, and a transaction with more than 64 of
//! them makes every backend's snapshots slower to check until it ends. So the profile's writes
//! first lock the row without waiting (`profile::store_row`) and come here only for a user's
//! first profile; the popularity sums come here once per clock day and window every five
//! minutes. A batch of calls in one transaction stays below that.
//!
//! A write that succeeds still holds its row locks until the caller's transaction ends, as any
//! write does; only the waiting is gone. (`idle_in_transaction_session_timeout` on application
//! roles bounds how long an idle transaction keeps them.) A write that gives way says so at
//! DEBUG1.
use std::panic::AssertUnwindSafe;

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::{PgSqlErrorCode, PgTryBuilder};

/// The longest a cache write waits for a row lock, in ms, as `_keep_rerank_scores()` (a session
/// with a shorter `lock_timeout` keeps its own).
const LOCK_TIMEOUT: i32 = 10;

/// The errors after which a cache write is left undone instead of failing the call.
const GIVE_WAY: [PgSqlErrorCode; 4] = [
    PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE,
    PgSqlErrorCode::ERRCODE_T_R_DEADLOCK_DETECTED,
    PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
    PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION,
];

fn code(e: &CaughtError) -> PgSqlErrorCode {
    match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r.sql_error_code(),
        CaughtError::RustPanic { ereport, .. } => ereport.sql_error_code(),
    }
}

/// Whether the client's statement has run longer than `statement_timeout`. Not in a background
/// worker (the queue worker): no statement timer runs there, and its "statement" is the whole
/// transaction.
fn statement_timed_out() -> bool {
    // SAFETY: reads of backend-global settings and the statement's start, in a transaction.
    unsafe {
        let limit = i64::from(pg_sys::StatementTimeout);
        pg_sys::MyBackendType == pg_sys::BackendType::B_BACKEND
            && limit > 0
            && pg_sys::GetCurrentTimestamp() - pg_sys::GetCurrentStatementStartTimestamp()
                >= limit * 1000
    }
}

/// Runs the cache write `write` without waiting for another transaction: true when it was
/// stored, false when it gave way (see the module's comment).
pub(crate) fn store<E>(write: impl FnOnce() -> Result<(), E>) -> Result<bool, E> {
    // SAFETY: inside a transaction (the caller's statement), not in parallel mode (the
    // recommendation functions are PARALLEL UNSAFE). As PL/Python's subtransactions: the
    // memory context is the caller's throughout, the subtransaction's resource owner is
    // current until it ends, then the caller's again.
    let (context, owner) = unsafe {
        let saved = (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner);
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(saved.0);
        saved
    };
    let outcome = PgTryBuilder::new(AssertUnwindSafe(|| {
        // SAFETY: a GUC nest level of this subtransaction, as a function's SET clause makes:
        // popped below, or with the subtransaction when it is rolled back.
        let level = unsafe {
            let level = pg_sys::NewGUCNestLevel();
            let current = pg_sys::LockTimeout;
            if current == 0 || current > LOCK_TIMEOUT {
                let value = std::ffi::CString::new(format!("{LOCK_TIMEOUT}ms"))
                    .expect("no NUL in a number");
                pg_sys::set_config_option(
                    c"lock_timeout".as_ptr(),
                    value.as_ptr(),
                    pg_sys::GucContext::PGC_USERSET,
                    pg_sys::GucSource::PGC_S_SESSION,
                    pg_sys::GucAction::GUC_ACTION_SAVE,
                    true,
                    0,
                    false,
                );
            }
            level
        };
        let result = write();
        // SAFETY: the level made above, still the innermost.
        unsafe { pg_sys::AtEOXact_GUC(true, level) };
        Ok(result)
    }))
    .catch_others(|caught| Err(Box::new(caught)))
    .execute();
    // SAFETY: ends the subtransaction begun above (the innermost: `write` ends whatever it
    // begins) and restores the caller's memory context and resource owner.
    let end = |commit: bool| unsafe {
        if commit {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    };
    match outcome {
        Ok(Ok(())) => {
            end(true);
            Ok(true)
        }
        Ok(Err(e)) => {
            end(false);
            Err(e)
        }
        Err(caught) => {
            end(false);
            let code = code(&caught);
            if !GIVE_WAY.contains(&code) {
                caught.rethrow()
            }
            if code == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE && statement_timed_out() {
                // Postgres reports the earlier of two timeouts that fired together and clears
                // both: the statement's must not be swallowed with the lock's
                pgrx::ereport!(
                    ERROR,
                    PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
                    "canceling statement due to statement timeout"
                );
            }
            pgrx::debug1!("recommender: a cache write gave way to another transaction ({code:?})");
            Ok(false)
        }
    }
}
