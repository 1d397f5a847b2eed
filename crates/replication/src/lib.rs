//! ReplicatedMergeTree: what makes several nodes' copies of a table one table.
//!
//! Owns, per replicated table on this node, a [`Replica`]: its registration in
//! the coordinator, the commit of inserted parts (block numbers, the GET_PART
//! log entry and dedup ids in coordinator transactions), the queue task that
//! executes the table's replication log (fetch, merge, drop range, alter),
//! merge assignment, recovery at start-up (missing parts fetched, unexpected
//! parts detached) and `SYSTEM SYNC REPLICA`. It also serves and performs part
//! fetches between nodes ([`fetch`], the `Replication` gRPC service).
//!
//! **Architecture Invariant:** a part becomes active on a replica only when
//! the coordinator has a committed record of it; the coordinator's part
//! records (with their holders) are the truth every replica converges to.
//!
//! **Architecture Invariant:** executing a log entry is idempotent, so a
//! replica that crashes between doing the work and moving its log pointer
//! simply does it again.

pub mod error;
pub mod fetch;
pub mod insert;
pub mod replica;
pub mod staging;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use qh_meta::InterChannel;
use qh_meta::{Check, Coordinator, Op, Request, Response};
use qh_storage::{Catalog, MergeTreeTable, TableMeta};
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tracing::info;

pub use error::{ReplicationError, Result};
pub use insert::{InsertOptions, Quorum, QuorumInsertRow, StagedInsert};
pub use replica::{QueueEntry, Replica, ReplicaStatus};

/// This node's identity as a replica host.
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    pub node_id: u64,
    /// Interserver address other replicas fetch parts from.
    pub address: String,
    /// `{replica}`, `{shard}`, ... for engine arguments, as configured.
    pub macros: BTreeMap<String, String>,
}

impl ReplicationConfig {
    /// Defaults: `{replica}` = `node<id>`; `{shard}` unset, so it is the
    /// node's shard in the cluster an `ON CLUSTER` statement names, else 1.
    pub fn new(node_id: u64, address: String) -> Self {
        let mut macros = BTreeMap::new();
        macros.insert("replica".to_string(), format!("node{node_id}"));
        ReplicationConfig {
            node_id,
            address,
            macros,
        }
    }
}

/// The node's replicated tables and their background tasks.
pub struct Replication {
    cfg: ReplicationConfig,
    catalog: Arc<Catalog>,
    coordinator: Arc<Coordinator>,
    /// Coordinator path → this node's replica of it.
    replicas: RwLock<BTreeMap<String, Arc<Replica>>>,
    channels: Mutex<HashMap<String, Channel>>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("node_id", &self.cfg.node_id)
            .finish()
    }
}

impl Replication {
    /// Starts a replica (and its queue task) for every replicated table in
    /// the catalog. Must run inside a tokio runtime.
    pub fn start(
        catalog: Arc<Catalog>,
        coordinator: Arc<Coordinator>,
        cfg: ReplicationConfig,
    ) -> Arc<Replication> {
        let (stop, _) = watch::channel(false);
        let me = Arc::new(Replication {
            cfg,
            catalog,
            coordinator,
            replicas: RwLock::new(BTreeMap::new()),
            channels: Mutex::new(HashMap::new()),
            stop,
        });
        for db in me.catalog.databases() {
            for t in me.catalog.tables(&db).unwrap_or_default() {
                if t.is_replicated() {
                    me.attach(t);
                }
            }
        }
        me
    }

    pub fn config(&self) -> &ReplicationConfig {
        &self.cfg
    }

    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The configured macros (`system.macros`).
    pub fn macros(&self) -> &BTreeMap<String, String> {
        &self.cfg.macros
    }

