//! DataFusion's view of our tables: a catalog whose schemas are databases,
//! a TableProvider over MergeTree parts with projection pushdown and pruning
//! of parts and granules by the sparse index, and the `numbers()` function.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::memory::MemorySourceConfig;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableFunctionImpl};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, DFSchema, Result as DFResult, ScalarValue};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Accumulator, Expr, TableProviderFilterPushDown};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;
use qh_storage::{Catalog, EngineKind, MergeTreeTable, Part, TableMeta};
use qh_types::Settings;

use crate::error::QueryError;
use crate::read::{MergeTreeScanExec, ReadOptions, ReadTask};
use crate::system;

/// Counters of one query, reported to the user (rows and granules read).
#[derive(Debug, Default)]
pub struct QueryStats {
    pub rows_read: AtomicU64,
    pub bytes_read: AtomicU64,
    pub granules_read: AtomicU64,
    pub granules_total: AtomicU64,
    pub parts_read: AtomicU64,
    /// Rows received by an INSERT so far (they become visible only at commit).
    pub rows_written: AtomicU64,
    pub bytes_written: AtomicU64,
    /// `max_rows_to_read` / `max_bytes_to_read` of the running statement
    /// (0 = none), checked as parts are read.
    pub max_rows_to_read: AtomicU64,
    pub max_bytes_to_read: AtomicU64,
}

impl QueryStats {
    /// Counts a batch read from parts; an error once the statement read
    /// more than `max_rows_to_read` / `max_bytes_to_read` allow.
    pub fn add_read(&self, b: &RecordBatch) -> DFResult<()> {
        self.add_read_counts(b.num_rows() as u64, b.get_array_memory_size() as u64)
    }

    pub fn add_read_counts(&self, rows: u64, bytes: u64) -> DFResult<()> {
        let rows = self.rows_read.fetch_add(rows, Ordering::Relaxed) + rows;
        let bytes = self.bytes_read.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let max_rows = self.max_rows_to_read.load(Ordering::Relaxed);
        if max_rows > 0 && rows > max_rows {
            return Err(ext(QueryError::other(
                qh_types::ErrorCode::TOO_MANY_ROWS,
                format!("Limit for rows (controlled by 'max_rows_to_read' setting) exceeded, max rows: {max_rows}, current rows: {rows}"),
            )));
        }
        let max_bytes = self.max_bytes_to_read.load(Ordering::Relaxed);
        if max_bytes > 0 && bytes > max_bytes {
            return Err(ext(QueryError::other(
                qh_types::ErrorCode::TOO_MANY_BYTES,
                format!("Limit for (uncompressed) bytes to read exceeded, max bytes: {}, current bytes: {}",
                    crate::limits::readable_size(max_bytes as usize),
                    crate::limits::readable_size(bytes as usize)),
            )));
        }
        Ok(())
    }

    /// Sets the read limits of the next statement.
    pub fn set_read_limits(&self, max_rows: u64, max_bytes: u64) {
        self.max_rows_to_read.store(max_rows, Ordering::Relaxed);
        self.max_bytes_to_read.store(max_bytes, Ordering::Relaxed);
    }

