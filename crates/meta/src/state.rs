//! The replicated state: what ClickHouse keeps in Keeper, as typed maps.
//!
//! Applying a [`Request`] is deterministic (time comes from the request, maps
//! are ordered), so every replica that applies the same log holds the same
//! bytes. A transaction is atomic: each mutation records its inverse and a
//! failed check or op rolls back what the transaction already did.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::{
    Check, CommittedPart, LogEntry, NewPart, Op, OpResult, Request, Response, COMMAND_VERSION,
};
use crate::NodeId;

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
    /// Block numbers handed to inserts that have not committed yet:
    /// partition → block → allocation time (ms). A merge may not cover one
    /// (its part would arrive inside the merged range); they lapse after
    /// [`INFLIGHT_BLOCK_MS`] (the insert failed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inflight_blocks: BTreeMap<String, BTreeMap<u64, u64>>,
}

/// How long an allocated, uncommitted block number holds back merges.
pub const INFLIGHT_BLOCK_MS: u64 = 30_000;

/// Log entries kept for an inactive lagging replica by default.
pub const DEFAULT_MAX_LOG_ENTRIES: u64 = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaMeta {
    pub node_id: NodeId,
    pub address: String,
    /// The replica executed log entries below this index.
    pub log_pointer: u64,
    /// Fell too far behind while inactive; the log was trimmed past it, so
    /// it must clone the current part set instead of replaying the log.
    #[serde(default)]
    pub is_lost: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub holders: BTreeSet<String>,
    /// Set once a MERGE_PARTS entry takes this part: it is no longer in the
    /// table's current part set, but replicas may still fetch it until they
    /// executed the merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merging_into: Option<String>,
    /// Digest of the part's checksums, set by the first holder; a replica
    /// whose copy differs is refused (it must fetch instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// `insert_quorum` of the insert that wrote it (0: none); a merge of
    /// quorum parts carries the largest. `select_sequential_consistency`
    /// reads require these.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quorum: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupBlock {
    pub part: String,
    pub created_ms: u64,
    pub seq: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub address: String,
    pub renewed_ms: u64,
    pub expires_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DdlTask {
    pub query: String,
    pub initiator: NodeId,
    #[serde(default)]
    pub database: String,
    /// See `Op::EnqueueDdl`: the cluster and the nodes that run the task
    /// (empty: every voter).
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub hosts: Vec<crate::command::DdlHost>,
    pub created_ms: u64,
    /// Node id → error text ("" when it succeeded).
    pub finished: BTreeMap<NodeId, String>,
}

impl DdlTask {
    /// This node's place in the task's cluster, when the task names it.
    pub fn place(&self, node: NodeId) -> Option<crate::command::DdlHost> {
        self.hosts.iter().find(|h| h.node == node).copied()
    }
}

/// Everything the coordinator stores. Keys of the per-table maps are
/// `table + '\0' + item` (log indexes zero-padded), so one table's items are a
/// contiguous, ordered range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaState {
    pub databases: BTreeSet<String>,
    pub tables: BTreeMap<String, TableMeta>,
    pub log: BTreeMap<String, LogEntry>,
    pub parts: BTreeMap<String, PartMeta>,
    pub dedup: BTreeMap<String, DedupBlock>,
    /// `table\0seq` → block id: the dedup window's age order.
    pub dedup_order: BTreeMap<String, String>,
    pub leases: BTreeMap<NodeId, Lease>,
    pub ddl: BTreeMap<u64, DdlTask>,
    pub next_ddl: u64,
    pub kv: BTreeMap<String, String>,
    /// The coordinator's clock: the largest `now_ms` of any applied command.
    /// Commit deadlines are judged by it, so every replica agrees.
    #[serde(default)]
    pub clock_ms: u64,
    /// Stage ids committed by [`Op::CommitParts`] whose deadline has not
    /// passed: `table\0stage` → deadline. Past the deadline a commit is
    /// refused anyway, so the entry can go.
    #[serde(default)]
    pub committed_stages: BTreeMap<String, u64>,
    /// The same, ordered by deadline for pruning: `deadline\0table\0stage`.
    #[serde(default)]
    pub stage_expiry: BTreeSet<String>,
}

pub fn item_key(table: &str, item: &str) -> String {
    format!("{table}\0{item}")
}

pub fn index_key(table: &str, index: u64) -> String {
    format!("{table}\0{index:020}")
}

/// The `[start, end)` key range holding one table's items.
fn table_range(table: &str) -> (String, String) {
    (format!("{table}\0"), format!("{table}\u{1}"))
}

fn item_of<'a>(key: &'a str, table: &str) -> &'a str {
    &key[table.len() + 1..]
}

type Undo = Vec<Box<dyn FnOnce(&mut MetaState) + Send>>;

/// A transaction in progress: mutations go through here so they can be undone.
struct Tx<'a> {
    s: &'a mut MetaState,
    undo: Undo,
}

macro_rules! journaled_set {
    ($name:ident, $field:ident, $k:ty, $v:ty) => {
        fn $name(&mut self, key: $k, val: Option<$v>) -> Option<$v> {
            let old = match val {
                Some(v) => self.s.$field.insert(key.clone(), v),
                None => self.s.$field.remove(&key),
            };
            let restore = old.clone();
            self.undo.push(Box::new(move |s: &mut MetaState| {
                match restore {
                    Some(v) => s.$field.insert(key, v),
                    None => s.$field.remove(&key),
                };
            }));
            old
        }
    };
}

