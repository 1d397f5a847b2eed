//! The Distributed table as DataFusion sees it: a provider whose scan is a
//! leaf that only marks where the shards' data enters the plan.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::ScalarValue;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use qh_types::{ErrorCode, Settings};

use super::Shard;
use crate::engine::Engine;
use crate::error::QueryError;
use crate::provider::QueryContext;

/// Where a Distributed scan's rows come from and on whose behalf.
pub struct Target {
    pub engine: Arc<Engine>,
    pub cluster: String,
    pub shards: Vec<Shard>,
    pub settings: Settings,
    pub query_id: String,
    pub query: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({}, {} shards)", self.cluster, self.shards.len())
    }
}

/// What a shard scans in place of the leaf: its local table, by name, with
/// the columns (by name), pruning filters, limit and FINAL of the query.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub database: String,
    pub table: String,
    pub columns: Vec<String>,
    pub filters: Vec<Expr>,
    pub limit: Option<usize>,
    pub final_: bool,
}

/// The scan of `database.table` on every shard of `cluster` (with
/// `all_replicas`, on every replica, each as a shard of its own:
/// `clusterAllReplicas`).
pub fn provider(
    ctx: &QueryContext,
    cluster: &str,
    database: &str,
    table: &str,
    schema: SchemaRef,
    final_: bool,
    all_replicas: bool,
) -> DFResult<Arc<dyn TableProvider>> {
    let mut shards =
        super::resolve_shards(&ctx.engine, cluster, &ctx.settings, &ctx.query_id).map_err(ext)?;
    if all_replicas {
        shards = shards
            .into_iter()
            .flat_map(|s| s.replicas)
            .enumerate()
            .map(|(i, r)| Shard {
                number: i as u32 + 1,
                replicas: vec![r],
            })
            .collect();
    }
    Ok(Arc::new(DistributedProvider {
        schema,
        database: database.to_string(),
        table: table.to_string(),
        final_,
        target: Arc::new(Target {
            engine: Arc::clone(&ctx.engine),
            cluster: cluster.to_string(),
            shards,
            settings: ctx.settings.clone(),
            query_id: ctx.query_id.clone(),
            query: ctx.query.clone(),
        }),
    }))
}

fn ext(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// `cluster('name', db, table)`, `cluster('name', 'db.table')` and
/// `clusterAllReplicas(...)`: a Distributed table made for one query. The
/// structure is the local copy's (the table must exist on this node).
#[derive(Debug)]
pub struct ClusterFunction {
    pub ctx: Arc<QueryContext>,
    pub all_replicas: bool,
}

impl TableFunctionImpl for ClusterFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let what = if self.all_replicas {
            "clusterAllReplicas"
        } else {
            "cluster"
        };
        let names = args
            .exprs()
            .iter()
            .map(|e| match e {
                Expr::Literal(ScalarValue::Utf8(Some(s)), _) => Ok(s.clone()),
                Expr::Column(c) if c.relation.is_none() => Ok(c.name.clone()),
                other => Err(DataFusionError::Plan(format!(
                    "{what}() takes names (cluster, database, table), got {other}"
                ))),
            })
            .collect::<DFResult<Vec<String>>>()?;
        let (cluster, db, table) = match names.as_slice() {
            [c, t] => match t.split_once('.') {
                Some((d, t)) => (c.clone(), d.to_string(), t.to_string()),
                None => (c.clone(), self.ctx.database.clone(), t.clone()),
            },
            [c, d, t] => (c.clone(), d.clone(), t.clone()),
            _ => {
                return Err(ext(QueryError::other(
                    ErrorCode::NUMBER_OF_ARGUMENTS_DOESNT_MATCH,
                    format!("Table function '{what}' requires from 2 to 3 parameters: cluster name, database and table name"),
                )))
            }
        };
        let local = self
            .ctx
            .catalog
            .table(&db, &table)
            .map_err(|e| ext(QueryError::from(e)))?;
        provider(
            &self.ctx,
            &cluster,
            &db,
            &table,
            local.meta().arrow_schema(),
            false,
            self.all_replicas,
        )
    }
}

pub struct DistributedProvider {
    pub schema: SchemaRef,
    pub database: String,
    pub table: String,
    pub final_: bool,
    pub target: Arc<Target>,
}

impl fmt::Debug for DistributedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DistributedProvider({}.{})", self.database, self.table)
    }
}

#[async_trait]
impl TableProvider for DistributedProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        // The shards prune parts with them; the plan still applies them.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let spec = LeafSpec {
            database: self.database.clone(),
            table: self.table.clone(),
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
            filters: filters.to_vec(),
            limit,
            final_: self.final_,
        };
        let partitions = state.config().target_partitions().max(1);
        Ok(Arc::new(DistributedScanExec::new(
            spec,
            schema,
            partitions,
            Arc::clone(&self.target),
        )))
    }
}

/// The leaf a Distributed table scans to. It never executes: the
/// [`super::rule::DistributedStages`] rule replaces the fragment above it
/// with a remote stage, and a shard decodes it as its local scan. It
/// declares `partitions` partitions (the query's parallelism) so the
/// fragment above it is planned as parallel on the shard.
#[derive(Debug)]
pub struct DistributedScanExec {
    pub spec: LeafSpec,
    pub target: Arc<Target>,
    props: Arc<PlanProperties>,
}

pub(crate) fn leaf_properties(schema: SchemaRef, partitions: usize) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema),
        Partitioning::UnknownPartitioning(partitions),
        EmissionType::Incremental,
        Boundedness::Bounded,
    ))
}

impl DistributedScanExec {
    pub fn new(spec: LeafSpec, schema: SchemaRef, partitions: usize, target: Arc<Target>) -> Self {
        DistributedScanExec {
            spec,
            target,
            props: leaf_properties(schema, partitions),
        }
    }

    pub fn partitions(&self) -> usize {
        self.props.partitioning.partition_count()
    }
}

impl DisplayAs for DistributedScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "DistributedScanExec: {}.{} on cluster {}, columns=[{}]",
            self.spec.database,
            self.spec.table,
            self.target.cluster,
            self.spec.columns.join(", ")
        )
    }
}

impl ExecutionPlan for DistributedScanExec {
    fn name(&self) -> &str {
        "DistributedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        Err(DataFusionError::Internal(
            "a Distributed scan runs only as its shards' stages".into(),
        ))
    }
}
