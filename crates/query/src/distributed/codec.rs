//! How a shard fragment travels: DataFusion's own plan serialization
//! (datafusion-proto) with one extension, the Distributed scan leaf, which
//! a shard decodes as a scan of its local table.

use std::fmt;
use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::filter::FilterExecBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use datafusion_proto::bytes::Serializeable;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use futures::{StreamExt, TryStreamExt};
use qh_storage::{Catalog, MergeTreeTable};
use qh_types::{ErrorCode, Settings};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::scan::{leaf_properties, DistributedScanExec};
use crate::error::QueryError;
use crate::provider::{check_sequential_consistency, MergeTreeProvider, QueryStats};

#[derive(Serialize, Deserialize)]
struct LeafWire {
    database: String,
    table: String,
    columns: Vec<String>,
    /// datafusion-proto bytes of each pruning filter (a filter that cannot
    /// be serialized is left out: the plan above still applies it).
    filters: Vec<Vec<u8>>,
    limit: Option<usize>,
    final_: bool,
    partitions: usize,
    /// The leaf's schema as an empty Arrow IPC stream.
    schema: Vec<u8>,
    /// `max_parallel_replicas`: datafusion-proto bytes of the predicate
    /// choosing this replica's range of the first sorting-key column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slice: Option<Vec<u8>>,
}

fn ext(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The shard's side of decoding: where the local scan comes from.
pub struct LocalScan {
    pub catalog: Arc<Catalog>,
    pub replication: Option<Arc<qh_replication::Replication>>,
    /// The initiator's settings (`select_sequential_consistency`, ...).
    pub settings: Settings,
    pub state: Arc<SessionState>,
    pub stats: Arc<QueryStats>,
    /// The initial user, whose SELECT on the local table the stage needs
    /// (`None`: not checked — a node's own statement, or a caller of the
    /// client port's stage API, which proved it may read everything).
    pub user: Option<qh_access::UserDef>,
}

/// `max_replica_delay_for_distributed_queries`: a replica of a replicated
/// local table whose queue of log entries has waited longer than that is
/// refused with ALL_REPLICAS_ARE_STALE, so the initiator tries another (as
/// ClickHouse measures it: the age of the oldest entry not yet executed).
fn check_delay(local: &LocalScan, table: &Arc<MergeTreeTable>) -> DFResult<()> {
    let max = local
        .settings
        .uint("max_replica_delay_for_distributed_queries")
        .map_err(|e| ext(QueryError::BadArguments(e)))?;
    let Some(replica) = local.replication.as_ref().and_then(|r| r.replica_of(table)) else {
        return Ok(());
    };
    let delay = replica.absolute_delay();
    if max > 0 && delay > max {
        let meta = table.meta();
        return Err(ext(QueryError::other(
            ErrorCode::ALL_REPLICAS_ARE_STALE,
            format!(
                "replica of {}.{} is {delay} s behind its replication log (max_replica_delay_for_distributed_queries = {max})",
                meta.database, meta.name
            ),
        )));
    }
    Ok(())
}

/// A replica asked for a slice of its shard's rows must hold every part its
/// replication log has named so far: the slices of different replicas add
/// up to one replica's answer only when they read the same rows.
fn check_slice(local: &LocalScan, table: &Arc<MergeTreeTable>) -> DFResult<()> {
    let meta = table.meta();
    let caught_up = local
        .replication
        .as_ref()
        .and_then(|r| r.replica_of(table))
        .map(|r| r.holds_logged_parts());
    match caught_up {
        Some(true) => Ok(()),
        Some(false) => Err(ext(QueryError::other(
            ErrorCode::ALL_REPLICAS_ARE_STALE,
            format!(
                "replica of {}.{} has log entries to execute; it cannot read a slice for max_parallel_replicas",
                meta.database, meta.name
            ),
        ))),
        None => Err(ext(QueryError::other(
            ErrorCode::ALL_REPLICAS_ARE_STALE,
            format!(
                "{}.{} is not replicated on this node: its rows cannot be split with other replicas (max_parallel_replicas)",
                meta.database, meta.name
            ),
        ))),
    }
}

/// Encodes the Distributed leaf (initiator); decodes it as the local scan
/// (shard, with `local` set).
pub struct StageCodec {
    pub local: Option<LocalScan>,
    /// Encoding one slice of a shard for `max_parallel_replicas`.
    pub slice: Option<Expr>,
}

impl fmt::Debug for StageCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StageCodec")
    }
}

