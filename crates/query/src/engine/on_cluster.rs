//! `CREATE|DROP|ALTER|TRUNCATE ... ON CLUSTER c` DDL. The initiator puts the
//! query (without the clause) into the coordinator's DDL queue with the nodes
//! of cluster `c` (see [`crate::clusters`]) and waits until each ran it; each
//! node's [`run_ddl_worker`] executes the tasks naming it in order, at least
//! once, with `{cluster}` and its `{shard}` in `c` as macros, and records its
//! outcome in the coordinator. A node that joins later replays the queue.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use qh_meta::{Coordinator, Op, OpResult, Request, Response};
use qh_types::ErrorCode;
use tokio::sync::watch;

use crate::engine::{result_of, Engine, QueryResult, Session};
use crate::error::{QueryError, Result};

fn coordinator_error(e: qh_meta::MetaError) -> QueryError {
    QueryError::Other {
        code: ErrorCode::KEEPER_EXCEPTION,
        message: e.to_string(),
    }
}

impl Session {
    pub(crate) async fn execute_on_cluster(
        &mut self,
        cluster: &str,
        local_sql: String,
    ) -> Result<QueryResult> {
        let coordinator = self.engine().coordinator().cloned().ok_or_else(|| {
            QueryError::BadArguments(format!(
                "ON CLUSTER {cluster} needs a server node (there is no coordinator here)"
            ))
        })?;
        let timeout = self
            .settings()
            .uint("distributed_ddl_task_timeout")
            .map_err(QueryError::BadArguments)?;
        let layout = self.engine().clusters().remove(cluster).ok_or_else(|| {
            QueryError::other(
                ErrorCode::CLUSTER_DOESNT_EXIST,
                format!("Requested cluster '{cluster}' not found"),
            )
        })?;
        let hosts = crate::clusters::hosts(&layout);
        let op = Op::EnqueueDdl {
            query: local_sql,
            initiator: coordinator.node_id(),
            database: self.database().to_string(),
            cluster: cluster.to_string(),
            hosts: hosts.clone(),
        };
        let seq = match coordinator
            .write(Request::op(op))
            .await
            .map_err(coordinator_error)?
        {
            Response::Ok { results } => match results.first() {
                Some(OpResult::DdlSeq(s)) => *s,
                other => {
                    return Err(QueryError::other(
                        ErrorCode::LOGICAL_ERROR,
                        format!("unexpected answer {other:?}"),
                    ))
                }
            },
            other => {
                return Err(QueryError::other(
                    ErrorCode::KEEPER_EXCEPTION,
                    format!("DDL not queued: {other:?}"),
                ))
            }
        };
        let hosts: BTreeSet<u64> = hosts.iter().map(|h| h.node).collect();
        let deadline = Instant::now() + Duration::from_secs(timeout);
        let mut applied = coordinator.subscribe();
        let finished = loop {
            let finished = coordinator
                .read(|s| s.ddl_task(seq).map(|t| t.finished.clone()))
                .unwrap_or_default();
            if hosts.iter().all(|h| finished.contains_key(h)) {
                break finished;
            }
            if Instant::now() > deadline {
                let left = hosts.iter().filter(|h| !finished.contains_key(h)).count();
                return Err(QueryError::other(
                    ErrorCode::TIMEOUT_EXCEEDED,
                    format!(
                        "Watching task {seq} is executing longer than distributed_ddl_task_timeout (={timeout}) seconds. \
                         There are {left} unfinished hosts, they are going to execute the query in background"
                    ),
                ));
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), applied.changed()).await;
        };
        let status = coordinator.status();
        let addr = |n: &u64| {
            status
                .voters
                .get(n)
                .cloned()
                .unwrap_or_else(|| format!("node{n}"))
        };
        if let Some((n, err)) = finished.iter().find(|(_, e)| !e.is_empty()) {
            let code = err
                .strip_prefix("Code: ")
                .and_then(|r| r.split('.').next())
                .and_then(|c| c.parse::<i32>().ok())
                .and_then(ErrorCode::from_i32)
                .unwrap_or(ErrorCode::LOGICAL_ERROR);
            return Err(QueryError::other(
                code,
                format!("There was an error on [{}]: {err}", addr(n)),
            ));
        }
        let total = finished.len() as u64;
        let rows: Vec<(String, usize)> = finished.keys().map(addr).zip(0..).collect();
        result_of(
            vec![
                ("host", DataType::Utf8),
                ("status", DataType::Int64),
                ("error", DataType::Utf8),
                ("num_hosts_remaining", DataType::UInt64),
                ("num_hosts_active", DataType::UInt64),
            ],
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
                )) as ArrayRef,
                Arc::new(Int64Array::from(vec![0i64; rows.len()])),
                Arc::new(StringArray::from(vec![""; rows.len()])),
                Arc::new(UInt64Array::from(
                    rows.iter()
                        .map(|r| total - 1 - r.1 as u64)
                        .collect::<Vec<_>>(),
                )),
                Arc::new(UInt64Array::from(vec![total; rows.len()])),
            ],
            None,
        )
    }
}

