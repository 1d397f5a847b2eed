//! The state machine: [`MetaState`] in memory, made durable by the Raft log
//! plus snapshots stored in sled (tree `snapshot`). On start the last snapshot
//! is loaded and openraft re-applies the committed log after it, so the state
//! is never written twice per command; a snapshot is flushed before openraft
//! may purge the log it covers.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder,
    Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::command::BatchResponse;
use crate::state::MetaState;
use crate::{NodeId, TypeConfig};

type Membership = StoredMembership<NodeId, openraft::BasicNode>;

/// What a snapshot holds (and what the in-memory machine is).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: Membership,
    pub state: MetaState,
}

struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    data: Vec<u8>,
}

/// Shared by openraft (which applies) and the coordinator handle (which reads).
pub struct Machine {
    pub applied: RwLock<Applied>,
    /// Applied log index, for watchers.
    pub notify: watch::Sender<u64>,
    /// The coordinator's time, kept from the applied state's clock.
    pub clock: crate::clock::Clock,
    snapshots: sled::Tree,
    db: sled::Db,
    snapshot_seq: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct StateMachineStore(pub Arc<Machine>);

fn sm_err(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageError::IO {
        source: StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::new(&e)),
    }
}

fn snap_err(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageError::IO {
        source: StorageIOError::new(ErrorSubject::Snapshot(None), verb, AnyError::new(&e)),
    }
}

const CURRENT_META: &[u8] = b"current_meta";
const CURRENT_DATA: &[u8] = b"current_data";

impl StateMachineStore {
    pub fn open(db: &sled::Db) -> Result<Self, String> {
        let snapshots = db.open_tree("snapshot").map_err(|e| e.to_string())?;
        let mut applied = Applied::default();
        if let Some(data) = snapshots.get(CURRENT_DATA).map_err(|e| e.to_string())? {
            applied = serde_json::from_slice(&data)
                .map_err(|e| format!("corrupt coordinator snapshot: {e}"))?;
        }
        let index = applied.last_applied.map(|l| l.index).unwrap_or(0);
        let (notify, _) = watch::channel(index);
        let clock = crate::clock::Clock::new(applied.state.clock_ms());
        Ok(StateMachineStore(Arc::new(Machine {
            applied: RwLock::new(applied),
            notify,
            clock,
            snapshots,
            db: db.clone(),
            snapshot_seq: Default::default(),
        })))
    }

    fn load_current(&self) -> Result<Option<StoredSnapshot>, StorageError<NodeId>> {
        let read = |k: &[u8]| {
            self.0
                .snapshots
                .get(k)
                .map_err(|e| snap_err(ErrorVerb::Read, e))
        };
        match (read(CURRENT_META)?, read(CURRENT_DATA)?) {
            (Some(meta), Some(data)) => {
                let meta =
                    serde_json::from_slice(&meta).map_err(|e| snap_err(ErrorVerb::Read, e))?;
                Ok(Some(StoredSnapshot {
                    meta,
                    data: data.to_vec(),
                }))
            }
            _ => Ok(None),
        }
    }

    async fn store_current(&self, stored: &StoredSnapshot) -> Result<(), StorageError<NodeId>> {
        let meta = serde_json::to_vec(&stored.meta).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        let mut batch = sled::Batch::default();
        batch.insert(CURRENT_META, meta);
        batch.insert(CURRENT_DATA, stored.data.as_slice());
        self.0
            .snapshots
            .apply_batch(batch)
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        self.0
            .db
            .flush_async()
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (data, last_applied, membership) = {
            let a = self.0.applied.read();
            let data = serde_json::to_vec(&*a).map_err(|e| sm_err(ErrorVerb::Read, e))?;
            (data, a.last_applied, a.membership.clone())
        };
        let seq = self
            .0
            .snapshot_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{seq}", l.leader_id, l.index),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        self.store_current(&stored).await?;
        tracing::info!(
            index = last_applied.map(|l| l.index),
            bytes = data.len(),
            "coordinator snapshot built"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        let a = self.0.applied.read();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BatchResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let last = {
            let mut a = self.0.applied.write();
            for entry in entries {
                a.last_applied = Some(entry.log_id);
                let resp = match entry.payload {
                    EntryPayload::Blank => BatchResponse::default(),
                    EntryPayload::Normal(batch) => {
                        BatchResponse(batch.0.iter().map(|r| a.state.apply(r)).collect())
                    }
                    EntryPayload::Membership(m) => {
                        a.membership = StoredMembership::new(Some(entry.log_id), m);
                        BatchResponse::default()
                    }
                };
                out.push(resp);
            }
            self.0.clock.observe(a.state.clock_ms());
            a.last_applied.map(|l| l.index).unwrap_or(0)
        };
        self.0.notify.send_replace(last);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let applied: Applied =
            serde_json::from_slice(&data).map_err(|e| snap_err(ErrorVerb::Read, e))?;
        self.store_current(&StoredSnapshot {
            meta: meta.clone(),
            data,
        })
        .await?;
        let index = applied.last_applied.map(|l| l.index).unwrap_or(0);
        self.0.clock.observe(applied.state.clock_ms());
        *self.0.applied.write() = applied;
        self.0.notify.send_replace(index);
        tracing::info!(index, "coordinator snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.load_current()?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
