//! GROUP BY a LowCardinality column (grouped on its dictionary keys by
//! `DictionaryAggregateExec`) answers as GROUP BY the same values in a
//! plain String column (DataFusion's hash aggregation): random data in many
//! small granules and several parts, NULLs, a LowCardinality column added
//! after the first part (read from its default there), filters, aggregate
//! filters and HAVING.

mod common;

use common::{engine, run, text};
use proptest::prelude::*;

const CREATE: &str = "CREATE TABLE t (id UInt32, k UInt16, \
    ev LowCardinality(String), evs String, \
    nev LowCardinality(Nullable(String)), nevs Nullable(String), x Nullable(Float64)) \
    ENGINE = MergeTree ORDER BY k SETTINGS index_granularity = 16";

#[derive(Debug, Clone)]
struct Row {
    k: u16,
    ev: u8,
    nev: Option<u8>,
    x: Option<i32>,
}

fn row() -> impl Strategy<Value = Row> {
    (
        0u16..300,
        0u8..6,
        proptest::option::of(0u8..4),
        proptest::option::of(-40i32..40),
    )
        .prop_map(|(k, ev, nev, x)| Row { k, ev, nev, x })
}

/// Each query over the LowCardinality column, then over its String twin;
/// `{a}` a constant.
const QUERIES: &[(&str, &str)] = &[
    (
        "SELECT ev, count(), sum(x), avg(x), min(id), max(x), countIf(x > 0) FROM t GROUP BY ev ORDER BY ev",
        "SELECT evs, count(), sum(x), avg(x), min(id), max(x), countIf(x > 0) FROM t GROUP BY evs ORDER BY evs",
    ),
    (
        "SELECT nev, count(), sum(k) FROM t WHERE k > {a} GROUP BY nev ORDER BY nev",
        "SELECT nevs, count(), sum(k) FROM t WHERE k > {a} GROUP BY nevs ORDER BY nevs",
    ),
    (
        "SELECT count(), uniqExact(k), lev FROM t GROUP BY lev ORDER BY lev",
        "SELECT count(), uniqExact(k), levs FROM t GROUP BY levs ORDER BY levs",
    ),
    (
        "SELECT ev, count() c FROM t WHERE x IS NOT NULL AND evs != 'e{a}' GROUP BY ev HAVING c > 1 ORDER BY ev",
        "SELECT evs, count() c FROM t WHERE x IS NOT NULL AND evs != 'e{a}' GROUP BY evs HAVING c > 1 ORDER BY evs",
    ),
    (
        "SELECT ev, sumIf(x, k % 2 = 0), any(k > 1000) FROM t WHERE evs != 'e{a}' GROUP BY ev ORDER BY ev",
        "SELECT evs, sumIf(x, k % 2 = 0), any(k > 1000) FROM t WHERE evs != 'e{a}' GROUP BY evs ORDER BY evs",
    ),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, .. ProptestConfig::default() })]

    #[test]
    fn grouping_on_dictionary_keys_answers_as_on_strings(
        parts in proptest::collection::vec(proptest::collection::vec(row(), 0..200), 1..4),
        a in 0u8..6,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let engine = engine(dir.path());
            let mut s = engine.session();
            run(&mut s, CREATE).await;
            let mut id = 0u32;
            let mut added = false;
            for (i, p) in parts.iter().enumerate().filter(|(_, p)| !p.is_empty()) {
                if i >= 1 && !added {
                    run(&mut s, "ALTER TABLE t ADD COLUMN lev LowCardinality(String) DEFAULT 'd'").await;
                    run(&mut s, "ALTER TABLE t ADD COLUMN levs String DEFAULT 'd'").await;
                    added = true;
                }
                let values: Vec<String> = p
                    .iter()
                    .map(|r| {
                        id += 1;
                        let x = r.x.map_or("NULL".to_string(), |x| x.to_string());
                        let nev = r.nev.map_or("NULL".to_string(), |n| format!("'n{n}'"));
                        let lev = if added { format!(", 'l{}', 'l{}'", r.k % 3, r.k % 3) } else { String::new() };
                        format!("({id}, {}, 'e{}', 'e{}', {nev}, {nev}, {x}{lev})", r.k, r.ev, r.ev)
                    })
                    .collect();
                let columns = if added {
                    "(id, k, ev, evs, nev, nevs, x, lev, levs)"
                } else {
                    "(id, k, ev, evs, nev, nevs, x)"
                };
                run(&mut s, &format!("INSERT INTO t {columns} VALUES {}", values.join(", "))).await;
            }
            if !added {
                run(&mut s, "ALTER TABLE t ADD COLUMN lev LowCardinality(String) DEFAULT 'd'").await;
                run(&mut s, "ALTER TABLE t ADD COLUMN levs String DEFAULT 'd'").await;
            }
            for (dictionary, strings) in QUERIES {
                let dictionary = dictionary.replace("{a}", &a.to_string());
                let strings = strings.replace("{a}", &a.to_string());
                let (d, _) = run(&mut s, &dictionary).await;
                let (p, _) = run(&mut s, &strings).await;
                prop_assert_eq!(rows(&d), rows(&p), "{}", dictionary);
            }
            Ok(())
        })?;
    }
}

/// The dictionary plan is taken where it applies, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_cardinality_grouping_is_planned_on_its_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path());
    let mut s = engine.session();
    run(&mut s, CREATE).await;
    run(
        &mut s,
        "INSERT INTO t SELECT number, number % 300, concat('e', toString(number % 7)), \
         concat('e', toString(number % 7)), NULL, NULL, number FROM numbers(20000)",
    )
    .await;
    let plan = |q: &str| format!("EXPLAIN {q}");
    for q in [
        "SELECT ev, count(), avg(x) FROM t GROUP BY ev",
        "SELECT ev, count() FROM t WHERE k > 5 GROUP BY ev",
    ] {
        let (p, _) = run(&mut s, &plan(q)).await;
        assert!(
            text(&p).contains("DictionaryAggregateExec"),
            "{q}: {}",
            text(&p)
        );
    }
    for q in [
        // Another expression reads the column, or it is not LowCardinality.
        "SELECT ev, count(ev) FROM t GROUP BY ev",
        "SELECT ev, count() FROM t WHERE ev != 'e1' GROUP BY ev",
        "SELECT evs, count() FROM t GROUP BY evs",
        "SELECT ev, k, count() FROM t GROUP BY ev, k",
    ] {
        let (p, _) = run(&mut s, &plan(q)).await;
        assert!(
            !text(&p).contains("DictionaryAggregateExec"),
            "{q}: {}",
            text(&p)
        );
    }
    let (d, _) = run(
        &mut s,
        "SELECT ev, count(), sum(x) FROM t GROUP BY ev ORDER BY ev",
    )
    .await;
    let (expected, _) = run(
        &mut s,
        "SELECT concat('e', toString(number % 7)) e, count(), sum(toFloat64(number)) \
         FROM numbers(20000) GROUP BY e ORDER BY e",
    )
    .await;
    assert_eq!(rows(&d), rows(&expected));
    assert!(rows(&d).contains("28575714"), "{}", text(&d));
}

/// The table's rows without its header and padding (the queries name
/// their columns differently).
fn rows(b: &[datafusion::arrow::array::RecordBatch]) -> String {
    text(b)
        .lines()
        .filter(|l| !l.starts_with('+'))
        .skip(1)
        .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>().join("|"))
        .collect::<Vec<_>>()
        .join("\n")
}
