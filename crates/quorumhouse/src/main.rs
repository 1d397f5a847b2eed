//! `quorumhouse`: one binary for the embedded engine (`local`), a node
//! (`server`), the gRPC client (`client`), a local cluster (`cluster`) and
//! built-in benchmarks (`bench`).

mod bench;
mod client;
mod cluster;
mod config;
mod drill;
mod local;
mod output;
mod progress;
mod repl;
mod server;
mod server_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "quorumhouse",
    version,
    about = "A replicated columnar database with ClickHouse's SQL and a built-in Raft coordinator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run SQL on an embedded engine, no server (like clickhouse-local).
    Local(local::LocalArgs),
    /// Run one node: the gRPC client API over a data directory.
    Server(server::ServerArgs),
    /// Connect to a node and run SQL (like clickhouse-client).
    Client(client::ClientArgs),
    /// Start, inspect and stop local node processes.
    Cluster(cluster::ClusterArgs),
    /// Built-in benchmarks.
    Bench(bench::BenchArgs),
    /// Failover drills against a running `cluster up` cluster.
    Drill(drill::DrillArgs),
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Plain text when stderr is a file or a container log.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr redirected to a full
        // disk) is dropped: reporting it with eprintln! would panic
        // whichever task was logging.
        .log_internal_errors(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Local(args) => {
            init_tracing("warn");
            local::run(args)
        }
        Command::Server(args) => {
            if args.print_default_config {
                print!("{}", config::default_config());
                return ExitCode::SUCCESS;
            }
            init_tracing("info");
            server::run(args)
        }
        Command::Client(args) => {
            init_tracing("warn");
            client::run(args)
        }
        Command::Cluster(args) => {
            init_tracing("warn");
            cluster::run(args)
        }
        Command::Bench(args) => {
            init_tracing("warn");
            bench::run(args)
        }
        Command::Drill(args) => {
            init_tracing("warn");
            drill::run(args)
        }
    }
}
