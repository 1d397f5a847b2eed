//! `LIMIT n BY k` without an ORDER BY keeps the first `n` rows of each key
//! in the order they arrive, and answers them in that order, as
//! ClickHouse's LimitByTransform does; the rewrite in `rewrite/mod.rs`
//! reads it as `row_number() OVER (PARTITION BY k)`, which DataFusion plans
//! as a hash repartition and a sort by `k` — the rows come back grouped by
//! key, and which rows a key keeps is whatever the sort left first.
//!
//! [`KeyedRowNumber`] replaces such a window (a lone `row_number()` with a
//! PARTITION BY and no ORDER BY, whose rows' order SQL leaves open anyway)
//! with [`KeyedRowNumberExec`]: one stream that numbers each row within its
//! key as it passes, keeping the input's order and needing no sort. Only a
//! window reached from the root through operators that keep their input's
//! order and ask nothing of it (projections, filters, limits, windows over
//! the whole input) is replaced, so no operator above loses an
//! ordering it relied on.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{internal_err, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::window::StandardWindowExpr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::StreamExt;

#[derive(Debug, Default)]
pub struct KeyedRowNumber;

impl PhysicalOptimizerRule for KeyedRowNumber {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        crate::topmost::replace_topmost(plan, &passes, &replace)
    }

    fn name(&self) -> &str {
        "keyed_row_number"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn passes(node: &Arc<dyn ExecutionPlan>) -> bool {
    node.downcast_ref::<ProjectionExec>().is_some()
        || node.downcast_ref::<FilterExec>().is_some()
        || node.downcast_ref::<CoalescePartitionsExec>().is_some()
        || node.downcast_ref::<GlobalLimitExec>().is_some()
        || node.downcast_ref::<LocalLimitExec>().is_some()
        || is_whole_input_window(node)
}

/// A window over the whole input (`count() OVER ()`): it asks nothing of
/// its input's order and keeps it.
fn is_whole_input_window(node: &Arc<dyn ExecutionPlan>) -> bool {
    let exprs = if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
        w.window_expr()
    } else if let Some(w) = node.downcast_ref::<WindowAggExec>() {
        w.window_expr()
    } else {
        return false;
    };
    exprs
        .iter()
        .all(|e| e.partition_by().is_empty() && e.order_by().is_empty())
}

/// A window of one `row_number()` with PARTITION BY and no ORDER BY, over
/// the sort (and hash repartition) DataFusion put under it for the
/// partitioning: the exec over the sort's input.
fn replace(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let (exprs, input) = if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
        (w.window_expr(), w.input())
    } else if let Some(w) = node.downcast_ref::<WindowAggExec>() {
        (w.window_expr(), w.input())
    } else {
        return Ok(None);
    };
    let [expr] = exprs else {
        return Ok(None);
    };
    let Some(standard) = expr.as_any().downcast_ref::<StandardWindowExpr>() else {
        return Ok(None);
    };
    let is_row_number = standard
        .get_standard_func_expr()
        .as_any()
        .downcast_ref::<WindowUDFExpr>()
        .is_some_and(|f| f.fun().name() == "row_number");
    if !is_row_number || !expr.order_by().is_empty() || expr.partition_by().is_empty() {
        return Ok(None);
    }
    let mut below = Arc::clone(input);
    if let Some(sort) = below.downcast_ref::<SortExec>() {
        below = Arc::clone(sort.input());
    }
    if let Some(r) = below.downcast_ref::<RepartitionExec>() {
        if matches!(r.partitioning(), Partitioning::Hash(..)) {
            below = Arc::clone(r.input());
        }
    }
    // The keys are evaluated against the window's input, whose columns the
    // sort and repartition passed through unchanged.
    if below.schema() != input.schema() {
        return Ok(None);
    }
    if below.output_partitioning().partition_count() > 1 {
        below = Arc::new(CoalescePartitionsExec::new(below));
    }
    let exec = KeyedRowNumberExec::new(below, expr.partition_by().to_vec(), node.schema());
    Ok(Some(Arc::new(exec)))
}

/// Appends each row's number within its key (1, 2, …) in arrival order;
/// one partition in, one out.
pub struct KeyedRowNumberExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    props: Arc<PlanProperties>,
}

impl KeyedRowNumberExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
    ) -> Self {
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        KeyedRowNumberExec {
            input,
            keys,
            schema,
            props,
        }
    }
}

impl fmt::Debug for KeyedRowNumberExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyedRowNumberExec")
    }
}

impl DisplayAs for KeyedRowNumberExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        write!(f, "KeyedRowNumberExec: keys=[{}]", keys.join(", "))
    }
}

impl ExecutionPlan for KeyedRowNumberExec {
    fn name(&self) -> &str {
        "KeyedRowNumberExec"
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
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for k in &self.keys {
            if f(k)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(input) = children.into_iter().next() else {
            return internal_err!("KeyedRowNumberExec needs its input");
        };
        Ok(Arc::new(KeyedRowNumberExec::new(
            input,
            self.keys.clone(),
            Arc::clone(&self.schema),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("KeyedRowNumberExec has one partition, asked for {partition}");
        }
        let input = self.input.execute(0, context)?;
        let in_schema = self.input.schema();
        let fields = self
            .keys
            .iter()
            .map(|k| Ok(SortField::new(k.data_type(&in_schema)?)))
            .collect::<Result<Vec<_>>>()?;
        let converter = RowConverter::new(fields)?;
        let keys = self.keys.clone();
        let schema = Arc::clone(&self.schema);
        let mut seen: HashMap<Box<[u8]>, u64> = HashMap::new();
        let out = input.map(move |batch| {
            let batch = batch?;
            let n = batch.num_rows();
            let columns = keys
                .iter()
                .map(|k| k.evaluate(&batch)?.into_array(n))
                .collect::<Result<Vec<_>>>()?;
            let rows = converter.convert_columns(&columns)?;
            let numbers: UInt64Array = (0..n)
                .map(|i| {
                    let row = rows.row(i);
                    match seen.get_mut(row.as_ref()) {
                        Some(c) => {
                            *c += 1;
                            *c
                        }
                        None => {
                            seen.insert(row.as_ref().into(), 1);
                            1
                        }
                    }
                })
                .collect();
            let mut out = batch.columns().to_vec();
            out.push(Arc::new(numbers));
            Ok(RecordBatch::try_new(Arc::clone(&schema), out)?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            out,
        )))
    }
}
