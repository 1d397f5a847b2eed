//! The access statements as `qh_query` parses them (`CREATE/ALTER/DROP
//! USER`, `CREATE/ALTER/DROP ROLE`, `CREATE/ALTER/DROP SETTINGS PROFILE`,
//! `CREATE/ALTER/DROP QUOTA`,
//! `GRANT`/`REVOKE` of privileges and of roles, `SHOW USERS/ROLES/GRANTS/
//! SETTINGS PROFILES`, `SHOW CREATE USER/ROLE/SETTINGS PROFILE`);
//! [`crate::Access`] runs them.

use std::collections::BTreeSet;

use crate::error::AccessError;
use crate::grant::Privilege;
use crate::profile::{Applies, SettingElement};
use crate::quota::{KeyType, QuotaInterval};
use crate::user::{Auth, Hosts};

#[derive(Debug, Clone, PartialEq)]
pub enum AccessStatement {
    CreateUser {
        names: Vec<String>,
        if_not_exists: bool,
        or_replace: bool,
        /// `None`: not said, which is `no_password` as in ClickHouse.
        auth: Option<AuthSpec>,
        hosts: Option<Hosts>,
        default_database: Option<String>,
        settings: Vec<SettingElement>,
    },
    AlterUser {
        name: String,
        if_exists: bool,
        rename_to: Option<String>,
        auth: Option<AuthSpec>,
        hosts: Option<Hosts>,
        /// `Some(None)`: `DEFAULT DATABASE NONE`.
        default_database: Option<Option<String>>,
        /// `SETTINGS ...` replaces the user's (`SETTINGS NONE`: empty).
        settings: Option<Vec<SettingElement>>,
    },
    DropUser {
        names: Vec<String>,
        if_exists: bool,
    },
    ShowUsers,
    ShowCreateUser {
        names: Vec<String>,
    },
    CreateRole {
        names: Vec<String>,
        if_not_exists: bool,
        or_replace: bool,
        settings: Vec<SettingElement>,
    },
    /// `ALTER ROLE name SETTINGS ...`.
    AlterRole {
        name: String,
        if_exists: bool,
        settings: Option<Vec<SettingElement>>,
    },
    CreateProfile {
        names: Vec<String>,
        if_not_exists: bool,
        or_replace: bool,
        elements: Vec<SettingElement>,
        to: Applies,
    },
    AlterProfile {
        name: String,
        if_exists: bool,
        rename_to: Option<String>,
        elements: Option<Vec<SettingElement>>,
        to: Option<Applies>,
    },
    DropProfile {
        names: Vec<String>,
        if_exists: bool,
    },
    ShowProfiles,
    ShowCreateProfile {
        names: Vec<String>,
    },
    CreateQuota {
        names: Vec<String>,
        if_not_exists: bool,
        or_replace: bool,
        keyed_by: KeyType,
        intervals: Vec<QuotaInterval>,
        to: Applies,
    },
    AlterQuota {
        name: String,
        if_exists: bool,
        rename_to: Option<String>,
        keyed_by: Option<KeyType>,
        intervals: Option<Vec<QuotaInterval>>,
        to: Option<Applies>,
    },
    DropQuota {
        names: Vec<String>,
        if_exists: bool,
    },
    ShowQuotas,
    ShowCreateQuota {
        names: Vec<String>,
    },
    /// `SHOW QUOTA`: what the current user has used of its quotas.
    ShowQuota,
    DropRole {
        names: Vec<String>,
        if_exists: bool,
    },
    ShowRoles,
    ShowCreateRole {
        names: Vec<String>,
    },
    /// `GRANT priv[(cols)], ... ON target TO grantees [WITH GRANT OPTION]`
    /// (grantees: users or roles).
    Grant {
        privileges: Vec<(Privilege, Option<BTreeSet<String>>)>,
        target: TargetSpec,
        grantees: Vec<String>,
        grant_option: bool,
    },
    /// `REVOKE [GRANT OPTION FOR] priv[(cols)], ... ON target FROM grantees`.
    Revoke {
        privileges: Vec<(Privilege, Option<BTreeSet<String>>)>,
        target: TargetSpec,
        grantees: Vec<String>,
        grant_option_only: bool,
    },
    /// `GRANT roles TO grantees [WITH ADMIN OPTION]`.
    GrantRoles {
        roles: Vec<String>,
        grantees: Vec<String>,
        admin_option: bool,
    },
    /// `REVOKE [ADMIN OPTION FOR] roles FROM grantees`.
    RevokeRoles {
        roles: Vec<String>,
        grantees: Vec<String>,
        admin_option_only: bool,
    },
    /// `SHOW GRANTS [FOR users or roles]` (none: the current user).
    ShowGrants {
        names: Vec<String>,
    },
}

