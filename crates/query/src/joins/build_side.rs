//! ClickHouse's hash join always builds its table from the right side and
//! streams the left through it: users put the small table on the right, and
//! a LEFT JOIN without ORDER BY comes back in the left's order with unmatched
//! rows in place. DataFusion builds on the left (or on whichever side its
//! statistics call smaller, which our scans do not always give).
//!
//! [`BuildOnRight`] runs just before DataFusion's `join_selection` (whose
//! statistics-driven swapping is turned off in `engine/state.rs`) and swaps
//! every hash join whose type allows it, so that the SQL right side becomes
//! DataFusion's build (left) side — unless both sides' sizes are known and
//! the left is the smaller, where ClickHouse's `query_plan_join_swap_table =
//! 'auto'` (its default) builds on the left too — collected whole into one table as
//! ClickHouse's `hash` join does (the left streams through it in its own
//! partitions, so no repartitioning reorders it). `join_selection` still
//! swaps an unbounded build side back, which an infinite `system.numbers`
//! needs.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, JoinType, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::StreamExt;

#[derive(Debug, Default)]
pub struct BuildOnRight;

impl PhysicalOptimizerRule for BuildOnRight {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let mode = *join.partition_mode();
            // Partitioned joins were placed by someone who chose the sides.
            if !join.join_type().supports_swap()
                || join.null_aware
                || !matches!(mode, PartitionMode::Auto | PartitionMode::CollectLeft)
            {
                return Ok(Transformed::no(node));
            }
            if left_is_smaller(join.left(), join.right()) {
                return Ok(Transformed::yes(Arc::new(
                    join.builder()
                        .with_partition_mode(PartitionMode::CollectLeft)
                        .build()?,
                )));
            }
            // A LEFT join's unmatched rows come in place only when the probe
            // side declares an order (DataFusion appends them to each batch
            // otherwise): the left gets a row number to declare one by. The
            // whole right side goes into one table, the left streams through
            // it in its own partitions (and order).
            let swapped = if *join.join_type() == JoinType::Left {
                numbered_left(join)?.swap_inputs(PartitionMode::CollectLeft)?
            } else {
                join.swap_inputs(PartitionMode::CollectLeft)?
            };
            Ok(Transformed::yes(swapped))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "BuildOnRight"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether statistics say `left` is the smaller input (in bytes, else in
/// rows); false when either is unknown.
fn left_is_smaller(left: &Arc<dyn ExecutionPlan>, right: &Arc<dyn ExecutionPlan>) -> bool {
    let stats = StatisticsContext::new();
    let args = StatisticsArgs::new();
    let (Ok(l), Ok(r)) = (
        stats.compute(left.as_ref(), &args),
        stats.compute(right.as_ref(), &args),
    ) else {
        return false;
    };
    match (l.total_byte_size.get_value(), r.total_byte_size.get_value()) {
        (Some(a), Some(b)) => a < b,
        _ => match (l.num_rows.get_value(), r.num_rows.get_value()) {
            (Some(a), Some(b)) => a < b,
            _ => false,
        },
    }
}

/// The row-number column [`ProbeOrderExec`] adds.
const PROBE_ROW: &str = "__qh_probe_row";

/// `join` with its left input numbered by [`ProbeOrderExec`], the number
/// left out of its output.
fn numbered_left(join: &HashJoinExec) -> Result<HashJoinExec> {
    let left = Arc::clone(join.left());
    let n_left = left.schema().fields().len();
    let n_out = join.schema().fields().len();
    // Output columns are the left's then the right's: past the left's, one
    // further on now.
    let projection: Vec<usize> = match join.projection.as_deref() {
        Some(p) => p.to_vec(),
        None => (0..n_out).collect(),
    }
    .into_iter()
    .map(|i| if i < n_left { i } else { i + 1 })
    .collect();
    let numbered: Arc<dyn ExecutionPlan> = Arc::new(ProbeOrderExec::try_new(left)?);
    join.builder()
        .with_new_children(vec![numbered, Arc::clone(join.right())])?
        .with_projection(Some(projection))
        .build()
}

/// Passes its input through with a row number per partition appended, and
/// declares its output ordered by it (which is true).
pub(crate) struct ProbeOrderExec {
    input: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    props: Arc<PlanProperties>,
}

impl ProbeOrderExec {
    fn try_new(input: Arc<dyn ExecutionPlan>) -> Result<Self> {
        let in_schema = input.schema();
        let mut fields: Vec<Arc<Field>> = in_schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(PROBE_ROW, DataType::UInt64, false)));
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            in_schema.metadata().clone(),
        ));
        let row: Arc<dyn PhysicalExpr> = Arc::new(Column::new(PROBE_ROW, in_schema.fields().len()));
        let orderings = LexOrdering::new([PhysicalSortExpr::new_default(row)]);
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new_with_orderings(Arc::clone(&schema), orderings),
            input.output_partitioning().clone(),
            input.pipeline_behavior(),
            input.boundedness(),
        ));
        Ok(ProbeOrderExec {
            input,
            schema,
            props,
        })
    }
}

impl fmt::Debug for ProbeOrderExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProbeOrderExec")
    }
}

impl DisplayAs for ProbeOrderExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ProbeOrderExec")
    }
}

impl ExecutionPlan for ProbeOrderExec {
    fn name(&self) -> &str {
        "ProbeOrderExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(input) = children.into_iter().next() else {
            return internal_err!("ProbeOrderExec needs its input");
        };
        Ok(Arc::new(ProbeOrderExec::try_new(input)?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let schema = Arc::clone(&self.schema);
        let mut next = 0u64;
        let out = input.map(move |batch| {
            let batch = batch?;
            let n = batch.num_rows() as u64;
            let mut columns = batch.columns().to_vec();
            columns.push(Arc::new(UInt64Array::from_iter_values(next..next + n)));
            next += n;
            Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            out,
        )))
    }
}