impl Tx<'_> {
    journaled_set!(set_table, tables, String, TableMeta);
    journaled_set!(set_log, log, String, LogEntry);
    journaled_set!(set_part, parts, String, PartMeta);
    journaled_set!(set_dedup, dedup, String, DedupBlock);
    journaled_set!(set_dedup_order, dedup_order, String, String);
    journaled_set!(set_lease, leases, NodeId, Lease);
    journaled_set!(set_ddl, ddl, u64, DdlTask);
    journaled_set!(set_kv, kv, String, String);
    journaled_set!(set_committed_stage, committed_stages, String, u64);

    fn set_stage_expiry(&mut self, key: String, present: bool) {
        let was = if present {
            !self.s.stage_expiry.insert(key.clone())
        } else {
            self.s.stage_expiry.remove(&key)
        };
        self.undo.push(Box::new(move |s: &mut MetaState| {
            if was {
                s.stage_expiry.insert(key);
            } else {
                s.stage_expiry.remove(&key);
            }
        }));
    }

    fn set_database(&mut self, name: String, present: bool) {
        let was = if present {
            !self.s.databases.insert(name.clone())
        } else {
            self.s.databases.remove(&name)
        };
        self.undo.push(Box::new(move |s: &mut MetaState| {
            if was {
                s.databases.insert(name);
            } else {
                s.databases.remove(&name);
            }
        }));
    }

    fn set_next_ddl(&mut self, next: u64) {
        let old = std::mem::replace(&mut self.s.next_ddl, next);
        self.undo
            .push(Box::new(move |s: &mut MetaState| s.next_ddl = old));
    }

    fn table(&self, table: &str) -> Result<TableMeta, String> {
        self.s
            .tables
            .get(table)
            .cloned()
            .ok_or_else(|| format!("table {table} does not exist"))
    }

    fn rollback(self) {
        let Tx { s, undo } = self;
        for f in undo.into_iter().rev() {
            f(s);
        }
    }
}

impl MetaState {
    /// Applies one command. Never panics on bad input: an invalid command is a
    /// `Rejected` response and leaves the state unchanged.
    pub fn apply(&mut self, req: &Request) -> Response {
        if req.v > COMMAND_VERSION {
            return Response::Rejected {
                index: 0,
                reason: format!(
                    "command version {} is newer than this node understands ({COMMAND_VERSION})",
                    req.v
                ),
            };
        }
        for (index, check) in req.checks.iter().enumerate() {
            if let Err((reason, detail)) = self.check(check) {
                return Response::CheckFailed {
                    index,
                    reason,
                    detail,
                };
            }
        }
        // The clock moves only with applied transactions (a refused one
        // changes nothing); deterministic, as every replica applies the same
        // commands in order.
        let clock = self.clock_ms;
        self.clock_ms = clock.max(req.now_ms);
        let mut tx = Tx {
            s: self,
            undo: Vec::new(),
        };
        let mut results = Vec::with_capacity(req.ops.len());
        for (index, op) in req.ops.iter().enumerate() {
            match apply_op(&mut tx, op, req.now_ms) {
                Ok(r) => results.push(r),
                Err(reason) => {
                    tx.rollback();
                    self.clock_ms = clock;
                    return Response::Rejected { index, reason };
                }
            }
        }
        Response::Ok { results }
    }

    fn check(&self, check: &Check) -> Result<(), (String, Option<String>)> {
        let fail = |reason: String| Err((reason, None));
        match check {
            Check::TableVersion { table, version } => match self.tables.get(table) {
                Some(t) if t.version == *version => Ok(()),
                Some(t) => fail(format!(
                    "table {table} has schema version {}, expected {version}",
                    t.version
                )),
                None => fail(format!("table {table} does not exist")),
            },
            Check::TableExists { table } if self.tables.contains_key(table) => Ok(()),
            Check::TableExists { table } => fail(format!("table {table} does not exist")),
            Check::TableAbsent { table } if self.tables.contains_key(table) => {
                fail(format!("table {table} already exists"))
            }
            Check::TableAbsent { .. } => Ok(()),
            Check::DatabaseExists { name } if self.databases.contains(name) => Ok(()),
            Check::DatabaseExists { name } => fail(format!("database {name} does not exist")),
            Check::DedupAbsent { table, block_id } => {
                match self.dedup.get(&item_key(table, block_id)) {
                    Some(b) => Err((
                        format!("block {block_id} was already inserted"),
                        Some(b.part.clone()),
                    )),
                    None => Ok(()),
                }
            }
            Check::PartAbsent { table, part }
                if self.parts.contains_key(&item_key(table, part)) =>
            {
                fail(format!("part {part} of {table} already exists"))
            }
            Check::PartAbsent { .. } => Ok(()),
            Check::KeyEquals { key, value } if self.kv.get(key) == value.as_ref() => Ok(()),
            Check::KeyEquals { key, value } => Err((
                format!("key {key} is {:?}, expected {value:?}", self.kv.get(key)),
                self.kv.get(key).cloned(),
            )),
        }
    }

    /// Log entries of `table` from index `from` on, in order.
    pub fn log_from(&self, table: &str, from: u64) -> Vec<(u64, LogEntry)> {
        let (_, end) = table_range(table);
        self.log
            .range(index_key(table, from)..end)
            .filter_map(|(k, e)| item_of(k, table).parse().ok().map(|i| (i, e.clone())))
            .collect()
    }

    /// Parts of `table` with their holders.
    pub fn parts_of(&self, table: &str) -> Vec<(String, PartMeta)> {
        let (start, end) = table_range(table);
        self.parts
            .range(start..end)
            .map(|(k, p)| (item_of(k, table).to_string(), p.clone()))
            .collect()
    }

    pub fn dedup_block(&self, table: &str, block_id: &str) -> Option<&DedupBlock> {
        self.dedup.get(&item_key(table, block_id))
    }

    /// Whether the node's lease is valid at `now_ms`.
    pub fn lease_active(&self, node_id: NodeId, now_ms: u64) -> bool {
        self.leases
            .get(&node_id)
            .is_some_and(|l| now_ms < l.expires_ms)
    }

