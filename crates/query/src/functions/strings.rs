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

/// `toFixedString(s, N)`: `s` padded with zero bytes to N bytes. FixedString
/// is carried as a String here, so the result is the padded String; a
/// longer `s` is 131, as in ClickHouse, and N must be one constant.
pub(super) fn to_fixed_string(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let n = cast(&args[1], &DataType::UInt64).map_err(|_| {
        DataFusionError::External(Box::new(QueryError::other(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            "Second argument for function toFixedString must be an unsigned integer".to_string(),
        )))
    })?;
    let n = n.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
    let width = match n.iter().next().flatten() {
        Some(w) if n.null_count() == 0 && n.values().iter().all(|v| *v == w) => w,
        _ => {
            return Err(DataFusionError::External(Box::new(QueryError::other(
                ErrorCode::ILLEGAL_COLUMN,
                "Second argument for function toFixedString must be constant".to_string(),
            ))))
        }
    };
    let width = usize::try_from(width)
        .ok()
        .filter(|w| *w <= 0xFF_FFFF)
        .ok_or_else(|| bad_arguments(format!("FixedString size {width} is too large")))?;
    let s = cast(&args[0], &DataType::Utf8)?;
    let mut out = StringBuilder::new();
    for v in s.as_string::<i32>() {
        match v {
            None => out.append_null(),
            Some(v) if v.len() > width => {
                return Err(DataFusionError::External(Box::new(QueryError::other(
                    ErrorCode::TOO_LARGE_STRING_SIZE,
                    format!("String too long for type FixedString({width})"),
                ))))
            }
            Some(v) => {
                let mut padded = String::with_capacity(width);
                padded.push_str(v);
                padded.extend(std::iter::repeat_n('\0', width - v.len()));
                out.append_value(padded);
            }
        }
    }
    Ok(Arc::new(out.finish()))
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

/// `visibleWidth(x)`: the characters of `x`'s text form as the TSV output
/// prints it (`\N` for NULL is 4 wide in ClickHouse's pretty formats, 2 here
/// as the text holds it).
pub(super) fn visible_width(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    Ok(Arc::new(
        (0..a.len())
            .map(|i| {
                let text = if qh_types::text::null_at(a.as_ref(), i) {
                    "NULL".to_string()
                } else {
                    qh_types::text::value_text(a.as_ref(), i)
                };
                text.chars().count() as u64
            })
            .collect::<datafusion::arrow::array::UInt64Array>(),
    ))
}

/// `hex(x)`: upper-case hex of a string's bytes, of an integer's value
/// without leading zero bytes (a negative one as its unsigned bits), of a
/// float's little-endian bytes; a Date is its day number.
pub(super) fn hex(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    use datafusion::arrow::datatypes::*;
    use std::fmt::Write;
    let a = &args[0];
    let bytes_hex = |b: &[u8]| {
        let mut s = String::with_capacity(b.len() * 2);
        for x in b {
            let _ = write!(s, "{x:02X}");
        }
        s
    };
    let int_hex = |v: u64| {
        let s = format!("{v:X}");
        if s.len() % 2 == 1 {
            format!("0{s}")
        } else {
            s
        }
    };
    macro_rules! ints {
        ($t:ty, $u:ty) => {{
            let p = a.as_primitive::<$t>();
            (0..p.len())
                .map(|i| p.is_valid(i).then(|| int_hex(p.value(i) as $u as u64)))
                .collect::<datafusion::arrow::array::StringArray>()
        }};
    }
    let out: datafusion::arrow::array::StringArray = match a.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            let s = cast(a, &DataType::Utf8)?;
            s.as_string::<i32>()
                .iter()
                .map(|v| v.map(|v| bytes_hex(v.as_bytes())))
                .collect()
        }
        DataType::Binary => a
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map(bytes_hex))
            .collect(),
        DataType::UInt8 => ints!(UInt8Type, u8),
        DataType::UInt16 => ints!(UInt16Type, u16),
        DataType::UInt32 => ints!(UInt32Type, u32),
        DataType::UInt64 => ints!(UInt64Type, u64),
        DataType::Int8 => ints!(Int8Type, u8),
        DataType::Int16 => ints!(Int16Type, u16),
        DataType::Int32 => ints!(Int32Type, u32),
        DataType::Int64 => ints!(Int64Type, u64),
        DataType::Date32 => ints!(Date32Type, u16),
        DataType::Float32 => {
            let p = a.as_primitive::<Float32Type>();
            (0..p.len())
                .map(|i| p.is_valid(i).then(|| bytes_hex(&p.value(i).to_le_bytes())))
                .collect()
        }
        DataType::Float64 => {
            let p = a.as_primitive::<Float64Type>();
            (0..p.len())
                .map(|i| p.is_valid(i).then(|| bytes_hex(&p.value(i).to_le_bytes())))
                .collect()
        }
        other => {
            return Err(DataFusionError::External(Box::new(QueryError::other(
                ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                format!("Illegal type {other} of argument of function hex"),
            ))))
        }
    };
    Ok(Arc::new(out))
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
