//! Writes: how a command reaches the leader and is committed. A follower
//! forwards it (once per attempt; an attempt that may have been delivered
//! makes a timeout "unknown", never "not committed"); the leader queues it for
//! [`batch_task`], which proposes everything queued as one Raft entry, so
//! concurrent writers share one log flush.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use qh_proto::interserver::WriteRequest;
use tokio::sync::watch;

use crate::command::{Batch, Op, Request, Response};
use crate::coordinator::Coordinator;
use crate::error::MetaError;
use crate::{now_ms, NodeId, Raft};

/// A command waiting to be proposed, and where its outcome goes.
pub(crate) struct Proposal {
    pub(crate) req: Request,
    pub(crate) done: tokio::sync::oneshot::Sender<Result<Attempt, MetaError>>,
}

/// Batches proposed at once (each is one Raft entry in flight).
pub(crate) const BATCHES_IN_FLIGHT: usize = 1;
/// Most commands in one Raft entry.
pub(crate) const MAX_BATCH: usize = 512;

/// How one write attempt ended.
pub(crate) enum Attempt {
    Done(Response),
    /// Not delivered to a leader: nothing was applied, safe to send again.
    Retry(String),
    /// The connection broke after the request may have gone out: it may
    /// still commit. Sending again is what the caller did before, so the
    /// loop retries, but it may no longer say "nothing was committed".
    RetryMaybeSent(String),
}

