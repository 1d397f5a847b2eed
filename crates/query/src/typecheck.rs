//! ClickHouse's type rules where DataFusion's coercion would quietly answer
//! something else: checked on the planned query before it runs, so the
//! user gets ClickHouse's error instead of a different result.
//!
//! - A `Date` compared with a number is ILLEGAL_TYPE_OF_ARGUMENT (43) in
//!   ClickHouse (`today() < 2018-11-14` is a classic typo: the right side
//!   is the integer 1993); DataFusion would cast and compare. A `DateTime`
//!   compared with a number is allowed in both (seconds).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use qh_types::ErrorCode;

use crate::error::{QueryError, Result};
use crate::type_names::type_name;

/// Checks every expression of `plan` (subqueries included).
pub fn check_plan(plan: &LogicalPlan) -> Result<()> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        let inputs = node.inputs();
        let [input] = inputs.as_slice() else {
            return Ok(TreeNodeRecursion::Continue);
        };
        let schema = input.schema();
        for e in node.expressions() {
            e.apply(|x| {
                if let Expr::BinaryExpr(BinaryExpr { left, op, right }) = x {
                    if let (Some(name), Ok(l), Ok(r)) = (
                        function_name(*op),
                        left.get_type(schema),
                        right.get_type(schema),
                    ) {
                        if is_date(&l) && r.is_numeric() || l.is_numeric() && is_date(&r) {
                            found = Some(format!(
                                "Illegal types of arguments ({}, {}) of function {name}",
                                type_name(&l),
                                type_name(&r)
                            ));
                            return Ok(TreeNodeRecursion::Stop);
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
            if found.is_some() {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match found {
        Some(message) => Err(QueryError::other(
            ErrorCode::ILLEGAL_TYPE_OF_ARGUMENT,
            message,
        )),
        None => Ok(()),
    }
}

fn is_date(t: &DataType) -> bool {
    matches!(t, DataType::Date32 | DataType::Date64)
}

/// ClickHouse's name of a comparison.
fn function_name(op: Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => "equals",
        Operator::NotEq => "notEquals",
        Operator::Lt => "less",
        Operator::LtEq => "lessOrEquals",
        Operator::Gt => "greater",
        Operator::GtEq => "greaterOrEquals",
        _ => return None,
    })
}
