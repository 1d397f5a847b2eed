//! [`Access`]: users kept in the coordinator, so a user created on one node
//! exists on every node (ClickHouse's replicated user directory, with the
//! coordinator in Keeper's place). Each user is one key,
//! `access/user/<name>` → the JSON of its [`UserDef`]; every change is a
//! compare-and-set on that key, so concurrent changes never lose one
//! another silently.
//!
//! Until the first access statement a cluster has only the built-in
//! `default` user (no password). That statement first writes `default`
//! into the coordinator together with the marker `access/bootstrapped`;
//! from then on `default` is an ordinary user (its password can change, it
//! can be dropped).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use qh_meta::command::{Check, Op, Request, Response};
use qh_meta::{Coordinator, MetaState};
use sha2::{Digest, Sha256};

use crate::config_users::AccessConfig;
use crate::error::AccessError;
use crate::grant::{Grant, Privilege, Target};
use crate::profile::SettingElement;
use crate::role::{resolve, RoleDef};
use crate::statement::AuthSpec;
use crate::user::{Auth, Hosts, UserDef};

const USER_PREFIX: &str = "access/user/";
pub(crate) const ROLE_PREFIX: &str = "access/role/";
const BOOTSTRAPPED: &str = "access/bootstrapped";
/// Remembered successful bcrypt checks (each costs ~0.2 s of CPU).
const VERIFIED_CACHE: usize = 1024;

pub(crate) fn user_key(name: &str) -> String {
    format!("{USER_PREFIX}{name}")
}

pub(crate) fn role_key(name: &str) -> String {
    format!("{ROLE_PREFIX}{name}")
}

/// The role `name` in `state`.
pub(crate) fn lookup_role(state: &MetaState, name: &str) -> Option<RoleDef> {
    state
        .key(&role_key(name))
        .and_then(|json| serde_json::from_str(json).ok())
}

/// The user `name` in `state` (or the config file's, which wins), with
/// what its roles and profiles give it resolved.
fn lookup(state: &MetaState, config: &Config, name: &str) -> Option<UserDef> {
    let mut user: UserDef = match (config.users.get(name), state.key(&user_key(name))) {
        (Some(u), _) => u.clone(),
        (None, Some(json)) => serde_json::from_str(json).ok()?,
        (None, None) if name == "default" && state.key(BOOTSTRAPPED).is_none() => {
            config.builtin_default()
        }
        (None, None) => return None,
    };
    let (active, inherited) = resolve(&user.roles, |r| lookup_role(state, r));
    user.active_roles = active;
    user.inherited = inherited;
    user.resolved_settings = crate::profile_store::resolve_settings(state, &user);
    Some(user)
}

pub(crate) fn stored(state: &MetaState, name: &str) -> Option<String> {
    state.key(&user_key(name)).map(str::to_string)
}

/// What `ALTER USER` changes.
#[derive(Debug, Default)]
pub struct UserChange {
    pub rename_to: Option<String>,
    pub auth: Option<AuthSpec>,
    pub hosts: Option<Hosts>,
    pub default_database: Option<Option<String>>,
    /// `SETTINGS ...` (`SETTINGS NONE`: empty).
    pub settings: Option<Vec<SettingElement>>,
}

pub struct Access {
    pub(crate) coordinator: Arc<Coordinator>,
    /// Digests of (user, password, stored hash) that passed a bcrypt check.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// What users' statements used of their quotas on this node.
    pub(crate) quota_usage: crate::quota::QuotaUsage,
    config: Config,
}

/// The node's configuration of users, ready for lookups.
#[derive(Debug)]
struct Config {
    /// Users of the node's config file, by name (`config_users.rs`).
    users: BTreeMap<String, UserDef>,
    /// Where the built-in `default` may connect from.
    default_hosts: Hosts,
}

impl Config {
    fn builtin_default(&self) -> UserDef {
        UserDef {
            hosts: self.default_hosts.clone(),
            ..UserDef::builtin_default()
        }
    }
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").finish_non_exhaustive()
    }
}

impl Access {
    pub fn new(coordinator: Arc<Coordinator>) -> Self {
        Self::with_config(coordinator, AccessConfig::default())
    }

