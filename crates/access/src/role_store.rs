//! Roles in the coordinator: one key per role, `access/role/<name>` → the
//! JSON of its [`RoleDef`], changed by compare-and-set like users
//! (`store.rs`). Users and roles share one namespace, so a grantee name is
//! never ambiguous.

use qh_meta::command::{Check, Op, Request, Response};
use qh_meta::MetaState;

use crate::error::AccessError;
use crate::grant::Grant;
use crate::role::{would_cycle, RoleDef, RoleGrant};
use crate::store::{lookup_role, role_key, stored, user_key, Access, ROLE_PREFIX};
use crate::user::UserDef;

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, AccessError> {
    serde_json::to_string(v).map_err(|e| AccessError::BadArguments(e.to_string()))
}

fn conflict(what: &str) -> AccessError {
    AccessError::Conflict(format!(
        "{what} was changed concurrently; run the statement again"
    ))
}

impl Access {
    /// Every role this node knows, by name.
    pub fn roles(&self) -> Vec<RoleDef> {
        self.coordinator.read(|s| {
            let mut roles: Vec<RoleDef> = s
                .keys_with_prefix(ROLE_PREFIX)
                .filter_map(|(_, v)| serde_json::from_str(v).ok())
                .collect();
            roles.sort_by(|a, b| a.name.cmp(&b.name));
            roles
        })
    }

    /// The role `name` as of a linearizable read.
    pub async fn role(&self, name: &str) -> Result<Option<RoleDef>, AccessError> {
        Ok(self
            .coordinator
            .read_linearizable(|s| lookup_role(s, name))
            .await?)
    }

