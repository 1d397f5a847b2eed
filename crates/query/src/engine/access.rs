//! Running the access statements (users, roles, grants, settings profiles,
//! quotas and what shows them) against the node's [`qh_access::Access`].

use datafusion::arrow::array::StringArray;
use qh_access::{
    AccessError, AccessStatement, Grant, Need, Privilege, ProfileChange, ProfileDef, QuotaChange,
    QuotaDef, RoleDef, RoleGrant, Target, TargetSpec, UserChange, UserDef,
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

/// `SHOW GRANTS` lines of the user or role `name`: the privileges of one
/// target and option on one line (`ALL` when they are every privilege), then
/// its roles, as ClickHouse prints them.
fn grant_lines(name: &str, grants: &[Grant], roles: &[RoleGrant]) -> Vec<String> {
    let mut groups: std::collections::BTreeMap<_, Vec<&Grant>> = Default::default();
    for g in grants {
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
            "GRANT {} ON {} TO {name}{}",
            items.join(", "),
            Target::text(db.as_deref(), table.as_deref()),
            if grant_option {
                " WITH GRANT OPTION"
            } else {
                ""
            }
        ));
    }
    for admin in [false, true] {
        let held: Vec<&str> = roles
            .iter()
            .filter(|r| r.admin_option == admin)
            .map(|r| r.role.as_str())
            .collect();
        if !held.is_empty() {
            out.push(format!(
                "GRANT {} TO {name}{}",
                held.join(", "),
                if admin { " WITH ADMIN OPTION" } else { "" }
            ));
        }
    }
    out
}

/// A user or a role, as `SHOW GRANTS` and `SHOW CREATE` find it.
enum Grantee {
    User(Box<UserDef>),
    Role(RoleDef),
}

