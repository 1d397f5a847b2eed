//! ClickHouse's `ARRAY JOIN` clause. sqlparser reads `t ARRAY JOIN a AS x`
//! as a join whose "table" is `a`; DataFusion would then look for a table
//! named `a`. It becomes the `arrayJoin` function over the left relation:
//! `FROM (SELECT *, arrayJoin(a) AS x FROM t) AS t`, and with no alias
//! `SELECT * REPLACE (arrayJoin(a) AS a)`, so that `a` names the element
//! after the clause as in ClickHouse. `LEFT ARRAY JOIN` joins an empty
//! array as one default element (`[a[1]]`: indexing past the end gives the
//! element type's default). A `SELECT *` above leaves out the clause's
//! aliases, as ClickHouse's does. Several arrays in one clause (zipped in
//! ClickHouse) and ARRAY JOIN beside other joins are refused.

use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Expr, Ident, JoinOperator, ReplaceSelectElement, ReplaceSelectItem, Select,
    SelectItem, SetExpr, TableAlias, TableFactor, WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{QueryError, Result};

/// Rewrites the ARRAY JOIN of every SELECT of `body` (UNION branches too).
pub(super) fn array_join(body: &mut SetExpr) -> Result<()> {
    match body {
        SetExpr::Select(select) => select_array_join(select),
        SetExpr::SetOperation { left, right, .. } => {
            array_join(left)?;
            array_join(right)
        }
        _ => Ok(()),
    }
}

fn is_array_join(op: &JoinOperator) -> bool {
    matches!(
        op,
        JoinOperator::ArrayJoin | JoinOperator::LeftArrayJoin | JoinOperator::InnerArrayJoin
    )
}

fn refuse<T>(why: &str) -> Result<T> {
    Err(QueryError::NotImplemented(format!(
        "ARRAY JOIN {why} is not supported yet"
    )))
}

fn select_array_join(select: &mut Select) -> Result<()> {
    let Some(first) = select.from.first() else {
        return Ok(());
    };
    let Some(at) = first
        .joins
        .iter()
        .position(|j| is_array_join(&j.join_operator))
    else {
        return Ok(());
    };
    // `ARRAY JOIN a AS x, b AS y` parses as a comma join after the clause.
    if select.from.len() > 1 {
        return refuse("of several arrays");
    }
    if first.joins.len() > 1 || at != 0 {
        return refuse("together with other joins");
    }
    let from = &mut select.from[0];
    let join = from.joins.remove(0);
    let left = matches!(join.join_operator, JoinOperator::LeftArrayJoin);
    let TableFactor::Table {
        name, alias, args, ..
    } = join.relation
    else {
        return refuse("of this expression");
    };
    let name_expr = || -> Expr {
        match name.0.as_slice() {
            [one] => Expr::Identifier(
                one.as_ident()
                    .cloned()
                    .unwrap_or_else(|| Ident::new(one.to_string())),
            ),
            _ => Expr::CompoundIdentifier(
                name.0
                    .iter()
                    .filter_map(|p| p.as_ident().cloned())
                    .collect(),
            ),
        }
    };
    let array = match args {
        None => name_expr(),
        // `ARRAY JOIN range(n) AS r`: sqlparser read a table function.
        Some(a) => parse_expr(&format!(
            "{name}({})",
            a.args
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))?,
    };
    let element = if left {
        parse_expr(&format!(
            "arrayJoin(if(length({array}) = 0, [({array})[1]], {array}))"
        ))?
    } else {
        parse_expr(&format!("arrayJoin({array})"))?
    };
    let plain = WildcardAdditionalOptions::default();
    let (inner_items, hidden) = match (alias, &array) {
        (Some(a), _) => (
            vec![
                SelectItem::Wildcard(plain.clone()),
                SelectItem::ExprWithAlias {
                    expr: element,
                    alias: a.name.clone(),
                },
            ],
            Some(a.name),
        ),
        (None, Expr::Identifier(column)) => (
            vec![SelectItem::Wildcard(WildcardAdditionalOptions {
                opt_replace: Some(ReplaceSelectItem {
                    items: vec![Box::new(ReplaceSelectElement {
                        expr: element,
                        column_name: column.clone(),
                        as_keyword: true,
                    })],
                }),
                ..plain.clone()
            })],
            None,
        ),
        (None, _) => return refuse("of an expression without an alias"),
    };
    let relation_alias = match &from.relation {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Some(a.name.clone())
        }
        TableFactor::Table { name, .. } => name.0.last().and_then(|p| p.as_ident().cloned()),
        _ => None,
    };
    // `SELECT <items> FROM <relation>`, the relation moved in from the outer
    // query (which gets the placeholder back, then the subquery).
    let mut subquery = Parser::new(&ClickHouseDialect {})
        .try_with_sql("SELECT 1 FROM t")
        .and_then(|mut p| p.parse_query())
        .map_err(|e| crate::error::syntax_error("SELECT 1 FROM t", &e))?;
    let SetExpr::Select(inner) = subquery.body.as_mut() else {
        return refuse("here");
    };
    inner.projection = inner_items;
    std::mem::swap(&mut inner.from[0].relation, &mut from.relation);
    from.relation = TableFactor::Derived {
        lateral: false,
        subquery,
        alias: relation_alias.map(|name| TableAlias {
            explicit: true,
            name,
            columns: vec![],
            at: None,
        }),
        sample: None,
    };
    // `SELECT *` and `t.*` show the relation's columns, not the clause's alias.
    if let Some(hidden) = hidden {
        for item in select.projection.iter_mut() {
            if let SelectItem::Wildcard(o) | SelectItem::QualifiedWildcard(_, o) = item {
                if o.opt_exclude.is_none() {
                    o.opt_exclude = Some(ExcludeSelectItem::Single(hidden.clone().into()));
                }
            }
        }
    }
    Ok(())
}

fn parse_expr(sql: &str) -> Result<Expr> {
    Parser::new(&ClickHouseDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| crate::error::syntax_error(sql, &e))
}
