//! TLS on the client doors: one certificate and key (PEM files) serve the
//! gRPC client API (through tonic's rustls) and the HTTP interface (through
//! tokio-rustls under axum), on ports of their own — ClickHouse's
//! `tcp_port_secure` and `https_port` — and, with the cluster's CA, the
//! interserver port's mutual TLS ([`TlsConfig::interserver`]).
//!
//! **Invariant:** a TLS handshake never holds up the accept loop: each runs
//! on its own task with a deadline, and only finished handshakes reach the
//! server. The accept task is owned by its [`TlsListener`] and stops with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

/// How long a client may take over its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them.
const ACCEPTED_BACKLOG: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Pem { path: PathBuf, what: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A server certificate (chain) and its key, ready for both doors.
#[derive(Clone)]
pub struct TlsConfig {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    http: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl TlsConfig {
    /// Reads and checks the PEM files: a certificate chain (server first)
    /// and its private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_files(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        let pem_err = |path: &Path, what: String| TlsError::Pem {
            path: path.to_path_buf(),
            what,
        };
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err(cert, format!("not a PEM certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(pem_err(cert, "holds no certificate".into()));
        }
        let private = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| pem_err(key, format!("not a PEM private key: {e}")))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut http = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| TlsError::Config(format!("certificate and key do not fit: {e}")))?;
        // The HTTP interface speaks HTTP/1.1 only.
        http.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            cert_pem,
            key_pem,
            http: Arc::new(http),
        })
    }

    /// The same identity for mutual TLS between nodes, trusting peers whose
    /// certificate the CA in `ca` (PEM) signed.
    pub fn interserver(&self, ca: &Path) -> Result<qh_meta::InterTls, TlsError> {
        let ca_pem = read(ca)?;
        let roots = CertificateDer::pem_slice_iter(&ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem {
                path: ca.to_path_buf(),
                what: format!("not a PEM certificate: {e}"),
            })?;
        if roots.is_empty() {
            return Err(TlsError::Pem {
                path: ca.to_path_buf(),
                what: "holds no certificate".into(),
            });
        }
        Ok(qh_meta::InterTls {
            ca_pem,
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        })
    }

    /// The same identity for tonic's server.
    pub fn grpc(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
            &self.cert_pem,
            &self.key_pem,
        ))
    }
}

/// Accepted TCP connections, each handed on once its TLS handshake is done
/// (axum's listener for the HTTPS door).
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl TlsListener {
    pub fn new(listener: TcpListener, tls: &TlsConfig) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::clone(&tls.http));
        let (tx, accepted) = mpsc::channel(ACCEPTED_BACKLOG);
        let accept_task = tokio::spawn(async move {
            // Dropped with this task: no handshake outlives the listener.
            let mut handshakes = tokio::task::JoinSet::new();
            loop {
                while handshakes.try_join_next().is_some() {}
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: wait, never spin.
                        debug!(error = %e, "HTTPS accept");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                handshakes.spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            accepted,
            local,
            accept_task,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(c) => c,
            // The accept task ended (it never does by itself while the
            // listener lives): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
