//! Views (`CREATE VIEW v AS SELECT ...`): ClickHouse's normal views. A view
//! is a catalog entry with engine [`EngineKind::View`] and no data: the
//! SELECT's text as written, the database its unqualified tables name (the
//! current one at CREATE, as ClickHouse's AddDefaultDatabaseVisitor does),
//! and the columns its result had then (DESCRIBE, system.columns).
//!
//! A statement that reads a view reads its query in its place: before
//! planning, every `FROM v` becomes `FROM (<v's query>) AS v`, parsed again
//! with the same token passes as any statement, so the view's query goes
//! through the same rewrites and plan as if it were written inline. Views of
//! views expand in turn (at most [`MAX_DEPTH`] deep, which also stops a cycle
//! made with CREATE OR REPLACE). The reader needs SELECT on the view and on
//! the tables under it (ClickHouse's default `SQL SECURITY INVOKER`).

use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, TableAlias, TableFactor, Visit, VisitMut, Visitor,
    VisitorMut,
};

use super::*;
use crate::statement::CreateView;

/// How many views deep one table reference may expand.
const MAX_DEPTH: usize = 32;

impl Session {
    /// `CREATE [OR REPLACE] VIEW`.
    pub(super) async fn create_view(&mut self, cv: Box<CreateView>) -> Result<QueryResult> {
        let cat = Arc::clone(&self.engine.catalog);
        let db = cv
            .view
            .database
            .clone()
            .unwrap_or_else(|| self.database.clone());
        if !cat.has_database(&db) {
            return Err(StorageError::UnknownDatabase(db).into());
        }
        let existing = cat.table(&db, &cv.view.name).ok();
        match &existing {
            Some(_) if cv.if_not_exists => return Ok(QueryResult::empty()),
            Some(t) if cv.or_replace && matches!(t.meta().engine, EngineKind::View { .. }) => {}
            Some(_) => {
                return Err(StorageError::TableExists(db, cv.view.name.clone()).into());
            }
            None => {}
        }
        let engine = EngineKind::View {
            query: cv.query_sql.clone(),
            database: self.database.clone(),
        };
        // Planned (not run) as a reader of the view would: checks that
        // every table exists and gives the columns.
        let mut final_tables = HashSet::new();
        let mut query = view_query(&cv.query_sql, &self.database, &mut final_tables)?;
        // A view its own query reaches (through others, after OR REPLACE)
        // would never finish expanding.
        self.expand_views_for(
            &mut query,
            &mut final_tables,
            Some((db.as_str(), cv.view.name.as_str())),
        )?;
        let settings = without_result_limits(&self.settings);
        let (schema, _, _) = self
            .plan_and_run(query, final_tables, &settings, select::Run::Schema)
            .await?;
        let mut columns = Vec::with_capacity(schema.fields().len());
        let mut seen = HashSet::new();
        for f in schema.fields() {
            if !seen.insert(f.name().clone()) {
                return Err(QueryError::DuplicateColumn(format!(
                    "Column {} specified more than once in the view's query",
                    f.name()
                )));
            }
            let ty = ChType::from_arrow(f.data_type()).ok_or_else(|| {
                QueryError::UnknownType(format!(
                    "a view cannot have a column of type {}",
                    f.data_type()
                ))
            })?;
            columns.push(qh_storage::ColumnDef {
                name: f.name().clone(),
                ty,
                default: None,
                kind: qh_storage::ColumnKind::Default,
                codec: None,
                former_types: Vec::new(),
            });
        }
        let meta = TableMeta {
            format_version: qh_storage::meta::TABLE_META_VERSION,
            database: db.clone(),
            name: cv.view.name.clone(),
            columns,
            engine,
            order_by: vec![],
            primary_key: vec![],
            partition_by: None,
            index_columns: vec![],
            settings: Default::default(),
            schema_version: 1,
            replicated: None,
        };
        if existing.is_some() {
            cat.drop_table(&db, &cv.view.name, true)?;
        }
        cat.create_table(meta, false)?;
        Ok(QueryResult::empty())
    }

    /// Replaces every view `query` reads by its query (see the module
    /// documentation); FINAL inside a view's query joins `final_tables`.
    /// Checks the reader's privileges on what the views read.
    pub(super) fn expand_views(
        &self,
        query: &mut Query,
        final_tables: &mut HashSet<String>,
    ) -> Result<()> {
        self.expand_views_for(query, final_tables, None)
    }

    /// [`Session::expand_views`] for the query of the view `creating`
    /// (INFINITE_LOOP if it reads itself).
    fn expand_views_for(
        &self,
        query: &mut Query,
        final_tables: &mut HashSet<String>,
        creating: Option<(&str, &str)>,
    ) -> Result<()> {
        let mut expand = Expand {
            session: self,
            creating,
            outer_final: final_tables.clone(),
            final_tables: HashSet::new(),
            ctes: HashSet::new(),
            depth: 0,
            expanded: false,
        };
        let expanded = expand.run(query)?;
        if expanded {
            final_tables.extend(expand.final_tables);
            self.check_reads(query)?;
        }
        Ok(())
    }
}

