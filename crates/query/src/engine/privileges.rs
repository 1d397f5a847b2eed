//! What each statement needs granted ([`Session::needs`]) and the check
//! before it runs ([`Session::check_privileges`]): ACCESS_DENIED (497)
//! naming the missing grant, as ClickHouse words it, before the statement
//! touches anything (so it does not tell whether a table exists either).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, Query, SelectItem, TableFactor, Visit, Visitor,
};
use qh_access::{AccessStatement, Need, Privilege, UserDef};

use super::*;
use crate::statement::TableRef;

/// Table functions anyone may call: they read no table.
const FREE_TABLE_FUNCTIONS: &[&str] = &["numbers", "numbers_mt", "zeros", "zeros_mt", "one"];

/// What a query reads: tables (with the table functions), the names its
/// CTEs define, the identifiers it mentions and whether it selects `*`.
#[derive(Default)]
struct Reads {
    tables: Vec<(Vec<String>, bool)>,
    ctes: BTreeSet<String>,
    idents: BTreeSet<String>,
    wildcard: bool,
}

impl Visitor for Reads {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.clone());
            }
        }
        if let datafusion::sql::sqlparser::ast::SetExpr::Select(s) = q.body.as_ref() {
            if s.projection.iter().any(|p| {
                matches!(
                    p,
                    SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                )
            }) {
                self.wildcard = true;
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args, .. } = t {
            self.tables.push((parts_of(name), args.is_some()));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Identifier(i) => {
                self.idents.insert(i.value.clone());
            }
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last() {
                    self.idents.insert(last.value.clone());
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn parts_of(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(|i| i.value.clone())
                .unwrap_or_else(|| p.to_string())
        })
        .collect()
}

fn denied(user: &str, need: &Need, grant_option: bool) -> QueryError {
    QueryError::other(
        ErrorCode::ACCESS_DENIED,
        format!(
            "{user}: Not enough privileges. To execute this query, it's necessary to have the grant {}{}",
            need.grant_text(),
            if grant_option { " WITH GRANT OPTION" } else { "" }
        ),
    )
}

impl Session {
    /// The session user's current definition (grants change under a
    /// running session, as in ClickHouse); `None` without access control
    /// (`quorumhouse local`).
    pub(super) fn current_user(&self) -> Result<Option<UserDef>> {
        let Some(access) = self.engine.access() else {
            return Ok(None);
        };
        match access.local_user(&self.user) {
            Some(u) => Ok(Some(u)),
            None => Err(QueryError::other(
                ErrorCode::UNKNOWN_USER,
                format!("There is no user `{}` in replicated", self.user),
            )),
        }
    }

    /// Refuses `stmt` with ACCESS_DENIED unless the user holds every
    /// privilege it needs.
    pub(super) fn check_privileges(&self, stmt: &Statement) -> Result<()> {
        self.check_needs(|| self.needs(stmt))
    }

    /// Refuses unless the user holds every privilege `needs` lists
    /// (computed only when access is checked).
    fn check_needs(&self, needs: impl FnOnce() -> Vec<Need>) -> Result<()> {
        if !self.checked {
            return Ok(());
        }
        let Some(user) = self.current_user()? else {
            return Ok(());
        };
        for need in needs() {
            if !user.may(&need, false) {
                return Err(denied(&user.name, &need, false));
            }
        }
        Ok(())
    }

    /// Refuses a GRANT or REVOKE of `need` unless the user may pass it on.
    pub(super) fn check_grant_option(&self, need: &Need) -> Result<()> {
        if !self.checked {
            return Ok(());
        }
        if let Some(user) = self.current_user()? {
            if !user.may(need, true) {
                return Err(denied(&user.name, need, true));
            }
        }
        Ok(())
    }

    /// Refuses a GRANT or REVOKE of `roles` unless the user holds each with
    /// the admin option or manages access (ClickHouse's ROLE ADMIN).
    pub(super) fn check_role_admin(&self, roles: &[String]) -> Result<()> {
        if !self.checked {
            return Ok(());
        }
        if let Some(user) = self.current_user()? {
            if let Some(r) = roles.iter().find(|r| !user.may_admin(r)) {
                return Err(QueryError::other(
                    ErrorCode::ACCESS_DENIED,
                    format!(
                        "{}: Not enough privileges. To execute this query, it's necessary to have the role {r} WITH ADMIN OPTION or the grant ACCESS MANAGEMENT ON *.*",
                        user.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn table_need(&self, p: Privilege, t: &TableRef) -> Need {
        let db = t.database.clone().unwrap_or_else(|| self.database.clone());
        Need::on(p, &db, Some(&t.name))
    }

    /// The privileges `stmt` needs. GRANT and REVOKE are checked when they
    /// run (they need the grant option on what they pass on).
    pub(super) fn needs(&self, stmt: &Statement) -> Vec<Need> {
        match stmt {
            Statement::Select { query, .. } => self.select_needs(query),
            Statement::Explain(inner) => self.needs(inner),
            Statement::Insert(ins) => {
                let mut n = self.insert_needs(&ins.table);
                if let crate::statement::InsertSource::Select(q) = &ins.source {
                    n.extend(self.select_needs(q));
                }
                n
            }
            Statement::CreateTable(ct) if ct.temporary => Vec::new(),
            Statement::CreateTable(ct) => {
                let mut n = vec![self.table_need(Privilege::Create, &ct.table)];
                if let Some(q) = &ct.as_select {
                    n.push(self.table_need(Privilege::Insert, &ct.table));
                    n.extend(self.select_needs(q));
                }
                n
            }
            Statement::CreateView(cv) => {
                let mut n = vec![self.table_need(Privilege::Create, &cv.view)];
                n.extend(self.select_needs(&cv.query));
                n
            }
            Statement::CreateDatabase { name, .. } => vec![Need::on(Privilege::Create, name, None)],
            Statement::DropTable { table, .. } if self.is_temporary(table) => Vec::new(),
            Statement::DropTable { table, .. } => vec![self.table_need(Privilege::Drop, table)],
            Statement::DropDatabase { name, .. } => vec![Need::on(Privilege::Drop, name, None)],
            Statement::Truncate { table, .. } if self.is_temporary(table) => Vec::new(),
            Statement::Truncate { table, .. } => vec![self.table_need(Privilege::Truncate, table)],
            Statement::Alter { table, .. } => vec![self.table_need(Privilege::Alter, table)],
            Statement::Optimize { table, .. } => vec![self.table_need(Privilege::Optimize, table)],
            Statement::System(_) => vec![Need::global(Privilege::System)],
            Statement::KillQuery { .. } => vec![Need::global(Privilege::KillQuery)],
            Statement::ShowTables { database, .. } => {
                let db = database.clone().unwrap_or_else(|| self.database.clone());
                if db == "system" {
                    Vec::new()
                } else {
                    vec![Need::on(Privilege::Show, &db, None)]
                }
            }
            Statement::Describe { table, .. }
            | Statement::ShowCreateTable { table, .. }
            | Statement::Check { table, .. } => {
                if self.is_temporary(table) || table.database.as_deref() == Some("system") {
                    Vec::new()
                } else {
                    vec![self.table_need(Privilege::Show, table)]
                }
            }
            Statement::Exists { .. }
            | Statement::ShowDatabases { .. }
            | Statement::Set(_)
            | Statement::Use(_) => Vec::new(),
            Statement::Access(a) => match a {
                AccessStatement::CreateUser { .. }
                | AccessStatement::AlterUser { .. }
                | AccessStatement::DropUser { .. }
                | AccessStatement::ShowUsers
                | AccessStatement::ShowCreateUser { .. }
                | AccessStatement::CreateRole { .. }
                | AccessStatement::DropRole { .. }
                | AccessStatement::ShowRoles
                | AccessStatement::ShowCreateRole { .. }
                | AccessStatement::AlterRole { .. }
                | AccessStatement::CreateProfile { .. }
                | AccessStatement::AlterProfile { .. }
                | AccessStatement::DropProfile { .. }
                | AccessStatement::ShowProfiles
                | AccessStatement::ShowCreateProfile { .. }
                | AccessStatement::CreateQuota { .. }
                | AccessStatement::AlterQuota { .. }
                | AccessStatement::DropQuota { .. }
                | AccessStatement::ShowQuotas
                | AccessStatement::ShowCreateQuota { .. } => {
                    vec![Need::global(Privilege::AccessManagement)]
                }
                AccessStatement::Grant { .. }
                | AccessStatement::Revoke { .. }
                | AccessStatement::GrantRoles { .. }
                | AccessStatement::RevokeRoles { .. }
                | AccessStatement::ShowGrants { .. }
                | AccessStatement::ShowQuota => Vec::new(),
            },
        }
    }

    /// Refuses a query (with its views expanded) unless the user may read
    /// every table it reads.
    pub(super) fn check_reads(&self, query: &Query) -> Result<()> {
        self.check_needs(|| self.select_needs(query))
    }

    fn is_temporary(&self, t: &TableRef) -> bool {
        t.database.is_none() && self.temporary.contains_key(&t.name)
    }

    /// SELECT on every table the query reads (only the columns it names,
    /// when the table is known and the query has no `*`); SELECT on `*.*`
    /// for a table function that reads other tables or servers.
    fn select_needs(&self, query: &Query) -> Vec<Need> {
        let mut reads = Reads::default();
        let _ = query.visit(&mut reads);
        let mut needs = Vec::new();
        for (parts, is_function) in &reads.tables {
            if *is_function {
                let name = parts
                    .last()
                    .map(|n| n.to_ascii_lowercase())
                    .unwrap_or_default();
                if !FREE_TABLE_FUNCTIONS.contains(&name.as_str()) {
                    needs.push(Need::global(Privilege::Select));
                }
                continue;
            }
            let (db, table) = match parts.as_slice() {
                [t] if reads.ctes.contains(t) || self.temporary.contains_key(t) => continue,
                [t] => (self.database.clone(), t.clone()),
                [d, t] => (d.clone(), t.clone()),
                _ => continue,
            };
            if db == "system" && crate::system::ACCESS_TABLES.contains(&table.as_str()) {
                // Who exists and what they may do: for access managers.
                needs.push(Need::global(Privilege::AccessManagement));
                continue;
            }
            if db == "system" || db.eq_ignore_ascii_case("information_schema") {
                continue;
            }
            let mut need = Need::on(Privilege::Select, &db, Some(&table));
            if let Ok(t) = self.engine.catalog().table(&db, &table) {
                let meta = t.meta();
                if !reads.wildcard {
                    need.columns = Some(
                        meta.columns
                            .iter()
                            .map(|c| c.name.clone())
                            .filter(|c| reads.idents.contains(c))
                            .collect(),
                    );
                }
                // The shards read the underlying table with the node's own
                // rights: the user must hold the same on it (ClickHouse
                // checks it on every shard; grants are cluster-wide here).
                if let Some(under) = underlying(&meta.engine) {
                    needs.push(Need {
                        table: Some(under.1),
                        database: Some(under.0),
                        ..need.clone()
                    });
                }
            }
            needs.push(need);
        }
        needs
    }

    /// INSERT on `t`, and on the table a Distributed `t` writes to.
    fn insert_needs(&self, t: &TableRef) -> Vec<Need> {
        let mut n = vec![self.table_need(Privilege::Insert, t)];
        let db = t.database.clone().unwrap_or_else(|| self.database.clone());
        if let Ok(table) = self.engine.catalog().table(&db, &t.name) {
            if let Some((d, u)) = underlying(&table.meta().engine) {
                n.push(Need::on(Privilege::Insert, &d, Some(&u)));
            }
        }
        n
    }
}

/// The `(database, table)` a Distributed table reads and writes.
fn underlying(engine: &qh_storage::EngineKind) -> Option<(String, String)> {
    match engine {
        qh_storage::EngineKind::Distributed {
            database, table, ..
        } => Some((database.clone(), table.clone())),
        _ => None,
    }
}