    /// Counts a batch received by an INSERT.
    pub fn add_written(&self, b: &RecordBatch) {
        self.rows_written
            .fetch_add(b.num_rows() as u64, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(b.get_array_memory_size() as u64, Ordering::Relaxed);
    }

    /// Zeroes the counters for the next statement.
    pub fn reset(&self) {
        for c in [
            &self.rows_read,
            &self.bytes_read,
            &self.granules_read,
            &self.granules_total,
            &self.parts_read,
            &self.rows_written,
            &self.bytes_written,
            &self.max_rows_to_read,
            &self.max_bytes_to_read,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// What every table provider of one query shares.
#[derive(Debug)]
pub struct QueryContext {
    pub engine: Arc<crate::engine::Engine>,
    pub catalog: Arc<Catalog>,
    pub final_tables: HashSet<String>,
    pub settings: Settings,
    pub stats: Arc<QueryStats>,
    pub coordinator: Option<Arc<qh_meta::Coordinator>>,
    pub replication: Option<Arc<qh_replication::Replication>>,
    pub processes: Arc<crate::processes::ProcessList>,
    pub cluster_config: crate::clusters::Clusters,
    /// The statement's id and text (what shard stages are listed under).
    pub query_id: String,
    pub query: String,
    /// The session's current database.
    pub database: String,
    /// The hidden names of the session's temporary tables: the only tables
    /// of `TEMPORARY_DATABASE` its queries may read.
    pub temporary: HashSet<String>,
    /// Who runs the statement and from where (`system.quota_usage`), and
    /// whether its rights are checked (a client's session; not the node's
    /// own).
    pub user: String,
    pub peer: Option<std::net::IpAddr>,
    pub checked: bool,
}

/// Catalog provider: one schema per database, plus `system`.
#[derive(Debug)]
pub struct QhCatalog {
    pub ctx: Arc<QueryContext>,
}

impl CatalogProvider for QhCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut v = self.ctx.catalog.databases();
        v.push("system".into());
        v
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == "system" || self.ctx.catalog.has_database(name) {
            Some(Arc::new(QhSchema {
                ctx: Arc::clone(&self.ctx),
                database: name.to_string(),
            }))
        } else {
            None
        }
    }
}

#[derive(Debug)]
pub struct QhSchema {
    ctx: Arc<QueryContext>,
    database: String,
}

#[async_trait]
impl SchemaProvider for QhSchema {
    fn table_names(&self) -> Vec<String> {
        if self.database == "system" {
            return system::TABLES.iter().map(|s| s.to_string()).collect();
        }
        if self.database == qh_storage::TEMPORARY_DATABASE {
            return self.ctx.temporary.iter().cloned().collect();
        }
        self.ctx
            .catalog
            .tables(&self.database)
            .map(|ts| ts.iter().map(|t| t.meta().name).collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        if self.database == "system" {
            return system::table(&self.ctx, name);
        }
        if self.database == qh_storage::TEMPORARY_DATABASE && !self.ctx.temporary.contains(name) {
            return Ok(None);
        }
        match self.ctx.catalog.table(&self.database, name) {
            Ok(t) if matches!(t.meta().engine, EngineKind::Distributed { .. }) => {
                Ok(Some(self.distributed(&t.meta(), name)?))
            }
            // A statement's views are expanded before planning; one reached
            // here is read some other way (a table function naming it).
            Ok(t) if matches!(t.meta().engine, EngineKind::View { .. }) => {
                Err(ext(QueryError::other(
                    qh_types::ErrorCode::NOT_IMPLEMENTED,
                    format!(
                        "the view {}.{name} can only be read by name in a query's FROM",
                        self.database
                    ),
                )))
            }
            Ok(t) if matches!(t.meta().engine, EngineKind::KeeperMap { .. }) => {
                let meta = t.meta();
                let rows =
                    crate::keeper_map::KeeperMap::read_table(self.ctx.coordinator.as_ref(), &meta)
                        .await
                        .map_err(ext)?;
                Ok(Some(Arc::new(datafusion::datasource::MemTable::try_new(
                    rows.schema(),
                    vec![vec![rows]],
                )?)))
            }
            Ok(t) => {
                check_sequential_consistency(self.ctx.replication.as_ref(), &t, &self.ctx.settings)
                    .await?;
                let final_ = self.ctx.final_tables.contains(name)
                    || self.ctx.settings.get_bool("final", false).unwrap_or(false);
                Ok(Some(Arc::new(MergeTreeProvider::new(
                    t,
                    final_,
                    Arc::clone(&self.ctx.stats),
                ))))
            }
            Err(_) => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        if self.database == "system" {
            return system::TABLES.contains(&name);
        }
        if self.database == qh_storage::TEMPORARY_DATABASE && !self.ctx.temporary.contains(name) {
            return false;
        }
        self.ctx.catalog.table(&self.database, name).is_ok()
    }
}

/// `select_sequential_consistency = 1` on a replicated table: this replica
/// must hold every part acknowledged with a quorum (else 289).
pub(crate) async fn check_sequential_consistency(
    replication: Option<&Arc<qh_replication::Replication>>,
    table: &Arc<MergeTreeTable>,
    settings: &Settings,
) -> DFResult<()> {
    if !settings
        .get_bool("select_sequential_consistency", false)
        .map_err(|e| ext(QueryError::BadArguments(e)))?
    {
        return Ok(());
    }
    if let Some(replica) = replication.and_then(|r| r.replica_of(table)) {
        let timeout = Duration::from_secs(settings.uint("receive_timeout").unwrap_or(300));
        replica
            .check_sequential_consistency(timeout)
            .await
            .map_err(|e| ext(QueryError::from(e)))?;
    }
    Ok(())
}

impl QhSchema {
    /// A Distributed table's scan over the shards of its cluster.
    fn distributed(&self, meta: &TableMeta, name: &str) -> DFResult<Arc<dyn TableProvider>> {
        let EngineKind::Distributed {
            cluster,
            database,
            table,
            sharding_key,
        } = &meta.engine
        else {
            return Err(DataFusionError::Internal(format!(
                "{name} is not Distributed"
            )));
        };
        let final_ = self.ctx.final_tables.contains(name)
            || self.ctx.settings.get_bool("final", false).unwrap_or(false);
        crate::distributed::scan::provider(
            &self.ctx,
            crate::distributed::scan::Source {
                cluster: cluster.clone(),
                database: database.clone(),
                table: table.clone(),
                schema: meta.arrow_schema(),
                final_,
                all_replicas: false,
                sharding_key: sharding_key.clone(),
            },
        )
    }
}

/// A MergeTree table as DataFusion sees it for one query.
pub struct MergeTreeProvider {
    table: Arc<MergeTreeTable>,
    schema: SchemaRef,
    final_: bool,
    stats: Arc<QueryStats>,
}

impl fmt::Debug for MergeTreeProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MergeTreeProvider({})", self.table.meta().name)
    }
}

impl MergeTreeProvider {
    pub fn new(table: Arc<MergeTreeTable>, final_: bool, stats: Arc<QueryStats>) -> Self {
        let schema = table.meta().arrow_schema();
        MergeTreeProvider {
            table,
            schema,
            final_,
            stats,
        }
    }
}

pub(crate) fn ext(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for MergeTreeProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        // Filters prune parts and granules; DataFusion still applies them.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let out_schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let parts = self.table.active_parts();
        let pruning = match conjunction(filters.iter().cloned()) {
            Some(pred) => {
                let df_schema = DFSchema::try_from(Arc::clone(&self.schema))?;
                state
                    .create_physical_expr(pred, &df_schema)
                    .ok()
                    .and_then(|phys| {
                        PruningPredicateBuilder::new()
                            .with_file_schema(Arc::clone(&self.schema))
                            .build(phys)
                    })
            }
            None => None,
        };
        // Part-level pruning by each part's min/max.
        let parts: Vec<Arc<Part>> = match &pruning {
            Some(p) => {
                let keep = p.prune(&PartStats { parts: &parts })?;
                parts
                    .into_iter()
                    .zip(keep)
                    .filter_map(|(part, k)| k.then_some(part))
                    .collect()
            }
            None => parts,
        };
        if self.final_ {
            // FINAL collapses rows across parts of a partition: read them
            // whole and merge before DataFusion sees them.
            let table = Arc::clone(&self.table);
            let final_parts = parts.clone();
            let all = tokio::task::spawn_blocking(move || table.read_final(&final_parts))
                .await
                .map_err(|e| DataFusionError::Execution(e.to_string()))?
                .map_err(ext)?;
            let mut batches = Vec::with_capacity(all.len());
            for b in all {
                let b = match projection {
                    Some(p) => b.project(p)?,
                    None => b,
                };
                self.stats.add_read(&b)?;
                batches.push(b);
            }
            for p in &parts {
                self.stats
                    .granules_read
                    .fetch_add(p.granules() as u64, Ordering::Relaxed);
                self.stats
                    .granules_total
                    .fetch_add(p.granules() as u64, Ordering::Relaxed);
            }
            let n = state.config().target_partitions().max(1);
            let mut partitions: Vec<Vec<RecordBatch>> =
                vec![Vec::new(); n.min(batches.len()).max(1)];
            let np = partitions.len();
            for (i, b) in batches.into_iter().enumerate() {
                partitions[i % np].push(b);
            }
            return Ok(MemorySourceConfig::try_new_exec(
                &partitions,
                out_schema,
                None,
            )?);
        }
        // Plan the reads: surviving granule ranges of each part, cut into
        // pieces so several partitions decode at once. Nothing is read here:
        // each partition's stream decodes its pieces as DataFusion pulls.
        let mut tasks: Vec<ReadTask> = Vec::new();
        for part in &parts {
            let ranges = match (&pruning, &part.index) {
                (Some(p), Some(index)) => {
                    let keep = p.prune(&GranuleStats { index })?;
                    to_ranges(&keep)
                }
                _ => std::iter::once(0..part.granules()).collect(),
            };
            let n_granules: usize = ranges.iter().map(|r| r.len()).sum();
            self.stats
                .granules_total
                .fetch_add(part.granules() as u64, Ordering::Relaxed);
            if n_granules == 0 {
                continue;
            }
            self.stats
                .granules_read
                .fetch_add(n_granules as u64, Ordering::Relaxed);
            self.stats.parts_read.fetch_add(1, Ordering::Relaxed);
            // Each part starts with two small pieces: a TopK above sets its
            // dynamic filter from their rows before the big pieces are read
            // through it (ORDER BY ts LIMIT 10 reads little but `ts`).
            let sizes = [FIRST_PIECE_GRANULES; 2]
                .into_iter()
                .chain(std::iter::repeat(GRANULES_PER_TASK));
            for piece in split_ranges_by(&ranges, sizes) {
                tasks.push((Arc::clone(part), piece));
            }
        }
        // No column needed (`count()`): the row counts are known from the
        // marks, and an in-memory source lets DataFusion answer from them.
        if out_schema.fields().is_empty() {
            let rows: usize = tasks
                .iter()
                .flat_map(|(part, ranges)| {
                    ranges
                        .iter()
                        .flat_map(move |r| part.granule_rows[r.clone()].iter())
                })
                .map(|g| *g as usize)
                .sum();
            self.stats.add_read_counts(rows as u64, 0)?;
            let batch = RecordBatch::try_new_with_options(
                Arc::clone(&out_schema),
                vec![],
                &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
            )?;
            return Ok(MemorySourceConfig::try_new_exec(
                &[vec![batch]],
                out_schema,
                None,
            )?);
        }
        // A LIMIT without filters reads pieces in order from one stream, so
        // it stops decoding as soon as the limit is met.
        let n = if limit.is_some() && filters.is_empty() {
            1
        } else {
            state
                .config()
                .target_partitions()
                .max(1)
                .min(tasks.len().max(1))
        };
        let mut per_partition: Vec<Vec<ReadTask>> = (0..n).map(|_| Vec::new()).collect();
        for (i, t) in tasks.into_iter().enumerate() {
            per_partition[i % n].push(t);
        }
        // The WHERE conjuncts, applied again while reading (PREWHERE);
        // volatile ones (rand()) only where DataFusion evaluates them.
        let out_df_schema = DFSchema::try_from(Arc::clone(&out_schema))?;
        let prewhere = filters
            .iter()
            .filter(|f| !f.is_volatile())
            .filter_map(|f| state.create_physical_expr(f.clone(), &out_df_schema).ok())
            .collect();
        let exec = MergeTreeScanExec::new(
            out_schema,
            per_partition,
            Arc::clone(&self.table),
            Arc::clone(&self.stats),
            prewhere,
            limit,
            state
                .config()
                .get_extension::<ReadOptions>()
                .map(|o| *o)
                .unwrap_or_default(),
        );
        Ok(Arc::new(exec))
    }
}

/// Granules of each of a partition's first two pieces.
const FIRST_PIECE_GRANULES: usize = 4;

/// Granules one read task decodes (~512k rows at the default granularity).
const GRANULES_PER_TASK: usize = 64;

/// Cuts granule ranges into pieces of at most `max` granules.
#[cfg(test)]
fn split_ranges(ranges: &[Range<usize>], max: usize) -> Vec<Vec<Range<usize>>> {
    split_ranges_by(ranges, std::iter::repeat(max))
}

/// Cuts granule ranges into pieces of at most `sizes` granules each, in
/// turn (an endless iterator of sizes, each at least 1).
fn split_ranges_by(
    ranges: &[Range<usize>],
    mut sizes: impl Iterator<Item = usize>,
) -> Vec<Vec<Range<usize>>> {
    let mut max = sizes.next().unwrap_or(GRANULES_PER_TASK).max(1);
    let mut out = Vec::new();
    let mut cur: Vec<Range<usize>> = Vec::new();
    let mut n = 0;
    for r in ranges {
        let mut start = r.start;
        while start < r.end {
            let take = (r.end - start).min(max - n);
            cur.push(start..start + take);
            n += take;
            start += take;
            if n == max {
                out.push(std::mem::take(&mut cur));
                n = 0;
                max = sizes.next().unwrap_or(GRANULES_PER_TASK).max(1);
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn to_ranges(keep: &[bool]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, k) in keep.iter().enumerate() {
        match (k, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..keep.len());
    }
    out
}

/// Per-granule statistics of one part.
struct GranuleStats<'a> {
    index: &'a RecordBatch,
}

impl PruningStatistics for GranuleStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.index
            .column_by_name(&format!("min.{}", column.name))
            .cloned()
    }
    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.index
            .column_by_name(&format!("max.{}", column.name))
            .cloned()
    }
    fn num_containers(&self) -> usize {
        self.index.num_rows()
    }
    fn null_counts(&self, _column: &Column) -> Option<ArrayRef> {
        None
    }
    fn row_counts(&self) -> Option<ArrayRef> {
        None
    }
    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// Per-part statistics: min of granule mins and max of granule maxes.
struct PartStats<'a> {
    parts: &'a [Arc<Part>],
}

