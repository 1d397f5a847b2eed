//! ReplicatedMergeTree across real processes: inserts on any replica reach
//! all of them with identical parts, a killed replica catches up, merges
//! (background and OPTIMIZE FINAL) converge byte for byte, a corrupted part is
//! detected and fetched again, and inserts survive a coordinator failover.
//! Every wait polls a condition with a generous bound.

use std::path::Path;
use std::time::Duration;

use jepsen_like_tests::{CoordinatorProbe, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_quorumhouse");
const LONG: Duration = Duration::from_secs(60);

fn start(n: u64) -> TestCluster {
    TestCluster::start(Path::new(BIN), n, &[]).expect("cluster starts")
}

async fn sql(c: &TestCluster, node: u64, q: &str) -> Result<String, qh_client::ClientError> {
    c.sql(node, q).await
}

async fn ok(c: &TestCluster, node: u64, q: &str) -> String {
    match sql(c, node, q).await {
        Ok(t) => t,
        Err(e) => panic!("node {node}: {q}: {e}"),
    }
}

const EVENTS: &str = "CREATE TABLE events (ts DateTime, id UInt64, v String) \
     ENGINE = ReplicatedMergeTree('/tables/events', '{replica}') ORDER BY id";

/// Active parts with their checksums, as one comparable text.
async fn parts(c: &TestCluster, node: u64, table: &str) -> Option<String> {
    sql(
        c,
        node,
        &format!(
            "SELECT name, hash_of_all_files FROM system.parts \
             WHERE table = '{table}' AND active = 1 ORDER BY name"
        ),
    )
    .await
    .ok()
}

/// Waits until every node answers `q` the same, non-empty, and returns it.
async fn converge(c: &TestCluster, nodes: &[u64], q: &str) -> String {
    c.wait_for(&format!("all replicas agree on {q}"), LONG, || async {
        let mut seen = Vec::new();
        for n in nodes {
            seen.push(sql(c, *n, q).await.ok()?);
        }
        (seen.iter().all(|s| *s == seen[0]) && !seen[0].is_empty()).then(|| seen[0].clone())
    })
    .await
    .expect("replicas converge")
}

async fn same_parts(c: &TestCluster, nodes: &[u64], table: &str) -> String {
    c.wait_for("identical part sets and checksums", LONG, || async {
        let mut seen = Vec::new();
        for n in nodes {
            seen.push(parts(c, *n, table).await?);
        }
        (seen.iter().all(|s| *s == seen[0]) && !seen[0].is_empty()).then(|| seen[0].clone())
    })
    .await
    .expect("replicas converge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_on_every_replica_converge_to_identical_parts() {
    let c = start(3);
    c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=3 {
        ok(&c, n, EVENTS).await;
    }
    // A different definition for the same path is refused, clearly.
    let err = sql(
        &c,
        1,
        "CREATE TABLE other (id UInt32) ENGINE = ReplicatedMergeTree('/tables/events', 'x') ORDER BY id",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), 342, "{err}");
    assert!(err.to_string().contains("columns"), "{err}");
    // The same replica name twice is refused too.
    let err = sql(
        &c,
        1,
        "CREATE TABLE events2 (ts DateTime, id UInt64, v String) ENGINE = ReplicatedMergeTree('/tables/events', 'node2') ORDER BY id",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), 253, "{err}");

    for round in 0..3u64 {
        for n in 1..=3u64 {
            let id = round * 10 + n;
            ok(
                &c,
                n,
                &format!(
                    "INSERT INTO events VALUES ('2024-01-01 00:00:00', {id}, 'from node {n}')"
                ),
            )
            .await;
        }
    }
    for n in 1..=3 {
        ok(&c, n, "SYSTEM SYNC REPLICA events").await;
        let count = ok(&c, n, "SELECT count(), sum(id) FROM events").await;
        assert_eq!(count, "9\t108\n", "node {n}");
    }
    let set = same_parts(&c, &[1, 2, 3], "events").await;
    assert!(!set.is_empty());
    let replicas = ok(
        &c,
        3,
        "SELECT replica_name, total_replicas, active_replicas, is_readonly FROM system.replicas",
    )
    .await;
    assert_eq!(replicas, "node3\t3\t3\t0\n");
    // The insert's rows are visible on the writer at once.
    ok(
        &c,
        2,
        "INSERT INTO events VALUES ('2024-01-01 00:00:00', 100, 'x')",
    )
    .await;
    assert_eq!(
        ok(&c, 2, "SELECT count() FROM events WHERE id = 100").await,
        "1\n"
    );

    // ALTER goes through the log to every replica.
    ok(&c, 1, "ALTER TABLE events ADD COLUMN extra UInt8 DEFAULT 7").await;
    ok(&c, 3, "SYSTEM SYNC REPLICA events").await;
    assert_eq!(
        ok(&c, 3, "SELECT extra FROM events WHERE id = 100").await,
        "7\n"
    );
    // MODIFY COLUMN too; every replica reads the old part's 200 as CAST
    // to Int8 would (-56), and the DEFAULT stays.
    ok(
        &c,
        2,
        "INSERT INTO events VALUES ('2024-01-01 00:00:00', 101, 'y', 200)",
    )
    .await;
    ok(&c, 2, "ALTER TABLE events MODIFY COLUMN extra Int8").await;
    for n in [1, 3] {
        ok(&c, n, "SYSTEM SYNC REPLICA events").await;
        assert_eq!(
            ok(
                &c,
                n,
                "SELECT id, extra, toTypeName(extra) FROM events WHERE id >= 100 ORDER BY id"
            )
            .await,
            "100\t7\tInt8\n101\t-56\tInt8\n"
        );
    }
    // TRUNCATE on one replica empties every replica.
    ok(&c, 2, "TRUNCATE TABLE events").await;
    for n in 1..=3 {
        ok(&c, n, "SYSTEM SYNC REPLICA events").await;
        assert_eq!(ok(&c, n, "SELECT count() FROM events").await, "0\n");
    }
    // Dropped on every replica, the table leaves the coordinator: its path
    // takes a new definition.
    for n in 1..=3 {
        ok(&c, n, "DROP TABLE events").await;
    }
    ok(
        &c,
        1,
        "CREATE TABLE other (id UInt32) ENGINE = ReplicatedMergeTree('/tables/events', 'x') ORDER BY id",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_catches_up_and_unexpected_parts_are_detached() {
    let mut c = start(3);
    c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=3 {
        ok(&c, n, EVENTS).await;
    }
    ok(
        &c,
        1,
        "INSERT INTO events VALUES ('2024-01-01 00:00:00', 0, 'before')",
    )
    .await;
    ok(&c, 3, "SYSTEM SYNC REPLICA events").await;
    for i in 1..=20u64 {
        if i == 5 {
            c.kill(3);
        }
        let node = if i % 2 == 0 { 1 } else { 2 };
        ok(
            &c,
            node,
            &format!("INSERT INTO events VALUES ('2024-01-01 00:00:00', {i}, 'during')"),
        )
        .await;
    }
    // A part the coordinator never heard of (e.g. an insert that crashed
    // before its commit) must be set aside at start-up, not served or deleted.
    let table_dir = c.data_dir(3).join("data/default/events");
    let existing = std::fs::read_dir(&table_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("all_"))
        .unwrap();
    copy_dir(&existing, &table_dir.join("all_999_999_0"));
    c.spawn(3).unwrap();
    c.wait_for("node 3 answers", LONG, || async {
        sql(&c, 3, "SELECT 1").await.ok()
    })
    .await
    .unwrap();
    ok(&c, 3, "SYSTEM SYNC REPLICA events").await;
    assert_eq!(
        ok(&c, 3, "SELECT count(), sum(id) FROM events").await,
        "21\t210\n"
    );
    same_parts(&c, &[1, 2, 3], "events").await;
    assert!(table_dir.join("detached/unexpected_all_999_999_0").is_dir());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_under_concurrent_inserts_converge_and_replacing_collapses_after_optimize_final() {
    let c = start(3);
    c.leader(&c.all(), LONG).await.unwrap();
    // ON CLUSTER: every node creates its replica through the DDL queue.
    ok(
        &c,
        1,
        "CREATE TABLE r ON CLUSTER default (k UInt64, ver UInt64, v String) \
         ENGINE = ReplicatedReplacingMergeTree('/tables/{shard}/r', '{replica}', ver) \
         PARTITION BY k % 2 ORDER BY k",
    )
    .await;
    // Three writers at once, overlapping keys: background merges run meanwhile.
    let writers = (1..=3u64).map(|n| {
        let c = &c;
        async move {
            for i in 0..12u64 {
                let ver = n * 100 + i;
                let q = format!(
                    "INSERT INTO r VALUES ({k}, {ver}, 'n{n}'), ({k2}, {ver}, 'n{n}')",
                    k = i % 6,
                    k2 = 6 + (i + n) % 4
                );
                ok(c, n, &q).await;
            }
        }
    });
    futures::future::join_all(writers).await;
    // The merge assigner merged in the background while the inserts ran.
    c.wait_for("a background merge", LONG, || async {
        let l = sql(
            &c,
            3,
            "SELECT max(level) FROM system.parts WHERE table = 'r' AND active",
        )
        .await
        .ok()?;
        (l.trim().parse::<u64>().ok()? >= 1).then_some(())
    })
    .await
    .unwrap();
    for n in 1..=3 {
        ok(&c, n, "SYSTEM SYNC REPLICA r").await;
    }
    // Background merges: every replica ends with the same parts, byte for byte.
    same_parts(&c, &[1, 2, 3], "r").await;
    let final_rows = ok(&c, 1, "SELECT k, ver FROM r FINAL ORDER BY k").await;
    assert_eq!(final_rows.lines().count(), 10, "{final_rows}");

    ok(&c, 2, "OPTIMIZE TABLE r FINAL").await;
    // OPTIMIZE waits for its own replica: one part per partition at once.
    let parts2 = ok(
        &c,
        2,
        "SELECT partition_id, count() FROM system.parts WHERE table = 'r' AND active GROUP BY partition_id ORDER BY partition_id",
    )
    .await;
    assert_eq!(parts2, "0\t1\n1\t1\n");
    for n in 1..=3 {
        ok(&c, n, "SYSTEM SYNC REPLICA r").await;
    }
    let set = same_parts(&c, &[1, 2, 3], "r").await;
    assert_eq!(set.lines().count(), 2, "{set}");
    // Collapsed by key on every replica: plain reads now equal FINAL.
    let rows = converge(&c, &[1, 2, 3], "SELECT k, ver FROM r ORDER BY k").await;
    assert_eq!(rows, final_rows);
    // Highest version wins for each key.
    assert!(rows.starts_with("0\t306\n"), "{rows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_a_part_is_detected_and_fetched_again() {
    let c = start(3);
    c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=3 {
        ok(&c, n, EVENTS).await;
    }
    let rows: Vec<String> = (0..2000)
        .map(|i| format!("('2024-01-01 00:00:00', {i}, 'value {i}')"))
        .collect();
    ok(
        &c,
        1,
        &format!("INSERT INTO events VALUES {}", rows.join(",")),
    )
    .await;
    ok(&c, 2, "SYSTEM SYNC REPLICA events").await;
    let name = ok(
        &c,
        2,
        "SELECT name FROM system.parts WHERE table = 'events' AND active",
    )
    .await;
    let name = name.trim();
    let table_dir = c.data_dir(2).join("data/default/events");
    // A small part is compact: every column in data.bin, the last block
    // being v's.
    let file = table_dir.join(name).join("data.bin");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();

    // A read that hits the broken block fails with the checksum error...
    let err = sql(&c, 2, "SELECT count() FROM events WHERE v != ''")
        .await
        .unwrap_err();
    assert_eq!(err.code(), 40, "{err}");
    // ...and the replica detaches the part and fetches a good copy.
    let good = c
        .wait_for("the broken part is replaced", LONG, || async {
            let r = sql(&c, 2, "SELECT count(), sum(id) FROM events WHERE v != ''")
                .await
                .ok()?;
            (r == "2000\t1999000\n").then_some(r)
        })
        .await;
    assert!(good.is_ok());
    assert_eq!(ok(&c, 2, "CHECK TABLE events").await, "1\n");
    let detached: Vec<String> = std::fs::read_dir(table_dir.join("detached"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        detached.iter().any(|d| d == &format!("broken_{name}")),
        "{detached:?}"
    );
    same_parts(&c, &[1, 2, 3], "events").await;

    // CHECK TABLE finds damage that no query read yet.
    let file = table_dir.join(name).join("data.bin");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[20] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(ok(&c, 2, "CHECK TABLE events").await, "0\n");
    c.wait_for("the part is fetched again", LONG, || async {
        let r = sql(&c, 2, "SELECT count(), sum(id) FROM events")
            .await
            .ok()?;
        (r == "2000\t1999000\n").then_some(())
    })
    .await
    .unwrap();
    assert_eq!(ok(&c, 2, "CHECK TABLE events").await, "1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_resume_after_the_coordinator_leader_is_killed() {
    let mut c = start(3);
    let leader = c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=3 {
        ok(&c, n, EVENTS).await;
    }
    let writer = if leader == 1 { 2 } else { 1 };
    let insert =
        |i: u64| format!("INSERT INTO events VALUES ('2024-01-01 00:00:00', {i}, 'row {i}')");
    for i in 0..10 {
        ok(&c, writer, &insert(i)).await;
    }
    c.kill(leader);
    // Each insert is retried until it succeeds; a retry after an unknown
    // outcome is deduplicated, so every row lands exactly once.
    for i in 10..30 {
        c.wait_for(&format!("insert {i} succeeds"), LONG, || async {
            match sql(&c, writer, &insert(i)).await {
                Ok(_) => Some(()),
                Err(e) => {
                    assert!(
                        [242, 319, 999].contains(&e.code()),
                        "unexpected error during failover: {e}"
                    );
                    None
                }
            }
        })
        .await
        .unwrap();
    }
    c.spawn(leader).unwrap();
    c.wait_for("the old leader answers", LONG, || async {
        sql(&c, leader, "SELECT 1").await.ok()
    })
    .await
    .unwrap();
    for n in 1..=3 {
        ok(&c, n, "SYSTEM SYNC REPLICA events").await;
        assert_eq!(
            ok(&c, n, "SELECT count(), uniqExact(id), sum(id) FROM events").await,
            "30\t30\t435\n",
            "node {n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_far_behind_is_marked_lost_and_clones() {
    let mut c = start(3);
    c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=3 {
        ok(
            &c,
            n,
            "CREATE TABLE t (id UInt64) ENGINE = ReplicatedMergeTree('/tables/t', '{replica}') \
             ORDER BY id SETTINGS max_replicated_logs_to_keep = 5",
        )
        .await;
    }
    ok(&c, 1, "INSERT INTO t VALUES (0)").await;
    ok(&c, 3, "SYSTEM SYNC REPLICA t").await;
    c.kill(3);
    // Wait until node 3's lease lapsed: only an inactive replica is marked lost.
    c.wait_for("node 3 inactive", LONG, || async {
        let r = sql(
            &c,
            1,
            "SELECT active_replicas FROM system.replicas WHERE table = 't'",
        )
        .await
        .ok()?;
        (r == "2\n").then_some(())
    })
    .await
    .unwrap();
    for i in 1..=20 {
        ok(&c, 1 + i % 2, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    ok(&c, 1, "OPTIMIZE TABLE t FINAL").await;
    for i in 21..=25 {
        ok(&c, 2, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    c.spawn(3).unwrap();
    c.wait_for("node 3 answers", LONG, || async {
        sql(&c, 3, "SELECT 1").await.ok()
    })
    .await
    .unwrap();
    ok(&c, 3, "SYSTEM SYNC REPLICA t").await;
    assert_eq!(
        ok(&c, 3, "SELECT count(), sum(id) FROM t").await,
        "26\t325\n"
    );
    for n in 1..=2 {
        ok(&c, n, "SYSTEM SYNC REPLICA t").await;
    }
    same_parts(&c, &[1, 2, 3], "t").await;
    // The log stays short: it was trimmed past the lost replica.
    let status = ok(
        &c,
        1,
        "SELECT log_max_index, log_pointer FROM system.replicas WHERE table = 't'",
    )
    .await;
    let v: Vec<u64> = status
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(v[0] + 1 - v[1] <= 5, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_cut_off_from_the_coordinator_is_read_only_then_recovers_by_itself() {
    let c = start(3);
    c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=3 {
        ok(&c, n, EVENTS).await;
    }
    ok(
        &c,
        3,
        "INSERT INTO events VALUES ('2024-01-01 00:00:00', 1, 'a')",
    )
    .await;
    // Cut node 3 off from the other two (both directions).
    c.meta(3)
        .isolate(&std::collections::BTreeSet::from([1, 2]))
        .await
        .unwrap();
    for n in 1..=2 {
        c.meta(n)
            .isolate(&std::collections::BTreeSet::from([3]))
            .await
            .unwrap();
    }
    c.wait_for("node 3 read-only", LONG, || async {
        let r = sql(&c, 3, "SELECT is_readonly FROM system.replicas")
            .await
            .ok()?;
        (r == "1\n").then_some(())
    })
    .await
    .unwrap();
    let err = sql(
        &c,
        3,
        "INSERT INTO events VALUES ('2024-01-01 00:00:00', 2, 'b')",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), 242, "{err}");
    // Reads keep working on the isolated replica.
    assert_eq!(ok(&c, 3, "SELECT count() FROM events").await, "1\n");
    // The majority keeps accepting inserts.
    ok(
        &c,
        1,
        "INSERT INTO events VALUES ('2024-01-01 00:00:00', 3, 'c')",
    )
    .await;
    for n in 1..=3 {
        c.meta(n)
            .isolate(&std::collections::BTreeSet::new())
            .await
            .unwrap();
    }
    // No restart: the replica notices the coordinator is back.
    c.wait_for("an insert on node 3 succeeds again", LONG, || async {
        sql(
            &c,
            3,
            "INSERT INTO events VALUES ('2024-01-01 00:00:00', 4, 'd')",
        )
        .await
        .ok()
    })
    .await
    .unwrap();
    ok(&c, 3, "SYSTEM SYNC REPLICA events").await;
    assert_eq!(
        ok(&c, 3, "SELECT count(), sum(id) FROM events").await,
        "3\t8\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_nobody_can_send_does_not_wedge_the_queue() {
    let mut c = start(3);
    c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=3 {
        ok(&c, n, EVENTS).await;
    }
    for n in 2..=3 {
        ok(&c, n, "SYSTEM STOP FETCHES events").await;
    }
    // Only node 1 holds this part, and node 1 dies.
    ok(
        &c,
        1,
        "INSERT INTO events VALUES ('2024-01-01 00:00:00', 1, 'only on node 1')",
    )
    .await;
    c.kill(1);
    for n in 2..=3 {
        ok(&c, n, "SYSTEM START FETCHES events").await;
    }
    // Later parts still replicate while the first one cannot be fetched.
    // Node 1 may have led the coordinator: retry until a new leader takes the
    // insert (a retry of the same block is deduplicated).
    c.wait_for("an insert on node 2 after node 1 died", LONG, || async {
        sql(
            &c,
            2,
            "INSERT INTO events VALUES ('2024-01-01 00:00:00', 2, 'from node 2')",
        )
        .await
        .ok()
    })
    .await
    .unwrap();
    c.wait_for("node 2's part on node 3", LONG, || async {
        let r = sql(&c, 3, "SELECT count() FROM events WHERE id = 2")
            .await
            .ok()?;
        (r == "1\n").then_some(())
    })
    .await
    .unwrap();
    // Node 2's entry leaves the queue just after its part became visible;
    // the unreachable part's entry stays.
    c.wait_for(
        "only the unreachable part left in node 3's queue",
        LONG,
        || async {
            let q = sql(&c, 3, "SELECT inserts_in_queue FROM system.replicas")
                .await
                .ok()?;
            (q == "1\n").then_some(())
        },
    )
    .await
    .unwrap();
    // Its holder returns: the postponed part arrives without any action.
    c.spawn(1).unwrap();
    c.wait_for("node 1's part on node 3", LONG, || async {
        let r = sql(&c, 3, "SELECT count(), sum(id) FROM events")
            .await
            .ok()?;
        (r == "2\t3\n").then_some(())
    })
    .await
    .unwrap();
    ok(&c, 3, "SYSTEM SYNC REPLICA events").await;
}

/// A merge every replica postponed (each lacked a source at its
/// MERGE_PARTS entry, so nobody can send the result) completes after every
/// node restarts: recovery rebuilds what to merge from the coordinator's
/// records. It used to leave the result missing for good, and SYNC REPLICA
/// waited out its whole receive_timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_every_replica_postponed_completes_after_a_full_restart() {
    let mut c = start(3);
    c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=3 {
        ok(&c, n, EVENTS).await;
        ok(&c, n, "SYSTEM STOP FETCHES events").await;
    }
    ok(
        &c,
        1,
        "INSERT INTO events VALUES ('2024-01-01 00:00:00', 1, 'only on node 1')",
    )
    .await;
    ok(
        &c,
        2,
        "INSERT INTO events VALUES ('2024-01-01 00:00:00', 2, 'only on node 2')",
    )
    .await;
    // Node 3 holds neither source, so OPTIMIZE would wait for the merge
    // until its timeout: stop waiting once the merge is in the log.
    c.wait_for("the merge assigned", LONG, || async {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            sql(&c, 3, "OPTIMIZE TABLE events FINAL"),
        )
        .await;
        // Two inserts, then the merge.
        let r = sql(&c, 3, "SELECT log_max_index FROM system.replicas")
            .await
            .ok()?;
        (r.trim().parse::<u64>().ok()? >= 3).then_some(())
    })
    .await
    .unwrap();
    for n in 1..=3 {
        c.wait_for("the merge postponed on every replica", LONG, || async {
            let r = sql(
                &c,
                n,
                "SELECT log_pointer - log_max_index, queue_size FROM system.replicas",
            )
            .await
            .ok()?;
            let (executed, queue) = r.trim().split_once('\t')?;
            (executed == "1" && queue.parse::<u64>().ok()? >= 2).then_some(())
        })
        .await
        .unwrap();
    }
    for n in 1..=3 {
        c.kill(n);
    }
    for n in 1..=3 {
        c.spawn(n).unwrap();
    }
    c.leader(&c.all(), LONG).await.unwrap();
    converge(&c, &[1, 2, 3], "SELECT count(), sum(id) FROM events").await;
    assert_eq!(
        ok(&c, 3, "SELECT count(), sum(id) FROM events").await,
        "2\t3\n"
    );
    let merged = same_parts(&c, &[1, 2, 3], "events").await;
    assert_eq!(merged.lines().count(), 1, "{merged}");
    for n in 1..=3 {
        ok(&c, n, "SYSTEM SYNC REPLICA events").await;
    }
}

/// The built-in clusters: `default` (one shard of every node) and `sharded`
/// (every node its own shard). `{shard}` follows the cluster an ON CLUSTER
/// statement names, so the same engine arguments give one replicated table
/// or three independent shards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_and_sharded_clusters_place_shard_macros() {
    let c = start(3);
    c.leader(&c.all(), LONG).await.unwrap();
    let layout = ok(
        &c,
        2,
        "SELECT cluster, shard_num, replica_num, node_id, is_local FROM system.clusters \
         ORDER BY cluster, shard_num, replica_num",
    )
    .await;
    assert_eq!(
        layout,
        "default\t1\t1\t1\t0\ndefault\t1\t2\t2\t1\ndefault\t1\t3\t3\t0\n\
         sharded\t1\t1\t1\t0\nsharded\t2\t1\t2\t1\nsharded\t3\t1\t3\t0\n"
    );
    assert_eq!(
        ok(&c, 3, "SELECT macro, substitution FROM system.macros").await,
        "replica\tnode3\n"
    );

    // ON CLUSTER sharded: three shards, one replica each.
    let out = ok(
        &c,
        1,
        "CREATE TABLE s ON CLUSTER sharded (id UInt64) \
         ENGINE = ReplicatedMergeTree('/tables/{cluster}/{shard}/s', '{replica}') ORDER BY id",
    )
    .await;
    assert_eq!(out.lines().count(), 3, "{out}");
    for n in c.all() {
        assert_eq!(
            ok(
                &c,
                n,
                "SELECT zookeeper_path, total_replicas FROM system.replicas WHERE table = 's'"
            )
            .await,
            format!("/tables/sharded/{n}/s\t1\n")
        );
    }
    // Node 1's shard has one replica: a quorum of two cannot be met...
    let err = sql(&c, 1, "INSERT INTO s SETTINGS insert_quorum = 2 VALUES (1)")
        .await
        .unwrap_err();
    assert_eq!(err.code(), 285, "{err}");
    // ...and rows stay in the shard they were written to.
    ok(&c, 1, "INSERT INTO s VALUES (1), (2)").await;
    ok(&c, 2, "INSERT INTO s VALUES (3)").await;
    assert_eq!(ok(&c, 1, "SELECT count() FROM s").await, "2\n");
    assert_eq!(ok(&c, 2, "SELECT count() FROM s").await, "1\n");
    assert_eq!(ok(&c, 3, "SELECT count() FROM s").await, "0\n");

    // ON CLUSTER default: the same arguments make one shard of three replicas.
    ok(
        &c,
        3,
        "CREATE TABLE d ON CLUSTER default (id UInt64) \
         ENGINE = ReplicatedMergeTree('/tables/{cluster}/{shard}/d', '{replica}') ORDER BY id",
    )
    .await;
    ok(
        &c,
        3,
        "INSERT INTO d SETTINGS insert_quorum = 3 VALUES (1), (2), (3)",
    )
    .await;
    for n in c.all() {
        assert_eq!(
            ok(
                &c,
                n,
                "SELECT zookeeper_path, total_replicas FROM system.replicas WHERE table = 'd'"
            )
            .await,
            "/tables/default/1/d\t3\n"
        );
        assert_eq!(ok(&c, n, "SELECT count() FROM d").await, "3\n");
    }

    let err = sql(
        &c,
        1,
        "CREATE TABLE x ON CLUSTER nope (id UInt64) ENGINE = Memory",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), 701, "{err}");
    assert!(
        err.to_string()
            .contains("Requested cluster 'nope' not found"),
        "{err}"
    );
}
