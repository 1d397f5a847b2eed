//! The Docker deployment under insert_quorum (`deploy/compose-test.sh`):
//! compose up, quorum=3, a stopped node (285, then quorum=2), restart and
//! catch-up, a node cut off the network and back. Runs when a Docker engine
//! and compose answer; otherwise the script prints why it skipped.

use std::path::Path;
use std::process::Command;

#[test]
fn compose_cluster_survives_stop_and_partition_under_insert_quorum() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("deploy/compose-test.sh"))
        .env("BIN", env!("CARGO_BIN_EXE_quorumhouse"))
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("compose-test: ok") || text.contains("compose-test: skipped"),
        "{text}"
    );
}
