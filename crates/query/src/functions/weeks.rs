//! `toWeek(d[, mode[, tz]])` and `toYearWeek(d[, mode[, tz]])`: the week
//! number in one of ClickHouse's ten week modes (MySQL's `WEEK()` modes
//! 0–7, plus 8 and 9 where the week holding January 1 is week 1).
//!
//! Mode bits, as in ClickHouse's `DateLUTImpl::toYearWeek`: 1 = weeks start
//! on Monday, 2 = the week belongs to a year (1–53, never 0), 4 = week 1 is
//! the first week holding that year's first day of the week (else the first
//! with 4 days of the year; MySQL flips this bit when weeks start on Sunday),
//! 8 = week 1 holds January 1.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array, UInt8Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, UInt8Type};
use datafusion::common::{DataFusionError, Result};
use qh_types::ErrorCode;

use crate::error::QueryError;

const MONDAY_FIRST: u8 = 1;
const YEAR: u8 = 2;
const FIRST_WEEKDAY: u8 = 4;
const NEWYEAR_DAY: u8 = 8;

fn epoch() -> NaiveDate {
    NaiveDate::default()
}

fn day_number(y: i32, m: u32, d: u32) -> i32 {
    NaiveDate::from_ymd_opt(y, m, d).map_or(0, |date| (date - epoch()).num_days() as i32)
}

fn date_of(day: i32) -> NaiveDate {
    epoch() + chrono::Duration::days(i64::from(day))
}

fn days_in_year(y: i32) -> i32 {
    if NaiveDate::from_ymd_opt(y, 2, 29).is_some() {
        366
    } else {
        365
    }
}

/// 0 for the first day of the week (Monday, or Sunday when `sunday_first`).
fn weekday(day: i32, sunday_first: bool) -> i32 {
    (day + if sunday_first { 4 } else { 3 }).rem_euclid(7)
}

/// 1 for Monday … 7 for Sunday (`toDayOfWeek`).
fn day_of_week(day: i32) -> i32 {
    (day + 3).rem_euclid(7) + 1
}

/// MySQL's mode normalisation: Sunday-first modes count week 1 the other way.
fn check_week_mode(mode: u8) -> u8 {
    let mut m = mode & 7;
    if m & MONDAY_FIRST == 0 {
        m ^= FIRST_WEEKDAY;
    }
    m
}

/// The (year, week) day number `day` falls in under `mode`.
pub(super) fn year_week(day: i32, mode: u8) -> (i32, u32) {
    let newyear = mode & NEWYEAR_DAY != 0;
    let mode = check_week_mode(mode);
    let monday_first = mode & MONDAY_FIRST != 0;
    let mut week_year = mode & YEAR != 0;
    let first_weekday = mode & FIRST_WEEKDAY != 0;
    if newyear {
        return newyear_week(day, monday_first);
    }
    let date = date_of(day);
    let mut year = date.year();
    let mut first = day_number(year, 1, 1);
    let mut wd = weekday(first, !monday_first);
    // Week 1 starts late: the first days of January may be the last year's.
    let late_start = |wd: i32| (first_weekday && wd != 0) || (!first_weekday && wd >= 4);
    if date.month() == 1 && (date.day() as i32) <= 7 - wd {
        if !week_year && late_start(wd) {
            return (year, 0);
        }
        week_year = true;
        year -= 1;
        let days = days_in_year(year);
        first -= days;
        wd = (wd + 53 * 7 - days).rem_euclid(7);
    }
    let days = if late_start(wd) {
        day - (first + (7 - wd))
    } else {
        day - (first - wd)
    };
    if week_year && days >= 52 * 7 {
        let next = (wd + days_in_year(year)) % 7;
        if (!first_weekday && next < 4) || (first_weekday && next == 0) {
            return (year + 1, 1);
        }
    }
    (year, (days / 7 + 1) as u32)
}

/// Modes 8 and 9: week 1 is the one holding January 1.
fn newyear_week(day: i32, monday_first: bool) -> (i32, u32) {
    let shifted = day + if monday_first { 0 } else { 1 };
    let year = date_of(day + 7 - day_of_week(shifted)).year();
    let mut first = day_number(year, 1, 1);
    let mut this = day;
    if monday_first {
        first -= day_of_week(first) - 1;
        this -= day_of_week(day) - 1;
    } else {
        if day_of_week(first) != 7 {
            first -= day_of_week(first);
        }
        if day_of_week(day) != 7 {
            this -= day_of_week(day);
        }
    }
    (year, ((this - first) / 7 + 1) as u32)
}

fn error(code: ErrorCode, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::other(code, message)))
}

