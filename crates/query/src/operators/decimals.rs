//! `+ - * /` with a Decimal operand (and a Decimal or integer beside it)
//! computed by ClickHouse's rules (`functions/decimals.rs`): its result
//! types, exact division toward zero, overflow errors. `/` arrives as
//! `__qh_dividend(a) / b` (the SQL rewrite makes every division floating
//! point, which is ClickHouse's rule for everything but Decimals).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{cast, BinaryExpr, Expr, ExprSchemable, Operator};

use crate::functions::decimals::{is_operand, DIVIDE, MINUS, MULTIPLY, PLUS};
use crate::functions::DIVIDEND;

/// `e` as a decimal operation when it is `+ - * /` over a Decimal and a
/// Decimal or integer.
pub(super) fn clickhouse_decimals(
    e: Expr,
    schema: &DFSchema,
    registry: &dyn FunctionRegistry,
) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return Ok(Transformed::no(e));
    };
    let name = match op {
        Operator::Plus => PLUS,
        Operator::Minus => MINUS,
        Operator::Multiply => MULTIPLY,
        Operator::Divide => DIVIDE,
        _ => {
            return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                left,
                op,
                right,
            })))
        }
    };
    // The dividend as written, inside the SQL rewrite's conversion.
    let dividend = match (op, left.as_ref()) {
        (Operator::Divide, Expr::ScalarFunction(f))
            if f.name() == DIVIDEND && f.args.len() == 1 =>
        {
            Some(f.args[0].clone())
        }
        _ => None,
    };
    let a = match (&dividend, op) {
        (Some(d), _) => d,
        (None, Operator::Divide) => {
            return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                left,
                op,
                right,
            })))
        }
        (None, _) => left.as_ref(),
    };
    let types = (a.get_type(schema), right.get_type(schema));
    let decimal = |t: &DataType| matches!(t, DataType::Decimal128(..));
    match types {
        (Ok(x), Ok(y)) if is_operand(&x) && is_operand(&y) && (decimal(&x) || decimal(&y)) => {}
        _ => {
            return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                left,
                op,
                right,
            })))
        }
    }
    let a = dividend.unwrap_or(*left);
    let udf = registry.udf(name)?;
    Ok(Transformed::yes(Expr::ScalarFunction(
        ScalarFunction::new_udf(Arc::clone(&udf), vec![a, *right]),
    )))
}

/// `sum` of a Decimal is `Decimal(38, S)` in ClickHouse; DataFusion's adds
/// ten digits to the argument's precision (`Decimal(19, 2)` for a
/// `Decimal(9, 2)`). The argument is widened first, so DataFusion's sum
/// lands on 38.
pub(super) fn wide_sum(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::AggregateFunction(mut f) = e else {
        return Ok(Transformed::no(e));
    };
    if f.func.name() != "sum" || f.params.args.len() != 1 {
        return Ok(Transformed::no(Expr::AggregateFunction(f)));
    }
    match f.params.args[0].get_type(schema) {
        Ok(DataType::Decimal128(p, s)) if p < 38 => {
            let x = f.params.args.remove(0);
            f.params.args.push(cast(x, DataType::Decimal128(38, s)));
            Ok(Transformed::yes(Expr::AggregateFunction(f)))
        }
        _ => Ok(Transformed::no(Expr::AggregateFunction(f))),
    }
}
