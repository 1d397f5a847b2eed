//! The shard's side: `Query.ExecuteStage` runs a fragment another node cut
//! from its plan over this node's local table and streams the batches.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use datafusion::physical_plan::{execute_stream, SendableRecordBatchStream};
use futures::{Stream, StreamExt};
use qh_proto::interserver::query_server::{Query, QueryServer};
use qh_proto::interserver::{
    DescribeTableReply, DescribeTableRequest, FinishInsertRequest, InsertBlockReply,
    InsertBlockRequest, StageChunk, StageException, StageRequest,
};
use qh_types::{ErrorCode, Settings};
use tonic::{Request, Response, Status};
use tracing::{debug, info_span, Instrument};

use super::codec::{LocalScan, StageCodec};
use super::exec::ipc_bytes;
use super::BUILD;
use crate::engine::Engine;
use crate::error::{QueryError, Result};
use crate::provider::QueryStats;

/// Largest stage message either way (a batch of partial states).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A shard sends this often while it computes, so the initiator can tell
/// a slow stage from a dead replica.
const KEEPALIVE: Duration = Duration::from_secs(1);

/// Runs one stage fragment on this node: decodes it with the local table
/// in place of the Distributed leaf, optimizes it as DataFusion would any
/// plan, and starts it under the initiator's settings and limits.
pub async fn run_stage(
    engine: &Arc<Engine>,
    request: StageRequest,
    trust_initial_user: bool,
) -> Result<SendableRecordBatchStream> {
    if request.build != BUILD {
        return Err(QueryError::other(
            ErrorCode::NOT_IMPLEMENTED,
            format!(
                "a distributed query from {} cannot run on {BUILD}: every node of a cluster must run the same build",
                request.build
            ),
        ));
    }
    // The initial user's rights, as this node knows them.
    let user = match (
        trust_initial_user,
        request.initial_user.as_str(),
        engine.access(),
    ) {
        (true, name, Some(access)) if !name.is_empty() => {
            Some(access.local_user(name).ok_or_else(|| {
                QueryError::other(
                    ErrorCode::UNKNOWN_USER,
                    format!("There is no user `{name}` in replicated"),
                )
            })?)
        }
        _ => None,
    };
    let mut settings = Settings::new();
    for (k, v) in &request.settings {
        settings.set(k, v.clone());
    }
    let stats = Arc::new(QueryStats::default());
    let state = engine.query_state(&settings, "default", &stats)?;
    let task_ctx = state.task_ctx();
    let config = state.config_options().clone();
    let rules = state.physical_optimizers().to_vec();
    let codec = StageCodec {
        local: Some(LocalScan {
            catalog: Arc::clone(engine.catalog()),
            replication: engine.replication().cloned(),
            settings: settings.clone(),
            state: Arc::new(state),
            stats,
            user,
        }),
        slice: None,
    };
    let mut plan = datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(
        &request.plan,
        &task_ctx,
        &codec,
    )
    .map_err(QueryError::from)?;
    for rule in rules {
        plan = rule.optimize(plan, &config).map_err(QueryError::from)?;
    }
    Ok(execute_stream(plan, task_ctx)?)
}

pub struct StageService {
    engine: Arc<Engine>,
    /// Whether a request's `initial_user` is believed and checked: on the
    /// interserver port, whose callers proved the cluster secret; not on
    /// the client port, whose caller proved a user who may read everything.
    trust_initial_user: bool,
}

/// The `Query` interserver service of this node.
pub fn service(engine: Arc<Engine>) -> QueryServer<StageService> {
    server(engine, true)
}

/// The same service on the client port (`remote()` of another server).
pub fn client_port_service(engine: Arc<Engine>) -> QueryServer<StageService> {
    server(engine, false)
}