impl Coordinator {
    /// Commits a transaction and returns how it applied. Any node accepts it:
    /// a follower forwards it to the leader. Errors: `NoLeader` (nothing was
    /// committed), `Unknown` (sent, outcome unknown: it may still commit).
    pub async fn write(&self, mut req: Request) -> Result<Response, MetaError> {
        if req.now_ms == 0 {
            req.now_ms = now_ms();
        }
        let deadline = Instant::now() + self.cfg.write_timeout;
        let mut why = String::from("no leader elected");
        // Once an attempt may have reached a leader, running out of time
        // means "unknown", never the definite "nothing was committed".
        let mut maybe_sent: Option<String> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(match maybe_sent {
                    Some(sent) => {
                        MetaError::Unknown(format!("{sent}; then until the write timeout: {why}"))
                    }
                    None => MetaError::NoLeader(why),
                });
            }
            let leader = self.raft.metrics().borrow().current_leader;
            let attempt = match leader {
                Some(l) if l == self.cfg.node_id => self.write_as_leader(req.clone(), left).await?,
                Some(l) => self.forward(l, &req, left).await?,
                None => Attempt::Retry("no leader elected".into()),
            };
            match attempt {
                Attempt::Done(r) => return Ok(r),
                Attempt::Retry(w) => why = w,
                Attempt::RetryMaybeSent(w) => {
                    maybe_sent = Some(w.clone());
                    why = w;
                }
            }
            let mut m = self.raft.metrics();
            let _ = tokio::time::timeout(Duration::from_millis(50), m.changed()).await;
        }
    }

    pub(crate) async fn write_as_leader(
        &self,
        req: Request,
        left: Duration,
    ) -> Result<Attempt, MetaError> {
        let (done, rx) = tokio::sync::oneshot::channel();
        if self.proposals.send(Proposal { req, done }).await.is_err() {
            return Err(MetaError::Stopped);
        }
        match tokio::time::timeout(left, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(MetaError::Stopped),
            Err(_) => Err(MetaError::Unknown(
                "not committed by a quorum in time".into(),
            )),
        }
    }

    /// Resolves once this node follows a leader other than `leader`.
    pub(crate) async fn leader_replaced(&self, leader: NodeId) {
        let mut m = self.raft.metrics();
        loop {
            let now = m.borrow().current_leader;
            if now.is_some_and(|l| l != leader) {
                return;
            }
            if m.changed().await.is_err() {
                // Raft stopped: the call's own timeout ends the wait.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Sends a write to the leader; the leader does not forward it further.
    async fn forward(
        &self,
        leader: NodeId,
        req: &Request,
        left: Duration,
    ) -> Result<Attempt, MetaError> {
        if self.faults.is_cut(leader) {
            return Ok(Attempt::Retry(format!(
                "leader {leader} is cut off by a drill"
            )));
        }
        let Some(mut client) = self.peer_of(leader) else {
            return Ok(Attempt::Retry(format!(
                "leader {leader} has no known address"
            )));
        };
        let command = serde_json::to_vec(req).map_err(|e| MetaError::Protocol(e.to_string()))?;
        let call = tokio::time::timeout(
            left,
            client.write(WriteRequest {
                command,
                forwarded: true,
            }),
        );
        // A leader that froze or was cut off with the write in hand is
        // replaced within an election timeout. The write may still commit
        // (it may have reached a follower's log), so the outcome is unknown;
        // saying so then lets the caller retry idempotently at once rather
        // than after the whole write timeout.
        let answered = tokio::select! {
            r = call => r,
            _ = self.leader_replaced(leader) => {
                return Err(MetaError::Unknown(format!(
                    "leader {leader} was replaced while the write was in flight"
                )))
            }
        };
        match answered {
            Err(_) => Err(MetaError::Unknown(format!(
                "leader {leader} did not answer in time"
            ))),
            Ok(Err(status)) if status.code() == tonic::Code::Unavailable => {
                let why = format!("leader {leader} unreachable: {}", status.message());
                Ok(if never_sent(&status) {
                    Attempt::Retry(why)
                } else {
                    Attempt::RetryMaybeSent(why)
                })
            }
            Ok(Err(status)) => Err(MetaError::Unknown(format!(
                "leader {leader}: {}",
                status.message()
            ))),
            Ok(Ok(reply)) => {
                let reply = reply.into_inner();
                if !reply.response.is_empty() {
                    let resp = serde_json::from_slice(&reply.response)
                        .map_err(|e| MetaError::Protocol(e.to_string()))?;
                    Ok(Attempt::Done(resp))
                } else if !reply.error.is_empty() {
                    Err(MetaError::Unknown(reply.error))
                } else {
                    Ok(Attempt::Retry(format!(
                        "node {leader} is no longer the leader"
                    )))
                }
            }
        }
    }
}

/// Proposes queued commands as batches: while up to [`BATCHES_IN_FLIGHT`]
/// entries are being committed, newly arriving commands queue up and go out
/// together in the next entry, so N concurrent writers share one fsync.
pub(crate) async fn batch_task(
    raft: Raft,
    machine: Arc<crate::state_machine::Machine>,
    me: NodeId,
    timeout: Duration,
    mut rx: tokio::sync::mpsc::Receiver<Proposal>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let first = tokio::select! {
            p = rx.recv() => match p { Some(p) => p, None => return },
            _ = stop.changed() => return,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // The leader's stamp is the commands' time (see `clock`): what a
        // proposer put in `now_ms` is only its wall clock's report.
        let voters = raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .count();
        for p in &batch {
            for op in &p.req.ops {
                if let Op::RenewLease { node_id, .. } = op {
                    machine.clock.report(*node_id, p.req.now_ms);
                }
            }
        }
        let stamp = machine.clock.stamp(me, voters);
        for p in &mut batch {
            p.req.now_ms = stamp;
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let (reqs, waiters): (Vec<Request>, Vec<_>) =
                batch.into_iter().map(|p| (p.req, p.done)).unzip();
            let n = reqs.len();
            // Bounded so a permit is never held forever by a cut-off leader.
            let outcome = tokio::time::timeout(timeout * 3, raft.client_write(Batch(reqs))).await;
            let mut answers: Vec<Result<Attempt, MetaError>> = match outcome {
                Ok(Ok(resp)) if resp.data.0.len() == n => resp
                    .data
                    .0
                    .into_iter()
                    .map(|r| Ok(Attempt::Done(r)))
                    .collect(),
                Ok(Ok(resp)) => {
                    let m = format!(
                        "a batch of {n} commands got {} responses",
                        resp.data.0.len()
                    );
                    (0..n)
                        .map(|_| Err(MetaError::Protocol(m.clone())))
                        .collect()
                }
                // Not appended by this node: safe to send again.
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => (0..n)
                    .map(|_| {
                        Ok(Attempt::Retry(format!(
                            "leadership moved to {:?}",
                            f.leader_id
                        )))
                    })
                    .collect(),
                Ok(Err(RaftError::APIError(e))) => (0..n)
                    .map(|_| Err(MetaError::Unknown(e.to_string())))
                    .collect(),
                Ok(Err(RaftError::Fatal(e))) => {
                    tracing::warn!(error = %e, "coordinator write: Raft stopped");
                    (0..n).map(|_| Err(MetaError::Stopped)).collect()
                }
                Err(_) => (0..n)
                    .map(|_| {
                        Err(MetaError::Unknown(
                            "not committed by a quorum in time".into(),
                        ))
                    })
                    .collect(),
            };
            for (w, a) in waiters.into_iter().zip(answers.drain(..)) {
                let _ = w.send(a);
            }
        });
    }
}

/// Whether a call that failed with `Unavailable` certainly never reached the
/// server: the connection could not be opened (tonic reports every connector
/// failure, refused or timed out, as hyper-util's "tcp connect error" or
/// "dns error"). A connection that broke later (reset, keep-alive timeout,
/// GOAWAY) may have carried the request.
fn never_sent(status: &tonic::Status) -> bool {
    let m = status.message().to_ascii_lowercase();
    m.contains("connect error") || m.contains("dns error") || m.contains("connection refused")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::channel;
    use crate::trust::ClusterSecret;
    use qh_proto::interserver::meta_client::MetaClient as GrpcMetaClient;

    /// A refused connection is "never sent" (an isolated node keeps its
    /// definite 242); the check reads tonic's real message, so a tonic
    /// upgrade that rewords it fails here rather than turning every
    /// unreachable leader into an unknown outcome.
    #[tokio::test]
    async fn a_refused_connection_is_never_sent() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = closed.local_addr().expect("addr");
        drop(closed);
        let mut client = GrpcMetaClient::new(
            channel(&addr.to_string(), &ClusterSecret::none(), None).expect("channel"),
        );
        let status = client
            .write(WriteRequest {
                command: Vec::new(),
                forwarded: true,
            })
            .await
            .expect_err("nothing listens there");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(never_sent(&status), "{status:?}");
    }

    #[test]
    fn a_broken_connection_may_have_sent() {
        for m in [
            "transport error",
            "error reading a body from connection: connection reset",
            "keep-alive timed out",
        ] {
            assert!(!never_sent(&tonic::Status::unavailable(m)), "{m}");
        }
    }
}
