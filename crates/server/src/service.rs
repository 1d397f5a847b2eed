//! The `QueryService` gRPC implementation.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use qh_proto::query_request::Kind as ReqKind;
use qh_proto::query_response::Kind as RespKind;
use qh_proto::query_service_server::QueryService;
use qh_proto::{
    Exception, PingRequest, PingResponse, Progress, QueryRequest, QueryResponse, Summary,
};
use qh_query::{Engine, Input};
use qh_types::ErrorCode;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info_span, warn, Instrument};

use crate::input::ChannelReader;
use crate::ipc;

/// Sessions idle longer than this are forgotten.
const SESSION_IDLE: Duration = Duration::from_secs(3600);
/// How often a running statement reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

pub struct QueryServiceImpl {
    engine: Arc<Engine>,
    metrics: Arc<crate::metrics::Metrics>,
    node_id: u32,
    sessions: crate::sessions::Sessions,
}

impl QueryServiceImpl {
    pub fn new(engine: Arc<Engine>, metrics: Arc<crate::metrics::Metrics>, node_id: u32) -> Self {
        QueryServiceImpl {
            sessions: crate::sessions::Sessions::new(Arc::clone(&engine)),
            engine,
            metrics,
            node_id,
        }
    }
}

fn exception(code: ErrorCode, message: impl Into<String>) -> QueryResponse {
    QueryResponse {
        kind: Some(RespKind::Exception(Exception {
            code: code as i32,
            name: code.name().to_string(),
            message: message.into(),
        })),
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<QueryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl QueryService for QueryServiceImpl {
    type QueryStream = ResponseStream;

    async fn query(
        &self,
        request: Request<Streaming<QueryRequest>>,
    ) -> Result<Response<Self::QueryStream>, Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        let user = match crate::auth::Credentials::from_grpc(request.metadata())
            .authenticate(&self.engine, &self.metrics, peer)
            .await
        {
            Ok(u) => u,
            Err((code, message)) => {
                let only = futures::stream::once(async move { Ok(exception(code, message)) });
                return Ok(Response::new(Box::pin(only)));
            }
        };
        let mut stream = request.into_inner();
        let start = match stream.next().await {
            Some(Ok(QueryRequest {
                kind: Some(ReqKind::Start(s)),
            })) => s,
            Some(Ok(_)) => {
                return Err(Status::invalid_argument(
                    "the first message must be QueryStart",
                ))
            }
            Some(Err(e)) => return Err(e),
            None => return Err(Status::invalid_argument("empty request stream")),
        };
        let session = self.sessions.get(&user, &start.session_id, SESSION_IDLE);
        let engine = Arc::clone(&self.engine);
        let mut input: Input = None;
        if start.has_input {
            let (tx, rx) = mpsc::channel::<Result<Vec<u8>, String>>(16);
            tokio::spawn(
                async move {
                    while let Some(msg) = stream.next().await {
                        let item = match msg {
                            Ok(QueryRequest {
                                kind: Some(ReqKind::Input(b)),
                            }) => Ok(b),
                            Ok(_) => Err("unexpected message in the input stream".to_string()),
                            Err(e) => Err(format!("client stream failed: {e}")),
                        };
                        let stop = item.is_err();
                        if tx.send(item).await.is_err() || stop {
                            return;
                        }
                    }
                }
                .instrument(info_span!("insert_input")),
            );
            input = Some(Box::new(ChannelReader::new(rx)));
        }
        let (out_tx, out_rx) = mpsc::channel::<Result<QueryResponse, Status>>(8);
        let span = info_span!("grpc_query", query_id = %start.query_id);
        let metrics = Arc::clone(&self.metrics);
        tokio::spawn(
            async move {
                let mut s = session.lock().await;
                let database = (!start.database.is_empty()).then_some(start.database.as_str());
                if let Some(db) = database {
                    if !engine.catalog().has_database(db) {
                        let e = qh_query::QueryError::UnknownDatabase(format!(
                            "Database {db} does not exist"
                        ));
                        let _ = out_tx.send(Ok(exception(e.code(), e.to_string()))).await;
                        return;
                    }
                }
                let request: Vec<(String, String)> = start
                    .settings
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let scope = crate::sessions::scoped(&mut s, &request, database, peer);
                // Progress messages while the statement runs.
                let progress = s.progress();
                let ticker_tx = out_tx.clone();
                let ticker = tokio::spawn(async move {
                    let mut last = (0, 0);
                    loop {
                        tokio::time::sleep(PROGRESS_EVERY).await;
                        let p = Progress {
                            read_rows: progress.rows_read.load(Ordering::Relaxed),
                            read_bytes: progress.bytes_read.load(Ordering::Relaxed),
                            written_rows: progress.rows_written.load(Ordering::Relaxed),
                            written_bytes: progress.bytes_written.load(Ordering::Relaxed),
                        };
                        if (p.read_rows, p.written_rows) == last {
                            continue;
                        }
                        last = (p.read_rows, p.written_rows);
                        let msg = QueryResponse {
                            kind: Some(RespKind::Progress(p)),
                        };
                        if ticker_tx.send(Ok(msg)).await.is_err() {
                            return;
                        }
                    }
                });
                s.set_query_id(&start.query_id);
                // A client that goes away cancels its statement (the
                // execute future is dropped, which stops it).
                let result = tokio::select! {
                    r = s.execute(&start.sql, &mut input) => r,
                    _ = out_tx.closed() => Err(qh_query::QueryError::other(
                        ErrorCode::QUERY_WAS_CANCELLED,
                        "Query was cancelled: the client disconnected",
                    )),
                };
                ticker.abort();
                match &result {
                    Ok(r) => metrics.record(true, r.summary.read_rows, r.summary.written_rows),
                    Err(_) => metrics.record(false, 0, 0),
                }
                // Query-level settings do not stick to the session; SET does.
                crate::sessions::restore(&mut s, scope);
                drop(s);
                let res = match result {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = out_tx.send(Ok(exception(e.code(), e.to_string()))).await;
                        return;
                    }
                };
                if res.has_result_set() {
                    let mut sent_any = false;
                    for b in &res.batches {
                        match ipc::encode(&res.schema, Some(b)) {
                            Ok(bytes) => {
                                sent_any = true;
                                if out_tx
                                    .send(Ok(QueryResponse {
                                        kind: Some(RespKind::ArrowIpc(bytes)),
                                    }))
                                    .await
                                    .is_err()
                                {
                                    return; // client went away
                                }
                            }
                            Err(e) => {
                                let _ = out_tx
                                    .send(Ok(exception(ErrorCode::LOGICAL_ERROR, e.to_string())))
                                    .await;
                                return;
                            }
                        }
                    }
                    if !sent_any {
                        if let Ok(bytes) = ipc::encode(&res.schema, None) {
                            let _ = out_tx
                                .send(Ok(QueryResponse {
                                    kind: Some(RespKind::ArrowIpc(bytes)),
                                }))
                                .await;
                        }
                    }
                    if let Some(totals) = &res.totals {
                        match ipc::encode(&res.schema, Some(totals)) {
                            Ok(bytes) => {
                                let _ = out_tx
                                    .send(Ok(QueryResponse {
                                        kind: Some(RespKind::TotalsIpc(bytes)),
                                    }))
                                    .await;
                            }
                            Err(e) => {
                                let _ = out_tx
                                    .send(Ok(exception(ErrorCode::LOGICAL_ERROR, e.to_string())))
                                    .await;
                                return;
                            }
                        }
                    }
                }
                let s = &res.summary;
                let summary = Summary {
                    query_id: s.query_id.clone(),
                    read_rows: s.read_rows,
                    read_bytes: s.read_bytes,
                    written_rows: s.written_rows,
                    granules_read: s.granules_read,
                    granules_total: s.granules_total,
                    elapsed_micros: s.elapsed.as_micros() as u64,
                    format: res.format.clone().unwrap_or_default(),
                    has_result_set: res.has_result_set(),
                    format_settings: res.format_options.changed().into_iter().collect(),
                };
                if out_tx
                    .send(Ok(QueryResponse {
                        kind: Some(RespKind::Summary(summary)),
                    }))
                    .await
                    .is_err()
                {
                    warn!("client disconnected before the summary");
                }
            }
            .instrument(span),
        );
        let out = tokio_stream::wrappers::ReceiverStream::new(out_rx);
        Ok(Response::new(Box::pin(out)))
    }

    async fn ping(&self, _request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        Ok(Response::new(PingResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            node_id: self.node_id,
        }))
    }
}