impl PhysicalExtensionCodec for StageCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let local = self.local.as_ref().ok_or_else(|| {
            DataFusionError::Internal("a stage fragment is decoded on a shard only".into())
        })?;
        let wire: LeafWire = serde_json::from_slice(buf).map_err(ext)?;
        let schema = StreamReader::try_new(Cursor::new(wire.schema), None)?.schema();
        let table = local
            .catalog
            .table(&wire.database, &wire.table)
            .map_err(|e| ext(QueryError::from(e)))?;
        if let Some(user) = &local.user {
            let need = qh_access::Need {
                privilege: qh_access::Privilege::Select,
                database: Some(wire.database.clone()),
                table: Some(wire.table.clone()),
                columns: (!wire.columns.is_empty()).then(|| wire.columns.iter().cloned().collect()),
            };
            if !user.may(&need, false) {
                return Err(ext(QueryError::other(
                    ErrorCode::ACCESS_DENIED,
                    format!(
                        "{}: Not enough privileges. To execute this query, it's necessary to have the grant {}",
                        user.name,
                        need.grant_text()
                    ),
                )));
            }
        }
        check_delay(local, &table)?;
        let slice = match &wire.slice {
            Some(b) => {
                check_slice(local, &table)?;
                Some(Expr::from_bytes_with_ctx(b, ctx)?)
            }
            None => None,
        };
        let table_schema = table.meta().arrow_schema();
        let mut projection = Vec::with_capacity(wire.columns.len());
        for (name, want) in wire.columns.iter().zip(schema.fields()) {
            let (i, have) = table_schema.column_with_name(name).ok_or_else(|| {
                ext(QueryError::other(
                    ErrorCode::NO_SUCH_COLUMN_IN_TABLE,
                    format!(
                        "There is no column {name} in table {}.{} on this shard",
                        wire.database, wire.table
                    ),
                ))
            })?;
            if have.data_type() != want.data_type() {
                return Err(ext(QueryError::other(
                    ErrorCode::INCOMPATIBLE_COLUMNS,
                    format!(
                        "Column {name} of {}.{} is {} on this shard but {} in the Distributed table",
                        wire.database,
                        wire.table,
                        have.data_type(),
                        want.data_type()
                    ),
                )));
            }
            projection.push(i);
        }
        let filters = wire
            .filters
            .iter()
            .map(|b| Expr::from_bytes_with_ctx(b, ctx))
            .collect::<DFResult<Vec<_>>>()?;
        Ok(Arc::new(LocalLeafExec {
            table,
            replication: local.replication.clone(),
            settings: local.settings.clone(),
            final_: wire.final_,
            projection,
            filters,
            // Before the slice's filter a limit would drop rows of the slice.
            limit: wire.limit.filter(|_| slice.is_none()),
            slice,
            state: Arc::clone(&local.state),
            stats: Arc::clone(&local.stats),
            props: leaf_properties(schema, wire.partitions.max(1)),
            scan: Arc::new(OnceCell::new()),
        }))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DFResult<()> {
        let leaf = node.downcast_ref::<DistributedScanExec>().ok_or_else(|| {
            DataFusionError::NotImplemented(format!("{} cannot run on a shard", node.name()))
        })?;
        let spec = &leaf.spec;
        let filters = spec
            .filters
            .iter()
            .filter_map(|f| f.to_bytes().ok().map(|b| b.to_vec()))
            .collect();
        let wire = LeafWire {
            database: spec.database.clone(),
            table: spec.table.clone(),
            columns: spec.columns.clone(),
            filters,
            limit: spec.limit,
            final_: spec.final_,
            partitions: leaf.partitions(),
            schema: crate::distributed::exec::ipc_bytes(&leaf.schema(), None)?,
            slice: match &self.slice {
                Some(e) => Some(e.to_bytes()?.to_vec()),
                None => None,
            },
        };
        serde_json::to_writer(buf, &wire).map_err(ext)
    }
}