    /// Canonical bytes of the state (ordered maps, so equal states give equal bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn apply_op(tx: &mut Tx<'_>, op: &Op, now_ms: u64) -> Result<OpResult, String> {
    match op {
        Op::CreateDatabase { name } => {
            if tx.s.databases.contains(name) {
                return Err(format!("database {name} already exists"));
            }
            tx.set_database(name.clone(), true);
        }
        Op::DropDatabase { name } => {
            if !tx.s.databases.contains(name) {
                return Err(format!("database {name} does not exist"));
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
            tx.set_database(name.clone(), false);
        }
        Op::CreateTable {
            table,
            engine,
            create_sql,
            max_log_entries,
        } => {
            if tx.s.tables.contains_key(table) {
                return Err(format!("table {table} already exists"));
            }
            // Replicated tables are keyed by their coordinator path ('/...').
            let db = table.split_once('.').map(|(d, _)| d).unwrap_or("");
            if !table.starts_with('/') && !tx.s.databases.contains(db) {
                return Err(format!("database {db} does not exist"));
            }
            let meta = TableMeta {
                engine: engine.clone(),
                create_sql: create_sql.clone(),
                version: 1,
                next_log: 1,
                max_log_entries: *max_log_entries,
                ..Default::default()
            };
            tx.set_table(table.clone(), Some(meta));
        }
        Op::AlterTable { table, create_sql } => {
            let mut t = tx.table(table)?;
            t.version += 1;
            t.create_sql = create_sql.clone();
            let version = t.version;
            tx.set_table(table.clone(), Some(t));
            append_log(
                tx,
                table,
                LogEntry::AlterMetadata {
                    version,
                    create_sql: create_sql.clone(),
                },
                now_ms,
            )?;
        }
        Op::DropTable { table } => {
            tx.table(table)?;
            drop_table(tx, table);
        }
        Op::AddReplica {
            table,
            replica,
            node_id,
            address,
        } => {
            let mut t = tx.table(table)?;
            if t.replicas.contains_key(replica) {
                return Err(format!("replica {replica} of {table} already exists"));
            }
            // A new replica starts at the log's head: it clones the current part set.
            let meta = ReplicaMeta {
                node_id: *node_id,
                address: address.clone(),
                log_pointer: t.next_log,
                is_lost: false,
            };
            t.replicas.insert(replica.clone(), meta);
            tx.set_table(table.clone(), Some(t));
        }
        Op::RemoveReplica { table, replica } => {
            let mut t = tx.table(table)?;
            if t.replicas.remove(replica).is_none() {
                return Err(format!("replica {replica} of {table} does not exist"));
            }
            tx.set_table(table.clone(), Some(t));
            for (part, mut meta) in tx.s.parts_of(table) {
                if meta.holders.remove(replica) {
                    tx.set_part(item_key(table, &part), Some(meta));
                }
            }
            trim_log(tx, table)?;
        }
        Op::AppendLog { table, entry } => {
            return append_log(tx, table, entry.clone(), now_ms).map(OpResult::LogIndex)
        }
        Op::SetLogPointer {
            table,
            replica,
            pointer,
        } => {
            let mut t = tx.table(table)?;
            let r = t
                .replicas
                .get_mut(replica)
                .ok_or_else(|| format!("replica {replica} of {table} does not exist"))?;
            if *pointer > t.next_log {
                return Err(format!(
                    "log pointer {pointer} is past the log's end {}",
                    t.next_log
                ));
            }
            r.log_pointer = r.log_pointer.max(*pointer);
            tx.set_table(table.clone(), Some(t));
            trim_log(tx, table)?;
        }
        Op::ReplicaRecovered {
            table,
            replica,
            pointer,
        } => {
            let mut t = tx.table(table)?;
            let oldest = retained_from(&t);
            if *pointer < oldest || *pointer > t.next_log {
                return Err(format!(
                    "log pointer {pointer} is outside the retained log [{oldest}, {}]",
                    t.next_log
                ));
            }
            let r = t
                .replicas
                .get_mut(replica)
                .ok_or_else(|| format!("replica {replica} of {table} does not exist"))?;
            r.is_lost = false;
            r.log_pointer = *pointer;
            tx.set_table(table.clone(), Some(t));
        }
        Op::AddPartHolder {
            table,
            part,
            replica,
            checksum,
        } => {
            tx.table(table)?;
            let key = item_key(table, part);
            let mut meta =
                tx.s.parts
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| format!("part {part} of {table} does not exist"))?;
            match (&meta.checksum, checksum) {
                (Some(have), Some(new)) if have != new => {
                    return Err(format!(
                        "part {part} of {table}: checksums {new} differ from {have}"
                    ))
                }
                (None, Some(new)) => meta.checksum = Some(new.clone()),
                _ => {}
            }
            meta.holders.insert(replica.clone());
            tx.set_part(key, Some(meta));
        }
        Op::RemovePartHolder {
            table,
            part,
            replica,
        } => {
            let key = item_key(table, part);
            if let Some(mut meta) = tx.s.parts.get(&key).cloned() {
                meta.holders.remove(replica);
                // A part still in the current set keeps its record even with
                // no holder (it is lost, and recovery must see that).
                let keep =
                    (!meta.holders.is_empty() || meta.merging_into.is_none()).then_some(meta);
                tx.set_part(key, keep);
            }
        }
        Op::AllocateBlock { table, partition } => {
            let mut t = tx.table(table)?;
            let n = t.block_numbers.get(partition).copied().unwrap_or(0) + 1;
            t.block_numbers.insert(partition.clone(), n);
            let inflight = t.inflight_blocks.entry(partition.clone()).or_default();
            inflight.retain(|_, at| now_ms.saturating_sub(*at) < INFLIGHT_BLOCK_MS);
            inflight.insert(n, now_ms);
            tx.set_table(table.clone(), Some(t));
            return Ok(OpResult::Block(n));
        }
        Op::AddDedupBlock {
            table,
            block_id,
            part,
            window,
            window_seconds,
        } => add_dedup_block(tx, table, block_id, part, *window, *window_seconds, now_ms)?,
        Op::CommitParts {
            table,
            parts,
            deadline_ms,
            quorum,
            window,
            window_seconds,
        } => {
            let committed = commit_parts(
                tx,
                table,
                parts,
                *deadline_ms,
                *quorum,
                (*window, *window_seconds),
                now_ms,
            )?;
            return Ok(OpResult::Parts(committed));
        }
        Op::RenewLease {
            node_id,
            address,
            ttl_ms,
        } => {
            let lease = Lease {
                address: address.clone(),
                renewed_ms: now_ms,
                expires_ms: now_ms.saturating_add(*ttl_ms),
            };
            tx.set_lease(*node_id, Some(lease));
        }
        Op::EnqueueDdl {
            query,
            initiator,
            database,
            cluster,
            hosts,
        } => {
            let seq = tx.s.next_ddl + 1;
            tx.set_next_ddl(seq);
            let task = DdlTask {
                query: query.clone(),
                initiator: *initiator,
                database: database.clone(),
                cluster: cluster.clone(),
                hosts: hosts.clone(),
                created_ms: now_ms,
                finished: BTreeMap::new(),
            };
            tx.set_ddl(seq, Some(task));
            return Ok(OpResult::DdlSeq(seq));
        }
        Op::FinishDdl {
            seq,
            node_id,
            error,
        } => {
            let mut task =
                tx.s.ddl
                    .get(seq)
                    .cloned()
                    .ok_or_else(|| format!("DDL task {seq} does not exist"))?;
            task.finished
                .insert(*node_id, error.clone().unwrap_or_default());
            tx.set_ddl(*seq, Some(task));
        }
        Op::Put { key, value } => {
            tx.set_kv(key.clone(), Some(value.clone()));
        }
        Op::Delete { key } => {
            tx.set_kv(key.clone(), None);
        }
    }
    Ok(OpResult::Done)
}

