//! A cluster of real `quorumhouse server` processes on free loopback ports,
//! each with its own data directory under one temporary directory: start,
//! SIGKILL, SIGTERM, wipe, query any node and read the coordinator's view
//! through `system.coordinator`. Every wait polls a condition with a bound.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalNode {
    pub id: u64,
    /// The address the node listens on and is reached at.
    pub host: String,
    /// The network namespace it runs in (`ip netns exec`), if not the caller's.
    pub netns: Option<String>,
    data_dir: Option<PathBuf>,
    /// Environment of its process (a preloaded fake clock, say).
    env: Vec<(String, String)>,
    pub port: u16,
    pub http_port: u16,
    pub inter_port: u16,
    /// A cluster secret of its own instead of the cluster's (tests of a
    /// stranger being refused).
    secret: Option<String>,
    /// Arguments of this node's `server` command line only.
    extra: Vec<String>,
    child: Option<Child>,
}

impl LocalNode {
    /// A node with free ports, not started.
    fn allocate(id: u64, place: Placement) -> anyhow::Result<LocalNode> {
        let (port, http_port, inter_port) = (
            crate::free_port()?,
            crate::free_port()?,
            crate::free_port()?,
        );
        Ok(LocalNode {
            id,
            host: place.host,
            netns: place.netns,
            data_dir: place.data_dir,
            env: place.env,
            port,
            http_port,
            inter_port,
            secret: None,
            extra: Vec::new(),
            child: None,
        })
    }
}

/// Where a node runs: its address, and the network namespace holding it
/// (created by the caller; a fault-injection harness cuts links between
/// namespaces).
#[derive(Debug, Clone)]
pub struct Placement {
    pub host: String,
    pub netns: Option<String>,
    /// Its data directory, when not one under the cluster's temp directory
    /// (a small file system of its own, to fill).
    pub data_dir: Option<PathBuf>,
    /// Added to its process's environment.
    pub env: Vec<(String, String)>,
}

impl Placement {
    pub fn loopback() -> Placement {
        Placement {
            host: "127.0.0.1".to_string(),
            netns: None,
            data_dir: None,
            env: Vec::new(),
        }
    }
}

pub struct LocalCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub nodes: BTreeMap<u64, LocalNode>,
    extra: Vec<String>,
    /// Every node's cluster secret (through the environment, not `ps`).
    secret: String,
}

impl LocalCluster {
    /// Starts `n` nodes (ids 1..=n) that bootstrap one coordinator group.
    /// `extra` are added to every `server` command line.
    pub fn start(bin: &Path, n: u64, extra: &[&str]) -> anyhow::Result<LocalCluster> {
        Self::start_placed(bin, n, extra, |_| Placement::loopback())
    }

    /// [`LocalCluster::start`] with node `id` at `place(id)`.
    pub fn start_placed(
        bin: &Path,
        n: u64,
        extra: &[&str],
        place: impl Fn(u64) -> Placement,
    ) -> anyhow::Result<LocalCluster> {
        Self::start_with(bin, n, extra, place, |_| Vec::new())
    }

    /// [`LocalCluster::start`] with `own(id)` added to node `id`'s command
    /// line only (ports of its own, say).
    pub fn start_each(
        bin: &Path,
        n: u64,
        own: impl Fn(u64) -> Vec<String>,
    ) -> anyhow::Result<LocalCluster> {
        Self::start_with(bin, n, &[], |_| Placement::loopback(), own)
    }

