//! ClickHouse scalar functions as DataFusion UDFs.
//!
//! Names are registered lower-case: the rewrite pass lower-cases every
//! function name, so `toYYYYMM` and `toyyyymm` both reach the UDF.
//! Time functions work in UTC (the server time zone is UTC).

mod arrays;
mod bytes;
mod convert;
pub(crate) use convert::convert;
mod dates;
pub(crate) mod decimals;
mod format_datetime;
pub(crate) use dates::{AT_LEAST_PRECISION, INTERVAL_UNITS};
mod hash;
mod least_greatest;
mod maps;
mod math;
mod quantiles;
mod random;
pub(crate) use quantiles::QUANTILE_SORTED;
pub(crate) use row_key::{ROW_KEY, TUPLE_KEY};
pub(crate) use top_k::TOP_K;
mod reservoir;
mod row_key;
pub(crate) use reservoir::QUANTILE;
pub(crate) use sum_with_overflow::SUM_WITH_OVERFLOW;
pub(crate) mod server;
mod strings;
mod sum_with_overflow;
mod top_k;
mod tuples;
mod weeks;

pub use server::{TIME_ZONE, VERSION};

/// The dividend of every `/` as the SQL rewrite leaves it: a toFloat64
/// that a Decimal division removes again (`operators/decimals.rs`).
pub(crate) const DIVIDEND: &str = "__qh_dividend";

use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, StringArray, TimestampSecondArray, UInt16Array,
    UInt32Array, UInt8Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use datafusion::common::{exec_err, DataFusionError, Result, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use qh_types::{ChType, ErrorCode};

use crate::error::QueryError;
use crate::operators::compare;
use crate::type_names::type_name;

type RetFn = fn(&[DataType]) -> Result<DataType>;
type EvalFn = fn(&[ArrayRef], usize) -> Result<ArrayRef>;

/// A scalar function given by a return-type rule and an array kernel.
#[derive(Debug)]
struct ChFunction {
    name: &'static str,
    signature: Signature,
    ret: RetFn,
    eval: EvalFn,
}

// Functions are identified by name: one UDF per name.
impl PartialEq for ChFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for ChFunction {}

impl std::hash::Hash for ChFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for ChFunction {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.ret)(arg_types)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if all_scalar { 1 } else { args.number_rows };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<Vec<_>>>()?;
        let out = (self.eval)(&arrays, n)?;
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

fn udf(name: &'static str, sig: Signature, ret: RetFn, eval: EvalFn) -> ScalarUDF {
    ScalarUDF::new_from_impl(ChFunction {
        name,
        signature: sig,
        ret,
        eval,
    })
}

fn one() -> Signature {
    Signature::any(1, Volatility::Immutable)
}

/// Any number of arguments of any type, none included (DataFusion's
/// `variadic_any` wants at least one), for functions that check their own
/// arguments with ClickHouse's codes.
fn any_args(volatility: Volatility) -> Signature {
    Signature::one_of(
        vec![
            datafusion::logical_expr::TypeSignature::Nullary,
            datafusion::logical_expr::TypeSignature::VariadicAny,
        ],
        volatility,
    )
}

/// Seconds since the epoch for Date, DateTime, DateTime64 or a string.
fn to_seconds(a: &ArrayRef) -> Result<TimestampSecondArray> {
    let secs = cast(a, &DataType::Timestamp(TimeUnit::Second, None))?;
    Ok(secs
        .as_primitive::<datafusion::arrow::datatypes::TimestampSecondType>()
        .clone())
}

fn dt(secs: i64) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

fn map_u32(a: &ArrayRef, f: fn(DateTime<chrono::Utc>) -> u32) -> Result<ArrayRef> {
    let s = to_seconds(a)?;
    Ok(Arc::new(
        s.iter()
            .map(|v| v.map(|v| f(dt(v))))
            .collect::<UInt32Array>(),
    ))
}

fn map_u16(a: &ArrayRef, f: fn(DateTime<chrono::Utc>) -> u16) -> Result<ArrayRef> {
    let s = to_seconds(a)?;
    Ok(Arc::new(
        s.iter()
            .map(|v| v.map(|v| f(dt(v))))
            .collect::<UInt16Array>(),
    ))
}

fn map_u8(a: &ArrayRef, f: fn(DateTime<chrono::Utc>) -> u8) -> Result<ArrayRef> {
    let s = to_seconds(a)?;
    Ok(Arc::new(
        s.iter()
            .map(|v| v.map(|v| f(dt(v))))
            .collect::<UInt8Array>(),
    ))
}

fn trunc_secs(a: &ArrayRef, f: fn(i64) -> i64) -> Result<ArrayRef> {
    let s = to_seconds(a)?;
    Ok(Arc::new(
        s.iter().map(|v| v.map(f)).collect::<TimestampSecondArray>(),
    ))
}

const DAY: i64 = 86_400;

fn days_from_secs(s: i64) -> i32 {
    s.div_euclid(DAY) as i32
}

fn month_start_days(d: DateTime<chrono::Utc>) -> i32 {
    let first = d.date_naive().with_day(1).unwrap_or(d.date_naive());
    (first
        .and_hms_opt(0, 0, 0)
        .map(|x| x.and_utc().timestamp())
        .unwrap_or(0))
    .div_euclid(DAY) as i32
}

/// The day number of the last day of `d`'s month.
fn month_end_days(d: DateTime<chrono::Utc>) -> i32 {
    let date = d.date_naive();
    let days_in_month = match date.month() {
        12 => 31,
        m => chrono::NaiveDate::from_ymd_opt(date.year(), m + 1, 1)
            .and_then(|next| next.pred_opt())
            .map_or(31, |last| last.day()),
    };
    month_start_days(d) + days_in_month as i32 - 1
}

fn ret_u32(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::UInt32)
}
fn ret_u16(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::UInt16)
}
fn ret_u8(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::UInt8)
}
fn ret_date(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Date32)
}
fn ret_datetime(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Timestamp(TimeUnit::Second, None))
}
fn ret_string(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Utf8)
}
fn ret_bool_u8(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::UInt8)
}

