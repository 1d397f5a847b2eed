//! Recovery of a replica when its queue starts (and after it was marked
//! lost): the coordinator's part records against the parts on disk —
//! unexpected parts detached, missing ones queued for fetch, holder records
//! corrected, postponed merges rebuilt — and the log pointer to resume from.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use qh_meta::state::PartMeta;
use qh_meta::{LogEntry, Op, Request};
use qh_types::PartName;
use tracing::{info, warn};

use super::{Pending, Replica};
use crate::error::{ReplicationError, Result};

impl Replica {
    /// Loads the replica's pointer and compares its parts with the
    /// coordinator's records: unexpected parts are detached, missing parts
    /// are queued for fetch, holder records corrected.
    pub(super) async fn initialize(&self) -> Result<()> {
        let repl = self.repl()?;
        let path = self.path.clone();
        let (table, records) = repl
            .coordinator
            .read_linearizable(|s| (s.table(&path).cloned(), s.parts_of(&path)))
            .await
            .map_err(|e| ReplicationError::from_write(&self.path, e))?;
        let table = table.ok_or_else(|| {
            ReplicationError::Coordinator(format!(
                "table {} is not registered in the coordinator",
                self.path
            ))
        })?;
        let me = table.replicas.get(&self.name).ok_or_else(|| {
            ReplicationError::Coordinator(format!(
                "replica {} is not registered at {}",
                self.name, self.path
            ))
        })?;
        let records: BTreeMap<PartName, PartMeta> = records
            .into_iter()
            .filter_map(|(n, m)| n.parse().ok().map(|n| (n, m)))
            .collect();
        // Parts staged here whose commit landed while we were away: move them
        // into place first, so recovery neither fetches nor detaches them.
        let committed: Vec<(String, PartName)> = repl.coordinator.read(|s| {
            s.log_from(&path, me.log_pointer)
                .into_iter()
                .filter_map(|(_, e)| match e {
                    LogEntry::GetPart {
                        part,
                        stage: Some(stage),
                        ..
                    } => part.parse().ok().map(|p| (stage, p)),
                    _ => None,
                })
                .collect()
        });
        for (stage, part) in committed {
            if self.staging.contains(&stage) && records.contains_key(&part) {
                self.activate_staged(&stage, &part).await?;
            }
        }
        let current = |n: &PartName| {
            records
                .iter()
                .any(|(r, m)| m.merging_into.is_none() && r.covers(n))
        };
        let mut ops = Vec::new();
        for part in self.table.active_parts() {
            if records.contains_key(&part.name) || current(&part.name) {
                continue;
            }
            warn!(part = %part.name, "part is not known to the coordinator: detaching it as unexpected");
            self.table.detach_part(&part.name, "unexpected")?;
        }
        let mut missing = BTreeSet::new();
        for (name, meta) in &records {
            if meta.merging_into.is_some() {
                continue;
            }
            let holds = meta.holders.contains(&self.name);
            match self.table.part_or_covering(name) {
                Some(p) if p.name == *name && !holds => ops.push(Op::AddPartHolder {
                    table: self.path.clone(),
                    part: name.to_string(),
                    replica: self.name.clone(),
                    checksum: Some(p.checksum_digest()),
                }),
                Some(_) => {}
                None => {
                    if holds {
                        ops.push(Op::RemovePartHolder {
                            table: self.path.clone(),
                            part: name.to_string(),
                            replica: self.name.clone(),
                        });
                    }
                    missing.insert(name.clone());
                }
            }
        }
        if !ops.is_empty() {
            self.send_ops(
                &repl,
                ops.into_iter()
                    .map(|op| Pending {
                        op,
                        on_reject: None,
                    })
                    .collect(),
            )
            .await;
        }
        // A merge result nobody holds (every replica lacked a source at its
        // MERGE_PARTS entry and postponed it; that memory did not survive
        // the restart) is merged here once its sources are all present; the
        // sources this replica lacks are fetched like any missing part.
        let merge_sources = postponed_merges(&records, &missing);
        for source in merge_sources.values().flatten() {
            if records.contains_key(source) && self.table.part_or_covering(source).is_none() {
                missing.insert(source.clone());
            }
        }
        if !missing.is_empty() {
            info!(
                parts = missing.len(),
                postponed_merges = merge_sources.len(),
                "recovery: parts to fetch"
            );
        }
        let mut pointer = me.log_pointer;
        if me.is_lost {
            // The log behind us was trimmed: take the current part set (the
            // fetches above) and continue from the log's head.
            pointer = table.next_log;
            let r = repl
                .coordinator
                .write(Request::op(Op::ReplicaRecovered {
                    table: self.path.clone(),
                    replica: self.name.clone(),
                    pointer,
                }))
                .await
                .map_err(|e| ReplicationError::from_write(&self.path, e))?;
            if !r.is_ok() {
                return Err(ReplicationError::Coordinator(format!(
                    "cloning a lost replica: {r:?}; retrying"
                )));
            }
            warn!(
                parts = missing.len(),
                log_pointer = pointer,
                "this replica was lost (too far behind while down): cloned the current part set"
            );
        }
        self.pointer.send_replace(pointer);
        let mut st = self.state.lock();
        st.reported_pointer = pointer;
        st.reported_at = Some(Instant::now());
        st.missing = missing;
        st.merge_sources = merge_sources;
        st.initialized = true;
        st.readonly_reason = None;
        info!(log_pointer = pointer, "replica initialized");
        Ok(())
    }
}

