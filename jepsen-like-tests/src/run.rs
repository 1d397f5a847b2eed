//! One run: a fresh cluster, the workload's workers and the nemesis
//! together for the run's time, then heal everything, let the replicas
//! converge, read every replica, check, and write `history.jsonl` and
//! `results.json` into the run's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::checker::{
    self, FaultStats, OpCounts, ReplacingResult, ReplicaRows, ReplicaVersions, SequentialResult,
    SetResult,
};
use crate::clock::Clocks;
use crate::disk::Disks;
use crate::history::{self, Recorder};
use crate::nemesis::{self, Nemesis};
use crate::net::Network;
use crate::workload::{
    self, ShardLayout, Workload, KV_TABLE, REGISTER_TABLE, SHARDED_TABLE, SHARD_TABLE, TABLE,
};
use crate::TestCluster;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// Every node on 127.0.0.1 (no partitions possible).
    Loopback,
    /// Every node in its own network namespace (root).
    Namespaces,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub bin: PathBuf,
    pub workload: Workload,
    pub nemesis: Nemesis,
    pub time: Duration,
    pub rate: f64,
    pub workers: usize,
    pub nodes: u64,
    pub quorum: u32,
    pub seed: u64,
    pub net: NetMode,
    pub op_timeout: Duration,
    pub store: PathBuf,
}

#[derive(Serialize, Debug)]
pub struct Results {
    /// No lost, duplicated, unexpected or stale data and every replica
    /// readable and in agreement. Availability is reported, not judged.
    pub valid: bool,
    pub problems: Vec<String>,
    pub workload: String,
    pub nemesis: String,
    pub seed: u64,
    pub time_s: f64,
    pub rate: f64,
    pub nodes: u64,
    pub quorum: u32,
    pub net: String,
    pub ops: OpCounts,
    /// `set` and `sequential`.
    pub set: Option<SetResult>,
    pub sequential: Option<SequentialResult>,
    pub replacing: Option<ReplacingResult>,
    /// `register`: linearizability of every key's history.
    pub register: Option<qh_checker::linear::RegisterResult>,
    pub faults: Vec<FaultStats>,
    /// `timeline.png` in the run's directory, or why it was not drawn.
    pub timeline: String,
    /// Seconds from the heal of the last fault until every replica agreed.
    pub converged_s: Option<f64>,
    pub dir: PathBuf,
}

const SETUP: Duration = Duration::from_secs(90);
/// Each node's disk under the disk-full nemesis.
const DISK_MB: u64 = 256;
/// Any one statement of the final reads.
const STATEMENT: Duration = Duration::from_secs(15);
/// How long the replicas get to agree once every fault is healed.
const CONVERGE: Duration = Duration::from_secs(120);

pub async fn run(opts: &RunOptions) -> anyhow::Result<Results> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let dir = opts.store.join(format!(
        "{}-{}-{}-{stamp}",
        opts.workload.name(),
        opts.nemesis.name(),
        opts.seed
    ));
    std::fs::create_dir_all(&dir)?;
    if opts.nemesis.needs_network() && opts.net != NetMode::Namespaces {
        anyhow::bail!(
            "nemesis {} needs --net namespaces (each node in its own network namespace)",
            opts.nemesis.name()
        );
    }
    let net = match opts.net {
        NetMode::Namespaces => Some(Network::create(&(1..=opts.nodes).collect::<Vec<_>>())?),
        NetMode::Loopback => None,
    };
    let disks = match opts.nemesis {
        Nemesis::DiskFull => Some(Disks::create(
            &(1..=opts.nodes).collect::<Vec<_>>(),
            DISK_MB,
        )?),
        _ => None,
    };
    let clocks = match opts.nemesis {
        Nemesis::Clock => Some(Clocks::create(&(1..=opts.nodes).collect::<Vec<_>>())?),
        _ => None,
    };
    // Shards of several replicas need a cluster of their own in every
    // node's config.
    let layout = ShardLayout::for_nodes(opts.nodes);
    let mut extra = Vec::new();
    if let Some(config) = layout.config(opts.nodes) {
        let path = dir.join("node.toml");
        std::fs::write(&path, config)?;
        extra = vec!["--config".to_string(), path.to_string_lossy().into_owned()];
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut cluster = TestCluster::start_placed(&opts.bin, opts.nodes, &extra, |id| {
        let mut place = match &net {
            Some(n) => n.placement(id),
            None => qh_local_cluster::Placement::loopback(),
        };
        place.data_dir = disks.as_ref().and_then(|d| d.data_dir(id));
        place.env = clocks.as_ref().map(|c| c.env(id)).unwrap_or_default();
        place
    })?;
    let means = nemesis::Means {
        net: net.as_ref(),
        disks: disks.as_ref(),
        clocks: clocks.as_ref(),
    };
    let result = drive(opts, &mut cluster, means, layout, &dir).await;
    // Keep the nodes' logs with the run.
    for id in cluster.all() {
        let _ = std::fs::write(dir.join(format!("node{id}.log")), cluster.log_text(id));
    }
    drop(cluster);
    drop(clocks);
    drop(disks);
    drop(net);
    result
}

