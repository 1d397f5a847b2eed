//! The initiator's side of a shard stage: runs the fragment on one replica
//! of every shard (this node in-process, the others over the interserver
//! `Query.ExecuteStage` RPC) and yields their batches, one partition per
//! shard, failing over between replicas.

use std::fmt;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use datafusion::arrow::ipc::CompressionType;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    displayable, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use qh_proto::interserver::query_client::QueryClient;
use qh_proto::interserver::{StageChunk, StageRequest};
use qh_types::ErrorCode;
use tracing::{info_span, warn, Instrument};

use super::codec::StageCodec;
use super::rule::stage_leaf;
use super::scan::Target;
use super::{ShardReplica, BUILD};
use crate::error::QueryError;

/// What a shard sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// Partial aggregate states: small, buffered whole per shard, so a
    /// replica that dies mid-stage is replaced without duplicates.
    PartialAggregate,
    /// Filtered, projected rows, streamed.
    Rows,
}

/// A silent replica (no batch, no keepalive) is given up after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RemoteStageExec {
    fragment: Arc<dyn ExecutionPlan>,
    plan: Arc<Vec<u8>>,
    /// `max_parallel_replicas`: the fragment once per slice of a shard's
    /// rows (empty when the stage is not split).
    slices: Arc<Vec<Vec<u8>>>,
    kind: StageKind,
    target: Arc<Target>,
    props: Arc<PlanProperties>,
}

impl fmt::Debug for RemoteStageExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteStageExec({:?})", self.kind)
    }
}

fn ext(e: QueryError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// `b`'s columns under `schema` (field names and metadata of the plan),
/// keeping the row count of a batch without columns (`count()`).
pub(crate) fn relabel(schema: SchemaRef, b: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new_with_options(
        schema,
        b.columns().to_vec(),
        &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
    )
}

/// `batch` (or none) as one self-contained Arrow IPC stream, its buffers
/// zstd-compressed (the reader detects it).
pub(crate) fn ipc_bytes(schema: &Schema, batch: Option<&RecordBatch>) -> DFResult<Vec<u8>> {
    let mut buf = Vec::new();
    let options = IpcWriteOptions::default().try_with_compression(Some(CompressionType::ZSTD))?;
    let mut w = StreamWriter::try_new_with_options(&mut buf, schema, options)?;
    if let Some(b) = batch {
        w.write(b)?;
    }
    w.finish()?;
    drop(w);
    Ok(buf)
}

impl RemoteStageExec {
    pub fn try_new(fragment: Arc<dyn ExecutionPlan>, kind: StageKind) -> DFResult<Self> {
        let leaf = stage_leaf(&fragment)
            .ok_or_else(|| DataFusionError::Internal("a stage without its scan".into()))?;
        let target = Arc::clone(&leaf.target);
        let encode = |slice: Option<Expr>| {
            let codec = StageCodec { local: None, slice };
            datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(
                Arc::clone(&fragment),
                &codec,
            )
            .map(|b| b.to_vec())
        };
        let plan = encode(None)?;
        // Partial states of slices merge like those of shards; rows are
        // read from one replica (a row stage fails over before its first
        // batch only, which slices could not keep).
        let parallel = target
            .settings
            .uint("max_parallel_replicas")
            .map_err(|e| ext(QueryError::BadArguments(e)))? as usize;
        let replicas = target.shards.iter().map(|s| s.replicas.len()).min();
        let k = parallel.min(replicas.unwrap_or(1));
        let slices = match kind {
            StageKind::PartialAggregate => {
                match super::parallel::slice_predicates(&target.engine, &leaf.spec, k) {
                    Some(preds) => preds
                        .into_iter()
                        .map(|p| encode(Some(p)))
                        .collect::<DFResult<Vec<_>>>()?,
                    None => Vec::new(),
                }
            }
            StageKind::Rows => Vec::new(),
        };
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(fragment.schema()),
            Partitioning::UnknownPartitioning(target.shards.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(RemoteStageExec {
            fragment,
            plan: Arc::new(plan),
            slices: Arc::new(slices),
            kind,
            target,
            props,
        })
    }
}

impl DisplayAs for RemoteStageExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RemoteStageExec: {:?} on {} shards of {}",
            self.kind,
            self.target.shards.len(),
            self.target.cluster
        )?;
        if !self.slices.is_empty() {
            write!(f, ", each split over {} replicas", self.slices.len())?;
        }
        if matches!(t, DisplayFormatType::Verbose) {
            // What each shard runs, marked off from the initiator's plan.
            let fragment = displayable(self.fragment.as_ref())
                .indent(false)
                .to_string();
            for line in fragment.lines() {
                write!(f, "\n  shard> {line}")?;
            }
        }
        Ok(())
    }
}