impl PartStats<'_> {
    fn agg(&self, column: &Column, max: bool) -> Option<ArrayRef> {
        let key = format!("{}.{}", if max { "max" } else { "min" }, column.name);
        let mut vals = Vec::with_capacity(self.parts.len());
        let mut dt: Option<DataType> = None;
        for p in self.parts {
            let arr = p.index.as_ref().and_then(|i| i.column_by_name(&key))?;
            if dt.as_ref().is_some_and(|d| d != arr.data_type()) {
                return None;
            }
            dt = Some(arr.data_type().clone());
            let v = if max {
                let mut acc = MaxAccumulator::try_new(arr.data_type()).ok()?;
                acc.update_batch(&[Arc::clone(arr)]).ok()?;
                acc.evaluate().ok()?
            } else {
                let mut acc = MinAccumulator::try_new(arr.data_type()).ok()?;
                acc.update_batch(&[Arc::clone(arr)]).ok()?;
                acc.evaluate().ok()?
            };
            vals.push(v);
        }
        if vals.is_empty() {
            return None;
        }
        ScalarValue::iter_to_array(vals).ok()
    }
}

impl PruningStatistics for PartStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.agg(column, false)
    }
    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.agg(column, true)
    }
    fn num_containers(&self) -> usize {
        self.parts.len()
    }
    fn null_counts(&self, _column: &Column) -> Option<ArrayRef> {
        None
    }
    fn row_counts(&self) -> Option<ArrayRef> {
        None
    }
    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// `numbers(N)` / `numbers(offset, N)`: a table of one UInt64 column `number`.
