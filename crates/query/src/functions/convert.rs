//! ClickHouse's conversions, one kernel for all of them: `toUInt8` …
//! `toFloat64`, `toDecimal32(x, S)` / `64` / `128`, `CAST(x AS T)` (also
//! `CAST(x, 'T')` and `x::T`, which the rewrite routes to `__qh_cast`), and
//! the `…OrZero` / `…OrNull` variants that parse strings.
//!
//! The rules are ClickHouse's, not Arrow's: integers wrap into a narrower
//! integer type (`CAST(300 AS UInt8)` is 44, also from the string `'300'`);
//! floats truncate toward zero; a `Date` converts to its day number and a
//! `DateTime` to its seconds; a Decimal target truncates extra digits
//! (`toDecimal32(1.555, 2)` is 1.55) and refuses values beyond its precision
//! (407). Where ClickHouse's answer is not a number it could defend (a float
//! beyond the target's range, which it converts to an arbitrary integer) we
//! refuse with 70 rather than invent one.

use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, Date32Array, Decimal128Array, PrimitiveArray,
    TimestampSecondArray,
};
use datafusion::arrow::compute::{cast, cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Field, FieldRef, Float64Type, Int16Type,
    Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use qh_types::{ChType, ErrorCode};

use crate::error::QueryError;
use crate::type_names::type_name;

/// What a conversion function converts to, and how it treats bad input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    /// `toT(x)`: converts or fails.
    To(ChType),
    /// `toTOrZero(s)`: a string that does not parse (or does not fit) is 0.
    OrZero(ChType),
    /// `toTOrNull(s)`: … is NULL.
    OrNull(ChType),
    /// `toDecimalN(x, S)`: precision fixed by the name, scale by a constant.
    Decimal(u8),
    /// `__qh_cast(x, 'T')`: the type is a constant string.
    Cast,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Conversion {
    name: String,
    target: Target,
    signature: Signature,
}

fn error(code: ErrorCode, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::other(code, message)))
}

impl Conversion {
    /// The ClickHouse type this call converts to, from its constant arguments.
    fn target_type(&self, constants: &[Option<&ScalarValue>]) -> Result<ChType> {
        let constant = || constants.get(1).copied().flatten();
        match &self.target {
            Target::To(t) | Target::OrZero(t) | Target::OrNull(t) => Ok(t.clone()),
            Target::Decimal(precision) => {
                let scale = constant()
                    .and_then(|s| s.cast_to(&DataType::Int64).ok())
                    .and_then(|s| match s {
                        ScalarValue::Int64(Some(v)) => Some(v),
                        _ => None,
                    })
                    .ok_or_else(|| {
                        error(
                            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                            format!("Second argument of {} must be a constant scale", self.name),
                        )
                    })?;
                if scale < 0 || scale > i64::from(*precision) {
                    return Err(error(
                        ErrorCode::ARGUMENT_OUT_OF_BOUND,
                        format!("Decimal scale {scale} is out of bounds (max {precision})"),
                    ));
                }
                Ok(ChType::Decimal(*precision, scale as u8))
            }
            Target::Cast => {
                let name =
                    match constant() {
                        Some(
                            ScalarValue::Utf8(Some(s))
                            | ScalarValue::LargeUtf8(Some(s))
                            | ScalarValue::Utf8View(Some(s)),
                        ) => s.clone(),
                        _ => return Err(error(
                            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                            "Second argument of CAST must be a constant string with a type name"
                                .into(),
                        )),
                    };
                name.parse::<ChType>().map_err(|e| {
                    error(
                        ErrorCode::UNKNOWN_TYPE,
                        format!("Unknown data type family: {}", e.0),
                    )
                })
            }
        }
    }
}

