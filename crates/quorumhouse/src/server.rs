//! `quorumhouse server`: one node: coordinator member (interserver port),
//! gRPC client API and HTTP interface.

use std::net::SocketAddr;
use std::process::ExitCode;

pub use crate::server_args::ServerArgs;
use tracing::{error, info};

/// Where the cluster secret comes from when neither a flag nor the config
/// file sets it (Docker and Kubernetes secrets arrive this way).
pub const CLUSTER_SECRET_ENV: &str = "QUORUMHOUSE_CLUSTER_SECRET";
/// Where the built-in `default` user may connect from (comma-separated:
/// `::/0`, `local`, IPs, CIDRs); unset: the loopback only.
pub const DEFAULT_USER_NETWORKS_ENV: &str = "QUORUMHOUSE_DEFAULT_USER_NETWORKS";

/// `quorumhouse-2` → node 3: a StatefulSet pod's ordinal, plus one.
pub fn node_id_of_hostname(host: &str) -> anyhow::Result<u32> {
    host.rsplit_once('-')
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--node-id-from-hostname: host name {host:?} does not end in -<ordinal> (like quorumhouse-0)"
            )
        })
}

/// Parses `1=127.0.0.1:9101,2=...`.
pub fn parse_peers(s: &str) -> anyhow::Result<std::collections::BTreeMap<u64, String>> {
    let mut out = std::collections::BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad --peers item {item:?}: expected id=host:port"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("bad node id {id:?} in --peers"))?;
        if id == 0 {
            anyhow::bail!("node ids start at 1 (--peers {item:?})");
        }
        out.insert(id, addr.trim().to_string());
    }
    Ok(out)
}

pub fn run(args: ServerArgs) -> ExitCode {
    let rt = match crate::output::runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let outcome = rt.block_on(run_async(args));
    // Blocking work a cancelled statement left behind must not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    match outcome {
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

async fn run_async(mut args: ServerArgs) -> anyhow::Result<()> {
    let node_config = match args.config.clone() {
        Some(path) => crate::config::apply(&path, &mut args, &crate::config::flag_given)?,
        None => crate::config::NodeConfig::default(),
    };
    if args.node_id_from_hostname {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_default();
        args.node_id = node_id_of_hostname(host.trim())?;
    }
    let listen = |port: u16, what: &str| -> anyhow::Result<SocketAddr> {
        format!("{}:{port}", args.host)
            .parse()
            .map_err(|e| anyhow::anyhow!("bad {what} address {}:{port}: {e}", args.host))
    };
    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => Some(qh_node::TlsDoors {
            config: qh_server::tls::TlsConfig::from_files(cert, key)?,
            client_addr: Some(listen(args.secure_port.unwrap_or(9440), "secure")?),
            https_addr: Some(listen(args.https_port.unwrap_or(8443), "HTTPS")?),
        }),
        (None, None) if args.interserver_tls => {
            anyhow::bail!(
                "--interserver-tls needs --tls-cert-file, --tls-key-file and --tls-ca-file"
            )
        }
        (None, None) if args.tls_only => {
            anyhow::bail!("--tls-only needs --tls-cert-file and --tls-key-file")
        }
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both --tls-cert-file and --tls-key-file"),
    };
    let plain = !args.tls_only;
    let client_addr = plain.then(|| listen(args.port, "listen")).transpose()?;
    let http_addr = plain.then(|| listen(args.http_port, "HTTP")).transpose()?;
    let interserver_addr = listen(args.interserver_port, "interserver")?;
    let members = parse_peers(&args.peers)?;
    // Unless told otherwise, others reach this node where --peers says it is
    // (a listen address like 0.0.0.0 is no address to give out).
    let advertise = args
        .advertise
        .clone()
        .or_else(|| members.get(&u64::from(args.node_id)).cloned())
        .unwrap_or_else(|| interserver_addr.to_string());
    let mut cfg = qh_meta::CoordinatorConfig::new(
        u64::from(args.node_id),
        args.data_dir.join("coordinator"),
        advertise.clone(),
    );
    cfg.members = members;
    if !cfg.members.is_empty() && !cfg.members.contains_key(&cfg.node_id) {
        anyhow::bail!(
            "--peers does not name this node (--node-id {})",
            args.node_id
        );
    }
    cfg.heartbeat_ms = args.raft_heartbeat_ms;
    cfg.election_timeout_ms = args.raft_election_timeout_ms;
    cfg.snapshot_logs = args.raft_snapshot_logs;
    cfg.keep_logs = args.raft_keep_logs;
    cfg.lease_ttl_ms = args.lease_ttl_ms;
    cfg.write_timeout = std::time::Duration::from_millis(args.coordinator_write_timeout_ms);
    // Flag, then config file (it fills the flag), then the environment.
    let secret = args
        .cluster_secret
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var(CLUSTER_SECRET_ENV).ok())
        .unwrap_or_default();
    cfg.cluster_secret = qh_meta::ClusterSecret::new(&secret);
    if args.interserver_tls {
        let (Some(doors), Some(ca)) = (&tls, &args.tls_ca_file) else {
            anyhow::bail!(
                "--interserver-tls needs --tls-cert-file, --tls-key-file and --tls-ca-file"
            );
        };
        cfg.interserver_tls = Some(doors.config.interserver(ca)?);
    }
    // The built-in `default`: the loopback only, unless the environment
    // opens it (containers, whose clients come from outside).
    let default_hosts = match std::env::var(DEFAULT_USER_NETWORKS_ENV) {
        Ok(list) if !list.trim().is_empty() => qh_access::AccessConfig::parse_networks(&list)
            .map_err(|e| anyhow::anyhow!("{DEFAULT_USER_NETWORKS_ENV}: {e}"))?,
        _ => qh_access::AccessConfig::default().default_hosts,
    };
    let mut replication =
        qh_replication::ReplicationConfig::new(u64::from(args.node_id), advertise);
    replication.macros.extend(node_config.macros);
    if let Some(r) = &args.replica {
        replication.macros.insert("replica".into(), r.clone());
    }
    if let Some(s) = &args.shard {
        replication.macros.insert("shard".into(), s.clone());
    }
    let node = qh_node::Node::start(qh_node::NodeOptions {
        data_dir: args.data_dir.clone(),
        client_addr,
        http_addr,
        tls,
        interserver_addr,
        coordinator: cfg,
        replication,
        default_settings: node_config.profile,
        clusters: qh_query::clusters::Clusters::new(node_config.clusters),
        access: qh_access::AccessConfig {
            users: node_config.users,
            default_hosts,
        },
    })
    .await?;
    node.run_until(shutdown_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulset_pods_are_nodes_from_one() {
        assert_eq!(node_id_of_hostname("quorumhouse-0").unwrap(), 1);
        assert_eq!(node_id_of_hostname("qh-db-12").unwrap(), 13);
        assert!(node_id_of_hostname("node1").is_err());
        assert!(node_id_of_hostname("").is_err());
    }
}
