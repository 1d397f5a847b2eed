//! Reading MergeTree parts for a query: the scan's execution plan, whose
//! partitions each decode their share of granule ranges lazily on blocking
//! threads, applying the query's filters while reading ([`prewhere`]).
//!
//! The plan accepts DataFusion's dynamic filters (a TopK's threshold, a hash
//! join's build-side keys) but reports them as not pushed down, so the
//! operators above keep applying them: the scan only drops rows early.
//!
//! A scan may also carry row references ([`lazy`]): a top-N reads only its
//! sort and filter columns, and the other columns of the rows it keeps are
//! read afterwards.

pub(crate) mod dictionary_groups;
pub(crate) mod in_order;
pub(crate) mod lazy;
pub(crate) mod prewhere;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Statistics;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::utils::reassign_expr_columns;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::limit::LimitStream;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::statistics::StatisticsArgs;
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
    /// `query_plan_optimize_lazy_materialization`: a top-N reads the
    /// columns it does not sort or filter by for its rows only.
    pub lazy: bool,
    /// `query_plan_max_limit_for_lazy_materialization`: the largest such
    /// top-N (0: any).
    pub lazy_max_rows: u64,
    /// `optimize_read_in_order`: a top-N by the sorting key merges the
    /// parts read in order ([`in_order`]).
    pub read_in_order: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            prewhere: true,
            lazy: true,
            lazy_max_rows: 10_000,
            read_in_order: true,
        }
    }
}

/// One unit of reading: some granule ranges of one part.
pub(crate) type ReadTask = (Arc<Part>, Vec<Range<usize>>);

/// The column of row references a lazily materialized scan adds.
pub(crate) const ROW_REF: &str = "__qh_row_ref";

/// Bits of a row reference that number the row within its part; the bits
/// above number the part in [`RowRefs::parts`].
const ROW_BITS: u32 = 40;

/// The parts a scan's row references point into.
pub(crate) struct RowRefs {
    parts: Vec<Arc<Part>>,
}

impl RowRefs {
    fn tag(&self, part: &Part) -> DFResult<u64> {
        match self
            .parts
            .iter()
            .position(|p| std::ptr::eq(p.as_ref(), part))
        {
            Some(i) => Ok((i as u64) << ROW_BITS),
            None => datafusion::common::internal_err!("part {} has no row tag", part.name),
        }
    }
}

/// What every partition of one scan shares.
#[derive(Clone)]
struct Shared {
    /// The columns read from the parts.
    schema: SchemaRef,
    /// `schema`, plus [`ROW_REF`] when `rows` is set.
    out_schema: SchemaRef,
    rows: Option<Arc<RowRefs>>,
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
                out_schema: Arc::clone(&schema),
                rows: None,
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

impl MergeTreeScanExec {
    /// This scan narrowed to the columns `keep` (indices into its schema,
    /// which must cover its filters' columns) plus [`ROW_REF`], and what its
    /// references point into. None once dynamic filters are attached
    /// (they are bound to the full schema).
    pub(crate) fn with_row_refs(&self, keep: &[usize]) -> DFResult<Option<(Self, Arc<RowRefs>)>> {
        if !self.dynamic.is_empty() || self.shared.rows.is_some() || self.limit.is_some() {
            return Ok(None);
        }
        let schema = Arc::new(self.shared.schema.project(keep)?);
        let filters = self
            .shared
            .filters
            .iter()
            .map(|f| reassign_expr_columns(Arc::clone(f), &schema))
            .collect::<DFResult<Vec<_>>>()?;
        let mut parts: Vec<Arc<Part>> = Vec::new();
        for (part, _) in self.partitions.iter().flatten() {
            if !parts.iter().any(|p| Arc::ptr_eq(p, part)) {
                parts.push(Arc::clone(part));
            }
        }
        let refs = Arc::new(RowRefs { parts });
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(ROW_REF, DataType::UInt64, false));
        let out_schema = Arc::new(Schema::new(fields));
        let s = &self.shared;
        let scan = MergeTreeScanExec {
            props: leaf_properties(Arc::clone(&out_schema), self.partitions.len().max(1)),
            shared: Arc::new(Shared {
                schema,
                out_schema,
                rows: Some(Arc::clone(&refs)),
                filters,
                ..Shared::clone(s)
            }),
            partitions: self.partitions.clone(),
            dynamic: Vec::new(),
            limit: None,
            metrics: ExecutionPlanMetricsSet::new(),
        };
        Ok(Some((scan, refs)))
    }
}

