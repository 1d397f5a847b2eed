//! ClickHouse's query complexity limits, applied to the parsed AST before
//! anything else walks it: `max_ast_depth` (→ 167 TOO_DEEP_AST) and
//! `max_ast_elements` (→ 168 TOO_BIG_AST), and `max_expanded_ast_elements`
//! after the rewrite.
//!
//! sqlparser builds `a OR b OR c ...` (and any left-associative operator
//! chain) without recursion, as a left-deep tree as deep as the chain is
//! long; every later pass over it (our rewrite, DataFusion's planner, the
//! physical evaluation, even `Drop`) recurses once per level. So:
//! - AND/OR chains, which ClickHouse flattens into one `and(..)`/`or(..)`
//!   call, are rebuilt here as balanced trees (depth log2 n);
//! - the depth check stops descending at the limit, and the subtree beyond it
//!   is taken apart iteratively, so not even dropping it recurses deeply.
//!
//! **Invariant:** after [`check_statement`] succeeds every expression of the
//! statement is at most `max_ast_depth` deep.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Query, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use qh_types::{ErrorCode, Settings};

use crate::error::{QueryError, Result};
use crate::statement::{AlterOp, InsertSource, Statement};

/// Chains shorter than this keep their shape (and their printed form).
const REBALANCE_FROM: usize = 32;

#[derive(Debug, Clone, Copy)]
pub struct AstLimits {
    pub max_depth: u64,
    pub max_elements: u64,
}

impl AstLimits {
    /// The limits before the rewrite, from the statement's settings
    /// (defaults in the settings table: depth 1000, 50,000 elements; 0 = no
    /// limit).
    pub fn parsed(settings: &Settings) -> Result<Self> {
        Ok(AstLimits {
            max_depth: setting(settings, "max_ast_depth")?,
            max_elements: setting(settings, "max_ast_elements")?,
        })
    }

    /// The limits after aliases were substituted (`max_expanded_ast_elements`).
    pub fn expanded(settings: &Settings) -> Result<Self> {
        Ok(AstLimits {
            max_depth: setting(settings, "max_ast_depth")?,
            max_elements: setting(settings, "max_expanded_ast_elements")?,
        })
    }
}

fn setting(settings: &Settings, name: &str) -> Result<u64> {
    let v = settings.uint(name).map_err(QueryError::BadArguments)?;
    Ok(if v == 0 { u64::MAX } else { v })
}

/// Checks (and rebalances) every query and expression of `stmt`.
pub fn check_statement(stmt: &mut Statement, limits: AstLimits) -> Result<()> {
    let mut c = Checker::new(limits);
    let flow = match stmt {
        Statement::Select { query, .. } => query.visit(&mut c),
        Statement::Insert(ins) => match &mut ins.source {
            InsertSource::Select(q) => q.visit(&mut c),
            // VALUES rows are data, not AST (ClickHouse does not count them),
            // but each row's expressions must still be shallow.
            InsertSource::Values(rows) => {
                let mut flow = ControlFlow::Continue(());
                'rows: for row in rows.iter_mut() {
                    for e in row.iter_mut() {
                        let mut one = Checker::new(AstLimits {
                            max_depth: limits.max_depth,
                            max_elements: u64::MAX,
                        });
                        flow = e.visit(&mut one);
                        if flow.is_break() {
                            break 'rows;
                        }
                    }
                }
                flow
            }
            InsertSource::Format { .. } => ControlFlow::Continue(()),
        },
        Statement::CreateTable(ct) => match &mut ct.as_select {
            Some(q) => q.visit(&mut c),
            None => ControlFlow::Continue(()),
        },
        Statement::CreateView(cv) => cv.query.visit(&mut c),
        Statement::Optimize {
            partition: Some(e), ..
        } => e.visit(&mut c),
        Statement::KillQuery { predicate, .. } => predicate.visit(&mut c),
        Statement::Alter { ops, .. } => {
            let mut flow = ControlFlow::Continue(());
            for op in ops.iter_mut() {
                let exprs: Vec<&mut datafusion::sql::sqlparser::ast::Expr> = match op {
                    AlterOp::DropPartition(e) | AlterOp::Delete { filter: e } => vec![&mut **e],
                    AlterOp::Update {
                        assignments,
                        filter,
                    } => assignments
                        .iter_mut()
                        .map(|(_, e)| e)
                        .chain(std::iter::once(&mut **filter))
                        .collect(),
                    _ => Vec::new(),
                };
                for e in exprs {
                    flow = e.visit(&mut c);
                    if flow.is_break() {
                        break;
                    }
                }
                if flow.is_break() {
                    break;
                }
            }
            flow
        }
        _ => ControlFlow::Continue(()),
    };
    match flow {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Checks one query (after the rewrite, with the expanded limits).
pub fn check_query(q: &mut Query, limits: AstLimits) -> Result<()> {
    match q.visit(&mut Checker::new(limits)) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Checker {
    limits: AstLimits,
    depth: u64,
    elements: u64,
    /// Per open expression: is it a collection of literals (`(1, 2, 3)`,
    /// `[1, 2]`, `x IN (1, 2)`)? ClickHouse parses those as one literal, so
    /// a 200,000-value IN list is one element, not 200,000.
    literal_collection: Vec<bool>,
}

impl Checker {
    fn new(limits: AstLimits) -> Self {
        Checker {
            limits,
            depth: 0,
            elements: 0,
            literal_collection: Vec::new(),
        }
    }

    fn count(&mut self) -> ControlFlow<QueryError> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return ControlFlow::Break(QueryError::other(
                ErrorCode::TOO_BIG_AST,
                format!("AST is too big. Maximum: {}", self.limits.max_elements),
            ));
        }
        ControlFlow::Continue(())
    }
}

