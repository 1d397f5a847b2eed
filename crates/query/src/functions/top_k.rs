//! `topK(N)(x)` (the rewrite makes it `__qh_top_k(array_agg(x), N)`): the N
//! most frequent non-NULL values, most frequent first, ties in order of
//! first appearance. Exact, where ClickHouse's Space-Saving sketch is
//! approximate past its capacity; over few distinct values the two agree.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, UInt32Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field, UInt64Type};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::udf;

pub(crate) const TOP_K: &str = "__qh_top_k";

pub(super) fn udfs() -> Vec<ScalarUDF> {
    vec![udf(
        TOP_K,
        Signature::any(2, Volatility::Immutable),
        return_type,
        top_k,
    )]
}

fn return_type(args: &[DataType]) -> Result<DataType> {
    match args.first() {
        Some(DataType::List(f)) => Ok(DataType::new_list(f.data_type().clone(), true)),
        Some(DataType::Null) => Ok(DataType::new_list(DataType::Null, true)),
        other => plan_err!("topK needs the values' array, got {other:?}"),
    }
}

fn top_k(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let list = match args[0].data_type() {
        DataType::List(_) => args[0].as_list::<i32>().clone(),
        other => return exec_err!("topK needs the values' array, got {other}"),
    };
    let n = cast(&args[1], &DataType::UInt64)?;
    let n = n.as_primitive::<UInt64Type>();
    let values = list.values();
    let converter = RowConverter::new(vec![SortField::new(values.data_type().clone())])?;
    let rows = converter.convert_columns(&[Arc::clone(values)])?;
    let mut picks: Vec<u32> = Vec::new();
    let mut offsets: Vec<i32> = vec![0];
    let value_offsets = list.value_offsets();
    for row in 0..list.len() {
        let limit = if n.is_null(row) { 10 } else { n.value(row) } as usize;
        if !list.is_null(row) && limit > 0 {
            // value -> (count, first index)
            let mut counts: HashMap<_, (u64, usize)> = HashMap::new();
            let (start, end) = (value_offsets[row] as usize, value_offsets[row + 1] as usize);
            for i in start..end {
                if values.is_null(i) {
                    continue;
                }
                counts.entry(rows.row(i)).or_insert((0, i)).0 += 1;
            }
            let mut ranked: Vec<(u64, usize)> = counts.into_values().collect();
            ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            picks.extend(ranked.iter().take(limit).map(|(_, i)| *i as u32));
        }
        offsets.push(picks.len() as i32);
    }
    let picked = take(values.as_ref(), &UInt32Array::from(picks), None)?;
    let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    Ok(Arc::new(ListArray::try_new(
        field,
        OffsetBuffer::new(offsets.into()),
        picked,
        None,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};

    #[test]
    fn most_frequent_first_nulls_skipped_ties_by_first_appearance() {
        let values = StringArray::from(vec![
            Some("b"),
            None,
            Some("a"),
            Some("a"),
            None,
            Some("c"),
            Some("b"),
            Some("d"),
        ]);
        let field = Arc::new(Field::new_list_field(DataType::Utf8, true));
        let list = ListArray::new(
            field,
            OffsetBuffer::new(vec![0, 8].into()),
            Arc::new(values),
            None,
        );
        let out = top_k(&[Arc::new(list), Arc::new(Int64Array::from(vec![3]))], 1).unwrap();
        let out = out.as_list::<i32>().value(0);
        let got: Vec<_> = out.as_string::<i32>().iter().flatten().collect();
        assert_eq!(got, vec!["b", "a", "c"]);
    }
}
