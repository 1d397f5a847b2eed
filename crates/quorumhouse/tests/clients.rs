//! ClickHouse's own client libraries against a real node over HTTP,
//! unchanged: clickhouse-connect from PyPI (what Superset, dbt-clickhouse
//! and pandas users run), and raw HTTP requests shaped like theirs.

mod node;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use node::Node;

/// A raw HTTP/1.0 POST to the node; returns the status line, the headers
/// and the body.
fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status = head.lines().next().unwrap_or("").to_string();
    (status, head, out[split + 4..].to_vec())
}

/// Whether the response head has `line` (header names in any case).
fn has_header(head: &str, line: &str) -> bool {
    let (name, value) = line.split_once(": ").unwrap_or((line, ""));
    head.lines().any(|l| {
        l.split_once(": ")
            .is_some_and(|(n, v)| n.eq_ignore_ascii_case(name) && v.starts_with(value))
    })
}

fn var_uint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    var_uint(out, s.len() as u64);
    out.extend_from_slice(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_format_and_queries_in_the_body_over_http() {
    let node = Node::start().await;
    let port = node.http_port;
    let (status, _, _) = post(
        port,
        "/",
        &[],
        b"CREATE TABLE t (id UInt64, s String, v Nullable(Float64)) ENGINE = MergeTree ORDER BY id",
    );
    assert!(status.contains("200"), "{status}");
    // INSERT ... FORMAT Native with the query at the start of the body,
    // zstd-compressed as a client sends it: 2 rows.
    let mut body = b"INSERT INTO t (id, s, v) FORMAT Native\n".to_vec();
    var_uint(&mut body, 3);
    var_uint(&mut body, 2);
    string(&mut body, b"id");
    string(&mut body, b"UInt64");
    body.extend_from_slice(&7u64.to_le_bytes());
    body.extend_from_slice(&8u64.to_le_bytes());
    string(&mut body, b"s");
    string(&mut body, b"String");
    string(&mut body, b"a\tb");
    string(&mut body, b"");
    string(&mut body, b"v");
    string(&mut body, b"Nullable(Float64)");
    body.extend_from_slice(&[0, 1]);
    body.extend_from_slice(&1.5f64.to_le_bytes());
    body.extend_from_slice(&0f64.to_le_bytes());
    let mut z = Vec::new();
    zstd::stream::copy_encode(&body[..], &mut z, 3).unwrap();
    let (status, head, text) = post(port, "/", &[("Content-Encoding", "zstd")], &z);
    assert!(
        status.contains("200"),
        "{status} {}",
        String::from_utf8_lossy(&text)
    );
    assert!(head.contains("\"written_rows\":\"2\""), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("x-clickhouse-format"),
        "{head}"
    );
    // The rows back as Native: one block, types from the table.
    let (status, head, native) = post(
        port,
        "/",
        &[],
        b"SELECT id, s, v FROM t ORDER BY id FORMAT Native",
    );
    assert!(status.contains("200"), "{status}");
    assert!(
        head.contains("X-ClickHouse-Format: Native")
            || head.contains("x-clickhouse-format: Native"),
        "{head}"
    );
    assert_eq!(
        native,
        body[body.iter().position(|b| *b == b'\n').unwrap() + 1..].to_vec()
    );
    // version() and timezone() as ClickHouse answers them.
    let (_, _, text) = post(port, "/", &[], b"SELECT version(), timezone()");
    let text = String::from_utf8(text).unwrap();
    let (version, tz) = text.trim_end().split_once('\t').unwrap();
    assert_eq!(version.split('.').count(), 4, "{version}");
    assert!(
        version.split('.').all(|p| p.parse::<u64>().is_ok()),
        "{version}"
    );
    assert_eq!(tz, "UTC");
    // length() counts bytes of a string and elements of an array.
    let (_, _, text) = post(
        port,
        "/",
        &[],
        "SELECT length('héllo'), length([1, 2, 3]), lengthUTF8('héllo')".as_bytes(),
    );
    assert_eq!(String::from_utf8(text).unwrap(), "6\t3\t5\n");
    // JSON with meta, as the driver asks for an empty result.
    let (_, _, json) = post(port, "/", &[], b"SELECT id, s FROM t LIMIT 0\n FORMAT JSON");
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["meta"][0]["name"], "id");
    assert_eq!(json["meta"][0]["type"], "UInt64");
    assert_eq!(json["rows"], 0);
    // Bad input: a truncated Native block is an error, and nothing is written.
    let cut = &body[..body.len() - 3];
    let (status, head, _) = post(port, "/", &[], cut);
    assert!(!status.contains("200"), "{status}");
    assert!(
        head.contains("X-ClickHouse-Exception-Code")
            || head.contains("x-clickhouse-exception-code"),
        "{head}"
    );
    let (_, _, count) = post(port, "/", &[], b"SELECT count() FROM t");
    assert_eq!(String::from_utf8(count).unwrap(), "2\n");
    let (status, _, _) = post(port, "/", &[("Content-Encoding", "br")], b"SELECT 1");
    assert!(status.contains("400"), "{status}");
    // A session keeps what SET changes, not the settings a request carries.
    let get = |path: &str, q: &str| {
        let (_, _, b) = post(port, &format!("/{path}"), &[], q.as_bytes());
        String::from_utf8(b).unwrap()
    };
    get("?session_id=s1", "SET max_threads = 3");
    let q = "SELECT value FROM system.settings WHERE name = 'max_threads' OR name = 'max_result_rows' ORDER BY name";
    assert_eq!(get("?session_id=s1&max_result_rows=7", q), "7\n3\n");
    assert_eq!(get("?session_id=s1", q), "0\n3\n");
    assert_eq!(get("?session_id=s2", q), "0\n0\n");
    let (status, _, _) = post(
        port,
        "/?session_id=s1&session_timeout=999999",
        &[],
        b"SELECT 1",
    );
    assert!(status.contains("400") || status.contains("500"), "{status}");
}

