//! String functions whose ClickHouse semantics DataFusion's lack.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{DataFusionError, Result};
use qh_types::ErrorCode;

use crate::error::QueryError;

fn bad_arguments(why: String) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::other(ErrorCode::BAD_ARGUMENTS, why)))
}

pub(super) fn ret_string_array(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::List(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        true,
    ))))
}

/// `splitByString(separator, s)`: the pieces between separators (an empty
/// separator splits into characters; an empty `s` is `[]` then, else `['']`).
pub(super) fn split_by_string(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    split(args, "splitByString")
}

/// `splitByChar(separator, s)`: as `splitByString`, the separator one byte.
pub(super) fn split_by_char(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    split(args, "splitByChar")
}

fn split(args: &[ArrayRef], name: &str) -> Result<ArrayRef> {
    let sep = cast(&args[0], &DataType::Utf8)?;
    let s = cast(&args[1], &DataType::Utf8)?;
    let (sep, s) = (sep.as_string::<i32>(), s.as_string::<i32>());
    let mut out = ListBuilder::new(StringBuilder::new());
    for i in 0..s.len() {
        if s.is_null(i) || sep.is_null(i) {
            out.append(false);
            continue;
        }
        let (sep, s) = (sep.value(i), s.value(i));
        if name == "splitByChar" && sep.len() != 1 {
            return Err(bad_arguments(format!(
                "Illegal separator for function {name}. Must be exactly one byte"
            )));
        }
        if sep.is_empty() {
            for c in s.chars() {
                out.values().append_value(c.to_string());
            }
        } else {
            for piece in s.split(sep) {
                out.values().append_value(piece);
            }
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    fn pieces(sep: &str, s: &str) -> Vec<String> {
        let args: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![sep])),
            Arc::new(StringArray::from(vec![s])),
        ];
        let out = split_by_string(&args, 1).expect("split");
        let list = out.as_list::<i32>().value(0);
        list.as_string::<i32>()
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect()
    }

    // Expected values from ClickHouse (01100_split_by_string).
    #[test]
    fn split_by_string_as_clickhouse() {
        assert_eq!(pieces("ab", "cdeabcde"), ["cde", "cde"]);
        assert_eq!(pieces("ab", "abcdeabcdeab"), ["", "cde", "cde", ""]);
        assert_eq!(pieces("ab", "ababab"), ["", "", "", ""]);
        assert_eq!(pieces("", "abcde"), ["a", "b", "c", "d", "e"]);
        assert_eq!(pieces("ab", ""), [""]);
        assert!(pieces("", "").is_empty());
    }
}
