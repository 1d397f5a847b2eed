//! `max_parallel_replicas`: one shard's aggregation split over several of
//! its replicas by ranges of the first sorting-key column.
//!
//! **Why ranges of a key column, not lists of parts.** Replicas merge on
//! their own schedule, so the same rows live in differently named parts on
//! each; a split by part names double-counts or loses rows whenever two
//! replicas' part sets differ (ClickHouse shipped such wrong answers). A
//! split of the *key space* is exact whatever the parts look like: every
//! row's key falls in exactly one range, and each replica reads only the
//! granules its range overlaps (the sparse index prunes the rest). The
//! ranges are cut where this node's own copy of the table puts them (its
//! granules' first keys), which only decides how even the split is, never
//! which rows are counted. A replica reads a slice only when it holds every
//! part its replication log has named (`Replica::holds_logged_parts`);
//! otherwise another replica takes the slice, and when none can, the shard
//! is read whole from one replica.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::{concat, sort};
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{lit, Expr};

use super::scan::LeafSpec;
use crate::engine::Engine;

/// The predicates of up to `k` slices covering every value of the table's
/// first sorting-key column (NULLs in the first), or `None` when the rows
/// cannot be split: no local Replicated copy of the table to cut ranges
/// from, no plain key column, or too few distinct keys.
pub(super) fn slice_predicates(engine: &Engine, spec: &LeafSpec, k: usize) -> Option<Vec<Expr>> {
    if k < 2 {
        return None;
    }
    let table = engine.catalog().table(&spec.database, &spec.table).ok()?;
    let meta = table.meta();
    meta.replicated.as_ref()?;
    let column = meta.order_by.first()?;
    if meta.column(column).is_none() || !meta.index_columns.contains(column) {
        return None;
    }
    let firsts: Vec<ArrayRef> = table
        .active_parts()
        .iter()
        .filter_map(|p| {
            p.index
                .as_ref()?
                .column_by_name(&format!("min.{column}"))
                .cloned()
        })
        .collect();
    let points = split_points(&firsts, k)?;
    let c = Expr::Column(Column::from_name(column.as_str()));
    let mut slices = Vec::with_capacity(points.len() + 1);
    for j in 0..=points.len() {
        let lower = j
            .checked_sub(1)
            .map(|i| c.clone().gt_eq(lit(points[i].clone())));
        let upper = points.get(j).map(|p| c.clone().lt(lit(p.clone())));
        slices.push(match (lower, upper) {
            (None, Some(u)) => u.or(c.clone().is_null()),
            (Some(l), Some(u)) => l.and(u),
            (Some(l), None) => l,
            (None, None) => return None,
        });
    }
    Some(slices)
}

/// Up to `k - 1` distinct, non-NULL values cutting the granules' first keys
/// into `k` groups of about equal size, ascending.
fn split_points(firsts: &[ArrayRef], k: usize) -> Option<Vec<ScalarValue>> {
    let arrays: Vec<&dyn Array> = firsts.iter().map(|a| a.as_ref()).collect();
    if arrays.is_empty() {
        return None;
    }
    let all = concat(&arrays).ok()?;
    let sorted = sort(&all, None).ok()?;
    let n = sorted.len();
    let mut points: Vec<ScalarValue> = Vec::new();
    for i in 1..k {
        let v = ScalarValue::try_from_array(&sorted, i * n / k).ok()?;
        // A cut at the smallest value would leave the first slice empty.
        let smallest = ScalarValue::try_from_array(&sorted, sorted.null_count()).ok()?;
        if v.is_null() || v == smallest || points.last() == Some(&v) {
            continue;
        }
        points.push(v);
    }
    (!points.is_empty()).then_some(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::UInt64Array;
    use std::sync::Arc;

    fn arr(v: &[u64]) -> ArrayRef {
        Arc::new(UInt64Array::from(v.to_vec()))
    }

    #[test]
    fn cuts_between_granules_and_skips_duplicates() {
        let p = split_points(&[arr(&[0, 10, 20]), arr(&[5, 15, 25])], 3).unwrap();
        assert_eq!(
            p,
            vec![ScalarValue::UInt64(Some(10)), ScalarValue::UInt64(Some(20))]
        );
        // One distinct key: nothing to split.
        assert!(split_points(&[arr(&[7, 7, 7, 7])], 2).is_none());
        let p = split_points(&[arr(&[1, 1, 1, 9])], 4).unwrap();
        assert_eq!(p, vec![ScalarValue::UInt64(Some(9))]);
        assert!(split_points(&[], 2).is_none());
    }
}
