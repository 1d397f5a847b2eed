//! Sets of tuples, for `(a, b) IN …` (see `rewrite/tuples.rs`). The set is
//! built once from the subquery's rows with ClickHouse's rules and carried
//! as a literal argument of `__qh_tuple_in(set, negated, a, b, …)`, so the
//! expression stays a plain function call (it serializes into a shard's
//! plan like any other).
//!
//! ClickHouse's rules (`transform_null_in = 0`): each element is converted
//! to the left side's types and skipped when it does not convert exactly
//! (`-1` into UInt64, `1.5` into an integer); an element holding a NULL is
//! skipped; a left side holding a NULL is in no set. The answer is never
//! NULL. Rows are compared by their arrow-row encoding under the left
//! side's types, which is equality of values of one type.

use std::collections::HashSet;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StructArray};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{cast_with_options, filter, CastOptions};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{exec_err, plan_err, Result};

/// The function testing membership: `(set, negated, a, b, …)`.
pub const TUPLE_IN: &str = "__qh_tuple_in";

/// The encoded set of the valid rows of `rows` (one column per tuple
/// element) converted to `types`: each row as a little-endian u32 length
/// and its arrow-row bytes, distinct rows once.
pub fn encode_set(rows: &StructArray, types: &[DataType]) -> Result<Vec<u8>> {
    if rows.num_columns() != types.len() {
        return plan_err!(
            "Number of columns in section IN doesn't match. {} at left, {} at right.",
            types.len(),
            rows.num_columns()
        );
    }
    let mut keep = vec![true; rows.len()];
    for (i, k) in keep.iter_mut().enumerate() {
        *k = rows.is_valid(i);
    }
    let mut columns = Vec::with_capacity(types.len());
    for (col, to) in rows.columns().iter().zip(types) {
        let (converted, exact) = convert(col, to)?;
        for (i, k) in keep.iter_mut().enumerate() {
            *k &= exact.value(i) && exact.is_valid(i);
        }
        columns.push(converted);
    }
    let keep = BooleanArray::from(keep);
    let columns = columns
        .iter()
        .map(|c| filter(c, &keep))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let converter = converter(types)?;
    let encoded = converter.convert_columns(&columns)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for row in encoded.iter() {
        let bytes = row.as_ref().to_vec();
        if !seen.contains(&bytes) {
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&bytes);
            seen.insert(bytes);
        }
    }
    Ok(out)
}

/// Whether the set [`encode_set`] made is empty.
pub fn is_empty(set: &[u8]) -> bool {
    set.is_empty()
}

fn converter(types: &[DataType]) -> Result<RowConverter> {
    Ok(RowConverter::new(
        types.iter().map(|t| SortField::new(t.clone())).collect(),
    )?)
}