fn server(engine: Arc<Engine>, trust_initial_user: bool) -> QueryServer<StageService> {
    QueryServer::new(StageService {
        engine,
        trust_initial_user,
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn exception(e: &QueryError) -> StageChunk {
    let code = e.code();
    StageChunk {
        ipc: Vec::new(),
        exception: Some(StageException {
            code: code as i32,
            name: code.name().to_string(),
            message: e.to_string(),
        }),
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<StageChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Query for StageService {
    type ExecuteStageStream = ChunkStream;

    async fn execute_stage(
        &self,
        request: Request<StageRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let request = request.into_inner();
        let span = info_span!(
            "execute_stage",
            initial_query_id = %request.initial_query_id,
            shard = request.shard
        );
        let engine = Arc::clone(&self.engine);
        let trust = self.trust_initial_user;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<StageChunk, Status>>(4);
        // Ends when the stage does or the initiator hangs up (send fails),
        // which drops the plan and stops its work.
        tokio::spawn(
            async move {
                let stats = Arc::new(QueryStats::default());
                let mut running = match engine.processes().register_stage(
                    &request.initial_query_id,
                    &request.initial_query,
                    Arc::clone(&stats),
                ) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Ok(exception(&e))).await;
                        return;
                    }
                };
                let mut stream = match run_stage(&engine, request, trust).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Ok(exception(&e))).await;
                        return;
                    }
                };
                let mut tick = tokio::time::interval(KEEPALIVE);
                tick.tick().await;
                loop {
                    let chunk = tokio::select! {
                        next = stream.next() => match next {
                            None => break,
                            Some(Ok(batch)) => match ipc_bytes(&batch.schema(), Some(&batch)) {
                                Ok(ipc) => StageChunk { ipc, exception: None },
                                Err(e) => exception(&QueryError::from(e)),
                            },
                            Some(Err(e)) => exception(&QueryError::from(e)),
                        },
                        _ = tick.tick() => StageChunk::default(),
                        _ = running.cancelled() => exception(&QueryError::other(
                            ErrorCode::QUERY_WAS_CANCELLED,
                            "Query was cancelled",
                        )),
                    };
                    engine
                        .distributed_traffic()
                        .sent
                        .fetch_add(chunk.ipc.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    let last = chunk.exception.is_some();
                    if tx.send(Ok(chunk)).await.is_err() || last {
                        break;
                    }
                }
                debug!("stage done");
            }
            .instrument(span),
        );
        let out = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(out)))
    }

    async fn insert_block(
        &self,
        request: Request<InsertBlockRequest>,
    ) -> Result<Response<InsertBlockReply>, Status> {
        let request = request.into_inner();
        let span = info_span!(
            "insert_block",
            initial_query_id = %request.initial_query_id,
            table = %request.table
        );
        let written = async {
            if request.build != BUILD {
                return Err(QueryError::other(
                    ErrorCode::NOT_IMPLEMENTED,
                    format!(
                        "an insert from {} cannot run on {BUILD}: every node of a cluster must run the same build",
                        request.build
                    ),
                ));
            }
            let batches = super::insert::decode_block(&request.ipc)?;
            let mut settings = Settings::new();
            for (k, v) in &request.settings {
                settings.set(k, v.clone());
            }
            if !request.txn.is_empty() {
                return super::insert::stage_block(&self.engine, &request, batches, &settings)
                    .await;
            }
            let rows = self
                .engine
                .insert_batches(&request.database, &request.table, batches, &settings)
                .await?;
            Ok(InsertBlockReply {
                rows,
                ..Default::default()
            })
        }
        .instrument(span)
        .await;
        Ok(Response::new(written.unwrap_or_else(|e| {
            InsertBlockReply {
                exception: exception(&e).exception,
                ..Default::default()
            }
        })))
    }

    async fn describe_table(
        &self,
        request: Request<DescribeTableRequest>,
    ) -> Result<Response<DescribeTableReply>, Status> {
        let request = request.into_inner();
        let schema = self
            .engine
            .catalog()
            .table(&request.database, &request.table)
            .map_err(QueryError::from)
            .and_then(|t| Ok(ipc_bytes(&t.meta().arrow_schema(), None)?));
        Ok(Response::new(match schema {
            Ok(schema) => DescribeTableReply {
                schema,
                exception: None,
            },
            Err(e) => DescribeTableReply {
                schema: Vec::new(),
                exception: exception(&e).exception,
            },
        }))
    }

    async fn finish_insert(
        &self,
        request: Request<FinishInsertRequest>,
    ) -> Result<Response<InsertBlockReply>, Status> {
        let request = request.into_inner();
        let span = info_span!("finish_insert", txn = %request.txn, commit = request.commit);
        let done = super::insert::finish_staged(&self.engine, request)
            .instrument(span)
            .await;
        Ok(Response::new(match done {
            Ok(rows) => InsertBlockReply {
                rows,
                ..Default::default()
            },
            Err(e) => InsertBlockReply {
                exception: exception(&e).exception,
                ..Default::default()
            },
        }))
    }
}
