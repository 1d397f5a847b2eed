//! `quorumhouse bench replication` on a three-node loopback cluster:
//! replication lag (insert acknowledged on node 1 → rows visible on node 3)
//! under a steady insert load, and the catch-up throughput of a replica that
//! was down while ~1 GB was inserted, next to `cp -r` + `sync` of the same
//! part files (the physical limit on this machine).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::{dir_size, percentiles, Rng};

#[derive(Args, Debug)]
pub struct ReplicationArgs {
    /// Inserts whose lag is measured (one every `--interval-ms`).
    #[arg(long, default_value_t = 200)]
    pub inserts: u64,
    /// Rows per measured insert.
    #[arg(long, default_value_t = 1000)]
    pub rows: u64,
    /// Pause between measured inserts (the steady load).
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
    /// Data inserted while node 3 is down, in MB (uncompressible strings).
    #[arg(long, default_value_t = 1024)]
    pub catchup_mb: u64,
    /// Write the figures as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize, Default)]
struct Figures {
    lag_inserts: u64,
    lag_p50_ms: f64,
    lag_p99_ms: f64,
    lag_max_ms: f64,
    catchup_bytes: u64,
    catchup_parts: u64,
    catchup_seconds: f64,
    /// From the restarted node answering to SYNC REPLICA done.
    catchup_fetch_seconds: f64,
    catchup_mb_per_s: f64,
    copy_seconds: f64,
    copy_mb_per_s: f64,
    ratio_to_copy: f64,
}

const TABLE: &str = "CREATE TABLE bench_repl (batch UInt64, id UInt64, payload String) \
    ENGINE = ReplicatedMergeTree('/bench/repl', '{replica}') ORDER BY (batch, id)";

async fn client(
    cluster: &qh_local_cluster::LocalCluster,
    node: u64,
) -> anyhow::Result<qh_client::Client> {
    Ok(qh_client::Client::connect(&[cluster.client_endpoint(node)]).await?)
}

async fn scalar(c: &mut qh_client::Client, q: &str) -> anyhow::Result<String> {
    let out = c.query(q).await?;
    let b = out
        .batches
        .first()
        .ok_or_else(|| anyhow::anyhow!("{q}: no result"))?;
    Ok(qh_types::text::value_text(b.column(0).as_ref(), 0))
}

fn csv_batch(rng: &mut Rng, batch: u64, rows: u64, payload: usize) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(rows as usize * (payload + 24));
    for id in 0..rows {
        let _ = write!(s, "{batch},{id},");
        for _ in 0..payload / 16 {
            let _ = write!(s, "{:016x}", rng.next());
        }
        s.push('\n');
    }
    s.into_bytes()
}

