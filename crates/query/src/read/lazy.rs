//! Lazy materialization of a top-N (ClickHouse's
//! `query_plan_optimize_lazy_materialization`): for
//! `SELECT * FROM t ORDER BY ts DESC LIMIT 10` the scan reads only the sort
//! and filter columns plus a reference to each row; the top-N keeps ten
//! rows, and only then are the other columns read, for those rows alone.
//!
//! [`LazyTopN`] rewrites the plan when a top-N (a `SortExec` with a fetch,
//! under its `SortPreservingMergeExec` when partitioned) reads a MergeTree
//! scan through nothing but filters, and the scan has columns the sort and
//! filters do not need. [`LazyMaterializeExec`] then puts the rows back
//! together in the top-N's order, so the answer is the same row for row.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches, interleave};
use datafusion::arrow::datatypes::{SchemaRef, UInt64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, HashSet};
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns};
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, Partitioning, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::TryStreamExt;

use super::{granule_starts, MergeTreeScanExec, RowRefs, Shared, ROW_BITS, ROW_REF};
use crate::provider::ext;

/// The physical optimizer rule; it must run before the post-optimization
/// filter pushdown, which binds the top-N's dynamic filter to the scan it
/// finally reads.
#[derive(Debug)]
pub(crate) struct LazyTopN;

impl PhysicalOptimizerRule for LazyTopN {
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
        "LazyTopN"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A node between the top-N and the scan.
enum Link {
    Filter(Arc<dyn PhysicalExpr>),
    Coalesce,
}

/// The lazy form of `node` when it is a top-N over a scan; None otherwise.
fn rewrite(node: &Arc<dyn ExecutionPlan>) -> DFResult<Option<Arc<dyn ExecutionPlan>>> {
    let (merge, sort) = if let Some(m) = node.downcast_ref::<SortPreservingMergeExec>() {
        match m.input().downcast_ref::<SortExec>() {
            Some(s) if s.preserve_partitioning() => (Some(m), s),
            _ => return Ok(None),
        }
    } else if let Some(s) = node.downcast_ref::<SortExec>() {
        if s.preserve_partitioning() {
            return Ok(None);
        }
        (None, s)
    } else {
        return Ok(None);
    };
    let Some(fetch) = sort.fetch() else {
        return Ok(None);
    };
    if merge.is_some_and(|m| m.fetch() != Some(fetch)) {
        return Ok(None);
    }
    // Down to the scan through filters and partition merges only.
    let mut links = Vec::new();
    let mut at = Arc::clone(sort.input());
    let scan = loop {
        if let Some(f) = at.downcast_ref::<FilterExec>() {
            // A projection on the filter only narrows what goes up: the
            // rebuilt filter passes every column, rebound by name above.
            if f.fetch().is_some() {
                return Ok(None);
            }
            links.push(Link::Filter(Arc::clone(f.predicate())));
            at = Arc::clone(f.input());
        } else if let Some(c) = at.downcast_ref::<CoalescePartitionsExec>() {
            if c.fetch().is_some() {
                return Ok(None);
            }
            links.push(Link::Coalesce);
            at = Arc::clone(c.input());
        } else if let Some(s) = at.downcast_ref::<MergeTreeScanExec>() {
            break s.clone();
        } else {
            return Ok(None);
        }
    };
    let options = scan.shared.options;
    if !options.lazy || (options.lazy_max_rows > 0 && fetch as u64 > options.lazy_max_rows) {
        return Ok(None);
    }
    let schema = Arc::clone(&scan.shared.schema);
    if scan.shared.out_schema.fields().len() != schema.fields().len() {
        return Ok(None);
    }
    // The columns the sort, the filters and the scan's own prewhere read.
    let mut needed: HashSet<String> = HashSet::new();
    let exprs = sort
        .expr()
        .iter()
        .map(|e| &e.expr)
        .chain(links.iter().filter_map(|l| match l {
            Link::Filter(p) => Some(p),
            Link::Coalesce => None,
        }))
        .chain(&scan.shared.filters);
    for e in exprs {
        needed.extend(collect_columns(e).into_iter().map(|c| c.name().to_string()));
    }
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|i| needed.contains(schema.field(*i).name()))
        .collect();
    if keep.len() == schema.fields().len() || keep.is_empty() {
        return Ok(None);
    }
    let Some((narrow, refs)) = scan.with_row_refs(&keep)? else {
        return Ok(None);
    };
    let narrow_schema = narrow.schema();
    let bind = |e: &Arc<dyn PhysicalExpr>| reassign_expr_columns(Arc::clone(e), &narrow_schema);
    // Rebuild the chain bottom-up over the narrow scan.
    let mut plan: Arc<dyn ExecutionPlan> = Arc::new(narrow);
    for link in links.iter().rev() {
        plan = match link {
            Link::Filter(p) => Arc::new(FilterExec::try_new(bind(p)?, plan)?),
            Link::Coalesce => Arc::new(CoalescePartitionsExec::new(plan)),
        };
    }
    let ordering = |o: &LexOrdering| -> DFResult<LexOrdering> {
        let exprs = o
            .iter()
            .map(|e| Ok(PhysicalSortExpr::new(bind(&e.expr)?, e.options)))
            .collect::<DFResult<Vec<_>>>()?;
        LexOrdering::new(exprs).ok_or_else(|| DataFusionError::Internal("empty ordering".into()))
    };
    plan = Arc::new(
        SortExec::new(ordering(sort.expr())?, plan)
            .with_preserve_partitioning(sort.preserve_partitioning())
            .with_fetch(Some(fetch)),
    );
    if let Some(m) = merge {
        plan =
            Arc::new(SortPreservingMergeExec::new(ordering(m.expr())?, plan).with_fetch(m.fetch()));
    }
    let row_ref = narrow_schema.index_of(ROW_REF)?;
    // The top-N's own columns, as before the rewrite.
    let target = node.schema();
    let from_input = target
        .fields()
        .iter()
        .map(|f| narrow_schema.index_of(f.name()).ok())
        .collect();
    let props = Arc::new(PlanProperties::new(
        EquivalenceProperties::new_with_orderings(Arc::clone(&target), [sort.expr().clone()]),
        Partitioning::UnknownPartitioning(1),
        EmissionType::Final,
        Boundedness::Bounded,
    ));
    Ok(Some(Arc::new(LazyMaterializeExec {
        input: plan,
        schema: target,
        source: Arc::clone(&scan.shared),
        refs,
        from_input,
        row_ref,
        props,
    })))
}

