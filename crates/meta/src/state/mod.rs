//! The replicated state: what ClickHouse keeps in Keeper, as typed maps.
//!
//! Applying a [`Request`] is deterministic (time comes from the request, maps
//! are ordered), so every replica that applies the same log holds the same
//! bytes. A transaction is atomic: each mutation goes through [`tx::Tx`],
//! which records its inverse, and a failed check or op rolls back what the
//! transaction already did.
//!
//! The state is split by what it holds: the [`catalog`] (databases,
//! tables), [`replicas`] and leases, the replication [`log`], [`parts`] and
//! the commit of staged inserts, [`dedup`] block ids, the [`ddl`] queue, and
//! the [`retired`] ops older logs still replay. Other crates read it only
//! through the typed queries on [`MetaState`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::{
    Check, CommittedPart, DdlHost, LogEntry, NewPart, Op, OpResult, Request, Response,
    COMMAND_VERSION, REQUEST_ID_WINDOW_MS,
};
use crate::NodeId;

mod catalog;
mod ddl;
mod dedup;
mod error;
mod log;
mod parts;
mod replicas;
mod retired;
mod tx;

pub use catalog::TableMeta;
pub use ddl::DdlTask;
pub use dedup::DedupBlock;
pub use error::{ApplyError, ApplyResult};
pub use log::{DEFAULT_MAX_LOG_ENTRIES, INFLIGHT_BLOCK_MS};
pub use parts::PartMeta;
pub use replicas::{Lease, ReplicaMeta};
use tx::Tx;

/// Everything the coordinator stores. Keys of the per-table maps are
/// `table + '\0' + item` (log indexes zero-padded), so one table's items are a
/// contiguous, ordered range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaState {
    databases: BTreeSet<String>,
    tables: BTreeMap<String, TableMeta>,
    log: BTreeMap<String, LogEntry>,
    parts: BTreeMap<String, PartMeta>,
    dedup: BTreeMap<String, DedupBlock>,
    /// `table\0seq` → block id: the dedup window's age order.
    dedup_order: BTreeMap<String, String>,
    leases: BTreeMap<NodeId, Lease>,
    ddl: BTreeMap<u64, DdlTask>,
    next_ddl: u64,
    kv: BTreeMap<String, String>,
    /// The coordinator's clock: the largest `now_ms` of any applied command.
    /// Commit deadlines are judged by it, so every replica agrees.
    #[serde(default)]
    clock_ms: u64,
    /// Stage ids committed by [`Op::CommitParts`] whose deadline has not
    /// passed: `table\0stage` → deadline. Past the deadline a commit is
    /// refused anyway, so the entry can go.
    #[serde(default)]
    committed_stages: BTreeMap<String, u64>,
    /// The same, ordered by deadline for pruning: `deadline\0table\0stage`.
    #[serde(default)]
    stage_expiry: BTreeSet<String>,
    /// Outcomes of applied commands that carry an id ([`Request::id`]),
    /// kept [`REQUEST_ID_WINDOW_MS`]: id → (clock at apply, response).
    #[serde(default)]
    applied_ids: BTreeMap<String, (u64, Response)>,
    /// The same ids in apply order for pruning: `clock\0id`.
    #[serde(default)]
    applied_order: BTreeSet<String>,
}

fn item_key(table: &str, item: &str) -> String {
    format!("{table}\0{item}")
}

fn index_key(table: &str, index: u64) -> String {
    format!("{table}\0{index:020}")
}

/// The `[start, end)` key range holding one table's items.
fn table_range(table: &str) -> (String, String) {
    (format!("{table}\0"), format!("{table}\u{1}"))
}

fn item_of<'a>(key: &'a str, table: &str) -> &'a str {
    &key[table.len() + 1..]
}

impl MetaState {
    /// Applies one command. Never panics on bad input: an invalid command is a
    /// `Rejected` response and leaves the state unchanged.
    pub fn apply(&mut self, req: &Request) -> Response {
        let Some(id) = &req.id else {
            return self.apply_once(req);
        };
        if let Some((_, first)) = self.applied_ids.get(id) {
            return first.clone();
        }
        let response = self.apply_once(req);
        let clock = self.clock_ms.max(req.now_ms);
        self.applied_ids
            .insert(id.clone(), (clock, response.clone()));
        self.applied_order.insert(format!("{clock:020}\0{id}"));
        // Forget ids past the window (a bounded amount per command).
        let horizon = clock.saturating_sub(REQUEST_ID_WINDOW_MS);
        for _ in 0..16 {
            let Some(first) = self.applied_order.first().cloned() else {
                break;
            };
            let Some((at, old)) = first.split_once('\0') else {
                self.applied_order.remove(&first);
                continue;
            };
            if at.parse::<u64>().unwrap_or(0) >= horizon {
                break;
            }
            self.applied_ids.remove(old);
            self.applied_order.remove(&first);
        }
        response
    }

