//! The harness end to end inside the test command: a short `set` run under
//! kill -9 of random nodes, on loopback (no root needed), must be valid and
//! leave its history and results behind. The full matrix is
//! `run-suite.sh --short` (CI) and `--long` (by hand).

use std::time::Duration;

use jepsen_like_tests::history::{read_jsonl, OpType, NEMESIS};
use jepsen_like_tests::nemesis::Nemesis;
use jepsen_like_tests::run::{run, NetMode, RunOptions};
use jepsen_like_tests::workload::Workload;

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
