//! Rewrites a ClickHouse SQL AST into SQL DataFusion plans the same way:
//! function names lower-cased and mapped (`uniq` → `count(DISTINCT)`,
//! `if` → `CASE`, `quantile(p)(x)` → `__qh_quantile(x, p)`), `count()` →
//! `count(*)`, `/` always in floating point, PREWHERE folded into WHERE, and
//! unaliased SELECT items named as the user wrote them (`count()`).

mod aliases;
mod array_join;
mod arrays;
pub(crate) use arrays::ARRAY_ELEMENT;
mod functions;
mod in_lists;
mod tuples;
mod using;

use std::ops::ControlFlow;

use aliases::{
    resolve_alias_chains, select_aliases, take_inline_aliases, take_with_aliases, with_aliases,
};
use functions::{rewrite_function, searched_case};

use crate::error::{QueryError, Result};
use crate::statement::{INLINE_ALIAS, WITH_ALIAS_PREFIX};

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, OrderByExpr, Query, SelectItem, SetExpr, VisitMut,
    VisitorMut,
};

#[derive(Default)]
struct Rewriter {
    /// ClickHouse `WITH expr AS name` aliases of the queries being visited,
    /// outermost first: a query sees its own and its enclosing queries'.
    with_scopes: Vec<Vec<(String, Expr)>>,
    /// What stopped the rewrite: a query ClickHouse refuses.
    error: Option<QueryError>,
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let Err(e) = array_join::array_join(&mut q.body) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        let mut scope = take_with_aliases(q);
        scope.extend(take_inline_aliases(q));
        resolve_alias_chains(&mut scope);
        self.with_scopes.push(scope);
        union_tail_binds_to_last_select(q);
        dummy_from_system_one(&mut q.body);
        clamp_limits(q);
        limit_by(q);
        group_by_modifiers(&mut q.body);
        // Name items by their text before aliases are put into them.
        name_select_items(&mut q.body);
        unique_select_names(&mut q.body);
        // Innermost first, so a query's own WITH wins over its outer ones'.
        let with: Vec<(String, Expr)> = self.with_scopes.iter().rev().flatten().cloned().collect();
        if !with.is_empty() {
            with_aliases(q, &with);
        }
        select_aliases(&mut q.body);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        self.with_scopes.pop();
        fold_prewhere(&mut q.body);
        using::qualify_using_columns(&mut q.body);
        boolean_conditions(&mut q.body);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        tuples::tuple_to_struct(e);
        if let Err(err) = tuples::tuple_in(e) {
            self.error = Some(err);
            return ControlFlow::Break(());
        }
        rewrite_expr(e);
        ControlFlow::Continue(())
    }
}

/// Rewrites a whole query in place.
pub fn rewrite_query(q: &mut Query) -> Result<()> {
    let mut r = Rewriter::default();
    let _ = q.visit(&mut r);
    r.error.map_or(Ok(()), Err)
}

/// Rewrites one standalone expression (keys, defaults) in place.
pub fn rewrite_standalone_expr(e: &mut Expr) -> Result<()> {
    let mut r = Rewriter::default();
    let _ = e.visit(&mut r);
    r.error.map_or(Ok(()), Err)
}

