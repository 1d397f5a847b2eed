//! Property tests of the part format and merges.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::Int64Type;
use proptest::prelude::*;
use qh_storage::meta::TABLE_META_VERSION;
use qh_storage::part::PartKind;
use qh_storage::{ColumnDef, EngineKind, KeyEvaluator, MergeTreeTable, Part, TableMeta};

/// ORDER BY k, PARTITION BY k % 3 (the test's stand-in for compiled SQL).
#[derive(Debug)]
struct Keys;

impl KeyEvaluator for Keys {
    fn sort_key(&self, b: &RecordBatch) -> qh_storage::Result<Vec<ArrayRef>> {
        Ok(vec![b.column(0).clone()])
    }
    fn partition_key(&self, b: &RecordBatch) -> qh_storage::Result<Option<ArrayRef>> {
        let k = b.column(0).as_primitive::<Int64Type>();
        Ok(Some(
            Arc::new(k.unary::<_, Int64Type>(|v| v.rem_euclid(3))) as ArrayRef
        ))
    }
}

/// `wide_bytes` is `min_bytes_for_wide_part`: 0 writes every part wide,
/// a huge value every part compact, one in between both kinds.
fn meta(engine: EngineKind, granularity: usize, wide_bytes: u64) -> TableMeta {
    let mut settings = std::collections::BTreeMap::new();
    settings.insert("index_granularity".to_string(), granularity.to_string());
    settings.insert(
        "min_bytes_for_wide_part".to_string(),
        wide_bytes.to_string(),
    );
    TableMeta {
        format_version: TABLE_META_VERSION,
        database: "default".into(),
        name: "t".into(),
        columns: vec![
            ColumnDef {
                name: "k".into(),
                ty: "Int64".parse().unwrap(),
                default: None,
                kind: Default::default(),
                codec: Some("Delta, LZ4".parse().unwrap()),
                former_types: Vec::new(),
            },
            ColumnDef {
                name: "v".into(),
                ty: "Nullable(String)".parse().unwrap(),
                default: None,
                kind: Default::default(),
                codec: Some("ZSTD(3)".parse().unwrap()),
                former_types: Vec::new(),
            },
        ],
        engine,
        order_by: vec!["k".into()],
        primary_key: vec!["k".into()],
        partition_by: Some("k % 3".into()),
        index_columns: vec!["k".into()],
        settings,
        schema_version: 1,
        replicated: None,
    }
}