async fn drive(
    opts: &RunOptions,
    cluster: &mut TestCluster,
    means: nemesis::Means<'_>,
    layout: ShardLayout,
    dir: &Path,
) -> anyhow::Result<Results> {
    let nemesis::Means { net, disks, clocks } = means;
    cluster.leader(&cluster.all(), SETUP).await?;
    for id in cluster.all() {
        for sql in workload::create_tables_sql(id, layout) {
            cluster
                .sql(id, &sql)
                .await
                .map_err(|e| anyhow::anyhow!("creating a table on node {id}: {e}"))?;
        }
    }
    for table in [TABLE, KV_TABLE] {
        cluster
            .live_replicas(1, table, opts.nodes as usize, SETUP)
            .await?;
    }
    for id in cluster.all() {
        cluster
            .live_replicas(id, SHARD_TABLE, layout.replicas(), SETUP)
            .await?;
    }
    // A quorum cannot exceed a shard's replicas.
    let (table, quorum) = match opts.workload {
        Workload::Sharded => (SHARDED_TABLE, opts.quorum.min(layout.replicas() as u32)),
        _ => (TABLE, opts.quorum),
    };

    let start = Instant::now();
    let rec = Arc::new(Recorder::new(start));
    let cfg = Arc::new(workload::Config {
        workload: opts.workload,
        quorum,
        endpoints: cluster
            .all()
            .iter()
            .map(|&id| cluster.client_endpoint(id))
            .collect(),
        rate: opts.rate,
        workers: opts.workers,
        op_timeout: opts.op_timeout,
        attempts: 3,
        ids_per_batch: 3,
        seed: opts.seed,
        versions: std::sync::atomic::AtomicU64::new(1),
        table: table.to_string(),
    });
    let deadline = Arc::new(workload::Deadline::new(start + opts.time));
    let workers: Vec<_> = (0..opts.workers)
        .map(|w| {
            tokio::spawn(workload::worker(
                w,
                cfg.clone(),
                rec.clone(),
                deadline.clone(),
            ))
        })
        .collect();
    let plan = nemesis::schedule(opts.seed, opts.time);
    let faults = nemesis::run(opts.nemesis, plan, cluster, means, rec.clone(), start).await;
    for w in workers {
        w.await?;
    }
    let end_ms = rec.now_ms();
    // Heal whatever is left (a nemesis that failed part-way), then let the
    // replicas catch up and agree.
    if let Some(net) = net {
        net.heal()?;
    }
    if let Some(disks) = disks {
        disks.heal()?;
    }
    if let Some(clocks) = clocks {
        for id in cluster.all() {
            clocks.set(id, 0)?;
        }
    }
    for id in cluster.all() {
        if !cluster.is_running(id) {
            cluster.spawn(id)?;
        } else if let Some(pid) = cluster.pid(id) {
            // SAFETY: signalling our own child; a no-op unless it is stopped.
            unsafe {
                libc::kill(pid as i32, libc::SIGCONT);
            }
        }
    }
    let healed = Instant::now();
    let history = rec.history();
    history::write_jsonl(&dir.join("history.jsonl"), &history)?;
    let png = dir.join("timeline.png");
    let title = format!(
        "{} under {}, seed {}, insert_quorum {}",
        opts.workload.name(),
        opts.nemesis.name(),
        opts.seed,
        quorum
    );
    let timeline = match crate::timeline::draw(&history, &png, &title) {
        Ok(()) => png.display().to_string(),
        Err(e) => format!("not drawn: {e:#}"),
    };
    let (mut set, mut sequential, mut replacing, mut register) = (None, None, None, None);
    let mut problems = Vec::new();
    let converged = match opts.workload {
        Workload::Set | Workload::Sequential => {
            let q = format!("SELECT id, count() FROM {TABLE} GROUP BY id ORDER BY id");
            let (replicas, converged) = final_reads(cluster, TABLE, &q).await;
            let r = checker::check_set(&history, &replicas);
            problems.extend(r.problems());
            set = Some(r);
            if opts.workload == Workload::Sequential {
                sequential = Some(checker::check_sequential(&history));
            }
            converged
        }
        Workload::Sharded => {
            // Read through the Distributed table on every node.
            let q = format!("SELECT id, count() FROM {SHARDED_TABLE} GROUP BY id ORDER BY id");
            let (replicas, converged) = final_reads(cluster, SHARD_TABLE, &q).await;
            let r = checker::check_set(&history, &replicas);
            problems.extend(r.problems());
            set = Some(r);
            converged
        }
        Workload::Register => {
            let r = qh_checker::linear::check_register(&history);
            problems.extend(r.problems());
            register = Some(r);
            // Every node reads the coordinator's rows: they must agree.
            let q = format!("SELECT key, value FROM {REGISTER_TABLE} ORDER BY key");
            let (_, converged) = final_reads(cluster, REGISTER_TABLE, &q).await;
            if !converged {
                problems.push("the nodes' reads of the registers disagree".into());
            }
            converged
        }
        Workload::Replacing => {
            let q = format!("SELECT key, version FROM {KV_TABLE} FINAL ORDER BY key");
            let (replicas, converged): (ReplicaVersions, bool) =
                final_reads(cluster, KV_TABLE, &q).await;
            let r = checker::check_replacing(&history, &replicas);
            problems.extend(r.problems());
            replacing = Some(r);
            converged
        }
    };
    let converged_s = converged.then(|| healed.elapsed().as_secs_f64());
    if let Some(s) = &sequential {
        if !s.stale.is_empty() {
            problems.push(format!("{} stale reads", s.stale.len()));
        }
    }
    if let Err(e) = &faults {
        problems.push(format!("nemesis failed: {e:#}"));
    }
    let results = Results {
        valid: problems.is_empty(),
        problems,
        workload: opts.workload.name().to_string(),
        nemesis: opts.nemesis.name().to_string(),
        seed: opts.seed,
        time_s: opts.time.as_secs_f64(),
        rate: opts.rate,
        nodes: opts.nodes,
        quorum,
        net: match opts.net {
            NetMode::Loopback => "loopback".into(),
            NetMode::Namespaces => "namespaces".into(),
        },
        ops: checker::count_ops(&history),
        set,
        sequential,
        replacing,
        register,
        faults: checker::availability(&history, end_ms),
        converged_s,
        timeline,
        dir: dir.to_path_buf(),
    };
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    Ok(results)
}

