//! Rust client for a quorumhouse node's gRPC API: connect to several
//! endpoints with fail-over, run statements and get Arrow record batches
//! (collected, or streamed as they arrive), insert Arrow batches or CSV/JSON
//! bytes, name a statement with a query id and cancel it, follow progress,
//! and get server errors with ClickHouse's code and name.
//!
//! ```no_run
//! # async fn demo() -> Result<(), qh_client::ClientError> {
//! use qh_client::{Client, QueryOptions};
//! let mut client = Client::connect(&["127.0.0.1:9001", "127.0.0.1:9002"]).await?;
//! let out = client.query("SELECT number FROM numbers(3)").await?;
//! assert_eq!(out.num_rows(), 3);
//!
//! // INSERT with data: the bytes are sent in the format the query names.
//! client
//!     .insert_bytes("INSERT INTO t FORMAT CSV", b"1,a\n2,b\n".to_vec())
//!     .await?;
//! // Arrow batches go as they are (FORMAT ArrowStream), with settings.
//! # let batches: Vec<arrow::array::RecordBatch> = vec![];
//! let opts = QueryOptions::new().setting("insert_quorum", "2");
//! client.insert_batches("t", &batches, opts).await?;
//!
//! // Stream a large result batch by batch.
//! let mut rows = client.query_stream("SELECT * FROM t", QueryOptions::new()).await?;
//! while let Some(batch) = rows.next_batch().await? {
//!     println!("{} rows", batch.num_rows());
//! }
//!
//! // Name a statement, and cancel it from elsewhere.
//! let canceller = client.clone();
//! let opts = QueryOptions::new().query_id("nightly-load");
//! let running = tokio::spawn(async move { client.query_with("SELECT sleep(3)", opts).await });
//! canceller.cancel("nightly-load").await?;
//! match running.await {
//!     Ok(Err(e)) => assert_eq!(e.code(), 394), // QUERY_WAS_CANCELLED
//!     _ => {}
//! }
//! # Ok(()) }
//! ```
//!
//! Errors from the server keep ClickHouse's code and name
//! ([`ClientError::Server`]). Settings apply per client
//! ([`Client::with_setting`]) or per statement ([`QueryOptions::setting`]),
//! and `SET`/`USE` persist for the client's session. Dropping a running
//! call cancels the statement on the server.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
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

    /// Whether sending the statement again is safe: a connection that was
    /// never made did nothing, a call that broke may have run, a server
    /// error says by its code ([`qh_types::ErrorCode::retry_class`]).
    pub fn retry_class(&self) -> qh_types::RetryClass {
        match self {
            ClientError::Connect { .. } => qh_types::RetryClass::Retryable,
            ClientError::Transport(_) => qh_types::RetryClass::UnknownOutcome,
            ClientError::Protocol(_) => qh_types::RetryClass::Final,
            ClientError::Server { code, .. } => qh_types::ErrorCode::from_i32(*code)
                .map(qh_types::ErrorCode::retry_class)
                .unwrap_or(qh_types::RetryClass::Final),
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
    /// The `WITH TOTALS` row, when the statement asked for one.
    pub totals: Option<RecordBatch>,
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

/// How a TLS connection checks the server: against this CA (PEM) or, when
/// none is given, the system's trusted roots; the name its certificate must
/// carry is the endpoint's host unless `domain` says otherwise.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    pub ca_pem: Option<Vec<u8>>,
    pub domain: Option<String>,
}

impl Tls {
    /// Trusts the CA certificate(s) in the PEM file at `path`.
    pub fn with_ca_file(path: impl AsRef<std::path::Path>) -> std::io::Result<Tls> {
        Ok(Tls {
            ca_pem: Some(std::fs::read(path)?),
            domain: None,
        })
    }

    fn tonic(&self) -> tonic::transport::ClientTlsConfig {
        let mut c = tonic::transport::ClientTlsConfig::new();
        c = match &self.ca_pem {
            Some(pem) => c.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
            None => c.with_native_roots(),
        };
        match &self.domain {
            Some(d) => c.domain_name(d.clone()),
            None => c,
        }
    }
}

/// A connection to one node (the first of the given endpoints that answers).
#[derive(Clone)]
pub struct Client {
    inner: QueryServiceClient<Channel>,
    endpoint: String,
    session_id: String,
    settings: HashMap<String, String>,
    on_progress: Option<ProgressCallback>,
    /// User and password sent with every query (none: `default`).
    credentials: Option<(String, String)>,
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
        Self::connect_with(endpoints, timeout, None).await
    }

    /// [`Client::connect_with_timeout`] over TLS (a server's `secure_port`):
    /// `https://` endpoints, or `host:port` ones taken as such.
    pub async fn connect_tls<S: AsRef<str>>(
        endpoints: &[S],
        timeout: Duration,
        tls: &Tls,
    ) -> Result<Client, ClientError> {
        Self::connect_with(endpoints, timeout, Some(tls)).await
    }

    async fn connect_with<S: AsRef<str>>(
        endpoints: &[S],
        timeout: Duration,
        tls: Option<&Tls>,
    ) -> Result<Client, ClientError> {
        // Owned before the first await, so the future is `Send` for any
        // caller (a borrowed iterator held across awaits is not, generally).
        let endpoints: Vec<String> = endpoints.iter().map(|e| e.as_ref().to_string()).collect();
        let mut failures: Vec<String> = Vec::new();
        let scheme = if tls.is_some() { "https" } else { "http" };
        for e in endpoints.clone() {
            let url = if e.contains("://") {
                e
            } else {
                format!("{scheme}://{e}")
            };
            let ep = Endpoint::from_shared(url.clone()).and_then(|ep| {
                let ep = ep.connect_timeout(timeout).tcp_nodelay(true);
                match tls {
                    Some(t) => ep.tls_config(t.tonic()),
                    None => Ok(ep),
                }
            });
            let ep = match ep {
                Ok(ep) => ep,
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
                        credentials: env_credentials(),
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

    /// Runs every query as `user` with `password` (`--user`, `--password`);
    /// without it, as `QUORUMHOUSE_USER` / `QUORUMHOUSE_PASSWORD` when set,
    /// else as `default`.
    pub fn with_credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_string(), password.to_string()));
        self
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
        self.query_with(sql, QueryOptions::new()).await
    }

    /// [`Client::query`] with a query id and per-statement settings.
    pub async fn query_with(
        &mut self,
        sql: &str,
        opts: QueryOptions,
    ) -> Result<QueryOutput, ClientError> {
        self.start(sql, None::<futures::stream::Empty<Vec<u8>>>, opts)
            .await?
            .collect()
            .await
    }

    /// Runs a statement and hands its result over batch by batch as the
    /// server sends them ([`BatchStream::next_batch`]).
    pub async fn query_stream(
        &mut self,
        sql: &str,
        opts: QueryOptions,
    ) -> Result<BatchStream, ClientError> {
        self.start(sql, None::<futures::stream::Empty<Vec<u8>>>, opts)
            .await
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

    /// Inserts Arrow record batches into `table` (`INSERT INTO table FORMAT
    /// ArrowStream`): columns are matched by name and cast to the table's
    /// types; table columns the batches lack get their defaults. All batches
    /// must share one schema. Returns the server's summary.
    pub async fn insert_batches(
        &mut self,
        table: &str,
        batches: &[RecordBatch],
        opts: QueryOptions,
    ) -> Result<Summary, ClientError> {
        let Some(first) = batches.first() else {
            return Err(ClientError::Protocol(
                "insert_batches needs at least one batch".into(),
            ));
        };
        let mut bytes = Vec::new();
        {
            let mut w = StreamWriter::try_new(&mut bytes, &first.schema())
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            for b in batches {
                w.write(b)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
            }
            w.finish()
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
        }
        let chunks: Vec<Vec<u8>> = bytes.chunks(INPUT_CHUNK).map(|c| c.to_vec()).collect();
        let sql = format!("INSERT INTO {table} FORMAT ArrowStream");
        let out = self
            .start(&sql, Some(futures::stream::iter(chunks)), opts)
            .await?
            .collect()
            .await?;
        Ok(out.summary)
    }

    /// Asks the server to stop the statement running under `query_id`
    /// (`KILL QUERY ... SYNC` on a call of its own, so it works while this
    /// client's other calls wait). Returns whether such a statement was
    /// running; the cancelled call fails with QUERY_WAS_CANCELLED (394).
    pub async fn cancel(&self, query_id: &str) -> Result<bool, ClientError> {
        let mut other = self.clone();
        other.session_id = String::new();
        let escaped = query_id.replace('\\', "\\\\").replace('\'', "\\'");
        let out = other
            .query(&format!("KILL QUERY WHERE query_id = '{escaped}' SYNC"))
            .await?;
        Ok(out.num_rows() > 0)
    }

    /// Runs a statement whose input arrives as a stream of byte chunks (for
    /// example stdin read in pieces); the server parses them as they come.
    pub async fn run<I>(&mut self, sql: &str, input: Option<I>) -> Result<QueryOutput, ClientError>
    where
        I: futures::Stream<Item = Vec<u8>> + Send + 'static,
    {
        self.run_with(sql, input, QueryOptions::new()).await
    }

    /// [`Client::run`] with a query id and per-statement settings.
    pub async fn run_with<I>(
        &mut self,
        sql: &str,
        input: Option<I>,
        opts: QueryOptions,
    ) -> Result<QueryOutput, ClientError>
    where
        I: futures::Stream<Item = Vec<u8>> + Send + 'static,
    {
        self.start(sql, input, opts).await?.collect().await
    }

    /// Builds the request before returning a future of owned values only,
    /// so callers can `tokio::spawn` any call of this client.
    fn start<I>(
        &mut self,
        sql: &str,
        input: Option<I>,
        opts: QueryOptions,
    ) -> impl std::future::Future<Output = Result<BatchStream, ClientError>> + Send + 'static
    where
        I: futures::Stream<Item = Vec<u8>> + Send + 'static,
    {
        let mut settings = self.settings.clone();
        settings.extend(opts.settings);
        let start = QueryRequest {
            kind: Some(ReqKind::Start(QueryStart {
                sql: sql.to_string(),
                settings,
                query_id: opts.query_id.unwrap_or_default(),
                session_id: self.session_id.clone(),
                database: String::new(),
                has_input: input.is_some(),
            })),
        };
        // The request stream is a channel fed by a task: tonic's call future
        // is `Send` for every caller with a concrete, `Sync` stream (a boxed
        // `dyn Stream` trips a higher-ranked lifetime error in spawned tasks).
        let (tx, rx) = tokio::sync::mpsc::channel::<QueryRequest>(4);
        let feed = async move {
            if tx.send(start).await.is_err() {
                return;
            }
            if let Some(input) = input {
                let mut input = std::pin::pin!(input);
                while let Some(chunk) = input.next().await {
                    if tx.send(input_request(chunk)).await.is_err() {
                        return; // the call ended: stop reading the input
                    }
                }
            }
        };
        let mut reqs = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        if let Some((user, password)) = &self.credentials {
            put_metadata(reqs.metadata_mut(), "user", user);
            put_metadata(reqs.metadata_mut(), "password", password);
        }
        let mut inner = self.inner.clone();
        let on_progress = self.on_progress.clone();
        async move {
            tokio::spawn(feed);
            let stream = inner.query(reqs).await?.into_inner();
            Ok(BatchStream {
                inner: stream,
                on_progress,
                schema: None,
                ready: VecDeque::new(),
                totals: None,
                summary: None,
            })
        }
    }
}

/// `QUORUMHOUSE_USER` / `QUORUMHOUSE_PASSWORD` from the environment, when
/// either is set: every tool built on this client (`cluster status`, the
/// drills, the benches) then logs in as that user, as clickhouse-client
/// reads `CLICKHOUSE_USER` / `CLICKHOUSE_PASSWORD`.
fn env_credentials() -> Option<(String, String)> {
    let user = std::env::var("QUORUMHOUSE_USER").ok();
    let password = std::env::var("QUORUMHOUSE_PASSWORD").ok();
    if user.is_none() && password.is_none() {
        return None;
    }
    Some((
        user.unwrap_or_else(|| "default".into()),
        password.unwrap_or_default(),
    ))
}

/// `key` as ASCII metadata, or as `key-bin` when `value` is not ASCII
/// (the server reads either).
fn put_metadata(m: &mut tonic::metadata::MetadataMap, key: &'static str, value: &str) {
    match tonic::metadata::MetadataValue::try_from(value) {
        Ok(v) => {
            m.insert(key, v);
        }
        Err(_) => {
            if let Ok(k) =
                tonic::metadata::BinaryMetadataKey::from_bytes(format!("{key}-bin").as_bytes())
            {
                m.insert_bin(
                    k,
                    tonic::metadata::MetadataValue::from_bytes(value.as_bytes()),
                );
            }
        }
    }
}

/// Per-statement options: a query id (to find the statement in
/// `system.processes` or cancel it) and settings on top of the client's.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    query_id: Option<String>,
    settings: HashMap<String, String>,
}

