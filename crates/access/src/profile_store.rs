//! Settings profiles in the coordinator (one key per profile,
//! `access/profile/<name>` → the JSON of its [`ProfileDef`], kept by
//! `entity.rs`), the `SETTINGS` of roles, and the resolution of what a
//! user's sessions get.

use std::collections::BTreeSet;

use qh_meta::MetaState;

use crate::entity::{self, Entity};
use crate::error::AccessError;
use crate::profile::{Applies, ProfileDef, ResolvedSettings, SettingElement};
use crate::store::{lookup_role, Access};
use crate::user::UserDef;

impl Entity for ProfileDef {
    const PREFIX: &'static str = "access/profile/";
    const KIND: &'static str = "settings profile";
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: String) {
        self.name = name;
    }
    fn unknown(name: &str) -> AccessError {
        AccessError::UnknownProfile(name.to_string())
    }
}

/// What `user`'s sessions get: the profiles applied to it or its roles
/// (`TO`, by name), then its roles' `SETTINGS`, then its own; later ones
/// win. Needs `user.active_roles` resolved.
pub(crate) fn resolve_settings(state: &MetaState, user: &UserDef) -> ResolvedSettings {
    let mut r = ResolvedSettings::default();
    let mut seen = BTreeSet::new();
    let lookup = |n: &str| entity::lookup::<ProfileDef>(state, n);
    let held: BTreeSet<String> = user.active_roles.keys().cloned().collect();
    for p in entity::all::<ProfileDef>(state) {
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

impl Access {
    /// Every settings profile this node knows, by name.
    pub fn profiles(&self) -> Vec<ProfileDef> {
        self.coordinator.read(entity::all::<ProfileDef>)
    }

    /// The profile `name` as of a linearizable read.
    pub async fn profile(&self, name: &str) -> Result<Option<ProfileDef>, AccessError> {
        self.entity(name).await
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
        self.check_elements(&profile.elements).await?;
        self.create_entity(&profile, if_not_exists, or_replace)
            .await
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
        self.alter_entity(name, if_exists, change.rename_to, |p: &mut ProfileDef| {
            if let Some(e) = change.elements {
                p.elements = e;
            }
            if let Some(to) = change.to {
                p.to = to;
            }
        })
        .await
    }

    /// Drops the profile; users, roles and profiles naming it keep the
    /// name, which then gives nothing (as a dropped role does).
    pub async fn drop_profile(&self, name: &str, if_exists: bool) -> Result<(), AccessError> {
        self.drop_entity::<ProfileDef>(name, if_exists).await
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
        self.update_role(name, if_exists, |r| {
            r.settings = elements;
            Ok(())
        })
        .await
    }
}
