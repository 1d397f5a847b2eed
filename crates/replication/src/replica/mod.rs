//! One replica of a replicated table on this node: the queue task that
//! executes the table's replication log, recovery at start-up, merge
//! assignment, and the replicated forms of INSERT, OPTIMIZE, DROP PARTITION,
//! ALTER and `SYSTEM SYNC REPLICA`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use qh_meta::{Check, LogEntry, Op, OpResult, Request, Response};
use qh_storage::{MergeTreeTable, Part, TableMeta};
use qh_types::PartName;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, info, info_span, warn, Instrument};

mod admin;
mod queue;
mod recovery;

use crate::error::{ReplicationError, Result};
use crate::fetch::fetch_part;
use crate::staging::Staging;
use crate::Replication;

/// Longest pause between retries of a failing queue entry.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Parts fetched at once (network and disk overlap; 2 cores here).
const FETCH_PARALLELISM: usize = 4;
/// GET_PART entries at the head of the queue fetched ahead of the in-order pass.
const MAX_PREFETCH: usize = 1000;
/// How often staged parts are checked for cleanup.
const STAGING_CLEANUP_EVERY: Duration = Duration::from_secs(5);
/// How often an idle replica looks at the log even without a wake-up.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// The log pointer is reported to the coordinator at most this often, or
/// after this many entries: a coordinator write per executed insert per
/// replica was most of the coordinator's load. Only log trimming and
/// lost-replica detection read the reported pointer; a replica restarting
/// behind it re-executes a few part entries, which are idempotent (entries
/// of other kinds are reported at once).
const POINTER_REPORT_EVERY: Duration = Duration::from_secs(1);
const POINTER_REPORT_ENTRIES: u64 = 100;
/// Consecutive failures (of the queue's head entry, or of fetching missing
/// parts) before they are logged as a warning, and the least time between
/// two such warnings: a retry loop that never succeeds must be visible
/// without debug logging, and not flood the log either.
const WARN_AFTER_FAILURES: u64 = 5;
const WARN_EVERY: Duration = Duration::from_secs(30);
/// A queue pass still running after this long is reported (and again
/// every this long); it is not cancelled.
const SLOW_PASS: Duration = Duration::from_secs(30);

/// A row of `system.replicas`.
#[derive(Debug, Clone, Default)]
pub struct ReplicaStatus {
    pub database: String,
    pub table: String,
    pub engine: String,
    pub zookeeper_path: String,
    pub replica_name: String,
    pub is_leader: bool,
    pub is_readonly: bool,
    pub is_session_expired: bool,
    pub queue_size: u64,
    pub inserts_in_queue: u64,
    pub merges_in_queue: u64,
    pub log_max_index: u64,
    pub log_pointer: u64,
    pub absolute_delay: u64,
    pub total_replicas: u64,
    pub active_replicas: u64,
    pub parts_to_fetch: u64,
    pub last_queue_update_exception: String,
}

/// A row of `system.replication_queue`.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub index: u64,
    pub kind: &'static str,
    pub new_part_name: String,
    pub parts_to_merge: Vec<String>,
    pub last_exception: String,
    pub num_tries: u64,
}

#[derive(Default)]
struct State {
    initialized: bool,
    readonly_reason: Option<String>,
    last_exception: String,
    /// Unexecuted log entries as last read (for system tables).
    queue: Vec<QueueEntry>,
    queue_since: Option<Instant>,
    /// Since when `missing` has not been empty: a replica lacking parts of
    /// the current set is as stale as one with entries queued.
    missing_since: Option<Instant>,
    /// Parts of the current set this replica lacks (found by recovery).
    missing: BTreeSet<PartName>,
    /// When to retry fetching `missing` parts, and the current backoff.
    missing_retry: Option<(Instant, Duration)>,
    /// The sources of `missing` parts that are merge results: once a
    /// postponed source arrived, the retry merges here instead of waiting
    /// for a replica that has the result — which, when every replica lacked
    /// a source at its MERGE_PARTS entry, none ever will.
    merge_sources: BTreeMap<PartName, Vec<PartName>>,
    /// Stages of GET_PART entries executed here without their staged copy
    /// (the part was fetched): a copy arriving later (hedged staging) is
    /// redundant. The newest [`SUPERSEDED_KEPT`].
    superseded_stages: std::collections::VecDeque<String>,
    /// Consecutive failed passes of the queue.
    failures: Failures,
    /// Consecutive failed fetches of `missing` parts.
    missing_failures: Failures,
    /// The log pointer last sent to the coordinator, and when.
    reported_pointer: u64,
    reported_at: Option<Instant>,
}

