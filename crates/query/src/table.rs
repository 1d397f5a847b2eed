//! One interface over a node's tables for the statements that change them.
//! A local MergeTree acts at once; a replicated one goes through the
//! coordinator's log and waits (up to the statement's `receive_timeout`)
//! until this replica applied the change. Statements hold a [`Table`] and no
//! longer ask which kind it is; a Distributed table will be one more kind.

use std::sync::Arc;
use std::time::Duration;

use qh_replication::{InsertOptions, Replica};
use qh_storage::{Catalog, InsertTxn, KeyEvaluator, MergeTreeTable, TableMeta};
use qh_types::{ErrorCode, PartName};

use crate::error::{QueryError, Result};

#[derive(Clone)]
pub enum Table {
    /// `MergeTree` and its variants on this node only.
    Local(Arc<MergeTreeTable>),
    /// `Replicated*MergeTree`: this node's replica of it.
    Replicated {
        data: Arc<MergeTreeTable>,
        replica: Arc<Replica>,
    },
}

fn join_error(e: tokio::task::JoinError) -> QueryError {
    QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string())
}

impl Table {
    /// The parts on this node (scans, CHECK TABLE, system tables).
    pub fn data(&self) -> &Arc<MergeTreeTable> {
        match self {
            Table::Local(t) | Table::Replicated { data: t, .. } => t,
        }
    }

    /// The replica, for the commands that only replicated tables have
    /// (`SYSTEM SYNC REPLICA`, ...).
    pub fn replica(&self) -> Option<&Arc<Replica>> {
        match self {
            Table::Local(_) => None,
            Table::Replicated { replica, .. } => Some(replica),
        }
    }

    pub fn meta(&self) -> TableMeta {
        self.data().meta()
    }

    pub async fn truncate(&self, wait: Duration) -> Result<()> {
        match self {
            Table::Local(t) => Ok(t.truncate()?),
            Table::Replicated { replica, .. } => Ok(replica.drop_partitions(None, wait).await?),
        }
    }

    pub async fn drop_partition(&self, partition_id: &str, wait: Duration) -> Result<()> {
        match self {
            Table::Local(t) => {
                t.drop_partition(partition_id)?;
                Ok(())
            }
            Table::Replicated { replica, .. } => {
                Ok(replica.drop_partitions(Some(partition_id), wait).await?)
            }
        }
    }

    /// A new schema (`ALTER ... ADD/DROP COLUMN`); `keys` are compiled for it.
    pub async fn alter(
        &self,
        meta: TableMeta,
        keys: Arc<dyn KeyEvaluator>,
        wait: Duration,
    ) -> Result<()> {
        match self {
            Table::Local(t) => Ok(t.alter(meta, keys)?),
            Table::Replicated { replica, .. } => Ok(replica.alter(&meta, wait).await?),
        }
    }

    pub async fn optimize(
        &self,
        partition_id: Option<String>,
        final_: bool,
        wait: Duration,
    ) -> Result<()> {
        match self {
            Table::Local(t) => {
                let t = Arc::clone(t);
                tokio::task::spawn_blocking(move || t.optimize(partition_id.as_deref(), final_))
                    .await
                    .map_err(join_error)??;
                Ok(())
            }
            Table::Replicated { replica, .. } => Ok(replica
                .optimize(partition_id.as_deref(), final_, wait)
                .await?),
        }
    }

    /// `SYSTEM STOP|START MERGES`.
    pub fn set_merges_stopped(&self, stop: bool) {
        self.data().set_merges_stopped(stop);
        if let Some(r) = self.replica() {
            r.set_merges_stopped(stop);
        }
    }

    /// A part that failed its checksums: a replica fetches it again.
    pub fn part_is_broken(&self, name: &PartName) {
        if let Some(r) = self.replica() {
            r.part_is_broken(name);
        }
    }

    /// Makes an insert's parts visible: at once for a local table, through
    /// the coordinator (with `opts`' quorum and deduplication) for a
    /// replicated one. Returns the rows committed.
    pub async fn commit_insert(
        &self,
        txn: InsertTxn,
        opts: &InsertOptions,
        catalog: &Arc<Catalog>,
    ) -> Result<u64> {
        let rows = txn.rows();
        match self {
            Table::Local(_) => {
                tokio::task::spawn_blocking(move || txn.commit())
                    .await
                    .map_err(join_error)??;
                catalog.notify_merges();
                Ok(rows)
            }
            Table::Replicated { replica, .. } => {
                Ok(replica.commit_insert(txn.into_prepared(), opts).await?)
            }
        }
    }
}
