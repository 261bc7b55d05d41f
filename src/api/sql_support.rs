//! Functions the SQL units call so that a fact lives once, in Rust: the settings (their defaults
//! are declared only in `gucs`) and the limits of `recommender_core::limits`.
use std::ffi::{CStr, CString};

use pgrx::prelude::*;

use crate::error::RecError;
use recommender_core::limits;

/// The value of one of the extension's settings, as `current_setting` shows it. Calling it loads
/// the library, which defines the settings with their defaults: plain `current_setting` in a
/// trigger that runs before any function of the library has been called would find the setting
/// undefined, and SQL would have to restate the default. Only `recommender.*` names.
#[pg_extern(stable, strict, parallel_safe, name = "_setting")]
fn setting(name: &str) -> Option<String> {
    let c = match CString::new(name) {
        Ok(c) if name.starts_with("recommender.") => c,
        _ => RecError::invalid(
            format!("{name:?} is not a setting of recommender"),
            "recommender._setting reads recommender.* settings only; use current_setting().",
        )
        .raise(),
    };
    // SAFETY: a NUL-terminated name. As current_setting(name, true): the value as SHOW prints it
    // (with its unit), NULL for an unknown name (a server-start setting that is undefined without
    // preloading); the palloc'd result is copied.
    unsafe {
        let v = pg_sys::GetConfigOptionByName(c.as_ptr(), std::ptr::null_mut(), true);
        (!v.is_null()).then(|| CStr::from_ptr(v).to_string_lossy().into_owned())
    }
}

/// `recommender_core::limits::MAX_ARRAY`: the most elements of an array argument, and the largest
/// batch size of the procedures that drain the catalogue and the queue.
#[pg_extern(immutable, parallel_safe, name = "_max_array")]
fn max_array() -> i32 {
    limits::MAX_ARRAY as i32
}
