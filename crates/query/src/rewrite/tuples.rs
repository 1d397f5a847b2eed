//! ClickHouse tuples. `(a, b)` and `tuple(a, b)` are values: DataFusion's
//! `struct` (which prints as ClickHouse prints a tuple). `(a, b) IN …` asks
//! whether the tuple is in a set of tuples, which DataFusion cannot plan
//! (its IN takes one column). Both forms of the set become one subquery
//! whose rows are tuples, `struct(a, b) IN (SELECT struct(t1, t2) FROM …)`,
//! which `subquery_sets` runs once into a set with ClickHouse's rules
//! (elements converted to the left side's types, elements holding NULL
//! skipped, never a NULL answer).

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Parens, Query, SetExpr, TableFactor,
};
use qh_types::ErrorCode;

use super::func;
use crate::error::{QueryError, Result};

/// Column names of the set's rows (`__qh_set(__qh_t1, …)`).
const COLUMN: &str = "__qh_t";

/// `(a, b)` / `tuple(a, b)` → `struct(a, b)`.
pub(super) fn tuple_to_struct(e: &mut Expr) {
    match e {
        Expr::Tuple(items) => {
            let items = std::mem::take(items);
            *e = Expr::Function(func("struct", items));
        }
        Expr::Function(f)
            if f.name.to_string().eq_ignore_ascii_case("tuple")
                && matches!(&f.args, FunctionArguments::List(l) if !l.args.is_empty()) =>
        {
            f.name = func("struct", vec![]).name;
        }
        _ => {}
    }
}

/// The elements of a tuple written in the query (after [`tuple_to_struct`]).
pub(super) fn tuple_items(e: &Expr) -> Option<Vec<Expr>> {
    match e {
        Expr::Nested(inner) => tuple_items(inner),
        Expr::Tuple(items) => Some(items.clone()),
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("struct") => match &f.args {
            FunctionArguments::List(l) if !l.args.is_empty() => l
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x.clone()),
                    _ => None,
                })
                .collect(),
            _ => None,
        },
        _ => None,
    }
}

/// `tuple IN (list)` / `tuple IN (subquery)` → `struct(…) IN (SELECT
/// struct(…) …)`; other IN expressions are left alone.
pub(super) fn tuple_in(e: &mut Expr) -> Result<()> {
    match e {
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let Some(left) = tuple_items(expr) else {
                return Ok(());
            };
            let rows = set_rows(&left, list)?;
            let mut set = set_subquery(left.len())?;
            set_source(&mut set, |source| match source.body.as_mut() {
                SetExpr::Values(v) => match v.rows.first().cloned() {
                    Some(template) => {
                        v.rows = rows
                            .into_iter()
                            .map(|content| Parens {
                                content,
                                ..template.clone()
                            })
                            .collect();
                        true
                    }
                    None => false,
                },
                _ => false,
            })?;
            *e = Expr::InSubquery {
                expr: Box::new(Expr::Function(func("struct", left))),
                subquery: set,
                negated: *negated,
            };
        }
        Expr::InSubquery {
            expr,
            subquery,
            negated,
        } => {
            let Some(left) = tuple_items(expr) else {
                return Ok(());
            };
            if let SetExpr::Select(s) = subquery.body.as_ref() {
                let wildcard = s.projection.iter().any(|p| {
                    matches!(
                        p,
                        datafusion::sql::sqlparser::ast::SelectItem::Wildcard(_)
                            | datafusion::sql::sqlparser::ast::SelectItem::QualifiedWildcard(..)
                    )
                });
                if !wildcard && s.projection.len() != left.len() {
                    return Err(QueryError::other(
                        ErrorCode::NUMBER_OF_COLUMNS_DOESNT_MATCH,
                        format!(
                            "Number of columns in section IN doesn't match. {} at left, {} at right.",
                            left.len(),
                            s.projection.len()
                        ),
                    ));
                }
            }
            let mut set = set_subquery(left.len())?;
            set_source(&mut set, |source| {
                std::mem::swap(source, subquery.as_mut());
                true
            })?;
            *e = Expr::InSubquery {
                expr: Box::new(Expr::Function(func("struct", left))),
                subquery: set,
                negated: *negated,
            };
        }
        _ => {}
    }
    Ok(())
}

/// The set's elements as rows of `n` values. ClickHouse reads `t IN (x, y)`
/// as one tuple `(x, y)` when the list has the tuple's arity and is not a
/// list of such tuples (or the left side is itself made of tuples), and as
/// a list of tuples otherwise.
fn set_rows(left: &[Expr], list: &[Expr]) -> Result<Vec<Vec<Expr>>> {
    let n = left.len();
    let items: Vec<Option<Vec<Expr>>> = list.iter().map(tuple_items).collect();
    let all_tuples_of_n = items
        .iter()
        .all(|t| t.as_ref().is_some_and(|t| t.len() == n));
    let left_of_tuples = left.iter().all(|x| tuple_items(x).is_some());
    // A tuple cannot stand for a literal number or string of the left side.
    let fits = left
        .iter()
        .zip(&items)
        .all(|(l, r)| r.is_none() || !is_scalar_literal(l));
    if list.len() == n && fits && (!all_tuples_of_n || left_of_tuples) {
        return Ok(vec![list.to_vec()]);
    }
    let mut rows = Vec::with_capacity(items.len());
    for (item, written) in items.into_iter().zip(list) {
        match item {
            Some(t) if t.len() == n => rows.push(t),
            Some(t) => {
                return Err(QueryError::other(
                    ErrorCode::INCORRECT_ELEMENT_OF_SET,
                    format!("Incorrect size of tuple in set: {} instead of {n}", t.len()),
                ))
            }
            None => {
                return Err(QueryError::other(
                    ErrorCode::INCORRECT_ELEMENT_OF_SET,
                    format!("Invalid element type in set. Expected Tuple, got {written}"),
                ))
            }
        }
    }
    Ok(rows)
}

