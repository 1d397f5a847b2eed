//! ClickHouse's array indexing (`arr[i]`, `arrayElement`, and `arrayFirst` /
//! `arrayLast` through it): 1-based, negative from the end, and outside the
//! array (or at 0) the element type's default — 0, '', 1970-01-01 — where
//! DataFusion answers NULL. An array whose elements may be NULL answers NULL
//! there, as ClickHouse's `Array(Nullable(T))` does. And `arrayZip`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, StructArray, UInt32Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{cast, concat, take};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int64Type};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result};
use qh_types::ErrorCode;

use crate::error::QueryError;

/// The element type of `arr[i]`.
pub(super) fn element_type(args: &[DataType]) -> Result<DataType> {
    match args.first() {
        Some(DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)) => {
            Ok(f.data_type().clone())
        }
        Some(DataType::Null) => Ok(DataType::Null),
        Some(map @ DataType::Map(..)) => super::maps::value_type(map),
        Some(other) => plan_err!("arrayElement needs an array, got {other}"),
        None => plan_err!("arrayElement needs an array and an index"),
    }
}

/// `args[0][args[1]]` row by row.
pub(super) fn element(args: &[ArrayRef], _rows: usize) -> Result<ArrayRef> {
    let list = match args[0].data_type() {
        DataType::List(_) => Arc::clone(&args[0]),
        DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            cast(&args[0], &DataType::List(Arc::clone(f)))?
        }
        DataType::Null => return Ok(Arc::clone(&args[0])),
        DataType::Map(..) => return super::maps::element(args),
        other => return exec_err!("arrayElement needs an array, got {other}"),
    };
    let list = list.as_list::<i32>();
    let index = cast(&args[1], &DataType::Int64)?;
    let index = index.as_primitive::<Int64Type>();
    let values = list.values();
    // ClickHouse's Array(Nullable(T)) answers NULL outside the array, its
    // Array(T) the default; an Arrow list does not always say which, so
    // elements that are NULL somewhere mark it Nullable.
    let nullable = match list.data_type() {
        DataType::List(f) => f.is_nullable() && values.null_count() > 0,
        _ => false,
    };
    let default_at = values.len() as u32;
    let mut picks: Vec<Option<u32>> = Vec::with_capacity(list.len());
    let offsets = list.value_offsets();
    for row in 0..list.len() {
        if list.is_null(row) || index.is_null(row) {
            picks.push(None);
            continue;
        }
        let (start, end) = (offsets[row] as i64, offsets[row + 1] as i64);
        let len = end - start;
        let i = index.value(row);
        let pos = if i > 0 { i - 1 } else { len + i };
        if i != 0 && (0..len).contains(&pos) {
            picks.push(Some((start + pos) as u32));
        } else if nullable {
            picks.push(None);
        } else {
            picks.push(Some(default_at));
        }
    }
    let default = super::default_scalar(values.data_type())?.to_array_of_size(1)?;
    let with_default = concat(&[values.as_ref(), default.as_ref()])?;
    Ok(take(&with_default, &UInt32Array::from(picks), None)?)
}

fn error(code: ErrorCode, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::other(code, message)))
}

/// The elements' type of each array argument of `arrayZip`.
fn zip_elements(args: &[DataType]) -> Result<Vec<Field>> {
    args.iter()
        .enumerate()
        .map(|(i, t)| match t {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => Ok(
                Field::new(format!("{}", i + 1), f.data_type().clone(), true),
            ),
            other => Err(error(
                ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                format!(
                    "Argument {} of function arrayZip must be an array, got {other}",
                    i + 1
                ),
            )),
        })
        .collect()
}

/// `arrayZip(a, b, …)`: an array of tuples; `arrayZip()` an empty array.
pub(super) fn zip_type(args: &[DataType]) -> Result<DataType> {
    if args.is_empty() {
        return Ok(DataType::new_list(DataType::Null, true));
    }
    let fields = Fields::from(zip_elements(args)?);
    Ok(DataType::new_list(DataType::Struct(fields), true))
}

/// The i-th tuple of each row holds the i-th element of every array; arrays
/// of different sizes in a row are 190 SIZES_OF_ARRAYS_DONT_MATCH.
pub(super) fn zip(args: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    if args.is_empty() {
        let offsets = OffsetBuffer::new_zeroed(rows);
        let values = datafusion::arrow::array::new_null_array(&DataType::Null, 0);
        let field = Arc::new(Field::new_list_field(DataType::Null, true));
        return Ok(Arc::new(ListArray::try_new(field, offsets, values, None)?));
    }
    let fields = Fields::from(zip_elements(
        &args
            .iter()
            .map(|a| a.data_type().clone())
            .collect::<Vec<_>>(),
    )?);
    let lists: Vec<ArrayRef> = args
        .iter()
        .map(|a| match a.data_type() {
            DataType::List(_) => Ok(Arc::clone(a)),
            DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                Ok(cast(a, &DataType::List(Arc::clone(f)))?)
            }
            other => exec_err!("arrayZip needs arrays, got {other}"),
        })
        .collect::<Result<_>>()?;
    let lists: Vec<&ListArray> = lists.iter().map(|l| l.as_list::<i32>()).collect();
    let first = lists[0];
    let n = first.len();
    for l in &lists[1..] {
        for row in 0..n {
            if l.value_length(row) != first.value_length(row) {
                return Err(error(
                    ErrorCode::SIZES_OF_ARRAYS_DONT_MATCH,
                    "The argument 1 and argument 2 of function arrayZip have different array sizes"
                        .into(),
                ));
            }
        }
    }
    // Equal sizes row by row: every list's values are its rows' elements
    // back to back, so they line up once each is cut to its own rows.
    let columns: Vec<ArrayRef> = lists
        .iter()
        .map(|l| {
            let offsets = l.value_offsets();
            let (start, end) = (offsets[0] as usize, offsets[n] as usize);
            l.values().slice(start, end - start)
        })
        .collect();
    let values = StructArray::try_new(fields.clone(), columns, None)?;
    let base = first.value_offsets()[0];
    let offsets: Vec<i32> = first.value_offsets().iter().map(|o| o - base).collect();
    let field = Arc::new(Field::new_list_field(DataType::Struct(fields), true));
    Ok(Arc::new(ListArray::try_new(
        field,
        OffsetBuffer::new(offsets.into()),
        Arc::new(values),
        None,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, ListArray};
    use datafusion::arrow::datatypes::Int32Type;

    fn run(lists: Vec<Option<Vec<Option<i32>>>>, idx: Vec<i64>) -> Vec<Option<i32>> {
        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(lists));
        let idx: ArrayRef = Arc::new(Int64Array::from(idx));
        let n = list.len();
        let out = element(&[list, idx], n).unwrap();
        out.as_primitive::<Int32Type>().iter().collect()
    }

    #[test]
    fn one_based_negative_from_the_end_default_outside() {
        let l = || Some(vec![Some(1), Some(2), Some(3)]);
        assert_eq!(
            run(vec![l(), l(), l(), l(), l(), None], vec![1, 3, -1, 0, 5, 1]),
            vec![Some(1), Some(3), Some(3), Some(0), Some(0), None]
        );
    }

    #[test]
    fn nullable_elements_answer_null_outside() {
        let l = || Some(vec![Some(1), None]);
        assert_eq!(run(vec![l(), l()], vec![2, 3]), vec![None, None]);
    }
}
