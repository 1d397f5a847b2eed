//! Reading MergeTree parts for a query: the scan's execution plan, whose
//! partitions each decode their share of granule ranges lazily on blocking
//! threads, applying the query's filters while reading ([`prewhere`]).
//!
//! The plan accepts DataFusion's dynamic filters (a TopK's threshold, a hash
//! join's build-side keys) but reports them as not pushed down, so the
//! operators above keep applying them: the scan only drops rows early.

pub(crate) mod prewhere;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::limit::LimitStream;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;
use qh_storage::{ColumnDefaults, MergeTreeTable, Part};

use crate::distributed::scan::leaf_properties;
use crate::provider::{ext, QueryStats};
use prewhere::Prewhere;

/// The scan's switches from the query's settings (a session config
/// extension; absent means the defaults).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadOptions {
    /// `optimize_move_to_prewhere`: filter while reading.
    pub prewhere: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { prewhere: true }
    }
}

/// One unit of reading: some granule ranges of one part.
pub(crate) type ReadTask = (Arc<Part>, Vec<Range<usize>>);

/// What every partition of one scan shares.
struct Shared {
    schema: SchemaRef,
    defaults: ColumnDefaults,
    /// Keeps the table (and so its parts' files) alive while reading.
    table: Arc<MergeTreeTable>,
    stats: Arc<QueryStats>,
    /// The WHERE conjuncts, bound to `schema`.
    filters: Vec<Arc<dyn PhysicalExpr>>,
    options: ReadOptions,
}

/// The scan of a MergeTree table's parts.
#[derive(Clone)]
pub(crate) struct MergeTreeScanExec {
    shared: Arc<Shared>,
    partitions: Vec<Vec<ReadTask>>,
    /// Filters pushed in by operators above after planning.
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
    limit: Option<usize>,
    props: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl MergeTreeScanExec {
    pub(crate) fn new(
        schema: SchemaRef,
        partitions: Vec<Vec<ReadTask>>,
        table: Arc<MergeTreeTable>,
        stats: Arc<QueryStats>,
        filters: Vec<Arc<dyn PhysicalExpr>>,
        limit: Option<usize>,
        options: ReadOptions,
    ) -> Self {
        let defaults = table.keys().column_defaults();
        MergeTreeScanExec {
            props: leaf_properties(Arc::clone(&schema), partitions.len().max(1)),
            shared: Arc::new(Shared {
                schema,
                defaults,
                table,
                stats,
                filters: if options.prewhere { filters } else { vec![] },
                options,
            }),
            partitions,
            dynamic: Vec::new(),
            limit,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl fmt::Debug for MergeTreeScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MergeTreeScanExec({})", self.shared.table.meta().name)
    }
}

impl DisplayAs for MergeTreeScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let m = self.shared.table.meta();
        let pieces: usize = self.partitions.iter().map(Vec::len).sum();
        write!(
            f,
            "MergeTreeScanExec: {}.{}, pieces={pieces}",
            m.database, m.name
        )?;
        let prewhere: Vec<String> = self
            .shared
            .filters
            .iter()
            .chain(&self.dynamic)
            .map(|e| e.to_string())
            .collect();
        if !prewhere.is_empty() {
            write!(f, ", prewhere=[{}]", prewhere.join(", "))?;
        }
        if let Some(l) = self.limit {
            write!(f, ", limit={l}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for MergeTreeScanExec {
    fn name(&self) -> &str {
        "MergeTreeScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn fetch(&self) -> Option<usize> {
        self.limit
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        let mut new = self.clone();
        new.limit = limit;
        Some(Arc::new(new))
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> DFResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let offered: Vec<Arc<dyn PhysicalExpr>> = child_pushdown_result
            .parent_filters
            .into_iter()
            .map(|f| f.filter)
            .collect();
        let answer = FilterPushdownPropagation::with_parent_pushdown_result(vec![
            PushedDown::No;
            offered.len()
        ]);
        // The static filters arrived with the scan (its WHERE conjuncts);
        // after planning only dynamic ones are offered.
        if phase != FilterPushdownPhase::Post || offered.is_empty() || !self.shared.options.prewhere
        {
            return Ok(answer);
        }
        let mut new = self.clone();
        new.dynamic.extend(offered);
        Ok(answer.with_updated_node(Arc::new(new)))
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let tasks = self.partitions.get(partition).cloned().unwrap_or_default();
        let shared = Arc::clone(&self.shared);
        let dynamic = self.dynamic.clone();
        let stream = futures::stream::iter(tasks)
            .map(move |(part, ranges)| {
                let shared = Arc::clone(&shared);
                let dynamic = dynamic.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        read_task(&shared, &dynamic, &part, &ranges)
                    })
                    .await
                    .map_err(|e| DataFusionError::Execution(e.to_string()))?
                }
            })
            // Decode the next piece while DataFusion works on this one.
            .buffered(2)
            .flat_map(|r| {
                let items: Vec<DFResult<RecordBatch>> = match r {
                    Ok(batches) => batches.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(items)
            });
        let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.shared.schema),
            stream,
        ));
        Ok(match self.limit {
            None => stream,
            Some(fetch) => Box::pin(LimitStream::new(
                stream,
                0,
                Some(fetch),
                BaselineMetrics::new(&self.metrics, partition),
            )),
        })
    }
}

/// Decodes one piece, through the prewhere filters when there are any
/// (dynamic ones as they stand when the piece starts).
fn read_task(
    shared: &Shared,
    dynamic: &[Arc<dyn PhysicalExpr>],
    part: &Part,
    ranges: &[Range<usize>],
) -> DFResult<Vec<RecordBatch>> {
    let exprs: Vec<Arc<dyn PhysicalExpr>> = shared.filters.iter().chain(dynamic).cloned().collect();
    if let Some(p) = Prewhere::new(&shared.schema, &exprs) {
        return prewhere::read(
            part,
            ranges,
            &shared.schema,
            &shared.defaults,
            &p,
            &shared.stats,
        );
    }
    let batches = part
        .read_granules(&shared.schema, ranges, &shared.defaults)
        .map_err(ext)?;
    for b in &batches {
        shared.stats.add_read(b)?;
    }
    Ok(batches)
}
