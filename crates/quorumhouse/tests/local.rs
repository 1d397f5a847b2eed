//! End-to-end tests of `quorumhouse local`: real processes, real part files.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod pty;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_quorumhouse")
}

fn local(dir: &Path, sql: &str, stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(bin())
        .args(["local", "--data-dir"])
        .arg(dir)
        .args(["--query", sql])
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quorumhouse");
    {
        let mut si = child.stdin.take().expect("stdin");
        if let Some(data) = stdin {
            si.write_all(data).expect("write stdin");
        }
    }
    child.wait_with_output().expect("wait")
}

fn ok(dir: &Path, sql: &str) -> String {
    let o = local(dir, sql, None);
    assert!(
        o.status.success(),
        "query failed: {sql}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf8")
}

fn err(dir: &Path, sql: &str, stdin: Option<&[u8]>) -> String {
    let o = local(dir, sql, stdin);
    assert!(!o.status.success(), "expected failure: {sql}");
    String::from_utf8_lossy(&o.stderr).to_string()
}

const HITS: &str = "CREATE TABLE hits (ts DateTime, user_id UInt64, event String, value Float64) \
    ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (user_id, ts)";

#[test]
fn create_insert_select_over_part_files() {
    let d = tempfile::tempdir().unwrap();
    ok(d.path(), HITS);
    let csv = "2024-01-01 10:00:00,1,click,1.5\n2024-01-02 11:00:00,2,view,2.5\n2024-02-01 00:00:00,1,click,3\n";
    let o = local(
        d.path(),
        "INSERT INTO hits FORMAT CSV",
        Some(csv.as_bytes()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = ok(
        d.path(),
        "SELECT event, count(), avg(value) FROM hits GROUP BY event ORDER BY 2 DESC",
    );
    assert_eq!(out, "click\t2\t2.25\nview\t1\t2.5\n");
    // One part per partition, each a directory; small parts are compact
    // (every column in data.bin).
    let table_dir = d.path().join("data/default/hits");
    assert!(table_dir.join("202401_1_1_0/data.bin").exists());
    assert!(table_dir.join("202402_2_2_0/checksums.json").exists());
    let parts = ok(
        d.path(),
        "SELECT partition, name, rows, part_type FROM system.parts WHERE active ORDER BY name",
    );
    assert_eq!(
        parts,
        "202401\t202401_1_1_0\t2\tCompact\n202402\t202402_2_2_0\t1\tCompact\n"
    );
}

#[test]
fn every_input_format_and_values() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE t (id UInt32, s String, n Nullable(Int64)) ENGINE = MergeTree ORDER BY id",
    );
    ok(
        d.path(),
        "INSERT INTO t VALUES (1, 'a', NULL), (2, 'b', -2)",
    );
    ok(d.path(), "INSERT INTO t FORMAT TSV\n3\tc\\td\t3\n");
    ok(
        d.path(),
        "INSERT INTO t FORMAT CSVWithNames\nid,s,n\n4,\"e,f\",\\N\n",
    );
    ok(
        d.path(),
        "INSERT INTO t FORMAT JSONEachRow {\"id\": 5, \"s\": \"g\", \"n\": 5}",
    );
    ok(
        d.path(),
        "INSERT INTO t (id) SELECT number + 10 FROM numbers(2)",
    );
    let out = ok(d.path(), "SELECT * FROM t ORDER BY id FORMAT TSV");
    assert_eq!(
        out,
        "1\ta\t\\N\n2\tb\t-2\n3\tc\\td\t3\n4\te,f\t\\N\n5\tg\t5\n10\t\t\\N\n11\t\t\\N\n"
    );
    let out = ok(
        d.path(),
        "SELECT id, s FROM t WHERE id = 4 FORMAT JSONEachRow",
    );
    assert_eq!(out, "{\"id\":4,\"s\":\"e,f\"}\n");
}

