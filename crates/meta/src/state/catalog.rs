//! Databases and tables: what `CREATE`/`ALTER`/`DROP` change. A table is
//! keyed by `db.name`, a replicated one by its coordinator path (`/...`).

use super::*;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMeta {
    pub engine: String,
    pub create_sql: String,
    /// Schema version, 1 at creation, +1 per ALTER.
    pub version: u64,
    pub replicas: BTreeMap<String, ReplicaMeta>,
    /// Index the next log entry gets.
    pub next_log: u64,
    /// Last allocated block number per partition.
    pub block_numbers: BTreeMap<String, u64>,
    pub dedup_count: u64,
    pub next_dedup_seq: u64,
    /// Log entries kept behind a lost replica (0 = the default, 1000).
    #[serde(default)]
    pub max_log_entries: u64,
    /// Block numbers handed out by the retired `Op::AllocateBlock` to
    /// inserts that have not committed yet: partition → block → allocation
    /// time (ms). A merge may not cover one (its part would arrive inside the
    /// merged range); they lapse after [`INFLIGHT_BLOCK_MS`] (the insert
    /// failed). Empty for tables written by this version's inserts, which
    /// allocate at commit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inflight_blocks: BTreeMap<String, BTreeMap<u64, u64>>,
}

pub(super) fn create_database(tx: &mut Tx<'_>, name: &str) -> ApplyResult<()> {
    if tx.s.databases.contains(name) {
        return Err(ApplyError::DatabaseExists(name.to_string()));
    }
    tx.set_database(name.to_string(), true);
    Ok(())
}

/// Drops the database and every table in it.
pub(super) fn drop_database(tx: &mut Tx<'_>, name: &str) -> ApplyResult<()> {
    if !tx.s.databases.contains(name) {
        return Err(ApplyError::DatabaseMissing(name.to_string()));
    }
    let prefix = format!("{name}.");
    let tables: Vec<String> =
        tx.s.tables
            .keys()
            .filter(|t| t.starts_with(&prefix))
            .cloned()
            .collect();
    for t in tables {
        drop_table(tx, &t);
    }
    tx.set_database(name.to_string(), false);
    Ok(())
}

pub(super) fn create_table(
    tx: &mut Tx<'_>,
    table: &str,
    engine: &str,
    create_sql: &str,
    max_log_entries: u64,
) -> ApplyResult<()> {
    if tx.s.tables.contains_key(table) {
        return Err(ApplyError::TableExists(table.to_string()));
    }
    // Replicated tables are keyed by their coordinator path ('/...').
    let db = table.split_once('.').map(|(d, _)| d).unwrap_or("");
    if !table.starts_with('/') && !tx.s.databases.contains(db) {
        return Err(ApplyError::DatabaseMissing(db.to_string()));
    }
    let meta = TableMeta {
        engine: engine.to_string(),
        create_sql: create_sql.to_string(),
        version: 1,
        next_log: 1,
        max_log_entries,
        ..Default::default()
    };
    tx.set_table(table.to_string(), Some(meta));
    Ok(())
}

/// A new schema version, announced to the replicas by an ALTER_METADATA entry.
pub(super) fn alter_table(
    tx: &mut Tx<'_>,
    table: &str,
    create_sql: &str,
    now_ms: u64,
) -> ApplyResult<()> {
    let mut t = tx.table(table)?;
    t.version += 1;
    t.create_sql = create_sql.to_string();
    let version = t.version;
    tx.set_table(table.to_string(), Some(t));
    let entry = LogEntry::AlterMetadata {
        version,
        create_sql: create_sql.to_string(),
    };
    log::append(tx, table, entry, now_ms)?;
    Ok(())
}

/// Removes the table with its log, parts and dedup ids.
pub(super) fn drop_table(tx: &mut Tx<'_>, table: &str) {
    for k in range_keys(&tx.s.log, table) {
        tx.set_log(k, None);
    }
    for k in range_keys(&tx.s.parts, table) {
        tx.set_part(k, None);
    }
    for k in range_keys(&tx.s.dedup, table) {
        tx.set_dedup(k, None);
    }
    for k in range_keys(&tx.s.dedup_order, table) {
        tx.set_dedup_order(k, None);
    }
    tx.set_table(table.to_string(), None);
}

fn range_keys<V>(m: &BTreeMap<String, V>, table: &str) -> Vec<String> {
    let (start, end) = table_range(table);
    m.range(start..end).map(|(k, _)| k.clone()).collect()
}
