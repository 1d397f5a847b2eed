//! `formatDateTime(time, format[, time_zone])` (alias `DATE_FORMAT`):
//! ClickHouse's MySQL-style `%` specifiers, with ClickHouse 26's defaults —
//! `%f` is always six digits of microseconds
//! (`formatdatetime_f_prints_scale_number_of_digits = 0`), `%M` the month's
//! name, `%e`, `%k` and `%l` as ClickHouse pads them. The format is parsed
//! once per batch and must be a constant; an instant is shown in the time
//! zone argument (UTC without one), a Date as its own calendar day.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use qh_types::ErrorCode;

use crate::error::QueryError;

const NAME: &str = "formatDateTime";

fn error(code: ErrorCode, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::other(code, message)))
}

/// One piece of a parsed format.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Spec(char),
}

/// Parses `format` into literals and specifiers, with ClickHouse's errors.
fn parse(format: &str) -> Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        let Some(s) = chars.next() else {
            return Err(error(
                ErrorCode::BAD_ARGUMENTS,
                "'%' must not be the last character in the format string, use '%%' instead".into(),
            ));
        };
        match s {
            '%' => lit.push('%'),
            'n' => lit.push('\n'),
            't' => lit.push('\t'),
            'a' | 'b' | 'c' | 'C' | 'd' | 'D' | 'e' | 'f' | 'F' | 'g' | 'G' | 'h' | 'H' | 'i'
            | 'I' | 'j' | 'k' | 'l' | 'm' | 'M' | 'p' | 'Q' | 'r' | 'R' | 's' | 'S' | 'T' | 'u'
            | 'V' | 'w' | 'W' | 'y' | 'Y' | 'z' => {
                if !lit.is_empty() {
                    out.push(Piece::Literal(std::mem::take(&mut lit)));
                }
                out.push(Piece::Spec(s));
            }
            'U' | 'v' | 'x' | 'X' => {
                let what = match s {
                    'U' => "WEEK (Sun-Sat)",
                    'v' => "WEEK (Mon-Sun)",
                    'x' => "YEAR for week (Mon-Sun)",
                    _ => "YEAR for week (Sun-Sat)",
                };
                return Err(error(
                    ErrorCode::NOT_IMPLEMENTED,
                    format!("format is not supported for {what}"),
                ));
            }
            other => {
                return Err(error(
                    ErrorCode::BAD_ARGUMENTS,
                    format!(
                        "Incorrect syntax '{format}', symbol is not supported '{other}' for function {NAME}"
                    ),
                ))
            }
        }
    }
    if !lit.is_empty() {
        out.push(Piece::Literal(lit));
    }
    Ok(out)
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn hour12(h: u32) -> u32 {
    match h % 12 {
        0 => 12,
        x => x,
    }
}

