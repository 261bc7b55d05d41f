//! The read path's statements, planned once per backend.
//!
//! `SpiClient::select` with a query text parses, analyses and plans the statement on every call,
//! and a `similar_products` call with refill rounds runs sixteen statements: keeping their plans
//! took ~1 ms off such a call (BENCHMARKS.md). Each statement text (with its argument types) is
//! prepared once and kept with `SPI_keepplan`, so later calls go through Postgres' plan cache: the
//! parse tree is reused, and the cache itself decides between custom and generic plans and
//! re-plans after DDL or a change of `search_path`, as for any prepared statement.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pgrx::datum::DatumWithOid;
use pgrx::pg_guard;
use pgrx::pg_sys;
use pgrx::pg_sys::PgOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};

type Key = (&'static str, Vec<pgrx::pg_sys::Oid>);

thread_local! {
    /// Leaked on purpose: the plans live as long as the backend, and freeing them from a
    /// thread-local destructor at process exit would call into SPI after Postgres shut down.
    /// With whether the text they were prepared from names vector's schema.
    static PLANS: RefCell<HashMap<Key, (&'static OwnedPreparedStatement, bool)>> = RefCell::new(HashMap::new());
}

/// The pipeline's statements compute cosine distances with `recommender._distance()` (0.26.0) and
/// make query vectors with `recommender._vector()` (0.16.0): both were bound to pgvector's
/// operator and type when the extension was created, so the statements name neither. The
/// library may run before `ALTER EXTENSION recommender UPDATE` brought them; a statement then
/// names pgvector's operator (and, before 0.16.0, its type) with vector's schema
/// ([`VECTOR_SCHEMA`]), as 0.25.0's did. For each function: its texts, and what replaces each
/// without it.
const LEGACY: [(&str, [(&str, &str); 2]); 2] = [
    (
        "_distance",
        [
            (
                "recommender._distance(embedding, (SELECT recommender._vector($1::real[])))",
                "(embedding OPERATOR(@vector@.<=>) (SELECT recommender._vector($1::real[])))",
            ),
            (
                "recommender._distance(p.embedding, (SELECT recommender._vector($2::real[])))",
                "(p.embedding OPERATOR(@vector@.<=>) (SELECT recommender._vector($2::real[])))",
            ),
        ],
    ),
    (
        "_vector",
        [
            (
                "(SELECT recommender._vector($1::real[]))",
                "(SELECT $1::real[]::@vector@.vector)",
            ),
            (
                "(SELECT recommender._vector($2::real[]))",
                "(SELECT $2::real[]::@vector@.vector)",
            ),
        ],
    ),
];

/// Whether `sql` holds a text that [`LEGACY`] may replace, or names vector's schema.
fn may_name_schema(sql: &str) -> bool {
    sql.contains(VECTOR_SCHEMA)
        || LEGACY
            .iter()
            .any(|(_, pairs)| pairs.iter().any(|(now, _)| sql.contains(now)))
}

/// How many of this backend's kept statements name vector's schema (none on 0.26.0's SQL).
#[cfg(any(test, feature = "pg_test"))]
pub(super) fn naming_vector_schema() -> usize {
    PLANS.with(|p| p.borrow().values().filter(|(_, names)| *names).count())
}

/// Whether the installed SQL has the function `recommender.<name>`.
fn installed(c: &SpiClient<'_>, name: &str) -> SpiResult<bool> {
    Ok(c.select(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p
                         WHERE p.proname OPERATOR(pg_catalog.=) $1
                           AND p.pronamespace OPERATOR(pg_catalog.=) 'recommender'::pg_catalog.regnamespace::pg_catalog.oid)",
        None,
        &[name.into()],
    )?
    .first()
    .get_one::<bool>()?
    .unwrap_or(false))
}

/// Stands for pgvector's schema (quoted) in a statement: `OPERATOR(@vector@.<=>)`. The
/// pipeline's functions run with `search_path = pg_catalog, pg_temp` (README "Privileges"): no
/// schema that another role may create objects in is ever searched, so pgvector's operators
/// would have to be named with the schema CREATE EXTENSION put them in. Since 0.26.0 no
/// statement does (see [`LEGACY`]); the name is still watched (`SCHEMAS_CHANGED`,
/// `GENERATION`) for an install whose SQL predates that.
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

/// How many changes to schemas or operators this backend has learnt of. A kept statement is
/// re-parsed from its text whenever Postgres' plan cache finds it invalid, and that happens
/// when the statement's locks are taken, after `kept` checked the schema's name: a change that
/// arrived in between (a rename committed at that moment) would be parsed under the new
/// meaning of the name. So the statements that name vector's schema run *armed* with the count
/// `kept` saw, and `check_analysis` refuses any analysis while armed if the count moved (0.26.0).
pub(super) static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The count the statement running now was checked at, while it names vector's schema.
    static ARMED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Runs `f` armed with `generation` when the statement it executes or prepares names vector's
/// schema (Some); None leaves the arming as it is (a statement run inside an armed one).
pub(super) fn armed<R>(generation: Option<u64>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<u64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ARMED.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(ARMED.with(|a| a.replace(generation.or(a.get()))));
    f()
}

static mut PREVIOUS_HOOK: pg_sys::post_parse_analyze_hook_type = None;

/// Installs `check_analysis` as a post-parse-analysis hook (from `_PG_init`, once per process).
pub fn install_hook() {
    // SAFETY: called once from _PG_init, before any query of this process is analysed; the
    // previous hook is kept and called first.
    unsafe {
        PREVIOUS_HOOK = pg_sys::post_parse_analyze_hook;
        pg_sys::post_parse_analyze_hook = Some(check_analysis);
    }
}

/// Refuses a statement analysed while armed (see `GENERATION`) after a change to schemas or
/// operators arrived: it may have resolved pgvector's schema's name to another schema. The call
/// fails (40001, to be retried) instead of running what the name now means.
#[pg_guard]
unsafe extern "C-unwind" fn check_analysis(
    pstate: *mut pg_sys::ParseState,
    query: *mut pg_sys::Query,
    jstate: *mut pg_sys::JumbleState,
) {
    // SAFETY: the hook installed before ours, with our arguments.
    if let Some(previous) = unsafe { PREVIOUS_HOOK } {
        unsafe { previous(pstate, query, jstate) };
    }
    if let Some(seen) = ARMED.with(|a| a.get()) {
        if GENERATION.load(Ordering::Relaxed) != seen {
            pgrx::pg_sys::panic::ErrorReport::new(
                pgrx::PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
                "recommender: a schema or operator changed while a statement naming pgvector's schema was being prepared",
                "recommender",
            )
            .set_hint("Call it again: it prepares the statement with the schema's current name.")
            .report(pgrx::PgLogLevel::ERROR);
        }
    }
}

thread_local! {
    /// The name of vector's schema the kept statements that name it were prepared with (None
    /// while none is kept).
    static PREPARED_WITH: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Syscache callback on pg_namespace, pg_type and pg_operator.
unsafe extern "C-unwind" fn schemas_changed(_arg: pg_sys::Datum, cache: c_int, _hash: u32) {
    SCHEMAS_CHANGED.store(true, Ordering::Relaxed);
    if cache != pg_sys::SysCacheIdentifier::TYPEOID as c_int {
        GENERATION.fetch_add(1, Ordering::Relaxed);
    }
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
            PLANS.with(|p| p.borrow_mut().retain(|_, (_, names)| !*names));
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

/// `sql` as it is prepared: in older words when the installed SQL predates a function it calls
/// (see [`LEGACY`]), with [`VECTOR_SCHEMA`] replaced; and whether it names vector's schema.
fn qualified(c: &SpiClient<'_>, sql: &str) -> SpiResult<(String, bool)> {
    let mut sql = sql.to_string();
    for (function, pairs) in LEGACY {
        if pairs.iter().any(|(now, _)| sql.contains(now)) && !installed(c, function)? {
            for (now, before) in pairs {
                sql = sql.replace(now, before);
            }
        }
    }
    if !sql.contains(VECTOR_SCHEMA) {
        return Ok((sql, false));
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
    Ok((sql.replace(VECTOR_SCHEMA, &schema), true))
}

/// The backend's kept plan for `sql` with these arguments' types, prepared (read-only, or
/// `mutating`) on first use. A statement's text is either always read-only or always writes.
/// With the count of changes its check saw (`GENERATION`) when `sql` names vector's schema: the
/// statement is to run armed with it.
fn kept(
    c: &SpiClient<'_>,
    sql: &'static str,
    args: &[DatumWithOid],
    mutating: bool,
) -> SpiResult<(&'static OwnedPreparedStatement, Option<u64>)> {
    // may name vector's schema (see LEGACY)
    let generation = may_name_schema(sql).then(|| {
        // SAFETY: reads the changes other backends committed, as taking a lock would, so
        // the check below sees them; inside a transaction.
        unsafe { pg_sys::AcceptInvalidationMessages() };
        GENERATION.load(Ordering::Relaxed)
    });
    forget_stale_schema(c)?;
    let key: Key = (sql, args.iter().map(|a| a.oid()).collect());
    // The borrow ends before the statement runs: a statement may call back into the extension.
    if let Some((s, names)) = PLANS.with(|p| p.borrow().get(&key).copied()) {
        return Ok((s, generation.filter(|_| names)));
    }
    let oids: Vec<PgOid> = key.1.iter().map(|&o| PgOid::from(o)).collect();
    let (text, names) = qualified(c, sql)?;
    let generation = generation.filter(|_| names);
    let stmt = armed(generation, || {
        if mutating {
            c.prepare_mut(text.as_str(), &oids)
        } else {
            c.prepare(text.as_str(), &oids)
        }
    })?;
    let s: &'static OwnedPreparedStatement = Box::leak(Box::new(stmt.keep()));
    PLANS.with(|p| p.borrow_mut().insert(key, (s, names)));
    Ok((s, generation))
}

/// `c.select(sql, limit, args)` through the backend's kept plan for `sql`.
pub fn select<'c>(
    c: &SpiClient<'c>,
    sql: &'static str,
    limit: Option<libc::c_long>,
    args: &[DatumWithOid],
) -> SpiResult<SpiTupleTable<'c>> {
    let (stmt, generation) = kept(c, sql, args, false)?;
    armed(generation, || c.select(stmt, limit, args))
}

/// Runs a statement that writes (the caches a call keeps) through the backend's kept plan for
/// `sql`. The caller checks that it may write (`db::can_write`).
pub fn run(sql: &'static str, args: &[DatumWithOid]) -> SpiResult<()> {
    run_reading(sql, args, |_| Ok(()))
}

/// `run` for a statement whose rows the caller reads (`read`): one that locks rows, say.
pub fn run_reading<R>(
    sql: &'static str,
    args: &[DatumWithOid],
    read: impl FnOnce(SpiTupleTable<'_>) -> SpiResult<R>,
) -> SpiResult<R> {
    pgrx::spi::Spi::connect_mut(|c| {
        let (stmt, generation) = kept(c, sql, args, true)?;
        read(armed(generation, || c.update(stmt, None, args))?)
    })
}
