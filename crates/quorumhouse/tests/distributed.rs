//! Distributed tables over real node processes: the answer over the shards
//! equals the answer over one table holding every row, and a shard's dead
//! replica is replaced.

use std::path::Path;
use std::time::Duration;

use jepsen_like_tests::{CoordinatorProbe, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_quorumhouse");
const LONG: Duration = Duration::from_secs(60);

async fn ok(c: &TestCluster, node: u64, q: &str) -> String {
    match c.sql(node, q).await {
        Ok(t) => t,
        Err(e) => panic!("node {node}: {q}: {e}"),
    }
}

const ROWS: u64 = 30_000;

/// Row `number` of the data set, as a SELECT over numbers().
fn rows_select(filter: &str) -> String {
    format!(
        "SELECT toDateTime(1700000000 + number * 7) AS ts, number % 997 AS user_id, \
         concat('e', toString(number % 13)) AS event, (number % 1000) / 10 AS value \
         FROM numbers({ROWS}) WHERE {filter}"
    )
}

/// Queries whose answer over the Distributed table `{t}` must equal the
/// answer over one table holding every row.
const GOLDEN: &[&str] = &[
    "SELECT count() FROM {t}",
    "SELECT count(), sum(user_id), min(ts), max(ts) FROM {t}",
    "SELECT round(avg(value), 6), round(sum(value), 3) FROM {t}",
    "SELECT event, count(), sum(user_id) FROM {t} GROUP BY event ORDER BY event",
    "SELECT event, count() c FROM {t} GROUP BY event ORDER BY c DESC, event LIMIT 3",
    "SELECT count(DISTINCT user_id) FROM {t}",
    "SELECT uniqExact(user_id) FROM {t}",
    "SELECT event, uniqExact(user_id) FROM {t} GROUP BY event ORDER BY event",
    "SELECT min(event), max(event) FROM {t}",
    "SELECT user_id, count() c FROM {t} GROUP BY user_id ORDER BY c DESC, user_id LIMIT 10",
    "SELECT event, user_id % 3 AS k, count() FROM {t} GROUP BY event, k ORDER BY event, k",
    "SELECT event, count() c FROM {t} GROUP BY event HAVING c > 2300 ORDER BY event",
    "SELECT count() FROM {t} WHERE user_id BETWEEN 100 AND 200",
    "SELECT count(), round(sum(value), 3) FROM {t} WHERE event = 'e3' AND value > 50",
    "SELECT user_id, ts FROM {t} WHERE user_id = 42 ORDER BY ts LIMIT 5",
    "SELECT ts, event FROM {t} ORDER BY ts DESC LIMIT 3",
    "SELECT user_id, ts, event FROM {t} ORDER BY value DESC, user_id, ts LIMIT 7",
    "SELECT event, ts FROM {t} WHERE event = 'e5' ORDER BY ts DESC LIMIT 4 OFFSET 2",
    "SELECT event FROM {t} WHERE user_id = 7 ORDER BY ts LIMIT 2 BY event",
    "SELECT count() FROM (SELECT user_id FROM {t} GROUP BY user_id HAVING count() > 30)",
    "SELECT count() FROM {t} WHERE user_id IN (SELECT user_id FROM {t} WHERE event = 'e1' AND value < 1)",
    "SELECT event, row_number() OVER (ORDER BY event) FROM (SELECT DISTINCT event FROM {t}) ORDER BY event",
    "SELECT toStartOfHour(ts) h, count() FROM {t} GROUP BY h ORDER BY h LIMIT 4",
    "SELECT count() FROM {t} WHERE user_id = 1000000",
    "SELECT sum(value) FROM {t} WHERE 0",
    "SELECT event, count(), uniqExact(user_id) FROM {t} GROUP BY event WITH TOTALS ORDER BY event",
    "SELECT user_id % 5 AS k, count() c, max(value) FROM {t} GROUP BY k WITH TOTALS HAVING c > 6000 ORDER BY k",
    "SELECT count(), sum(user_id) FROM {t} WITH TOTALS",
    "SELECT count() FROM {t} WHERE (user_id, event) IN ((42, 'e1'), (7, 'e3'), (100, 'e5'))",
    "SELECT event, count() FROM {t} WHERE (user_id % 10, event) IN (SELECT user_id % 10, min(event) FROM {t} GROUP BY user_id % 10) GROUP BY event ORDER BY event",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributed_table_answers_like_one_table_and_names_a_dead_shard() {
    let mut c = TestCluster::start(Path::new(BIN), 3, &[]).expect("cluster starts");
    c.leader(&c.all(), LONG).await.unwrap();
    ok(
        &c,
        1,
        "CREATE TABLE hits_local ON CLUSTER sharded (ts DateTime, user_id UInt64, event String, value Float64) \
         ENGINE = MergeTree ORDER BY (user_id, ts)",
    )
    .await;
    ok(
        &c,
        1,
        "CREATE TABLE hits ON CLUSTER sharded AS hits_local \
         ENGINE = Distributed(sharded, default, hits_local, user_id)",
    )
    .await;
    ok(
        &c,
        1,
        "CREATE TABLE hits_all (ts DateTime, user_id UInt64, event String, value Float64) \
         ENGINE = MergeTree ORDER BY (user_id, ts)",
    )
    .await;
    // Each node holds a third of the rows (by user, as an insert through
    // the sharding key would place them); node 1 also holds them all.
    for node in 1..=3u64 {
        let q = format!(
            "INSERT INTO hits_local {}",
            rows_select(&format!("user_id % 3 = {}", node - 1))
        );
        ok(&c, node, &q).await;
    }
    ok(&c, 1, &format!("INSERT INTO hits_all {}", rows_select("1"))).await;

    for q in GOLDEN {
        let want = ok(&c, 1, &q.replace("{t}", "hits_all")).await;
        for node in [1, 2] {
            let got = ok(&c, node, &q.replace("{t}", "hits")).await;
            assert_eq!(got, want, "node {node}: {q}");
        }
    }

    // The table functions: a Distributed table for one query.
    let total = ok(&c, 1, "SELECT count() FROM hits_all").await;
    assert_eq!(
        ok(
            &c,
            3,
            "SELECT count() FROM cluster('sharded', default, hits_local)"
        )
        .await,
        total
    );
    assert_eq!(
        ok(
            &c,
            2,
            "SELECT count() FROM cluster('sharded', 'default.hits_local')"
        )
        .await,
        total
    );

    // remote(): the servers named in the query (client ports), the
    // structure from the local copy or, for a table only node 2 has, from it.
    let port = |n: u64| {
        c.client_endpoint(n)
            .trim_start_matches("http://")
            .to_string()
    };
    let all_three = format!("{},{},{}", port(1), port(2), port(3));
    assert_eq!(
        ok(
            &c,
            1,
            &format!("SELECT count() FROM remote('{all_three}', default, hits_local)")
        )
        .await,
        total
    );
    let one_shard = format!("127.0.0.1:1|{}", port(2));
    let q = format!(
        "SELECT event, count() FROM remote('{one_shard}', 'default.hits_local') GROUP BY event ORDER BY event"
    );
    let want = ok(
        &c,
        2,
        "SELECT event, count() FROM hits_local GROUP BY event ORDER BY event",
    )
    .await;
    assert_eq!(
        ok(&c, 3, &format!("{q} SETTINGS load_balancing = 'in_order'")).await,
        want
    );
    ok(
        &c,
        2,
        "CREATE TABLE only_two (a UInt8, b String) ENGINE = MergeTree ORDER BY a",
    )
    .await;
    ok(&c, 2, "INSERT INTO only_two VALUES (1, 'x'), (2, 'y')").await;
    let q = format!(
        "SELECT sum(a), max(b) FROM remote('{}', default, only_two)",
        port(2)
    );
    assert_eq!(ok(&c, 1, &q).await, "3\ty\n");
    let err = c
        .sql(
            1,
            "SELECT count() FROM remote('127.0.0.1:1', default, hits_local)",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("279") && err.contains("127.0.0.1:1"), "{err}");

    // INSERT into a Distributed table: rows split by the sharding key, the
    // columns left out get their defaults, written before the ack.
    ok(
        &c,
        2,
        "CREATE TABLE ins_local ON CLUSTER sharded (k UInt64, s String DEFAULT 'd') \
         ENGINE = MergeTree ORDER BY k",
    )
    .await;
    ok(
        &c,
        2,
        "CREATE TABLE ins ON CLUSTER sharded AS ins_local \
         ENGINE = Distributed(sharded, default, ins_local, k)",
    )
    .await;
    ok(&c, 2, "INSERT INTO ins (k) SELECT number FROM numbers(300)").await;
    ok(&c, 2, "INSERT INTO ins VALUES (1000, 'x'), (1001, 'y')").await;
    for (node, rows) in [(1u64, 100), (2, 101), (3, 101)] {
        let q = format!(
            "SELECT count(), countIf(k % 3 != {}) FROM ins_local",
            node - 1
        );
        assert_eq!(
            ok(&c, node, &q).await,
            format!("{rows}\t0\n"),
            "node {node}"
        );
    }
    assert_eq!(
        ok(&c, 1, "SELECT count(), sum(k), countIf(s = 'd') FROM ins").await,
        "302\t46851\t300\n"
    );
    ok(
        &c,
        2,
        "CREATE TABLE ins_nokey ON CLUSTER sharded AS ins_local \
         ENGINE = Distributed(sharded, default, ins_local)",
    )
    .await;
    let err = c
        .sql(2, "INSERT INTO ins_nokey VALUES (1, 'a')")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("55") && err.contains("sharding key"), "{err}");
    let err = c
        .sql(
            2,
            "CREATE TABLE ins_strkey AS ins_local ENGINE = Distributed(sharded, default, ins_local, s)",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("integer type"), "{err}");

    // Sharded by cityHash64: each row on shard cityHash64(k) % 3, exactly
    // where ClickHouse puts it, and a WHERE on k finds its one shard.
    ok(
        &c,
        2,
        "CREATE TABLE hash_local ON CLUSTER sharded (k UInt64, s String DEFAULT 'd') \
         ENGINE = MergeTree ORDER BY k",
    )
    .await;
    ok(
        &c,
        2,
        "CREATE TABLE ins_hash ON CLUSTER sharded AS hash_local \
         ENGINE = Distributed(sharded, default, hash_local, cityHash64(k))",
    )
    .await;
    ok(
        &c,
        1,
        "INSERT INTO ins_hash (k) SELECT number FROM numbers(3000)",
    )
    .await;
    for node in 1..=3u64 {
        let q = format!(
            "SELECT toUInt8(count() > 900), countIf(cityHash64(k) % 3 != {}) FROM hash_local",
            node - 1
        );
        assert_eq!(ok(&c, node, &q).await, "1\t0\n", "node {node}");
    }
    assert_eq!(
        ok(&c, 3, "SELECT count(), sum(k) FROM ins_hash").await,
        "3000\t4498500\n"
    );

    // A shard whose only replica is dead: 279 naming it; or skipped.
    c.kill(3);
    let err = c
        .sql(1, "SELECT count() FROM hits")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("279") || err.contains("ALL_CONNECTION_TRIES_FAILED"),
        "{err}"
    );
    assert!(err.contains("node 3"), "{err}");
    let two_thirds = ok(&c, 1, "SELECT count() FROM hits_all WHERE user_id % 3 != 2").await;
    let got = ok(
        &c,
        1,
        "SELECT count() FROM hits SETTINGS skip_unavailable_shards = 1",
    )
    .await;
    assert_eq!(got, two_thirds);
    // A WHERE that fixes the sharding key only needs the live shards.
    for filter in ["user_id = 42", "user_id IN (1, 4, 43)"] {
        let want = ok(
            &c,
            1,
            &format!("SELECT count() FROM hits_all WHERE {filter}"),
        )
        .await;
        let q = format!(
            "SELECT count() FROM hits WHERE {filter} SETTINGS optimize_skip_unused_shards = 1"
        );
        assert_eq!(ok(&c, 1, &q).await, want, "{q}");
    }
    assert!(c
        .sql(1, "SELECT count() FROM hits WHERE user_id = 42")
        .await
        .is_err());
    // The same with a hashed key: keys whose shard is alive are found.
    let live: Vec<String> = ok(
        &c,
        1,
        "SELECT number FROM numbers(30) WHERE cityHash64(number) % 3 != 2 ORDER BY number LIMIT 3",
    )
    .await
    .lines()
    .map(str::to_string)
    .collect();
    let q = format!(
        "SELECT count() FROM ins_hash WHERE k IN ({}) SETTINGS optimize_skip_unused_shards = 1",
        live.join(", ")
    );
    assert_eq!(ok(&c, 1, &q).await, "3\n", "{q}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replica_of_a_shard_is_replaced_and_bad_definitions_are_refused() {
    let mut c = TestCluster::start(Path::new(BIN), 3, &[]).expect("cluster starts");
    c.leader(&c.all(), LONG).await.unwrap();
    ok(
        &c,
        1,
        "CREATE TABLE r ON CLUSTER default (id UInt64, g String) \
         ENGINE = ReplicatedMergeTree('/tables/r', '{replica}') ORDER BY id \
         SETTINGS index_granularity = 256",
    )
    .await;
    ok(
        &c,
        1,
        "CREATE TABLE rd ON CLUSTER default AS r ENGINE = Distributed(default, currentDatabase(), r)",
    )
    .await;
    c.live_replicas(1, "r", 3, LONG).await.unwrap();
    ok(
        &c,
        1,
        "INSERT INTO r SELECT number, concat('g', toString(number % 5)) FROM numbers(5000) \
         SETTINGS insert_quorum = 3",
    )
    .await;
    let want = "5000\t5\n";
    // Node 3 reads the one shard from node 1 first (in order, not itself).
    let q = "SELECT count(), uniqExact(g) FROM rd \
             SETTINGS prefer_localhost_replica = 0, load_balancing = 'in_order'";
    assert_eq!(ok(&c, 3, q).await, want);
    assert_eq!(
        ok(
            &c,
            2,
            "SELECT count() FROM clusterAllReplicas('default', default, r)"
        )
        .await,
        "15000\n",
        "every replica counted once"
    );
    // max_parallel_replicas: the shard's rows split by id ranges over its
    // three replicas add up to one replica's answer.
    let q3 = "SELECT count(), uniqExact(g), sum(id), g FROM rd GROUP BY g ORDER BY g";
    let one = ok(&c, 3, q3).await;
    for n in 1..=3u64 {
        let split = format!("{q3} SETTINGS max_parallel_replicas = 3");
        assert_eq!(ok(&c, n, &split).await, one, "node {n}: {split}");
    }
    let plan = ok(
        &c,
        2,
        "EXPLAIN SELECT count() FROM rd SETTINGS max_parallel_replicas = 3",
    )
    .await;
    assert!(plan.contains("each split over 3 replicas"), "{plan}");
    c.kill(1);
    assert_eq!(ok(&c, 3, q).await, want, "node 1 dead: node 2 answers");

    // Bad definitions: a clear error each, and the node lives on.
    let err = c
        .sql(
            2,
            "CREATE TABLE bad1 AS r ENGINE = Distributed(nowhere, default, r)",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("701") || err.contains("CLUSTER_DOESNT_EXIST"),
        "{err}"
    );
    let err = c
        .sql(
            2,
            "CREATE TABLE bad2 AS r ENGINE = Distributed(default, default, r, nope)",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
    ok(
        &c,
        2,
        "CREATE TABLE d_missing (x UInt64) ENGINE = Distributed(default, default, no_such_table)",
    )
    .await;
    let err = c
        .sql(2, "SELECT count() FROM d_missing")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_table"), "{err}");
    // One shard: an insert goes to a live replica of it (once nodes 2 and 3
    // agree on a coordinator leader: a write forwarded to the dead node 1
    // while they elect one is answered 319, unknown, which a client retries).
    c.leader(&[2, 3].into(), LONG).await.unwrap();
    ok(&c, 2, "INSERT INTO rd VALUES (9000, 'x')").await;
    assert_eq!(ok(&c, 2, "SELECT count() FROM rd").await, "5001\n");
    assert_eq!(ok(&c, 2, "SELECT 1").await, "1\n");

    // A replica far behind its log (node 3 cannot fetch the new part) is
    // passed over under max_replica_delay_for_distributed_queries.
    // Node 3 first holds everything acknowledged so far (the insert above
    // had no quorum), then stops fetching.
    ok(&c, 3, "SYSTEM SYNC REPLICA r").await;
    ok(&c, 3, "SYSTEM STOP FETCHES r").await;
    ok(&c, 2, "INSERT INTO r VALUES (9001, 'y')").await;
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let delay = ok(
            &c,
            3,
            "SELECT absolute_delay FROM system.replicas WHERE table = 'r'",
        )
        .await;
        if delay.trim().parse::<u64>().unwrap_or(0) >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node 3 never fell behind: {delay}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ok(&c, 3, "SELECT count() FROM rd").await,
        "5001\n",
        "the local stale replica"
    );
    let q = "SELECT count() FROM rd SETTINGS max_replica_delay_for_distributed_queries = 1";
    assert_eq!(
        ok(&c, 3, q).await,
        "5002\n",
        "node 2 answers for stale node 3"
    );
    // Each replica its own shard: node 3's shard has only a stale replica,
    // read anyway by default, refused with 369 without the fallback.
    let q = "SELECT count() FROM clusterAllReplicas('default', default, r) \
             SETTINGS max_replica_delay_for_distributed_queries = 1, skip_unavailable_shards = 1";
    assert_eq!(ok(&c, 2, q).await, "10003\n");
    let err = c
        .sql(
            2,
            &format!("{q}, fallback_to_stale_replicas_for_distributed_queries = 0"),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("369") && err.contains("behind"), "{err}");
    // Node 3 lacks a logged part and node 1 is dead: every slice of
    // max_parallel_replicas is read by node 2, none from node 3's stale rows.
    for n in [2u64, 3] {
        // In order 1, 2, 3: the last slice (the highest ids, 9001 among
        // them) is offered to node 3 first.
        let q = "SELECT count(), sum(id) FROM rd SETTINGS max_parallel_replicas = 3, \
                 load_balancing = 'in_order', prefer_localhost_replica = 0";
        assert_eq!(ok(&c, n, q).await, "5002\t12515501\n", "node {n}");
    }
    ok(&c, 3, "SYSTEM START FETCHES r").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_of_two_replicas_answer_through_a_dead_replica() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[clusters.two]\nshards = [[1, 2], [3, 4]]\n").unwrap();
    let config = config.to_string_lossy().to_string();
    let mut c =
        TestCluster::start(Path::new(BIN), 4, &["--config", &config]).expect("cluster starts");
    c.leader(&c.all(), LONG).await.unwrap();
    ok(
        &c,
        1,
        "CREATE TABLE h ON CLUSTER two (id UInt64, g String, v Float64) \
         ENGINE = ReplicatedMergeTree('/tables/{cluster}/{shard}/h', '{replica}') ORDER BY id",
    )
    .await;
    ok(
        &c,
        1,
        "CREATE TABLE hd ON CLUSTER two AS h ENGINE = Distributed(two, default, h, id)",
    )
    .await;
    ok(
        &c,
        1,
        "CREATE TABLE h_all (id UInt64, g String, v Float64) ENGINE = MergeTree ORDER BY id",
    )
    .await;
    let rows = "SELECT number, concat('g', toString(number % 7)), (number % 100) / 4 \
                FROM numbers(20000)";
    ok(&c, 2, &format!("INSERT INTO hd {rows}")).await;
    ok(&c, 1, &format!("INSERT INTO h_all {rows}")).await;
    // A local dimension table on the nodes that run the queries.
    for node in [1u64, 4] {
        ok(
            &c,
            node,
            "CREATE TABLE dim (k UInt64, name String) ENGINE = MergeTree ORDER BY k",
        )
        .await;
        ok(
            &c,
            node,
            "INSERT INTO dim SELECT number, concat('d', toString(number)) FROM numbers(5)",
        )
        .await;
    }
    // ReplacingMergeTree shards read with FINAL; a table whose second shard is empty.
    ok(
        &c,
        1,
        "CREATE TABLE rp ON CLUSTER two (k UInt64, ver UInt32, v Int64) \
         ENGINE = ReplicatedReplacingMergeTree('/tables/{cluster}/{shard}/rp', '{replica}', ver) ORDER BY k",
    )
    .await;
    ok(
        &c,
        1,
        "CREATE TABLE rpd ON CLUSTER two AS rp ENGINE = Distributed(two, default, rp, k)",
    )
    .await;
    ok(&c, 1, "CREATE TABLE rp_all (k UInt64, ver UInt32, v Int64) ENGINE = ReplacingMergeTree(ver) ORDER BY k").await;
    for (t, node) in [("rpd", 3u64), ("rp_all", 1)] {
        ok(
            &c,
            node,
            &format!("INSERT INTO {t} SELECT number % 500, 1, number FROM numbers(2000)"),
        )
        .await;
        ok(
            &c,
            node,
            &format!("INSERT INTO {t} SELECT number, 2, -number FROM numbers(100)"),
        )
        .await;
    }
    ok(&c, 1, "CREATE TABLE ev ON CLUSTER two (id UInt64, s String) ENGINE = ReplicatedMergeTree('/tables/{cluster}/{shard}/ev', '{replica}') ORDER BY id").await;
    ok(
        &c,
        1,
        "CREATE TABLE evd ON CLUSTER two AS ev ENGINE = Distributed(two, default, ev, id)",
    )
    .await;
    ok(
        &c,
        1,
        "CREATE TABLE ev_all (id UInt64, s String) ENGINE = MergeTree ORDER BY id",
    )
    .await;
    for (t, node) in [("evd", 2u64), ("ev_all", 1)] {
        ok(
            &c,
            node,
            &format!("INSERT INTO {t} SELECT number * 2, toString(number) FROM numbers(300)"),
        )
        .await;
    }
    // Each shard's replicas hold its half (by id % 2).
    for node in 1..=4u64 {
        ok(&c, node, "SYSTEM SYNC REPLICA h").await;
        let shard = (node - 1) / 2;
        let q = format!("SELECT count(), countIf(id % 2 != {shard}) FROM h");
        assert_eq!(ok(&c, node, &q).await, "10000\t0\n", "node {node}");
    }
    let queries = [
        "SELECT count(), sum(id), round(avg(v), 6) FROM {t}",
        "SELECT g, count(), uniqExact(id % 1000) FROM {t} GROUP BY g ORDER BY g",
        "SELECT count(DISTINCT v) FROM {t}",
        "SELECT id, g FROM {t} WHERE id % 1000 = 7 ORDER BY id DESC LIMIT 5",
        "SELECT count() FROM {t} SETTINGS select_sequential_consistency = 1",
    ];
    let mut want = Vec::new();
    for q in queries {
        want.push(ok(&c, 1, &q.replace("{t}", "h_all")).await);
    }
    for (q, w) in queries.iter().zip(&want) {
        assert_eq!(&ok(&c, 4, &q.replace("{t}", "hd")).await, w, "{q}");
    }
    // More of the golden suite on 2 x 2, each table pair: (Distributed, one table).
    let golden = [
        ("hd", "h_all", "SELECT quantileExact(0.9)(v), min(g), max(g) FROM {t}"),
        ("hd", "h_all", "SELECT g, arraySort(groupArray(id)) FROM {t} WHERE id < 40 GROUP BY g ORDER BY g"),
        ("hd", "h_all", "SELECT g, round(v) AS r, count() FROM {t} GROUP BY g, r HAVING count() > 195 ORDER BY g, r"),
        ("hd", "h_all", "SELECT g, count() c FROM {t} GROUP BY g ORDER BY c DESC, g LIMIT 2"),
        ("hd", "h_all", "SELECT g, id FROM {t} WHERE id < 100 ORDER BY id DESC LIMIT 2 BY g"),
        ("hd", "h_all", "SELECT d.name, count(), sum(t.v) FROM {t} AS t JOIN dim AS d ON t.id % 7 = d.k GROUP BY d.name ORDER BY d.name"),
        ("hd", "h_all", "SELECT count() FROM {t} WHERE id GLOBAL IN (SELECT id * 3 FROM {t} WHERE g = 'g1')"),
        ("hd", "h_all", "SELECT count() FROM {t} WHERE id IN (SELECT k * 1000 FROM dim)"),
        ("hd", "h_all", "SELECT max(c) FROM (SELECT g, count() c FROM {t} GROUP BY g)"),
        ("hd", "h_all", "SELECT g, sum(v) OVER (ORDER BY g) FROM (SELECT g, sum(v) v FROM {t} GROUP BY g) ORDER BY g"),
        ("rpd", "rp_all", "SELECT count(), sum(v), sum(ver) FROM {t} FINAL"),
        ("rpd", "rp_all", "SELECT k, v FROM {t} FINAL WHERE k < 3 OR k > 497 ORDER BY k"),
        ("rpd", "rp_all", "SELECT ver, count() FROM {t} FINAL GROUP BY ver ORDER BY ver"),
        ("evd", "ev_all", "SELECT count(), sum(id), max(s) FROM {t}"),
        ("evd", "ev_all", "SELECT id % 4 AS m, count() FROM {t} GROUP BY m ORDER BY m"),
        ("evd", "ev_all", "SELECT id FROM {t} ORDER BY id DESC LIMIT 3"),
        ("evd", "ev_all", "SELECT count() FROM {t} WHERE id % 2 = 1"),
    ];
    for node in 1..=4u64 {
        ok(&c, node, "SYSTEM SYNC REPLICA rp").await;
        ok(&c, node, "SYSTEM SYNC REPLICA ev").await;
    }
    for (dist, one, q) in golden {
        let w = ok(&c, 1, &q.replace("{t}", one)).await;
        assert_eq!(ok(&c, 4, &q.replace("{t}", dist)).await, w, "{q}");
    }
    // The 3 x 1 suite on 2 x 2 too, over ReplicatedMergeTree shards.
    ok(
        &c,
        1,
        "CREATE TABLE hits_local ON CLUSTER two (ts DateTime, user_id UInt64, event String, value Float64) \
         ENGINE = ReplicatedMergeTree('/tables/{cluster}/{shard}/hits', '{replica}') ORDER BY (user_id, ts)",
    )
    .await;
    ok(&c, 1, "CREATE TABLE hits ON CLUSTER two AS hits_local ENGINE = Distributed(two, default, hits_local, user_id)").await;
    ok(&c, 1, "CREATE TABLE hits_all (ts DateTime, user_id UInt64, event String, value Float64) ENGINE = MergeTree ORDER BY (user_id, ts)").await;
    ok(&c, 3, &format!("INSERT INTO hits {}", rows_select("1"))).await;
    ok(&c, 1, &format!("INSERT INTO hits_all {}", rows_select("1"))).await;
    for node in 1..=4u64 {
        ok(&c, node, "SYSTEM SYNC REPLICA hits_local").await;
    }
    for q in GOLDEN {
        let want = ok(&c, 1, &q.replace("{t}", "hits_all")).await;
        assert_eq!(
            ok(&c, 4, &q.replace("{t}", "hits")).await,
            want,
            "2 x 2: {q}"
        );
    }
    // The same with each shard's rows split over its two replicas.
    for q in GOLDEN {
        let want = ok(&c, 1, &q.replace("{t}", "hits_all")).await;
        let split = format!(
            "{} SETTINGS max_parallel_replicas = 2",
            q.replace("{t}", "hits")
        );
        assert_eq!(ok(&c, 4, &split).await, want, "2 x 2: {split}");
    }
    let plan = ok(
        &c,
        4,
        "EXPLAIN SELECT event, count() FROM hits GROUP BY event SETTINGS max_parallel_replicas = 2",
    )
    .await;
    assert!(plan.contains("each split over 2 replicas"), "{plan}");
    // distributed_product_mode: the default (and global, allow) answer a
    // subquery over a Distributed table over every shard; local is refused.
    let sub = "SELECT count() FROM hd WHERE id IN (SELECT id * 3 FROM hd WHERE g = 'g1')";
    let global = ok(&c, 1, &sub.replace("hd", "h_all")).await;
    assert_eq!(
        ok(
            &c,
            4,
            &format!("{sub} SETTINGS distributed_product_mode = 'global'")
        )
        .await,
        global
    );
    let err = c
        .sql(
            4,
            &format!("{sub} SETTINGS distributed_product_mode = 'local'"),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("48") && err.contains("distributed_product_mode"),
        "{err}"
    );
    // EXPLAIN shows the stage and what each shard runs.
    let plan = ok(
        &c,
        4,
        "EXPLAIN SELECT g, count() FROM hd WHERE v > 1 GROUP BY g",
    )
    .await;
    assert!(
        plan.contains("RemoteStageExec: PartialAggregate on 2 shards of two"),
        "{plan}"
    );
    assert!(
        plan.contains("shard> AggregateExec: mode=Partial"),
        "{plan}"
    );
    assert!(plan.contains("mode=Final"), "{plan}");
    // distributed_group_by_no_merge: 1 concatenates the shards' complete
    // answers; 2 also orders and limits them here.
    let per_shard = ok(
        &c,
        4,
        "SELECT count() FROM hd SETTINGS distributed_group_by_no_merge = 1",
    )
    .await;
    assert_eq!(per_shard, "10000\n10000\n");
    let groups = ok(
        &c,
        4,
        "SELECT g, count() FROM hd GROUP BY g SETTINGS distributed_group_by_no_merge = 1",
    )
    .await;
    assert_eq!(groups.lines().count(), 14, "{groups}");
    for (q, one) in [
        (
            "SELECT id FROM hd ORDER BY id DESC LIMIT 3 OFFSET 1 SETTINGS distributed_group_by_no_merge = 2",
            "SELECT id FROM h_all ORDER BY id DESC LIMIT 3 OFFSET 1",
        ),
        (
            "SELECT g, count() c FROM hd GROUP BY g ORDER BY g, c LIMIT 3 SETTINGS distributed_group_by_no_merge = 2",
            "SELECT g, count() c FROM h_all GROUP BY g, id % 2 ORDER BY g, c LIMIT 3",
        ),
    ] {
        assert_eq!(ok(&c, 4, q).await, ok(&c, 1, one).await, "{q}");
    }
    // A replica SIGKILLed during a loop of aggregate queries: every query
    // answers, with the right result (shard 1 is asked of node 1 first).
    let done = std::sync::atomic::AtomicUsize::new(0);
    let pid = c.pid(1).expect("node 1 runs");
    let looped = async {
        for i in 0..40 {
            let q = queries[i % 3];
            let q = format!(
                "{} SETTINGS load_balancing = 'in_order'",
                q.replace("{t}", "hd")
            );
            assert_eq!(ok(&c, 4, &q).await, want[i % 3], "query {i}: {q}");
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let killer = async {
        c.wait_for("five queries answered", LONG, || async {
            (done.load(std::sync::atomic::Ordering::SeqCst) >= 5).then_some(())
        })
        .await
        .unwrap();
        let status = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    tokio::join!(looped, killer);
    // Node 1 (a replica of shard 1) is dead: node 4 reads shard 1 from node 2.
    c.kill(1);
    for (q, w) in queries.iter().zip(&want) {
        let q = format!(
            "{} {}",
            q.replace("{t}", "hd"),
            if q.contains("SETTINGS") {
                ", load_balancing = 'in_order'"
            } else {
                "SETTINGS load_balancing = 'in_order'"
            }
        );
        assert_eq!(&ok(&c, 4, &q).await, w, "{q}");
    }

    // One INSERT is atomic across shards: shard 1 cannot meet
    // insert_quorum = 2 with node 1 dead, so shard 2 (which could) gets
    // nothing either.
    let batch = "INSERT INTO hd SELECT 100000 + number, 'new', 1 FROM numbers(1000) \
                 SETTINGS insert_quorum = 2, insert_deduplication_token = 'batch-1'";
    let err = c
        .sql(4, batch)
        .await
        .expect_err("shard 1 has one live replica");
    let text = err.to_string();
    assert!(text.contains("nothing was written to any shard"), "{text}");
    let new_rows = "SELECT count() FROM h WHERE id >= 100000";
    for node in [3u64, 4] {
        ok(&c, node, "SYSTEM SYNC REPLICA h").await;
        assert_eq!(ok(&c, node, new_rows).await, "0\n", "node {node}");
    }
    assert_eq!(ok(&c, 2, new_rows).await, "0\n");
    // Node 1 is back: the retry writes every row once on every shard, and
    // another retry with the same token writes nothing.
    c.spawn(1).unwrap();
    c.wait_for("node 1 holds a lease again", LONG, || async {
        let s = c.status(4).await?;
        s.leases
            .iter()
            .any(|l| l.node_id == 1 && l.is_active)
            .then_some(())
    })
    .await
    .unwrap();
    c.wait_for("node 1's replica is writable", LONG, || async {
        let q = "SELECT is_readonly FROM system.replicas WHERE table = 'h'";
        (c.sql(1, q).await.ok()? == "0\n").then_some(())
    })
    .await
    .unwrap();
    assert_eq!(ok(&c, 4, batch).await, "");
    ok(&c, 3, batch).await;
    for node in 1..=4u64 {
        ok(&c, node, "SYSTEM SYNC REPLICA h").await;
        assert_eq!(ok(&c, node, new_rows).await, "500\n", "node {node}");
    }
    assert_eq!(
        ok(
            &c,
            2,
            "SELECT count(), uniqExact(id) FROM hd WHERE id >= 100000"
        )
        .await,
        "1000\t1000\n"
    );
}