/// ClickHouse's `Date` is a UInt16 day number: a conversion saturates at
/// 1970-01-01 and 2149-06-06.
fn date_range(days: i32) -> i32 {
    days.clamp(0, i32::from(u16::MAX))
}

/// ClickHouse's `DateTime` is UInt32 seconds: a conversion saturates at
/// 1970-01-01 00:00:00 and 2106-02-07 06:28:15.
fn datetime_range(secs: i64) -> i64 {
    secs.clamp(0, i64::from(u32::MAX))
}

/// `toDate(x[, tz])`: a time (DateTime, or a number of seconds) is taken
/// as a date in `tz` (UTC when omitted); a Date or a date string is as
/// written.
fn to_date(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    if let Some(tz) = args.get(1) {
        let zone = time_zone(tz)?;
        let timed = a.data_type().is_integer() || matches!(a.data_type(), DataType::Timestamp(..));
        if timed {
            return to_date_in(a, zone);
        }
    }
    if a.data_type().is_integer() {
        // ClickHouse: a number is days since the epoch when small, else seconds.
        let v = cast(a, &DataType::Int64)?;
        let v = v.as_primitive::<Int64Type>();
        return Ok(Arc::new(
            v.iter()
                .map(|x| {
                    x.map(|x| {
                        date_range(if x < 65536 {
                            x as i32
                        } else {
                            days_from_secs(x)
                        })
                    })
                })
                .collect::<Date32Array>(),
        ));
    }
    let s = to_seconds(a)?;
    Ok(Arc::new(
        s.iter()
            .map(|v| v.map(|v| date_range(days_from_secs(v))))
            .collect::<Date32Array>(),
    ))
}