impl ScalarUDFImpl for Conversion {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        datafusion::common::internal_err!("{} is typed by return_field_from_args", self.name)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let t = self.target_type(args.scalar_arguments)?;
        if matches!(self.target, Target::OrZero(_) | Target::OrNull(_)) {
            if let Some(f) = args.arg_fields.first() {
                if !is_string(f.data_type()) && f.data_type() != &DataType::Null {
                    return Err(error(
                        ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                        format!(
                            "Illegal type {} of first argument of function {}. Conversion \
                             functions with postfix 'OrZero' or 'OrNull' should take String argument",
                            type_name(f.data_type()),
                            self.name
                        ),
                    ));
                }
            }
        }
        let input_nullable = args.arg_fields.first().is_none_or(|f| f.is_nullable());
        let nullable =
            matches!(self.target, Target::OrNull(_)) || t.is_nullable() || input_nullable;
        Ok(Arc::new(Field::new(&self.name, t.to_arrow(), nullable)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let constants: Vec<Option<&ScalarValue>> = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        let t = self.target_type(&constants)?;
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let out = match &self.target {
            Target::OrZero(_) => parse_each(&input, &t, false)?,
            Target::OrNull(_) => parse_each(&input, &t, true)?,
            _ => convert(&input, &t)?,
        };
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Every conversion function, by its lower-case name.
pub(super) fn udfs() -> Vec<ScalarUDF> {
    let mut out = Vec::new();
    let mut add = |name: String, target: Target, args: usize| {
        out.push(ScalarUDF::new_from_impl(Conversion {
            name,
            target,
            signature: Signature::any(args, Volatility::Immutable),
        }));
    };
    for t in [
        ChType::UInt8,
        ChType::UInt16,
        ChType::UInt32,
        ChType::UInt64,
        ChType::Int8,
        ChType::Int16,
        ChType::Int32,
        ChType::Int64,
        ChType::Float32,
        ChType::Float64,
        ChType::Date,
        ChType::DateTime,
    ] {
        let base = format!("to{}", t.to_string().to_ascii_lowercase());
        add(format!("{base}orzero"), Target::OrZero(t.clone()), 1);
        add(format!("{base}ornull"), Target::OrNull(t.clone()), 1);
        // toDate / toDateTime keep their own UDFs (time zone argument, rules).
        if !matches!(t, ChType::Date | ChType::DateTime) {
            add(base, Target::To(t), 1);
        }
    }
    for (name, precision) in [
        ("todecimal32", 9),
        ("todecimal64", 18),
        ("todecimal128", 38),
    ] {
        add(name.into(), Target::Decimal(precision), 2);
    }
    add("__qh_cast".into(), Target::Cast, 2);
    // The dividend of `/` (the SQL rewrite's): toFloat64 unless a Decimal
    // division takes it apart (operators/decimals.rs).
    add(super::DIVIDEND.into(), Target::To(ChType::Float64), 1);
    out
}

/// Converts `a` to ClickHouse type `to` by ClickHouse's rules.
pub(crate) fn convert(a: &ArrayRef, to: &ChType) -> Result<ArrayRef> {
    let target = to.to_arrow();
    if a.data_type() == &DataType::Null {
        return Ok(new_null_array(&target, a.len()));
    }
    if let DataType::Dictionary(_, v) = a.data_type() {
        return convert(&cast(a, v)?, to);
    }
    if a.data_type() == &target {
        return Ok(Arc::clone(a));
    }
    match to.base() {
        ChType::UInt8
        | ChType::UInt16
        | ChType::UInt32
        | ChType::UInt64
        | ChType::Int8
        | ChType::Int16
        | ChType::Int32
        | ChType::Int64 => to_integer(a, &target),
        ChType::Float32 | ChType::Float64 if is_string(a.data_type()) => {
            let s = cast(a, &DataType::Utf8)?;
            let parsed = s
                .as_string::<i32>()
                .iter()
                .map(|v| {
                    v.map(|v| parse_float(v).ok_or_else(|| cannot_parse(v, to.base())))
                        .transpose()
                })
                .collect::<Result<Vec<_>>>()?;
            let f: ArrayRef = Arc::new(PrimitiveArray::<Float64Type>::from(parsed));
            Ok(cast(&f, &target)?)
        }
        ChType::Decimal(p, s) => to_decimal(a, *p, *s),
        ChType::Date => super::to_date(std::slice::from_ref(a), a.len()),
        ChType::DateTime => super::to_datetime(std::slice::from_ref(a), a.len()),
        ChType::String => super::to_string(std::slice::from_ref(a), a.len()),
        _ => {
            let opts = CastOptions {
                safe: false,
                ..Default::default()
            };
            Ok(cast_with_options(a, &target, &opts)?)
        }
    }
}

fn cannot_parse(v: &str, t: &ChType) -> DataFusionError {
    error(
        ErrorCode::CANNOT_PARSE_TEXT,
        format!("Cannot parse string '{v}' as {t}"),
    )
}

/// Whole-number values of `a` as i128 (Date: days, DateTime: seconds,
/// floats and Decimals truncated toward zero), NULLs kept.
fn integers(a: &ArrayRef, target: &DataType) -> Result<Vec<Option<i128>>> {
    let out_of_range = |v: f64| {
        error(
            ErrorCode::CANNOT_CONVERT_TYPE,
            format!("Value {v} is out of range of {}", type_name(target)),
        )
    };
    let range = int_range(target);
    Ok(match a.data_type() {
        DataType::Float32 | DataType::Float64 => {
            let f = cast(a, &DataType::Float64)?;
            f.as_primitive::<Float64Type>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        let t = v.trunc();
                        // Only a value that fits converts; ClickHouse gives an
                        // arbitrary integer for the rest.
                        if t.is_finite() && t >= range.0 as f64 && t <= range.1 as f64 {
                            Ok(t as i128)
                        } else {
                            Err(out_of_range(v))
                        }
                    })
                    .transpose()
                })
                .collect::<Result<_>>()?
        }
        DataType::Decimal128(_, scale) => {
            let d = a.as_primitive::<Decimal128Type>();
            let div = 10i128.pow((*scale).max(0) as u32);
            d.iter().map(|v| v.map(|v| v / div)).collect()
        }
        DataType::Date32 => a
            .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
            .iter()
            .map(|v| v.map(i128::from))
            .collect(),
        DataType::Timestamp(..) => super::to_seconds(a)?
            .iter()
            .map(|v| v.map(i128::from))
            .collect(),
        DataType::UInt64 => a
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.map(i128::from))
            .collect(),
        t if is_string(t) => {
            let s = cast(a, &DataType::Utf8)?;
            let name = ChType::from_arrow(target).unwrap_or(ChType::Int64);
            s.as_string::<i32>()
                .iter()
                .map(|v| {
                    v.map(|v| parse_integer(v).ok_or_else(|| cannot_parse(v, &name)))
                        .transpose()
                })
                .collect::<Result<_>>()?
        }
        _ => {
            let v = cast(a, &DataType::Int64)?;
            v.as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(i128::from))
                .collect()
        }
    })
}

