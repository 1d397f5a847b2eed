//! A user as the coordinator stores it: name, how it proves who it is
//! ([`Auth`], never the password itself) and where it may connect from
//! ([`Hosts`]).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::AccessError;
use crate::grant::{Grant, Need, Privilege};
use crate::profile::{settings_sql, ResolvedSettings, SettingElement};
use crate::role::RoleGrant;

/// ClickHouse's default `bcrypt_workfactor`.
const BCRYPT_COST: u32 = 12;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDef {
    pub name: String,
    pub auth: Auth,
    #[serde(default)]
    pub hosts: Hosts,
    /// `DEFAULT DATABASE`: where the user's sessions start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_database: Option<String>,
    /// What the user may do; a new user may do nothing until granted.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Roles granted to the user (all of them active).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleGrant>,
    /// The grants of its roles, resolved when the user is looked up
    /// (`Access`); never stored.
    #[serde(skip)]
    pub inherited: Vec<Grant>,
    /// Every role it holds, directly or through roles, with whether it may
    /// grant it on (the admin option); resolved with `inherited`.
    #[serde(skip)]
    pub active_roles: std::collections::BTreeMap<String, bool>,
    /// `SETTINGS ...`: what the user's sessions get.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingElement>,
    /// The settings and constraints of its profiles, its roles' and its
    /// own `SETTINGS`, resolved with `inherited`; never stored.
    #[serde(skip)]
    pub resolved_settings: ResolvedSettings,
    /// Defined in the node's config file (`config_users.rs`): read-only to
    /// SQL, listed with the storage `users_xml`.
    #[serde(skip)]
    pub read_only: bool,
}

impl UserDef {
    /// The `default` user every cluster starts with: no password, as
    /// ClickHouse ships it.
    /// `default` may do everything and grant it, as ClickHouse ships it
    /// with `access_management` on.
    pub fn builtin_default() -> Self {
        UserDef {
            grants: Privilege::ALL
                .into_iter()
                .map(|privilege| Grant {
                    privilege,
                    database: None,
                    table: None,
                    columns: None,
                    grant_option: true,
                })
                .collect(),
            ..UserDef::new("default".into())
        }
    }

    /// A user with no password, no grants and no roles.
    pub fn new(name: String) -> Self {
        UserDef {
            name,
            auth: Auth::NoPassword,
            hosts: Hosts::Any,
            default_database: None,
            grants: Vec::new(),
            roles: Vec::new(),
            inherited: Vec::new(),
            active_roles: Default::default(),
            settings: Vec::new(),
            resolved_settings: Default::default(),
            read_only: false,
        }
    }

    /// Whether the user has `need` (with the grant option when asked),
    /// by its own grants or its roles'.
    pub fn may(&self, need: &Need, grant_option: bool) -> bool {
        if self.inherited.is_empty() {
            return crate::grant::allows(&self.grants, need, grant_option);
        }
        let all: Vec<Grant> = self.grants.iter().chain(&self.inherited).cloned().collect();
        crate::grant::allows(&all, need, grant_option)
    }

    /// Whether the user may grant or revoke `role`: it holds it with the
    /// admin option, or it manages access.
    pub fn may_admin(&self, role: &str) -> bool {
        self.active_roles.get(role).copied().unwrap_or(false)
            || self.may(&Need::global(Privilege::AccessManagement), false)
    }

    /// Whether `password` from `peer` (unknown for in-process callers)
    /// proves this user.
    pub fn admits(&self, password: &str, peer: Option<IpAddr>) -> bool {
        peer.is_none_or(|p| self.hosts.allows(p)) && self.auth.verify(password)
    }

