//! The statements running on this node (`system.processes`) and their
//! cancellation (`KILL QUERY`, a client that goes away). Every statement a
//! [`crate::Session`] executes is registered here for as long as it runs.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::error::{QueryError, Result};
use crate::provider::QueryStats;
use qh_types::ErrorCode;

struct Entry {
    query: String,
    user: String,
    /// Set for a shard stage of another node's query.
    initial_query_id: Option<String>,
    started: Instant,
    stats: Arc<QueryStats>,
    cancel: watch::Sender<bool>,
}

/// One row of `system.processes`.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub query_id: String,
    pub query: String,
    pub user: String,
    pub elapsed: f64,
    pub read_rows: u64,
    pub read_bytes: u64,
    pub written_rows: u64,
    pub written_bytes: u64,
    pub is_cancelled: bool,
    /// The query this one is a shard stage of (its own id when initial).
    pub initial_query_id: String,
    pub is_initial_query: bool,
}

#[derive(Default)]
pub struct ProcessList {
    running: Mutex<HashMap<String, Entry>>,
    next: AtomicU64,
    /// ClickHouse's `max_concurrent_queries` (0 = no limit).
    max_concurrent: usize,
}

/// A registered statement; dropping it removes it from the list.
pub struct Running {
    list: Arc<ProcessList>,
    id: String,
    cancelled: watch::Receiver<bool>,
}

impl Running {
    pub fn query_id(&self) -> &str {
        &self.id
    }

    /// Resolves once the statement is asked to stop.
    pub async fn cancelled(&mut self) {
        // An error means the sender is gone, which cannot happen while this
        // entry is registered; waiting forever is then right.
        if self.cancelled.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.list.running.lock().remove(&self.id);
    }
}

impl std::fmt::Debug for ProcessList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessList")
            .field("running", &self.running.lock().len())
            .finish()
    }
}

impl ProcessList {
    /// A list that refuses statements beyond `max` running at once
    /// (TOO_MANY_SIMULTANEOUS_QUERIES); 0 = no limit.
    pub fn with_max_concurrent(max: u64) -> Self {
        ProcessList {
            max_concurrent: max as usize,
            ..Default::default()
        }
    }

    /// Registers a statement under `query_id` (a fresh UUID-like id when
    /// empty). A running statement with the same id refuses the new one with
    /// ClickHouse's QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING.
    ///
    /// Beyond `max_concurrent_queries` running statements a new one is
    /// refused, unless it is `KILL QUERY` (the way out of a full node).
    pub fn register(
        self: &Arc<Self>,
        query_id: &str,
        query: &str,
        user: &str,
        stats: Arc<QueryStats>,
    ) -> Result<Running> {
        self.register_as(query_id, query, user, stats, None)
    }

    /// Lists a shard stage of `initial_query_id` (another node's query)
    /// under a fresh id.
    pub fn register_stage(
        self: &Arc<Self>,
        initial_query_id: &str,
        query: &str,
        stats: Arc<QueryStats>,
    ) -> Result<Running> {
        // The initiating user does not travel with a stage yet.
        self.register_as(
            "",
            query,
            "default",
            stats,
            Some(initial_query_id.to_string()),
        )
    }

    fn register_as(
        self: &Arc<Self>,
        query_id: &str,
        query: &str,
        user: &str,
        stats: Arc<QueryStats>,
        initial_query_id: Option<String>,
    ) -> Result<Running> {
        let kill = query
            .trim_start()
            .get(..4)
            .is_some_and(|w| w.eq_ignore_ascii_case("KILL"));
        let id = if query_id.is_empty() {
            self.fresh_id()
        } else {
            query_id.to_string()
        };
        let mut running = self.running.lock();
        if running.contains_key(&id) {
            return Err(QueryError::other(
                ErrorCode::QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING,
                format!("Query with id = {id} is already running."),
            ));
        }
        if !kill && self.max_concurrent > 0 && running.len() >= self.max_concurrent {
            return Err(QueryError::other(
                ErrorCode::TOO_MANY_SIMULTANEOUS_QUERIES,
                format!(
                    "Too many simultaneous queries. Maximum: {}",
                    self.max_concurrent
                ),
            ));
        }
        let (cancel, cancelled) = watch::channel(false);
        running.insert(
            id.clone(),
            Entry {
                query: query.to_string(),
                user: user.to_string(),
                initial_query_id,
                started: Instant::now(),
                stats,
                cancel,
            },
        );
        Ok(Running {
            list: Arc::clone(self),
            id,
            cancelled,
        })
    }

    /// Asks a running statement to stop; false when none has that id.
    pub fn kill(&self, query_id: &str) -> bool {
        match self.running.lock().get(query_id) {
            Some(e) => {
                e.cancel.send_replace(true);
                true
            }
            None => false,
        }
    }

    pub fn is_running(&self, query_id: &str) -> bool {
        self.running.lock().contains_key(query_id)
    }

    pub fn snapshot(&self) -> Vec<ProcessInfo> {
        let running = self.running.lock();
        let mut out: Vec<ProcessInfo> = running
            .iter()
            .map(|(id, e)| ProcessInfo {
                query_id: id.clone(),
                query: e.query.clone(),
                user: e.user.clone(),
                elapsed: e.started.elapsed().as_secs_f64(),
                read_rows: e.stats.rows_read.load(Ordering::Relaxed),
                read_bytes: e.stats.bytes_read.load(Ordering::Relaxed),
                written_rows: e.stats.rows_written.load(Ordering::Relaxed),
                written_bytes: e.stats.bytes_written.load(Ordering::Relaxed),
                is_cancelled: *e.cancel.borrow(),
                initial_query_id: e.initial_query_id.clone().unwrap_or_else(|| id.clone()),
                is_initial_query: e.initial_query_id.is_none(),
            })
            .collect();
        out.sort_by(|a, b| b.elapsed.total_cmp(&a.elapsed));
        out
    }

    /// A UUID-shaped id, unique in this process and unlikely to repeat
    /// across restarts (seeded by the standard library's random hasher state).
    fn fresh_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        let hi = h.finish();
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(hi ^ n.rotate_left(17));
        let lo = h.finish();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xfff,
            (lo >> 48) & 0x3fff | 0x8000,
            lo & 0xffff_ffff_ffff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn register_kill_and_duplicate_ids() {
        let list = Arc::new(ProcessList::default());
        let stats = Arc::new(QueryStats::default());
        let mut a = list
            .register("q1", "SELECT 1", "default", Arc::clone(&stats))
            .unwrap();
        let dup = list.register("q1", "SELECT 2", "default", Arc::clone(&stats));
        assert_eq!(
            dup.err().map(|e| e.code()),
            Some(ErrorCode::QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING)
        );
        let b = list
            .register("", "SELECT 3", "default", Arc::clone(&stats))
            .unwrap();
        assert_eq!(b.query_id().len(), 36);
        assert_eq!(list.snapshot().len(), 2);
        assert!(list.kill("q1"));
        assert!(!list.kill("nope"));
        tokio::time::timeout(std::time::Duration::from_secs(5), a.cancelled())
            .await
            .unwrap();
        assert!(list
            .snapshot()
            .iter()
            .any(|p| p.query_id == "q1" && p.is_cancelled));
        drop(a);
        assert!(!list.is_running("q1"));
        drop(b);
        assert!(list.snapshot().is_empty());
    }
}