/// Every replica's answer to `q` (two numbers a row) once they agree, or
/// after [`CONVERGE`] as they are.
async fn final_reads(cluster: &TestCluster, table: &str, q: &str) -> (ReplicaRows, bool) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let mut replicas: ReplicaRows = BTreeMap::new();
        for id in cluster.all() {
            // Pull everything the log holds before reading (bounded: a
            // replica that cannot sync is read as it is, and re-read).
            let sync = format!("SYSTEM SYNC REPLICA {table}");
            let _ = tokio::time::timeout(STATEMENT, cluster.sql(id, &sync)).await;
            let read = tokio::time::timeout(STATEMENT, cluster.sql(id, q)).await;
            let rows = read.ok().and_then(|r| r.ok()).map(|text| {
                text.lines()
                    .filter_map(|l| {
                        let (a, b) = l.split_once('\t')?;
                        Some((a.parse().ok()?, b.parse().ok()?))
                    })
                    .collect::<BTreeMap<u64, u64>>()
            });
            replicas.insert(id, rows);
        }
        let mut sets = replicas.values();
        let first = sets.next().cloned().flatten();
        let agree = first.is_some() && sets.all(|r| r.as_ref() == first.as_ref());
        if agree || Instant::now() > deadline {
            return (replicas, agree);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
