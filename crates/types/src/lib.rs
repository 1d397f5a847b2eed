//! Vocabulary shared by every quorumhouse crate.
//!
//! This crate owns the ClickHouse data types and their mapping onto Arrow
//! ([`ChType`]), the table of ClickHouse error codes ([`ErrorCode`]), query
//! settings ([`Settings`]), part names ([`PartName`]), and how values and
//! result sets are printed in ClickHouse's text formats ([`text`], [`formats`]). It knows nothing about
//! disks, SQL or the network.
//!
//! **Architecture Invariant:** numbers in [`ErrorCode`] are ClickHouse's, so a
//! user's error handling written for ClickHouse keeps working.

pub mod encode;
pub mod error_codes;
pub mod formats;
pub mod native;
pub mod part_name;
pub mod row_binary;
pub mod settings;
pub mod text;
pub mod types;

pub use error_codes::{ErrorCode, RetryClass};
pub use part_name::PartName;
pub use settings::Settings;
pub use types::{is_utc_zone, ChType, TupleElement, TypeError, CH_TYPE_KEY};

/// Re-export so dependants name one Arrow version (the one DataFusion uses).
pub use arrow;
