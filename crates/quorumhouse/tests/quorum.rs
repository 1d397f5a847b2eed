//! `insert_quorum` by stage-then-commit, across real processes: an ack means
//! N replicas hold (and show) the rows; too few live replicas fail fast with
//! nothing written; a stager dying mid-transfer is a definite failure or is
//! replaced; a coordinator failover leaves every retried row exactly once;
//! concurrent quorum inserts through a node restart lose and double nothing.
//! Every wait polls a condition with a generous bound.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jepsen_like_tests::TestCluster;

const BIN: &str = env!("CARGO_BIN_EXE_quorumhouse");
const LONG: Duration = Duration::from_secs(60);

const EVENTS: &str = "CREATE TABLE events (id UInt64, v String) \
     ENGINE = ReplicatedMergeTree('/tables/events', '{replica}') ORDER BY id";

fn start(n: u64) -> TestCluster {
    TestCluster::start(Path::new(BIN), n, &[]).expect("cluster starts")
}

async fn ok(c: &TestCluster, node: u64, q: &str) -> String {
    match c.sql(node, q).await {
        Ok(t) => t,
        Err(e) => panic!("node {node}: {q}: {e}"),
    }
}

async fn setup(c: &TestCluster, nodes: &[u64]) {
    c.leader(&c.all(), LONG).await.unwrap();
    for n in nodes {
        ok(c, *n, EVENTS).await;
    }
    c.live_replicas(nodes[0], "events", nodes.len(), LONG)
        .await
        .unwrap();
}

fn insert(quorum: &str, ids: std::ops::Range<u64>) -> String {
    let rows: Vec<String> = ids.map(|i| format!("({i}, 'row {i}')")).collect();
    format!(
        "INSERT INTO events SETTINGS insert_quorum = {quorum} VALUES {}",
        rows.join(", ")
    )
}

/// Every staging directory under a node's data dir.
fn staging_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "staging") {
                    out.push(p);
                } else {
                    stack.push(p);
                }
            }
        }
    }
    out
}

