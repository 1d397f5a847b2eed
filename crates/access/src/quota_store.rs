//! Quotas in the coordinator: one key per quota, `access/quota/<name>` →
//! the JSON of its [`QuotaDef`], changed by compare-and-set like users
//! (`store.rs`); and the charging of a user's statements against the
//! quotas that apply to it, counted by this node ([`QuotaUsage`]).

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use qh_meta::command::{Check, Op, Request, Response};
use qh_meta::MetaState;

use crate::error::AccessError;
use crate::profile::Applies;
use crate::quota::{QueryKind, QuotaDef, QuotaInterval, Resource, UsageRow, Who};
use crate::store::Access;
use crate::user::UserDef;

const QUOTA_PREFIX: &str = "access/quota/";

fn quota_key(name: &str) -> String {
    format!("{QUOTA_PREFIX}{name}")
}

fn all_quotas(state: &MetaState) -> Vec<QuotaDef> {
    let mut out: Vec<QuotaDef> = state
        .keys_with_prefix(QUOTA_PREFIX)
        .filter_map(|(_, v)| serde_json::from_str(v).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What `ALTER QUOTA` changes.
#[derive(Debug, Default)]
pub struct QuotaChange {
    pub rename_to: Option<String>,
    pub keyed_by: Option<crate::quota::KeyType>,
    pub intervals: Option<Vec<QuotaInterval>>,
    pub to: Option<Applies>,
}

/// What a finished statement used, charged to its user's quotas.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatementUse {
    pub failed: bool,
    pub result_rows: u64,
    pub result_bytes: u64,
    pub read_rows: u64,
    pub read_bytes: u64,
    pub written_bytes: u64,
    pub seconds: f64,
}

impl Access {
    /// Every quota this node knows, by name.
    pub fn quotas(&self) -> Vec<QuotaDef> {
        self.coordinator.read(all_quotas)
    }

    pub async fn quota(&self, name: &str) -> Result<Option<QuotaDef>, AccessError> {
        Ok(self
            .coordinator
            .read_linearizable(|s| {
                s.key(&quota_key(name))
                    .and_then(|v| serde_json::from_str(v).ok())
            })
            .await?)
    }

    /// The quotas that apply to `user` (to it or one of its roles).
    pub fn quotas_of(&self, user: &UserDef) -> Vec<QuotaDef> {
        let held: BTreeSet<String> = user.active_roles.keys().cloned().collect();
        let mut qs = self.quotas();
        qs.retain(|q| q.to.applies(&user.name, &held));
        qs
    }

    /// Counts a statement of `user` starting, refusing it with
    /// QUOTA_EXCEEDED when a quota that applies is used up.
    pub fn quota_start(
        &self,
        user: &UserDef,
        who: &Who,
        kind: QueryKind,
    ) -> Result<(), AccessError> {
        let quotas = self.quotas_of(user);
        if quotas.is_empty() {
            return Ok(());
        }
        let mut amounts = vec![(Resource::Queries, 1.0)];
        match kind {
            QueryKind::Select => amounts.push((Resource::QuerySelects, 1.0)),
            QueryKind::Insert => amounts.push((Resource::QueryInserts, 1.0)),
            QueryKind::Other => {}
        }
        self.quota_usage.charge(&quotas, who, &amounts, true, now())
    }

    /// Counts what a statement of `user` used once it has finished.
    pub fn quota_finish(&self, user: &UserDef, who: &Who, used: &StatementUse) {
        let quotas = self.quotas_of(user);
        if quotas.is_empty() {
            return;
        }
        let amounts = [
            (Resource::Errors, used.failed as u64 as f64),
            (Resource::ResultRows, used.result_rows as f64),
            (Resource::ResultBytes, used.result_bytes as f64),
            (Resource::ReadRows, used.read_rows as f64),
            (Resource::ReadBytes, used.read_bytes as f64),
            (Resource::WrittenBytes, used.written_bytes as f64),
            (Resource::ExecutionTime, used.seconds),
        ];
        // Never refuses: the statement is done; the next one is checked.
        let _ = self
            .quota_usage
            .charge(&quotas, who, &amounts, false, now());
    }

    /// `system.quota_usage`: what `user` has used of its quotas here.
    pub fn quota_usage_of(&self, user: &UserDef, who: &Who) -> Vec<UsageRow> {
        self.quota_usage.usage(&self.quotas_of(user), who, now())
    }

    pub async fn create_quota(
        &self,
        quota: QuotaDef,
        if_not_exists: bool,
        or_replace: bool,
    ) -> Result<(), AccessError> {
        crate::store::check_name(&quota.name)?;
        let key = quota_key(&quota.name);
        let checks = match or_replace {
            true => Vec::new(),
            false => vec![Check::KeyEquals {
                key: key.clone(),
                value: None,
            }],
        };
        let value =
            serde_json::to_string(&quota).map_err(|e| AccessError::BadArguments(e.to_string()))?;
        let req = Request::op(Op::Put { key, value }).with_checks(checks);
        match self.coordinator.write(req).await? {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { .. } if if_not_exists => Ok(()),
            Response::CheckFailed { .. } => Err(AccessError::AlreadyExists {
                kind: "quota",
                existing: "quota",
                name: quota.name,
            }),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }

    pub async fn alter_quota(
        &self,
        name: &str,
        if_exists: bool,
        change: QuotaChange,
    ) -> Result<(), AccessError> {
        let old = self
            .coordinator
            .read_linearizable(|s| s.key(&quota_key(name)).map(str::to_string))
            .await?;
        let Some(old) = old else {
            return match if_exists {
                true => Ok(()),
                false => Err(AccessError::UnknownQuota(name.to_string())),
            };
        };
        let mut q: QuotaDef = serde_json::from_str(&old)
            .map_err(|e| AccessError::Conflict(format!("stored quota {name}: {e}")))?;
        if let Some(k) = change.keyed_by {
            q.keyed_by = k;
        }
        if let Some(new) = change.intervals {
            // ALTER replaces the intervals it names and keeps the others.
            for i in new {
                q.intervals.retain(|x| x.seconds != i.seconds);
                q.intervals.push(i);
            }
            q.intervals.sort_by_key(|i| i.seconds);
        }
        if let Some(to) = change.to {
            q.to = to;
        }
        let mut checks = vec![Check::KeyEquals {
            key: quota_key(name),
            value: Some(old),
        }];
        let mut ops = Vec::new();
        if let Some(new) = change.rename_to.filter(|n| n != name) {
            crate::store::check_name(&new)?;
            checks.push(Check::KeyEquals {
                key: quota_key(&new),
                value: None,
            });
            ops.push(Op::Delete {
                key: quota_key(name),
            });
            q.name = new;
        }
        let value =
            serde_json::to_string(&q).map_err(|e| AccessError::BadArguments(e.to_string()))?;
        ops.push(Op::Put {
            key: quota_key(&q.name),
            value,
        });
        match self
            .coordinator
            .write(Request::ops(ops).with_checks(checks))
            .await?
        {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { index: 1, .. } => Err(AccessError::AlreadyExists {
                kind: "quota",
                existing: "quota",
                name: q.name,
            }),
            Response::CheckFailed { .. } => Err(AccessError::Conflict(format!(
                "quota {name} was changed concurrently; run the statement again"
            ))),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }

    pub async fn drop_quota(&self, name: &str, if_exists: bool) -> Result<(), AccessError> {
        let old = self
            .coordinator
            .read_linearizable(|s| s.key(&quota_key(name)).map(str::to_string))
            .await?;
        let Some(old) = old else {
            return match if_exists {
                true => Ok(()),
                false => Err(AccessError::UnknownQuota(name.to_string())),
            };
        };
        let req = Request::op(Op::Delete {
            key: quota_key(name),
        })
        .with_checks(vec![Check::KeyEquals {
            key: quota_key(name),
            value: Some(old),
        }]);
        match self.coordinator.write(req).await? {
            Response::Ok { .. } => Ok(()),
            Response::CheckFailed { .. } => Err(AccessError::Conflict(format!(
                "quota {name} was changed concurrently; run the statement again"
            ))),
            Response::Rejected { reason, .. } => Err(AccessError::Conflict(reason)),
        }
    }
}
