//! Access control: who may connect to a node.
//!
//! Owns users ([`UserDef`]: name, a salted password hash, the hosts it may
//! connect from, its [`Grant`]s, roles and settings), roles ([`RoleDef`]:
//! grants, roles and settings under a name), settings profiles
//! ([`ProfileDef`]: setting values and constraints, resolved per user into
//! [`ResolvedSettings`]), quotas ([`QuotaDef`], counted per node), their storage in the coordinator ([`Access`]: one key per
//! user or role, changed by compare-and-set, so a user created on one node holds on
//! every node), the check of credentials every client door makes
//! ([`Access::authenticate`]), and the AST of the access statements
//! ([`AccessStatement`]; `qh_query` parses them and runs them here). Users
//! of the node's config file ([`ConfigUserSpec`]) sit beside the replicated
//! ones, read-only to SQL.
//!
//! **Invariants:** a password is never stored, logged or shown — only its
//! salted hash is kept, [`AuthSpec`]'s `Debug` omits it, and a failed login
//! says the same thing whether the user, the password or the host was wrong.

mod config_users;
mod entity;
mod error;
mod grant;
mod profile;
mod profile_store;
mod quota;
mod quota_store;
mod role;
mod role_store;
mod statement;
mod store;
mod user;

pub use config_users::{parse_grant, AccessConfig, ConfigUserSpec};
pub use error::AccessError;
pub use grant::{allows, Grant, Need, Privilege, Target};
pub use profile::{
    settings_sql, Applies, Constraint, ProfileDef, ResolvedSettings, SettingElement, Writability,
};
pub use profile_store::ProfileChange;
pub use quota::{KeyType, QueryKind, QuotaDef, QuotaInterval, Resource, UsageRow, Who, UNITS};
pub use quota_store::{QuotaChange, StatementUse};
pub use role::{RoleDef, RoleGrant};
pub use statement::{AccessStatement, AuthSpec, TargetSpec};
pub use store::{Access, UserChange};
pub use user::{Auth, HostRule, Hosts, UserDef};
