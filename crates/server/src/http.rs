//! The HTTP interface (ClickHouse's, on port 8120+N): `/?query=...` or the
//! query in the POST body, results in the text formats, JSON, Native, RowBinary*,
//! INSERT data in the body (compressed per `Content-Encoding`), `/ping`,
//! and `/metrics`. What clickhouse-connect relies on: errors as a non-200
//! status with `X-ClickHouse-Exception-Code`, `X-ClickHouse-Summary`,
//! `X-ClickHouse-Format` only for statements that return rows.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use qh_query::{Engine, Input, Session};
use qh_types::encode::{EncodeError, ResultEncoder};
use qh_types::ErrorCode;
use tokio::sync::mpsc;
use tracing::{info_span, Instrument};

use crate::input::ChannelReader;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct HttpState {
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    pub sessions: Arc<crate::sessions::Sessions>,
}

/// Parameters that are not settings.
const RESERVED: &[&str] = &[
    "query",
    "database",
    "default_format",
    "user",
    "password",
    "query_id",
    "session_id",
    // clickhouse-connect's probe for the TCP protocol's block headers,
    // which HTTP answers here never carry.
    "client_protocol_version",
    "session_timeout",
    "session_check",
    "close_session",
    // HTTP-only parameters of ClickHouse's handler, not settings.
    "compress",
    "decompress",
    "buffer_size",
    "wait_end_of_query",
    "quota_key",
    "stacktrace",
    "with_stacktrace",
    "role",
];

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(query_get).post(query_post))
        .route("/ping", get(|| async { "Ok.\n" }))
        .route("/metrics", get(metrics))
        .route("/replicas_status", get(replicas_status))
        .with_state(state)
}

/// ClickHouse's `/replicas_status` for load balancers: `Ok.` (200) when
/// every replicated table here is writable and less than
/// `max_replica_delay_for_distributed_queries` behind, else 503 naming the
/// tables that are not (`?verbose=1`: every table's line instead of `Ok.`).
async fn replicas_status(
    State(s): State<HttpState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let verbose = params.get("verbose").is_some_and(|v| v != "0");
    let max_delay = s
        .engine
        .session()
        .settings()
        .uint("max_replica_delay_for_distributed_queries")
        .unwrap_or(300);
    let mut ok = true;
    let mut text = String::new();
    let replicas = s
        .engine
        .replication()
        .map(|r| r.replicas())
        .unwrap_or_default();
    for st in replicas.iter().map(|r| r.status()) {
        let name = format!("{}.{}", st.database, st.table);
        let line = if st.is_readonly {
            ok = false;
            format!("{name}:\tis readonly.\n")
        } else {
            let late = max_delay > 0 && st.absolute_delay >= max_delay;
            ok &= !late;
            if !late && !verbose {
                continue;
            }
            format!("{name}:\tAbsolute delay: {}.\n", st.absolute_delay)
        };
        text.push_str(&line);
    }
    match (ok, verbose) {
        (true, false) => (StatusCode::OK, "Ok.\n".to_string()).into_response(),
        (true, true) => (StatusCode::OK, text).into_response(),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, text).into_response(),
    }
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    s.metrics.render(&s.engine)
}

