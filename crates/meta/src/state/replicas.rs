//! Replicas of replicated tables (their log pointers, lost flags) and the
//! nodes' leases, which say which replicas are alive.

use super::*;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaMeta {
    pub node_id: NodeId,
    pub address: String,
    /// The replica executed log entries below this index.
    pub log_pointer: u64,
    /// Fell too far behind while inactive; the log was trimmed past it, so
    /// it must clone the current part set instead of replaying the log.
    #[serde(default)]
    pub is_lost: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub address: String,
    pub renewed_ms: u64,
    pub expires_ms: u64,
}

impl Lease {
    /// The one liveness rule: a lease is live strictly before it expires.
    pub fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_ms
    }
}

pub(super) fn add_replica(
    tx: &mut Tx<'_>,
    table: &str,
    replica: &str,
    node_id: NodeId,
    address: &str,
) -> ApplyResult<()> {
    let mut t = tx.table(table)?;
    if t.replicas.contains_key(replica) {
        return Err(ApplyError::ReplicaExists {
            table: table.to_string(),
            replica: replica.to_string(),
        });
    }
    // A new replica starts at the log's head: it clones the current part set.
    let meta = ReplicaMeta {
        node_id,
        address: address.to_string(),
        log_pointer: t.next_log,
        is_lost: false,
    };
    t.replicas.insert(replica.to_string(), meta);
    tx.set_table(table.to_string(), Some(t));
    Ok(())
}

/// Forgets the replica, its holdings, and the log only it still needed.
pub(super) fn remove_replica(tx: &mut Tx<'_>, table: &str, replica: &str) -> ApplyResult<()> {
    let mut t = tx.table(table)?;
    if t.replicas.remove(replica).is_none() {
        return Err(missing(table, replica));
    }
    tx.set_table(table.to_string(), Some(t));
    for (part, mut meta) in tx.s.parts_of(table) {
        if meta.holders.remove(replica) {
            tx.set_part(item_key(table, &part), Some(meta));
        }
    }
    log::trim(tx, table)
}

/// Moves the pointer forward only (a stale report never rewinds it).
pub(super) fn set_log_pointer(
    tx: &mut Tx<'_>,
    table: &str,
    replica: &str,
    pointer: u64,
) -> ApplyResult<()> {
    let mut t = tx.table(table)?;
    let end = t.next_log;
    let r = t
        .replicas
        .get_mut(replica)
        .ok_or_else(|| missing(table, replica))?;
    if pointer > end {
        return Err(ApplyError::PointerPastEnd { pointer, end });
    }
    r.log_pointer = r.log_pointer.max(pointer);
    tx.set_table(table.to_string(), Some(t));
    log::trim(tx, table)
}

/// A lost replica cloned the part set as of `pointer` and follows the log again.
pub(super) fn replica_recovered(
    tx: &mut Tx<'_>,
    table: &str,
    replica: &str,
    pointer: u64,
) -> ApplyResult<()> {
    let mut t = tx.table(table)?;
    let oldest = log::retained_from(&t);
    let end = t.next_log;
    if pointer < oldest || pointer > end {
        return Err(ApplyError::PointerOutsideLog {
            pointer,
            oldest,
            end,
        });
    }
    let r = t
        .replicas
        .get_mut(replica)
        .ok_or_else(|| missing(table, replica))?;
    r.is_lost = false;
    r.log_pointer = pointer;
    tx.set_table(table.to_string(), Some(t));
    Ok(())
}

pub(super) fn renew_lease(
    tx: &mut Tx<'_>,
    node_id: NodeId,
    address: &str,
    ttl_ms: u64,
    now_ms: u64,
) {
    let lease = Lease {
        address: address.to_string(),
        renewed_ms: now_ms,
        expires_ms: now_ms.saturating_add(ttl_ms),
    };
    tx.set_lease(node_id, Some(lease));
}

fn missing(table: &str, replica: &str) -> ApplyError {
    ApplyError::ReplicaMissing {
        table: table.to_string(),
        replica: replica.to_string(),
    }
}