#[derive(Debug)]
pub struct NumbersFunction;

impl TableFunctionImpl for NumbersFunction {
    fn call_with_args(
        &self,
        args: datafusion::catalog::TableFunctionArgs,
    ) -> DFResult<Arc<dyn TableProvider>> {
        let mut nums = Vec::new();
        for e in args.exprs() {
            let v = match e {
                Expr::Literal(v, _) => v.clone(),
                other => {
                    return Err(DataFusionError::Plan(format!(
                        "numbers() takes constant arguments, got {other}"
                    )))
                }
            };
            let n = match v.cast_to(&DataType::UInt64)? {
                ScalarValue::UInt64(Some(n)) => n,
                _ => return Err(DataFusionError::Plan("numbers() takes numbers".into())),
            };
            nums.push(n);
        }
        let (start, count) = match nums.as_slice() {
            [n] => (0, *n),
            [o, n] => (*o, *n),
            _ => {
                return Err(DataFusionError::Plan(
                    "numbers() takes one or two arguments".into(),
                ))
            }
        };
        numbers_table(start, Some(count))
    }
}

/// A lazily generated `number` column from `start`, `count` rows or endless
/// (`system.numbers`, which a LIMIT stops).
pub fn numbers_table(start: u64, count: Option<u64>) -> DFResult<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "number",
        DataType::UInt64,
        false,
    )]));
    let part: Arc<dyn PartitionStream> = Arc::new(NumbersStream {
        schema: Arc::clone(&schema),
        start,
        end: count.map(|c| start.saturating_add(c)),
    });
    Ok(Arc::new(StreamingTable::try_new(schema, vec![part])?))
}

