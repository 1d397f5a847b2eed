//! Users defined in the node's config file (`[users.<name>]`, ClickHouse's
//! `users.xml`): read when the node starts, shown with the storage
//! `users_xml`, and read-only to SQL — ALTER, DROP, GRANT and REVOKE on them
//! answer ACCESS_STORAGE_READONLY, as ClickHouse's do. A config user of a
//! name hides a replicated user of that name on this node (`default`
//! included), so every node of a cluster should carry the same file.
//!
//! [`AccessConfig`] also says where the built-in `default` may connect
//! from: the loopback only unless the node says otherwise, as ClickHouse's
//! packages and images ship it.

use std::collections::BTreeSet;

use crate::error::AccessError;
use crate::grant::{Grant, Privilege};
use crate::profile::SettingElement;
use crate::role::RoleGrant;
use crate::user::{Auth, HostRule, Hosts, UserDef};

/// What a node's configuration says about users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// `[users.<name>]` of the config file.
    pub users: Vec<UserDef>,
    /// Where the built-in `default` (before any access statement) may
    /// connect from.
    pub default_hosts: Hosts,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            users: Vec::new(),
            default_hosts: Hosts::List {
                rules: vec![HostRule::Local],
            },
        }
    }
}

impl AccessConfig {
    /// `networks` as a comma-separated list (`::/0` for any host, `local`,
    /// IPs and CIDRs), as `QUORUMHOUSE_DEFAULT_USER_NETWORKS` gives it.
    pub fn parse_networks(list: &str) -> Result<Hosts, AccessError> {
        let nets: Vec<String> = list
            .split(',')
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        networks(&nets)
    }
}

/// Hosts of a `networks` list; `::/0` or `0.0.0.0/0` is any host.
fn networks(nets: &[String]) -> Result<Hosts, AccessError> {
    if nets.iter().any(|n| n == "::/0" || n == "0.0.0.0/0") {
        return Ok(Hosts::Any);
    }
    let mut rules = Vec::new();
    for n in nets {
        match n.as_str() {
            "local" | "LOCAL" => rules.push(HostRule::Local),
            net => rules.push(HostRule::ip(net)?),
        }
    }
    Ok(Hosts::List { rules })
}

/// A `[users.<name>]` table as the config file writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigUserSpec {
    /// In plain text (hashed when read; prefer the hash).
    pub password: Option<String>,
    /// hex(SHA-256(password)), ClickHouse's `password_sha256_hex`.
    pub password_sha256_hex: Option<String>,
    /// `::1`, `127.0.0.1`, `10.0.0.0/8` or `local`; none given: any host.
    pub networks: Option<Vec<String>>,
    /// `SELECT ON db.*`, `INSERT, ALTER ON db.t`, `SELECT(a, b) ON db.t`,
    /// each optionally `WITH GRANT OPTION`.
    pub grants: Vec<String>,
    /// Everything on `*.*` with the grant option (ClickHouse's
    /// `access_management` plus the grants it implies for `default`).
    pub access_management: bool,
    pub roles: Vec<String>,
    /// A settings profile (in the coordinator) the user's sessions get.
    pub profile: Option<String>,
    pub default_database: Option<String>,
}

impl ConfigUserSpec {
    /// The user `name` this spec defines.
    pub fn into_user(self, name: &str) -> Result<UserDef, AccessError> {
        crate::store::check_name(name)?;
        let bad = |what: String| AccessError::BadArguments(format!("user {name}: {what}"));
        let auth = match (&self.password, &self.password_sha256_hex) {
            (Some(_), Some(_)) => {
                return Err(bad("give password or password_sha256_hex, not both".into()))
            }
            (Some(p), None) if p.is_empty() => Auth::NoPassword,
            (Some(p), None) => Auth::sha256(p)?,
            (None, Some(h)) => Auth::sha256_hash(h, "").map_err(|e| bad(e.to_string()))?,
            (None, None) => Auth::NoPassword,
        };
        let hosts = match &self.networks {
            None => Hosts::Any,
            Some(nets) => networks(nets).map_err(|e| bad(e.to_string()))?,
        };
        self.finish(name, auth, hosts)
    }

    fn finish(self, name: &str, auth: Auth, hosts: Hosts) -> Result<UserDef, AccessError> {
        let mut grants = Vec::new();
        if self.access_management {
            grants.extend(UserDef::builtin_default().grants);
        }
        for g in &self.grants {
            grants.extend(
                parse_grant(g)
                    .map_err(|e| AccessError::BadArguments(format!("user {name}: {e}")))?,
            );
        }
        grants.sort();
        grants.dedup();
        Ok(UserDef {
            auth,
            hosts,
            default_database: self.default_database,
            grants,
            roles: self
                .roles
                .into_iter()
                .map(|role| RoleGrant {
                    role,
                    admin_option: false,
                })
                .collect(),
            settings: self
                .profile
                .map(|name| vec![SettingElement::Profile { name }])
                .unwrap_or_default(),
            read_only: true,
            ..UserDef::new(name.to_string())
        })
    }
}