pub async fn replication(a: ReplicationArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut cluster = qh_local_cluster::LocalCluster::start(Path::new(&exe), 3, &[])?;
    cluster
        .leader(&cluster.all(), Duration::from_secs(30))
        .await?;
    for n in 1..=3 {
        client(&cluster, n).await?.query(TABLE).await?;
    }
    let mut n1 = client(&cluster, 1).await?;
    let mut n3 = client(&cluster, 3).await?;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut fig = Figures::default();

    // 1. Lag: each insert is acknowledged by node 1, then node 3 is polled
    //    until its rows are there.
    eprintln!("lag: {} inserts of {} rows ...", a.inserts, a.rows);
    let mut lags = Vec::new();
    for batch in 0..a.inserts {
        let data = csv_batch(&mut rng, batch, a.rows, 32);
        n1.insert_bytes("INSERT INTO bench_repl FORMAT CSV", data)
            .await?;
        let acked = Instant::now();
        let q = format!("SELECT count() FROM bench_repl WHERE batch = {batch}");
        loop {
            if scalar(&mut n3, &q).await? == a.rows.to_string() {
                break;
            }
            if acked.elapsed() > Duration::from_secs(60) {
                anyhow::bail!("batch {batch} did not reach node 3 within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lags.push(acked.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(a.interval_ms)).await;
    }
    fig.lag_inserts = a.inserts;
    fig.lag_max_ms = lags.iter().cloned().fold(0.0, f64::max) * 1000.0;
    (fig.lag_p50_ms, fig.lag_p99_ms) = percentiles(lags);

    // 2. Catch-up: node 3 down while ~catchup_mb is inserted on node 1.
    for n in 1..=3 {
        client(&cluster, n)
            .await?
            .query("SYSTEM STOP MERGES bench_repl")
            .await?;
    }
    n1.query("TRUNCATE TABLE bench_repl").await?;
    n3.query("SYSTEM SYNC REPLICA bench_repl").await?;
    cluster.kill(3);
    let batch_rows = 100_000u64;
    let payload = 256usize;
    eprintln!(
        "catch-up: node 3 down, inserting {} MB (on disk) on node 1 ...",
        a.catchup_mb
    );
    let src = cluster.data_dir(1).join("data/default/bench_repl");
    let mut b = 0;
    while dir_size(&src) < a.catchup_mb * 1_000_000 {
        let data = csv_batch(&mut rng, 1_000_000 + b, batch_rows, payload);
        n1.insert_bytes("INSERT INTO bench_repl FORMAT CSV", data)
            .await?;
        b += 1;
    }
    fig.catchup_bytes = dir_size(&src);
    fig.catchup_parts = scalar(
        &mut n1,
        "SELECT count() FROM system.parts WHERE table = 'bench_repl' AND active",
    )
    .await?
    .parse()
    .unwrap_or(0);
    // Each timing starts with nothing dirty in the page cache, so neither
    // pays for the other's (or the inserts') writeback.
    std::process::Command::new("sync").status()?;
    let t = Instant::now();
    cluster.spawn(3)?;
    let mut n3 = loop {
        match client(&cluster, 3).await {
            Ok(c) => break c,
            Err(_) if t.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => return Err(e),
        }
    };
    let answering = Instant::now();
    n3.query("SYSTEM SYNC REPLICA bench_repl").await?;
    fig.catchup_seconds = t.elapsed().as_secs_f64();
    fig.catchup_fetch_seconds = answering.elapsed().as_secs_f64();
    fig.catchup_mb_per_s = fig.catchup_bytes as f64 / fig.catchup_fetch_seconds / 1e6;
    let expected = scalar(&mut n1, "SELECT count() FROM bench_repl").await?;
    let got = scalar(&mut n3, "SELECT count() FROM bench_repl").await?;
    if expected != got {
        anyhow::bail!("node 3 has {got} rows after catching up, node 1 has {expected}");
    }

    // The physical limit: copy the same files and flush them.
    let copy_dir = cluster.data_dir(3).join("copy_baseline");
    std::process::Command::new("sync").status()?;
    let t = Instant::now();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&copy_dir)
        .status()?;
    let sync = std::process::Command::new("sync").status()?;
    fig.copy_seconds = t.elapsed().as_secs_f64();
    if !status.success() || !sync.success() {
        anyhow::bail!("cp -r {} failed", src.display());
    }
    let _ = std::fs::remove_dir_all(&copy_dir);
    fig.copy_mb_per_s = fig.catchup_bytes as f64 / fig.copy_seconds / 1e6;
    fig.ratio_to_copy = fig.catchup_mb_per_s / fig.copy_mb_per_s;

    println!(
        "replication lag (ack on node 1 -> visible on node 3), {} inserts of {} rows every {} ms:",
        fig.lag_inserts, a.rows, a.interval_ms
    );
    println!(
        "  p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        fig.lag_p50_ms, fig.lag_p99_ms, fig.lag_max_ms
    );
    println!(
        "catch-up of a replica that was down: {:.0} MB in {} parts",
        fig.catchup_bytes as f64 / 1e6,
        fig.catchup_parts
    );
    println!(
        "  quorumhouse fetch   {:>7.2} s  {:>8.1} MB/s  (node answering -> SYNC REPLICA done; {:.2} s from process start)",
        fig.catchup_fetch_seconds, fig.catchup_mb_per_s, fig.catchup_seconds
    );
    println!(
        "  cp -r + sync        {:>7.2} s  {:>8.1} MB/s",
        fig.copy_seconds, fig.copy_mb_per_s
    );
    println!(
        "  ratio {:.2}x of the copy (target >= 0.5x)",
        fig.ratio_to_copy
    );
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&fig)?)?;
    }
    Ok(())
}
