//! Defaults where DataFusion produces NULLs and ClickHouse does not:
//! `join_use_nulls = 0` (its default) — in an outer JOIN, a row without a
//! match gets the default value of each column from the other side (0, '',
//! 1970-01-01) unless that column is Nullable in its table — and
//! `group_by_use_nulls = 0` for ROLLUP/CUBE rows, and
//! `aggregate_functions_null_for_empty = 0` — `sum`, `min`, `max`, `any`,
//! `anyLast`, `argMin`/`argMax` over no rows (or no rows passing an `-If`)
//! give their type's default and `avg` gives nan, unless the argument is
//! Nullable. Each such join or aggregate in the plan gets a projection on
//! top that fills the defaults.

use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DFSchemaRef, ExprSchema, Result, ScalarValue};
use datafusion::logical_expr::{
    lit, Distinct, Expr, ExprSchemable, JoinType, LogicalPlan, Projection,
};

/// Rewrites `plan` so that outer joins fill defaults instead of NULLs.
pub fn fill_join_defaults(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| {
        let LogicalPlan::Join(join) = &node else {
            return Ok(Transformed::no(node));
        };
        let (left_fills, right_fills) = match join.join_type {
            JoinType::Left => (false, true),
            JoinType::Right => (true, false),
            JoinType::Full => (true, true),
            _ => return Ok(Transformed::no(node)),
        };
        let (left, right) = (
            clickhouse_nullable(&join.left, Sense::Fill),
            clickhouse_nullable(&join.right, Sense::Fill),
        );
        let left_len = left.len();
        // Output field i fills when its side does and its input was not Nullable.
        let fills: Vec<bool> = (0..node.schema().fields().len())
            .map(|i| {
                if i < left_len {
                    left_fills && !left[i]
                } else {
                    right_fills && !right.get(i - left_len).copied().unwrap_or(true)
                }
            })
            .collect();
        project_defaults(node, &fills)
    })
    .map(|t| t.data)
}

/// ClickHouse's `group_by_use_nulls = 0` (its default): the rows ROLLUP, CUBE
/// and GROUPING SETS add show a key they rolled up as its type's default (0,
/// '') rather than NULL — unless the key is Nullable itself.
pub fn fill_grouping_defaults(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| {
        let LogicalPlan::Aggregate(agg) = &node else {
            return Ok(Transformed::no(node));
        };
        let [Expr::GroupingSet(set)] = agg.group_expr.as_slice() else {
            return Ok(Transformed::no(node));
        };
        // The keys come first in the output, in `distinct_expr` order.
        let input = agg.input.schema();
        let keys: Vec<bool> = set
            .distinct_expr()
            .into_iter()
            .map(|k| !nullable_key(k, input))
            .collect();
        let fills: Vec<bool> = (0..node.schema().fields().len())
            .map(|i| keys.get(i).copied().unwrap_or(false))
            .collect();
        project_defaults(node, &fills)
    })
    .map(|t| t.data)
}

/// ClickHouse's `aggregate_functions_null_for_empty = 0` (its default): an
/// aggregate of a non-Nullable argument over no rows is its type's default
/// (`avg`: nan), where DataFusion gives NULL.
pub fn fill_aggregate_defaults(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| {
        let LogicalPlan::Aggregate(agg) = &node else {
            return Ok(Transformed::no(node));
        };
        let input = agg.input.schema();
        let out = node.schema();
        // The aggregates are the last fields of the output.
        let first = out.fields().len() - agg.aggr_expr.len();
        let mut fills: Vec<Option<ScalarValue>> = vec![None; out.fields().len()];
        for (i, e) in agg.aggr_expr.iter().enumerate() {
            let field = out.field(first + i);
            fills[first + i] = empty_default(e, input, field.data_type());
        }
        project_values(node, &fills)
    })
    .map(|t| t.data)
}

