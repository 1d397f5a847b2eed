//! The walk the order-keeping rewrites share ([`crate::distinct_order`],
//! [`crate::keyed_row_number`]): from the plan's root down a chain of
//! one-child operators each rule lets through (they keep their input's order
//! and ask nothing of its partitioning), replacing the first node the rule
//! rewrites. Below any other operator nothing is touched, so no operator
//! loses an ordering or partitioning it relied on.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::ExecutionPlan;

type Plan = Arc<dyn ExecutionPlan>;

pub(crate) fn replace_topmost(
    node: Plan,
    passes: &dyn Fn(&Plan) -> bool,
    replace: &dyn Fn(&Plan) -> Result<Option<Plan>>,
) -> Result<Plan> {
    if let Some(new) = replace(&node)? {
        return Ok(new);
    }
    let children = node.children();
    if !passes(&node) || children.len() != 1 {
        return Ok(node);
    }
    let child = replace_topmost(Arc::clone(children[0]), passes, replace)?;
    if Arc::ptr_eq(&child, children[0]) {
        return Ok(node);
    }
    // Recomputed: the child's partitioning may have changed.
    node.replace_children(
        vec![child],
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )
}
