//! The distributed DDL queue: `... ON CLUSTER` statements in order, with
//! each host's outcome.

use super::*;

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
    pub hosts: Vec<DdlHost>,
    pub created_ms: u64,
    /// Node id → error text ("" when it succeeded).
    pub finished: BTreeMap<NodeId, String>,
}

impl DdlTask {
    /// This node's place in the task's cluster, when the task names it.
    pub fn place(&self, node: NodeId) -> Option<DdlHost> {
        self.hosts.iter().find(|h| h.node == node).copied()
    }
}

/// Queues a task under the next sequence number, which it answers.
pub(super) fn enqueue(tx: &mut Tx<'_>, task: DdlTask) -> u64 {
    let seq = tx.s.next_ddl + 1;
    tx.set_next_ddl(seq);
    tx.set_ddl(seq, Some(task));
    seq
}

pub(super) fn finish(
    tx: &mut Tx<'_>,
    seq: u64,
    node_id: NodeId,
    error: Option<&String>,
) -> ApplyResult<()> {
    let mut task =
        tx.s.ddl
            .get(&seq)
            .cloned()
            .ok_or(ApplyError::DdlTaskMissing(seq))?;
    task.finished
        .insert(node_id, error.cloned().unwrap_or_default());
    tx.set_ddl(seq, Some(task));
    Ok(())
}
