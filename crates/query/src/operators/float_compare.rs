//! Comparisons of floating-point values by value, as ClickHouse (and C)
//! compare them. Arrow's comparison kernels order floats by IEEE 754
//! totalOrder: NaN equals NaN and is greater than every number, and -0.0 is
//! less than 0.0 — so `nan = nan`, `1 < nan` and `-0. < 0.` would be true
//! here and false in ClickHouse. Every comparison with a float operand (and
//! a numeric other side) is planned as `__qh_float_<op>`, whose kernel uses
//! Rust's `f64` operators: any comparison with NaN is false except `!=`, and
//! -0.0 = 0.0.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, Operator, ScalarUDF};

/// The UDF name for a comparison operator.
fn udf_name(op: Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => "__qh_float_eq",
        Operator::NotEq => "__qh_float_ne",
        Operator::Lt => "__qh_float_lt",
        Operator::LtEq => "__qh_float_le",
        Operator::Gt => "__qh_float_gt",
        Operator::GtEq => "__qh_float_ge",
        _ => return None,
    })
}

pub(super) fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

fn is_number(t: &DataType) -> bool {
    t.is_numeric() || t == &DataType::Null
}

/// `e` as a by-value comparison UDF from `registry` when it compares a
/// float with a number.
pub(super) fn by_value(
    e: Expr,
    schema: &DFSchema,
    registry: &dyn FunctionRegistry,
) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else {
        return Ok(Transformed::no(e));
    };
    let Some(name) = udf_name(*op) else {
        return Ok(Transformed::no(e));
    };
    let (Ok(l), Ok(r)) = (left.get_type(schema), right.get_type(schema)) else {
        return Ok(Transformed::no(e));
    };
    if !(is_float(&l) || is_float(&r)) || !is_number(&l) || !is_number(&r) {
        return Ok(Transformed::no(e));
    }
    let udf: Arc<ScalarUDF> = registry.udf(name)?;
    let args = vec![left.as_ref().clone(), right.as_ref().clone()];
    Ok(Transformed::yes(Expr::ScalarFunction(
        ScalarFunction::new_udf(udf, args),
    )))
}

/// The kernel behind `__qh_float_<op>`: both sides as f64, compared by value.
pub(crate) fn compare(args: &[ArrayRef], op: fn(f64, f64) -> bool) -> Result<ArrayRef> {
    let a = cast(&args[0], &DataType::Float64)?;
    let b = cast(&args[1], &DataType::Float64)?;
    let out = BooleanArray::from_binary(
        a.as_primitive::<Float64Type>(),
        b.as_primitive::<Float64Type>(),
        op,
    );
    Ok(Arc::new(out))
}
