//! The built-in coordinator across real processes: leader failover, minority
//! writes, partitions, full restarts, a wiped node rejoining by snapshot, and
//! malformed RPCs. Every wait polls a condition with a generous bound.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use jepsen_like_tests::{CoordinatorProbe, TestCluster};
use qh_meta::{Check, ClusterSecret, MetaClient, MetaError, Op, Request, Response};
use qh_proto::interserver::replication_client::ReplicationClient;
use qh_proto::interserver::{FetchPartRequest, StatusRequest};

const BIN: &str = env!("CARGO_BIN_EXE_quorumhouse");
const LONG: Duration = Duration::from_secs(60);

/// `GET path` on the HTTP port; the whole response.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn put(key: &str, value: &str) -> Request {
    Request::op(Op::Put {
        key: key.into(),
        value: value.into(),
    })
}

/// Whether the committed state holds `key = value`, asked through the log
/// itself (a CAS that only applies if it does), so the answer is linearizable.
async fn holds(c: &TestCluster, via: u64, key: &str, value: &str) -> Result<bool, MetaError> {
    let probe = put("probe", key).with_checks(vec![Check::KeyEquals {
        key: key.into(),
        value: Some(value.into()),
    }]);
    Ok(c.meta(via).write(&probe).await?.is_ok())
}

/// Commits `k{i} = v` for every i in `range`, through node `via`.
async fn put_many(c: &TestCluster, via: u64, range: std::ops::Range<u32>) {
    for i in range {
        let r = c
            .meta(via)
            .write(&put(&format!("k{i}"), "v"))
            .await
            .unwrap();
        assert!(r.is_ok(), "k{i}: {r:?}");
    }
}

fn others(c: &TestCluster, not: &[u64]) -> BTreeSet<u64> {
    c.all().into_iter().filter(|n| !not.contains(n)).collect()
}

