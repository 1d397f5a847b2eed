//! `quorumhouse bench coordinator`: committed small writes on a three-node
//! loopback cluster (fsync on), with 1 and with 64 concurrent writers,
//! side by side with etcd (3 members on loopback, its gRPC `KV.Put`, the same
//! driver loop) when `--compare-etcd` is given and `etcd` is installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use tonic::transport::Channel;

#[derive(Args, Debug)]
pub struct CoordinatorArgs {
    /// Concurrent writers, comma-separated (one run each).
    #[arg(long, default_value = "1,64")]
    pub clients: String,
    /// Writes per run.
    #[arg(long, default_value_t = 3000)]
    pub writes: u64,
    /// Stop a run after this many seconds even if writes remain.
    #[arg(long, default_value_t = 30)]
    pub max_seconds: u64,
    /// Value size of each write, bytes.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// Send quorumhouse writes to every member (`all`, like etcd's clients)
    /// or only to the leader (`leader`: no forwarding hop).
    #[arg(long, default_value = "all")]
    pub via: String,
    /// Run the same load against a 3-member etcd (Debian `etcd-server`).
    #[arg(long)]
    pub compare_etcd: bool,
    /// Write the figures as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize, Clone)]
pub struct RunFigures {
    pub system: String,
    pub clients: usize,
    pub writes: u64,
    pub errors: u64,
    pub writes_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub peak_rss_mb: f64,
}

/// etcd's `KV.Put`, declared by hand: only the fields the benchmark sends.
#[derive(Clone, PartialEq, prost::Message)]
struct EtcdPut {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EtcdPutReply {}

#[derive(Clone)]
enum Target {
    Ours(Vec<qh_meta::MetaClient>),
    Etcd(Vec<Channel>),
}

impl Target {
    async fn put(&self, writer: usize, key: String, value: &str) -> bool {
        match self {
            Target::Ours(nodes) => {
                let c = &nodes[writer % nodes.len()];
                let req = qh_meta::Request::op(qh_meta::Op::Put {
                    key,
                    value: value.to_string(),
                });
                matches!(c.write(&req).await, Ok(r) if r.is_ok())
            }
            Target::Etcd(chans) => {
                let mut grpc = tonic::client::Grpc::new(chans[writer % chans.len()].clone());
                if grpc.ready().await.is_err() {
                    return false;
                }
                let codec = tonic_prost::ProstCodec::<EtcdPut, EtcdPutReply>::default();
                let path =
                    tonic::codegen::http::uri::PathAndQuery::from_static("/etcdserverpb.KV/Put");
                let req = EtcdPut {
                    key: key.into_bytes(),
                    value: value.as_bytes().to_vec(),
                };
                grpc.unary(tonic::Request::new(req), path, codec)
                    .await
                    .is_ok()
            }
        }
    }
}

async fn run_load(
    system: &str,
    target: Target,
    clients: usize,
    a: &CoordinatorArgs,
    pids: &[u32],
) -> RunFigures {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let value: Arc<str> = "x".repeat(a.value_bytes).into();
    let deadline = Instant::now() + Duration::from_secs(a.max_seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (next, errors, value, target) =
            (next.clone(), errors.clone(), value.clone(), target.clone());
        let total = a.writes;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() > deadline {
                    return lat;
                }
                let t = Instant::now();
                if target.put(w, format!("bench/{i}"), &value).await {
                    lat.push(t.elapsed().as_secs_f64());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap_or_default());
    }
    let secs = started.elapsed().as_secs_f64();
    let (p50_ms, p99_ms) = super::percentiles(lat.clone());
    let rss = pids
        .iter()
        .map(|p| super::peak_rss_mb(&p.to_string()))
        .fold(0.0, f64::max);
    RunFigures {
        system: system.into(),
        clients,
        writes: lat.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        writes_per_s: lat.len() as f64 / secs,
        p50_ms,
        p99_ms,
        peak_rss_mb: rss,
    }
}

/// Three etcd members on free loopback ports; killed on drop.
struct Etcd {
    children: Vec<Child>,
    client_urls: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_etcd() -> anyhow::Result<Etcd> {
    let dir = tempfile::tempdir()?;
    let ports: Vec<(u16, u16)> = (0..3)
        .map(|_| Ok((free_port()?, free_port()?)))
        .collect::<anyhow::Result<_>>()?;
    let initial = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut children = Vec::new();
    let mut client_urls = Vec::new();
    for (i, (client, peer)) in ports.iter().enumerate() {
        let curl = format!("http://127.0.0.1:{client}");
        let purl = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .args(["--name", &format!("e{i}")])
            .arg("--data-dir")
            .arg(dir.path().join(format!("e{i}")))
            .args([
                "--listen-client-urls",
                &curl,
                "--advertise-client-urls",
                &curl,
            ])
            .args([
                "--listen-peer-urls",
                &purl,
                "--initial-advertise-peer-urls",
                &purl,
            ])
            .args([
                "--initial-cluster",
                &initial,
                "--initial-cluster-state",
                "new",
            ])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("cannot start etcd ({e}); install Debian's etcd-server")
            })?;
        children.push(child);
        client_urls.push(curl);
    }
    Ok(Etcd {
        children,
        client_urls,
        _dir: dir,
    })
}

async fn wait_writable(target: &Target, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !target.put(0, "bench/ready".into(), "1").await {
        if Instant::now() > deadline {
            anyhow::bail!("{what} did not accept a write within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

pub async fn coordinator(a: CoordinatorArgs) -> anyhow::Result<()> {
    let clients: Vec<usize> = a
        .clients
        .split(',')
        .map(|c| {
            c.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("bad --clients {c:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let exe = std::env::current_exe()?;
    let cluster = qh_local_cluster::LocalCluster::start(Path::new(&exe), 3, &[])?;
    let secret = qh_meta::ClusterSecret::new(cluster.cluster_secret());
    let meta = |n: u64| qh_meta::MetaClient::new(&cluster.inter_addr(n), &secret);
    let all = Target::Ours(
        cluster
            .all()
            .into_iter()
            .map(meta)
            .collect::<Result<_, _>>()?,
    );
    wait_writable(&all, "quorumhouse").await?;
    let target = match a.via.as_str() {
        "all" => all,
        "leader" => {
            let leader = cluster
                .leader(&cluster.all(), Duration::from_secs(30))
                .await?;
            Target::Ours(vec![meta(leader)?])
        }
        other => anyhow::bail!("--via must be all or leader, not {other:?}"),
    };
    let pids = cluster.pids();
    let mut figures = Vec::new();
    for &c in &clients {
        eprintln!("quorumhouse, {c} writers ...");
        figures.push(run_load("quorumhouse", target.clone(), c, &a, &pids).await);
    }
    drop(cluster);
    if a.compare_etcd {
        let etcd = start_etcd()?;
        let chans = etcd
            .client_urls
            .iter()
            .map(|u| Ok(tonic::transport::Endpoint::from_shared(u.clone())?.connect_lazy()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let target = Target::Etcd(chans);
        wait_writable(&target, "etcd").await?;
        let pids: Vec<u32> = etcd.children.iter().map(|c| c.id()).collect();
        for &c in &clients {
            eprintln!("etcd, {c} writers ...");
            figures.push(run_load("etcd", target.clone(), c, &a, &pids).await);
        }
    }
    println!(
        "{:<12} {:>8} {:>8} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "system", "writers", "writes", "errors", "writes/s", "p50 ms", "p99 ms", "RSS MB"
    );
    for f in &figures {
        println!(
            "{:<12} {:>8} {:>8} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.0}",
            f.system,
            f.clients,
            f.writes,
            f.errors,
            f.writes_per_s,
            f.p50_ms,
            f.p99_ms,
            f.peak_rss_mb
        );
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&figures)?)?;
    }
    Ok(())
}