/// `col` as `to`, and which values converted exactly (a NULL did not).
/// Into an integer, Decimal, Date or DateTime a number or time must come
/// back unchanged; a string converts if it parses.
fn convert(col: &ArrayRef, to: &DataType) -> Result<(ArrayRef, BooleanArray)> {
    let converted = if col.data_type() == to {
        col.clone()
    } else {
        let options = CastOptions {
            safe: true,
            ..Default::default()
        };
        match cast_with_options(col, to, &options) {
            Ok(c) => c,
            Err(e) => {
                return plan_err!(
                    "Types of the set ({}) and of the left side of IN ({to}) do not convert: {e}",
                    col.data_type()
                )
            }
        }
    };
    let mut exact: BooleanArray = (0..col.len())
        .map(|i| Some(col.is_valid(i) && converted.is_valid(i)))
        .collect();
    let checked_target = to.is_integer()
        || matches!(
            to,
            DataType::Decimal128(..)
                | DataType::Decimal256(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
        );
    let from = col.data_type();
    let checked_source = from.is_numeric() || from.is_temporal();
    if col.data_type() != to && checked_target && checked_source {
        let back = cast_with_options(&converted, from, &CastOptions::default())?;
        let same = eq(&back, col)?;
        exact = exact
            .iter()
            .zip(same.iter())
            .map(|(a, b)| Some(a == Some(true) && b == Some(true)))
            .collect();
    }
    Ok((converted, exact))
}

/// `__qh_tuple_in(set, negated, a, b, …)`.
pub fn eval(args: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    let [set, negated, values @ ..] = args else {
        return exec_err!("{TUPLE_IN} takes a set, a flag and the tuple's elements");
    };
    let (Some(set), Some(negated)) = (set.as_binary_opt::<i32>(), negated.as_boolean_opt()) else {
        return exec_err!("{TUPLE_IN}: the set and the flag must be literals");
    };
    if set.is_empty() || negated.is_empty() || values.is_empty() {
        return exec_err!("{TUPLE_IN} has no set");
    }
    let negated = negated.value(0);
    let members = decode(set.value(0))?;
    let types: Vec<DataType> = values.iter().map(|v| v.data_type().clone()).collect();
    let encoded = converter(&types)?.convert_columns(values)?;
    let out: BooleanArray = (0..rows)
        .map(|i| {
            let has_null = values.iter().any(|v| v.is_null(i));
            let found = !has_null && members.contains(encoded.row(i).as_ref());
            Some(found != negated)
        })
        .collect();
    Ok(std::sync::Arc::new(out))
}

fn decode(mut set: &[u8]) -> Result<HashSet<&[u8]>> {
    let mut out = HashSet::new();
    while !set.is_empty() {
        let Some((len, rest)) = set.split_first_chunk::<4>() else {
            return exec_err!("{TUPLE_IN}: a damaged set");
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return exec_err!("{TUPLE_IN}: a damaged set");
        }
        let (row, rest) = rest.split_at(len);
        out.insert(row);
        set = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BinaryArray, Float64Array, Int64Array, StringArray, UInt64Array,
    };
    use datafusion::arrow::datatypes::{Field, Fields};

    use super::*;

    fn set_of(columns: Vec<ArrayRef>) -> StructArray {
        let fields: Fields = columns
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
            .collect();
        StructArray::new(fields, columns, None)
    }

    fn member(set: &[u8], values: Vec<ArrayRef>, negated: bool) -> Vec<bool> {
        let n = values[0].len();
        let mut args: Vec<ArrayRef> = vec![
            Arc::new(BinaryArray::from_iter_values(std::iter::repeat_n(set, n))),
            Arc::new(BooleanArray::from(vec![negated; n])),
        ];
        args.extend(values);
        let out = eval(&args, n).expect("eval");
        out.as_boolean()
            .iter()
            .map(|v| v.expect("never NULL"))
            .collect()
    }

    #[test]
    fn elements_convert_to_the_left_types_or_are_skipped() {
        // (1, '1'), (-1, '-1'), (NULL, 'x'), (2.5, '2') against (UInt64, String).
        let rows = set_of(vec![
            Arc::new(Float64Array::from(vec![
                Some(1.0),
                Some(-1.0),
                None,
                Some(2.5),
            ])),
            Arc::new(StringArray::from(vec!["1", "-1", "x", "2"])),
        ]);
        let set = encode_set(&rows, &[DataType::UInt64, DataType::Utf8]).expect("set");
        let left: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(vec![Some(1), Some(2), None, Some(1)])),
            Arc::new(StringArray::from(vec!["1", "2", "x", "2"])),
        ];
        assert_eq!(
            member(&set, left.clone(), false),
            [true, false, false, false]
        );
        assert_eq!(member(&set, left, true), [false, true, true, true]);
    }

    #[test]
    fn an_empty_or_all_null_set_holds_nothing() {
        let rows = set_of(vec![Arc::new(Int64Array::from(vec![None, None]))]);
        let set = encode_set(&rows, &[DataType::Int64]).expect("set");
        assert!(is_empty(&set));
        let left: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![Some(1), None]))];
        assert_eq!(member(&set, left, false), [false, false]);
    }

    #[test]
    fn a_set_of_the_wrong_width_is_refused() {
        let rows = set_of(vec![Arc::new(Int64Array::from(vec![1]))]);
        assert!(encode_set(&rows, &[DataType::Int64, DataType::Int64]).is_err());
    }
}
