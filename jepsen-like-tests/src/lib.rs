//! Fault-injection harness for quorumhouse, Jepsen's way: a fresh cluster of
//! real `quorumhouse` processes (through [`qh_local_cluster`]), concurrent
//! clients recording a history through the public gRPC protocol, faults on
//! a schedule drawn from a seed ([`nemesis`]; partitions and slow links
//! inside per-node network namespaces, [`net`]), and checkers that read
//! every replica at the end. The workloads, histories and checkers are
//! `qh-checker`'s (re-exported as [`workload`], [`history`], [`checker`]),
//! shared with `quorumhouse drill`. One run is [`run::run`] (its
//! `timeline.png`: [`timeline`]); the binary and `run-suite.sh` drive it.
//!
//! Invariant: a run is `valid` only on its safety properties (nothing
//! acknowledged lost, nothing duplicated, nothing that definitely failed
//! present, no stale sequential read, replicas in agreement); availability
//! is measured and reported, never a pass/fail timing.
//!
//! For white-box tests the crate also exposes the coordinator's own status
//! API ([`CoordinatorProbe`]); the fixed-script fault tests live in
//! `crates/quorumhouse/tests/`.

pub mod clock;
pub mod disk;
pub mod nemesis;
pub mod net;
pub mod report;
pub mod run;
pub mod timeline;

// The workloads, histories and checkers are shared with `quorumhouse drill`.
pub use qh_checker::check as checker;
pub use qh_checker::{history, workload};

use std::collections::BTreeSet;
use std::time::Duration;

pub use qh_local_cluster::{free_port, quorumhouse_binary, LocalCluster as TestCluster};
use qh_meta::{ClusterSecret, MetaClient, NodeStatus};

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
        MetaClient::new(
            &self.inter_addr(id),
            &ClusterSecret::new(self.cluster_secret()),
        )
        .expect("valid loopback address")
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
