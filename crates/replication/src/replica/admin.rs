//! The replicated forms of the statements a user runs against one replica:
//! `SYSTEM SYNC REPLICA`, OPTIMIZE, DROP PARTITION, ALTER, and reporting a
//! broken part.

use super::*;

impl Replica {
    /// `SYSTEM SYNC REPLICA`: waits until this replica executed every log
    /// entry that existed when it was called (and fetched its missing parts).
    pub async fn sync(&self, timeout: Duration) -> Result<()> {
        let repl = self.repl()?;
        let path = self.path.clone();
        let target = repl
            .coordinator
            .read_linearizable(|s| s.table(&path).map(|t| t.next_log))
            .await
            .map_err(|e| ReplicationError::from_write(&self.path, e))?
            .ok_or_else(|| {
                ReplicationError::Coordinator(format!("table {} is not registered", self.path))
            })?;
        self.wait_pointer(target, timeout).await
    }

    pub(super) async fn wait_pointer(&self, target: u64, timeout: Duration) -> Result<()> {
        self.wake();
        let deadline = Instant::now() + timeout;
        loop {
            // The pointer is copied out before the state lock is taken: no
            // path holds one of the two while taking the other.
            let pointer = *self.pointer.borrow();
            let done = pointer >= target && {
                let st = self.state.lock();
                st.initialized && st.missing.is_empty()
            };
            if done {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let st = self.state.lock();
                return Err(ReplicationError::Timeout(format!(
                    "SYNC REPLICA {}: replica {} did not catch up in {} s (log pointer {}, needed {}; {})",
                    self.path,
                    self.name,
                    timeout.as_secs(),
                    pointer,
                    target,
                    if st.last_exception.is_empty() { "no error".to_string() } else { st.last_exception.clone() }
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `OPTIMIZE TABLE ... [PARTITION p] [FINAL]` through the log: assigns a
    /// merge of each partition's current parts and waits for this replica to
    /// execute it.
    pub async fn optimize(
        &self,
        partition: Option<&str>,
        final_: bool,
        timeout: Duration,
    ) -> Result<()> {
        let repl = self.repl()?;
        let deadline = Instant::now() + timeout;
        let mut attempts = 0;
        loop {
            let path = self.path.clone();
            let records = repl
                .coordinator
                .read_linearizable(|s| s.parts_of(&path))
                .await
                .map_err(|e| ReplicationError::from_write(&self.path, e))?;
            let mut by_partition: BTreeMap<String, Vec<PartName>> = BTreeMap::new();
            let mut busy = false;
            for (n, m) in records {
                let Ok(name) = n.parse::<PartName>() else {
                    continue;
                };
                if partition.is_some_and(|p| p != name.partition_id) {
                    continue;
                }
                if m.merging_into.is_some() {
                    busy = true;
                    continue;
                }
                by_partition
                    .entry(name.partition_id.clone())
                    .or_default()
                    .push(name);
            }
            let mut last = None;
            let mut refused = false;
            for (_, mut parts) in by_partition {
                parts.sort_by_key(|p| p.min_block);
                if parts.len() < 2 && !(final_ && parts.len() == 1) {
                    continue;
                }
                let refs: Vec<&PartName> = parts.iter().collect();
                let Some(new_part) = PartName::merged(&refs) else {
                    continue;
                };
                match self.propose_merge(&repl, &refs, &new_part).await? {
                    Some(i) => last = Some(i),
                    None => refused = true,
                }
            }
            if let Some(i) = last {
                self.wait_pointer(i + 1, deadline.saturating_duration_since(Instant::now()))
                    .await?;
            }
            // A merge already running took some parts: wait for it, then merge again.
            if (busy || refused) && attempts < 3 && Instant::now() < deadline {
                attempts += 1;
                let target = repl
                    .coordinator
                    .read(|s| s.table(&self.path).map(|t| t.next_log))
                    .unwrap_or(0);
                self.wait_pointer(target, deadline.saturating_duration_since(Instant::now()))
                    .await?;
                continue;
            }
            return Ok(());
        }
    }

    /// DROP PARTITION / TRUNCATE through the log (`partition` None = all).
    pub async fn drop_partitions(&self, partition: Option<&str>, timeout: Duration) -> Result<()> {
        let repl = self.repl()?;
        let path = self.path.clone();
        let (records, blocks) = repl
            .coordinator
            .read_linearizable(|s| {
                (
                    s.parts_of(&path),
                    s.table(&path)
                        .map(|t| t.block_numbers.clone())
                        .unwrap_or_default(),
                )
            })
            .await
            .map_err(|e| ReplicationError::from_write(&self.path, e))?;
        let mut partitions: BTreeSet<String> = blocks.keys().cloned().collect();
        for (n, _) in &records {
            if let Ok(p) = n.parse::<PartName>() {
                partitions.insert(p.partition_id);
            }
        }
        if let Some(p) = partition {
            partitions.retain(|x| x == p);
        }
        if partitions.is_empty() {
            return Ok(());
        }
        let ops = partitions
            .into_iter()
            .map(|p| Op::AppendLog {
                table: self.path.clone(),
                entry: LogEntry::DropRange {
                    max_block: blocks.get(&p).copied().unwrap_or(u64::MAX / 2),
                    partition: p,
                },
            })
            .collect();
        let r = repl
            .coordinator
            .write(Request::ops(ops))
            .await
            .map_err(|e| ReplicationError::from_write(&self.path, e))?;
        match r {
            Response::Ok { results } => {
                let last = results
                    .iter()
                    .filter_map(|r| match r {
                        OpResult::LogIndex(i) => Some(*i),
                        _ => None,
                    })
                    .max();
                if let Some(i) = last {
                    self.wait_pointer(i + 1, timeout).await?;
                }
                Ok(())
            }
            other => Err(ReplicationError::Coordinator(format!("{other:?}"))),
        }
    }

    /// ALTER of the table definition: committed with a check of the schema
    /// version, executed by every replica from the log; waits for this one.
    pub async fn alter(&self, new_meta: &TableMeta, timeout: Duration) -> Result<()> {
        let repl = self.repl()?;
        let path = self.path.clone();
        let version = repl
            .coordinator
            .read_linearizable(|s| s.table(&path).map(|t| t.version))
            .await
            .map_err(|e| ReplicationError::from_write(&self.path, e))?
            .ok_or_else(|| {
                ReplicationError::Coordinator(format!("table {path} is not registered"))
            })?;
        let create_sql = serde_json::to_string(&new_meta.shared_definition())
            .map_err(|e| ReplicationError::BadArguments(e.to_string()))?;
        let r = repl
            .coordinator
            .write(
                Request::op(Op::AlterTable {
                    table: self.path.clone(),
                    create_sql,
                })
                .with_checks(vec![Check::TableVersion {
                    table: self.path.clone(),
                    version,
                }]),
            )
            .await
            .map_err(|e| ReplicationError::from_write(&self.path, e))?;
        match r {
            Response::Ok { .. } => {
                let next = repl
                    .coordinator
                    .read(|s| s.table(&self.path).map(|t| t.next_log))
                    .unwrap_or(0);
                self.wait_pointer(next, timeout).await
            }
            Response::CheckFailed { .. } => Err(ReplicationError::Coordinator(
                "the table was altered concurrently; retry the ALTER".into(),
            )),
            Response::Rejected { reason, .. } => Err(ReplicationError::Coordinator(reason)),
        }
    }

    /// Detaches a part found broken (a checksum error on read or in CHECK
    /// TABLE) and queues a fetch of a good copy.
    pub fn part_is_broken(&self, name: &PartName) {
        match self.table.detach_part(name, "broken") {
            Ok(true) => {
                warn!(part = %name, "broken part detached; fetching it again");
                self.state.lock().missing.insert(name.clone());
                let (path, me, part) = (self.path.clone(), self.name.clone(), name.to_string());
                if let Some(repl) = self.repl.upgrade() {
                    tokio::spawn(async move {
                        let _ = repl
                            .coordinator
                            .write(Request::op(Op::RemovePartHolder {
                                table: path,
                                part,
                                replica: me,
                            }))
                            .await;
                    });
                }
                self.wake();
            }
            Ok(false) => {}
            Err(e) => warn!(part = %name, error = %e, "cannot detach broken part"),
        }
    }
}
