//! `quorumhouse bench`: built-in benchmarks that print a table of figures and,
//! with `--json`, machine-readable results.
//!
//! `bench coordinator` is in [`coordinator`].
//!
//! `bench hits` generates a hits-like CSV (ts, user_id zipf-ish, event of 20
//! values, url, value), inserts it through the embedded engine and through
//! the gRPC client in 100k-row batches, times the standard queries, and, with
//! `--compare-chdb`, runs the same load and queries on chDB in the same run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use qh_query::{Engine, EngineOptions, Input};
use serde::Serialize;

mod clients;
mod coordinator;
mod distributed;
mod quorum;
mod replication;

const CHDB_SCRIPT: &str = include_str!("chdb_bench.py");

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    cmd: BenchCmd,
}

#[derive(Subcommand, Debug)]
enum BenchCmd {
    /// Insert and query a generated hits table (local and gRPC, optionally vs chDB).
    Hits(HitsArgs),
    /// Committed coordinator writes on a 3-node cluster (optionally vs etcd).
    Coordinator(coordinator::CoordinatorArgs),
    /// Replication lag and a lagging replica's catch-up on a 3-node cluster.
    Replication(replication::ReplicationArgs),
    /// insert_quorum = 0, 2, 3 side by side on a 3-node cluster.
    Quorum(quorum::QuorumArgs),
    /// Queries through a Distributed table (3×1) next to one node's table.
    Distributed(distributed::DistributedArgs),
    /// clickhouse-connect over HTTP next to the Rust client's Arrow path.
    Clients(clients::ClientsArgs),
}

#[derive(Args, Debug)]
struct HitsArgs {
    /// Rows to generate.
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    /// Rows per INSERT through the gRPC client.
    #[arg(long, default_value_t = 100_000)]
    batch: u64,
    /// Runs of each query (latency percentiles are over these).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Work directory (CSV, data dirs); a temporary one when omitted.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also run the same load and queries on chDB (`pip install chdb`).
    #[arg(long)]
    compare_chdb: bool,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also load and query the table with every column `CODEC(<this>)`,
    /// side by side with the default codecs (repeatable: `--compression
    /// 'ZSTD(1)' --compression NONE`).
    #[arg(long)]
    compression: Vec<String>,
    /// Skip the gRPC insert through a server process.
    #[arg(long)]
    skip_grpc: bool,
    /// Also run the queries on the default table with `SETTINGS <this>`,
    /// side by side (repeatable: `--query-settings
    /// optimize_move_to_prewhere=0`).
    #[arg(long)]
    query_settings: Vec<String>,
}

const QUERIES: &[(&str, &str)] = &[
    ("count", "SELECT count() FROM hits"),
    (
        "group_by_event",
        "SELECT event, count(), avg(value) FROM hits GROUP BY event",
    ),
    (
        "top_users",
        "SELECT user_id, count() AS c FROM hits GROUP BY user_id ORDER BY c DESC LIMIT 10",
    ),
    (
        "pk_range",
        "SELECT count(), sum(value) FROM hits WHERE user_id BETWEEN 1000 AND 1100",
    ),
    (
        "filtered_count",
        "SELECT count() FROM hits WHERE event = 'purchase'",
    ),
    ("uniq_exact", "SELECT uniqExact(user_id) FROM hits"),
    (
        "like",
        "SELECT count() FROM hits WHERE url LIKE '%/p/42%'",
    ),
    (
        "two_keys",
        "SELECT event, toDate(ts) AS d, count() FROM hits GROUP BY event, d ORDER BY d, event LIMIT 10",
    ),
    (
        "latest",
        "SELECT * FROM hits ORDER BY ts DESC LIMIT 10",
    ),
    ("quantile", "SELECT quantile(0.9)(value) FROM hits"),
];

const COLUMNS: [(&str, &str); 5] = [
    ("ts", "DateTime"),
    ("user_id", "UInt64"),
    ("event", "LowCardinality(String)"),
    ("url", "String"),
    ("value", "Float64"),
];

/// The table, every column with `CODEC(<compression>)` when given.
fn create_sql(compression: Option<&str>) -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|(n, t)| match compression {
            Some(c) => format!("{n} {t} CODEC({c})"),
            None => format!("{n} {t}"),
        })
        .collect();
    format!(
        "CREATE TABLE hits ({}) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (user_id, ts)",
        cols.join(", ")
    )
}

