//! The ONNX Runtime environment: one per backend process, created on first model use.
use std::path::Path;

use once_cell::sync::OnceCell;
use ort::environment::Environment;

use crate::error::{RecError, Result, SETUP_HINT};
use crate::gucs;

static ENVIRONMENT: OnceCell<Environment> = OnceCell::new();
static LIBRARY_PATH: OnceCell<String> = OnceCell::new();

/// The environment, created on first call. ONNX Runtime allows one per process, and the library
/// cannot be unloaded, so `recommender.onnxruntime_library` is read once per backend.
pub fn environment() -> Result<&'static Environment> {
    ENVIRONMENT.get_or_try_init(|| {
        let lib = gucs::onnxruntime_library();
        let path = Path::new(&lib);
        if !path.is_absolute() {
            return Err(RecError::invalid(
                format!("recommender.onnxruntime_library must be an absolute path, got \"{lib}\""),
                "SET recommender.onnxruntime_library to the full path of libonnxruntime.so (superuser only).",
            ));
        }
        if !path.is_file() {
            return Err(RecError::missing(
                format!("ONNX Runtime library {lib} does not exist"),
                format!("{SETUP_HINT}, or point recommender.onnxruntime_library at an installed libonnxruntime.so (>= 1.31)."),
            ));
        }
        // ONNX Runtime starts a thread while the environment is created. Block every signal so that
        // thread never runs a Postgres signal handler; threads inherit the mask.
        let env = with_signals_blocked(|| {
            let builder = ort::init_from(path).map_err(|e| {
                RecError::external(
                    format!("cannot load ONNX Runtime from {lib}: {e}"),
                    "recommender.onnxruntime_library must name libonnxruntime.so of ONNX Runtime 1.31 or newer for this platform.",
                )
            })?;
            builder
                .with_name("recommender")
                .with_telemetry(false)
                .build()
                .map_err(|e| RecError::external(format!("cannot create the ONNX Runtime environment: {e}"), ""))
        })?;
        let _ = LIBRARY_PATH.set(lib);
        Ok(env)
    })
}

/// The library this backend loaded, if any.
pub fn loaded_library() -> Option<&'static str> {
    LIBRARY_PATH.get().map(String::as_str)
}

/// Runs `f` with all signals blocked in this thread, restoring the mask afterwards.
pub fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain libc calls on stack-allocated sigset_t values; the old mask is restored
    // before returning, also when f unwinds (the guard's Drop).
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        struct Restore(libc::sigset_t);
        impl Drop for Restore {
            fn drop(&mut self) {
                // SAFETY: restores the mask saved above.
                unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
            }
        }
        let _restore = Restore(old);
        f()
    }
}
