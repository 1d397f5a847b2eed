//! ClickHouse's strings are bytes: `substring`, `left`, `right`,
//! `position`, `leftPad` / `rightPad` count bytes, `reverse` reverses bytes
//! and `upper` / `lower` change ASCII letters only; their `…UTF8` forms count
//! characters and change every letter. DataFusion's
//! count characters, which answers differently for any non-ASCII text.
//! Our strings are Arrow UTF-8, so a byte slice that would cut a character
//! in two cannot be held: it is an error naming the `…UTF8` form, never a
//! different string.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, StringArray, UInt32Array, UInt64Array,
};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};
use qh_types::ErrorCode;

use super::{math::error, ret_string, udf};

/// Byte offsets of each character boundary of `s` (`s.len()` last), or
/// every byte offset when counting bytes.
fn boundaries(s: &str, utf8: bool) -> Vec<usize> {
    if utf8 {
        s.char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(s.len()))
            .collect()
    } else {
        (0..=s.len()).collect()
    }
}

/// ClickHouse's `substring(s, offset[, length])` in units (bytes or
/// characters) of a string `units` long: the `[start, end)` range.
fn substring_range(units: i64, offset: i64, length: Option<i64>) -> (i64, i64) {
    if offset == 0 {
        return (0, 0);
    }
    let start = if offset > 0 {
        offset - 1
    } else {
        units + offset
    };
    let end = match length {
        None => units,
        Some(l) if l >= 0 => start.saturating_add(l),
        Some(l) => units + l,
    };
    let (start, end) = (start.clamp(0, units), end.clamp(0, units));
    (start, end.max(start))
}

fn text(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Utf8)?)
}

fn ints(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Int64)?)
}

