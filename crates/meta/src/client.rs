//! A remote handle on the coordinator for tools, tests and benchmarks: sends
//! commands to any node's interserver port (the node forwards to the leader).

use std::collections::BTreeSet;
use std::time::Duration;

use qh_proto::interserver::meta_client::MetaClient as GrpcMetaClient;
use qh_proto::interserver::{
    ElectRequest, FaultRequest, MembershipRequest, StatusRequest, WriteRequest,
};

use crate::command::{Request, Response};
use crate::error::MetaError;
use crate::network::{channel, MAX_MESSAGE_BYTES};
use crate::status::NodeStatus;
use crate::trust::{ClusterSecret, InterChannel, InterTls};
use crate::NodeId;

#[derive(Clone)]
pub struct MetaClient {
    addr: String,
    inner: GrpcMetaClient<InterChannel>,
}

impl MetaClient {
    /// A client of the node at `addr` ("host:port" of its interserver port).
    /// Connects lazily; calls fail with `Connect` while the node is down.
    /// `secret` is the cluster's (a node with one refuses calls without it).
    pub fn new(addr: &str, secret: &ClusterSecret) -> Result<Self, MetaError> {
        Self::with_tls(addr, secret, None)
    }

    /// [`MetaClient::new`] over interserver TLS when `tls` is given.
    pub fn with_tls(
        addr: &str,
        secret: &ClusterSecret,
        tls: Option<&InterTls>,
    ) -> Result<Self, MetaError> {
        let ch = channel(addr, secret, tls).map_err(|message| MetaError::Connect {
            addr: addr.into(),
            message,
        })?;
        let inner = GrpcMetaClient::new(ch)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(MetaClient {
            addr: addr.into(),
            inner,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn connect_err(&self, s: tonic::Status) -> MetaError {
        MetaError::Connect {
            addr: self.addr.clone(),
            message: s.message().to_string(),
        }
    }

    /// Commits a command through this node. `NoLeader` means nothing was
    /// committed; `Unknown` means it may have been.
    pub async fn write(&self, req: &Request) -> Result<Response, MetaError> {
        let command = serde_json::to_vec(req).map_err(|e| MetaError::Protocol(e.to_string()))?;
        let reply = self
            .inner
            .clone()
            .write(WriteRequest {
                command,
                forwarded: false,
            })
            .await
            .map_err(|s| {
                if s.message().starts_with("coordinator has no leader") {
                    MetaError::NoLeader(s.message().to_string())
                } else {
                    self.connect_err(s)
                }
            })?;
        let reply = reply.into_inner();
        if !reply.error.is_empty() {
            return Err(MetaError::Unknown(reply.error));
        }
        serde_json::from_slice(&reply.response).map_err(|e| MetaError::Protocol(e.to_string()))
    }

    pub async fn status(&self) -> Result<NodeStatus, MetaError> {
        let mut inner = self.inner.clone();
        let reply = tokio::time::timeout(Duration::from_secs(2), inner.status(StatusRequest {}))
            .await
            .map_err(|_| MetaError::Connect {
                addr: self.addr.clone(),
                message: "status timed out".into(),
            })?
            .map_err(|s| self.connect_err(s))?;
        serde_json::from_slice(&reply.into_inner().status)
            .map_err(|e| MetaError::Protocol(e.to_string()))
    }

    /// Drills: make this node drop Raft traffic to and from `nodes` (empty heals).
    pub async fn isolate(&self, nodes: &BTreeSet<NodeId>) -> Result<(), MetaError> {
        let req = FaultRequest {
            isolate_from: nodes.iter().copied().collect(),
        };
        self.inner
            .clone()
            .set_faults(req)
            .await
            .map_err(|s| self.connect_err(s))?;
        Ok(())
    }

    /// Asks this node to start an election after `after` (a leader handing
    /// off before it shuts down).
    pub async fn elect_after(&self, after: Duration, leaving: NodeId) -> Result<(), MetaError> {
        let req = ElectRequest {
            after_ms: after.as_millis() as u64,
            leaving,
        };
        let mut inner = self.inner.clone();
        tokio::time::timeout(Duration::from_secs(2), inner.elect(req))
            .await
            .map_err(|_| MetaError::Connect {
                addr: self.addr.clone(),
                message: "elect timed out".into(),
            })?
            .map_err(|s| self.connect_err(s))?;
        Ok(())
    }

    /// Adds (`remove` false) or removes a voter; this node must be the leader.
    pub async fn change_membership(
        &self,
        node_id: NodeId,
        address: &str,
        remove: bool,
    ) -> Result<(), MetaError> {
        let req = MembershipRequest {
            node_id,
            address: address.into(),
            remove,
        };
        let r = self
            .inner
            .clone()
            .change_membership(req)
            .await
            .map_err(|s| self.connect_err(s))?
            .into_inner();
        if r.error.is_empty() {
            Ok(())
        } else {
            Err(MetaError::Membership(r.error))
        }
    }
}