/// The inclusive range of an integer Arrow type.
fn int_range(t: &DataType) -> (i128, i128) {
    match t {
        DataType::UInt8 => (0, u8::MAX.into()),
        DataType::UInt16 => (0, u16::MAX.into()),
        DataType::UInt32 => (0, u32::MAX.into()),
        DataType::UInt64 => (0, u64::MAX.into()),
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    }
}

/// Integers wrapped into `target` (two's complement, as ClickHouse's casts).
fn wrap_into(values: Vec<Option<i128>>, target: &DataType) -> ArrayRef {
    fn build<T: ArrowPrimitiveType>(
        values: Vec<Option<i128>>,
        f: fn(i128) -> T::Native,
    ) -> ArrayRef {
        Arc::new(
            values
                .into_iter()
                .map(|v| v.map(f))
                .collect::<PrimitiveArray<T>>(),
        )
    }
    match target {
        DataType::UInt8 => build::<UInt8Type>(values, |v| v as u8),
        DataType::UInt16 => build::<UInt16Type>(values, |v| v as u16),
        DataType::UInt32 => build::<UInt32Type>(values, |v| v as u32),
        DataType::UInt64 => build::<UInt64Type>(values, |v| v as u64),
        DataType::Int8 => build::<Int8Type>(values, |v| v as i8),
        DataType::Int16 => build::<Int16Type>(values, |v| v as i16),
        DataType::Int32 => build::<Int32Type>(values, |v| v as i32),
        _ => build::<Int64Type>(values, |v| v as i64),
    }
}

fn to_integer(a: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    // Widening between integer types cannot overflow: Arrow's kernel.
    if (a.data_type().is_integer() || a.data_type() == &DataType::Boolean)
        && fits_in(a.data_type(), target)
    {
        return Ok(cast(a, target)?);
    }
    Ok(wrap_into(integers(a, target)?, target))
}