impl VisitorMut for Checker {
    type Break = QueryError;

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<QueryError> {
        self.count()
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<QueryError> {
        rebalance(e);
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            let cut = std::mem::replace(e, null());
            dismantle(cut);
            return ControlFlow::Break(QueryError::other(
                ErrorCode::TOO_DEEP_AST,
                format!("AST is too deep. Maximum: {}", self.limits.max_depth),
            ));
        }
        let inside_literals = self.literal_collection.last().copied().unwrap_or(false);
        if !(inside_literals && is_literal(e)) {
            self.count()?;
        }
        self.literal_collection.push(is_literal_collection(e));
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &mut Expr) -> ControlFlow<QueryError> {
        self.depth -= 1;
        self.literal_collection.pop();
        ControlFlow::Continue(())
    }
}

fn null() -> Expr {
    Expr::Value(ValueWithSpan::from(Value::Null))
}

fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } => matches!(expr.as_ref(), Expr::Value(_)),
        _ => false,
    }
}

fn is_literal_collection(e: &Expr) -> bool {
    match e {
        Expr::InList { list, .. } => list.iter().all(is_literal),
        Expr::Tuple(items) => items.iter().all(is_literal),
        Expr::Array(a) => a.elem.iter().all(is_literal),
        _ => false,
    }
}

/// A long `a OR b OR c ...` (or AND) chain becomes a balanced tree of the same
/// operator: the same value under SQL's three-valued logic, log2(n) deep.
fn rebalance(e: &mut Expr) {
    let op = match e {
        Expr::BinaryOp {
            op: op @ (BinaryOperator::And | BinaryOperator::Or),
            left,
            ..
        } if matches!(left.as_ref(), Expr::BinaryOp { op: o, .. } if o == op) => op.clone(),
        _ => return,
    };
    // Cheap length probe down the left spine before taking anything apart.
    let mut len = 1;
    let mut cur = &*e;
    while let Expr::BinaryOp { op: o, left, .. } = cur {
        if *o != op {
            break;
        }
        len += 1;
        cur = left;
        if len >= REBALANCE_FROM {
            break;
        }
    }
    if len < REBALANCE_FROM {
        return;
    }
    let mut terms = Vec::new();
    let mut stack = vec![std::mem::replace(e, null())];
    while let Some(x) = stack.pop() {
        match x {
            Expr::BinaryOp { left, op: o, right } if o == op => {
                stack.push(*right);
                stack.push(*left);
            }
            Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: o, .. } if *o == op) => {
                stack.push(*inner)
            }
            other => terms.push(other),
        }
    }
    *e = balanced(terms, &op);
}

fn balanced(mut terms: Vec<Expr>, op: &BinaryOperator) -> Expr {
    if terms.len() == 1 {
        return terms.pop().unwrap_or_else(null);
    }
    let right = terms.split_off(terms.len() / 2);
    Expr::BinaryOp {
        left: Box::new(balanced(terms, op)),
        op: op.clone(),
        right: Box::new(balanced(right, op)),
    }
}

