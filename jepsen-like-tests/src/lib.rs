//! Fault-injection harness for quorumhouse: starts real `quorumhouse`
//! processes (through [`qh_local_cluster`]), injects faults (SIGKILL, pauses,
//! partitions) and checks invariants.
//!
//! The process plumbing lives in `qh-local-cluster`, which the product
//! binary's benches and drills share; this crate adds what only white-box
//! tests need: the coordinator's own status and write API ([`CoordinatorProbe`]).
//! The workloads themselves live in `crates/quorumhouse/tests/`.

use std::collections::BTreeSet;
use std::time::Duration;

pub use qh_local_cluster::{free_port, quorumhouse_binary, LocalCluster as TestCluster};
use qh_meta::{MetaClient, NodeStatus};

/// The coordinator's interserver API of a node of a [`TestCluster`]: for
/// tests of the coordinator itself, which look below the public protocols.
#[allow(async_fn_in_trait)]
pub trait CoordinatorProbe {
    /// A coordinator client talking to node `id`'s interserver port.
    fn meta(&self, id: u64) -> MetaClient;

    /// Node `id`'s Raft status, `None` while it does not answer.
    async fn status(&self, id: u64) -> Option<NodeStatus>;

    /// Waits until every node of `among` applied the same index with the same state.
    async fn converged(
        &self,
        among: &BTreeSet<u64>,
        timeout: Duration,
    ) -> anyhow::Result<NodeStatus>;
}

impl CoordinatorProbe for TestCluster {
    fn meta(&self, id: u64) -> MetaClient {
        MetaClient::new(&self.inter_addr(id)).expect("valid loopback address")
    }

    async fn status(&self, id: u64) -> Option<NodeStatus> {
        self.meta(id).status().await.ok()
    }

    async fn converged(
        &self,
        among: &BTreeSet<u64>,
        timeout: Duration,
    ) -> anyhow::Result<NodeStatus> {
        self.wait_for("replicas with identical state", timeout, || async {
            let mut first: Option<NodeStatus> = None;
            for &id in among {
                let st = self.status(id).await?;
                if let Some(f) = &first {
                    if f.applied_index != st.applied_index || f.state_digest != st.state_digest {
                        return None;
                    }
                } else {
                    first = Some(st);
                }
            }
            first
        })
        .await
    }
}
