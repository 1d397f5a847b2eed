//! gRPC servers of the coordinator on the interserver port: `Raft` (openraft
//! messages from peers) and `Meta` (forwarded writes, read index, status,
//! membership, drill faults). A malformed message is answered with
//! INVALID_ARGUMENT and never reaches Raft.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use qh_proto::interserver::meta_server::{Meta, MetaServer};
use qh_proto::interserver::raft_server::{Raft as RaftRpc, RaftServer};
use qh_proto::interserver::{
    ElectReply, ElectRequest, FaultReply, FaultRequest, MembershipReply, MembershipRequest,
    RaftReply, RaftRequest, ReadIndexReply, ReadIndexRequest, StatusReply, StatusRequest,
    WriteReply, WriteRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use crate::command::Request;
use crate::coordinator::Coordinator;
use crate::error::MetaError;
use crate::network::MAX_MESSAGE_BYTES;
use crate::proposals::Attempt;

impl Coordinator {
    /// The `Raft` and `Meta` gRPC services, to mount on the interserver server.
    pub fn services(self: &Arc<Self>) -> (RaftServer<RaftService>, MetaServer<MetaService>) {
        let raft = RaftServer::new(RaftService(self.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let meta = MetaServer::new(MetaService(self.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        (raft, meta)
    }
}

pub struct RaftService(Arc<Coordinator>);

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(bytes)
        .map_err(|e| Status::invalid_argument(format!("malformed message: {e}")))
}

fn reply<T: Serialize, E: Serialize>(r: Result<T, E>) -> Result<GrpcResponse<RaftReply>, Status> {
    let encode =
        |v: Result<Vec<u8>, serde_json::Error>| v.map_err(|e| Status::internal(e.to_string()));
    Ok(GrpcResponse::new(match r {
        Ok(v) => RaftReply {
            payload: encode(serde_json::to_vec(&v))?,
            error: Vec::new(),
        },
        Err(e) => RaftReply {
            payload: Vec::new(),
            error: encode(serde_json::to_vec(&e))?,
        },
    }))
}

impl RaftService {
    fn admit(&self, req: &RaftRequest) -> Result<(), Status> {
        if self.0.faults.is_cut(req.from) {
            return Err(Status::unavailable("isolated by a drill"));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn append_entries(
        &self,
        req: GrpcRequest<RaftRequest>,
    ) -> Result<GrpcResponse<RaftReply>, Status> {
        let req = req.into_inner();
        self.admit(&req)?;
        reply(self.0.raft.append_entries(decode(&req.payload)?).await)
    }

    async fn vote(&self, req: GrpcRequest<RaftRequest>) -> Result<GrpcResponse<RaftReply>, Status> {
        let req = req.into_inner();
        self.admit(&req)?;
        reply(self.0.raft.vote(decode(&req.payload)?).await)
    }

    async fn install_snapshot(
        &self,
        req: GrpcRequest<RaftRequest>,
    ) -> Result<GrpcResponse<RaftReply>, Status> {
        let req = req.into_inner();
        self.admit(&req)?;
        reply(self.0.raft.install_snapshot(decode(&req.payload)?).await)
    }
}

pub struct MetaService(Arc<Coordinator>);

impl MetaService {
    fn leader_hint(&self) -> (u64, String) {
        match self.0.current_leader() {
            Some(l) => (l, self.0.address_of(l).unwrap_or_default()),
            None => (0, String::new()),
        }
    }
}

#[tonic::async_trait]
impl Meta for MetaService {
    #[tracing::instrument(level = "debug", skip_all, fields(forwarded = req.get_ref().forwarded))]
    async fn write(
        &self,
        req: GrpcRequest<WriteRequest>,
    ) -> Result<GrpcResponse<WriteReply>, Status> {
        let req = req.into_inner();
        let command: Request = decode(&req.command)?;
        let c = &self.0;
        let outcome = if req.forwarded {
            if c.current_leader() != Some(c.node_id()) {
                let (leader_id, leader_addr) = self.leader_hint();
                return Ok(GrpcResponse::new(WriteReply {
                    leader_id,
                    leader_addr,
                    ..Default::default()
                }));
            }
            match c.write_as_leader(command, c.config().write_timeout).await {
                Ok(Attempt::Done(r)) => Ok(r),
                Ok(Attempt::Retry(_)) => {
                    let (leader_id, leader_addr) = self.leader_hint();
                    return Ok(GrpcResponse::new(WriteReply {
                        leader_id,
                        leader_addr,
                        ..Default::default()
                    }));
                }
                Ok(Attempt::RetryMaybeSent(w)) => Err(MetaError::Unknown(w)),
                Err(e) => Err(e),
            }
        } else {
            c.write(command).await
        };
        let reply = match outcome {
            Ok(r) => WriteReply {
                response: serde_json::to_vec(&r).map_err(|e| Status::internal(e.to_string()))?,
                log_index: c.applied_index(),
                ..Default::default()
            },
            Err(MetaError::NoLeader(m)) if !req.forwarded => {
                return Err(Status::unavailable(format!(
                    "coordinator has no leader: {m}"
                )));
            }
            Err(e) => WriteReply {
                error: e.to_string(),
                ..Default::default()
            },
        };
        Ok(GrpcResponse::new(reply))
    }

    async fn read_index(
        &self,
        _req: GrpcRequest<ReadIndexRequest>,
    ) -> Result<GrpcResponse<ReadIndexReply>, Status> {
        let (leader_id, leader_addr) = self.leader_hint();
        if leader_id != self.0.node_id() {
            let error = "not the leader".to_string();
            return Ok(GrpcResponse::new(ReadIndexReply {
                index: 0,
                leader_id,
                leader_addr,
                error,
            }));
        }
        Ok(GrpcResponse::new(match self.0.leader_read_index().await {
            Ok(index) => ReadIndexReply {
                index,
                leader_id,
                leader_addr,
                error: String::new(),
            },
            Err(error) => ReadIndexReply {
                index: 0,
                leader_id: 0,
                leader_addr: String::new(),
                error,
            },
        }))
    }

    async fn status(
        &self,
        _req: GrpcRequest<StatusRequest>,
    ) -> Result<GrpcResponse<StatusReply>, Status> {
        let s = self.0.status();
        let status = serde_json::to_vec(&s).map_err(|e| Status::internal(e.to_string()))?;
        Ok(GrpcResponse::new(StatusReply {
            node_id: s.node_id,
            initialized: s.initialized,
            status,
        }))
    }

    async fn change_membership(
        &self,
        req: GrpcRequest<MembershipRequest>,
    ) -> Result<GrpcResponse<MembershipReply>, Status> {
        let req = req.into_inner();
        if req.node_id == 0 || (!req.remove && req.address.is_empty()) {
            return Err(Status::invalid_argument("node id and address are required"));
        }
        let (leader_id, leader_addr) = self.leader_hint();
        let error = if leader_id != self.0.node_id() {
            "not the leader".to_string()
        } else {
            match self
                .0
                .leader_change_membership(req.node_id, req.address, req.remove)
                .await
            {
                Ok(()) => String::new(),
                Err(e) => e.to_string(),
            }
        };
        Ok(GrpcResponse::new(MembershipReply {
            error,
            leader_id,
            leader_addr,
        }))
    }

    async fn set_faults(
        &self,
        req: GrpcRequest<FaultRequest>,
    ) -> Result<GrpcResponse<FaultReply>, Status> {
        let nodes: BTreeSet<u64> = req.into_inner().isolate_from.into_iter().collect();
        self.0.set_isolated(nodes);
        Ok(GrpcResponse::new(FaultReply {}))
    }

    async fn elect(
        &self,
        req: GrpcRequest<ElectRequest>,
    ) -> Result<GrpcResponse<ElectReply>, Status> {
        let req = req.into_inner();
        self.0
            .elect_after(Duration::from_millis(req.after_ms.min(10_000)), req.leaving);
        Ok(GrpcResponse::new(ElectReply {}))
    }
}