/// Reads the columns the top-N below did not, for the rows it kept, and
/// puts each row back together in the top-N's order.
pub(crate) struct LazyMaterializeExec {
    /// The top-N over the narrowed scan: one partition.
    input: Arc<dyn ExecutionPlan>,
    /// The rows as the top-N gave them before the rewrite.
    schema: SchemaRef,
    /// The original scan's: its defaults, table and counters.
    source: Arc<Shared>,
    refs: Arc<RowRefs>,
    /// For each column of `schema`: its index in the input, or None when it
    /// is read here.
    from_input: Vec<Option<usize>>,
    /// The input's column of row references.
    row_ref: usize,
    props: Arc<PlanProperties>,
}

impl fmt::Debug for LazyMaterializeExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LazyMaterializeExec")
    }
}

impl DisplayAs for LazyMaterializeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let later: Vec<&str> = self
            .from_input
            .iter()
            .enumerate()
            .filter(|(_, i)| i.is_none())
            .map(|(c, _)| self.schema.field(c).name().as_str())
            .collect();
        write!(
            f,
            "LazyMaterializeExec: read after the top-N=[{}]",
            later.join(", ")
        )
    }
}

impl ExecutionPlan for LazyMaterializeExec {
    fn name(&self) -> &str {
        "LazyMaterializeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let Some(input) = children.into_iter().next() else {
            return internal_err!("LazyMaterializeExec needs its input");
        };
        Ok(Arc::new(LazyMaterializeExec {
            input,
            schema: Arc::clone(&self.schema),
            source: Arc::clone(&self.source),
            refs: Arc::clone(&self.refs),
            from_input: self.from_input.clone(),
            row_ref: self.row_ref,
            props: Arc::clone(&self.props),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("LazyMaterializeExec has one partition, not {partition}");
        }
        let input = self.input.execute(0, context)?;
        let source = Arc::clone(&self.source);
        let refs = Arc::clone(&self.refs);
        let from_input = self.from_input.clone();
        let row_ref = self.row_ref;
        let schema = Arc::clone(&self.schema);
        let out_schema = Arc::clone(&schema);
        let out = async move {
            let in_schema = input.schema();
            let batches: Vec<RecordBatch> = input.try_collect().await?;
            tokio::task::spawn_blocking(move || {
                let kept = concat_batches(&in_schema, &batches)?;
                materialize(&out_schema, &source, &refs, &from_input, row_ref, &kept)
            })
            .await
            .map_err(|e| DataFusionError::Execution(e.to_string()))?
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(out),
        )))
    }
}

