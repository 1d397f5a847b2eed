//! The filters a scan applies while reading (automatic PREWHERE, filters
//! over LowCardinality dictionaries, a TopK's dynamic filter) never change
//! an answer: every query gives the same rows with
//! `optimize_move_to_prewhere = 0`, over random data in many small granules
//! and several parts.

mod common;

use common::{engine, run, text};
use proptest::prelude::*;

const CREATE: &str = "CREATE TABLE t (k UInt32, ev LowCardinality(String), \
    evn LowCardinality(Nullable(String)), x Float64, s String) \
    ENGINE = MergeTree ORDER BY k SETTINGS index_granularity = 16";

#[derive(Debug, Clone)]
struct Row {
    k: u32,
    ev: u8,
    evn: Option<u8>,
    x: f64,
    s: u8,
}

fn row() -> impl Strategy<Value = Row> {
    (
        0u32..500,
        0u8..6,
        proptest::option::of(0u8..4),
        prop_oneof![-50.0f64..50.0, Just(f64::NAN), Just(0.0)],
        0u8..10,
    )
        .prop_map(|(k, ev, evn, x, s)| Row { k, ev, evn, x, s })
}

fn values(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| {
            let evn = match r.evn {
                Some(v) => format!("'n{v}'"),
                None => "NULL".into(),
            };
            let x = if r.x.is_nan() {
                "nan".to_string()
            } else {
                format!("{}", r.x)
            };
            format!("({}, 'e{}', {evn}, {x}, 's{}')", r.k, r.ev, r.s)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// WHERE clauses over one LowCardinality column, several columns, NULLs,
/// NaN and a TopK; `{a}`/`{b}` take random constants.
const QUERIES: &[&str] = &[
    "SELECT * FROM t WHERE ev = 'e{a}' ORDER BY k, evn, x, s",
    "SELECT count() FROM t WHERE ev = 'e{a}'",
    "SELECT count() FROM t WHERE ev IN ('e{a}', 'e{b}') AND k > {b}0",
    "SELECT k, evn FROM t WHERE evn = 'n{a}' OR evn IS NULL ORDER BY k, evn",
    "SELECT k, evn FROM t WHERE evn != 'n{a}' ORDER BY k, evn",
    "SELECT k, evn FROM t WHERE isNull(evn) ORDER BY k, evn",
    "SELECT s, count() FROM t WHERE ev LIKE '%{a}' AND x > {b} GROUP BY s ORDER BY s",
    "SELECT k, x FROM t WHERE x > -{a} OR length(ev) > 3 ORDER BY k, x",
    "SELECT k, x FROM t WHERE x != x ORDER BY k, x",
    "SELECT k FROM t WHERE k BETWEEN {a}0 AND {b}00 AND ev != 'e{b}' ORDER BY k",
    "SELECT * FROM t ORDER BY k DESC, ev, evn, x, s LIMIT 7",
    "SELECT k, s FROM t WHERE s > 's{a}' ORDER BY x DESC, k, s LIMIT 5",
    "SELECT ev, max(k) FROM t WHERE intDiv(k, {a} + 1) = 3 GROUP BY ev ORDER BY ev",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn prewhere_never_changes_an_answer(
        parts in proptest::collection::vec(proptest::collection::vec(row(), 0..300), 1..4),
        a in 0u8..6,
        b in 0u8..6,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let engine = engine(dir.path());
            let mut s = engine.session();
            run(&mut s, CREATE).await;
            for p in parts.iter().filter(|p| !p.is_empty()) {
                run(&mut s, &format!("INSERT INTO t VALUES {}", values(p))).await;
            }
            for q in QUERIES {
                let q = q.replace("{a}", &a.to_string()).replace("{b}", &b.to_string());
                let (with, _) = run(&mut s, &q).await;
                let (without, _) =
                    run(&mut s, &format!("{q} SETTINGS optimize_move_to_prewhere = 0")).await;
                prop_assert_eq!(text(&with), text(&without), "{}", q);
            }
            Ok(())
        })?;
    }
}

/// Granules where nothing passes the filter are never read past its column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selective_filter_reads_the_other_columns_only_where_rows_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path());
    let mut s = engine.session();
    run(&mut s, CREATE).await;
    run(
        &mut s,
        "INSERT INTO t SELECT number, if(number = 4000, 'rare', 'common'), NULL, number, \
         repeat('x', 100) FROM numbers(8000)",
    )
    .await;
    let q = "SELECT k, s FROM t WHERE ev = 'rare'";
    let (with, w) = run(&mut s, q).await;
    let (without, wo) = run(
        &mut s,
        &format!("{q} SETTINGS optimize_move_to_prewhere = 0"),
    )
    .await;
    assert_eq!(text(&with), text(&without));
    assert_eq!(with.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    // Both read every row of `ev`; only the first skips `s` where no row passed.
    assert_eq!(w.read_rows, wo.read_rows);
    assert!(
        w.read_bytes * 3 < wo.read_bytes,
        "{} vs {}",
        w.read_bytes,
        wo.read_bytes
    );
}
