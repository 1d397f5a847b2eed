//! The insert path of a replicated table: stage, then commit.
//!
//! 1. **Check** (quorum inserts): enough replicas hold a live lease, by a
//!    linearizable read, or `TOO_FEW_LIVE_REPLICAS` before anything is written.
//! 2. **Stage**: every part of the insert (one per partition) is moved into
//!    this replica's staging area and streamed, in parallel, to N−1 other
//!    live replicas, each of which fsyncs it and answers with the part's
//!    checksum digest. A target that fails or stalls is replaced by another
//!    live replica; with fewer than N stagers the insert fails definitely
//!    and every staged copy is dropped.
//! 3. **Commit**: one coordinator transaction ([`Op::CommitParts`]) checks
//!    dedup ids, allocates block numbers, appends the GET_PART entries with
//!    the stagers as holders — all parts or none.
//! 4. **Activate**: the writer and the stagers move their staged copies into
//!    place; the insert is acknowledged. Only when the commit's own outcome is
//!    unknown does the client get `UNKNOWN_STATUS_OF_INSERT`; the staged
//!    copies then wait for the log (activated if it names them) or for
//!    cleanup (removed once their commit can no longer land).
//!
//! `insert_quorum` 0 or 1 is the same path with N = 1: no remote stager, the
//! other replicas fetch the part through the log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use qh_meta::{now_ms, CommittedPart, NewPart, Op, OpResult, Request, Response};
use qh_proto::interserver::replication_client::ReplicationClient;
use qh_proto::interserver::{PartChunk, StageHeader, StagedRequest};
use qh_storage::part::PreparedPart;
use qh_storage::Part;
use qh_types::PartName;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::error::{ReplicationError, Result};
use crate::fetch::{read_part_files, MAX_MESSAGE};
use crate::replica::{InsertProgress, Replica};
use crate::staging::{StageInfo, StagedPart};
use crate::Replication;

mod staged;
pub use staged::StagedInsert;

/// A commit must land within this long after staging ends (or the insert's
/// timeout, if sooner); the coordinator refuses it afterwards, which bounds
/// how long a staged copy with an unknown outcome can wait.
const COMMIT_WINDOW: Duration = Duration::from_secs(30);
/// A staging target that takes nothing for this long is given up.
const STAGE_STALL: Duration = Duration::from_secs(15);
/// Telling stagers to activate is best effort: their queue does it anyway.
const ACTIVATE_WAIT: Duration = Duration::from_secs(5);

/// `insert_quorum`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Quorum {
    /// 0 or 1: acknowledged once this replica holds the part.
    #[default]
    Off,
    Count(u64),
    /// `'auto'`: a majority of the table's registered replicas.
    Auto,
}

impl Quorum {
    pub fn parse(v: &str) -> std::result::Result<Quorum, String> {
        let v = v.trim().trim_matches('\'');
        if v.eq_ignore_ascii_case("auto") {
            return Ok(Quorum::Auto);
        }
        match v.parse::<u64>() {
            Ok(0 | 1) => Ok(Quorum::Off),
            Ok(n) => Ok(Quorum::Count(n)),
            Err(_) => Err(format!(
                "cannot parse value '{v}' of setting insert_quorum: a number or 'auto' expected"
            )),
        }
    }
}

/// How an INSERT wants its blocks committed.
#[derive(Debug, Clone)]
pub struct InsertOptions {
    /// `insert_deduplicate`: skip blocks whose id the table already has.
    pub deduplicate: bool,
    /// `insert_deduplication_token`: block ids from this instead of the data.
    pub token: Option<String>,
    pub quorum: Quorum,
    /// `insert_quorum_timeout`.
    pub timeout: Duration,
    /// `insert_quorum_parallel`.
    pub parallel: bool,
    /// Several inserts buffered into one (async inserts with
    /// deduplication): per partition id, the block ids of those whose rows
    /// its part holds. They replace the part's own block id; when one is
    /// already known the commit fails with
    /// [`ReplicationError::DuplicateBlocks`] and nothing is written.
    pub batch_ids: BTreeMap<String, Vec<String>>,
}