/// `CREATE TEMPORARY TABLE` in an HTTP session: visible only there, before
/// a table of the same name in the current database, gone when dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_tables_live_in_their_session() {
    let node = Node::start().await;
    let port = node.http_port;
    let run = |session: &str, q: &str| {
        let (status, head, b) = post(port, &format!("/?session_id={session}"), &[], q.as_bytes());
        let code = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-clickhouse-exception-code: ")
                .map(str::to_string)
        });
        assert_eq!(status.contains("200"), code.is_none(), "{q}: {status}");
        (code, String::from_utf8_lossy(&b).to_string())
    };
    let ok = |session: &str, q: &str| {
        let (code, text) = run(session, q);
        assert_eq!(code, None, "{q}: {text}");
        text
    };
    ok("s1", "CREATE TEMPORARY TABLE tt (x UInt32, s String)");
    ok("s1", "INSERT INTO tt VALUES (1, 'a'), (2, 'b')");
    ok("s1", "INSERT INTO tt SELECT x + 10, s FROM tt");
    assert_eq!(
        ok(
            "s1",
            "SELECT tt.x, t2.s FROM tt JOIN tt AS t2 ON tt.x = t2.x ORDER BY 1"
        ),
        "1\ta\n2\tb\n11\ta\n12\tb\n"
    );
    // A table of the current database with the same name is shadowed.
    ok(
        "s1",
        "CREATE TABLE tt (x UInt8) ENGINE = MergeTree ORDER BY x",
    );
    ok("s1", "INSERT INTO default.tt VALUES (9)");
    assert_eq!(ok("s1", "SELECT count() FROM tt"), "4\n");
    assert_eq!(ok("s1", "SELECT count() FROM default.tt"), "1\n");
    assert_eq!(ok("s2", "SELECT count() FROM tt"), "1\n");
    ok("s1", "CREATE TEMPORARY TABLE only_s1 (x UInt8)");
    assert_eq!(run("s2", "SELECT * FROM only_s1").0.as_deref(), Some("60"));
    assert_eq!(
        run("s1", "CREATE TEMPORARY TABLE tt (x UInt8)")
            .0
            .as_deref(),
        Some("57")
    );
    ok("s1", "CREATE TEMPORARY TABLE IF NOT EXISTS tt (x UInt8)");
    assert_eq!(
        run("s1", "CREATE TEMPORARY TABLE default.t9 (x UInt8)")
            .0
            .as_deref(),
        Some("442")
    );
    // Not among the database's tables, nor is its hidden database listed.
    assert_eq!(ok("s1", "SHOW TABLES"), "tt\n");
    assert!(!ok("s1", "SHOW DATABASES").contains("_temporary"));
    ok("s1", "DROP TABLE tt");
    assert_eq!(
        ok("s1", "SELECT count() FROM tt"),
        "1\n",
        "the database's tt again"
    );
    ok("s1", "DROP TEMPORARY TABLE only_s1");
    assert_eq!(run("s1", "SELECT * FROM only_s1").0.as_deref(), Some("60"));
}

