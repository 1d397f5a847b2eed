//! The single-node engine and its sessions: executes one statement at a
//! time against the catalog, DataFusion and the input formats. This module
//! dispatches by statement kind and runs DDL and SHOW; SELECTs are in
//! [`select`], INSERTs in [`insert`], SYSTEM and KILL QUERY in [`system`].

mod access;
mod async_insert;
mod computed_columns;
mod definition;
mod insert;
mod modify_column;
mod mutations;
pub mod on_cluster;
mod privileges;
mod select;
mod session;
mod shard;
mod state;
mod system;
mod temporary;
mod user_limits;
mod views;

pub use self::session::Session;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, StringArray};
use datafusion::arrow::compute::{cast_with_options, concat_batches, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::memory::MemoryCatalogProviderList;
use datafusion::catalog::CatalogProviderList;
use datafusion::dataframe::DataFrame;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement as SqlStatement};
use futures::StreamExt;
use parking_lot::Mutex;
use qh_replication::{InsertOptions, Quorum, Replica, Replication};
use qh_storage::{
    BackgroundMerges, Catalog, EngineKind, InsertTxn, KeyEvaluator, MergeTreeTable, StorageError,
    TableMeta,
};
use qh_types::formats::FormatOptions;
use qh_types::{ChType, ErrorCode, Settings};
use tracing::Instrument;

use self::state::base_state;
use crate::complexity::AstLimits;
use crate::ddl;
use crate::error::{QueryError, Result};
use crate::functions;
use crate::input::{read_input, InputFormat};
use crate::keys::{compile, CompiledKeys};
use crate::limits::{
    without_result_limits, LimitedReader, Overflow, QueryLimits, QueryMemoryPool, ServerMemory,
};
use crate::provider::{QhCatalog, QueryContext, QueryStats};
use crate::statement::SystemCommand;
use crate::statement::{
    parse_statement, AlterOp, ColumnSpec, InsertSource, KillMode, Statement, TableRef,
};
use crate::table::Table;

/// Where INSERT ... FORMAT data comes from when it is not inline.
pub type Input = Option<Box<dyn Read + Send>>;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Run the background merge thread (off in some tests).
    pub background_merges: bool,
    /// DataFusion partitions per query; defaults to the number of cores.
    pub threads: usize,
    /// The node's coordinator (`system.coordinator`); None for `local`.
    pub coordinator: Option<Arc<qh_meta::Coordinator>>,
    /// This node as a replica host (needs `coordinator`): Replicated* tables.
    pub replication: Option<qh_replication::ReplicationConfig>,
    /// Settings every session starts with (the config's default profile).
    pub default_settings: Settings,
    /// Clusters the config defines (beside `default` and `sharded`).
    pub clusters: crate::clusters::Clusters,
    /// Users the config defines (read-only to SQL) and where the built-in
    /// `default` may connect from.
    pub access: qh_access::AccessConfig,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            background_merges: true,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            coordinator: None,
            replication: None,
            default_settings: Settings::new(),
            clusters: Default::default(),
            access: Default::default(),
        }
    }
}

/// One node's query engine over its data directory.
pub struct Engine {
    catalog: Arc<Catalog>,
    base: SessionState,
    merges: Mutex<Option<BackgroundMerges>>,
    coordinator: Option<Arc<qh_meta::Coordinator>>,
    replication: Option<Arc<Replication>>,
    default_settings: Settings,
    processes: Arc<crate::processes::ProcessList>,
    clusters: crate::clusters::Clusters,
    /// What every query's memory is charged against beside its own limit.
    server_memory: Arc<ServerMemory>,
    /// Shard blocks staged for other nodes' atomic Distributed inserts.
    pending_inserts: crate::distributed::insert::PendingInserts,
    /// Buffers of `async_insert = 1` inserts.
    async_inserts: Arc<async_insert::AsyncInserts>,
    traffic: crate::distributed::Traffic,
    /// Users, in the coordinator; None for `local` (no logins there).
    access: Option<Arc<qh_access::Access>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("catalog", &self.catalog)
            .finish()
    }
}

/// Counters and timing of one statement.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub read_rows: u64,
    pub read_bytes: u64,
    pub granules_read: u64,
    pub granules_total: u64,
    pub written_rows: u64,
    pub elapsed: Duration,
    /// The id the statement ran under (`system.processes`, `KILL QUERY`).
    pub query_id: String,
}

