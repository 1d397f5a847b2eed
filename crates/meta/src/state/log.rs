//! The replication log of each replicated table: entries are appended
//! here (which also updates the part records they describe) and trimmed
//! once every non-lost replica executed them.

use super::*;

/// How long a block number handed out by the retired `Op::AllocateBlock`
/// and not committed yet holds back merges.
pub const INFLIGHT_BLOCK_MS: u64 = 30_000;

/// Log entries kept for an inactive lagging replica by default.
pub const DEFAULT_MAX_LOG_ENTRIES: u64 = 1000;

/// Appends `entry` to `table`'s log and applies what it says to the part
/// records: GET_PART adds a part (refused if it overlaps one), MERGE_PARTS
/// marks its sources (refused unless the merged range holds exactly them),
/// DROP_RANGE removes parts. Answers the entry's index.
pub(super) fn append(
    tx: &mut Tx<'_>,
    table: &str,
    entry: LogEntry,
    now_ms: u64,
) -> ApplyResult<u64> {
    let mut t = tx.table(table)?;
    let index = t.next_log;
    t.next_log += 1;
    match &entry {
        LogEntry::GetPart { part, holders, .. } => {
            let key = item_key(table, part);
            if tx.s.parts.contains_key(&key) {
                return Err(part_exists(table, part));
            }
            let new = parse_range(part).ok_or_else(|| ApplyError::BadPartName(part.clone()))?;
            if let Some((other, _)) =
                tx.s.parts_of(table)
                    .into_iter()
                    .find(|(n, _)| parse_range(n).is_some_and(|r| r.overlaps(&new)))
            {
                return Err(ApplyError::PartOverlaps {
                    table: table.to_string(),
                    part: part.clone(),
                    other,
                });
            }
            if let Some(blocks) = t.inflight_blocks.get_mut(&new.partition) {
                blocks.remove(&new.min);
                if blocks.is_empty() {
                    t.inflight_blocks.remove(&new.partition);
                }
            }
            tx.set_part(
                key,
                Some(PartMeta {
                    holders: holders.clone(),
                    ..Default::default()
                }),
            );
        }
        LogEntry::MergeParts { parts, new_part } => {
            merge_parts(tx, &t, table, parts, new_part, now_ms)?
        }
        LogEntry::DropRange {
            partition,
            max_block,
        } => {
            let dropped: Vec<String> =
                tx.s.parts_of(table)
                    .into_iter()
                    .filter(|(name, _)| part_in_range(name, partition, *max_block))
                    .map(|(name, _)| item_key(table, &name))
                    .collect();
            for k in dropped {
                tx.set_part(k, None);
            }
        }
        _ => {}
    }
    if t.replicas.is_empty() {
        // Nobody will read it: keep the index moving, store nothing.
        tx.set_table(table.to_string(), Some(t));
        return Ok(index);
    }
    // An inactive replica this far behind would pin the log forever: mark it
    // lost (it clones when it returns) and let the log be trimmed.
    let max = match t.max_log_entries {
        0 => DEFAULT_MAX_LOG_ENTRIES,
        n => n,
    };
    let mut marked = false;
    for r in t.replicas.values_mut() {
        if !r.is_lost
            && t.next_log.saturating_sub(r.log_pointer) > max
            && !tx.s.lease_active(r.node_id, now_ms)
        {
            r.is_lost = true;
            marked = true;
        }
    }
    tx.set_table(table.to_string(), Some(t));
    tx.set_log(index_key(table, index), Some(entry));
    if marked {
        trim(tx, table)?;
    }
    Ok(index)
}

