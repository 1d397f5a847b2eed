//! ClickHouse's PREWHERE, applied automatically: a scan reads the columns
//! its filters need first, evaluates the filters granule by granule, and
//! reads the remaining columns only for granules where some row passed.
//!
//! The filters are the query's own WHERE conjuncts (and DataFusion's
//! dynamic filters, such as a TopK's running threshold). DataFusion still
//! applies every filter above the scan, so this is purely a shortcut:
//! dropping a row here must never change the answer. Hence a filter that
//! fails to evaluate drops nothing, and a filter over a single
//! LowCardinality column is evaluated once per dictionary entry, which is
//! only sound because it is deterministic and reads nothing else.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, RecordBatch, RecordBatchOptions,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::{and, cast, filter, prep_null_mask_filter};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef, UInt32Type};
use datafusion::common::internal_err;
use datafusion::common::ScalarValue;
use datafusion::error::Result as DFResult;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::physical_expr::{is_volatile, snapshot_physical_expr};
use qh_storage::{ColumnDefaults, Part};

use super::ReadGranule;
use crate::provider::{ext, QueryStats};

/// The filters one read applies, each bound to the columns it reads.
pub(crate) struct Prewhere {
    filters: Vec<Filter>,
    /// Indices (in the scan's schema) of every column a filter reads.
    columns: Vec<usize>,
}

struct Filter {
    /// Bound to `input`.
    expr: Arc<dyn PhysicalExpr>,
    input: SchemaRef,
    /// Indices of `input`'s columns in the scan's schema.
    columns: Vec<usize>,
    /// Reads one column and nothing else varies: it may be evaluated over
    /// a LowCardinality column's dictionary instead of its rows.
    per_value: bool,
}

impl Prewhere {
    /// Binds `exprs` (over `schema`) for one read; dynamic filters are
    /// taken as they stand now. None when nothing would filter.
    pub(crate) fn new(schema: &SchemaRef, exprs: &[Arc<dyn PhysicalExpr>]) -> Option<Prewhere> {
        let mut filters = Vec::new();
        let mut all = BTreeSet::new();
        for e in exprs {
            let Ok(e) = snapshot_physical_expr(Arc::clone(e)) else {
                continue;
            };
            if let Some(l) = e.downcast_ref::<Literal>() {
                if l.value() == &ScalarValue::Boolean(Some(true)) {
                    continue;
                }
            }
            let mut columns: Vec<usize> = Vec::new();
            for c in collect_columns(&e) {
                match schema.index_of(c.name()) {
                    Ok(i) => columns.push(i),
                    Err(_) => columns.clear(),
                }
            }
            if columns.is_empty() {
                continue;
            }
            columns.sort_unstable();
            columns.dedup();
            // Filters see a dictionary column as its values (`evaluate`).
            let input = Arc::new(Schema::new(
                columns
                    .iter()
                    .map(|i| {
                        let f = schema.field(*i);
                        match f.data_type() {
                            DataType::Dictionary(_, v) => {
                                f.clone().with_data_type(v.as_ref().clone())
                            }
                            _ => f.clone(),
                        }
                    })
                    .collect::<Vec<_>>(),
            ));
            let Ok(expr) = reassign_expr_columns(Arc::clone(&e), &input) else {
                continue;
            };
            all.extend(columns.iter().copied());
            filters.push(Filter {
                per_value: columns.len() == 1 && !is_volatile(&expr),
                expr,
                input,
                columns,
            });
        }
        (!filters.is_empty()).then(|| Prewhere {
            filters,
            columns: all.into_iter().collect(),
        })
    }
}

