//! One quorumhouse node.
//!
//! [`Node::start`] opens the data directory and starts, in this order: the
//! interserver listener (peers must reach the coordinator while it boots),
//! the coordinator, the engine (with its merges and, when the node hosts
//! replicas, replication), the distributed-DDL worker, the HTTP interface
//! and the gRPC client API. `quorumhouse server` is a thin call into it.
//!
//! **Invariant:** every background task the node starts is registered in its
//! [`TaskRegistry`] by name and joined by [`Node::stop`], which stops them in
//! the reverse of the order a statement flows through them: the client doors
//! first (no new statement starts, in-flight ones finish — within a drain
//! of 10 s, past which they are cancelled, so a stop never hangs), then the DDL
//! worker and the interserver door, then replication, the coordinator, and
//! last the engine (merges, flush). Tasks owned by the coordinator and the
//! replicas are stopped by their owners' `shutdown`.

pub mod tasks;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use qh_query::{Engine, EngineOptions};
use qh_types::Settings;
use tokio::net::TcpListener;
use tracing::info;

pub use tasks::TaskRegistry;

/// Where a node listens and what it runs.
pub struct NodeOptions {
    pub data_dir: PathBuf,
    /// The gRPC client API in plaintext (`None`: TLS only).
    pub client_addr: Option<SocketAddr>,
    /// ClickHouse's HTTP protocol, `/ping`, `/metrics` in plaintext
    /// (`None`: TLS only).
    pub http_addr: Option<SocketAddr>,
    /// The same two doors over TLS.
    pub tls: Option<TlsDoors>,
    /// Raft, part fetches and stages, shard stages of distributed queries.
    pub interserver_addr: SocketAddr,
    pub coordinator: qh_meta::CoordinatorConfig,
    /// This node as a replica host of Replicated* tables.
    pub replication: qh_replication::ReplicationConfig,
    /// Settings every session starts with (the config's default profile).
    pub default_settings: Settings,
    /// Clusters the config defines (beside `default` and `sharded`).
    pub clusters: qh_query::clusters::Clusters,
    /// Users of the node's config file (read-only to SQL) and where the
    /// built-in `default` may connect from.
    pub access: qh_access::AccessConfig,
}

/// The client doors over TLS: one certificate, two ports (ClickHouse's
/// `tcp_port_secure` and `https_port`).
pub struct TlsDoors {
    pub config: qh_server::tls::TlsConfig,
    pub client_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("coordinator did not start: {0}")]
    Coordinator(#[from] qh_meta::MetaError),
    #[error("cannot open {path}: {source}")]
    Engine {
        path: PathBuf,
        #[source]
        source: qh_query::QueryError,
    },
    /// A server stopped serving by itself (its error is in the log).
    #[error("the {0} task ended unexpectedly; the node stopped")]
    TaskEnded(&'static str),
}

/// Task names, in the order [`Node::stop`] joins them.
const CLIENT_API: &str = "client_api";
const CLIENT_API_TLS: &str = "client_api_tls";
const HTTP: &str = "http";
const HTTPS: &str = "https";
const DDL_WORKER: &str = "ddl_worker";
const INTERSERVER: &str = "interserver";
/// Ends the node when its coordinator's Raft core stopped by itself.
const COORDINATOR_WATCH: &str = "coordinator_watch";
/// How long a stopping node lets in-flight statements finish before it
/// cancels them (ClickHouse's `shutdown_wait_unfinished`, 5 s there): when
/// every node stops at once, a quorum insert may wait on replicas that are
/// going away too, and a stop must not hang on it.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The whole stop (drain, replication, coordinator, flush) has this long.
const STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(25);

const STOP_ORDER: [&str; 6] = [
    CLIENT_API,
    CLIENT_API_TLS,
    HTTP,
    HTTPS,
    DDL_WORKER,
    INTERSERVER,
];

/// A running node: its engine, its coordinator and the tasks serving them.
pub struct Node {
    engine: Arc<Engine>,
    coordinator: Arc<qh_meta::Coordinator>,
    tasks: TaskRegistry,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, source })
}

