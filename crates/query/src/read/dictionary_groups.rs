//! GROUP BY a LowCardinality column on its dictionary keys.
//!
//! A part stores a `LowCardinality(String)` column as a dictionary per block
//! and a small key per row. DataFusion's hash aggregation would see the
//! column decoded into one string per row and hash every one of them. Where
//! the grouping reads such a column straight from the scan, [`GroupByDictionary`]
//! has the scan pass the dictionaries on and puts [`DictionaryAggregateExec`]
//! in place of the first aggregation stage: it interns each block's few
//! distinct values once and maps every row to its group by its key, then
//! feeds DataFusion's own group accumulators. Its output is exactly the
//! replaced stage's (same schema, same accumulator states), so everything
//! above it is unchanged.
//!
//! Invariant: only the grouping column changes type between the scan and
//! the new operator; the rule declines any plan where another expression
//! (an aggregate's argument, a filter, a projection) reads that column.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::aggregates::{aggregate_expressions, AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::udaf::AggregateFunctionExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

use super::MergeTreeScanExec;

/// Puts [`DictionaryAggregateExec`] in place of a first aggregation stage
/// that groups by one LowCardinality column of a MergeTree scan.
#[derive(Debug, Default)]
pub(crate) struct GroupByDictionary;

impl PhysicalOptimizerRule for GroupByDictionary {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(agg) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            Ok(match rewrite(agg)? {
                Some(new) => Transformed::yes(new),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "group_by_dictionary"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn rewrite(agg: &AggregateExec) -> DFResult<Option<Arc<dyn ExecutionPlan>>> {
    let mode = *agg.mode();
    if !matches!(mode, AggregateMode::Partial | AggregateMode::Single)
        || agg.limit_options().is_some()
        || !agg.group_expr().is_single()
        || agg.group_expr().expr().len() != 1
        || !agg
            .aggr_expr()
            .iter()
            .all(|a| a.groups_accumulator_supported())
    {
        return Ok(None);
    }
    let Some(key) = agg.group_expr().expr()[0].0.downcast_ref::<Column>() else {
        return Ok(None);
    };
    let key = key.index();
    let arguments = aggregate_expressions(agg.aggr_expr(), &mode, 0)?;
    let reads_key = |e: &Arc<dyn PhysicalExpr>| collect_columns(e).iter().any(|c| c.index() == key);
    if arguments.iter().flatten().any(reads_key)
        || agg.filter_expr().iter().flatten().any(reads_key)
    {
        return Ok(None);
    }
    let Some(input) = with_dictionary(agg.input(), key)? else {
        return Ok(None);
    };
    Ok(Some(Arc::new(DictionaryAggregateExec::new(
        agg, input, key, arguments,
    ))))
}

/// `plan` rebuilt over a scan that reads its column `key` as a dictionary,
/// when `plan` is a chain of column-passing projections and filters over a
/// MergeTree scan of a LowCardinality column that nothing else reads.
fn with_dictionary(
    plan: &Arc<dyn ExecutionPlan>,
    key: usize,
) -> DFResult<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = plan.downcast_ref::<MergeTreeScanExec>() {
        return Ok(scan
            .with_dictionary(key)
            .map(|s| Arc::new(s) as Arc<dyn ExecutionPlan>));
    }
    let (below, others): (usize, Vec<&Arc<dyn PhysicalExpr>>) =
        if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
            let Some(c) = p.expr()[key].expr.downcast_ref::<Column>() else {
                return Ok(None);
            };
            let others = p
                .expr()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != key)
                .map(|(_, e)| &e.expr)
                .collect();
            (c.index(), others)
        } else if let Some(f) = plan.downcast_ref::<FilterExec>() {
            let below = match f.projection() {
                Some(p) => match p.get(key) {
                    Some(i) if p.iter().filter(|j| *j == i).count() == 1 => *i,
                    _ => return Ok(None),
                },
                None => key,
            };
            (below, vec![f.predicate()])
        } else {
            return Ok(None);
        };
    if others
        .iter()
        .any(|e| collect_columns(e).iter().any(|c| c.index() == below))
    {
        return Ok(None);
    }
    let [child] = plan.children()[..] else {
        return Ok(None);
    };
    match with_dictionary(child, below)? {
        // Recomputed: the column's type changes all the way up.
        Some(child) => Ok(Some(Arc::clone(plan).replace_children(
            vec![child],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?)),
        None => Ok(None),
    }
}

/// The first stage of a GROUP BY over one dictionary-encoded column: the
/// output of the [`AggregateExec`] it replaces (partial states, or final
/// values in `Single` mode), per input partition.
#[derive(Debug)]
pub(crate) struct DictionaryAggregateExec {
    input: Arc<dyn ExecutionPlan>,
    /// The grouping column's index in `input`.
    key: usize,
    /// The grouping column as an output field (the dictionary's values).
    key_field: Field,
    mode: AggregateMode,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// Each aggregate's argument expressions, over `input`.
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    schema: SchemaRef,
    props: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl DictionaryAggregateExec {
    fn new(
        agg: &AggregateExec,
        input: Arc<dyn ExecutionPlan>,
        key: usize,
        arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    ) -> Self {
        let schema = agg.schema();
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            input.output_partitioning().clone(),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        DictionaryAggregateExec {
            key_field: schema.field(0).clone(),
            input,
            key,
            mode: *agg.mode(),
            aggregates: agg.aggr_expr().to_vec(),
            arguments,
            filters: agg.filter_expr().to_vec(),
            schema,
            props,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for DictionaryAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let aggregates: Vec<&str> = self.aggregates.iter().map(|a| a.name()).collect();
        write!(
            f,
            "DictionaryAggregateExec: mode={:?}, gby=[{}], aggr=[{}]",
            self.mode,
            self.key_field.name(),
            aggregates.join(", ")
        )
    }
}

impl ExecutionPlan for DictionaryAggregateExec {
    fn name(&self) -> &str {
        "DictionaryAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        let mut tnr = TreeNodeRecursion::Continue;
        for e in self
            .arguments
            .iter()
            .flatten()
            .chain(self.filters.iter().flatten())
        {
            tnr = tnr.visit_sibling(|| f(e))?;
        }
        Ok(tnr)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|_| {
            DataFusionError::Internal("DictionaryAggregateExec takes one input".into())
        })?;
        Ok(Arc::new(DictionaryAggregateExec {
            input,
            key: self.key,
            key_field: self.key_field.clone(),
            mode: self.mode,
            aggregates: self.aggregates.clone(),
            arguments: self.arguments.clone(),
            filters: self.filters.clone(),
            schema: Arc::clone(&self.schema),
            props: Arc::clone(&self.props),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, Arc::clone(&context))?;
        let key_schema = Arc::new(Schema::new(vec![self.key_field.clone()]));
        let mut groups = Groups {
            values: new_group_values(key_schema, &GroupOrdering::None)?,
            accumulators: self
                .aggregates
                .iter()
                .map(|a| a.create_groups_accumulator())
                .collect::<DFResult<_>>()?,
            reservation: MemoryConsumer::new(format!("DictionaryAggregateExec[{partition}]"))
                .register(context.memory_pool()),
            last_values: None,
            entries: Vec::new(),
            rows: Vec::new(),
            null_group: None,
        };
        let key = self.key;
        let arguments = self.arguments.clone();
        let filters = self.filters.clone();
        let mode = self.mode;
        let schema = Arc::clone(&self.schema);
        let batch_size = context.session_config().batch_size();
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let all = async move {
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let _timer = baseline.elapsed_compute().timer();
                groups.update(&batch, key, &arguments, &filters)?;
            }
            let _timer = baseline.elapsed_compute().timer();
            let out = groups.finish(&schema, mode)?;
            baseline.record_output(out.num_rows());
            let slices: Vec<DFResult<RecordBatch>> = (0..out.num_rows())
                .step_by(batch_size.max(1))
                .map(|at| Ok(out.slice(at, batch_size.min(out.num_rows() - at))))
                .collect();
            Ok::<_, DataFusionError>(futures::stream::iter(slices))
        };
        let stream = futures::stream::once(all).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}

/// One partition's groups and accumulators.
struct Groups {
    values: Box<dyn GroupValues>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    reservation: MemoryReservation,
    /// The dictionary `entries` were interned for; kept alive so that a
    /// pointer comparison cannot be fooled by a reused allocation.
    last_values: Option<ArrayRef>,
    /// The group of each entry of `last_values`.
    entries: Vec<usize>,
    /// The group of each row of the current batch.
    rows: Vec<usize>,
    null_group: Option<usize>,
}

impl Groups {
    fn update(
        &mut self,
        batch: &RecordBatch,
        key: usize,
        arguments: &[Vec<Arc<dyn PhysicalExpr>>],
        filters: &[Option<Arc<dyn PhysicalExpr>>],
    ) -> DFResult<()> {
        let column = batch.column(key);
        let Some(dict) = column.as_dictionary_opt::<UInt32Type>() else {
            return Err(DataFusionError::Internal(format!(
                "DictionaryAggregateExec expected a dictionary, got {}",
                column.data_type()
            )));
        };
        let values = dict.values();
        if !self
            .last_values
            .as_ref()
            .is_some_and(|v| Arc::ptr_eq(v, values))
        {
            self.entries.clear();
            self.values
                .intern(&[Arc::clone(values)], &mut self.entries)?;
            self.last_values = Some(Arc::clone(values));
        }
        let keys = dict.keys();
        if keys.null_count() > 0 && self.null_group.is_none() {
            let mut g = Vec::with_capacity(1);
            self.values
                .intern(&[new_null_array(&DataType::Utf8, 1)], &mut g)?;
            self.null_group = g.first().copied();
        }
        self.rows.clear();
        self.rows.reserve(keys.len());
        for (i, k) in keys.values().iter().enumerate() {
            let group = if keys.is_null(i) {
                self.null_group
            } else {
                self.entries.get(*k as usize).copied()
            };
            self.rows.push(group.ok_or_else(|| {
                DataFusionError::Internal("a dictionary key without its entry".into())
            })?);
        }
        let total = self.values.len();
        let rows = batch.num_rows();
        for ((acc, args), filter) in self.accumulators.iter_mut().zip(arguments).zip(filters) {
            let args = args
                .iter()
                .map(|e| e.evaluate(batch).and_then(|v| v.into_array(rows)))
                .collect::<DFResult<Vec<_>>>()?;
            let filter = match filter {
                Some(f) => Some(f.evaluate(batch)?.into_array(rows)?),
                None => None,
            };
            acc.update_batch(
                &args,
                &self.rows,
                filter.as_ref().map(|f| f.as_boolean()),
                total,
            )?;
        }
        let size = self.values.size()
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
            + self.rows.capacity() * std::mem::size_of::<usize>();
        self.reservation.try_resize(size)
    }

    fn finish(&mut self, schema: &SchemaRef, mode: AggregateMode) -> DFResult<RecordBatch> {
        let mut columns = self.values.emit(EmitTo::All)?;
        for acc in &mut self.accumulators {
            match mode {
                AggregateMode::Single => columns.push(acc.evaluate(EmitTo::All)?),
                _ => columns.extend(acc.state(EmitTo::All)?),
            }
        }
        self.reservation.free();
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}
