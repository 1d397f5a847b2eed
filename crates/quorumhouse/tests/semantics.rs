//! ClickHouse's value semantics, checked through `quorumhouse local` (real
//! process, real parts). Each expected answer and error code was produced
//! by ClickHouse 26.9 (chDB 4.4) for the same statement; a difference here
//! is a silent wrong answer in a user's dashboard.

use std::path::Path;
use std::process::{Command, Output};

fn local(dir: &Path, sql: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quorumhouse"))
        .args(["local", "--data-dir"])
        .arg(dir)
        .args(["--query", sql])
        .env("TZ", "UTC")
        .output()
        .expect("run quorumhouse local")
}

fn ok(dir: &Path, sql: &str) -> String {
    let o = local(dir, sql);
    assert!(
        o.status.success(),
        "query failed: {sql}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn err(dir: &Path, sql: &str) -> String {
    let o = local(dir, sql);
    assert!(!o.status.success(), "expected failure: {sql}");
    String::from_utf8_lossy(&o.stderr).to_string()
}

// Generated from chDB's answers to the same statements (TSV output).
const ANSWERS: &[(&str, &str)] = &[
    ("SELECT CAST(300 AS UInt8), CAST(-1 AS UInt64), CAST(1.9 AS Int32), CAST(-1.9 AS Int32)", "44\t18446744073709551615\t1\t-1\n"),
    ("SELECT CAST('300' AS UInt8), CAST(' 5' AS String), 5::UInt16, toTypeName(5::UInt16), CAST(1, 'UInt8')", "44\t 5\t5\tUInt16\t1\n"),
    ("SELECT CAST('1.555' AS Decimal(10, 2)), CAST(-1.555 AS Decimal(10, 2)), toDecimal32(1.555, 2), toDecimal64('-0.5', 3), toTypeName(toDecimal32(2, 4))", "1.55\t-1.55\t1.55\t-0.5\tDecimal(9, 4)\n"),
    ("SELECT CAST(NULL AS Nullable(Decimal(7, 2))), CAST('2020-01-02 03:04:05' AS DateTime), CAST('2020-01-02' AS Date), CAST(1.5 AS String)", "\\N\t2020-01-02 03:04:05\t2020-01-02\t1.5\n"),
    ("SELECT toUInt32(toDate('2020-01-01')), CAST(toDate('2020-01-01') AS UInt32), toInt64(toDateTime('2020-01-01 00:00:00'))", "18262\t18262\t1577836800\n"),
    ("SELECT toUInt8OrZero('300'), toUInt8OrNull('300'), toInt8OrZero('-128'), toUInt8OrZero(' 5'), toUInt8OrZero('+5'), toUInt8OrZero('-5')", "0\t\\N\t-128\t0\t5\t0\n"),
    ("SELECT toFloat64OrZero('1e3'), toFloat64OrZero('inf'), toFloat64OrNull(''), toUInt64OrZero('0x10'), toInt32OrNull('-2147483648')", "1000\tinf\t\\N\t0\t-2147483648\n"),
    ("SELECT toDateOrZero('2020-01-01'), toDateOrNull('x'), toDateTimeOrZero('bad'), toDateTimeOrNull('2020-01-01 00:00:00')", "2020-01-01\t\\N\t1970-01-01 00:00:00\t2020-01-01 00:00:00\n"),
    ("SELECT inf, -inf, nan, INF, toTypeName(nan)", "inf\t-inf\tnan\tinf\tFloat64\n"),
    ("SELECT nan = nan, nan != nan, 1 < nan, nan > 1, nan >= nan, -0. = 0., -0. < 0.", "0\t1\t0\t0\t0\t1\t0\n"),
    ("SELECT x, x = x, x < 1 FROM (SELECT arrayJoin([1., nan, -inf]) AS x) ORDER BY x", "-inf\t1\t1\n1\t1\t0\nnan\t0\t0\n"),
    ("SELECT isFinite(1 / 0), isInfinite(-1 / 0), isNaN(0 / 0), isFinite(5), isNaN(1.)", "0\t1\t1\t1\t0\n"),
    ("SELECT assumeNotNull(toNullable(3))", "3\n"),
    ("SELECT count() FROM numbers(10) WHERE toFloat64(number) / 0 > 1", "9\n"),
];

const ERRORS: &[(&str, i32)] = &[
    ("SELECT toUInt32OrZero(5)", 43),
    ("SELECT CAST('12a' AS UInt8)", 6),
    ("SELECT toDecimal32(10000000000, 0)", 407),
    ("SELECT CAST(1 AS Foo)", 50),
];

/// Conversions (CAST in every spelling, toT, toDecimalN, -OrZero/-OrNull),
/// float literals and by-value float comparisons: every answer ClickHouse's.
#[test]
fn answers_as_clickhouse() {
    let d = tempfile::tempdir().unwrap();
    let wrong: Vec<String> = ANSWERS
        .iter()
        .filter_map(|(sql, want)| {
            let o = local(d.path(), sql);
            let got = if o.status.success() {
                String::from_utf8_lossy(&o.stdout).to_string()
            } else {
                String::from_utf8_lossy(&o.stderr).to_string()
            };
            (got != *want).then(|| format!("{sql}\n  want {want:?}\n  got  {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn errors_carry_clickhouses_codes() {
    let d = tempfile::tempdir().unwrap();
    for (sql, code) in ERRORS {
        let e = err(d.path(), sql);
        assert!(e.starts_with(&format!("Code: {code}.")), "{sql}: {e}");
    }
}

/// A NULL inserted into a non-Nullable column is stored as the column's
/// default (input_format_null_as_default = 1), in VALUES and INSERT SELECT.
#[test]
fn null_into_a_non_nullable_column_is_its_default() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE t (x UInt32, y UInt32, s String) ENGINE = MergeTree ORDER BY x",
    );
    ok(
        d.path(),
        "INSERT INTO t VALUES (1, NULL, NULL), (2, 5, 'a')",
    );
    ok(d.path(), "INSERT INTO t SELECT 3, NULL, NULL");
    assert_eq!(
        ok(d.path(), "SELECT x, y, s FROM t ORDER BY x"),
        "1\t0\t\n2\t5\ta\n3\t0\t\n"
    );
}

/// String literals read as ClickHouse reads them: a backslash before a
/// character without an escape meaning stays (regexes, LIKE patterns,
/// back-references), `\xHH` is a byte; REGEXP_REPLACE replaces every match.
/// Expected values from ClickHouse (chDB 4.4).
#[test]
fn string_literals_keep_clickhouses_backslashes() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(
        d.path(),
        r"SELECT '\1', length('\1'), match('a1', '\d'), 'a_b' LIKE 'a\_b', 'axb' LIKE 'a\_b', REGEXP_REPLACE('aaa', 'a', 'b'), replaceRegexpOne('aaa', 'a', 'b'), replaceRegexpAll('abc', '(b)', '[\1]'), '\x41' FORMAT TSV",
    );
    assert_eq!(out, "\\\\1\t2\t1\t1\t0\tbbb\tbaa\ta[b]c\tA\n");
    // A default holding backslashes is stored and read back unchanged.
    ok(
        d.path(),
        r"CREATE TABLE t (id UInt8, re String DEFAULT 'x\d+\\n') ENGINE = MergeTree ORDER BY id",
    );
    ok(d.path(), "INSERT INTO t (id) VALUES (1)");
    assert_eq!(
        ok(d.path(), "SELECT re, length(re) FROM t FORMAT TSV"),
        "x\\\\d+\\\\n\t6\n"
    );
}

/// intDiv rounding toward zero, NULLs in IN lists skipped
/// (`transform_null_in = 0`). Expected values from ClickHouse (chDB 4.4).
#[test]
fn int_div_and_in_lists_answer_as_clickhouse() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(
        ok(d.path(), "SELECT intDiv(-7, 2), intDiv(7, -2)"),
        "-3\t-3\n"
    );
    let e = err(d.path(), "SELECT intDiv(7, 0)");
    assert!(e.contains("Code: 153."), "{e}");
    assert_eq!(
        ok(
            d.path(),
            "SELECT 2 IN (NULL), NULL IN (1, NULL), 2 NOT IN (1, NULL), 1 NOT IN (1, NULL), 2 IN (1, NULL)"
        ),
        "0\t\\N\t1\t0\t0\n"
    );
}
