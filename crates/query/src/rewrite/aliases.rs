//! ClickHouse's aliases: a SELECT item's alias usable anywhere in its
//! query, `WITH expr AS name`, aliases written inside expressions
//! (`(expr AS name)`, marked by the statement parser) and chains of them —
//! each name replaced by its expression before DataFusion plans.

use super::*;

/// ClickHouse lets a SELECT's aliases be used anywhere in it — in WHERE and
/// PREWHERE and in other SELECT items (`SELECT 1 AS x, x + 1`) — and an
/// alias wins over a column of the same name. DataFusion sees aliases only
/// in GROUP BY, HAVING and ORDER BY, so the aliased expression is put in
/// their place elsewhere (not inside subqueries, which have their own).
pub(super) fn select_aliases(body: &mut SetExpr) {
    match body {
        SetExpr::Select(s) => {
            let mut aliases: Vec<(String, Expr)> = s
                .projection
                .iter()
                .filter_map(|item| match item {
                    SelectItem::ExprWithAlias { expr, alias } => {
                        Some((alias.value.clone(), expr.clone()))
                    }
                    _ => None,
                })
                .collect();
            if aliases.is_empty() {
                return;
            }
            resolve_alias_chains(&mut aliases);
            for item in s.projection.iter_mut() {
                match item {
                    SelectItem::ExprWithAlias { expr, alias } => {
                        substitute_aliases(expr, &aliases, Some(alias.value.as_str()))
                    }
                    SelectItem::UnnamedExpr(expr) => substitute_aliases(expr, &aliases, None),
                    _ => {}
                }
            }
            if let Some(w) = s.selection.as_mut() {
                substitute_aliases(w, &aliases, None);
            }
            if let Some(w) = s.prewhere.as_mut() {
                substitute_aliases(w, &aliases, None);
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            select_aliases(left);
            select_aliases(right);
        }
        _ => {}
    }
}

/// An alias may name another (`toString(d) AS t, toQuarter(t)`): puts the
/// named expressions into the aliases' own, a few links deep.
pub(super) fn resolve_alias_chains(aliases: &mut [(String, Expr)]) {
    for _ in 0..aliases.len().min(8) {
        let before = aliases.to_vec();
        for (name, expr) in aliases.iter_mut() {
            substitute_aliases(expr, &before, Some(name.as_str()));
        }
        if aliases == before.as_slice() {
            break;
        }
    }
}

/// Replaces identifiers naming an alias (other than `own`) by the aliased
/// expression, outside subqueries. Replacement happens after the children
/// were visited, so an inserted expression is not searched again.
pub(super) fn substitute_aliases(e: &mut Expr, aliases: &[(String, Expr)], own: Option<&str>) {
    let _ = e.visit(&mut AliasSubstitution {
        aliases,
        own,
        depth: 0,
        level: 0,
    });
}

/// Puts aliased expressions in place of their names at one query nesting
/// `level` (0: the expression visited, 1: the query visited).
struct AliasSubstitution<'a> {
    aliases: &'a [(String, Expr)],
    own: Option<&'a str>,
    depth: usize,
    level: usize,
}

impl VisitorMut for AliasSubstitution<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }
    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if self.depth != self.level {
            return ControlFlow::Continue(());
        }
        if let Expr::Identifier(i) = e {
            if Some(i.value.as_str()) != self.own {
                if let Some((_, expr)) = self.aliases.iter().find(|(n, _)| *n == i.value) {
                    *e = Expr::Nested(Box::new(expr.clone()));
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The expression and name of an alias written inside an expression,
/// `__qh_alias(expr, 'name')` from the statement parser.
pub(super) fn inline_alias(e: &Expr) -> Option<(Expr, String)> {
    let Expr::Function(f) = e else {
        return None;
    };
    if f.name.to_string() != INLINE_ALIAS {
        return None;
    }
    match args_of(&f.args).as_slice() {
        [expr, Expr::Value(v)] => match &v.value {
            datafusion::sql::sqlparser::ast::Value::SingleQuotedString(name) => {
                Some((expr.clone(), name.clone()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Takes ClickHouse's aliases inside expressions (`(expr AS name)`) out of
/// `q` and returns them: each becomes `expr` where it was written, and
/// `name` means `expr` in the rest of the query as a WITH alias would. A
/// SELECT item that is just such an alias is named by it, as in ClickHouse.
pub(super) fn take_inline_aliases(q: &mut Query) -> Vec<(String, Expr)> {
    fn peel(e: &Expr) -> &Expr {
        match e {
            Expr::Nested(inner) => peel(inner),
            e => e,
        }
    }
    if !q.to_string().contains(INLINE_ALIAS) {
        return Vec::new();
    }
    if let SetExpr::Select(s) = q.body.as_mut() {
        for item in s.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e) = item {
                if let Some((expr, name)) = inline_alias(peel(e)) {
                    *item = SelectItem::ExprWithAlias {
                        expr: Expr::Nested(Box::new(expr)),
                        alias: Ident::new(name),
                    };
                }
            }
        }
    }
    // This query's own level only: a subquery's aliases are its own (taken
    // when the rewrite visits it).
    struct Take {
        depth: usize,
        aliases: Vec<(String, Expr)>,
    }
    impl VisitorMut for Take {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if self.depth == 1 {
                if let Some((expr, name)) = inline_alias(e) {
                    *e = Expr::Nested(Box::new(expr.clone()));
                    self.aliases.push((name, expr));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut take = Take {
        depth: 0,
        aliases: Vec::new(),
    };
    let _ = q.visit(&mut take);
    take.aliases
}

/// Removes the `WITH expr AS name` items of `q` (carried as CTEs named
/// `__qh_with_name` by the statement parser) and returns them.
pub(super) fn take_with_aliases(q: &mut Query) -> Vec<(String, Expr)> {
    let Some(with) = q.with.as_mut() else {
        return Vec::new();
    };
    let mut aliases = Vec::new();
    with.cte_tables.retain(|cte| {
        let Some(name) = cte.alias.name.value.strip_prefix(WITH_ALIAS_PREFIX) else {
            return true;
        };
        if let SetExpr::Select(s) = cte.query.body.as_ref() {
            if let [SelectItem::UnnamedExpr(e)] = s.projection.as_slice() {
                aliases.push((name.to_string(), e.clone()));
                return false;
            }
        }
        true
    });
    if with.cte_tables.is_empty() {
        q.with = None;
    }
    aliases
}

/// Puts each WITH alias's expression in place of its name everywhere in
/// the query's own level (its subqueries get theirs when visited, so their
/// SELECT items are named first). An alias wins over a column of the same
/// name, as in ClickHouse.
pub(super) fn with_aliases(q: &mut Query, aliases: &[(String, Expr)]) {
    // `SELECT name` keeps the column name `name`.
    fn name_items(body: &mut SetExpr, aliases: &[(String, Expr)]) {
        match body {
            SetExpr::Select(s) => {
                for item in s.projection.iter_mut() {
                    if let SelectItem::UnnamedExpr(Expr::Identifier(i)) = item {
                        if let Some((_, expr)) = aliases.iter().find(|(n, _)| *n == i.value) {
                            *item = SelectItem::ExprWithAlias {
                                expr: Expr::Nested(Box::new(expr.clone())),
                                alias: i.clone(),
                            };
                        }
                    }
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                name_items(left, aliases);
                name_items(right, aliases);
            }
            _ => {}
        }
    }
    name_items(&mut q.body, aliases);
    let _ = q.visit(&mut AliasSubstitution {
        aliases,
        own: None,
        depth: 0,
        level: 1,
    });
}