#[derive(Debug)]
struct NumbersStream {
    schema: SchemaRef,
    start: u64,
    end: Option<u64>,
}

impl PartitionStream for NumbersStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(
        &self,
        ctx: Arc<datafusion::execution::TaskContext>,
    ) -> datafusion::execution::SendableRecordBatchStream {
        const CHUNK: u64 = 65_536;
        // ClickHouse counts numbers() as rows read (and max_rows_to_read
        // applies); the statement's counters travel in the session config.
        let stats = ctx.session_config().get_extension::<QueryStats>();
        let schema = Arc::clone(&self.schema);
        let end = self.end.unwrap_or(u64::MAX);
        let mut at = self.start;
        let iter = std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let to = at.saturating_add(CHUNK).min(end);
            let col: ArrayRef = Arc::new(UInt64Array::from_iter_values(at..to));
            at = to;
            Some(
                RecordBatch::try_new(Arc::clone(&schema), vec![col]).map_err(DataFusionError::from),
            )
        });
        // An endless source must yield to the runtime now and then, or a
        // timeout or KILL QUERY could never stop the task polling it.
        let stream = futures::stream::iter(iter).then(move |b| {
            let stats = stats.clone();
            async move {
                tokio::task::consume_budget().await;
                let b = b?;
                if let Some(s) = &stats {
                    s.add_read_counts(b.num_rows() as u64, 8 * b.num_rows() as u64)?;
                }
                Ok(b)
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_into_bounded_pieces() {
        let pieces = split_ranges(&[0..5, 7..9], 3);
        assert_eq!(pieces, vec![vec![0..3], vec![3..5, 7..8], vec![8..9]]);
        assert_eq!(to_ranges(&[true, true, false, true]), vec![0..2, 3..4]);
        let pieces = split_ranges_by(
            &[0..5, 6..10],
            [1, 2].into_iter().chain(std::iter::repeat(4)),
        );
        assert_eq!(
            pieces,
            vec![vec![0..1], vec![1..3], vec![3..5, 6..8], vec![8..10]]
        );
    }
}
