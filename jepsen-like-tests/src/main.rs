//! `cargo run -p jepsen-like-tests -- --workload set --nemesis kill --time 60`
//!
//! One run against a fresh cluster; prints the results and exits non-zero
//! when the history is not valid. `run-suite.sh` runs the matrix.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use jepsen_like_tests::nemesis::Nemesis;
use jepsen_like_tests::run::{self, NetMode, RunOptions};
use jepsen_like_tests::workload::Workload;

#[derive(Parser, Debug)]
#[command(
    about = "Runs a workload against a fresh quorumhouse cluster under faults and checks the history"
)]
struct Args {
    /// set | sequential | replacing
    #[arg(long, default_value = "set")]
    workload: Workload,
    /// none | kill | kill-leader | pause | partition | partition-one-way | slow | disk-full
    #[arg(long, default_value = "kill")]
    nemesis: Nemesis,
    /// Seconds of workload (faults start after 3–5 s and heal 3 s before the end).
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Client ops per second, over all workers.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    #[arg(long, default_value_t = 6)]
    workers: usize,
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// insert_quorum of every insert.
    #[arg(long, default_value_t = 2)]
    quorum: u32,
    /// Draws the fault schedule (the same seed replays it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `namespaces` (each node in its own network namespace; root) or
    /// `loopback`. Default: namespaces when root, else loopback.
    #[arg(long)]
    net: Option<String>,
    /// Seconds before an unanswered call counts as an unknown outcome.
    #[arg(long, default_value_t = 20)]
    op_timeout: u64,
    /// Where run directories go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/store"))]
    store: PathBuf,
    /// Print results.json instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let net = match args.net.as_deref() {
        Some("namespaces") => NetMode::Namespaces,
        Some("loopback") => NetMode::Loopback,
        None if root => NetMode::Namespaces,
        None => NetMode::Loopback,
        Some(other) => anyhow::bail!("--net {other}: expected namespaces or loopback"),
    };
    let opts = RunOptions {
        bin: jepsen_like_tests::quorumhouse_binary()?,
        workload: args.workload,
        nemesis: args.nemesis,
        time: Duration::from_secs(args.time),
        rate: args.rate,
        workers: args.workers.max(1),
        nodes: args.nodes,
        quorum: args.quorum,
        seed: args.seed,
        net,
        op_timeout: Duration::from_secs(args.op_timeout),
        store: args.store,
    };
    let rt = tokio::runtime::Runtime::new()?;
    let results = rt.block_on(run::run(&opts))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", jepsen_like_tests::report::text(&results));
    }
    if !results.valid {
        std::process::exit(1);
    }
    Ok(())
}