/// Drops an arbitrarily deep expression without recursing per level through
/// the shapes sqlparser builds in a loop (operator chains, casts, IS tests).
fn dismantle(e: Expr) {
    let mut stack = vec![e];
    while let Some(x) = stack.pop() {
        match x {
            Expr::BinaryOp { left, right, .. }
            | Expr::IsDistinctFrom(left, right)
            | Expr::IsNotDistinctFrom(left, right) => {
                stack.push(*left);
                stack.push(*right);
            }
            Expr::Like { expr, pattern, .. }
            | Expr::ILike { expr, pattern, .. }
            | Expr::SimilarTo { expr, pattern, .. }
            | Expr::RLike { expr, pattern, .. } => {
                stack.push(*expr);
                stack.push(*pattern);
            }
            Expr::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                stack.push(*timestamp);
                stack.push(*time_zone);
            }
            Expr::UnaryOp { expr, .. }
            | Expr::Nested(expr)
            | Expr::Cast { expr, .. }
            | Expr::Collate { expr, .. }
            | Expr::IsNull(expr)
            | Expr::IsNotNull(expr)
            | Expr::IsTrue(expr)
            | Expr::IsFalse(expr)
            | Expr::IsNotTrue(expr)
            | Expr::IsNotFalse(expr)
            | Expr::IsUnknown(expr)
            | Expr::IsNotUnknown(expr) => stack.push(*expr),
            other => drop(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::parse_statement;

    fn check(sql: &str) -> Result<Statement> {
        let mut s = parse_statement(sql)?;
        check_statement(&mut s, AstLimits::parsed(&Settings::new())?)?;
        Ok(s)
    }

    fn chain(n: usize, term: impl Fn(usize) -> String, op: &str) -> String {
        (0..n).map(term).collect::<Vec<_>>().join(op)
    }

    #[test]
    fn long_or_chains_are_balanced_and_answerable() {
        let sql = format!(
            "SELECT count() FROM t WHERE {}",
            chain(10_000, |i| format!("number = {i}"), " OR ")
        );
        let s = check(&sql).expect("10k-term OR chain is within the limits");
        let Statement::Select { query, .. } = s else {
            panic!("not a select")
        };
        // The rebalanced WHERE is shallow; the count check saw every term.
        let mut depth = Checker::new(AstLimits {
            max_depth: 40,
            max_elements: u64::MAX,
        });
        let mut q = *query;
        assert!(q.visit(&mut depth).is_continue());
    }

    #[test]
    fn short_chains_keep_their_shape() {
        let s = check("SELECT 1 FROM t WHERE a OR b OR c").expect("ok");
        let Statement::Select { query, .. } = s else {
            panic!("not a select")
        };
        assert_eq!(
            query.to_string(),
            "SELECT 1 FROM t WHERE a OR b OR c",
            "small chains are not reshaped"
        );
    }

    #[test]
    fn too_deep_and_too_big() {
        let plus = format!("SELECT {}", chain(100_000, |_| "1".into(), "+"));
        let e = check(&plus).expect_err("100k-term sum");
        assert_eq!(e.code(), ErrorCode::TOO_DEEP_AST, "{e}");
        assert_eq!(e.to_string(), "AST is too deep. Maximum: 1000");
        let or = format!(
            "SELECT 1 FROM t WHERE {}",
            chain(100_000, |i| format!("x = {i}"), " OR ")
        );
        let e = check(&or).expect_err("100k-term OR");
        assert_eq!(e.code(), ErrorCode::TOO_BIG_AST, "{e}");
        // Settings raise or lift the limits (0 = none).
        let mut st = parse_statement(&format!(
            "SELECT {} SETTINGS max_ast_depth = 2000",
            chain(1500, |_| "1".into(), "+")
        ))
        .expect("parses");
        let Statement::Select { settings, .. } = &st else {
            panic!("not a select")
        };
        let limits = AstLimits::parsed(settings).expect("limits");
        assert!(check_statement(&mut st, limits).is_ok());
    }

    #[test]
    fn literal_lists_count_as_one_element() {
        let sql = format!(
            "SELECT count() FROM t WHERE x IN ({})",
            chain(200_000, |i| i.to_string(), ", ")
        );
        check(&sql).expect("a 200k-value IN list is one literal");
        let sql = format!(
            "SELECT count() FROM t WHERE x IN ({})",
            chain(60_000, |i| format!("y + {i}"), ", ")
        );
        assert_eq!(
            check(&sql).expect_err("60k expressions").code(),
            ErrorCode::TOO_BIG_AST
        );
    }
}
