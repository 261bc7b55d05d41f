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
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::pg_sys::PgOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};

type Key = (&'static str, Vec<pgrx::pg_sys::Oid>);

thread_local! {
    /// Leaked on purpose: the plans live as long as the backend, and freeing them from a
    /// thread-local destructor at process exit would call into SPI after Postgres shut down.
    static PLANS: RefCell<HashMap<Key, &'static OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// Stands for pgvector's schema (quoted) in a statement: `$1::real[]::@vector@.vector`,
/// `OPERATOR(@vector@.<=>)`. The pipeline's functions run with `search_path = pg_catalog,
/// pg_temp` (README "Privileges"): no schema that another role may create objects in is ever
/// searched, so pgvector's type and operators are named with the schema CREATE EXTENSION put
/// them in.
const VECTOR_SCHEMA: &str = "@vector@";

/// Set when this backend learns of a change to any schema (created, renamed, dropped), type or
/// operator: the kept statements that name vector's schema are then prepared again with its
/// current name, on their next use. A role that owns vector's schema (on PostgreSQL 15+ the
/// database's owner owns `public`) could otherwise rename it and create a schema of the old name
/// with look-alikes of pgvector's type and operators, which a kept statement re-parsed after the
/// rename would name, inside the recommendation functions that run as the extension's owner
/// (0.16.0). `ALTER EXTENSION vector SET SCHEMA` changes no schema, only the rows of pgvector's
/// types and operators, after which the role owning the old schema could plant the same
/// look-alikes there (0.25.0): hence types and operators too.
static SCHEMAS_CHANGED: AtomicBool = AtomicBool::new(false);
static WATCHING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The name of vector's schema the kept statements that name it were prepared with (None
    /// while none is kept).
    static PREPARED_WITH: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Syscache callback on pg_namespace, pg_type and pg_operator.
unsafe extern "C-unwind" fn schemas_changed(_arg: pg_sys::Datum, _cache: c_int, _hash: u32) {
    SCHEMAS_CHANGED.store(true, Ordering::Relaxed);
}

/// Drops the kept statements that name vector's schema when a change seen since they were
/// prepared (see `SCHEMAS_CHANGED`) moved or renamed it; registers the callbacks on first use.
/// Other changes (any table's row type counts as a type) only cost the lookup of the name.
fn forget_stale_schema(c: &SpiClient<'_>) -> SpiResult<()> {
    if !WATCHING.swap(true, Ordering::Relaxed) {
        for cache in [
            pg_sys::SysCacheIdentifier::NAMESPACEOID,
            pg_sys::SysCacheIdentifier::TYPEOID,
            pg_sys::SysCacheIdentifier::OPEROID,
        ] {
            // SAFETY: registers a plain function with no argument, once per cache and backend.
            unsafe {
                pg_sys::CacheRegisterSyscacheCallback(
                    cache as c_int,
                    Some(schemas_changed),
                    pg_sys::Datum::from(0),
                )
            };
        }
    }
    if SCHEMAS_CHANGED.swap(false, Ordering::Relaxed) {
        // Nothing to check while no kept statement names the schema.
        let Some(was) = PREPARED_WITH.with(|p| p.borrow().clone()) else {
            return Ok(());
        };
        // A failed lookup leaves the change to be checked by the next statement.
        let now =
            vector_schema(c).inspect_err(|_| SCHEMAS_CHANGED.store(true, Ordering::Relaxed))?;
        if now != was {
            // The dropped plans stay allocated (see PLANS): a move or rename is rare.
            PLANS.with(|p| p.borrow_mut().retain(|k, _| !k.0.contains(VECTOR_SCHEMA)));
            PREPARED_WITH.with(|p| *p.borrow_mut() = None);
        }
    }
    Ok(())
}

/// pgvector's schema, quoted.
fn vector_schema(c: &SpiClient<'_>) -> SpiResult<String> {
    Ok(c.select(
        "SELECT pg_catalog.quote_ident(n.nspname::pg_catalog.text)
           FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
          WHERE e.extname = 'vector'",
        None,
        &[],
    )?
    .first()
    .get_one::<String>()?
    .unwrap_or_else(|| "vector".into()))
}

/// `sql` with [`VECTOR_SCHEMA`] replaced, when it has it.
fn qualified(c: &SpiClient<'_>, sql: &str) -> SpiResult<String> {
    if !sql.contains(VECTOR_SCHEMA) {
        return Ok(sql.to_string());
    }
    // The name the other kept statements were prepared with is current: `kept` checked it.
    let schema = match PREPARED_WITH.with(|p| p.borrow().clone()) {
        Some(name) => name,
        None => {
            let name = vector_schema(c)?;
            PREPARED_WITH.with(|p| *p.borrow_mut() = Some(name.clone()));
            name
        }
    };
    Ok(sql.replace(VECTOR_SCHEMA, &schema))
}

/// The backend's kept plan for `sql` with these arguments' types, prepared (read-only, or
/// `mutating`) on first use. A statement's text is either always read-only or always writes.
fn kept(
    c: &SpiClient<'_>,
    sql: &'static str,
    args: &[DatumWithOid],
    mutating: bool,
) -> SpiResult<&'static OwnedPreparedStatement> {
    forget_stale_schema(c)?;
    let key: Key = (sql, args.iter().map(|a| a.oid()).collect());
    // The borrow ends before the statement runs: a statement may call back into the extension.
    if let Some(s) = PLANS.with(|p| p.borrow().get(&key).copied()) {
        return Ok(s);
    }
    let oids: Vec<PgOid> = key.1.iter().map(|&o| PgOid::from(o)).collect();
    let text = qualified(c, sql)?;
    let stmt = if mutating {
        c.prepare_mut(text.as_str(), &oids)?
    } else {
        c.prepare(text.as_str(), &oids)?
    };
    let s: &'static OwnedPreparedStatement = Box::leak(Box::new(stmt.keep()));
    PLANS.with(|p| p.borrow_mut().insert(key, s));
    Ok(s)
}

/// `c.select(sql, limit, args)` through the backend's kept plan for `sql`.
pub fn select<'c>(
    c: &SpiClient<'c>,
    sql: &'static str,
    limit: Option<libc::c_long>,
    args: &[DatumWithOid],
) -> SpiResult<SpiTupleTable<'c>> {
    let stmt = kept(c, sql, args, false)?;
    c.select(stmt, limit, args)
}

/// Runs a statement that writes (the caches a call keeps) through the backend's kept plan for
/// `sql`. The caller checks that it may write (`db::can_write`).
pub fn run(sql: &'static str, args: &[DatumWithOid]) -> SpiResult<()> {
    pgrx::spi::Spi::connect_mut(|c| {
        let stmt = kept(c, sql, args, true)?;
        c.update(stmt, None, args)?;
        Ok(())
    })
}
