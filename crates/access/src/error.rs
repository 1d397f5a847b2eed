//! What can go wrong managing users and checking credentials, each with its
//! ClickHouse code ([`AccessError::code`]).

use qh_meta::MetaError;
use qh_types::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A wrong password, an unknown user and a refused host all read the
    /// same, as in ClickHouse: the answer never says which part was wrong.
    #[error(
        "{user}: Authentication failed: password is incorrect, or there is no user with such name."
    )]
    AuthenticationFailed { user: String },
    /// A user or role of that name exists (they share one namespace here,
    /// so `GRANT ... TO name` is never ambiguous).
    #[error(
        "{kind} `{name}`: cannot insert because {existing} `{name}` already exists in replicated"
    )]
    AlreadyExists {
        kind: &'static str,
        existing: &'static str,
        name: String,
    },
    #[error("There is no user `{0}` in replicated")]
    UnknownUser(String),
    /// A user of the config file: changed only there.
    #[error("Cannot update user `{0}` in users_xml because this storage is readonly: it is defined in the node's config file")]
    ReadOnlyUser(String),
    #[error("There is no role `{0}` in replicated")]
    UnknownRole(String),
    #[error("There is no user or role `{0}` in replicated")]
    UnknownGrantee(String),
    #[error("There is no settings profile `{0}` in replicated")]
    UnknownProfile(String),
    #[error("There is no quota `{0}` in replicated")]
    UnknownQuota(String),
    #[error("{0}")]
    BadArguments(String),
    #[error(transparent)]
    Setting(#[from] qh_types::settings::SettingError),
    /// A profile's MIN, MAX or CONST refused a setting's new value.
    #[error("{0}")]
    Constraint(String),
    /// `readonly` refused a setting's change.
    #[error("{0}")]
    Readonly(String),
    /// A quota's limit is used up for the current interval.
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    NotImplemented(String),
    /// The coordinator did not take the change (no leader, or the outcome
    /// is unknown: the statement may be repeated, it is idempotent).
    #[error("coordinator: {0}")]
    Coordinator(#[from] MetaError),
    /// The coordinator refused the change (e.g. a concurrent change of the
    /// same user won).
    #[error("{0}")]
    Conflict(String),
}

impl AccessError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AccessError::AuthenticationFailed { .. } => ErrorCode::AUTHENTICATION_FAILED,
            AccessError::AlreadyExists { .. } => ErrorCode::ACCESS_ENTITY_ALREADY_EXISTS,
            AccessError::UnknownUser(_) | AccessError::UnknownGrantee(_) => ErrorCode::UNKNOWN_USER,
            AccessError::UnknownRole(_) => ErrorCode::UNKNOWN_ROLE,
            AccessError::ReadOnlyUser(_) => ErrorCode::ACCESS_STORAGE_READONLY,
            AccessError::UnknownProfile(_) => ErrorCode::THERE_IS_NO_PROFILE,
            AccessError::UnknownQuota(_) => ErrorCode::UNKNOWN_QUOTA,
            AccessError::BadArguments(_) => ErrorCode::BAD_ARGUMENTS,
            AccessError::Setting(e) => e.code(),
            AccessError::Constraint(_) => ErrorCode::SETTING_CONSTRAINT_VIOLATION,
            AccessError::Readonly(_) => ErrorCode::READONLY,
            AccessError::QuotaExceeded(_) => ErrorCode::QUOTA_EXCEEDED,
            AccessError::NotImplemented(_) => ErrorCode::NOT_IMPLEMENTED,
            AccessError::Coordinator(MetaError::NoLeader(_)) => ErrorCode::TABLE_IS_READ_ONLY,
            AccessError::Coordinator(MetaError::Unknown(_)) => ErrorCode::UNKNOWN_STATUS_OF_INSERT,
            AccessError::Coordinator(_) => ErrorCode::KEEPER_EXCEPTION,
            AccessError::Conflict(_) => ErrorCode::KEEPER_EXCEPTION,
        }
    }
}
