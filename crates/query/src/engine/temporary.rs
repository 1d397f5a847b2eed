//! Temporary tables (`CREATE TEMPORARY TABLE t ...`): a session's own
//! tables, as in ClickHouse. Each is an ordinary local table (Memory unless
//! an ENGINE is given) in the hidden database [`TEMPORARY_DATABASE`] under a
//! name only this session knows; an unqualified `t` in the session's
//! statements means it, before any table of the current database. They are
//! dropped with the session (HTTP `session_id` expiry, the gRPC session's
//! end) and never outlive the process: the catalog empties that database
//! at open.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;

use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, TableAlias, TableFactor, VisitMut, VisitorMut,
};
use qh_storage::TEMPORARY_DATABASE;
use tracing::warn;

use super::*;
use crate::statement::CreateTable;

/// Numbers sessions so that their temporary tables' hidden names differ.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

pub(super) fn next_session_number() -> u64 {
    NEXT_SESSION.fetch_add(1, Ordering::Relaxed)
}

impl Session {
    /// The hidden name of this session's temporary table `name`.
    pub(super) fn temporary_table(&self, name: &str) -> Option<&str> {
        self.temporary.get(name).map(String::as_str)
    }

    /// Readies `CREATE TEMPORARY TABLE`: checks it and points it at the
    /// hidden table; returns the name the session will use. `Ok(None)`: it
    /// exists and IF NOT EXISTS was given.
    pub(super) fn prepare_temporary(&self, ct: &mut CreateTable) -> Result<Option<String>> {
        if ct.table.database.is_some() {
            return Err(QueryError::other(
                ErrorCode::BAD_DATABASE_FOR_TEMPORARY_TABLE,
                "Temporary tables cannot be inside a database. You should not specify a database for a temporary table.",
            ));
        }
        if self.temporary.contains_key(&ct.table.name) {
            if ct.if_not_exists {
                return Ok(None);
            }
            return Err(QueryError::other(
                ErrorCode::TABLE_ALREADY_EXISTS,
                format!("Temporary table {} already exists", ct.table.name),
            ));
        }
        if ct.engine.starts_with("Replicated") || ct.engine == "Distributed" {
            return Err(QueryError::other(
                ErrorCode::INCORRECT_QUERY,
                format!(
                    "Temporary tables cannot be created with the {} engine",
                    ct.engine
                ),
            ));
        }
        let name = ct.table.name.clone();
        ct.table = TableRef {
            database: Some(TEMPORARY_DATABASE.to_string()),
            name: format!("_tmp_{}_{name}", self.number),
        };
        Ok(Some(name))
    }

    /// Remembers a temporary table created under `hidden` as `name`.
    pub(super) fn add_temporary(&mut self, name: String, hidden: String) {
        self.temporary.insert(name, hidden);
    }

    /// Forgets the temporary table whose hidden name is `hidden`.
    pub(super) fn forget_temporary(&mut self, hidden: &str) {
        self.temporary.retain(|_, h| h != hidden);
    }

    /// The hidden names of this session's temporary tables (what its
    /// queries may read in [`TEMPORARY_DATABASE`]).
    pub(super) fn temporary_hidden_names(&self) -> HashSet<String> {
        self.temporary.values().cloned().collect()
    }

    /// Points every unqualified reference to a temporary table in `query`
    /// at its hidden table, aliased by the name the query used (so `t.x`
    /// still resolves), and carries FINAL over to the hidden name.
    pub(super) fn qualify_temporary(&self, query: &mut Query, final_tables: &mut HashSet<String>) {
        if self.temporary.is_empty() {
            return;
        }
        for (name, hidden) in &self.temporary {
            if final_tables.contains(name) {
                final_tables.insert(hidden.clone());
            }
        }
        let mut v = Qualify {
            temporary: &self.temporary,
        };
        let _ = query.visit(&mut v);
    }
}

struct Qualify<'a> {
    temporary: &'a BTreeMap<String, String>,
}

impl VisitorMut for Qualify<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, alias, args, ..
        } = factor
        {
            let single = match name.0.as_slice() {
                [ObjectNamePart::Identifier(i)] if args.is_none() => Some(i.clone()),
                _ => None,
            };
            if let Some((used, hidden)) =
                single.and_then(|i| self.temporary.get(&i.value).map(|h| (i, h)))
            {
                *name = ObjectName::from(vec![Ident::new(TEMPORARY_DATABASE), Ident::new(hidden)]);
                if alias.is_none() {
                    *alias = Some(TableAlias {
                        explicit: true,
                        name: used,
                        columns: vec![],
                        at: None,
                    });
                }
            }
        }
        ControlFlow::Continue(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for hidden in self.temporary.values() {
            if let Err(e) = self
                .engine
                .catalog
                .drop_table(TEMPORARY_DATABASE, hidden, true)
            {
                warn!(table = %hidden, error = %e, "cannot drop a temporary table");
            }
        }
    }
}
