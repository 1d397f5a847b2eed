//! The queue task's work on each log entry: fetching parts (from any
//! live holder), merging (or postponing a merge whose sources are missing),
//! reporting holders and the log pointer, assigning merges, and cleaning up
//! staged parts whose insert was never committed.

use super::*;

impl Replica {
    /// Sends holder changes and the pointer; each op is its own transaction
    /// (the coordinator batches them into one entry), so one refused op does
    /// not hold back the rest.
    pub(super) async fn send_ops(&self, repl: &Replication, ops: Vec<Pending>) {
        let writes = ops
            .iter()
            .map(|p| repl.coordinator.write(Request::op(p.op.clone())));
        let results = futures::future::join_all(writes).await;
        for (p, r) in ops.into_iter().zip(results) {
            match r {
                Ok(Response::Ok { .. }) => {}
                Ok(other) => {
                    warn!(op = ?p.op, outcome = ?other, "coordinator refused a replica update");
                    if let Some(part) = p.on_reject.filter(|part| self.differs(repl, part, &p.op)) {
                        // Our copy differs from the first holder's: never
                        // serve it; fetch theirs.
                        if let Err(e) = self.table.detach_part(&part, "ignored") {
                            warn!(error = %e, part = %part, "cannot detach differing part");
                        }
                        self.state.lock().missing.insert(part);
                    }
                }
                Err(e) => warn!(op = ?p.op, error = %e, "replica update not written"),
            }
        }
    }

