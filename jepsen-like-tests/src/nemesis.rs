//! Faults on a schedule drawn from the run's seed: the same seed gives the
//! same times, durations and target picks (a target named by role, such as
//! the coordinator leader, is resolved when the fault starts and recorded).
//! Every fault is recorded in the history: its `invoke` when it starts, its
//! `ok` when it is healed (`info` if healing failed).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::{Clocks, SKEWS_MS};
use crate::disk::Disks;
use crate::history::{Op, OpType, Recorder, NEMESIS};
use crate::net::Network;
use crate::TestCluster;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nemesis {
    /// No faults: the baseline.
    None,
    /// SIGKILL a random node; restart it at the heal.
    Kill,
    /// SIGKILL the coordinator's leader; restart it at the heal.
    KillLeader,
    /// SIGSTOP a random node; SIGCONT at the heal.
    Pause,
    /// Cut a random node off from the others, both ways.
    Partition,
    /// A random node stops hearing one other node (it can still send).
    PartitionOneWay,
    /// 100 ms ± 50 ms delay and 10 % loss on everything a random node sends.
    Slow,
    /// Fill a random node's disk (every node has a small tmpfs of its own).
    DiskFull,
    /// Move a random node's wall clock minutes to days ahead or behind.
    Clock,
}

pub const ALL: &[Nemesis] = &[
    Nemesis::None,
    Nemesis::Kill,
    Nemesis::KillLeader,
    Nemesis::Pause,
    Nemesis::Partition,
    Nemesis::PartitionOneWay,
    Nemesis::Slow,
    Nemesis::DiskFull,
    Nemesis::Clock,
];

impl Nemesis {
    pub fn name(self) -> &'static str {
        match self {
            Nemesis::None => "none",
            Nemesis::Kill => "kill",
            Nemesis::KillLeader => "kill-leader",
            Nemesis::Pause => "pause",
            Nemesis::Partition => "partition",
            Nemesis::PartitionOneWay => "partition-one-way",
            Nemesis::Slow => "slow",
            Nemesis::DiskFull => "disk-full",
            Nemesis::Clock => "clock",
        }
    }

    /// Whether it needs the nodes in their own network namespaces.
    pub fn needs_network(self) -> bool {
        matches!(
            self,
            Nemesis::Partition | Nemesis::PartitionOneWay | Nemesis::Slow
        )
    }
}

impl FromStr for Nemesis {
    type Err = String;
    fn from_str(s: &str) -> Result<Nemesis, String> {
        ALL.iter().copied().find(|n| n.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|n| n.name()).collect();
            format!("unknown nemesis {s:?} (one of {})", names.join(", "))
        })
    }
}

/// One planned fault: start `at` after the run starts, hold it `hold`;
/// `pick` chooses the target node(s).
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub at: Duration,
    pub hold: Duration,
    pub pick: u64,
}

/// Faults from the seed over a run of `time`: quiet 3–5 s, fault 3–6 s,
/// repeated; the last one heals at least 3 s before the end so every fault
/// is followed by a measured recovery.
pub fn schedule(seed: u64, time: Duration) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut t = Duration::ZERO;
    loop {
        let quiet = Duration::from_millis(rng.random_range(3000..5000));
        let hold = Duration::from_millis(rng.random_range(3000..6000));
        let pick = rng.random::<u64>();
        t += quiet;
        if t + hold + Duration::from_secs(3) > time {
            return out;
        }
        out.push(Planned { at: t, hold, pick });
        t += hold;
    }
}

/// What the faults act on besides the processes.
#[derive(Clone, Copy, Default)]
pub struct Means<'a> {
    pub net: Option<&'a Network>,
    pub disks: Option<&'a Disks>,
    pub clocks: Option<&'a Clocks>,
}

