//! A table's definition as stored in `<table dir>/table.json`.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use qh_types::ChType;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};
use crate::fsutil;

/// On-disk format version of `table.json`; bump with an upgrade path.
pub const TABLE_META_VERSION: u32 = 1;

/// How a column declared with an expression gets its value: ClickHouse's
/// `DEFAULT`, `MATERIALIZED` and `ALIAS`. The last two are computed on
/// every insert (never given by one) and left out of `SELECT *` and of an
/// INSERT without a column list. An ALIAS is stored like a MATERIALIZED
/// column (its expression over the row's own values gives the same value
/// as computing it on read, since rows are never updated in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ColumnKind {
    #[default]
    Default,
    Materialized,
    Alias,
}

impl ColumnKind {
    /// The keyword of the column's declaration.
    pub fn keyword(self) -> &'static str {
        match self {
            ColumnKind::Default => "DEFAULT",
            ColumnKind::Materialized => "MATERIALIZED",
            ColumnKind::Alias => "ALIAS",
        }
    }

    /// Left out of `SELECT *` and computed on every insert.
    pub fn is_computed(self) -> bool {
        self != ColumnKind::Default
    }

    fn is_default(&self) -> bool {
        *self == ColumnKind::Default
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ChType,
    /// `DEFAULT expr` as SQL text, evaluated by the query layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Which kind of expression `default` is (tables written before this
    /// field existed have only DEFAULTs).
    #[serde(default, skip_serializing_if = "ColumnKind::is_default")]
    pub kind: ColumnKind,
    /// `CODEC(...)` as declared and validated; none: the default (LZ4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<crate::codec::CodecChain>,
    /// Types this column had before `MODIFY COLUMN` changed it: parts
    /// written then still hold them, and reads convert them as `CAST` would.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former_types: Vec<ChType>,
}

/// The table engine and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum EngineKind {
    MergeTree,
    /// Keeps, per sorting key, the row with the highest `version` (the last
    /// inserted when there is none); rows with `is_deleted = 1` vanish in FINAL.
    ReplacingMergeTree {
        version: Option<String>,
        is_deleted: Option<String>,
    },
    /// Kept in memory only (ClickHouse's Memory engine); lost on restart.
    Memory,
    /// Holds no data: a view over the table `database.table` on every shard
    /// of `cluster` (ClickHouse's Distributed). Reads scatter to one replica
    /// of each shard; inserts split rows by `sharding_key` (SQL text).
    Distributed {
        cluster: String,
        database: String,
        table: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sharding_key: Option<String>,
    },
    /// Holds no data: ClickHouse's normal view. Reading it reads `query`
    /// (the SELECT as written at CREATE) in its place, its unqualified
    /// tables in `database` (the current one at CREATE); the columns are
    /// those its result had then.
    View {
        query: String,
        database: String,
    },
    /// Holds no data on the node: ClickHouse's KeeperMap, a key-value table
    /// kept in the coordinator under `root` (every table naming the same
    /// root, on any node, shares its rows). One row per value of the single
    /// primary-key column; writes are Raft commits and reads linearizable.
    KeeperMap {
        root: String,
        /// At most this many keys (0: no limit); soft, as in ClickHouse.
        #[serde(default)]
        keys_limit: u64,
    },
}

impl EngineKind {
    pub fn name(&self) -> &'static str {
        match self {
            EngineKind::MergeTree => "MergeTree",
            EngineKind::ReplacingMergeTree { .. } => "ReplacingMergeTree",
            EngineKind::Memory => "Memory",
            EngineKind::Distributed { .. } => "Distributed",
            EngineKind::View { .. } => "View",
            EngineKind::KeeperMap { .. } => "KeeperMap",
        }
    }
}

/// Where a Replicated* table lives in the coordinator, with macros expanded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationParams {
    /// The table's coordinator path (`'/clickhouse/tables/{shard}/events'`).
    pub path: String,
    /// This replica's name among the table's replicas.
    pub replica: String,
    /// The engine arguments as written, before macro expansion (SHOW CREATE).
    #[serde(default)]
    pub path_template: String,
    #[serde(default)]
    pub replica_template: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    pub format_version: u32,
    pub database: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub engine: EngineKind,
    /// ORDER BY expressions as SQL text (empty = `tuple()`).
    pub order_by: Vec<String>,
    /// PRIMARY KEY expressions (a prefix of ORDER BY); defaults to ORDER BY.
    pub primary_key: Vec<String>,
    /// PARTITION BY expression as SQL text.
    pub partition_by: Option<String>,
    /// Plain column names the sparse index keeps min/max of per granule: the
    /// columns used by the primary key and the partition key.
    pub index_columns: Vec<String>,
    pub settings: BTreeMap<String, String>,
    /// Bumped by every ALTER.
    pub schema_version: u64,
    /// Set for the Replicated* engines: merges, inserts and drops go through
    /// the coordinator's replication log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<ReplicationParams>,
}

impl TableMeta {
    /// The engine's name as ClickHouse shows it (`ReplicatedMergeTree`, ...).
    pub fn engine_name(&self) -> String {
        match &self.replicated {
            Some(_) => format!("Replicated{}", self.engine.name()),
            None => self.engine.name().to_string(),
        }
    }

    /// The definition replicas of one table must agree on: everything but
    /// the local name and the replica identity.
    pub fn shared_definition(&self) -> TableMeta {
        let mut m = self.clone();
        m.database.clear();
        m.name.clear();
        m.replicated = None;
        m
    }

    pub fn index_granularity(&self) -> usize {
        self.settings
            .get("index_granularity")
            .and_then(|v| v.parse().ok())
            .filter(|v: &usize| *v > 0)
            .unwrap_or(8192)
    }

    /// The settings that shape this table's parts (granularity, and when a
    /// part is compact or wide).
    pub fn part_format(&self) -> crate::part::PartFormat {
        let d = crate::part::PartFormat::default();
        let get = |name: &str, default: u64| {
            self.settings
                .get(name)
                .and_then(|v| v.trim_matches('\'').parse().ok())
                .unwrap_or(default)
        };
        crate::part::PartFormat {
            granularity: self.index_granularity(),
            min_bytes_for_wide_part: get("min_bytes_for_wide_part", d.min_bytes_for_wide_part),
            min_rows_for_wide_part: get("min_rows_for_wide_part", d.min_rows_for_wide_part),
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The Arrow schema of the table's current columns.
    pub fn arrow_schema(&self) -> SchemaRef {
        std::sync::Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| c.ty.field(&c.name))
                .collect::<Vec<_>>(),
        ))
    }

    pub fn load(path: &Path) -> Result<TableMeta> {
        let bytes = std::fs::read(path).map_err(|e| StorageError::io(path, e))?;
        let meta: TableMeta =
            serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
                file: path.display().to_string(),
                detail: e.to_string(),
            })?;
        if meta.format_version > TABLE_META_VERSION {
            return Err(StorageError::Unsupported(format!(
                "{} has format version {}, this build reads up to {}",
                path.display(),
                meta.format_version,
                TABLE_META_VERSION
            )));
        }
        Ok(meta)
    }

    /// Writes atomically: a crash leaves the old or the new file, never half.
    pub fn store(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| StorageError::Corrupt {
            file: path.display().to_string(),
            detail: e.to_string(),
        })?;
        fsutil::write_atomic(path, &bytes)
    }
}
