//! Protobuf messages and gRPC stubs generated from `proto/`: the client API
//! (`quorumhouse.proto`, module `v1`) and the interserver API
//! (`interserver.proto`: Raft transport and coordinator forwarding).

#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("quorumhouse.v1");
}

pub use v1::*;

pub mod interserver {
    tonic::include_proto!("quorumhouse.interserver");
}
