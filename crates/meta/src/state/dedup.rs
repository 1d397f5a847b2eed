//! Block ids of recent inserts per table, so a retried insert is answered
//! with the part the first attempt wrote instead of a second copy.

use super::*;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupBlock {
    pub part: String,
    pub created_ms: u64,
    pub seq: u64,
}

/// How many ids a table keeps, and for how long (ClickHouse's
/// `replicated_deduplication_window[_seconds]`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    count: u64,
    seconds: u64,
}

impl Window {
    pub(super) fn new(count: u64, seconds: u64) -> Window {
        Window { count, seconds }
    }
}

/// Remembers `block_id` → `part`, then trims the table's ids to the last
/// `window.count` and to those younger than `window.seconds`.
pub(super) fn add_block(
    tx: &mut Tx<'_>,
    table: &str,
    block_id: &str,
    part: &str,
    window: Window,
    now_ms: u64,
) -> ApplyResult<()> {
    let mut t = tx.table(table)?;
    let key = item_key(table, block_id);
    if tx.s.dedup.contains_key(&key) {
        return Err(ApplyError::BlockExists(block_id.to_string()));
    }
    let seq = t.next_dedup_seq;
    t.next_dedup_seq += 1;
    t.dedup_count += 1;
    tx.set_dedup(
        key,
        Some(DedupBlock {
            part: part.to_string(),
            created_ms: now_ms,
            seq,
        }),
    );
    tx.set_dedup_order(index_key(table, seq), Some(block_id.to_string()));
    let min_created = now_ms.saturating_sub(window.seconds.saturating_mul(1000));
    let (start, end) = table_range(table);
    let order: Vec<(String, String)> =
        tx.s.dedup_order
            .range(start..end)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    for (order_key, old_id) in order {
        let old_key = item_key(table, &old_id);
        let too_old =
            tx.s.dedup
                .get(&old_key)
                .is_some_and(|b| b.created_ms < min_created);
        if t.dedup_count <= window.count && !too_old {
            break;
        }
        tx.set_dedup_order(order_key, None);
        tx.set_dedup(old_key, None);
        t.dedup_count -= 1;
    }
    tx.set_table(table.to_string(), Some(t));
    Ok(())
}