/// A time zone argument (its first value: ClickHouse wants a constant).
fn time_zone(tz: &ArrayRef) -> Result<chrono_tz::Tz> {
    let tz = cast(tz, &DataType::Utf8)?;
    let tz = tz.as_string::<i32>();
    let name = (!tz.is_empty() && tz.is_valid(0)).then(|| tz.value(0));
    name.and_then(|n| n.parse().ok()).ok_or_else(|| {
        DataFusionError::External(Box::new(QueryError::other(
            ErrorCode::BAD_ARGUMENTS,
            format!("Invalid time zone {name:?}"),
        )))
    })
}

fn to_date_in(a: &ArrayRef, zone: chrono_tz::Tz) -> Result<ArrayRef> {
    // A number below 65536 is a day number, not seconds, as without a zone.
    let small = a.data_type().is_integer();
    let secs = if small {
        cast(a, &DataType::Int64)?
    } else {
        cast(&to_seconds(a)?, &DataType::Int64)?
    };
    let secs = secs.as_primitive::<Int64Type>();
    Ok(Arc::new(
        secs.iter()
            .map(|v| {
                v.map(|v| {
                    if small && v < 65536 {
                        return date_range(v as i32);
                    }
                    let local = dt(v).with_timezone(&zone).date_naive();
                    date_range((local - chrono::NaiveDate::default()).num_days() as i32)
                })
            })
            .collect::<Date32Array>(),
    ))
}

fn to_datetime(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    if let Some(tz) = args.get(1) {
        // Values are shown in UTC: another zone would parse and print them
        // differently in ClickHouse.
        let zone = time_zone(tz)?;
        if !qh_types::is_utc_zone(zone.name()) {
            return Err(DataFusionError::External(Box::new(QueryError::other(
                ErrorCode::NOT_IMPLEMENTED,
                format!(
                    "toDateTime in time zone {}: only the UTC time zone is implemented",
                    zone.name()
                ),
            ))));
        }
    }
    let secs = if a.data_type().is_integer() {
        let v = cast(a, &DataType::Int64)?;
        cast(&v, &DataType::Timestamp(TimeUnit::Second, None))?
            .as_primitive::<datafusion::arrow::datatypes::TimestampSecondType>()
            .clone()
    } else {
        to_seconds(a)?
    };
    Ok(Arc::new(
        secs.unary::<_, datafusion::arrow::datatypes::TimestampSecondType>(datetime_range),
    ))
}

/// `toString`: ClickHouse's text form of a value (what TSV output shows).
fn to_string(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    let out: StringArray = (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                None
            } else {
                Some(qh_types::text::value_text(a.as_ref(), i))
            }
        })
        .collect();
    Ok(Arc::new(out))
}

fn to_type_name(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let t = type_name(args[0].data_type());
    // A named tuple's elements on lines of their own, as ClickHouse prints it.
    let t = match t.parse::<ChType>() {
        Ok(parsed) if t.contains("Tuple(") => parsed.pretty_name(),
        _ => t,
    };
    Ok(Arc::new(StringArray::from(vec![t; n])))
}

/// The default ClickHouse fills in for a value of `dt` (0, '', an empty
/// array or map, a tuple of defaults). DataFusion's `ScalarValue::new_default`
/// panics on a map type, so every default goes through the storage's.
pub(crate) fn default_scalar(dt: &DataType) -> Result<ScalarValue> {
    qh_storage::part::type_default(dt, false).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn empty(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    let out: UInt8Array = match a.data_type() {
        DataType::Utf8 => a
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|s| s.is_empty() as u8))
            .collect(),
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            (0..l.len())
                .map(|i| (!l.is_null(i)).then(|| (l.value_length(i) == 0) as u8))
                .collect()
        }
        other => return exec_err!("empty() does not take {other}"),
    };
    Ok(Arc::new(out))
}

