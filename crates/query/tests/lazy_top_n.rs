//! A top-N read lazily (the sort and filter columns first, the others for
//! the kept rows only) answers row for row as the plain read does
//! (`query_plan_optimize_lazy_materialization = 0`): random data in many
//! small granules and several parts, a column added after the first parts
//! (read from its default there), NULLs, LowCardinality and filters.
//! The sort keys end in the unique `id`, so the answer is one row order.

mod common;

use common::{engine, run, text};
use proptest::prelude::*;

const CREATE: &str = "CREATE TABLE t (id UInt32, k UInt16, ev LowCardinality(String), \
    x Nullable(Float64), s String) \
    ENGINE = MergeTree ORDER BY k SETTINGS index_granularity = 16";

#[derive(Debug, Clone)]
struct Row {
    k: u16,
    ev: u8,
    x: Option<i32>,
    s: u8,
}

fn row() -> impl Strategy<Value = Row> {
    (
        0u16..300,
        0u8..5,
        proptest::option::of(-40i32..40),
        0u8..200,
    )
        .prop_map(|(k, ev, x, s)| Row { k, ev, x, s })
}

/// `{n}` the LIMIT, `{a}` a constant; every ORDER BY ends in `id`.
const QUERIES: &[&str] = &[
    "SELECT * FROM t ORDER BY x DESC, id LIMIT {n}",
    "SELECT * FROM t ORDER BY id DESC LIMIT {n}",
    "SELECT s, id, extra FROM t WHERE ev = 'e{a}' ORDER BY k, id LIMIT {n}",
    "SELECT * FROM t WHERE x > -{a} ORDER BY x, id LIMIT {n}",
    "SELECT id, s FROM t ORDER BY k DESC, id LIMIT {n} OFFSET {a}",
    "SELECT upper(s), id * 2 FROM t WHERE s LIKE '%{a}%' ORDER BY id LIMIT {n}",
    "SELECT * FROM t ORDER BY extra, id LIMIT {n}",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, .. ProptestConfig::default() })]

    #[test]
    fn a_lazy_top_n_answers_as_the_plain_read(
        parts in proptest::collection::vec(proptest::collection::vec(row(), 0..200), 1..4),
        a in 0u8..5,
        n in 1usize..40,
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
                // Parts after the first are written after the column exists.
                if i >= 1 && !added {
                    run(&mut s, "ALTER TABLE t ADD COLUMN extra String DEFAULT 'd'").await;
                    added = true;
                }
                let values: Vec<String> = p
                    .iter()
                    .map(|r| {
                        id += 1;
                        let x = r.x.map_or("NULL".to_string(), |x| x.to_string());
                        let extra = if i >= 1 { format!(", 'x{}'", r.s % 7) } else { String::new() };
                        format!("({id}, {}, 'e{}', {x}, 's{}'{extra})", r.k, r.ev, r.s)
                    })
                    .collect();
                let columns = if i >= 1 { "(id, k, ev, x, s, extra)" } else { "(id, k, ev, x, s)" };
                run(&mut s, &format!("INSERT INTO t {columns} VALUES {}", values.join(", "))).await;
            }
            if !added {
                run(&mut s, "ALTER TABLE t ADD COLUMN extra String DEFAULT 'd'").await;
            }
            for q in QUERIES {
                let q = q.replace("{a}", &a.to_string()).replace("{n}", &n.to_string());
                let (lazy, _) = run(&mut s, &q).await;
                let (plain, _) = run(
                    &mut s,
                    &format!("{q} SETTINGS query_plan_optimize_lazy_materialization = 0"),
                )
                .await;
                prop_assert_eq!(text(&lazy), text(&plain), "{}", q);
            }
            Ok(())
        })?;
    }
}

/// The lazy plan is taken, and reads the other columns of the kept rows'
/// granules only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_n_reads_the_unsorted_columns_for_its_rows_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path());
    let mut s = engine.session();
    run(&mut s, CREATE).await;
    run(
        &mut s,
        "INSERT INTO t SELECT number, number % 300, 'e1', number, repeat('x', 1000) \
         FROM numbers(20000)",
    )
    .await;
    let q = "SELECT * FROM t ORDER BY x DESC LIMIT 3";
    let (plan, _) = run(&mut s, &format!("EXPLAIN {q}")).await;
    assert!(
        text(&plan).contains("LazyMaterializeExec"),
        "{}",
        text(&plan)
    );
    let (lazy, l) = run(&mut s, q).await;
    let (plain, p) = run(
        &mut s,
        &format!("{q} SETTINGS query_plan_optimize_lazy_materialization = 0"),
    )
    .await;
    assert_eq!(text(&lazy), text(&plain));
    assert!(text(&lazy).contains("19999"), "{}", text(&lazy));
    assert!(
        l.read_bytes * 2 < p.read_bytes,
        "lazy read {} bytes, plain {}",
        l.read_bytes,
        p.read_bytes
    );
    // Through a filter whose output drops the columns it alone reads.
    let q = "SELECT id, s FROM t WHERE ev = 'e1' AND k > 5 ORDER BY x DESC LIMIT 3";
    let (plan, _) = run(&mut s, &format!("EXPLAIN {q}")).await;
    assert!(
        text(&plan).contains("LazyMaterializeExec"),
        "{}",
        text(&plan)
    );
    let (lazy, _) = run(&mut s, q).await;
    let (plain, _) = run(
        &mut s,
        &format!("{q} SETTINGS query_plan_optimize_lazy_materialization = 0"),
    )
    .await;
    assert_eq!(text(&lazy), text(&plain));
    let q = "SELECT * FROM t ORDER BY x DESC LIMIT 3";
    // Over the limit of rows read lazily, the plain plan.
    let (plan, _) = run(
        &mut s,
        &format!("EXPLAIN {q} SETTINGS query_plan_max_limit_for_lazy_materialization = 2"),
    )
    .await;
    assert!(
        !text(&plan).contains("LazyMaterializeExec"),
        "{}",
        text(&plan)
    );
}