impl MergeTreeScanExec {
    /// This scan with its column `i` read as `Dictionary(UInt32, Utf8)`:
    /// a LowCardinality column's stored dictionaries are passed on as they
    /// are. None when the column is not one, or for a scan with row
    /// references.
    pub(crate) fn with_dictionary(&self, i: usize) -> Option<Self> {
        let s = &self.shared;
        let field = s.schema.fields().get(i)?;
        let meta = s.table.meta();
        let column = meta.columns.iter().find(|c| c.name == *field.name())?;
        let low_cardinality = matches!(column.ty, qh_types::ChType::LowCardinality(_))
            && field.data_type() == &DataType::Utf8;
        if !low_cardinality || s.rows.is_some() {
            return None;
        }
        let dictionary = DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8));
        let mut fields: Vec<Field> = s
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[i] = fields[i].clone().with_data_type(dictionary);
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            s.schema.metadata().clone(),
        ));
        let mut scan = self.clone();
        scan.props = leaf_properties(Arc::clone(&schema), self.partitions.len().max(1));
        scan.shared = Arc::new(Shared {
            out_schema: Arc::clone(&schema),
            schema,
            rows: None,
            ..Shared::clone(s)
        });
        Some(scan)
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
        if self.shared.rows.is_some() {
            write!(f, ", row_refs")?;
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

    /// The rows of the granules it reads (an upper bound: filters drop
    /// some): what a join's choice of build side goes by.
    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> DFResult<Arc<Statistics>> {
        let tasks: Vec<&ReadTask> = match args.partition() {
            Some(i) => self.partitions.get(i).into_iter().flatten().collect(),
            None => self.partitions.iter().flatten().collect(),
        };
        let rows: usize = tasks
            .iter()
            .flat_map(|(part, ranges)| {
                ranges.iter().map(move |r| {
                    part.granule_rows
                        .get(r.clone())
                        .map_or(0, |g| g.iter().map(|n| *n as usize).sum::<usize>())
                })
            })
            .sum();
        let mut stats = Statistics::new_unknown(&self.schema());
        stats.num_rows = match self.limit {
            Some(l) => Precision::Inexact(rows.min(l)),
            None => Precision::Inexact(rows),
        };
        Ok(Arc::new(stats))
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
            Arc::clone(&self.shared.out_schema),
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

/// One granule's rows as read: `kept` says which of its rows passed the
/// prewhere filters (None: all of them).
pub(crate) struct ReadGranule {
    /// The granule's number in its part.
    pub id: usize,
    pub kept: Option<BooleanArray>,
    pub batch: RecordBatch,
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
    let granules = match Prewhere::new(&shared.schema, &exprs) {
        Some(p) => prewhere::read(
            part,
            ranges,
            &shared.schema,
            &shared.defaults,
            &p,
            &shared.stats,
        )?,
        None => {
            let batches = part
                .read_granules(&shared.schema, ranges, &shared.defaults)
                .map_err(ext)?;
            for b in &batches {
                shared.stats.add_read(b)?;
            }
            ranges
                .iter()
                .flat_map(|r| r.clone())
                .zip(batches)
                .map(|(id, batch)| ReadGranule {
                    id,
                    kept: None,
                    batch,
                })
                .collect()
        }
    };
    let Some(refs) = &shared.rows else {
        return Ok(granules.into_iter().map(|g| g.batch).collect());
    };
    let tag = refs.tag(part)?;
    let starts = granule_starts(part);
    granules
        .into_iter()
        .map(|g| {
            let start = starts[g.id];
            let n = part.granule_rows[g.id] as u64;
            let ids: ArrayRef = Arc::new(UInt64Array::from_iter_values(
                (start..start + n).map(|r| tag | r),
            ));
            let ids = match &g.kept {
                Some(k) => filter(&ids, k)?,
                None => ids,
            };
            let mut columns = g.batch.columns().to_vec();
            columns.push(ids);
            Ok(RecordBatch::try_new(
                Arc::clone(&shared.out_schema),
                columns,
            )?)
        })
        .collect()
}

/// The number of each granule's first row in its part.
fn granule_starts(part: &Part) -> Vec<u64> {
    let mut at = 0u64;
    part.granule_rows
        .iter()
        .map(|n| {
            let start = at;
            at += u64::from(*n);
            start
        })
        .collect()
}
