//! `SELECT *` (and `t.*`) leaves out MATERIALIZED and ALIAS columns, as in
//! ClickHouse; they are read only when named. The tables' schemas hold every
//! column (DataFusion must plan a named one), so each wildcard over a table
//! with such columns gets them as an `EXCLUDE` list before planning.

use std::ops::ControlFlow;

use super::*;
use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Ident, ObjectName, ObjectNamePart, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, TableFactor, TableWithJoins, VisitMut, VisitorMut,
};

impl Session {
    pub(super) fn hide_computed_columns(&self, query: &mut Query) {
        let mut v = HideComputed { session: self };
        let _ = query.visit(&mut v);
    }

    /// The MATERIALIZED and ALIAS columns of the table `name` names, if any.
    fn computed_columns_of(&self, name: &ObjectName) -> Vec<String> {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| match p {
                ObjectNamePart::Identifier(i) => Some(i.value.clone()),
                _ => None,
            })
            .collect();
        let t = match parts.as_slice() {
            [table] => TableRef {
                database: None,
                name: table.clone(),
            },
            [db, table] => TableRef {
                database: Some(db.clone()),
                name: table.clone(),
            },
            _ => return Vec::new(),
        };
        let (db, table) = self.table_ref(&t);
        match self.engine.catalog.table(&db, &table) {
            Ok(t) => t
                .meta()
                .columns
                .iter()
                .filter(|c| c.kind.is_computed())
                .map(|c| c.name.clone())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

struct HideComputed<'a> {
    session: &'a Session,
}

impl HideComputed<'_> {
    /// (the name a qualified wildcard would use, its computed columns) of
    /// each table in `from`.
    fn tables(&self, from: &[TableWithJoins]) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        let mut add = |f: &TableFactor| {
            if let TableFactor::Table {
                name, alias, args, ..
            } = f
            {
                if args.is_some() {
                    return;
                }
                let hidden = self.session.computed_columns_of(name);
                if hidden.is_empty() {
                    return;
                }
                let used = match alias {
                    Some(a) => a.name.value.clone(),
                    None => name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map(|i| i.value.clone())
                        .unwrap_or_default(),
                };
                out.push((used, hidden));
            }
        };
        for t in from {
            add(&t.relation);
            for j in &t.joins {
                add(&j.relation);
            }
        }
        out
    }

    fn select(&self, body: &mut SetExpr) {
        match body {
            SetExpr::Select(s) => {
                let tables = self.tables(&s.from);
                if tables.is_empty() {
                    return;
                }
                for item in s.projection.iter_mut() {
                    let (options, hidden): (_, Vec<String>) = match item {
                        SelectItem::Wildcard(o) => (
                            o,
                            tables.iter().flat_map(|(_, h)| h.iter().cloned()).collect(),
                        ),
                        SelectItem::QualifiedWildcard(kind, o) => {
                            let q = match kind {
                                SelectItemQualifiedWildcardKind::ObjectName(n) => {
                                    n.0.last()
                                        .and_then(|p| p.as_ident())
                                        .map(|i| i.value.clone())
                                        .unwrap_or_default()
                                }
                                _ => continue,
                            };
                            (
                                o,
                                tables
                                    .iter()
                                    .filter(|(name, _)| *name == q)
                                    .flat_map(|(_, h)| h.iter().cloned())
                                    .collect(),
                            )
                        }
                        _ => continue,
                    };
                    let mut names: Vec<ObjectName> = match options.opt_exclude.take() {
                        Some(ExcludeSelectItem::Single(i)) => vec![i],
                        Some(ExcludeSelectItem::Multiple(v)) => v,
                        None => Vec::new(),
                    };
                    for h in hidden {
                        if !names.iter().any(|n| n.to_string() == h) {
                            names.push(ObjectName::from(vec![Ident::new(h)]));
                        }
                    }
                    if !names.is_empty() {
                        options.opt_exclude = Some(ExcludeSelectItem::Multiple(names));
                    }
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.select(left);
                self.select(right);
            }
            SetExpr::Query(q) => self.select(&mut q.body),
            _ => {}
        }
    }
}

impl VisitorMut for HideComputed<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        self.select(&mut q.body);
        ControlFlow::Continue(())
    }
}
