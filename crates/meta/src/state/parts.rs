//! The part records of replicated tables (which replica holds which part,
//! its checksum digest and quorum) and the commit of staged inserts.

use super::*;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub holders: BTreeSet<String>,
    /// Set once a MERGE_PARTS entry takes this part: it is no longer in the
    /// table's current part set, but replicas may still fetch it until they
    /// executed the merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merging_into: Option<String>,
    /// Digest of the part's checksums, set by the first holder; a replica
    /// whose copy differs is refused (it must fetch instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// `insert_quorum` of the insert that wrote it (0: none); a merge of
    /// quorum parts carries the largest. `select_sequential_consistency`
    /// reads require these.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quorum: u64,
    /// For a merge result: the parts it was merged from. Their records go
    /// once no replica holds them, so the surviving records alone cannot
    /// tell whether a replica has every source's rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `replica` holds `part`; the first checksum digest reported is the part's.
pub(super) fn add_holder(
    tx: &mut Tx<'_>,
    table: &str,
    part: &str,
    replica: &str,
    checksum: Option<&String>,
) -> ApplyResult<()> {
    tx.table(table)?;
    let key = item_key(table, part);
    let mut meta =
        tx.s.parts
            .get(&key)
            .cloned()
            .ok_or_else(|| ApplyError::PartMissing {
                table: table.to_string(),
                part: part.to_string(),
            })?;
    match (&meta.checksum, checksum) {
        (Some(have), Some(new)) if have != new => {
            return Err(ApplyError::ChecksumMismatch {
                table: table.to_string(),
                part: part.to_string(),
                new: new.clone(),
                have: have.clone(),
            })
        }
        (None, Some(new)) => meta.checksum = Some(new.clone()),
        _ => {}
    }
    meta.holders.insert(replica.to_string());
    tx.set_part(key, Some(meta));
    Ok(())
}

pub(super) fn remove_holder(tx: &mut Tx<'_>, table: &str, part: &str, replica: &str) {
    let key = item_key(table, part);
    if let Some(mut meta) = tx.s.parts.get(&key).cloned() {
        meta.holders.remove(replica);
        // A part still in the current set keeps its record even with no
        // holder (it is lost, and recovery must see that).
        let keep = (!meta.holders.is_empty() || meta.merging_into.is_none()).then_some(meta);
        tx.set_part(key, keep);
    }
}

/// [`Op::CommitParts`]: see there.
pub(super) fn commit(
    tx: &mut Tx<'_>,
    table: &str,
    parts: &[NewPart],
    deadline_ms: u64,
    quorum: u64,
    window: dedup::Window,
    now_ms: u64,
) -> ApplyResult<Vec<CommittedPart>> {
    let clock = tx.s.clock_ms;
    forget_expired_stages(tx, clock);
    if clock > deadline_ms {
        return Err(ApplyError::DeadlinePassed {
            late_ms: clock - deadline_ms,
        });
    }
    tx.table(table)?;
    // Batched inserts first: one known id refuses the whole op.
    let mut seen = BTreeSet::new();
    let duplicate_ids: Vec<String> = parts
        .iter()
        .flat_map(|p| &p.batch_ids)
        .filter(|id| !seen.insert(id.as_str()) || tx.s.dedup.contains_key(&item_key(table, id)))
        .cloned()
        .collect();
    if !duplicate_ids.is_empty() {
        return Ok(parts
            .iter()
            .map(|_| CommittedPart {
                part: String::new(),
                log_index: None,
                duplicate_ids: duplicate_ids.clone(),
            })
            .collect());
    }
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let stage_key = item_key(table, &p.stage);
        if tx.s.committed_stages.contains_key(&stage_key) {
            return Err(ApplyError::StageCommitted(p.stage.clone()));
        }
        tx.set_committed_stage(stage_key.clone(), Some(deadline_ms));
        tx.set_stage_expiry(format!("{deadline_ms:020}\0{stage_key}"), true);
        if let Some(existing) = p
            .block_id
            .as_ref()
            .and_then(|id| tx.s.dedup.get(&item_key(table, id)))
        {
            out.push(CommittedPart {
                part: existing.part.clone(),
                log_index: None,
                duplicate_ids: Vec::new(),
            });
            continue;
        }
        let mut t = tx.table(table)?;
        let n = t.block_numbers.get(&p.partition).copied().unwrap_or(0) + 1;
        t.block_numbers.insert(p.partition.clone(), n);
        tx.set_table(table.to_string(), Some(t));
        let name = format!("{}_{n}_{n}_0", p.partition);
        let entry = LogEntry::GetPart {
            part: name.clone(),
            block_id: p.block_id.clone(),
            holders: p.holders.clone(),
            stage: Some(p.stage.clone()),
        };
        let index = log::append(tx, table, entry, now_ms)?;
        let key = item_key(table, &name);
        if let Some(mut meta) = tx.s.parts.get(&key).cloned() {
            meta.checksum = Some(p.checksum.clone());
            meta.quorum = quorum;
            tx.set_part(key, Some(meta));
        }
        for id in p.block_id.iter().chain(&p.batch_ids) {
            dedup::add_block(tx, table, id, &name, window, now_ms)?;
        }
        out.push(CommittedPart {
            part: name,
            log_index: Some(index),
            duplicate_ids: Vec::new(),
        });
    }
    Ok(out)
}

/// Stage ids whose deadline passed can no longer commit: forget them.
fn forget_expired_stages(tx: &mut Tx<'_>, clock: u64) {
    let expired: Vec<String> =
        tx.s.stage_expiry
            .iter()
            .take_while(|k| {
                k.split('\0')
                    .next()
                    .and_then(|d| d.parse::<u64>().ok())
                    .is_some_and(|d| d < clock)
            })
            .cloned()
            .collect();
    for k in expired {
        if let Some((_, rest)) = k.split_once('\0') {
            tx.set_committed_stage(rest.to_string(), None);
        }
        tx.set_stage_expiry(k, false);
    }
}