/// Names in a node's staging areas (transfers in progress start with `tmp_`).
fn staged(c: &TestCluster, node: u64) -> Vec<String> {
    staging_dirs(&c.data_dir(node))
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_means_every_holder_shows_the_rows_and_too_few_replicas_fail_fast() {
    let mut c = start(3);
    setup(&c, &[1, 2, 3]).await;
    let mut expected = 0u64;
    for i in 0..12u64 {
        let writer = i % 3 + 1;
        ok(&c, writer, &insert("3", i * 10..i * 10 + 10)).await;
        expected += 10;
        // No SYNC REPLICA: every holder shows an acknowledged insert at once.
        for n in 1..=3 {
            let q = if n % 2 == 0 {
                "SELECT count() FROM events SETTINGS select_sequential_consistency = 1"
            } else {
                "SELECT count() FROM events"
            };
            assert_eq!(
                ok(&c, n, q).await,
                format!("{expected}\n"),
                "node {n} after insert {i}"
            );
        }
    }
    // Each insert staged on all three and committed once: holders recorded.
    let staged_parts = ok(
        &c,
        2,
        "SELECT count() FROM system.parts WHERE table = 'events' AND active",
    )
    .await;
    assert_ne!(staged_parts, "0\n");

    c.kill(3);
    let begun = Instant::now();
    let err = c.sql(1, &insert("3", 1000..1010)).await.unwrap_err();
    assert_eq!(err.code(), 285, "{err}");
    assert!(
        begun.elapsed() < Duration::from_secs(15),
        "took {:?}",
        begun.elapsed()
    );
    for n in 1..=2 {
        assert_eq!(
            ok(&c, n, "SELECT count() FROM events WHERE id >= 1000").await,
            "0\n"
        );
    }
    // Two of three is enough for insert_quorum = 2 and for 'auto' (majority).
    ok(&c, 1, &insert("2", 2000..2010)).await;
    ok(&c, 2, &insert("'auto'", 3000..3010)).await;
    for n in 1..=2 {
        assert_eq!(
            ok(&c, n, "SELECT count() FROM events WHERE id >= 2000 SETTINGS select_sequential_consistency = 1").await,
            "20\n"
        );
    }
    // Once node 3's lease lapsed, the check itself refuses, with ClickHouse's text.
    let text = c
        .wait_for("the dead replica's lease lapses", LONG, || async {
            let e = c.sql(2, &insert("3", 4000..4010)).await.unwrap_err();
            assert_eq!(e.code(), 285, "{e}");
            let t = e.to_string();
            t.contains("Number of alive replicas").then_some(t)
        })
        .await
        .unwrap();
    assert!(
        text.contains("Number of alive replicas (2) is less than requested quorum (3/3)."),
        "{text}"
    );
    // Nothing of the failed inserts anywhere, and their staged copies are gone.
    c.wait_for("staging areas empty", LONG, || async {
        (staged(&c, 1).is_empty() && staged(&c, 2).is_empty()).then_some(())
    })
    .await
    .unwrap();
    c.spawn(3).unwrap();
    c.wait_for("node 3 answers", LONG, || async {
        c.sql(3, "SELECT 1").await.ok()
    })
    .await
    .unwrap();
    for n in 1..=3 {
        ok(&c, n, "SYSTEM SYNC REPLICA events").await;
        assert_eq!(
            ok(&c, n, "SELECT count(), uniqExact(id), countIf(id >= 4000 OR (id >= 1000 AND id < 2000)) FROM events").await,
            format!("{}\t{}\t0\n", expected + 20, expected + 20),
            "node {n}"
        );
    }
    // A replica that lacks an acknowledged quorum part refuses sequential reads.
    c.kill(3);
    ok(&c, 1, &insert("2", 5000..5001)).await;
    c.spawn(3).unwrap();
    c.wait_for("node 3 answers", LONG, || async {
        c.sql(3, "SELECT 1").await.ok()
    })
    .await
    .unwrap();
    ok(&c, 3, "SYSTEM SYNC REPLICA events").await;
    assert_eq!(
        ok(
            &c,
            3,
            "SELECT count() FROM events WHERE id = 5000 SETTINGS select_sequential_consistency = 1"
        )
        .await,
        "1\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_inserts_are_deduplicated_across_quorums() {
    let c = start(3);
    setup(&c, &[1, 2, 3]).await;
    let q = "INSERT INTO events SETTINGS insert_quorum = 2, insert_deduplication_token = 'batch-42' VALUES (1, 'a'), (2, 'b')";
    ok(&c, 1, q).await;
    ok(&c, 2, q).await;
    // Same data, no token: the data's hash is the block id.
    let d = "INSERT INTO events SETTINGS insert_quorum = 3 VALUES (7, 'x')";
    ok(&c, 3, d).await;
    ok(&c, 1, d).await;
    // A duplicate asking for a higher quorum than the original waits for it.
    let low = "INSERT INTO events SETTINGS insert_quorum = 2 VALUES (8, 'y')";
    let high = "INSERT INTO events SETTINGS insert_quorum = 3 VALUES (8, 'y')";
    ok(&c, 2, low).await;
    ok(&c, 3, high).await;
    for n in 1..=3 {
        ok(&c, n, "SYSTEM SYNC REPLICA events").await;
        assert_eq!(
            ok(&c, n, "SELECT count(), sum(id) FROM events").await,
            "4\t18\n"
        );
    }
    // An insert spanning partitions commits one part per partition, all at once.
    for n in 1..=3 {
        ok(
            &c,
            n,
            "CREATE TABLE parted (id UInt64) ENGINE = ReplicatedMergeTree('/tables/parted', '{replica}') \
             PARTITION BY id % 3 ORDER BY id",
        )
        .await;
    }
    ok(
        &c,
        2,
        "INSERT INTO parted SETTINGS insert_quorum = 3 SELECT number FROM numbers(30)",
    )
    .await;
    for n in 1..=3 {
        assert_eq!(
            ok(&c, n, "SELECT count() FROM parted").await,
            "30\n",
            "node {n}"
        );
        assert_eq!(
            ok(
                &c,
                n,
                "SELECT count() FROM system.parts WHERE table = 'parted' AND active"
            )
            .await,
            "3\n",
            "node {n}"
        );
    }
    // insert_quorum_parallel = 0 still inserts when nothing else is pending.
    ok(
        &c,
        1,
        "INSERT INTO events SETTINGS insert_quorum = 3, insert_quorum_parallel = 0 VALUES (9, 'z')",
    )
    .await;
    let bad = c
        .sql(
            1,
            "INSERT INTO events SETTINGS insert_quorum = 'many' VALUES (10, 'z')",
        )
        .await
        .unwrap_err();
    assert_eq!(bad.code(), 36, "{bad}");
}

/// Starts a big quorum insert on node 1, kills the first other node seen
/// receiving it, and returns the insert's outcome and the killed node.
async fn kill_a_stager_mid_transfer(
    c: &mut TestCluster,
    others: &[u64],
    quorum: u64,
) -> (Result<String, qh_client::ClientError>, u64) {
    let endpoint = c.client_endpoint(1);
    let q = format!(
        "INSERT INTO big SETTINGS insert_quorum = {quorum} \
         SELECT number, toString(number * 2654435761 % 1000000007) FROM numbers(4000000)"
    );
    let insert = async move {
        let mut client = qh_client::Client::connect(&[endpoint]).await?;
        client.query(&q).await.map(|_| String::new())
    };
    tokio::pin!(insert);
    let deadline = Instant::now() + LONG;
    let victim = loop {
        if let Some(n) = others
            .iter()
            .find(|n| staged(c, **n).iter().any(|s| s.starts_with("tmp_")))
        {
            break *n;
        }
        assert!(Instant::now() < deadline, "no staging transfer seen");
        tokio::select! {
            r = &mut insert => panic!("the insert ended before any transfer was seen: {r:?}"),
            _ = tokio::time::sleep(Duration::from_millis(2)) => {}
        }
    };
    c.kill(victim);
    (insert.await, victim)
}

const BIG: &str = "CREATE TABLE big (id UInt64, v String) \
     ENGINE = ReplicatedMergeTree('/tables/big', '{replica}') ORDER BY id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stager_killed_mid_transfer_fails_definitely_or_is_replaced() {
    let mut c = start(3);
    c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=3 {
        ok(&c, n, BIG).await;
    }
    let begun = Instant::now();
    let (outcome, victim) = kill_a_stager_mid_transfer(&mut c, &[2, 3], 3).await;
    let err = outcome.expect_err("a quorum of 3 cannot be staged with a stager dead");
    assert_eq!(err.code(), 285, "{err}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert!(begun.elapsed() < LONG, "took {:?}", begun.elapsed());
    let alive: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != victim).collect();
    for n in &alive {
        assert_eq!(ok(&c, *n, "SELECT count() FROM big").await, "0\n");
    }
    c.wait_for("staging areas empty", LONG, || async {
        alive
            .iter()
            .all(|n| staged(&c, *n).is_empty())
            .then_some(())
    })
    .await
    .unwrap();
    c.spawn(victim).unwrap();
    c.wait_for("the victim answers", LONG, || async {
        c.sql(victim, "SELECT 1").await.ok()
    })
    .await
    .unwrap();
    ok(&c, victim, "SYSTEM SYNC REPLICA big").await;
    assert_eq!(ok(&c, victim, "SELECT count() FROM big").await, "0\n");
    assert!(staged(&c, victim).is_empty(), "{:?}", staged(&c, victim));

    // With four replicas the spare one, staged in parallel with the others
    // (hedged staging), takes the dead target's place.
    let mut c = start(4);
    c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=4 {
        ok(&c, n, BIG).await;
    }
    let (outcome, victim) = kill_a_stager_mid_transfer(&mut c, &[2, 3, 4], 3).await;
    outcome.expect("a spare replica takes the dead target's place");
    let holders: Vec<u64> = [1, 2, 3, 4].into_iter().filter(|n| *n != victim).collect();
    for n in holders {
        assert_eq!(
            ok(&c, n, "SELECT count() FROM big").await,
            "4000000\n",
            "node {n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_during_commits_leaves_retried_rows_exactly_once() {
    let mut c = start(3);
    let leader = c.leader(&c.all(), LONG).await.unwrap();
    setup(&c, &[1, 2, 3]).await;
    let writer = if leader == 1 { 2 } else { 1 };
    let q = |i: u64| {
        format!(
            "INSERT INTO events SETTINGS insert_quorum = 2, insert_deduplication_token = 'b{i}' \
             VALUES ({i}, 'a'), ({}, 'b')",
            i + 1000
        )
    };
    let mut outcomes = BTreeSet::new();
    for i in 0..30u64 {
        if i == 8 {
            c.kill(leader);
        }
        c.wait_for(&format!("insert {i} acknowledged"), LONG, || async {
            match c.sql(writer, &q(i)).await {
                Ok(_) => Some(()),
                Err(e) => {
                    assert!(
                        [242, 285, 319].contains(&e.code()),
                        "unexpected error during failover: {e}"
                    );
                    None
                }
            }
        })
        .await
        .unwrap();
        outcomes.insert(i);
    }
    c.spawn(leader).unwrap();
    c.wait_for("the old leader answers", LONG, || async {
        c.sql(leader, "SELECT 1").await.ok()
    })
    .await
    .unwrap();
    for n in 1..=3 {
        ok(&c, n, "SYSTEM SYNC REPLICA events").await;
        assert_eq!(
            ok(&c, n, "SELECT count(), uniqExact(id) FROM events").await,
            "60\t60\n",
            "node {n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_quorum_inserts_through_a_node_restart_lose_and_double_nothing() {
    let mut c = start(3);
    setup(&c, &[1, 2, 3]).await;
    let endpoints = [c.client_endpoint(1), c.client_endpoint(2)];
    const CLIENTS: u64 = 8;
    const PER_CLIENT: u64 = 125;
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let failed = Arc::new(Mutex::new(Vec::<u64>::new()));
    let unknown = Arc::new(Mutex::new(Vec::<u64>::new()));
    let mut tasks = Vec::new();
    for k in 0..CLIENTS {
        let ep = endpoints[(k % 2) as usize].clone();
        let (acked, failed, unknown) = (acked.clone(), failed.clone(), unknown.clone());
        tasks.push(async move {
            let mut client = qh_client::Client::connect(&[ep]).await.unwrap();
            for j in 0..PER_CLIENT {
                let id = k * 10_000 + j;
                let q =
                    format!("INSERT INTO events SETTINGS insert_quorum = 2 VALUES ({id}, 'c{k}')");
                match client.query(&q).await {
                    Ok(_) => acked.lock().unwrap().push(id),
                    // Definite: nothing was written.
                    Err(e) if [285, 242].contains(&e.code()) => failed.lock().unwrap().push(id),
                    Err(_) => unknown.lock().unwrap().push(id),
                }
            }
        });
    }
    // Kill node 3 (a stager of many of the inserts) while they run, then
    // restart it while they still run.
    let controller = async {
        let count = |v: &Arc<Mutex<Vec<u64>>>| v.lock().unwrap().len();
        let deadline = Instant::now() + LONG * 2;
        while count(&acked) < 150 {
            assert!(Instant::now() < deadline, "inserts do not progress");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        c.kill(3);
        let at_kill = count(&acked);
        while count(&acked) < at_kill + 200 {
            assert!(Instant::now() < deadline, "inserts stopped after the kill");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        c.spawn(3).unwrap();
    };
    tokio::join!(futures::future::join_all(tasks), controller);
    let acked: BTreeSet<u64> = acked.lock().unwrap().iter().copied().collect();
    let failed: BTreeSet<u64> = failed.lock().unwrap().iter().copied().collect();
    let unknown: BTreeSet<u64> = unknown.lock().unwrap().iter().copied().collect();
    assert_eq!(
        acked.len() + failed.len() + unknown.len(),
        (CLIENTS * PER_CLIENT) as usize
    );
    assert!(
        acked.len() >= 800,
        "only {} of 1000 acknowledged",
        acked.len()
    );
    c.wait_for("node 3 answers", LONG, || async {
        c.sql(3, "SELECT 1").await.ok()
    })
    .await
    .unwrap();
    for n in 1..=3u64 {
        ok(&c, n, "SYSTEM SYNC REPLICA events").await;
        let ids: Vec<u64> = ok(&c, n, "SELECT id FROM events ORDER BY id")
            .await
            .lines()
            .map(|l| l.parse().expect("an id"))
            .collect();
        let set: BTreeSet<u64> = ids.iter().copied().collect();
        assert_eq!(set.len(), ids.len(), "node {n}: duplicated rows");
        let missing: Vec<&u64> = acked.difference(&set).take(5).collect();
        assert!(
            missing.is_empty(),
            "node {n}: acknowledged rows missing: {missing:?}"
        );
        let bad: Vec<&u64> = set.intersection(&failed).take(5).collect();
        assert!(bad.is_empty(), "node {n}: rows of failed inserts: {bad:?}");
        assert!(
            set.difference(&acked).all(|id| unknown.contains(id)),
            "node {n}: rows nobody inserted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_files_default_profile_makes_every_insert_a_quorum_insert() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "lease_ttl_ms = 3000\n[profiles.default]\ninsert_quorum = 3\n",
    )
    .unwrap();
    let mut c = TestCluster::start(Path::new(BIN), 3, &["--config", config.to_str().unwrap()])
        .expect("cluster starts");
    setup(&c, &[1, 2, 3]).await;
    ok(&c, 1, "INSERT INTO events VALUES (1, 'a')").await;
    c.kill(3);
    // No SETTINGS, no SET: the profile asks for 3 replicas.
    let e = c
        .sql(1, "INSERT INTO events VALUES (2, 'b')")
        .await
        .unwrap_err();
    assert_eq!(e.code(), 285, "{e}");
    ok(
        &c,
        1,
        "INSERT INTO events SETTINGS insert_quorum = 2 VALUES (3, 'c')",
    )
    .await;
    assert_eq!(ok(&c, 2, "SELECT count() FROM events").await, "2\n");
}
