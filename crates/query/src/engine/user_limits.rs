//! What a user's settings profiles and quotas do to its sessions.
//!
//! The profiles' values become the session's starting settings, and a
//! statement that changes a setting (`SET`, `SETTINGS`, a request's
//! parameters) is checked against the profiles' constraints and `readonly`
//! before it runs (SETTING_CONSTRAINT_VIOLATION 452, READONLY 164), as in
//! ClickHouse. A session takes its user's profiles when it starts, as
//! ClickHouse's do; a changed profile applies to the user's next session.
//!
//! Each statement is charged to the quotas that apply to its user when it
//! starts (refused with QUOTA_EXCEEDED 201 when one is used up) and, once
//! it ends, with what it read, returned, wrote and took; so the statement
//! that crosses a row or time limit completes and the next is refused.
//! A changed quota applies to the next statement.

use qh_access::{QueryKind, StatementUse, UserDef, Who};

use super::*;

impl Session {
    /// The session runs as `user` (the door authenticated it): its
    /// statements are checked against the user's grants from now on, and
    /// start from its profiles' settings.
    pub fn set_user(&mut self, user: &UserDef) {
        self.user = user.name.clone();
        self.checked = true;
        for (name, value) in &user.resolved_settings.values {
            self.settings.set(name, value.clone());
        }
        self.baseline = self.settings.clone();
        self.profile = user.resolved_settings.clone();
    }

    /// Refuses `settings` (the session's with the statement's own) where
    /// they change a setting the user's profiles forbid it to change.
    pub(super) fn check_setting_changes(&self, settings: &Settings) -> Result<()> {
        if !self.checked {
            return Ok(());
        }
        let readonly = self.baseline.get_u64("readonly", 0).unwrap_or(0);
        for (name, value) in settings.iter() {
            let current = self.baseline.value_or_default(name);
            self.profile
                .check_change(name, value, &current, readonly)
                .map_err(|e| QueryError::other(e.code(), e.to_string()))?;
        }
        Ok(())
    }

    /// Where the running request comes from (set by the door per request).
    pub fn set_peer(&mut self, peer: Option<std::net::IpAddr>) {
        self.peer = peer;
    }

    /// Charges `stmt` starting to the user's quotas; refuses it when one is
    /// used up.
    pub(super) fn charge_start(&mut self, stmt: &Statement, settings: &Settings) -> Result<()> {
        self.charged = None;
        if !self.checked {
            return Ok(());
        }
        let (Some(access), Some(user)) = (self.engine.access().cloned(), self.current_user()?)
        else {
            return Ok(());
        };
        let kind = match stmt {
            Statement::Select { .. } | Statement::Explain(_) => QueryKind::Select,
            Statement::Insert(_) => QueryKind::Insert,
            _ => QueryKind::Other,
        };
        let who = Who {
            user: &user.name,
            ip: self.peer,
            client_key: settings.get("quota_key").unwrap_or(""),
        };
        access
            .quota_start(&user, &who, kind)
            .map_err(|e| QueryError::other(e.code(), e.to_string()))?;
        self.charged = Some(user);
        Ok(())
    }

    /// Charges what the statement charged at its start used.
    pub(super) fn charge_finish(&mut self, outcome: &Result<QueryResult>, started: Instant) {
        let Some(user) = self.charged.take() else {
            return;
        };
        let Some(access) = self.engine.access() else {
            return;
        };
        let p = &self.progress;
        let mut used = StatementUse {
            failed: outcome.is_err(),
            read_rows: p.rows_read.load(Ordering::Relaxed),
            read_bytes: p.bytes_read.load(Ordering::Relaxed),
            written_bytes: p.bytes_written.load(Ordering::Relaxed),
            seconds: started.elapsed().as_secs_f64(),
            ..Default::default()
        };
        if let Ok(res) = outcome {
            used.result_rows = res.num_rows() as u64;
            used.result_bytes = res
                .batches
                .iter()
                .map(|b| b.get_array_memory_size() as u64)
                .sum();
        }
        let who = Who {
            user: &user.name,
            ip: self.peer,
            client_key: self.settings.get("quota_key").unwrap_or(""),
        };
        access.quota_finish(&user, &who, &used);
    }
}
