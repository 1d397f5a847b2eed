//! `quorumhouse bench clients`: the same hits-like rows read and written by
//! clickhouse-connect over HTTP (`query_df`, `query_arrow`, `insert_df`,
//! `insert_arrow`: Native and Arrow on the wire) and by the Rust client's
//! Arrow path over gRPC, against one node, side by side in one run. The
//! question it answers: is the HTTP format path ever the bottleneck?

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};

use super::percentiles;

const SCRIPT: &str = include_str!("clients_bench.py");

#[derive(Args, Debug)]
pub struct ClientsArgs {
    /// Rows of the hits-like table.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Runs of each operation (percentiles over these).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

const COLUMNS: &str =
    "(ts DateTime, user_id UInt64, event LowCardinality(String), url String, value Float64)";

/// What the Python side prints.
#[derive(Debug, Deserialize)]
struct PythonFigures {
    rows: u64,
    arrow_bytes: u64,
    query_df: Vec<f64>,
    query_arrow: Vec<f64>,
    insert_df: Vec<f64>,
    insert_arrow: Vec<f64>,
    /// The Native bytes alone (no pandas on either side).
    query_native_raw: Vec<f64>,
    insert_native_raw: Vec<f64>,
}

#[derive(Debug, Serialize, Default)]
struct Figures {
    rows: u64,
    arrow_bytes: u64,
    /// Operation → (p50 ms, p99 ms, rows/s at p50, MB/s at p50).
    operations: BTreeMap<String, (f64, f64, f64, f64)>,
}

pub async fn clients(a: ClientsArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let cluster = qh_local_cluster::LocalCluster::start(Path::new(&exe), 1, &[])?;
    cluster
        .leader(&cluster.all(), Duration::from_secs(30))
        .await?;
    let mut c = qh_client::Client::connect(&[cluster.client_endpoint(1)]).await?;
    for t in ["hits", "sink_py", "sink_rs"] {
        c.query(&format!(
            "CREATE TABLE {t} {COLUMNS} ENGINE = MergeTree ORDER BY (user_id, ts)"
        ))
        .await?;
    }
    eprintln!("loading {} rows ...", a.rows);
    c.query(&format!(
        "INSERT INTO hits SELECT toDateTime(1700000000 + number) AS ts, \
         (number * 2654435761) % 100000 AS user_id, concat('e', toString(number % 20)) AS event, \
         concat('https://example.com/p/', toString(number % 5000)) AS url, (number % 1000) / 10 AS value \
         FROM numbers({})",
        a.rows
    ))
    .await?;

    eprintln!("clickhouse-connect ...");
    let script = std::env::temp_dir().join(format!("qh_clients_bench_{}.py", std::process::id()));
    std::fs::write(&script, SCRIPT)?;
    let out = Command::new("python3")
        .arg(&script)
        .arg(cluster.http_addr(1))
        .args(["hits", "sink_py", &a.runs.to_string()])
        .output();
    let _ = std::fs::remove_file(&script);
    let out = out.map_err(|e| anyhow::anyhow!("python3: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "clickhouse-connect side failed (pip install clickhouse-connect pandas pyarrow): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let py: PythonFigures = serde_json::from_slice(&out.stdout)?;

    eprintln!("Rust client (Arrow over gRPC) ...");
    let mut query = Vec::with_capacity(a.runs);
    let mut batches = Vec::new();
    for _ in 0..a.runs {
        let t = Instant::now();
        batches = c.query("SELECT * FROM hits").await?.batches;
        query.push(t.elapsed().as_secs_f64());
    }
    let mut insert = Vec::with_capacity(a.runs);
    for _ in 0..a.runs {
        c.query("TRUNCATE TABLE sink_rs").await?;
        let t = Instant::now();
        c.insert_batches("sink_rs", &batches, Default::default())
            .await?;
        insert.push(t.elapsed().as_secs_f64());
    }

    let mut fig = Figures {
        rows: py.rows,
        arrow_bytes: py.arrow_bytes,
        ..Default::default()
    };
    let mb = py.arrow_bytes as f64 / 1e6;
    for (name, runs) in [
        ("query_df (HTTP Native → pandas)", py.query_df),
        ("query_arrow (HTTP Arrow)", py.query_arrow),
        ("Rust query (gRPC Arrow)", query),
        ("insert_df (pandas → HTTP Native)", py.insert_df),
        ("insert_arrow (HTTP Arrow)", py.insert_arrow),
        ("Rust insert_batches (gRPC Arrow)", insert),
        ("raw_query (HTTP Native bytes)", py.query_native_raw),
        ("raw_insert (HTTP Native bytes)", py.insert_native_raw),
    ] {
        let (p50, p99) = percentiles(runs);
        let secs = (p50 / 1000.0).max(1e-9);
        fig.operations.insert(
            name.to_string(),
            (p50, p99, py.rows as f64 / secs, mb / secs),
        );
    }
    println!(
        "rows {}   data {:.1} MB (Arrow)   one node, runs {}",
        fig.rows, mb, a.runs
    );
    println!(
        "{:<36} {:>10} {:>10} {:>12} {:>8}",
        "operation", "p50 ms", "p99 ms", "rows/s", "MB/s"
    );
    for (name, (p50, p99, rows, mbs)) in &fig.operations {
        println!("{name:<36} {p50:>10.1} {p99:>10.1} {rows:>12.0} {mbs:>8.1}");
    }
    let ratio = |a: &str, b: &str| fig.operations[a].2 / fig.operations[b].2.max(1e-9);
    println!(
        "HTTP Native / Rust Arrow: query {:.2}×, insert {:.2}×",
        ratio("query_df (HTTP Native → pandas)", "Rust query (gRPC Arrow)"),
        ratio(
            "insert_df (pandas → HTTP Native)",
            "Rust insert_batches (gRPC Arrow)"
        )
    );
    // The server's share: the same Native bytes without the client's pandas.
    println!(
        "HTTP Native bytes / Rust Arrow: query {:.2}×, insert {:.2}×",
        ratio("raw_query (HTTP Native bytes)", "Rust query (gRPC Arrow)"),
        ratio(
            "raw_insert (HTTP Native bytes)",
            "Rust insert_batches (gRPC Arrow)"
        )
    );
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&fig)?)?;
    }
    Ok(())
}