/// `ON` of GRANT/REVOKE as written; `None` databases mean the session's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// `*.*`
    Everything,
    /// `db.*` or `*`
    Database(Option<String>),
    /// `db.table` or `table`
    Table(Option<String>, String),
}

/// `IDENTIFIED [WITH kind] BY '...'` as written: the password itself is
/// hashed on the node that runs the statement and never stored.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthSpec {
    NoPassword,
    /// `sha256_password` (also what `IDENTIFIED BY` and `plaintext_password`
    /// store: a salted hash is never worse than the plaintext).
    Password(String),
    Sha256Hash {
        hash: String,
        salt: String,
    },
    Bcrypt(String),
    BcryptHash(String),
}

/// Never prints the password (statements are traced).
impl std::fmt::Debug for AuthSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            AuthSpec::NoPassword => "no_password",
            AuthSpec::Password(_) => "sha256_password",
            AuthSpec::Sha256Hash { .. } => "sha256_hash",
            AuthSpec::Bcrypt(_) => "bcrypt_password",
            AuthSpec::BcryptHash(_) => "bcrypt_hash",
        };
        write!(f, "AuthSpec({kind})")
    }
}

impl AuthSpec {
    /// `kind` as written after `IDENTIFIED WITH` (lowercase), and the
    /// string after `BY` (`None` when there was no `BY`).
    pub fn from_kind(
        kind: &str,
        by: Option<String>,
        salt: Option<String>,
    ) -> Result<AuthSpec, AccessError> {
        let needs = |by: Option<String>| {
            by.ok_or_else(|| {
                AccessError::BadArguments(format!("IDENTIFIED WITH {kind} needs BY '...'"))
            })
        };
        Ok(match kind {
            "no_password" => AuthSpec::NoPassword,
            "sha256_password" | "plaintext_password" => AuthSpec::Password(needs(by)?),
            "sha256_hash" => AuthSpec::Sha256Hash {
                hash: needs(by)?,
                salt: salt.unwrap_or_default(),
            },
            "bcrypt_password" => AuthSpec::Bcrypt(needs(by)?),
            "bcrypt_hash" => AuthSpec::BcryptHash(needs(by)?),
            "double_sha1_password" | "double_sha1_hash" | "ldap" | "kerberos"
            | "ssl_certificate" | "ssh_key" | "http" | "jwt" => {
                return Err(AccessError::NotImplemented(format!(
                    "authentication type {kind} is not supported (no_password, sha256_password, sha256_hash, plaintext_password, bcrypt_password, bcrypt_hash are)"
                )))
            }
            other => {
                return Err(AccessError::BadArguments(format!(
                    "Unknown authentication type {other}"
                )))
            }
        })
    }

    /// What the coordinator stores.
    pub fn to_auth(&self) -> Result<Auth, AccessError> {
        match self {
            AuthSpec::NoPassword => Ok(Auth::NoPassword),
            AuthSpec::Password(p) => Auth::sha256(p),
            AuthSpec::Sha256Hash { hash, salt } => Auth::sha256_hash(hash, salt),
            AuthSpec::Bcrypt(p) => Auth::bcrypt(p),
            AuthSpec::BcryptHash(h) => Auth::bcrypt_hash(h),
        }
    }
}
