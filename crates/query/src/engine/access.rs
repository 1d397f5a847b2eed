//! Running the access statements (`CREATE/ALTER/DROP USER`, `SHOW USERS`,
//! `SHOW CREATE USER`) against the node's [`qh_access::Access`].

use datafusion::arrow::array::StringArray;
use qh_access::{
    AccessError, AccessStatement, Grant, Need, Privilege, Target, TargetSpec, UserChange, UserDef,
};

use super::*;

fn access_error(e: AccessError) -> QueryError {
    QueryError::other(e.code(), e.to_string())
}

/// The need a GRANT or REVOKE of `p` on `target` passes on.
fn need_for(
    p: Privilege,
    target: &Target,
    columns: Option<&std::collections::BTreeSet<String>>,
) -> Need {
    let mut need = match &target.database {
        None => Need::global(p),
        Some(db) => Need::on(p, db, target.table.as_deref()),
    };
    need.columns = columns.cloned();
    need
}

/// `SHOW GRANTS` lines: the privileges of one target and option on one
/// line, `ALL` when they are every privilege, as ClickHouse prints them.
fn grant_lines(u: &UserDef) -> Vec<String> {
    let mut groups: std::collections::BTreeMap<_, Vec<&Grant>> = Default::default();
    for g in &u.grants {
        groups
            .entry((g.database.clone(), g.table.clone(), g.grant_option))
            .or_default()
            .push(g);
    }
    let mut out = Vec::new();
    for ((db, table, grant_option), gs) in groups {
        let whole: Vec<Privilege> = gs
            .iter()
            .filter(|g| g.columns.is_none())
            .map(|g| g.privilege)
            .collect();
        let mut items: Vec<String> = if Privilege::ALL.iter().all(|p| whole.contains(p)) {
            vec!["ALL".to_string()]
        } else {
            whole.iter().map(|p| p.name().to_string()).collect()
        };
        for g in gs.iter().filter(|g| g.columns.is_some()) {
            let cols = g.columns.iter().flatten().cloned().collect::<Vec<_>>();
            items.push(format!("{}({})", g.privilege.name(), cols.join(", ")));
        }
        out.push(format!(
            "GRANT {} ON {} TO {}{}",
            items.join(", "),
            Target::text(db.as_deref(), table.as_deref()),
            u.name,
            if grant_option {
                " WITH GRANT OPTION"
            } else {
                ""
            }
        ));
    }
    out
}

/// A one-column result of `lines(user)` for each of `names`, as of a
/// linearizable read (UNKNOWN_USER for a name that does not exist).
async fn user_lines(
    access: &qh_access::Access,
    names: &[String],
    column: &str,
    lines: impl Fn(&UserDef) -> Vec<String>,
) -> Result<QueryResult> {
    let mut out = Vec::new();
    for name in names {
        match access.user(name).await.map_err(access_error)? {
            Some(u) => out.extend(lines(&u)),
            None => return Err(access_error(AccessError::UnknownUser(name.clone()))),
        }
    }
    result_of(
        vec![(column, DataType::Utf8)],
        vec![Arc::new(StringArray::from(out))],
        None,
    )
}

impl Session {
    fn resolve_target(&self, t: TargetSpec) -> Target {
        match t {
            TargetSpec::Everything => Target {
                database: None,
                table: None,
            },
            TargetSpec::Database(db) => Target {
                database: Some(db.unwrap_or_else(|| self.database.clone())),
                table: None,
            },
            TargetSpec::Table(db, table) => Target {
                database: Some(db.unwrap_or_else(|| self.database.clone())),
                table: Some(table),
            },
        }
    }

    fn access_store(&self) -> Result<Arc<qh_access::Access>> {
        self.engine.access().cloned().ok_or_else(|| {
            QueryError::other(
                ErrorCode::NOT_IMPLEMENTED,
                "users live in the coordinator: run this on a server (quorumhouse server / cluster up), not quorumhouse local",
            )
        })
    }

    pub(super) async fn access_statement(&mut self, stmt: AccessStatement) -> Result<QueryResult> {
        let access = self.access_store()?;
        match stmt {
            AccessStatement::CreateUser {
                names,
                if_not_exists,
                or_replace,
                auth,
                hosts,
                default_database,
            } => {
                for name in names {
                    let user = UserDef {
                        name,
                        auth: match &auth {
                            Some(a) => a.to_auth().map_err(access_error)?,
                            None => qh_access::Auth::NoPassword,
                        },
                        hosts: hosts.clone().unwrap_or_default(),
                        default_database: default_database.clone(),
                        grants: Vec::new(),
                    };
                    access
                        .create_user(user, if_not_exists, or_replace)
                        .await
                        .map_err(access_error)?;
                }
                Ok(QueryResult::empty())
            }
            AccessStatement::AlterUser {
                name,
                if_exists,
                rename_to,
                auth,
                hosts,
                default_database,
            } => {
                let change = UserChange {
                    rename_to,
                    auth,
                    hosts,
                    default_database,
                };
                access
                    .alter_user(&name, if_exists, change)
                    .await
                    .map_err(access_error)?;
                Ok(QueryResult::empty())
            }
            AccessStatement::DropUser { names, if_exists } => {
                for name in names {
                    access
                        .drop_user(&name, if_exists)
                        .await
                        .map_err(access_error)?;
                }
                Ok(QueryResult::empty())
            }
            AccessStatement::ShowUsers => {
                let names: Vec<String> = access.users().into_iter().map(|u| u.name).collect();
                result_of(
                    vec![("name", DataType::Utf8)],
                    vec![Arc::new(StringArray::from(names))],
                    None,
                )
            }
            AccessStatement::Grant {
                privileges,
                target,
                users,
                grant_option,
            } => {
                let target = self.resolve_target(target);
                let mut grants = Vec::with_capacity(privileges.len());
                for (privilege, columns) in privileges {
                    self.check_grant_option(&need_for(privilege, &target, columns.as_ref()))?;
                    grants.push(Grant {
                        privilege,
                        database: target.database.clone(),
                        table: target.table.clone(),
                        columns,
                        grant_option,
                    });
                }
                access.grant(&users, &grants).await.map_err(access_error)?;
                Ok(QueryResult::empty())
            }
            AccessStatement::Revoke {
                privileges,
                target,
                users,
                grant_option_only,
            } => {
                let target = self.resolve_target(target);
                for (privilege, columns) in &privileges {
                    self.check_grant_option(&need_for(*privilege, &target, columns.as_ref()))?;
                }
                access
                    .revoke(&users, &privileges, &target, grant_option_only)
                    .await
                    .map_err(access_error)?;
                Ok(QueryResult::empty())
            }
            AccessStatement::ShowGrants { users } => {
                let users = if users.is_empty() {
                    vec![self.user.clone()]
                } else {
                    users
                };
                if users.iter().any(|u| u != &self.user) {
                    self.check_privileges(&Statement::Access(AccessStatement::ShowUsers))?;
                }
                let column = format!("GRANTS FOR {}", users.join(", "));
                user_lines(&access, &users, &column, grant_lines).await
            }
            AccessStatement::ShowCreateUser { names } => {
                let column = format!("CREATE USER {}", names.join(", "));
                user_lines(&access, &names, &column, |u| vec![u.create_sql()]).await
            }
        }
    }
}
