//! `SELECT DISTINCT` over one stream answers its rows in the order they
//! first appear, as ClickHouse's DistinctTransform does (a table of one
//! part, a subquery, VALUES): users and tests read that order without an
//! ORDER BY. DataFusion plans DISTINCT as a partial aggregation, a hash
//! repartition and a final aggregation per partition, which interleaves
//! the partitions' groups. Where the input is a single partition anyway,
//! [`DistinctInOrder`] makes it one aggregation (DataFusion's hash table
//! emits groups in the order it first saw them). Inputs of several
//! partitions keep the parallel plan: ClickHouse's order is not fixed there
//! either.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::error::Result as DFResult;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

#[derive(Debug, Default)]
pub struct DistinctInOrder;

impl PhysicalOptimizerRule for DistinctInOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        crate::topmost::replace_topmost(plan, &passes, &single_stage)
    }

    fn name(&self) -> &str {
        "distinct_in_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Only the DISTINCT that makes the query's result, reached from the root
/// through operators that keep its rows' order and need no partitioning of
/// their input (a UNION's interleave, a join, need the hash partitioning).
fn passes(node: &Arc<dyn ExecutionPlan>) -> bool {
    node.downcast_ref::<ProjectionExec>().is_some()
        || node.downcast_ref::<CoalescePartitionsExec>().is_some()
        || node.downcast_ref::<GlobalLimitExec>().is_some()
        || node.downcast_ref::<LocalLimitExec>().is_some()
}

/// Final (per partition) ← hash repartition ← partial, without aggregate
/// functions, over one partition: one aggregation of that partition.
fn single_stage(node: &Arc<dyn ExecutionPlan>) -> DFResult<Option<Arc<dyn ExecutionPlan>>> {
    let Some(last) = node.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    if *last.mode() != AggregateMode::FinalPartitioned || !last.aggr_expr().is_empty() {
        return Ok(None);
    }
    let Some(repartition) = last.input().downcast_ref::<RepartitionExec>() else {
        return Ok(None);
    };
    let Some(first) = repartition.input().downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    if *first.mode() != AggregateMode::Partial
        || !first.aggr_expr().is_empty()
        || first.input().output_partitioning().partition_count() != 1
        || first.group_expr().has_grouping_set()
    {
        return Ok(None);
    }
    let one = AggregateExec::try_new(
        AggregateMode::Single,
        first.group_expr().clone(),
        vec![],
        vec![],
        Arc::clone(first.input()),
        first.input().schema(),
    )?;
    if one.schema() != node.schema() {
        return Ok(None);
    }
    Ok(Some(Arc::new(one)))
}