/// A parsed view query as a [`Query`] (WITH and body); its text was
/// checked at CREATE, but is checked again: a view outlives releases.
fn view_query(sql: &str, database: &str, final_tables: &mut HashSet<String>) -> Result<Query> {
    let Statement::Select {
        mut query,
        final_tables: finals,
        totals,
        format,
        settings,
    } = parse_statement(sql)?
    else {
        return Err(QueryError::other(
            ErrorCode::INCORRECT_QUERY,
            format!("a view's query must be a SELECT: {sql}"),
        ));
    };
    if totals || format.is_some() || settings.iter().next().is_some() {
        return Err(QueryError::NotImplemented(
            "WITH TOTALS, FORMAT and SETTINGS in a view's query are not supported".into(),
        ));
    }
    final_tables.extend(finals);
    qualify_tables(&mut query, database);
    Ok(*query)
}

/// Names every unqualified table of `query` (not a CTE) in `database`.
fn qualify_tables(query: &mut Query, database: &str) {
    #[derive(Default)]
    struct Ctes(BTreeSet<String>);
    impl Visitor for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                for cte in &with.cte_tables {
                    self.0.insert(cte.alias.name.value.clone());
                }
            }
            ControlFlow::Continue(())
        }
    }
    struct Qualify<'a> {
        ctes: BTreeSet<String>,
        database: &'a str,
    }
    impl VisitorMut for Qualify<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name, args: None, ..
            } = factor
            {
                if let [ObjectNamePart::Identifier(i)] = name.0.as_slice() {
                    if !self.ctes.contains(&i.value) {
                        *name = ObjectName::from(vec![Ident::new(self.database), i.clone()]);
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut ctes = Ctes::default();
    let _ = Visit::visit(&*query, &mut ctes);
    let _ = query.visit(&mut Qualify {
        ctes: ctes.0,
        database,
    });
}

struct Expand<'a> {
    session: &'a Session,
    /// The view being created (or replaced): reading it is a cycle.
    creating: Option<(&'a str, &'a str)>,
    /// FINAL as the statement wrote it (on a view it is refused).
    outer_final: HashSet<String>,
    /// FINAL inside the views' queries.
    final_tables: HashSet<String>,
    /// The CTE names of the query: `FROM name` means them, not a view.
    ctes: HashSet<String>,
    /// Views around this query (0: the statement itself).
    depth: usize,
    expanded: bool,
}

/// A view a table reference names.
struct ViewRef {
    db: String,
    name: String,
    query: String,
    /// Where its query's unqualified tables are.
    database: String,
}

impl Expand<'_> {
    /// Expands every view `query` reads; true when there was one.
    fn run(&mut self, query: &mut Query) -> Result<bool> {
        let mut visitor = ExpandVisitor {
            expand: self,
            error: None,
        };
        let _ = query.visit(&mut visitor);
        match visitor.error {
            Some(e) => Err(e),
            None => Ok(self.expanded),
        }
    }

    fn view_of(&self, name: &ObjectName) -> Option<ViewRef> {
        let parts: Vec<&Ident> = name.0.iter().filter_map(|p| p.as_ident()).collect();
        let (db, table) = match parts.as_slice() {
            [t] => {
                if self.ctes.contains(&t.value) || self.session.temporary_table(&t.value).is_some()
                {
                    return None;
                }
                (self.session.database.clone(), t.value.clone())
            }
            [d, t] => (d.value.clone(), t.value.clone()),
            _ => return None,
        };
        let meta = self.session.engine.catalog.table(&db, &table).ok()?.meta();
        match meta.engine {
            EngineKind::View { query, database } => Some(ViewRef {
                db,
                name: table,
                query,
                database,
            }),
            _ => None,
        }
    }

    /// The subquery that replaces a reference to `view`, its own views
    /// expanded.
    fn expand(&mut self, view: &ViewRef) -> Result<Query> {
        if self.outer_final.contains(&view.name) {
            return Err(QueryError::other(
                ErrorCode::ILLEGAL_FINAL,
                format!(
                    "Storage View ({}.{}) doesn't support FINAL",
                    view.db, view.name
                ),
            ));
        }
        if self.creating == Some((view.db.as_str(), view.name.as_str())) {
            return Err(QueryError::other(
                ErrorCode::INFINITE_LOOP,
                format!(
                    "Cannot add dependencies for '{}.{}', because it would read itself (cyclic dependencies)",
                    view.db, view.name
                ),
            ));
        }
        if self.depth >= MAX_DEPTH {
            return Err(QueryError::other(
                ErrorCode::TOO_DEEP_RECURSION,
                format!(
                    "Views nested more than {MAX_DEPTH} deep (or in a cycle) reading {}.{}",
                    view.db, view.name
                ),
            ));
        }
        let mut subquery = view_query(&view.query, &view.database, &mut self.final_tables)?;
        let mut inner = Expand {
            session: self.session,
            creating: self.creating,
            outer_final: HashSet::new(),
            final_tables: HashSet::new(),
            ctes: HashSet::new(),
            depth: self.depth + 1,
            expanded: false,
        };
        inner.run(&mut subquery)?;
        self.final_tables.extend(inner.final_tables);
        self.expanded = true;
        Ok(subquery)
    }
}

struct ExpandVisitor<'e, 'a> {
    expand: &'e mut Expand<'a>,
    error: Option<QueryError>,
}

impl VisitorMut for ExpandVisitor<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.expand.ctes.insert(cte.alias.name.value.clone());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let Some(view) = self.expand.view_of(name) else {
            return ControlFlow::Continue(());
        };
        let subquery = match self.expand.expand(&view) {
            Ok(q) => q,
            Err(e) => {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        };
        let alias = alias.take().unwrap_or(TableAlias {
            explicit: true,
            name: Ident::new(view.name),
            columns: vec![],
            at: None,
        });
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(subquery),
            alias: Some(alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}
