//! Merging parts: which parts to merge (size-tiered), and the merge itself
//! (sorted union, with ReplacingMergeTree's collapse).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{
    concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch, SortColumn,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};

use crate::error::Result;
use crate::keys::KeyEvaluator;
use crate::meta::{EngineKind, TableMeta};
use crate::part::Part;

/// Most parts one merge takes.
pub const MAX_PARTS_TO_MERGE: usize = 10;

/// Chooses a run of adjacent parts of one partition worth merging, or None.
/// `parts` are one partition's active parts sorted by block number.
///
/// Size-tiered: a window qualifies when no part in it is bigger than all the
/// others together (so a big part is not rewritten for a tiny one); among
/// qualifying windows the one with the smallest bytes per merged part wins,
/// which favours many small parts.
pub fn select_merge(parts: &[Arc<Part>]) -> Option<Vec<Arc<Part>>> {
    let mut best: Option<(f64, usize, usize)> = None;
    for start in 0..parts.len() {
        let mut total = 0u64;
        let mut largest = 0u64;
        for (i, part) in parts[start..].iter().take(MAX_PARTS_TO_MERGE).enumerate() {
            let end = start + i;
            let size = part.bytes_on_disk.max(1);
            total += size;
            largest = largest.max(size);
            let len = i + 1;
            if len < 2 {
                continue;
            }
            if largest > total - largest {
                continue;
            }
            let score = total as f64 / (len as f64).powf(1.5);
            if best.is_none_or(|(s, _, _)| score < s) {
                best = Some((score, start, end));
            }
        }
    }
    best.map(|(_, s, e)| parts[s..=e].to_vec())
}

/// Reads `parts` (ordered by block number) and returns their rows as one
/// batch sorted by the key, collapsed for ReplacingMergeTree. With `final_`
/// the rows a FINAL query must hide (`is_deleted = 1`) are dropped too.
pub fn merge_rows(
    meta: &TableMeta,
    keys: &dyn KeyEvaluator,
    batches: Vec<RecordBatch>,
    final_: bool,
) -> Result<RecordBatch> {
    let schema = meta.arrow_schema();
    // Tie-breakers: source order (block order) then row order, so equal keys
    // keep insertion order and "the last inserted" is last.
    let mut src = Vec::new();
    let mut row = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        src.extend(std::iter::repeat_n(i as u32, b.num_rows()));
        row.extend(0..b.num_rows() as u32);
    }
    let all = concat_batches(&schema, &batches)?;
    if all.num_rows() == 0 {
        return Ok(all);
    }
    let key = keys.sort_key(&all)?;
    let version = match &meta.engine {
        EngineKind::ReplacingMergeTree {
            version: Some(v), ..
        } => Some(column(&all, v)?),
        _ => None,
    };
    let mut cols: Vec<SortColumn> = key
        .iter()
        .chain(version.iter())
        .map(|k| SortColumn {
            values: Arc::clone(k),
            options: None,
        })
        .collect();
    cols.push(SortColumn {
        values: Arc::new(UInt32Array::from(src)),
        options: None,
    });
    cols.push(SortColumn {
        values: Arc::new(UInt32Array::from(row)),
        options: None,
    });
    let idx = lexsort_to_indices(&cols, None)?;
    let sorted = take_record_batch(&all, &idx)?;
    let EngineKind::ReplacingMergeTree { is_deleted, .. } = &meta.engine else {
        return Ok(sorted);
    };
    // Keep the last row of each run of equal keys.
    let skey = keys.sort_key(&sorted)?;
    let n = sorted.num_rows();
    let keep: BooleanArray = if skey.is_empty() {
        (0..n).map(|i| Some(i + 1 == n)).collect()
    } else {
        let fields = skey
            .iter()
            .map(|a| SortField::new(a.data_type().clone()))
            .collect();
        let conv = RowConverter::new(fields)?;
        let rows = conv.convert_columns(&skey)?;
        (0..n)
            .map(|i| Some(i + 1 == n || rows.row(i) != rows.row(i + 1)))
            .collect()
    };
    let mut out = filter_record_batch(&sorted, &keep)?;
    if final_ {
        if let Some(d) = is_deleted {
            let del = column(&out, d)?;
            let del = datafusion::arrow::compute::cast(&del, &DataType::Boolean)?;
            let del = del.as_boolean();
            let alive: BooleanArray = del.iter().map(|v| Some(!v.unwrap_or(false))).collect();
            out = filter_record_batch(&out, &alive)?;
        }
    }
    Ok(out)
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    batch.column_by_name(name).cloned().ok_or_else(|| {
        crate::error::StorageError::Key(format!("no column {name} for ReplacingMergeTree"))
    })
}