impl ExecutionPlan for RemoteStageExec {
    fn name(&self) -> &str {
        "RemoteStageExec"
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
        _context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let schema = self.schema();
        let shard = self.target.shards.get(partition).cloned();
        let (target, plan, kind) = (Arc::clone(&self.target), Arc::clone(&self.plan), self.kind);
        let slices = Arc::clone(&self.slices);
        let out = Arc::clone(&schema);
        let span = info_span!("shard_stage", shard = partition + 1, cluster = %target.cluster);
        let batches = async move {
            let Some(shard) = shard else {
                return Ok(futures::stream::empty().boxed());
            };
            if !slices.is_empty() {
                match run_slices(&target, &shard, &slices, &out).await {
                    Ok(batches) => return Ok(futures::stream::iter(batches.into_iter().map(Ok)).boxed()),
                    Err(Attempt::Fail(e)) => return Err(e),
                    Err(Attempt::Retry(why) | Attempt::NotInQuorum(why) | Attempt::Stale(why)) => {
                        warn!(shard = shard.number, %why, "max_parallel_replicas: a slice found no replica; reading the shard from one");
                    }
                }
            }
            run_shard(target, shard, plan, kind, out).await
        }
        .instrument(span);
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(batches).try_flatten(),
        )))
    }
}

type Batches = BoxStream<'static, DFResult<RecordBatch>>;

/// Why one replica could not serve the stage.
enum Attempt {
    /// Unreachable, died or went silent: the next replica may answer.
    Retry(String),
    /// Lacks a part acknowledged with a quorum: another replica may hold it.
    NotInQuorum(String),
    /// Too far behind its replication log
    /// (`max_replica_delay_for_distributed_queries`): tried again only when
    /// every replica is.
    Stale(String),
    /// The stage itself failed (bad query, limits): no replica will do better.
    Fail(DataFusionError),
}

fn stage_request(target: &Target, shard: &super::Shard, plan: Vec<u8>) -> StageRequest {
    StageRequest {
        plan,
        build: BUILD.to_string(),
        initial_query_id: target.query_id.clone(),
        initial_query: target.query.clone(),
        settings: target
            .settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        shard: shard.number,
        initial_user: target.user.clone().unwrap_or_default(),
    }
}