impl Node {
    pub async fn start(opts: NodeOptions) -> Result<Node, NodeError> {
        std::fs::create_dir_all(&opts.data_dir).map_err(|source| NodeError::DataDir {
            path: opts.data_dir.clone(),
            source,
        })?;
        let inter_listener = bind(opts.interserver_addr).await?;
        let node_id = opts.coordinator.node_id;
        let coordinator = qh_meta::Coordinator::start(opts.coordinator).await?;
        let engine_opts = EngineOptions {
            coordinator: Some(coordinator.clone()),
            replication: Some(opts.replication),
            default_settings: opts.default_settings,
            clusters: opts.clusters,
            access: opts.access,
            ..EngineOptions::default()
        };
        let engine =
            Engine::open(&opts.data_dir, engine_opts).map_err(|source| NodeError::Engine {
                path: opts.data_dir.clone(),
                source,
            })?;
        info!(node_id, addr = ?opts.client_addr, data_dir = %opts.data_dir.display(), "node starting");
        // Every door is bound before any serves: a port taken fails the start.
        let bind_opt = |addr: Option<SocketAddr>| async move {
            match addr {
                Some(a) => bind(a).await.map(Some),
                None => Ok(None),
            }
        };
        let http_listener = bind_opt(opts.http_addr).await?;
        let client_listener = bind_opt(opts.client_addr).await?;
        let (tls_config, tls_client, https) = match opts.tls {
            Some(t) => (
                Some(t.config),
                bind_opt(t.client_addr).await?,
                bind_opt(t.https_addr).await?,
            ),
            None => (None, None, None),
        };
        let grpc_id = u32::try_from(node_id).unwrap_or(u32::MAX);

        let mut tasks = TaskRegistry::default();
        let metrics = Arc::new(qh_server::metrics::Metrics::default());
        tasks.spawn(
            INTERSERVER,
            errors_as_text(qh_server::serve_interserver(
                coordinator.clone(),
                engine.replication().cloned(),
                Some(engine.clone()),
                metrics.clone(),
                inter_listener,
                tasks.stopped(),
            )),
        );
        // A Raft core that stopped on a storage error (ENOSPC in its log
        // store) never comes back in this process: end the node with the
        // reason, so its supervisor restarts it once the disk is fixed.
        let watched = coordinator.clone();
        let stopping = tasks.stopped();
        tasks.spawn(COORDINATOR_WATCH, async move {
            tokio::select! {
                why = watched.core_stopped() => {
                    tracing::error!(reason = %why, "the coordinator stopped; stopping the node");
                    Err(format!("the coordinator's Raft core stopped: {why}"))
                }
                _ = stopping => Ok(()),
            }
        });
        let ddl_worker = qh_query::engine::on_cluster::run_ddl_worker(
            engine.clone(),
            coordinator.clone(),
            opts.data_dir.join("coordinator_ddl_done"),
            tasks.stop_signal(),
        );
        tasks.spawn(DDL_WORKER, async move {
            ddl_worker.await;
            Ok(())
        });
        let doors = [
            (HTTP, http_listener, None),
            (HTTPS, https, tls_config.clone()),
        ];
        for (name, listener, tls) in doors {
            let Some(listener) = listener else { continue };
            tasks.spawn(
                name,
                errors_as_text(qh_server::serve_http(
                    engine.clone(),
                    metrics.clone(),
                    listener,
                    tls,
                    tasks.stopped(),
                )),
            );
        }
        let doors = [
            (CLIENT_API, client_listener, None),
            (CLIENT_API_TLS, tls_client, tls_config),
        ];
        for (name, listener, tls) in doors {
            let Some(listener) = listener else { continue };
            tasks.spawn(
                name,
                errors_as_text(qh_server::serve_on(
                    engine.clone(),
                    metrics.clone(),
                    listener,
                    grpc_id,
                    tls,
                    tasks.stopped(),
                )),
            );
        }
        Ok(Node {
            engine,
            coordinator,
            tasks,
        })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Serves until `shutdown` completes (a signal) or a server ends by
    /// itself, then stops in order.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        let ended = tokio::select! {
            _ = shutdown => None,
            name = self.tasks.any_finished() => Some(name),
        };
        // Past this the process exits anyway: what a stop did not finish is
        // what a crash leaves, which start-up recovers.
        if tokio::time::timeout(STOP_DEADLINE, self.stop())
            .await
            .is_err()
        {
            tracing::warn!(
                ?STOP_DEADLINE,
                "the node did not stop in time: exiting anyway"
            );
        }
        match ended {
            Some(name) => Err(NodeError::TaskEnded(name)),
            None => Ok(()),
        }
    }

    /// Stops every task in order (see the crate doc) and flushes the engine.
    pub async fn stop(self) {
        self.tasks.stop(&STOP_ORDER, DRAIN).await;
        self.engine.flush_async_inserts().await;
        self.engine.shutdown_replication().await;
        self.coordinator.shutdown().await;
        self.engine.shutdown();
        info!("node stopped");
    }
}

async fn errors_as_text<E: std::fmt::Display>(
    f: impl Future<Output = Result<(), E>>,
) -> tasks::TaskResult {
    f.await.map_err(|e| e.to_string())
}
