//! The coordinator's command language: what a Raft log entry carries and what
//! applying it answers. Everything is serde (JSON in the log and on the wire)
//! and versioned, so a log written by an older binary still applies.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// Version of the command encoding written by this binary.
pub const COMMAND_VERSION: u32 = 1;

/// One Raft command: an atomic transaction. Every check must hold, and every
/// op must succeed, or nothing of it is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    #[serde(default = "default_version")]
    pub v: u32,
    /// Wall-clock time stamped by the proposer. State-machine rules that need
    /// time (lease expiry, dedup window) read it from here, so every replica
    /// applies the entry identically.
    #[serde(default)]
    pub now_ms: u64,
    #[serde(default)]
    pub checks: Vec<Check>,
    pub ops: Vec<Op>,
    /// Set on a command that must apply at most once although the
    /// coordinator may propose it again (a forwarded write whose first
    /// attempt's fate was unknown): a command with an id applied within
    /// [`REQUEST_ID_WINDOW_MS`] answers that first outcome, changing nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// How long (coordinator clock) an applied command's id is remembered:
/// far beyond any write timeout, so every re-proposal of it falls inside.
pub const REQUEST_ID_WINDOW_MS: u64 = 10 * 60 * 1000;

fn default_version() -> u32 {
    COMMAND_VERSION
}

impl Request {
    /// A transaction of these ops with no preconditions.
    pub fn ops(ops: Vec<Op>) -> Self {
        Request {
            v: COMMAND_VERSION,
            now_ms: 0,
            checks: Vec::new(),
            ops,
            id: None,
        }
    }

    pub fn op(op: Op) -> Self {
        Self::ops(vec![op])
    }

    pub fn with_checks(mut self, checks: Vec<Check>) -> Self {
        self.checks = checks;
        self
    }

    /// Applies at most once (see [`Request::id`]); `id` must be unique.
    pub fn once(mut self, id: String) -> Self {
        self.id = Some(id);
        self
    }
}

/// A compare-and-set precondition of a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// The table exists with exactly this schema version.
    TableVersion {
        table: String,
        version: u64,
    },
    TableExists {
        table: String,
    },
    TableAbsent {
        table: String,
    },
    DatabaseExists {
        name: String,
    },
    /// No block with this id was inserted within the dedup window.
    DedupAbsent {
        table: String,
        block_id: String,
    },
    PartAbsent {
        table: String,
        part: String,
    },
    /// A generic key holds exactly this value (`None` = absent).
    KeyEquals {
        key: String,
        value: Option<String>,
    },
}

/// One entry of a table's replication log, the queue every replica executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogEntry {
    /// A new part exists on `holders`; others fetch it from one of them.
    GetPart {
        part: String,
        block_id: Option<String>,
        holders: BTreeSet<String>,
        /// The staging id under which `holders` keep the part's data until
        /// they apply this entry (a quorum insert: staged, then committed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
    },
    /// Merge `parts` into `new_part`.
    MergeParts {
        parts: Vec<String>,
        new_part: String,
    },
    /// Drop every part of `partition` with blocks up to `max_block`.
    DropRange { partition: String, max_block: u64 },
    MutatePart {
        part: String,
        new_part: String,
        command: String,
    },
    /// The table's schema changed to `version`.
    AlterMetadata { version: u64, create_sql: String },
}

/// A node's place in the cluster an `ON CLUSTER` statement names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DdlHost {
    pub node: NodeId,
    /// 1-based, as `system.clusters.shard_num`.
    pub shard: u32,
    /// 1-based within the shard, as `system.clusters.replica_num`.
    pub replica: u32,
}