#[derive(Debug, Serialize, Default)]
struct Figures {
    rows: u64,
    csv_bytes: u64,
    /// The embedded engine: the default codecs first, then each `--compression`.
    local: Vec<LocalFigures>,
    grpc_insert_rows_per_s: f64,
    grpc_insert_mb_per_s: f64,
    local_peak_rss_mb: f64,
    server_peak_rss_mb: f64,
    chdb: Option<ChdbFigures>,
}

#[derive(Debug, Serialize, Default, Clone)]
struct LocalFigures {
    /// `default` or the CODEC every column had.
    codec: String,
    insert_rows_per_s: f64,
    insert_mb_per_s: f64,
    bytes_on_disk: u64,
    /// Query name -> (p50 ms, p99 ms).
    queries_ms: BTreeMap<String, (f64, f64)>,
}

#[derive(Debug, Serialize, Default)]
struct ChdbFigures {
    insert_rows_per_s: f64,
    bytes_on_disk: u64,
    queries_ms: BTreeMap<String, (f64, f64)>,
}

pub fn run(args: BenchArgs) -> ExitCode {
    let rt = match crate::output::runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let res = match args.cmd {
        BenchCmd::Hits(h) => rt.block_on(hits(h)),
        BenchCmd::Coordinator(c) => rt.block_on(coordinator::coordinator(c)),
        BenchCmd::Replication(r) => rt.block_on(replication::replication(r)),
        BenchCmd::Quorum(q) => rt.block_on(quorum::quorum(q)),
        BenchCmd::Distributed(d) => rt.block_on(distributed::distributed(d)),
        BenchCmd::Clients(c) => rt.block_on(clients::clients(c)),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const EVENTS: [&str; 20] = [
    "click",
    "view",
    "scroll",
    "hover",
    "purchase",
    "add_to_cart",
    "remove",
    "login",
    "logout",
    "signup",
    "search",
    "share",
    "like",
    "comment",
    "download",
    "upload",
    "play",
    "pause",
    "error",
    "refresh",
];

fn generate_csv(path: &Path, rows: u64) -> anyhow::Result<u64> {
    let f = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = 1_704_067_200i64; // 2024-01-01
    let span = 90 * 86_400i64;
    let mut line = String::with_capacity(128);
    for i in 0..rows {
        line.clear();
        let ts = start + (i as i64 * span / rows.max(1) as i64);
        // Zipf-like: many rows for few users.
        let user = (rng.unit().powi(3) * 1_000_000.0) as u64;
        let event = EVENTS[(rng.next() % 20) as usize];
        let page = rng.next() % 5000;
        let value = (rng.next() % 100_000) as f64 / 100.0;
        use std::fmt::Write as _;
        let _ = writeln!(
            line,
            "{},{user},{event},https://example.com/p/{page},{value}",
            qh_types::text::datetime_text(ts)
        );
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

fn peak_rss_mb(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] * 1000.0;
    (p(0.5), p(0.99))
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                total += dir_size(&path);
            } else if let Ok(m) = e.metadata() {
                total += m.len();
            }
        }
    }
    total
}

