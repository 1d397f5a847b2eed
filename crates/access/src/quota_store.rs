//! Quotas in the coordinator (one key per quota, `access/quota/<name>` →
//! the JSON of its [`QuotaDef`], kept by `entity.rs`), and the charging of
//! a user's statements against the quotas that apply to it, counted by this
//! node ([`crate::quota::QuotaUsage`]).

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::entity::{self, Entity};
use crate::error::AccessError;
use crate::profile::Applies;
use crate::quota::{QueryKind, QuotaDef, QuotaInterval, Resource, UsageRow, Who};
use crate::store::Access;
use crate::user::UserDef;

impl Entity for QuotaDef {
    const PREFIX: &'static str = "access/quota/";
    const KIND: &'static str = "quota";
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: String) {
        self.name = name;
    }
    fn unknown(name: &str) -> AccessError {
        AccessError::UnknownQuota(name.to_string())
    }
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
        self.coordinator.read(entity::all::<QuotaDef>)
    }

    pub async fn quota(&self, name: &str) -> Result<Option<QuotaDef>, AccessError> {
        self.entity(name).await
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
        self.create_entity(&quota, if_not_exists, or_replace).await
    }

    pub async fn alter_quota(
        &self,
        name: &str,
        if_exists: bool,
        change: QuotaChange,
    ) -> Result<(), AccessError> {
        self.alter_entity(name, if_exists, change.rename_to, |q: &mut QuotaDef| {
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
        })
        .await
    }

    pub async fn drop_quota(&self, name: &str, if_exists: bool) -> Result<(), AccessError> {
        self.drop_entity::<QuotaDef>(name, if_exists).await
    }
}