fn not_empty(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let e = empty(args, n)?;
    let e = e.as_primitive::<datafusion::arrow::datatypes::UInt8Type>();
    Ok(Arc::new(
        e.iter().map(|v| v.map(|x| 1 - x)).collect::<UInt8Array>(),
    ))
}

fn int_div(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let division = |why: &str| {
        DataFusionError::External(Box::new(QueryError::other(
            ErrorCode::ILLEGAL_DIVISION,
            why.to_string(),
        )))
    };
    if args.iter().any(|a| a.data_type().is_floating()) {
        // Float operands: the quotient truncated toward zero, refused when
        // it is no Int64 (as ClickHouse refuses it).
        let a = cast(&args[0], &DataType::Float64)?;
        let b = cast(&args[1], &DataType::Float64)?;
        let (a, b) = (
            a.as_primitive::<Float64Type>(),
            b.as_primitive::<Float64Type>(),
        );
        let mut out = Vec::with_capacity(a.len());
        for i in 0..a.len() {
            if a.is_null(i) || b.is_null(i) {
                out.push(None);
                continue;
            }
            if b.value(i) == 0.0 {
                return Err(division("Division by zero"));
            }
            let q = (a.value(i) / b.value(i)).trunc();
            if !q.is_finite() || q < i64::MIN as f64 || q >= i64::MAX as f64 {
                return Err(division("Cannot perform integer division, because it will produce infinite or too large number"));
            }
            out.push(Some(q as i64));
        }
        return Ok(Arc::new(datafusion::arrow::array::Int64Array::from(out)));
    }
    let a = cast(&args[0], &DataType::Int64)?;
    let b = cast(&args[1], &DataType::Int64)?;
    let (a, b) = (a.as_primitive::<Int64Type>(), b.as_primitive::<Int64Type>());
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        if a.is_null(i) || b.is_null(i) {
            out.push(None);
        } else if b.value(i) == 0 {
            return Err(division("Division by zero"));
        } else {
            // ClickHouse rounds toward zero (intDiv(-7, 2) = -3).
            out.push(Some(a.value(i).wrapping_div(b.value(i))));
        }
    }
    Ok(Arc::new(datafusion::arrow::array::Int64Array::from(out)))
}

/// `isZeroOrNull(x)`: 1 where a number is 0 or NULL.
fn is_zero_or_null(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    if !(a.data_type().is_numeric() || matches!(a.data_type(), DataType::Boolean | DataType::Null))
    {
        return Err(DataFusionError::External(Box::new(QueryError::other(
            ErrorCode::BAD_ARGUMENTS,
            format!(
                "The argument of function isZeroOrNull must have simple numeric type, possibly Nullable or Null, got {}",
                a.data_type()
            ),
        ))));
    }
    let v = cast(a, &DataType::Float64)?;
    let v = v.as_primitive::<Float64Type>();
    Ok(Arc::new(
        (0..v.len())
            .map(|i| Some(u8::from(v.is_null(i) || v.value(i) == 0.0)))
            .collect::<UInt8Array>(),
    ))
}

fn ret_i64(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Int64)
}

fn now(_: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let secs = chrono::Utc::now().timestamp();
    Ok(Arc::new(TimestampSecondArray::from(vec![secs; n])))
}

fn today(_: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let secs = chrono::Utc::now().timestamp();
    Ok(Arc::new(Date32Array::from(vec![days_from_secs(secs); n])))
}

fn to_unix_timestamp(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let s = to_seconds(&args[0])?;
    Ok(Arc::new(
        s.iter()
            .map(|v| v.map(|v| v as u32))
            .collect::<UInt32Array>(),
    ))
}

fn is_null_fn(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    Ok(Arc::new(
        (0..a.len())
            .map(|i| Some(a.is_null(i) as u8))
            .collect::<UInt8Array>(),
    ))
}