const SUPERSEDED_KEPT: usize = 4096;

/// A streak of failures of one kind of queue work, and when it was last
/// logged as a warning.
#[derive(Default)]
struct Failures {
    count: u64,
    warned_at: Option<Instant>,
}

impl Failures {
    /// Counts a failure; true when the streak is to be logged as a warning
    /// (after [`WARN_AFTER_FAILURES`], then at most every [`WARN_EVERY`]).
    fn fail(&mut self) -> bool {
        self.count += 1;
        let due = self.count >= WARN_AFTER_FAILURES
            && self.warned_at.is_none_or(|t| t.elapsed() >= WARN_EVERY);
        if due {
            self.warned_at = Some(Instant::now());
        }
        due
    }
}

/// An insert this replica is writing (a row of `system.quorum_inserts`).
#[derive(Debug, Clone)]
pub struct InsertProgress {
    pub quorum: u64,
    pub state: &'static str,
    pub parts: usize,
    pub rows: u64,
    pub replicas: Vec<String>,
    pub started_ms: u64,
}

pub struct Replica {
    repl: Weak<Replication>,
    table: Arc<MergeTreeTable>,
    path: String,
    name: String,
    state: Mutex<State>,
    wake: Notify,
    /// This replica executed the log below this index.
    pointer: watch::Sender<u64>,
    /// Parts of inserts staged here, awaiting their commit.
    pub(crate) staging: Arc<Staging>,
    /// Serialises moving staged parts into place (the writer after its
    /// commit, the queue task, the stager's RPC).
    activation: tokio::sync::Mutex<()>,
    /// Inserts this replica is writing (for `system.quorum_inserts`).
    pub(crate) inserts: Mutex<BTreeMap<String, InsertProgress>>,
    /// When staged parts were last checked for cleanup.
    last_cleanup: Mutex<Option<Instant>>,
    fetches_stopped: AtomicBool,
    merges_stopped: AtomicBool,
    queue_stopped: AtomicBool,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("path", &self.path)
            .field("name", &self.name)
            .finish()
    }
}

/// One coordinator op to send after executing entries, and the part to
/// give up on if it is refused (a merge whose result differs elsewhere).
struct Pending {
    op: Op,
    on_reject: Option<PartName>,
}

impl Replica {
    /// Notes that the GET_PART naming `stage` was executed without its
    /// staged copy here.
    pub(crate) fn supersede_stage(&self, stage: &str) {
        let mut st = self.state.lock();
        if st.superseded_stages.len() >= SUPERSEDED_KEPT {
            st.superseded_stages.pop_front();
        }
        st.superseded_stages.push_back(stage.to_string());
    }

    /// Stages of GET_PART entries executed here without their staged copy.
    pub(crate) fn superseded_stages(&self) -> BTreeSet<String> {
        self.state
            .lock()
            .superseded_stages
            .iter()
            .cloned()
            .collect()
    }

    /// A staged copy here of another quorum insert whose commit this node
    /// does not know of: what `insert_quorum_parallel = 0` refuses to stage
    /// beside. Copies named by a GET_PART in the log (committed; an extra
    /// copy of hedged staging waiting for its entry) or superseded do not count.
    pub(crate) fn uncommitted_quorum_stage(
        &self,
        repl: &Replication,
        except: &str,
    ) -> Option<crate::staging::StagedPart> {
        let committed: BTreeSet<String> = repl.coordinator.read(|s| {
            s.log_from(&self.path, 0)
                .into_iter()
                .filter_map(|(_, e)| match e {
                    LogEntry::GetPart { stage, .. } => stage,
                    _ => None,
                })
                .collect()
        });
        let superseded = self.superseded_stages();
        self.staging.uncommitted_other_than(except, |p| {
            p.info.quorum <= 1 || committed.contains(&p.id) || superseded.contains(&p.id)
        })
    }

