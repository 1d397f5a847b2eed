//! The coordinator: what ClickHouse keeps in ZooKeeper/Keeper, built into every
//! node as one Raft group (openraft 0.9, storage v2) persisted in sled.
//!
//! It owns the catalog (databases, tables and their schema versions), replicas
//! and their liveness leases, each table's replication log and per-replica
//! pointers, part sets with their holders, block numbers, dedup block ids and
//! the ON CLUSTER DDL queue. Writes are [`Request`] transactions with
//! compare-and-set checks; any node accepts them and forwards to the leader.
//! Reads are local ([`Coordinator::read`]) or linearizable
//! ([`Coordinator::read_linearizable`], read-index through the leader).
//!
//! Module map: `command` (the log entry language), `state` (the state and
//! how a command applies), `log_store` / `state_machine` (openraft storage
//! over sled), `network` (Raft RPCs over tonic), `service` (the gRPC servers),
//! `coordinator` (the handle a node uses), `proposals` (how a write reaches
//! the leader and is batched into Raft entries), `clock` (the coordinator's time,
//! which no single node's wall clock moves), `client` (a remote handle for tools),
//! `trust` (the cluster secret every interserver call carries).

// openraft's storage traits fix `StorageError` (224 bytes) as the error type.
#![allow(clippy::result_large_err)]

use std::io::Cursor;

pub mod client;
mod clock;
pub mod command;
pub mod coordinator;
pub mod error;
mod log_store;
mod network;
mod proposals;
mod service;
pub mod state;
mod state_machine;
pub mod status;
pub mod trust;

pub use client::MetaClient;
pub use command::{
    Batch, BatchResponse, Check, CommittedPart, DdlHost, LogEntry, NewPart, Op, OpResult, Request,
    Response,
};
pub use coordinator::{Coordinator, CoordinatorConfig, LeaseStatus, NodeStatus};
pub use error::MetaError;
pub use state::MetaState;
pub use trust::{ClusterSecret, InterChannel, InterTls};

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Raft types of the coordinator group.
    pub TypeConfig:
        D = Batch,
        R = BatchResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
