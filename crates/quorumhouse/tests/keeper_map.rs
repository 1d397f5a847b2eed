//! KeeperMap tables over a real three-node cluster: the rows live in the
//! built-in coordinator, so every table naming the same root, on any node,
//! reads them at once (linearizable reads); INSERT overwrites a key (or, in
//! strict mode, fails on it), UPDATE and DELETE are atomic and report the
//! rows they changed (a conditional UPDATE is a compare-and-set), the keys
//! limit holds, and the last DROP of a root takes its rows with it. Answers
//! and error codes are ClickHouse's. Waits poll conditions.

mod local_process;

use std::path::Path;
use std::time::{Duration, Instant};

use jepsen_like_tests::TestCluster;
use qh_client::Client;

const BIN: &str = env!("CARGO_BIN_EXE_quorumhouse");
const LONG: Duration = Duration::from_secs(60);

const CREATE: &str = "CREATE TABLE kv (key String, v1 UInt32, v2 Nullable(String), v3 Float64, \
     d DateTime DEFAULT '2024-01-02 03:04:05') ENGINE = KeeperMap('/kv', 4) PRIMARY KEY key";

async fn ok(c: &TestCluster, node: u64, sql: &str) -> String {
    match c.sql(node, sql).await {
        Ok(text) => text,
        Err(e) => panic!("{sql} on node {node}: {e}"),
    }
}

async fn code(c: &TestCluster, node: u64, sql: &str) -> i32 {
    match c.sql(node, sql).await {
        Ok(text) => panic!("{sql} on node {node} should fail, answered {text:?}"),
        Err(e) => e.code(),
    }
}

