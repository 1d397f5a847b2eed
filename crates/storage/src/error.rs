//! Errors of the storage engine.

use qh_types::ErrorCode;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("checksum doesn't match in {file}: expected {expected:016x}, got {actual:016x}")]
    ChecksumMismatch {
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error("corrupted data in {file}: {detail}")]
    Corrupt { file: String, detail: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("key expression: {0}")]
    Key(String),
    /// An expression the query layer compiled (a key, a DEFAULT, the
    /// conversion of a column stored in a former type) failed with `code`.
    #[error("{message}")]
    Expression { code: ErrorCode, message: String },
    #[error("table {0} is shut down")]
    ShutDown(String),
    #[error("i/o error: {0}")]
    RawIo(#[from] std::io::Error),
    #[error("Database {0} does not exist")]
    UnknownDatabase(String),
    #[error("Database {0} already exists")]
    DatabaseExists(String),
    #[error("Table {0}.{1} does not exist")]
    UnknownTable(String, String),
    #[error("Table {0}.{1} already exists")]
    TableExists(String, String),
}

impl StorageError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// The ClickHouse code users see for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            StorageError::ChecksumMismatch { .. } => ErrorCode::CHECKSUM_DOESNT_MATCH,
            StorageError::Corrupt { .. } => ErrorCode::CORRUPTED_DATA,
            StorageError::Unsupported(_) => ErrorCode::NOT_IMPLEMENTED,
            StorageError::Io { source, .. } | StorageError::RawIo(source)
                if source.raw_os_error() == Some(28) =>
            {
                ErrorCode::NOT_ENOUGH_SPACE
            }
            StorageError::Io { .. } | StorageError::RawIo(_) => ErrorCode::CANNOT_OPEN_FILE,
            StorageError::Arrow(_) | StorageError::Key(_) => ErrorCode::BAD_ARGUMENTS,
            StorageError::Expression { code, .. } => *code,
            StorageError::ShutDown(_) => ErrorCode::QUERY_WAS_CANCELLED,
            StorageError::UnknownDatabase(_) => ErrorCode::UNKNOWN_DATABASE,
            StorageError::DatabaseExists(_) => ErrorCode::DATABASE_ALREADY_EXISTS,
            StorageError::UnknownTable(..) => ErrorCode::UNKNOWN_TABLE,
            StorageError::TableExists(..) => ErrorCode::TABLE_ALREADY_EXISTS,
        }
    }
}