/// One state change inside a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    CreateDatabase {
        name: String,
    },
    DropDatabase {
        name: String,
    },
    /// `table` is `db.name` (or a replicated table's path); the table
    /// starts at schema version 1.
    CreateTable {
        table: String,
        engine: String,
        create_sql: String,
        /// `max_replicated_logs_to_keep` (0 = 1000): a replica whose lease
        /// lapsed and that is this far behind is marked lost so the log can
        /// be trimmed; it clones a healthy replica when it returns.
        #[serde(default)]
        max_log_entries: u64,
    },
    /// A lost replica finished cloning: it is back, executing the log from
    /// `pointer` (refused if entries from `pointer` on were already trimmed).
    ReplicaRecovered {
        table: String,
        replica: String,
        pointer: u64,
    },
    /// Bumps the schema version and appends ALTER_METADATA to the log.
    AlterTable {
        table: String,
        create_sql: String,
    },
    DropTable {
        table: String,
    },
    AddReplica {
        table: String,
        replica: String,
        node_id: NodeId,
        address: String,
    },
    RemoveReplica {
        table: String,
        replica: String,
    },
    /// Appends to the table's log; answers [`OpResult::LogIndex`]. A GET_PART
    /// entry also records the part with its holders.
    AppendLog {
        table: String,
        entry: LogEntry,
    },
    /// The replica executed its log up to (not including) `pointer`; entries
    /// every replica has passed are trimmed.
    SetLogPointer {
        table: String,
        replica: String,
        pointer: u64,
    },
    /// `replica` holds `part` (which must be in the part records); with a
    /// checksum digest that must match the part's, if one is recorded.
    AddPartHolder {
        table: String,
        part: String,
        replica: String,
        #[serde(default)]
        checksum: Option<String>,
    },
    RemovePartHolder {
        table: String,
        part: String,
        replica: String,
    },
    /// Retired (never proposed by this version; older logs replay it, see
    /// `state::retired`): next block number of the partition; answers
    /// [`OpResult::Block`].
    AllocateBlock {
        table: String,
        partition: String,
    },
    /// Retired (never proposed by this version; older logs replay it, see
    /// `state::retired`): remember an inserted block for deduplication, then
    /// trim the table's dedup ids to the last `window` and to those younger
    /// than `window_seconds`.
    AddDedupBlock {
        table: String,
        block_id: String,
        part: String,
        window: u64,
        window_seconds: u64,
    },
    /// Commits an insert's staged parts, all or nothing: for each part, a
    /// block id already in the dedup window answers the part holding it;
    /// otherwise a block number is allocated, a GET_PART entry naming the
    /// stagers as holders is appended and the block id remembered. Refused
    /// once the coordinator's clock passed `deadline_ms`, and for a stage id
    /// committed before (a retried proposal never commits twice), so a
    /// staged copy whose commit did not land by the deadline never will.
    /// A part holding several inserts ([`NewPart::batch_ids`], async
    /// inserts) cannot be half a duplicate: when any of those ids is
    /// already known (or repeats), nothing of the op is committed and every
    /// part answers the ids found ([`CommittedPart::duplicate_ids`]).
    /// Answers [`OpResult::Parts`].
    CommitParts {
        table: String,
        parts: Vec<NewPart>,
        deadline_ms: u64,
        /// `insert_quorum` the insert asked for (recorded with each part).
        #[serde(default)]
        quorum: u64,
        window: u64,
        window_seconds: u64,
    },
    /// The node is alive until `now_ms + ttl_ms` (an ephemeral node in Keeper's terms).
    RenewLease {
        node_id: NodeId,
        address: String,
        ttl_ms: u64,
    },
    /// ON CLUSTER DDL: answers [`OpResult::DdlSeq`].
    EnqueueDdl {
        query: String,
        initiator: NodeId,
        /// Database unqualified names in `query` refer to.
        #[serde(default)]
        database: String,
        /// The cluster named by `ON CLUSTER` (the `{cluster}` macro).
        #[serde(default)]
        cluster: String,
        /// The nodes that run it, with their place in the cluster (the
        /// `{shard}` macro); empty (tasks from before clusters existed):
        /// every voter. A list, not a map: an internally tagged enum cannot
        /// read integer map keys back from JSON.
        #[serde(default)]
        hosts: Vec<DdlHost>,
    },
    FinishDdl {
        seq: u64,
        node_id: NodeId,
        error: Option<String>,
    },
    /// Generic small keys (tools, drills, benchmarks).
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
}

/// One staged part of an insert, as [`Op::CommitParts`] commits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPart {
    pub partition: String,
    /// Staging id, unique per part (the stagers' directory name).
    pub stage: String,
    pub block_id: Option<String>,
    /// The block ids of the inserts buffered into this part (async inserts
    /// with deduplication), each remembered as a block of this part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_ids: Vec<String>,
    /// Replicas that durably staged the part.
    pub holders: BTreeSet<String>,
    /// Digest of the part's checksums, equal on every stager.
    pub checksum: String,
}

/// How [`Op::CommitParts`] treated one part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedPart {
    /// The new part's name, or for a duplicate the part holding the block.
    pub part: String,
    /// Log index of the GET_PART entry (`None`: a duplicate, nothing written).
    pub log_index: Option<u64>,
    /// Batch ids of the op already inserted (or repeated): nothing of the
    /// op was committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicate_ids: Vec<String>,
}

/// What one op answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpResult {
    Done,
    LogIndex(u64),
    Block(u64),
    DdlSeq(u64),
    Parts(Vec<CommittedPart>),
}

/// The outcome of applying one command. A failed check or op is a normal,
/// committed outcome (every replica reaches it), not a Raft error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Response {
    Ok {
        results: Vec<OpResult>,
    },
    /// Check number `index` did not hold; `detail` says what was found (for
    /// DedupAbsent: the part that already holds the block).
    CheckFailed {
        index: usize,
        reason: String,
        detail: Option<String>,
    },
    /// An op could not apply (unknown table, existing database, ...).
    Rejected {
        index: usize,
        reason: String,
    },
}

impl Response {
    pub fn empty() -> Self {
        Response::Ok {
            results: Vec::new(),
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Response::Ok { .. })
    }
}

/// One Raft log entry: the commands that arrived together at the leader.
/// Batching many writers' commands into one entry costs one fsync for all of
/// them; each command still applies (and fails) on its own.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Batch(pub Vec<Request>);

/// The responses to a [`Batch`], in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchResponse(pub Vec<Response>);
