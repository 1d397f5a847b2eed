//! Where a plan over a Distributed table is cut into shard stages.

use std::sync::Arc;

use datafusion::config::ConfigOptions;
use datafusion::error::Result as DFResult;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::ExecutionPlan;

use super::exec::{RemoteStageExec, StageKind};
use super::scan::DistributedScanExec;

/// Replaces each fragment over a Distributed scan with a remote stage. It
/// runs first, on the plan as planned: the fragment is then the plain
/// scan → filter → projection → partial aggregate chain (no repartitions
/// yet), which every shard can run and the later rules optimize on both
/// sides.
#[derive(Debug, Default)]
pub struct DistributedStages;

impl PhysicalOptimizerRule for DistributedStages {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        cut(plan)
    }

    fn name(&self) -> &str {
        "distributed_stages"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn cut(node: Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
    if let Some(kind) = stage_at(&node) {
        return Ok(Arc::new(RemoteStageExec::try_new(node, kind)?));
    }
    // ORDER BY ... LIMIT n over rows: each shard sorts and sends its first
    // n; the same sort with the same limit merges them here.
    if let Some(sort) = top_n(&node) {
        let (expr, fetch) = (sort.expr().clone(), sort.fetch());
        let remote = Arc::new(RemoteStageExec::try_new(node, StageKind::Rows)?);
        return Ok(Arc::new(SortExec::new(expr, remote).with_fetch(fetch)));
    }
    let children: Vec<Arc<dyn ExecutionPlan>> = node.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(node);
    }
    let mut changed = false;
    let mut new = Vec::with_capacity(children.len());
    for c in children {
        let n = cut(Arc::clone(&c))?;
        changed |= !Arc::ptr_eq(&n, &c);
        new.push(n);
    }
    if !changed {
        return Ok(node);
    }
    #[allow(deprecated)]
    node.with_new_children(new)
}

/// The stage rooted at `node`, if `node` is the top of a shard fragment:
/// the lowest partial aggregate over a Distributed scan (so a
/// count(DISTINCT), planned as two aggregations, ships the inner one's
/// states and never double counts), else the highest row-wise operator
/// chain over it.
fn stage_at(node: &Arc<dyn ExecutionPlan>) -> Option<StageKind> {
    if let Some(agg) = node.downcast_ref::<AggregateExec>() {
        return (*agg.mode() == AggregateMode::Partial && leaf_of(agg.input()).is_some())
            .then_some(StageKind::PartialAggregate);
    }
    leaf_of(node).map(|_| StageKind::Rows)
}

/// The Distributed scan at the bottom of a chain of row-wise operators.
pub(crate) fn leaf_of(node: &Arc<dyn ExecutionPlan>) -> Option<&DistributedScanExec> {
    if let Some(leaf) = node.downcast_ref::<DistributedScanExec>() {
        return Some(leaf);
    }
    let rowwise = node.is::<FilterExec>() || node.is::<ProjectionExec>();
    if !rowwise {
        return None;
    }
    match node.children().as_slice() {
        [only] => leaf_of(only),
        _ => None,
    }
}

/// A sort with a limit directly over a Distributed scan's row chain.
fn top_n(node: &Arc<dyn ExecutionPlan>) -> Option<&SortExec> {
    let sort = node.downcast_ref::<SortExec>()?;
    (sort.fetch().is_some() && !sort.preserve_partitioning() && leaf_of(sort.input()).is_some())
        .then_some(sort)
}

/// The Distributed scan under a stage's root (the aggregate's or top-N
/// sort's input chain, or the chain itself).
pub(crate) fn stage_leaf(root: &Arc<dyn ExecutionPlan>) -> Option<&DistributedScanExec> {
    if let Some(agg) = root.downcast_ref::<AggregateExec>() {
        return leaf_of(agg.input());
    }
    if let Some(sort) = top_n(root) {
        return leaf_of(sort.input());
    }
    leaf_of(root)
}