/// `max_parallel_replicas`: slice `j` of the shard's partial aggregate runs
/// on its replica `j` (in the balancing order), the next one when that
/// replica cannot read it; all slices at once. `Attempt::Fail` is the
/// query's error; any other error means some slice found no replica (the
/// caller reads the shard from one replica instead).
async fn run_slices(
    target: &Target,
    shard: &super::Shard,
    slices: &[Vec<u8>],
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, Attempt> {
    let n = shard.replicas.len();
    let runs = slices.iter().enumerate().map(|(j, plan)| async move {
        let request = stage_request(target, shard, plan.clone());
        let mut last = Attempt::Retry(format!("shard {} has no replicas", shard.number));
        for i in 0..n {
            let replica = &shard.replicas[(j + i) % n];
            match attempt(
                target,
                replica,
                &request,
                StageKind::PartialAggregate,
                schema,
            )
            .await
            {
                Ok(batches) => return batches.try_collect::<Vec<_>>().await.map_err(Attempt::Fail),
                Err(Attempt::Fail(e)) => return Err(Attempt::Fail(e)),
                Err(other) => last = other,
            }
        }
        Err(last)
    });
    let mut all = Vec::new();
    let mut unplaced = None;
    for outcome in futures::future::join_all(runs).await {
        match outcome {
            Ok(batches) => all.extend(batches),
            Err(Attempt::Fail(e)) => return Err(Attempt::Fail(e)),
            Err(other) => unplaced = Some(other),
        }
    }
    match unplaced {
        Some(why) => Err(why),
        None => Ok(all),
    }
}

async fn run_shard(
    target: Arc<Target>,
    shard: super::Shard,
    plan: Arc<Vec<u8>>,
    kind: StageKind,
    schema: SchemaRef,
) -> DFResult<Batches> {
    let request = stage_request(&target, &shard, plan.to_vec());
    let mut reasons = Vec::new();
    let mut lagging = 0;
    let mut stale = Vec::new();
    for replica in &shard.replicas {
        match attempt(&target, replica, &request, kind, &schema).await {
            Ok(batches) => return Ok(batches),
            Err(Attempt::Fail(e)) => return Err(e),
            Err(Attempt::Retry(why)) => {
                warn!(node = replica.node, address = %replica.address, %why, "shard replica failed; trying the next");
                reasons.push(format!("{}: {why}", replica.describe()));
            }
            Err(Attempt::NotInQuorum(why)) => {
                lagging += 1;
                reasons.push(format!("{}: {why}", replica.describe()));
            }
            Err(Attempt::Stale(why)) => {
                reasons.push(format!("{}: {why}", replica.describe()));
                stale.push(replica);
            }
        }
    }
    if !stale.is_empty() && stale.len() == reasons.len() {
        let fallback = target
            .settings
            .uint("fallback_to_stale_replicas_for_distributed_queries")
            .map_err(|e| ext(QueryError::BadArguments(e)))?
            != 0;
        if !fallback {
            return Err(ext(QueryError::other(
                ErrorCode::ALL_REPLICAS_ARE_STALE,
                format!(
                    "Every replica of shard {} is stale: {}",
                    shard.number,
                    reasons.join("; ")
                ),
            )));
        }
        // A stale answer beats none: the same replicas without the limit.
        let mut relaxed = request.clone();
        relaxed.settings.insert(
            "max_replica_delay_for_distributed_queries".into(),
            "0".into(),
        );
        for replica in stale {
            match attempt(&target, replica, &relaxed, kind, &schema).await {
                Ok(batches) => return Ok(batches),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(why) | Attempt::NotInQuorum(why) | Attempt::Stale(why)) => {
                    reasons.push(format!("{}: {why}", replica.describe()));
                }
            }
        }
    }
    if lagging > 0 && lagging == reasons.len() {
        return Err(ext(QueryError::other(
            ErrorCode::REPLICA_IS_NOT_IN_QUORUM,
            format!(
                "No replica of shard {} holds every part written with a quorum: {}",
                shard.number,
                reasons.join("; ")
            ),
        )));
    }
    let skip = target
        .settings
        .uint("skip_unavailable_shards")
        .map_err(|e| ext(QueryError::BadArguments(e)))?
        != 0;
    if skip {
        warn!(
            shard = shard.number,
            "shard unavailable; skipped (skip_unavailable_shards = 1)"
        );
        return Ok(futures::stream::empty().boxed());
    }
    Err(ext(QueryError::other(
        ErrorCode::ALL_CONNECTION_TRIES_FAILED,
        format!(
            "All connection tries failed. Shard {} of cluster {}: {}",
            shard.number,
            target.cluster,
            if reasons.is_empty() {
                "it has no replicas".to_string()
            } else {
                reasons.join("; ")
            }
        ),
    )))
}

async fn attempt(
    target: &Target,
    replica: &ShardReplica,
    request: &StageRequest,
    kind: StageKind,
    schema: &SchemaRef,
) -> Result<Batches, Attempt> {
    let stream: Batches = if replica.local {
        let s = super::service::run_stage(&target.engine, request.clone(), true)
            .await
            .map_err(|e| classify(ext(e)))?;
        s.boxed()
    } else {
        remote_batches(target, replica, request.clone(), Arc::clone(schema)).await?
    };
    // A partial aggregate is held whole: a failure anywhere in it is retried.
    // Rows stream on once the first batch (or the end) arrived.
    let mut stream = stream;
    match kind {
        StageKind::PartialAggregate => {
            let mut all = Vec::new();
            while let Some(b) = stream.next().await {
                all.push(b.map_err(classify)?);
            }
            Ok(futures::stream::iter(all.into_iter().map(Ok)).boxed())
        }
        StageKind::Rows => match stream.next().await {
            None => Ok(futures::stream::empty().boxed()),
            Some(first) => {
                let first = first.map_err(classify)?;
                Ok(futures::stream::once(async { Ok(first) })
                    .chain(stream)
                    .boxed())
            }
        },
    }
}

