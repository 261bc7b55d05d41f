//! One error type for the extension. Each variant maps to a real SQLSTATE with a hint, so a caller
//! can act on it (a plain `Err` from a `#[pg_extern]` would surface as 22000/XX000).
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// The command that installs models and ONNX Runtime; named in hints.
pub const SETUP_HINT: &str = "Install the model files and ONNX Runtime with models/materialize.sh (make demo and make test run it)";

#[derive(Debug, thiserror::Error)]
pub enum RecError {
    /// 22023: an argument outside its documented range.
    #[error("{message}")]
    InvalidArgument { message: String, hint: String },
    /// 58P01: a model file or the ONNX Runtime library is missing.
    #[error("{message}")]
    MissingFile { message: String, hint: String },
    /// 38000: a model file is present but refused (checksum, format) or inference failed.
    #[error("{message}")]
    External { message: String, hint: String },
    /// 42703: a mapped column does not exist.
    #[error("{message}")]
    UndefinedColumn { message: String, hint: String },
    /// 25006: a write was asked for on a standby or in a read-only transaction.
    #[error("{message}")]
    ReadOnly { message: String, hint: String },
    /// 55000: the database's schema is older than this library needs (ALTER EXTENSION UPDATE).
    #[error("{message}")]
    Prerequisite { message: String, hint: String },
    /// XX000: a broken invariant of our own; a bug.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, RecError>;

impl RecError {
    pub fn invalid(message: impl Into<String>, hint: impl Into<String>) -> Self {
        RecError::InvalidArgument {
            message: message.into(),
            hint: hint.into(),
        }
    }
    pub fn missing(message: impl Into<String>, hint: impl Into<String>) -> Self {
        RecError::MissingFile {
            message: message.into(),
            hint: hint.into(),
        }
    }
    pub fn external(message: impl Into<String>, hint: impl Into<String>) -> Self {
        RecError::External {
            message: message.into(),
            hint: hint.into(),
        }
    }

    fn parts(&self) -> (PgSqlErrorCode, Option<&str>) {
        use PgSqlErrorCode::*;
        match self {
            RecError::InvalidArgument { hint, .. } => (ERRCODE_INVALID_PARAMETER_VALUE, Some(hint)),
            RecError::MissingFile { hint, .. } => (ERRCODE_UNDEFINED_FILE, Some(hint)),
            RecError::External { hint, .. } => (ERRCODE_EXTERNAL_ROUTINE_EXCEPTION, Some(hint)),
            RecError::UndefinedColumn { hint, .. } => (ERRCODE_UNDEFINED_COLUMN, Some(hint)),
            RecError::ReadOnly { hint, .. } => (ERRCODE_READ_ONLY_SQL_TRANSACTION, Some(hint)),
            RecError::Prerequisite { hint, .. } => {
                (ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, Some(hint))
            }
            RecError::Internal(_) => (ERRCODE_INTERNAL_ERROR, None),
        }
    }

    /// Raises the error in Postgres (never returns).
    pub fn raise(self) -> ! {
        let (code, hint) = self.parts();
        let mut report = ErrorReport::new(code, format!("recommender: {self}"), "recommender");
        if let Some(h) = hint.filter(|h| !h.is_empty()) {
            report = report.set_hint(h.to_string());
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ereport(ERROR) returned")
    }
}

/// Unwraps a result inside a `#[pg_extern]`, raising the error with its SQLSTATE.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T> {
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => e.raise(),
        }
    }
}

impl From<recommender_core::limits::BadArg> for RecError {
    fn from(e: recommender_core::limits::BadArg) -> Self {
        RecError::invalid(e.message, e.hint)
    }
}

impl From<pgrx::spi::Error> for RecError {
    fn from(e: pgrx::spi::Error) -> Self {
        RecError::Internal(format!("SPI: {e}"))
    }
}
