//! Distributed tables: one query over every shard of a cluster.
//!
//! A `Distributed(cluster, db, table[, sharding_key])` table holds no data.
//! Its scan is a [`scan::DistributedScanExec`] leaf that never runs: the
//! [`rule::DistributedStages`] physical optimizer rule (first in the list,
//! on the unoptimized plan) cuts the plan above it — at the lowest partial
//! `AggregateExec` when there is one, else above the filters and
//! projections — and puts a [`exec::RemoteStageExec`] in its place. That
//! stage sends the cut fragment, serialized with datafusion-proto, to one
//! replica of each shard ([`service`]); the shard swaps the leaf for its
//! local table's scan ([`codec`]), optimizes and runs the fragment and
//! streams Arrow IPC batches back. The initiator keeps DataFusion's own
//! final aggregation, sort and limit above the stage, so the merge of the
//! shards' partial states is DataFusion's, not ours. With
//! `max_parallel_replicas` a shard's aggregation is split by key ranges over
//! several of its replicas ([`parallel`]).
//!
//! **Invariants.** Only the exact same build runs a fragment (aggregate
//! states have no stable format). A shard's partial aggregate is buffered
//! whole before it is passed on, so a replica that fails mid-stage is
//! replaced by another replica of its shard without a duplicate row; a
//! row stage fails over only before its first batch. A shard with no
//! replica left fails the query with ALL_CONNECTION_TRIES_FAILED unless
//! `skip_unavailable_shards = 1`.

pub mod codec;
pub mod exec;
pub mod insert;
pub mod parallel;
pub mod remote;
pub mod rule;
pub mod scan;
pub mod service;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use qh_storage::TableMeta;
use qh_types::{ErrorCode, Settings};

use crate::engine::Engine;
use crate::error::{QueryError, Result};

/// What a fragment is checked against before a shard runs it.
pub const BUILD: &str = concat!(
    "quorumhouse ",
    env!("CARGO_PKG_VERSION"),
    " (datafusion 55.2)"
);

/// Bytes of Arrow IPC this node exchanged for Distributed queries (the
/// `/metrics` counters; the bench compares them with the bytes scanned).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Received by this node as an initiator from remote shards.
    pub received: Arc<AtomicU64>,
    /// Sent by this node as a shard to remote initiators.
    pub sent: Arc<AtomicU64>,
}

/// One replica of a shard as a query sees it.
#[derive(Debug, Clone)]
pub struct ShardReplica {
    pub node: u64,
    /// Interserver address.
    pub address: String,
    /// This node: the stage runs in-process.
    pub local: bool,
    /// Holds a live coordinator lease (tried before those that do not).
    pub active: bool,
}

impl ShardReplica {
    /// How errors name it: its node id and address, or for a server named
    /// by `remote()` its address.
    pub fn describe(&self) -> String {
        if self.node == 0 {
            self.address.clone()
        } else {
            format!("node {} ({})", self.node, self.address)
        }
    }
}

/// A shard: its 1-based number and its replicas in the order to try.
#[derive(Debug, Clone)]
pub struct Shard {
    pub number: u32,
    pub replicas: Vec<ShardReplica>,
}

pub(crate) fn needs_coordinator() -> QueryError {
    QueryError::other(
        ErrorCode::NOT_IMPLEMENTED,
        "Distributed tables need a node with the built-in coordinator (quorumhouse server / cluster up), not quorumhouse local",
    )
}