/// The binary formats from the command line: what `SELECT ... FORMAT X`
/// prints, `INSERT ... FORMAT X` reads back from stdin to the same rows.
#[test]
fn binary_formats_round_trip_through_stdout_and_stdin() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE t (id UInt32, s LowCardinality(String), n Nullable(Float64), a Array(String), d DateTime) ENGINE = MergeTree ORDER BY id",
    );
    ok(
        d.path(),
        "INSERT INTO t SELECT number, toString(number % 3), if(number % 4 = 0, NULL, number / 8), [toString(number)], toDateTime('2026-12-02 00:00:00') + number FROM numbers(3000)",
    );
    let digest = |table: &str| {
        ok(
            d.path(),
            &format!("SELECT count(), sum(id), uniqExact(s), round(sum(n), 3), countIf(n IS NULL), sum(length(a)), max(d) FROM {table} FORMAT TSV"),
        )
    };
    let want = digest("t");
    for format in [
        "Parquet",
        "Native",
        "RowBinaryWithNamesAndTypes",
        "ArrowStream",
    ] {
        let out = local(d.path(), &format!("SELECT * FROM t FORMAT {format}"), None);
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let copy = format!("t_{}", format.to_lowercase());
        ok(d.path(), &format!("CREATE TABLE {copy} AS t"));
        let o = local(
            d.path(),
            &format!("INSERT INTO {copy} FORMAT {format}"),
            Some(&out.stdout),
        );
        assert!(
            o.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(digest(&copy), want, "{format}");
    }
    let e = err(d.path(), "SELECT 1 FORMAT Parket", None);
    assert!(e.contains("Code: 73"), "{e}");
}

/// Columns an INSERT leaves out get their type's default, arrays of
/// non-Nullable elements too (pandas' `insert_df` of some columns).
#[test]
fn omitted_array_columns_get_empty_arrays() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE t (id UInt64, tags Array(String), n Array(Nullable(Int32))) ENGINE = MergeTree ORDER BY id",
    );
    ok(d.path(), "INSERT INTO t (id) VALUES (1)");
    assert_eq!(ok(d.path(), "SELECT id, tags, n FROM t"), "1\t[]\t[]\n");
}

#[test]
fn errors_carry_clickhouse_codes() {
    let d = tempfile::tempdir().unwrap();
    ok(d.path(), HITS);
    let e = err(d.path(), "SELECT * FRM hits", None);
    assert!(
        e.starts_with("Code: 62.") && e.contains("position 10"),
        "{e}"
    );
    assert!(e.contains("(SYNTAX_ERROR)"), "{e}");
    let e = err(d.path(), "SELECT * FROM nope", None);
    assert!(e.contains("Code: 60.") && e.contains("default.nope"), "{e}");
    let e = err(d.path(), "SELECT missing_col FROM hits", None);
    assert!(
        e.contains("Code: 47.") && e.contains("UNKNOWN_IDENTIFIER"),
        "{e}"
    );
    let e = err(
        d.path(),
        "CREATE TABLE x (a Strin) ENGINE = MergeTree ORDER BY a",
        None,
    );
    assert!(e.contains("Code: 50."), "{e}");
    // A Date compared with a number: ClickHouse refuses (43) rather than
    // compare days with the integer `2018 - 11 - 14`.
    let e = err(
        d.path(),
        "SELECT count() FROM hits WHERE toDate(ts) < 2018-11-14",
        None,
    );
    assert!(
        e.contains("Code: 43.") && e.contains("(Date, Int64)"),
        "{e}"
    );
    assert_eq!(
        ok(d.path(), "SELECT toDate('2018-01-01') < '2018-11-14', toDate('2018-01-01') = toDate('2018-01-01')"),
        "1\t1\n"
    );
}

