//! ClickHouse's calendar functions beyond the basic parts of a date:
//! quarters, the `toRelative…Num` counters and `toInterval…` (which also
//! carry `INTERVAL expr UNIT` with a non-constant `expr`), and DateTime64's
//! `toStartOfSecond` / `toUnixTimestamp64Milli|Micro|Nano`, and `addDays` /
//! `subtractSeconds` and the other whole-second shifts (`addMonths` and the
//! other calendar units are `x ± INTERVAL` in `rewrite/functions.rs`). UTC,
//! as the rest.

use std::sync::Arc;

use chrono::Datelike;
use datafusion::arrow::array::{Array, TimestampSecondArray, UInt16Array, UInt32Array, UInt8Array};
use datafusion::arrow::array::{ArrayRef, AsArray, Date32Array, IntervalMonthDayNanoArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Int64Type, IntervalMonthDayNano, IntervalUnit, TimeUnit,
};
use datafusion::common::Result;
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::{
    dt, month_start_days, one, ret_date, ret_datetime, ret_u16, ret_u32, ret_u8, to_seconds, udf,
    DAY,
};

/// The units of `toInterval…` and `INTERVAL n UNIT`, lower-case.
pub(crate) const INTERVAL_UNITS: [&str; 8] = [
    "year", "quarter", "month", "week", "day", "hour", "minute", "second",
];

fn quarter_of(month: u32) -> u32 {
    (month - 1) / 3 + 1
}

/// Maps each value's UTC date-time, as seconds since the epoch, to a u32.
fn map_secs_u32(a: &ArrayRef, f: impl Fn(i64) -> u32) -> Result<ArrayRef> {
    let s = to_seconds(a)?;
    Ok(Arc::new(
        s.iter().map(|v| v.map(&f)).collect::<UInt32Array>(),
    ))
}

fn relative_week(secs: i64) -> u32 {
    let days = secs.div_euclid(DAY);
    let dow = (days + 3).rem_euclid(7) + 1; // Monday = 1; 1970-01-01 was a Thursday
    ((days + 8 - dow) / 7) as u32
}

fn interval(a: &[ArrayRef], unit: &str) -> Result<ArrayRef> {
    let n = cast(&a[0], &DataType::Int64)?;
    let n = n.as_primitive::<Int64Type>();
    let of = |v: i64| -> IntervalMonthDayNano {
        let (months, days, nanos) = match unit {
            "year" => (v.saturating_mul(12), 0, 0),
            "quarter" => (v.saturating_mul(3), 0, 0),
            "month" => (v, 0, 0),
            "week" => (0, v.saturating_mul(7), 0),
            "day" => (0, v, 0),
            "hour" => (0, 0, v.saturating_mul(3_600_000_000_000)),
            "minute" => (0, 0, v.saturating_mul(60_000_000_000)),
            _ => (0, 0, v.saturating_mul(1_000_000_000)),
        };
        IntervalMonthDayNano::new(
            months.clamp(i32::MIN.into(), i32::MAX.into()) as i32,
            days.clamp(i32::MIN.into(), i32::MAX.into()) as i32,
            nanos,
        )
    };
    Ok(Arc::new(
        n.iter()
            .map(|v| v.map(of))
            .collect::<IntervalMonthDayNanoArray>(),
    ))
}

/// The names of the functions that make a DateTime precise to at least a
/// millisecond, microsecond or nanosecond: ClickHouse's `DateTime + INTERVAL
/// 1234 MILLISECOND` is a `DateTime64(3)` (a `DateTime64(6)` keeps its 6).
pub(crate) const AT_LEAST_PRECISION: [(&str, &str); 3] = [
    ("millisecond", "__qh_at_least_ms"),
    ("microsecond", "__qh_at_least_us"),
    ("nanosecond", "__qh_at_least_ns"),
];

fn at_least(t: &DataType, unit: TimeUnit) -> Result<DataType> {
    let rank = |u: &TimeUnit| match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    };
    match t {
        DataType::Timestamp(have, tz) if rank(have) >= rank(&unit) => {
            Ok(DataType::Timestamp(*have, tz.clone()))
        }
        DataType::Timestamp(_, tz) => Ok(DataType::Timestamp(unit, tz.clone())),
        other => Err(super::math::error(
            qh_types::ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            format!(
                "Illegal type {} of an argument of a sub-second INTERVAL: it needs a DateTime or DateTime64",
                crate::type_names::type_name(other)
            ),
        )),
    }
}

