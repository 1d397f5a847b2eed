//! The harness end to end inside the test command: a short `set` run under
//! kill -9 of random nodes, on loopback (no root needed), must be valid and
//! leave its history and results behind; nodes whose wall clocks are days
//! off must not stop anyone's writes. The full matrix is
//! `run-suite.sh --short` (CI) and `--long` (by hand).

use std::time::Duration;

use jepsen_like_tests::clock::Clocks;
use jepsen_like_tests::history::{read_jsonl, OpType, NEMESIS};
use jepsen_like_tests::nemesis::{self, Nemesis};
use jepsen_like_tests::run::{run, NetMode, RunOptions};
use jepsen_like_tests::workload::Workload;
use jepsen_like_tests::TestCluster;
use qh_local_cluster::Placement;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_run_under_kill_is_valid_and_recorded() {
    let store = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        bin: jepsen_like_tests::quorumhouse_binary().unwrap(),
        workload: Workload::Set,
        nemesis: Nemesis::Kill,
        time: Duration::from_secs(14),
        rate: 20.0,
        workers: 3,
        nodes: 3,
        quorum: 2,
        seed: 3,
        net: NetMode::Loopback,
        op_timeout: Duration::from_secs(20),
        store: store.path().to_path_buf(),
    };
    let r = run(&opts).await.unwrap();
    assert!(r.valid, "{}", jepsen_like_tests::report::text(&r));
    assert!(
        r.set.as_ref().unwrap().acknowledged > 0,
        "no insert was acknowledged"
    );
    assert!(!r.faults.is_empty(), "the schedule injected no fault");

    let history = read_jsonl(&r.dir.join("history.jsonl")).unwrap();
    let kills = history
        .iter()
        .filter(|o| o.process == NEMESIS && o.kind == OpType::Invoke)
        .count();
    assert_eq!(kills, r.faults.len());
    // Drawn wherever a TrueType font is installed (Debian's fonts-dejavu).
    assert!(
        r.dir.join("timeline.png").is_file() || r.timeline.contains("no TrueType font"),
        "{}",
        r.timeline
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["valid"], true);
}

/// A node whose wall clock is a week ahead, and one a day behind, move
/// neither the coordinator's time nor anyone's writes: leases, commit
/// deadlines and deduplication windows are judged by the coordinator's
/// clock, which the leader stamps from the median of the nodes' clocks.
/// (When a proposer's wall clock was the time, the week-ahead node's first
/// write made every other node's commit deadline lie in the past, and the
/// day-behind node's deadlines were always past.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_is_days_off_moves_no_one_elses_time() {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    let clocks = Clocks::create(&[1, 2, 3]).unwrap();
    let bin = jepsen_like_tests::quorumhouse_binary().unwrap();
    let c = TestCluster::start_placed(&bin, 3, &[], |id| {
        let mut place = Placement::loopback();
        place.env = clocks.env(id);
        place
    })
    .unwrap();
    let setup = Duration::from_secs(90);
    c.leader(&c.all(), setup).await.unwrap();
    for id in c.all() {
        c.sql(
            id,
            "CREATE TABLE t (id UInt64) ENGINE = ReplicatedMergeTree('/tables/t', '{replica}') ORDER BY id",
        )
        .await
        .unwrap();
    }
    c.live_replicas(1, "t", 3, setup).await.unwrap();
    let insert = |node: u64, id: u64| {
        let c = &c;
        async move {
            let sql = format!("INSERT INTO t SETTINGS insert_quorum = 3 VALUES ({id})");
            if let Err(e) = c.sql(node, &sql).await {
                panic!("insert {id} through node {node}: {e}");
            }
        }
    };

    nemesis::skew_clock(&c, &clocks, 2, 8 * DAY_MS)
        .await
        .unwrap();
    // Node 2's writes (this one, its lease renewals) carry its clock...
    insert(2, 1).await;
    // ...and the others' deadlines and leases still hold.
    insert(1, 2).await;
    insert(3, 3).await;
    c.live_replicas(3, "t", 3, setup).await.unwrap();

    nemesis::skew_clock(&c, &clocks, 3, -DAY_MS).await.unwrap();
    insert(3, 4).await;
    insert(1, 5).await;
    insert(2, 6).await;
    for id in c.all() {
        c.wait_for("every insert on every replica", setup, || async {
            let rows = c
                .sql(
                    id,
                    "SELECT groupArray(id) FROM (SELECT id FROM t ORDER BY id)",
                )
                .await
                .ok()?;
            (rows == "[1,2,3,4,5,6]\n").then_some(())
        })
        .await
        .unwrap();
    }
}
