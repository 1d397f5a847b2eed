//! `quorumhouse cluster up|status|down|kill|start`: local node processes.
//!
//! Node N lives in `<data-dir>/nodeN` (data, `log`, `pid`) and serves the
//! client API on `base-port + N`. `<data-dir>/cluster.json` records the
//! ports so the other commands need only `--data-dir`.
//!
//! Every node is a coordinator voter: its interserver API (Raft) listens on
//! `base-port + 100 + N`, and `up` waits until a leader is elected and every
//! node holds a live lease.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    cmd: ClusterCmd,
}

#[derive(Subcommand, Debug)]
enum ClusterCmd {
    /// Start the nodes in the background and wait until they answer.
    Up {
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// Lay the nodes out as this many shards (of --replicas nodes each,
        /// --nodes = shards × replicas): the `sharded` cluster of
        /// Distributed tables and ON CLUSTER. Default: every node a shard.
        #[arg(long)]
        shards: Option<u32>,
        /// Replicas per shard (with --shards; default 1).
        #[arg(long)]
        replicas: Option<u32>,
        #[arg(long, default_value = "./qh-data")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 9000)]
        base_port: u16,
        /// HTTP interface of node N on this + N.
        #[arg(long, default_value_t = 8120)]
        http_base_port: u16,
        /// Seconds to wait for every node to answer.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Show each node: pid, whether it answers, tables and parts.
    Status {
        #[arg(long, default_value = "./qh-data")]
        data_dir: PathBuf,
    },
    /// Stop every node gracefully (SIGTERM, then SIGKILL after 30 s).
    Down {
        #[arg(long, default_value = "./qh-data")]
        data_dir: PathBuf,
    },
    /// SIGKILL one node.
    Kill {
        #[arg(long)]
        node: u32,
        #[arg(long, default_value = "./qh-data")]
        data_dir: PathBuf,
    },
    /// Start one more node and add it to the coordinator group (learner,
    /// then voter).
    AddNode {
        #[arg(long, default_value = "./qh-data")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Remove a node from the coordinator group, then stop it.
    RemoveNode {
        #[arg(long)]
        node: u32,
        #[arg(long, default_value = "./qh-data")]
        data_dir: PathBuf,
    },
    /// Start one node again.
    Start {
        #[arg(long)]
        node: u32,
        #[arg(long, default_value = "./qh-data")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ClusterFile {
    pub base_port: u16,
    #[serde(default = "default_http_base")]
    pub http_base_port: u16,
    pub nodes: Vec<u32>,
    /// `--shards/--replicas`: the `sharded` cluster's shards (node ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharded: Option<Vec<Vec<u32>>>,
    /// The nodes' cluster secret (created by `up`; a cluster made before
    /// secrets existed has none and keeps its interserver ports open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl ClusterFile {
    /// What the tools' interserver calls (status, drills) carry.
    pub fn cluster_secret(&self) -> qh_meta::ClusterSecret {
        qh_meta::ClusterSecret::new(self.secret.as_deref().unwrap_or(""))
    }
}

/// Writes `cluster.json`, readable by its owner only: it holds the secret.
pub(crate) fn save(dir: &Path, cf: &ClusterFile) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(cluster_file(dir))?;
    f.write_all(&serde_json::to_vec_pretty(cf)?)?;
    Ok(())
}

fn default_http_base() -> u16 {
    8120
}

fn cluster_file(dir: &Path) -> PathBuf {
    dir.join("cluster.json")
}

pub(crate) fn node_dir(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("node{n}"))
}

pub(crate) fn port_of(cf: &ClusterFile, n: u32) -> u16 {
    cf.base_port + n as u16
}

pub(crate) fn interserver_of(cf: &ClusterFile, n: u32) -> String {
    format!("127.0.0.1:{}", cf.base_port + 100 + n as u16)
}

fn peers_arg(cf: &ClusterFile) -> String {
    let each = cf
        .nodes
        .iter()
        .map(|&n| format!("{n}={}", interserver_of(cf, n)));
    each.collect::<Vec<_>>().join(",")
}

pub(crate) fn load(dir: &Path) -> anyhow::Result<ClusterFile> {
    let p = cluster_file(dir);
    let bytes = fs::read(&p).map_err(|e| {
        anyhow::anyhow!(
            "no cluster in {} ({e}); run `quorumhouse cluster up` first",
            dir.display()
        )
    })?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// A running node other than `not`, to send a statement through.
fn live_node(dir: &Path, cf: &ClusterFile, not: u32) -> anyhow::Result<u32> {
    cf.nodes
        .iter()
        .copied()
        .find(|&n| n != not && read_pid(dir, n).is_some_and(alive))
        .ok_or_else(|| {
            anyhow::anyhow!("no running node to talk to; run `quorumhouse cluster up` first")
        })
}

pub(crate) fn read_pid(dir: &Path, n: u32) -> Option<i32> {
    fs::read_to_string(node_dir(dir, n).join("pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

pub(crate) fn alive(pid: i32) -> bool {
    // Signal 0 checks existence; a zombie of ours still counts as gone.
    // SAFETY: kill(2) with signal 0 only checks the pid.
    let exists = unsafe { libc::kill(pid, 0) == 0 };
    exists
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(false)
}

pub(crate) fn signal(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a node process we started.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Refuses to start when a port a node would listen on is taken (by another
/// cluster, a ClickHouse, ...), naming the port and the node, before any
/// node is started. Nodes already running are skipped.
fn ports_free(dir: &Path, cf: &ClusterFile) -> anyhow::Result<()> {
    let mut taken = Vec::new();
    for &n in &cf.nodes {
        if read_pid(dir, n).is_some_and(alive) {
            continue;
        }
        let ports = [
            (port_of(cf, n), "client (gRPC)"),
            (cf.http_base_port + n as u16, "HTTP"),
            (cf.base_port + 100 + n as u16, "interserver"),
        ];
        for (port, what) in ports {
            if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                taken.push(format!("port {port} ({what} port of node {n}): {e}"));
            }
        }
    }
    if taken.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "cannot start the cluster, ports in use:\n  {}\nstop whatever holds them (another cluster: `quorumhouse cluster down --data-dir ...`) or pick others with --base-port / --http-base-port",
        taken.join("\n  ")
    )
}

/// The last line of a node's log that reports an error, if any.
fn last_error(dir: &Path, n: u32) -> Option<String> {
    let text = fs::read_to_string(node_dir(dir, n).join("log")).ok()?;
    text.lines()
        .rev()
        .find(|l| l.contains("ERROR") || l.contains("error:") || l.contains("Error"))
        .map(|l| l.trim().to_string())
}

pub(crate) fn spawn_node(dir: &Path, cf: &ClusterFile, n: u32) -> anyhow::Result<i32> {
    let nd = node_dir(dir, n);
    fs::create_dir_all(&nd)?;
    if let Some(pid) = read_pid(dir, n) {
        if alive(pid) {
            return Ok(pid);
        }
    }
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(nd.join("log"))?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("server")
        .arg("--data-dir")
        .arg(&nd)
        .arg("--port")
        .arg(port_of(cf, n).to_string())
        .arg("--http-port")
        .arg((cf.http_base_port + n as u16).to_string())
        .arg("--node-id")
        .arg(n.to_string())
        .arg("--interserver-port")
        .arg((cf.base_port + 100 + n as u16).to_string())
        .arg("--peers")
        .arg(peers_arg(cf));
    if let Some(layout) = &cf.sharded {
        // The layout goes to every node as its `sharded` cluster.
        let shards: Vec<String> = layout
            .iter()
            .map(|s| {
                let ids: Vec<String> = s.iter().map(|n| n.to_string()).collect();
                format!("[{}]", ids.join(", "))
            })
            .collect();
        let config = nd.join("cluster.toml");
        fs::write(
            &config,
            format!(
                "# Written by `quorumhouse cluster up --shards/--replicas`.\n[clusters.sharded]\nshards = [{}]\n",
                shards.join(", ")
            ),
        )?;
        cmd.arg("--config").arg(&config);
    }
    if let Some(secret) = &cf.secret {
        // Through the environment: a flag would show in `ps`.
        cmd.env(crate::server::CLUSTER_SECRET_ENV, secret);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Its own process group: Ctrl-C in this terminal does not reach it.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn()?;
    let pid = child.id() as i32;
    fs::write(nd.join("pid"), pid.to_string())?;
    Ok(pid)
}

pub(crate) async fn wait_ready(
    cf: &ClusterFile,
    nodes: &[u32],
    dir: &Path,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    for &n in nodes {
        let ep = format!("http://127.0.0.1:{}", port_of(cf, n));
        loop {
            if let Ok(mut c) = qh_client::Client::connect(&[&ep]).await {
                if c.ping().await.is_ok() {
                    break;
                }
            }
            let pid = read_pid(dir, n);
            if pid.is_some_and(|p| !alive(p)) {
                anyhow::bail!(
                    "node {n} exited during start-up{}; see {}",
                    last_error(dir, n)
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default(),
                    node_dir(dir, n).join("log").display()
                );
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "node {n} did not answer on {ep} within {}s; see {}",
                    timeout.as_secs(),
                    node_dir(dir, n).join("log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The coordinator: a leader, and a live lease for each node started.
    for &n in nodes {
        let addr = interserver_of(cf, n);
        let client = qh_meta::MetaClient::new(&addr, &cf.cluster_secret())?;
        loop {
            let last = match client.status().await {
                Ok(st) => {
                    let active: Vec<u64> = st
                        .leases
                        .iter()
                        .filter(|l| l.is_active)
                        .map(|l| l.node_id)
                        .collect();
                    if st.leader.is_some() && nodes.iter().all(|m| active.contains(&u64::from(*m)))
                    {
                        break;
                    }
                    format!("leader {:?}, live leases {active:?}", st.leader)
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                anyhow::bail!(
                    "node {n}: the coordinator is not ready within {}s ({last}); see {}",
                    timeout.as_secs(),
                    node_dir(dir, n).join("log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

pub fn run(args: ClusterArgs) -> ExitCode {
    let rt = match crate::output::runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(run_async(args.cmd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run_async(cmd: ClusterCmd) -> anyhow::Result<()> {
    match cmd {
        ClusterCmd::Up {
            nodes,
            shards,
            replicas,
            data_dir,
            base_port,
            http_base_port,
            timeout,
        } => {
            let sharded = match (shards, replicas) {
                (None, None) => None,
                (s, r) => {
                    let (s, r) = (s.unwrap_or(1), r.unwrap_or(1));
                    if s == 0 || r == 0 {
                        anyhow::bail!("--shards and --replicas must be at least 1");
                    }
                    Some(
                        (0..s)
                            .map(|i| (1..=r).map(|j| i * r + j).collect())
                            .collect::<Vec<Vec<u32>>>(),
                    )
                }
            };
            let nodes = match &sharded {
                Some(layout) => layout.iter().map(|s| s.len() as u32).sum(),
                None => nodes,
            };
            if nodes == 0 || nodes > 9 {
                anyhow::bail!(
                    "a local cluster has 1 to 9 nodes (--nodes, or --shards × --replicas)"
                );
            }
            fs::create_dir_all(&data_dir)?;
            let cf = match load(&data_dir) {
                Ok(existing) => existing,
                Err(_) => {
                    let cf = ClusterFile {
                        base_port,
                        http_base_port,
                        nodes: (1..=nodes).collect(),
                        sharded,
                        secret: Some(qh_local_cluster::new_cluster_secret()?),
                    };
                    save(&data_dir, &cf)?;
                    cf
                }
            };
            ports_free(&data_dir, &cf)?;
            for &n in &cf.nodes {
                spawn_node(&data_dir, &cf, n)?;
            }
            wait_ready(&cf, &cf.nodes, &data_dir, Duration::from_secs(timeout)).await?;
            println!(
                "quorumhouse is up ({} node{}):",
                cf.nodes.len(),
                if cf.nodes.len() == 1 { "" } else { "s" }
            );
            for &n in &cf.nodes {
                println!(
                    "  node{n}: grpc 127.0.0.1:{}  http 127.0.0.1:{}  interserver {}  data {}  log {}",
                    port_of(&cf, n),
                    cf.http_base_port + n as u16,
                    interserver_of(&cf, n),
                    node_dir(&data_dir, n).display(),
                    node_dir(&data_dir, n).join("log").display()
                );
            }
            let first = port_of(&cf, cf.nodes[0]);
            let mut c = qh_client::Client::connect(&[format!("http://127.0.0.1:{first}")]).await?;
            let out = c
                .query(
                    "SELECT node_id, role, term, leader, members, leases FROM system.coordinator",
                )
                .await?;
            if let Some(schema) = out.schema {
                crate::output::print_result(
                    "PrettyCompact",
                    Default::default(),
                    schema,
                    &out.batches,
                    out.totals.as_ref(),
                )
                .map_err(|(_, message)| anyhow::anyhow!(message))?;
            }
            println!("try: quorumhouse client --port {first}");
            Ok(())
        }
        ClusterCmd::Status { data_dir } => {
            let cf = load(&data_dir)?;
            println!(
                "{:<6} {:<8} {:<8} {:<10} {:<6} {:<7} {:<8} {:<8} {:<8} {:<8} {:<6}",
                "node",
                "pid",
                "state",
                "role",
                "term",
                "leader",
                "applied",
                "tables",
                "parts",
                "queue",
                "lag"
            );
            for &n in &cf.nodes {
                let pid = read_pid(&data_dir, n);
                let running = pid.is_some_and(alive);
                let mut tables = "-".to_string();
                let mut parts = "-".to_string();
                // Replication queue entries still to execute, and the lag:
                // the age of the oldest one (system.replicas.absolute_delay).
                let mut queue = "-".to_string();
                let mut lag = "-".to_string();
                let mut state = if running { "starting" } else { "down" };
                if running {
                    if let Ok(mut c) = qh_client::Client::connect(&[format!(
                        "http://127.0.0.1:{}",
                        port_of(&cf, n)
                    )])
                    .await
                    {
                        if let Ok(out) = c
                            .query(
                                "SELECT toString(count()), toString(ifNull(sum(parts), 0)) FROM system.tables",
                            )
                            .await
                        {
                            state = "up";
                            if let Some(b) = out.batches.first() {
                                tables = qh_types::text::value_text(b.column(0).as_ref(), 0);
                                parts = qh_types::text::value_text(b.column(1).as_ref(), 0);
                            }
                        }
                        if let Ok(out) = c
                            .query(
                                "SELECT toString(ifNull(sum(queue_size), 0)), \
                                 toString(ifNull(max(absolute_delay), 0)) FROM system.replicas",
                            )
                            .await
                        {
                            if let Some(b) = out.batches.first() {
                                queue = qh_types::text::value_text(b.column(0).as_ref(), 0);
                                lag = format!(
                                    "{}s",
                                    qh_types::text::value_text(b.column(1).as_ref(), 0)
                                );
                            }
                        }
                    }
                }
                let (mut role, mut term, mut leader, mut applied) = (
                    "-".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                );
                if running {
                    if let Ok(st) =
                        qh_meta::MetaClient::new(&interserver_of(&cf, n), &cf.cluster_secret())?
                            .status()
                            .await
                    {
                        role = st.role;
                        term = st.term.to_string();
                        leader = st
                            .leader
                            .map(|l| l.to_string())
                            .unwrap_or_else(|| "-".into());
                        applied = st.applied_index.to_string();
                    }
                }
                let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
                println!(
                    "{:<6} {:<8} {:<8} {:<10} {:<6} {:<7} {:<8} {:<8} {:<8} {:<8} {:<6}",
                    format!("node{n}"),
                    pid,
                    state,
                    role,
                    term,
                    leader,
                    applied,
                    tables,
                    parts,
                    queue,
                    lag
                );
            }
            Ok(())
        }
        ClusterCmd::Down { data_dir } => {
            let cf = load(&data_dir)?;
            let pids: Vec<(u32, i32)> = cf
                .nodes
                .iter()
                .filter_map(|&n| read_pid(&data_dir, n).map(|p| (n, p)))
                .filter(|(_, p)| alive(*p))
                .collect();
            for (_, p) in &pids {
                signal(*p, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            for (n, p) in pids {
                while alive(p) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if alive(p) {
                    eprintln!("node{n} did not stop in 30 s: SIGKILL");
                    signal(p, libc::SIGKILL);
                }
                let _ = fs::remove_file(node_dir(&data_dir, n).join("pid"));
                println!("node{n} stopped");
            }
            Ok(())
        }
        ClusterCmd::Kill { node, data_dir } => {
            let _ = load(&data_dir)?;
            match read_pid(&data_dir, node) {
                Some(p) if alive(p) => {
                    signal(p, libc::SIGKILL);
                    println!("node{node} (pid {p}) killed");
                    Ok(())
                }
                _ => anyhow::bail!("node{node} is not running"),
            }
        }
        ClusterCmd::AddNode { data_dir, timeout } => {
            let mut cf = load(&data_dir)?;
            let node = cf.nodes.iter().max().copied().unwrap_or(0) + 1;
            let via = live_node(&data_dir, &cf, node)?;
            cf.nodes.push(node);
            save(&data_dir, &cf)?;
            spawn_node(&data_dir, &cf, node)?;
            let sql = format!("SYSTEM ADD NODE {node} '{}'", interserver_of(&cf, node));
            let mut c =
                qh_client::Client::connect(&[format!("http://127.0.0.1:{}", port_of(&cf, via))])
                    .await?;
            c.query(&sql).await?;
            wait_ready(&cf, &[node], &data_dir, Duration::from_secs(timeout)).await?;
            println!(
                "node{node} joined: grpc 127.0.0.1:{}  interserver {}",
                port_of(&cf, node),
                interserver_of(&cf, node)
            );
            Ok(())
        }
        ClusterCmd::RemoveNode { node, data_dir } => {
            let mut cf = load(&data_dir)?;
            if !cf.nodes.contains(&node) {
                anyhow::bail!("the cluster in {} has no node{node}", data_dir.display());
            }
            let via = live_node(&data_dir, &cf, node)?;
            let mut c =
                qh_client::Client::connect(&[format!("http://127.0.0.1:{}", port_of(&cf, via))])
                    .await?;
            c.query(&format!("SYSTEM REMOVE NODE {node}")).await?;
            if let Some(p) = read_pid(&data_dir, node).filter(|p| alive(*p)) {
                signal(p, libc::SIGTERM);
            }
            cf.nodes.retain(|n| *n != node);
            save(&data_dir, &cf)?;
            println!(
                "node{node} removed from the group and stopped (its data stays in {})",
                node_dir(&data_dir, node).display()
            );
            Ok(())
        }
        ClusterCmd::Start {
            node,
            data_dir,
            timeout,
        } => {
            let cf = load(&data_dir)?;
            if !cf.nodes.contains(&node) {
                anyhow::bail!("the cluster in {} has no node{node}", data_dir.display());
            }
            spawn_node(&data_dir, &cf, node)?;
            wait_ready(&cf, &[node], &data_dir, Duration::from_secs(timeout)).await?;
            println!("node{node} is up on 127.0.0.1:{}", port_of(&cf, node));
            Ok(())
        }
    }
}
