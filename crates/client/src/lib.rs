//! Rust client for a quorumhouse node's gRPC API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), qh_client::ClientError> {
//! let mut client = qh_client::Client::connect(&["http://127.0.0.1:9001"]).await?;
//! let out = client.query("SELECT number FROM numbers(3)").await?;
//! assert_eq!(out.num_rows(), 3);
//! // INSERT with data: the bytes are sent in the format the query names.
//! client
//!     .insert_bytes("INSERT INTO t FORMAT CSV", b"1,a\n2,b\n".to_vec())
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Errors from the server keep ClickHouse's code and name
//! ([`ClientError::Server`]). Settings apply per query ([`Client::with_setting`])
//! and `SET`/`USE` persist for the client's session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use futures::StreamExt;
use qh_proto::query_request::Kind as ReqKind;
use qh_proto::query_response::Kind as RespKind;
use qh_proto::query_service_client::QueryServiceClient;
use qh_proto::{QueryRequest, QueryStart};
use tonic::transport::{Channel, Endpoint};

pub use qh_proto::{Progress, Summary};

/// Largest message the client accepts.
const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Input is sent in chunks of this size.
pub const INPUT_CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No endpoint answered; `last` gives each endpoint's reason.
    #[error("cannot connect to any of {endpoints:?}: {last}")]
    Connect {
        endpoints: Vec<String>,
        last: String,
    },
    /// The server ran the statement and it failed.
    #[error("Code: {code}. {message}. ({name})")]
    Server {
        code: i32,
        name: String,
        message: String,
    },
    /// The connection broke or the server refused the call.
    #[error("network error: {0}")]
    Transport(#[from] tonic::Status),
    /// The server sent something this client does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The ClickHouse code: the server's, or NETWORK_ERROR (210) /
    /// ALL_CONNECTION_TRIES_FAILED (279) for failures on the way.
    pub fn code(&self) -> i32 {
        match self {
            ClientError::Server { code, .. } => *code,
            ClientError::Connect { .. } => 279,
            ClientError::Transport(_) => 210,
            ClientError::Protocol(_) => 1002,
        }
    }

    /// The ClickHouse error name.
    pub fn name(&self) -> &str {
        match self {
            ClientError::Server { name, .. } => name,
            ClientError::Connect { .. } => "ALL_CONNECTION_TRIES_FAILED",
            ClientError::Transport(_) => "NETWORK_ERROR",
            ClientError::Protocol(_) => "UNKNOWN_EXCEPTION",
        }
    }
}

/// The result of one statement.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Present when the statement returns a result set.
    pub schema: Option<SchemaRef>,
    pub batches: Vec<RecordBatch>,
    pub summary: Summary,
}

impl QueryOutput {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

static SESSION_COUNTER: AtomicU64 = AtomicU64::new(1);

fn input_request(b: Vec<u8>) -> QueryRequest {
    QueryRequest {
        kind: Some(ReqKind::Input(b)),
    }
}

/// Called with the running totals while a statement runs.
pub type ProgressCallback = std::sync::Arc<dyn Fn(&Progress) + Send + Sync>;

/// A connection to one node (the first of the given endpoints that answers).
#[derive(Clone)]
pub struct Client {
    inner: QueryServiceClient<Channel>,
    endpoint: String,
    session_id: String,
    settings: HashMap<String, String>,
    on_progress: Option<ProgressCallback>,
}

impl Client {
    /// Connects to the first endpoint that answers, in order. Endpoints are
    /// URLs (`http://host:port`) or `host:port`.
    pub async fn connect<S: AsRef<str>>(endpoints: &[S]) -> Result<Client, ClientError> {
        Self::connect_with_timeout(endpoints, Duration::from_secs(2)).await
    }

