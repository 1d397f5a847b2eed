//! ClickHouse error codes (number ↔ NAME), as in ClickHouse's `ErrorCodes.cpp`.

use std::fmt;

macro_rules! codes {
    ($($name:ident = $num:expr,)*) => {
        /// A ClickHouse error code. `code as i32` is the number users see.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum ErrorCode { $($name = $num,)* }

        impl ErrorCode {
            /// The ClickHouse name, e.g. `UNKNOWN_TABLE`.
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name),)* }
            }
            /// Looks a code up by number.
            pub fn from_i32(n: i32) -> Option<Self> {
                match n { $($num => Some(ErrorCode::$name),)* _ => None }
            }
            /// Every known code (feeds `system.errors`).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];
        }
    };
}

codes! {
    OK = 0,
    NOT_IMPLEMENTED = 48,
    NUMBER_OF_ARGUMENTS_DOESNT_MATCH = 42,
    STORAGE_REQUIRES_PARAMETER = 55,
    INCOMPATIBLE_COLUMNS = 122,
    LOGICAL_ERROR = 49,
    UNKNOWN_TYPE = 50,
    INCORRECT_NUMBER_OF_COLUMNS = 7,
    NUMBER_OF_COLUMNS_DOESNT_MATCH = 20,
    INCORRECT_ELEMENT_OF_SET = 124,
    CANNOT_PARSE_TEXT = 6,
    CANNOT_PARSE_INPUT_ASSERTION_FAILED = 27,
    CANNOT_PARSE_NUMBER = 72,
    CANNOT_PARSE_DATE = 38,
    CANNOT_PARSE_DATETIME = 41,
    CHECKSUM_DOESNT_MATCH = 40,
    ILLEGAL_TYPE_OF_ARGUMENT = 43,
    UNKNOWN_IDENTIFIER = 47,
    TYPE_MISMATCH = 53,
    UNKNOWN_TABLE = 60,
    SYNTAX_ERROR = 62,
    UNKNOWN_AGGREGATE_FUNCTION = 63,
    CANNOT_READ_ALL_DATA = 33,
    INCORRECT_DATA = 117,
    UNKNOWN_FUNCTION = 46,
    CANNOT_CONVERT_TYPE = 70,
    TABLE_ALREADY_EXISTS = 57,
    DUPLICATE_COLUMN = 15,
    NO_SUCH_COLUMN_IN_TABLE = 16,
    UNKNOWN_SETTING = 115,
    ILLEGAL_DIVISION = 153,
    SIZES_OF_ARRAYS_DONT_MATCH = 190,
    INCORRECT_QUERY = 80,
    BAD_DATABASE_FOR_TEMPORARY_TABLE = 442,
    UNKNOWN_QUERY_PARAMETER = 456,
    SESSION_IS_LOCKED = 373,
    INVALID_SESSION_TIMEOUT = 374,
    BAD_QUERY_PARAMETER = 457,
    UNKNOWN_DATABASE = 81,
    DATABASE_ALREADY_EXISTS = 82,
    UNKNOWN_FORMAT = 73,
    BAD_ARGUMENTS = 36,
    PARAMETER_OUT_OF_BOUND = 12,
    ILLEGAL_COLUMN = 44,
    TOO_LARGE_STRING_SIZE = 131,
    UNKNOWN_STORAGE = 56,
    NOT_ENOUGH_SPACE = 243,
    CANNOT_WRITE_TO_FILE_DESCRIPTOR = 75,
    CANNOT_OPEN_FILE = 76,
    FILE_DOESNT_EXIST = 107,
    QUERY_WAS_CANCELLED = 394,
    QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING = 216,
    CLUSTER_DOESNT_EXIST = 701,
    TOO_MANY_ROWS = 158,
    MEMORY_LIMIT_EXCEEDED = 241,
    TABLE_IS_READ_ONLY = 242,
    CORRUPTED_DATA = 246,
    ILLEGAL_SYNTAX_FOR_CODEC_TYPE = 431,
    UNKNOWN_CODEC = 432,
    ILLEGAL_CODEC_PARAMETER = 433,
    UNKNOWN_PART_TYPE = 247,
    NO_REPLICA_HAS_PART = 234,
    TOO_FEW_LIVE_REPLICAS = 285,
    UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE = 286,
    REPLICA_IS_NOT_IN_QUORUM = 289,
    ALL_REPLICAS_ARE_STALE = 369,
    UNKNOWN_STATUS_OF_INSERT = 319,
    METADATA_MISMATCH = 342,
    ABORTED = 236,
    REPLICA_ALREADY_EXISTS = 253,
    ALL_CONNECTION_TRIES_FAILED = 279,
    NETWORK_ERROR = 210,
    TIMEOUT_EXCEEDED = 159,
    KEEPER_EXCEPTION = 999,
    LIMIT_EXCEEDED = 290,
    CANNOT_UPDATE_COLUMN = 420,
    INVALID_SETTING_VALUE = 471,
    ATTEMPT_TO_READ_AFTER_EOF = 32,
    TOO_DEEP_AST = 167,
    QUERY_IS_TOO_LARGE = 229,
    TOO_BIG_AST = 168,
    READONLY = 164,
    TOO_MANY_BYTES = 307,
    TOO_MANY_ROWS_OR_BYTES = 396,
    TOO_MANY_SIMULTANEOUS_QUERIES = 202,
    UNKNOWN_USER = 192,
    ACCESS_ENTITY_ALREADY_EXISTS = 493,
    UNKNOWN_ROLE = 511,
    THERE_IS_NO_PROFILE = 180,
    UNKNOWN_QUOTA = 199,
    QUOTA_EXCEEDED = 201,
    SETTING_CONSTRAINT_VIOLATION = 452,
    ACCESS_STORAGE_READONLY = 495,
    ACCESS_DENIED = 497,
    AUTHENTICATION_FAILED = 516,
    ARGUMENT_OUT_OF_BOUND = 69,
    INDEX_OF_POSITIONAL_ARGUMENT_IS_OUT_OF_RANGE = 353,
    DECIMAL_OVERFLOW = 407,
    ILLEGAL_FINAL = 181,
    TOO_DEEP_RECURSION = 306,
    INFINITE_LOOP = 269,
    NOT_FOUND_COLUMN_IN_BLOCK = 10,
    THERE_IS_NO_DEFAULT_VALUE = 116,
    ALTER_OF_COLUMN_IS_FORBIDDEN = 524,
    UNKNOWN_EXCEPTION = 1002,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a client may do after a statement failed with a code: the one
/// rule the client library's fail-over and the fault-injection harness use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Nothing took effect: send the same statement again, to this node or
    /// another.
    Retryable,
    /// It may or may not have taken effect (an INSERT whose commit was not
    /// confirmed): retry only with the same `insert_deduplication_token`,
    /// which makes the retry answer the first attempt's part.
    UnknownOutcome,
    /// Retrying gives the same answer: fix the statement or the data.
    Final,
}