/// A one-column result of `lines(grantee)` for each of `names`, as of a
/// linearizable read; `unknown` is the error for a name that is neither
/// (or not of the kind `lines` wants: it returns `None`).
async fn grantee_lines(
    access: &qh_access::Access,
    names: &[String],
    column: &str,
    unknown: fn(String) -> AccessError,
    lines: impl Fn(&Grantee) -> Option<Vec<String>>,
) -> Result<QueryResult> {
    let mut out = Vec::new();
    for name in names {
        let found = match access.user(name).await.map_err(access_error)? {
            Some(u) => Some(Grantee::User(Box::new(u))),
            None => access
                .role(name)
                .await
                .map_err(access_error)?
                .map(Grantee::Role),
        };
        match found.as_ref().and_then(&lines) {
            Some(l) => out.extend(l),
            None => return Err(access_error(unknown(name.clone()))),
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
                settings,
            } => {
                for name in names {
                    let user = UserDef {
                        settings: settings.clone(),
                        auth: match &auth {
                            Some(a) => a.to_auth().map_err(access_error)?,
                            None => qh_access::Auth::NoPassword,
                        },
                        hosts: hosts.clone().unwrap_or_default(),
                        default_database: default_database.clone(),
                        ..UserDef::new(name)
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
                settings,
            } => {
                let change = UserChange {
                    rename_to,
                    auth,
                    hosts,
                    default_database,
                    settings,
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
            AccessStatement::CreateRole {
                names,
                if_not_exists,
                or_replace,
                settings,
            } => {
                for name in names {
                    let role = RoleDef {
                        settings: settings.clone(),
                        ..RoleDef::new(name)
                    };
                    access
                        .create_role(role, if_not_exists, or_replace)
                        .await
                        .map_err(access_error)?;
                }
                Ok(QueryResult::empty())
            }
            AccessStatement::DropRole { names, if_exists } => {
                for name in names {
                    access
                        .drop_role(&name, if_exists)
                        .await
                        .map_err(access_error)?;
                }
                Ok(QueryResult::empty())
            }
            AccessStatement::ShowRoles => {
                let names: Vec<String> = access.roles().into_iter().map(|r| r.name).collect();
                result_of(
                    vec![("name", DataType::Utf8)],
                    vec![Arc::new(StringArray::from(names))],
                    None,
                )
            }
            AccessStatement::ShowCreateRole { names } => {
                let column = format!("CREATE ROLE {}", names.join(", "));
                grantee_lines(
                    &access,
                    &names,
                    &column,
                    AccessError::UnknownRole,
                    |g| match g {
                        Grantee::Role(r) => Some(vec![format!(
                            "CREATE ROLE {}{}",
                            r.name,
                            qh_access::settings_sql(&r.settings)
                        )]),
                        Grantee::User(_) => None,
                    },
                )
                .await
            }
            AccessStatement::GrantRoles {
                roles,
                grantees,
                admin_option,
            } => {
                self.check_role_admin(&roles)?;
                access
                    .grant_roles(&roles, &grantees, admin_option)
                    .await
                    .map_err(access_error)?;
                Ok(QueryResult::empty())
            }
            AccessStatement::RevokeRoles {
                roles,
                grantees,
                admin_option_only,
            } => {
                self.check_role_admin(&roles)?;
                access
                    .revoke_roles(&roles, &grantees, admin_option_only)
                    .await
                    .map_err(access_error)?;
                Ok(QueryResult::empty())
            }
            AccessStatement::Grant {
                privileges,
                target,
                grantees,
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
                access
                    .grant(&grantees, &grants)
                    .await
                    .map_err(access_error)?;
                Ok(QueryResult::empty())
            }
            AccessStatement::Revoke {
                privileges,
                target,
                grantees,
                grant_option_only,
            } => {
                let target = self.resolve_target(target);
                for (privilege, columns) in &privileges {
                    self.check_grant_option(&need_for(*privilege, &target, columns.as_ref()))?;
                }
                access
                    .revoke(&grantees, &privileges, &target, grant_option_only)
                    .await
                    .map_err(access_error)?;
                Ok(QueryResult::empty())
            }
            AccessStatement::ShowGrants { names } => {
                let names = if names.is_empty() {
                    vec![self.user.clone()]
                } else {
                    names
                };
                if names.iter().any(|u| u != &self.user) {
                    self.check_privileges(&Statement::Access(AccessStatement::ShowUsers))?;
                }
                let column = format!("GRANTS FOR {}", names.join(", "));
                grantee_lines(&access, &names, &column, AccessError::UnknownGrantee, |g| {
                    Some(match g {
                        Grantee::User(u) => grant_lines(&u.name, &u.grants, &u.roles),
                        Grantee::Role(r) => grant_lines(&r.name, &r.grants, &r.roles),
                    })
                })
                .await
            }
            AccessStatement::AlterRole {
                name,
                if_exists,
                settings,
            } => {
                if let Some(settings) = settings {
                    access
                        .set_role_settings(&name, if_exists, settings)
                        .await
                        .map_err(access_error)?;
                }
                Ok(QueryResult::empty())
            }
            AccessStatement::CreateProfile {
                names,
                if_not_exists,
                or_replace,
                elements,
                to,
            } => {
                for name in names {
                    let profile = ProfileDef {
                        name,
                        elements: elements.clone(),
                        to: to.clone(),
                    };
                    access
                        .create_profile(profile, if_not_exists, or_replace)
                        .await
                        .map_err(access_error)?;
                }
                Ok(QueryResult::empty())
            }
            AccessStatement::AlterProfile {
                name,
                if_exists,
                rename_to,
                elements,
                to,
            } => {
                let change = ProfileChange {
                    rename_to,
                    elements,
                    to,
                };
                access
                    .alter_profile(&name, if_exists, change)
                    .await
                    .map_err(access_error)?;
                Ok(QueryResult::empty())
            }
            AccessStatement::DropProfile { names, if_exists } => {
                for name in names {
                    access
                        .drop_profile(&name, if_exists)
                        .await
                        .map_err(access_error)?;
                }
                Ok(QueryResult::empty())
            }
            AccessStatement::ShowProfiles => {
                let names: Vec<String> = access.profiles().into_iter().map(|p| p.name).collect();
                result_of(
                    vec![("name", DataType::Utf8)],
                    vec![Arc::new(StringArray::from(names))],
                    None,
                )
            }
            AccessStatement::ShowCreateProfile { names } => {
                let mut out = Vec::new();
                for name in &names {
                    match access.profile(name).await.map_err(access_error)? {
                        Some(p) => out.push(p.create_sql()),
                        None => {
                            return Err(access_error(AccessError::UnknownProfile(name.clone())))
                        }
                    }
                }
                let column = format!("CREATE SETTINGS PROFILE {}", names.join(", "));
                result_of(
                    vec![(column.as_str(), DataType::Utf8)],
                    vec![Arc::new(StringArray::from(out))],
                    None,
                )
            }
            AccessStatement::CreateQuota {
                names,
                if_not_exists,
                or_replace,
                keyed_by,
                intervals,
                to,
            } => {
                for name in names {
                    let quota = QuotaDef {
                        name,
                        keyed_by,
                        intervals: intervals.clone(),
                        to: to.clone(),
                    };
                    access
                        .create_quota(quota, if_not_exists, or_replace)
                        .await
                        .map_err(access_error)?;
                }
                Ok(QueryResult::empty())
            }
            AccessStatement::AlterQuota {
                name,
                if_exists,
                rename_to,
                keyed_by,
                intervals,
                to,
            } => {
                let change = QuotaChange {
                    rename_to,
                    keyed_by,
                    intervals,
                    to,
                };
                access
                    .alter_quota(&name, if_exists, change)
                    .await
                    .map_err(access_error)?;
                Ok(QueryResult::empty())
            }
            AccessStatement::DropQuota { names, if_exists } => {
                for name in names {
                    access
                        .drop_quota(&name, if_exists)
                        .await
                        .map_err(access_error)?;
                }
                Ok(QueryResult::empty())
            }
            AccessStatement::ShowQuotas => {
                let names: Vec<String> = access.quotas().into_iter().map(|q| q.name).collect();
                result_of(
                    vec![("name", DataType::Utf8)],
                    vec![Arc::new(StringArray::from(names))],
                    None,
                )
            }
            AccessStatement::ShowCreateQuota { names } => {
                let mut out = Vec::new();
                for name in &names {
                    match access.quota(name).await.map_err(access_error)? {
                        Some(q) => out.push(q.create_sql()),
                        None => return Err(access_error(AccessError::UnknownQuota(name.clone()))),
                    }
                }
                let column = format!("CREATE QUOTA {}", names.join(", "));
                result_of(
                    vec![(column.as_str(), DataType::Utf8)],
                    vec![Arc::new(StringArray::from(out))],
                    None,
                )
            }
            AccessStatement::ShowQuota => {
                let sql = "SELECT * FROM system.quota_usage";
                let query = match crate::statement::parse_statement(sql)? {
                    Statement::Select { query, .. } => query,
                    _ => return Err(QueryError::other(ErrorCode::LOGICAL_ERROR, "SHOW QUOTA")),
                };
                let settings = self.settings.clone();
                let (schema, batches, summary) =
                    Box::pin(self.run_query(*query, Default::default(), &settings)).await?;
                Ok(QueryResult {
                    schema,
                    batches,
                    totals: None,
                    format: None,
                    format_options: FormatOptions::default(),
                    summary,
                })
            }
            AccessStatement::ShowCreateUser { names } => {
                let column = format!("CREATE USER {}", names.join(", "));
                grantee_lines(
                    &access,
                    &names,
                    &column,
                    AccessError::UnknownUser,
                    |g| match g {
                        Grantee::User(u) => Some(vec![u.create_sql()]),
                        Grantee::Role(_) => None,
                    },
                )
                .await
            }
        }
    }
}
