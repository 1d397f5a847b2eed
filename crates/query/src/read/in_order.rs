//! Reading in the sorting key's order (ClickHouse's `optimize_read_in_order`)
//! for a top-N: `SELECT … ORDER BY <a prefix of the table's ORDER BY> LIMIT n`
//! reads each part as one stream, already sorted, and merges the streams.
//! The first n rows come out without sorting anything, and rows with equal
//! keys come in the order ClickHouse returns them: insertion order within a
//! part, the newest part first. A `SortExec`'s
//! top-N keeps an arbitrary subset of the ties instead.
//!
//! Only ascending keys of non-Nullable plain columns qualify (ClickHouse
//! reads a descending ORDER BY backwards, ties reversed; that is not done
//! here), and only under a LIMIT: every part is one stream, so an unlimited
//! sort of many parts keeps the partitioned full sort.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DFResult;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, Partitioning, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{ExecutionPlan, PlanProperties};

use super::{MergeTreeScanExec, ReadTask};

/// The physical optimizer rule (placed before [`super::lazy::LazyTopN`],
/// which would otherwise take the same top-N).
#[derive(Debug)]
pub(crate) struct ReadInOrder;

impl PhysicalOptimizerRule for ReadInOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            Ok(match rewrite(&node)? {
                Some(new) => Transformed::new(new, true, TreeNodeRecursion::Jump),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "ReadInOrder"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` as a merge of the scan's parts read in order, when it is a top-N
/// by a prefix of the scanned table's sorting key.
fn rewrite(node: &Arc<dyn ExecutionPlan>) -> DFResult<Option<Arc<dyn ExecutionPlan>>> {
    // A partitioned top-N: the merge, projections, then the sorts (the merge
    // stays and sorts by what the projections make of the sort's columns).
    let mut upper: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
    let (merge, sort) = if let Some(m) = node.downcast_ref::<SortPreservingMergeExec>() {
        let mut at = Arc::clone(m.input());
        while at.downcast_ref::<ProjectionExec>().is_some() {
            upper.push(Arc::clone(&at));
            at = Arc::clone(at.children()[0]);
        }
        match at.downcast_ref::<SortExec>() {
            Some(s) if s.preserve_partitioning() && m.fetch() == s.fetch() => (Some(m), s.clone()),
            _ => return Ok(None),
        }
    } else if let Some(s) = node.downcast_ref::<SortExec>() {
        if s.preserve_partitioning() {
            return Ok(None);
        }
        (None, s.clone())
    } else {
        return Ok(None);
    };
    let Some(fetch) = sort.fetch() else {
        return Ok(None);
    };
    // The sort's columns, followed down to the scan through nodes that keep
    // rows in order (a partition merge is dropped: the new merge replaces it).
    let mut columns: Vec<usize> = Vec::new();
    for e in sort.expr().iter() {
        let Some(c) = e.expr.downcast_ref::<Column>() else {
            return Ok(None);
        };
        if e.options.descending {
            return Ok(None);
        }
        columns.push(c.index());
    }
    let mut chain: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
    let mut at = Arc::clone(sort.input());
    let scan = loop {
        if let Some(f) = at.downcast_ref::<FilterExec>() {
            if f.fetch().is_some() {
                return Ok(None);
            }
            if let Some(projection) = f.projection() {
                for c in columns.iter_mut() {
                    let Some(&below) = projection.get(*c) else {
                        return Ok(None);
                    };
                    *c = below;
                }
            }
            chain.push(Arc::clone(&at));
            at = Arc::clone(f.input());
        } else if let Some(p) = at.downcast_ref::<ProjectionExec>() {
            for c in columns.iter_mut() {
                let Some(below) = p
                    .expr()
                    .get(*c)
                    .and_then(|e| e.expr.downcast_ref::<Column>())
                else {
                    return Ok(None);
                };
                *c = below.index();
            }
            chain.push(Arc::clone(&at));
            at = Arc::clone(p.input());
        } else if at.downcast_ref::<CooperativeExec>().is_some() {
            chain.push(Arc::clone(&at));
            at = Arc::clone(at.children()[0]);
        } else if let Some(c) = at.downcast_ref::<CoalescePartitionsExec>() {
            if c.fetch().is_some() {
                return Ok(None);
            }
            at = Arc::clone(c.input());
        } else if let Some(s) = at.downcast_ref::<MergeTreeScanExec>() {
            break s.clone();
        } else {
            return Ok(None);
        }
    };
    if !scan.shared.options.read_in_order {
        return Ok(None);
    }
    let schema = scan.schema();
    let key = scan.shared.table.meta().order_by;
    let mut ordering = Vec::new();
    for (i, &c) in columns.iter().enumerate() {
        let field = schema.field(c);
        if field.is_nullable() || key.get(i).map(|k| k.trim_matches('`')) != Some(field.name()) {
            return Ok(None);
        }
        ordering.push(PhysicalSortExpr::new(
            Arc::new(Column::new(field.name(), c)) as Arc<dyn PhysicalExpr>,
            sort.expr()[i].options,
        ));
    }
    let Some(ordering) = LexOrdering::new(ordering) else {
        return Ok(None);
    };
    let Some(mut in_order) = scan.in_part_order(ordering) else {
        return Ok(None);
    };
    // Without a filter between, no part stream needs more than the top-N.
    if !chain
        .iter()
        .any(|n| n.downcast_ref::<FilterExec>().is_some())
    {
        in_order.limit = Some(in_order.limit.map_or(fetch, |l| l.min(fetch)));
    }
    let mut plan: Arc<dyn ExecutionPlan> = Arc::new(in_order);
    // Recomputed: the partitioning and ordering below changed.
    for link in chain.into_iter().rev().chain(upper.into_iter().rev()) {
        plan = link.replace_children(
            vec![plan],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
    }
    let order = merge.map_or_else(|| sort.expr().clone(), |m| m.expr().clone());
    // Stable: equal keys from the lower stream first (DataFusion's default
    // alternates between streams).
    Ok(Some(Arc::new(
        SortPreservingMergeExec::new(order, plan)
            .with_fetch(Some(fetch))
            .with_round_robin_repartition(false),
    )))
}