impl ErrorCode {
    pub fn retry_class(self) -> RetryClass {
        use ErrorCode::*;
        match self {
            // Refused before anything was written: no live quorum, no
            // leader (the table is read-only meanwhile), a replica behind,
            // a node at its limit, nobody reachable.
            TOO_FEW_LIVE_REPLICAS
            | UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
            | REPLICA_IS_NOT_IN_QUORUM
            | ALL_REPLICAS_ARE_STALE
            | NO_REPLICA_HAS_PART
            | TABLE_IS_READ_ONLY
            | TOO_MANY_SIMULTANEOUS_QUERIES
            | SESSION_IS_LOCKED
            | ALL_CONNECTION_TRIES_FAILED => RetryClass::Retryable,
            // Sent, but the answer was lost or came too late.
            UNKNOWN_STATUS_OF_INSERT | NETWORK_ERROR | TIMEOUT_EXCEEDED | KEEPER_EXCEPTION => {
                RetryClass::UnknownOutcome
            }
            _ => RetryClass::Final,
        }
    }
}

/// Renders an error the way `clickhouse-client` does, as fixed in the CLI
/// contract: `Code: 60. Table default.x does not exist. (UNKNOWN_TABLE)`.
pub fn render(code: ErrorCode, message: &str) -> String {
    let msg = message.trim_end_matches('.');
    format!("Code: {}. {}. ({})", code as i32, msg, code.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classes() {
        assert_eq!(
            ErrorCode::TOO_FEW_LIVE_REPLICAS.retry_class(),
            RetryClass::Retryable
        );
        assert_eq!(
            ErrorCode::UNKNOWN_STATUS_OF_INSERT.retry_class(),
            RetryClass::UnknownOutcome
        );
        assert_eq!(ErrorCode::SYNTAX_ERROR.retry_class(), RetryClass::Final);
    }

    #[test]
    fn numbers_and_names_roundtrip() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_i32(*c as i32), Some(*c));
        }
        assert_eq!(ErrorCode::TOO_FEW_LIVE_REPLICAS as i32, 285);
        assert_eq!(ErrorCode::SYNTAX_ERROR.name(), "SYNTAX_ERROR");
    }

    #[test]
    fn renders_like_clickhouse_client() {
        assert_eq!(
            render(ErrorCode::UNKNOWN_TABLE, "Table default.x does not exist"),
            "Code: 60. Table default.x does not exist. (UNKNOWN_TABLE)"
        );
    }
}