    pub(crate) fn new(
        repl: Weak<Replication>,
        table: Arc<MergeTreeTable>,
        path: String,
        name: String,
    ) -> Arc<Replica> {
        let (pointer, _) = watch::channel(0);
        let (stop, _) = watch::channel(false);
        let staging = Arc::new(Staging::open(table.staging_dir()));
        Arc::new(Replica {
            repl,
            table,
            path,
            name,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            pointer,
            staging,
            activation: tokio::sync::Mutex::new(()),
            inserts: Mutex::new(BTreeMap::new()),
            last_cleanup: Mutex::new(None),
            fetches_stopped: AtomicBool::new(false),
            merges_stopped: AtomicBool::new(false),
            queue_stopped: AtomicBool::new(false),
            stop,
            task: Mutex::new(None),
        })
    }

    pub fn table(&self) -> &Arc<MergeTreeTable> {
        &self.table
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn repl(&self) -> Result<Arc<Replication>> {
        self.repl.upgrade().ok_or(ReplicationError::Stopped)
    }

    pub(crate) fn spawn(self: &Arc<Self>, mut node_stop: watch::Receiver<bool>) {
        let me = Arc::clone(self);
        let mut own_stop = self.stop.subscribe();
        // A root span: the queue outlives the statement (CREATE, start-up)
        // that attached it, and its work is not that statement's.
        let span = info_span!(
            parent: None,
            "replication_queue",
            table = %self.path,
            replica = %self.name
        );
        let handle = tokio::spawn(
            async move {
                tokio::select! {
                    _ = me.run() => {}
                    _ = own_stop.wait_for(|s| *s) => {}
                    _ = node_stop.wait_for(|s| *s) => {}
                }
                debug!("replication queue stopped");
            }
            .instrument(span),
        );
        *self.task.lock() = Some(handle);
    }

    /// Stops the queue task and waits for it.
    pub async fn stop(&self) {
        self.stop.send_replace(true);
        let handle = self.task.lock().take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }

    /// Wakes the queue task (new entries, `SYSTEM START ...`).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn set_fetches_stopped(&self, v: bool) {
        self.fetches_stopped.store(v, Ordering::Release);
        self.wake();
    }

    pub fn set_merges_stopped(&self, v: bool) {
        self.merges_stopped.store(v, Ordering::Release);
        self.wake();
    }

    pub fn set_queue_stopped(&self, v: bool) {
        self.queue_stopped.store(v, Ordering::Release);
        self.wake();
    }

    /// `SYSTEM RESTART REPLICA`: re-reads everything from the coordinator and
    /// runs recovery again.
    pub fn restart(&self) {
        self.state.lock().initialized = false;
        self.wake();
    }