/// One grant as the config file writes it: `privileges ON target [WITH
/// GRANT OPTION]`, privileges separated by commas, `SELECT(a, b)` for
/// columns, the target `*.*`, `db.*` or `db.table`.
pub fn parse_grant(text: &str) -> Result<Vec<Grant>, AccessError> {
    let bad = || {
        AccessError::BadArguments(format!(
            "grant '{text}': expected 'privileges ON *.*|db.*|db.table [WITH GRANT OPTION]'"
        ))
    };
    let upper = text.to_ascii_uppercase();
    let (text, grant_option) = match upper.trim_end().strip_suffix("WITH GRANT OPTION") {
        Some(head) => (&text[..head.len()], true),
        None => (text, false),
    };
    let at = text.to_ascii_uppercase().rfind(" ON ").ok_or_else(bad)?;
    let (privs, target) = (&text[..at], text[at + 4..].trim());
    let (database, table) = match target.split_once('.') {
        Some(("*", "*")) => (None, None),
        Some((db, "*")) if !db.is_empty() => (Some(db.to_string()), None),
        Some((db, t)) if !db.is_empty() && !t.is_empty() && db != "*" => {
            (Some(db.to_string()), Some(t.to_string()))
        }
        _ => return Err(bad()),
    };
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, ch) in privs.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&privs[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&privs[start..]);
    for item in items {
        let item = item.trim();
        let (words, columns) = match item.split_once('(') {
            Some((w, cols)) => {
                let cols = cols.strip_suffix(')').ok_or_else(bad)?;
                let set: BTreeSet<String> = cols
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect();
                (w.trim(), Some(set))
            }
            None => (item, None),
        };
        let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
        let privileges = Privilege::parse(&words.to_ascii_uppercase())?;
        if columns.is_some() && privileges != [Privilege::Select] {
            return Err(AccessError::BadArguments(format!(
                "grant '{text}': column lists are for SELECT only"
            )));
        }
        for privilege in privileges {
            out.push(Grant {
                privilege,
                database: database.clone(),
                table: table.clone(),
                columns: columns.clone(),
                grant_option,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_default_keeps_to_the_loopback_unless_told() {
        let local = AccessConfig::default().default_hosts;
        assert!(local.allows("127.0.0.1".parse().unwrap()));
        assert!(local.allows("::1".parse().unwrap()));
        assert!(!local.allows("10.1.2.3".parse().unwrap()));
        assert_eq!(AccessConfig::parse_networks("::/0").unwrap(), Hosts::Any);
        let nets = AccessConfig::parse_networks("local, 10.0.0.0/8").unwrap();
        assert!(nets.allows("10.1.2.3".parse().unwrap()));
        assert!(!nets.allows("192.168.1.1".parse().unwrap()));
        assert!(AccessConfig::parse_networks("10.0.0.0/99").is_err());
    }

    #[test]
    fn grants_as_the_config_writes_them() {
        let g = parse_grant("SELECT(a, b), INSERT ON db.t WITH GRANT OPTION").unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].privilege, Privilege::Select);
        assert_eq!(
            g[0].columns,
            Some(["a".to_string(), "b".to_string()].into())
        );
        assert_eq!(g[1].table.as_deref(), Some("t"));
        assert!(g.iter().all(|g| g.grant_option));
        let all = parse_grant("all on *.*").unwrap();
        assert_eq!(all.len(), Privilege::ALL.len());
        assert!(all.iter().all(|g| g.database.is_none() && !g.grant_option));
        assert_eq!(
            parse_grant("KILL QUERY ON db.*").unwrap()[0].privilege,
            Privilege::KillQuery
        );
        for bad in [
            "SELECT db.t",
            "SELECT ON *.t",
            "FLY ON db.*",
            "INSERT(a) ON db.t",
            "SELECT ON",
        ] {
            assert!(parse_grant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_config_user_is_read_only_and_checks_its_password() {
        let hex = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"; // "password"
        let u = ConfigUserSpec {
            password_sha256_hex: Some(hex.into()),
            networks: Some(vec!["local".into(), "10.0.0.0/8".into()]),
            grants: vec!["SELECT ON db.*".into()],
            profile: Some("analysts".into()),
            ..Default::default()
        }
        .into_user("alice")
        .unwrap();
        assert!(u.read_only);
        assert!(u.admits("password", Some("127.0.0.1".parse().unwrap())));
        assert!(u.admits("password", Some("10.1.2.3".parse().unwrap())));
        assert!(!u.admits("password", Some("192.168.0.1".parse().unwrap())));
        assert!(!u.admits("wrong", None));
        assert_eq!(u.settings.len(), 1);
        let admin = ConfigUserSpec {
            password: Some("pw".into()),
            access_management: true,
            ..Default::default()
        }
        .into_user("root")
        .unwrap();
        assert!(admin.admits("pw", None));
        assert_eq!(admin.grants, UserDef::builtin_default().grants);
        let both = ConfigUserSpec {
            password: Some("a".into()),
            password_sha256_hex: Some(hex.into()),
            ..Default::default()
        };
        assert!(both.into_user("x").is_err());
    }
}