    /// `SHOW CREATE USER`: the statement that recreates the user, its
    /// password hidden as ClickHouse hides it.
    pub fn create_sql(&self) -> String {
        let mut s = format!("CREATE USER {}", quote_name(&self.name));
        match &self.auth {
            Auth::NoPassword => s.push_str(" IDENTIFIED WITH no_password"),
            other => {
                s.push_str(" IDENTIFIED WITH ");
                s.push_str(other.type_name());
            }
        }
        match &self.hosts {
            Hosts::Any => {}
            Hosts::List { rules } if rules.is_empty() => s.push_str(" HOST NONE"),
            Hosts::List { rules } => {
                let parts: Vec<String> = rules
                    .iter()
                    .map(|r| match r {
                        HostRule::Local => "LOCAL".to_string(),
                        HostRule::Ip { net } => format!("IP '{net}'"),
                    })
                    .collect();
                s.push_str(" HOST ");
                s.push_str(&parts.join(", "));
            }
        }
        if let Some(db) = &self.default_database {
            s.push_str(" DEFAULT DATABASE ");
            s.push_str(&quote_name(db));
        }
        s.push_str(&settings_sql(&self.settings));
        s
    }
}

/// A name as ClickHouse prints it: bare when it is a plain identifier.
fn quote_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        name.to_string()
    } else {
        format!("`{}`", name.replace('`', "\\`"))
    }
}

/// How a user proves who it is. Only salted hashes are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    NoPassword,
    /// hex(SHA-256(password ‖ salt)), as ClickHouse's `sha256_password`.
    Sha256 {
        hash: String,
        salt: String,
    },
    Bcrypt {
        hash: String,
    },
}

impl Auth {
    /// `sha256_password BY 'password'` with a fresh random salt.
    pub fn sha256(password: &str) -> Result<Auth, AccessError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)
            .map_err(|e| AccessError::BadArguments(format!("no random salt: {e}")))?;
        let salt = hex::encode(salt);
        Ok(Auth::Sha256 {
            hash: sha256_hex(password, &salt),
            salt,
        })
    }

    /// `sha256_hash BY 'hex' [SALT 'salt']`.
    pub fn sha256_hash(hash: &str, salt: &str) -> Result<Auth, AccessError> {
        let ok = hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit());
        if !ok {
            return Err(AccessError::BadArguments(
                "Password hash for the 'SHA256_PASSWORD' authentication type has length 64 hexadecimal digits".into(),
            ));
        }
        Ok(Auth::Sha256 {
            hash: hash.to_ascii_lowercase(),
            salt: salt.to_string(),
        })
    }

    pub fn bcrypt(password: &str) -> Result<Auth, AccessError> {
        let hash = bcrypt::hash(password, BCRYPT_COST)
            .map_err(|e| AccessError::BadArguments(format!("bcrypt: {e}")))?;
        Ok(Auth::Bcrypt { hash })
    }

    /// `bcrypt_hash BY '$2a$...'`.
    pub fn bcrypt_hash(hash: &str) -> Result<Auth, AccessError> {
        // A malformed hash would refuse every password; say so now.
        if bcrypt::verify("", hash).is_err() {
            return Err(AccessError::BadArguments(
                "Password hash for the 'BCRYPT_PASSWORD' authentication type is not a bcrypt hash"
                    .into(),
            ));
        }
        Ok(Auth::Bcrypt {
            hash: hash.to_string(),
        })
    }

    pub fn verify(&self, password: &str) -> bool {
        match self {
            Auth::NoPassword => password.is_empty(),
            Auth::Sha256 { hash, salt } => {
                constant_time_eq(sha256_hex(password, salt).as_bytes(), hash.as_bytes())
            }
            Auth::Bcrypt { hash } => bcrypt::verify(password, hash).unwrap_or(false),
        }
    }

    /// The name `system.users.auth_type` and `SHOW CREATE USER` use.
    pub fn type_name(&self) -> &'static str {
        match self {
            Auth::NoPassword => "no_password",
            Auth::Sha256 { .. } => "sha256_password",
            Auth::Bcrypt { .. } => "bcrypt_password",
        }
    }
}

