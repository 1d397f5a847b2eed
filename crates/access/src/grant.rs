//! Privileges and grants: what a user may do, on what (`*.*`, `db.*`,
//! `db.table`, or some columns of a table for SELECT), and whether it may
//! pass the privilege on (`WITH GRANT OPTION`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::AccessError;

/// The privileges ClickHouse names that quorumhouse checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    Show,
    Select,
    Insert,
    Alter,
    Create,
    Drop,
    Truncate,
    Optimize,
    System,
    KillQuery,
    /// CREATE/ALTER/DROP USER, GRANT, REVOKE, SHOW GRANTS FOR others.
    AccessManagement,
}

impl Privilege {
    pub const ALL: [Privilege; 11] = [
        Privilege::Show,
        Privilege::Select,
        Privilege::Insert,
        Privilege::Alter,
        Privilege::Create,
        Privilege::Drop,
        Privilege::Truncate,
        Privilege::Optimize,
        Privilege::System,
        Privilege::KillQuery,
        Privilege::AccessManagement,
    ];

    /// As ClickHouse writes it in GRANT and `system.grants.access_type`.
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Show => "SHOW",
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Alter => "ALTER",
            Privilege::Create => "CREATE",
            Privilege::Drop => "DROP",
            Privilege::Truncate => "TRUNCATE",
            Privilege::Optimize => "OPTIMIZE",
            Privilege::System => "SYSTEM",
            Privilege::KillQuery => "KILL QUERY",
            Privilege::AccessManagement => "ACCESS MANAGEMENT",
        }
    }

    /// The privileges `words` (uppercase, as written: `KILL QUERY`, `ALL`)
    /// name; `ALL` and `ALL PRIVILEGES` are every one.
    pub fn parse(words: &str) -> Result<Vec<Privilege>, AccessError> {
        if words == "ALL" || words == "ALL PRIVILEGES" {
            return Ok(Privilege::ALL.to_vec());
        }
        Privilege::ALL
            .into_iter()
            .find(|p| p.name() == words)
            .map(|p| vec![p])
            .ok_or_else(|| {
                AccessError::NotImplemented(format!(
                    "privilege {words} is not supported (ALL, {} are)",
                    Privilege::ALL.map(Privilege::name).join(", ")
                ))
            })
    }
}

/// One grant. `database`/`table` `None` is `*`; `columns` `None` is the
/// whole table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    pub privilege: Privilege,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<BTreeSet<String>>,
    #[serde(default)]
    pub grant_option: bool,
}

/// What a grant or revoke names: `*.*`, `db.*` or `db.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub database: Option<String>,
    pub table: Option<String>,
}

impl Target {
    /// `ON` text as ClickHouse prints it.
    pub fn text(database: Option<&str>, table: Option<&str>) -> String {
        format!("{}.{}", database.unwrap_or("*"), table.unwrap_or("*"))
    }

    /// Whether this target covers `db.table` (`table` None: the database
    /// itself, as CREATE DATABASE needs).
    fn covers(&self, db: &str, table: Option<&str>) -> bool {
        match (&self.database, &self.table) {
            (None, _) => true,
            (Some(d), None) => d == db,
            (Some(d), Some(t)) => d == db && table == Some(t.as_str()),
        }
    }

    /// Whether everything `other` names is within this target.
    pub fn contains(&self, other: &Target) -> bool {
        match (&other.database, &other.table) {
            (None, _) => self.database.is_none(),
            (Some(d), t) => self.covers(d, t.as_deref()),
        }
    }
}

impl Grant {
    pub fn target(&self) -> Target {
        Target {
            database: self.database.clone(),
            table: self.table.clone(),
        }
    }

    /// `GRANT SELECT(a, b) ON db.t TO user [WITH GRANT OPTION]`.
    pub fn sql(&self, user: &str) -> String {
        let columns = match &self.columns {
            Some(c) => format!("({})", c.iter().cloned().collect::<Vec<_>>().join(", ")),
            None => String::new(),
        };
        format!(
            "GRANT {}{columns} ON {} TO {user}{}",
            self.privilege.name(),
            Target::text(self.database.as_deref(), self.table.as_deref()),
            if self.grant_option {
                " WITH GRANT OPTION"
            } else {
                ""
            }
        )
    }
}

