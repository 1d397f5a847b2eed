//! `WITH TOTALS`: the row of totals a query's answer carries besides its
//! rows.
//!
//! ClickHouse computes it inside the aggregation: every aggregate over the
//! rows of all groups that pass HAVING (`totals_mode =
//! 'after_having_exclusive'`, its default), the keys shown as their type's
//! default (NULL when Nullable). Here it is a second query built from the
//! first: [`totals_query`] drops ORDER BY, LIMIT and LIMIT BY (they shape
//! rows, never the totals) and turns HAVING into "only rows of groups that
//! pass it" (an IN over the same query's keys); after planning,
//! [`collapse_groups`] replaces the query's aggregation by one without keys
//! under a projection that gives the keys their defaults, so everything
//! above it (expressions over keys, aliases, windows) reads the totals row
//! as it reads a group's, and every aggregate (uniqExact and quantiles
//! included) is computed over the rows rather than merged from shown ones.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{lit, Aggregate, Expr as PlanExpr, LogicalPlan, Projection};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, Query, Select, SelectItem, SetExpr, TableAlias,
    TableFactor, TableWithJoins, Value,
};

use crate::error::{QueryError, Result};
use qh_types::ErrorCode;

/// The query whose plan, after [`collapse_groups`], answers `query`'s
/// totals row.
pub fn totals_query(query: &Query) -> Result<Query> {
    let mut q = query.clone();
    q.order_by = None;
    q.limit_clause = None;
    q.fetch = None;
    let SetExpr::Select(select) = q.body.as_mut() else {
        return Err(unsupported("a UNION or VALUES"));
    };
    // LIMIT BY and WITH TIES (read as QUALIFY) shape rows only.
    select.qualify = None;
    let keys = match &select.group_by {
        GroupByExpr::Expressions(keys, modifiers) if modifiers.is_empty() => keys.clone(),
        GroupByExpr::Expressions(..) => return Err(unsupported("ROLLUP, CUBE or GROUPING SETS")),
        GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
    };
    if keys.is_empty() {
        // One row already: the totals are that row.
        return Ok(q);
    }
    let keys: Vec<Expr> = keys.iter().map(|k| resolve_key(k, select)).collect();
    if let Some(having) = select.having.take() {
        let passing = passing_groups(select, &keys, having);
        select.selection = Some(match select.selection.take() {
            Some(w) => Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(w))),
                op: BinaryOperator::And,
                right: Box::new(passing),
            },
            None => passing,
        });
    }
    Ok(q)
}

/// The plan of a [`totals_query`] made to answer one row: its outermost
/// aggregation loses its keys, and a projection over it gives each key
/// its type's default (NULL for a Nullable key) under the key's name. An
/// aggregation without keys answers a row even over no rows, as
/// ClickHouse's totals do.
pub fn collapse_groups(plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    fn walk(node: LogicalPlan) -> datafusion::error::Result<Transformed<LogicalPlan>> {
        match node {
            LogicalPlan::Aggregate(agg) if !agg.group_expr.is_empty() => {
                let Aggregate {
                    input,
                    group_expr,
                    aggr_expr,
                    schema,
                    ..
                } = agg;
                let input_schema = Arc::clone(input.schema());
                let keyless = LogicalPlan::Aggregate(Aggregate::try_new(input, vec![], aggr_expr)?);
                let mut exprs = Vec::with_capacity(schema.fields().len());
                for (i, (qualifier, field)) in schema.iter().enumerate() {
                    if i < group_expr.len() {
                        let nullable =
                            crate::use_nulls::nullable_key(&group_expr[i], &input_schema);
                        let value = if nullable {
                            ScalarValue::try_from(field.data_type())?
                        } else {
                            crate::functions::default_scalar(field.data_type())?
                        };
                        exprs.push(lit(value).alias_qualified(qualifier.cloned(), field.name()));
                    } else {
                        exprs.push(PlanExpr::Column(Column::new(
                            qualifier.cloned(),
                            field.name(),
                        )));
                    }
                }
                let projection = Projection::try_new(exprs, Arc::new(keyless))?;
                Ok(Transformed::yes(LogicalPlan::Projection(projection)))
            }
            // Subqueries (in FROM, behind an alias) keep their own groups.
            LogicalPlan::SubqueryAlias(_) | LogicalPlan::Aggregate(_) => Ok(Transformed::no(node)),
            other if other.inputs().len() == 1 => {
                let mut changed = false;
                let plan = other.map_children(|child| {
                    let t = walk(child)?;
                    changed |= t.transformed;
                    Ok(t)
                })?;
                if changed {
                    Ok(Transformed::yes(plan.data.recompute_schema()?))
                } else {
                    Ok(plan)
                }
            }
            other => Ok(Transformed::no(other)),
        }
    }
    Ok(walk(plan)?.data)
}