fn sha256_hex(password: &str, salt: &str) -> String {
    let mut h = Sha256::new();
    h.update(password.as_bytes());
    h.update(salt.as_bytes());
    hex::encode(h.finalize())
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guessed hash was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where a user may connect from (`HOST ...`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hosts {
    #[default]
    Any,
    /// Any of these; empty is `HOST NONE`.
    List { rules: Vec<HostRule> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum HostRule {
    /// The loopback addresses.
    Local,
    /// An address or a subnet in CIDR notation.
    Ip { net: String },
}

impl HostRule {
    /// `IP 'addr[/len]'`, checked.
    pub fn ip(text: &str) -> Result<HostRule, AccessError> {
        parse_net(text)?;
        Ok(HostRule::Ip {
            net: text.to_string(),
        })
    }

    fn allows(&self, peer: IpAddr) -> bool {
        match self {
            HostRule::Local => canonical(peer).is_loopback(),
            HostRule::Ip { net } => parse_net(net).is_ok_and(|n| n.contains(&canonical(peer))),
        }
    }
}

impl Hosts {
    pub fn allows(&self, peer: IpAddr) -> bool {
        match self {
            Hosts::Any => true,
            Hosts::List { rules } => rules.iter().any(|r| r.allows(peer)),
        }
    }
}

/// An IPv4 peer seen through an IPv6 socket is compared as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn parse_net(text: &str) -> Result<ipnet::IpNet, AccessError> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>()
        .or_else(|_| t.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| AccessError::BadArguments(format!("Invalid IP address or subnet: '{text}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let a = Auth::sha256("s3cret").unwrap();
        assert!(a.verify("s3cret"));
        assert!(!a.verify("s3cret "));
        assert!(!a.verify(""));
        // Salted: the same password hashes differently each time.
        assert_ne!(a, Auth::sha256("s3cret").unwrap());
        assert!(Auth::NoPassword.verify(""));
        assert!(!Auth::NoPassword.verify("x"));
    }

    #[test]
    fn a_known_sha256_hash_is_accepted() {
        // echo -n 'qwerty' | sha256sum (no salt), as ClickHouse's docs show.
        let h = "65e84be33532fb784c48129675f9eff3a682b27168c0ea744b2cf58ee02337c5";
        let a = Auth::sha256_hash(h, "").unwrap();
        assert!(a.verify("qwerty"));
        assert!(!a.verify("qwertz"));
        assert!(Auth::sha256_hash("abc", "").is_err());
    }

    #[test]
    fn host_rules() {
        let local = Hosts::List {
            rules: vec![HostRule::Local],
        };
        assert!(local.allows("127.0.0.1".parse().unwrap()));
        assert!(local.allows("::1".parse().unwrap()));
        assert!(local.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!local.allows("10.0.0.1".parse().unwrap()));
        let net = Hosts::List {
            rules: vec![HostRule::ip("10.1.0.0/16").unwrap()],
        };
        assert!(net.allows("10.1.2.3".parse().unwrap()));
        assert!(!net.allows("10.2.0.1".parse().unwrap()));
        assert!(!Hosts::List { rules: vec![] }.allows("127.0.0.1".parse().unwrap()));
        assert!(HostRule::ip("10.1.0.0/99").is_err());
        assert!(HostRule::ip("not an ip").is_err());
    }

    #[test]
    fn create_sql_hides_the_password() {
        let u = UserDef {
            auth: Auth::sha256("pw").unwrap(),
            hosts: Hosts::List {
                rules: vec![HostRule::Local, HostRule::ip("10.0.0.0/8").unwrap()],
            },
            default_database: Some("db".into()),
            ..UserDef::new("alice".into())
        };
        assert_eq!(
            u.create_sql(),
            "CREATE USER alice IDENTIFIED WITH sha256_password HOST LOCAL, IP '10.0.0.0/8' DEFAULT DATABASE db"
        );
    }
}