#[test]
fn a_bad_row_rejects_the_whole_insert() {
    let d = tempfile::tempdir().unwrap();
    ok(d.path(), HITS);
    let mut csv = String::new();
    for i in 0..1000 {
        csv.push_str(&format!("2024-01-01 00:00:{:02},{i},e,1\n", i % 60));
    }
    csv.push_str("2024-01-01 00:00:00,oops,e,1\n");
    // Small blocks: earlier blocks are written as hidden parts before the bad
    // row is reached; none of them may become visible.
    let o = local(
        d.path(),
        "INSERT INTO hits SETTINGS max_insert_block_size = 100 FORMAT CSV",
        Some(csv.as_bytes()),
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains("Code: 27.") && e.contains("'user_id'") && e.contains("row 1001"),
        "{e}"
    );
    assert_eq!(ok(d.path(), "SELECT count() FROM hits"), "0\n");
    let leftovers: Vec<_> = std::fs::read_dir(d.path().join("data/default/hits"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("tmp_"))
        .collect();
    assert!(leftovers.is_empty(), "tmp parts left behind");
    // Wrong column count.
    let e = err(
        d.path(),
        "INSERT INTO hits FORMAT CSV",
        Some(b"2024-01-01 00:00:00,1\n"),
    );
    assert!(e.contains("Code: 27."), "{e}");
}

#[test]
fn corrupted_column_file_is_a_checksum_error() {
    // Wide: the file of column v; compact: data.bin, whose last block is v's.
    for (settings, file) in [
        ("min_bytes_for_wide_part = 0", "v.bin"),
        ("min_bytes_for_wide_part = 10485760", "data.bin"),
    ] {
        let d = tempfile::tempdir().unwrap();
        ok(
            d.path(),
            &format!("CREATE TABLE t (k UInt64, v String) ENGINE = MergeTree ORDER BY k SETTINGS {settings}"),
        );
        ok(
            d.path(),
            "INSERT INTO t SELECT number, toString(number) FROM numbers(10000)",
        );
        let bin = d.path().join("data/default/t/all_1_1_0").join(file);
        let mut bytes = std::fs::read(&bin).unwrap();
        let n = bytes.len();
        bytes[n - 10] ^= 0xff;
        std::fs::write(&bin, bytes).unwrap();
        let e = err(d.path(), "SELECT sum(length(v)) FROM t", None);
        assert!(
            e.contains("Code: 40.") && e.contains("CHECKSUM_DOESNT_MATCH"),
            "{file}: {e}"
        );
        // Columns that are intact still read.
        assert_eq!(ok(d.path(), "SELECT sum(k) FROM t"), "49995000\n", "{file}");
    }
}

#[test]
fn replacing_merge_tree_final_and_optimize() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE r (k UInt32, v String, ver UInt32) ENGINE = ReplacingMergeTree(ver) ORDER BY k",
    );
    ok(d.path(), "INSERT INTO r VALUES (1, 'a', 1), (2, 'b', 1)");
    ok(d.path(), "INSERT INTO r VALUES (1, 'a2', 2), (2, 'old', 0)");
    assert_eq!(ok(d.path(), "SELECT count() FROM r"), "4\n");
    assert_eq!(
        ok(d.path(), "SELECT k, v FROM r FINAL ORDER BY k"),
        "1\ta2\n2\tb\n"
    );
    ok(d.path(), "OPTIMIZE TABLE r FINAL");
    assert_eq!(
        ok(d.path(), "SELECT k, v FROM r ORDER BY k"),
        "1\ta2\n2\tb\n"
    );
    assert_eq!(
        ok(
            d.path(),
            "SELECT count() FROM system.parts WHERE table = 'r' AND active"
        ),
        "1\n"
    );
}

#[test]
fn alter_add_column_reads_default_from_old_parts() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE a (k UInt32) ENGINE = MergeTree ORDER BY k",
    );
    ok(d.path(), "INSERT INTO a VALUES (1)");
    ok(
        d.path(),
        "ALTER TABLE a ADD COLUMN s String DEFAULT 'x', ADD COLUMN n UInt8",
    );
    ok(d.path(), "INSERT INTO a VALUES (2, 'y', 7)");
    assert_eq!(
        ok(d.path(), "SELECT k, s, n FROM a ORDER BY k"),
        "1\tx\t0\n2\ty\t7\n"
    );
    ok(d.path(), "ALTER TABLE a DROP COLUMN s");
    assert_eq!(ok(d.path(), "SELECT * FROM a ORDER BY k"), "1\t0\n2\t7\n");
    // A DEFAULT over other columns: old parts compute it from their own
    // rows (before and after a merge), as ClickHouse does.
    ok(d.path(), "ALTER TABLE a ADD COLUMN twice UInt64 DEFAULT k * 2, ADD COLUMN label String DEFAULT concat('k', toString(k))");
    ok(d.path(), "INSERT INTO a (k, n) VALUES (3, 1)");
    let want = "1\t2\tk1\n2\t4\tk2\n3\t6\tk3\n";
    assert_eq!(
        ok(d.path(), "SELECT k, twice, label FROM a ORDER BY k"),
        want
    );
    assert_eq!(
        ok(d.path(), "SELECT sum(twice) FROM a WHERE label != 'k2'"),
        "8\n"
    );
    ok(d.path(), "OPTIMIZE TABLE a FINAL");
    assert_eq!(
        ok(d.path(), "SELECT k, twice, label FROM a ORDER BY k"),
        want
    );
}