/// The outcome of one statement: a result set (possibly empty) and counters.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// The `WITH TOTALS` row, when the statement asked for one.
    pub totals: Option<RecordBatch>,
    /// `FORMAT x` given in the statement, if any.
    pub format: Option<String>,
    /// The statement's `output_format_*` settings, for whoever encodes it.
    pub format_options: FormatOptions,
    pub summary: Summary,
}

impl QueryResult {
    fn empty() -> QueryResult {
        QueryResult {
            schema: Arc::new(Schema::empty()),
            batches: vec![],
            totals: None,
            format: None,
            format_options: FormatOptions::default(),
            summary: Summary::default(),
        }
    }

    /// Whether the statement produces a result set to print.
    pub fn has_result_set(&self) -> bool {
        !self.schema.fields().is_empty()
    }

    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

impl Engine {
    /// Opens the engine over `<data_dir>/data`, loading every table.
    pub fn open(data_dir: &Path, opts: EngineOptions) -> Result<Arc<Engine>> {
        let base = base_state(opts.threads)?;
        let keys_state = base.clone();
        let factory: qh_storage::KeysFactory = Arc::new(move |meta: &TableMeta| {
            CompiledKeys::new(&keys_state, meta)
                .map(|k| Arc::new(k) as Arc<dyn KeyEvaluator>)
                .map_err(crate::keys::to_storage)
        });
        let catalog = Arc::new(Catalog::open(&data_dir.join("data"), factory)?);
        let merges = opts.background_merges.then(|| catalog.start_merges());
        let replication = match (&opts.coordinator, opts.replication) {
            (Some(c), Some(cfg)) => {
                Some(Replication::start(Arc::clone(&catalog), Arc::clone(c), cfg))
            }
            _ => None,
        };
        let server_memory = Arc::new(ServerMemory::from_settings(&opts.default_settings)?);
        let processes = Arc::new(crate::processes::ProcessList::with_max_concurrent(
            opts.default_settings
                .uint("max_concurrent_queries")
                .map_err(QueryError::BadArguments)?,
        ));
        let access = opts.coordinator.as_ref().map(|c| {
            Arc::new(qh_access::Access::with_config(
                Arc::clone(c),
                opts.access.clone(),
            ))
        });
        Ok(Arc::new(Engine {
            access,
            server_memory,
            pending_inserts: Default::default(),
            async_inserts: Arc::new(async_insert::AsyncInserts::new(Arc::clone(&catalog))),
            traffic: Default::default(),
            catalog,
            base,
            merges: Mutex::new(merges),
            coordinator: opts.coordinator,
            replication,
            default_settings: opts.default_settings,
            processes,
            clusters: opts.clusters,
        }))
    }

    /// A DataFusion session for one query: the node's functions, `settings`'
    /// parallelism and memory limit, `database` as the default schema and
    /// `stats` counting what the scans read. No tables yet (the caller adds
    /// its catalog).
    pub fn query_state(
        &self,
        settings: &Settings,
        database: &str,
        stats: &Arc<QueryStats>,
    ) -> Result<SessionState> {
        let mut config = self
            .base
            .config()
            .clone()
            .with_default_catalog_and_schema("qh", database);
        if let Ok(n) = settings.get_u64("max_threads", 0) {
            if n > 0 {
                config = config.with_target_partitions(n as usize);
            }
        }
        let limits = QueryLimits::from_settings(settings)?;
        let flag =
            |name: &str| -> Result<u64> { settings.uint(name).map_err(QueryError::BadArguments) };
        let read = crate::read::ReadOptions {
            prewhere: flag("optimize_move_to_prewhere")? != 0,
            lazy: flag("query_plan_optimize_lazy_materialization")? != 0,
            lazy_max_rows: flag("query_plan_max_limit_for_lazy_materialization")?,
            read_in_order: flag("optimize_read_in_order")? != 0,
        };
        let config = config
            .with_extension(Arc::clone(stats))
            .with_extension(Arc::new(read));
        let runtime = RuntimeEnvBuilder::from_runtime_env(self.base.runtime_env())
            .with_memory_pool(Arc::new(QueryMemoryPool::new(
                limits.max_memory_usage,
                Arc::clone(&self.server_memory),
            )))
            .build_arc()?;
        let mut state = SessionStateBuilder::new_from_existing(self.base.clone())
            .with_config(config)
            .with_runtime_env(runtime);
        // ClickHouse counts distinct values with a set per group unless
        // told to rewrite; DataFusion always rewrites a lone DISTINCT
        // aggregate into a grouping by its argument.
        if flag("count_distinct_optimization")? == 0 {
            let rules = self
                .base
                .optimizer()
                .rules
                .iter()
                .filter(|r| r.name() != "single_distinct_aggregation_to_group_by")
                .cloned()
                .collect();
            state = state.with_optimizer_rules(rules);
        }
        Ok(state.build())
    }