    /// Replaces `{name}` macros in an engine argument: `{database}` and
    /// `{table}`, then the configured macros, then `context` (what an
    /// `ON CLUSTER` statement knows: `{cluster}`, the node's `{shard}` in it);
    /// an unset `{shard}` is 1.
    pub fn expand_macros(
        &self,
        template: &str,
        database: &str,
        table: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let end = after.find('}').ok_or_else(|| {
                ReplicationError::BadArguments(format!("unclosed macro in {template:?}"))
            })?;
            let name = &after[..end];
            let value = match name {
                "database" => database.to_string(),
                "table" => table.to_string(),
                _ => match self.cfg.macros.get(name).or_else(|| context.get(name)) {
                    Some(v) => v.clone(),
                    None if name == "shard" => "1".to_string(),
                    None => {
                        return Err(ReplicationError::BadArguments(format!(
                            "No macro '{name}' in config while processing substitutions in '{template}'"
                        )))
                    }
                },
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Registers a new local table as a replica in the coordinator: creates
    /// the table there if this is its first replica, else checks that the
    /// definitions agree. Call before the local table is created.
    pub async fn register(&self, meta: &TableMeta) -> Result<()> {
        let params = meta
            .replicated
            .as_ref()
            .ok_or_else(|| ReplicationError::BadArguments("not a replicated table".into()))?;
        let path = params.path.clone();
        if !path.starts_with('/') {
            return Err(ReplicationError::BadArguments(format!(
                "the coordinator path of a replicated table must start with '/': {path:?}"
            )));
        }
        let shared = serde_json::to_string(&meta.shared_definition())
            .map_err(|e| ReplicationError::BadArguments(e.to_string()))?;
        let add = Op::AddReplica {
            table: path.clone(),
            replica: params.replica.clone(),
            node_id: self.cfg.node_id,
            address: self.cfg.address.clone(),
        };
        // A node that just started may not hold its lease yet; a replica
        // registered then would not count as alive, and a quorum insert right
        // after CREATE would fail with 285 (ClickHouse's CREATE makes the
        // replica active before it returns).
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        if !self.coordinator.wait_own_lease(deadline).await {
            tracing::warn!(path = %path, "registering a replica before this node's lease is live");
        }
        for _ in 0..10 {
            let existing = self
                .coordinator
                .read_linearizable(|s| s.table(&path).cloned())
                .await
                .map_err(|e| ReplicationError::from_write(&path, e))?;
            let req = match existing {
                None => Request::ops(vec![
                    Op::CreateTable {
                        table: path.clone(),
                        engine: meta.engine_name(),
                        create_sql: shared.clone(),
                        max_log_entries: meta
                            .settings
                            .get("max_replicated_logs_to_keep")
                            .and_then(|v| v.trim_matches('\'').parse().ok())
                            .unwrap_or(0),
                    },
                    add.clone(),
                ])
                .with_checks(vec![Check::TableAbsent {
                    table: path.clone(),
                }]),
                Some(t) => {
                    let theirs: TableMeta = serde_json::from_str(&t.create_sql).map_err(|e| {
                        ReplicationError::Coordinator(format!("bad table metadata at {path}: {e}"))
                    })?;
                    let mine = meta.shared_definition();
                    if let Some(detail) = metadata_difference(&theirs, &mine) {
                        return Err(ReplicationError::MetadataMismatch { path, detail });
                    }
                    if let Some(r) = t.replicas.get(&params.replica) {
                        if r.node_id == self.cfg.node_id {
                            // Registered before; the local table was lost or the CREATE retried.
                            return Ok(());
                        }
                        return Err(ReplicationError::ReplicaExists {
                            path,
                            replica: params.replica.clone(),
                            node_id: r.node_id,
                        });
                    }
                    Request::op(add.clone()).with_checks(vec![Check::TableVersion {
                        table: path.clone(),
                        version: t.version,
                    }])
                }
            };
            match self.coordinator.write(req).await {
                Ok(Response::Ok { .. }) => {
                    info!(path = %path, replica = %params.replica, "replica registered");
                    return Ok(());
                }
                // Someone else created it or altered it meanwhile: look again.
                Ok(Response::CheckFailed { .. }) => continue,
                Ok(Response::Rejected { reason, .. }) => {
                    return Err(ReplicationError::Coordinator(reason))
                }
                Err(e) => return Err(ReplicationError::from_write(&path, e)),
            }
        }
        Err(ReplicationError::Coordinator(format!(
            "{path} kept changing while registering the replica"
        )))
    }

    /// Starts the replica of a local replicated table.
    pub fn attach(self: &Arc<Self>, table: Arc<MergeTreeTable>) -> Option<Arc<Replica>> {
        let params = table.meta().replicated?;
        let replica = Replica::new(
            Arc::downgrade(self),
            table,
            params.path.clone(),
            params.replica,
        );
        replica.spawn(self.stop.subscribe());
        self.replicas
            .write()
            .insert(params.path, Arc::clone(&replica));
        Some(replica)
    }

    /// The replica of a local table, if it is replicated.
    pub fn replica_of(&self, table: &MergeTreeTable) -> Option<Arc<Replica>> {
        let path = table.meta().replicated?.path;
        self.replicas.read().get(&path).cloned()
    }

    pub fn replica_by_path(&self, path: &str) -> Option<Arc<Replica>> {
        self.replicas.read().get(path).cloned()
    }

    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        self.replicas.read().values().cloned().collect()
    }

    /// DROP TABLE of a replicated table: stops its replica and unregisters it
    /// (the last replica removes the table from the coordinator). The caller
    /// drops the local data afterwards.
    pub async fn drop_replica(&self, table: &MergeTreeTable) -> Result<()> {
        let Some(params) = table.meta().replicated else {
            return Ok(());
        };
        let removed = self.replicas.write().remove(&params.path);
        if let Some(r) = removed {
            r.stop().await;
        }
        let path = params.path;
        let t = self
            .coordinator
            .read_linearizable(|s| s.table(&path).cloned())
            .await
            .map_err(|e| ReplicationError::from_write(&path, e))?;
        let Some(t) = t else { return Ok(()) };
        let mine = t
            .replicas
            .get(&params.replica)
            .is_some_and(|r| r.node_id == self.cfg.node_id);
        if !mine {
            return Ok(());
        }
        let op = if t.replicas.len() == 1 {
            Op::DropTable {
                table: path.clone(),
            }
        } else {
            Op::RemoveReplica {
                table: path.clone(),
                replica: params.replica.clone(),
            }
        };
        match self.coordinator.write(Request::op(op)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(ReplicationError::from_write(&path, e)),
        }
    }

    /// A (lazily connected, cached) channel to another node's interserver
    /// API; its calls carry the cluster secret's token when `address` is a
    /// member's (`Coordinator::secret_for`).
    pub fn channel(&self, address: &str) -> Result<InterChannel> {
        self.channel_with_connect_timeout(address, Duration::from_secs(1))
    }

    /// [`Replication::channel`] giving up a connection attempt after
    /// `connect` (a Distributed query's `connect_timeout_with_failover_ms`).
    pub fn channel_with_connect_timeout(
        &self,
        address: &str,
        connect: Duration,
    ) -> Result<InterChannel> {
        let secret = self.coordinator.secret_for(address);
        let key = format!("{address}#{}", connect.as_millis());
        if let Some(c) = self.channels.lock().get(&key) {
            return Ok(InterceptedService::new(c.clone(), secret));
        }
        let tls = self.coordinator.config().interserver_tls.as_ref();
        let endpoint = qh_meta::trust::endpoint(address, tls)
            .map_err(ReplicationError::BadArguments)?
            .connect_timeout(connect)
            .tcp_nodelay(true)
            // Parts stream to us: HTTP/2's default 64 KiB window would cap a
            // fetch at one window per round trip.
            .initial_stream_window_size(Some(8 << 20))
            .initial_connection_window_size(Some(32 << 20));
        let ch = endpoint.connect_lazy();
        self.channels.lock().insert(key, ch.clone());
        Ok(InterceptedService::new(ch, secret))
    }

    /// Stops every replica task (node shutdown).
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let replicas: Vec<Arc<Replica>> = self.replicas.read().values().cloned().collect();
        for r in replicas {
            r.stop().await;
        }
    }
}

/// What differs between two replicas' definitions of one table, if anything.
fn metadata_difference(theirs: &TableMeta, mine: &TableMeta) -> Option<String> {
    if theirs.columns != mine.columns {
        let show = |m: &TableMeta| {
            m.columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.ty))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Some(format!(
            "columns: coordinator has ({}), this table has ({})",
            show(theirs),
            show(mine)
        ));
    }
    if theirs.engine != mine.engine {
        return Some(format!(
            "engine: coordinator has {:?}, this table has {:?}",
            theirs.engine, mine.engine
        ));
    }
    if theirs.order_by != mine.order_by || theirs.primary_key != mine.primary_key {
        return Some(format!(
            "sorting key: coordinator has ({}), this table has ({})",
            theirs.order_by.join(", "),
            mine.order_by.join(", ")
        ));
    }
    if theirs.partition_by != mine.partition_by {
        return Some(format!(
            "partition key: coordinator has {:?}, this table has {:?}",
            theirs.partition_by, mine.partition_by
        ));
    }
    None
}