impl Default for InsertOptions {
    fn default() -> Self {
        InsertOptions {
            deduplicate: true,
            token: None,
            quorum: Quorum::Off,
            timeout: Duration::from_secs(600),
            parallel: true,
            batch_ids: BTreeMap::new(),
        }
    }
}

/// One part of the insert, staged on this replica.
struct LocalPart {
    staged: StagedPart,
    part: Arc<Part>,
    block_id: Option<String>,
    /// See [`InsertOptions::batch_ids`].
    batch_ids: Vec<String>,
}

/// A live replica that can stage parts.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    address: String,
}

impl Replica {
    /// Commits an INSERT's parts (see the module documentation). Returns
    /// the rows written (duplicates excluded).
    pub async fn commit_insert(
        self: &Arc<Self>,
        prepared: Vec<PreparedPart>,
        opts: &InsertOptions,
    ) -> Result<u64> {
        // Boxed: keeps callers' futures shallow enough for the compiler's
        // layout recursion limit.
        let Some(staged) = Box::pin(self.stage_insert(prepared, opts)).await? else {
            return Ok(0);
        };
        let op = staged.commit_op();
        let repl = self.repl()?;
        let outcome =
            tokio::time::timeout_at(staged.until.into(), repl.coordinator.write(Request::op(op)))
                .await;
        let committed = match outcome {
            Ok(Ok(Response::Ok { results })) => match results.into_iter().next() {
                Some(OpResult::Parts(parts)) => parts,
                other => {
                    return Err(ReplicationError::Coordinator(format!(
                        "unexpected answer to a commit: {other:?}"
                    )))
                }
            },
            Ok(Ok(refused)) => {
                // A committed refusal: nothing was written anywhere.
                staged.abandon().await;
                return Err(ReplicationError::Coordinator(format!(
                    "the insert was refused and not written: {}",
                    describe_refusal(&refused)
                )));
            }
            Ok(Err(e)) => {
                let e = ReplicationError::from_write(self.path(), e);
                if matches!(e, ReplicationError::ReadOnly { .. }) {
                    // No leader took it: nothing was committed.
                    staged.abandon().await;
                }
                // Unknown: staged copies stay until the log names them or
                // their deadline passes.
                return Err(e);
            }
            Err(_) => {
                return Err(ReplicationError::UnknownStatus(format!(
                    "the commit did not finish within insert_quorum_timeout ({} ms)",
                    staged.timeout.as_millis()
                )))
            }
        };
        staged.activate(committed).await
    }