/// Whether every value of integer type `from` fits in integer type `to`.
fn fits_in(from: &DataType, to: &DataType) -> bool {
    if from == &DataType::Boolean {
        return true;
    }
    let (a, b) = (int_range(from), int_range(to));
    a.0 >= b.0 && a.1 <= b.1
}

/// ClickHouse's strict integer text: an optional sign and digits only.
fn parse_integer(s: &str) -> Option<i128> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 38 {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

fn parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    s.parse().ok()
}

/// `toDecimal…` / `CAST(… AS Decimal(P, S))`: digits beyond the scale are
/// dropped (toward zero); a value needing more than `precision` digits is
/// DECIMAL_OVERFLOW.
fn to_decimal(a: &ArrayRef, precision: u8, scale: u8) -> Result<ArrayRef> {
    let mul = 10i128.pow(u32::from(scale));
    let limit = 10i128.pow(u32::from(precision));
    let overflow = || {
        error(
            ErrorCode::DECIMAL_OVERFLOW,
            format!("Decimal value is too big for Decimal({precision}, {scale})"),
        )
    };
    let values: Vec<Option<i128>> = match a.data_type() {
        DataType::Float32 | DataType::Float64 => {
            let f = cast(a, &DataType::Float64)?;
            f.as_primitive::<Float64Type>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        let x = (v * mul as f64).trunc();
                        if x.is_finite() && x.abs() < limit as f64 {
                            Ok(x as i128)
                        } else {
                            Err(overflow())
                        }
                    })
                    .transpose()
                })
                .collect::<Result<_>>()?
        }
        DataType::Decimal128(_, from_scale) => {
            let from_scale = (*from_scale).max(0) as u32;
            let d = a.as_primitive::<Decimal128Type>();
            d.iter()
                .map(|v| {
                    v.map(|v| {
                        if from_scale >= u32::from(scale) {
                            v / 10i128.pow(from_scale - u32::from(scale))
                        } else {
                            v.saturating_mul(10i128.pow(u32::from(scale) - from_scale))
                        }
                    })
                })
                .collect()
        }
        t if is_string(t) => {
            let s = cast(a, &DataType::Utf8)?;
            let ty = ChType::Decimal(precision, scale);
            s.as_string::<i32>()
                .iter()
                .map(|v| {
                    v.map(|v| parse_decimal(v, scale).ok_or_else(|| cannot_parse(v, &ty)))
                        .transpose()
                })
                .collect::<Result<_>>()?
        }
        _ => integers(a, &DataType::Int64)?
            .into_iter()
            .map(|v| v.map(|v| v.saturating_mul(mul)))
            .collect(),
    };
    if values.iter().flatten().any(|v| v.abs() >= limit) {
        return Err(overflow());
    }
    let d: Decimal128Array = values.into_iter().collect();
    Ok(Arc::new(
        d.with_precision_and_scale(precision, scale as i8)?,
    ))
}

/// A decimal number's text scaled by 10^scale, extra digits dropped.
fn parse_decimal(s: &str, scale: u8) -> Option<i128> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || int.len() > 38
    {
        return None;
    }
    let mut v: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac = frac.as_bytes();
    for i in 0..usize::from(scale) {
        let digit = frac.get(i).map_or(0, |b| i128::from(b - b'0'));
        v = v.checked_mul(10)?.checked_add(digit)?;
    }
    Some(if negative { -v } else { v })
}

