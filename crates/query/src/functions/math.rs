//! Mathematical functions where ClickHouse's answer differs from
//! DataFusion's built-in of the same name, or that DataFusion lacks.
//!
//! - `round(x[, N])`: floats round half to even at N decimals (computed as
//!   ClickHouse does, `nearbyint(x * 10^N) / 10^N`, in the float's own
//!   width: `round(2.5)` = 2, DataFusion says 3); integers and Decimals
//!   round half away from zero (`round(1250, -2)` = 1300) and keep their
//!   type; an integer result outside its type is error 69.
//! - `roundDown(x, [b1, b2, …])`: the greatest boundary not above `x` (the
//!   smallest for an `x` below them all), in `x`'s integer type, or Float64
//!   where either side is a float or a Decimal (ClickHouse answers a
//!   Decimal there; the digits print the same).
//! - `sign`, `exp2`, `exp10`, `erf`, `erfc`, `lgamma`, `tgamma` (Float64).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float32Array, Float64Array, Int8Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature};
use qh_types::ErrorCode;

use crate::error::QueryError;

pub(super) fn error(code: ErrorCode, why: String) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::other(code, why)))
}

pub(super) fn ret_round(t: &[DataType]) -> Result<DataType> {
    match &t[0] {
        DataType::Null => Ok(DataType::Float64),
        t if t.is_numeric() => Ok(t.clone()),
        other => Err(error(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            format!("Illegal type {other} of first argument of function round"),
        )),
    }
}

/// The digits argument: a constant integer (ClickHouse requires one).
fn digits(args: &[ArrayRef]) -> Result<i32> {
    let Some(n) = args.get(1) else {
        return Ok(0);
    };
    let n = cast(n, &DataType::Int64)?;
    let n = n.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let first = (!n.is_empty() && n.is_valid(0)).then(|| n.value(0));
    match first {
        Some(v) if n.iter().all(|x| x == Some(v)) && (-30..=30).contains(&v) => Ok(v as i32),
        _ => Err(error(
            ErrorCode::ILLEGAL_COLUMN,
            "The second argument of function round must be a constant integer between -30 and 30"
                .into(),
        )),
    }
}

pub(super) fn round(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let n = digits(args)?;
    let a = &args[0];
    match a.data_type() {
        DataType::Float64 => {
            let p = 10f64.powi(n.abs());
            let f = |x: f64| {
                if n >= 0 {
                    (x * p).round_ties_even() / p
                } else {
                    (x / p).round_ties_even() * p
                }
            };
            Ok(Arc::new(a.as_primitive::<Float64Type>().unary::<_, Float64Type>(f)) as ArrayRef)
        }
        DataType::Float32 | DataType::Float16 => {
            let a = cast(a, &DataType::Float32)?;
            let p = 10f32.powi(n.abs());
            let f = |x: f32| {
                if n >= 0 {
                    (x * p).round_ties_even() / p
                } else {
                    (x / p).round_ties_even() * p
                }
            };
            let out: Float32Array = a.as_primitive::<Float32Type>().unary(f);
            Ok(Arc::new(out))
        }
        DataType::Decimal128(precision, scale) => {
            let (precision, scale) = (*precision, *scale);
            let drop = i32::from(scale) - n;
            let a = a.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
            if drop <= 0 {
                return Ok(Arc::new(a.clone()));
            }
            let unit = 10i128.checked_pow(drop as u32).unwrap_or(i128::MAX);
            let out: Decimal128Array = a.unary(|v| half_away(v, unit).unwrap_or(0));
            Ok(Arc::new(out.with_precision_and_scale(precision, scale)?))
        }
        t if t.is_integer() => {
            if n >= 0 {
                return Ok(Arc::clone(a));
            }
            let unit = 10i128.pow(n.unsigned_abs());
            let wide = cast(a, &DataType::Decimal128(38, 0))?;
            let wide = wide.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
            let rounded: Decimal128Array = wide
                .iter()
                .map(|v| v.map(|v| half_away(v, unit).unwrap_or(i128::MAX)))
                .collect();
            let rounded = rounded.with_precision_and_scale(38, 0)?;
            // A checked cast: a result outside the type fails, never wraps.
            cast(&rounded, t)
                .map_err(|_| {
                    error(
                        ErrorCode::ARGUMENT_OUT_OF_BOUND,
                        format!("Value out of range of {t} in function round"),
                    )
                })
                .and_then(|out| {
                    if out.null_count() > a.null_count() {
                        Err(error(
                            ErrorCode::ARGUMENT_OUT_OF_BOUND,
                            format!("Value out of range of {t} in function round"),
                        ))
                    } else {
                        Ok(out)
                    }
                })
        }
        DataType::Null => Ok(Arc::new(Float64Array::new_null(a.len()))),
        other => Err(error(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            format!("Illegal type {other} of first argument of function round"),
        )),
    }
}