/// Reads `granules` of `part` as `schema`, one batch per granule that has
/// rows left after the prewhere filters.
pub(crate) fn read(
    part: &Part,
    granules: &[Range<usize>],
    schema: &SchemaRef,
    defaults: &ColumnDefaults,
    prewhere: &Prewhere,
    stats: &QueryStats,
) -> DFResult<Vec<ReadGranule>> {
    let ids: Vec<usize> = granules.iter().flat_map(|r| r.clone()).collect();
    let sizes = part.granule_sizes(granules);
    let mut read_bytes = 0usize;
    // The filters' columns, dictionaries kept where a filter can use them.
    let mut first: Vec<Vec<ArrayRef>> = Vec::with_capacity(prewhere.columns.len());
    for &c in &prewhere.columns {
        let per_value = prewhere
            .filters
            .iter()
            .any(|f| f.per_value && f.columns[0] == c);
        let arrays = part
            .read_column_granules(schema.field(c), granules, defaults, per_value)
            .map_err(ext)?;
        read_bytes += arrays
            .iter()
            .map(|a| a.get_array_memory_size())
            .sum::<usize>();
        first.push(arrays);
    }
    let slot = |c: usize| prewhere.columns.binary_search(&c).ok();
    let mut survivors: Vec<(usize, Option<BooleanArray>)> = Vec::new();
    for (g, &rows) in sizes.iter().enumerate() {
        let mut mask: Option<BooleanArray> = None;
        for f in &prewhere.filters {
            let arrays: Vec<&ArrayRef> = f
                .columns
                .iter()
                .filter_map(|c| slot(*c).map(|s| &first[s][g]))
                .collect();
            let Some(m) = evaluate(f, &arrays, rows) else {
                continue;
            };
            mask = Some(match mask {
                None => m,
                Some(prev) => match and(&prev, &m) {
                    Ok(both) => both,
                    Err(_) => prev,
                },
            });
        }
        match mask {
            Some(m) if m.true_count() == 0 => {}
            Some(m) if m.true_count() == rows => survivors.push((g, None)),
            m => survivors.push((g, m)),
        }
    }
    // The other columns, for surviving granules only.
    let kept: Vec<Range<usize>> = to_ranges(survivors.iter().map(|(g, _)| ids[*g]));
    let mut rest: Vec<Option<Vec<ArrayRef>>> = vec![None; schema.fields().len()];
    if !kept.is_empty() {
        for (i, field) in schema.fields().iter().enumerate() {
            if slot(i).is_none() {
                let arrays = part
                    .read_column_granules(field, &kept, defaults, false)
                    .map_err(ext)?;
                read_bytes += arrays
                    .iter()
                    .map(|a| a.get_array_memory_size())
                    .sum::<usize>();
                rest[i] = Some(arrays);
            }
        }
    }
    stats.add_read_counts(sizes.iter().sum::<usize>() as u64, read_bytes as u64)?;
    let mut out = Vec::with_capacity(survivors.len());
    for (k, (g, mask)) in survivors.iter().enumerate() {
        let mut arrays = Vec::with_capacity(schema.fields().len());
        for (i, field) in schema.fields().iter().enumerate() {
            let a = match (slot(i), &rest[i]) {
                (Some(s), _) => &first[s][*g],
                (None, Some(r)) => &r[k],
                (None, None) => return internal_err!("column {i} was not read"),
            };
            let a = match mask {
                Some(m) => filter(a.as_ref(), m)?,
                None => Arc::clone(a),
            };
            arrays.push(if a.data_type() != field.data_type() {
                cast(&a, field.data_type())?
            } else {
                a
            });
        }
        let rows = mask.as_ref().map_or(sizes[*g], |m| m.true_count());
        out.push(ReadGranule {
            id: ids[*g],
            kept: mask.clone(),
            batch: RecordBatch::try_new_with_options(
                Arc::clone(schema),
                arrays,
                &RecordBatchOptions::new().with_row_count(Some(rows)),
            )?,
        });
    }
    Ok(out)
}

/// Which of a granule's `rows` pass `f`; None keeps them all (the filter
/// could not be evaluated here, DataFusion's will decide).
fn evaluate(f: &Filter, arrays: &[&ArrayRef], rows: usize) -> Option<BooleanArray> {
    if arrays.len() != f.columns.len() {
        return None;
    }
    if f.per_value {
        if let Some(d) = arrays[0].as_dictionary_opt::<UInt32Type>() {
            return per_value(f, d);
        }
    }
    let columns = arrays
        .iter()
        .map(|a| match a.data_type() {
            DataType::Dictionary(_, v) => cast(a.as_ref(), v).ok(),
            _ => Some(Arc::clone(a)),
        })
        .collect::<Option<Vec<_>>>()?;
    let batch = RecordBatch::try_new_with_options(
        Arc::clone(&f.input),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .ok()?;
    to_mask(f.expr.evaluate(&batch).and_then(|v| v.into_array(rows)))
}

/// `f` over the dictionary's entries, then each row takes its entry's
/// answer; a NULL row is kept (the filter above decides it).
fn per_value(f: &Filter, d: &DictionaryArray<UInt32Type>) -> Option<BooleanArray> {
    let values = d.values();
    let batch = RecordBatch::try_new(Arc::clone(&f.input), vec![Arc::clone(values)]).ok()?;
    let entries = to_mask(
        f.expr
            .evaluate(&batch)
            .and_then(|v| v.into_array(values.len())),
    )?;
    let entries: Vec<bool> = entries.iter().map(|e| e.unwrap_or(false)).collect();
    let keys = d.keys();
    let ks = keys.values();
    // A key outside the dictionary cannot be (the array checked); kept.
    let passes = |r: usize| entries.get(ks[r] as usize).copied().unwrap_or(true);
    let bits = match keys.nulls() {
        None => BooleanBuffer::collect_bool(keys.len(), passes),
        Some(n) => BooleanBuffer::collect_bool(keys.len(), |r| n.is_null(r) || passes(r)),
    };
    Some(BooleanArray::new(bits, None))
}

/// A filter's result as a mask without NULLs (NULL drops the row).
fn to_mask(result: DFResult<ArrayRef>) -> Option<BooleanArray> {
    let a = result.ok()?;
    let b = a.as_boolean_opt()?;
    Some(if b.null_count() > 0 {
        prep_null_mask_filter(b)
    } else {
        b.clone()
    })
}

/// Sorted granule numbers as ranges.
pub(super) fn to_ranges(ids: impl Iterator<Item = usize>) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for g in ids {
        match out.last_mut() {
            Some(r) if r.end == g => r.end = g + 1,
            _ => out.push(g..g + 1),
        }
    }
    out
}