#[test]
fn background_merges_reduce_part_count() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE m (k UInt64) ENGINE = MergeTree ORDER BY k",
    );
    let mut script = String::new();
    for i in 0..6 {
        script.push_str(&format!(
            "INSERT INTO m SELECT number + {} FROM numbers(100);",
            i * 100
        ));
    }
    ok(d.path(), &script);
    // The merge thread runs while a process is up: keep one alive and poll.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = ok(
            d.path(),
            "SELECT count(), sum(rows) FROM system.parts WHERE table = 'm' AND active",
        );
        let mut it = out.trim().split('\t');
        let parts: u64 = it.next().unwrap().parse().unwrap();
        let rows: u64 = it.next().unwrap().parse().unwrap();
        assert_eq!(rows, 600);
        if parts < 6 {
            break;
        }
        assert!(Instant::now() < deadline, "no merge happened");
        // A process that lives a little: the merge thread gets time to work.
        ok(d.path(), "SELECT sleep(1)");
    }
    assert_eq!(
        ok(d.path(), "SELECT count(), sum(k) FROM m"),
        "600\t179700\n"
    );
}

#[test]
fn primary_key_range_reads_fewer_granules() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE p (k UInt64, v UInt64) ENGINE = MergeTree ORDER BY k SETTINGS index_granularity = 1000",
    );
    ok(
        d.path(),
        "INSERT INTO p SELECT number, number * 2 FROM numbers(100000)",
    );
    assert_eq!(
        ok(
            d.path(),
            "SELECT count(), sum(v) FROM p WHERE k BETWEEN 5000 AND 5999"
        ),
        "1000\t10999000\n"
    );
    let e = Command::new(bin())
        .args(["local", "--data-dir"])
        .arg(d.path())
        .args(["--query", "SELECT count() FROM p WHERE k < 1500", "--stats"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&e.stderr);
    assert!(stderr.contains("granules 2/100"), "{stderr}");
}