fn error_response(code: ErrorCode, message: &str) -> Response {
    let status = match code {
        ErrorCode::SYNTAX_ERROR
        | ErrorCode::BAD_ARGUMENTS
        | ErrorCode::UNKNOWN_IDENTIFIER
        | ErrorCode::CANNOT_PARSE_INPUT_ASSERTION_FAILED
        | ErrorCode::UNKNOWN_FORMAT
        | ErrorCode::TYPE_MISMATCH
        | ErrorCode::TOO_DEEP_AST
        | ErrorCode::TOO_BIG_AST => StatusCode::BAD_REQUEST,
        ErrorCode::READONLY
        | ErrorCode::AUTHENTICATION_FAILED
        | ErrorCode::ACCESS_DENIED
        | ErrorCode::UNKNOWN_USER => StatusCode::FORBIDDEN,
        ErrorCode::QUERY_IS_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::QUOTA_EXCEEDED => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::UNKNOWN_TABLE | ErrorCode::UNKNOWN_DATABASE | ErrorCode::UNKNOWN_SETTING => {
            StatusCode::NOT_FOUND
        }
        ErrorCode::NOT_IMPLEMENTED => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut r = (
        status,
        format!("{}\n", qh_types::error_codes::render(code, message)),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&(code as i32).to_string()) {
        r.headers_mut().insert("X-ClickHouse-Exception-Code", v);
    }
    r
}

/// The client's address, when the server was started with connect info.
fn peer_of(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

async fn query_get(
    State(s): State<HttpState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let peer = peer_of(&extensions);
    let response = match params.get("query") {
        Some(q) => run(s, q.clone(), &params, &headers, peer, Method::Get).await,
        None => "Ok.\n".into_response(),
    };
    compressed(&headers, &params, response).await
}

/// The response compressed when the request asks twice, as ClickHouse
/// requires: `enable_http_compression=1` and an `Accept-Encoding` we write.
async fn compressed(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    response: Response,
) -> Response {
    let enabled = params
        .get("enable_http_compression")
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let Some(accept) = accept.filter(|_| enabled) else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    // The body is already whole in memory (results are buffered).
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return error_response(ErrorCode::LOGICAL_ERROR, &e.to_string()),
    };
    match crate::http_body::encoded(accept, &bytes) {
        Some((encoding, out)) => {
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(out))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

async fn query_post(
    State(s): State<HttpState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let peer = peer_of(&extensions);
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, String>>(16);
    let mut stream = body.into_data_stream();
    tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            let item = chunk
                .map(|b| b.to_vec())
                .map_err(|e| format!("request body: {e}"));
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body =
        match crate::http_body::decoded(encoding.as_deref(), Box::new(ChannelReader::new(rx))) {
            Ok(b) => b,
            Err(why) => return error_response(ErrorCode::BAD_ARGUMENTS, &why),
        };
    let response = match params.get("query") {
        // The query is in the URL: the body is INSERT data, streamed.
        Some(q) => {
            run(
                s,
                q.clone(),
                &params,
                &headers,
                peer,
                Method::Post(Some(body)),
            )
            .await
        }
        // Otherwise the body starts with the query; an INSERT's data
        // follows its FORMAT clause.
        None => {
            let split =
                tokio::task::spawn_blocking(move || crate::http_body::split_query(body)).await;
            match split {
                Ok(Ok((q, data))) => run(s, q, &params, &headers, peer, Method::Post(data)).await,
                Ok(Err(e))
                    if e.get_ref()
                        .is_some_and(|i| i.is::<crate::http_body::QueryTooLong>()) =>
                {
                    error_response(ErrorCode::SYNTAX_ERROR, &e.to_string())
                }
                Ok(Err(e)) => error_response(
                    ErrorCode::BAD_ARGUMENTS,
                    &format!("cannot read the query: {e}"),
                ),
                Err(e) => error_response(ErrorCode::LOGICAL_ERROR, &e.to_string()),
            }
        }
    };
    compressed(&headers, &params, response).await
}

/// A whole result in the format `name`: its bytes, the format's name and
/// the content type.
fn encode(
    res: &qh_query::QueryResult,
    name: Option<&str>,
    elapsed_seconds: f64,
) -> Result<(Vec<u8>, String, &'static str), EncodeError> {
    let mut e = ResultEncoder::new(name, &res.schema, res.format_options)?;
    let mut out = Vec::new();
    for b in &res.batches {
        out.extend(e.write_batch(b)?);
    }
    if let Some(t) = &res.totals {
        out.extend(e.write_totals(t));
    }
    e.set_statistics(
        elapsed_seconds,
        res.summary.read_rows,
        res.summary.read_bytes,
    );
    out.extend(e.finish()?);
    Ok((out, e.format_name().to_string(), e.content_type()))
}

/// Sessions (`session_id`) live this long without use unless the request
/// says (`session_timeout`, seconds), as in ClickHouse.
const DEFAULT_SESSION_TIMEOUT: u64 = 60;
const MAX_SESSION_TIMEOUT: u64 = 3600;

/// How a request came: a GET only reads and has no body.
enum Method {
    Get,
    Post(Input),
}

async fn run(
    s: HttpState,
    sql: String,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    method: Method,
) -> Response {
    let get = matches!(method, Method::Get);
    let input = match method {
        Method::Get => None,
        Method::Post(input) => input,
    };
    let user = match crate::auth::Credentials::from_http(headers, params)
        .authenticate(&s.engine, &s.metrics, peer)
        .await
    {
        Ok(u) => u,
        Err((code, message)) => return error_response(code, &message),
    };
    // `param_x=v` binds `{x:Type}` in the query; the rest are settings.
    let mut bound = HashMap::new();
    let mut settings = Vec::new();
    for (k, v) in params {
        if let Some(name) = k.strip_prefix("param_") {
            bound.insert(name.to_string(), v.clone());
        } else if !RESERVED.contains(&k.as_str()) {
            settings.push((k.clone(), v.clone()));
        }
    }
    let sql = match qh_query::bind_parameters(&sql, &bound) {
        Ok(q) => q,
        Err(e) => return error_response(e.code(), &e.to_string()),
    };
    let database = params.get("database").map(String::as_str);
    if let Some(db) = database {
        if !s.engine.catalog().has_database(db) {
            return error_response(
                ErrorCode::UNKNOWN_DATABASE,
                &format!("Database {db} does not exist"),
            );
        }
    }
    let id = params.get("session_id").map(String::as_str).unwrap_or("");
    let timeout = match params.get("session_timeout").map(|t| t.parse::<u64>()) {
        None => DEFAULT_SESSION_TIMEOUT,
        Some(Ok(t)) if t <= MAX_SESSION_TIMEOUT => t,
        Some(_) => {
            return error_response(
                ErrorCode::INVALID_SESSION_TIMEOUT,
                &format!(
                    "Invalid session timeout: the value must be 0..{MAX_SESSION_TIMEOUT} seconds"
                ),
            )
        }
    };
    let slot = s.sessions.get(&user, id, Duration::from_secs(timeout));
    // One request at a time per session, as in ClickHouse.
    let Ok(mut session) = slot.try_lock_owned() else {
        return error_response(
            ErrorCode::SESSION_IS_LOCKED,
            &format!("Session {id} is locked by a concurrent client."),
        );
    };
    // As in ClickHouse, a GET only reads: readonly = 2 unless the request
    // or the session (a profile) says otherwise (writes need POST).
    let unset = |s: &Session| s.settings().get_u64("readonly", 0).unwrap_or(0) == 0;
    if get && !settings.iter().any(|(k, _)| k == "readonly") && unset(&session) {
        settings.push(("readonly".to_string(), "2".to_string()));
    }
    let scope = crate::sessions::scoped(&mut session, &settings, database, peer);
    let response = statements(&s, &mut session, &sql, params, input).await;
    crate::sessions::restore(&mut session, scope);
    response
}

/// Runs the statements of one request in `session`.
async fn statements(
    s: &HttpState,
    session: &mut qh_query::Session,
    sql: &str,
    params: &HashMap<String, String>,
    mut input: Input,
) -> Response {
    let started = std::time::Instant::now();
    let default_format = params.get("default_format").cloned();
    let statements = qh_query::split_statements(sql);
    let mut body: Vec<u8> = Vec::new();
    let mut query_id = String::new();
    let mut format_header = None;
    let mut content_type = "text/plain; charset=UTF-8";
    let (mut read_rows, mut read_bytes, mut written_rows) = (0u64, 0u64, 0u64);
    for stmt in statements {
        if let Some(id) = params.get("query_id").filter(|id| !id.is_empty()) {
            session.set_query_id(id);
        }
        let res = session
            .execute(&stmt, &mut input)
            .instrument(info_span!("http_query"))
            .await;
        let res = match res {
            Ok(r) => {
                s.metrics
                    .record(true, r.summary.read_rows, r.summary.written_rows);
                query_id = r.summary.query_id.clone();
                r
            }
            Err(e) => {
                s.metrics.record(false, 0, 0);
                return error_response(e.code(), &e.to_string());
            }
        };
        read_rows += res.summary.read_rows;
        read_bytes += res.summary.read_bytes;
        written_rows += res.summary.written_rows;
        if !res.has_result_set() {
            continue;
        }
        let name = res.format.clone().or_else(|| default_format.clone());
        match encode(&res, name.as_deref(), started.elapsed().as_secs_f64()) {
            Ok((bytes, format, ct)) => {
                body.extend_from_slice(&bytes);
                format_header = Some(format);
                content_type = ct;
            }
            Err(e) => return error_response(e.code(), &e.to_string()),
        }
    }
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&query_id) {
        h.insert("X-ClickHouse-Query-Id", v);
    }
    if let Some(v) = format_header.and_then(|f| HeaderValue::from_str(&f).ok()) {
        h.insert("X-ClickHouse-Format", v);
    }
    h.insert(
        "X-ClickHouse-Timezone",
        HeaderValue::from_static(qh_query::functions::TIME_ZONE),
    );
    h.insert(
        "X-ClickHouse-Server-Display-Name",
        HeaderValue::from_static("quorumhouse"),
    );
    let summary = format!(
        "{{\"read_rows\":\"{read_rows}\",\"read_bytes\":\"{read_bytes}\",\"written_rows\":\"{written_rows}\",\"total_rows_to_read\":\"{read_rows}\"}}"
    );
    if let Ok(v) = HeaderValue::from_str(&summary) {
        // Results are computed whole before the response starts, so the
        // progress ClickHouse would send while running arrives once, final.
        if session
            .settings()
            .get_bool("send_progress_in_http_headers", false)
            .unwrap_or(false)
        {
            h.insert("X-ClickHouse-Progress", v.clone());
        }
        h.insert("X-ClickHouse-Summary", v);
    }
    r
}
