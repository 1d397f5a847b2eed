//! `x IN (SELECT …)` outside WHERE. DataFusion plans an IN-subquery only
//! as a filter (decorrelated into a semi join); in a SELECT list, an
//! aggregate's argument, ORDER BY or a join condition it cannot run it.
//! ClickHouse evaluates an uncorrelated IN-subquery once into a set,
//! wherever it is written, so each such subquery is run first here and
//! replaced by the list of its distinct values. NULLs in the set are
//! dropped (`transform_null_in = 0`: `2 IN (SELECT NULL)` is 0, a NULL on
//! the left is NULL). A correlated one is left to DataFusion (an error).

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::execution::SessionState;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{lit, Expr, LogicalPlan};

/// Runs each uncorrelated IN-subquery of `plan` that is not a filter's and
/// puts its values in its place.
pub async fn materialize(plan: LogicalPlan, state: &SessionState) -> Result<LogicalPlan> {
    let mut found: Vec<Arc<LogicalPlan>> = Vec::new();
    plan.apply(|node| {
        if !matches!(node, LogicalPlan::Filter(_)) {
            for e in node.expressions() {
                e.apply(|e| {
                    if let Expr::InSubquery(s) = e {
                        if s.subquery.outer_ref_columns.is_empty()
                            && !found.iter().any(|f| Arc::ptr_eq(f, &s.subquery.subquery))
                        {
                            found.push(Arc::clone(&s.subquery.subquery));
                        }
                    }
                    Ok(TreeNodeRecursion::Continue)
                })?;
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if found.is_empty() {
        return Ok(plan);
    }
    let mut sets: Vec<(Arc<LogicalPlan>, Vec<Expr>)> = Vec::with_capacity(found.len());
    for sub in found {
        // Its own IN-subqueries first.
        let inner = Box::pin(materialize(sub.as_ref().clone(), state)).await?;
        let batches = DataFrame::new(state.clone(), inner).collect().await?;
        let mut seen = HashSet::new();
        let mut values = Vec::new();
        for b in &batches {
            let Some(col) = b.columns().first() else {
                continue;
            };
            for i in 0..col.len() {
                let v = ScalarValue::try_from_array(col, i)?;
                if !v.is_null() && seen.insert(v.clone()) {
                    values.push(lit(v));
                }
            }
        }
        sets.push((sub, values));
    }
    let out = plan.transform_up(|node| {
        if matches!(node, LogicalPlan::Filter(_)) {
            return Ok(Transformed::no(node));
        }
        // Output columns keep their names (a parent refers to them by name).
        let names = NamePreserver::new(&node);
        let mapped = node.map_expressions(|e| {
            let saved = names.save(&e);
            let t = e.transform_up(|e| match e {
                Expr::InSubquery(s) => {
                    match sets
                        .iter()
                        .find(|(p, _)| Arc::ptr_eq(p, &s.subquery.subquery))
                    {
                        // Nothing is in an empty set (a NULL neither).
                        Some((_, values)) if values.is_empty() => {
                            Ok(Transformed::yes(lit(s.negated)))
                        }
                        Some((_, values)) => Ok(Transformed::yes(Expr::InList(InList::new(
                            s.expr,
                            values.clone(),
                            s.negated,
                        )))),
                        None => Ok(Transformed::no(Expr::InSubquery(s))),
                    }
                }
                e => Ok(Transformed::no(e)),
            })?;
            Ok(t.update_data(|e| saved.restore(e)))
        })?;
        if mapped.transformed {
            mapped.map_data(|n| n.recompute_schema())
        } else {
            Ok(mapped)
        }
    })?;
    Ok(out.data)
}
