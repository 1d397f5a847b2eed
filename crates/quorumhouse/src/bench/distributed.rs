//! `quorumhouse bench distributed`: the same hits-like rows queried through
//! a Distributed table over a 3×1 loopback cluster and from one node's local
//! table, side by side in one run. On one machine the three nodes share its
//! cores, so this measures the executor's overhead, not a speed-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::percentiles;

#[derive(Args, Debug)]
pub struct DistributedArgs {
    /// Rows of the hits-like table.
    #[arg(long, default_value_t = 2_000_000)]
    pub rows: u64,
    /// Runs of each query (percentiles over these).
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

const COLUMNS: &str = "(ts DateTime, user_id UInt64, event String, value Float64)";

const QUERIES: &[(&str, &str)] = &[
    ("count", "SELECT count() FROM {t}"),
    (
        "group_by_event",
        "SELECT event, count(), avg(value) FROM {t} GROUP BY event",
    ),
    (
        "top_users",
        "SELECT user_id, count() AS c FROM {t} GROUP BY user_id ORDER BY c DESC LIMIT 10",
    ),
    (
        "pk_range",
        "SELECT count(), sum(value) FROM {t} WHERE user_id BETWEEN 1000 AND 1100",
    ),
    ("count_distinct", "SELECT count(DISTINCT user_id) FROM {t}"),
];

#[derive(Debug, Serialize, Default)]
struct Figures {
    rows: u64,
    load_seconds_distributed: f64,
    load_seconds_one_node: f64,
    /// Query → (p50 ms, p99 ms) through the Distributed table (3×1).
    distributed_ms: BTreeMap<String, (f64, f64)>,
    /// Query → (p50 ms, p99 ms) on one node's local table.
    one_node_ms: BTreeMap<String, (f64, f64)>,
    /// Query → bytes the initiator received from the two remote shards per
    /// query (zstd Arrow IPC), and the bytes the query scans.
    network_bytes: BTreeMap<String, (u64, u64)>,
    /// One shard of three replicas (1×3): query → (p50 ms, p99 ms) with
    /// `max_parallel_replicas` 1 and 3.
    one_replica_ms: BTreeMap<String, (f64, f64)>,
    parallel_replicas_ms: BTreeMap<String, (f64, f64)>,
}

/// (p50, p99) of `runs` runs of `q`.
async fn timed(c: &mut qh_client::Client, q: &str, runs: usize) -> anyhow::Result<(f64, f64)> {
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        c.query(q).await?;
        ms.push(t.elapsed().as_secs_f64());
    }
    Ok(percentiles(ms))
}

/// A counter of node `addr`'s `/metrics`.
async fn metric(addr: &str, name: &str) -> anyhow::Result<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{name} not in {addr}/metrics"))
}

