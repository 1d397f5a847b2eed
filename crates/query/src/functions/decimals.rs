//! Decimal arithmetic as ClickHouse computes it (`operators/decimals.rs`
//! routes `+ - * /` with a Decimal operand here). DataFusion widens the
//! precision at every operation (`Decimal(9, 2) * Decimal(9, 1)` is
//! `Decimal(19, 3)`) and divides in floating point after our `/` rewrite;
//! ClickHouse keeps the widest operand's storage size (Decimal32 → 9,
//! Decimal64 → 18, Decimal128 → 38; an integer operand does not widen),
//! takes the scale `max(s1, s2)` for `+ -`, `s1 + s2` for `*` and the
//! dividend's for `/` (an integer dividend takes the divisor's), divides
//! exactly toward zero, and reports a result beyond the storage type as
//! 407 DECIMAL_OVERFLOW and a zero divisor as 153.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type};
use datafusion::common::{plan_err, DataFusionError, Result};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};
use qh_types::ErrorCode;

use super::udf;
use crate::error::QueryError;

pub(crate) const PLUS: &str = "__qh_decimal_plus";
pub(crate) const MINUS: &str = "__qh_decimal_minus";
pub(crate) const MULTIPLY: &str = "__qh_decimal_multiply";
pub(crate) const DIVIDE: &str = "__qh_decimal_divide";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Plus,
    Minus,
    Multiply,
    Divide,
}

pub(super) fn udfs() -> Vec<ScalarUDF> {
    let sig = || Signature::any(2, Volatility::Immutable);
    vec![
        udf(
            PLUS,
            sig(),
            |t| result_type(Op::Plus, t),
            |a, _| eval(Op::Plus, a),
        ),
        udf(
            MINUS,
            sig(),
            |t| result_type(Op::Minus, t),
            |a, _| eval(Op::Minus, a),
        ),
        udf(
            MULTIPLY,
            sig(),
            |t| result_type(Op::Multiply, t),
            |a, _| eval(Op::Multiply, a),
        ),
        udf(
            DIVIDE,
            sig(),
            |t| result_type(Op::Divide, t),
            |a, _| eval(Op::Divide, a),
        ),
    ]
}

/// Whether `t` is an operand these functions take: a Decimal128 or an
/// integer.
pub(crate) fn is_operand(t: &DataType) -> bool {
    matches!(t, DataType::Decimal128(..)) || t.is_integer()
}

/// The precision of the storage size a Decimal of precision `p` has.
fn storage(p: u8) -> u8 {
    match p {
        0..=9 => 9,
        10..=18 => 18,
        _ => 38,
    }
}

fn error(code: ErrorCode, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(QueryError::other(code, message)))
}

/// (precision, scale) of an operand; an integer has none.
fn decimal(t: &DataType) -> Option<(u8, i8)> {
    match t {
        DataType::Decimal128(p, s) => Some((*p, *s)),
        _ => None,
    }
}

/// Result (precision, scale) and the scales the two operands are read at.
fn shape(op: Op, a: &DataType, b: &DataType) -> Result<(u8, i8)> {
    let (da, db) = (decimal(a), decimal(b));
    let precision = match (da, db) {
        (Some((p, _)), Some((q, _))) => storage(p).max(storage(q)),
        (Some((p, _)), None) | (None, Some((p, _))) => storage(p),
        (None, None) => return plan_err!("decimal arithmetic without a Decimal operand"),
    };
    let (sa, sb) = (da.map_or(0, |d| d.1), db.map_or(0, |d| d.1));
    let scale = match op {
        Op::Plus | Op::Minus => sa.max(sb),
        Op::Multiply => sa + sb,
        Op::Divide if da.is_none() => sb,
        Op::Divide => {
            if sa < sb {
                return Err(error(
                    ErrorCode::ARGUMENT_OUT_OF_BOUND,
                    "Decimal result's scale is less than argument's one".into(),
                ));
            }
            sa
        }
    };
    if scale as i16 > precision as i16 {
        return Err(error(
            ErrorCode::ARGUMENT_OUT_OF_BOUND,
            format!("Scale {scale} is out of bounds (max scale: {precision})"),
        ));
    }
    Ok((precision, scale))
}

fn result_type(op: Op, types: &[DataType]) -> Result<DataType> {
    let [a, b] = types else {
        return plan_err!("decimal arithmetic takes two operands");
    };
    let (p, s) = shape(op, a, b)?;
    Ok(DataType::Decimal128(p, s))
}

/// The raw values of an operand (a Decimal's unscaled integers; an
/// integer's values) and its scale.
fn raw(a: &ArrayRef) -> Result<(Decimal128Array, i8)> {
    Ok(match a.data_type() {
        DataType::Decimal128(_, s) => (a.as_primitive::<Decimal128Type>().clone(), *s),
        _ => {
            let wide = cast(a, &DataType::Decimal128(38, 0))?;
            (wide.as_primitive::<Decimal128Type>().clone(), 0)
        }
    })
}

fn pow10(n: i8) -> i128 {
    10i128.pow(u32::from(n.max(0) as u8))
}

