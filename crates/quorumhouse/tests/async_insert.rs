//! `async_insert = 1` across real processes: inserts from many clients are
//! written together (one part, one commit) and each client is acknowledged
//! only when its rows are on its `insert_quorum` replicas; a client whose
//! data is bad gets the error alone; a flush that fails fails every client
//! in it with nothing written; `wait_for_async_insert = 0` answers at once.
//! Every wait polls a condition with a bound.

use std::path::Path;
use std::time::Duration;

use jepsen_like_tests::TestCluster;

const BIN: &str = env!("CARGO_BIN_EXE_quorumhouse");
const LONG: Duration = Duration::from_secs(60);

const EVENTS: &str = "CREATE TABLE events (id UInt64, v String) \
     ENGINE = ReplicatedMergeTree('/tables/async_events', '{replica}') ORDER BY id";

async fn ok(c: &TestCluster, node: u64, q: &str) -> String {
    match c.sql(node, q).await {
        Ok(t) => t,
        Err(e) => panic!("node {node}: {q}: {e}"),
    }
}

/// Client `w`'s insert of ids `base + w*10 .. base + w*10 + 10`.
fn insert(settings: &str, base: u64, w: u64) -> String {
    let rows: Vec<String> = (0..10)
        .map(|i| base + w * 10 + i)
        .map(|id| format!("({id}, 'client {w}')"))
        .collect();
    format!(
        "INSERT INTO events SETTINGS {settings} VALUES {}",
        rows.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_inserts_are_written_together_and_acknowledged_on_their_quorum() {
    let mut c = TestCluster::start(Path::new(BIN), 3, &[]).expect("cluster starts");
    c.leader(&c.all(), LONG).await.unwrap();
    for n in 1..=3 {
        ok(&c, n, EVENTS).await;
    }
    c.live_replicas(1, "events", 3, LONG).await.unwrap();

    // 16 clients: the 16th insert fills the buffer, so the flush does not
    // depend on timing — one part, one commit, for all of them.
    let settings = "async_insert = 1, insert_quorum = 3, \
                    async_insert_max_query_number = 16, async_insert_busy_timeout_ms = 60000";
    let inserts: Vec<String> = (0..16).map(|w| insert(settings, 0, w)).collect();
    let results = futures::future::join_all(inserts.iter().map(|q| c.sql(1, q))).await;
    for (w, r) in results.iter().enumerate() {
        assert!(r.is_ok(), "client {w}: {r:?}");
    }
    // Acknowledged with insert_quorum = 3: every replica shows every row,
    // each once, right away.
    for n in 1..=3 {
        assert_eq!(
            ok(&c, n, "SELECT count(), uniqExact(id), sum(id) FROM events").await,
            "160\t160\t12720\n",
            "node {n}"
        );
    }
    let parts = ok(
        &c,
        1,
        "SELECT count() FROM system.parts WHERE table = 'events' AND active",
    )
    .await;
    assert_eq!(parts, "1\n");

    // A client with data that does not parse gets the error alone.
    let settings = "async_insert = 1, insert_quorum = 3, \
                    async_insert_max_query_number = 3, async_insert_busy_timeout_ms = 60000";
    let bad =
        format!("INSERT INTO events SETTINGS {settings} FORMAT CSV\n1000,fine\nnot a number,bad\n");
    // The three good ones fill their buffer; the bad one never joins it.
    let good: Vec<String> = (0..3).map(|w| insert(settings, 2000, w)).collect();
    let (good1, bad, good2, good3) = tokio::join!(
        c.sql(1, &good[0]),
        c.sql(1, &bad),
        c.sql(1, &good[1]),
        c.sql(1, &good[2]),
    );
    let e = bad.expect_err("bad data");
    assert!([6, 27, 72].contains(&e.code()), "a parse error: {e}");
    assert!(
        good1.is_ok() && good2.is_ok() && good3.is_ok(),
        "{good1:?} {good2:?} {good3:?}"
    );
    assert_eq!(
        ok(
            &c,
            2,
            "SELECT count() FROM events WHERE id >= 1000 AND id < 2000"
        )
        .await,
        "0\n",
        "nothing of the bad client"
    );
    assert_eq!(
        ok(&c, 3, "SELECT count() FROM events WHERE id >= 2000").await,
        "30\n"
    );

    // wait_for_async_insert = 0: answered once buffered, written by the timer.
    ok(
        &c,
        1,
        &insert(
            "async_insert = 1, wait_for_async_insert = 0, async_insert_busy_timeout_ms = 100",
            3000,
            0,
        ),
    )
    .await;
    c.wait_for("the unawaited insert is written", LONG, || async {
        let n = c
            .sql(1, "SELECT count() FROM events WHERE id >= 3000")
            .await
            .ok()?;
        (n == "10\n").then_some(())
    })
    .await
    .unwrap();

    // async_insert_deduplicate = 1: inserts still share one part per
    // partition, each keeps its own block id. An insert of the same data
    // (or the same token) as an earlier one, or as another in its buffer,
    // writes nothing; the others in its buffer are written once.
    for n in 1..=3 {
        ok(
            &c,
            n,
            "CREATE TABLE dd (id UInt64, v String) ENGINE = \
             ReplicatedMergeTree('/tables/async_dd', '{replica}') PARTITION BY id % 2 ORDER BY id",
        )
        .await;
    }
    c.live_replicas(1, "dd", 3, LONG).await.unwrap();
    let dd = |settings: &str, base: u64, w: u64| {
        insert(settings, base, w).replace("INTO events", "INTO dd")
    };
    let settings = |n: usize, token: &str| {
        format!(
            "async_insert = 1, async_insert_deduplicate = 1, insert_quorum = 3, \
             async_insert_max_query_number = {n}, async_insert_busy_timeout_ms = 60000{token}"
        )
    };
    let count = "SELECT count(), uniqExact(id) FROM dd";
    // Client 3 sends client 0's rows: a duplicate inside the buffer.
    let s4 = settings(4, "");
    let first = [dd(&s4, 0, 0), dd(&s4, 0, 1), dd(&s4, 0, 2), dd(&s4, 0, 0)];
    for r in futures::future::join_all(first.iter().map(|q| c.sql(1, q))).await {
        r.unwrap();
    }
    for n in 1..=3 {
        assert_eq!(ok(&c, n, count).await, "30\t30\n", "node {n}");
    }
    let parts = "SELECT count() FROM system.parts WHERE table = 'dd' AND active";
    assert_eq!(ok(&c, 1, parts).await, "2\n", "one part per partition");
    // Client 0's rows again (inserted before) in a buffer with two new
    // inserts, one carrying a token: the commit finds the old block, the
    // new two are written again without it.
    let tokened = settings(3, ", insert_deduplication_token = 'batch-7'");
    let s3 = settings(3, "");
    let (q1, q2, q3) = (dd(&s3, 0, 0), dd(&tokened, 100, 0), dd(&s3, 100, 1));
    let (a, b, d) = tokio::join!(c.sql(1, &q1), c.sql(1, &q2), c.sql(1, &q3));
    a.unwrap();
    b.unwrap();
    d.unwrap();
    for n in 1..=3 {
        assert_eq!(ok(&c, n, count).await, "50\t50\n", "node {n}");
    }
    // The same token with other rows is the same insert: not written.
    let s2 = settings(2, "");
    let tokened = settings(2, ", insert_deduplication_token = 'batch-7'");
    let (q1, q2) = (dd(&tokened, 500, 0), dd(&s2, 200, 0));
    let (a, b) = tokio::join!(c.sql(2, &q1), c.sql(2, &q2));
    a.unwrap();
    b.unwrap();
    for n in 1..=3 {
        assert_eq!(
            ok(&c, n, "SELECT count(), countIf(id >= 500) FROM dd").await,
            "60\t0\n",
            "node {n}"
        );
    }

    // A replica dies: the flush fails its quorum, every client in it gets
    // ClickHouse's 285 and none of their rows is written.
    c.kill(3);
    let settings = "async_insert = 1, insert_quorum = 3, \
                    async_insert_max_query_number = 4, async_insert_busy_timeout_ms = 60000";
    let inserts: Vec<String> = (0..4).map(|w| insert(settings, 4000, w)).collect();
    let results = futures::future::join_all(inserts.iter().map(|q| c.sql(1, q))).await;
    for r in results {
        let e = r.expect_err("quorum 3 with a dead replica");
        assert_eq!(e.code(), 285, "{e}");
    }
    for n in 1..=2 {
        assert_eq!(
            ok(&c, n, "SELECT count() FROM events WHERE id >= 4000").await,
            "0\n"
        );
    }
}