fn batch(m: &TableMeta, rows: &[(i64, Option<String>)]) -> RecordBatch {
    RecordBatch::try_new(
        m.arrow_schema(),
        vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

/// All rows of the table, each part in key order, parts concatenated.
fn read_all(t: &MergeTreeTable) -> Vec<Vec<(i64, Option<String>)>> {
    let schema = t.meta().arrow_schema();
    t.active_parts()
        .iter()
        .map(|p| {
            let b = p.read_all(&schema, &Default::default()).unwrap();
            let k = b.column(0).as_primitive::<Int64Type>();
            let v = b.column(1).as_string::<i32>();
            (0..b.num_rows())
                .map(|i| (k.value(i), v.is_valid(i).then(|| v.value(i).to_string())))
                .collect()
        })
        .collect()
}

/// Every active part, as the table holds it (in memory since it was
/// written), equals the part loaded back from its files.
fn same_as_on_disk(t: &MergeTreeTable) -> Result<(), TestCaseError> {
    let schema = t.meta().arrow_schema();
    for p in t.active_parts() {
        let disk = Part::load(&p.dir, p.name.clone()).unwrap();
        prop_assert_eq!(disk.kind, p.kind);
        prop_assert_eq!(disk.rows, p.rows);
        prop_assert_eq!(&disk.granule_rows, &p.granule_rows);
        prop_assert_eq!(&disk.checksums, &p.checksums);
        prop_assert_eq!(&disk.index, &p.index);
        prop_assert_eq!(disk.bytes_on_disk, p.bytes_on_disk);
        disk.verify().unwrap();
        let defaults = Default::default();
        prop_assert_eq!(
            disk.read_all(&schema, &defaults).unwrap(),
            p.read_all(&schema, &defaults).unwrap()
        );
    }
    Ok(())
}

fn rows_strategy() -> impl Strategy<Value = Vec<Vec<(i64, Option<String>)>>> {
    let row = (-50i64..50, proptest::option::of("[a-z]{0,6}"));
    proptest::collection::vec(proptest::collection::vec(row, 0..60), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever is inserted comes back: every part is sorted, holds one
    /// partition, and merging keeps the multiset of rows.
    #[test]
    fn inserts_and_merges_keep_every_row(
        inserts in rows_strategy(),
        granularity in 1usize..9,
        wide_bytes in prop_oneof![Just(0u64), Just(1u64 << 40), 0u64..1500],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let m = meta(EngineKind::MergeTree, granularity, wide_bytes);
        let t = Arc::new(MergeTreeTable::create(&dir.path().join("t"), m.clone(), Arc::new(Keys)).unwrap());
        let mut expected: Vec<(i64, Option<String>)> = Vec::new();
        for rows in &inserts {
            let mut txn = t.begin_insert();
            txn.write(&batch(&m, rows)).unwrap();
            txn.commit().unwrap();
            expected.extend(rows.iter().cloned());
        }
        let check = |t: &MergeTreeTable| {
            same_as_on_disk(t)?;
            let parts = read_all(t);
            for p in &parts {
                prop_assert!(p.windows(2).all(|w| w[0].0 <= w[1].0), "part not sorted");
                prop_assert!(p.iter().all(|r| r.0.rem_euclid(3) == p[0].0.rem_euclid(3)), "mixed partitions");
            }
            let mut got: Vec<_> = parts.into_iter().flatten().collect();
            let mut exp = expected.clone();
            got.sort();
            exp.sort();
            prop_assert_eq!(got, exp);
            Ok(())
        };
        check(&t)?;
        while t.merge_once().unwrap() {}
        check(&t)?;
        t.optimize(None, true).unwrap();
        check(&t)?;
        prop_assert!(t.active_parts().len() <= 3);
        // Re-opening from disk gives the same rows.
        drop(t);
        let t2 = MergeTreeTable::open(&dir.path().join("t"), &|_| Ok(Arc::new(Keys) as Arc<dyn KeyEvaluator>)).unwrap();
        check(&t2)?;
    }

    /// ReplacingMergeTree without a version keeps the last inserted row per
    /// key, and FINAL reads agree with OPTIMIZE FINAL.
    #[test]
    fn replacing_keeps_the_last_row_per_key(inserts in rows_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let m = meta(EngineKind::ReplacingMergeTree { version: None, is_deleted: None }, 4, 600);
        let t = Arc::new(MergeTreeTable::create(&dir.path().join("t"), m.clone(), Arc::new(Keys)).unwrap());
        let mut last: std::collections::BTreeMap<i64, Option<String>> = Default::default();
        for rows in &inserts {
            let mut txn = t.begin_insert();
            txn.write(&batch(&m, rows)).unwrap();
            txn.commit().unwrap();
            for r in rows {
                last.insert(r.0, r.1.clone());
            }
        }
        let expected: Vec<(i64, Option<String>)> = last.into_iter().collect();
        let final_rows = |t: &MergeTreeTable| {
            let mut v: Vec<(i64, Option<String>)> = Vec::new();
            for b in t.read_final(&t.active_parts()).unwrap() {
                let k = b.column(0).as_primitive::<Int64Type>();
                let s = b.column(1).as_string::<i32>();
                for i in 0..b.num_rows() {
                    v.push((k.value(i), s.is_valid(i).then(|| s.value(i).to_string())));
                }
            }
            v.sort();
            v
        };
        prop_assert_eq!(final_rows(&t), expected.clone());
        t.optimize(None, true).unwrap();
        let mut merged: Vec<_> = read_all(&t).into_iter().flatten().collect();
        merged.sort();
        prop_assert_eq!(merged, expected);
    }
}

fn rows(n: i64) -> Vec<(i64, Option<String>)> {
    (0..n)
        .map(|k| (k * 3, Some(format!("value {k}"))))
        .collect()
}

/// Small inserts are compact parts, their merge past the threshold a wide
/// one, and the rows survive both and a re-open.
#[test]
fn small_parts_are_compact_and_merge_into_wide() {
    let dir = tempfile::tempdir().unwrap();
    let m = meta(EngineKind::MergeTree, 16, 2000);
    let t =
        Arc::new(MergeTreeTable::create(&dir.path().join("t"), m.clone(), Arc::new(Keys)).unwrap());
    for _ in 0..4 {
        let mut txn = t.begin_insert();
        txn.write(&batch(&m, &rows(50))).unwrap();
        txn.commit().unwrap();
    }
    let kinds = |t: &MergeTreeTable| t.active_parts().iter().map(|p| p.kind).collect::<Vec<_>>();
    assert_eq!(kinds(&t), vec![PartKind::Compact; 4]);
    let files = std::fs::read_dir(&t.active_parts()[0].dir).unwrap().count();
    assert_eq!(
        files, 5,
        "part.json, data.bin, data.mrk, primary.idx, checksums.json"
    );
    t.optimize(None, true).unwrap();
    assert_eq!(kinds(&t), vec![PartKind::Wide]);
    let got: usize = read_all(&t).iter().map(Vec::len).sum();
    assert_eq!(got, 200);
    drop(t);
    let t = MergeTreeTable::open(&dir.path().join("t"), &|_| {
        Ok(Arc::new(Keys) as Arc<dyn KeyEvaluator>)
    })
    .unwrap();
    assert_eq!(kinds(&t), vec![PartKind::Wide]);
    assert_eq!(read_all(&t).iter().map(Vec::len).sum::<usize>(), 200);
}

/// A flipped byte anywhere in a compact part is caught: by the checksums
/// (CHECK TABLE, fetch) and, in data.bin, by the block hash on read.
#[test]
fn a_corrupt_compact_part_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let m = meta(EngineKind::MergeTree, 8, 1 << 40);
    let t =
        Arc::new(MergeTreeTable::create(&dir.path().join("t"), m.clone(), Arc::new(Keys)).unwrap());
    let mut txn = t.begin_insert();
    txn.write(&batch(&m, &rows(1))).unwrap();
    txn.commit().unwrap();
    let part = t.active_parts()[0].clone();
    assert_eq!(part.kind, PartKind::Compact);
    let data = part.dir.join("data.bin");
    let mut bytes = std::fs::read(&data).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    std::fs::write(&data, &bytes).unwrap();
    let err = part.verify().unwrap_err();
    assert!(
        matches!(err, qh_storage::StorageError::ChecksumMismatch { .. }),
        "{err}"
    );
    let err = part
        .read_all(&m.arrow_schema(), &Default::default())
        .unwrap_err();
    assert!(err.to_string().contains("data.bin"), "{err}");
}

/// A staged part activated with the part its writer loaded (no read back)
/// is the part its files hold, wide and compact alike; without it, the
/// part is loaded from its files.
#[test]
fn staged_parts_activate_as_their_writer_loaded_them() {
    for wide_bytes in [0, 1 << 30] {
        let dir = tempfile::tempdir().unwrap();
        let m = meta(EngineKind::MergeTree, 16, wide_bytes);
        let t = Arc::new(
            MergeTreeTable::create(&dir.path().join("t"), m.clone(), Arc::new(Keys)).unwrap(),
        );
        let mut txn = t.begin_insert();
        let data: Vec<_> = (0..90).map(|k| (k, Some(format!("v{k}")))).collect();
        txn.write(&batch(&m, &data)).unwrap();
        let prepared = txn.into_prepared();
        assert_eq!(prepared.len(), 3, "one part per partition");
        for (i, p) in prepared.into_iter().enumerate() {
            let staged = dir.path().join(format!("staged_{i}"));
            std::fs::rename(p.tmp_dir(), &staged).unwrap();
            let name = qh_types::PartName {
                partition_id: p.partition.id.clone(),
                min_block: i as u64,
                max_block: i as u64,
                level: 0,
            };
            let loaded = (i != 1).then(|| Arc::new(p.part.moved(staged.clone(), name.clone())));
            let part = t.attach_staged(&staged, name.clone(), loaded).unwrap();
            assert_eq!(part.name, name);
            assert_eq!(part.dir, dir.path().join("t").join(name.to_string()));
        }
        same_as_on_disk(&t).unwrap();
        assert_eq!(read_all(&t).iter().map(Vec::len).sum::<usize>(), 90);
    }
}