/// Executes the coordinator's DDL queue on this node, in order, until `stop`.
/// The last executed task is remembered in `state_file`.
pub async fn run_ddl_worker(
    engine: Arc<Engine>,
    coordinator: Arc<Coordinator>,
    state_file: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    let me = coordinator.node_id();
    let mut done: u64 = std::fs::read_to_string(&state_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let mut applied = coordinator.subscribe();
    loop {
        let pending: Vec<(u64, qh_meta::state::DdlTask)> = coordinator.read(|s| {
            s.ddl_tasks_after(done)
                .map(|(k, t)| (k, t.clone()))
                .collect()
        });
        for (seq, task) in pending {
            // Tasks of a cluster this node is not in are not its to run; a
            // node that joined a membership-following cluster later runs
            // them in its current place.
            let place = task.place(me).or_else(|| {
                if !engine.cluster_config().follows_membership(&task.cluster) {
                    return None;
                }
                let layout = engine.clusters().remove(&task.cluster)?;
                crate::clusters::hosts(&layout)
                    .into_iter()
                    .find(|h| h.node == me)
            });
            let mine = task.hosts.is_empty() || place.is_some();
            if mine && !task.finished.contains_key(&me) {
                let span = tracing::info_span!("ddl_task", seq, query = %task.query);
                let _enter = span.enter();
                let mut session = engine.session();
                if !task.database.is_empty() {
                    session.set_database(&task.database);
                }
                if let Some(place) = place {
                    session.set_macro_context(BTreeMap::from([
                        ("cluster".to_string(), task.cluster.clone()),
                        ("shard".to_string(), place.shard.to_string()),
                    ]));
                }
                let error = match session.execute(&task.query, &mut None).await {
                    Ok(_) => None,
                    Err(e) => Some(qh_types::error_codes::render(e.code(), &e.to_string())),
                };
                tracing::info!(?error, "ON CLUSTER task executed");
                let finish = Request::op(Op::FinishDdl {
                    seq,
                    node_id: me,
                    error,
                });
                loop {
                    match coordinator.write(finish.clone()).await {
                        Ok(_) => break,
                        Err(e) => tracing::warn!(error = %e, "recording a DDL outcome; retrying"),
                    }
                    if tokio::time::timeout(Duration::from_secs(1), stop.changed())
                        .await
                        .is_ok()
                    {
                        return;
                    }
                }
            }
            done = seq;
            if let Err(e) = std::fs::write(&state_file, done.to_string()) {
                tracing::warn!(error = %e, file = %state_file.display(), "cannot record the DDL pointer");
            }
        }
        tokio::select! {
            _ = applied.changed() => {}
            _ = stop.changed() => return,
        }
    }
}
