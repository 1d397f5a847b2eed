//! An insert between staging and commit: what `Replica::stage_insert`
//! returns and its caller commits (alone or in one transaction with other
//! shards'), activates or abandons.

use super::*;

/// An insert staged on its replicas and not yet committed (see
/// [`Replica::stage_insert`]). Dropped without [`activate`](Self::activate)
/// or [`abandon`](Self::abandon) (an unknown commit outcome), its staged
/// copies wait for the log to name them or for their deadline to pass.
pub struct StagedInsert {
    pub(super) replica: Arc<Replica>,
    pub(super) id: String,
    pub(super) local: Vec<LocalPart>,
    pub(super) stagers: Vec<Target>,
    /// Tells the task finishing hedged staging's extra copies what became
    /// of the insert (dropped unsent: the outcome is unknown).
    pub(super) extras: Option<ExtrasFate>,
    pub(super) quorum: u64,
    pub(super) until: Instant,
    pub(super) timeout: Duration,
    /// replicated_deduplication_window and _seconds.
    pub(super) window: (u64, u64),
}

impl std::fmt::Debug for StagedInsert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedInsert")
            .field("id", &self.id)
            .field("parts", &self.local.len())
            .field("quorum", &self.quorum)
            .finish()
    }
}

impl Drop for StagedInsert {
    fn drop(&mut self) {
        self.replica.inserts.lock().remove(&self.id);
    }
}

impl StagedInsert {
    pub(super) fn set(&self, f: impl FnOnce(&mut InsertProgress)) {
        if let Some(p) = self.replica.inserts.lock().get_mut(&self.id) {
            f(p);
        }
    }

    pub(super) fn holders(&self) -> BTreeSet<String> {
        let mut holders: BTreeSet<String> = self.stagers.iter().map(|t| t.name.clone()).collect();
        holders.insert(self.replica.name().to_string());
        holders
    }

    /// Rows of each staged part, in the order of the commit's parts.
    pub fn part_rows(&self) -> Vec<u64> {
        self.local.iter().map(|l| l.staged.info.rows).collect()
    }

    /// Step 3: the coordinator op that commits every part of this insert
    /// (all or none); it answers one [`CommittedPart`] per part. It must
    /// land before the deadline it carries, or it is refused.
    pub fn commit_op(&self) -> Op {
        let left = self.until.saturating_duration_since(Instant::now());
        let holders = self.holders();
        Op::CommitParts {
            table: self.replica.path().to_string(),
            parts: self
                .local
                .iter()
                .map(|l| NewPart {
                    partition: l.staged.info.partition_id.clone(),
                    stage: l.staged.id.clone(),
                    block_id: l.block_id.clone(),
                    batch_ids: l.batch_ids.clone(),
                    holders: holders.clone(),
                    checksum: l.staged.info.checksum.clone(),
                })
                .collect(),
            deadline_ms: self.replica.clock_now() + left.min(COMMIT_WINDOW).as_millis() as u64,
            quorum: if self.quorum > 1 { self.quorum } else { 0 },
            window: self.window.0,
            window_seconds: self.window.1,
        }
    }

    /// The commit was refused or never reached the coordinator: drops the
    /// staged copies here and on the stagers (best effort; cleanup removes
    /// what is missed).
    pub async fn abandon(mut self) {
        if let Some(tx) = self.extras.take() {
            let _ = tx.send(Fate::Abandoned);
        }
        if let Ok(repl) = self.replica.repl() {
            self.replica
                .drop_everywhere(&repl, &self.local, &self.stagers)
                .await;
        } else {
            for l in &self.local {
                self.replica.staging.discard(&l.staged.id);
            }
        }
    }

    /// Step 4, after the commit landed: moves the parts into place here and
    /// on the stagers; a deduplicated block with a quorum waits until that
    /// many replicas hold the part that already has it. Returns the rows
    /// written (duplicates excluded).
    pub async fn activate(mut self, committed: Vec<CommittedPart>) -> Result<u64> {
        if committed.len() != self.local.len() {
            return Err(ReplicationError::Coordinator(format!(
                "a commit of {} parts answered for {}",
                self.local.len(),
                committed.len()
            )));
        }
        // Buffered inserts of which some were inserted before: nothing was
        // committed, the caller writes the others again.
        if let Some(c) = committed.iter().find(|c| !c.duplicate_ids.is_empty()) {
            let ids = c.duplicate_ids.clone();
            self.abandon().await;
            return Err(ReplicationError::DuplicateBlocks(ids));
        }
        let replica = &self.replica;
        let repl = replica.repl()?;
        let mut written = 0;
        let mut activations = Vec::new();
        let mut duplicates = Vec::new();
        for (l, c) in self.local.iter().zip(&committed) {
            let name: PartName = c
                .part
                .parse()
                .map_err(|e: String| ReplicationError::Coordinator(e))?;
            if c.log_index.is_none() {
                info!(block_id = l.block_id.as_deref().unwrap_or(""), existing = %c.part,
                    "block already exists; ignoring it (deduplicated)");
                replica.staging.discard(&l.staged.id);
                duplicates.push((l, name));
                continue;
            }
            written += l.staged.info.rows;
            // Committed: an activation problem here is retried by the queue.
            match replica.activate_staged(&l.staged.id, &name).await {
                Ok(true) => {}
                Ok(false) => {
                    warn!(part = %name, "staged part vanished after its commit; the queue fetches it")
                }
                Err(e) => {
                    warn!(part = %name, error = %e, "committed part not activated yet; the queue retries")
                }
            }
            activations.push((l.staged.id.clone(), name));
        }
        replica.wake();
        let dup_ids: Vec<String> = duplicates
            .iter()
            .map(|(l, _)| l.staged.id.clone())
            .collect();
        if let Some(tx) = self.extras.take() {
            let _ = tx.send(Fate::Committed {
                duplicates: dup_ids.clone(),
            });
        }
        if !self.stagers.is_empty() {
            tokio::join!(
                replica.activate_remotely(&repl, &self.stagers, &activations),
                replica.discard_remotely(&repl, &self.stagers, &dup_ids),
            );
        }
        for (_, existing) in duplicates {
            if self.quorum > 1 {
                replica
                    .wait_holders(&repl, &existing, self.quorum, self.until)
                    .await?;
            }
        }
        Ok(written)
    }
}