    /// Steps 1 and 2: checks the quorum and stages every part here and on
    /// N−1 other replicas. The caller commits [`StagedInsert::commit_op`]
    /// (alone, or in one transaction with other tables' inserts) and then
    /// calls [`StagedInsert::activate`] or [`StagedInsert::abandon`].
    /// `None`: nothing to insert.
    pub async fn stage_insert(
        self: &Arc<Self>,
        prepared: Vec<PreparedPart>,
        opts: &InsertOptions,
    ) -> Result<Option<StagedInsert>> {
        if prepared.is_empty() {
            return Ok(None);
        }
        let discard = |rest: Vec<PreparedPart>| rest.into_iter().for_each(PreparedPart::discard);
        if let Some(why) = self.readonly_reason() {
            discard(prepared);
            return Err(ReplicationError::ReadOnly {
                path: self.path().to_string(),
                why,
            });
        }
        let repl = match self.repl() {
            Ok(r) => r,
            Err(e) => {
                discard(prepared);
                return Err(e);
            }
        };
        let started = Instant::now();
        let until = started + opts.timeout;
        // 1. Check.
        let (quorum, candidates) = match self.quorum_targets(&repl, opts.quorum).await {
            Ok(t) => t,
            Err(e) => {
                discard(prepared);
                return Err(e);
            }
        };
        let insert_id = self.staging.new_id(self.name());
        let exclusive = quorum > 1 && !opts.parallel;
        if exclusive {
            if let Some(other) = self.uncommitted_quorum_stage(&repl, &insert_id) {
                discard(prepared);
                return Err(ReplicationError::PreviousQuorum(format!(
                    "part staged by {} at {} ms is not committed yet (stage {})",
                    other.info.writer, other.info.staged_ms, other.id
                )));
            }
        }
        let rows: u64 = prepared.iter().map(PreparedPart::rows).sum();
        self.inserts.lock().insert(
            insert_id.clone(),
            InsertProgress {
                quorum,
                state: "staging",
                parts: prepared.len(),
                rows,
                replicas: vec![self.name().to_string()],
                started_ms: now_ms(),
            },
        );
        let mut staged = StagedInsert {
            replica: Arc::clone(self),
            id: insert_id,
            local: Vec::new(),
            stagers: Vec::new(),
            extras: None,
            quorum,
            until,
            timeout: opts.timeout,
            window: (0, 0),
        };
        // 2. Stage: here, then on quorum − 1 others.
        let stage_deadline = self.clock_now() + opts.timeout.as_millis() as u64;
        staged.local = self
            .stage_locally(
                prepared,
                &staged.id,
                quorum,
                exclusive,
                stage_deadline,
                opts,
            )
            .await?;
        if quorum > 1 {
            let outcome = tokio::time::timeout_at(
                until.into(),
                self.stage_remotely(
                    &repl,
                    &staged.local,
                    candidates,
                    quorum as usize - 1,
                    exclusive,
                ),
            )
            .await
            .unwrap_or_else(|_| {
                Err((
                    ReplicationError::Timeout(format!(
                        "staging the insert on {quorum} replicas took longer than insert_quorum_timeout ({} ms); nothing was written",
                        opts.timeout.as_millis()
                    )),
                    Vec::new(),
                ))
            });
            match outcome {
                Ok((t, extras)) => {
                    staged.stagers = t;
                    staged.extras = extras;
                }
                Err((e, touched)) => {
                    staged.stagers = touched;
                    staged.abandon().await;
                    return Err(e);
                }
            }
        }
        let holders = staged.holders();
        staged.set(|p| {
            p.state = "committing";
            p.replicas = holders.iter().cloned().collect();
        });
        let meta = self.table().meta();
        staged.window = (
            setting(&meta, "replicated_deduplication_window", 1000),
            setting(&meta, "replicated_deduplication_window_seconds", 604_800),
        );
        Ok(Some(staged))
    }

    /// N and the live replicas that may stage (this one excluded, shuffled).
    async fn quorum_targets(
        &self,
        repl: &Replication,
        quorum: Quorum,
    ) -> Result<(u64, Vec<Target>)> {
        if quorum == Quorum::Off {
            return Ok((1, Vec::new()));
        }
        let path = self.path().to_string();
        let now = repl.coordinator.clock_now();
        let (total, live) = repl
            .coordinator
            .read_linearizable(|s| {
                let Some(t) = s.table(&path) else {
                    return (0, Vec::new());
                };
                let live: Vec<(String, String)> = t
                    .replicas
                    .iter()
                    .filter(|(_, r)| !r.is_lost && s.lease_active(r.node_id, now))
                    .map(|(n, r)| (n.clone(), r.address.clone()))
                    .collect();
                (t.replicas.len(), live)
            })
            .await
            .map_err(|e| match ReplicationError::from_write(self.path(), e) {
                ReplicationError::UnknownStatus(why) => ReplicationError::ReadOnly {
                    path: self.path().to_string(),
                    why,
                },
                other => other,
            })?;
        let n = match quorum {
            Quorum::Off => 1,
            Quorum::Count(n) => n,
            Quorum::Auto => total as u64 / 2 + 1,
        };
        if n <= 1 {
            return Ok((1, Vec::new()));
        }
        if (live.len() as u64) < n || !live.iter().any(|(name, _)| name == self.name()) {
            return Err(ReplicationError::TooFewLiveReplicas {
                live: live.len(),
                quorum: n,
                total,
            });
        }
        let mut targets: Vec<Target> = live
            .into_iter()
            .filter(|(name, _)| name != self.name())
            .map(|(name, address)| Target { name, address })
            .collect();
        let offset = xxhash_rust::xxh3::xxh3_64(&now.to_le_bytes()) as usize % targets.len().max(1);
        targets.rotate_left(offset);
        Ok((n, targets))
    }