fn is_not_null_fn(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    Ok(Arc::new(
        (0..a.len())
            .map(|i| Some(a.is_valid(i) as u8))
            .collect::<UInt8Array>(),
    ))
}

/// Any number as a condition: non-zero is true (ClickHouse's rule).
fn to_bool(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    if a.data_type() == &DataType::Boolean {
        return Ok(Arc::clone(a));
    }
    if a.data_type() == &DataType::Null {
        return Ok(Arc::new(datafusion::arrow::array::BooleanArray::new_null(
            a.len(),
        )));
    }
    // Arrow casts no decimal to Boolean; integer arithmetic on mixed signs
    // can yield decimals (`number % 2`): test them as != 0 through Float64.
    if matches!(
        a.data_type(),
        DataType::Decimal128(..) | DataType::Decimal256(..)
    ) {
        let f = cast(a, &DataType::Float64)?;
        return Ok(cast(&f, &DataType::Boolean)?);
    }
    Ok(cast(a, &DataType::Boolean)?)
}

/// `sleep(s)`: pauses the query (at most 3 s, like ClickHouse); returns 0.
fn sleep_fn(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let s = cast(&args[0], &DataType::Float64)?;
    let s = s.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let secs = if s.is_empty() || s.is_null(0) {
        0.0
    } else {
        s.value(0)
    };
    if !(0.0..=3.0).contains(&secs) {
        return exec_err!("The maximum sleep time is 3 seconds");
    }
    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    Ok(Arc::new(UInt8Array::from(vec![0u8; n])))
}

/// ClickHouse's `negate` / unary minus: unsigned integers become the next
/// wider signed type (UInt64 → Int64, wrapping like ClickHouse), the others
/// keep theirs.
fn negate_type(t: &[DataType]) -> Result<DataType> {
    Ok(match &t[0] {
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        other => other.clone(),
    })
}

fn negate(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let target = negate_type(&[args[0].data_type().clone()])?;
    let a = if args[0].data_type() == &target {
        Arc::clone(&args[0])
    } else {
        // UInt64 beyond i64 wraps, as ClickHouse's negate does.
        let opts = datafusion::arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        };
        match datafusion::arrow::compute::cast_with_options(&args[0], &target, &opts) {
            Ok(c) => c,
            Err(_) => cast(&args[0], &target)?,
        }
    };
    Ok(datafusion::arrow::compute::kernels::numeric::neg_wrapping(
        &a,
    )?)
}

fn identity_nullable(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    Ok(Arc::clone(&args[0]))
}

/// ClickHouse's `length`: bytes of a string (not characters: that is
/// `lengthUTF8`), elements of an array.
fn ch_length(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = match args[0].data_type() {
        DataType::Dictionary(_, v) => cast(&args[0], v)?,
        DataType::Utf8View => cast(&args[0], &DataType::Utf8)?,
        DataType::BinaryView => cast(&args[0], &DataType::Binary)?,
        DataType::Map(..) => return Ok(maps::length(&args[0])),
        _ => Arc::clone(&args[0]),
    };
    let n = datafusion::arrow::compute::kernels::length::length(&a)?;
    Ok(cast(&n, &DataType::UInt64)?)
}

/// `isFinite` / `isInfinite` / `isNaN` of any number, as UInt8.
fn float_test(args: &[ArrayRef], test: fn(f64) -> bool) -> Result<ArrayRef> {
    let f = cast(&args[0], &DataType::Float64)?;
    Ok(Arc::new(
        f.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .iter()
            .map(|v| v.map(|v| u8::from(test(v))))
            .collect::<UInt8Array>(),
    ))
}

