//! `... JOIN t USING (id) WHERE id > 0`: DataFusion 55 plans a WHERE without
//! the join's USING columns and calls the unqualified `id` ambiguous (its
//! SELECT list, GROUP BY and ORDER BY resolve it). The WHERE's references are
//! qualified here with the join's right relation, which always has the
//! column; after an outer join it holds the merged key (`joins/using.rs`).
//!
//! `SELECT *` over one `USING` join lists the USING columns first, in their
//! order, then the left's other columns, then the right's, as ClickHouse
//! does (DataFusion keeps the tables' column order).

use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Expr, Ident, Join, JoinConstraint, JoinOperator, ObjectName, Select,
    SelectItem, SelectItemQualifiedWildcardKind, SetExpr, TableAlias, TableFactor,
    WildcardAdditionalOptions,
};

/// Qualifies the USING columns a SELECT's WHERE names (UNION branches too).
pub(super) fn qualify_using_columns(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            using_columns_first(select);
            let Some(selection) = select.selection.as_mut() else {
                return;
            };
            // `k` → `r.k`, from the first join naming k.
            let mut columns: Vec<(String, Expr)> = Vec::new();
            for from in &select.from {
                for join in &from.joins {
                    let (Some(keys), Some(side)) = (using_keys(join), qualifier(&join.relation))
                    else {
                        continue;
                    };
                    for key in keys {
                        if !columns.iter().any(|(n, _)| *n == key.value) {
                            let mut parts = side.clone();
                            parts.push(key.clone());
                            columns.push((key.value, Expr::CompoundIdentifier(parts)));
                        }
                    }
                }
            }
            if !columns.is_empty() {
                super::aliases::substitute_aliases(selection, &columns, None);
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            qualify_using_columns(left);
            qualify_using_columns(right);
        }
        _ => {}
    }
}

/// `SELECT *` over `l JOIN r USING (k1, k2)` → `SELECT k1, k2, l.* EXCLUDE
/// (k1, k2), r.* EXCLUDE (k1, k2)`.
fn using_columns_first(select: &mut Select) {
    let [from] = select.from.as_slice() else {
        return;
    };
    let [join] = from.joins.as_slice() else {
        return;
    };
    let plain = WildcardAdditionalOptions::default();
    let star = |i: &SelectItem| matches!(i, SelectItem::Wildcard(o) if *o == plain);
    if using_keys(join).is_none() || !select.projection.iter().any(star) {
        return;
    }
    // An unaliased subquery (`joined_subquery_requires_alias = 0`) gets a
    // name of its own, so that its columns can be listed after the keys.
    let from = &mut select.from[0];
    name_derived(&mut from.relation, "__qh_join_left");
    name_derived(&mut from.joins[0].relation, "__qh_join_right");
    let (from, join) = (&select.from[0], &select.from[0].joins[0]);
    let (Some(keys), Some(left), Some(right)) = (
        using_keys(join),
        qualifier(&from.relation),
        qualifier(&join.relation),
    ) else {
        return;
    };
    let Some(at) = select.projection.iter().position(star) else {
        return;
    };
    let side = |q: Vec<Ident>| {
        let options = WildcardAdditionalOptions {
            opt_exclude: Some(ExcludeSelectItem::Multiple(
                keys.iter()
                    .map(|k| ObjectName::from(vec![k.clone()]))
                    .collect(),
            )),
            ..plain.clone()
        };
        SelectItem::QualifiedWildcard(
            SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(q)),
            options,
        )
    };
    let mut items: Vec<SelectItem> = keys
        .iter()
        .map(|k| SelectItem::UnnamedExpr(Expr::Identifier(k.clone())))
        .collect();
    items.push(side(left));
    items.push(side(right));
    select.projection.splice(at..=at, items);
}

fn name_derived(t: &mut TableFactor, name: &str) {
    if let TableFactor::Derived {
        alias: alias @ None,
        ..
    } = t
    {
        *alias = Some(TableAlias {
            explicit: true,
            name: Ident::new(name),
            columns: vec![],
            at: None,
        });
    }
}

/// The columns of an inner or outer join's `USING (k1, k2)` (None for
/// another join, or a key that is not a plain name).
fn using_keys(join: &Join) -> Option<Vec<Ident>> {
    let constraint = match &join.join_operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::FullOuter(c) => c,
        _ => return None,
    };
    let JoinConstraint::Using(names) = constraint else {
        return None;
    };
    names
        .iter()
        .map(|n| match n.0.as_slice() {
            [part] => part.as_ident().cloned(),
            _ => None,
        })
        .collect()
}

/// The name a relation's columns are qualified with: its alias, else a
/// table's (possibly compound) name.
fn qualifier(t: &TableFactor) -> Option<Vec<Ident>> {
    match t {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Some(vec![a.name.clone()])
        }
        TableFactor::Table {
            name, alias: None, ..
        } => name
            .0
            .iter()
            .map(|p| p.as_ident().cloned())
            .collect::<Option<Vec<_>>>(),
        _ => None,
    }
}
