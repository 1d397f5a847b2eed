//! `drill leader-loss`: SIGKILL (or, `--signal term`, SIGTERM) the coordinator
//! leader, measure the gap until a write through a survivor commits under a
//! new leader, restart the stopped node and measure its catch-up; committed
//! writes made before the kill are checked after it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use qh_meta::{Check, MetaClient, Op, Request};

use crate::cluster::{alive, interserver_of, load, read_pid, signal, spawn_node, wait_ready};

pub(super) async fn leader_loss(
    dir: PathBuf,
    graceful: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let cf = load(&dir)?;
    let running: Vec<u32> = cf
        .nodes
        .iter()
        .copied()
        .filter(|&n| read_pid(&dir, n).is_some_and(alive))
        .collect();
    if running.len() < 3 {
        anyhow::bail!("the drill needs at least 3 running nodes (running: {running:?}); run `quorumhouse cluster up`");
    }
    let secret = cf.cluster_secret();
    let client = |n: u32| MetaClient::new(&interserver_of(&cf, n), &secret);
    let mut leader = None;
    for &n in &running {
        if let Ok(st) = client(n)?.status().await {
            leader = st.leader;
            break;
        }
    }
    let leader = leader.ok_or_else(|| anyhow::anyhow!("no coordinator leader right now"))? as u32;
    let survivor = *running
        .iter()
        .find(|&&n| n != leader)
        .ok_or_else(|| anyhow::anyhow!("no survivor"))?;
    let token = format!("{}", qh_meta::now_ms());
    let mark = Request::op(Op::Put {
        key: "drill/leader-loss/before".into(),
        value: token.clone(),
    });
    anyhow::ensure!(
        client(survivor)?.write(&mark).await?.is_ok(),
        "the write before the kill did not apply"
    );
    let before = client(leader)?.status().await?;

    let pid =
        read_pid(&dir, leader).ok_or_else(|| anyhow::anyhow!("no pid file for node{leader}"))?;
    let (sig, name) = if graceful {
        (libc::SIGTERM, "SIGTERM")
    } else {
        (libc::SIGKILL, "SIGKILL")
    };
    println!(
        "stopping node{leader} (leader, term {}, pid {pid}) with {name}",
        before.term
    );
    signal(pid, sig);
    let killed = Instant::now();
    let deadline = killed + timeout;
    let probe = Request::op(Op::Put {
        key: "drill/leader-loss/after".into(),
        value: token.clone(),
    });
    // A gracefully stopping leader keeps committing until its coordinator
    // stops: measure the gap between the last write it committed and the
    // first one under the new leader (for a kill, the gap starts at the kill).
    let mut last_old = killed;
    let (first_write, gap) = loop {
        if let Ok(r) = client(survivor)?.write(&probe).await {
            if r.is_ok() {
                let now = Instant::now();
                let leader_now = client(survivor)?.status().await.ok().and_then(|s| s.leader);
                if leader_now.is_some_and(|l| l != u64::from(leader)) {
                    break (now - killed, now - last_old);
                }
                last_old = now;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no write committed under a new leader within {timeout:?} of the {name}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let after = client(survivor)?.status().await?;
    let check = Request::op(Op::Put {
        key: "drill/leader-loss/check".into(),
        value: token.clone(),
    })
    .with_checks(vec![Check::KeyEquals {
        key: "drill/leader-loss/before".into(),
        value: Some(token.clone()),
    }]);
    let kept = client(survivor)?.write(&check).await?.is_ok();

    // A graceful stop takes a moment to finish; start again once it is gone.
    while alive(pid) {
        anyhow::ensure!(
            killed.elapsed() < timeout,
            "node{leader} did not exit within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("restarting node{leader}");
    let restarted = Instant::now();
    spawn_node(&dir, &cf, leader)?;
    wait_ready(&cf, &[leader], &dir, timeout).await?;
    let target = client(survivor)?.status().await?.applied_index;
    loop {
        if client(leader)?
            .status()
            .await
            .is_ok_and(|s| s.applied_index >= target)
        {
            break;
        }
        anyhow::ensure!(
            restarted.elapsed() < timeout,
            "node{leader} did not catch up within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caught_up = restarted.elapsed();

    println!();
    println!("{:<44} leader-loss", "drill");
    println!(
        "{:<44} node{leader} (term {})",
        "killed leader", before.term
    );
    println!(
        "{:<44} node{} (term {})",
        "new leader",
        after.leader.unwrap_or(0),
        after.term
    );
    println!(
        "{:<44} {:.0} ms",
        format!("{name} -> first write under the new leader"),
        first_write.as_secs_f64() * 1000.0
    );
    println!(
        "{:<44} {:.0} ms",
        "no write committed for",
        gap.as_secs_f64() * 1000.0
    );
    println!(
        "{:<44} {}",
        "write committed before the kill still there",
        if kept { "yes" } else { "NO" }
    );
    println!(
        "{:<44} {:.0} ms",
        "restart -> killed node caught up",
        caught_up.as_secs_f64() * 1000.0
    );
    anyhow::ensure!(kept, "a committed write was lost");
    Ok(())
}
