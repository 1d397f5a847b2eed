//! Roles: named sets of grants (and of other roles) that users hold, so a
//! group's rights change in one place (ClickHouse's `CREATE ROLE`,
//! `GRANT role TO user`). Every granted role is active: ClickHouse's
//! default for a user is `DEFAULT ROLE ALL`, and `SET ROLE` is not offered.
//!
//! **Invariant:** the role graph has no cycle — granting a role to a role
//! that it (transitively) holds is refused — and resolving a user's roles
//! visits each role once, so even a graph damaged by hand ends.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::grant::Grant;
use crate::profile::SettingElement;

/// A role held by a user or a role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoleGrant {
    pub role: String,
    /// `WITH ADMIN OPTION`: the holder may grant the role on.
    #[serde(default)]
    pub admin_option: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDef {
    pub name: String,
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Roles granted to this role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleGrant>,
    /// `SETTINGS ...`: what holders' sessions get.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingElement>,
}

impl RoleDef {
    pub fn new(name: String) -> RoleDef {
        RoleDef {
            name,
            grants: Vec::new(),
            roles: Vec::new(),
            settings: Vec::new(),
        }
    }
}

/// What a holder of `direct` roles gets from them, directly and through
/// roles granted to roles: every role reached (with whether the admin
/// option was granted on it anywhere along a direct grant) and the union of
/// their grants. `role` looks a role up; a missing one (dropped meanwhile)
/// gives nothing.
pub fn resolve(
    direct: &[RoleGrant],
    role: impl Fn(&str) -> Option<RoleDef>,
) -> (BTreeMap<String, bool>, Vec<Grant>) {
    let mut reached: BTreeMap<String, bool> = BTreeMap::new();
    let mut grants = Vec::new();
    let mut queue: Vec<RoleGrant> = direct.to_vec();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(rg) = queue.pop() {
        let admin = reached.entry(rg.role.clone()).or_insert(false);
        *admin |= rg.admin_option;
        if !seen.insert(rg.role.clone()) {
            continue;
        }
        let Some(def) = role(&rg.role) else { continue };
        grants.extend(def.grants);
        // A role's roles come with it, their admin option too.
        queue.extend(def.roles);
    }
    (reached, grants)
}

/// Whether granting `role` to the role `grantee` would close a cycle:
/// `grantee` is `role` or already reached from it.
pub fn would_cycle(role: &str, grantee: &str, lookup: impl Fn(&str) -> Option<RoleDef>) -> bool {
    if role == grantee {
        return true;
    }
    let start = [RoleGrant {
        role: role.to_string(),
        admin_option: false,
    }];
    resolve(&start, lookup).0.contains_key(grantee)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Privilege;

    fn role(name: &str, privilege: Privilege, roles: &[&str]) -> RoleDef {
        RoleDef {
            name: name.into(),
            grants: vec![Grant {
                privilege,
                database: Some("db".into()),
                table: None,
                columns: None,
                grant_option: false,
            }],
            roles: roles
                .iter()
                .map(|r| RoleGrant {
                    role: r.to_string(),
                    admin_option: false,
                })
                .collect(),
            settings: Vec::new(),
        }
    }

    #[test]
    fn roles_of_roles_are_resolved_once_and_cycles_end() {
        let defs: BTreeMap<&str, RoleDef> = [
            ("reader", role("reader", Privilege::Select, &[])),
            ("writer", role("writer", Privilege::Insert, &["reader"])),
            // A cycle written by hand: still ends.
            ("a", role("a", Privilege::Drop, &["b"])),
            ("b", role("b", Privilege::Alter, &["a"])),
        ]
        .into();
        let lookup = |n: &str| defs.get(n).cloned();
        let held = [RoleGrant {
            role: "writer".into(),
            admin_option: true,
        }];
        let (reached, grants) = resolve(&held, lookup);
        assert_eq!(
            reached,
            [("reader".to_string(), false), ("writer".to_string(), true)].into()
        );
        let mut ps: Vec<Privilege> = grants.iter().map(|g| g.privilege).collect();
        ps.sort();
        assert_eq!(ps, {
            let mut v = vec![Privilege::Select, Privilege::Insert];
            v.sort();
            v
        });
        let (reached, _) = resolve(
            &[RoleGrant {
                role: "a".into(),
                admin_option: false,
            }],
            lookup,
        );
        assert_eq!(reached.len(), 2);
        assert!(would_cycle("writer", "reader", lookup));
        assert!(would_cycle("reader", "reader", lookup));
        assert!(!would_cycle("reader", "writer", lookup));
        // A dropped role gives nothing.
        let (reached, grants) = resolve(
            &[RoleGrant {
                role: "gone".into(),
                admin_option: false,
            }],
            lookup,
        );
        assert_eq!(reached.len(), 1);
        assert!(grants.is_empty());
    }
}
