//! The DataFusion session every query starts from: its configuration
//! (ClickHouse's defaults where DataFusion's differ), the physical optimizer
//! rules in their order, and the registered ClickHouse functions.

use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::prelude::SessionConfig;

use crate::error::Result;
use crate::functions;
use crate::provider::NumbersFunction;

pub(super) fn base_state(threads: usize) -> Result<SessionState> {
    let mut config = SessionConfig::new()
        .with_target_partitions(threads.max(1))
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(false);
    config.options_mut().sql_parser.enable_ident_normalization = false;
    // ClickHouse sorts NULLs last in both directions unless told otherwise.
    config.options_mut().sql_parser.default_null_ordering = "nulls_last".into();
    // A subquery's ORDER BY is kept: ClickHouse's aggregates above it
    // (`groupArray`, `any`, ...) see the rows in that order, and users rely
    // on it. DataFusion drops it unless something above asks for an order.
    config
        .options_mut()
        .sql_parser
        .enable_subquery_sort_elimination = false;
    // Our scans already come in parallel partitions; a round-robin shuffle on
    // top would only scramble the key order small reads naturally have (and
    // which ClickHouse users see).
    config
        .options_mut()
        .optimizer
        .enable_round_robin_repartition = false;
    // DataFusion's TopK aggregation sizes a table by ten times the LIMIT:
    // `GROUP BY k ORDER BY k LIMIT 5, 18446744073709551615` overflowed (a
    // panic) and a LIMIT of 10^9 would allocate for 10^10 groups.
    config.options_mut().optimizer.enable_topk_aggregation = false;
    // A hash join builds on the SQL right side, as ClickHouse's does
    // (`joins/build_side.rs`), not on whichever side statistics call smaller.
    config.options_mut().optimizer.join_reordering = false;
    // No spilling (ClickHouse's default): a query over its memory limit
    // fails with 241 instead of filling the disk with temporary files.
    let runtime = RuntimeEnvBuilder::new()
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()?;
    // Shard stages are cut from the plan as planned, before any other rule.
    let mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> = vec![
        Arc::new(crate::distributed::rule::DistributedStages),
        // While a subquery's sort is still in the plan (EnforceSorting
        // would drop it): aggregates above it keep its order.
        Arc::new(crate::subquery_order::SubqueryOrder),
    ];
    rules.extend(PhysicalOptimizer::new().rules);
    // A top-N reads its sort columns first and the rest for its rows only;
    // placed before the final filter pushdown, which hands the top-N's
    // dynamic filter to the narrowed scan.
    let post = rules
        .iter()
        .position(|r| r.name() == "FilterPushdown(Post)")
        .unwrap_or(rules.len());
    rules.insert(post, Arc::new(crate::read::lazy::LazyTopN));
    // A top-N by the sorting key reads the parts in order instead (before
    // LazyTopN, which would take it too).
    rules.insert(post, Arc::new(crate::read::in_order::ReadInOrder));
    let join_selection = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .unwrap_or(1);
    rules.insert(
        join_selection,
        Arc::new(crate::joins::build_side::BuildOnRight),
    );
    // DISTINCT over one partition keeps its rows' order (after the
    // repartitions are placed).
    rules.push(Arc::new(crate::distinct_order::DistinctInOrder));
    // LIMIT BY without ORDER BY keeps its rows' order (after the window's
    // sort and repartition are placed).
    rules.push(Arc::new(crate::keyed_row_number::KeyedRowNumber));
    // Last: it needs the aggregation's final stages and the scan's final
    // shape, and changes neither's output.
    rules.push(Arc::new(crate::read::dictionary_groups::GroupByDictionary));
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rules(rules)
        .with_optimizer_rule(crate::large_filters::rule())
        .build();
    functions::register_all(&mut state)?;
    state.register_udtf("numbers", Arc::new(NumbersFunction));
    state.register_udtf("numbers_mt", Arc::new(NumbersFunction));
    Ok(state)
}
