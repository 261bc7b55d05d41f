//! `#[pg_extern]` entry points. Each one validates its arguments, calls into `model`/`core`, and
//! maps errors to SQLSTATEs. SQL-language wrappers and DDL live in the SQL units (sql/*.sql).
// pgrx declares a set-returning function's columns in its return type (`TableIterator<(name!(...),
// ...)>`): the long types are the SQL signatures themselves.
#![allow(clippy::type_complexity)]
pub mod bulk;
pub mod catalog;
pub mod embed;
pub mod info;
pub mod learn;
pub mod queue;
pub mod recommend;
pub mod similar;
pub mod sql_support;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