/// Whether `e` is boolean by its syntax: a comparison, AND/OR/XOR, NOT,
/// IS [NOT] NULL/TRUE/FALSE, IN, BETWEEN, LIKE, EXISTS, a boolean literal.
fn is_boolean(e: &Expr) -> bool {
    match e {
        Expr::Nested(inner) => is_boolean(inner),
        Expr::BinaryOp { op, .. } => matches!(
            op,
            BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq
                | BinaryOperator::And
                | BinaryOperator::Or
                | BinaryOperator::Xor
        ),
        Expr::UnaryOp {
            op: datafusion::sql::sqlparser::ast::UnaryOperator::Not,
            ..
        } => true,
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::InList { .. }
        | Expr::InSubquery { .. }
        | Expr::InUnnest { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::Exists { .. }
        | Expr::SimilarTo { .. } => true,
        Expr::Value(v) => matches!(v.value, datafusion::sql::sqlparser::ast::Value::Boolean(_)),
        _ => false,
    }
}

/// ClickHouse takes any number as a condition (`WHERE active`); DataFusion
/// wants booleans. Conditions that are not boolean by their syntax get
/// `__qh_bool(x)` (x != 0); comparisons stay as they are so pruning sees them.
fn as_condition(e: &mut Expr) {
    if let Expr::Nested(inner) = e {
        as_condition(inner);
        return;
    }
    let boolean = is_boolean(e);
    if !boolean {
        let inner = std::mem::replace(e, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
        *e = Expr::Function(func("__qh_bool", vec![inner]));
    }
}

fn boolean_conditions(body: &mut SetExpr) {
    match body {
        SetExpr::Select(s) => {
            if let Some(w) = s.selection.as_mut() {
                as_condition(w);
            }
            if let Some(h) = s.having.as_mut() {
                as_condition(h);
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            boolean_conditions(left);
            boolean_conditions(right);
        }
        _ => {}
    }
}

fn fold_prewhere(body: &mut SetExpr) {
    match body {
        SetExpr::Select(s) => {
            if let Some(pw) = s.prewhere.take() {
                s.selection = Some(match s.selection.take() {
                    Some(w) => Expr::BinaryOp {
                        left: Box::new(Expr::Nested(Box::new(pw))),
                        op: BinaryOperator::And,
                        right: Box::new(Expr::Nested(Box::new(w))),
                    },
                    None => pw,
                });
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            fold_prewhere(left);
            fold_prewhere(right);
        }
        _ => {}
    }
}

/// ClickHouse's LIMIT and OFFSET are UInt64 (`LIMIT 5, 18446744073709551615`
/// is "all after the fifth"); DataFusion's are i64. Past i64 no result has
/// that many rows, so a larger literal becomes i64's maximum.
fn clamp_limits(q: &mut Query) {
    use datafusion::sql::sqlparser::ast::{LimitClause, Value};
    let clamp = |e: &mut Expr| {
        if let Expr::Value(v) = e {
            if let Value::Number(n, _) = &mut v.value {
                if n.parse::<u128>().is_ok_and(|x| x > i64::MAX as u128) {
                    *n = i64::MAX.to_string();
                }
            }
        }
    };
    match &mut q.limit_clause {
        Some(LimitClause::LimitOffset { limit, offset, .. }) => {
            if let Some(l) = limit {
                clamp(l);
            }
            if let Some(o) = offset {
                clamp(&mut o.value);
            }
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            clamp(offset);
            clamp(limit);
        }
        None => {}
    }
}

/// `QUALIFY __qh_limit_by(offset, n, e1, e2)` (from ClickHouse's `LIMIT
/// [offset,] n BY e1, e2`, see `statement/tokens.rs`) becomes `row_number() OVER
/// (PARTITION BY e1, e2 ORDER BY <the query's ORDER BY>) BETWEEN offset + 1
/// AND offset + n`, with SELECT aliases replaced by their expressions (a
/// window cannot see them).
fn limit_by(q: &mut Query) {
    use datafusion::sql::sqlparser::ast::{OrderByKind, WindowSpec, WindowType};
    let order: Vec<OrderByExpr> = match &q.order_by {
        Some(o) => match &o.kind {
            OrderByKind::Expressions(v) => v.clone(),
            _ => vec![],
        },
        None => vec![],
    };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let Some(Expr::Function(f)) = &select.qualify else {
        return;
    };
    let marker = f.name.to_string();
    let ties = marker == crate::statement::WITH_TIES_MARKER;
    if marker != crate::statement::LIMIT_BY_MARKER && !ties {
        return;
    }
    let args = args_of(&f.args);
    let number = |e: &Expr| e.to_string().parse::<u64>().unwrap_or(0);
    let (offset, n) = match (args.first(), args.get(1)) {
        (Some(o), Some(n)) => (number(o), number(n)),
        _ => return,
    };
    let aliases: std::collections::HashMap<String, Expr> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } => Some((alias.value.clone(), expr.clone())),
            _ => None,
        })
        .collect();
    let resolve = |e: &Expr| match e {
        Expr::Identifier(i) => aliases.get(&i.value).cloned().unwrap_or_else(|| e.clone()),
        other => other.clone(),
    };
    // A key that is an arrayJoin cannot go into a window (DataFusion plans
    // unnest in projections only): the SELECT then becomes a subquery and
    // the LIMIT BY applies to its output columns, when the ORDER BY names
    // output columns too.
    let selected = |name: &str| {
        aliases.contains_key(name)
            || select.projection.iter().any(
                |item| matches!(item, SelectItem::UnnamedExpr(Expr::Identifier(i)) if i.value == name),
            )
    };
    let outer = args[2..].iter().map(resolve).any(|e| has_array_join(&e))
        && order
            .iter()
            .all(|o| matches!(&o.expr, Expr::Identifier(i) if selected(&i.value)));
    let keep = |e: &Expr| if outer { e.clone() } else { resolve(e) };
    let partition_by: Vec<Expr> = args[2..].iter().map(keep).collect();
    let order_by: Vec<OrderByExpr> = order
        .iter()
        .map(|o| OrderByExpr {
            expr: keep(&o.expr),
            options: o.options,
            with_fill: None,
        })
        .collect();
    let window = |name: &str| {
        let mut f = func(name, vec![]);
        f.args = FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![],
            clauses: vec![],
        });
        f.over = Some(WindowType::WindowSpec(WindowSpec {
            window_name: None,
            partition_by: partition_by.clone(),
            order_by: order_by.clone(),
            window_frame: None,
        }));
        Box::new(Expr::Function(f))
    };
    // Beyond i64 means no limit (row numbers never get there).
    let lit = |v: u64| {
        let v = v.min(i64::MAX as u64);
        Expr::value(datafusion::sql::sqlparser::ast::Value::Number(
            v.to_string(),
            false,
        ))
    };
    let qualify = Some(if ties {
        // Past the offset, and ranked no later than the n-th row: the rows
        // tied with the last one come along.
        Expr::BinaryOp {
            left: Box::new(Expr::BinaryOp {
                left: window("row_number"),
                op: BinaryOperator::Gt,
                right: Box::new(lit(offset)),
            }),
            op: BinaryOperator::And,
            right: Box::new(Expr::BinaryOp {
                left: window("rank"),
                op: BinaryOperator::LtEq,
                right: Box::new(lit(offset.saturating_add(n))),
            }),
        }
    } else {
        Expr::Between {
            expr: window("row_number"),
            negated: false,
            low: Box::new(lit(offset + 1)),
            high: Box::new(lit(offset.saturating_add(n))),
        }
    });
    if !outer {
        select.qualify = qualify;
        return;
    }
    select.qualify = None;
    let mut inner = q.clone();
    inner.with = None;
    inner.order_by = None;
    inner.limit_clause = None;
    inner.fetch = None;
    inner.settings = None;
    inner.format_clause = None;
    let Ok(mut wrapper) = datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::ClickHouseDialect {},
    )
    .try_with_sql("SELECT * FROM (SELECT 1) AS __qh_limit_by")
    .and_then(|mut p| p.parse_query()) else {
        return;
    };
    let SetExpr::Select(outer_select) = wrapper.body.as_mut() else {
        return;
    };
    if let Some(datafusion::sql::sqlparser::ast::TableFactor::Derived { subquery, .. }) =
        outer_select.from.first_mut().map(|t| &mut t.relation)
    {
        **subquery = inner;
    }
    outer_select.qualify = qualify;
    q.body = wrapper.body;
}