    /// The node's base DataFusion state (functions, configuration).
    pub fn base_state(&self) -> &SessionState {
        &self.base
    }

    /// The node's replicated tables, when it runs with a coordinator.
    pub fn replication(&self) -> Option<&Arc<Replication>> {
        self.replication.as_ref()
    }

    fn replication_for(&self, what: &str) -> Result<&Arc<Replication>> {
        self.replication.as_ref().ok_or_else(|| {
            QueryError::other(
                ErrorCode::NOT_IMPLEMENTED,
                format!("{what} needs a node with the built-in coordinator (quorumhouse server / cluster up), not quorumhouse local"),
            )
        })
    }

    /// The replica of `table`, when it is a replicated table.
    fn replica_of(&self, table: &MergeTreeTable) -> Option<Arc<Replica>> {
        self.replication.as_ref()?.replica_of(table)
    }

    /// `data` as the statements see it: local, or this node's replica.
    pub fn table_of(&self, data: Arc<MergeTreeTable>) -> Table {
        match self.replica_of(&data) {
            Some(replica) => Table::Replicated { data, replica },
            None => Table::Local(data),
        }
    }

    /// Bytes exchanged for Distributed queries.
    pub fn distributed_traffic(&self) -> &crate::distributed::Traffic {
        &self.traffic
    }

    pub(crate) fn pending_inserts(&self) -> &crate::distributed::insert::PendingInserts {
        &self.pending_inserts
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Every cluster (`system.clusters`, `ON CLUSTER`) over the coordinator's
    /// current voters; none without a coordinator.
    pub fn clusters(&self) -> BTreeMap<String, crate::clusters::Layout> {
        match &self.coordinator {
            Some(c) => {
                let voters: Vec<u64> = c.status().voters.keys().copied().collect();
                self.clusters.all(&voters)
            }
            None => BTreeMap::new(),
        }
    }

    pub fn cluster_config(&self) -> &crate::clusters::Clusters {
        &self.clusters
    }

    /// The statements running on this node (`system.processes`).
    pub fn processes(&self) -> &Arc<crate::processes::ProcessList> {
        &self.processes
    }

    pub fn coordinator(&self) -> Option<&Arc<qh_meta::Coordinator>> {
        self.coordinator.as_ref()
    }

    /// Users and the check of credentials; None for `local`.
    pub fn access(&self) -> Option<&Arc<qh_access::Access>> {
        self.access.as_ref()
    }

    pub fn session(self: &Arc<Self>) -> Session {
        Session {
            engine: Arc::clone(self),
            settings: self.default_settings.clone(),
            database: "default".into(),
            progress: Arc::new(QueryStats::default()),
            next_query_id: String::new(),
            macro_context: BTreeMap::new(),
            current_query: Default::default(),
            temporary: BTreeMap::new(),
            number: temporary::next_session_number(),
            user: "default".into(),
            checked: false,
            profile: Default::default(),
            baseline: self.default_settings.clone(),
            peer: None,
            charged: None,
        }
    }

    /// Stops the replication queues (before the coordinator stops).
    /// Writes what async inserts buffered (before replication stops).
    pub async fn flush_async_inserts(&self) {
        self.async_inserts.shutdown().await;
    }

    pub async fn shutdown_replication(&self) {
        if let Some(r) = &self.replication {
            r.shutdown().await;
        }
    }

    /// Stops background work (merges); called on shutdown.
    pub fn shutdown(&self) {
        self.merges.lock().take();
    }
}

pub(crate) fn result_of(
    schema: Vec<(&str, DataType)>,
    cols: Vec<ArrayRef>,
    format: Option<String>,
) -> Result<QueryResult> {
    let schema = Arc::new(Schema::new(
        schema
            .into_iter()
            .map(|(n, t)| Field::new(n, t, false))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols)?;
    Ok(QueryResult {
        schema,
        batches: vec![batch],
        totals: None,
        format,
        format_options: FormatOptions::default(),
        summary: Summary::default(),
    })
}

/// Runs `f` with at least [`LARGE_STACK`] bytes of stack left, on a fresh
/// segment when the thread's own (a tokio worker's 2 MiB) has less. For the
/// passes over a parsed statement that recurse once per AST level.
pub(crate) fn on_large_stack<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(LARGE_STACK, 2 * LARGE_STACK, f)
}

const LARGE_STACK: usize = 32 << 20;