async fn hits(a: HitsArgs) -> anyhow::Result<()> {
    let _tmp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            let t = tempfile::tempdir()?;
            let p = t.path().to_path_buf();
            _tmp = t;
            p
        }
    };
    let mut fig = Figures {
        rows: a.rows,
        ..Default::default()
    };
    let csv = dir.join("hits.csv");
    eprintln!("generating {} rows ...", a.rows);
    fig.csv_bytes = generate_csv(&csv, a.rows)?;

    // 1. Embedded engine: the whole file in one INSERT, like chDB's load;
    // once with the default codecs and once per `--compression`.
    let codecs = std::iter::once(None).chain(a.compression.iter().map(|c| Some(c.as_str())));
    for (i, codec) in codecs.enumerate() {
        let local_dir = dir.join(format!("local{i}"));
        let _ = std::fs::remove_dir_all(&local_dir);
        fig.local
            .extend(local_run(&local_dir, &csv, codec, &a, fig.csv_bytes).await?);
        let _ = std::fs::remove_dir_all(&local_dir);
    }
    fig.local_peak_rss_mb = peak_rss_mb("self");

    // 2. A server process and the gRPC client, 100k-row INSERTs.
    if !a.skip_grpc {
        grpc_insert(&dir, &csv, &a, &mut fig).await?;
    }

    // 3. chDB on the same file, same queries.
    if a.compare_chdb {
        eprintln!("chdb ...");
        let script = dir.join("chdb_bench.py");
        std::fs::write(&script, CHDB_SCRIPT)?;
        let chdb_dir = dir.join("chdb");
        let _ = std::fs::remove_dir_all(&chdb_dir);
        let mut p = Command::new("python3")
            .arg(&script)
            .arg(&csv)
            .arg(&chdb_dir)
            .arg(a.runs.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let qs: BTreeMap<&str, &str> = QUERIES.iter().cloned().collect();
        p.stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdin"))?
            .write_all(serde_json::to_string(&qs)?.as_bytes())?;
        let out = p.wait_with_output()?;
        if !out.status.success() {
            anyhow::bail!("chdb run failed (is `pip install chdb` done?)");
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let mut c = ChdbFigures {
            insert_rows_per_s: a.rows as f64
                / v["insert_seconds"].as_f64().unwrap_or(f64::INFINITY),
            bytes_on_disk: v["bytes_on_disk"].as_u64().unwrap_or(0),
            ..Default::default()
        };
        for (name, _) in QUERIES {
            let times: Vec<f64> = v["queries"][name]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default();
            c.queries_ms.insert(name.to_string(), percentiles(times));
        }
        fig.chdb = Some(c);
    }
    print_figures(&fig);
    if let Some(j) = &a.json {
        std::fs::write(j, serde_json::to_vec_pretty(&fig)?)?;
    }
    Ok(())
}

/// Loads the CSV into a fresh embedded engine in one INSERT and times the
/// queries; on the default codecs, again with each `--query-settings`.
async fn local_run(
    local_dir: &Path,
    csv: &Path,
    codec: Option<&str>,
    a: &HitsArgs,
    csv_bytes: u64,
) -> anyhow::Result<Vec<LocalFigures>> {
    let label = codec.unwrap_or("default").to_string();
    let engine = Engine::open(local_dir, EngineOptions::default())?;
    let mut s = engine.session();
    s.execute(&create_sql(codec), &mut None).await?;
    eprintln!("local insert ({label}) ...");
    let t = Instant::now();
    let mut input: Input = Some(Box::new(std::fs::File::open(csv)?));
    s.execute("INSERT INTO hits FORMAT CSV", &mut input).await?;
    let el = t.elapsed().as_secs_f64();
    s.execute("OPTIMIZE TABLE hits FINAL", &mut None).await?;
    let fig = LocalFigures {
        codec: label,
        insert_rows_per_s: a.rows as f64 / el,
        insert_mb_per_s: csv_bytes as f64 / el / 1e6,
        bytes_on_disk: dir_size(&local_dir.join("data/default/hits")),
        ..Default::default()
    };
    let variants = match codec {
        None => a.query_settings.as_slice(),
        Some(_) => &[],
    };
    let mut out = Vec::with_capacity(1 + variants.len());
    for settings in std::iter::once(None).chain(variants.iter().map(Some)) {
        eprintln!("queries {} ...", settings.map_or("", |s| s.as_str()));
        let mut f = LocalFigures {
            codec: match settings {
                Some(v) => format!("{}, {v}", fig.codec),
                None => fig.codec.clone(),
            },
            queries_ms: BTreeMap::new(),
            ..fig.clone()
        };
        for (name, sql) in QUERIES {
            let sql = match settings {
                Some(v) => format!("{sql} SETTINGS {v}"),
                None => sql.to_string(),
            };
            let mut times = Vec::new();
            for _ in 0..a.runs {
                let t = Instant::now();
                s.execute(&sql, &mut None).await?;
                times.push(t.elapsed().as_secs_f64());
            }
            f.queries_ms.insert(name.to_string(), percentiles(times));
        }
        out.push(f);
    }
    drop(s);
    engine.shutdown();
    Ok(out)
}

/// Inserts the CSV through the gRPC client into a server process in
/// `--batch`-row INSERTs.
async fn grpc_insert(
    dir: &Path,
    csv: &Path,
    a: &HitsArgs,
    fig: &mut Figures,
) -> anyhow::Result<()> {
    eprintln!("grpc insert ...");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let server_dir = dir.join("server");
    let _ = std::fs::remove_dir_all(&server_dir);
    let http_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let inter_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let mut child = Command::new(std::env::current_exe()?)
        .args(["server", "--data-dir"])
        .arg(&server_dir)
        .args(["--port", &port.to_string()])
        .args(["--http-port", &http_port.to_string()])
        .args(["--interserver-port", &inter_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut client = loop {
        if let Ok(mut c) = qh_client::Client::connect(&[&endpoint]).await {
            if c.ping().await.is_ok() {
                break c;
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("server did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    client.query(&create_sql(None)).await?;
    let data = std::fs::read(csv)?;
    let mut batches = Vec::new();
    let mut start = 0usize;
    let mut count = 0u64;
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            count += 1;
            if count == a.batch {
                batches.push(data[start..=i].to_vec());
                start = i + 1;
                count = 0;
            }
        }
    }
    if start < data.len() {
        batches.push(data[start..].to_vec());
    }
    drop(data);
    let t = Instant::now();
    for b in batches {
        client
            .insert_bytes("INSERT INTO hits FORMAT CSV", b)
            .await?;
    }
    let el = t.elapsed().as_secs_f64();
    fig.grpc_insert_rows_per_s = a.rows as f64 / el;
    fig.grpc_insert_mb_per_s = fig.csv_bytes as f64 / el / 1e6;
    fig.server_peak_rss_mb = peak_rss_mb(&child.id().to_string());
    let _ = child.kill();
    let _ = child.wait();

    Ok(())
}

fn print_figures(f: &Figures) {
    println!(
        "hits benchmark: {} rows, CSV {:.1} MB",
        f.rows,
        f.csv_bytes as f64 / 1e6
    );
    let c = f.chdb.as_ref();
    let mut header = format!("{:<26}", "figure");
    for l in &f.local {
        header.push_str(&format!(" {:>14}", l.codec));
    }
    header.push_str(&format!(" {:>10} {:>7}", "chDB", "ratio"));
    println!("{header}");
    // One row: our value per codec, chDB's, and default / chDB.
    let row = |name: &str, ours: &dyn Fn(&LocalFigures) -> f64, theirs: Option<f64>| {
        let mut line = format!("{name:<26}");
        for l in &f.local {
            line.push_str(&format!(" {:>14.1}", ours(l)));
        }
        match (theirs, f.local.first()) {
            (Some(t), Some(first)) if t > 0.0 => {
                line.push_str(&format!(" {t:>10.1} {:>6.2}x", ours(first) / t))
            }
            _ => line.push_str(&format!(" {:>10} {:>7}", "-", "-")),
        }
        println!("{line}");
    };
    row(
        "insert M rows/s (local)",
        &|l| l.insert_rows_per_s / 1e6,
        c.map(|c| c.insert_rows_per_s / 1e6),
    );
    row("insert MB/s (local)", &|l| l.insert_mb_per_s, None);
    for (name, _) in QUERIES {
        let theirs = c.and_then(|c| c.queries_ms.get(*name)).map(|x| x.0);
        row(
            &format!("{name} p50 ms"),
            &|l| l.queries_ms.get(*name).map(|x| x.0).unwrap_or(0.0),
            theirs,
        );
        row(
            &format!("{name} p99 ms"),
            &|l| l.queries_ms.get(*name).map(|x| x.1).unwrap_or(0.0),
            None,
        );
    }
    row(
        "bytes on disk (MB)",
        &|l| l.bytes_on_disk as f64 / 1e6,
        c.map(|c| c.bytes_on_disk as f64 / 1e6),
    );
    row(
        "on disk / raw CSV (%)",
        &|l| 100.0 * l.bytes_on_disk as f64 / f.csv_bytes.max(1) as f64,
        None,
    );
    if f.grpc_insert_rows_per_s > 0.0 {
        println!(
            "insert over gRPC (100k batches): {:.2} M rows/s, {:.1} MB/s",
            f.grpc_insert_rows_per_s / 1e6,
            f.grpc_insert_mb_per_s
        );
    }
    println!(
        "peak RSS: local {:.0} MB, server {:.0} MB",
        f.local_peak_rss_mb, f.server_peak_rss_mb
    );
}
