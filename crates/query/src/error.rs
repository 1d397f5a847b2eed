//! Errors of the SQL layer, each mapped to a ClickHouse code.

use datafusion::error::DataFusionError;
use qh_storage::StorageError;
use qh_types::ErrorCode;

pub type Result<T, E = QueryError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Malformed SQL; `position` is the 0-based character offset.
    #[error("Syntax error: failed at position {}: {message}", position + 1)]
    Syntax { position: usize, message: String },
    #[error("{0}")]
    UnknownTable(String),
    #[error("{0}")]
    UnknownIdentifier(String),
    #[error("{0}")]
    UnknownFunction(String),
    #[error("{0}")]
    UnknownDatabase(String),
    #[error("{0}")]
    UnknownType(String),
    #[error("Unknown format {0}")]
    UnknownFormat(String),
    /// Input data that does not parse; the message names row and column.
    #[error("Cannot parse input: {0}")]
    CannotParseInput(String),
    #[error("{0}")]
    TypeMismatch(String),
    #[error("{0}")]
    BadArguments(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    NoSuchColumn(String),
    #[error("{0}")]
    DuplicateColumn(String),
    #[error("{0}")]
    Setting(#[from] qh_types::settings::SettingError),
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Codec(#[from] qh_storage::codec::CodecError),
    #[error("{0}")]
    DataFusion(String),
    #[error("{message}")]
    Other { code: ErrorCode, message: String },
}

impl QueryError {
    pub fn code(&self) -> ErrorCode {
        match self {
            QueryError::Syntax { .. } => ErrorCode::SYNTAX_ERROR,
            QueryError::UnknownTable(_) => ErrorCode::UNKNOWN_TABLE,
            QueryError::UnknownIdentifier(_) => ErrorCode::UNKNOWN_IDENTIFIER,
            QueryError::UnknownFunction(_) => ErrorCode::UNKNOWN_FUNCTION,
            QueryError::UnknownDatabase(_) => ErrorCode::UNKNOWN_DATABASE,
            QueryError::UnknownType(_) => ErrorCode::UNKNOWN_TYPE,
            QueryError::UnknownFormat(_) => ErrorCode::UNKNOWN_FORMAT,
            QueryError::CannotParseInput(_) => ErrorCode::CANNOT_PARSE_INPUT_ASSERTION_FAILED,
            QueryError::TypeMismatch(_) => ErrorCode::TYPE_MISMATCH,
            QueryError::BadArguments(_) => ErrorCode::BAD_ARGUMENTS,
            QueryError::NotImplemented(_) => ErrorCode::NOT_IMPLEMENTED,
            QueryError::NoSuchColumn(_) => ErrorCode::NO_SUCH_COLUMN_IN_TABLE,
            QueryError::DuplicateColumn(_) => ErrorCode::DUPLICATE_COLUMN,
            QueryError::Setting(e) => e.code(),
            QueryError::Storage(e) => e.code(),
            QueryError::Codec(e) => e.code(),
            QueryError::DataFusion(_) => ErrorCode::BAD_ARGUMENTS,
            QueryError::Other { code, .. } => *code,
        }
    }

    pub fn other(code: ErrorCode, message: impl Into<String>) -> Self {
        QueryError::Other {
            code,
            message: message.into(),
        }
    }
}

impl From<qh_replication::ReplicationError> for QueryError {
    fn from(e: qh_replication::ReplicationError) -> Self {
        match e {
            qh_replication::ReplicationError::Storage(s) => QueryError::Storage(s),
            other => QueryError::Other {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl From<DataFusionError> for QueryError {
    /// DataFusion's planning errors carry no codes; recognise the common ones
    /// by their text so users see ClickHouse's codes.
    fn from(e: DataFusionError) -> Self {
        let e = e.find_root();
        if let DataFusionError::External(inner) = e {
            if let Some(se) = inner.downcast_ref::<StorageError>() {
                return QueryError::other(se.code(), se.to_string());
            }
            if let Some(qe) = inner.downcast_ref::<QueryError>() {
                return QueryError::other(qe.code(), qe.to_string());
            }
        }
        if let DataFusionError::ArrowError(a, _) = e {
            if matches!(**a, datafusion::arrow::error::ArrowError::DivideByZero) {
                return QueryError::other(ErrorCode::ILLEGAL_DIVISION, "Division by zero");
            }
        }
        if let DataFusionError::ResourcesExhausted(m) = e {
            // Our pool's own words (limits.rs), or a spill-less operator's.
            return QueryError::other(ErrorCode::MEMORY_LIMIT_EXCEEDED, m.clone());
        }
        let msg = match e {
            DataFusionError::Plan(m) | DataFusionError::Execution(m) => m.clone(),
            DataFusionError::SchemaError(se, _) => se.to_string(),
            other => other.to_string(),
        };
        if msg.contains("table") && msg.contains("not found") {
            QueryError::UnknownTable(msg)
        } else if msg.contains("No field named") || msg.contains("not found in") {
            QueryError::UnknownIdentifier(format!("Missing columns or unknown identifier: {msg}"))
        } else if msg.contains("Invalid function")
            || msg.contains("not found in the function registry")
        {
            QueryError::UnknownFunction(msg)
        } else if msg.contains("Cast error") || msg.contains("Cannot cast") {
            QueryError::other(ErrorCode::CANNOT_CONVERT_TYPE, msg)
        } else if matches!(e, DataFusionError::NotImplemented(_)) {
            QueryError::NotImplemented(msg)
        } else if matches!(e, DataFusionError::SQL(..)) {
            QueryError::Syntax {
                position: 0,
                message: msg,
            }
        } else {
            QueryError::DataFusion(msg)
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for QueryError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        QueryError::from(DataFusionError::ArrowError(Box::new(e), None))
    }
}

/// Turns a sqlparser error into SYNTAX_ERROR with a character position.
pub fn syntax_error(
    sql: &str,
    err: &datafusion::sql::sqlparser::parser::ParserError,
) -> QueryError {
    let text = err.to_string();
    let position = line_col(&text)
        .map(|(l, c)| offset_of(sql, l, c))
        .unwrap_or(0);
    let message = text.trim_start_matches("sql parser error: ").to_string();
    QueryError::Syntax { position, message }
}

fn line_col(msg: &str) -> Option<(usize, usize)> {
    let l = msg.find("Line: ")?;
    let rest = &msg[l + 6..];
    let line: usize = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let c = rest.find("Column: ")?;
    let col: usize = rest[c + 8..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((line, col))
}

fn offset_of(sql: &str, line: usize, col: usize) -> usize {
    let mut off = 0;
    for (i, l) in sql.split('\n').enumerate() {
        if i + 1 == line {
            return off + col.saturating_sub(1);
        }
        off += l.chars().count() + 1;
    }
    off
}
