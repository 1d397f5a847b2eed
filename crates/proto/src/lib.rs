//! Protobuf messages and gRPC stubs generated from `proto/quorumhouse.proto`
//! (the client API). Server and client crates use these; nothing else does.

#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("quorumhouse.v1");
}

pub use v1::*;