/// A value the finer unit cannot hold (past 2262 in nanoseconds) is 407, as
/// ClickHouse's Decimal-based DateTime64 overflows, never a NULL.
fn widen(a: &[ArrayRef], unit: TimeUnit) -> Result<ArrayRef> {
    let to = at_least(a[0].data_type(), unit)?;
    let strict = datafusion::arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    datafusion::arrow::compute::cast_with_options(&a[0], &to, &strict).map_err(|_| {
        super::math::error(
            qh_types::ErrorCode::DECIMAL_OVERFLOW,
            format!(
                "Decimal math overflow: a {} value does not fit in {}",
                crate::type_names::type_name(a[0].data_type()),
                crate::type_names::type_name(&to)
            ),
        )
    })
}

fn variadic() -> Signature {
    // No arguments too, so that they reach `one_dt64` for ClickHouse's code 42.
    super::any_args(Volatility::Immutable)
}

/// `addDays(d, n)` and friends: shift a Date or DateTime by whole units.
fn add_interval(args: &[ArrayRef], secs_per_unit: i64, sign: i64) -> Result<ArrayRef> {
    let a = &args[0];
    let n = cast(&args[1], &DataType::Int64)?;
    let n = n.as_primitive::<Int64Type>();
    if a.data_type() == &DataType::Date32 && secs_per_unit % DAY == 0 {
        let d = a.as_primitive::<datafusion::arrow::datatypes::Date32Type>();
        let days = secs_per_unit / DAY;
        return Ok(Arc::new(
            (0..d.len())
                .map(|i| {
                    (d.is_valid(i) && n.is_valid(i))
                        .then(|| d.value(i) + (sign * days * n.value(i)) as i32)
                })
                .collect::<Date32Array>(),
        ));
    }
    let s = to_seconds(a)?;
    Ok(Arc::new(
        (0..s.len())
            .map(|i| {
                (s.is_valid(i) && n.is_valid(i))
                    .then(|| s.value(i) + sign * secs_per_unit * n.value(i))
            })
            .collect::<TimestampSecondArray>(),
    ))
}

fn ret_first(t: &[DataType]) -> Result<DataType> {
    Ok(match t.first() {
        Some(DataType::Date32) => DataType::Date32,
        _ => DataType::Timestamp(TimeUnit::Second, None),
    })
}

fn ret_interval(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Interval(IntervalUnit::MonthDayNano))
}

/// The one argument of `toStartOfSecond` / `toUnixTimestamp64…`: a
/// DateTime64 (a DateTime, whose Arrow type a `DateTime64(0)` shares, is let
/// through; its answer is the same number ClickHouse gives the DateTime64).
fn one_dt64(name: &str, t: &[DataType], max_args: usize) -> Result<DataType> {
    if t.is_empty() || t.len() > max_args {
        return Err(super::math::error(
            qh_types::ErrorCode::NUMBER_OF_ARGUMENTS_DOESNT_MATCH,
            format!(
                "Number of arguments for function {name} doesn't match: passed {}, should be {}",
                t.len(),
                if max_args == 2 { "1 or 2" } else { "1" }
            ),
        ));
    }
    if t.len() == 2
        && !matches!(
            t[1],
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        )
    {
        return Err(super::math::error(
            qh_types::ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            format!("The 2nd argument of function {name} must be a time zone name"),
        ));
    }
    match &t[0] {
        DataType::Timestamp(..) => Ok(t[0].clone()),
        other => Err(super::math::error(
            qh_types::ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            format!(
                "Illegal type {} of the 1st argument of function {name}: it needs a DateTime64",
                crate::type_names::type_name(other)
            ),
        )),
    }
}

fn ticks_per_second(t: &DataType) -> i64 {
    match t {
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1_000_000_000,
        _ => 1,
    }
}

/// `toUnixTimestamp64Milli/Micro/Nano`: the instant in `unit`s since the
/// epoch, truncated toward zero as ClickHouse's (Arrow's cast divides so).
fn unix64(a: &[ArrayRef], unit: TimeUnit) -> Result<ArrayRef> {
    let t = cast(&a[0], &DataType::Timestamp(unit, None))?;
    Ok(cast(&t, &DataType::Int64)?)
}

