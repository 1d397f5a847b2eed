//! The single-node engine and its sessions: executes one statement at a
//! time against the catalog, DataFusion and the input formats. This module
//! dispatches by statement kind and runs DDL and SHOW; SELECTs are in
//! [`select`], INSERTs in [`insert`], SYSTEM and KILL QUERY in [`system`].

mod access;
mod async_insert;
mod computed_columns;
mod definition;
mod insert;
pub mod on_cluster;
mod privileges;
mod select;
mod shard;
mod system;
mod temporary;
mod user_limits;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    ArrayRef, RecordBatch, RecordBatchOptions, StringArray, UInt8Array,
};
use datafusion::arrow::compute::{cast_with_options, concat_batches, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::memory::MemoryCatalogProviderList;
use datafusion::catalog::CatalogProviderList;
use datafusion::dataframe::DataFrame;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::prelude::SessionConfig;
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
use tracing::{debug, info_span, Instrument};

use self::system::like_match;
use crate::complexity::AstLimits;
use crate::ddl;
use crate::error::{QueryError, Result};
use crate::functions;
use crate::input::{read_input, InputFormat};
use crate::keys::{compile, CompiledKeys};
use crate::limits::{
    without_result_limits, LimitedReader, Overflow, QueryLimits, QueryMemoryPool, ServerMemory,
};
use crate::provider::{NumbersFunction, QhCatalog, QueryContext, QueryStats};
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

fn base_state(threads: usize) -> Result<SessionState> {
    let mut config = SessionConfig::new()
        .with_target_partitions(threads.max(1))
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(false);
    config.options_mut().sql_parser.enable_ident_normalization = false;
    // ClickHouse sorts NULLs last in both directions unless told otherwise.
    config.options_mut().sql_parser.default_null_ordering = "nulls_last".into();
    // Our scans already come in parallel partitions; a round-robin shuffle on
    // top would only scramble the key order small reads naturally have (and
    // which ClickHouse users see).
    config
        .options_mut()
        .optimizer
        .enable_round_robin_repartition = false;
    // DataFusion's TopK aggregation sizes a table by ten times the LIMIT:
    // `GROUP BY k ORDER BY k LIMIT 5, 18446744073709551615` overflowed (a
    // panic) and a LIMIT of 10^9 would allocate for 10^10 groups.
    config.options_mut().optimizer.enable_topk_aggregation = false;
    // No spilling (ClickHouse's default): a query over its memory limit
    // fails with 241 instead of filling the disk with temporary files.
    let runtime = RuntimeEnvBuilder::new()
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()?;
    // Shard stages are cut from the plan as planned, before any other rule.
    let mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> =
        vec![Arc::new(crate::distributed::rule::DistributedStages)];
    rules.extend(PhysicalOptimizer::new().rules);
    // A top-N reads its sort columns first and the rest for its rows only;
    // placed before the final filter pushdown, which hands the top-N's
    // dynamic filter to the narrowed scan.
    let post = rules
        .iter()
        .position(|r| r.name() == "FilterPushdown(Post)")
        .unwrap_or(rules.len());
    rules.insert(post, Arc::new(crate::read::lazy::LazyTopN));
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rules(rules)
        .with_optimizer_rule(crate::large_filters::rule())
        .build();
    functions::register_all(&mut state)?;
    state.register_udtf("numbers", Arc::new(NumbersFunction));
    state.register_udtf("numbers_mt", Arc::new(NumbersFunction));
    Ok(state)
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
        Ok(SessionStateBuilder::new_from_existing(self.base.clone())
            .with_config(config)
            .with_runtime_env(runtime)
            .build())
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

/// Per-connection state: the current database and `SET` settings.
pub struct Session {
    engine: Arc<Engine>,
    settings: Settings,
    database: String,
    /// Counters of the running statement, readable while it runs (the
    /// server turns them into progress messages).
    progress: Arc<QueryStats>,
    /// The id the next statement runs under (empty: a fresh one).
    next_query_id: String,
    /// Macros an `ON CLUSTER` task brings (`{cluster}`, `{shard}`).
    macro_context: BTreeMap<String, String>,
    /// The running statement's id and text (shard stages carry them).
    current_query: (String, String),
    /// Names this session's temporary tables' hidden names (see
    /// `temporary.rs`), numbered by `number`.
    temporary: BTreeMap<String, String>,
    number: u64,
    /// Who runs this session's statements (`currentUser()`).
    user: String,
    /// Whether its statements are checked against the user's grants: a
    /// client's session is; the node's own (the DDL worker's, `local`'s)
    /// is not.
    checked: bool,
    /// The user's profiles' settings and constraints (`user_limits.rs`).
    profile: qh_access::ResolvedSettings,
    /// The settings the user's sessions start with: the node's defaults
    /// and its profiles' values; a statement's change is checked against them.
    baseline: Settings,
    /// Where the running request came from (quotas keyed by IP address).
    peer: Option<std::net::IpAddr>,
    /// The user the running statement was charged to, for what it used
    /// once it ends (`user_limits.rs`).
    charged: Option<qh_access::UserDef>,
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

impl Session {
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn set_database(&mut self, db: &str) {
        self.database = db.to_string();
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Live counters of the statement being executed.
    pub fn progress(&self) -> Arc<QueryStats> {
        Arc::clone(&self.progress)
    }

    /// Executes one statement (no trailing `;`). `input` feeds
    /// `INSERT ... FORMAT X` without inline data.
    ///
    /// The statement is listed in `system.processes` while it runs and stops
    /// with QUERY_WAS_CANCELLED when `KILL QUERY` names it (or the caller
    /// drops the future, say because the client went away).
    pub async fn execute(&mut self, sql: &str, input: &mut Input) -> Result<QueryResult> {
        let started = Instant::now();
        self.progress.reset();
        let id = std::mem::take(&mut self.next_query_id);
        let mut running = self
            .engine
            .processes
            // A password in CREATE/ALTER USER never shows in system.processes.
            .register(
                &id,
                &crate::statement::mask_secrets(sql),
                &self.user,
                Arc::clone(&self.progress),
            )?;
        let query_id = running.query_id().to_string();
        let outcome = tokio::select! {
            r = self.execute_statement(sql, input, &query_id) => r,
            _ = running.cancelled() => Err(QueryError::other(
                ErrorCode::QUERY_WAS_CANCELLED,
                "Query was cancelled",
            )),
        };
        drop(running);
        self.charge_finish(&outcome, started);
        let mut res = outcome?;
        res.summary.elapsed = started.elapsed();
        res.summary.query_id = query_id;
        debug!(
            elapsed_ms = res.summary.elapsed.as_millis() as u64,
            rows = res.num_rows(),
            "statement done"
        );
        Ok(res)
    }

    /// Macros for the statements of this session beyond the node's own: the
    /// DDL worker sets `{cluster}` and the node's `{shard}` in it.
    pub fn set_macro_context(&mut self, macros: BTreeMap<String, String>) {
        self.macro_context = macros;
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// Runs the next statement under this id (clickhouse-client's
    /// `--query_id`); the id shows in `system.processes` and `KILL QUERY`.
    pub fn set_query_id(&mut self, query_id: &str) {
        self.next_query_id = query_id.to_string();
    }

    async fn execute_statement(
        &mut self,
        sql: &str,
        input: &mut Input,
        query_id: &str,
    ) -> Result<QueryResult> {
        self.current_query = (query_id.to_string(), sql.to_string());
        if let Some((cluster, local_sql)) = crate::statement::split_on_cluster(sql) {
            crate::limits::check_readonly(&self.settings, true, false)?;
            // Every host runs it as the node's own session: check here.
            let (stmt, settings) = self.parse_checked(&local_sql)?;
            self.check_privileges(&stmt)?;
            self.check_setting_changes(&settings)?;
            self.charge_start(&stmt, &settings)?;
            let span = info_span!("query", kind = "on_cluster", cluster = %cluster, query_id);
            return self
                .execute_on_cluster(&cluster, local_sql)
                .instrument(span)
                .await;
        }
        let (stmt, settings) = self.parse_checked(sql)?;
        self.check_privileges(&stmt)?;
        settings.check()?;
        self.check_setting_changes(&settings)?;
        self.charge_start(&stmt, &settings)?;
        let format_options =
            FormatOptions::from_settings(&settings).map_err(QueryError::BadArguments)?;
        let changes_settings = match &stmt {
            Statement::Set(_) => true,
            Statement::Select { settings, .. } => settings.iter().next().is_some(),
            Statement::Insert(ins) => ins.settings.iter().next().is_some(),
            _ => false,
        };
        let reads_only = matches!(
            stmt,
            Statement::Select { .. }
                | Statement::Explain(_)
                | Statement::ShowTables { .. }
                | Statement::ShowDatabases { .. }
                | Statement::Describe { .. }
                | Statement::ShowCreateTable { .. }
                | Statement::Exists { .. }
                | Statement::Use(_)
                | Statement::Set(_)
                | Statement::Access(
                    qh_access::AccessStatement::ShowUsers
                        | qh_access::AccessStatement::ShowCreateUser { .. }
                        | qh_access::AccessStatement::ShowRoles
                        | qh_access::AccessStatement::ShowCreateRole { .. }
                        | qh_access::AccessStatement::ShowGrants { .. }
                        | qh_access::AccessStatement::ShowProfiles
                        | qh_access::AccessStatement::ShowCreateProfile { .. }
                        | qh_access::AccessStatement::ShowQuotas
                        | qh_access::AccessStatement::ShowCreateQuota { .. }
                        | qh_access::AccessStatement::ShowQuota
                )
        );
        crate::limits::check_readonly(&self.settings, !reads_only, changes_settings)?;
        let span = info_span!("query", kind = stmt_kind(&stmt), query_id);
        if let Statement::KillQuery {
            predicate,
            mode,
            format,
        } = stmt
        {
            return self
                .kill_query(*predicate, mode, format, query_id)
                .instrument(span)
                .await;
        }
        let mut res = self.dispatch(stmt, input).instrument(span).await?;
        res.format_options = format_options;
        Ok(res)
    }

    /// Parses one statement and applies ClickHouse's AST limits
    /// (`max_ast_depth`, `max_ast_elements`) from the session's and the
    /// statement's settings, which it returns merged. Runs on a large stack:
    /// the parsed tree of a long operator chain is as deep as the chain
    /// until the check cuts it.
    fn parse_checked(&self, sql: &str) -> Result<(Statement, Settings)> {
        on_large_stack(|| {
            let mut stmt = parse_statement(sql)?;
            let settings = match &stmt {
                Statement::Select { settings, .. } => self.settings.merged_with(settings),
                Statement::Insert(ins) => self.settings.merged_with(&ins.settings),
                Statement::Set(s) => self.settings.merged_with(s),
                _ => self.settings.clone(),
            };
            crate::complexity::check_statement(&mut stmt, AstLimits::parsed(&settings)?)?;
            Ok((stmt, settings))
        })
    }

    /// The database and table `t` names: this session's temporary table
    /// for an unqualified name it has, else in the current database.
    fn table_ref(&self, t: &TableRef) -> (String, String) {
        if t.database.is_none() {
            if let Some(hidden) = self.temporary_table(&t.name) {
                return (
                    qh_storage::TEMPORARY_DATABASE.to_string(),
                    hidden.to_string(),
                );
            }
        }
        (
            t.database.clone().unwrap_or_else(|| self.database.clone()),
            t.name.clone(),
        )
    }

    fn table(&self, t: &TableRef) -> Result<Arc<MergeTreeTable>> {
        let (db, name) = self.table_ref(t);
        if db == "system" {
            return Err(QueryError::other(
                ErrorCode::NOT_IMPLEMENTED,
                format!("Table system.{name} is read-only"),
            ));
        }
        Ok(self.engine.catalog.table(&db, &name)?)
    }

    /// The table `t` names, local or replicated.
    fn resolve(&self, t: &TableRef) -> Result<Table> {
        Ok(self.engine.table_of(self.table(t)?))
    }

    async fn dispatch(&mut self, stmt: Statement, input: &mut Input) -> Result<QueryResult> {
        let cat = Arc::clone(&self.engine.catalog);
        match stmt {
            Statement::Explain(select) => {
                let Statement::Select {
                    query,
                    final_tables,
                    format,
                    settings,
                    ..
                } = *select
                else {
                    return Err(QueryError::other(
                        ErrorCode::NOT_IMPLEMENTED,
                        "EXPLAIN is supported for SELECT",
                    ));
                };
                let settings = self.settings.merged_with(&settings);
                let (schema, batches, summary) = self
                    .plan_and_run(*query, final_tables, &settings, select::Run::Explain)
                    .await?;
                Ok(QueryResult {
                    schema,
                    batches,
                    totals: None,
                    format,
                    format_options: FormatOptions::default(),
                    summary,
                })
            }
            Statement::Select {
                query,
                final_tables,
                totals,
                format,
                settings,
            } => {
                let settings = self.settings.merged_with(&settings);
                let totals_query = match totals {
                    true => Some(crate::totals::totals_query(&query)?),
                    false => None,
                };
                let (schema, batches, summary) = self
                    .run_query(*query, final_tables.clone(), &settings)
                    .await?;
                let totals = match totals_query {
                    Some(q) => Some(self.totals_row(q, final_tables, &settings, &schema).await?),
                    None => None,
                };
                Ok(QueryResult {
                    schema,
                    batches,
                    totals,
                    format,
                    format_options: FormatOptions::default(),
                    summary,
                })
            }
            Statement::Insert(ins) => {
                let settings = self.settings.merged_with(&ins.settings);
                let written = self.insert(ins, input, &settings).await?;
                let mut r = QueryResult::empty();
                r.summary.written_rows = written;
                Ok(r)
            }
            Statement::CreateDatabase {
                name,
                if_not_exists,
            } => {
                cat.create_database(&name, if_not_exists)?;
                Ok(QueryResult::empty())
            }
            Statement::DropDatabase { name, if_exists } => {
                cat.drop_database(&name, if_exists)?;
                if self.database == name {
                    self.database = "default".into();
                }
                Ok(QueryResult::empty())
            }
            Statement::CreateTable(ct) => self.create_table(ct).await,
            Statement::DropTable { table, if_exists } => {
                let (db, name) = self.table_ref(&table);
                if let (Ok(t), Some(repl)) = (cat.table(&db, &name), &self.engine.replication) {
                    repl.drop_replica(&t).await?;
                }
                cat.drop_table(&db, &name, if_exists)?;
                if db == qh_storage::TEMPORARY_DATABASE {
                    self.forget_temporary(&name);
                }
                Ok(QueryResult::empty())
            }
            Statement::Truncate { table, if_exists } => {
                match self.resolve(&table) {
                    Ok(t) => t.truncate(self.sync_timeout()).await?,
                    Err(_) if if_exists => {}
                    Err(e) => return Err(e),
                }
                Ok(QueryResult::empty())
            }
            Statement::Alter { table, ops } => self.alter(table, ops).await,
            Statement::Optimize {
                table,
                partition,
                final_,
            } => {
                let t = self.resolve(&table)?;
                let partition_id = match partition {
                    None => None,
                    Some(e) => Some(self.partition_id(t.data(), &e)?),
                };
                t.optimize(partition_id, final_, self.sync_timeout())
                    .await?;
                Ok(QueryResult::empty())
            }
            Statement::Set(s) => {
                self.settings = self.settings.merged_with(&s);
                Ok(QueryResult::empty())
            }
            Statement::Use(db) => {
                if !cat.has_database(&db) {
                    return Err(StorageError::UnknownDatabase(db).into());
                }
                self.database = db;
                Ok(QueryResult::empty())
            }
            Statement::ShowDatabases { format } => {
                let mut dbs = cat.databases();
                dbs.push("system".into());
                dbs.sort();
                result_of(
                    vec![("name", DataType::Utf8)],
                    vec![Arc::new(StringArray::from(dbs))],
                    format,
                )
            }
            Statement::ShowTables {
                database,
                like,
                format,
            } => {
                let db = database.unwrap_or_else(|| self.database.clone());
                let mut names: Vec<String> = if db == "system" {
                    crate::system::TABLES
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                } else {
                    cat.tables(&db)?.iter().map(|t| t.meta().name).collect()
                };
                if let Some(p) = like {
                    names.retain(|n| like_match(&p, n));
                }
                names.sort();
                result_of(
                    vec![("name", DataType::Utf8)],
                    vec![Arc::new(StringArray::from(names))],
                    format,
                )
            }
            Statement::Describe { table, format } => {
                let meta = self.table(&table)?.meta();
                let n = meta.columns.len();
                let col = |f: &dyn Fn(&qh_storage::ColumnDef) -> String| -> ArrayRef {
                    Arc::new(StringArray::from(
                        meta.columns.iter().map(f).collect::<Vec<_>>(),
                    ))
                };
                let empty = || -> ArrayRef { Arc::new(StringArray::from(vec![String::new(); n])) };
                result_of(
                    vec![
                        ("name", DataType::Utf8),
                        ("type", DataType::Utf8),
                        ("default_type", DataType::Utf8),
                        ("default_expression", DataType::Utf8),
                        ("comment", DataType::Utf8),
                        ("codec_expression", DataType::Utf8),
                        ("ttl_expression", DataType::Utf8),
                    ],
                    vec![
                        col(&|c| c.name.clone()),
                        col(&|c| c.ty.to_string()),
                        col(&|c| {
                            if c.default.is_some() {
                                c.kind.keyword().into()
                            } else {
                                String::new()
                            }
                        }),
                        col(&|c| c.default.clone().unwrap_or_default()),
                        empty(),
                        empty(),
                        empty(),
                    ],
                    format,
                )
            }
            Statement::ShowCreateTable { table, format } => {
                let meta = self.table(&table)?.meta();
                result_of(
                    vec![("statement", DataType::Utf8)],
                    vec![Arc::new(StringArray::from(vec![ddl::show_create(&meta)]))],
                    format,
                )
            }
            Statement::Exists {
                table,
                format,
                database,
            } => {
                let exists = if database {
                    cat.databases().contains(&table.name)
                } else {
                    self.table(&table).is_ok()
                } as u8;
                result_of(
                    vec![("result", DataType::UInt8)],
                    vec![Arc::new(UInt8Array::from(vec![exists]))],
                    format,
                )
            }
            Statement::Check { table, format } => {
                let t = self.resolve(&table)?;
                let parts = t.data().active_parts();
                let broken = tokio::task::spawn_blocking(move || {
                    parts
                        .iter()
                        .filter_map(|p| p.verify().err().map(|e| (p.name.clone(), e)))
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))?;
                for (name, e) in &broken {
                    tracing::warn!(part = %name, error = %e, "CHECK TABLE: part is broken");
                    t.part_is_broken(name);
                }
                result_of(
                    vec![("result", DataType::UInt8)],
                    vec![Arc::new(UInt8Array::from(vec![broken.is_empty() as u8]))],
                    format,
                )
            }
            Statement::Access(stmt) => self.access_statement(stmt).await,
            // Handled before dispatch (it needs the statement's own id).
            Statement::KillQuery { .. } => Err(QueryError::other(
                ErrorCode::LOGICAL_ERROR,
                "KILL QUERY reached the statement dispatcher",
            )),
            Statement::System(cmd) => self.system(cmd).await,
        }
    }

    fn partition_id(
        &self,
        t: &MergeTreeTable,
        e: &datafusion::sql::sqlparser::ast::Expr,
    ) -> Result<String> {
        use datafusion::sql::sqlparser::ast::Expr as E;
        if let E::Function(f) = e {
            if f.name.to_string() == "__partition_id" {
                let arg = f.args.to_string();
                return Ok(arg
                    .trim_matches(|c| c == '(' || c == ')' || c == '\'')
                    .to_string());
            }
        }
        let meta = t.meta();
        let Some(pexpr) = &meta.partition_by else {
            return Ok("all".into());
        };
        // Evaluate the literal as the partition key's type.
        let schema = meta.arrow_schema();
        let key = compile(&self.engine.base, pexpr, &schema)?;
        let dt = key.data_type(&schema)?;
        let v = crate::keys::constant_value(&self.engine.base, &e.to_string(), &dt)?;
        Ok(qh_storage::keys::partition_info(&v).id)
    }

    /// How long replicated DDL waits for this replica (`receive_timeout`, s).
    fn sync_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.uint("receive_timeout").unwrap_or(300))
    }
}

/// DataFusion says "table 'qh.default.x' not found"; ClickHouse says
/// "Table default.x does not exist".
/// Runs `f` with at least [`LARGE_STACK`] bytes of stack left, on a fresh
/// segment when the thread's own (a tokio worker's 2 MiB) has less. For the
/// passes over a parsed statement that recurse once per AST level.
pub(crate) fn on_large_stack<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(LARGE_STACK, 2 * LARGE_STACK, f)
}

const LARGE_STACK: usize = 32 << 20;

fn stmt_kind(s: &Statement) -> &'static str {
    match s {
        Statement::Select { .. } | Statement::Explain(_) => "select",
        Statement::Insert(_) => "insert",
        Statement::CreateTable(_) | Statement::CreateDatabase { .. } => "create",
        Statement::DropTable { .. } | Statement::DropDatabase { .. } => "drop",
        Statement::Alter { .. } => "alter",
        Statement::Optimize { .. } => "optimize",
        _ => "other",
    }
}
