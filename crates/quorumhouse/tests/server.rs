//! A real `quorumhouse server` process and the gRPC client: queries, inserts
//! streamed from the client, errors with ClickHouse codes, disconnects and
//! graceful shutdown.

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use qh_client::{Client, ClientError, QueryOptions};

mod node;
mod pty;

use node::{http, text, url, Node};

#[tokio::test(flavor = "multi_thread")]
async fn queries_and_inserts_over_grpc() {
    let node = Node::start().await;
    let mut c = node.client().await;
    c.query("CREATE TABLE t (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
        .await
        .unwrap();
    let mut csv = String::new();
    for i in 0..200_000u64 {
        csv.push_str(&format!("{i},s{}\n", i % 7));
    }
    let out = c
        .insert_bytes("INSERT INTO t FORMAT CSV", csv.into_bytes())
        .await
        .unwrap();
    assert_eq!(out.summary.written_rows, 200_000);
    let out = c
        .query("SELECT count(), uniqExact(s) FROM t")
        .await
        .unwrap();
    assert_eq!(text(&out), "200000\t7\n");
    // A session keeps SET and USE.
    c.query("CREATE DATABASE db2").await.unwrap();
    c.query("USE db2").await.unwrap();
    c.query("CREATE TABLE u (x UInt8) ENGINE = MergeTree ORDER BY x")
        .await
        .unwrap();
    let out = c
        .query("SELECT database, name FROM system.tables ORDER BY name")
        .await
        .unwrap();
    assert_eq!(text(&out), "default\tt\ndb2\tu\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_keep_clickhouse_codes() {
    let node = Node::start().await;
    let mut c = node.client().await;
    match c.query("SELECT * FROM missing").await {
        Err(ClientError::Server { code, name, .. }) => {
            assert_eq!((code, name.as_str()), (60, "UNKNOWN_TABLE"));
        }
        other => panic!("{other:?}"),
    }
    match c.query("SELEC 1").await {
        Err(e) => assert_eq!((e.code(), e.name()), (62, "SYNTAX_ERROR")),
        other => panic!("{other:?}"),
    }
    c.query("CREATE TABLE t (id UInt64) ENGINE = MergeTree ORDER BY id")
        .await
        .unwrap();
    let e = c
        .insert_bytes("INSERT INTO t FORMAT CSV", b"1\nx\n".to_vec())
        .await
        .unwrap_err();
    assert_eq!(e.code(), 27, "{e}");
    let out = c.query("SELECT count() FROM t").await.unwrap();
    assert_eq!(text(&out), "0\n");
    // The connection is still usable after errors.
    assert!(c.ping().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_disconnects_mid_insert_writes_nothing() {
    let node = Node::start().await;
    let mut c = node.client().await;
    c.query("CREATE TABLE t (id UInt64) ENGINE = MergeTree ORDER BY id")
        .await
        .unwrap();
    // Send some input, then drop the request stream with an error instead of
    // finishing it.
    let chunks =
        futures::stream::iter(vec![b"1\n2\n3\n".to_vec()]).chain(futures::stream::pending());
    let mut c2 = node.client().await;
    // The call never finishes by itself; dropping it at the timeout resets
    // the stream while the server is reading the input.
    let r = tokio::time::timeout(
        Duration::from_millis(500),
        c2.run("INSERT INTO t FORMAT CSV", Some(chunks)),
    )
    .await;
    assert!(
        r.is_err(),
        "the insert finished without its input ending: {r:?}"
    );
    drop(c2);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.query("SELECT count() FROM t").await.unwrap();
        assert_eq!(text(&out), "0\n");
        // The aborted insert holds no hidden part any longer.
        let out = c
            .query("SELECT count() FROM system.parts WHERE table = 't'")
            .await
            .unwrap();
        if text(&out) == "0\n" || Instant::now() > deadline {
            assert_eq!(text(&out), "0\n");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_node_cleanly_and_data_survives() {
    let mut node = Node::start().await;
    let mut c = node.client().await;
    c.query("CREATE TABLE t (id UInt64) ENGINE = MergeTree ORDER BY id")
        .await
        .unwrap();
    c.query("INSERT INTO t SELECT number FROM numbers(1000)")
        .await
        .unwrap();
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(node.child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = node.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    let o = Command::new(env!("CARGO_BIN_EXE_quorumhouse"))
        .args(["local", "--data-dir"])
        .arg(node._dir.path())
        .args(["--query", "SELECT count() FROM t"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1000\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_insert_reports_progress() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let node = Node::start().await;
    let mut c = node.client().await;
    c.query("CREATE TABLE t (id UInt64) ENGINE = MergeTree ORDER BY id")
        .await
        .unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let seen2 = Arc::clone(&seen);
    c.on_progress(Arc::new(move |p: &qh_client::Progress| {
        seen2.fetch_max(p.written_rows, Ordering::SeqCst);
    }));
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let mut first = String::new();
    for i in 0..100_000u64 {
        first.push_str(&format!("{i}\n"));
    }
    tx.send(first.into_bytes()).await.unwrap();
    // The input is still open: the insert cannot have finished, yet the
    // server reports the rows it has parsed. Then the input ends.
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.load(Ordering::SeqCst) < 65_536 {
            assert!(
                Instant::now() < deadline,
                "no progress while the insert ran"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(tx);
    };
    let (r, ()) = tokio::join!(
        c.run(
            "INSERT INTO t FORMAT CSV",
            Some(tokio_stream::wrappers::ReceiverStream::new(rx))
        ),
        watch
    );
    assert_eq!(r.unwrap().summary.written_rows, 100_000);
    let out = c.query("SELECT count() FROM t").await.unwrap();
    assert_eq!(text(&out), "100000\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_interface_queries_inserts_and_metrics() {
    let node = Node::start().await;
    let port = node.http_port;
    let r = tokio::task::spawn_blocking(move || {
        assert_eq!(http(port, "GET", "/ping", b"").2, "Ok.\n");
        let (st, _, b) = http(
            port,
            "POST",
            "/",
            b"CREATE TABLE h (id UInt64, s String) ENGINE = MergeTree ORDER BY id",
        );
        assert_eq!(st, 200, "{b}");
        let (st, _, b) = http(
            port,
            "POST",
            &url("INSERT INTO h FORMAT CSV"),
            b"1,a\n2,b\n",
        );
        assert_eq!(st, 200, "{b}");
        let (st, _, b) = http(port, "GET", &url("SELECT id, s FROM h ORDER BY id"), b"");
        assert_eq!((st, b.as_str()), (200, "1\ta\n2\tb\n"));
        let (st, h, b) = http(port, "GET", &url("SELECT * FROM nope"), b"");
        assert_eq!(st, 404, "{b}");
        assert!(
            h.to_ascii_lowercase()
                .contains("x-clickhouse-exception-code: 60"),
            "{h}"
        );
        assert!(b.starts_with("Code: 60."), "{b}");
        let (st, _, b) = http(port, "GET", "/metrics", b"");
        assert_eq!(st, 200);
        assert!(b.contains("qh_queries_total 4"), "{b}");
        assert!(b.contains("qh_failed_queries_total 1"), "{b}");
        assert!(b.contains("qh_inserted_rows_total 2"), "{b}");
        assert!(b.contains("qh_active_parts 1"), "{b}");
    });
    r.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_fails_over_to_the_next_host_and_names_every_failure() {
    let node = Node::start().await;
    let live = node.endpoint.trim_start_matches("http://").to_string();
    // A port nothing listens on (reserved for this test, never bound).
    let dead = format!("127.0.0.1:{}", jepsen_like_tests::free_port().unwrap());
    let run = |hosts: &str| {
        Command::new(env!("CARGO_BIN_EXE_quorumhouse"))
            .args(["client", "--host", hosts, "--query", "SELECT 41 + 1"])
            .output()
            .unwrap()
    };
    let out = run(&format!("{dead},{live}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    let dead2 = format!("127.0.0.1:{}", jepsen_like_tests::free_port().unwrap());
    let out = run(&format!("{dead},{dead2}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Code: 279"), "{err}");
    assert!(err.contains(&dead) && err.contains(&dead2), "{err}");
    assert!(err.contains("refused"), "{err}");
}

/// docs/python/quorumhouse_example.py against a real node (needs grpcio,
/// grpcio-tools and pyarrow, which `.ci/run` installs; skipped, saying why,
/// where they are missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_queries_a_node() {
    let probe = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, pyarrow"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("skipped: python3 with grpcio, grpcio-tools and pyarrow is not available");
        return;
    }
    let node = Node::start().await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/python/quorumhouse_example.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(node.endpoint.trim_start_matches("http://"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("rows: 1000 sum: 499500"), "{text}");
    assert!(text.contains("error code: 60 UNKNOWN_TABLE"), "{text}");
}

/// Polls `system.processes` (bounded) until `present` holds for `query_id`.
async fn wait_listed(c: &mut Client, query_id: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = c
            .query("SELECT query_id FROM system.processes")
            .await
            .unwrap();
        if text(&out).lines().any(|l| l == query_id) == present {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{query_id} still {} system.processes",
            if present { "missing from" } else { "in" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A statement that runs until stopped (system.numbers never ends and no
/// row matches).
const ENDLESS: &str = "SELECT count() FROM system.numbers WHERE number % 1000 = 1001";

/// Runs ENDLESS under `id` on a connection of its own.
async fn spawn_endless(
    node: &Node,
    id: &str,
) -> tokio::task::JoinHandle<Result<qh_client::QueryOutput, ClientError>> {
    let mut c = node.client().await;
    let opts = QueryOptions::new().query_id(id);
    tokio::spawn(async move { c.query_with(ENDLESS, opts).await })
}

#[tokio::test(flavor = "multi_thread")]
async fn running_statements_are_listed_and_cancelled_by_query_id() {
    let node = Node::start().await;
    let mut watcher = node.client().await;

    // Cancelled by id from another connection (the client library's cancel).
    let run = spawn_endless(&node, "endless-1").await;
    wait_listed(&mut watcher, "endless-1", true).await;
    let dup = watcher
        .query_with("SELECT 1", QueryOptions::new().query_id("endless-1"))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), 216, "{dup}");
    assert_eq!(dup.name(), "QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING");
    assert!(watcher.cancel("endless-1").await.unwrap());
    let err = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), 394, "{err}");
    wait_listed(&mut watcher, "endless-1", false).await;
    assert!(!watcher.cancel("endless-1").await.unwrap());

    // KILL QUERY in SQL, with TEST only listing and ASYNC stopping.
    let run = spawn_endless(&node, "endless-2").await;
    wait_listed(&mut watcher, "endless-2", true).await;
    let out = watcher
        .query("KILL QUERY WHERE query_id = 'endless-2' TEST")
        .await
        .unwrap();
    assert!(
        text(&out).starts_with("waiting\tendless-2\tdefault\t"),
        "{}",
        text(&out)
    );
    wait_listed(&mut watcher, "endless-2", true).await;
    watcher
        .query("KILL QUERY WHERE query LIKE '%system.numbers%' AND query_id = 'endless-2'")
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), 394, "{err}");

    // A client that drops its call stops the statement on the server.
    let run = spawn_endless(&node, "endless-3").await;
    wait_listed(&mut watcher, "endless-3", true).await;
    run.abort();
    wait_listed(&mut watcher, "endless-3", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn arrow_batches_insert_and_stream_back() {
    use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let node = Node::start().await;
    let mut c = node.client().await;
    c.query(
        "CREATE TABLE t (id UInt64, name String, score Float64 DEFAULT 1.5) \
         ENGINE = MergeTree ORDER BY id",
    )
    .await
    .unwrap();
    // Int32 ids are cast to UInt64; `score` is missing and gets its default.
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("id", DataType::Int32, false),
    ]));
    let batches: Vec<RecordBatch> = (0..3)
        .map(|k| {
            let ids: Vec<i32> = (k * 1000..(k + 1) * 1000).collect();
            let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(names)),
                    Arc::new(Int32Array::from(ids)),
                ],
            )
            .unwrap()
        })
        .collect();
    let summary = c
        .insert_batches("t", &batches, QueryOptions::new().query_id("arrow-load"))
        .await
        .unwrap();
    assert_eq!(summary.written_rows, 3000);
    assert_eq!(summary.query_id, "arrow-load");
    let out = c
        .query("SELECT count(), sum(id), max(name), sum(score) FROM t")
        .await
        .unwrap();
    assert_eq!(text(&out), "3000\t4498500\tn999\t4500\n");

    // Streamed back batch by batch.
    let mut rows = c
        .query_stream("SELECT id FROM t ORDER BY id", QueryOptions::new())
        .await
        .unwrap();
    let mut n = 0;
    while let Some(b) = rows.next_batch().await.unwrap() {
        n += b.num_rows();
    }
    assert_eq!(n, 3000);
    assert!(rows.summary().is_some());
    assert_eq!(rows.schema().unwrap().field(0).name(), "id");

    // Garbage in ArrowStream is a clear error and writes nothing.
    let err = c
        .insert_bytes("INSERT INTO t FORMAT ArrowStream", b"not arrow".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.code(), 27, "{err}");
    let out = c.query("SELECT count() FROM t").await.unwrap();
    assert_eq!(text(&out), "3000\n");
}

/// Polls (bounded) until this many running statements look like ENDLESS.
async fn wait_matching_processes(c: &mut Client, count: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = c
            .query("SELECT count() FROM system.processes WHERE query LIKE '%number % 1000%'")
            .await
            .unwrap();
        if text(&out) == count {
            return;
        }
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// clickhouse-client's habits on a real terminal: a multi-line statement,
/// a pretty table by default, Ctrl-C cancelling a running statement (on the
/// server too) and returning to the prompt, `\\q`.
#[tokio::test(flavor = "multi_thread")]
async fn interactive_client_runs_and_cancels_statements() {
    let node = Node::start().await;
    let mut watcher = node.client().await;
    let port = node.endpoint.rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quorumhouse"));
    cmd.args(["client", "--port", &port])
        .env("QUORUMHOUSE_HISTORY_FILE", dir.path().join("history"));
    let mut t = pty::Pty::spawn(cmd);
    t.expect(":) ");
    t.send_line("SELECT number * 2 AS doubled");
    t.expect(":-] ");
    t.send_line("FROM numbers(3) ORDER BY doubled;");
    let shown = t.expect("Ok.");
    // Pretty on a terminal: a framed table with the column name.
    assert!(
        shown.contains("doubled") && shown.contains("4"),
        "{shown:?}"
    );
    t.expect(":) ");
    t.send_line(&format!("{ENDLESS};"));
    // The watcher's own statement matches too: 2 while the prompt's runs.
    wait_matching_processes(&mut watcher, "2\n", "the statement never ran").await;
    t.send_control(0x03);
    t.expect("Query was cancelled.");
    t.expect(":) ");
    wait_matching_processes(
        &mut watcher,
        "1\n",
        "the server kept running the cancelled statement",
    )
    .await;
    t.send_line("\\q");
    t.expect("Bye.");
    assert_eq!(t.wait(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn http_database_parameter_selects_the_database() {
    let node = Node::start().await;
    let port = node.http_port;
    let post = |params: &str, sql: &str| {
        let (st, _, b) = http(port, "POST", &format!("/?{params}"), sql.as_bytes());
        (st, b)
    };
    assert_eq!(post("", "CREATE DATABASE d1").0, 200);
    let create = "CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x";
    assert_eq!(post("database=d1", create).0, 200);
    assert_eq!(post("database=d1", "SHOW TABLES"), (200, "t\n".to_string()));
    assert_eq!(post("", "SHOW TABLES FROM d1"), (200, "t\n".to_string()));
    let (st, body) = post("database=nope%60x", "SELECT 1");
    assert_eq!(st, 404, "{body}");
    assert!(body.starts_with("Code: 81."), "{body}");
}

/// Users of the config file (ClickHouse's users.xml): they log in with
/// the password whose hash the file holds, have exactly its grants, are
/// listed as `users_xml`, and SQL cannot change or drop them.
#[tokio::test(flavor = "multi_thread")]
async fn users_of_the_config_file_log_in_and_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    // sha256("etl-pw"), as `echo -n etl-pw | sha256sum` gives it.
    let hash = "c61b05cfa61ba427637c8a03240e404b8d65c048722890a5401835e3cca1a3e9";
    std::fs::write(
        &config,
        format!(
            "[users.default]\nnetworks = [\"::1\", \"127.0.0.1\"]\naccess_management = true\n\n\
             [users.etl]\npassword_sha256_hex = \"{hash}\"\ngrants = [\"SELECT, INSERT ON warehouse.*\"]\n"
        ),
    )
    .unwrap();
    let node = Node::start_with(&["--config", config.to_str().unwrap()]).await;
    let port = node.http_port;
    let admin = |sql: &str| {
        let (status, _, body) = http(port, "POST", "/", sql.as_bytes());
        assert_eq!(status, 200, "{sql}: {body}");
    };
    admin("CREATE DATABASE warehouse");
    admin("CREATE TABLE warehouse.t (a UInt64) ENGINE = MergeTree ORDER BY a");
    admin("CREATE TABLE default.secret (a UInt64) ENGINE = MergeTree ORDER BY a");
    let etl = |sql: &str, password: &str| {
        let (status, _, body) = http(
            port,
            "POST",
            &format!("/?user=etl&password={password}"),
            sql.as_bytes(),
        );
        (status, body)
    };
    assert_eq!(etl("INSERT INTO warehouse.t VALUES (1)", "etl-pw").0, 200);
    assert_eq!(
        etl("SELECT count() FROM warehouse.t", "etl-pw"),
        (200, "1\n".into())
    );
    assert!(etl("SELECT 1", "wrong").1.starts_with("Code: 516."));
    assert!(etl("SELECT * FROM default.secret", "etl-pw")
        .1
        .starts_with("Code: 497."));
    let (status, _, body) = http(
        port,
        "POST",
        "/",
        b"SELECT name, storage FROM system.users ORDER BY name FORMAT CSV",
    );
    assert_eq!(
        (status, body.as_str()),
        (200, "\"default\",\"users_xml\"\n\"etl\",\"users_xml\"\n")
    );
    for sql in [
        "ALTER USER etl IDENTIFIED BY 'other'",
        "DROP USER etl",
        "GRANT SELECT ON default.secret TO etl",
        "CREATE USER etl",
        "ALTER USER default IDENTIFIED BY 'x'",
    ] {
        let (_, _, body) = http(port, "POST", "/", sql.as_bytes());
        assert!(
            body.starts_with("Code: 495.") && body.contains("users_xml"),
            "{sql}: {body}"
        );
    }
    // SQL users live beside them.
    admin("CREATE USER bob IDENTIFIED BY 'b'");
    let (_, _, body) = http(
        port,
        "POST",
        "/?user=bob&password=b",
        b"SELECT currentUser()",
    );
    assert_eq!(body, "bob\n");
    // Without a config, the built-in `default` keeps to the loopback.
    let plain = Node::start().await;
    let (_, _, body) = http(
        plain.http_port,
        "POST",
        "/",
        b"SELECT host_ip FROM system.users WHERE name = 'default'",
    );
    assert_eq!(body, "::1, 127.0.0.1\n");
}