/// What ClickHouse answers for the aggregate `e` over no rows where
/// DataFusion answers NULL; `None` when they agree (or we are not sure).
fn empty_default(
    e: &Expr,
    input: &DFSchema,
    ty: &datafusion::arrow::datatypes::DataType,
) -> Option<ScalarValue> {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        e => e,
    };
    let Expr::AggregateFunction(f) = e else {
        return None;
    };
    if f.params.args.iter().any(|a| nullable_arg(a, input)) {
        return None;
    }
    match f.func.name() {
        "sum" | "min" | "max" | "first_value" | "last_value" => {
            crate::functions::default_scalar(ty).ok()
        }
        "avg" => match ty {
            datafusion::arrow::datatypes::DataType::Float64 => {
                Some(ScalarValue::Float64(Some(f64::NAN)))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Whether an aggregate's argument is Nullable in ClickHouse's sense: it
/// reads a Nullable column or holds a NULL.
fn nullable_arg(arg: &Expr, input: &DFSchema) -> bool {
    let mut null_literal = false;
    let _ = arg.apply(|e| {
        if let Expr::Literal(v, _) = e {
            null_literal |= v.is_null();
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    null_literal || nullable_key(arg, input)
}

/// What an unsure answer of [`clickhouse_nullable`] / [`expr_nullable`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sense {
    /// Nullable: filling a default where ClickHouse has a NULL would be a
    /// wrong answer; keeping DataFusion's NULL is at worst a NULL shown.
    Fill,
    /// Not Nullable unless something is (`toTypeName`): a type is named
    /// Nullable only where a NULL can come from.
    TypeName,
    /// As `TypeName`, under `join_use_nulls = 1`: the side an outer join
    /// pads is Nullable.
    TypeNameJoinNulls,
}

impl Sense {
    fn names_types(self) -> bool {
        matches!(self, Sense::TypeName | Sense::TypeNameJoinNulls)
    }
}

/// Which output fields of `plan` are Nullable in ClickHouse's sense.
/// DataFusion calls the result of almost every function nullable, so a
/// subquery's `toDate(t) AS d` would read NULL on an outer join's unmatched
/// side where ClickHouse reads 1970-01-01: ClickHouse's result is Nullable
/// only when an argument is, or the function makes NULLs. Plans this does
/// not look into keep DataFusion's answer (Nullable: no default is filled).
pub(crate) fn clickhouse_nullable(plan: &LogicalPlan, sense: Sense) -> Vec<bool> {
    let datafusion_says = || {
        plan.schema()
            .fields()
            .iter()
            .map(|f| f.is_nullable())
            .collect::<Vec<_>>()
    };
    match plan {
        LogicalPlan::Projection(p) => {
            let input = clickhouse_nullable(&p.input, sense);
            p.expr
                .iter()
                .map(|e| expr_nullable(e, p.input.schema(), &input, sense))
                .collect()
        }
        LogicalPlan::SubqueryAlias(a) => clickhouse_nullable(&a.input, sense),
        LogicalPlan::Filter(f) => clickhouse_nullable(&f.input, sense),
        LogicalPlan::Sort(s) => clickhouse_nullable(&s.input, sense),
        LogicalPlan::Limit(l) => clickhouse_nullable(&l.input, sense),
        LogicalPlan::Distinct(Distinct::All(input)) => clickhouse_nullable(input, sense),
        // join_use_nulls = 0: the unmatched side's columns get defaults;
        // = 1: they are NULL, so the padded side's columns are Nullable.
        LogicalPlan::Join(j) if sense.names_types() => {
            let nulls = sense == Sense::TypeNameJoinNulls;
            let (left_pads, right_pads) = match j.join_type {
                JoinType::Left => (false, nulls),
                JoinType::Right => (nulls, false),
                JoinType::Full => (nulls, nulls),
                _ => (false, false),
            };
            let side = |input: &LogicalPlan, padded: bool| {
                let n = clickhouse_nullable(input, sense);
                n.into_iter().map(|x| x || padded).collect::<Vec<_>>()
            };
            let mut out = side(&j.left, left_pads);
            out.extend(side(&j.right, right_pads));
            out.resize(plan.schema().fields().len(), false);
            out
        }
        LogicalPlan::Window(w) if sense.names_types() => {
            let mut out = clickhouse_nullable(&w.input, sense);
            out.resize(plan.schema().fields().len(), false);
            out
        }
        LogicalPlan::Aggregate(agg)
            if !matches!(agg.group_expr.as_slice(), [Expr::GroupingSet(_)]) =>
        {
            let input = clickhouse_nullable(&agg.input, sense);
            let schema = agg.input.schema();
            let df = datafusion_says();
            let keys = agg
                .group_expr
                .iter()
                .map(|k| expr_nullable(k, schema, &input, sense));
            let aggregates = agg.aggr_expr.iter().map(|e| {
                let inner = match e {
                    Expr::Alias(a) => a.expr.as_ref(),
                    e => e,
                };
                match inner {
                    // These are never NULL over non-Nullable arguments
                    // (over no rows `fill_aggregate_defaults` gives the default).
                    Expr::AggregateFunction(f)
                        if matches!(
                            f.func.name(),
                            "sum"
                                | "min"
                                | "max"
                                | "avg"
                                | "count"
                                | "first_value"
                                | "last_value"
                                | crate::functions::QUANTILE
                        ) && f.params.filter.is_none() =>
                    {
                        f.params
                            .args
                            .iter()
                            .any(|a| expr_nullable(a, schema, &input, sense))
                    }
                    _ => sense == Sense::Fill,
                }
            });
            let mut out: Vec<bool> = keys.chain(aggregates).collect();
            out.resize(df.len(), sense == Sense::Fill);
            out
        }
        _ => datafusion_says(),
    }
}

/// Whether `e` over an input whose fields are Nullable as `input` says is
/// Nullable in ClickHouse's sense (see [`clickhouse_nullable`]).
pub(crate) fn expr_nullable(e: &Expr, schema: &DFSchema, input: &[bool], sense: Sense) -> bool {
    let of = |x: &Expr| expr_nullable(x, schema, input, sense);
    match e {
        Expr::Alias(a) => of(&a.expr),
        Expr::Column(c) => schema
            .maybe_index_of_column(c)
            .and_then(|i| input.get(i).copied())
            .unwrap_or(sense == Sense::Fill),
        Expr::Literal(v, _) => v.is_null(),
        Expr::Case(c) => {
            c.else_expr.is_none()
                || c.else_expr
                    .iter()
                    .chain(c.when_then_expr.iter().map(|(_, t)| t))
                    .any(|t| of(t))
        }
        Expr::ScalarFunction(f) => {
            let name = f.name().to_ascii_lowercase();
            match name.as_str() {
                "coalesce" => f.args.iter().all(of),
                // Never NULL whatever the arguments.
                "isnull" | "isnotnull" | "iszeroornull" | "assumenotnull" | "totypename"
                | "__qh_tuple_in" => false,
                "ifnull" => f.args.iter().all(of),
                // Functions that make NULLs of non-NULL arguments (`nullIf`,
                // `toUInt8OrNull`, `toNullable`, a missing array element or
                // map key, a regular expression without a match).
                _ if name.contains("null")
                    || name.starts_with("array_element")
                    || name.starts_with("get_field")
                    || name.starts_with("regexp")
                    || name.starts_with("json") =>
                {
                    true
                }
                _ => f.args.iter().any(of),
            }
        }
        Expr::Cast(c) => of(&c.expr),
        Expr::BinaryExpr(b) => of(&b.left) || of(&b.right),
        Expr::Not(x) | Expr::Negative(x) => of(x),
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_) => false,
        Expr::Between(_) | Expr::Like(_) | Expr::SimilarTo(_) | Expr::InList(_) => {
            let mut any = false;
            let _ = e.apply_children(|c| {
                any |= of(c);
                Ok(TreeNodeRecursion::Continue)
            });
            any
        }
        // Subqueries, casts that may fail to NULL, window and aggregate
        // calls, anything else: as DataFusion says, or (naming a type) as
        // their arguments are.
        _ => match sense {
            Sense::Fill => e.nullable(schema).unwrap_or(true),
            Sense::TypeName | Sense::TypeNameJoinNulls => {
                let mut any = false;
                let _ = e.apply_children(|c| {
                    any |= of(c);
                    Ok(TreeNodeRecursion::Continue)
                });
                any
            }
        },
    }
}

/// Whether a GROUP BY key is Nullable in ClickHouse's sense: it reads a
/// Nullable column. (DataFusion's own nullability calls every UDF result
/// nullable, so `toString(x)` would show NULL where ClickHouse shows ''.)
pub(crate) fn nullable_key(key: &Expr, input: &DFSchema) -> bool {
    key.column_refs()
        .iter()
        .any(|c| input.field_from_column(c).is_ok_and(|f| f.is_nullable()))
}

/// Puts a projection over `node` that replaces NULL by the type's default in
/// the output fields `fills` marks, and passes the others through.
fn project_defaults(node: LogicalPlan, fills: &[bool]) -> Result<Transformed<LogicalPlan>> {
    let values: Vec<Option<ScalarValue>> = node
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            fills
                .get(i)
                .copied()
                .unwrap_or(false)
                .then(|| crate::functions::default_scalar(f.data_type()).ok())
                .flatten()
        })
        .collect();
    project_values(node, &values)
}

/// Puts a projection over `node` that replaces NULL in output field `i` by
/// `values[i]` where that is given, and passes the others through.
fn project_values(
    node: LogicalPlan,
    values: &[Option<ScalarValue>],
) -> Result<Transformed<LogicalPlan>> {
    let out: DFSchemaRef = Arc::clone(node.schema());
    let mut changed = false;
    let mut exprs = Vec::with_capacity(out.fields().len());
    for (i, (qualifier, field)) in out.iter().enumerate() {
        let column = Expr::Column(datafusion::common::Column::new(
            qualifier.cloned(),
            field.name(),
        ));
        match values.get(i).cloned().flatten() {
            Some(d) => {
                changed = true;
                let filled = datafusion::functions::core::expr_fn::coalesce(vec![column, lit(d)]);
                exprs.push(filled.alias_qualified(qualifier.cloned(), field.name()));
            }
            None => exprs.push(column),
        }
    }
    if !changed {
        return Ok(Transformed::no(node));
    }
    let projection = Projection::try_new(exprs, Arc::new(node))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}
