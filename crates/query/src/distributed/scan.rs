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
#[derive(Clone)]
pub struct Target {
    pub engine: Arc<Engine>,
    pub cluster: String,
    pub shards: Vec<Shard>,
    pub settings: Settings,
    pub query_id: String,
    pub query: String,
    /// The user whose rights the shards check (`None`: a node's own
    /// statement).
    pub user: Option<String>,
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

/// What a Distributed scan reads: `database.table` on `cluster`.
pub struct Source {
    pub cluster: String,
    pub database: String,
    pub table: String,
    /// The columns as this node knows them.
    pub schema: SchemaRef,
    pub final_: bool,
    /// Every replica as a shard of its own (`clusterAllReplicas`).
    pub all_replicas: bool,
    /// The expression the rows were placed by (`optimize_skip_unused_shards`).
    pub sharding_key: Option<String>,
}

/// The scan of `database.table` on every shard of `cluster` (with
/// `all_replicas`, on every replica, each as a shard of its own:
/// `clusterAllReplicas`).
pub fn provider(ctx: &QueryContext, source: Source) -> DFResult<Arc<dyn TableProvider>> {
    let shards = super::resolve_shards(&ctx.engine, &source.cluster, &ctx.settings, &ctx.query_id)
        .map_err(ext)?;
    provider_over(ctx, source, shards)
}

/// The scan of `source` over these shards (`remote()` names its own).
pub fn provider_over(
    ctx: &QueryContext,
    source: Source,
    mut shards: Vec<Shard>,
) -> DFResult<Arc<dyn TableProvider>> {
    let Source {
        cluster,
        database,
        table,
        schema,
        final_,
        all_replicas,
        sharding_key,
    } = source;
    let (cluster, database, table) = (cluster.as_str(), database.as_str(), table.as_str());
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
        sharding_key,
        target: Arc::new(Target {
            engine: Arc::clone(&ctx.engine),
            cluster: cluster.to_string(),
            shards,
            settings: ctx.settings.clone(),
            query_id: ctx.query_id.clone(),
            query: ctx.query.clone(),
            user: ctx.checked.then(|| ctx.user.clone()),
        }),
    }))
}

pub(crate) fn ext(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
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
        let names = name_args(&args, what)?;
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
            Source {
                cluster,
                database: db,
                table,
                schema: local.meta().arrow_schema(),
                final_: false,
                all_replicas: self.all_replicas,
                sharding_key: None,
            },
        )
    }
}

/// A table function's arguments as names: string literals or bare
/// identifiers (`cluster(sharded, default, hits)`).
pub(crate) fn name_args(args: &TableFunctionArgs, what: &str) -> DFResult<Vec<String>> {
    args.exprs()
        .iter()
        .map(|e| match e {
            Expr::Literal(ScalarValue::Utf8(Some(s)), _) => Ok(s.clone()),
            Expr::Column(c) if c.relation.is_none() => Ok(c.name.clone()),
            Expr::Column(c) => Ok(c.flat_name()),
            other => Err(DataFusionError::Plan(format!(
                "{what}() takes names and strings, got {other}"
            ))),
        })
        .collect()
}

pub struct DistributedProvider {
    pub schema: SchemaRef,
    pub database: String,
    pub table: String,
    pub final_: bool,
    /// The expression the rows were placed by (`optimize_skip_unused_shards`).
    pub sharding_key: Option<String>,
    pub target: Arc<Target>,
}

/// The key values `e` restricts the key to: `key = v`, `key IN (...)`,
/// and ORs of those; None when `e` allows other values too.
fn key_values(
    e: &Expr,
    is_key: &dyn Fn(&Expr) -> bool,
    literal: &dyn Fn(&Expr) -> Option<ScalarValue>,
) -> Option<Vec<ScalarValue>> {
    use datafusion::logical_expr::Operator;
    match e {
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            if is_key(&b.left) {
                literal(&b.right).map(|v| vec![v])
            } else if is_key(&b.right) {
                literal(&b.left).map(|v| vec![v])
            } else {
                None
            }
        }
        Expr::BinaryExpr(b) if b.op == Operator::Or => {
            let mut l = key_values(&b.left, is_key, literal)?;
            l.extend(key_values(&b.right, is_key, literal)?);
            Some(l)
        }
        Expr::InList(l) if !l.negated && is_key(&l.expr) => l.list.iter().map(literal).collect(),
        _ => None,
    }
}