/// The merges recovery rebuilds: each missing merge result that a source's
/// record still names (`merging_into`), with all its sources. The list
/// comes from the result's own record (`merged_from`): a source's record
/// goes once nobody holds it, so the sources' records may name only some —
/// and merging those alone would write a part under the result's name
/// without the other sources' rows.
fn postponed_merges(
    records: &BTreeMap<PartName, PartMeta>,
    missing: &BTreeSet<PartName>,
) -> BTreeMap<PartName, Vec<PartName>> {
    let mut merges: BTreeMap<PartName, Vec<PartName>> = BTreeMap::new();
    for (name, meta) in records {
        let Some(into) = meta.merging_into.as_deref() else {
            continue;
        };
        let Ok(into) = into.parse::<PartName>() else {
            continue;
        };
        if missing.contains(&into) {
            merges.entry(into).or_default().push(name.clone());
        }
    }
    for (into, sources) in merges.iter_mut() {
        let Some(listed) = records.get(into).map(|m| &m.merged_from) else {
            continue;
        };
        // Records written before `merged_from` was kept have none.
        let all: Option<Vec<PartName>> = listed.iter().map(|s| s.parse().ok()).collect();
        if let Some(all) = all.filter(|a| !a.is_empty()) {
            *sources = all;
        }
    }
    merges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str) -> PartName {
        name.parse().expect("a part name")
    }

    fn source_of(into: &str, holders: &[&str]) -> PartMeta {
        PartMeta {
            holders: holders.iter().map(|h| h.to_string()).collect(),
            merging_into: Some(into.to_string()),
            ..Default::default()
        }
    }

    fn result_of(sources: &[&str]) -> PartMeta {
        PartMeta {
            merged_from: sources.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Every replica postponed the merge, then one merged it and dropped its
    /// copy of a source before its holding of the result landed: only the
    /// other source's record is left. Recovery still merges both sources,
    /// never the one alone under the result's name.
    #[test]
    fn a_postponed_merge_is_rebuilt_with_every_source_its_result_names() {
        let mut records = BTreeMap::new();
        records.insert(part("all_2_2_0"), source_of("all_1_2_1", &["node2"]));
        records.insert(part("all_1_2_1"), result_of(&["all_1_1_0", "all_2_2_0"]));
        let missing = BTreeSet::from([part("all_1_2_1")]);
        let merges = postponed_merges(&records, &missing);
        let both = vec![part("all_1_1_0"), part("all_2_2_0")];
        assert_eq!(merges, BTreeMap::from([(part("all_1_2_1"), both)]));
    }

    /// A result this replica holds, or one no source record names any more,
    /// is no postponed merge; a record without `merged_from` (written by an
    /// older version) still gets its sources from their records.
    #[test]
    fn only_missing_results_named_by_a_source_are_rebuilt() {
        let mut records = BTreeMap::new();
        records.insert(part("all_1_1_0"), source_of("all_1_2_1", &["node1"]));
        records.insert(part("all_2_2_0"), source_of("all_1_2_1", &["node2"]));
        records.insert(part("all_1_2_1"), PartMeta::default());
        records.insert(part("all_3_4_1"), result_of(&["all_3_3_0", "all_4_4_0"]));
        let held = postponed_merges(&records, &BTreeSet::new());
        assert!(held.is_empty(), "{held:?}");
        let missing = BTreeSet::from([part("all_1_2_1"), part("all_3_4_1")]);
        let merges = postponed_merges(&records, &missing);
        let both = vec![part("all_1_1_0"), part("all_2_2_0")];
        assert_eq!(merges, BTreeMap::from([(part("all_1_2_1"), both)]));
    }
}
