//! `x IN (SELECT …)` outside WHERE. DataFusion plans an IN-subquery only
//! as a filter (decorrelated into a semi join); in a SELECT list, an
//! aggregate's argument, ORDER BY or a join condition it cannot run it.
//! ClickHouse evaluates an uncorrelated IN-subquery once into a set,
//! wherever it is written, so each such subquery is run first here and
//! replaced by the list of its distinct values. NULLs in the set are
//! dropped (`transform_null_in = 0`: `2 IN (SELECT NULL)` is 0, a NULL on
//! the left is NULL). A correlated one is left to DataFusion (an error).
//! A tuple's set (`(a, b) IN (SELECT …)`, see `rewrite/tuples.rs`) is
//! built here wherever it is written, filters included, since DataFusion's
//! semi join would compare tuples holding NULLs by SQL's rules.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{not_impl_err, plan_err, DFSchema, Result, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::execution::SessionState;
use datafusion::logical_expr::expr::{InList, InSubquery, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{lit, Expr, ExprSchemable, LogicalPlan, ScalarUDF};

use crate::tuple_sets::TUPLE_IN;

/// Runs each uncorrelated IN-subquery of `plan` that is not a filter's (a
/// tuple's wherever it is) and puts its values in its place.
pub async fn materialize(plan: LogicalPlan, state: &SessionState) -> Result<LogicalPlan> {
    let mut found: Vec<Arc<LogicalPlan>> = Vec::new();
    let mut correlated_tuple = false;
    plan.apply(|node| {
        let in_filter = matches!(node, LogicalPlan::Filter(_));
        for e in node.expressions() {
            e.apply(|e| {
                if let Expr::InSubquery(s) = e {
                    let tuple = tuple_args(s).is_some();
                    if !s.subquery.outer_ref_columns.is_empty() {
                        correlated_tuple |= tuple;
                    } else if (tuple || !in_filter)
                        && !found.iter().any(|f| Arc::ptr_eq(f, &s.subquery.subquery))
                    {
                        found.push(Arc::clone(&s.subquery.subquery));
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if correlated_tuple {
        return not_impl_err!("a tuple IN a correlated subquery");
    }
    if found.is_empty() {
        return Ok(plan);
    }
    let mut sets: Vec<(Arc<LogicalPlan>, Vec<RecordBatch>)> = Vec::with_capacity(found.len());
    for sub in found {
        // Its own IN-subqueries first.
        let inner = Box::pin(materialize(sub.as_ref().clone(), state)).await?;
        let batches = DataFrame::new(state.clone(), inner).collect().await?;
        sets.push((sub, batches));
    }
    let tuple_in = state.scalar_functions().get(TUPLE_IN).cloned();
    let out = plan.transform_up(|node| {
        let in_filter = matches!(node, LogicalPlan::Filter(_));
        let schema = input_schema(&node)?;
        // Output columns keep their names (a parent refers to them by name).
        let names = NamePreserver::new(&node);
        let mapped = node.map_expressions(|e| {
            let saved = names.save(&e);
            let t = e.transform_up(|e| match e {
                Expr::InSubquery(s) if !in_filter || tuple_args(&s).is_some() => {
                    let Some((_, batches)) = sets
                        .iter()
                        .find(|(p, _)| Arc::ptr_eq(p, &s.subquery.subquery))
                    else {
                        return Ok(Transformed::no(Expr::InSubquery(s)));
                    };
                    if let Some(args) = tuple_args(&s) {
                        let Some(udf) = &tuple_in else {
                            return plan_err!("{TUPLE_IN} is not registered");
                        };
                        return Ok(Transformed::yes(tuple_membership(
                            udf, args, batches, &schema, s.negated,
                        )?));
                    }
                    let values = scalar_values(batches)?;
                    // Nothing is in an empty set (a NULL neither).
                    if values.is_empty() {
                        return Ok(Transformed::yes(lit(s.negated)));
                    }
                    Ok(Transformed::yes(Expr::InList(InList::new(
                        s.expr, values, s.negated,
                    ))))
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

/// The distinct non-NULL values of a one-column result.
fn scalar_values(batches: &[RecordBatch]) -> Result<Vec<Expr>> {
    let mut seen = HashSet::new();
    let mut values = Vec::new();
    for b in batches {
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
    Ok(values)
}

/// The elements of `struct(a, b, …) IN (SELECT struct(…) …)`, the form
/// `rewrite/tuples.rs` gives a tuple IN.
fn tuple_args(s: &InSubquery) -> Option<&[Expr]> {
    let Expr::ScalarFunction(f) = s.expr.as_ref() else {
        return None;
    };
    let fields = s.subquery.subquery.schema().fields();
    match (f.func.name(), fields.first().map(|f| f.data_type())) {
        ("struct", Some(DataType::Struct(inner))) if fields.len() == 1 => {
            (inner.len() == f.args.len()).then_some(f.args.as_slice())
        }
        _ => None,
    }
}

/// `__qh_tuple_in(set, negated, a, b, …)` over the subquery's rows.
fn tuple_membership(
    udf: &Arc<ScalarUDF>,
    args: &[Expr],
    batches: &[RecordBatch],
    schema: &DFSchema,
    negated: bool,
) -> Result<Expr> {
    let types = args
        .iter()
        .map(|a| a.get_type(schema))
        .collect::<Result<Vec<_>>>()?;
    let mut set = Vec::new();
    for b in batches {
        let Some(rows) = b.columns().first().and_then(|c| c.as_struct_opt()) else {
            return plan_err!("a tuple set's rows are not tuples");
        };
        set.extend(crate::tuple_sets::encode_set(rows, &types)?);
    }
    if crate::tuple_sets::is_empty(&set) {
        return Ok(lit(negated));
    }
    let mut call = vec![lit(ScalarValue::Binary(Some(set))), lit(negated)];
    call.extend(args.iter().cloned());
    Ok(Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::clone(udf),
        call,
    )))
}

/// What a node's expressions are evaluated against: its inputs' columns.
fn input_schema(node: &LogicalPlan) -> Result<DFSchema> {
    let inputs = node.inputs();
    let mut it = inputs.iter();
    let Some(first) = it.next() else {
        return Ok(DFSchema::empty());
    };
    let mut schema = first.schema().as_ref().clone();
    for i in it {
        schema = schema.join(i.schema())?;
    }
    Ok(schema)
}