impl QueryOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the statement under this id; a statement with the same id
    /// already running makes the server refuse it (code 216).
    pub fn query_id(mut self, id: impl Into<String>) -> Self {
        self.query_id = Some(id.into());
        self
    }

    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.insert(name.into(), value.into());
        self
    }
}

/// A statement's result arriving batch by batch. Dropping it before the end
/// cancels the statement on the server.
pub struct BatchStream {
    inner: tonic::Streaming<qh_proto::QueryResponse>,
    on_progress: Option<ProgressCallback>,
    schema: Option<SchemaRef>,
    ready: VecDeque<RecordBatch>,
    totals: Option<RecordBatch>,
    summary: Option<Summary>,
}

impl BatchStream {
    /// The next batch; `None` once the statement finished (then
    /// [`BatchStream::summary`] is there).
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>, ClientError> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Ok(Some(b));
            }
            if self.summary.is_some() {
                return Ok(None);
            }
            let Some(msg) = self.inner.next().await else {
                return Err(ClientError::Protocol(
                    "the server closed the stream without a summary".into(),
                ));
            };
            match msg?.kind {
                Some(RespKind::ArrowIpc(bytes)) => {
                    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    if self.schema.is_none() {
                        self.schema = Some(reader.schema());
                    }
                    for b in reader {
                        self.ready
                            .push_back(b.map_err(|e| ClientError::Protocol(e.to_string()))?);
                    }
                }
                Some(RespKind::TotalsIpc(bytes)) => {
                    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    for b in reader {
                        self.totals = Some(b.map_err(|e| ClientError::Protocol(e.to_string()))?);
                    }
                }
                Some(RespKind::Progress(p)) => {
                    if let Some(cb) = &self.on_progress {
                        cb(&p);
                    }
                }
                Some(RespKind::Summary(summary)) => self.summary = Some(summary),
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
    }

    /// The result's schema, once the first batch arrived (statements without
    /// a result set have none).
    pub fn schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref()
    }

    /// Counters of the finished statement (query id, rows read/written).
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// The `WITH TOTALS` row, once every batch was read.
    pub fn totals(&self) -> Option<&RecordBatch> {
        self.totals.as_ref()
    }

    /// Reads the rest of the result into memory.
    pub async fn collect(mut self) -> Result<QueryOutput, ClientError> {
        let mut batches = Vec::new();
        while let Some(b) = self.next_batch().await? {
            batches.push(b);
        }
        Ok(QueryOutput {
            schema: self.schema,
            batches,
            totals: self.totals,
            summary: self.summary.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compile-time check: every call can run in a spawned task.
    #[allow(dead_code)]
    fn calls_are_send(mut c: Client, batches: Vec<RecordBatch>) {
        fn is_send<T: Send>(_: T) {}
        let mut d = c.clone();
        let e = c.clone();
        let mut f = c.clone();
        is_send(async move { c.query("SELECT 1").await });
        is_send(async move { d.insert_batches("t", &batches, QueryOptions::new()).await });
        is_send(async move { e.cancel("q").await });
        is_send(async move {
            let s = f.query_stream("SELECT 1", QueryOptions::new()).await?;
            s.collect().await
        });
    }
}