/// What a statement needs: a privilege on a database, a table, or
/// (SELECT) some columns of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub privilege: Privilege,
    /// `None`: the privilege on everything (`SYSTEM`, `KILL QUERY`, access
    /// management).
    pub database: Option<String>,
    pub table: Option<String>,
    /// Columns a SELECT reads (`None`: the whole table, as `*` does).
    pub columns: Option<BTreeSet<String>>,
}

impl Need {
    pub fn global(privilege: Privilege) -> Need {
        Need {
            privilege,
            database: None,
            table: None,
            columns: None,
        }
    }

    pub fn on(privilege: Privilege, database: &str, table: Option<&str>) -> Need {
        Need {
            privilege,
            database: Some(database.to_string()),
            table: table.map(str::to_string),
            columns: None,
        }
    }

    /// ClickHouse's wording of the grant that is missing.
    pub fn grant_text(&self) -> String {
        let columns = match &self.columns {
            Some(c) if !c.is_empty() => {
                format!("({})", c.iter().cloned().collect::<Vec<_>>().join(", "))
            }
            _ => String::new(),
        };
        format!(
            "{}{columns} ON {}",
            self.privilege.name(),
            Target::text(self.database.as_deref(), self.table.as_deref())
        )
    }
}

/// Whether `grants` allow `need` (with the grant option when
/// `grant_option`).
pub fn allows(grants: &[Grant], need: &Need, grant_option: bool) -> bool {
    let matching = grants.iter().filter(|g| {
        g.privilege == need.privilege
            && (g.grant_option || !grant_option)
            && match &need.database {
                None => g.database.is_none(),
                Some(db) => g.target().covers(db, need.table.as_deref()),
            }
    });
    let mut columns: BTreeSet<&str> = BTreeSet::new();
    for g in matching {
        match &g.columns {
            None => return true,
            Some(c) => columns.extend(c.iter().map(String::as_str)),
        }
    }
    // Only column grants: enough when they cover every column read.
    match &need.columns {
        Some(want) if !want.is_empty() => want.iter().all(|c| columns.contains(c.as_str())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(p: Privilege, db: Option<&str>, t: Option<&str>) -> Grant {
        Grant {
            privilege: p,
            database: db.map(Into::into),
            table: t.map(Into::into),
            columns: None,
            grant_option: false,
        }
    }

    #[test]
    fn a_grant_allows_exactly_what_it_names() {
        let g = vec![grant(Privilege::Select, Some("db"), Some("t"))];
        assert!(allows(
            &g,
            &Need::on(Privilege::Select, "db", Some("t")),
            false
        ));
        assert!(!allows(
            &g,
            &Need::on(Privilege::Select, "db", Some("u")),
            false
        ));
        assert!(!allows(
            &g,
            &Need::on(Privilege::Select, "other", Some("t")),
            false
        ));
        assert!(!allows(
            &g,
            &Need::on(Privilege::Insert, "db", Some("t")),
            false
        ));
        assert!(!allows(
            &g,
            &Need::on(Privilege::Select, "db", Some("t")),
            true
        ));
        let g = vec![grant(Privilege::Create, Some("db"), None)];
        assert!(allows(
            &g,
            &Need::on(Privilege::Create, "db", Some("x")),
            false
        ));
        assert!(allows(&g, &Need::on(Privilege::Create, "db", None), false));
        assert!(!allows(&g, &Need::global(Privilege::Create), false));
        let g = vec![grant(Privilege::System, None, None)];
        assert!(allows(&g, &Need::global(Privilege::System), false));
    }

    #[test]
    fn column_grants_cover_only_their_columns() {
        let mut g = grant(Privilege::Select, Some("db"), Some("t"));
        g.columns = Some(["a".to_string(), "b".to_string()].into());
        let g = vec![g];
        let mut need = Need::on(Privilege::Select, "db", Some("t"));
        need.columns = Some(["a".to_string()].into());
        assert!(allows(&g, &need, false));
        need.columns = Some(["a".to_string(), "c".to_string()].into());
        assert!(!allows(&g, &need, false));
        need.columns = None;
        assert!(!allows(&g, &need, false));
    }
}
