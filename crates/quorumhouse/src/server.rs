//! `quorumhouse server`: one node serving the gRPC client API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use qh_query::{Engine, EngineOptions};
use tracing::{error, info};

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Data directory of this node.
    #[arg(long, default_value = "./qh-data/node1")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the gRPC client API.
    #[arg(long, default_value_t = 9001)]
    pub port: u16,
    /// Port of the HTTP interface (`/?query=`, `/ping`, `/metrics`).
    #[arg(long, default_value_t = 8121)]
    pub http_port: u16,
    /// This node's id (1-based).
    #[arg(long, default_value_t = 1)]
    pub node_id: u32,
}

pub fn run(args: ServerArgs) -> ExitCode {
    let rt = match crate::output::runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(run_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "server stopped with an error");
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => info!("SIGTERM: shutting down"),
                _ = i.recv() => info!("SIGINT: shutting down"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run_async(args: ServerArgs) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .map_err(|e| anyhow::anyhow!("bad listen address {}:{}: {e}", args.host, args.port))?;
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.data_dir.display()))?;
    let engine = Engine::open(&args.data_dir, EngineOptions::default())
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", args.data_dir.display()))?;
    info!(node_id = args.node_id, %addr, data_dir = %args.data_dir.display(), "node starting");
    let http_addr: SocketAddr = format!("{}:{}", args.host, args.http_port)
        .parse()
        .map_err(|e| anyhow::anyhow!("bad HTTP address: {e}"))?;
    let http_listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {http_addr}: {e}"))?;
    // One signal stops both endpoints.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let metrics = std::sync::Arc::new(qh_server::metrics::Metrics::default());
    let http = tokio::spawn(qh_server::serve_http(
        engine.clone(),
        metrics.clone(),
        http_listener,
        stopped(stop_rx.clone()),
    ));
    let served = qh_server::serve(
        engine.clone(),
        metrics,
        addr,
        args.node_id,
        stopped(stop_rx),
    )
    .await;
    if let Ok(Err(e)) = http.await {
        error!(error = %e, "HTTP interface failed");
    }
    // In-flight statements have finished; stop merges and flush.
    engine.shutdown();
    info!("node stopped");
    served.map_err(|e| anyhow::anyhow!("{e}"))
}