/// Whether `e` calls arrayJoin.
fn has_array_join(e: &Expr) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |x| {
        if let Expr::Function(f) = x {
            let name = f.name.to_string().to_ascii_lowercase();
            found |= name == "arrayjoin" || name == "unnest";
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// A SELECT without FROM reads ClickHouse's `system.one`, whose column is
/// `dummy` (UInt8 0): give such a SELECT that FROM when it names `dummy`.
fn dummy_from_system_one(body: &mut SetExpr) {
    use datafusion::sql::sqlparser::ast::{TableFactor, TableWithJoins};
    match body {
        SetExpr::Select(s) if s.from.is_empty() => {
            let mut names_dummy = false;
            let _ = datafusion::sql::sqlparser::ast::visit_expressions(s.as_ref(), |e| {
                if matches!(e, Expr::Identifier(i) if i.value.eq_ignore_ascii_case("dummy")) {
                    names_dummy = true;
                }
                ControlFlow::<()>::Continue(())
            });
            if names_dummy {
                s.from.push(TableWithJoins {
                    relation: TableFactor::Table {
                        name: ObjectName::from(vec![Ident::new("system"), Ident::new("one")]),
                        alias: None,
                        args: None,
                        with_hints: vec![],
                        version: None,
                        with_ordinality: false,
                        partitions: vec![],
                        json_path: None,
                        sample: None,
                        index_hints: vec![],
                    },
                    joins: vec![],
                });
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            dummy_from_system_one(left);
            dummy_from_system_one(right);
        }
        _ => {}
    }
}

/// In ClickHouse every SELECT of a UNION keeps its own ORDER BY and LIMIT,
/// so the ones written after the last SELECT belong to it, not to the union
/// (order or limit a whole union through a subquery).
fn union_tail_binds_to_last_select(q: &mut Query) {
    if !matches!(q.body.as_ref(), SetExpr::SetOperation { .. })
        || (q.order_by.is_none() && q.limit_clause.is_none())
    {
        return;
    }
    let mut last = q.body.as_mut();
    while let SetExpr::SetOperation { right, .. } = last {
        last = right.as_mut();
    }
    let placeholder = SetExpr::Values(datafusion::sql::sqlparser::ast::Values {
        explicit_row: false,
        value_keyword: false,
        rows: vec![],
    });
    let body = std::mem::replace(last, placeholder);
    *last = SetExpr::Query(Box::new(Query {
        with: None,
        body: Box::new(body),
        order_by: q.order_by.take(),
        limit_clause: q.limit_clause.take(),
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    }));
}

/// `GROUP BY a, b WITH ROLLUP|CUBE` (ClickHouse) is `GROUP BY ROLLUP(a, b)`
/// / `CUBE(a, b)` to DataFusion, which ignores the modifiers.
fn group_by_modifiers(body: &mut SetExpr) {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, GroupByWithModifier};
    match body {
        SetExpr::Select(s) => {
            if let GroupByExpr::Expressions(exprs, modifiers) = &mut s.group_by {
                let rollup = modifiers.contains(&GroupByWithModifier::Rollup);
                let cube = modifiers.contains(&GroupByWithModifier::Cube);
                if (rollup || cube) && !exprs.is_empty() {
                    let sets: Vec<Vec<Expr>> = exprs.drain(..).map(|e| vec![e]).collect();
                    exprs.push(if rollup {
                        Expr::Rollup(sets)
                    } else {
                        Expr::Cube(sets)
                    });
                    modifiers.retain(|m| {
                        !matches!(m, GroupByWithModifier::Rollup | GroupByWithModifier::Cube)
                    });
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            group_by_modifiers(left);
            group_by_modifiers(right);
        }
        _ => {}
    }
}

/// Marks a repeated result column name (`SELECT x, x`): ClickHouse allows
/// it, DataFusion's projections need unique names. The engine strips the
/// mark from the final result's names ([`restore_name`]).
pub const DUP_MARK: &str = "__qh_dup";

/// The result column name a mark was added to.
pub fn restore_name(name: &str) -> &str {
    match name.rfind(DUP_MARK) {
        Some(i)
            if name[i + DUP_MARK.len()..]
                .chars()
                .all(|c| c.is_ascii_digit()) =>
        {
            &name[..i]
        }
        _ => name,
    }
}

fn unique_select_names(body: &mut SetExpr) {
    match body {
        SetExpr::Select(s) => {
            let mut seen = std::collections::HashSet::new();
            for (k, item) in s.projection.iter_mut().enumerate() {
                let name = match item {
                    SelectItem::UnnamedExpr(Expr::Identifier(i)) => i.value.clone(),
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                        parts.last().map(|i| i.value.clone()).unwrap_or_default()
                    }
                    // Named after its own text by `name_select_items`; a
                    // user's repeated alias stays an error, as in ClickHouse.
                    SelectItem::ExprWithAlias { alias, expr }
                        if alias.value == expr.to_string() =>
                    {
                        alias.value.clone()
                    }
                    SelectItem::ExprWithAlias { alias, .. } => {
                        seen.insert(alias.value.clone());
                        continue;
                    }
                    _ => continue,
                };
                if seen.insert(name.clone()) {
                    continue;
                }
                let alias = Ident::with_quote('"', format!("{name}{DUP_MARK}{k}"));
                match item {
                    SelectItem::ExprWithAlias { alias: a, .. } => *a = alias,
                    SelectItem::UnnamedExpr(e) => {
                        let expr = std::mem::replace(
                            e,
                            Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
                        );
                        *item = SelectItem::ExprWithAlias { expr, alias };
                    }
                    _ => {}
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            unique_select_names(left);
            unique_select_names(right);
        }
        _ => {}
    }
}

/// ClickHouse names a result column by the expression's text; give every
/// unaliased non-column item that name before the rewrite changes its text.
fn name_select_items(body: &mut SetExpr) {
    match body {
        SetExpr::Select(s) => {
            for item in s.projection.iter_mut() {
                if let SelectItem::UnnamedExpr(e) = item {
                    let literal =
                        matches!(&*e, Expr::Identifier(_)) && literal_or_cast(e).is_some();
                    if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) && !literal {
                        continue;
                    }
                    let name = e.to_string();
                    let expr = std::mem::replace(
                        e,
                        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
                    );
                    *item = SelectItem::ExprWithAlias {
                        expr,
                        alias: Ident::with_quote('"', name),
                    };
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            name_select_items(left);
            // Only the first SELECT names the columns of a UNION.
            let _ = right;
        }
        _ => {}
    }
}

/// `name(args...)`, a plain call.
pub(crate) fn func(name: &str, args: Vec<Expr>) -> Function {
    Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    }
}

fn args_of(f: &FunctionArguments) -> Vec<Expr> {
    match f {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

/// ClickHouse's float literals `inf`, `infinity` and `nan` (any case; a
/// column of that name needs quotes, as in ClickHouse), and casts to a
/// ClickHouse type (`CAST(x AS UInt32)`, `x::Nullable(Decimal(9, 2))`), which
/// DataFusion's SQL types cannot name: `__qh_cast(x, 'T')`.
fn literal_or_cast(e: &Expr) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{CastKind, Value};
    match e {
        Expr::Identifier(id) if id.quote_style.is_none() => {
            let v = match id.value.to_ascii_lowercase().as_str() {
                "inf" | "infinity" => "inf",
                "nan" => "NaN",
                _ => return None,
            };
            Some(Expr::value(Value::Number(v.into(), false)))
        }
        Expr::Cast {
            kind: CastKind::Cast | CastKind::DoubleColon,
            expr,
            data_type,
            format: None,
            array: false,
        } => {
            let name = functions::ch_type_name(data_type);
            // An unknown name goes too: `__qh_cast` refuses it with 50.
            let custom = matches!(
                data_type,
                datafusion::sql::sqlparser::ast::DataType::Custom(..)
            );
            if name.parse::<qh_types::ChType>().is_err() && !custom {
                return None;
            }
            Some(Expr::Function(func(
                "__qh_cast",
                vec![
                    expr.as_ref().clone(),
                    Expr::value(Value::SingleQuotedString(name)),
                ],
            )))
        }
        _ => None,
    }
}

/// Functions whose result is a DateTime, for `DateTime ± seconds`.
const DATETIME_FUNCTIONS: &[&str] = &[
    "todatetime",
    "now",
    "tostartofminute",
    "tostartoffiveminutes",
    "tostartoffiveminute",
    "tostartoftenminutes",
    "tostartoffifteenminutes",
    "tostartofhour",
    "tostartofinterval",
];

fn is_datetime_call(e: &Expr) -> bool {
    matches!(e, Expr::Function(f)
        if DATETIME_FUNCTIONS.contains(&f.name.to_string().to_ascii_lowercase().as_str()))
}

/// An interval value: `INTERVAL …`, or the `toInterval…` call a
/// non-constant one becomes.
fn is_interval(e: &Expr) -> bool {
    match e {
        Expr::Interval(_) => true,
        Expr::Nested(inner) => is_interval(inner),
        Expr::Function(f) => f
            .name
            .to_string()
            .to_ascii_lowercase()
            .starts_with("tointerval"),
        _ => false,
    }
}

/// `INTERVAL expr UNIT` with a non-constant `expr` (`INTERVAL number
/// MONTH`), which DataFusion plans only for literals, or in quarters:
/// `toIntervalUnit(expr)`.
fn computed_interval(e: &Expr) -> Option<Expr> {
    let Expr::Interval(i) = e else {
        return None;
    };
    let constant = match i.value.as_ref() {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } => matches!(expr.as_ref(), Expr::Value(_)),
        _ => false,
    };
    if i.last_field.is_some() || i.fractional_seconds_precision.is_some() {
        return None;
    }
    let unit = i.leading_field.as_ref()?.to_string().to_ascii_lowercase();
    let unit = unit.strip_suffix('s').unwrap_or(&unit);
    // Arrow's interval parser has no quarters.
    if constant && unit != "quarter" {
        return None;
    }
    crate::functions::INTERVAL_UNITS.contains(&unit).then(|| {
        Expr::Function(func(
            &format!("tointerval{unit}"),
            vec![i.value.as_ref().clone()],
        ))
    })
}

/// The function that makes a DateTime precise enough for `interval`, when
/// that is in milli-, micro- or nanoseconds.
fn sub_second_widening(interval: &Expr) -> Option<&'static str> {
    let Expr::Interval(i) = interval else {
        return None;
    };
    let unit = i.leading_field.as_ref()?.to_string().to_ascii_lowercase();
    let unit = unit.strip_suffix('s').unwrap_or(&unit);
    crate::functions::AT_LEAST_PRECISION
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, f)| *f)
}

fn rewrite_expr(e: &mut Expr) {
    if let Some(new) = literal_or_cast(e) {
        *e = new;
        return;
    }
    // `DateTime ± INTERVAL n MILLISECOND` is a DateTime64(3) in ClickHouse
    // (DataFusion would keep whole seconds and drop the rest).
    if let Expr::BinaryOp {
        left,
        op: op @ (BinaryOperator::Plus | BinaryOperator::Minus),
        right,
    } = e
    {
        let plus = matches!(op, BinaryOperator::Plus);
        if let Some(f) = sub_second_widening(right) {
            let inner = std::mem::replace(
                left.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            **left = Expr::Function(func(f, vec![inner]));
        } else if let Some(f) = sub_second_widening(left).filter(|_| plus) {
            let inner = std::mem::replace(
                right.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            **right = Expr::Function(func(f, vec![inner]));
        }
    }
    if let Some(new) = computed_interval(e) {
        *e = new;
        return;
    }
    if let Some(new) = arrays::subscript(e) {
        *e = new;
        return;
    }
    // ClickHouse's map literal `{'a': 1, 'b': 2}` (string keys).
    if let Expr::Dictionary(fields) = e {
        let mut args = Vec::with_capacity(fields.len() * 2);
        for f in fields.iter() {
            args.push(Expr::value(
                datafusion::sql::sqlparser::ast::Value::SingleQuotedString(f.key.value.clone()),
            ));
            args.push(f.value.as_ref().clone());
        }
        if !args.is_empty() {
            *e = functions::map_of_pairs(args);
            return;
        }
    }
    // SQL's SUBSTRING / POSITION syntax: ClickHouse's byte-counting forms.
    match e {
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![expr.as_ref().clone()];
            args.push(substring_from.as_deref().cloned().unwrap_or_else(|| {
                Expr::value(datafusion::sql::sqlparser::ast::Value::Number(
                    "1".into(),
                    false,
                ))
            }));
            if let Some(n) = substring_for {
                args.push(n.as_ref().clone());
            }
            *e = Expr::Function(func("__qh_substring", args));
            return;
        }
        Expr::Position { expr, r#in } => {
            *e = Expr::Function(func(
                "__qh_position",
                vec![r#in.as_ref().clone(), expr.as_ref().clone()],
            ));
            return;
        }
        _ => {}
    }
    in_lists::in_function(e);
    in_lists::null_free_in_list(e);
    // Unary minus on a non-literal: ClickHouse's negate (unsigned → signed);
    // literals stay literals (typing, pruning).
    if let Expr::UnaryOp {
        op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus,
        expr,
    } = e
    {
        if !matches!(expr.as_ref(), Expr::Value(_)) {
            let inner = std::mem::replace(
                expr.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            *e = Expr::Function(func("negate", vec![inner]));
            return;
        }
    }
    // ClickHouse adds whole seconds to a DateTime (`toDateTime(..) + n`);
    // DataFusion adds only intervals. Where the DateTime side is visibly a
    // DateTime function, go through the unix timestamp.
    if let Expr::BinaryOp {
        left,
        op: op @ (BinaryOperator::Plus | BinaryOperator::Minus),
        right,
    } = e
    {
        let left_dt = is_datetime_call(left) && !is_interval(right);
        let right_dt =
            matches!(op, BinaryOperator::Plus) && is_datetime_call(right) && !is_interval(left);
        if left_dt || right_dt {
            let (dt, n) = if left_dt {
                (left.as_ref().clone(), right.as_ref().clone())
            } else {
                (right.as_ref().clone(), left.as_ref().clone())
            };
            let seconds = Expr::BinaryOp {
                left: Box::new(Expr::Function(func("tounixtimestamp", vec![dt]))),
                op: op.clone(),
                right: Box::new(Expr::Nested(Box::new(n))),
            };
            *e = Expr::Function(func("todatetime", vec![seconds]));
            return;
        }
    }
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And | BinaryOperator::Or | BinaryOperator::Xor,
            right,
        } => {
            as_condition(left);
            as_condition(right);
        }
        Expr::UnaryOp {
            op: datafusion::sql::sqlparser::ast::UnaryOperator::Not,
            expr,
        } => as_condition(expr),
        // `CASE x WHEN v THEN ...` compares x with values: they are no
        // conditions.
        Expr::Case {
            operand: None,
            conditions,
            ..
        } => {
            for c in conditions {
                as_condition(&mut c.condition);
            }
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Divide,
            ..
        } => {
            // ClickHouse's `/` is floating-point division but for Decimals
            // (operators/decimals.rs, which knows the operands' types).
            let l = std::mem::replace(
                left.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            **left = Expr::Function(func(crate::functions::DIVIDEND, vec![l]));
        }
        Expr::Function(f) => {
            if let Some(new) = rewrite_function(f) {
                *e = new;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rw(sql: &str) -> String {
        let mut q = Parser::new(&ClickHouseDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_query()
            .unwrap();
        rewrite_query(&mut q).unwrap();
        q.to_string()
    }

    #[test]
    fn maps_clickhouse_functions() {
        assert_eq!(
            rw("SELECT count() FROM t"),
            "SELECT count(*) AS \"count()\" FROM t"
        );
        assert!(rw("SELECT uniq(x) FROM t").contains("count(DISTINCT x)"));
        // A number is a condition (x != 0); a comparison stays as it is.
        assert!(
            rw("SELECT if(a, 1, 2) FROM t").contains("CASE WHEN __qh_bool(a) THEN 1 ELSE 2 END")
        );
        assert!(rw("SELECT if(a = 1, 1, 2) FROM t").contains("CASE WHEN a = 1 THEN 1 ELSE 2 END"));
        assert!(rw("SELECT toYYYYMM(ts) AS m FROM t").contains("toyyyymm(ts) AS m"));
        assert!(rw("SELECT a / b AS r FROM t").contains("__qh_dividend(a) / b"));
        assert!(
            rw("SELECT x FROM t PREWHERE a = 1 WHERE b = 2").contains("WHERE (a = 1) AND (b = 2)")
        );
    }
}