fn tmp_dirs(table_dir: &Path) -> Vec<String> {
    std::fs::read_dir(table_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("tmp_"))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for_tmp_dir(table_dir: &Path, child: &mut std::process::Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if !tmp_dirs(table_dir).is_empty() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn sigkill_during_insert_and_merge_loses_no_acknowledged_row() {
    let d = tempfile::tempdir().unwrap();
    let table_dir = d.path().join("data/default/k");
    ok(
        d.path(),
        "CREATE TABLE k (id UInt64, s String) ENGINE = MergeTree ORDER BY id",
    );
    ok(
        d.path(),
        "INSERT INTO k SELECT number, toString(number) FROM numbers(50000)",
    );

    // An insert killed while its blocks are being written.
    let mut child = Command::new(bin())
        .args(["local", "--data-dir"])
        .arg(d.path())
        .args([
            "--query",
            "INSERT INTO k SETTINGS max_insert_block_size = 20000 FORMAT CSV",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut chunk = String::new();
        for i in 0..10_000u64 {
            chunk.push_str(&format!("{i},row{i}\n"));
        }
        // Keep feeding until the process is killed (write fails) or a bound.
        for _ in 0..2000 {
            if stdin.write_all(chunk.as_bytes()).is_err() {
                return;
            }
        }
    });
    assert!(
        wait_for_tmp_dir(&table_dir, &mut child),
        "insert never wrote a block"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    writer.join().unwrap();
    assert!(!tmp_dirs(&table_dir).is_empty(), "kill came after cleanup");

    // Restart: the acknowledged rows are all there, the killed insert is not.
    assert_eq!(
        ok(d.path(), "SELECT count(), sum(id) FROM k"),
        "50000\t1249975000\n"
    );
    assert!(
        tmp_dirs(&table_dir).is_empty(),
        "tmp_ parts survived a restart"
    );

    // A merge killed half way.
    ok(
        d.path(),
        "INSERT INTO k SELECT number + 50000, toString(number) FROM numbers(300000)",
    );
    let mut child = Command::new(bin())
        .args(["local", "--data-dir"])
        .arg(d.path())
        .args(["--query", "OPTIMIZE TABLE k FINAL"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let saw_merge = wait_for_tmp_dir(&table_dir, &mut child);
    let _ = child.kill();
    child.wait().unwrap();
    assert_eq!(
        ok(d.path(), "SELECT count(), max(id) FROM k"),
        "350000\t349999\n"
    );
    assert!(tmp_dirs(&table_dir).is_empty());
    let _ = saw_merge;
}

#[test]
fn limit_stops_reading_early() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE big (k UInt64, s String) ENGINE = MergeTree ORDER BY k SETTINGS index_granularity = 1000",
    );
    ok(
        d.path(),
        "INSERT INTO big SELECT number, toString(number) FROM numbers(500000)",
    );
    let o = Command::new(bin())
        .args(["local", "--data-dir"])
        .arg(d.path())
        .args(["--query", "SELECT k, s FROM big LIMIT 3", "--stats"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\t0\n1\t1\n2\t2\n");
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Pieces are decoded as they are pulled: far fewer than 500k rows.
    let read: u64 = stderr
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(read < 500_000, "read {read} rows for LIMIT 3: {stderr}");
}

#[test]
fn every_type_roundtrips_through_parts() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE ty (a UInt8, b UInt16, c UInt32, d UInt64, e Int8, f Int16, g Int32, h Int64, \
         i Float32, j Float64, k Bool, l String, m Date, n DateTime, o DateTime64(3), \
         p Nullable(String), q LowCardinality(String), r Decimal(10, 2)) ENGINE = MergeTree ORDER BY (a, n)",
    );
    ok(
        d.path(),
        "INSERT INTO ty VALUES (255, 65535, 4294967295, 18446744073709551615, -128, -32768, -2147483648, \
         -9223372036854775808, 1.5, 2.25, true, 'str', '2024-02-29', '2024-02-29 23:59:59', \
         '2024-02-29 23:59:59.123', NULL, 'lc', 12345.67)",
    );
    let csv = "1,2,3,4,5,6,7,8,0.5,0.25,false,\"x,y\",2020-01-01,2020-01-01 00:00:00,2020-01-01 00:00:00.5,\\N,lc2,-1.5\n";
    let o = local(d.path(), "INSERT INTO ty FORMAT CSV", Some(csv.as_bytes()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        ok(d.path(), "SELECT * FROM ty ORDER BY a"),
        "1\t2\t3\t4\t5\t6\t7\t8\t0.5\t0.25\tfalse\tx,y\t2020-01-01\t2020-01-01 00:00:00\t2020-01-01 00:00:00.500\t\\N\tlc2\t-1.5\n\
         255\t65535\t4294967295\t18446744073709551615\t-128\t-32768\t-2147483648\t-9223372036854775808\t1.5\t2.25\ttrue\tstr\t2024-02-29\t2024-02-29 23:59:59\t2024-02-29 23:59:59.123\t\\N\tlc\t12345.67\n"
    );
    let desc = ok(
        d.path(),
        "SELECT name, type FROM system.columns WHERE table = 'ty' AND name IN ('o', 'p', 'q', 'r')",
    );
    assert_eq!(
        desc,
        "o\tDateTime64(3)\np\tNullable(String)\nq\tLowCardinality(String)\nr\tDecimal(10, 2)\n"
    );
}

#[test]
fn now_and_today_work_in_values_and_under_insert() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(
        d,
        "CREATE TABLE t (ts DateTime, d Date, k UInt64) ENGINE = MergeTree ORDER BY k",
    );
    ok(d, "INSERT INTO t VALUES (now(), today(), 1)");
    ok(d, "INSERT INTO t SELECT * FROM (SELECT now(), today(), 2)");
    assert_eq!(
        ok(
            d,
            "SELECT count(), min(ts) > '2020-01-01', min(d) > '2020-01-01' FROM t"
        ),
        "2\t1\t1\n"
    );
    assert_eq!(
        ok(d, "SELECT count() FROM (VALUES (now(), 1)) ORDER BY 1"),
        "1\n"
    );
}

#[test]
fn vertical_format_and_the_backslash_g_terminator() {
    let dir = tempfile::tempdir().unwrap();
    let expected = "Row 1:\n──────\na:         1\nlong_name: x\n";
    assert_eq!(
        ok(
            dir.path(),
            "SELECT 1 AS a, 'x' AS long_name FORMAT Vertical"
        ),
        expected
    );
    assert_eq!(
        ok(dir.path(), "SELECT 1 AS a, 'x' AS long_name\\G"),
        expected
    );
}

/// The interactive prompt on a real terminal: a statement over two lines,
/// `\\G`, an error that leaves the prompt usable, Ctrl-C dropping a half-typed
/// statement, history written to the history file, `\\q`.
#[test]
fn interactive_prompt_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let mut cmd = Command::new(bin());
    cmd.args(["local", "--format", "TSV", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("QUORUMHOUSE_HISTORY_FILE", &history)
        .env("TZ", "UTC");
    let mut t = pty::Pty::spawn(cmd);
    t.expect(":) ");
    t.send_line("SELECT 40 +");
    t.expect(":-] ");
    t.send_line("  2 AS answer;");
    let shown = t.expect("Ok.");
    assert!(shown.contains("\n42\n"), "{shown:?}");
    t.expect(":) ");
    t.send_line("SELECT 'v' AS k \\G");
    let shown = t.expect("Ok.");
    assert!(
        shown.contains("Row 1:") && shown.contains("k: v"),
        "{shown:?}"
    );
    t.expect(":) ");
    t.send_line("SELECT nosuchcolumn;");
    let shown = t.expect(":) ");
    assert!(shown.contains("Code: 47."), "{shown:?}");
    t.send_line("SELECT 'half typed'");
    t.expect(":-] ");
    t.send_control(0x03);
    t.expect(":) ");
    t.send_line("SELECT 7;");
    let shown = t.expect("Ok.");
    assert!(
        shown.contains("\n7\n") && !shown.contains("half typed\n"),
        "{shown:?}"
    );
    t.expect(":) ");
    t.send_line("\\q");
    t.expect("Bye.");
    assert_eq!(t.wait(), Some(0));
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(
        saved.contains("SELECT 40 +") && saved.contains("SELECT 7;"),
        "{saved}"
    );
}

/// ClickHouse allows a column twice in a SELECT (and names both the same);
/// inserts from such a SELECT work too.
#[test]
fn repeated_result_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = local(
        d,
        "SELECT number, number + 1, number + 1 FROM numbers(2) FORMAT TSVWithNames",
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "number\tnumber + 1\tnumber + 1\n0\t1\t1\n1\t2\t2\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(
        d,
        "CREATE TABLE t (a UInt32, b UInt32, c UInt32) ENGINE = MergeTree ORDER BY a",
    );
    ok(
        d,
        "INSERT INTO t SELECT number, number, number FROM numbers(16)",
    );
    assert_eq!(ok(d, "SELECT sum(a), sum(c) FROM t"), "120\t120\n");
    // A user's alias given twice stays an error.
    let e = err(d, "SELECT 1 AS a, 2 AS a", None);
    assert!(e.contains("Code: 36."), "{e}");
}

/// `join_use_nulls = 0` (ClickHouse's default): an outer join's unmatched
/// side shows default values unless the column is Nullable; `= 1` gives NULL.
#[test]
fn outer_joins_fill_defaults_unless_join_use_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, "CREATE TABLE l (k UInt32) ENGINE = MergeTree ORDER BY k");
    ok(
        d,
        "CREATE TABLE r (k UInt32, v String, n Nullable(Int32)) ENGINE = MergeTree ORDER BY k",
    );
    ok(d, "INSERT INTO l VALUES (1), (2)");
    ok(d, "INSERT INTO r VALUES (1, 'one', 10)");
    assert_eq!(
        ok(
            d,
            "SELECT l.k, r.k, r.v, r.n FROM l LEFT JOIN r ON l.k = r.k ORDER BY l.k"
        ),
        "1\t1\tone\t10\n2\t0\t\t\\N\n"
    );
    assert_eq!(
        ok(
            d,
            "SELECT l.k, r.k FROM l LEFT JOIN r ON l.k = r.k ORDER BY l.k SETTINGS join_use_nulls = 1"
        ),
        "1\t1\n2\t\\N\n"
    );
    assert_eq!(
        ok(
            d,
            "SELECT count() FROM l LEFT JOIN r ON l.k = r.k WHERE r.k = 0"
        ),
        "1\n"
    );
}

/// `aggregate_functions_null_for_empty = 0` (ClickHouse's default): over no
/// rows, `sum`/`min`/`max`/`any`/`argMin` of a non-Nullable argument give
/// the type's default and `avg` nan; a Nullable argument gives NULL.
#[test]
fn aggregates_over_no_rows_give_clickhouses_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        "CREATE TABLE e (a UInt64, s String, day Date, n Nullable(Int32)) ENGINE = MergeTree ORDER BY a",
    );
    assert_eq!(
        ok(
            d,
            "SELECT sum(a), min(s), max(day), avg(a), any(a), anyLast(s), argMin(s, a), count(), sum(n), min(n) FROM e"
        ),
        "0\t\t1970-01-01\tnan\t0\t\t\t0\t\\N\t\\N\n"
    );
    ok(
        d,
        "INSERT INTO e VALUES (1, 'x', '2024-01-02', NULL), (2, 'y', '2024-01-03', 5)",
    );
    // No row passes the WHERE, or an -If's condition in a group.
    assert_eq!(ok(d, "SELECT sum(a), max(s) FROM e WHERE a > 5"), "0\t\n");
    assert_eq!(
        ok(
            d,
            "SELECT a, sumIf(a, a > 1), sum(n) FROM e GROUP BY a ORDER BY a"
        ),
        "1\t0\t\\N\n2\t2\t5\n"
    );
    assert_eq!(ok(d, "SELECT sum(if(a > 5, a, NULL)) FROM e"), "\\N\n");
    assert_eq!(
        ok(
            d,
            "SELECT sum(a) FROM e WHERE a > 5 SETTINGS aggregate_functions_null_for_empty = 1"
        ),
        "\\N\n"
    );
}

