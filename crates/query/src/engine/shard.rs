//! This node as a shard of other nodes' Distributed inserts: rows written
//! into (or only staged on) a local table by name.

use super::*;

impl Engine {
    /// Writes `batches` (columns by name) into the local table
    /// `database.table` under `settings` (quorum, deduplication): one
    /// shard's rows of an INSERT into a Distributed table.
    pub async fn insert_batches(
        self: &Arc<Self>,
        database: &str,
        table: &str,
        batches: Vec<RecordBatch>,
        settings: &Settings,
    ) -> Result<u64> {
        let Some((t, names)) = self.shard_target(database, table, &batches)? else {
            return Ok(0);
        };
        let session = self.shard_session(database, settings);
        let settings = session.settings.clone();
        session.write_batches(&t, &names, batches, &settings).await
    }

    /// Like [`insert_batches`](Self::insert_batches) into a replicated
    /// table, but only staged on its replicas (with the settings'
    /// `insert_quorum`): the caller commits the returned insert's op, in one
    /// coordinator transaction with other shards' (an atomic Distributed
    /// insert). `None`: nothing to insert.
    pub async fn stage_batches(
        self: &Arc<Self>,
        database: &str,
        table: &str,
        batches: Vec<RecordBatch>,
        settings: &Settings,
    ) -> Result<Option<qh_replication::StagedInsert>> {
        let Some((t, names)) = self.shard_target(database, table, &batches)? else {
            return Ok(None);
        };
        let Some(replica) = self.replica_of(&t) else {
            return Err(QueryError::other(
                ErrorCode::NOT_IMPLEMENTED,
                format!("{database}.{table} is not replicated on this node: an atomic Distributed insert needs Replicated*MergeTree local tables on every shard"),
            ));
        };
        let session = self.shard_session(database, settings);
        let opts = insert::insert_options(&session.settings)?;
        let txn = session.prepare_txn(&t, &names, batches).await?;
        Ok(replica.stage_insert(txn.into_prepared(), &opts).await?)
    }

    /// Whether `database.table` here is a replicated table (a Distributed
    /// insert over such local tables commits all shards at once).
    pub fn is_replicated(&self, database: &str, table: &str) -> bool {
        self.catalog
            .table(database, table)
            .is_ok_and(|t| self.replica_of(&t).is_some())
    }

    /// The local table a shard's rows go to, and their column names.
    fn shard_target(
        &self,
        database: &str,
        table: &str,
        batches: &[RecordBatch],
    ) -> Result<Option<(Arc<MergeTreeTable>, Vec<String>)>> {
        let t = self.catalog.table(database, table)?;
        if matches!(t.meta().engine, EngineKind::Distributed { .. }) {
            return Err(QueryError::other(
                ErrorCode::NOT_IMPLEMENTED,
                format!("{database}.{table} is a Distributed table: a Distributed table's shards must hold local tables"),
            ));
        }
        let Some(first) = batches.first() else {
            return Ok(None);
        };
        let names: Vec<String> = first
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for n in &names {
            if t.meta().column(n).is_none() {
                return Err(QueryError::NoSuchColumn(format!(
                    "No such column {n} in table {database}.{table}"
                )));
            }
        }
        Ok(Some((t, names)))
    }

    fn shard_session(self: &Arc<Self>, database: &str, settings: &Settings) -> Session {
        let mut session = self.session();
        session.settings = self.default_settings.merged_with(settings);
        session.database = database.to_string();
        session
    }
}
