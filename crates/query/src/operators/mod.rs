//! ClickHouse's operator semantics over DataFusion's, as one rewrite of a
//! planned query (before DataFusion's type coercion, so operand types and
//! literals are still as written):
//! - [`integers`]: integer `+ - * %`, unary minus and `intDiv` take
//!   ClickHouse's result types (`UInt8 + UInt8` is `UInt16`, `a - b` of
//!   unsigned columns is signed) instead of wrapping in the operands' type;
//!   integer literals among `coalesce` / `nullIf` arguments and CASE
//!   branches take the type ClickHouse's least supertype gives them;
//! - [`decimals`]: `+ - * /` with a Decimal operand take ClickHouse's
//!   result types, divide exactly and report overflow; `sum` of a Decimal
//!   is `Decimal(38, S)`;
//! - [`float_compare`]: comparisons with a float compare by value;
//! - [`float_min_max`]: `min` / `max` of floats skip NaN;
//! - [`float_order`]: NaN sorts beside NULL.
//!
//! The rewrite runs once per query: it is not idempotent (widened operands
//! would widen again), so nothing re-applies it to a rewritten plan.

mod decimals;
mod float_compare;
mod float_min_max;
mod float_order;
mod integers;

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan};

pub(crate) use float_compare::compare;
pub(crate) use float_min_max::{set_nan_sign, NAN_HIGH, NAN_LOW};
pub(crate) use integers::smallest_literal;

/// Applies ClickHouse's operator rules to every expression of `plan`
/// (subqueries included), keeping each expression's output name.
pub fn clickhouse_operators(
    plan: LogicalPlan,
    registry: &dyn FunctionRegistry,
) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        // Joins and unions are left alone: their expressions name columns of
        // several inputs, and the rules need one schema to type operands.
        let schema = match node.inputs().as_slice() {
            [input] => Arc::clone(input.schema()),
            _ => return Ok(Transformed::no(node)),
        };
        let names = NamePreserver::new(&node);
        let projection = matches!(node, LogicalPlan::Projection(_));
        let node = node.map_expressions(|e| {
            let saved = names.save(&e);
            // A selected integer literal has ClickHouse's literal type
            // (`SELECT 1` is UInt8); inside expressions the rules below
            // type literals where it matters.
            let e = match e {
                e if !projection => e,
                Expr::Alias(mut a) => match integers::smallest_literal(&a.expr) {
                    Some(l) => {
                        *a.expr = l;
                        Expr::Alias(a)
                    }
                    None => Expr::Alias(a),
                },
                e => integers::smallest_literal(&e).unwrap_or(e),
            };
            // A lambda's parameters are typed when it is planned: a body
            // whose types changed under them would no longer match, so
            // higher-order functions keep DataFusion's operators.
            let rewritten = e.transform_down_up(
                |x| {
                    Ok(if matches!(x, Expr::HigherOrderFunction(_)) {
                        Transformed::new(x, false, TreeNodeRecursion::Jump)
                    } else {
                        Transformed::no(x)
                    })
                },
                |x| {
                    decimals::clickhouse_decimals(x, &schema, registry)?
                        .transform_data(|x| decimals::wide_sum(x, &schema))?
                        .transform_data(|x| integers::clickhouse_types(x, &schema, registry))?
                        .transform_data(integers::passed_literals)?
                        .transform_data(|x| integers::branch_literals(x, &schema))?
                        .transform_data(|x| float_compare::by_value(x, &schema, registry))?
                        .transform_data(|x| float_min_max::skip_nan(x, &schema, registry))
                },
            )?;
            Ok(rewritten.update_data(|e| saved.restore(e)))
        })?;
        let node = node.transform_data(|n| float_order::nan_beside_null(n, &schema, registry))?;
        // Every node, not only rewritten ones: a type changed below (a
        // key's `%` now UInt8) must reach the schemas of the nodes above.
        let transformed = node.transformed;
        let mut node = node.map_data(|p| p.recompute_schema())?;
        node.transformed = transformed;
        Ok(node)
    })
    .map(|t| t.data)
}