fn add_dedup_block(
    tx: &mut Tx<'_>,
    table: &str,
    block_id: &str,
    part: &str,
    window: u64,
    window_seconds: u64,
    now_ms: u64,
) -> Result<(), String> {
    let mut t = tx.table(table)?;
    let key = item_key(table, block_id);
    if tx.s.dedup.contains_key(&key) {
        return Err(format!("block {block_id} was already inserted"));
    }
    let seq = t.next_dedup_seq;
    t.next_dedup_seq += 1;
    t.dedup_count += 1;
    tx.set_dedup(
        key,
        Some(DedupBlock {
            part: part.to_string(),
            created_ms: now_ms,
            seq,
        }),
    );
    tx.set_dedup_order(index_key(table, seq), Some(block_id.to_string()));
    // Keep the last `window` ids, and only those younger than `window_seconds`.
    let min_created = now_ms.saturating_sub(window_seconds.saturating_mul(1000));
    let (start, end) = table_range(table);
    let order: Vec<(String, String)> =
        tx.s.dedup_order
            .range(start..end)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    for (order_key, old_id) in order {
        let old_key = item_key(table, &old_id);
        let too_old =
            tx.s.dedup
                .get(&old_key)
                .is_some_and(|b| b.created_ms < min_created);
        if t.dedup_count <= window && !too_old {
            break;
        }
        tx.set_dedup_order(order_key, None);
        tx.set_dedup(old_key, None);
        t.dedup_count -= 1;
    }
    tx.set_table(table.to_string(), Some(t));
    Ok(())
}

/// [`Op::CommitParts`]: see there.
fn commit_parts(
    tx: &mut Tx<'_>,
    table: &str,
    parts: &[NewPart],
    deadline_ms: u64,
    quorum: u64,
    (window, window_seconds): (u64, u64),
    now_ms: u64,
) -> Result<Vec<CommittedPart>, String> {
    let clock = tx.s.clock_ms;
    // Stage ids whose deadline passed can no longer commit: forget them.
    let expired: Vec<String> =
        tx.s.stage_expiry
            .iter()
            .take_while(|k| {
                k.split('\0')
                    .next()
                    .and_then(|d| d.parse::<u64>().ok())
                    .is_some_and(|d| d < clock)
            })
            .cloned()
            .collect();
    for k in expired {
        if let Some((_, rest)) = k.split_once('\0') {
            tx.set_committed_stage(rest.to_string(), None);
        }
        tx.set_stage_expiry(k, false);
    }
    if clock > deadline_ms {
        return Err(format!(
            "commit deadline passed ({} ms late): the insert was not written",
            clock - deadline_ms
        ));
    }
    tx.table(table)?;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let stage_key = item_key(table, &p.stage);
        if tx.s.committed_stages.contains_key(&stage_key) {
            return Err(format!("stage {} was already committed", p.stage));
        }
        tx.set_committed_stage(stage_key.clone(), Some(deadline_ms));
        tx.set_stage_expiry(format!("{deadline_ms:020}\0{stage_key}"), true);
        if let Some(existing) = p
            .block_id
            .as_ref()
            .and_then(|id| tx.s.dedup.get(&item_key(table, id)))
        {
            out.push(CommittedPart {
                part: existing.part.clone(),
                log_index: None,
            });
            continue;
        }
        let mut t = tx.table(table)?;
        let n = t.block_numbers.get(&p.partition).copied().unwrap_or(0) + 1;
        t.block_numbers.insert(p.partition.clone(), n);
        tx.set_table(table.to_string(), Some(t));
        let name = format!("{}_{n}_{n}_0", p.partition);
        let index = append_log(
            tx,
            table,
            LogEntry::GetPart {
                part: name.clone(),
                block_id: p.block_id.clone(),
                holders: p.holders.clone(),
                stage: Some(p.stage.clone()),
            },
            now_ms,
        )?;
        let key = item_key(table, &name);
        if let Some(mut meta) = tx.s.parts.get(&key).cloned() {
            meta.checksum = Some(p.checksum.clone());
            meta.quorum = quorum;
            tx.set_part(key, Some(meta));
        }
        if let Some(id) = &p.block_id {
            add_dedup_block(tx, table, id, &name, window, window_seconds, now_ms)?;
        }
        out.push(CommittedPart {
            part: name,
            log_index: Some(index),
        });
    }
    Ok(out)
}