    fn start_with(
        bin: &Path,
        n: u64,
        extra: &[&str],
        place: impl Fn(u64) -> Placement,
        own: impl Fn(u64) -> Vec<String>,
    ) -> anyhow::Result<LocalCluster> {
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            let mut node = LocalNode::allocate(id, place(id))?;
            node.extra = own(id);
            nodes.insert(id, node);
        }
        let mut c = LocalCluster {
            bin: bin.to_path_buf(),
            dir: tempfile::tempdir()?,
            nodes,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            secret: crate::new_cluster_secret()?,
        };
        for id in 1..=n {
            c.spawn(id)?;
        }
        Ok(c)
    }

    /// Allocates ports for a new node `id` and starts it (it joins nobody by
    /// itself: add it with `SYSTEM ADD NODE`).
    pub fn add_process(&mut self, id: u64) -> anyhow::Result<()> {
        self.nodes
            .insert(id, LocalNode::allocate(id, Placement::loopback())?);
        self.spawn(id)
    }

    /// [`LocalCluster::add_process`] with a cluster secret other than the
    /// cluster's: a stranger to its interserver ports.
    pub fn add_stranger(&mut self, id: u64, secret: &str) -> anyhow::Result<()> {
        let mut node = LocalNode::allocate(id, Placement::loopback())?;
        node.secret = Some(secret.to_string());
        self.nodes.insert(id, node);
        self.spawn(id)
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        match self.nodes.get(&id).and_then(|n| n.data_dir.clone()) {
            Some(d) => d,
            None => self.dir.path().join(format!("node{id}")),
        }
    }

    /// Runs one statement on node `id` and returns its rows as TSV text
    /// (one line per row, tab-separated cells, ClickHouse's text forms).
    pub async fn sql(&self, id: u64, q: &str) -> Result<String, qh_client::ClientError> {
        let mut client = qh_client::Client::connect(&[self.client_endpoint(id)]).await?;
        let out = client.query(q).await?;
        let mut text = String::new();
        for b in &out.batches {
            qh_types::text::append_rows_tsv(&mut text, b);
        }
        // As TabSeparated prints WITH TOTALS: after an empty line.
        if let Some(t) = &out.totals {
            text.push('\n');
            qh_types::text::append_rows_tsv(&mut text, t);
        }
        Ok(text)
    }

    /// Everything node `id` logged so far (all its runs).
    pub fn log_text(&self, id: u64) -> String {
        fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node{id}.log"))
    }

    pub fn peers(&self) -> String {
        let each = self
            .nodes
            .values()
            .map(|n| format!("{}={}:{}", n.id, n.host, n.inter_port));
        each.collect::<Vec<_>>().join(",")
    }

    /// (Re)starts node `id` with its existing data directory.
    pub fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let peers = self.peers();
        let dir = self.data_dir(id);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))?;
        let node = self
            .nodes
            .get_mut(&id)
            .ok_or_else(|| anyhow::anyhow!("no node {id}"))?;
        let mut cmd = match &node.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                // `ip netns exec` execs the binary: the pid is the server's.
                c.args(["netns", "exec", ns]).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        if node.netns.is_some() {
            // Clients and peers reach a node in a namespace from outside the
            // loopback, where the built-in `default` is refused by default.
            cmd.env("QUORUMHOUSE_DEFAULT_USER_NETWORKS", "::/0");
        }
        let child = cmd
            .arg("server")
            .args(["--host", &node.host])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--node-id", &id.to_string()])
            .args(["--port", &node.port.to_string()])
            .args(["--http-port", &node.http_port.to_string()])
            .args(["--interserver-port", &node.inter_port.to_string()])
            .args(["--peers", &peers])
            .args(&self.extra)
            .args(&node.extra)
            .envs(node.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .env(
                "QUORUMHOUSE_CLUSTER_SECRET",
                node.secret.as_deref().unwrap_or(&self.secret),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        node.child = Some(child);
        Ok(())
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.nodes.get_mut(&id).and_then(|n| n.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (graceful), then reap; SIGKILL after 30 s.
    pub fn stop(&mut self, id: u64) {
        if let Some(mut child) = self.nodes.get_mut(&id).and_then(|n| n.child.take()) {
            // SAFETY: signalling a child process we spawned and have not reaped.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&mut self, id: u64) -> bool {
        match self.nodes.get_mut(&id).and_then(|n| n.child.as_mut()) {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Deletes the node's data directory (the node must be stopped).
    pub fn wipe(&self, id: u64) -> anyhow::Result<()> {
        let d = self.data_dir(id);
        if d.exists() {
            fs::remove_dir_all(d)?;
        }
        Ok(())
    }

    /// The cluster secret its nodes' interserver ports ask for.
    pub fn cluster_secret(&self) -> &str {
        &self.secret
    }

    pub fn inter_addr(&self, id: u64) -> String {
        let n = &self.nodes[&id];
        format!("{}:{}", n.host, n.inter_port)
    }

    pub fn client_endpoint(&self, id: u64) -> String {
        let n = &self.nodes[&id];
        format!("http://{}:{}", n.host, n.port)
    }

    /// The node's HTTP interface (`/metrics`, ClickHouse's HTTP protocol).
    pub fn http_addr(&self, id: u64) -> String {
        let n = &self.nodes[&id];
        format!("{}:{}", n.host, n.http_port)
    }

    /// Polls `f` every 50 ms until it returns Some, or fails after `timeout`.
    pub async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f().await {
                return Ok(v);
            }
            if Instant::now() > deadline {
                anyhow::bail!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `node` sees `n` replicas of `table` with a live
    /// lease (a quorum insert right after start-up needs them).
    pub async fn live_replicas(
        &self,
        node: u64,
        table: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let q = format!("SELECT active_replicas FROM system.replicas WHERE table = '{table}'");
        self.wait_for("every replica's lease", timeout, || async {
            let t = self.sql(node, &q).await.ok()?;
            (t.trim() == n.to_string()).then_some(())
        })
        .await
    }

    /// Node `id`'s view of the coordinator: (its role, the leader it
    /// follows), read from `system.coordinator`.
    pub async fn coordinator_view(&self, id: u64) -> Option<(String, Option<u64>)> {
        let t = self
            .sql(id, "SELECT role, leader FROM system.coordinator")
            .await
            .ok()?;
        let (role, leader) = t.trim().split_once('\t')?;
        let leader: u64 = leader.parse().ok()?;
        Some((role.to_string(), (leader != 0).then_some(leader)))
    }

    /// The leader that every node of `among` agrees on, itself one of them
    /// and confirming it leads.
    pub async fn leader(&self, among: &BTreeSet<u64>, timeout: Duration) -> anyhow::Result<u64> {
        self.wait_for("an agreed leader", timeout, || async {
            let mut leader = None;
            for &id in among {
                let (_, l) = self.coordinator_view(id).await?;
                let l = l?;
                if leader.is_some_and(|x| x != l) {
                    return None;
                }
                leader = Some(l);
            }
            let l = leader.filter(|l| among.contains(l))?;
            let (role, _) = self.coordinator_view(l).await?;
            (role == "leader").then_some(l)
        })
        .await
    }

    /// Process ids of the running nodes.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .values()
            .filter_map(|n| n.child.as_ref().map(|c| c.id()))
            .collect()
    }

    /// Process id of node `id`, if it runs (to signal it while others
    /// hold the cluster).
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.nodes.get(&id)?.child.as_ref().map(|c| c.id())
    }

    pub fn all(&self) -> BTreeSet<u64> {
        self.nodes.keys().copied().collect()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in &ids {
            self.kill(*id);
        }
        if std::thread::panicking() {
            for id in ids {
                let log = fs::read_to_string(self.log_path(id)).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                for (i, l) in lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.contains("panicked"))
                    .take(3)
                {
                    let ctx = lines[i.saturating_sub(3)..(i + 8).min(lines.len())].join("\n");
                    eprintln!("----- node{id} panicked (line {i}) -----\n{ctx}\n{l}");
                }
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                eprintln!("----- node{id} log (last 40 lines) -----\n{tail}");
            }
        }
    }
}
