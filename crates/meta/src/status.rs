//! What a node reports about the Raft group (`system.coordinator`, the
//! interserver `Status` call): plain data shared by the coordinator that
//! builds it and the remote client that receives it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// One node's view of the group (`system.coordinator`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub initialized: bool,
    pub role: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
    pub purged_index: u64,
    pub voters: BTreeMap<NodeId, String>,
    pub learners: BTreeMap<NodeId, String>,
    pub leases: Vec<LeaseStatus>,
    pub isolated_from: Vec<NodeId>,
    /// Hash of the state bytes at `applied_index`: equal on replicas that
    /// applied the same entries.
    pub state_digest: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseStatus {
    pub node_id: NodeId,
    pub address: String,
    pub is_active: bool,
    /// Milliseconds until the lease lapses (negative: lapsed that long ago).
    pub expires_in_ms: i64,
}