/// Transport failures (wrapped as [`Transport`]) and a replica that lacks
/// an acknowledged quorum part (`select_sequential_consistency`) are worth
/// another replica; anything else is the query's own error.
fn classify(e: DataFusionError) -> Attempt {
    if let DataFusionError::External(inner) = &e {
        if let Some(t) = inner.downcast_ref::<Transport>() {
            return Attempt::Retry(t.0.clone());
        }
    }
    let q = QueryError::from(e);
    if q.code() == ErrorCode::REPLICA_IS_NOT_IN_QUORUM {
        return Attempt::NotInQuorum(q.to_string());
    }
    if q.code() == ErrorCode::ALL_REPLICAS_ARE_STALE {
        return Attempt::Stale(q.to_string());
    }
    Attempt::Fail(ext(q))
}

/// The replica could not be reached or stopped answering.
#[derive(Debug)]
struct Transport(String);

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for Transport {}

fn transport(why: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(Transport(why.into())))
}

async fn remote_batches(
    target: &Target,
    replica: &ShardReplica,
    request: StageRequest,
    schema: SchemaRef,
) -> Result<Batches, Attempt> {
    let repl = target.engine.replication().ok_or_else(|| {
        Attempt::Fail(ext(QueryError::other(
            ErrorCode::NOT_IMPLEMENTED,
            "Distributed queries need the interserver API",
        )))
    })?;
    let connect = target
        .settings
        .uint("connect_timeout_with_failover_ms")
        .map_err(|e| Attempt::Fail(ext(QueryError::BadArguments(e))))?;
    let channel = repl
        .channel_with_connect_timeout(&replica.address, Duration::from_millis(connect.max(1)))
        .map_err(|e| Attempt::Retry(e.to_string()))?;
    let mut client = QueryClient::new(channel)
        .max_decoding_message_size(crate::distributed::service::MAX_MESSAGE_BYTES);
    let response = tokio::time::timeout(IDLE_TIMEOUT, client.execute_stage(request))
        .await
        .map_err(|_| Attempt::Retry(format!("no answer within {IDLE_TIMEOUT:?}")))?
        .map_err(|s| Attempt::Retry(format!("{}: {}", s.code(), s.message())))?;
    let chunks = response.into_inner();
    let received = Arc::clone(&target.engine.distributed_traffic().received);
    let stream = futures::stream::unfold(chunks, move |mut chunks| {
        let received = Arc::clone(&received);
        async move {
            loop {
                let next = match tokio::time::timeout(IDLE_TIMEOUT, chunks.message()).await {
                    Err(_) => {
                        return Some((
                            Err(transport(format!("silent for {IDLE_TIMEOUT:?}"))),
                            chunks,
                        ))
                    }
                    Ok(Err(s)) => {
                        return Some((
                            Err(transport(format!("{}: {}", s.code(), s.message()))),
                            chunks,
                        ))
                    }
                    Ok(Ok(None)) => return None,
                    Ok(Ok(Some(c))) => c,
                };
                received.fetch_add(next.ipc.len() as u64, std::sync::atomic::Ordering::Relaxed);
                match decode_chunk(next) {
                    Ok(Some(b)) => return Some((Ok(b), chunks)),
                    Ok(None) => continue,
                    Err(e) => return Some((Err(e), chunks)),
                }
            }
        }
    })
    .and_then(move |b: RecordBatch| {
        let schema = Arc::clone(&schema);
        async move {
            relabel(schema, &b).map_err(|e| {
                ext(QueryError::other(
                    ErrorCode::INCOMPATIBLE_COLUMNS,
                    format!("a shard sent batches of another shape: {e}"),
                ))
            })
        }
    });
    Ok(stream.boxed())
}

/// A chunk's batch; `None` for a keepalive; the shard's exception as the
/// error it is (final, not retried).
fn decode_chunk(c: StageChunk) -> DFResult<Option<RecordBatch>> {
    if let Some(x) = c.exception {
        let code = ErrorCode::from_i32(x.code).unwrap_or(ErrorCode::LOGICAL_ERROR);
        return Err(ext(QueryError::other(code, x.message)));
    }
    if c.ipc.is_empty() {
        return Ok(None);
    }
    let mut r = StreamReader::try_new(Cursor::new(c.ipc), None)?;
    match r.next() {
        Some(b) => Ok(Some(b?)),
        None => Ok(None),
    }
}
