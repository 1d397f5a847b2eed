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
    NUMBER_OF_COLUMNS_DOESNT_MATCH = 7,
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
    UNKNOWN_QUERY_PARAMETER = 456,
    SESSION_IS_LOCKED = 373,
    INVALID_SESSION_TIMEOUT = 374,
    BAD_QUERY_PARAMETER = 457,
    UNKNOWN_DATABASE = 81,
    DATABASE_ALREADY_EXISTS = 82,
    UNKNOWN_FORMAT = 73,
    BAD_ARGUMENTS = 36,
    ILLEGAL_COLUMN = 44,
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
    INVALID_SETTING_VALUE = 471,
    ATTEMPT_TO_READ_AFTER_EOF = 32,
    TOO_DEEP_AST = 167,
    QUERY_IS_TOO_LARGE = 229,
    TOO_BIG_AST = 168,
    READONLY = 164,
    TOO_MANY_BYTES = 307,
    TOO_MANY_ROWS_OR_BYTES = 396,
    TOO_MANY_SIMULTANEOUS_QUERIES = 202,
    UNKNOWN_EXCEPTION = 1002,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