/// The day numbers of a Date, DateTime or string argument, in `args[2]`'s zone.
fn days(name: &str, args: &[ArrayRef]) -> Result<ArrayRef> {
    let parsed;
    let a = if matches!(
        args[0].data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        // A string is read as a date (its time, if any, ignored).
        parsed = super::to_date(std::slice::from_ref(&args[0]), args[0].len())?;
        &parsed
    } else {
        &args[0]
    };
    let dated = matches!(
        a.data_type(),
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) | DataType::Null
    );
    if !dated {
        return Err(error(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            format!(
                "Illegal type {} of the first argument of function {name}: a Date or DateTime is expected",
                crate::type_names::type_name(a.data_type())
            ),
        ));
    }
    let zone = match args.get(2) {
        Some(tz) => super::time_zone(tz)?,
        None => chrono_tz::UTC,
    };
    let days = if matches!(a.data_type(), DataType::Date32 | DataType::Null) {
        Arc::clone(a)
    } else {
        super::to_date_in(a, zone)?
    };
    Ok(cast(&days, &DataType::Int32)?)
}

/// The mode argument: one constant (0 without one).
fn mode(name: &str, args: &[ArrayRef]) -> Result<u8> {
    let Some(m) = args.get(1) else {
        return Ok(0);
    };
    let bad = || {
        error(
            ErrorCode::ILLEGAL_COLUMN,
            format!("The second argument of function {name} must be a constant week mode"),
        )
    };
    let m = cast(m, &DataType::UInt8).map_err(|_| bad())?;
    let m = m.as_primitive::<UInt8Type>();
    match m.iter().next().flatten() {
        Some(v) if m.null_count() == 0 && m.values().iter().all(|x| *x == v) => Ok(v),
        _ => Err(bad()),
    }
}

fn check_arity(name: &str, args: &[ArrayRef]) -> Result<()> {
    if args.is_empty() || args.len() > 3 {
        return Err(error(
            ErrorCode::NUMBER_OF_ARGUMENTS_DOESNT_MATCH,
            format!(
                "Number of arguments for function {name} doesn't match: passed {}, should be 1, 2 or 3",
                args.len()
            ),
        ));
    }
    Ok(())
}

pub(super) fn to_week(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    check_arity("toWeek", args)?;
    let m = mode("toWeek", args)?;
    let d = days("toWeek", args)?;
    Ok(Arc::new(
        d.as_primitive::<Int32Type>()
            .iter()
            .map(|v| v.map(|v| year_week(v, m).1 as u8))
            .collect::<UInt8Array>(),
    ))
}

pub(super) fn to_year_week(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    check_arity("toYearWeek", args)?;
    let m = mode("toYearWeek", args)? | YEAR;
    let d = days("toYearWeek", args)?;
    Ok(Arc::new(
        d.as_primitive::<Int32Type>()
            .iter()
            .map(|v| {
                v.map(|v| {
                    let (y, w) = year_week(v, m);
                    y as u32 * 100 + w
                })
            })
            .collect::<UInt32Array>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEKS_2000_01_01: [u32; 10] = [0, 0, 52, 52, 0, 0, 52, 52, 1, 1];
    const YEARWEEKS_2000_01_01: [u32; 10] = [
        199952, 199952, 199952, 199952, 199952, 199952, 199952, 199952, 200001, 200001,
    ];
    const WEEKS_2000_12_31: [u32; 10] = [53, 52, 53, 52, 53, 52, 1, 52, 1, 53];
    const YEARWEEKS_2000_12_31: [u32; 10] = [
        200053, 200052, 200053, 200052, 200101, 200052, 200101, 200052, 200101, 200053,
    ];
    const WEEKS_2016_12_31: [u32; 10] = [52, 52, 52, 52, 52, 52, 52, 52, 53, 1];
    const YEARWEEKS_2016_12_31: [u32; 10] = [
        201652, 201652, 201652, 201652, 201652, 201652, 201652, 201652, 201653, 201701,
    ];
    const WEEKS_2021_01_03: [u32; 10] = [1, 0, 1, 53, 1, 0, 1, 52, 2, 1];
    const YEARWEEKS_2021_01_03: [u32; 10] = [
        202101, 202053, 202101, 202053, 202101, 202052, 202101, 202052, 202102, 202101,
    ];

    fn day(s: &str) -> i32 {
        (s.parse::<NaiveDate>().unwrap() - epoch()).num_days() as i32
    }

    #[test]
    fn weeks_in_every_mode_as_clickhouse() {
        // From chDB (ClickHouse 26.9): toWeek(d, 0..=9) and toYearWeek(d, 0..=9).
        let cases: &[(&str, [u32; 10], [u32; 10])] = &[
            ("2000-01-01", WEEKS_2000_01_01, YEARWEEKS_2000_01_01),
            ("2000-12-31", WEEKS_2000_12_31, YEARWEEKS_2000_12_31),
            ("2016-12-31", WEEKS_2016_12_31, YEARWEEKS_2016_12_31),
            ("2021-01-03", WEEKS_2021_01_03, YEARWEEKS_2021_01_03),
        ];
        for (d, weeks, year_weeks) in cases {
            for m in 0..10u8 {
                assert_eq!(
                    year_week(day(d), m).1,
                    weeks[m as usize],
                    "toWeek({d}, {m})"
                );
                let (y, w) = year_week(day(d), m | YEAR);
                assert_eq!(
                    y as u32 * 100 + w,
                    year_weeks[m as usize],
                    "toYearWeek({d}, {m})"
                );
            }
        }
    }
}