fn start(n: u64, extra: &[&str]) -> TestCluster {
    TestCluster::start(Path::new(BIN), n, extra).expect("cluster starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_elects_new_leader_and_loses_nothing() {
    let mut c = start(3, &[]);
    let leader = c.leader(&c.all(), LONG).await.unwrap();
    let follower = *others(&c, &[leader]).iter().next().unwrap();
    // Writes through a follower are forwarded to the leader.
    for i in 0..30 {
        let r = c
            .meta(follower)
            .write(&put(&format!("k{i}"), &format!("v{i}")))
            .await
            .unwrap();
        assert_eq!(
            r,
            Response::Ok {
                results: vec![qh_meta::OpResult::Done]
            }
        );
    }
    c.kill(leader);
    let killed_at = Instant::now();
    let survivors = others(&c, &[leader]);
    // Keep writing until one commits: that is the first write of the new leader.
    let took = c
        .wait_for("a commit after the leader was killed", LONG, || async {
            c.meta(follower)
                .write(&put("after", "kill"))
                .await
                .ok()
                .map(|_| killed_at.elapsed())
        })
        .await
        .unwrap();
    eprintln!("first commit after leader SIGKILL: {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "first commit after leader loss took {took:?}"
    );
    let new_leader = c.leader(&survivors, LONG).await.unwrap();
    assert_ne!(new_leader, leader);
    for i in 0..30 {
        assert!(
            holds(&c, follower, &format!("k{i}"), &format!("v{i}"))
                .await
                .unwrap(),
            "k{i} lost"
        );
    }
    // The old leader comes back as a follower and catches up.
    c.spawn(leader).unwrap();
    c.converged(&c.all(), LONG).await.unwrap();
    let st = c.status(leader).await.unwrap();
    assert_ne!(st.role, "leader");
    assert!(holds(&c, leader, "after", "kill").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_never_reports_success() {
    let mut c = start(3, &["--coordinator-write-timeout-ms", "2000"]);
    c.leader(&c.all(), LONG).await.unwrap();
    assert!(c.meta(1).write(&put("before", "1")).await.unwrap().is_ok());
    c.kill(2);
    c.kill(3);
    // Node 1 alone: every write must fail (no leader, or outcome unknown), never succeed.
    for i in 0..3 {
        match c.meta(1).write(&put("minority", &i.to_string())).await {
            Ok(r) => panic!("a minority committed a write: {r:?}"),
            Err(MetaError::NoLeader(_) | MetaError::Unknown(_)) => {}
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
    c.spawn(2).unwrap();
    c.spawn(3).unwrap();
    c.wait_for("writes to work again", LONG, || async {
        c.meta(3).write(&put("healed", "1")).await.ok()
    })
    .await
    .unwrap();
    assert!(holds(&c, 2, "before", "1").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_cannot_commit_and_steps_down() {
    let c = start(3, &["--coordinator-write-timeout-ms", "2000"]);
    let old = c.leader(&c.all(), LONG).await.unwrap();
    let rest = others(&c, &[old]);
    c.meta(old).isolate(&rest).await.unwrap();
    for &n in &rest {
        c.meta(n).isolate(&BTreeSet::from([old])).await.unwrap();
    }
    let new = c.leader(&rest, LONG).await.unwrap();
    assert_ne!(new, old);
    let any = *rest.iter().next().unwrap();
    assert!(c
        .meta(any)
        .write(&put("majority", "yes"))
        .await
        .unwrap()
        .is_ok());
    // The cut-off leader cannot commit anything.
    match c.meta(old).write(&put("cut-off", "yes")).await {
        Ok(r) => panic!("a partitioned leader committed: {r:?}"),
        Err(e) => assert!(
            matches!(e, MetaError::NoLeader(_) | MetaError::Unknown(_)),
            "{e}"
        ),
    }
    // Heal: the old leader learns the new term and follows.
    c.meta(old).isolate(&BTreeSet::new()).await.unwrap();
    for &n in &rest {
        c.meta(n).isolate(&BTreeSet::new()).await.unwrap();
    }
    let st = c
        .wait_for("the old leader to follow", LONG, || async {
            let st = c.status(old).await?;
            (st.role == "follower" && st.leader.is_some_and(|l| l != old)).then_some(st)
        })
        .await
        .unwrap();
    assert!(st.term > 0);
    assert!(
        !holds(&c, old, "cut-off", "yes").await.unwrap(),
        "an uncommitted write surfaced"
    );
    assert!(holds(&c, old, "majority", "yes").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_restart_keeps_state_and_does_not_reinitialize() {
    let mut c = start(3, &[]);
    c.leader(&c.all(), LONG).await.unwrap();
    let setup = Request::ops(vec![
        Op::CreateDatabase { name: "db".into() },
        Op::CreateTable {
            table: "db.t".into(),
            engine: "ReplicatedMergeTree".into(),
            create_sql: "CREATE".into(),
            max_log_entries: 0,
        },
    ]);
    assert!(c.meta(2).write(&setup).await.unwrap().is_ok());
    put_many(&c, 3, 0..20).await;
    let before = c.converged(&c.all(), LONG).await.unwrap();
    for id in c.all() {
        c.stop(id);
    }
    for id in c.all() {
        c.spawn(id).unwrap();
    }
    c.leader(&c.all(), LONG).await.unwrap();
    let after = c.converged(&c.all(), LONG).await.unwrap();
    assert!(after.applied_index >= before.applied_index);
    // Same group: terms only move forward (a restarted leader may resume its term).
    assert!(after.term >= before.term, "{before:?} -> {after:?}");
    assert!(holds(&c, 1, "k19", "v").await.unwrap());
    // The table survived: creating it again is rejected.
    assert!(matches!(
        c.meta(1).write(&setup).await.unwrap(),
        Response::Rejected { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_node_rejoins_through_a_snapshot() {
    let mut c = start(3, &["--raft-snapshot-logs", "50", "--raft-keep-logs", "0"]);
    c.leader(&c.all(), LONG).await.unwrap();
    put_many(&c, 1, 0..150).await;
    let victim = 3;
    c.kill(victim);
    c.wipe(victim).unwrap();
    // More writes, so the log the victim would need is purged for sure.
    put_many(&c, 1, 150..220).await;
    let st = c.status(1).await.unwrap();
    assert!(
        st.purged_index > 0,
        "the log was purged behind a snapshot: {st:?}"
    );
    c.spawn(victim).unwrap();
    c.converged(&c.all(), LONG).await.unwrap();
    let st = c.status(victim).await.unwrap();
    assert!(
        st.snapshot_index > 0,
        "the wiped node got a snapshot: {st:?}"
    );
    assert!(holds(&c, victim, "k0", "v").await.unwrap());
    assert!(holds(&c, victim, "k219", "v").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_rpcs_are_rejected_and_the_node_lives() {
    let mut c = start(1, &[]);
    c.leader(&c.all(), LONG).await.unwrap();
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", c.inter_addr(1)))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let garbage = qh_proto::interserver::RaftRequest {
        from: 7,
        payload: b"{not json".to_vec(),
    };
    // A process without the cluster secret: refused by every service
    // (Raft, the coordinator, part fetches) before anything is decoded.
    let unauthenticated = |s: tonic::Status| {
        assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
        assert!(s.message().contains("AUTHENTICATION_FAILED"), "{s:?}");
    };
    for secret in [ClusterSecret::none(), ClusterSecret::new("not the secret")] {
        let ch = tonic::service::interceptor::InterceptedService::new(plain.clone(), secret);
        let mut raft = qh_proto::interserver::raft_client::RaftClient::new(ch.clone());
        unauthenticated(raft.vote(garbage.clone()).await.unwrap_err());
        let mut meta = qh_proto::interserver::meta_client::MetaClient::new(ch.clone());
        unauthenticated(meta.status(StatusRequest {}).await.unwrap_err());
        let mut fetch = ReplicationClient::new(ch);
        unauthenticated(
            fetch
                .fetch_part(FetchPartRequest::default())
                .await
                .unwrap_err(),
        );
    }
    let stranger = MetaClient::new(&c.inter_addr(1), &ClusterSecret::new("guess")).unwrap();
    assert!(stranger.status().await.is_err());
    // Counted and logged on the refusing node.
    let metrics = http_get(c.nodes[&1].http_port, "/metrics");
    assert!(
        metrics.contains("qh_interserver_refused_total 7"),
        "{metrics}"
    );
    assert!(c
        .log_text(1)
        .contains("interserver call refused: missing or wrong cluster secret"));
    // With the secret, the same calls reach the services.
    let ch = tonic::service::interceptor::InterceptedService::new(
        plain,
        ClusterSecret::new(c.cluster_secret()),
    );
    let mut raft = qh_proto::interserver::raft_client::RaftClient::new(ch.clone());
    let err = raft.append_entries(garbage.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = raft.vote(garbage).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    // Oversized: past the 64 MiB message cap, refused before it is decoded.
    let huge = qh_proto::interserver::RaftRequest {
        from: 7,
        payload: vec![b' '; 65 << 20],
    };
    let mut raft_big = raft.clone().max_encoding_message_size(128 << 20);
    let err = raft_big.append_entries(huge).await.unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::ResourceExhausted | tonic::Code::OutOfRange
        ),
        "{err:?}"
    );
    let mut meta = qh_proto::interserver::meta_client::MetaClient::new(ch);
    let bad = qh_proto::interserver::WriteRequest {
        command: vec![0xff; 1000],
        forwarded: false,
    };
    assert_eq!(
        meta.write(bad).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    // A command against a stale schema version fails cleanly, as an answer.
    let stale = put("x", "y").with_checks(vec![Check::TableVersion {
        table: "db.nope".into(),
        version: 3,
    }]);
    assert!(matches!(
        c.meta(1).write(&stale).await.unwrap(),
        Response::CheckFailed { .. }
    ));
    assert!(c
        .meta(1)
        .write(&put("still", "alive"))
        .await
        .unwrap()
        .is_ok());
    assert!(c.is_running(1));
}

#[test]
fn unopenable_coordinator_store_stops_the_node_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the store's directory should be.
    std::fs::write(dir.path().join("coordinator"), b"not a directory").unwrap();
    let port = |_| jepsen_like_tests::free_port().unwrap().to_string();
    let out = std::process::Command::new(BIN)
        .arg("server")
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--port",
            &port(1),
            "--http-port",
            &port(2),
            "--interserver-port",
            &port(3),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the coordinator store"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_added_and_removed_at_run_time() {
    let mut c = start(3, &[]);
    c.leader(&c.all(), LONG).await.unwrap();
    assert!(c.meta(1).write(&put("before", "4")).await.unwrap().is_ok());
    c.add_process(4).unwrap();
    // Through SQL on a node that may not lead: it is forwarded to the leader.
    let mut sql = qh_client::Client::connect(&[c.client_endpoint(2)])
        .await
        .unwrap();
    let add = format!("SYSTEM ADD NODE 4 '{}'", c.inter_addr(4));
    sql.query(&add).await.unwrap();
    let st = c.converged(&c.all(), LONG).await.unwrap();
    assert!(st.voters.contains_key(&4), "{st:?}");
    assert!(holds(&c, 4, "before", "4").await.unwrap());
    sql.query("SYSTEM REMOVE NODE 3").await.unwrap();
    let rest = others(&c, &[3]);
    let st = c
        .wait_for("node 3 out of the voters", LONG, || async {
            let st = c.status(1).await?;
            (!st.voters.contains_key(&3)).then_some(st)
        })
        .await
        .unwrap();
    assert_eq!(st.voters.keys().copied().collect::<BTreeSet<_>>(), rest);
    c.kill(3);
    assert!(c
        .meta(4)
        .write(&put("after", "remove"))
        .await
        .unwrap()
        .is_ok());
    // Bad input: a clear error with a ClickHouse code.
    let err = sql.query("SYSTEM ADD NODE x").await.unwrap_err();
    assert!(err.to_string().contains("BAD_ARGUMENTS"), "{err}");
}

/// A base port B such that B+1..3, B+101..103 and H+1..3 are free now. All
/// below 32768, out of the kernel's ephemeral range, so the many outgoing
/// connections and `:0` binds of parallel tests cannot take them meanwhile.
fn free_base_ports() -> (u16, u16) {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(7);
    let seed = (std::process::id() as u64).wrapping_mul(2654435761) ^ nanos;
    for i in 0..500u64 {
        // base in 20000..25900 (nodes up to base+103), HTTP in 26000..31900.
        let slot = ((seed.wrapping_add(i * 7919)) % 59) as u16;
        let base = 20_000 + slot * 100 + (i % 97) as u16 % 3;
        let http = 26_000 + slot * 100 + (i % 89) as u16 % 7;
        let ports = [1, 2, 3, 101, 102, 103].map(|o| base + o);
        if ports.iter().all(|&p| free(p)) && [1, 2, 3].iter().all(|&o| free(http + o)) {
            return (base, http);
        }
    }
    panic!("no free port range found");
}

/// A `cluster up` data directory: on drop, even when an assertion failed,
/// its cluster is stopped and `unmount` (a disk mounted under it) unmounted.
struct ClusterDir {
    dir: tempfile::TempDir,
    unmount: Option<std::path::PathBuf>,
}

impl ClusterDir {
    fn new() -> ClusterDir {
        ClusterDir {
            dir: tempfile::tempdir().unwrap(),
            unmount: None,
        }
    }
}

impl Drop for ClusterDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new(BIN)
            .args(["cluster", "down", "--data-dir"])
            .arg(self.dir.path())
            .output();
        if let Some(m) = &self.unmount {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(m)
                .output();
        }
    }
}

/// The binary with `args` and `--data-dir dir`: whether it succeeded, and
/// what it printed (stdout, then stderr).
fn run_in(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn cluster_up_drill_leader_loss_and_down() {
    let guard = ClusterDir::new();
    let dir = &guard.dir;
    let (base, http) = free_base_ports();
    let run = |args: &[&str]| run_in(dir.path(), args);
    let up = [
        "cluster",
        "up",
        "--base-port",
        &base.to_string(),
        "--http-base-port",
        &http.to_string(),
    ];
    // A port in use: refused before anything starts, naming port and node.
    let squatter = std::net::TcpListener::bind(("127.0.0.1", base + 102)).unwrap();
    let (ok, text) = run(&up);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("port {} (interserver port of node 2)", base + 102)),
        "{text}"
    );
    drop(squatter);
    let (ok, text) = run(&up);
    assert!(ok, "{text}");
    assert!(text.contains("1:active,2:active,3:active"), "{text}");
    let (ok, text) = run(&["drill", "leader-loss"]);
    assert!(ok, "{text}");
    // A graceful stop of the leader hands leadership over.
    let (ok, text) = run(&["drill", "leader-loss", "--signal", "term"]);
    assert!(
        text.contains("SIGTERM -> first write under the new leader"),
        "{text}"
    );
    let leader_text = text;
    // The workload drills: every acknowledged row on every replica once.
    for drill in [
        &["drill", "replica-loss", "--hold", "2", "--json"][..],
        &["drill", "pause", "--hold", "2", "--json"],
        &["drill", "full-restart", "--hold", "1", "--json"],
        &["drill", "partition", "--hold", "2", "--json"],
    ] {
        let done = std::process::Command::new(BIN)
            .args(drill)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&done.stdout);
        let err = String::from_utf8_lossy(&done.stderr);
        assert!(done.status.success(), "{drill:?}: {out}{err}");
        let report: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{drill:?}: not JSON ({e}): {out}{err}"));
        assert_eq!(report["held"], true, "{out}");
        assert!(report["rows_acknowledged"].as_u64().unwrap() > 0, "{out}");
    }
    let (ok, text) = (ok, leader_text);
    let (_, status) = run(&["cluster", "status"]);
    let (down_ok, down) = run(&["cluster", "down"]);
    assert!(ok, "{text}\n{status}");
    assert!(
        text.contains("write committed before the kill still there  yes"),
        "{text}"
    );
    assert!(status.matches(" up ").count() == 3, "{status}");
    assert!(
        status.contains(" lag") && status.matches(" 0s").count() == 3,
        "{status}"
    );
    assert!(down_ok, "{down}");
}

/// `drill disk-full` fills a node's own file system for real: node 3's
/// directory is a small tmpfs of its own (as in production, one disk per
/// node), nodes 1 and 2 share the test's. Needs root (mount).
#[test]
fn cluster_up_drill_disk_full_fills_a_disk_of_its_own_and_refuses_a_shared_one() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the disk-full drill's test mounts a tmpfs (run as root)");
        return;
    }
    let mut guard = ClusterDir::new();
    let dir = guard.dir.path().to_path_buf();
    let node3 = dir.join("node3");
    std::fs::create_dir_all(&node3).unwrap();
    guard.unmount = Some(node3.clone());
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=96m", "tmpfs"])
        .arg(&node3)
        .output()
        .unwrap();
    assert!(mounted.status.success(), "{mounted:?}");
    let (base, http) = free_base_ports();
    let run = |args: &[&str]| run_in(&dir, args);
    let (ok, text) = run(&[
        "cluster",
        "up",
        "--base-port",
        &base.to_string(),
        "--http-base-port",
        &http.to_string(),
    ]);
    assert!(ok, "{text}");
    // Nodes 1 and 2 share a file system with each other (and this
    // machine): refused without the operator's consent, nothing filled.
    let (ok, text) = run(&["drill", "disk-full", "--node", "1"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("with nodes [1, 2]") && text.contains("--shared-disk"),
        "{text}"
    );
    let (ok, text) = run(&["drill", "disk-full", "--node", "3", "--hold", "3", "--json"]);
    assert!(ok, "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(report["held"], true, "{text}");
    assert_eq!(report["nodes"], serde_json::json!([3]), "{text}");
    assert!(report["rows_acknowledged"].as_u64().unwrap() > 0, "{text}");
    // The space is back, and every node runs.
    assert!(!node3.join("drill-disk-full-balloon").exists());
    let (ok, status) = run(&["cluster", "status"]);
    assert!(ok && status.matches(" up ").count() == 3, "{status}");
}

async fn sql(c: &TestCluster, node: u64, q: &str) -> Result<String, qh_client::ClientError> {
    c.sql(node, q).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cluster_ddl_runs_on_every_node_and_catches_up_late_ones() {
    let mut c = start(3, &[]);
    c.leader(&c.all(), LONG).await.unwrap();
    let out = sql(&c, 2, "CREATE DATABASE analytics ON CLUSTER default")
        .await
        .unwrap();
    assert_eq!(out.lines().count(), 3, "one row per host: {out}");
    for n in c.all() {
        assert_eq!(
            sql(&c, n, "EXISTS DATABASE analytics")
                .await
                .unwrap()
                .trim(),
            "1",
            "node {n}"
        );
    }
    sql(
        &c,
        1,
        "CREATE TABLE analytics.t ON CLUSTER default (a UInt64) ENGINE = MergeTree ORDER BY a",
    )
    .await
    .unwrap();
    for n in c.all() {
        assert_eq!(
            sql(&c, n, "EXISTS TABLE analytics.t").await.unwrap().trim(),
            "1",
            "node {n}"
        );
    }
    // A failure on the hosts comes back with its code and the host named.
    let err = sql(
        &c,
        3,
        "CREATE TABLE analytics.t ON CLUSTER default (a UInt64) ENGINE = MergeTree ORDER BY a",
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("There was an error on ["), "{err}");
    // A node that is down: the initiator times out (159), the node catches up when back.
    c.kill(3);
    let mut session = qh_client::Client::connect(&[c.client_endpoint(1)])
        .await
        .unwrap();
    session
        .query("SET distributed_ddl_task_timeout = 2")
        .await
        .unwrap();
    let late =
        "CREATE TABLE analytics.late ON CLUSTER default (a UInt8) ENGINE = MergeTree ORDER BY a";
    let err = session.query(late).await.unwrap_err().to_string();
    assert!(err.contains("TIMEOUT_EXCEEDED"), "{err}");
    assert_eq!(
        sql(&c, 2, "EXISTS TABLE analytics.late")
            .await
            .unwrap()
            .trim(),
        "1"
    );
    c.spawn(3).unwrap();
    c.wait_for("node 3 to run the queued DDL", LONG, || async {
        sql(&c, 3, "EXISTS TABLE analytics.late")
            .await
            .ok()
            .filter(|o| o.trim() == "1")
    })
    .await
    .unwrap();
}
