//! The key columns of outer joins with `USING`: ClickHouse's `id` in
//! `a FULL JOIN b USING (id)` is one column holding the key of whichever side
//! the row has. DataFusion resolves the unqualified name to the left's column
//! (NULL or, with `join_use_nulls = 0`, 0 on rows only the right side has) and
//! expands `SELECT *` to the side whose qualifier sorts first (the right's
//! NULL key in `t LEFT JOIN (...) AS s USING (id)`).
//!
//! Invariant: above each LEFT/RIGHT/FULL `USING` join both sides' key columns
//! hold the merged key (the left's in a LEFT join, the right's in a RIGHT
//! join, the left's or else the right's in a FULL join), each in its own
//! column's type, before any default filling. A qualified `b.id` reads the
//! merged key too, as ClickHouse's pre-analyzer interpreter answered (its
//! analyzer gives that side's own value; see docs/sql-differences.md).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result};
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::logical_expr::{
    try_cast, Expr, ExprSchemable, JoinConstraint, JoinType, LogicalPlan, Projection,
};

/// Rewrites `plan` so that every outer `USING` join's key columns carry the
/// merged key.
pub fn merge_using_keys(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| {
        let LogicalPlan::Join(join) = &node else {
            return Ok(Transformed::no(node));
        };
        if join.join_constraint != JoinConstraint::Using
            || !matches!(
                join.join_type,
                JoinType::Left | JoinType::Right | JoinType::Full
            )
        {
            return Ok(Transformed::no(node));
        }
        // Each key column of either side → the key columns it merges
        // (the left's, the right's, or both coalesced).
        let mut merged: HashMap<Column, Vec<Expr>> = HashMap::new();
        for (l, r) in &join.on {
            let (Expr::Column(lc), Expr::Column(rc)) = (l, r) else {
                continue;
            };
            let key = match join.join_type {
                JoinType::Left => vec![l.clone()],
                JoinType::Right => vec![r.clone()],
                _ => vec![l.clone(), r.clone()],
            };
            merged.insert(lc.clone(), key.clone());
            merged.insert(rc.clone(), key);
        }
        if merged.is_empty() {
            return Ok(Transformed::no(node));
        }
        let schema = Arc::clone(node.schema());
        let mut exprs = Vec::with_capacity(schema.fields().len());
        for (qualifier, field) in schema.iter() {
            let column = Column::new(qualifier.cloned(), field.name());
            let Some(key) = merged.get(&column) else {
                exprs.push(Expr::Column(column));
                continue;
            };
            // A FULL join's two key types may differ (coalesce wants one);
            // a value outside this column's type becomes NULL, not an error.
            let mut keys = key
                .iter()
                .map(|k| in_type(k, field.data_type(), &schema))
                .collect::<Result<Vec<_>>>()?;
            let key = match keys.len() {
                1 => keys.remove(0),
                _ => coalesce(keys),
            };
            exprs.push(key.alias_qualified(qualifier.cloned(), field.name()));
        }
        let projection = Projection::try_new(exprs, Arc::new(node))?;
        Ok(Transformed::yes(LogicalPlan::Projection(projection)))
    })
    .map(|t| t.data)
}

fn in_type(e: &Expr, to: &DataType, schema: &DFSchema) -> Result<Expr> {
    Ok(if e.get_type(schema)? == *to {
        e.clone()
    } else {
        try_cast(e.clone(), to.clone())
    })
}
