//! The MergeTree storage engine.
//!
//! Owns everything on disk below `<data-dir>/data/`: databases and tables
//! ([`catalog`]), a table's set of immutable parts ([`table`]), the part file
//! format ([`part`], [`codec`]), sorting and partitioning of inserted rows
//! ([`keys`]) and merges ([`merge`]).
//!
//! **Architecture Invariant:** storage knows nothing about SQL, Raft or the
//! network. Key expressions arrive compiled, as a [`keys::KeyEvaluator`].
//!
//! **Architecture Invariant:** a part directory that exists under its own name
//! is complete and fsynced; anything half-written lives under `tmp_*` and is
//! removed at start-up.

pub mod catalog;
pub mod codec;
pub mod error;
pub mod fsutil;
pub mod keys;
pub mod merge;
pub mod meta;
pub mod part;
pub mod table;

pub use catalog::{BackgroundMerges, Catalog, KeysFactory, TEMPORARY_DATABASE};
pub use error::{Result, StorageError};
pub use keys::{ColumnDefaults, ComputedDefault, KeyEvaluator};
pub use meta::{ColumnDef, ColumnKind, EngineKind, ReplicationParams, TableMeta};
pub use part::Part;
pub use table::{InsertTxn, MergeTreeTable};
