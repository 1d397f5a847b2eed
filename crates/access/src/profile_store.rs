//! Settings profiles in the coordinator: one key per profile,
//! `access/profile/<name>` → the JSON of its [`ProfileDef`], changed by
//! compare-and-set like users (`store.rs`); and the `SETTINGS` of users
//! and roles. Profiles have their own namespace, as in ClickHouse.

use std::collections::BTreeSet;

use qh_meta::command::{Check, Op, Request, Response};
use qh_meta::MetaState;

use crate::error::AccessError;
use crate::profile::{Applies, ProfileDef, ResolvedSettings, SettingElement};
use crate::role::RoleDef;
use crate::store::{lookup_role, role_key, Access};
use crate::user::UserDef;

pub(crate) const PROFILE_PREFIX: &str = "access/profile/";

pub(crate) fn profile_key(name: &str) -> String {
    format!("{PROFILE_PREFIX}{name}")
}

pub(crate) fn lookup_profile(state: &MetaState, name: &str) -> Option<ProfileDef> {
    state
        .key(&profile_key(name))
        .and_then(|json| serde_json::from_str(json).ok())
}

fn all_profiles(state: &MetaState) -> Vec<ProfileDef> {
    let mut out: Vec<ProfileDef> = state
        .keys_with_prefix(PROFILE_PREFIX)
        .filter_map(|(_, v)| serde_json::from_str(v).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// What `user`'s sessions get: the profiles applied to it or its roles
/// (`TO`, by name), then its roles' `SETTINGS`, then its own; later ones
/// win. Needs `user.active_roles` resolved.
pub(crate) fn resolve_settings(state: &MetaState, user: &UserDef) -> ResolvedSettings {
    let mut r = ResolvedSettings::default();
    let mut seen = BTreeSet::new();
    let lookup = |n: &str| lookup_profile(state, n);
    let held: BTreeSet<String> = user.active_roles.keys().cloned().collect();
    for p in all_profiles(state) {
        if p.to.applies(&user.name, &held) {
            r.apply_profile(&p.name, &lookup, &mut seen);
        }
    }
    for role in &held {
        if let Some(def) = lookup_role(state, role) {
            r.apply(&def.settings, &lookup, &mut seen);
        }
    }
    r.apply(&user.settings, &lookup, &mut seen);
    r
}

/// What `ALTER SETTINGS PROFILE` changes.
#[derive(Debug, Default)]
pub struct ProfileChange {
    pub rename_to: Option<String>,
    pub elements: Option<Vec<SettingElement>>,
    pub to: Option<Applies>,
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, AccessError> {
    serde_json::to_string(v).map_err(|e| AccessError::BadArguments(e.to_string()))
}

fn outcome(r: Response, what: &str) -> Result<(), AccessError> {
    match r {
        Response::Ok { .. } => Ok(()),
        Response::CheckFailed { .. } => Err(AccessError::Conflict(format!(
            "{what} was changed concurrently; run the statement again"
        ))),
        Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
    }
}

impl Access {
    /// Every settings profile this node knows, by name.
    pub fn profiles(&self) -> Vec<ProfileDef> {
        self.coordinator.read(all_profiles)
    }

    /// The profile `name` as of a linearizable read.
    pub async fn profile(&self, name: &str) -> Result<Option<ProfileDef>, AccessError> {
        Ok(self
            .coordinator
            .read_linearizable(|s| lookup_profile(s, name))
            .await?)
    }

    /// Refuses elements naming an unknown setting or profile.
    pub(crate) async fn check_elements(
        &self,
        elements: &[SettingElement],
    ) -> Result<(), AccessError> {
        for e in elements {
            e.validate()?;
            if let SettingElement::Profile { name } = e {
                if self.profile(name).await?.is_none() {
                    return Err(AccessError::UnknownProfile(name.clone()));
                }
            }
        }
        Ok(())
    }

    pub async fn create_profile(
        &self,
        profile: ProfileDef,
        if_not_exists: bool,
        or_replace: bool,
    ) -> Result<(), AccessError> {
        crate::store::check_name(&profile.name)?;
        self.check_elements(&profile.elements).await?;
        let key = profile_key(&profile.name);
        let checks = match or_replace {
            true => Vec::new(),
            false => vec![Check::KeyEquals {
                key: key.clone(),
                value: None,
            }],
        };
        let req = Request::op(Op::Put {
            key,
            value: to_json(&profile)?,
        })
        .with_checks(checks);
        match self.coordinator.write(req).await? {
            Response::CheckFailed { .. } if if_not_exists => Ok(()),
            Response::CheckFailed { .. } => Err(AccessError::AlreadyExists {
                kind: "settings profile",
                existing: "settings profile",
                name: profile.name,
            }),
            other => outcome(other, "the profile"),
        }
    }

    pub async fn alter_profile(
        &self,
        name: &str,
        if_exists: bool,
        change: ProfileChange,
    ) -> Result<(), AccessError> {
        if let Some(elements) = &change.elements {
            self.check_elements(elements).await?;
        }
        let old = self
            .coordinator
            .read_linearizable(|s| s.key(&profile_key(name)).map(str::to_string))
            .await?;
        let Some(old) = old else {
            return match if_exists {
                true => Ok(()),
                false => Err(AccessError::UnknownProfile(name.to_string())),
            };
        };
        let mut p: ProfileDef = serde_json::from_str(&old)
            .map_err(|e| AccessError::Conflict(format!("stored profile {name}: {e}")))?;
        if let Some(e) = change.elements {
            p.elements = e;
        }
        if let Some(to) = change.to {
            p.to = to;
        }
        let mut checks = vec![Check::KeyEquals {
            key: profile_key(name),
            value: Some(old),
        }];
        let mut ops = Vec::new();
        if let Some(new) = change.rename_to.filter(|n| n != name) {
            crate::store::check_name(&new)?;
            checks.push(Check::KeyEquals {
                key: profile_key(&new),
                value: None,
            });
            ops.push(Op::Delete {
                key: profile_key(name),
            });
            p.name = new;
        }
        ops.push(Op::Put {
            key: profile_key(&p.name),
            value: to_json(&p)?,
        });
        match self
            .coordinator
            .write(Request::ops(ops).with_checks(checks))
            .await?
        {
            Response::CheckFailed { index: 1, .. } => Err(AccessError::AlreadyExists {
                kind: "settings profile",
                existing: "settings profile",
                name: p.name,
            }),
            other => outcome(other, &format!("settings profile {name}")),
        }
    }

    /// Drops the profile; users, roles and profiles naming it keep the
    /// name, which then gives nothing (as a dropped role does).
    pub async fn drop_profile(&self, name: &str, if_exists: bool) -> Result<(), AccessError> {
        let old = self
            .coordinator
            .read_linearizable(|s| s.key(&profile_key(name)).map(str::to_string))
            .await?;
        let Some(old) = old else {
            return match if_exists {
                true => Ok(()),
                false => Err(AccessError::UnknownProfile(name.to_string())),
            };
        };
        let req = Request::op(Op::Delete {
            key: profile_key(name),
        })
        .with_checks(vec![Check::KeyEquals {
            key: profile_key(name),
            value: Some(old),
        }]);
        outcome(
            self.coordinator.write(req).await?,
            &format!("settings profile {name}"),
        )
    }

    /// Replaces the `SETTINGS` of the role `name` (a user's change through
    /// `alter_user`).
    pub async fn set_role_settings(
        &self,
        name: &str,
        if_exists: bool,
        elements: Vec<SettingElement>,
    ) -> Result<(), AccessError> {
        self.check_elements(&elements).await?;
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
        role.settings = elements;
        let req = Request::op(Op::Put {
            key: role_key(name),
            value: to_json(&role)?,
        })
        .with_checks(vec![Check::KeyEquals {
            key: role_key(name),
            value: Some(old),
        }]);
        outcome(self.coordinator.write(req).await?, &format!("role {name}"))
    }
}