fn unsupported(what: &str) -> QueryError {
    QueryError::other(
        ErrorCode::NOT_IMPLEMENTED,
        format!("WITH TOTALS over {what} is not supported"),
    )
}

/// A GROUP BY item as the expression it groups by: `GROUP BY 2` and
/// `GROUP BY alias` name a SELECT item.
fn resolve_key(key: &Expr, select: &Select) -> Expr {
    let item = |i: usize| match select.projection.get(i) {
        Some(SelectItem::UnnamedExpr(e)) | Some(SelectItem::ExprWithAlias { expr: e, .. }) => {
            Some(e.clone())
        }
        _ => None,
    };
    match key {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(item)
                .unwrap_or_else(|| key.clone()),
            _ => key.clone(),
        },
        Expr::Identifier(id) => select
            .projection
            .iter()
            .find_map(|p| match p {
                SelectItem::ExprWithAlias { expr, alias } if alias.value == id.value => {
                    Some(expr.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| key.clone()),
        _ => key.clone(),
    }
}

/// `keys IN (SELECT keys FROM (<the query's groups that pass HAVING>))`;
/// the grouped query keeps the SELECT list so HAVING may name its aliases.
fn passing_groups(select: &Select, keys: &[Expr], having: Expr) -> Expr {
    const KEY: &str = "__qh_totals_key";
    let key_expr = if keys.len() == 1 {
        keys[0].clone()
    } else {
        call("struct", keys.to_vec())
    };
    let mut groups: Select = select.clone();
    groups.having = Some(having);
    groups.projection.push(SelectItem::ExprWithAlias {
        expr: key_expr.clone(),
        alias: Ident::new(KEY),
    });
    let skeleton = empty_query();
    let with_body = |s: Select| Query {
        body: Box::new(SetExpr::Select(Box::new(s))),
        ..skeleton.clone()
    };
    let SetExpr::Select(plain) = skeleton.body.as_ref() else {
        unreachable!("SELECT 1 is a SELECT")
    };
    let inner = with_body(groups);
    let mut outer_select = Select::clone(plain);
    outer_select.projection = vec![SelectItem::UnnamedExpr(Expr::Identifier(Ident::new(KEY)))];
    outer_select.from = vec![TableWithJoins {
        relation: TableFactor::Derived {
            lateral: false,
            subquery: Box::new(inner),
            alias: Some(TableAlias {
                explicit: true,
                name: Ident::new("__qh_totals_groups"),
                columns: vec![],
                at: None,
            }),
            sample: None,
        },
        joins: vec![],
    }];
    Expr::InSubquery {
        expr: Box::new(key_expr),
        subquery: Box::new(with_body(outer_select)),
        negated: false,
    }
}

/// `SELECT 1`, parsed: a skeleton whose parts are replaced.
fn empty_query() -> Query {
    use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    match Parser::new(&ClickHouseDialect {})
        .try_with_sql("SELECT 1")
        .and_then(|mut p| p.parse_query())
    {
        Ok(q) => *q,
        Err(e) => unreachable!("SELECT 1 parses: {e}"),
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(crate::rewrite::func(name, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Query {
        use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
        use datafusion::sql::sqlparser::parser::Parser;
        *Parser::new(&ClickHouseDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_query()
            .unwrap()
    }

    #[test]
    fn order_and_limit_go() {
        let q =
            parse("SELECT k AS x, count() FROM t WHERE v > 1 GROUP BY x ORDER BY 2 LIMIT 3 BY x");
        let t = totals_query(&q).unwrap().to_string();
        assert_eq!(t, "SELECT k AS x, count() FROM t WHERE v > 1 GROUP BY x");
    }

    #[test]
    fn having_counts_only_the_passing_groups() {
        let q = parse("SELECT a, b, count() AS c FROM t GROUP BY a, b HAVING c > 1");
        let t = totals_query(&q).unwrap().to_string();
        assert!(t.contains("WHERE struct(a, b) IN (SELECT __qh_totals_key FROM (SELECT a, b, count() AS c, struct(a, b) AS __qh_totals_key FROM t GROUP BY a, b HAVING c > 1)"), "{t}");
    }

    #[test]
    fn without_group_by_the_row_is_its_own_total_and_unions_are_refused() {
        let q = parse("SELECT count() FROM t LIMIT 1");
        assert_eq!(
            totals_query(&q).unwrap().to_string(),
            "SELECT count() FROM t"
        );
        let q = parse("SELECT 1 UNION ALL SELECT 2");
        assert!(totals_query(&q).is_err());
    }
}
