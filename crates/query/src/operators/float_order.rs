//! ClickHouse sorts NaN beside NULL: after the numbers in either direction
//! (before the NULLs), and before them with NULLS FIRST (after the NULLs).
//! Arrow's order puts NaN above every number, so `ORDER BY x DESC` put NaN
//! first. A float sort key gets `isnan(x)` in front of it, ordered so the
//! NaN rows sit between the numbers and the NULLs (`isnan(NULL)` is NULL).

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::{ScalarFunction, Sort as SortExpr};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Sort};

fn is_float(e: &Expr, schema: &DFSchema) -> bool {
    e.get_type(schema).is_ok_and(|t| t.is_floating())
}

/// `plan` with NaN ordered as ClickHouse orders it, when it is a sort.
pub(super) fn nan_beside_null(
    plan: LogicalPlan,
    schema: &DFSchema,
    registry: &dyn FunctionRegistry,
) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Sort(sort) = plan else {
        return Ok(Transformed::no(plan));
    };
    if !sort.expr.iter().any(|s| is_float(&s.expr, schema)) {
        return Ok(Transformed::no(LogicalPlan::Sort(sort)));
    }
    let isnan = registry.udf("isnan")?;
    let mut expr = Vec::with_capacity(sort.expr.len() * 2);
    for s in sort.expr {
        if is_float(&s.expr, schema) {
            let nan = Expr::ScalarFunction(ScalarFunction::new_udf(
                Arc::clone(&isnan),
                vec![s.expr.clone()],
            ));
            // NULLS LAST: false (numbers), true (NaN), NULL; NULLS FIRST:
            // NULL, true (NaN), false (numbers).
            expr.push(SortExpr::new(nan, !s.nulls_first, s.nulls_first));
        }
        expr.push(s);
    }
    Ok(Transformed::yes(LogicalPlan::Sort(Sort {
        expr,
        input: sort.input,
        fetch: sort.fetch,
    })))
}
