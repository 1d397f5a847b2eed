//! Raft RPCs to other nodes over tonic (service `Raft` of interserver.proto).
//! Messages are openraft's own serde types as JSON. Connections are lazy and
//! re-established by tonic; every call has a deadline from openraft's
//! `RPCOption`, so a dead peer costs a timeout, never a hang.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RPCTypes};
use parking_lot::RwLock;
use qh_proto::interserver::raft_client::RaftClient;
use qh_proto::interserver::RaftRequest;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::service::interceptor::InterceptedService;

use crate::trust::{ClusterSecret, InterChannel, InterTls};
use crate::{NodeId, TypeConfig};

/// Largest interserver message accepted (snapshot chunks, log batches).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Nodes this node pretends it cannot reach, both ways (drills: partitions).
#[derive(Default)]
pub struct Faults {
    isolated: RwLock<BTreeSet<NodeId>>,
}

impl Faults {
    pub fn set(&self, nodes: BTreeSet<NodeId>) {
        *self.isolated.write() = nodes;
    }

    pub fn is_cut(&self, node: NodeId) -> bool {
        self.isolated.read().contains(&node)
    }

    pub fn isolated(&self) -> BTreeSet<NodeId> {
        self.isolated.read().clone()
    }
}

/// A lazily connecting channel to `addr` ("host:port") whose calls carry
/// `secret`'s token, over TLS when `tls` is given.
pub fn channel(
    addr: &str,
    secret: &ClusterSecret,
    tls: Option<&InterTls>,
) -> Result<InterChannel, String> {
    let ep = crate::trust::endpoint(addr, tls)?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5));
    Ok(InterceptedService::new(ep.connect_lazy(), secret.clone()))
}

pub struct Network {
    pub node_id: NodeId,
    pub faults: Arc<Faults>,
    pub secret: ClusterSecret,
    pub tls: Option<InterTls>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        Connection {
            from: self.node_id,
            target,
            client: channel(&node.addr, &self.secret, self.tls.as_ref()).map(|c| {
                RaftClient::new(c)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES)
            }),
            faults: self.faults.clone(),
        }
    }
}

pub struct Connection {
    from: NodeId,
    target: NodeId,
    client: Result<RaftClient<InterChannel>, String>,
    faults: Arc<Faults>,
}

#[derive(Clone, Copy)]
enum Kind {
    Append,
    Vote,
    Snapshot,
}

impl Connection {
    async fn call<Req, Resp, E>(
        &mut self,
        kind: Kind,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error,
        RaftError<NodeId, E>: DeserializeOwned,
    {
        if self.faults.is_cut(self.target) {
            return Err(RPCError::Unreachable(Unreachable::new(
                &std::io::Error::other("isolated by a drill"),
            )));
        }
        let client = match &mut self.client {
            Ok(c) => c,
            Err(e) => {
                return Err(RPCError::Unreachable(Unreachable::new(
                    &std::io::Error::other(e.clone()),
                )))
            }
        };
        let payload =
            serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let request = RaftRequest {
            from: self.from,
            payload,
        };
        let ttl = option.hard_ttl();
        let fut = async {
            match kind {
                Kind::Append => client.append_entries(request).await,
                Kind::Vote => client.vote(request).await,
                Kind::Snapshot => client.install_snapshot(request).await,
            }
        };
        let action = match kind {
            Kind::Append => RPCTypes::AppendEntries,
            Kind::Vote => RPCTypes::Vote,
            Kind::Snapshot => RPCTypes::InstallSnapshot,
        };
        let reply = match tokio::time::timeout(ttl, fut).await {
            Err(_) => {
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.from,
                    target: self.target,
                    timeout: ttl,
                }));
            }
            Ok(Err(status)) => {
                let e = std::io::Error::other(status.message().to_string());
                return Err(match status.code() {
                    tonic::Code::Unavailable | tonic::Code::Unknown => {
                        RPCError::Unreachable(Unreachable::new(&e))
                    }
                    _ => RPCError::Network(NetworkError::new(&e)),
                });
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        if !reply.error.is_empty() {
            let err: RaftError<NodeId, E> = serde_json::from_slice(&reply.error)
                .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            return Err(RPCError::RemoteError(RemoteError::new(self.target, err)));
        }
        serde_json::from_slice(&reply.payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Kind::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(Kind::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Kind::Vote, &rpc, &option).await
    }
}