    /// [`Access::new`] with the node's configuration of users.
    pub fn with_config(coordinator: Arc<Coordinator>, config: AccessConfig) -> Self {
        Access {
            coordinator,
            verified: Mutex::new(HashSet::new()),
            quota_usage: Default::default(),
            config: Config {
                users: config
                    .users
                    .into_iter()
                    .map(|u| (u.name.clone(), u))
                    .collect(),
                default_hosts: config.default_hosts,
            },
        }
    }

    /// Refuses a change to a user of the config file.
    pub(crate) fn check_writable(&self, name: &str) -> Result<(), AccessError> {
        match self.config.users.contains_key(name) {
            true => Err(AccessError::ReadOnlyUser(name.to_string())),
            false => Ok(()),
        }
    }

    /// The user `user` if `password` from `peer` proves it. A user this
    /// node does not know yet, or whose password does not match here, is
    /// looked up once more through a linearizable read: a user created or
    /// changed a moment ago on another node works at once.
    pub async fn authenticate(
        &self,
        user: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<UserDef, AccessError> {
        if let Some(u) = self.coordinator.read(|s| lookup(s, &self.config, user)) {
            if self.admits(&u, password, peer) {
                return Ok(u);
            }
        }
        let fresh = self
            .coordinator
            .read_linearizable(|s| lookup(s, &self.config, user))
            .await
            .ok()
            .flatten();
        match fresh {
            Some(u) if self.admits(&u, password, peer) => Ok(u),
            _ => Err(AccessError::AuthenticationFailed {
                user: user.to_string(),
            }),
        }
    }

    /// [`Access::authenticate`] against this node's state only, with no
    /// round trip (for synchronous checks: gRPC interceptors).
    pub fn authenticate_local(
        &self,
        user: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<UserDef, AccessError> {
        match self.coordinator.read(|s| lookup(s, &self.config, user)) {
            Some(u) if self.admits(&u, password, peer) => Ok(u),
            _ => Err(AccessError::AuthenticationFailed {
                user: user.to_string(),
            }),
        }
    }

    fn admits(&self, u: &UserDef, password: &str, peer: Option<IpAddr>) -> bool {
        let Auth::Bcrypt { hash } = &u.auth else {
            return u.admits(password, peer);
        };
        if !peer.is_none_or(|p| u.hosts.allows(p)) {
            return false;
        }
        let mut d = Sha256::new();
        for part in [u.name.as_str(), password, hash.as_str()] {
            d.update(part.as_bytes());
            d.update([0u8]);
        }
        let digest: [u8; 32] = d.finalize().into();
        if self.verified.lock().contains(&digest) {
            return true;
        }
        let ok = u.auth.verify(password);
        if ok {
            let mut v = self.verified.lock();
            if v.len() >= VERIFIED_CACHE {
                v.clear();
            }
            v.insert(digest);
        }
        ok
    }

    /// The user `name` as this node knows it now (no round trip: checked
    /// before every statement).
    pub fn local_user(&self, name: &str) -> Option<UserDef> {
        self.coordinator.read(|s| lookup(s, &self.config, name))
    }

    /// Every user this node knows, by name (the config file's first: they
    /// hide replicated users of their name).
    pub fn users(&self) -> Vec<UserDef> {
        self.coordinator.read(|s| {
            let config = &self.config.users;
            let mut users: Vec<UserDef> = config.values().cloned().collect();
            users.extend(
                s.keys_with_prefix(USER_PREFIX)
                    .filter_map(|(_, v)| serde_json::from_str::<UserDef>(v).ok())
                    .filter(|u| !config.contains_key(&u.name)),
            );
            let stored_default = s.key(&user_key("default")).is_some();
            if s.key(BOOTSTRAPPED).is_none() && !stored_default && !config.contains_key("default") {
                users.push(self.config.builtin_default());
            }
            users.sort_by(|a, b| a.name.cmp(&b.name));
            users
        })
    }

    /// The user `name` as of a linearizable read.
    pub async fn user(&self, name: &str) -> Result<Option<UserDef>, AccessError> {
        Ok(self
            .coordinator
            .read_linearizable(|s| lookup(s, &self.config, name))
            .await?)
    }

    /// Writes the built-in `default` user into the coordinator before the
    /// first change to users (see the module doc).
    pub(crate) async fn bootstrap(&self) -> Result<(), AccessError> {
        if self.coordinator.read(|s| s.key(BOOTSTRAPPED).is_some()) {
            return Ok(());
        }
        let default = serde_json::to_string(&self.config.builtin_default())
            .map_err(|e| AccessError::BadArguments(e.to_string()))?;
        let req = Request::ops(vec![
            Op::Put {
                key: user_key("default"),
                value: default,
            },
            Op::Put {
                key: BOOTSTRAPPED.into(),
                value: "1".into(),
            },
        ])
        .with_checks(vec![
            Check::KeyEquals {
                key: BOOTSTRAPPED.into(),
                value: None,
            },
            Check::KeyEquals {
                key: user_key("default"),
                value: None,
            },
        ]);
        // A failed check: another node bootstrapped first.
        self.coordinator.write(req).await?;
        Ok(())
    }

    pub async fn create_user(
        &self,
        user: UserDef,
        if_not_exists: bool,
        or_replace: bool,
    ) -> Result<(), AccessError> {
        check_name(&user.name)?;
        self.check_writable(&user.name)?;
        self.check_elements(&user.settings).await?;
        self.bootstrap().await?;
        let value =
            serde_json::to_string(&user).map_err(|e| AccessError::BadArguments(e.to_string()))?;
        let key = user_key(&user.name);
        // A role of the same name: refused even by OR REPLACE.
        let mut checks = vec![Check::KeyEquals {
            key: role_key(&user.name),
            value: None,
        }];
        if !or_replace {
            checks.push(Check::KeyEquals {
                key: key.clone(),
                value: None,
            });
        }
        let req = Request::op(Op::Put { key, value }).with_checks(checks);
        let exists = |existing| AccessError::AlreadyExists {
            kind: "user",
            existing,
            name: user.name.clone(),
        };
        match self.coordinator.write(req).await? {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { index: 0, .. } => Err(exists("role")),
            Response::CheckFailed { .. } if if_not_exists => Ok(()),
            Response::CheckFailed { .. } => Err(exists("user")),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }

    pub async fn alter_user(
        &self,
        name: &str,
        if_exists: bool,
        change: UserChange,
    ) -> Result<(), AccessError> {
        if let Some(e) = &change.settings {
            self.check_elements(e).await?;
        }
        self.update_user(name, if_exists, |user| {
            if let Some(a) = &change.auth {
                user.auth = a.to_auth()?;
            }
            if let Some(h) = change.hosts {
                user.hosts = h;
            }
            if let Some(d) = change.default_database {
                user.default_database = d;
            }
            if let Some(e) = change.settings {
                user.settings = e;
            }
            if let Some(n) = change.rename_to {
                user.name = n;
            }
            Ok(())
        })
        .await
    }

    /// Adds `grants` to each of `grantees` (users or roles).
    pub async fn grant(&self, grantees: &[String], grants: &[Grant]) -> Result<(), AccessError> {
        for name in grantees {
            self.update_grantee(name, |held, _| {
                for g in grants {
                    merge_grant(held, g.clone());
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Takes `privileges` on `target` from each of `grantees` (only the
    /// grant option when `grant_option_only`).
    pub async fn revoke(
        &self,
        grantees: &[String],
        privileges: &[(Privilege, Option<BTreeSet<String>>)],
        target: &Target,
        grant_option_only: bool,
    ) -> Result<(), AccessError> {
        for name in grantees {
            self.update_grantee(name, |held, _| {
                for (p, columns) in privileges {
                    revoke_from(held, *p, columns.as_ref(), target, grant_option_only)?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// The stored value of user `name` as of a linearizable read; `None`
    /// when it does not exist and `if_exists` allows that.
    async fn stored_value(
        &self,
        name: &str,
        if_exists: bool,
    ) -> Result<Option<String>, AccessError> {
        self.check_writable(name)?;
        self.bootstrap().await?;
        let current = self
            .coordinator
            .read_linearizable(|s| stored(s, name))
            .await?;
        match current {
            Some(v) => Ok(Some(v)),
            None if if_exists => Ok(None),
            None => Err(AccessError::UnknownUser(name.to_string())),
        }
    }

    /// Changes the stored user `name` by `change` (which may rename it),
    /// as a compare-and-set on its current value.
    pub(crate) async fn update_user(
        &self,
        name: &str,
        if_exists: bool,
        change: impl FnOnce(&mut UserDef) -> Result<(), AccessError>,
    ) -> Result<(), AccessError> {
        let Some(old_json) = self.stored_value(name, if_exists).await? else {
            return Ok(());
        };
        let mut user: UserDef = serde_json::from_str(&old_json)
            .map_err(|e| AccessError::Conflict(format!("stored user {name}: {e}")))?;
        change(&mut user)?;
        let mut checks = vec![Check::KeyEquals {
            key: user_key(name),
            value: Some(old_json),
        }];
        let mut ops = Vec::new();
        if user.name != name {
            check_name(&user.name)?;
            checks.push(Check::KeyEquals {
                key: user_key(&user.name),
                value: None,
            });
            checks.push(Check::KeyEquals {
                key: role_key(&user.name),
                value: None,
            });
            ops.push(Op::Delete {
                key: user_key(name),
            });
        }
        let value =
            serde_json::to_string(&user).map_err(|e| AccessError::BadArguments(e.to_string()))?;
        ops.push(Op::Put {
            key: user_key(&user.name),
            value,
        });
        match self
            .coordinator
            .write(Request::ops(ops).with_checks(checks))
            .await?
        {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { index: 1 | 2, .. } => Err(AccessError::AlreadyExists {
                kind: "user",
                existing: "user or role",
                name: user.name,
            }),
            Response::CheckFailed { .. } => Err(AccessError::Conflict(format!(
                "user {name} was changed concurrently; run the statement again"
            ))),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }

    pub async fn drop_user(&self, name: &str, if_exists: bool) -> Result<(), AccessError> {
        let Some(old_json) = self.stored_value(name, if_exists).await? else {
            return Ok(());
        };
        let req = Request::op(Op::Delete {
            key: user_key(name),
        })
        .with_checks(vec![Check::KeyEquals {
            key: user_key(name),
            value: Some(old_json),
        }]);
        match self.coordinator.write(req).await? {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { .. } => Err(AccessError::Conflict(format!(
                "user {name} was changed concurrently; run the statement again"
            ))),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), AccessError> {
    if name.is_empty() || name.len() > 256 || name.contains(['\0', '/']) {
        return Err(AccessError::BadArguments(format!(
            "Invalid name '{name}': 1 to 256 bytes, no '/' or NUL"
        )));
    }
    Ok(())
}

/// Adds `g` to `grants`, folding it into a grant of the same privilege on
/// the same target (columns united, a whole-table grant wins, the grant
/// option kept if either has it).
fn merge_grant(grants: &mut Vec<Grant>, g: Grant) {
    let same = grants
        .iter_mut()
        .find(|x| x.privilege == g.privilege && x.database == g.database && x.table == g.table);
    match same {
        Some(x) => {
            x.grant_option |= g.grant_option;
            x.columns = match (x.columns.take(), g.columns) {
                (Some(mut a), Some(b)) => {
                    a.extend(b);
                    Some(a)
                }
                _ => None,
            };
        }
        None => grants.push(g),
    }
    grants.sort();
}

/// Takes privilege `p` (on `columns`, when given) on `target` out of
/// `grants`. A grant on something wider than `target` would need a partial
/// revoke, which is refused rather than silently leaving the access.
fn revoke_from(
    grants: &mut Vec<Grant>,
    p: Privilege,
    columns: Option<&BTreeSet<String>>,
    target: &Target,
    grant_option_only: bool,
) -> Result<(), AccessError> {
    let partial = |g: &Grant| {
        AccessError::NotImplemented(format!(
            "partial revokes are not supported: {} is granted on {}, wider than the revoke; revoke that and grant what should remain",
            p.name(),
            Target::text(g.database.as_deref(), g.table.as_deref())
        ))
    };
    let mut kept = Vec::with_capacity(grants.len());
    for mut g in grants.drain(..) {
        if g.privilege != p {
            kept.push(g);
            continue;
        }
        let within = target.contains(&g.target());
        if !within {
            if g.target().contains(target) {
                return Err(partial(&g));
            }
            kept.push(g);
            continue;
        }
        match (columns, &mut g.columns) {
            (None, _) if grant_option_only => {
                g.grant_option = false;
                kept.push(g);
            }
            (None, _) => {}
            (Some(cols), Some(have)) => {
                have.retain(|c| !cols.contains(c));
                if !have.is_empty() {
                    kept.push(g);
                }
            }
            (Some(_), None) => return Err(partial(&g)),
        }
    }
    *grants = kept;
    Ok(())
}