/// The shard's scan of its local table in place of the Distributed leaf,
/// with the leaf's partition count: partition `i` reads the local scan's
/// partitions `i, i + n, ...`.
struct LocalLeafExec {
    table: Arc<MergeTreeTable>,
    replication: Option<Arc<qh_replication::Replication>>,
    settings: Settings,
    final_: bool,
    projection: Vec<usize>,
    filters: Vec<Expr>,
    limit: Option<usize>,
    /// This replica's share of the shard (`max_parallel_replicas`): applied
    /// exactly above the scan, and as a pruning filter.
    slice: Option<Expr>,
    state: Arc<SessionState>,
    stats: Arc<QueryStats>,
    props: Arc<PlanProperties>,
    scan: Arc<OnceCell<Arc<dyn ExecutionPlan>>>,
}

impl fmt::Debug for LocalLeafExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalLeafExec({})", self.table.meta().name)
    }
}

impl DisplayAs for LocalLeafExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let m = self.table.meta();
        write!(f, "ShardScanExec: {}.{}", m.database, m.name)
    }
}

impl ExecutionPlan for LocalLeafExec {
    fn name(&self) -> &str {
        "ShardScanExec"
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
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let n = self.props.partitioning.partition_count();
        let schema: SchemaRef = self.schema();
        let provider = MergeTreeProvider::new(
            Arc::clone(&self.table),
            self.final_,
            Arc::clone(&self.stats),
        );
        let (scan, state) = (Arc::clone(&self.scan), Arc::clone(&self.state));
        let (projection, filters, limit, slice) = (
            self.projection.clone(),
            self.filters.clone(),
            self.limit,
            self.slice.clone(),
        );
        let (replication, settings, table) = (
            self.replication.clone(),
            self.settings.clone(),
            Arc::clone(&self.table),
        );
        let streams = async move {
            let plan = scan
                .get_or_try_init(|| async {
                    check_sequential_consistency(replication.as_ref(), &table, &settings).await?;
                    match slice {
                        None => {
                            provider
                                .scan(state.as_ref(), Some(&projection), &filters, limit)
                                .await
                        }
                        Some(slice) => {
                            sliced_scan(
                                &provider,
                                &table,
                                state.as_ref(),
                                projection,
                                filters,
                                slice,
                            )
                            .await
                        }
                    }
                })
                .await?;
            let m = plan.output_partitioning().partition_count();
            let streams = (partition..m)
                .step_by(n)
                .map(|j| plan.execute(j, Arc::clone(&context)))
                .collect::<DFResult<Vec<_>>>()?;
            Ok::<_, DataFusionError>(futures::stream::iter(streams).flatten())
        };
        let out = Arc::clone(&schema);
        let batches =
            futures::stream::once(streams)
                .try_flatten()
                .and_then(move |b: RecordBatch| {
                    let out = Arc::clone(&out);
                    async move { Ok(super::exec::relabel(out, &b)?) }
                });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// The local scan of one `max_parallel_replicas` slice: the slice's columns
/// are read beside the projection, DataFusion's `FilterExec` keeps the
/// slice's rows and drops those columns again.
async fn sliced_scan(
    provider: &MergeTreeProvider,
    table: &Arc<MergeTreeTable>,
    state: &SessionState,
    projection: Vec<usize>,
    mut filters: Vec<Expr>,
    slice: Expr,
) -> DFResult<Arc<dyn ExecutionPlan>> {
    let schema = table.meta().arrow_schema();
    let mut read = projection.clone();
    for c in slice.column_refs() {
        let i = schema.index_of(c.name())?;
        if !read.contains(&i) {
            read.push(i);
        }
    }
    filters.push(slice.clone());
    let scan = provider.scan(state, Some(&read), &filters, None).await?;
    let df_schema = DFSchema::try_from(scan.schema())?;
    let predicate = state.create_physical_expr(slice, &df_schema)?;
    let keep: Vec<usize> = (0..projection.len()).collect();
    let filter = FilterExecBuilder::new(predicate, scan)
        .apply_projection(Some(keep))?
        .build()?;
    Ok(Arc::new(filter))
}