fn append_log(tx: &mut Tx<'_>, table: &str, entry: LogEntry, now_ms: u64) -> Result<u64, String> {
    let mut t = tx.table(table)?;
    let index = t.next_log;
    t.next_log += 1;
    match &entry {
        LogEntry::GetPart { part, holders, .. } => {
            let key = item_key(table, part);
            if tx.s.parts.contains_key(&key) {
                return Err(format!("part {part} of {table} already exists"));
            }
            let new = parse_range(part).ok_or_else(|| format!("bad part name {part}"))?;
            if let Some((other, _)) =
                tx.s.parts_of(table)
                    .into_iter()
                    .find(|(n, _)| parse_range(n).is_some_and(|r| r.overlaps(&new)))
            {
                return Err(format!(
                    "part {part} of {table} overlaps existing part {other}"
                ));
            }
            if let Some(blocks) = t.inflight_blocks.get_mut(&new.partition) {
                blocks.remove(&new.min);
                if blocks.is_empty() {
                    t.inflight_blocks.remove(&new.partition);
                }
            }
            tx.set_part(
                key,
                Some(PartMeta {
                    holders: holders.clone(),
                    ..Default::default()
                }),
            );
        }
        LogEntry::MergeParts { parts, new_part } => {
            // Merges never overlap: every source must be in the current set.
            let new_key = item_key(table, new_part);
            if tx.s.parts.contains_key(&new_key) {
                return Err(format!("part {new_part} of {table} already exists"));
            }
            // ...and the merged range may hold nothing but the sources: no
            // other part, no block an insert is still committing.
            let range = parse_range(new_part).ok_or_else(|| format!("bad part name {new_part}"))?;
            if let Some((other, _)) = tx.s.parts_of(table).into_iter().find(|(n, m)| {
                m.merging_into.is_none()
                    && !parts.contains(n)
                    && parse_range(n).is_some_and(|r| r.overlaps(&range))
            }) {
                return Err(format!(
                    "merge into {new_part} would cover {other}, which is not one of its sources"
                ));
            }
            if let Some(b) = t.inflight_blocks.get(&range.partition).and_then(|blocks| {
                blocks
                    .iter()
                    .find(|(b, at)| {
                        **b >= range.min
                            && **b <= range.max
                            && now_ms.saturating_sub(**at) < INFLIGHT_BLOCK_MS
                    })
                    .map(|(b, _)| *b)
            }) {
                return Err(format!(
                    "merge into {new_part} would cover block {b}, whose insert is not committed yet"
                ));
            }
            let mut quorum = 0;
            for p in parts {
                let key = item_key(table, p);
                let mut meta = match tx.s.parts.get(&key) {
                    Some(m) if m.merging_into.is_none() => m.clone(),
                    Some(m) => {
                        return Err(format!(
                            "part {p} of {table} is already being merged into {}",
                            m.merging_into.as_deref().unwrap_or("")
                        ))
                    }
                    None => return Err(format!("part {p} of {table} does not exist")),
                };
                meta.merging_into = Some(new_part.clone());
                quorum = quorum.max(meta.quorum);
                tx.set_part(key, Some(meta));
            }
            tx.set_part(
                new_key,
                Some(PartMeta {
                    quorum,
                    ..Default::default()
                }),
            );
        }
        LogEntry::DropRange {
            partition,
            max_block,
        } => {
            let dropped: Vec<String> =
                tx.s.parts_of(table)
                    .into_iter()
                    .filter(|(name, _)| part_in_range(name, partition, *max_block))
                    .map(|(name, _)| item_key(table, &name))
                    .collect();
            for k in dropped {
                tx.set_part(k, None);
            }
        }
        _ => {}
    }
    if t.replicas.is_empty() {
        // Nobody will read it: keep the index moving, store nothing.
        tx.set_table(table.to_string(), Some(t));
        return Ok(index);
    }
    // An inactive replica this far behind would pin the log forever: mark it
    // lost (it clones when it returns) and let the log be trimmed.
    let max = match t.max_log_entries {
        0 => DEFAULT_MAX_LOG_ENTRIES,
        n => n,
    };
    let mut marked = false;
    for r in t.replicas.values_mut() {
        if !r.is_lost
            && t.next_log.saturating_sub(r.log_pointer) > max
            && !tx.s.lease_active(r.node_id, now_ms)
        {
            r.is_lost = true;
            marked = true;
        }
    }
    tx.set_table(table.to_string(), Some(t));
    tx.set_log(index_key(table, index), Some(entry));
    if marked {
        trim_log(tx, table)?;
    }
    Ok(index)
}

/// The first log index still kept: entries below every non-lost replica's
/// pointer are trimmed.
fn retained_from(t: &TableMeta) -> u64 {
    t.replicas
        .values()
        .filter(|r| !r.is_lost)
        .map(|r| r.log_pointer)
        .min()
        .unwrap_or(t.next_log)
}

/// A part's partition and block range, from its name.
struct BlockRange {
    partition: String,
    min: u64,
    max: u64,
}

impl BlockRange {
    fn overlaps(&self, o: &BlockRange) -> bool {
        self.partition == o.partition && self.min <= o.max && o.min <= self.max
    }
}

fn parse_range(name: &str) -> Option<BlockRange> {
    let mut it = name.rsplitn(4, '_');
    let _level = it.next()?;
    let max = it.next()?.parse().ok()?;
    let min = it.next()?.parse().ok()?;
    let partition = it.next()?.to_string();
    Some(BlockRange {
        partition,
        min,
        max,
    })
}

/// Whether part `name` lies in `partition` with all blocks `<= max_block`.
fn part_in_range(name: &str, partition: &str, max_block: u64) -> bool {
    let mut it = name.rsplitn(4, '_');
    let _level = it.next();
    let max = it.next().and_then(|m| m.parse::<u64>().ok());
    let _min = it.next();
    it.next() == Some(partition) && max.is_some_and(|m| m <= max_block)
}

/// Removes the log entries every replica has executed.
fn trim_log(tx: &mut Tx<'_>, table: &str) -> Result<(), String> {
    let t = tx.table(table)?;
    let min = retained_from(&t);
    let (start, _) = table_range(table);
    let done: Vec<String> =
        tx.s.log
            .range(start..index_key(table, min))
            .map(|(k, _)| k.clone())
            .collect();
    for k in done {
        tx.set_log(k, None);
    }
    Ok(())
}

