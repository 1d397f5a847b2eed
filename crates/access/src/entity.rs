//! Named access entities kept as one JSON value per key under a prefix —
//! settings profiles (`access/profile/<name>`) and quotas
//! (`access/quota/<name>`) — created, changed (and renamed) and dropped by
//! compare-and-set on their key, so concurrent changes never overwrite each
//! other silently. Each kind has its own namespace, as in ClickHouse.

use qh_meta::command::{Check, Op, Request, Response};
use qh_meta::MetaState;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::AccessError;
use crate::store::{check_name, Access};

/// A kind of named entity.
pub(crate) trait Entity: Serialize + DeserializeOwned {
    /// Where its keys live, with the trailing `/`.
    const PREFIX: &'static str;
    /// As ClickHouse names it in errors (`settings profile`, `quota`).
    const KIND: &'static str;
    fn name(&self) -> &str;
    fn set_name(&mut self, name: String);
    /// The error for a name that does not exist.
    fn unknown(name: &str) -> AccessError;
}

pub(crate) fn key<E: Entity>(name: &str) -> String {
    format!("{}{name}", E::PREFIX)
}

/// The entity `name` in `state`.
pub(crate) fn lookup<E: Entity>(state: &MetaState, name: &str) -> Option<E> {
    state
        .key(&key::<E>(name))
        .and_then(|json| serde_json::from_str(json).ok())
}

/// Every entity of the kind in `state`, by name.
pub(crate) fn all<E: Entity>(state: &MetaState) -> Vec<E> {
    let mut out: Vec<E> = state
        .keys_with_prefix(E::PREFIX)
        .filter_map(|(_, v)| serde_json::from_str(v).ok())
        .collect();
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out
}

fn to_json<E: Serialize>(e: &E) -> Result<String, AccessError> {
    serde_json::to_string(e).map_err(|e| AccessError::BadArguments(e.to_string()))
}

fn exists<E: Entity>(name: &str) -> AccessError {
    AccessError::AlreadyExists {
        kind: E::KIND,
        existing: E::KIND,
        name: name.to_string(),
    }
}

fn conflict<E: Entity>(name: &str) -> AccessError {
    AccessError::Conflict(format!(
        "{} {name} was changed concurrently; run the statement again",
        E::KIND
    ))
}

impl Access {
    /// The entity `name` as of a linearizable read.
    pub(crate) async fn entity<E: Entity>(&self, name: &str) -> Result<Option<E>, AccessError> {
        Ok(self
            .coordinator
            .read_linearizable(|s| lookup::<E>(s, name))
            .await?)
    }

    /// The stored value of `name` as of a linearizable read; `None` when it
    /// does not exist and `if_exists` allows that.
    async fn stored_entity<E: Entity>(
        &self,
        name: &str,
        if_exists: bool,
    ) -> Result<Option<String>, AccessError> {
        let old = self
            .coordinator
            .read_linearizable(|s| s.key(&key::<E>(name)).map(str::to_string))
            .await?;
        match old {
            Some(v) => Ok(Some(v)),
            None if if_exists => Ok(None),
            None => Err(E::unknown(name)),
        }
    }

    pub(crate) async fn create_entity<E: Entity>(
        &self,
        entity: &E,
        if_not_exists: bool,
        or_replace: bool,
    ) -> Result<(), AccessError> {
        check_name(entity.name())?;
        let key = key::<E>(entity.name());
        let checks = match or_replace {
            true => Vec::new(),
            false => vec![Check::KeyEquals {
                key: key.clone(),
                value: None,
            }],
        };
        let req = Request::op(Op::Put {
            key,
            value: to_json(entity)?,
        })
        .with_checks(checks);
        match self.coordinator.write(req).await? {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { .. } if if_not_exists => Ok(()),
            Response::CheckFailed { .. } => Err(exists::<E>(entity.name())),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }

    /// Changes the entity `name` by `change`, renamed to `rename_to` if
    /// given (refused when that name is taken).
    pub(crate) async fn alter_entity<E: Entity>(
        &self,
        name: &str,
        if_exists: bool,
        rename_to: Option<String>,
        change: impl FnOnce(&mut E),
    ) -> Result<(), AccessError> {
        let Some(old) = self.stored_entity::<E>(name, if_exists).await? else {
            return Ok(());
        };
        let mut e: E = serde_json::from_str(&old)
            .map_err(|err| AccessError::Conflict(format!("stored {} {name}: {err}", E::KIND)))?;
        change(&mut e);
        let mut checks = vec![Check::KeyEquals {
            key: key::<E>(name),
            value: Some(old),
        }];
        let mut ops = Vec::new();
        if let Some(new) = rename_to.filter(|n| n != name) {
            check_name(&new)?;
            checks.push(Check::KeyEquals {
                key: key::<E>(&new),
                value: None,
            });
            ops.push(Op::Delete {
                key: key::<E>(name),
            });
            e.set_name(new);
        }
        ops.push(Op::Put {
            key: key::<E>(e.name()),
            value: to_json(&e)?,
        });
        match self
            .coordinator
            .write(Request::ops(ops).with_checks(checks))
            .await?
        {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { index: 1, .. } => Err(exists::<E>(e.name())),
            Response::CheckFailed { .. } => Err(conflict::<E>(name)),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }

    pub(crate) async fn drop_entity<E: Entity>(
        &self,
        name: &str,
        if_exists: bool,
    ) -> Result<(), AccessError> {
        let Some(old) = self.stored_entity::<E>(name, if_exists).await? else {
            return Ok(());
        };
        let req = Request::op(Op::Delete {
            key: key::<E>(name),
        })
        .with_checks(vec![Check::KeyEquals {
            key: key::<E>(name),
            value: Some(old),
        }]);
        match self.coordinator.write(req).await? {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { .. } => Err(conflict::<E>(name)),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }
}
