//! Interserver trust: the cluster secret (ClickHouse's `<secret>` of a
//! cluster). Every call one node makes to another's interserver port — Raft,
//! coordinator forwarding, part fetches and stages, shard stages — carries a
//! token derived from the secret, and the interserver port refuses a call
//! without the right one, so a process that does not know the secret cannot
//! vote, join, read the coordinator, fetch or stage parts.
//!
//! **Invariants:** the secret itself never travels, only
//! `sha256(label ‖ secret)`, so a token seen on the wire opens this cluster's
//! interserver ports (as the secret would) but reveals no secret reused
//! elsewhere; a token goes only to members of the coordinator group
//! ([`crate::Coordinator::secret_for`]), never to an address a user typed
//! into `remote()`. Without TLS the link is as private as the network it
//! runs on. A node without a secret accepts every call (ClickHouse's default
//! too) and says so at start-up.
//!
//! With interserver TLS ([`InterTls`]) the links are also encrypted and
//! mutual: every node presents its certificate and accepts only peers whose
//! certificate the cluster's CA signed, so a process without one cannot even
//! complete a connection; the secret still travels inside, for clusters that
//! share a CA with other services.

use sha2::{Digest, Sha256};
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};

/// The gRPC metadata key of the token.
pub const TOKEN_KEY: &str = "x-quorumhouse-cluster-token";

/// Domain separation: the token of a secret is of no use as anything else.
const LABEL: &[u8] = b"quorumhouse interserver token v1\0";

/// A channel to another node's interserver port that sends the token.
pub type InterChannel = InterceptedService<Channel, ClusterSecret>;

/// The cluster secret as the token calls carry; cheap to clone. Never
/// printed.
#[derive(Clone, Default)]
pub struct ClusterSecret {
    token: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.is_set() { "set" } else { "none" };
        write!(f, "ClusterSecret({state})")
    }
}

impl ClusterSecret {
    /// The secret `secret`; an empty one is no secret (an open port).
    pub fn new(secret: &str) -> ClusterSecret {
        if secret.is_empty() {
            return ClusterSecret::none();
        }
        let mut h = Sha256::new();
        h.update(LABEL);
        h.update(secret.as_bytes());
        let hex = hex::encode(h.finalize());
        ClusterSecret {
            // Hex digits are always a valid ASCII metadata value.
            token: MetadataValue::try_from(hex.as_str()).ok(),
        }
    }

    /// No secret: calls carry no token and every call is admitted.
    pub fn none() -> ClusterSecret {
        ClusterSecret { token: None }
    }

    pub fn is_set(&self) -> bool {
        self.token.is_some()
    }

    /// Whether a call with this metadata may pass (always, without a
    /// secret). Compares in constant time.
    pub fn admits(&self, metadata: &MetadataMap) -> bool {
        let Some(want) = &self.token else {
            return true;
        };
        let Some(got) = metadata.get(TOKEN_KEY) else {
            return false;
        };
        let (a, b) = (want.as_bytes(), got.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Mutual TLS between nodes: this node's certificate chain and key (PEM)
/// and the CA that signs every node's certificate. Never printed.
#[derive(Clone)]
pub struct InterTls {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for InterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InterTls")
    }
}

impl InterTls {
    /// What this node's interserver port serves: its certificate, and only
    /// clients presenting a certificate the CA signed.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
    }

    /// What this node's calls to others present and check.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }
}

/// An endpoint for another node's interserver port `addr` ("host:port"):
/// over TLS when `tls` is given (the peer's certificate must name `host`).
pub fn endpoint(addr: &str, tls: Option<&InterTls>) -> Result<Endpoint, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let ep = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|e| format!("bad address {addr}: {e}"))?;
    match tls {
        Some(t) => ep
            .tls_config(t.client())
            .map_err(|e| format!("interserver TLS for {addr}: {e}")),
        None => Ok(ep),
    }
}

/// The client side: adds the token to every outgoing call.
impl tonic::service::Interceptor for ClusterSecret {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.token {
            req.metadata_mut().insert(TOKEN_KEY, t.clone());
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn sent_by(mut s: ClusterSecret) -> MetadataMap {
        s.call(tonic::Request::new(()))
            .expect("never refuses")
            .metadata()
            .clone()
    }

    #[test]
    fn only_the_same_secret_is_admitted() {
        let s = ClusterSecret::new("correct horse");
        assert!(s.admits(&sent_by(s.clone())));
        assert!(!s.admits(&sent_by(ClusterSecret::new("battery staple"))));
        assert!(!s.admits(&sent_by(ClusterSecret::none())));
        assert!(!s.admits(&MetadataMap::new()));
    }

    #[test]
    fn no_secret_admits_everyone_and_sends_nothing() {
        let open = ClusterSecret::new("");
        assert!(!open.is_set());
        assert!(open.admits(&MetadataMap::new()));
        assert!(sent_by(open).get(TOKEN_KEY).is_none());
    }

    #[test]
    fn the_secret_is_neither_sent_nor_printed() {
        let s = ClusterSecret::new("hunter2");
        let md = sent_by(s.clone());
        let token = md.get(TOKEN_KEY).expect("a token").to_str().expect("ascii");
        assert!(!token.contains("hunter2"));
        assert_eq!(token.len(), 64);
        assert_eq!(format!("{s:?}"), "ClusterSecret(set)");
    }
}