/// Registers every ClickHouse function we provide.
pub fn register_all(reg: &mut dyn FunctionRegistry) -> Result<()> {
    let mut fns = vec![
        udf("toyyyymm", one(), ret_u32, |a, _| {
            map_u32(&a[0], |d| d.year() as u32 * 100 + d.month())
        }),
        udf("toyyyymmdd", one(), ret_u32, |a, _| {
            map_u32(&a[0], |d| {
                d.year() as u32 * 10000 + d.month() * 100 + d.day()
            })
        }),
        udf("toyear", one(), ret_u16, |a, _| {
            map_u16(&a[0], |d| d.year() as u16)
        }),
        udf("tomonth", one(), ret_u8, |a, _| {
            map_u8(&a[0], |d| d.month() as u8)
        }),
        udf("todayofmonth", one(), ret_u8, |a, _| {
            map_u8(&a[0], |d| d.day() as u8)
        }),
        udf("todayofweek", one(), ret_u8, |a, _| {
            map_u8(&a[0], |d| d.weekday().number_from_monday() as u8)
        }),
        udf("tohour", one(), ret_u8, |a, _| {
            map_u8(&a[0], |d| d.hour() as u8)
        }),
        udf("tominute", one(), ret_u8, |a, _| {
            map_u8(&a[0], |d| d.minute() as u8)
        }),
        udf("tosecond", one(), ret_u8, |a, _| {
            map_u8(&a[0], |d| d.second() as u8)
        }),
        udf(
            "todate",
            Signature::one_of(
                vec![
                    datafusion::logical_expr::TypeSignature::Any(1),
                    datafusion::logical_expr::TypeSignature::Any(2),
                ],
                Volatility::Immutable,
            ),
            ret_date,
            to_date,
        ),
        udf(
            "todatetime",
            Signature::variadic_any(Volatility::Immutable),
            ret_datetime,
            to_datetime,
        ),
        udf("tostartofhour", one(), ret_datetime, |a, _| {
            trunc_secs(&a[0], |s| s - s.rem_euclid(3600))
        }),
        udf("tostartofminute", one(), ret_datetime, |a, _| {
            trunc_secs(&a[0], |s| s - s.rem_euclid(60))
        }),
        udf("tostartoffiveminutes", one(), ret_datetime, |a, _| {
            trunc_secs(&a[0], |s| s - s.rem_euclid(300))
        }),
        udf("tostartofday", one(), ret_datetime, |a, _| {
            trunc_secs(&a[0], |s| s - s.rem_euclid(DAY))
        }),
        udf("tostartofmonth", one(), ret_date, |a, _| {
            let s = to_seconds(&a[0])?;
            Ok(Arc::new(
                s.iter()
                    .map(|v| v.map(|v| month_start_days(dt(v))))
                    .collect::<Date32Array>(),
            ))
        }),
        udf("tolastdayofmonth", one(), ret_date, |a, _| {
            let s = to_seconds(&a[0])?;
            Ok(Arc::new(
                s.iter()
                    .map(|v| v.map(|v| month_end_days(dt(v))))
                    .collect::<Date32Array>(),
            ))
        }),
        udf("tomonday", one(), ret_date, |a, _| {
            let s = to_seconds(&a[0])?;
            Ok(Arc::new(
                s.iter()
                    .map(|v| {
                        v.map(|v| {
                            let d = days_from_secs(v);
                            // 1970-01-01 was a Thursday.
                            d - (d + 3).rem_euclid(7)
                        })
                    })
                    .collect::<Date32Array>(),
            ))
        }),
        udf("tounixtimestamp", one(), ret_u32, to_unix_timestamp),
        udf("tostartoffifteenminutes", one(), ret_datetime, |a, _| {
            trunc_secs(&a[0], |s| s - s.rem_euclid(900))
        }),
        udf("tostartoftenminutes", one(), ret_datetime, |a, _| {
            trunc_secs(&a[0], |s| s - s.rem_euclid(600))
        }),
        udf("tonullable", one(), |t| Ok(t[0].clone()), identity_nullable),
        udf("negate", one(), negate_type, negate),
        // A constant made a full column: the same values here.
        udf(
            "materialize",
            one(),
            |t| Ok(t[0].clone()),
            identity_nullable,
        ),
        // Its argument, unchanged (ClickHouse's way to keep an expression
        // from being folded or analysed).
        udf("identity", one(), |t| Ok(t[0].clone()), identity_nullable),
        udf(
            "now",
            Signature::nullary(Volatility::Stable),
            ret_datetime,
            now,
        ),
        udf(
            "today",
            Signature::nullary(Volatility::Stable),
            ret_date,
            today,
        ),
        udf(
            "qh_now",
            Signature::nullary(Volatility::Stable),
            ret_datetime,
            now,
        ),
        udf(
            "qh_today",
            Signature::nullary(Volatility::Stable),
            ret_date,
            today,
        ),
        udf("tostring", one(), ret_string, to_string),
        udf("totypename", one(), ret_string, to_type_name),
        udf("empty", one(), ret_bool_u8, empty),
        udf("notempty", one(), ret_bool_u8, not_empty),
        udf(
            "intdiv",
            Signature::any(2, Volatility::Immutable),
            ret_i64,
            int_div,
        ),
        udf("isnull", one(), ret_bool_u8, is_null_fn),
        udf("iszeroornull", one(), ret_bool_u8, is_zero_or_null),
        udf(
            "splitbystring",
            Signature::any(2, Volatility::Immutable),
            strings::ret_string_array,
            strings::split_by_string,
        ),
        udf(
            "splitbychar",
            Signature::any(2, Volatility::Immutable),
            strings::ret_string_array,
            strings::split_by_char,
        ),
        udf(
            "tofixedstring",
            Signature::any(2, Volatility::Immutable),
            ret_string,
            strings::to_fixed_string,
        ),
        udf(
            "toweek",
            any_args(Volatility::Immutable),
            ret_u8,
            weeks::to_week,
        ),
        udf(
            "e",
            Signature::nullary(Volatility::Immutable),
            |_| Ok(DataType::Float64),
            |_, n| {
                Ok(Arc::new(datafusion::arrow::array::Float64Array::from(
                    vec![std::f64::consts::E; n],
                )))
            },
        ),
        udf(
            "rounddown",
            any_args(Volatility::Immutable),
            math::ret_round_down,
            math::round_down,
        ),
        udf(
            "toyearweek",
            any_args(Volatility::Immutable),
            ret_u32,
            weeks::to_year_week,
        ),
        udf("__qh_bool", one(), |_| Ok(DataType::Boolean), to_bool),
        udf(
            "sleep",
            Signature::any(1, Volatility::Volatile),
            ret_u8,
            sleep_fn,
        ),
        udf("isnotnull", one(), ret_bool_u8, is_not_null_fn),
        udf("__qh_length", one(), |_| Ok(DataType::UInt64), ch_length),
        udf(
            crate::rewrite::ARRAY_ELEMENT,
            Signature::any(2, Volatility::Immutable),
            arrays::element_type,
            arrays::element,
        ),
        udf(
            "arrayzip",
            Signature::one_of(
                vec![
                    datafusion::logical_expr::TypeSignature::Nullary,
                    datafusion::logical_expr::TypeSignature::VariadicAny,
                ],
                Volatility::Immutable,
            ),
            arrays::zip_type,
            arrays::zip,
        ),
    ];
    // Float comparisons by value (see `operators`).
    let by_value: [(&'static str, EvalFn); 6] = [
        ("__qh_float_eq", |a, _| compare(a, |x, y| x == y)),
        ("__qh_float_ne", |a, _| compare(a, |x, y| x != y)),
        ("__qh_float_lt", |a, _| compare(a, |x, y| x < y)),
        ("__qh_float_le", |a, _| compare(a, |x, y| x <= y)),
        ("__qh_float_gt", |a, _| compare(a, |x, y| x > y)),
        ("__qh_float_ge", |a, _| compare(a, |x, y| x >= y)),
    ];
    let float_tests: [(&'static str, EvalFn); 3] = [
        ("isfinite", |a, _| float_test(a, f64::is_finite)),
        ("isinfinite", |a, _| float_test(a, f64::is_infinite)),
        ("isnan", |a, _| float_test(a, f64::is_nan)),
    ];
    for (name, eval) in float_tests {
        fns.push(udf(name, one(), ret_bool_u8, eval));
    }
    fns.push(udf(
        "assumenotnull",
        one(),
        |t| Ok(t[0].clone()),
        identity_nullable,
    ));
    // Hides a predicate from DataFusion's interval analysis (see
    // `large_filters`).
    fns.push(udf(
        crate::large_filters::UNANALYSED,
        one(),
        |t| Ok(t[0].clone()),
        |a, _| Ok(Arc::clone(&a[0])),
    ));
    for (name, eval) in by_value {
        let sig = Signature::any(2, Volatility::Immutable);
        fns.push(udf(name, sig, |_| Ok(DataType::Boolean), eval));
    }
    // Registered under DataFusion's own `round`, which rounds half away
    // from zero.
    fns.push(udf(
        "round",
        Signature::one_of(
            vec![
                datafusion::logical_expr::TypeSignature::Any(1),
                datafusion::logical_expr::TypeSignature::Any(2),
            ],
            Volatility::Immutable,
        ),
        math::ret_round,
        math::round,
    ));
    fns.push(udf("sign", one(), math::ret_i8, math::sign));
    fns.push(udf(
        crate::operators::NAN_HIGH,
        one(),
        |t| Ok(t[0].clone()),
        |a, _| crate::operators::set_nan_sign(&a[0], false),
    ));
    fns.push(udf(
        crate::operators::NAN_LOW,
        one(),
        |t| Ok(t[0].clone()),
        |a, _| crate::operators::set_nan_sign(&a[0], true),
    ));
    for (name, f) in math::UNARY {
        fns.push(ScalarUDF::new_from_impl(math::Unary {
            name,
            f,
            signature: one(),
        }));
    }
    fns.push(udf(
        "visiblewidth",
        one(),
        |_| Ok(DataType::UInt64),
        strings::visible_width,
    ));
    fns.push(udf("hex", one(), ret_string, strings::hex));
    fns.push(udf(
        crate::tuple_sets::TUPLE_IN,
        Signature::variadic_any(Volatility::Immutable),
        |_| Ok(DataType::Boolean),
        crate::tuple_sets::eval,
    ));
    fns.extend(convert::udfs());
    fns.extend(decimals::udfs());
    fns.extend(least_greatest::udfs());
    fns.extend(dates::udfs());
    fns.push(format_datetime::udf());
    fns.extend(random::udfs());
    fns.extend(bytes::udfs());
    fns.extend(quantiles::udfs());
    fns.extend(top_k::udfs());
    fns.extend(row_key::udfs());
    fns.extend(hash::udfs());
    fns.extend(server::udfs());
    fns.push(ScalarUDF::new_from_impl(tuples::TupleElement::new()));
    // A DataFusion function that claims one of our names as an alias
    // (`to_char`'s `date_format`) goes: when the session state is rebuilt
    // from its functions, which one got the name would depend on hash order.
    let ours: std::collections::HashSet<String> = fns
        .iter()
        .flat_map(|f| std::iter::once(f.name().to_string()).chain(f.aliases().iter().cloned()))
        .collect();
    for name in reg.udfs() {
        let Ok(f) = reg.udf(&name) else { continue };
        if !ours.contains(f.name()) && f.aliases().iter().any(|a| ours.contains(a)) {
            reg.deregister_udf(f.name())?;
        }
    }
    for f in fns {
        reg.register_udf(Arc::new(f))?;
    }
    reg.register_udaf(Arc::new(reservoir::udaf()))?;
    reg.register_udaf(Arc::new(sum_with_overflow::udaf()))?;
    Ok(())
}