impl MergeTreeScanExec {
    /// This scan with one partition per part, each reading its pieces in
    /// order, declared sorted by `ordering`; the newest part is stream 0
    /// (the merge above takes equal keys from the lower stream first). None
    /// once it carries row references or dynamic filters.
    fn in_part_order(&self, ordering: LexOrdering) -> Option<MergeTreeScanExec> {
        if !self.dynamic.is_empty() || self.shared.rows.is_some() {
            return None;
        }
        let mut tasks: Vec<ReadTask> = self.partitions.iter().flatten().cloned().collect();
        // The newest part first, as ClickHouse takes parts from the end of
        // its list when it spreads them over streams; each part's pieces in
        // order.
        tasks.sort_by(|(a, ra), (b, rb)| {
            let part = |p: &qh_storage::Part| {
                (
                    p.name.partition_id.clone(),
                    p.name.min_block,
                    p.name.max_block,
                    p.name.level,
                )
            };
            let start = |r: &[std::ops::Range<usize>]| r.first().map_or(0, |r| r.start);
            part(b).cmp(&part(a)).then(start(ra).cmp(&start(rb)))
        });
        let mut partitions: Vec<Vec<ReadTask>> = Vec::new();
        for t in tasks {
            match partitions.last_mut() {
                Some(p) if Arc::ptr_eq(&p[0].0, &t.0) => p.push(t),
                _ => partitions.push(vec![t]),
            }
        }
        if partitions.is_empty() {
            partitions.push(Vec::new());
        }
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new_with_orderings(self.schema(), [ordering]),
            Partitioning::UnknownPartitioning(partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Some(MergeTreeScanExec {
            partitions,
            props,
            ..self.clone()
        })
    }
}