/// The rows a statement changed (its summary's `written_rows`).
async fn changed(client: &mut Client, sql: &str) -> u64 {
    match client.query(sql).await {
        Ok(out) => out.summary.written_rows,
        Err(e) => panic!("{sql}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeper_map_rows_live_in_the_coordinator_and_every_node_reads_them() {
    let c = TestCluster::start(Path::new(BIN), 3, &[]).expect("cluster starts");
    c.leader(&c.all(), LONG).await.unwrap();
    ok(&c, 1, CREATE).await;
    ok(&c, 2, CREATE).await;
    let show = ok(&c, 1, "SHOW CREATE TABLE kv").await;
    assert!(
        show.contains("ENGINE = KeeperMap('/kv', 4)\nPRIMARY KEY key"),
        "{show}"
    );
    assert_eq!(
        ok(&c, 2, "SELECT engine FROM system.tables WHERE name = 'kv'").await,
        "KeeperMap\n"
    );

    // A later row of a key replaces an earlier one, in one INSERT too; the
    // other node reads it at once.
    ok(
        &c,
        1,
        "INSERT INTO kv (key, v1, v2, v3) VALUES ('a', 1, NULL, 0.5), ('b', 2, 'x', -1), ('a', 3, 'later', 1e300)",
    )
    .await;
    assert_eq!(
        ok(&c, 2, "SELECT * FROM kv ORDER BY key").await,
        "a\t3\tlater\t1e300\t2024-01-02 03:04:05\nb\t2\tx\t-1\t2024-01-02 03:04:05\n"
    );
    ok(&c, 2, "INSERT INTO kv (key, v1, v3) VALUES ('b', 20, 2)").await;
    assert_eq!(
        ok(
            &c,
            1,
            "SELECT key, v1, v2 FROM kv WHERE v3 > 1 ORDER BY key"
        )
        .await,
        "a\t3\tlater\nb\t20\t\\N\n"
    );
    // A node without the table has none (a table, like ClickHouse's, is per
    // node; its rows are shared).
    assert_eq!(code(&c, 3, "SELECT * FROM kv").await, 60);

    // UPDATE answers the rows it changed: a conditional one is a
    // compare-and-set.
    let mut client = Client::connect(&[c.client_endpoint(1)]).await.unwrap();
    let cas = |old: u32, new: u32| {
        format!("ALTER TABLE kv UPDATE v1 = {new} WHERE key = 'a' AND v1 = {old}")
    };
    assert_eq!(changed(&mut client, &cas(3, 4)).await, 1);
    assert_eq!(changed(&mut client, &cas(3, 5)).await, 0);
    assert_eq!(
        changed(
            &mut client,
            "ALTER TABLE kv UPDATE v2 = concat(key, '!'), v3 = v3 * 2 WHERE 1"
        )
        .await,
        2
    );
    assert_eq!(
        ok(&c, 2, "SELECT key, v1, v2, v3 FROM kv ORDER BY key").await,
        "a\t4\ta!\t2e300\nb\t20\tb!\t4\n"
    );
    assert_eq!(
        changed(&mut client, "DELETE FROM kv WHERE key = 'b'").await,
        1
    );
    assert_eq!(ok(&c, 2, "SELECT groupArray(key) FROM kv").await, "['a']\n");

    // The keys limit (4): three new keys fit, a fifth does not; an existing
    // key is no new one.
    ok(&c, 1, "INSERT INTO kv (key) VALUES ('c'), ('d'), ('e')").await;
    assert_eq!(code(&c, 2, "INSERT INTO kv (key) VALUES ('f')").await, 290);
    ok(&c, 2, "INSERT INTO kv (key, v1) VALUES ('c', 7)").await;
    // Strict mode: an existing key fails the whole INSERT.
    assert_eq!(
        code(
            &c,
            1,
            "INSERT INTO kv SETTINGS keeper_map_strict_mode = 1 VALUES ('c', 1, NULL, 1, now())"
        )
        .await,
        999
    );

    // What KeeperMap does not have, with ClickHouse's codes.
    assert_eq!(
        code(&c, 1, "ALTER TABLE kv UPDATE key = 'z' WHERE 1").await,
        36
    );
    assert_eq!(
        code(&c, 1, "ALTER TABLE kv UPDATE nope = 1 WHERE 1").await,
        16
    );
    assert_eq!(code(&c, 1, "ALTER TABLE kv ADD COLUMN x UInt8").await, 48);
    assert_eq!(code(&c, 1, "OPTIMIZE TABLE kv FINAL").await, 48);
    assert_eq!(
        code(
            &c,
            1,
            "CREATE TABLE bad (k UInt8, v UInt8) ENGINE = KeeperMap('/bad')"
        )
        .await,
        36
    );
    // MergeTree tables have no mutations yet: an error, never a silent no-op.
    ok(
        &c,
        1,
        "CREATE TABLE mt (k UInt8) ENGINE = MergeTree ORDER BY k",
    )
    .await;
    assert_eq!(code(&c, 1, "ALTER TABLE mt DELETE WHERE k = 1").await, 48);
    assert_eq!(code(&c, 1, "DELETE FROM mt WHERE k = 1").await, 48);

    // TRUNCATE empties the map for every table on the root.
    ok(&c, 1, "TRUNCATE TABLE kv").await;
    assert_eq!(ok(&c, 2, "SELECT count() FROM kv").await, "0\n");

    // The rows stay while any table uses the root; the last DROP takes them.
    ok(&c, 2, "INSERT INTO kv (key) VALUES ('kept')").await;
    ok(&c, 1, "DROP TABLE kv").await;
    assert_eq!(ok(&c, 2, "SELECT key FROM kv").await, "kept\n");
    ok(&c, 2, "DROP TABLE kv").await;
    ok(&c, 3, CREATE).await;
    assert_eq!(ok(&c, 3, "SELECT count() FROM kv").await, "0\n");
}

/// A whole group killed right after its last acknowledged write, and its
/// leader started alone: a read sent to it before any follower is back sees
/// every acknowledged write once it answers. (A leader restored in its old
/// term took its read index from the commit index on its disk, which may lag
/// what it had acknowledged, and answered that older state.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_on_a_restored_leader_sees_every_acknowledged_write() {
    let mut c = TestCluster::start(Path::new(BIN), 3, &[]).expect("cluster starts");
    let leader = c.leader(&c.all(), LONG).await.unwrap();
    for node in c.all() {
        let create = "CREATE TABLE log (key String) ENGINE = KeeperMap('/log') PRIMARY KEY key";
        ok(&c, node, create).await;
    }
    const ROWS: u64 = 30;
    for i in 0..ROWS {
        let node = 1 + i % 3;
        ok(&c, node, &format!("INSERT INTO log VALUES ('k{i}')")).await;
    }
    for node in c.all() {
        c.kill(node);
    }
    c.spawn(leader).unwrap();
    let endpoint = c.client_endpoint(leader);
    let read = tokio::spawn(async move {
        let deadline = Instant::now() + LONG;
        loop {
            // Refused connections (start-up) and timeouts are retried.
            let answer = match Client::connect(&[&endpoint]).await {
                Ok(mut client) => client.query("SELECT count() FROM log").await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(out) => {
                    let mut text = String::new();
                    for b in &out.batches {
                        qh_types::text::append_rows_tsv(&mut text, b);
                    }
                    return text;
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the restored leader never answered: {e}"),
            }
        }
    });
    // The followers come back only once the read waits on the leader (it
    // cannot confirm its leadership alone).
    let pending = "SELECT count() FROM system.processes WHERE query = 'SELECT count() FROM log'";
    let deadline = Instant::now() + LONG;
    while c.sql(leader, pending).await.ok().as_deref() != Some("1\n") {
        assert!(
            Instant::now() < deadline,
            "the read never reached the leader"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for node in c.all() {
        if node != leader {
            c.spawn(node).unwrap();
        }
    }
    let count = read.await.expect("the read task");
    assert_eq!(count, format!("{ROWS}\n"));
}

#[test]
fn quorumhouse_local_has_no_coordinator_for_keeper_map() {
    let dir = tempfile::tempdir().unwrap();
    let e = local_process::err(dir.path(), CREATE);
    assert!(e.contains("Code: 36.") && e.contains("KeeperMap"), "{e}");
}