    fn apply_once(&mut self, req: &Request) -> Response {
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
        let mut tx = Tx::new(self);
        let mut results = Vec::with_capacity(req.ops.len());
        for (index, op) in req.ops.iter().enumerate() {
            match apply_op(&mut tx, op, req.now_ms) {
                Ok(r) => results.push(r),
                Err(e) => {
                    tx.rollback();
                    self.clock_ms = clock;
                    return Response::Rejected {
                        index,
                        reason: e.to_string(),
                    };
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
            Check::DedupAbsent { table, block_id } => match self.dedup_block(table, block_id) {
                Some(b) => Err((
                    format!("block {block_id} was already inserted"),
                    Some(b.part.clone()),
                )),
                None => Ok(()),
            },
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

    /// The record of `table` (`db.name`, or a replicated table's path).
    pub fn table(&self, table: &str) -> Option<&TableMeta> {
        self.tables.get(table)
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

    /// Every node's lease, live or not.
    pub fn leases(&self) -> impl Iterator<Item = (NodeId, &Lease)> {
        self.leases.iter().map(|(id, l)| (*id, l))
    }

    /// Whether the node's lease is valid at `now_ms`.
    pub fn lease_active(&self, node_id: NodeId, now_ms: u64) -> bool {
        self.leases.get(&node_id).is_some_and(|l| l.is_live(now_ms))
    }

    /// Nodes whose lease is valid at `now_ms`.
    pub fn live_nodes(&self, now_ms: u64) -> BTreeSet<NodeId> {
        self.leases()
            .filter(|(_, l)| l.is_live(now_ms))
            .map(|(id, _)| id)
            .collect()
    }

    /// The DDL task `seq`.
    pub fn ddl_task(&self, seq: u64) -> Option<&DdlTask> {
        self.ddl.get(&seq)
    }

    /// DDL tasks after `seq`, in order.
    pub fn ddl_tasks_after(&self, seq: u64) -> impl Iterator<Item = (u64, &DdlTask)> {
        self.ddl
            .range(seq.saturating_add(1)..)
            .map(|(k, t)| (*k, t))
    }

    /// The value of a plain key (`Op::Put`).
    pub fn key(&self, key: &str) -> Option<&str> {
        self.kv.get(key).map(String::as_str)
    }

    /// Plain keys starting with `prefix`, in order, with their values.
    pub fn keys_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.kv
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The coordinator's clock (see the field).
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Canonical bytes of the state (ordered maps, so equal states give equal bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn apply_op(tx: &mut Tx<'_>, op: &Op, now_ms: u64) -> ApplyResult<OpResult> {
    match op {
        Op::CreateDatabase { name } => catalog::create_database(tx, name)?,
        Op::DropDatabase { name } => catalog::drop_database(tx, name)?,
        Op::CreateTable {
            table,
            engine,
            create_sql,
            max_log_entries,
        } => catalog::create_table(tx, table, engine, create_sql, *max_log_entries)?,
        Op::AlterTable { table, create_sql } => {
            catalog::alter_table(tx, table, create_sql, now_ms)?
        }
        Op::DropTable { table } => {
            tx.table(table)?;
            catalog::drop_table(tx, table);
        }
        Op::AddReplica {
            table,
            replica,
            node_id,
            address,
        } => replicas::add_replica(tx, table, replica, *node_id, address)?,
        Op::RemoveReplica { table, replica } => replicas::remove_replica(tx, table, replica)?,
        Op::SetLogPointer {
            table,
            replica,
            pointer,
        } => replicas::set_log_pointer(tx, table, replica, *pointer)?,
        Op::ReplicaRecovered {
            table,
            replica,
            pointer,
        } => replicas::replica_recovered(tx, table, replica, *pointer)?,
        Op::RenewLease {
            node_id,
            address,
            ttl_ms,
        } => replicas::renew_lease(tx, *node_id, address, *ttl_ms, now_ms),
        Op::AppendLog { table, entry } => {
            return log::append(tx, table, entry.clone(), now_ms).map(OpResult::LogIndex)
        }
        Op::AddPartHolder {
            table,
            part,
            replica,
            checksum,
        } => parts::add_holder(tx, table, part, replica, checksum.as_ref())?,
        Op::RemovePartHolder {
            table,
            part,
            replica,
        } => parts::remove_holder(tx, table, part, replica),
        Op::CommitParts {
            table,
            parts,
            deadline_ms,
            quorum,
            window,
            window_seconds,
        } => {
            let window = dedup::Window::new(*window, *window_seconds);
            let committed = parts::commit(tx, table, parts, *deadline_ms, *quorum, window, now_ms)?;
            return Ok(OpResult::Parts(committed));
        }
        Op::EnqueueDdl {
            query,
            initiator,
            database,
            cluster,
            hosts,
        } => {
            let task = DdlTask {
                query: query.clone(),
                initiator: *initiator,
                database: database.clone(),
                cluster: cluster.clone(),
                hosts: hosts.clone(),
                created_ms: now_ms,
                finished: BTreeMap::new(),
            };
            return Ok(OpResult::DdlSeq(ddl::enqueue(tx, task)));
        }
        Op::FinishDdl {
            seq,
            node_id,
            error,
        } => ddl::finish(tx, *seq, *node_id, error.as_ref())?,
        Op::Put { key, value } => {
            tx.set_kv(key.clone(), Some(value.clone()));
        }
        Op::Delete { key } => {
            tx.set_kv(key.clone(), None);
        }
        Op::AllocateBlock { table, partition } => {
            return retired::allocate_block(tx, table, partition, now_ms).map(OpResult::Block)
        }
        Op::AddDedupBlock {
            table,
            block_id,
            part,
            window,
            window_seconds,
        } => {
            let window = dedup::Window::new(*window, *window_seconds);
            dedup::add_block(tx, table, block_id, part, window, now_ms)?
        }
    }
    Ok(OpResult::Done)
}

#[cfg(test)]
mod tests;
