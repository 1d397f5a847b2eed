//! The workload drills: quorum inserts (`insert_quorum = 2`, a dedup token
//! per batch, an unknown outcome retried with the same token on the next
//! node) run through a fault on the `cluster up` cluster; afterwards every
//! replica is read and the history checked (`qh-checker`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use comfy_table::Table;
use qh_checker::balloon::Balloon;
use qh_checker::check::{self, FaultStats, ReplicaRows, SetResult};
use qh_checker::history::{Op, OpType, Recorder, NEMESIS};
use qh_checker::workload::{self, Deadline, Workload};
use serde::Serialize;

use super::FaultOpts;
use crate::cluster::{
    alive, interserver_of, load, node_dir, port_of, read_pid, signal, spawn_node, wait_ready,
    ClusterFile,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    ReplicaLoss,
    Pause,
    FullRestart,
    Partition,
    /// `shared`: the operator agreed to fill a file system other nodes'
    /// data (and other programs) live on too.
    DiskFull {
        shared: bool,
    },
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::ReplicaLoss => "replica-loss",
            Fault::Pause => "pause",
            Fault::FullRestart => "full-restart",
            Fault::Partition => "partition",
            Fault::DiskFull { .. } => "disk-full",
        }
    }
}

/// Writes before the fault, and after the heal, before checking.
const QUIET: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct Report {
    drill: &'static str,
    /// The faulted nodes.
    nodes: Vec<u32>,
    /// Nodes that stopped during the fault and that the drill started
    /// again, as their supervisor would (a node whose coordinator cannot
    /// write its log stops by design).
    restarted: Vec<u32>,
    /// Every acknowledged row on every replica exactly once, nothing of a
    /// definitely failed insert anywhere, replicas in agreement.
    held: bool,
    problems: Vec<String>,
    inserts_ok: u64,
    inserts_failed: u64,
    inserts_unknown: u64,
    rows_acknowledged: u64,
    /// The longest time without an acknowledged insert, the first
    /// acknowledgement after the fault and after the heal (seconds).
    fault: Option<FaultStats>,
    /// From the heal until every replica held the same rows (seconds).
    replicas_agree_after_s: Option<f64>,
    /// `system.coordinator` after the drill, one row per node.
    coordinator_after: Vec<String>,
    set: SetResult,
}

fn endpoint(cf: &ClusterFile, n: u32) -> String {
    format!("http://127.0.0.1:{}", port_of(cf, n))
}

/// Any one statement of the drill gets this long (a node that does not
/// answer must not hang the drill).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(20);

/// One statement's rows as TSV lines.
async fn sql(ep: &str, q: &str) -> anyhow::Result<String> {
    let run = async {
        let mut c = qh_client::Client::connect(&[ep]).await?;
        anyhow::Ok(c.query(q).await?)
    };
    let out = tokio::time::timeout(STATEMENT_TIMEOUT, run)
        .await
        .map_err(|_| anyhow::anyhow!("{ep}: no answer to {q:?} within {STATEMENT_TIMEOUT:?}"))??;
    let mut text = String::new();
    for b in &out.batches {
        qh_types::text::append_rows_tsv(&mut text, b);
    }
    Ok(text)
}