impl DistributedProvider {
    /// `optimize_skip_unused_shards = 1`: the shards a WHERE of `c = v` or
    /// `c IN (...)` can reach when the sharding key reads the one column
    /// `c` (`c` itself, `cityHash64(c)`, `intDiv(c, 10)`): rows inserted
    /// through the table sit on shard `key % shards`, so the key computed
    /// over the values names them. None: every shard.
    fn reachable_shards(&self, filters: &[Expr]) -> DFResult<Option<Vec<usize>>> {
        let on = self
            .target
            .settings
            .uint("optimize_skip_unused_shards")
            .map_err(|e| DataFusionError::External(Box::new(QueryError::BadArguments(e))))?;
        let Some(key) = self.sharding_key.as_deref() else {
            return Ok(None);
        };
        if on == 0 {
            return Ok(None);
        }
        let Ok(ast) = crate::statement::parse_expr(key) else {
            return Ok(None);
        };
        let columns: Vec<String> = crate::keys::referenced_columns(&ast).into_iter().collect();
        let [column] = columns.as_slice() else {
            return Ok(None);
        };
        let Some((_, field)) = self.schema.column_with_name(column) else {
            return Ok(None);
        };
        let is_key = |e: &Expr| matches!(e, Expr::Column(c) if &c.name == column);
        let literal = |e: &Expr| match e {
            Expr::Literal(v, _) if !v.is_null() => v.cast_to(field.data_type()).ok(),
            _ => None,
        };
        let mut reachable: Option<Vec<usize>> = None;
        for f in filters {
            let Some(values) = key_values(f, &is_key, &literal) else {
                continue;
            };
            let Some(shards) = self.shards_of(key, field, values) else {
                continue;
            };
            reachable = Some(match reachable {
                None => shards,
                Some(prev) => prev.into_iter().filter(|s| shards.contains(s)).collect(),
            });
        }
        Ok(reachable)
    }

    /// The shards rows whose key column holds `values` were placed on, by
    /// the same expression and arithmetic the insert used.
    fn shards_of(
        &self,
        key: &str,
        field: &datafusion::arrow::datatypes::Field,
        values: Vec<ScalarValue>,
    ) -> Option<Vec<usize>> {
        use datafusion::arrow::array::{Array, RecordBatch};
        use datafusion::arrow::datatypes::Schema;
        let n = self.target.shards.len() as u64;
        let array = ScalarValue::iter_to_array(values).ok()?;
        let field = field.clone().with_nullable(false);
        let schema = Arc::new(Schema::new(vec![field]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![array]).ok()?;
        let expr = crate::keys::compile(self.target.engine.base_state(), key, &schema).ok()?;
        let out = expr
            .evaluate(&batch)
            .ok()?
            .into_array(batch.num_rows())
            .ok()?;
        let placed = super::insert::as_u64(&out, key).ok()?;
        if placed.null_count() > 0 || n == 0 {
            return None;
        }
        let mut shards: Vec<usize> = placed.values().iter().map(|v| (v % n) as usize).collect();
        shards.sort_unstable();
        shards.dedup();
        Some(shards)
    }
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
        let target = match self.reachable_shards(filters)? {
            Some(keep) => {
                let mut t = Target::clone(&self.target);
                t.shards = keep
                    .into_iter()
                    .filter_map(|i| self.target.shards.get(i).cloned())
                    .collect();
                Arc::new(t)
            }
            None => Arc::clone(&self.target),
        };
        Ok(Arc::new(DistributedScanExec::new(
            spec, schema, partitions, target,
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