/// The full rows of `kept` (the top-N's output, with row references), as
/// `schema`.
fn materialize(
    schema: &SchemaRef,
    source: &Shared,
    refs: &RowRefs,
    from_input: &[Option<usize>],
    row_ref: usize,
    kept: &RecordBatch,
) -> DFResult<RecordBatch> {
    let n = kept.num_rows();
    let row_refs = kept.column(row_ref).as_primitive::<UInt64Type>();
    let mask = (1u64 << ROW_BITS) - 1;
    // Output rows by part, in output order within each.
    let mut by_part: BTreeMap<usize, Vec<(usize, u64)>> = BTreeMap::new();
    for i in 0..n {
        let r = row_refs.value(i);
        by_part
            .entry((r >> ROW_BITS) as usize)
            .or_default()
            .push((i, r & mask));
    }
    let later: Vec<usize> = (0..from_input.len())
        .filter(|c| from_input[*c].is_none())
        .collect();
    // Per column read here: one array per part holding that part's kept
    // rows; and per output row: (which part's array, which row of it).
    let mut arrays: Vec<Vec<ArrayRef>> = vec![Vec::new(); later.len()];
    let mut at: Vec<(usize, usize)> = vec![(0, 0); n];
    let mut rows_read = 0u64;
    let mut bytes_read = 0u64;
    for (p, (tag, rows)) in by_part.iter().enumerate() {
        let Some(part) = refs.parts.get(*tag) else {
            return internal_err!("row reference to part {tag} of {}", refs.parts.len());
        };
        let starts = granule_starts(part);
        let granule_of = |row: u64| starts.partition_point(|s| *s <= row).saturating_sub(1);
        let mut granules: Vec<usize> = rows.iter().map(|(_, r)| granule_of(*r)).collect();
        granules.sort_unstable();
        granules.dedup();
        rows_read += granules
            .iter()
            .map(|g| u64::from(part.granule_rows[*g]))
            .sum::<u64>();
        // Where each kept row sits among the granules read.
        let mut picks = Vec::with_capacity(rows.len());
        for (k, (i, r)) in rows.iter().enumerate() {
            let g = granule_of(*r);
            let Ok(pos) = granules.binary_search(&g) else {
                return internal_err!("granule {g} was not read");
            };
            picks.push((pos, (r - starts[g]) as usize));
            at[*i] = (p, k);
        }
        let ranges = super::prewhere::to_ranges(granules.iter().copied());
        for (slot, &c) in later.iter().enumerate() {
            let field = schema.field(c);
            let read = part
                .read_column_granules(field, &ranges, &source.defaults, false)
                .map_err(ext)?
                .into_iter()
                .map(|a| {
                    bytes_read += a.get_array_memory_size() as u64;
                    if a.data_type() != field.data_type() {
                        cast(&a, field.data_type())
                    } else {
                        Ok(a)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let read: Vec<&dyn Array> = read.iter().map(|a| a.as_ref()).collect();
            arrays[slot].push(interleave(&read, &picks)?);
        }
    }
    source.stats.add_read_counts(rows_read, bytes_read)?;
    let mut columns = Vec::with_capacity(from_input.len());
    for (c, from) in from_input.iter().enumerate() {
        let a = match from {
            Some(i) => Arc::clone(kept.column(*i)),
            None => {
                let Some(slot) = later.iter().position(|l| *l == c) else {
                    return internal_err!("column {c} has no source");
                };
                if n == 0 {
                    datafusion::arrow::array::new_empty_array(schema.field(c).data_type())
                } else {
                    let parts: Vec<&dyn Array> = arrays[slot].iter().map(|a| a.as_ref()).collect();
                    interleave(&parts, &at)?
                }
            }
        };
        columns.push(a);
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
