//! Ops this version never proposes, kept so that a Raft log written before
//! stage-then-commit inserts (commit bf2441b), whose inserts were
//! `AllocateBlock` + `AppendLog` + `AddDedupBlock`, still decodes and
//! replays to the same state. Removing them would make such a log
//! unreadable (an unknown enum variant); they can go once no cluster runs
//! a log from before that version (a snapshot taken since covers it).

use super::*;

/// `Op::AllocateBlock`: the partition's next block number, held back from
/// merges until its part is committed or [`INFLIGHT_BLOCK_MS`] passed.
pub(super) fn allocate_block(
    tx: &mut Tx<'_>,
    table: &str,
    partition: &str,
    now_ms: u64,
) -> ApplyResult<u64> {
    let mut t = tx.table(table)?;
    let n = t.block_numbers.get(partition).copied().unwrap_or(0) + 1;
    t.block_numbers.insert(partition.to_string(), n);
    let inflight = t.inflight_blocks.entry(partition.to_string()).or_default();
    inflight.retain(|_, at| now_ms.saturating_sub(*at) < INFLIGHT_BLOCK_MS);
    inflight.insert(n, now_ms);
    tx.set_table(table.to_string(), Some(t));
    Ok(n)
}
