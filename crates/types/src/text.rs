//! ClickHouse's text form of single values (what `toString` and the TSV
//! format print): `2024-01-31 12:00:00` for DateTime, `true` for Bool,
//! `[1,2]` for arrays, `inf`/`nan` for special floats.

use arrow::array::{Array, AsArray};
use arrow::datatypes::*;
use chrono::DateTime;

/// Every row of `b` as a line of tab-separated [`value_text`] cells (the
/// plain TSV tests and tools compare against; no escaping).
pub fn append_rows_tsv(out: &mut String, b: &arrow::array::RecordBatch) {
    for row in 0..b.num_rows() {
        for (i, col) in b.columns().iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            out.push_str(&value_text(col.as_ref(), row));
        }
        out.push('\n');
    }
}

/// The text of row `i` of `a` (not NULL-aware: check `is_null` first).
pub fn value_text(a: &dyn Array, i: usize) -> String {
    let mut s = String::new();
    write_value(&mut s, a, i, false);
    s
}

/// Whether row `i` is NULL — also in a `NullArray` (`SELECT NULL`), which
/// has no validity buffer, so `is_null` says false there.
pub fn null_at(a: &dyn Array, i: usize) -> bool {
    a.is_null(i) || *a.data_type() == arrow::datatypes::DataType::Null
}

/// Writes the value; `nested` quotes strings and dates as inside an array.
pub fn write_value(out: &mut String, a: &dyn Array, i: usize, nested: bool) {
    use std::fmt::Write;
    if null_at(a, i) {
        out.push_str(if nested { "NULL" } else { "\\N" });
        return;
    }
    macro_rules! prim {
        ($t:ty) => {{
            let _ = write!(out, "{}", a.as_primitive::<$t>().value(i));
        }};
    }
    match a.data_type() {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float32 => {
            write_float(out, a.as_primitive::<Float32Type>().value(i) as f64, true)
        }
        DataType::Float64 => write_float(out, a.as_primitive::<Float64Type>().value(i), false),
        DataType::Boolean => out.push_str(if a.as_boolean().value(i) {
            "true"
        } else {
            "false"
        }),
        DataType::Utf8 => quoted(out, a.as_string::<i32>().value(i), nested),
        DataType::LargeUtf8 => quoted(out, a.as_string::<i64>().value(i), nested),
        DataType::Utf8View => quoted(out, a.as_string_view().value(i), nested),
        DataType::Date32 => {
            let d = a.as_primitive::<Date32Type>().value(i) as i64;
            let s = date_text(d);
            quoted(out, &s, nested);
        }
        DataType::Date64 => {
            let ms = a.as_primitive::<Date64Type>().value(i);
            quoted(out, &date_text(ms.div_euclid(86_400_000)), nested);
        }
        DataType::Timestamp(unit, _) => {
            let (secs, frac, digits) = match unit {
                TimeUnit::Second => (a.as_primitive::<TimestampSecondType>().value(i), 0, 0),
                TimeUnit::Millisecond => {
                    let v = a.as_primitive::<TimestampMillisecondType>().value(i);
                    (v.div_euclid(1000), v.rem_euclid(1000), 3)
                }
                TimeUnit::Microsecond => {
                    let v = a.as_primitive::<TimestampMicrosecondType>().value(i);
                    (v.div_euclid(1_000_000), v.rem_euclid(1_000_000), 6)
                }
                TimeUnit::Nanosecond => {
                    let v = a.as_primitive::<TimestampNanosecondType>().value(i);
                    (v.div_euclid(1_000_000_000), v.rem_euclid(1_000_000_000), 9)
                }
            };
            let mut s = datetime_text(secs);
            if digits > 0 {
                let _ = write!(s, ".{frac:0digits$}");
            }
            quoted(out, &s, nested);
        }
        DataType::Decimal128(_, scale) => {
            let v = a.as_primitive::<Decimal128Type>().value(i);
            out.push_str(&decimal_text(v, *scale));
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let values = match a.data_type() {
                DataType::List(_) => a.as_list::<i32>().value(i),
                _ => a.as_list::<i64>().value(i),
            };
            out.push('[');
            for j in 0..values.len() {
                if j > 0 {
                    out.push(',');
                }
                write_value(out, values.as_ref(), j, true);
            }
            out.push(']');
        }
        DataType::Struct(_) => {
            let s = a.as_struct();
            out.push('(');
            for (j, c) in s.columns().iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                write_value(out, c.as_ref(), i, true);
            }
            out.push(')');
        }
        DataType::Map(..) => {
            let m = a.as_map();
            let entries = m.value(i);
            out.push('{');
            for j in 0..entries.len() {
                if j > 0 {
                    out.push(',');
                }
                write_value(out, entries.column(0).as_ref(), j, true);
                out.push(':');
                write_value(out, entries.column(1).as_ref(), j, true);
            }
            out.push('}');
        }
        DataType::Null => out.push_str(if nested { "NULL" } else { "\\N" }),
        DataType::Dictionary(_, _) => {
            let d = a.as_any_dictionary();
            let k = d.normalized_keys()[i];
            write_value(out, d.values().as_ref(), k, nested);
        }
        _ => {
            let f = arrow::util::display::ArrayFormatter::try_new(a, &Default::default());
            match f {
                Ok(f) => {
                    let _ = write!(out, "{}", f.value(i));
                }
                Err(_) => out.push('?'),
            }
        }
    }
}