/// Polls `f` every 100 ms until it returns Some, or fails after `timeout`.
async fn wait_for<T, Fut: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Fut,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) async fn drill(fault: Fault, o: FaultOpts) -> anyhow::Result<()> {
    let dir = o.data_dir.clone();
    let timeout = Duration::from_secs(o.timeout);
    let cf = load(&dir)?;
    let down: Vec<u32> = cf
        .nodes
        .iter()
        .copied()
        .filter(|&n| !read_pid(&dir, n).is_some_and(alive))
        .collect();
    anyhow::ensure!(
        down.is_empty() && cf.nodes.len() >= 3,
        "the drill needs at least 3 running nodes (not running: {down:?}); run `quorumhouse cluster up`"
    );
    let first = cf.nodes[0];
    let leader: Option<u32> = sql(
        &endpoint(&cf, first),
        "SELECT leader FROM system.coordinator",
    )
    .await
    .ok()
    .and_then(|t| t.trim().parse().ok());
    let targets: Vec<u32> = match (fault, o.node) {
        (Fault::FullRestart, _) => cf.nodes.clone(),
        (_, Some(n)) => {
            anyhow::ensure!(cf.nodes.contains(&n), "no node {n} in this cluster");
            vec![n]
        }
        // A replica that is not the coordinator leader: `leader-loss` is that drill.
        (_, None) => vec![*cf
            .nodes
            .iter()
            .rev()
            .find(|&&n| Some(n) != leader)
            .unwrap_or(&first)],
    };
    let targets = match fault {
        Fault::DiskFull { shared } => sharing_a_disk(&dir, &cf, targets[0], shared)?,
        _ => targets,
    };

    // A table of its own, so earlier drills' rows never count.
    let table = format!("drill_{}", qh_meta::now_ms());
    for &n in &cf.nodes {
        sql(
            &endpoint(&cf, n),
            &format!(
                "CREATE TABLE {table} (id UInt64, token String) \
                 ENGINE = ReplicatedMergeTree('/tables/{table}', '{{replica}}') ORDER BY id"
            ),
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating {table} on node {n}: {e}"))?;
    }
    let replicas = cf.nodes.len().to_string();
    let q = format!("SELECT active_replicas FROM system.replicas WHERE table = '{table}'");
    wait_for("every replica's lease", timeout, || async {
        let t = sql(&endpoint(&cf, first), &q).await.ok()?;
        (t.trim() == replicas).then_some(())
    })
    .await?;
    if !o.json {
        println!(
            "drill {}: quorum inserts into {table} through every node; faulting node(s) {targets:?} for {} s",
            fault.name(),
            o.hold
        );
    }

    let start = Instant::now();
    let rec = Arc::new(Recorder::new(start));
    let cfg = Arc::new(workload::Config {
        workload: Workload::Set,
        quorum: 2,
        endpoints: cf.nodes.iter().map(|&n| endpoint(&cf, n)).collect(),
        rate: 20.0,
        workers: cf.nodes.len(),
        op_timeout: Duration::from_secs(10),
        attempts: 3,
        ids_per_batch: 3,
        seed: qh_meta::now_ms(),
        versions: std::sync::atomic::AtomicU64::new(1),
        table: table.clone(),
    });
    let hold = Duration::from_secs(o.hold);
    // Moved to AFTER past the heal once it is known how long healing took.
    let deadline = Arc::new(Deadline::new(start + QUIET + hold + timeout + AFTER));
    let workers: Vec<_> = (0..cfg.workers)
        .map(|w| {
            tokio::spawn(workload::worker(
                w,
                cfg.clone(),
                rec.clone(),
                deadline.clone(),
            ))
        })
        .collect();

    tokio::time::sleep_until((start + QUIET).into()).await;
    let op = Op::new(NEMESIS, OpType::Invoke, fault.name()).node(u64::from(targets[0]));
    rec.record(op.clone());
    let injected = inject(fault, &dir, &cf, &targets, hold, timeout).await;
    rec.record(op.complete(if injected.is_ok() {
        OpType::Ok
    } else {
        OpType::Info
    }));
    let healed = Instant::now();
    deadline.set(healed + AFTER);
    for w in workers {
        w.await?;
    }
    let mut restarted = injected?;
    // A node that hit the full disk can take a moment to stop (it shuts
    // down gracefully): start any that stopped after the heal too.
    if matches!(fault, Fault::DiskFull { .. }) {
        restarted.extend(start_stopped(&dir, &cf, &targets, timeout).await?);
    }
    let end_ms = rec.now_ms();

    // Every replica, once they agree (or as they are at the timeout).
    let read = format!("SELECT id, count() FROM {table} GROUP BY id ORDER BY id");
    let mut agreed = None;
    let mut rows: ReplicaRows = BTreeMap::new();
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        rows.clear();
        for &n in &cf.nodes {
            let ep = endpoint(&cf, n);
            let _ = sql(&ep, &format!("SYSTEM SYNC REPLICA {table}")).await;
            let r = sql(&ep, &read).await.ok().map(|t| {
                t.lines()
                    .filter_map(|l| {
                        let (a, b) = l.split_once('\t')?;
                        Some((a.parse().ok()?, b.parse().ok()?))
                    })
                    .collect()
            });
            rows.insert(u64::from(n), r);
        }
        let mut each = rows.values();
        let first = each.next().cloned().flatten();
        if first.is_some() && each.all(|r| r.as_ref() == first.as_ref()) {
            agreed = Some(healed.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let history = rec.history();
    let set = check::check_set(&history, &rows);
    let counts = check::count_ops(&history);
    let mut coordinator_after = Vec::new();
    for &n in &cf.nodes {
        let row = sql(
            &endpoint(&cf, n),
            "SELECT node_id, role, term, leader FROM system.coordinator",
        )
        .await
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|e| format!("node {n}: {e}"));
        coordinator_after.push(row);
    }
    if !o.keep {
        for &n in &cf.nodes {
            let _ = sql(&endpoint(&cf, n), &format!("DROP TABLE {table}")).await;
        }
    }
    let problems = set.problems();
    let report = Report {
        drill: fault.name(),
        nodes: targets,
        restarted,
        held: problems.is_empty(),
        problems,
        inserts_ok: counts.ok,
        inserts_failed: counts.fail,
        inserts_unknown: counts.info,
        rows_acknowledged: set.acknowledged,
        fault: check::availability(&history, end_ms).into_iter().next(),
        replicas_agree_after_s: agreed,
        coordinator_after,
        set,
    };
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    anyhow::ensure!(report.held, "{}", report.problems.join("; "));
    Ok(())
}

/// Starts the fault, holds it, heals it; answers the nodes it started again.
async fn inject(
    fault: Fault,
    dir: &std::path::Path,
    cf: &ClusterFile,
    targets: &[u32],
    hold: Duration,
    timeout: Duration,
) -> anyhow::Result<Vec<u32>> {
    let pid = |n: u32| read_pid(dir, n).ok_or_else(|| anyhow::anyhow!("no pid file for node{n}"));
    match fault {
        Fault::ReplicaLoss => {
            let (n, p) = (targets[0], pid(targets[0])?);
            signal(p, libc::SIGKILL);
            wait_for("the node to exit", timeout, || async {
                (!alive(p)).then_some(())
            })
            .await?;
            tokio::time::sleep(hold).await;
            spawn_node(dir, cf, n)?;
            wait_ready(cf, &[n], dir, timeout).await?;
            Ok(vec![n])
        }
        Fault::Pause => {
            let p = pid(targets[0])?;
            signal(p, libc::SIGSTOP);
            tokio::time::sleep(hold).await;
            signal(p, libc::SIGCONT);
            Ok(Vec::new())
        }
        Fault::Partition => {
            // The coordinator's own fault hook: the node and the others drop
            // every coordinator message between them (Raft's, forwarded
            // writes, read index), so the node loses its lease and its say
            // in the group. Its client ports stay open;
            // the harness's `partition` nemesis cuts whole network
            // namespaces instead.
            let secret = cf.cluster_secret();
            let cut = |n: u32, from: BTreeSet<u64>| {
                let secret = &secret;
                async move {
                    qh_meta::MetaClient::new(&interserver_of(cf, n), secret)?
                        .isolate(&from)
                        .await?;
                    anyhow::Ok(())
                }
            };
            let target = targets[0];
            let others: Vec<u32> = cf.nodes.iter().copied().filter(|&n| n != target).collect();
            let all_but = |n: u32| -> BTreeSet<u64> {
                cf.nodes
                    .iter()
                    .filter(|&&m| m != n)
                    .map(|&m| u64::from(m))
                    .collect()
            };
            cut(target, all_but(target)).await?;
            for &n in &others {
                cut(n, BTreeSet::from([u64::from(target)])).await?;
            }
            tokio::time::sleep(hold).await;
            let mut healed = Ok(Vec::new());
            for &n in &cf.nodes {
                if let Err(e) = cut(n, BTreeSet::new()).await {
                    healed = Err(e);
                }
            }
            healed
        }
        Fault::FullRestart => {
            let pids: Vec<i32> = targets
                .iter()
                .map(|&n| pid(n))
                .collect::<anyhow::Result<_>>()?;
            for &p in &pids {
                signal(p, libc::SIGTERM);
            }
            for &p in &pids {
                wait_for("every node to stop", timeout, || async {
                    (!alive(p)).then_some(())
                })
                .await?;
            }
            tokio::time::sleep(hold).await;
            for &n in targets {
                spawn_node(dir, cf, n)?;
            }
            wait_ready(cf, targets, dir, timeout).await?;
            Ok(targets.to_vec())
        }
        Fault::DiskFull { .. } => {
            let balloon = Balloon::fill(&node_dir(dir, targets[0]).join(BALLOON))?;
            // Interrupted, the drill still gives the space back.
            tokio::select! {
                _ = tokio::time::sleep(hold) => {}
                _ = tokio::signal::ctrl_c() => {
                    balloon.free()?;
                    anyhow::bail!("interrupted: the disk is freed; start any stopped node with `quorumhouse cluster up`");
                }
            }
            balloon.free()?;
            start_stopped(dir, cf, targets, timeout).await
        }
    }
}

/// The balloon file, in the faulted node's data directory.
const BALLOON: &str = "drill-disk-full-balloon";

/// The nodes whose data directories are on `target`'s file system: filling
/// it fills all of theirs. More than `target` only with the operator's
/// consent (`--shared-disk`): everything else on that file system sees a
/// full disk too.
fn sharing_a_disk(
    dir: &std::path::Path,
    cf: &ClusterFile,
    target: u32,
    shared: bool,
) -> anyhow::Result<Vec<u32>> {
    use std::os::unix::fs::MetadataExt;
    let dev = |n: u32| -> anyhow::Result<u64> {
        let d = node_dir(dir, n);
        Ok(std::fs::metadata(&d)
            .map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?
            .dev())
    };
    let own = dev(target)?;
    let mut on_it = Vec::new();
    for &n in &cf.nodes {
        if dev(n)? == own {
            on_it.push(n);
        }
    }
    let free = qh_checker::balloon::free_bytes(&node_dir(dir, target))?;
    anyhow::ensure!(
        on_it.len() == 1 || shared,
        "node {target}'s data directory shares its file system ({} MB free) with nodes {on_it:?}: \
         filling it fills theirs too, and that of every other program on it for the drill's \
         --hold seconds. Pass --shared-disk to go on, or give each node's directory a file \
         system of its own (a mount per node{})",
        free >> 20,
        if on_it.len() == cf.nodes.len() {
            "; `cluster up` puts every node on one"
        } else {
            ""
        }
    );
    Ok(on_it)
}

/// Starts every node of `nodes` that is not running and waits until it
/// answers; answers the ones it started.
async fn start_stopped(
    dir: &std::path::Path,
    cf: &ClusterFile,
    nodes: &[u32],
    timeout: Duration,
) -> anyhow::Result<Vec<u32>> {
    let stopped: Vec<u32> = nodes
        .iter()
        .copied()
        .filter(|&n| !read_pid(dir, n).is_some_and(alive))
        .collect();
    for &n in &stopped {
        spawn_node(dir, cf, n)?;
    }
    wait_ready(cf, &stopped, dir, timeout).await?;
    Ok(stopped)
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.2} s")).unwrap_or_else(|| "-".into())
}

fn text(r: &Report) -> String {
    let mut t = Table::new();
    t.set_header(["drill", r.drill]);
    let f = r.fault.as_ref();
    let rows: Vec<(&str, String)> = vec![
        ("faulted node(s)", format!("{:?}", r.nodes)),
        (
            "stopped, started again by the drill",
            format!("{:?}", r.restarted),
        ),
        (
            "acknowledged rows on every replica, once",
            if r.held {
                "yes".into()
            } else {
                format!("NO: {}", r.problems.join("; "))
            },
        ),
        (
            "inserts ok / failed / unknown",
            format!(
                "{} / {} / {}",
                r.inserts_ok, r.inserts_failed, r.inserts_unknown
            ),
        ),
        ("rows acknowledged", r.rows_acknowledged.to_string()),
        (
            "unknown outcomes found written / absent",
            format!("{} / {}", r.set.recovered, r.set.unknown_absent),
        ),
        (
            "longest time without an acknowledged insert",
            secs(f.map(|f| f.longest_gap_s)),
        ),
        (
            "fault -> first acknowledged insert",
            secs(f.and_then(|f| f.first_ack_after_fault_s)),
        ),
        (
            "heal -> first acknowledged insert",
            secs(f.and_then(|f| f.first_ack_after_heal_s)),
        ),
        (
            "heal -> every replica agrees",
            secs(r.replicas_agree_after_s),
        ),
        (
            "coordinator after (node, role, term, leader)",
            r.coordinator_after.join("\n"),
        ),
    ];
    for (k, v) in rows {
        t.add_row([k.to_string(), v]);
    }
    format!("{t}\n")
}