    /// Waits up to `timeout` for the replica's first recovery, so that a
    /// freshly created table is writable at once, as ClickHouse's is after
    /// its CREATE; false if it has not finished by then.
    pub async fn wait_started(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.state.lock().initialized {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Why inserts are refused right now, if they are.
    pub fn readonly_reason(&self) -> Option<String> {
        let st = self.state.lock();
        if !st.initialized {
            return Some(
                st.readonly_reason
                    .clone()
                    .unwrap_or_else(|| "the replica is starting".into()),
            );
        }
        drop(st);
        let repl = self.repl.upgrade()?;
        if repl.coordinator.current_leader().is_none() {
            return Some("the coordinator has no leader".into());
        }
        None
    }

    async fn run(self: Arc<Self>) {
        let Ok(repl) = self.repl() else { return };
        let mut applied = repl.coordinator.subscribe();
        drop(repl);
        let mut backoff = Duration::ZERO;
        loop {
            let initialized = self.state.lock().initialized;
            let pass = async {
                if !initialized {
                    self.initialize().await.map(|_| ())
                } else if self.queue_stopped.load(Ordering::Acquire) {
                    Ok(())
                } else {
                    self.step().await
                }
            };
            let outcome = self.report_slow(pass).await;
            match outcome {
                Ok(()) => {
                    backoff = Duration::ZERO;
                    self.state.lock().failures = Failures::default();
                    if let Err(e) = self.assign_merge().await {
                        debug!(error = %e, "merge assignment");
                    }
                }
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(100), MAX_BACKOFF);
                    let mut st = self.state.lock();
                    let warn_now = st.failures.fail();
                    let tries = st.failures.count;
                    st.last_exception = e.to_string();
                    if !st.initialized {
                        st.readonly_reason = Some(e.to_string());
                    }
                    drop(st);
                    let retry_in_ms = backoff.as_millis() as u64;
                    if warn_now {
                        warn!(error = %e, tries, log_pointer = *self.pointer.borrow(), retry_in_ms,
                            "replication queue keeps failing");
                    } else {
                        debug!(error = %e, tries, retry_in_ms, "replication queue");
                    }
                }
            }
            let wait = if backoff.is_zero() {
                IDLE_POLL
            } else {
                backoff
            };
            tokio::select! {
                r = applied.changed(), if backoff.is_zero() => {
                    if r.is_err() { return; }
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Runs one pass of the queue, warning while it takes longer than
    /// [`SLOW_PASS`]: a pass that never ends (a peer that never answers)
    /// would otherwise stall the replica without a trace.
    async fn report_slow<T>(&self, pass: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(pass);
        let started = Instant::now();
        loop {
            tokio::select! {
                out = &mut pass => return out,
                _ = tokio::time::sleep(SLOW_PASS) => warn!(
                    running_s = started.elapsed().as_secs(),
                    log_pointer = *self.pointer.borrow(),
                    "replication queue pass still running"
                ),
            }
        }
    }

    /// One pass: fetch missing parts, execute new log entries in order, and
    /// record the outcome (holders, log pointer) in the coordinator.
    async fn step(&self) -> Result<()> {
        let repl = self.repl()?;
        let (lost, recorded) = repl.coordinator.read(|s| {
            s.table(&self.path)
                .and_then(|t| t.replicas.get(&self.name))
                .map_or((false, 0), |r| (r.is_lost, r.log_pointer))
        });
        if lost {
            self.state.lock().initialized = false;
            return Err(ReplicationError::Coordinator(
                "this replica was marked lost; cloning".into(),
            ));
        }
        let pointer = *self.pointer.borrow();
        if recorded > pointer {
            // Only this replica moves its recorded pointer, after executing
            // the entries below it: recovery read an older state than this
            // replica had reported (the entries it waits for may be trimmed
            // already). Recover again from the current one.
            warn!(
                log_pointer = pointer,
                recorded, "recovery read an older coordinator state; recovering again"
            );
            self.state.lock().initialized = false;
            return Err(ReplicationError::Coordinator(format!(
                "log pointer {pointer} is behind this replica's recorded {recorded}; recovering again"
            )));
        }
        let mut done: Vec<Pending> = Vec::new();
        let mut first_error = None;
        self.merge_postponed(&mut done).await?;
        let missing: Vec<PartName> = {
            let st = self.state.lock();
            let due = st.missing_retry.is_none_or(|(at, _)| Instant::now() >= at);
            if due {
                st.missing.iter().cloned().collect()
            } else {
                Vec::new()
            }
        };
        for (name, outcome) in self.fetch_many(&repl, missing).await {
            match outcome {
                Ok(part) => {
                    let sources = {
                        let mut st = self.state.lock();
                        st.missing.remove(&name);
                        st.merge_sources.remove(&name)
                    };
                    if let Some(part) = part {
                        done.push(self.holder(&part));
                    }
                    if let Some(sources) = sources {
                        self.drop_holders(&sources, &mut done);
                    }
                }
                Err(e) => {
                    if !self.in_current_set(&repl, &name) {
                        self.state.lock().missing.remove(&name);
                    } else if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        // A postponed merge whose last source just arrived: merged now, not
        // a pass later (meanwhile every replica may hold just the sources).
        // A failure is retried like a missing part's, and the holders
        // gathered above are still sent.
        if let Err(e) = self.merge_postponed(&mut done).await {
            first_error.get_or_insert(e);
        }
        // Missing parts do not hold back the log (only a failing entry does);
        // they are retried on their own backoff.
        {
            let mut st = self.state.lock();
            match first_error.take() {
                Some(e) => {
                    let backoff = st
                        .missing_retry
                        .map_or(Duration::ZERO, |(_, b)| b * 2)
                        .clamp(Duration::from_millis(100), MAX_BACKOFF);
                    st.missing_retry = Some((Instant::now() + backoff, backoff));
                    st.last_exception = e.to_string();
                    if st.missing_failures.fail() {
                        warn!(parts = st.missing.len(), tries = st.missing_failures.count, error = %e,
                            "missing parts still cannot be fetched; retrying");
                    }
                }
                None if st.missing.is_empty() => {
                    st.missing_retry = None;
                    st.missing_failures = Failures::default();
                }
                None => {}
            }
        }
        let start = *self.pointer.borrow();
        let entries = repl.coordinator.read(|s| s.log_from(&self.path, start));
        self.note_queue(&entries);
        // The new parts at the head of the queue are fetched several at a
        // time; the in-order pass below then finds them present.
        let ahead: Vec<PartName> = entries
            .iter()
            .take(MAX_PREFETCH)
            .map_while(|(_, e)| match e {
                LogEntry::GetPart { part, stage, .. } => Some((part, stage)),
                _ => None,
            })
            // A part staged here is moved into place, not fetched.
            .filter(|(_, stage)| !stage.as_ref().is_some_and(|s| self.staging.contains(s)))
            .filter_map(|(part, _)| part.parse::<PartName>().ok())
            .collect();
        if first_error.is_none() && ahead.len() > 1 {
            for (_, outcome) in self.fetch_many(&repl, ahead).await {
                if let Ok(Some(part)) = outcome {
                    done.push(self.holder(&part));
                }
            }
        }
        let mut pointer = start;
        // Executed entries that must not run twice out of order (a schema
        // or a dropped range): their pointer is reported at once.
        let mut urgent = false;
        for (index, entry) in &entries {
            if first_error.is_some() {
                break;
            }
            match self.execute(&repl, entry, &mut done).await {
                Ok(()) => {
                    pointer = index + 1;
                    urgent |= !matches!(
                        entry,
                        LogEntry::GetPart { .. } | LogEntry::MergeParts { .. }
                    );
                }
                Err(e) => {
                    let mut st = self.state.lock();
                    if let Some(q) = st.queue.iter_mut().find(|q| q.index == *index) {
                        q.last_exception = e.to_string();
                        q.num_tries += 1;
                    }
                    drop(st);
                    first_error = Some(e)
                }
            }
        }
        if let Some(pointer) = self.pointer_report_due(pointer, urgent) {
            done.push(Pending {
                op: Op::SetLogPointer {
                    table: self.path.clone(),
                    replica: self.name.clone(),
                    pointer,
                },
                on_reject: None,
            });
        }
        if !done.is_empty() {
            self.send_ops(&repl, done).await;
        }
        if pointer != start {
            self.pointer.send_replace(pointer);
            let remaining: Vec<(u64, LogEntry)> =
                entries.into_iter().filter(|(i, _)| *i >= pointer).collect();
            self.note_queue(&remaining);
        }
        self.cleanup_staging(&repl).await;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `pointer`, when it is time to report it (see [`POINTER_REPORT_EVERY`]).
    /// A report that fails to land is superseded by the next one.
    fn pointer_report_due(&self, pointer: u64, urgent: bool) -> Option<u64> {
        let mut st = self.state.lock();
        let due = pointer > st.reported_pointer
            && (urgent
                || pointer - st.reported_pointer >= POINTER_REPORT_ENTRIES
                || st
                    .reported_at
                    .is_none_or(|t| t.elapsed() >= POINTER_REPORT_EVERY));
        if !due {
            return None;
        }
        st.reported_pointer = pointer;
        st.reported_at = Some(Instant::now());
        Some(pointer)
    }

    fn note_queue(&self, entries: &[(u64, LogEntry)]) {
        let mut st = self.state.lock();
        let old: BTreeMap<u64, (String, u64)> = st
            .queue
            .iter()
            .map(|q| (q.index, (q.last_exception.clone(), q.num_tries)))
            .collect();
        st.queue = entries
            .iter()
            .map(|(i, e)| {
                let (kind, new_part, sources) = describe(e);
                let (last_exception, tries) = old.get(i).cloned().unwrap_or_default();
                QueueEntry {
                    index: *i,
                    kind,
                    new_part_name: new_part,
                    parts_to_merge: sources,
                    last_exception,
                    num_tries: tries,
                }
            })
            .collect();
        match (st.queue.is_empty(), st.queue_since) {
            (true, _) => st.queue_since = None,
            (false, None) => st.queue_since = Some(Instant::now()),
            _ => {}
        }
        match (st.missing.is_empty(), st.missing_since) {
            (true, _) => st.missing_since = None,
            (false, None) => st.missing_since = Some(Instant::now()),
            _ => {}
        }
    }

    pub fn queue(&self) -> Vec<QueueEntry> {
        self.state.lock().queue.clone()
    }

    /// Every part the replication log has named so far (as this node's
    /// coordinator state has it) is here: only merges wait in the queue and
    /// no part is missing. Replicas that all hold their logged parts read
    /// the same rows, so `max_parallel_replicas` can split them.
    pub fn holds_logged_parts(&self) -> bool {
        let Some(repl) = self.repl.upgrade() else {
            return false;
        };
        let pointer = *self.pointer.borrow();
        let pending = repl.coordinator.read(|s| s.log_from(&self.path, pointer));
        let st = self.state.lock();
        st.initialized
            && st.missing.is_empty()
            && pending
                .iter()
                .all(|(_, e)| matches!(e, LogEntry::MergeParts { .. }))
    }

    /// Seconds the oldest unexecuted log entry or missing part has waited
    /// (`system.replicas.absolute_delay`): cheap, no coordinator read.
    pub fn absolute_delay(&self) -> u64 {
        delay_of(&self.state.lock())
    }

    /// The coordinator's time (see `Coordinator::clock_now`): what leases
    /// and commit deadlines are judged by, not this node's wall clock.
    pub fn clock_now(&self) -> u64 {
        self.repl
            .upgrade()
            .map(|r| r.coordinator.clock_now())
            .unwrap_or_else(qh_meta::now_ms)
    }

    pub fn status(&self) -> ReplicaStatus {
        let meta = self.table.meta();
        let now = self.clock_now();
        let (log_max, total, active, leader) = self
            .repl
            .upgrade()
            .map(|repl| {
                repl.coordinator.read(|s| match s.table(&self.path) {
                    Some(t) => {
                        let alive: Vec<&String> = t
                            .replicas
                            .iter()
                            .filter(|(_, r)| s.lease_active(r.node_id, now))
                            .map(|(n, _)| n)
                            .collect();
                        (
                            t.next_log.saturating_sub(1),
                            t.replicas.len() as u64,
                            alive.len() as u64,
                            alive.first().is_some_and(|n| **n == self.name),
                        )
                    }
                    None => (0, 0, 0, false),
                })
            })
            .unwrap_or_default();
        let readonly = self.readonly_reason().is_some();
        let log_pointer = *self.pointer.borrow();
        let st = self.state.lock();
        let count = |k: &str| st.queue.iter().filter(|q| q.kind == k).count() as u64;
        ReplicaStatus {
            database: meta.database.clone(),
            table: meta.name.clone(),
            engine: meta.engine_name(),
            zookeeper_path: self.path.clone(),
            replica_name: self.name.clone(),
            is_leader: leader,
            is_readonly: readonly,
            is_session_expired: readonly,
            queue_size: st.queue.len() as u64 + st.missing.len() as u64,
            inserts_in_queue: count("GET_PART") + st.missing.len() as u64,
            merges_in_queue: count("MERGE_PARTS"),
            log_max_index: log_max,
            log_pointer,
            absolute_delay: delay_of(&st),
            total_replicas: total,
            active_replicas: active,
            parts_to_fetch: st.missing.len() as u64,
            last_queue_update_exception: st.last_exception.clone(),
        }
    }
}

fn delay_of(st: &State) -> u64 {
    [st.queue_since, st.missing_since]
        .into_iter()
        .flatten()
        .map(|t| t.elapsed().as_secs())
        .max()
        .unwrap_or(0)
}

fn describe(e: &LogEntry) -> (&'static str, String, Vec<String>) {
    match e {
        LogEntry::GetPart { part, .. } => ("GET_PART", part.clone(), vec![]),
        LogEntry::MergeParts { parts, new_part } => {
            ("MERGE_PARTS", new_part.clone(), parts.clone())
        }
        LogEntry::DropRange { partition, .. } => ("DROP_RANGE", partition.clone(), vec![]),
        LogEntry::MutatePart { part, new_part, .. } => {
            ("MUTATE_PART", new_part.clone(), vec![part.clone()])
        }
        LogEntry::AlterMetadata { version, .. } => ("ALTER_METADATA", version.to_string(), vec![]),
    }
}

fn parse_part(s: &str) -> Result<PartName> {
    s.parse().map_err(|e: String| {
        ReplicationError::Coordinator(format!("bad part name in the log: {e}"))
    })
}

fn log_index(results: &[OpResult]) -> Option<u64> {
    results.iter().find_map(|r| match r {
        OpResult::LogIndex(i) => Some(*i),
        _ => None,
    })
}