/// `substring` (`utf8`: `substringUTF8`), also `left` / `right` through
/// [`slice`].
fn slice(
    name: &str,
    args: &[ArrayRef],
    range: impl Fn(i64, i64, Option<i64>) -> (i64, i64),
    utf8: bool,
) -> Result<ArrayRef> {
    let s = text(&args[0])?;
    let s = s.as_string::<i32>();
    let first = ints(&args[1])?;
    let first = first.as_primitive::<Int64Type>();
    let second = args.get(2).map(ints).transpose()?;
    let second = second.as_ref().map(|a| a.as_primitive::<Int64Type>());
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || first.is_null(i) || second.is_some_and(|l| l.is_null(i)) {
            out.push(None);
            continue;
        }
        let v = s.value(i);
        let b = boundaries(v, utf8);
        let units = b.len() as i64 - 1;
        let (start, end) = range(units, first.value(i), second.map(|l| l.value(i)));
        let (from, to) = (b[start as usize], b[end as usize]);
        match v.get(from..to) {
            Some(part) => out.push(Some(part.to_string())),
            None => {
                return Err(error(
                    ErrorCode::NOT_IMPLEMENTED,
                    format!(
                        "{name} of {v:?} at bytes {from}..{to} would cut a UTF-8 character in two, \
                         which quorumhouse's strings cannot hold: use {name}UTF8 to count characters"
                    ),
                ))
            }
        }
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// `position(haystack, needle[, start])`: the 1-based offset of the first
/// `needle` at or after `start`, 0 when there is none.
fn position(args: &[ArrayRef], utf8: bool) -> Result<ArrayRef> {
    let h = text(&args[0])?;
    let h = h.as_string::<i32>();
    let n = text(&args[1])?;
    let n = n.as_string::<i32>();
    let start = args.get(2).map(ints).transpose()?;
    let start = start.as_ref().map(|a| a.as_primitive::<Int64Type>());
    let mut out = Vec::with_capacity(h.len());
    for i in 0..h.len() {
        if h.is_null(i) || n.is_null(i) || start.is_some_and(|s| s.is_null(i)) {
            out.push(None);
            continue;
        }
        let (hay, needle) = (h.value(i), n.value(i));
        let b = boundaries(hay, utf8);
        let units = b.len() as i64 - 1;
        let from = start.map_or(1, |s| s.value(i)).max(1);
        if from > units + 1 {
            out.push(Some(0));
            continue;
        }
        if needle.is_empty() {
            out.push(Some(from as u64));
            continue;
        }
        let at = b[(from - 1) as usize];
        // A byte offset may fall inside a character: search the bytes then.
        let found = match hay.get(at..) {
            Some(rest) => rest.find(needle),
            None => hay.as_bytes()[at..]
                .windows(needle.len())
                .position(|w| w == needle.as_bytes()),
        }
        .map(|p| p + at);
        out.push(Some(found.map_or(0, |byte| {
            // The unit the match starts at, 1-based.
            b.partition_point(|&x| x < byte) as u64 + 1
        })));
    }
    Ok(Arc::new(UInt64Array::from(out)))
}

fn ascii_case(args: &[ArrayRef], upper: bool) -> Result<ArrayRef> {
    let s = text(&args[0])?;
    Ok(Arc::new(
        s.as_string::<i32>()
            .iter()
            .map(|v| {
                v.map(|v| {
                    if upper {
                        v.to_ascii_uppercase()
                    } else {
                        v.to_ascii_lowercase()
                    }
                })
            })
            .collect::<StringArray>(),
    ))
}

/// The error for a byte operation whose result would not be UTF-8.
fn cuts_a_character(name: &str, v: &str) -> datafusion::common::DataFusionError {
    error(
        ErrorCode::NOT_IMPLEMENTED,
        format!(
            "{name} of {v:?} would cut or reorder the bytes of a UTF-8 character, \
             which quorumhouse's strings cannot hold: use {name}UTF8 to count characters"
        ),
    )
}

/// `reverse`: a string's bytes (an error when that is not UTF-8), an
/// array's elements.
fn reverse(args: &[ArrayRef]) -> Result<ArrayRef> {
    let a = &args[0];
    if let DataType::List(field) = a.data_type() {
        let l = a.as_list::<i32>();
        let offsets = l.offsets();
        let mut indices = Vec::with_capacity(l.values().len());
        for w in offsets.windows(2) {
            indices.extend((w[0] as u32..w[1] as u32).rev());
        }
        let values = take(l.values().as_ref(), &UInt32Array::from(indices), None)?;
        let first = offsets[0];
        let offsets = datafusion::arrow::buffer::OffsetBuffer::new(
            offsets.iter().map(|o| o - first).collect::<Vec<_>>().into(),
        );
        return Ok(Arc::new(ListArray::try_new(
            Arc::clone(field),
            offsets,
            values,
            l.nulls().cloned(),
        )?));
    }
    let s = text(a)?;
    let mut out = Vec::with_capacity(s.len());
    for v in s.as_string::<i32>().iter() {
        out.push(match v {
            None => None,
            Some(v) if v.is_ascii() => Some(v.chars().rev().collect::<String>()),
            Some(v) => return Err(cuts_a_character("reverse", v)),
        });
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// `leftPad` / `rightPad(s, length[, pad])` in bytes: `s` cut to `length`,
/// or filled up to it with `pad` repeated (a space when `pad` is empty).
fn pad(args: &[ArrayRef], left: bool) -> Result<ArrayRef> {
    let name = if left { "leftPad" } else { "rightPad" };
    let s = text(&args[0])?;
    let s = s.as_string::<i32>();
    let n = ints(&args[1])?;
    let n = n.as_primitive::<Int64Type>();
    let p = args.get(2).map(text).transpose()?;
    let p = p.as_ref().map(|a| a.as_string::<i32>());
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || n.is_null(i) || p.is_some_and(|p| p.is_null(i)) {
            out.push(None);
            continue;
        }
        let (v, len) = (s.value(i), n.value(i));
        if len < 0 {
            return Err(error(
                ErrorCode::INDEX_OF_POSITIONAL_ARGUMENT_IS_OUT_OF_RANGE,
                format!("New padded length ({len}) is negative"),
            ));
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if v.len() >= len {
            out.push(Some(
                v.get(..len)
                    .ok_or_else(|| cuts_a_character(name, v))?
                    .to_string(),
            ));
            continue;
        }
        let fill = match p.map(|p| p.value(i)) {
            Some(f) if !f.is_empty() => f,
            _ => " ",
        };
        let need = len - v.len();
        let filler: String = fill.repeat(need.div_ceil(fill.len()));
        let filler = filler
            .get(..need)
            .ok_or_else(|| cuts_a_character(name, v))?;
        out.push(Some(if left {
            format!("{filler}{v}")
        } else {
            format!("{v}{filler}")
        }));
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn left_range(units: i64, n: i64, _: Option<i64>) -> (i64, i64) {
    let end = if n >= 0 {
        n.min(units)
    } else {
        (units + n).max(0)
    };
    (0, end)
}

fn right_range(units: i64, n: i64, _: Option<i64>) -> (i64, i64) {
    let start = if n >= 0 {
        (units - n).max(0)
    } else {
        (-n).min(units)
    };
    (start, units)
}

fn ret_reverse(t: &[DataType]) -> Result<DataType> {
    Ok(match &t[0] {
        DataType::List(f) => DataType::List(Arc::clone(f)),
        _ => DataType::Utf8,
    })
}

fn ret_u64(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::UInt64)
}

pub(super) fn udfs() -> Vec<ScalarUDF> {
    let two_or_three = || {
        Signature::one_of(
            vec![
                datafusion::logical_expr::TypeSignature::Any(2),
                datafusion::logical_expr::TypeSignature::Any(3),
            ],
            Volatility::Immutable,
        )
    };
    let two = || Signature::any(2, Volatility::Immutable);
    let one = || Signature::any(1, Volatility::Immutable);
    vec![
        udf("__qh_substring", two_or_three(), ret_string, |a, _| {
            slice("substring", a, substring_range, false)
        }),
        udf("substringutf8", two_or_three(), ret_string, |a, _| {
            slice("substring", a, substring_range, true)
        }),
        udf("__qh_left", two(), ret_string, |a, _| {
            slice("left", a, left_range, false)
        }),
        udf("leftutf8", two(), ret_string, |a, _| {
            slice("left", a, left_range, true)
        }),
        udf("__qh_right", two(), ret_string, |a, _| {
            slice("right", a, right_range, false)
        }),
        udf("rightutf8", two(), ret_string, |a, _| {
            slice("right", a, right_range, true)
        }),
        udf("__qh_position", two_or_three(), ret_u64, |a, _| {
            position(a, false)
        }),
        udf("positionutf8", two_or_three(), ret_u64, |a, _| {
            position(a, true)
        }),
        udf("__qh_upper", one(), ret_string, |a, _| ascii_case(a, true)),
        udf("__qh_reverse", one(), ret_reverse, |a, _| reverse(a)),
        udf("__qh_leftpad", two_or_three(), ret_string, |a, _| {
            pad(a, true)
        }),
        udf("__qh_rightpad", two_or_three(), ret_string, |a, _| {
            pad(a, false)
        }),
        udf("__qh_lower", one(), ret_string, |a, _| ascii_case(a, false)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ClickHouse 26.9's answers for 'abc' (chDB).
    #[test]
    fn substring_ranges_follow_clickhouse() {
        let r = |o, l| substring_range(3, o, l);
        assert_eq!(r(-5, None), (0, 3));
        assert_eq!(r(-5, Some(1)), (0, 0));
        assert_eq!(r(-5, Some(5)), (0, 3));
        assert_eq!(r(-5, Some(-1)), (0, 2));
        assert_eq!(r(-3, Some(-4)), (0, 0));
        assert_eq!(r(-1, Some(5)), (2, 3));
        assert_eq!(r(0, Some(2)), (0, 0));
        assert_eq!(r(1, Some(-1)), (0, 2));
        assert_eq!(r(2, Some(-1)), (1, 2));
        assert_eq!(r(3, Some(-4)), (2, 2));
        assert_eq!(r(4, Some(5)), (3, 3));
        assert_eq!(r(7, None), (3, 3));
    }
}