fn start_of_second(a: &[ArrayRef]) -> Result<ArrayRef> {
    let per = ticks_per_second(a[0].data_type());
    let ticks = cast(&a[0], &DataType::Int64)?;
    let floored = ticks
        .as_primitive::<Int64Type>()
        .iter()
        .map(|v| v.map(|v| v - v.rem_euclid(per)))
        .collect::<datafusion::arrow::array::Int64Array>();
    Ok(cast(&floored, a[0].data_type())?)
}

pub(super) fn udfs() -> Vec<ScalarUDF> {
    vec![
        udf(
            "adddays",
            Signature::any(2, Volatility::Immutable),
            ret_first,
            |a, _| add_interval(a, DAY, 1),
        ),
        udf(
            "addhours",
            Signature::any(2, Volatility::Immutable),
            ret_datetime,
            |a, _| add_interval(a, 3600, 1),
        ),
        udf(
            "addminutes",
            Signature::any(2, Volatility::Immutable),
            ret_datetime,
            |a, _| add_interval(a, 60, 1),
        ),
        udf(
            "addseconds",
            Signature::any(2, Volatility::Immutable),
            ret_datetime,
            |a, _| add_interval(a, 1, 1),
        ),
        udf(
            "addweeks",
            Signature::any(2, Volatility::Immutable),
            ret_first,
            |a, _| add_interval(a, 7 * DAY, 1),
        ),
        udf(
            "subtractdays",
            Signature::any(2, Volatility::Immutable),
            ret_first,
            |a, _| add_interval(a, DAY, -1),
        ),
        udf(
            "subtracthours",
            Signature::any(2, Volatility::Immutable),
            ret_datetime,
            |a, _| add_interval(a, 3600, -1),
        ),
        udf(
            "subtractminutes",
            Signature::any(2, Volatility::Immutable),
            ret_datetime,
            |a, _| add_interval(a, 60, -1),
        ),
        udf(
            "subtractseconds",
            Signature::any(2, Volatility::Immutable),
            ret_datetime,
            |a, _| add_interval(a, 1, -1),
        ),
        udf(
            "tostartofsecond",
            variadic(),
            |t| one_dt64("toStartOfSecond", t, 2),
            |a, _| start_of_second(a),
        ),
        udf(
            "tounixtimestamp64milli",
            variadic(),
            |t| one_dt64("toUnixTimestamp64Milli", t, 1).map(|_| DataType::Int64),
            |a, _| unix64(a, TimeUnit::Millisecond),
        ),
        udf(
            "tounixtimestamp64micro",
            variadic(),
            |t| one_dt64("toUnixTimestamp64Micro", t, 1).map(|_| DataType::Int64),
            |a, _| unix64(a, TimeUnit::Microsecond),
        ),
        udf(
            "tounixtimestamp64nano",
            variadic(),
            |t| one_dt64("toUnixTimestamp64Nano", t, 1).map(|_| DataType::Int64),
            |a, _| unix64(a, TimeUnit::Nanosecond),
        ),
        udf(
            AT_LEAST_PRECISION[0].1,
            one(),
            |t| at_least(&t[0], TimeUnit::Millisecond),
            |a, _| widen(a, TimeUnit::Millisecond),
        ),
        udf(
            AT_LEAST_PRECISION[1].1,
            one(),
            |t| at_least(&t[0], TimeUnit::Microsecond),
            |a, _| widen(a, TimeUnit::Microsecond),
        ),
        udf(
            AT_LEAST_PRECISION[2].1,
            one(),
            |t| at_least(&t[0], TimeUnit::Nanosecond),
            |a, _| widen(a, TimeUnit::Nanosecond),
        ),
        udf("toquarter", one(), ret_u8, |a, _| {
            let s = to_seconds(&a[0])?;
            Ok(Arc::new(
                s.iter()
                    .map(|v| v.map(|v| quarter_of(dt(v).month()) as u8))
                    .collect::<UInt8Array>(),
            ))
        }),
        udf("tostartofquarter", one(), ret_date, |a, _| {
            let s = to_seconds(&a[0])?;
            Ok(Arc::new(
                s.iter()
                    .map(|v| {
                        v.map(|v| {
                            let d = dt(v);
                            let first_month = (quarter_of(d.month()) - 1) * 3 + 1;
                            let start = d
                                .date_naive()
                                .with_day(1)
                                .and_then(|x| x.with_month(first_month));
                            start.map_or(month_start_days(d), |x| {
                                x.and_hms_opt(0, 0, 0)
                                    .map_or(0, |x| x.and_utc().timestamp().div_euclid(DAY) as i32)
                            })
                        })
                    })
                    .collect::<Date32Array>(),
            ))
        }),
        udf("torelativeyearnum", one(), ret_u16, |a, _| {
            let s = to_seconds(&a[0])?;
            Ok(Arc::new(
                s.iter()
                    .map(|v| v.map(|v| dt(v).year() as u16))
                    .collect::<UInt16Array>(),
            ))
        }),
        udf("torelativequarternum", one(), ret_u32, |a, _| {
            map_secs_u32(&a[0], |v| {
                let d = dt(v);
                d.year() as u32 * 4 + quarter_of(d.month()) - 1
            })
        }),
        udf("torelativemonthnum", one(), ret_u32, |a, _| {
            map_secs_u32(&a[0], |v| {
                let d = dt(v);
                d.year() as u32 * 12 + d.month()
            })
        }),
        udf("torelativeweeknum", one(), ret_u32, |a, _| {
            map_secs_u32(&a[0], relative_week)
        }),
        udf("torelativedaynum", one(), ret_u32, |a, _| {
            map_secs_u32(&a[0], |v| v.div_euclid(DAY) as u32)
        }),
        udf("torelativehournum", one(), ret_u32, |a, _| {
            map_secs_u32(&a[0], |v| v.div_euclid(3600) as u32)
        }),
        udf("torelativeminutenum", one(), ret_u32, |a, _| {
            map_secs_u32(&a[0], |v| v.div_euclid(60) as u32)
        }),
        udf("torelativesecondnum", one(), ret_u32, |a, _| {
            map_secs_u32(&a[0], |v| v as u32)
        }),
        udf("tointervalyear", one(), ret_interval, |a, _| {
            interval(a, "year")
        }),
        udf("tointervalquarter", one(), ret_interval, |a, _| {
            interval(a, "quarter")
        }),
        udf("tointervalmonth", one(), ret_interval, |a, _| {
            interval(a, "month")
        }),
        udf("tointervalweek", one(), ret_interval, |a, _| {
            interval(a, "week")
        }),
        udf("tointervalday", one(), ret_interval, |a, _| {
            interval(a, "day")
        }),
        udf("tointervalhour", one(), ret_interval, |a, _| {
            interval(a, "hour")
        }),
        udf("tointervalminute", one(), ret_interval, |a, _| {
            interval(a, "minute")
        }),
        udf("tointervalsecond", one(), ret_interval, |a, _| {
            interval(a, "second")
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from ClickHouse 26.9 (chDB): toRelativeWeekNum of 1970-01-01
    /// (a Thursday) is 0, of the Monday after 1; toStartOfQuarter and
    /// toRelativeQuarterNum of 2017-08-15.
    #[test]
    fn weeks_and_quarters_count_as_clickhouse() {
        assert_eq!(relative_week(0), 0);
        assert_eq!(relative_week(4 * DAY), 1);
        assert_eq!(relative_week(3 * DAY), 0);
        assert_eq!(quarter_of(8), 3);
        let secs: ArrayRef = Arc::new(datafusion::arrow::array::TimestampSecondArray::from(vec![
            1_502_755_200, // 2017-08-15 00:00:00
        ]));
        let udfs = udfs();
        let start = udfs
            .iter()
            .find(|u| u.name() == "tostartofquarter")
            .map(|u| u.name());
        assert_eq!(start, Some("tostartofquarter"));
        let q = map_secs_u32(&secs, |v| {
            let d = dt(v);
            d.year() as u32 * 4 + quarter_of(d.month()) - 1
        })
        .unwrap();
        assert_eq!(
            q.as_primitive::<datafusion::arrow::datatypes::UInt32Type>()
                .value(0),
            2017 * 4 + 2
        );
    }
}