fn is_scalar_literal(e: &Expr) -> bool {
    match e {
        Expr::Value(_) => true,
        Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => is_scalar_literal(inner),
        _ => false,
    }
}

/// `SELECT struct(__qh_t1, …, __qh_tn) FROM (VALUES (…)) AS __qh_set(…)`.
fn set_subquery(n: usize) -> Result<Box<Query>> {
    let names: Vec<String> = (1..=n).map(|i| format!("{COLUMN}{i}")).collect();
    let zeros = vec!["0"; n].join(", ");
    let sql = format!(
        "(SELECT struct({cols}) FROM (VALUES ({zeros})) AS __qh_set({cols}))",
        cols = names.join(", ")
    );
    match crate::statement::parse_expr(&sql)? {
        Expr::Subquery(q) => Ok(q),
        other => Err(QueryError::other(
            ErrorCode::LOGICAL_ERROR,
            format!("the set template parsed as {other}"),
        )),
    }
}

/// Applies `f` to the derived table a [`set_subquery`] reads from.
fn set_source(set: &mut Query, f: impl FnOnce(&mut Query) -> bool) -> Result<()> {
    let done = match set.body.as_mut() {
        SetExpr::Select(s) => match s.from.first_mut().map(|t| &mut t.relation) {
            Some(TableFactor::Derived { subquery, .. }) => f(subquery),
            _ => false,
        },
        _ => false,
    };
    if done {
        Ok(())
    } else {
        Err(QueryError::other(
            ErrorCode::LOGICAL_ERROR,
            "the set template has an unexpected shape",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> Result<String> {
        let mut e = crate::statement::parse_expr(sql)?;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut e, |x| {
            tuple_to_struct(x);
            std::ops::ControlFlow::<()>::Continue(())
        });
        tuple_in(&mut e)?;
        Ok(e.to_string())
    }

    #[test]
    fn a_list_becomes_a_set_of_tuples() {
        let s = rewritten("(a, b) IN ((1, 2), (3, 4))").expect("rewrites");
        assert!(
            s.starts_with("struct(a, b) IN (SELECT struct(__qh_t1, __qh_t2)"),
            "{s}"
        );
        assert!(s.contains("VALUES (1, 2), (3, 4)"), "{s}");
        // The list is one tuple when it has the arity and is not of tuples.
        let s = rewritten("(a, b) IN (1, 2)").expect("rewrites");
        assert!(s.contains("VALUES (1, 2))"), "{s}");
        let s = rewritten("(a, t) IN (3, (2, 3))").expect("rewrites");
        assert!(s.contains("VALUES (3, struct(2, 3)))"), "{s}");
        let s = rewritten("((1, 2), (3, 4)) NOT IN ((1, 2), (3, 4))").expect("rewrites");
        assert!(s.contains("NOT IN"), "{s}");
        assert!(s.contains("VALUES (struct(1, 2), struct(3, 4)))"), "{s}");
    }

    #[test]
    fn a_misshapen_set_is_refused_with_clickhouses_codes() {
        let e = rewritten("(1, 2) IN ((1, 2), 5, 6)").expect_err("mixed");
        assert_eq!(e.code(), ErrorCode::INCORRECT_ELEMENT_OF_SET, "{e}");
        let e = rewritten("(1, 2) IN (1, 2, 3)").expect_err("arity");
        assert_eq!(e.code(), ErrorCode::INCORRECT_ELEMENT_OF_SET, "{e}");
        let e = rewritten("(1, 2) IN ((1, 2), 5)").expect_err("a tuple for a number");
        assert_eq!(e.code(), ErrorCode::INCORRECT_ELEMENT_OF_SET, "{e}");
        let e = rewritten("(1, 2) IN ((1, 2), (1, 2, 3))").expect_err("sizes");
        assert_eq!(e.code(), ErrorCode::INCORRECT_ELEMENT_OF_SET, "{e}");
        let e = rewritten("(1, 2) IN (SELECT 1)").expect_err("columns");
        assert_eq!(e.code(), ErrorCode::NUMBER_OF_COLUMNS_DOESNT_MATCH, "{e}");
    }

    #[test]
    fn a_subquery_is_read_as_tuples() {
        let s = rewritten("(a, b) IN (SELECT x, y FROM t)").expect("rewrites");
        assert!(
            s.contains("FROM (SELECT x, y FROM t) AS __qh_set (__qh_t1, __qh_t2)"),
            "{s}"
        );
        // Not a tuple: left alone.
        assert_eq!(rewritten("a IN (1, 2)").expect("as is"), "a IN (1, 2)");
    }
}