pub async fn distributed(a: DistributedArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let cluster = qh_local_cluster::LocalCluster::start(Path::new(&exe), 3, &[])?;
    cluster
        .leader(&cluster.all(), Duration::from_secs(30))
        .await?;
    let mut c = qh_client::Client::connect(&[cluster.client_endpoint(1)]).await?;
    let http = cluster.http_addr(1);
    c.query(&format!(
        "CREATE TABLE hits_local ON CLUSTER sharded {COLUMNS} ENGINE = MergeTree ORDER BY (user_id, ts)"
    ))
    .await?;
    c.query(
        "CREATE TABLE hits ON CLUSTER sharded AS hits_local \
         ENGINE = Distributed(sharded, default, hits_local, user_id)",
    )
    .await?;
    c.query(&format!(
        "CREATE TABLE hits_one {COLUMNS} ENGINE = MergeTree ORDER BY (user_id, ts)"
    ))
    .await?;
    let rows = format!(
        "SELECT toDateTime(1700000000 + number) AS ts, (number * 2654435761) % 100000 AS user_id, \
         concat('e', toString(number % 20)) AS event, (number % 1000) / 10 AS value \
         FROM numbers({})",
        a.rows
    );
    let mut fig = Figures {
        rows: a.rows,
        ..Default::default()
    };
    eprintln!(
        "loading {} rows through the Distributed table and into one node ...",
        a.rows
    );
    let t = Instant::now();
    c.query(&format!("INSERT INTO hits {rows}")).await?;
    fig.load_seconds_distributed = t.elapsed().as_secs_f64();
    let t = Instant::now();
    c.query(&format!("INSERT INTO hits_one {rows}")).await?;
    fig.load_seconds_one_node = t.elapsed().as_secs_f64();
    for (name, q) in QUERIES {
        for (table, out) in [
            ("hits", &mut fig.distributed_ms),
            ("hits_one", &mut fig.one_node_ms),
        ] {
            let q = q.replace("{t}", table);
            let scanned = c.query(&q).await?.summary.read_bytes; // warm-up
            let received = "qh_distributed_received_bytes_total ";
            let before = metric(&http, received).await?;
            out.insert(name.to_string(), timed(&mut c, &q, a.runs).await?);
            if table == "hits_one" {
                let per_query = fig.network_bytes.get(*name).map_or(0, |b| b.0);
                fig.network_bytes
                    .insert(name.to_string(), (per_query, scanned));
            } else {
                let sent = (metric(&http, received).await? - before) / a.runs.max(1) as u64;
                fig.network_bytes.insert(name.to_string(), (sent, 0));
            }
        }
    }
    println!(
        "rows {}   load: distributed {:.2} s, one node {:.2} s",
        fig.rows, fig.load_seconds_distributed, fig.load_seconds_one_node
    );
    println!(
        "{:<16} {:>14} {:>14} {:>8} {:>14} {:>14} {:>8}",
        "query", "3×1 p50 ms", "1 node p50 ms", "ratio", "network bytes", "scanned bytes", "share"
    );
    for (name, _) in QUERIES {
        let d = fig.distributed_ms[*name].0;
        let o = fig.one_node_ms[*name].0;
        let (net, scanned) = fig.network_bytes[*name];
        // A count() answered from part metadata scans nothing.
        let share = match scanned {
            0 => "-".to_string(),
            s => format!("{:.3}%", 100.0 * net as f64 / s as f64),
        };
        println!(
            "{name:<16} {d:>14.1} {o:>14.1} {:>8.2} {net:>14} {scanned:>14} {share:>8}",
            d / o.max(0.001),
        );
    }
    parallel_replicas(&cluster, &mut c, &a, &mut fig).await?;
    println!("\n1×3 (one shard of three replicas): max_parallel_replicas = 1 vs 3");
    println!(
        "{:<16} {:>14} {:>14} {:>8}",
        "query", "1 replica p50", "3 replicas p50", "ratio"
    );
    for (name, _) in QUERIES {
        let one = fig.one_replica_ms[*name].0;
        let three = fig.parallel_replicas_ms[*name].0;
        println!(
            "{name:<16} {one:>14.1} {three:>14.1} {:>8.2}",
            three / one.max(0.001)
        );
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&fig)?)?;
    }
    Ok(())
}

/// The same rows in a ReplicatedMergeTree table on one shard of the three
/// nodes (cluster `default`), queried through a Distributed table read by
/// one replica and split over three (`max_parallel_replicas`).
async fn parallel_replicas(
    cluster: &qh_local_cluster::LocalCluster,
    c: &mut qh_client::Client,
    a: &DistributedArgs,
    fig: &mut Figures,
) -> anyhow::Result<()> {
    c.query(&format!(
        "CREATE TABLE hits_r ON CLUSTER default {COLUMNS} \
         ENGINE = ReplicatedMergeTree('/tables/bench/hits_r', '{{replica}}') ORDER BY (user_id, ts)"
    ))
    .await?;
    c.query(
        "CREATE TABLE hits_rd ON CLUSTER default AS hits_r \
         ENGINE = Distributed(default, default, hits_r)",
    )
    .await?;
    eprintln!(
        "loading {} rows into one shard of three replicas ...",
        a.rows
    );
    c.query("INSERT INTO hits_r SELECT * FROM hits_one SETTINGS insert_quorum = 3")
        .await?;
    for node in cluster.all() {
        cluster
            .sql(node, "SYSTEM SYNC REPLICA hits_r")
            .await
            .map_err(|e| anyhow::anyhow!("node {node}: {e}"))?;
    }
    for (name, q) in QUERIES {
        for (parallel, out) in [
            (1, &mut fig.one_replica_ms),
            (3, &mut fig.parallel_replicas_ms),
        ] {
            let q = format!(
                "{} SETTINGS max_parallel_replicas = {parallel}",
                q.replace("{t}", "hits_rd")
            );
            c.query(&q).await?; // warm-up
            out.insert(name.to_string(), timed(c, &q, a.runs).await?);
        }
    }
    Ok(())
}
