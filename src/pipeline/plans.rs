//! The read path's statements, planned once per backend.
//!
//! `SpiClient::select` with a query text parses, analyses and plans the statement on every call,
//! and a `similar_products` call with refill rounds runs sixteen statements: keeping their plans
//! took ~1 ms off such a call (BENCHMARKS.md). Each statement text (with its argument types) is
//! prepared once and kept with `SPI_keepplan`, so later calls go through Postgres' plan cache: the
//! parse tree is reused, and the cache itself decides between custom and generic plans and
//! re-plans after DDL or a change of `search_path`, as for any prepared statement.
use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::PgOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};

type Key = (&'static str, Vec<pgrx::pg_sys::Oid>);

thread_local! {
    /// Leaked on purpose: the plans live as long as the backend, and freeing them from a
    /// thread-local destructor at process exit would call into SPI after Postgres shut down.
    static PLANS: RefCell<HashMap<Key, &'static OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// `c.select(sql, limit, args)` through the backend's kept plan for `sql`.
pub fn select<'c>(
    c: &SpiClient<'c>,
    sql: &'static str,
    limit: Option<libc::c_long>,
    args: &[DatumWithOid],
) -> SpiResult<SpiTupleTable<'c>> {
    let key: Key = (sql, args.iter().map(|a| a.oid()).collect());
    // The borrow ends before the statement runs: a statement may call back into the extension.
    let kept = PLANS.with(|p| p.borrow().get(&key).copied());
    let stmt = match kept {
        Some(s) => s,
        None => {
            let oids: Vec<PgOid> = key.1.iter().map(|&o| PgOid::from(o)).collect();
            let s: &'static OwnedPreparedStatement =
                Box::leak(Box::new(c.prepare(sql, &oids)?.keep()));
            PLANS.with(|p| p.borrow_mut().insert(key, s));
            s
        }
    };
    c.select(stmt, limit, args)
}