/// Merges never overlap: every source must be in the current set, and the
/// merged range may hold nothing but the sources — no other part, no block
/// an insert is still committing.
fn merge_parts(
    tx: &mut Tx<'_>,
    t: &TableMeta,
    table: &str,
    parts: &[String],
    new_part: &str,
    now_ms: u64,
) -> ApplyResult<()> {
    let new_key = item_key(table, new_part);
    if tx.s.parts.contains_key(&new_key) {
        return Err(part_exists(table, new_part));
    }
    let range =
        parse_range(new_part).ok_or_else(|| ApplyError::BadPartName(new_part.to_string()))?;
    if let Some((other, _)) = tx.s.parts_of(table).into_iter().find(|(n, m)| {
        m.merging_into.is_none()
            && !parts.contains(n)
            && parse_range(n).is_some_and(|r| r.overlaps(&range))
    }) {
        return Err(ApplyError::MergeCoversPart {
            new_part: new_part.to_string(),
            other,
        });
    }
    if let Some(block) = t.inflight_blocks.get(&range.partition).and_then(|blocks| {
        blocks
            .iter()
            .find(|(b, at)| {
                **b >= range.min
                    && **b <= range.max
                    && now_ms.saturating_sub(**at) < INFLIGHT_BLOCK_MS
            })
            .map(|(b, _)| *b)
    }) {
        return Err(ApplyError::MergeCoversInflight {
            new_part: new_part.to_string(),
            block,
        });
    }
    let mut quorum = 0;
    for p in parts {
        let key = item_key(table, p);
        let mut meta = match tx.s.parts.get(&key) {
            Some(m) if m.merging_into.is_none() => m.clone(),
            Some(m) => {
                return Err(ApplyError::AlreadyMerging {
                    table: table.to_string(),
                    part: p.clone(),
                    into: m.merging_into.clone().unwrap_or_default(),
                })
            }
            None => {
                return Err(ApplyError::PartMissing {
                    table: table.to_string(),
                    part: p.clone(),
                })
            }
        };
        meta.merging_into = Some(new_part.to_string());
        quorum = quorum.max(meta.quorum);
        tx.set_part(key, Some(meta));
    }
    tx.set_part(
        new_key,
        Some(PartMeta {
            quorum,
            merged_from: parts.to_vec(),
            ..Default::default()
        }),
    );
    Ok(())
}

fn part_exists(table: &str, part: &str) -> ApplyError {
    ApplyError::PartExists {
        table: table.to_string(),
        part: part.to_string(),
    }
}

/// The first log index still kept: entries below every non-lost replica's
/// pointer are trimmed.
pub(super) fn retained_from(t: &TableMeta) -> u64 {
    t.replicas
        .values()
        .filter(|r| !r.is_lost)
        .map(|r| r.log_pointer)
        .min()
        .unwrap_or(t.next_log)
}

/// Removes the log entries every replica has executed.
pub(super) fn trim(tx: &mut Tx<'_>, table: &str) -> ApplyResult<()> {
    let t = tx.table(table)?;
    let min = retained_from(&t);
    let (start, _) = table_range(table);
    let done: Vec<String> =
        tx.s.log
            .range(start..index_key(table, min))
            .map(|(k, _)| k.clone())
            .collect();
    for k in done {
        tx.set_log(k, None);
    }
    Ok(())
}

/// A part's partition and block range, from its name.
struct BlockRange {
    partition: String,
    min: u64,
    max: u64,
}

impl BlockRange {
    fn overlaps(&self, o: &BlockRange) -> bool {
        self.partition == o.partition && self.min <= o.max && o.min <= self.max
    }
}

fn parse_range(name: &str) -> Option<BlockRange> {
    let mut it = name.rsplitn(4, '_');
    let _level = it.next()?;
    let max = it.next()?.parse().ok()?;
    let min = it.next()?.parse().ok()?;
    let partition = it.next()?.to_string();
    Some(BlockRange {
        partition,
        min,
        max,
    })
}

/// Whether part `name` lies in `partition` with all blocks `<= max_block`.
fn part_in_range(name: &str, partition: &str, max_block: u64) -> bool {
    let mut it = name.rsplitn(4, '_');
    let _level = it.next();
    let max = it.next().and_then(|m| m.parse::<u64>().ok());
    let _min = it.next();
    it.next() == Some(partition) && max.is_some_and(|m| m <= max_block)
}