fn eval(op: Op, args: &[ArrayRef]) -> Result<ArrayRef> {
    let [a, b] = args else {
        return plan_err!("decimal arithmetic takes two operands");
    };
    let (precision, scale) = shape(op, a.data_type(), b.data_type())?;
    let int_dividend = op == Op::Divide && decimal(a.data_type()).is_none();
    let ((x, sx), (y, sy)) = (raw(a)?, raw(b)?);
    // The storage type's range, not the precision's digits (as ClickHouse
    // checks: Decimal(9, 0) holds 1000000000).
    let (lo, hi) = match precision {
        9 => (i128::from(i32::MIN), i128::from(i32::MAX)),
        18 => (i128::from(i64::MIN), i128::from(i64::MAX)),
        _ => (i128::MIN, i128::MAX),
    };
    let overflow = || error(ErrorCode::DECIMAL_OVERFLOW, "Decimal math overflow".into());
    let mut out = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        if x.is_null(i) || y.is_null(i) {
            out.push(None);
            continue;
        }
        let (u, v) = (x.value(i), y.value(i));
        let r = match op {
            Op::Plus | Op::Minus => {
                let u = u.checked_mul(pow10(scale - sx)).ok_or_else(overflow)?;
                let v = v.checked_mul(pow10(scale - sy)).ok_or_else(overflow)?;
                if op == Op::Plus {
                    u.checked_add(v)
                } else {
                    u.checked_sub(v)
                }
            }
            Op::Multiply => u.checked_mul(v),
            Op::Divide => {
                if v == 0 {
                    return Err(error(
                        ErrorCode::ILLEGAL_DIVISION,
                        "Division by zero".into(),
                    ));
                }
                // An integer dividend is read at the divisor's scale.
                let u = if int_dividend {
                    u.checked_mul(pow10(sy))
                } else {
                    Some(u)
                };
                u.and_then(|u| u.checked_mul(pow10(sy)))
                    .and_then(|u| u.checked_div(v))
            }
        }
        .filter(|r| (lo..=hi).contains(r))
        .ok_or_else(overflow)?;
        out.push(Some(r));
    }
    let out = Decimal128Array::from(out).with_precision_and_scale(precision, scale)?;
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int32Array;

    fn dec(v: i128, p: u8, s: i8) -> ArrayRef {
        Arc::new(
            Decimal128Array::from(vec![v])
                .with_precision_and_scale(p, s)
                .unwrap(),
        )
    }

    fn show(a: &ArrayRef) -> String {
        let DataType::Decimal128(p, s) = a.data_type() else {
            panic!("{a:?}")
        };
        let v = a.as_primitive::<Decimal128Type>().value(0);
        format!("{v}e-{s} Decimal({p}, {s})")
    }

    fn code(e: DataFusionError) -> i32 {
        match e {
            DataFusionError::External(e) => e
                .downcast_ref::<QueryError>()
                .map_or(0, |q| q.code() as i32),
            _ => 0,
        }
    }

    /// Expected values and types from ClickHouse (chDB 4.4).
    #[test]
    fn results_take_clickhouse_types_and_values() {
        // toDecimal32(1, 2) * toDecimal32(1, 1) = 1 Decimal(9, 3)
        let r = eval(Op::Multiply, &[dec(100, 9, 2), dec(10, 9, 1)]).unwrap();
        assert_eq!(show(&r), "1000e-3 Decimal(9, 3)");
        // toDecimal32(1, 3) * toDecimal64(1, 1) = 1 Decimal(18, 4)
        let r = eval(Op::Multiply, &[dec(1000, 9, 3), dec(10, 18, 1)]).unwrap();
        assert_eq!(show(&r), "10000e-4 Decimal(18, 4)");
        // toDecimal32(1, 2) + toDecimal64(1, 3) = 2 Decimal(18, 3)
        let r = eval(Op::Plus, &[dec(100, 9, 2), dec(1000, 18, 3)]).unwrap();
        assert_eq!(show(&r), "2000e-3 Decimal(18, 3)");
        // toDecimal32(1, 2) / toDecimal32(3, 1) = 0.33 Decimal(9, 2)
        let r = eval(Op::Divide, &[dec(100, 9, 2), dec(30, 9, 1)]).unwrap();
        assert_eq!(show(&r), "33e-2 Decimal(9, 2)");
        // toDecimal32(-7, 0) / toDecimal32(2, 0) = -3
        let r = eval(Op::Divide, &[dec(-7, 9, 0), dec(2, 9, 0)]).unwrap();
        assert_eq!(show(&r), "-3e-0 Decimal(9, 0)");
        // toInt32(5) / toDecimal32(3, 3) = 1.666 Decimal(9, 3)
        let five: ArrayRef = Arc::new(Int32Array::from(vec![5]));
        let r = eval(Op::Divide, &[five, dec(3000, 9, 3)]).unwrap();
        assert_eq!(show(&r), "1666e-3 Decimal(9, 3)");
        // toDecimal32(999999999, 0) + 1 = 1000000000 (Int32 holds it)
        let one: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        let r = eval(Op::Plus, &[dec(999_999_999, 9, 0), Arc::clone(&one)]).unwrap();
        assert_eq!(show(&r), "1000000000e-0 Decimal(9, 0)");
    }

    #[test]
    fn overflow_zero_divisors_and_scales_are_clickhouse_errors() {
        let one: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        let max = dec(i128::from(i32::MAX), 9, 0);
        assert_eq!(code(eval(Op::Plus, &[max, one]).unwrap_err()), 407);
        let zero = dec(0, 9, 0);
        assert_eq!(
            code(eval(Op::Divide, &[dec(1, 9, 0), zero]).unwrap_err()),
            153
        );
        let t = [DataType::Decimal128(9, 1), DataType::Decimal128(9, 2)];
        assert_eq!(code(result_type(Op::Divide, &t).unwrap_err()), 69);
        let t = [DataType::Decimal128(9, 5), DataType::Decimal128(9, 5)];
        assert_eq!(code(result_type(Op::Multiply, &t).unwrap_err()), 69);
    }
}