/// Runs `plan` against the cluster; returns when every fault is healed.
pub async fn run(
    nemesis: Nemesis,
    plan: Vec<Planned>,
    cluster: &mut TestCluster,
    means: Means<'_>,
    rec: Arc<Recorder>,
    start: Instant,
) -> anyhow::Result<()> {
    let Means { net, disks, clocks } = means;
    let nodes: Vec<u64> = cluster.all().into_iter().collect();
    let n = nodes.len() as u64;
    for p in plan {
        if nemesis == Nemesis::None {
            break;
        }
        tokio::time::sleep_until((start + p.at).into()).await;
        let mut target = nodes[(p.pick % n) as usize];
        if nemesis == Nemesis::KillLeader {
            if let Ok(l) = cluster.leader(&cluster.all(), Duration::from_secs(5)).await {
                target = l;
            }
        }
        let others: Vec<u64> = nodes.iter().copied().filter(|&x| x != target).collect();
        let other = others
            .get((p.pick / n) as usize % others.len().max(1))
            .copied()
            .unwrap_or(target);
        let skew = SKEWS_MS[(p.pick / n) as usize % SKEWS_MS.len()];
        let op = Op::new(NEMESIS, OpType::Invoke, nemesis.name()).node(target);
        rec.record(op.clone());
        let started = match nemesis {
            Nemesis::None => Ok(()),
            Nemesis::Kill | Nemesis::KillLeader => {
                cluster.kill(target);
                Ok(())
            }
            Nemesis::Pause => signal(cluster, target, libc::SIGSTOP),
            Nemesis::Partition => network(net)?.isolate(target),
            Nemesis::PartitionOneWay => network(net)?.drop_from(target, other),
            Nemesis::Slow => network(net)?.slow(target, 100, 10),
            Nemesis::DiskFull => own_disks(disks)?.fill(target),
            Nemesis::Clock => skew_clock(cluster, own_clocks(clocks)?, target, skew).await,
        };
        if let Err(e) = started {
            rec.record(op.complete(OpType::Info).error(e.to_string()));
            return Err(e.context(format!("starting {} on node {target}", nemesis.name())));
        }
        tokio::time::sleep(p.hold).await;
        let healed = match nemesis {
            Nemesis::None => Ok(()),
            Nemesis::Kill | Nemesis::KillLeader => cluster.spawn(target),
            Nemesis::Pause => signal(cluster, target, libc::SIGCONT),
            Nemesis::Clock => skew_clock(cluster, own_clocks(clocks)?, target, 0).await,
            Nemesis::Partition | Nemesis::PartitionOneWay | Nemesis::Slow => network(net)?.heal(),
            // A node whose coordinator hit ENOSPC stops by design; its
            // supervisor (here, the harness) starts it again with space.
            Nemesis::DiskFull => own_disks(disks)?.heal().and_then(|()| {
                if cluster.is_running(target) {
                    Ok(())
                } else {
                    cluster.spawn(target)
                }
            }),
        };
        match healed {
            Ok(()) => rec.record(op.complete(OpType::Ok)),
            Err(e) => {
                rec.record(op.complete(OpType::Info).error(e.to_string()));
                return Err(e.context(format!("healing {} on node {target}", nemesis.name())));
            }
        };
    }
    Ok(())
}

fn network(net: Option<&Network>) -> anyhow::Result<&Network> {
    net.ok_or_else(|| anyhow::anyhow!("this nemesis needs --net namespaces"))
}

fn own_clocks(clocks: Option<&Clocks>) -> anyhow::Result<&Clocks> {
    clocks.ok_or_else(|| anyhow::anyhow!("this nemesis needs a fake clock per node"))
}

/// Sets node `id`'s clock offset and waits (bounded) until its `now()`
/// shows it: a skew that did not take hold fails the run.
pub async fn skew_clock(
    cluster: &TestCluster,
    clocks: &Clocks,
    id: u64,
    offset_ms: i64,
) -> anyhow::Result<()> {
    clocks.set(id, offset_ms)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let node_now = cluster
            .sql(id, "SELECT toUnixTimestamp(now())")
            .await
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok());
        let ours = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        if let Some(theirs) = node_now {
            // Within a few seconds of the intended offset (query latency).
            if (theirs - ours - offset_ms / 1000).abs() <= 5 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "node {id}'s clock did not move to offset {offset_ms} ms (it says {node_now:?}, we say {ours})"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn own_disks(disks: Option<&Disks>) -> anyhow::Result<&Disks> {
    disks.ok_or_else(|| anyhow::anyhow!("this nemesis needs a disk per node"))
}

fn signal(cluster: &TestCluster, id: u64, sig: i32) -> anyhow::Result<()> {
    let pid = cluster
        .pid(id)
        .ok_or_else(|| anyhow::anyhow!("node {id} is not running"))?;
    // SAFETY: signalling a child process the cluster spawned and has not reaped.
    if unsafe { libc::kill(pid as i32, sig) } != 0 {
        anyhow::bail!("kill({pid}, {sig}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let t = Duration::from_secs(60);
        assert_eq!(schedule(7, t), schedule(7, t));
        assert_ne!(schedule(7, t), schedule(8, t));
        let s = schedule(7, t);
        assert!(s.len() >= 5, "{s:?}");
        for w in s.windows(2) {
            assert!(w[0].at + w[0].hold < w[1].at);
        }
        let last = s.last().unwrap();
        assert!(last.at + last.hold + Duration::from_secs(3) <= t);
    }

    #[test]
    fn every_nemesis_name_parses_back() {
        for n in ALL {
            assert_eq!(n.name().parse::<Nemesis>(), Ok(*n));
        }
        assert!("nope".parse::<Nemesis>().is_err());
    }
}