/// Whether python3 can import clickhouse-connect (`.ci/run` installs it);
/// says why a test is skipped when not.
fn has_clickhouse_connect() -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import clickhouse_connect"])
        .output();
    let ok = probe.is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipped: python3 with clickhouse-connect is not available");
    }
    ok
}

/// docs/python/clickhouse_connect_example.py against a real node (needs
/// `pip install clickhouse-connect`, which `.ci/run` does; skipped, saying
/// why, where it is missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_connect_works_unchanged() {
    if !has_clickhouse_connect() {
        return;
    }
    let node = Node::start().await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/python/clickhouse_connect_example.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("127.0.0.1:{}", node.http_port))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "inserted: 1000",
        "aggregate: (1000, 499500, 200, datetime.datetime(2026, 12, 1, 12, 0, 59), 999, datetime.date(2026, 12, 1), 500, Decimal('499750.00'))",
        "row: (5, 'n5', None, datetime.datetime(2026, 12, 1, 12, 0, 5), ['t2', 't2'], datetime.date(2026, 12, 6), False, Decimal('5.25'))",
        "row: (6, 'n6', 1.5, datetime.datetime(2026, 12, 1, 12, 0, 6), [], datetime.date(2026, 12, 7), True, Decimal('6.25'))",
        "empty: ('id', 'name') []",
        "identity: [",
        "'UTC']",
        "error code: 60",
        "parameters: 14",
        "arrow: 10 n3",
        "insert_arrow: ['ar-a', 'ar-b']",
        "dataframe: 7 1000",
        "insert_df: ['df-a', 'df-b'] ['0.00', '0.00']",
        "parquet: 3 ['pq-a', 'pq-b', 'pq/c'] [0.5, None, 2.5]",
        "lowcardinality: [(0, 'oslo', None), (1, 'rome', 't1'), (2, '', 't0'), (3, 'oslo', 't1'), (4, 'rome', None)] ['UInt32', 'LowCardinality(String)', 'LowCardinality(Nullable(String))']",
        "lowcardinality counts: (100, 34, 25)",
        "temporary: (10, 45)",
        "temporary elsewhere: 60",
        "nested: [(1, {'a': 'x', 'b': None}, {'k': 1, 'l': 2}, [{'p': 0.5}], 2, None), (2, {'a': 'y', 'b': 7}, {}, [], 0, 7)]",
        "nested types: ['Tuple(`a` String, `b` Nullable(Int32))', 'Map(String, UInt64)']",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

/// clickhouse-connect inserting with `insert_quorum = 3` into a replicated
/// table of a three-node cluster: the rows are on the other two replicas
/// the moment the insert returns (read there with
/// `select_sequential_consistency`), and a retry with the same
/// `insert_deduplication_token` writes nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_connect_inserts_with_a_quorum_on_a_cluster() {
    if !has_clickhouse_connect() {
        return;
    }
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_quorumhouse"));
    let c = jepsen_like_tests::TestCluster::start(bin, 3, &[]).expect("cluster starts");
    let long = std::time::Duration::from_secs(60);
    c.leader(&c.all(), long).await.unwrap();
    c.sql(
        1,
        "CREATE TABLE q ON CLUSTER default (id UInt64, s String) \
         ENGINE = ReplicatedMergeTree('/tables/q', '{replica}') ORDER BY id",
    )
    .await
    .unwrap();
    c.live_replicas(1, "q", 3, long).await.unwrap();
    let script = r#"