/// ClickHouse's `LIMIT [offset,] n BY columns`, with aliases, OFFSET, and an
/// ordinary LIMIT after it; `LIMIT [offset,] n WITH TIES`.
#[test]
fn limit_by_and_with_ties() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        ok(
            d,
            "SELECT intDiv(number, 2) AS a FROM numbers(8) ORDER BY a LIMIT 3 WITH TIES"
        ),
        "0\n0\n1\n1\n"
    );
    assert_eq!(
        ok(
            d,
            "SELECT count() FROM (SELECT number > 100 FROM numbers(2000) ORDER BY number > 100 LIMIT 1, 7 WITH TIES)"
        ),
        "100\n"
    );
    assert_eq!(
        ok(
            d,
            "SELECT number % 3 AS k, number FROM numbers(10) ORDER BY k, number LIMIT 2 BY k"
        ),
        "0\t0\n0\t3\n1\t1\n1\t4\n2\t2\n2\t5\n"
    );
    assert_eq!(
        ok(
            d,
            "SELECT number % 2 AS k, number FROM numbers(10) ORDER BY k, number DESC \
             LIMIT 1, 2 BY k LIMIT 3"
        ),
        "0\t6\n0\t4\n1\t7\n"
    );
    assert_eq!(
        ok(
            d,
            "SELECT count() FROM (SELECT number FROM numbers(10) ORDER BY number LIMIT 1 OFFSET 2 BY number % 5)"
        ),
        "0\n"
    );
}

