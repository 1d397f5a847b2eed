//! Keeps a large filter out of DataFusion's interval analysis. To estimate
//! a filter's selectivity DataFusion analyses every predicate made of
//! comparisons and `+ - * /` over integer columns by building a graph of its
//! subexpressions, comparing each new node with every node so far: cubic in
//! the predicate's size — 1,000 conjuncts like `x + 5 >= 5` took 19 s to
//! plan, 10,000 would take hours. A predicate of more than
//! [`MAX_ANALYSED_NODES`] expression nodes is wrapped in [`UNANALYSED`], an
//! identity function the analysis does not enter (the estimate falls back
//! to the default selectivity). Results are unchanged.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, Filter, LogicalPlan};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// The identity function that hides its argument from the analysis.
pub const UNANALYSED: &str = "__qh_unanalysed";

/// Larger predicates are not analysed (~0.1 s of planning at this size).
pub const MAX_ANALYSED_NODES: usize = 1_000;

/// The optimizer rule; last in the list, so it sees each pass's result.
#[derive(Debug, Default)]
pub struct LargeFilters;

fn is_wrapped(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.name() == UNANALYSED)
}

fn larger_than(e: &Expr, limit: usize) -> bool {
    let mut n = 0;
    let _ = e.apply(|_| {
        n += 1;
        Ok(if n > limit {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    n > limit
}

impl OptimizerRule for LargeFilters {
    fn name(&self) -> &str {
        "qh_large_filters"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Filter(filter) = plan else {
            return Ok(Transformed::no(plan));
        };
        // A conjunct already wrapped makes the whole predicate unanalysed.
        if split_conjunction(&filter.predicate)
            .into_iter()
            .any(is_wrapped)
            || !larger_than(&filter.predicate, MAX_ANALYSED_NODES)
        {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        }
        let Some(udf) = config
            .function_registry()
            .and_then(|r| r.udf(UNANALYSED).ok())
        else {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        };
        let Filter {
            predicate, input, ..
        } = filter;
        let wrapped = Expr::ScalarFunction(ScalarFunction::new_udf(udf, vec![predicate]));
        Filter::try_new(wrapped, input)
            .map(LogicalPlan::Filter)
            .map(Transformed::yes)
    }
}

/// The rule, for the session's optimizer.
pub fn rule() -> Arc<dyn OptimizerRule + Send + Sync> {
    Arc::new(LargeFilters)
}