/// `v` rounded to a multiple of `unit`, half away from zero.
fn half_away(v: i128, unit: i128) -> Option<i128> {
    if unit <= 1 {
        return Some(v);
    }
    let r = v % unit;
    let toward_zero = v - r;
    if r.abs() >= unit - r.abs() {
        toward_zero.checked_add(if v < 0 { -unit } else { unit })
    } else {
        Some(toward_zero)
    }
}

pub(super) fn ret_i8(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Int8)
}

fn float64(a: &ArrayRef, name: &str) -> Result<Float64Array> {
    if !(a.data_type().is_numeric() || a.data_type() == &DataType::Null) {
        return Err(error(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            format!(
                "Illegal type {} of argument of function {name}",
                a.data_type()
            ),
        ));
    }
    Ok(cast(a, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

/// A Float64 → Float64 function (`exp2`, `erf`, …).
#[derive(Debug)]
pub(super) struct Unary {
    pub name: &'static str,
    pub f: fn(f64) -> f64,
    pub signature: Signature,
}

impl PartialEq for Unary {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Unary {}

impl std::hash::Hash for Unary {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Unary {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let f = self.f;
        match &args.args[0] {
            ColumnarValue::Scalar(s) => {
                let a = s.to_array()?;
                let out = float64(&a, self.name)?.unary::<_, Float64Type>(f);
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
            }
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(Arc::new(
                float64(a, self.name)?.unary::<_, Float64Type>(f),
            ))),
        }
    }
}

pub(super) fn sign(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let v = float64(&args[0], "sign")?;
    let out: Int8Array = v
        .iter()
        .map(|x| {
            x.map(|x| {
                if x > 0.0 {
                    1
                } else if x < 0.0 {
                    -1
                } else {
                    0
                }
            })
        })
        .collect();
    Ok(Arc::new(out))
}

type FloatFn = fn(f64) -> f64;

pub(super) const UNARY: [(&str, FloatFn); 6] = [
    ("exp2", f64::exp2),
    ("exp10", |x| 10f64.powf(x)),
    ("erf", libm::erf),
    ("erfc", libm::erfc),
    ("lgamma", libm::lgamma),
    ("tgamma", libm::tgamma),
];

pub(super) fn ret_round_down(t: &[DataType]) -> Result<DataType> {
    let element = match t.get(1) {
        Some(DataType::List(f) | DataType::LargeList(f)) => f.data_type().clone(),
        _ => {
            return Err(error(
                ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
                "The second argument of function roundDown must be an array of numbers".into(),
            ))
        }
    };
    if t.len() != 2 {
        return Err(error(
            ErrorCode::NUMBER_OF_ARGUMENTS_DOESNT_MATCH,
            format!("Function roundDown takes 2 arguments, {} given", t.len()),
        ));
    }
    match (&t[0], &element) {
        (_, DataType::Null) => Err(error(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            "The boundaries of roundDown must be a non-empty array of numbers".into(),
        )),
        (x, b) if x.is_integer() && b.is_integer() => Ok(x.clone()),
        (DataType::Null, b) if b.is_integer() => Ok(b.clone()),
        (x, b) if (x.is_numeric() || *x == DataType::Null) && b.is_numeric() => {
            Ok(DataType::Float64)
        }
        (x, b) => Err(error(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            format!(
                "Illegal types {} and Array({}) of the arguments of function roundDown",
                crate::type_names::type_name(x),
                crate::type_names::type_name(b)
            ),
        )),
    }
}

/// `roundDown(x, boundaries)`; the boundaries a constant non-empty array.
pub(super) fn round_down(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let x = &args[0];
    let target = ret_round_down(&[x.data_type().clone(), args[1].data_type().clone()])?;
    let lists = args[1].as_list_opt::<i32>().ok_or_else(|| {
        error(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            "The second argument of function roundDown must be an array".into(),
        )
    })?;
    let not_constant = || {
        error(
            ErrorCode::ILLEGAL_COLUMN,
            "The second argument of function roundDown must be a constant array".into(),
        )
    };
    let first = (!lists.is_empty() && lists.is_valid(0))
        .then(|| lists.value(0))
        .ok_or_else(not_constant)?;
    if (1..lists.len()).any(|i| !lists.is_valid(i) || lists.value(i).to_data() != first.to_data()) {
        return Err(not_constant());
    }
    if first.is_empty() || first.null_count() > 0 {
        return Err(error(
            ErrorCode::ILLEGAL_COLUMN,
            "The boundaries of roundDown must be a non-empty array without NULLs".into(),
        ));
    }
    let typed = cast(&first, &target)?;
    let order = datafusion::arrow::compute::sort_to_indices(&typed, None, None)?;
    let sorted = datafusion::arrow::compute::take(&typed, &order, None)?;
    // Compared in Float64: exact for the boundaries and values the integer
    // paths compare, which are small (a boundary list is written out).
    let bounds = cast(&sorted, &DataType::Float64)?;
    let bounds = bounds.as_primitive::<Float64Type>().values();
    let pick = |v: f64| bounds.partition_point(|b| *b <= v).saturating_sub(1);
    let xs = cast(&cast(x, &target)?, &DataType::Float64)?;
    let xs = xs.as_primitive::<Float64Type>();
    let indices: datafusion::arrow::array::UInt32Array =
        xs.iter().map(|v| v.map(|v| pick(v) as u32)).collect();
    Ok(datafusion::arrow::compute::take(&sorted, &indices, None)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, UInt16Array};

    fn round_f64(x: f64, n: i64) -> f64 {
        let a: ArrayRef = Arc::new(Float64Array::from(vec![x]));
        let n: ArrayRef = Arc::new(Int64Array::from(vec![n]));
        round(&[a, n], 1)
            .unwrap()
            .as_primitive::<Float64Type>()
            .value(0)
    }

    // Expected values from ClickHouse (chDB 4.4).
    #[test]
    fn floats_round_half_to_even_as_clickhouse() {
        assert_eq!(round_f64(2.5, 0), 2.0);
        assert_eq!(round_f64(-2.5, 0), -2.0);
        assert_eq!(round_f64(3.5, 0), 4.0);
        assert_eq!(round_f64(2.675, 2), 2.68);
        assert_eq!(round_f64(1.23456, 2), 1.23);
        assert_eq!(round_f64(1234.5678, -2), 1200.0);
        assert!(round_f64(f64::NAN, 0).is_nan());
    }

    #[test]
    fn integers_round_half_away_from_zero() {
        let a: ArrayRef = Arc::new(UInt16Array::from(vec![1250, 1350, 1249]));
        let n: ArrayRef = Arc::new(Int64Array::from(vec![-2, -2, -2]));
        let out = round(&[a, n], 3).unwrap();
        assert_eq!(out.data_type(), &DataType::UInt16);
        let out = out.as_primitive::<datafusion::arrow::datatypes::UInt16Type>();
        assert_eq!(out.values().to_vec(), vec![1300, 1400, 1200]);
        assert_eq!(half_away(-1250, 100), Some(-1300));
        assert_eq!(half_away(-1249, 100), Some(-1200));
        assert_eq!(half_away(25, 10), Some(30));
    }
}