fn quoted(out: &mut String, s: &str, nested: bool) {
    if nested {
        out.push('\'');
        escape(out, s);
        out.push('\'');
    } else {
        out.push_str(s);
    }
}

/// ClickHouse's escaping of a string, in TabSeparated and inside quotes
/// alike: the control characters, the backslash and the single quote.
pub fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
}

/// ClickHouse prints floats in their shortest round-trip form, with `inf`,
/// `-inf` and `nan`, and exponents for very small or large magnitudes.
pub fn write_float(out: &mut String, v: f64, is_f32: bool) {
    use std::fmt::Write;
    if v.is_nan() {
        out.push_str("nan");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
    } else if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
    } else {
        let abs = v.abs();
        // Exponents below 1e-6 and from 1e21 on, written as ClickHouse's
        // shortest form does (and Rust's): 1e-7, 1.5e300, no `+`, no padding.
        if !(1e-6..1e21).contains(&abs) {
            if is_f32 {
                let _ = write!(out, "{:e}", v as f32);
            } else {
                let _ = write!(out, "{v:e}");
            }
        } else if is_f32 {
            let _ = write!(out, "{}", v as f32);
        } else {
            let _ = write!(out, "{v}");
        }
    }
}

pub fn date_text(days: i64) -> String {
    match DateTime::from_timestamp(days * 86_400, 0) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => "1970-01-01".into(),
    }
}

pub fn datetime_text(secs: i64) -> String {
    match DateTime::from_timestamp(secs, 0) {
        Some(d) => d.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => "1970-01-01 00:00:00".into(),
    }
}

/// Fixed-point text without trailing zeros (ClickHouse's default since 22.x:
/// `output_format_decimal_trailing_zeros = 0`).
pub fn decimal_text(v: i128, scale: i8) -> String {
    if scale <= 0 {
        return v.to_string();
    }
    let scale = scale as u32;
    let neg = v < 0;
    let abs = v.unsigned_abs();
    let div = 10u128.pow(scale);
    let int = abs / div;
    let frac = abs % div;
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push_str(&int.to_string());
    if frac != 0 {
        let f = format!("{:0width$}", frac, width = scale as usize);
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::*;
    use std::sync::Arc;

    #[test]
    fn renders_like_clickhouse() {
        let ts = TimestampSecondArray::from(vec![1_700_000_000]);
        assert_eq!(value_text(&ts, 0), "2023-11-14 22:13:20");
        let d = Date32Array::from(vec![19_000]);
        assert_eq!(value_text(&d, 0), "2022-01-08");
        // chDB 4.4's answers.
        let f = Float64Array::from(vec![
            0.1,
            1.0,
            f64::INFINITY,
            1e-9,
            1e22,
            1e-7,
            1.234e-6,
            9.99e20,
            -8.98846567431158e307,
            123456789012345678901234.0,
        ]);
        let got: Vec<String> = (0..f.len()).map(|i| value_text(&f, i)).collect();
        assert_eq!(
            got,
            vec![
                "0.1",
                "1",
                "inf",
                "1e-9",
                "1e22",
                "1e-7",
                "0.000001234",
                "999000000000000000000",
                "-8.98846567431158e307",
                "1.2345678901234569e23"
            ]
        );
        let b = BooleanArray::from(vec![true]);
        assert_eq!(value_text(&b, 0), "true");
        let dec = Decimal128Array::from(vec![12_340, -5])
            .with_precision_and_scale(10, 3)
            .unwrap();
        assert_eq!(value_text(&dec, 0), "12.34");
        assert_eq!(value_text(&dec, 1), "-0.005");
        let l = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), None])]);
        assert_eq!(value_text(&l, 0), "[1,NULL]");
        let ls: ArrayRef = Arc::new(StringArray::from(vec!["a'b"]));
        let field = Arc::new(arrow::datatypes::Field::new("item", DataType::Utf8, true));
        let l = ListArray::new(
            field,
            arrow::buffer::OffsetBuffer::from_lengths([1]),
            ls,
            None,
        );
        assert_eq!(value_text(&l, 0), "['a\\'b']");
    }
}
