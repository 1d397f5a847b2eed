//! A top-N by the sorting key read in order (`optimize_read_in_order`)
//! answers as ClickHouse does, ties included: the rows are those of a
//! stable sort by the key of every part's rows, the newest part first, each
//! in insertion order. Random data in small granules (several pieces per
//! part) and several parts, with and without a filter.

mod common;

use common::{engine, run, text};
use proptest::prelude::*;

const CREATE: &str = "CREATE TABLE t (id UInt32, k UInt16, ev UInt8) \
    ENGINE = MergeTree ORDER BY k SETTINGS index_granularity = 16";

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn a_top_n_by_the_key_keeps_clickhouses_order_of_ties(
        parts in proptest::collection::vec(
            proptest::collection::vec((0u16..40, 0u8..3), 0..150), 1..5),
        n in 1usize..60,
        ev in 0u8..3,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let engine = engine(dir.path());
            let mut s = engine.session();
            run(&mut s, CREATE).await;
            let mut id = 0u32;
            // (id, k, ev) of each part, in insertion order.
            let mut written: Vec<Vec<(u32, u16, u8)>> = Vec::new();
            for p in parts.iter().filter(|p| !p.is_empty()) {
                let rows: Vec<(u32, u16, u8)> = p
                    .iter()
                    .map(|&(k, e)| {
                        id += 1;
                        (id, k, e)
                    })
                    .collect();
                let values: Vec<String> =
                    rows.iter().map(|(i, k, e)| format!("({i}, {k}, {e})")).collect();
                run(&mut s, &format!("INSERT INTO t VALUES {}", values.join(", "))).await;
                written.push(rows);
            }
            let mut model: Vec<(u32, u16, u8)> = written.iter().rev().flatten().copied().collect();
            model.sort_by_key(|r| r.1);
            let expect = |keep: &dyn Fn(&(u32, u16, u8)) -> bool| -> String {
                model
                    .iter()
                    .filter(|r| keep(r))
                    .take(n)
                    .map(|(i, k, _)| format!("{k} {i}\n"))
                    .collect()
            };
            let lines = |b: &[datafusion::arrow::array::RecordBatch]| -> String {
                // The pretty table's data rows as "k id".
                text(b)
                    .lines()
                    .filter(|l| l.starts_with("| ") && !l.contains(" k "))
                    .map(|l| {
                        let cells: Vec<&str> =
                            l.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
                        format!("{}\n", cells.join(" "))
                    })
                    .collect()
            };
            let (all, _) = run(&mut s, &format!("SELECT k, id FROM t ORDER BY k LIMIT {n}")).await;
            prop_assert_eq!(lines(&all), expect(&|_| true));
            let (some, _) = run(
                &mut s,
                &format!("SELECT k, id FROM t WHERE ev = {ev} ORDER BY k LIMIT {n}"),
            )
            .await;
            prop_assert_eq!(lines(&some), expect(&|r| r.2 == ev));
            Ok(())
        })?;
    }
}

/// The plan merges the parts' ordered streams instead of sorting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_n_by_the_key_merges_the_parts_read_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path());
    let mut s = engine.session();
    run(&mut s, CREATE).await;
    run(&mut s, "INSERT INTO t VALUES (1, 5, 0), (2, 1, 0)").await;
    run(&mut s, "INSERT INTO t VALUES (3, 2, 0)").await;
    let plan = |b: &[datafusion::arrow::array::RecordBatch]| text(b);
    let (on, _) = run(&mut s, "EXPLAIN SELECT * FROM t ORDER BY k LIMIT 2").await;
    let on = plan(&on);
    assert!(on.contains("SortPreservingMergeExec"), "{on}");
    assert!(!on.contains("SortExec"), "{on}");
    let (off, _) = run(
        &mut s,
        "EXPLAIN SELECT * FROM t ORDER BY k LIMIT 2 SETTINGS optimize_read_in_order = 0",
    )
    .await;
    let off = plan(&off);
    assert!(off.contains("SortExec"), "{off}");
    // Not a key prefix, or descending: sorted as before.
    for q in [
        "EXPLAIN SELECT * FROM t ORDER BY id LIMIT 2",
        "EXPLAIN SELECT * FROM t ORDER BY k DESC LIMIT 2",
    ] {
        let (p, _) = run(&mut s, q).await;
        assert!(plan(&p).contains("SortExec"), "{q}: {}", plan(&p));
    }
}