    pub async fn create_role(
        &self,
        role: RoleDef,
        if_not_exists: bool,
        or_replace: bool,
    ) -> Result<(), AccessError> {
        crate::store::check_name(&role.name)?;
        self.check_writable(&role.name)?;
        self.check_elements(&role.settings).await?;
        self.bootstrap().await?;
        let key = role_key(&role.name);
        let mut checks = vec![Check::KeyEquals {
            key: user_key(&role.name),
            value: None,
        }];
        if !or_replace {
            checks.push(Check::KeyEquals {
                key: key.clone(),
                value: None,
            });
        }
        let value = to_json(&role)?;
        let req = Request::op(Op::Put { key, value }).with_checks(checks);
        let exists = |existing| AccessError::AlreadyExists {
            kind: "role",
            existing,
            name: role.name.clone(),
        };
        match self.coordinator.write(req).await? {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { index: 0, .. } => Err(exists("user")),
            Response::CheckFailed { .. } if if_not_exists => Ok(()),
            Response::CheckFailed { .. } => Err(exists("role")),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }

    /// Drops the role and takes it from every user and role holding it, in
    /// one transaction (a holder changed meanwhile fails it: run it again).
    pub async fn drop_role(&self, name: &str, if_exists: bool) -> Result<(), AccessError> {
        self.bootstrap().await?;
        let (role_json, holders) = self
            .coordinator
            .read_linearizable(|s| (s.key(&role_key(name)).map(str::to_string), holders(s, name)))
            .await?;
        let Some(role_json) = role_json else {
            return if if_exists {
                Ok(())
            } else {
                Err(AccessError::UnknownRole(name.to_string()))
            };
        };
        let mut ops = vec![Op::Delete {
            key: role_key(name),
        }];
        let mut checks = vec![Check::KeyEquals {
            key: role_key(name),
            value: Some(role_json),
        }];
        for (key, old, new) in holders {
            checks.push(Check::KeyEquals {
                key: key.clone(),
                value: Some(old),
            });
            ops.push(Op::Put { key, value: new });
        }
        match self
            .coordinator
            .write(Request::ops(ops).with_checks(checks))
            .await?
        {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { .. } => Err(conflict(&format!("role {name} or a holder"))),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }

    /// Grants `roles` to each of `grantees` (users or roles). Every role must
    /// exist; a role granted to a role that it holds would be a cycle and is
    /// refused.
    pub async fn grant_roles(
        &self,
        roles: &[String],
        grantees: &[String],
        admin_option: bool,
    ) -> Result<(), AccessError> {
        self.bootstrap().await?;
        for r in roles {
            if self.role(r).await?.is_none() {
                return Err(AccessError::UnknownRole(r.clone()));
            }
        }
        for grantee in grantees {
            let cycle = self
                .coordinator
                .read_linearizable(|s| {
                    roles
                        .iter()
                        .find(|r| would_cycle(r, grantee, |n| lookup_role(s, n)))
                        .cloned()
                })
                .await?;
            if let Some(r) = cycle {
                return Err(AccessError::BadArguments(format!(
                    "Role {r} cannot be granted to {grantee}: {grantee} is {r} or is held by it (roles cannot form a cycle)"
                )));
            }
            self.update_grantee(grantee, |_, held| {
                for r in roles {
                    match held.iter_mut().find(|h| &h.role == r) {
                        Some(h) => h.admin_option |= admin_option,
                        None => held.push(RoleGrant {
                            role: r.clone(),
                            admin_option,
                        }),
                    }
                }
                held.sort();
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Takes `roles` (only their admin option when `admin_option_only`)
    /// from each of `grantees`; a role not held is no error.
    pub async fn revoke_roles(
        &self,
        roles: &[String],
        grantees: &[String],
        admin_option_only: bool,
    ) -> Result<(), AccessError> {
        for grantee in grantees {
            self.update_grantee(grantee, |_, held| {
                if admin_option_only {
                    for h in held.iter_mut().filter(|h| roles.contains(&h.role)) {
                        h.admin_option = false;
                    }
                } else {
                    held.retain(|h| !roles.contains(&h.role));
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Changes the user or role `name` by `change`.
    pub(crate) async fn update_grantee(
        &self,
        name: &str,
        change: impl FnOnce(&mut Vec<Grant>, &mut Vec<RoleGrant>) -> Result<(), AccessError>,
    ) -> Result<(), AccessError> {
        self.check_writable(name)?;
        self.bootstrap().await?;
        let (user, role) = self
            .coordinator
            .read_linearizable(|s| (stored(s, name), s.key(&role_key(name)).map(str::to_string)))
            .await?;
        match (user, role) {
            (Some(_), _) => {
                self.update_user(name, false, |u| change(&mut u.grants, &mut u.roles))
                    .await
            }
            (None, Some(_)) => {
                self.update_role(name, false, |r| change(&mut r.grants, &mut r.roles))
                    .await
            }
            (None, None) => Err(AccessError::UnknownGrantee(name.to_string())),
        }
    }
}

impl Access {
    /// Changes the stored role `name` by `change`, as a compare-and-set on
    /// its current value.
    pub(crate) async fn update_role(
        &self,
        name: &str,
        if_exists: bool,
        change: impl FnOnce(&mut RoleDef) -> Result<(), AccessError>,
    ) -> Result<(), AccessError> {
        let old = self
            .coordinator
            .read_linearizable(|s| s.key(&role_key(name)).map(str::to_string))
            .await?;
        let Some(old) = old else {
            return match if_exists {
                true => Ok(()),
                false => Err(AccessError::UnknownRole(name.to_string())),
            };
        };
        let mut role: RoleDef = serde_json::from_str(&old)
            .map_err(|e| AccessError::Conflict(format!("stored role {name}: {e}")))?;
        change(&mut role)?;
        let req = Request::op(Op::Put {
            key: role_key(name),
            value: to_json(&role)?,
        })
        .with_checks(vec![Check::KeyEquals {
            key: role_key(name),
            value: Some(old),
        }]);
        match self.coordinator.write(req).await? {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { .. } => Err(conflict(&format!("role {name}"))),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }
}

/// Every user and role holding `role`: (key, stored value, value without it).
fn holders(s: &MetaState, role: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (key, old) in s.keys_with_prefix("access/") {
        let without = if key.starts_with(ROLE_PREFIX) {
            serde_json::from_str::<RoleDef>(old).ok().and_then(|mut r| {
                let before = r.roles.len();
                r.roles.retain(|h| h.role != role);
                (r.roles.len() != before).then(|| serde_json::to_string(&r).ok())?
            })
        } else if key.starts_with("access/user/") {
            serde_json::from_str::<UserDef>(old).ok().and_then(|mut u| {
                let before = u.roles.len();
                u.roles.retain(|h| h.role != role);
                (u.roles.len() != before).then(|| serde_json::to_string(&u).ok())?
            })
        } else {
            None
        };
        if let Some(new) = without {
            out.push((key.to_string(), old.to_string(), new));
        }
    }
    out
}
