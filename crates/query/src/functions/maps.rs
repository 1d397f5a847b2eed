//! ClickHouse's `Map(K, V)` (an Arrow map of `key` / `value` entries):
//! `m[k]` / `arrayElement(m, k)` answers the value of the first entry with
//! key `k`, or the value type's default when there is none (NULL for a
//! Nullable value type), as ClickHouse does; DataFusion's own map access
//! answers NULL. `length(m)` counts the entries.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array, UInt64Array};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{cast, concat, take};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};

/// The value type of `m[k]`.
pub(super) fn value_type(map: &DataType) -> Result<DataType> {
    match map {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => Ok(kv[1].data_type().clone()),
            other => exec_err!("a map's entries must be key-value pairs, got {other}"),
        },
        other => exec_err!("not a map: {other}"),
    }
}

/// `args[0][args[1]]` row by row over a map.
pub(super) fn element(args: &[ArrayRef]) -> Result<ArrayRef> {
    let map = args[0].as_map();
    let (keys, values) = (map.keys(), map.values());
    let value_nullable = match map.data_type() {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) => kv[1].is_nullable() && values.null_count() > 0,
            _ => false,
        },
        _ => false,
    };
    // The wanted key beside every entry of its row, compared in one kernel.
    let wanted = cast(&args[1], keys.data_type())?;
    let offsets = map.value_offsets();
    let base = offsets[0] as usize;
    let entries = offsets[map.len()] as usize - base;
    let mut row_of_entry = Vec::with_capacity(entries);
    for row in 0..map.len() {
        let n = (offsets[row + 1] - offsets[row]) as usize;
        row_of_entry.extend(std::iter::repeat_n(row as u32, n));
    }
    let wanted = take(&wanted, &UInt32Array::from(row_of_entry), None)?;
    let hits = eq(&keys.slice(base, entries), &wanted)?;
    let default_at = values.len() as u32;
    let mut picks: Vec<Option<u32>> = Vec::with_capacity(map.len());
    for row in 0..map.len() {
        if map.is_null(row) || args[1].is_null(row) {
            picks.push(None);
            continue;
        }
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let found = (start..end).find(|&j| hits.is_valid(j - base) && hits.value(j - base));
        picks.push(match found {
            Some(j) => Some(j as u32),
            None if value_nullable => None,
            None => Some(default_at),
        });
    }
    let default = super::default_scalar(values.data_type())?.to_array_of_size(1)?;
    let with_default = concat(&[values.as_ref(), default.as_ref()])?;
    Ok(take(&with_default, &UInt32Array::from(picks), None)?)
}

/// The number of entries of each map.
pub(super) fn length(map: &ArrayRef) -> ArrayRef {
    let m = map.as_map();
    let lengths: UInt64Array = (0..m.len())
        .map(|i| (!m.is_null(i)).then(|| m.value_length(i) as u64))
        .collect();
    Arc::new(lengths)
}