/// Small ClickHouse forms: SELECT NULL, CASE x WHEN, FINAL on a table named
/// like a keyword, CREATE TEMPORARY TABLE (Memory), WITH ROLLUP/CUBE (with
/// defaults for rolled-up keys unless group_by_use_nulls), materialize().
#[test]
fn clickhouse_sql_forms() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(ok(d, "SELECT NULL, 1"), "\\N\t1\n");
    assert_eq!(
        ok(
            d,
            "SELECT CASE number WHEN 1 THEN 'one' ELSE 'other' END FROM numbers(2)"
        ),
        "other\none\n"
    );
    ok(
        d,
        "CREATE TABLE replace (a UInt8, v UInt8) ENGINE = ReplacingMergeTree(v) ORDER BY a",
    );
    ok(d, "INSERT INTO replace VALUES (1, 1)");
    ok(d, "INSERT INTO replace VALUES (1, 2)");
    assert_eq!(ok(d, "SELECT * FROM replace FINAL"), "1\t2\n");
    assert_eq!(
        ok(
            d,
            "CREATE TEMPORARY TABLE tmp (x UInt8); INSERT INTO tmp VALUES (7); SELECT x FROM tmp"
        ),
        "7\n"
    );
    assert_eq!(
        ok(
            d,
            "SELECT number % 2 AS a, count() FROM numbers(4) GROUP BY a WITH ROLLUP ORDER BY count(), a"
        ),
        "0\t2\n1\t2\n0\t4\n"
    );
    // group_by_use_nulls = 1: the rolled-up key is NULL.
    assert_eq!(
        ok(
            d,
            "SELECT number % 2 AS a, count() FROM numbers(4) GROUP BY a WITH CUBE \
             ORDER BY count(), a SETTINGS group_by_use_nulls = 1"
        ),
        "0\t2\n1\t2\n\\N\t4\n"
    );
    // A key computed by a function is not Nullable: its default, ''.
    assert_eq!(
        ok(
            d,
            "SELECT toString(number % 2) AS a, count() FROM numbers(4) GROUP BY ROLLUP(a) ORDER BY count(), a"
        ),
        "0\t2\n1\t2\n\t4\n"
    );
    // WITH TOTALS: after an empty line, keys as defaults, over the groups
    // HAVING keeps.
    assert_eq!(
        ok(
            d,
            "SELECT number % 3 AS k, count(), sum(number) FROM numbers(10) GROUP BY k \
             WITH TOTALS HAVING count() > 3 ORDER BY k"
        ),
        "0\t4\t18\n\n0\t4\t18\n"
    );
    assert_eq!(ok(d, "SELECT materialize('x')"), "x\n");
    // The values() table function, its three forms.
    assert_eq!(
        ok(
            d,
            "SELECT * FROM VALUES ((1, 'a'), (NULL, 'b')) FORMAT TSVWithNames"
        ),
        "c1\tc2\n1\ta\n\\N\tb\n"
    );
    assert_eq!(
        ok(
            d,
            "SELECT b FROM values('a UInt8, b String', (1, 'x'), (2, 'y')) AS v WHERE v.a > 1"
        ),
        "y\n"
    );
    assert_eq!(ok(d, "SELECT sum(c1) FROM VALUES(1, 2, 3)"), "6\n");
    // The ternary operator (right-associative), and numeric conditions of
    // if/multiIf, decimals included.
    assert_eq!(
        ok(
            d,
            "SELECT number > 1 ? number > 2 ? 'c' : 'b' : 'a' AS t FROM numbers(4)"
        ),
        "a\na\nb\nc\n"
    );
    assert_eq!(
        ok(
            d,
            "SELECT if(number % 2, 'odd', 'even'), multiIf(number % 2, 1, 0) FROM numbers(2)"
        ),
        "even\t0\nodd\t1\n"
    );
    // DateTime ± whole seconds.
    assert_eq!(
        ok(
            d,
            "SELECT toDateTime('2000-01-01 00:00:00') - 1, toDateTime('2000-01-01 00:00:00') + number * 60 FROM numbers(1, 1)"
        ),
        "1999-12-31 23:59:59\t2000-01-01 00:01:00\n"
    );
    // Aliases work anywhere in their SELECT and win over a column's name.
    assert_eq!(
        ok(
            d,
            "SELECT number * 2 AS n, n + 1 FROM numbers(3) WHERE n > 1 FORMAT TSVWithNames"
        ),
        "n\tn + 1\n2\t3\n4\t5\n"
    );
    assert_eq!(
        ok(
            d,
            "SELECT toString(number) AS number FROM numbers(3) WHERE number = '1'"
        ),
        "1\n"
    );
    // Unary minus of an unsigned column is signed (ClickHouse's negate).
    assert_eq!(
        ok(d, "SELECT -number, toTypeName(-number) FROM numbers(1, 1)"),
        "-1\tInt64\n"
    );
    // A SELECT without FROM reads system.one.
    assert_eq!(
        ok(d, "SELECT dummy IN (0) AS x, count() GROUP BY x"),
        "1\t1\n"
    );
    // groupArray skips NULLs and is [] over no rows.
    assert_eq!(
        ok(
            d,
            "SELECT groupArray(x) FROM (SELECT NULL AS x UNION ALL SELECT 1)"
        ),
        "[1]\n"
    );
    assert_eq!(ok(d, "SELECT groupArray(number) FROM numbers(0)"), "[]\n");
    // A LIMIT after the last SELECT of a UNION is that SELECT's.
    assert_eq!(
        ok(
            d,
            "SELECT count() FROM (SELECT 1 AS x UNION ALL SELECT number FROM numbers(10) LIMIT 3)"
        ),
        "4\n"
    );
}