/// `…OrZero` / `…OrNull`: each string parsed on its own; one that does not
/// parse or fit is 0 (or NULL).
fn parse_each(a: &ArrayRef, to: &ChType, null_on_error: bool) -> Result<ArrayRef> {
    let target = to.to_arrow();
    if a.data_type() == &DataType::Null {
        return Ok(new_null_array(&target, a.len()));
    }
    let s = cast(a, &DataType::Utf8)?;
    let s = s.as_string::<i32>();
    Ok(match to {
        ChType::Float32 | ChType::Float64 => {
            let v: PrimitiveArray<Float64Type> = s
                .iter()
                .map(|v| v.and_then(|v| parse_float(v).or((!null_on_error).then_some(0.0))))
                .collect();
            cast(&(Arc::new(v) as ArrayRef), &target)?
        }
        ChType::Date => {
            let v: Date32Array = s
                .iter()
                .map(|v| {
                    v.and_then(|v| {
                        chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                            .ok()
                            .map(|d| (d - chrono::NaiveDate::default()).num_days() as i32)
                            .filter(|d| (0..=65535).contains(d))
                            .or((!null_on_error).then_some(0))
                    })
                })
                .collect();
            Arc::new(v)
        }
        ChType::DateTime => {
            let v: TimestampSecondArray = s
                .iter()
                .map(|v| {
                    v.and_then(|v| {
                        parse_datetime(v)
                            .filter(|t| (0..=i64::from(u32::MAX)).contains(t))
                            .or((!null_on_error).then_some(0))
                    })
                })
                .collect();
            Arc::new(v)
        }
        _ => {
            let range = int_range(&target);
            let v: Vec<Option<i128>> = s
                .iter()
                .map(|v| {
                    v.and_then(|v| {
                        parse_integer(v)
                            .filter(|x| (range.0..=range.1).contains(x))
                            .or((!null_on_error).then_some(0))
                    })
                })
                .collect();
            wrap_into(v, &target)
        }
    })
}

fn parse_datetime(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Some(t.and_utc().timestamp());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};

    fn strings(v: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    // Expected values from ClickHouse 26.9 (chDB 4.4).
    #[test]
    fn integers_wrap_and_strings_parse_strictly() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![300, -1]));
        let u8s = convert(&a, &ChType::UInt8).unwrap();
        assert_eq!(u8s.as_primitive::<UInt8Type>().values(), &[44, 255]);
        let s = convert(&strings(&[Some("300")]), &ChType::UInt8).unwrap();
        assert_eq!(s.as_primitive::<UInt8Type>().value(0), 44);
        assert!(convert(&strings(&[Some("12a")]), &ChType::UInt8).is_err());
        let f: ArrayRef = Arc::new(Float64Array::from(vec![1.9, -1.9]));
        let i = convert(&f, &ChType::Int32).unwrap();
        assert_eq!(i.as_primitive::<Int32Type>().values(), &[1, -1]);
        let big: ArrayRef = Arc::new(Float64Array::from(vec![1e20]));
        assert!(convert(&big, &ChType::Int64).is_err());
        let d: ArrayRef = Arc::new(Date32Array::from(vec![18262]));
        let days = convert(&d, &ChType::UInt32).unwrap();
        assert_eq!(days.as_primitive::<UInt32Type>().value(0), 18262);
    }

    #[test]
    fn or_zero_and_or_null() {
        let s = strings(&[
            Some("123a"),
            Some("200"),
            Some("300"),
            Some("-5"),
            Some("+5"),
            None,
        ]);
        let z = parse_each(&s, &ChType::UInt8, false).unwrap();
        let z = z.as_primitive::<UInt8Type>();
        assert_eq!(
            (0..6)
                .map(|i| z.is_valid(i).then(|| z.value(i)))
                .collect::<Vec<_>>(),
            vec![Some(0), Some(200), Some(0), Some(0), Some(5), None]
        );
        let n = parse_each(&s, &ChType::UInt8, true).unwrap();
        assert_eq!(n.null_count(), 4);
        let f = parse_each(
            &strings(&[Some("456.789"), Some("1e3"), Some("x")]),
            &ChType::Float64,
            false,
        )
        .unwrap();
        assert_eq!(
            f.as_primitive::<Float64Type>().values(),
            &[456.789, 1000.0, 0.0]
        );
    }

    #[test]
    fn decimals_truncate_and_overflow() {
        let f: ArrayRef = Arc::new(Float64Array::from(vec![1.555, -1.555]));
        let d = convert(&f, &ChType::Decimal(10, 2)).unwrap();
        assert_eq!(d.as_primitive::<Decimal128Type>().values(), &[155, -155]);
        let s = convert(
            &strings(&[Some("1.555"), Some("-0.5")]),
            &ChType::Decimal(9, 2),
        )
        .unwrap();
        assert_eq!(s.as_primitive::<Decimal128Type>().values(), &[155, -50]);
        let big: ArrayRef = Arc::new(Int64Array::from(vec![10_000_000_000]));
        assert!(convert(&big, &ChType::Decimal(9, 0)).is_err());
    }
}