    /// [`Client::connect`] giving each endpoint `timeout` to accept. On
    /// failure the error names every endpoint with its own reason.
    pub async fn connect_with_timeout<S: AsRef<str>>(
        endpoints: &[S],
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        // Owned before the first await, so the future is `Send` for any
        // caller (a borrowed iterator held across awaits is not, generally).
        let endpoints: Vec<String> = endpoints.iter().map(|e| e.as_ref().to_string()).collect();
        let mut failures: Vec<String> = Vec::new();
        for e in endpoints.clone() {
            let url = if e.contains("://") {
                e
            } else {
                format!("http://{e}")
            };
            let ep = match Endpoint::from_shared(url.clone()) {
                Ok(ep) => ep.connect_timeout(timeout).tcp_nodelay(true),
                Err(err) => {
                    failures.push(format!("{url}: {err}"));
                    continue;
                }
            };
            match ep.connect().await {
                Ok(ch) => {
                    let inner = QueryServiceClient::new(ch)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES);
                    return Ok(Client {
                        inner,
                        endpoint: url,
                        session_id: format!(
                            "client-{}-{}",
                            std::process::id(),
                            SESSION_COUNTER.fetch_add(1, Ordering::Relaxed)
                        ),
                        settings: HashMap::new(),
                        on_progress: None,
                    });
                }
                Err(err) => {
                    // The innermost cause says why (refused, timed out, ...).
                    let mut why = err.to_string();
                    let mut cause = std::error::Error::source(&err);
                    while let Some(c) = cause {
                        why = c.to_string();
                        cause = c.source();
                    }
                    failures.push(format!("{url}: {why}"));
                }
            }
        }
        let last = if failures.is_empty() {
            "no endpoints given".to_string()
        } else {
            failures.join("; ")
        };
        Err(ClientError::Connect { endpoints, last })
    }

    /// The endpoint this client is connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A setting sent with every query (like `--setting k=v`).
    pub fn with_setting(mut self, name: &str, value: &str) -> Self {
        self.settings.insert(name.to_string(), value.to_string());
        self
    }

    /// Receives progress (rows and bytes read or received so far) while a
    /// statement runs, about five times a second.
    pub fn on_progress(&mut self, callback: ProgressCallback) {
        self.on_progress = Some(callback);
    }

    pub fn set_setting(&mut self, name: &str, value: &str) {
        self.settings.insert(name.to_string(), value.to_string());
    }

    /// Checks that the server answers; returns its version.
    pub async fn ping(&mut self) -> Result<String, ClientError> {
        let r = self.inner.ping(qh_proto::PingRequest {}).await?;
        Ok(r.into_inner().version)
    }

    /// Runs one statement and collects its result.
    pub async fn query(&mut self, sql: &str) -> Result<QueryOutput, ClientError> {
        self.run(sql, None::<futures::stream::Empty<Vec<u8>>>).await
    }

    /// Runs `INSERT ... FORMAT X` with `data` as its input.
    pub async fn insert_bytes(
        &mut self,
        sql: &str,
        data: Vec<u8>,
    ) -> Result<QueryOutput, ClientError> {
        let chunks: Vec<Vec<u8>> = data.chunks(INPUT_CHUNK).map(|c| c.to_vec()).collect();
        self.run(sql, Some(futures::stream::iter(chunks))).await
    }

    /// Runs a statement whose input arrives as a stream of byte chunks (for
    /// example stdin read in pieces); the server parses them as they come.
    pub async fn run<I>(&mut self, sql: &str, input: Option<I>) -> Result<QueryOutput, ClientError>
    where
        I: futures::Stream<Item = Vec<u8>> + Send + 'static,
    {
        let start = QueryRequest {
            kind: Some(ReqKind::Start(QueryStart {
                sql: sql.to_string(),
                settings: self.settings.clone(),
                query_id: String::new(),
                session_id: self.session_id.clone(),
                database: String::new(),
                has_input: input.is_some(),
            })),
        };
        let head = futures::stream::once(async move { start });
        let reqs: std::pin::Pin<Box<dyn futures::Stream<Item = QueryRequest> + Send>> = match input
        {
            Some(i) => Box::pin(head.chain(i.map(input_request as fn(Vec<u8>) -> QueryRequest))),
            None => Box::pin(head),
        };
        let mut stream = self.inner.query(reqs).await?.into_inner();
        let mut schema: Option<SchemaRef> = None;
        let mut batches = Vec::new();
        while let Some(msg) = stream.next().await {
            match msg?.kind {
                Some(RespKind::ArrowIpc(bytes)) => {
                    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    if schema.is_none() {
                        schema = Some(reader.schema());
                    }
                    for b in reader {
                        batches.push(b.map_err(|e| ClientError::Protocol(e.to_string()))?);
                    }
                }
                Some(RespKind::Progress(p)) => {
                    if let Some(cb) = &self.on_progress {
                        cb(&p);
                    }
                }
                Some(RespKind::Summary(summary)) => {
                    return Ok(QueryOutput {
                        schema,
                        batches,
                        summary,
                    })
                }
                Some(RespKind::Exception(e)) => {
                    return Err(ClientError::Server {
                        code: e.code,
                        name: e.name,
                        message: e.message,
                    })
                }
                None => return Err(ClientError::Protocol("empty response message".into())),
            }
        }
        Err(ClientError::Protocol(
            "the server closed the stream without a summary".into(),
        ))
    }
}
