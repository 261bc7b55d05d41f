//! Every setting of the extension. Each is a private static with a typed accessor; the `///` on the
//! accessor states the default and why. README.md has the same table for users.
use std::ffi::{CStr, CString};

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

use crate::core::limits;

static MODEL_DIR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ONNXRUNTIME_LIBRARY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ENABLE_CHECKSUMS: GucSetting<bool> = GucSetting::<bool>::new(true);
static EMBED_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(32);
static ENABLE_SYNC_EMBEDDING: GucSetting<bool> = GucSetting::<bool>::new(true);

/// The ONNX Runtime file the setup script installs, under `$libdir/recommender/`.
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.32.0";

pub fn init() {
    GucRegistry::define_string_guc(
        c"recommender.model_dir",
        c"Directory holding manifest.json and the encoder/ and cross-encoder/ model folders.",
        c"Empty means <sharedir>/recommender/models, where models/materialize.sh installs them. Superuser only: it decides which files a backend loads.",
        &MODEL_DIR,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"recommender.onnxruntime_library",
        c"Absolute path of libonnxruntime.so (ONNX Runtime >= 1.31).",
        c"Empty means $libdir/recommender/libonnxruntime.so.1.32.0. Read once per backend, at the first model use; a change applies to new sessions. Superuser only.",
        &ONNXRUNTIME_LIBRARY,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"recommender.enable_checksums",
        c"Verify model files against the sha256 in the installed manifest.json before loading them.",
        c"On by default: a truncated or replaced model file is refused instead of producing wrong vectors. Costs one read of the file per backend and load.",
        &ENABLE_CHECKSUMS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"recommender.embed_batch_size",
        c"Texts per encoder run in bulk embedding.",
        c"32 by default: larger batches amortise per-run overhead, and texts are sorted by length so padding stays small.",
        &EMBED_BATCH_SIZE,
        1,
        limits::MAX_EMBED_BATCH as i32,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"recommender.enable_sync_embedding",
        c"Embed changed products inside the writing statement (on) or leave them stale for refresh_embeddings() (off).",
        c"On by default, so a product is searchable as soon as its write commits. Turn it off for large imports and run CALL recommender.refresh_embeddings() afterwards.",
        &ENABLE_SYNC_EMBEDDING,
        GucContext::Userset,
        GucFlags::default(),
    );
    // SAFETY: called from _PG_init with a static NUL-terminated string; warns about and removes
    // misspelled recommender.* placeholders.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"recommender".as_ptr()) };
}

fn string_setting(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `recommender.model_dir`; default `<sharedir>/recommender/models`.
pub fn model_dir() -> String {
    string_setting(&MODEL_DIR).unwrap_or_else(|| format!("{}/recommender/models", share_dir()))
}

/// `recommender.onnxruntime_library`; default `$libdir/recommender/libonnxruntime.so.1.32.0`.
pub fn onnxruntime_library() -> String {
    string_setting(&ONNXRUNTIME_LIBRARY)
        .unwrap_or_else(|| format!("{}/recommender/{ORT_LIBRARY_FILE}", pkglib_dir()))
}

/// `recommender.enable_checksums`; default on.
pub fn enable_checksums() -> bool {
    ENABLE_CHECKSUMS.get()
}

/// `recommender.embed_batch_size`; default 32.
pub fn embed_batch_size() -> usize {
    EMBED_BATCH_SIZE.get().max(1) as usize
}

/// `recommender.enable_sync_embedding`; default on.
pub fn enable_sync_embedding() -> bool {
    ENABLE_SYNC_EMBEDDING.get()
}

fn share_dir() -> String {
    let mut buf = vec![0 as std::ffi::c_char; pgrx::pg_sys::MAXPGPATH as usize];
    // SAFETY: my_exec_path is a NUL-terminated global set at backend start; get_share_path writes
    // at most MAXPGPATH bytes into buf.
    unsafe {
        pgrx::pg_sys::get_share_path(
            std::ptr::addr_of!(pgrx::pg_sys::my_exec_path) as *const std::ffi::c_char,
            buf.as_mut_ptr(),
        );
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

fn pkglib_dir() -> String {
    // SAFETY: pkglib_path is a NUL-terminated global filled at backend start.
    unsafe {
        CStr::from_ptr(std::ptr::addr_of!(pgrx::pg_sys::pkglib_path) as *const std::ffi::c_char)
            .to_string_lossy()
            .into_owned()
    }
}