    /// Moves the insert's parts into the staging area (durable, invisible).
    async fn stage_locally(
        &self,
        prepared: Vec<PreparedPart>,
        insert_id: &str,
        quorum: u64,
        exclusive: bool,
        deadline_ms: u64,
        opts: &InsertOptions,
    ) -> Result<Vec<LocalPart>> {
        let count = prepared.len();
        let me = self.name().to_string();
        let mut staged: Vec<(StagedPart, Arc<Part>)> = Vec::with_capacity(count);
        let mut failed = None;
        for (i, p) in prepared.into_iter().enumerate() {
            if failed.is_some() {
                p.discard();
                continue;
            }
            let id = format!("{insert_id}.{i}");
            let (partition, rows) = (p.partition.id.clone(), p.rows());
            let info = StageInfo {
                partition_id: partition,
                deadline_ms,
                writer: me.clone(),
                rows,
                checksum: p.part.checksum_digest(),
                quorum,
                exclusive,
                staged_ms: now_ms(),
            };
            // The part comes loaded from its writer: its directory is
            // renamed into the staging area once and the loaded part goes
            // with it (activation does not read it back).
            let staging = Arc::clone(&self.staging);
            let id2 = id.clone();
            let added = tokio::task::spawn_blocking(move || {
                let tmp = p.tmp_dir().to_path_buf();
                let r = staging.add(&id2, &tmp, info, Some(p.part));
                if r.is_err() {
                    let _ = std::fs::remove_dir_all(&tmp);
                }
                r
            })
            .await
            .map_err(|e| ReplicationError::Coordinator(e.to_string()))
            .and_then(|r| r);
            match added.map(|s| (s.loaded.clone(), s)) {
                // Its files now live here (the stream to stagers reads them).
                Ok((Some(part), s)) => staged.push((s, part)),
                Ok((None, _)) => failed = Some(ReplicationError::Coordinator("not loaded".into())),
                Err(e) => {
                    self.staging.discard(&id);
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            for (s, _) in &staged {
                self.staging.discard(&s.id);
            }
            return Err(e);
        }
        Ok(staged
            .into_iter()
            .enumerate()
            .map(|(i, (staged, part))| {
                let batch_ids = opts
                    .batch_ids
                    .get(&staged.info.partition_id)
                    .cloned()
                    .unwrap_or_default();
                let block_id = (opts.deduplicate && batch_ids.is_empty()).then(|| {
                    let h = match &opts.token {
                        Some(t) if count == 1 => hash_hex(t.as_bytes()),
                        Some(t) => hash_hex(format!("{t}_{i}").as_bytes()),
                        None => staged.info.checksum.clone(),
                    };
                    format!("{}_{h}", staged.info.partition_id)
                });
                LocalPart {
                    staged,
                    part,
                    block_id,
                    batch_ids,
                }
            })
            .collect())
    }

    /// Streams every part to the candidates and returns once `need` of
    /// them hold it durably. Hedged: every candidate is sent the parts at
    /// once (a quorum-1 replica set that has a slow, frozen or cut-off
    /// member goes ahead on the others); the transfers still running carry
    /// on in the background, and their copies are activated when the commit
    /// reaches those replicas through the log (or removed by cleanup if it
    /// never lands). With `insert_quorum_parallel = 0` (exclusive staging)
    /// only `need` are sent at a time and a failed one is replaced, so no
    /// extra copy blocks the next quorum insert. On failure returns the
    /// error and every target that may hold a (partial) copy.
    async fn stage_remotely(
        &self,
        repl: &Arc<Replication>,
        local: &[LocalPart],
        candidates: Vec<Target>,
        need: usize,
        exclusive: bool,
    ) -> std::result::Result<(Vec<Target>, Option<ExtrasFate>), (ReplicationError, Vec<Target>)>
    {
        let plan: Arc<[StagePlan]> = local
            .iter()
            .map(|l| StagePlan {
                header: StageHeader {
                    table_path: self.path().to_string(),
                    stage_id: l.staged.id.clone(),
                    partition_id: l.staged.info.partition_id.clone(),
                    deadline_ms: l.staged.info.deadline_ms,
                    writer: self.name().to_string(),
                    rows: l.staged.info.rows,
                    exclusive,
                    quorum: l.staged.info.quorum,
                },
                part: Arc::clone(&l.part),
                checksum: l.staged.info.checksum.clone(),
            })
            .collect();
        let at_once = if exclusive { need } else { candidates.len() };
        let mut waiting = candidates.into_iter();
        let mut running = FuturesUnordered::new();
        let mut touched = Vec::new();
        for t in waiting.by_ref().take(at_once) {
            touched.push(t.clone());
            running.push(stage_on(Arc::clone(repl), Arc::clone(&plan), t));
        }
        let mut staged = Vec::new();
        let mut failed: Vec<Target> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        while staged.len() < need {
            let Some((target, outcome)) = running.next().await else {
                break;
            };
            match outcome {
                Ok(()) => staged.push(target),
                Err(e) => {
                    if let ReplicationError::PreviousQuorum(_) = e {
                        return Err((e, touched));
                    }
                    failures.push(format!("{}: {e}", target.name));
                    match waiting.next() {
                        Some(next) => {
                            warn!(failed = %target.name, replacement = %next.name, error = %e,
                                "staging target failed; replacing it");
                            touched.push(next.clone());
                            running.push(stage_on(Arc::clone(repl), Arc::clone(&plan), next));
                        }
                        None => warn!(failed = %target.name, error = %e, "staging target failed"),
                    }
                    failed.push(target);
                }
            }
        }
        if staged.len() < need {
            let e = ReplicationError::StagingFailed(format!(
                "the insert could be staged on {} of the {} replicas the quorum needs ({}); nothing was written",
                staged.len() + 1,
                need + 1,
                failures.join("; ")
            ));
            return Err((e, touched));
        }
        // The transfers still running finish without holding up the insert
        // (a stalled one is given up after STAGE_STALL). Their copies are
        // not holders in the commit; once the insert's fate is known, those
        // of blocks that were duplicates or never committed are discarded;
        // targets that failed may still hold a copy (a stall that ended
        // late) and are told to discard it.
        let mut extras = None;
        if !running.is_empty() || !failed.is_empty() {
            let ids: Vec<String> = local.iter().map(|l| l.staged.id.clone()).collect();
            let (tx, fate) = tokio::sync::oneshot::channel::<Fate>();
            extras = Some(tx);
            let (repl, path) = (Arc::clone(repl), self.path().to_string());
            let span = info_span!("staging_extras", table = %path);
            tokio::spawn(
                async move {
                    let mut copies = Vec::new();
                    while let Some((target, outcome)) = running.next().await {
                        match outcome {
                            Ok(()) => copies.push(target),
                            Err(e) => {
                                debug!(replica = %target.name, error = %e, "extra staging failed");
                                failed.push(target);
                            }
                        }
                    }
                    discard_on(&repl, &path, &failed, &ids).await;
                    match tokio::time::timeout(COMMIT_WINDOW, fate).await {
                        // Committed: each copy is activated by its replica's
                        // queue if it arrived before the queue reached the
                        // entry, else removed as superseded (never activated
                        // from here: the part may have been dropped since).
                        Ok(Ok(Fate::Committed { duplicates })) => {
                            discard_on(&repl, &path, &copies, &duplicates).await;
                        }
                        Ok(Ok(Fate::Abandoned)) => discard_on(&repl, &path, &copies, &ids).await,
                        // Unknown outcome: the log activates them or cleanup
                        // removes them after their deadline.
                        Ok(Err(_)) | Err(_) => {}
                    }
                }
                .instrument(span),
            );
        }
        Ok((staged, extras))
    }

    /// The insert failed before committing: drop its staged copies here and
    /// on `targets` (best effort; cleanup removes what is missed).
    async fn drop_everywhere(&self, repl: &Replication, local: &[LocalPart], targets: &[Target]) {
        for l in local {
            self.staging.discard(&l.staged.id);
        }
        let ids: Vec<String> = local.iter().map(|l| l.staged.id.clone()).collect();
        self.discard_remotely(repl, targets, &ids).await;
    }

    async fn discard_remotely(&self, repl: &Replication, targets: &[Target], ids: &[String]) {
        discard_on(repl, self.path(), targets, ids).await
    }

    async fn activate_remotely(
        &self,
        repl: &Replication,
        targets: &[Target],
        parts: &[(String, PartName)],
    ) {
        activate_on(repl, self.path(), targets, parts).await
    }

    /// Waits until `quorum` replicas hold `part` (or a part covering it).
    async fn wait_holders(
        &self,
        repl: &Replication,
        part: &PartName,
        quorum: u64,
        until: Instant,
    ) -> Result<()> {
        loop {
            let held = repl.coordinator.read(|s| {
                s.parts_of(self.path())
                    .into_iter()
                    .filter(|(n, _)| {
                        n.parse::<PartName>()
                            .is_ok_and(|p| p == *part || p.covers(part))
                    })
                    .map(|(_, m)| m.holders.len() as u64)
                    .max()
            });
            match held {
                // Dropped or merged away meanwhile: nothing to wait for.
                None => return Ok(()),
                Some(n) if n >= quorum => return Ok(()),
                Some(_) => {}
            }
            if Instant::now() >= until {
                return Err(ReplicationError::UnknownStatus(format!(
                    "the block was inserted before as {part}, which did not reach {quorum} replicas within insert_quorum_timeout"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `select_sequential_consistency = 1`: every part written with a quorum
    /// (by the coordinator's current records, read linearizably) must be
    /// here, else `REPLICA_IS_NOT_IN_QUORUM`. A part staged here whose
    /// commit is still on its way through the queue is waited for.
    pub async fn check_sequential_consistency(&self, timeout: Duration) -> Result<()> {
        let repl = self.repl()?;
        let path = self.path().to_string();
        let records = repl
            .coordinator
            .read_linearizable(|s| s.parts_of(&path))
            .await
            .map_err(|e| ReplicationError::from_write(self.path(), e))?;
        let records: BTreeMap<PartName, qh_meta::state::PartMeta> = records
            .into_iter()
            .filter_map(|(n, m)| n.parse().ok().map(|n| (n, m)))
            .collect();
        let until = Instant::now() + timeout.min(Duration::from_secs(10));
        for (name, meta) in &records {
            if meta.quorum == 0 || meta.merging_into.is_some() {
                continue;
            }
            loop {
                if self.holds(name, &records) {
                    break;
                }
                if !meta.holders.contains(self.name()) || Instant::now() >= until {
                    return Err(ReplicationError::NotInQuorum(name.to_string()));
                }
                // Staged here and committed: the queue is moving it into place.
                self.wake();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }

    /// This replica has `name`'s rows: the part, one covering it, or every
    /// quorum source of the merge that produced it. A source whose record
    /// is gone (every holder merged it away) counts as not held unless the
    /// part is here: its quorum can no longer be told.
    fn holds(
        &self,
        name: &PartName,
        records: &BTreeMap<PartName, qh_meta::state::PartMeta>,
    ) -> bool {
        if self.table().part_or_covering(name).is_some() {
            return true;
        }
        let Some(meta) = records.get(name) else {
            return false;
        };
        if meta.merged_from.is_empty() {
            // A record from before merges listed their sources: the sources
            // still recorded, as before.
            let target = name.to_string();
            let sources: Vec<(&PartName, &qh_meta::state::PartMeta)> = records
                .iter()
                .filter(|(_, m)| m.merging_into.as_deref() == Some(target.as_str()))
                .collect();
            return !sources.is_empty()
                && sources
                    .into_iter()
                    .all(|(s, m)| m.quorum == 0 || self.holds(s, records));
        }
        meta.merged_from.iter().all(|source| {
            let Ok(source) = source.parse::<PartName>() else {
                return false;
            };
            match records.get(&source) {
                Some(m) if m.quorum == 0 => true,
                _ => self.holds(&source, records),
            }
        })
    }

    /// Rows of `system.quorum_inserts`: inserts being written here, and
    /// staged parts awaiting their commit (or cleanup).
    pub fn quorum_inserts(&self) -> Vec<QuorumInsertRow> {
        let mut rows: Vec<QuorumInsertRow> = self
            .inserts
            .lock()
            .iter()
            .map(|(id, p)| QuorumInsertRow {
                stage_id: id.clone(),
                role: "writer",
                state: p.state,
                writer: self.name().to_string(),
                partition_id: String::new(),
                rows: p.rows,
                quorum: p.quorum,
                replicas: p.replicas.clone(),
                started_ms: p.started_ms,
                deadline_ms: 0,
            })
            .collect();
        let writing: Vec<String> = rows.iter().map(|r| r.stage_id.clone()).collect();
        for s in self.staging.list() {
            let own = writing.iter().any(|w| s.id.starts_with(w.as_str()));
            rows.push(QuorumInsertRow {
                stage_id: s.id.clone(),
                role: if s.info.writer == self.name() {
                    "writer"
                } else {
                    "stager"
                },
                state: if own {
                    "staged"
                } else {
                    "awaiting commit or cleanup"
                },
                writer: s.info.writer.clone(),
                partition_id: s.info.partition_id.clone(),
                rows: s.info.rows,
                quorum: s.info.quorum,
                replicas: Vec::new(),
                started_ms: s.info.staged_ms,
                deadline_ms: s.info.deadline_ms,
            });
        }
        rows
    }
}

/// A row of `system.quorum_inserts`.
#[derive(Debug, Clone)]
pub struct QuorumInsertRow {
    pub stage_id: String,
    pub role: &'static str,
    pub state: &'static str,
    pub writer: String,
    pub partition_id: String,
    pub rows: u64,
    pub quorum: u64,
    pub replicas: Vec<String>,
    pub started_ms: u64,
    pub deadline_ms: u64,
}

/// What became of an insert, for the task finishing its extra staged copies.
pub(super) enum Fate {
    /// Committed; these stage ids were blocks that were duplicates.
    Committed { duplicates: Vec<String> },
    /// Never committed: discard every copy.
    Abandoned,
}

pub(super) type ExtrasFate = tokio::sync::oneshot::Sender<Fate>;

/// Tells `targets` to move their staged copies into place as the committed
/// parts (best effort: their queues do it anyway when the log reaches them).
async fn activate_on(
    repl: &Replication,
    path: &str,
    targets: &[Target],
    parts: &[(String, PartName)],
) {
    if parts.is_empty() {
        return;
    }
    let calls = targets.iter().map(|t| async move {
        for (id, name) in parts {
            let req = StagedRequest {
                table_path: path.to_string(),
                stage_id: id.clone(),
                part: name.to_string(),
            };
            let r = async {
                let mut c = ReplicationClient::new(repl.channel(&t.address)?);
                c.activate_staged(req)
                    .await
                    .map_err(|s| ReplicationError::Coordinator(s.message().to_string()))
            };
            match tokio::time::timeout(ACTIVATE_WAIT, r).await {
                Ok(Ok(_)) => {}
                // Committed regardless: the stager's queue activates it.
                Ok(Err(e)) => {
                    warn!(replica = %t.name, part = %name, error = %e, "stager did not activate at once")
                }
                Err(_) => warn!(replica = %t.name, part = %name, "stager did not answer in time"),
            }
        }
    });
    futures::future::join_all(calls).await;
}

/// Asks `targets` to drop the staged copies `ids` (best effort: cleanup
/// removes what is missed once the commit deadline passed).
async fn discard_on(repl: &Replication, path: &str, targets: &[Target], ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let calls = targets.iter().map(|t| async move {
        for id in ids {
            let req = StagedRequest {
                table_path: path.to_string(),
                stage_id: id.clone(),
                part: String::new(),
            };
            let r = async {
                let mut c = ReplicationClient::new(repl.channel(&t.address)?);
                c.discard_staged(req)
                    .await
                    .map_err(|s| ReplicationError::Coordinator(s.message().to_string()))
            };
            match tokio::time::timeout(ACTIVATE_WAIT, r).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => debug!(replica = %t.name, error = %e, "discarding a staged copy"),
                Err(_) => debug!(replica = %t.name, "discarding a staged copy timed out"),
            }
        }
    });
    futures::future::join_all(calls).await;
}

/// One part as it is sent to a staging target.
struct StagePlan {
    header: StageHeader,
    part: Arc<Part>,
    /// The digest the target must answer.
    checksum: String,
}

/// Stages every part of the insert on one target (owned, so a transfer can
/// outlive the insert that started it: hedged staging).
async fn stage_on(
    repl: Arc<Replication>,
    plan: Arc<[StagePlan]>,
    target: Target,
) -> (Target, Result<()>) {
    let span = info_span!("stage_part", to = %target.name);
    let outcome = async {
        for p in plan.iter() {
            let digest = send_stage(&repl, &target, p.header.clone(), &p.part).await?;
            if digest != p.checksum {
                return Err(ReplicationError::Fetch {
                    part: p.header.stage_id.clone(),
                    replica: target.name.clone(),
                    why: format!(
                        "staged copy has checksum digest {digest}, expected {} (CHECKSUM_DOESNT_MATCH)",
                        p.checksum
                    ),
                });
            }
        }
        Ok(())
    }
    .instrument(span)
    .await;
    (target, outcome)
}

/// Streams one staged part to `target` (client streaming `StagePart`) and
/// returns the digest the target computed. A target that pulls nothing for
/// [`STAGE_STALL`] is given up.
async fn send_stage(
    repl: &Replication,
    target: &Target,
    header: StageHeader,
    part: &Arc<Part>,
) -> Result<String> {
    let err = |why: String| ReplicationError::Fetch {
        part: header.stage_id.clone(),
        replica: target.name.clone(),
        why,
    };
    let mut client = ReplicationClient::new(repl.channel(&target.address)?)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let checksums =
        std::fs::read(part.dir.join("checksums.json")).map_err(|e| err(e.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<PartChunk>(4);
    let first = PartChunk {
        checksums,
        stage: Some(header.clone()),
        ..Default::default()
    };
    let reader_part = Arc::clone(part);
    let reader = tokio::task::spawn_blocking(move || {
        if tx.blocking_send(first).is_err() {
            return Ok(());
        }
        read_part_files(&reader_part.dir, reader_part.checksums.keys(), |c| {
            tx.blocking_send(c).is_ok()
        })
    });
    let progress = Arc::new(AtomicU64::new(now_ms()));
    let seen = Arc::clone(&progress);
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(move |c| {
        seen.store(now_ms(), Ordering::Relaxed);
        c
    });
    let call = client.stage_part(stream);
    tokio::pin!(call);
    let reply = loop {
        tokio::select! {
            r = &mut call => break r,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                let idle = now_ms().saturating_sub(progress.load(Ordering::Relaxed));
                if idle > STAGE_STALL.as_millis() as u64 {
                    return Err(err(format!("no progress for {} s", idle / 1000)));
                }
            }
        }
    };
    if let Ok(Err(e)) = reader.await {
        return Err(err(e));
    }
    match reply {
        Ok(r) => Ok(r.into_inner().checksum),
        Err(s) if s.code() == tonic::Code::FailedPrecondition => {
            Err(ReplicationError::PreviousQuorum(s.message().to_string()))
        }
        Err(s) => Err(err(s.message().to_string())),
    }
}

fn describe_refusal(r: &Response) -> String {
    match r {
        Response::Rejected { reason, .. } => reason.clone(),
        Response::CheckFailed { reason, .. } => reason.clone(),
        Response::Ok { .. } => "ok".into(),
    }
}

pub(crate) fn setting(meta: &qh_storage::TableMeta, name: &str, default: u64) -> u64 {
    meta.settings
        .get(name)
        .and_then(|v| v.trim_matches('\'').parse().ok())
        .unwrap_or(default)
}

pub(crate) fn hash_hex(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_quorum_values() {
        assert_eq!(Quorum::parse("0"), Ok(Quorum::Off));
        assert_eq!(Quorum::parse("1"), Ok(Quorum::Off));
        assert_eq!(Quorum::parse("3"), Ok(Quorum::Count(3)));
        assert_eq!(Quorum::parse("'auto'"), Ok(Quorum::Auto));
        assert_eq!(Quorum::parse("AUTO"), Ok(Quorum::Auto));
        assert!(Quorum::parse("many").is_err());
    }
}