    /// Whether the coordinator's record of `part` has a checksum other
    /// than the one `op` reported for our copy. A refusal for any other
    /// reason (the record is gone: merged away, or dropped by an entry the
    /// queue has yet to execute) leaves our copy in place: detaching it
    /// would hide rows a covering part does not yet replace here, between a
    /// `select_sequential_consistency` check and the scan after it.
    fn differs(&self, repl: &Replication, part: &PartName, op: &Op) -> bool {
        let Op::AddPartHolder {
            checksum: Some(ours),
            ..
        } = op
        else {
            return false;
        };
        let name = part.to_string();
        repl.coordinator.read(|s| {
            s.parts_of(&self.path)
                .into_iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, m)| m.checksum)
                .is_some_and(|have| have != *ours)
        })
    }

    pub(super) fn holder(&self, part: &Part) -> Pending {
        Pending {
            op: Op::AddPartHolder {
                table: self.path.clone(),
                part: part.name.to_string(),
                replica: self.name.clone(),
                checksum: Some(part.checksum_digest()),
            },
            on_reject: Some(part.name.clone()),
        }
    }

    /// Whether the coordinator lists this replica among `name`'s holders.
    fn is_holder(&self, repl: &Replication, name: &PartName) -> bool {
        let part = name.to_string();
        repl.coordinator.read(|s| {
            s.parts_of(&self.path)
                .iter()
                .any(|(n, m)| *n == part && m.holders.contains(&self.name))
        })
    }

    /// Whether `name` (or a part covering it) is still among the table's parts.
    pub(super) fn in_current_set(&self, repl: &Replication, name: &PartName) -> bool {
        repl.coordinator.read(|s| {
            s.parts_of(&self.path).iter().any(|(n, _)| {
                n.parse::<PartName>()
                    .is_ok_and(|p| p == *name || p.covers(name))
            })
        })
    }

    pub(super) async fn execute(
        &self,
        repl: &Arc<Replication>,
        entry: &LogEntry,
        done: &mut Vec<Pending>,
    ) -> Result<()> {
        match entry {
            LogEntry::GetPart { part, stage, .. } => {
                let name = parse_part(part)?;
                if let Some(stage) = stage {
                    if self.activate_staged(stage, &name).await? {
                        // An extra copy of hedged staging: not among the
                        // holders the commit named, so say it holds it now.
                        if !self.is_holder(repl, &name) {
                            if let Some(p) = self.table.part_or_covering(&name) {
                                if p.name == name {
                                    done.push(self.holder(&p));
                                }
                            }
                        }
                        return Ok(());
                    }
                    self.supersede_stage(stage);
                }
                if self.table.part_or_covering(&name).is_some() {
                    return Ok(());
                }
                self.fetch_or_skip(repl, &name, done).await
            }
            LogEntry::MergeParts { parts, new_part } => {
                let new = parse_part(new_part)?;
                if self.table.part_or_covering(&new).is_some() {
                    return Ok(());
                }
                if !self.in_current_set(repl, &new) {
                    return Ok(());
                }
                let sources = parts
                    .iter()
                    .map(|p| parse_part(p))
                    .collect::<Result<Vec<_>>>()?;
                if !self.merges_stopped.load(Ordering::Acquire) {
                    let table = Arc::clone(&self.table);
                    let (src, target) = (sources.clone(), new.clone());
                    let merged =
                        tokio::task::spawn_blocking(move || table.merge_named(&src, target))
                            .await
                            .map_err(|e| ReplicationError::Coordinator(e.to_string()))??;
                    if let Some(part) = merged {
                        debug!(part = %part.name, sources = sources.len(), "merged");
                        done.push(self.holder(&part));
                        self.drop_holders(&sources, done);
                        return Ok(());
                    }
                }
                self.fetch_or_skip(repl, &new, done).await?;
                if self.table.part_or_covering(&new).is_some() {
                    self.drop_holders(&sources, done);
                } else {
                    // Postponed: the sources stay here, and stay fetchable
                    // from here, until the result is merged or fetched.
                    self.state.lock().merge_sources.insert(new, sources);
                }
                Ok(())
            }
            LogEntry::DropRange {
                partition,
                max_block,
            } => {
                let n = self.table.drop_range(partition, *max_block);
                debug!(partition = %partition, parts = n, "dropped range");
                Ok(())
            }
            LogEntry::AlterMetadata { create_sql, .. } => {
                let shared: TableMeta = serde_json::from_str(create_sql).map_err(|e| {
                    ReplicationError::Coordinator(format!("bad ALTER_METADATA entry: {e}"))
                })?;
                let mut meta = self.table.meta();
                let local = (
                    meta.database.clone(),
                    meta.name.clone(),
                    meta.replicated.clone(),
                );
                meta = shared;
                (meta.database, meta.name, meta.replicated) = local;
                let keys = repl.catalog.keys_for(&meta)?;
                self.table.alter(meta, keys)?;
                Ok(())
            }
            LogEntry::MutatePart { part, .. } => {
                warn!(part = %part, "MUTATE_PART is not supported yet; skipping");
                Ok(())
            }
        }
    }

    pub(super) fn drop_holders(&self, sources: &[PartName], done: &mut Vec<Pending>) {
        for s in sources {
            done.push(Pending {
                op: Op::RemovePartHolder {
                    table: self.path.clone(),
                    part: s.to_string(),
                    replica: self.name.clone(),
                },
                on_reject: None,
            });
        }
    }

    /// Merges the postponed merge results whose sources are all here now.
    pub(super) async fn merge_postponed(&self, done: &mut Vec<Pending>) -> Result<()> {
        let candidates: Vec<(PartName, Vec<PartName>)> = {
            let mut st = self.state.lock();
            let State {
                missing,
                merge_sources,
                ..
            } = &mut *st;
            merge_sources.retain(|name, _| missing.contains(name));
            merge_sources
                .iter()
                .map(|(n, s)| (n.clone(), s.clone()))
                .collect()
        };
        if self.merges_stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        for (name, sources) in candidates {
            if self.table.part_or_covering(&name).is_some() {
                continue;
            }
            let table = Arc::clone(&self.table);
            let (src, target) = (sources.clone(), name.clone());
            let merged = tokio::task::spawn_blocking(move || table.merge_named(&src, target))
                .await
                .map_err(|e| ReplicationError::Coordinator(e.to_string()))??;
            if let Some(part) = merged {
                debug!(part = %part.name, "merged a postponed merge result");
                let mut st = self.state.lock();
                st.missing.remove(&name);
                st.merge_sources.remove(&name);
                drop(st);
                done.push(self.holder(&part));
                self.drop_holders(&sources, done);
            }
        }
        Ok(())
    }

    pub(super) async fn fetch_or_skip(
        &self,
        repl: &Arc<Replication>,
        name: &PartName,
        done: &mut Vec<Pending>,
    ) -> Result<()> {
        match self.fetch_any(repl, name).await {
            Ok(part) => {
                done.push(self.holder(&part));
                Ok(())
            }
            // Dropped (DROP PARTITION, TRUNCATE) since the entry was written.
            Err(_) if !self.in_current_set(repl, name) => Ok(()),
            // Nobody can send it now (its holders are down, fetches are
            // stopped): set it aside and go on with the queue, so one missing
            // part never wedges the table. It is retried with backoff, and
            // SYNC REPLICA waits for it.
            Err(e) => {
                warn!(part = %name, error = %e, "part postponed: will fetch it later");
                self.state.lock().missing.insert(name.clone());
                Ok(())
            }
        }
    }

    /// Fetches the parts not present here, up to `FETCH_PARALLELISM` at once.
    /// `Ok(None)`: already present (nothing fetched).
    pub(super) async fn fetch_many(
        &self,
        repl: &Arc<Replication>,
        names: Vec<PartName>,
    ) -> Vec<(PartName, Result<Option<Arc<Part>>>)> {
        use futures::stream::StreamExt;
        futures::stream::iter(names)
            .map(|n| async move {
                if self.table.part_or_covering(&n).is_some() {
                    return (n, Ok(None));
                }
                let r = self.fetch_any(repl, &n).await.map(Some);
                (n, r)
            })
            .buffer_unordered(FETCH_PARALLELISM)
            .collect()
            .await
    }

    /// Fetches `name` (or a part covering it) from a random live replica
    /// that holds it, trying the others on failure.
    pub(super) async fn fetch_any(
        &self,
        repl: &Arc<Replication>,
        name: &PartName,
    ) -> Result<Arc<Part>> {
        if self.fetches_stopped.load(Ordering::Acquire) {
            return Err(ReplicationError::BadArguments(
                "fetches are stopped (SYSTEM STOP FETCHES)".into(),
            ));
        }
        let now = repl.coordinator.clock_now();
        let mut candidates: Vec<(String, String)> = repl.coordinator.read(|s| {
            let Some(t) = s.table(&self.path) else {
                return Vec::new();
            };
            let mut holders = BTreeSet::new();
            for (n, m) in s.parts_of(&self.path) {
                if n.parse::<PartName>()
                    .is_ok_and(|p| p == *name || p.covers(name))
                {
                    holders.extend(m.holders);
                }
            }
            holders
                .into_iter()
                .filter(|h| *h != self.name)
                .filter_map(|h| {
                    let r = t.replicas.get(&h)?;
                    s.lease_active(r.node_id, now)
                        .then(|| (h.clone(), r.address.clone()))
                })
                .collect()
        });
        if candidates.is_empty() {
            return Err(ReplicationError::NoReplicaHasPart {
                path: self.path.clone(),
                part: name.to_string(),
            });
        }
        let offset = (xxhash_rust::xxh3::xxh3_64(&now.to_le_bytes()) as usize) % candidates.len();
        candidates.rotate_left(offset);
        let mut last = None;
        for (replica, address) in candidates {
            match fetch_part(
                repl,
                &self.table,
                &self.path,
                &self.name,
                name,
                &replica,
                &address,
            )
            .await
            {
                Ok(p) => return Ok(p),
                Err(e) => {
                    warn!(part = %name, from = %replica, error = %e, "fetch failed; trying another replica");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(ReplicationError::NoReplicaHasPart {
            path: self.path.clone(),
            part: name.to_string(),
        }))
    }

    /// The replica that assigns merges: the alive one with the smallest name
    /// (one assigner keeps proposals from colliding; any may, safely).
    pub(super) async fn assign_merge(&self) -> Result<()> {
        {
            // Our view of the parts must be complete before we pick a merge.
            let st = self.state.lock();
            if self.merges_stopped.load(Ordering::Acquire)
                || !st.queue.is_empty()
                || !st.missing.is_empty()
            {
                return Ok(());
            }
        }
        let repl = self.repl()?;
        let now = repl.coordinator.clock_now();
        let leader = repl.coordinator.read(|s| {
            s.table(&self.path).and_then(|t| {
                t.replicas
                    .iter()
                    .filter(|(_, r)| s.lease_active(r.node_id, now))
                    .map(|(n, _)| n.clone())
                    .next()
            })
        });
        if leader.as_deref() != Some(self.name.as_str()) {
            return Ok(());
        }
        let Some(window) = self.table.select_merge() else {
            return Ok(());
        };
        let names: Vec<&PartName> = window.iter().map(|p| &p.name).collect();
        let Some(new_part) = PartName::merged(&names) else {
            return Ok(());
        };
        self.propose_merge(&repl, &names, &new_part)
            .await
            .map(|_| ())
    }

    pub(super) async fn propose_merge(
        &self,
        repl: &Replication,
        parts: &[&PartName],
        new_part: &PartName,
    ) -> Result<Option<u64>> {
        let entry = LogEntry::MergeParts {
            parts: parts.iter().map(|p| p.to_string()).collect(),
            new_part: new_part.to_string(),
        };
        let r = repl
            .coordinator
            .write(Request::op(Op::AppendLog {
                table: self.path.clone(),
                entry,
            }))
            .await
            .map_err(|e| ReplicationError::from_write(&self.path, e))?;
        match r {
            Response::Ok { results } => {
                debug!(part = %new_part, sources = parts.len(), "merge assigned");
                self.wake();
                Ok(log_index(&results))
            }
            other => {
                debug!(outcome = ?other, "merge not assigned");
                Ok(None)
            }
        }
    }

    /// Moves the staged copy `stage` into place as the committed part
    /// `name`. `Ok(true)`: the part (or one covering it) is active now;
    /// `Ok(false)`: no such staged copy here.
    pub(crate) async fn activate_staged(&self, stage: &str, name: &PartName) -> Result<bool> {
        let _one_at_a_time = self.activation.lock().await;
        let Some(staged) = self.staging.take(stage) else {
            return Ok(self.table.part_or_covering(name).is_some());
        };
        let table = Arc::clone(&self.table);
        let (dir, target, loaded) = (staged.dir.clone(), name.clone(), staged.loaded.clone());
        let attached =
            tokio::task::spawn_blocking(move || table.attach_staged(&dir, target, loaded))
                .await
                .map_err(|e| ReplicationError::Coordinator(e.to_string()))?;
        match attached {
            Ok(part) => {
                self.staging.forget(stage);
                debug!(part = %part.name, stage, "staged part activated");
                Ok(true)
            }
            Err(e) => {
                // Committed data: never dropped. Still staged, it is tried
                // again by the queue (the entry fails and backs off).
                warn!(part = %name, stage, error = %e, "staged part could not be activated yet");
                if staged.dir.is_dir() {
                    self.staging.restore(staged);
                }
                Err(e.into())
            }
        }
    }

    /// Removes staged parts whose commit can no longer land: the
    /// coordinator's clock (in this node's applied state, a prefix of the
    /// committed log) passed their deadline, so any later commit of them is
    /// refused, and no log entry this replica has yet to execute names them.
    /// Also removes copies named by an entry this replica already executed
    /// (an extra copy of hedged staging that arrived after the queue
    /// fetched the part): nothing will ever activate them.
    pub(super) async fn cleanup_staging(&self, repl: &Replication) {
        {
            let mut last = self.last_cleanup.lock();
            if last.is_some_and(|t| t.elapsed() < STAGING_CLEANUP_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let staged = self.staging.list();
        if staged.is_empty() {
            return;
        }
        let pointer = *self.pointer.borrow();
        let (clock, named, executed) = repl.coordinator.read(|s| {
            let (mut named, mut executed) = (BTreeSet::new(), BTreeSet::new());
            for (index, e) in s.log_from(&self.path, 0) {
                if let LogEntry::GetPart {
                    stage: Some(stage), ..
                } = e
                {
                    if index >= pointer {
                        named.insert(stage);
                    } else {
                        executed.insert(stage);
                    }
                }
            }
            (s.clock_ms(), named, executed)
        });
        let writing: BTreeSet<String> = self.inserts.lock().keys().cloned().collect();
        let superseded = self.superseded_stages();
        for p in staged {
            let own = writing.iter().any(|w| p.id.starts_with(w.as_str()));
            if own || named.contains(&p.id) {
                continue;
            }
            if executed.contains(&p.id) || superseded.contains(&p.id) {
                debug!(stage = %p.id, "removing a staged copy whose part is already here");
            } else if clock <= p.info.deadline_ms {
                continue;
            } else {
                info!(stage = %p.id, writer = %p.info.writer, rows = p.info.rows,
                    "removing a staged part whose insert was never committed");
            }
            self.staging.discard(&p.id);
        }
    }
}
