//! Aggregates over an ordered subquery see its order, as in ClickHouse:
//! `SELECT groupArray(k) FROM (SELECT k FROM t ORDER BY k)` lists `k` in
//! order, and users rely on it (`groupArray`, `any`, `anyLast`, `argMax`
//! of ties ...). DataFusion's EnforceSorting drops a sort that no operator
//! above requires, and an aggregate without `ORDER BY` requires none, so
//! the rows came in their parts' order.
//!
//! [`SubqueryOrder`] runs before EnforceSorting, while the subquery's sort
//! is still in the plan: every order-sensitive aggregate function of an
//! aggregation whose input is ordered gets that ordering as its own `ORDER
//! BY` (DataFusion's ordered accumulators then keep it, across partial and
//! final stages); the final stage above a rewritten partial one takes the
//! same expressions, so the state it merges matches. An aggregate with an
//! `ORDER BY` of its own, or over unordered input, is left alone.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result as DFResult;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::udaf::AggregateFunctionExpr;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

#[derive(Debug, Default)]
pub struct SubqueryOrder;

impl PhysicalOptimizerRule for SubqueryOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(agg) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            let rewritten = match agg.mode() {
                AggregateMode::Partial
                | AggregateMode::Single
                | AggregateMode::SinglePartitioned => ordered_first_stage(agg)?,
                AggregateMode::Final | AggregateMode::FinalPartitioned => final_stage(agg)?,
                _ => None,
            };
            Ok(match rewritten {
                Some(new) => Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "subquery_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether the function's answer depends on the order of its rows.
fn order_sensitive(e: &AggregateFunctionExpr) -> bool {
    e.order_bys().is_empty()
        && !e.fun().inner().order_sensitivity().is_insensitive()
        && !e.is_distinct()
}

/// A first stage whose input is ordered, its order-sensitive functions
/// given that order.
fn ordered_first_stage(agg: &AggregateExec) -> DFResult<Option<AggregateExec>> {
    if !agg.aggr_expr().iter().any(|e| order_sensitive(e)) {
        return Ok(None);
    }
    let input = match agg.input().output_ordering() {
        Some(_) => Arc::clone(agg.input()),
        None => match keep_order_columns(agg.input())? {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    let Some(ordering) = input.output_ordering() else {
        return Ok(None);
    };
    let ordering: Vec<_> = ordering.iter().cloned().collect();
    let input_schema = input.schema();
    let exprs = agg
        .aggr_expr()
        .iter()
        .map(|e| {
            if !order_sensitive(e) {
                return Ok(Arc::clone(e));
            }
            let mut b = AggregateExprBuilder::new(Arc::new(e.fun().clone()), e.expressions())
                .order_by(ordering.clone())
                .schema(Arc::clone(&input_schema))
                .alias(e.name().to_string())
                .with_ignore_nulls(e.ignore_nulls())
                .with_reversed(e.is_reversed());
            if let Some(h) = e.human_display() {
                b = b.human_display(h);
            }
            b.build().map(Arc::new)
        })
        .collect::<DFResult<Vec<_>>>()?;
    AggregateExec::try_new(
        *agg.mode(),
        agg.group_expr().clone(),
        exprs,
        agg.filter_expr().to_vec(),
        input,
        input_schema,
    )
    .map(Some)
}

/// `SELECT groupArray(toString(k)) FROM (SELECT k ... ORDER BY k)`: the
/// projection under the aggregation computes `toString(k)` and drops `k`,
/// so its output has no ordering DataFusion can name although its rows are
/// in order. The same projection passing the ordering columns on as well
/// (after its own, so the aggregation's column indexes stay).
fn keep_order_columns(plan: &Arc<dyn ExecutionPlan>) -> DFResult<Option<Arc<dyn ExecutionPlan>>> {
    let Some(projection) = plan.downcast_ref::<ProjectionExec>() else {
        return Ok(None);
    };
    let below = projection.input();
    let Some(ordering) = below.output_ordering() else {
        return Ok(None);
    };
    let mut exprs: Vec<ProjectionExpr> = projection.expr().to_vec();
    let schema = below.schema();
    for (i, sort) in ordering.iter().enumerate() {
        let Some(column) = sort.expr.downcast_ref::<Column>() else {
            return Ok(None);
        };
        exprs.push(ProjectionExpr {
            expr: Arc::new(Column::new(
                schema.field(column.index()).name(),
                column.index(),
            )),
            alias: format!("__subquery_order_{i}"),
        });
    }
    Ok(Some(Arc::new(ProjectionExec::try_new(
        exprs,
        Arc::clone(below),
    )?)))
}

/// A final stage over a partial one rewritten above: the same expressions.
fn final_stage(agg: &AggregateExec) -> DFResult<Option<AggregateExec>> {
    let mut below = Arc::clone(agg.input());
    // Through the exchanges the planner puts between the stages.
    while below.downcast_ref::<AggregateExec>().is_none() {
        match below.children().as_slice() {
            [only] => below = Arc::clone(only),
            _ => return Ok(None),
        }
    }
    let Some(partial) = below.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    let differs = partial.mode() == &AggregateMode::Partial
        && partial.aggr_expr().len() == agg.aggr_expr().len()
        && partial
            .aggr_expr()
            .iter()
            .zip(agg.aggr_expr())
            .any(|(p, f)| p.order_bys().len() != f.order_bys().len());
    if !differs {
        return Ok(None);
    }
    AggregateExec::try_new(
        *agg.mode(),
        agg.group_expr().clone(),
        partial.aggr_expr().to_vec(),
        agg.filter_expr().to_vec(),
        Arc::clone(agg.input()),
        partial.input_schema(),
    )
    .map(Some)
}
