//! The HTTP interface (ClickHouse's, on port 8120+N): `/?query=...` with the
//! result as text, INSERT data in the POST body, `/ping`, and `/metrics`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use qh_query::{Engine, Input};
use qh_types::formats::{OutputFormat, Writer};
use qh_types::ErrorCode;
use tokio::sync::mpsc;
use tracing::{info_span, Instrument};

use crate::input::ChannelReader;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct HttpState {
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
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
];

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(query_get).post(query_post))
        .route("/ping", get(|| async { "Ok.\n" }))
        .route("/metrics", get(metrics))
        .with_state(state)
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
        ErrorCode::READONLY => StatusCode::FORBIDDEN,
        ErrorCode::QUERY_IS_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UNKNOWN_TABLE | ErrorCode::UNKNOWN_DATABASE => StatusCode::NOT_FOUND,
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

async fn query_get(
    State(s): State<HttpState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match params.get("query") {
        // As in ClickHouse, a GET only reads: readonly = 2 unless the
        // request sets readonly itself (writes need POST).
        Some(q) => {
            let mut params = params.clone();
            params
                .entry("readonly".to_string())
                .or_insert_with(|| "2".to_string());
            run(s, q.clone(), &params, None).await
        }
        None => "Ok.\n".into_response(),
    }
}

async fn query_post(
    State(s): State<HttpState>,
    Query(params): Query<HashMap<String, String>>,
    body: Body,
) -> Response {
    match params.get("query") {
        // The query is in the URL: the body is INSERT data, streamed.
        Some(q) => {
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
            let input: Input = Some(Box::new(ChannelReader::new(rx)));
            run(s, q.clone(), &params, input).await
        }
        // Otherwise the body is the query.
        None => match axum::body::to_bytes(body, 16 << 20).await {
            Ok(b) => match String::from_utf8(b.to_vec()) {
                Ok(q) => run(s, q, &params, None).await,
                Err(_) => error_response(ErrorCode::BAD_ARGUMENTS, "the query is not UTF-8"),
            },
            Err(e) => error_response(
                ErrorCode::BAD_ARGUMENTS,
                &format!("cannot read the query: {e}"),
            ),
        },
    }
}

async fn run(
    s: HttpState,
    sql: String,
    params: &HashMap<String, String>,
    mut input: Input,
) -> Response {
    let mut session = s.engine.session();
    for (k, v) in params {
        if !RESERVED.contains(&k.as_str()) {
            session.settings_mut().set(k, v.clone());
        }
    }
    if let Some(db) = params.get("database") {
        if !s.engine.catalog().has_database(db) {
            return error_response(
                ErrorCode::UNKNOWN_DATABASE,
                &format!("Database {db} does not exist"),
            );
        }
        session.set_database(db);
    }
    let default_format = params.get("default_format").cloned();
    let statements = qh_query::split_statements(&sql);
    let mut body = String::new();
    let mut query_id = String::new();
    for stmt in statements {
        if let Some(id) = params.get("query_id") {
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
        if !res.has_result_set() {
            continue;
        }
        let name = res.format.clone().or_else(|| default_format.clone());
        let format = match name.as_deref() {
            None => OutputFormat::TabSeparated,
            Some(n) => match OutputFormat::parse(n) {
                Some(f) => f,
                None => {
                    return error_response(
                        ErrorCode::UNKNOWN_FORMAT,
                        &format!("Unknown output format {n}"),
                    )
                }
            },
        };
        let mut w = Writer::new(format, res.schema.clone());
        for b in &res.batches {
            body.push_str(&w.write_batch(b));
        }
        if let Some(t) = &res.totals {
            body.push_str(&w.write_totals(t));
        }
        body.push_str(&w.finish());
    }
    let mut r = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&query_id) {
        r.headers_mut().insert("X-ClickHouse-Query-Id", v);
    }
    r
}