/// Appends one value: `t` the local date-time, `micros` its fraction,
/// `offset` its zone's offset from UTC in seconds (None for a Date).
fn render(out: &mut String, pieces: &[Piece], t: NaiveDateTime, micros: u32, offset: Option<i32>) {
    use std::fmt::Write;
    let wd = t.weekday().num_days_from_monday() as usize;
    let month = t.month() as usize;
    for p in pieces {
        // Writing into a String cannot fail.
        let _ = match p {
            Piece::Literal(s) => {
                out.push_str(s);
                Ok(())
            }
            Piece::Spec(c) => match c {
                'a' => write!(out, "{}", &WEEKDAYS[wd][..3]),
                'b' => write!(out, "{}", &MONTHS[month - 1][..3]),
                'c' | 'm' => write!(out, "{:02}", t.month()),
                'C' => write!(out, "{:02}", t.year().div_euclid(100) % 100),
                'd' => write!(out, "{:02}", t.day()),
                'D' => write!(
                    out,
                    "{:02}/{:02}/{:02}",
                    t.month(),
                    t.day(),
                    t.year().rem_euclid(100)
                ),
                'e' => write!(out, "{}", t.day()),
                'f' => write!(out, "{micros:06}"),
                'F' => write!(out, "{:04}-{:02}-{:02}", t.year(), t.month(), t.day()),
                'g' => write!(out, "{:02}", t.iso_week().year().rem_euclid(100)),
                'G' => write!(out, "{:04}", t.iso_week().year()),
                'h' | 'I' | 'l' => write!(out, "{:02}", hour12(t.hour())),
                'H' | 'k' => write!(out, "{:02}", t.hour()),
                'i' => write!(out, "{:02}", t.minute()),
                'j' => write!(out, "{:03}", t.ordinal()),
                'M' => write!(out, "{}", MONTHS[month - 1]),
                'p' => write!(out, "{}", if t.hour() < 12 { "AM" } else { "PM" }),
                'Q' => write!(out, "{}", (t.month() - 1) / 3 + 1),
                'r' => write!(
                    out,
                    "{:02}:{:02} {}",
                    hour12(t.hour()),
                    t.minute(),
                    if t.hour() < 12 { "AM" } else { "PM" }
                ),
                'R' => write!(out, "{:02}:{:02}", t.hour(), t.minute()),
                's' | 'S' => write!(out, "{:02}", t.second()),
                'T' => write!(out, "{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
                'u' => write!(out, "{}", wd + 1),
                'V' => write!(out, "{:02}", t.iso_week().week()),
                'w' => write!(out, "{}", (wd + 1) % 7),
                'W' => write!(out, "{}", WEEKDAYS[wd]),
                'y' => write!(out, "{:02}", t.year().rem_euclid(100)),
                'Y' => write!(out, "{:04}", t.year()),
                'z' => {
                    let o = offset.unwrap_or(0);
                    let sign = if o < 0 { '-' } else { '+' };
                    let o = o.unsigned_abs();
                    write!(out, "{sign}{:02}{:02}", o / 3600, o % 3600 / 60)
                }
                _ => Ok(()),
            },
        };
    }
}

fn format_values(
    values: &ArrayRef,
    pieces: &[Piece],
    zone: Option<chrono_tz::Tz>,
) -> Result<ArrayRef> {
    let mut b = StringBuilder::with_capacity(values.len(), values.len() * 20);
    let mut s = String::new();
    match values.data_type() {
        DataType::Date32 | DataType::Date64 => {
            if pieces.contains(&Piece::Spec('z')) {
                return Err(error(
                    ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                    format!("Illegal argument of type Date for function {NAME}: '%z' needs a time"),
                ));
            }
            let days = cast(values, &DataType::Date32)?;
            let epoch = NaiveDate::default();
            for d in days.as_primitive::<datafusion::arrow::datatypes::Date32Type>() {
                match d.and_then(|d| epoch.checked_add_signed(chrono::TimeDelta::days(d.into()))) {
                    Some(day) => {
                        s.clear();
                        render(&mut s, pieces, day.and_time(Default::default()), 0, None);
                        b.append_value(&s);
                    }
                    None => b.append_null(),
                }
            }
        }
        DataType::Timestamp(..) => {
            let us = cast(values, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            for v in us.as_primitive::<TimestampMicrosecondType>() {
                let Some(v) = v else {
                    b.append_null();
                    continue;
                };
                let (secs, micros) = (v.div_euclid(1_000_000), v.rem_euclid(1_000_000) as u32);
                let Some(utc) = chrono::DateTime::from_timestamp(secs, 0) else {
                    b.append_null();
                    continue;
                };
                let (local, offset) = match zone {
                    Some(z) => {
                        let at = z.from_utc_datetime(&utc.naive_utc());
                        (at.naive_local(), at.offset().fix().local_minus_utc())
                    }
                    None => (utc.naive_utc(), 0),
                };
                s.clear();
                render(&mut s, pieces, local, micros, Some(offset));
                b.append_value(&s);
            }
        }
        DataType::Null => {
            for _ in 0..values.len() {
                b.append_null();
            }
        }
        other => {
            return Err(error(
                ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                format!("Illegal type {other} of first argument of function {NAME}"),
            ))
        }
    }
    Ok(Arc::new(b.finish()))
}

/// A constant string argument, or ClickHouse's ILLEGAL_COLUMN.
fn constant_string(arg: &ColumnarValue, index: usize) -> Result<Option<String>> {
    match arg {
        ColumnarValue::Scalar(v) => match v {
            ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => {
                Ok(s.clone())
            }
            ScalarValue::Null => Ok(None),
            other => Err(error(
                ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                format!(
                    "Illegal type {} of argument {} of function {NAME}: a String is expected",
                    other.data_type(),
                    index + 1
                ),
            )),
        },
        ColumnarValue::Array(_) => Err(error(
            ErrorCode::ILLEGAL_COLUMN,
            format!("Argument at index {index} for function {NAME} must be constant"),
        )),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FormatDateTime {
    signature: Signature,
    aliases: Vec<String>,
}

impl ScalarUDFImpl for FormatDateTime {
    fn name(&self) -> &str {
        "formatdatetime"
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !(2..=3).contains(&args.len()) {
            return Err(error(
                ErrorCode::NUMBER_OF_ARGUMENTS_DOESNT_MATCH,
                format!(
                    "Number of arguments for function {NAME} doesn't match: passed {}, should be 2 or 3",
                    args.len()
                ),
            ));
        }
        match &args[0] {
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) | DataType::Null => {}
            other => {
                return Err(error(
                    ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                    format!(
                        "Illegal type {} of first argument of function {NAME}. Should be a date or a date with time",
                        crate::type_names::type_name(other)
                    ),
                ))
            }
        }
        for (i, t) in args.iter().enumerate().skip(1) {
            if !matches!(
                t,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
            ) {
                return Err(error(
                    ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                    format!(
                        "Illegal type {} of argument {} of function {NAME}: a String is expected",
                        crate::type_names::type_name(t),
                        i + 1
                    ),
                ));
            }
        }
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(format) = constant_string(&args.args[1], 1)? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let pieces = parse(&format)?;
        let zone = match args.args.get(2) {
            Some(z) => match constant_string(z, 2)? {
                Some(name) => Some(name.parse::<chrono_tz::Tz>().map_err(|_| {
                    error(
                        ErrorCode::BAD_ARGUMENTS,
                        format!("Cannot load time zone {name}"),
                    )
                })?),
                None => return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            },
            None => None,
        };
        match &args.args[0] {
            ColumnarValue::Scalar(v) => {
                let out = format_values(&v.to_array_of_size(1)?, &pieces, zone)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
            }
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(format_values(a, &pieces, zone)?)),
        }
    }
}

pub(crate) fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(FormatDateTime {
        signature: super::any_args(Volatility::Immutable),
        aliases: vec!["date_format".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(format: &str, t: &str, micros: u32) -> String {
        let pieces = parse(format).unwrap();
        let t = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").unwrap();
        let mut s = String::new();
        render(&mut s, &pieces, t, micros, Some(0));
        s
    }

    /// Expected values from ClickHouse 26 (chDB).
    #[test]
    fn every_specifier_as_clickhouse_prints_it() {
        let t = "2018-01-02 22:33:44";
        let cases = [
            ("%a %b %c %C %d %D %e", "Tue Jan 01 20 02 01/02/18 2"),
            ("%f %F %g %G %h %H %i", "000000 2018-01-02 18 2018 10 22 33"),
            ("%I %j %k %l %m %M", "10 002 22 10 01 January"),
            ("%p %Q %r %R %s %S %T", "PM 1 10:33 PM 22:33 44 44 22:33:44"),
            ("%u %V %w %W %y %Y %z %%", "2 01 2 Tuesday 18 2018 +0000 %"),
            ("[%n%t]", "[\n\t]"),
        ];
        for (f, want) in cases {
            assert_eq!(fmt(f, t, 0), want, "{f}");
        }
        assert_eq!(fmt("%f", t, 120_000), "120000");
        // 2010-01-03, a Sunday, is in ISO week 53 of 2009.
        assert_eq!(
            fmt("%G %g %V %u %w %h %p", "2010-01-03 00:00:00", 0),
            "2009 09 53 7 0 12 AM"
        );
        assert_eq!(fmt("%G %V", "2018-12-31 00:00:00", 0), "2019 01");
    }

    #[test]
    fn bad_formats_fail_with_clickhouse_codes() {
        let code = |f: &str| match parse(f) {
            Err(DataFusionError::External(e)) => {
                e.downcast_ref::<QueryError>().map(|q| q.code()).unwrap()
            }
            other => panic!("{f}: {other:?}"),
        };
        assert_eq!(code("%E"), ErrorCode::BAD_ARGUMENTS);
        assert_eq!(code("abc%"), ErrorCode::BAD_ARGUMENTS);
        assert_eq!(code("%U"), ErrorCode::NOT_IMPLEMENTED);
        assert_eq!(code("%x"), ErrorCode::NOT_IMPLEMENTED);
    }
}