import sys, clickhouse_connect
h1, h2, h3 = sys.argv[1:4]
def client(a):
    host, port = a.rsplit(":", 1)
    return clickhouse_connect.get_client(host=host, port=int(port))
c1 = client(h1)
rows = [[i, f"s{i}"] for i in range(500)]
settings = {"insert_quorum": 3, "insert_deduplication_token": "batch-1"}
c1.insert("q", rows, column_names=["id", "s"], settings=settings)
for a in (h2, h3):
    n = client(a).query("SELECT count(), sum(id) FROM q",
                        settings={"select_sequential_consistency": 1}).result_rows[0]
    print("replica:", a, n[0], n[1])
c1.insert("q", rows, column_names=["id", "s"], settings=settings)
print("after retry:", c1.query("SELECT count() FROM q").result_rows[0][0])
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .args([c.http_addr(1), c.http_addr(2), c.http_addr(3)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches(" 500 124750").count(), 2, "{text}");
    assert!(text.contains("after retry: 500"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_binary_formats_over_http() {
    let node = Node::start().await;
    let port = node.http_port;
    for sql in [
        "CREATE TABLE rb (id UInt32, s Nullable(String), a Array(UInt8), d Date, t DateTime) ENGINE = MergeTree ORDER BY id",
        "INSERT INTO rb VALUES (1, 'x', [1, 2], '1970-01-02', '1970-01-01 00:00:10'), (2, NULL, [], '1970-01-01', '1970-01-01 00:00:00')",
    ] {
        let (status, _, text) = post(port, "/", &[], sql.as_bytes());
        assert!(status.contains("200"), "{status} {}", String::from_utf8_lossy(&text));
    }
    // ClickHouse's layout: Nullable is a flag then the value only when not
    // NULL, Array a VarUInt length then its elements.
    let mut rows = Vec::new();
    rows.extend(1u32.to_le_bytes());
    rows.extend([0, 1, b'x']);
    rows.extend([2, 1, 2]);
    rows.extend(1u16.to_le_bytes());
    rows.extend(10u32.to_le_bytes());
    rows.extend(2u32.to_le_bytes());
    rows.extend([1]);
    rows.extend([0]);
    rows.extend(0u16.to_le_bytes());
    rows.extend(0u32.to_le_bytes());
    let (status, head, body) = post(
        port,
        "/?default_format=RowBinary",
        &[],
        b"SELECT * FROM rb ORDER BY id",
    );
    assert!(status.contains("200"), "{status}");
    assert!(head.contains("RowBinary"), "{head}");
    assert_eq!(body, rows);
    let mut want = Vec::new();
    var_uint(&mut want, 5);
    for n in ["id", "s", "a", "d", "t"] {
        string(&mut want, n.as_bytes());
    }
    for t in [
        "UInt32",
        "Nullable(String)",
        "Array(UInt8)",
        "Date",
        "DateTime",
    ] {
        string(&mut want, t.as_bytes());
    }
    want.extend(&rows);
    let (_, _, body) = post(
        port,
        "/",
        &[],
        b"SELECT * FROM rb ORDER BY id FORMAT RowBinaryWithNamesAndTypes",
    );
    assert_eq!(body, want);
    // An empty result is the header alone.
    let (_, _, body) = post(
        port,
        "/",
        &[],
        b"SELECT id FROM rb WHERE id > 5 FORMAT RowBinaryWithNames",
    );
    assert_eq!(body, [1, 2, b'i', b'd']);
    // The same bytes go back in: with the header, and as plain rows.
    for (format, data) in [("RowBinaryWithNamesAndTypes", &want), ("RowBinary", &rows)] {
        let mut body = format!("INSERT INTO rb FORMAT {format}\n").into_bytes();
        body.extend(data.iter());
        let (status, _, text) = post(port, "/", &[], &body);
        assert!(
            status.contains("200"),
            "{status} {}",
            String::from_utf8_lossy(&text)
        );
    }
    let (_, _, text) = post(
        port,
        "/",
        &[],
        b"SELECT count(), countIf(s IS NULL), sum(length(a)) FROM rb",
    );
    assert_eq!(String::from_utf8(text).unwrap(), "6\t3\t6\n");
    // Rows cut short write nothing.
    let mut body = b"INSERT INTO rb FORMAT RowBinary\n".to_vec();
    body.extend(&rows[..rows.len() - 1]);
    let (status, _, _) = post(port, "/", &[], &body);
    assert!(!status.contains("200"), "{status}");
    let (_, _, text) = post(port, "/", &[], b"SELECT count() FROM rb");
    assert_eq!(String::from_utf8(text).unwrap(), "6\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_status_json_compact_and_compression_over_http() {
    let node = Node::start().await;
    let port = node.http_port;
    let (status, _, body) = node::http(port, "GET", "/replicas_status", b"");
    assert_eq!((status, body.as_str()), (200, "Ok.\n"));
    let (status, _, text) = post(
        port,
        "/",
        &[],
        b"CREATE TABLE r (id UInt64, s String) ENGINE = ReplicatedMergeTree('/tables/rs', '{replica}') ORDER BY id",
    );
    assert!(
        status.contains("200"),
        "{status} {}",
        String::from_utf8_lossy(&text)
    );
    // 503 while the new replica is still read-only (no lease yet), then 200.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let body = loop {
        let (status, _, body) = node::http(port, "GET", "/replicas_status?verbose=1", b"");
        match status {
            200 => break body,
            503 if std::time::Instant::now() < deadline => {
                assert!(body.contains("default.r:"), "{body}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            _ => panic!("{status} {body}"),
        }
    };
    assert!(body.starts_with("default.r:\tAbsolute delay: "), "{body}");
    post(port, "/", &[], b"INSERT INTO r VALUES (1, 'a'), (2, 'b')");
    let (_, _, json) = post(
        port,
        "/",
        &[],
        b"SELECT id, s FROM r ORDER BY id FORMAT JSONCompactEachRow",
    );
    assert_eq!(String::from_utf8(json).unwrap(), "[1, \"a\"]\n[2, \"b\"]\n");
    let (_, _, json) = post(
        port,
        "/",
        &[],
        b"SELECT id, s FROM r ORDER BY id FORMAT JSONCompact",
    );
    let text = String::from_utf8(json).unwrap();
    assert!(
        text.contains("\t\"data\":\n\t[\n\t\t[1, \"a\"],\n\t\t[2, \"b\"]\n\t],"),
        "{text}"
    );
    // Compressed only when asked twice: the setting and Accept-Encoding.
    let q = b"SELECT id, s FROM r ORDER BY id";
    let (_, head, plain) = post(port, "/", &[("Accept-Encoding", "zstd")], q);
    assert!(
        !head.to_ascii_lowercase().contains("content-encoding"),
        "{head}"
    );
    let (_, head, z) = post(
        port,
        "/?enable_http_compression=1",
        &[("Accept-Encoding", "br, zstd")],
        q,
    );
    assert!(
        head.to_ascii_lowercase().contains("content-encoding: zstd"),
        "{head}"
    );
    assert_eq!(zstd::stream::decode_all(&z[..]).unwrap(), plain);
}

/// Settings as ClickHouse checks them: an unknown name is UNKNOWN_SETTING
/// (115) wherever it is given, a ClickHouse setting we do not act on is
/// accepted at its default and refused at a value that would change the
/// answer; the JSON output settings and Parquet both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_checked_json_options_and_parquet_over_http() {
    let node = Node::start().await;
    let port = node.http_port;
    for (path, body) in [
        ("/?insert_qourum=2", &b"SELECT 1"[..]),
        ("/", b"SELECT 1 SETTINGS insert_qourum = 2"),
        ("/", b"SET insert_qourum = 2"),
    ] {
        let (status, head, text) = post(port, path, &[], body);
        let text = String::from_utf8_lossy(&text);
        assert!(!status.contains("200"), "{path} {status}");
        assert!(
            has_header(&head, "X-ClickHouse-Exception-Code: 115"),
            "{head}"
        );
        assert!(
            text.contains("Setting insert_qourum is neither a builtin setting")
                && text.contains("(UNKNOWN_SETTING)"),
            "{text}"
        );
    }
    // ClickHouse's settings: kept (no effect here) or, when they would
    // change the result, refused unless at their default.
    let (status, _, text) = post(
        port,
        "/?max_block_size=1000&transform_null_in=0&wait_end_of_query=1",
        &[],
        b"SELECT 1 IN (1, NULL)",
    );
    assert!(status.contains("200"), "{status}");
    assert_eq!(String::from_utf8_lossy(&text), "1\n");
    let (_, head, text) = post(port, "/", &[], b"SELECT 1 SETTINGS transform_null_in = 1");
    assert!(
        has_header(&head, "X-ClickHouse-Exception-Code: 48"),
        "{head}"
    );
    assert!(
        String::from_utf8_lossy(&text).contains("transform_null_in = 1 is not supported"),
        "{}",
        String::from_utf8_lossy(&text)
    );

    let q = b"SELECT toUInt64(1) AS u, toInt32(2) AS i, 'a/b' AS s FORMAT JSONEachRow";
    let (_, _, text) = post(port, "/", &[], q);
    assert_eq!(
        String::from_utf8_lossy(&text),
        "{\"u\":1,\"i\":2,\"s\":\"a\\/b\"}\n"
    );
    let (_, head, text) = post(
        port,
        "/?output_format_json_quote_64bit_integers=1&output_format_json_escape_forward_slashes=0&send_progress_in_http_headers=1",
        &[],
        q,
    );
    assert_eq!(
        String::from_utf8_lossy(&text),
        "{\"u\":\"1\",\"i\":2,\"s\":\"a/b\"}\n"
    );
    assert!(has_header(&head, "X-ClickHouse-Progress: {"), "{head}");

    // Parquet out of one table and into another: the same rows.
    post(
        port,
        "/",
        &[],
        b"CREATE TABLE pq (id UInt64, s String, n Nullable(Float64), d DateTime, a Array(String)) ENGINE = MergeTree ORDER BY id",
    );
    post(
        port,
        "/",
        &[],
        b"INSERT INTO pq SELECT number, toString(number), if(number % 3 = 0, NULL, number / 2), toDateTime('2026-12-01 00:00:00') + number, [toString(number)] FROM numbers(5000)",
    );
    post(port, "/", &[], b"CREATE TABLE pq2 AS pq");
    let (status, head, parquet) = post(port, "/", &[], b"SELECT * FROM pq FORMAT Parquet");
    assert!(status.contains("200"), "{status}");
    assert!(has_header(&head, "X-ClickHouse-Format: Parquet"), "{head}");
    assert_eq!(&parquet[..4], b"PAR1");
    let (status, _, text) = post(
        port,
        "/?query=INSERT%20INTO%20pq2%20FORMAT%20Parquet",
        &[],
        &parquet,
    );
    assert!(
        status.contains("200"),
        "{status} {}",
        String::from_utf8_lossy(&text)
    );
    let digest = |t: &str| {
        let q = format!("SELECT count(), sum(id), sum(length(s)), round(sum(n), 3), countIf(n IS NULL), sum(toUInt32(d)), sum(length(a)) FROM {t}");
        String::from_utf8(post(port, "/", &[], q.as_bytes()).2).unwrap()
    };
    assert_eq!(digest("pq"), digest("pq2"));
    assert!(digest("pq2").starts_with("5000\t"), "{}", digest("pq2"));
    // A cut-short file writes nothing.
    let (status, _, text) = post(
        port,
        "/?query=INSERT%20INTO%20pq2%20FORMAT%20Parquet",
        &[],
        &parquet[..parquet.len() / 2],
    );
    assert!(!status.contains("200"), "{status}");
    assert!(
        String::from_utf8_lossy(&text).contains("Parquet"),
        "{}",
        String::from_utf8_lossy(&text)
    );
    assert!(digest("pq2").starts_with("5000\t"));
}

/// Our result bytes against ClickHouse's own for a table of every type we
/// have (`tests/golden/make.py` made the references with chDB 4.4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_match_clickhouses_bytes() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let node = Node::start().await;
    let port = node.http_port;
    // Every scalar type, then tuples, maps and their nestings.
    for (name, table) in [("all_types", "g"), ("composite", "c")] {
        let sql = std::fs::read_to_string(golden.join(format!("{name}.sql"))).unwrap();
        for stmt in sql.split(";\n").filter(|s| !s.trim().is_empty()) {
            let (status, _, text) = post(port, "/", &[], stmt.as_bytes());
            assert!(
                status.contains("200"),
                "{status} {}",
                String::from_utf8_lossy(&text)
            );
        }
        for format in [
            "RowBinaryWithNamesAndTypes",
            "TSVWithNamesAndTypes",
            "CSVWithNames",
            "JSONEachRow",
            "JSONCompact",
            "Native",
        ] {
            let want = std::fs::read(golden.join(format!("{name}.{format}"))).unwrap();
            let q = format!("SELECT * FROM {table} ORDER BY 1 FORMAT {format}");
            let (status, _, mut ours) = post(port, "/", &[], q.as_bytes());
            assert!(status.contains("200"), "{name} {format}: {status}");
            let mut want = want;
            if format == "JSONCompact" {
                // Both end with statistics whose timings differ; the rest is
                // compared up to "rows", and the statistics' shape below.
                let text = String::from_utf8_lossy(&ours).to_string();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert!(v["statistics"]["elapsed"].is_f64(), "{text}");
                assert_eq!(v["statistics"]["rows_read"], 2, "{text}");
                let cut = |b: &mut Vec<u8>| {
                    let text = String::from_utf8_lossy(b).to_string();
                    let end = text
                        .find("\"rows\": 2")
                        .map(|i| i + 9)
                        .unwrap_or(text.len());
                    *b = text.as_bytes()[..end].to_vec();
                };
                cut(&mut want);
                cut(&mut ours);
            }
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&want),
                "{name} {format}"
            );
            assert_eq!(ours, want, "{name} {format}");
        }
    }
    // ClickHouse's own bytes read back: its Native and RowBinary blocks of
    // tuples and maps inserted into a copy print as its TSV does.
    let sql = std::fs::read_to_string(golden.join("composite.sql")).unwrap();
    let want = std::fs::read(golden.join("composite.TSVWithNamesAndTypes")).unwrap();
    for format in ["Native", "RowBinaryWithNamesAndTypes"] {
        let copy = format!("c_{}", format.to_lowercase());
        let create = sql
            .split(";\n")
            .next()
            .unwrap()
            .replace("TABLE c ", &format!("TABLE {copy} "));
        let (status, _, text) = post(port, "/", &[], create.as_bytes());
        assert!(
            status.contains("200"),
            "{status} {}",
            String::from_utf8_lossy(&text)
        );
        let data = std::fs::read(golden.join(format!("composite.{format}"))).unwrap();
        let q = format!("/?query=INSERT%20INTO%20{copy}%20FORMAT%20{format}");
        let (status, _, text) = post(port, &q, &[], &data);
        assert!(
            status.contains("200"),
            "{format}: {status} {}",
            String::from_utf8_lossy(&text)
        );
        let q = format!("SELECT * FROM {copy} ORDER BY 1 FORMAT TSVWithNamesAndTypes");
        let (_, _, ours) = post(port, "/", &[], q.as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&want),
            "{format} read back"
        );
    }
}
