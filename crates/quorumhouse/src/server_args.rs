//! The flags of `quorumhouse server`; `config.rs` fills the ones a config
//! file sets and the command line leaves out.

use std::path::PathBuf;

use clap::Args;

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
    /// Port of the interserver API (Raft, part fetch, remote query).
    #[arg(long, default_value_t = 9101)]
    pub interserver_port: u16,
    /// Interserver address other nodes use for this one (default host:interserver-port).
    #[arg(long)]
    pub advertise: Option<String>,
    /// The initial coordinator voters, `id=host:port,...` (interserver
    /// addresses). They bootstrap one Raft group once. Default: this node alone.
    #[arg(long, default_value = "")]
    pub peers: String,
    /// Raft heartbeat interval.
    #[arg(long, default_value_t = 100)]
    pub raft_heartbeat_ms: u64,
    /// Raft election timeout (randomized between this and twice this).
    #[arg(long, default_value_t = 250)]
    pub raft_election_timeout_ms: u64,
    /// Build a coordinator snapshot (and purge the log) every this many entries.
    #[arg(long, default_value_t = 5000)]
    pub raft_snapshot_logs: u64,
    /// Log entries kept behind a snapshot.
    #[arg(long, default_value_t = 1000)]
    pub raft_keep_logs: u64,
    /// A replica's lease lapses this long after its last renewal (renewed every second).
    #[arg(long, default_value_t = 4000)]
    pub lease_ttl_ms: u64,
    /// How long a coordinator write may wait for a leader and a quorum.
    #[arg(long, default_value_t = 10000)]
    pub coordinator_write_timeout_ms: u64,
    /// The `{replica}` macro of Replicated* engines (default `node<id>`).
    #[arg(long)]
    pub replica: Option<String>,
    /// The `{shard}` macro of Replicated* engines (default: the node's shard
    /// in the cluster an ON CLUSTER statement names, else 1).
    #[arg(long)]
    pub shard: Option<String>,
    /// Take the node id from the host name's trailing `-<ordinal>` plus one
    /// (a Kubernetes StatefulSet pod `quorumhouse-0` is node 1).
    #[arg(long)]
    pub node_id_from_hostname: bool,
    /// The cluster secret: every interserver call (Raft, part transfer,
    /// shard stages) must carry it, so all nodes of a cluster share it.
    /// Prefer `cluster_secret` in the config file or the environment variable
    /// QUORUMHOUSE_CLUSTER_SECRET (a flag shows in `ps`). Empty: none, the
    /// interserver port admits anyone who reaches it.
    #[arg(long)]
    pub cluster_secret: Option<String>,
    /// The server certificate chain (PEM) of the TLS doors.
    #[arg(long)]
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    pub tls_key_file: Option<std::path::PathBuf>,
    /// Port of the gRPC client API over TLS (with a certificate; default 9440).
    #[arg(long)]
    pub secure_port: Option<u16>,
    /// Port of the HTTPS interface (with a certificate; default 8443).
    #[arg(long)]
    pub https_port: Option<u16>,
    /// Open only the TLS doors: no plaintext client API or HTTP port.
    #[arg(long)]
    pub tls_only: bool,
    /// The CA (PEM) that signs every node's certificate, for interserver TLS.
    #[arg(long)]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Mutual TLS on the interserver port and on this node's calls to
    /// others, with the certificate above (it must name the address others
    /// reach this node at) and peers checked against --tls-ca-file.
    #[arg(long)]
    pub interserver_tls: bool,
    /// Node configuration file (TOML; see docs/configuration.md). Flags
    /// given on the command line win over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the default configuration (every option) and exit.
    #[arg(long)]
    pub print_default_config: bool,
}
