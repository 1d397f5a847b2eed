//! A quorumhouse node's network side.
//!
//! Owns the HTTP interface (`/?query=`, `/ping`, `/metrics`, in [`http`]) and
//! the interserver API (coordinator services of `qh_meta`, see
//! `proto/interserver.proto`, behind the cluster secret's gate in `auth`)
//! and the gRPC client API (`QueryService`, see `proto/quorumhouse.proto`),
//! the client doors also over TLS ([`tls`]); who may use them (`auth`):
//! sessions, streaming INSERT input into the engine, and streaming results
//! back as Arrow IPC with a final summary or a ClickHouse exception. It runs
//! statements through `qh_query`; it does not parse SQL itself.
//!
//! **Architecture Invariant:** errors cross the wire as `Exception {code,
//! name, message}` with ClickHouse's numbers, never as bare gRPC statuses.

mod auth;
pub mod http;
mod http_body;
pub mod input;
pub mod ipc;
pub mod metrics;
pub mod service;
mod sessions;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use qh_proto::query_service_server::QueryServiceServer;
use qh_query::Engine;
use tracing::info;

pub use service::QueryServiceImpl;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Accepted connections with TCP_NODELAY: small gRPC replies must not wait
/// for Nagle + delayed ACK (a ~40 ms stall per exchange otherwise).
fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Largest gRPC message accepted (input chunks, result batches).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Serves the HTTP interface on `listener` until `shutdown` completes;
/// HTTPS with `tls`.
pub async fn serve_http(
    engine: Arc<Engine>,
    metrics: Arc<metrics::Metrics>,
    listener: tokio::net::TcpListener,
    tls: Option<tls::TlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = http::router(http::HttpState {
        sessions: Arc::new(sessions::Sessions::new(Arc::clone(&engine))),
        engine,
        metrics,
    });
    // With the peer's address: users may be limited to hosts.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            info!(addr = ?listener.local_addr().ok(), "HTTP interface listening");
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => {
            info!(addr = ?listener.local_addr().ok(), "HTTPS interface listening");
            // `tap_io` gives the TLS listener axum's SocketAddr connect info.
            let listener = tls::TlsListener::new(listener, &tls)?.tap_io(|_| {});
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// Serves the interserver API (coordinator Raft + Meta services, part
/// fetches of replicated tables, shard stages of distributed queries) on
/// `listener` until `shutdown` completes. Every call must carry the
/// coordinator's cluster secret (`auth::interserver_gate`).
pub async fn serve_interserver(
    coordinator: Arc<qh_meta::Coordinator>,
    replication: Option<Arc<qh_replication::Replication>>,
    engine: Option<Arc<Engine>>,
    metrics: Arc<metrics::Metrics>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let secret = coordinator.config().cluster_secret.clone();
    if secret.is_set() {
        info!(addr = ?listener.local_addr().ok(), "interserver API listening (cluster secret required)");
    } else {
        tracing::warn!(
            addr = ?listener.local_addr().ok(),
            "interserver API listening WITHOUT a cluster secret: any process that reaches this port can join the coordinator and read or write parts; set cluster_secret (docs/configuration.md)"
        );
    }
    let (raft, meta) = coordinator.services();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &coordinator.config().interserver_tls {
        info!("interserver API over mutual TLS (peers need a certificate the cluster's CA signed)");
        builder = builder.tls_config(tls.server())?;
    }
    builder
        .layer(tonic::service::InterceptorLayer::new(
            auth::interserver_gate(secret, metrics),
        ))
        // Staged parts stream to us: a 64 KiB window would cap the transfer
        // at one window per round trip.
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(32 << 20))
        .tcp_nodelay(true)
        .add_service(raft)
        .add_service(meta)
        .add_optional_service(replication.map(|r| r.service()))
        .add_optional_service(engine.map(qh_query::distributed::service::service))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await?;
    Ok(())
}

/// Serves the client API on `addr` until `shutdown` completes, then stops
/// accepting and lets in-flight calls finish.
pub async fn serve(
    engine: Arc<Engine>,
    metrics: Arc<metrics::Metrics>,
    addr: SocketAddr,
    node_id: u32,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    serve_on(engine, metrics, listener, node_id, None, shutdown).await
}

/// Like [`serve`] on an already bound listener (tests bind port 0); over
/// TLS with `tls`.
pub async fn serve_on(
    engine: Arc<Engine>,
    metrics: Arc<metrics::Metrics>,
    listener: tokio::net::TcpListener,
    node_id: u32,
    tls: Option<tls::TlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr().ok();
    // The shard stage API too, so that `remote('host:port', ...)` works
    // with the port clients use, as ClickHouse's native port does; only
    // for a user who may read everything (`auth::stage_gate`).
    let stages = tonic::service::interceptor::InterceptedService::new(
        qh_query::distributed::service::client_port_service(Arc::clone(&engine)),
        auth::stage_gate(Arc::clone(&engine), Arc::clone(&metrics)),
    );
    let svc = QueryServiceImpl::new(engine, metrics, node_id);
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        server = server.tls_config(tls.grpc())?;
        info!(?addr, "client API listening (TLS)");
    } else {
        info!(?addr, "client API listening");
    }
    server
        .add_service(
            QueryServiceServer::new(svc)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(stages)
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await?;
    Ok(())
}
