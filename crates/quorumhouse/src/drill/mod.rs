//! `quorumhouse drill <name>`: rehearse a failure on a running local cluster
//! (`cluster up`) and report what held and how long recovery took.
//!
//! `leader-loss` (`leader_loss.rs`) works on the coordinator alone; the
//! others (`faults.rs`) run a small quorum-insert workload through the
//! fault — the workload and checker of `qh-checker`, which the
//! jepsen-like suite runs too — and report whether every acknowledged row
//! is on every replica exactly once, the longest write gap, the time to the
//! first write after the heal and to every replica agreeing, and the
//! cluster's state after. docs/operations.md is the runbook.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

mod faults;
mod leader_loss;

use faults::Fault;

#[derive(Args, Debug)]
pub struct DrillArgs {
    #[command(subcommand)]
    cmd: DrillCmd,
}

/// What every workload drill takes.
#[derive(Args, Debug, Clone)]
pub struct FaultOpts {
    #[arg(long, default_value = "./qh-data")]
    pub data_dir: PathBuf,
    /// The node to fault (default: a replica that is not the coordinator leader).
    #[arg(long)]
    pub node: Option<u32>,
    /// Seconds the fault lasts.
    #[arg(long, default_value_t = 5)]
    pub hold: u64,
    /// Give up waiting for recovery after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Keep the drill's table (default: dropped at the end).
    #[arg(long)]
    pub keep: bool,
}

#[derive(Subcommand, Debug)]
enum DrillCmd {
    /// Kill -9 the coordinator leader (or stop it with SIGTERM) and measure
    /// recovery.
    LeaderLoss {
        #[arg(long, default_value = "./qh-data")]
        data_dir: PathBuf,
        /// `kill` (SIGKILL: a crash) or `term` (SIGTERM: a graceful stop,
        /// which hands leadership to the most up-to-date follower).
        #[arg(long, default_value = "kill", value_parser = ["kill", "term"])]
        signal: String,
        /// Give up waiting for recovery after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Kill -9 a replica under quorum inserts, restart it, check every row.
    ReplicaLoss(FaultOpts),
    /// Freeze a replica (SIGSTOP) under quorum inserts, then resume it.
    Pause(FaultOpts),
    /// Stop every node (SIGTERM) under quorum inserts and start them again.
    FullRestart(FaultOpts),
    /// Cut a replica off from the coordinator group (it and the others drop
    /// every coordinator message between them) under quorum inserts, then heal.
    Partition(FaultOpts),
    /// Fill the file system under a replica's data directory (a balloon
    /// file to its last 16 KiB) under quorum inserts, then free it and start
    /// any node that stopped.
    DiskFull {
        #[command(flatten)]
        o: FaultOpts,
        /// Go on when other nodes' data directories are on the same file
        /// system (as under `cluster up`): they are all filled, and every
        /// other program on it sees a full disk for the drill's --hold.
        #[arg(long)]
        shared_disk: bool,
    },
}

pub fn run(args: DrillArgs) -> ExitCode {
    let rt = match crate::output::runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let res = match args.cmd {
        DrillCmd::LeaderLoss {
            data_dir,
            signal,
            timeout,
        } => rt.block_on(leader_loss::leader_loss(
            data_dir,
            signal == "term",
            Duration::from_secs(timeout),
        )),
        DrillCmd::ReplicaLoss(o) => rt.block_on(faults::drill(Fault::ReplicaLoss, o)),
        DrillCmd::Pause(o) => rt.block_on(faults::drill(Fault::Pause, o)),
        DrillCmd::FullRestart(o) => rt.block_on(faults::drill(Fault::FullRestart, o)),
        DrillCmd::Partition(o) => rt.block_on(faults::drill(Fault::Partition, o)),
        DrillCmd::DiskFull { o, shared_disk } => rt.block_on(faults::drill(
            Fault::DiskFull {
                shared: shared_disk,
            },
            o,
        )),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drill failed: {e:#}");
            ExitCode::from(1)
        }
    }
}
