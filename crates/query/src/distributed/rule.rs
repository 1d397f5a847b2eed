//! Where a plan over a Distributed table is cut into shard stages.

use std::sync::Arc;

use datafusion::config::ConfigOptions;
use datafusion::error::DataFusionError;
use datafusion::error::Result as DFResult;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::limit::GlobalLimitExec;
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::ExecutionPlan;
use qh_types::ErrorCode;

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
        let mut scans = Vec::new();
        let mut others = Vec::new();
        collect_leaves(&plan, &mut scans, &mut others);
        product_mode(&scans)?;
        match no_merge_mode(&scans, &others)? {
            0 => cut(plan),
            mode => whole_query(plan, mode),
        }
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

fn unsupported(why: String) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::QueryError::other(
        ErrorCode::NOT_IMPLEMENTED,
        why,
    )))
}

/// `distributed_product_mode`: a subquery or join over a Distributed table
/// inside a query over one is always computed once over every shard (what
/// `GLOBAL` asks for), which is the answer of `deny` (where ClickHouse
/// refuses instead), `global` and `allow` alike. `local` (each shard joins
/// against only its own rows) would give another answer: refused, never
/// silently answered differently.
fn product_mode(scans: &[&DistributedScanExec]) -> DFResult<()> {
    let Some(scan) = scans.first() else {
        return Ok(());
    };
    let mode = scan
        .target
        .settings
        .value_or_default("distributed_product_mode");
    match mode.to_ascii_lowercase().as_str() {
        "deny" | "global" | "allow" => Ok(()),
        "local" if scans.len() < 2 => Ok(()),
        "local" => Err(unsupported(
            "distributed_product_mode = 'local' is not supported: a subquery or join over a Distributed table is computed over every shard, as with 'global'".into(),
        )),
        other => Err(DataFusionError::External(Box::new(
            crate::error::QueryError::BadArguments(format!(
                "Unexpected value of DistributedProductMode: '{other}' (deny, local, global, allow)"
            )),
        ))),
    }
}

/// `distributed_group_by_no_merge` of the query (0 unless it reads exactly
/// one Distributed table and nothing else).
fn no_merge_mode(scans: &[&DistributedScanExec], others: &[String]) -> DFResult<u64> {
    let [scan] = scans else {
        return Ok(0);
    };
    let mode = scan
        .target
        .settings
        .uint("distributed_group_by_no_merge")
        .map_err(|e| unsupported(e.to_string()))?;
    if mode == 0 {
        return Ok(0);
    }
    if mode > 2 {
        return Err(unsupported(format!(
            "distributed_group_by_no_merge = {mode} is not supported (0, 1 or 2)"
        )));
    }
    if let Some(other) = others.first() {
        return Err(unsupported(format!(
            "distributed_group_by_no_merge with another table in the query ({other}) is not supported"
        )));
    }
    Ok(mode)
}

fn collect_leaves<'a>(
    node: &'a Arc<dyn ExecutionPlan>,
    scans: &mut Vec<&'a DistributedScanExec>,
    others: &mut Vec<String>,
) {
    if let Some(scan) = node.downcast_ref::<DistributedScanExec>() {
        scans.push(scan);
        return;
    }
    let children = node.children();
    if children.is_empty() && !node.is::<EmptyExec>() && !node.is::<PlaceholderRowExec>() {
        others.push(node.name().to_string());
    }
    for c in children {
        collect_leaves(c, scans, others);
    }
}

/// `distributed_group_by_no_merge` 1: every shard runs the whole plan and
/// the results are concatenated. 2: the top ORDER BY and LIMIT also apply
/// here, over the shards' results (each shard keeps offset + limit rows).
fn whole_query(plan: Arc<dyn ExecutionPlan>, mode: u64) -> DFResult<Arc<dyn ExecutionPlan>> {
    if mode == 1 {
        let remote = Arc::new(RemoteStageExec::try_new(plan, StageKind::Rows)?);
        return Ok(Arc::new(CoalescePartitionsExec::new(remote)));
    }
    // Mode 2: [GlobalLimit] over [sort] at the top of the plan.
    let (limit, below) = match plan.downcast_ref::<GlobalLimitExec>() {
        Some(l) => (Some((l.skip(), l.fetch())), Arc::clone(l.input())),
        None => (None, Arc::clone(&plan)),
    };
    // A LIMIT without OFFSET is already the sort's fetch.
    let ordering = below
        .downcast_ref::<SortExec>()
        .map(|s| (s.expr().clone(), s.fetch()))
        .or_else(|| {
            below
                .downcast_ref::<SortPreservingMergeExec>()
                .map(|s| (s.expr().clone(), s.fetch()))
        });
    if ordering.is_none() && has_sort(&below) {
        return Err(unsupported(
            "distributed_group_by_no_merge = 2 with an ORDER BY that is not the query's last step is not supported".into(),
        ));
    }
    let shard_plan: Arc<dyn ExecutionPlan> = match limit {
        Some((skip, fetch)) => Arc::new(GlobalLimitExec::new(
            Arc::clone(&below),
            0,
            fetch.map(|f| f + skip),
        )),
        None => Arc::clone(&below),
    };
    let mut out: Arc<dyn ExecutionPlan> =
        Arc::new(RemoteStageExec::try_new(shard_plan, StageKind::Rows)?);
    out = match ordering {
        Some((expr, fetch)) => Arc::new(SortExec::new(expr, out).with_fetch(match limit {
            Some((skip, f)) => f.map(|f| f + skip),
            None => fetch,
        })),
        None => Arc::new(CoalescePartitionsExec::new(out)),
    };
    if let Some((skip, fetch)) = limit {
        out = Arc::new(GlobalLimitExec::new(out, skip, fetch));
    }
    Ok(out)
}

fn has_sort(node: &Arc<dyn ExecutionPlan>) -> bool {
    node.is::<SortExec>()
        || node.is::<SortPreservingMergeExec>()
        || node.children().into_iter().any(has_sort)
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

/// The one Distributed scan under a stage's root.
pub(crate) fn stage_leaf(root: &Arc<dyn ExecutionPlan>) -> Option<&DistributedScanExec> {
    let mut scans = Vec::new();
    collect_leaves(root, &mut scans, &mut Vec::new());
    match scans.as_slice() {
        [only] => Some(only),
        _ => None,
    }
}