/// The shards of `cluster`, each replica list ordered for this query by
/// `prefer_localhost_replica` and `load_balancing`.
pub fn resolve_shards(
    engine: &Engine,
    cluster: &str,
    settings: &Settings,
    query_id: &str,
) -> Result<Vec<Shard>> {
    let coordinator = engine.coordinator().ok_or_else(needs_coordinator)?;
    let layout = engine.clusters().remove(cluster).ok_or_else(|| {
        QueryError::other(
            ErrorCode::CLUSTER_DOESNT_EXIST,
            format!("Requested cluster '{cluster}' not found"),
        )
    })?;
    let status = coordinator.status();
    let prefer_local = settings
        .uint("prefer_localhost_replica")
        .map_err(QueryError::BadArguments)?
        != 0;
    let balancing = settings.value_or_default("load_balancing");
    let mut shards = Vec::with_capacity(layout.len());
    for (i, nodes) in layout.iter().enumerate() {
        let mut replicas: Vec<ShardReplica> = nodes
            .iter()
            .map(|&node| ShardReplica {
                node,
                address: status.voters.get(&node).cloned().unwrap_or_default(),
                local: node == status.node_id,
                active: status
                    .leases
                    .iter()
                    .any(|l| l.node_id == node && l.is_active),
            })
            .collect();
        let seed = xxhash_rust::xxh3::xxh3_64(format!("{query_id}/{i}").as_bytes());
        order_replicas(&mut replicas, &balancing, seed, prefer_local)?;
        shards.push(Shard {
            number: i as u32 + 1,
            replicas,
        });
    }
    Ok(shards)
}

/// ClickHouse's `load_balancing` over one shard's replicas (in layout order
/// on entry); the local replica first when preferred; replicas without a
/// live lease last.
pub(crate) fn order_replicas(
    replicas: &mut [ShardReplica],
    balancing: &str,
    seed: u64,
    prefer_local: bool,
) -> Result<()> {
    let n = replicas.len();
    if n > 1 {
        match balancing {
            "in_order" | "nearest_hostname" | "hostname_levenshtein_distance" => {}
            "random" => replicas.rotate_left(seed as usize % n),
            "first_or_random" => replicas[1..].rotate_left(seed as usize % (n - 1)),
            "round_robin" => {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                replicas.rotate_left(NEXT.fetch_add(1, Ordering::Relaxed) % n);
            }
            other => {
                return Err(QueryError::BadArguments(format!(
                    "Unknown load balancing mode: '{other}' (random, in_order, first_or_random, round_robin, nearest_hostname)"
                )))
            }
        }
    }
    // Stable: keeps the balancing order within each class.
    replicas.sort_by_key(|r| (!(prefer_local && r.local), !r.active));
    Ok(())
}

/// CREATE TABLE ... ENGINE = Distributed: the cluster exists and the
/// sharding key names columns of the table.
pub fn check_definition(
    engine: &Arc<Engine>,
    cluster: &str,
    sharding_key: Option<&str>,
    meta: &TableMeta,
) -> Result<()> {
    if engine.coordinator().is_none() {
        return Err(needs_coordinator());
    }
    if !engine.clusters().contains_key(cluster) {
        return Err(QueryError::other(
            ErrorCode::CLUSTER_DOESNT_EXIST,
            format!("Requested cluster '{cluster}' not found"),
        ));
    }
    if let Some(key) = sharding_key {
        let e = crate::statement::parse_expr(key)?;
        for c in crate::keys::referenced_columns(&e) {
            if meta.column(&c).is_none() {
                return Err(QueryError::UnknownIdentifier(format!(
                    "Missing columns: '{c}' while processing the sharding key {key}"
                )));
            }
        }
        // Refused now rather than at the first INSERT, as ClickHouse does.
        let schema = meta.arrow_schema();
        let t = crate::keys::compile(engine.base_state(), key, &schema)?.data_type(&schema)?;
        let empty = datafusion::arrow::array::new_empty_array(&t);
        insert::as_u64(&empty, key)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(node: u64, local: bool, active: bool) -> ShardReplica {
        ShardReplica {
            node,
            address: String::new(),
            local,
            active,
        }
    }

    #[test]
    fn local_first_then_balancing_and_dead_last() {
        let mut v = vec![r(1, false, true), r(2, true, true), r(3, false, false)];
        order_replicas(&mut v, "in_order", 0, true).unwrap();
        let ids: Vec<u64> = v.iter().map(|r| r.node).collect();
        assert_eq!(ids, vec![2, 1, 3]);
        let mut v = vec![r(1, false, true), r(2, true, true), r(3, false, true)];
        order_replicas(&mut v, "random", 1, false).unwrap();
        let ids: Vec<u64> = v.iter().map(|r| r.node).collect();
        assert_eq!(ids, vec![2, 3, 1]);
        assert!(order_replicas(&mut v, "nope", 1, false).is_err());
    }
}
