//! `min` and `max` of floats skip NaN, as ClickHouse's do (`max` over
//! `[1, nan, 3]` is 3; over NaNs only it is nan). DataFusion's min/max
//! order floats by IEEE totalOrder, where NaN is above every number (and
//! -NaN below): `min` already skips a positive NaN, `max` does not. So the
//! argument goes through [`NAN_HIGH`] for `min` (every NaN made positive)
//! and [`NAN_LOW`] for `max` (every NaN made negative): a NaN is then the
//! answer only when nothing else is there, and it prints as `nan` either way.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::{AggregateFunction, ScalarFunction};
use datafusion::logical_expr::{Expr, ExprSchemable};

/// Makes every NaN positive (the largest value in totalOrder).
pub const NAN_HIGH: &str = "__qh_nan_high";
/// Makes every NaN negative (the smallest value in totalOrder).
pub const NAN_LOW: &str = "__qh_nan_low";

/// `min(x)` / `max(x)` of a float `x` with the argument wrapped.
pub(super) fn skip_nan(
    e: Expr,
    schema: &DFSchema,
    registry: &dyn FunctionRegistry,
) -> Result<Transformed<Expr>> {
    let Expr::AggregateFunction(AggregateFunction { func, mut params }) = e else {
        return Ok(Transformed::no(e));
    };
    let wrapper = match func.name() {
        "min" => NAN_HIGH,
        "max" => NAN_LOW,
        _ => "",
    };
    let float = params.args.len() == 1
        && matches!(
            params.args[0].get_type(schema),
            Ok(DataType::Float32 | DataType::Float64)
        );
    if wrapper.is_empty() || !float {
        return Ok(Transformed::no(Expr::AggregateFunction(
            AggregateFunction { func, params },
        )));
    }
    let arg = params.args.remove(0);
    let udf = registry.udf(wrapper)?;
    params.args = vec![Expr::ScalarFunction(ScalarFunction::new_udf(
        udf,
        vec![arg],
    ))];
    Ok(Transformed::yes(Expr::AggregateFunction(
        AggregateFunction { func, params },
    )))
}

/// The kernel of [`NAN_HIGH`] (`negative = false`) and [`NAN_LOW`].
pub fn set_nan_sign(a: &ArrayRef, negative: bool) -> Result<ArrayRef> {
    Ok(match a.data_type() {
        DataType::Float64 => {
            let nan = if negative { -f64::NAN } else { f64::NAN };
            let a = a.as_primitive::<Float64Type>();
            Arc::new(a.unary::<_, Float64Type>(|x| if x.is_nan() { nan } else { x }))
        }
        DataType::Float32 => {
            let nan = if negative { -f32::NAN } else { f32::NAN };
            let a = a.as_primitive::<Float32Type>();
            Arc::new(a.unary::<_, Float32Type>(|x| if x.is_nan() { nan } else { x }))
        }
        _ => Arc::clone(a),
    })
}