fn drop_table(tx: &mut Tx<'_>, table: &str) {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::command::{Check, LogEntry, Op, OpResult, Request, Response};

    fn req(ops: Vec<Op>, now_ms: u64) -> Request {
        let mut r = Request::ops(ops);
        r.now_ms = now_ms;
        r
    }

    fn table_setup() -> MetaState {
        let mut s = MetaState::default();
        let ops = vec![
            Op::CreateDatabase { name: "db".into() },
            Op::CreateTable {
                table: "db.t".into(),
                engine: "ReplicatedMergeTree".into(),
                create_sql: "CREATE".into(),
                max_log_entries: 0,
            },
            Op::AddReplica {
                table: "db.t".into(),
                replica: "r1".into(),
                node_id: 1,
                address: "a".into(),
            },
            Op::AddReplica {
                table: "db.t".into(),
                replica: "r2".into(),
                node_id: 2,
                address: "b".into(),
            },
        ];
        assert!(s.apply(&req(ops, 1)).is_ok());
        s
    }

    #[test]
    fn insert_transaction_dedups_and_allocates() {
        let mut s = table_setup();
        let insert = |block: &str, part: &str| {
            req(
                vec![
                    Op::AllocateBlock {
                        table: "db.t".into(),
                        partition: "all".into(),
                    },
                    Op::AppendLog {
                        table: "db.t".into(),
                        entry: LogEntry::GetPart {
                            part: part.into(),
                            block_id: Some(block.into()),
                            holders: ["r1".to_string()].into(),
                            stage: None,
                        },
                    },
                    Op::AddDedupBlock {
                        table: "db.t".into(),
                        block_id: block.into(),
                        part: part.into(),
                        window: 2,
                        window_seconds: 3600,
                    },
                ],
                10,
            )
            .with_checks(vec![Check::DedupAbsent {
                table: "db.t".into(),
                block_id: block.into(),
            }])
        };
        let r = s.apply(&insert("all_1", "all_1_1_0"));
        assert_eq!(
            r,
            Response::Ok {
                results: vec![OpResult::Block(1), OpResult::LogIndex(1), OpResult::Done]
            }
        );
        let before = s.to_bytes();
        match s.apply(&insert("all_1", "all_2_2_0")) {
            Response::CheckFailed { detail, .. } => {
                assert_eq!(detail.as_deref(), Some("all_1_1_0"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.to_bytes(), before, "a failed check changes nothing");
        assert!(s.apply(&insert("all_2", "all_2_2_0")).is_ok());
        assert!(s.apply(&insert("all_3", "all_3_3_0")).is_ok());
        // Window of 2: the oldest id fell out.
        assert!(s.dedup_block("db.t", "all_1").is_none());
        assert!(s.dedup_block("db.t", "all_3").is_some());
        assert_eq!(s.log_from("db.t", 0).len(), 3);
        assert_eq!(s.parts_of("db.t").len(), 3);
    }

    #[test]
    fn merges_never_overlap_and_drop_range_removes_parts() {
        let mut s = table_setup();
        let get = |p: &str| Op::AppendLog {
            table: "db.t".into(),
            entry: LogEntry::GetPart {
                part: p.into(),
                block_id: None,
                holders: ["r1".to_string()].into(),
                stage: None,
            },
        };
        let merge = |parts: &[&str], new: &str| {
            req(
                vec![Op::AppendLog {
                    table: "db.t".into(),
                    entry: LogEntry::MergeParts {
                        parts: parts.iter().map(|p| p.to_string()).collect(),
                        new_part: new.into(),
                    },
                }],
                1,
            )
        };
        for p in ["all_1_1_0", "all_2_2_0", "all_3_3_0"] {
            assert!(s.apply(&req(vec![get(p)], 1)).is_ok());
        }
        assert!(s
            .apply(&merge(&["all_1_1_0", "all_2_2_0"], "all_1_2_1"))
            .is_ok());
        // all_2_2_0 is already taken by a merge: an overlapping one is refused.
        let r = s.apply(&merge(&["all_2_2_0", "all_3_3_0"], "all_2_3_1"));
        assert!(matches!(r, Response::Rejected { .. }), "{r:?}");
        let holder = |part: &str, replica: &str, sum: &str| Op::AddPartHolder {
            table: "db.t".into(),
            part: part.into(),
            replica: replica.into(),
            checksum: Some(sum.into()),
        };
        assert!(s
            .apply(&req(vec![holder("all_1_2_1", "r1", "aa")], 1))
            .is_ok());
        // A replica whose merge result differs is refused as a holder.
        let r = s.apply(&req(vec![holder("all_1_2_1", "r2", "bb")], 1));
        assert!(matches!(r, Response::Rejected { .. }), "{r:?}");
        assert!(s
            .apply(&req(vec![holder("all_1_2_1", "r2", "aa")], 1))
            .is_ok());
        // Sources stay fetchable until their last holder executed the merge.
        let drop_holder = |part: &str| Op::RemovePartHolder {
            table: "db.t".into(),
            part: part.into(),
            replica: "r1".into(),
        };
        assert!(s
            .apply(&req(
                vec![drop_holder("all_1_1_0"), drop_holder("all_2_2_0")],
                1
            ))
            .is_ok());
        let names: Vec<String> = s.parts_of("db.t").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["all_1_2_1", "all_3_3_0"]);
        let drop = req(
            vec![Op::AppendLog {
                table: "db.t".into(),
                entry: LogEntry::DropRange {
                    partition: "all".into(),
                    max_block: 2,
                },
            }],
            1,
        );
        assert!(s.apply(&drop).is_ok());
        let names: Vec<String> = s.parts_of("db.t").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["all_3_3_0"]);
    }

    #[test]
    fn a_merge_covers_only_its_sources_and_no_uncommitted_block() {
        let mut s = table_setup();
        let alloc = req(
            vec![Op::AllocateBlock {
                table: "db.t".into(),
                partition: "all".into(),
            }],
            1_000,
        );
        let get = |p: &str| {
            req(
                vec![Op::AppendLog {
                    table: "db.t".into(),
                    entry: LogEntry::GetPart {
                        part: p.into(),
                        block_id: None,
                        holders: ["r1".to_string()].into(),
                        stage: None,
                    },
                }],
                1_000,
            )
        };
        let merge = |parts: &[&str], new: &str, now| {
            req(
                vec![Op::AppendLog {
                    table: "db.t".into(),
                    entry: LogEntry::MergeParts {
                        parts: parts.iter().map(|p| p.to_string()).collect(),
                        new_part: new.into(),
                    },
                }],
                now,
            )
        };
        for _ in 0..4 {
            assert!(s.apply(&alloc).is_ok());
        }
        // Blocks 1, 2 and 4 committed; 3 is still on its way.
        for p in ["all_1_1_0", "all_2_2_0", "all_4_4_0"] {
            assert!(s.apply(&get(p)).is_ok());
        }
        let r = s.apply(&merge(
            &["all_1_1_0", "all_2_2_0", "all_4_4_0"],
            "all_1_4_1",
            2_000,
        ));
        assert!(
            matches!(r, Response::Rejected { ref reason, .. } if reason.contains("block 3")),
            "{r:?}"
        );
        assert!(s.apply(&get("all_3_3_0")).is_ok());
        // Leaving a committed part out of the range is refused too.
        let r = s.apply(&merge(
            &["all_1_1_0", "all_2_2_0", "all_4_4_0"],
            "all_1_4_1",
            2_000,
        ));
        assert!(
            matches!(r, Response::Rejected { ref reason, .. } if reason.contains("all_3_3_0")),
            "{r:?}"
        );
        assert!(s
            .apply(&merge(
                &["all_1_1_0", "all_2_2_0", "all_3_3_0", "all_4_4_0"],
                "all_1_4_1",
                2_000
            ))
            .is_ok());
        // A part inside a merged range can no longer be committed.
        assert!(!s.apply(&get("all_2_2_0")).is_ok());
        // An insert that never committed stops holding merges back after a while.
        assert!(s.apply(&alloc).is_ok()); // block 5, abandoned
        assert!(s.apply(&alloc).is_ok());
        assert!(s.apply(&get("all_6_6_0")).is_ok());
        let late = 1_000 + INFLIGHT_BLOCK_MS + 1;
        assert!(!s
            .apply(&merge(&["all_1_4_1", "all_6_6_0"], "all_1_6_2", 2_000))
            .is_ok());
        assert!(s
            .apply(&merge(&["all_1_4_1", "all_6_6_0"], "all_1_6_2", late))
            .is_ok());
    }

    #[test]
    fn failed_op_rolls_back_the_whole_transaction() {
        let mut s = table_setup();
        let before = s.to_bytes();
        let r = s.apply(&req(
            vec![
                Op::AllocateBlock {
                    table: "db.t".into(),
                    partition: "p".into(),
                },
                Op::Put {
                    key: "k".into(),
                    value: "v".into(),
                },
                Op::CreateDatabase { name: "db".into() },
            ],
            5,
        ));
        assert!(matches!(r, Response::Rejected { index: 2, .. }), "{r:?}");
        assert_eq!(s.to_bytes(), before);
    }

    #[test]
    fn log_is_trimmed_behind_every_replica() {
        let mut s = table_setup();
        for i in 0..5 {
            let entry = LogEntry::DropRange {
                partition: "p".into(),
                max_block: i,
            };
            assert!(s
                .apply(&req(
                    vec![Op::AppendLog {
                        table: "db.t".into(),
                        entry
                    }],
                    1
                ))
                .is_ok());
        }
        let ptr = |r: &str, p| Op::SetLogPointer {
            table: "db.t".into(),
            replica: r.into(),
            pointer: p,
        };
        assert!(s.apply(&req(vec![ptr("r1", 4)], 1)).is_ok());
        assert_eq!(
            s.log_from("db.t", 0).len(),
            5,
            "r2 has not executed anything"
        );
        assert!(s.apply(&req(vec![ptr("r2", 3)], 1)).is_ok());
        assert_eq!(s.log_from("db.t", 0).first().map(|e| e.0), Some(3));
        assert!(matches!(
            s.apply(&req(vec![ptr("r2", 99)], 1)),
            Response::Rejected { .. }
        ));
    }

    #[test]
    fn stale_schema_version_fails_cleanly() {
        let mut s = table_setup();
        let alter = Op::AlterTable {
            table: "db.t".into(),
            create_sql: "v2".into(),
        };
        let r = req(vec![alter], 1).with_checks(vec![Check::TableVersion {
            table: "db.t".into(),
            version: 1,
        }]);
        assert!(s.apply(&r).is_ok());
        assert!(matches!(s.apply(&r), Response::CheckFailed { .. }));
        assert_eq!(s.tables["db.t"].version, 2);
    }

    #[test]
    fn leases_expire_by_the_stamped_clock() {
        let mut s = MetaState::default();
        let renew = Op::RenewLease {
            node_id: 3,
            address: "x".into(),
            ttl_ms: 4000,
        };
        assert!(s.apply(&req(vec![renew], 1000)).is_ok());
        assert!(s.lease_active(3, 4999));
        assert!(!s.lease_active(3, 5000));
        assert!(!s.lease_active(4, 0));
    }

    fn staged(partition: &str, stage: &str, block_id: Option<&str>) -> NewPart {
        NewPart {
            partition: partition.into(),
            stage: stage.into(),
            block_id: block_id.map(String::from),
            holders: ["r1".to_string(), "r2".to_string()].into(),
            checksum: format!("sum-{stage}"),
        }
    }

    fn commit(parts: Vec<NewPart>, deadline_ms: u64) -> Op {
        Op::CommitParts {
            table: "db.t".into(),
            parts,
            deadline_ms,
            quorum: 2,
            window: 100,
            window_seconds: 1000,
        }
    }

    #[test]
    fn commit_parts_allocates_logs_and_records_holders_atomically() {
        let mut s = table_setup();
        let r = s.apply(&req(
            vec![commit(
                vec![
                    staged("202401", "s1", Some("202401_h1")),
                    staged("202402", "s2", Some("202402_h2")),
                ],
                5000,
            )],
            10,
        ));
        let Response::Ok { results } = r else {
            panic!("{r:?}")
        };
        let OpResult::Parts(parts) = &results[0] else {
            panic!("{results:?}")
        };
        assert_eq!(parts[0].part, "202401_1_1_0");
        assert_eq!(parts[1].part, "202402_1_1_0");
        let recs = s.parts_of("db.t");
        assert_eq!(recs.len(), 2);
        assert!(recs
            .iter()
            .all(|(_, m)| m.holders.len() == 2 && m.quorum == 2));
        assert_eq!(recs[0].1.checksum.as_deref(), Some("sum-s1"));
        let log = s.log_from("db.t", 0);
        assert!(matches!(&log[0].1, LogEntry::GetPart { stage: Some(st), .. } if st == "s1"));

        // A retry of the same insert (new stages, same block ids) writes nothing.
        let r = s.apply(&req(
            vec![commit(
                vec![
                    staged("202401", "s3", Some("202401_h1")),
                    staged("202402", "s4", Some("202402_h2")),
                ],
                5000,
            )],
            20,
        ));
        let Response::Ok { results } = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            results[0],
            OpResult::Parts(vec![
                CommittedPart {
                    part: "202401_1_1_0".into(),
                    log_index: None
                },
                CommittedPart {
                    part: "202402_1_1_0".into(),
                    log_index: None
                },
            ])
        );
        assert_eq!(s.log_from("db.t", 0).len(), 2);
    }

    #[test]
    fn a_stage_commits_at_most_once_and_never_after_its_deadline() {
        let mut s = table_setup();
        assert!(s
            .apply(&req(vec![commit(vec![staged("p", "s1", None)], 100)], 50))
            .is_ok());
        // The same proposal applied again (a retried forward) is refused.
        let again = s.apply(&req(vec![commit(vec![staged("p", "s1", None)], 100)], 60));
        assert!(matches!(again, Response::Rejected { .. }), "{again:?}");
        // Past its deadline (by the coordinator's clock) nothing commits,
        // and the remembered stage ids of passed deadlines are pruned.
        let late = s.apply(&req(vec![commit(vec![staged("p", "s2", None)], 100)], 101));
        assert!(matches!(late, Response::Rejected { .. }), "{late:?}");
        assert!(s
            .apply(&req(vec![commit(vec![staged("p", "s3", None)], 500)], 102))
            .is_ok());
        assert_eq!(s.committed_stages.len(), 1);
        // A proposer with a slow clock cannot move the coordinator's clock back.
        let slow = s.apply(&req(vec![commit(vec![staged("p", "s4", None)], 101)], 90));
        assert!(matches!(slow, Response::Rejected { .. }), "{slow:?}");
        // All or nothing: a bad part refuses the whole insert.
        let before = s.parts_of("db.t").len();
        let mixed = s.apply(&req(
            vec![commit(
                vec![staged("p", "s5", None), staged("p", "s3", None)],
                900,
            )],
            103,
        ));
        assert!(matches!(mixed, Response::Rejected { .. }), "{mixed:?}");
        assert_eq!(s.parts_of("db.t").len(), before);
    }

    #[test]
    fn merged_parts_keep_the_quorum_of_their_sources() {
        let mut s = table_setup();
        let ops = vec![commit(
            vec![staged("p", "s1", None), staged("p", "s2", None)],
            900,
        )];
        assert!(s.apply(&req(ops, 1)).is_ok());
        let merge = Op::AppendLog {
            table: "db.t".into(),
            entry: LogEntry::MergeParts {
                parts: vec!["p_1_1_0".into(), "p_2_2_0".into()],
                new_part: "p_1_2_1".into(),
            },
        };
        assert!(s.apply(&req(vec![merge], 2)).is_ok());
        let recs: BTreeMap<String, PartMeta> = s.parts_of("db.t").into_iter().collect();
        assert_eq!(recs["p_1_2_1"].quorum, 2);
    }

    #[test]
    fn newer_command_versions_are_rejected() {
        let mut s = MetaState::default();
        let mut r = req(
            vec![Op::Put {
                key: "k".into(),
                value: "v".into(),
            }],
            1,
        );
        r.v = 99;
        assert!(matches!(s.apply(&r), Response::Rejected { .. }));
        assert!(s.kv.is_empty());
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        let table = prop_oneof![
            Just("db.t".to_string()),
            Just("db.u".to_string()),
            Just("x.t".to_string())
        ];
        let name = "[a-c]{1,2}";
        prop_oneof![
            name.prop_map(|n| Op::CreateDatabase {
                name: format!("d{n}")
            }),
            Just(Op::CreateDatabase { name: "db".into() }),
            table.clone().prop_map(|t| Op::CreateTable {
                table: t,
                engine: "e".into(),
                create_sql: "s".into(),
                max_log_entries: 0,
            }),
            table.clone().prop_map(|t| Op::DropTable { table: t }),
            (table.clone(), name).prop_map(|(t, r)| Op::AddReplica {
                table: t,
                replica: r,
                node_id: 1,
                address: "a".into()
            }),
            (table.clone(), name).prop_map(|(t, p)| Op::AppendLog {
                table: t,
                entry: LogEntry::GetPart {
                    part: p,
                    block_id: None,
                    holders: Default::default(),
                    stage: None,
                }
            }),
            (table.clone(), name, 0u64..6).prop_map(|(t, r, p)| Op::SetLogPointer {
                table: t,
                replica: r,
                pointer: p
            }),
            (
                table.clone(),
                name,
                name,
                proptest::option::of(name),
                0u64..6000
            )
                .prop_map(|(t, partition, stage, block_id, deadline_ms)| {
                    Op::CommitParts {
                        table: t,
                        parts: vec![NewPart {
                            partition,
                            stage,
                            block_id,
                            holders: ["r1".to_string()].into(),
                            checksum: "c".into(),
                        }],
                        deadline_ms,
                        quorum: 2,
                        window: 3,
                        window_seconds: 1,
                    }
                }),
            (table.clone(), name).prop_map(|(t, p)| Op::AllocateBlock {
                table: t,
                partition: p
            }),
            (table.clone(), name, 1u64..4).prop_map(|(t, b, w)| Op::AddDedupBlock {
                table: t,
                block_id: b,
                part: "p".into(),
                window: w,
                window_seconds: 1
            }),
            (1u64..4).prop_map(|n| Op::RenewLease {
                node_id: n,
                address: "a".into(),
                ttl_ms: 100
            }),
            (name, name).prop_map(|(k, v)| Op::Put { key: k, value: v }),
            name.prop_map(|k| Op::Delete { key: k }),
            Just(Op::EnqueueDdl {
                query: "q".into(),
                initiator: 1,
                database: "db".into(),
                cluster: "c".into(),
                hosts: vec![crate::command::DdlHost {
                    node: 1,
                    shard: 1,
                    replica: 1,
                }],
            }),
        ]
    }

    fn arb_request() -> impl Strategy<Value = Request> {
        (
            proptest::collection::vec(arb_op(), 1..4),
            0u64..5000,
            proptest::option::of("[a-c]{1,2}"),
        )
            .prop_map(|(ops, now, dedup)| {
                let mut r = req(ops, now);
                if let Some(b) = dedup {
                    r.checks.push(Check::DedupAbsent {
                        table: "db.t".into(),
                        block_id: b,
                    });
                }
                r
            })
    }

    proptest! {
        /// Two replicas applying the same commands hold the same bytes, also
        /// when one of them restarts from a snapshot (serialize + load) midway.
        #[test]
        fn replicas_converge(cmds in proptest::collection::vec(arb_request(), 1..60), cut in 0usize..60) {
            let mut a = MetaState::default();
            let mut b = MetaState::default();
            let mut responses = (Vec::new(), Vec::new());
            for (i, c) in cmds.iter().enumerate() {
                if i == cut {
                    b = serde_json::from_slice(&b.to_bytes()).unwrap();
                }
                responses.0.push(a.apply(c));
                responses.1.push(b.apply(c));
            }
            prop_assert_eq!(responses.0, responses.1);
            prop_assert_eq!(a.to_bytes(), b.to_bytes());
        }

        /// A command that does not apply leaves the state byte-for-byte as it was.
        #[test]
        fn failures_change_nothing(cmds in proptest::collection::vec(arb_request(), 1..40)) {
            let mut s = MetaState::default();
            for c in &cmds {
                let before = s.to_bytes();
                if !s.apply(c).is_ok() {
                    prop_assert_eq!(before, s.to_bytes());
                }
            }
        }
    }
}
