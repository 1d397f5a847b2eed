//! INSERT into a Distributed table: synchronous. The rows are split by the
//! sharding key and written into each shard's local table (on this node
//! in-process, elsewhere over `Query.InsertBlock`) before the INSERT
//! returns; `insert_quorum` and deduplication apply within each shard. There
//! is no spool that could lose or repeat rows after the acknowledgement.
//!
//! **Atomic across shards** when the local table is replicated: every
//! shard only *stages* its rows on its replicas (its quorum met, nothing
//! visible) and answers the coordinator op that would commit them; the
//! initiator commits all shards' ops in one coordinator transaction, then
//! tells the shards to move the parts into place. A shard that cannot
//! stage fails the whole insert and nothing is visible anywhere; a retry
//! with the same data or `insert_deduplication_token` is deduplicated per
//! shard, so it writes the rows once everywhere. Over plain MergeTree local
//! tables each shard commits on its own (a failed insert may have written
//! some shards).

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array, UInt64Array};
use datafusion::arrow::compute::{cast, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Int64Type, UInt64Type};
use datafusion::arrow::ipc::reader::StreamReader;
use qh_meta::{CommittedPart, Op, OpResult, Request, Response};
use qh_proto::interserver::query_client::QueryClient;
use qh_proto::interserver::{FinishInsertRequest, InsertBlockReply, InsertBlockRequest};
use qh_replication::{ReplicationError, StagedInsert};
use qh_storage::{EngineKind, TableMeta};
use qh_types::{ErrorCode, Settings};
use tracing::{info, warn};

use super::exec::ipc_bytes;
use super::{resolve_shards, Shard, BUILD};
use crate::engine::Engine;
use crate::error::{QueryError, Result};

/// Largest IPC message one InsertBlock carries; bigger inserts go in
/// several blocks (each its own part, as ClickHouse's blocks are).
const BLOCK_BYTES: usize = 32 << 20;

/// Writes `batch` (every column of the Distributed table) to its shards.
/// Returns the rows written.
pub async fn insert(
    engine: &Arc<Engine>,
    meta: &TableMeta,
    batch: RecordBatch,
    settings: &Settings,
    query_id: &str,
) -> Result<u64> {
    let EngineKind::Distributed {
        cluster,
        database,
        table,
        sharding_key,
    } = &meta.engine
    else {
        return Err(QueryError::other(
            ErrorCode::LOGICAL_ERROR,
            "not a Distributed table",
        ));
    };
    let shards = resolve_shards(engine, cluster, settings, query_id)?;
    let pieces = split(engine, meta, sharding_key.as_deref(), &batch, shards.len())?;
    let work: Vec<(&Shard, Vec<RecordBatch>)> = shards
        .iter()
        .zip(pieces)
        .filter(|(_, b)| b.num_rows() > 0)
        .map(|(shard, b)| (shard, blocks(b)))
        .collect();
    if engine.is_replicated(database, table) {
        return insert_atomically(engine, work, database, table, settings, query_id).await;
    }
    let writes = work
        .into_iter()
        .map(|(shard, b)| insert_shard(engine, shard, database, table, b, settings, query_id));
    let mut rows = 0;
    let mut first_error = None;
    for r in futures::future::join_all(writes).await {
        match r {
            Ok(n) => rows += n,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

/// One shard's rows in blocks of at most [`BLOCK_BYTES`] (each its own
/// part, as ClickHouse's blocks are).
fn blocks(batch: RecordBatch) -> Vec<RecordBatch> {
    let rows = batch.num_rows();
    let per_block =
        (rows * BLOCK_BYTES / batch.get_array_memory_size().max(1)).clamp(1, rows.max(1));
    if per_block >= rows {
        return vec![batch];
    }
    (0..rows)
        .step_by(per_block)
        .map(|offset| batch.slice(offset, per_block.min(rows - offset)))
        .collect()
}

/// The settings a block is written with: with several blocks an
/// `insert_deduplication_token` gets the block's number, as ClickHouse
/// does, so the blocks are not deduplicated against each other.
fn block_settings(settings: &Settings, index: usize, count: usize) -> Settings {
    let mut s = settings.clone();
    if count > 1 {
        if let Some(t) = settings
            .get("insert_deduplication_token")
            .map(|t| t.trim_matches('\'').to_string())
            .filter(|t| !t.is_empty())
        {
            s.set("insert_deduplication_token", format!("{t}_{index}"));
        }
    }
    s
}

/// Staged shard inserts waiting for their initiator's commit, by
/// transaction id. An entry the initiator never finished expires; its
/// staged copies are removed by the replica's cleanup once their commit
/// deadline has passed.
#[derive(Default)]
pub struct PendingInserts(parking_lot::Mutex<HashMap<String, (Instant, StagedInsert)>>);

impl PendingInserts {
    fn put(&self, txn: String, staged: StagedInsert, ttl: Duration) {
        let now = Instant::now();
        let mut map = self.0.lock();
        map.retain(|_, (expires, _)| *expires > now);
        map.insert(txn, (now + ttl, staged));
    }

    fn take(&self, txn: &str) -> Option<StagedInsert> {
        self.0.lock().remove(txn).map(|(_, s)| s)
    }
}

/// Where one block of a shard is staged.
enum StagedOn {
    Here(StagedInsert),
    Remote { address: String, txn: String },
}

/// A block staged on one replica of a shard, with the op that commits it.
struct StagedBlock {
    shard: u32,
    node: u64,
    on: StagedOn,
    op: Op,
    part_rows: Vec<u64>,
}

/// The atomic path (see the module documentation).
async fn insert_atomically(
    engine: &Arc<Engine>,
    work: Vec<(&Shard, Vec<RecordBatch>)>,
    database: &str,
    table: &str,
    settings: &Settings,
    query_id: &str,
) -> Result<u64> {
    let coordinator = engine
        .coordinator()
        .cloned()
        .ok_or_else(super::needs_coordinator)?;
    let timeout = Duration::from_millis(
        settings
            .uint("insert_quorum_timeout")
            .map_err(QueryError::BadArguments)?,
    );
    let txn = format!(
        "{query_id}/{:016x}",
        xxhash_rust::xxh3::xxh3_64(format!("{query_id}{:?}", Instant::now()).as_bytes())
    );
    // 1. Stage every shard's blocks.
    let stages = work.into_iter().map(|(shard, blocks)| {
        stage_shard(
            engine, shard, database, table, blocks, settings, query_id, &txn,
        )
    });
    let mut staged = Vec::new();
    let mut first_error = None;
    for r in futures::future::join_all(stages).await {
        match r {
            Ok(mut b) => staged.append(&mut b),
            Err((e, mut b)) => {
                staged.append(&mut b);
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        abort_all(engine, staged).await;
        return Err(e);
    }
    if staged.is_empty() {
        return Ok(0);
    }
    // 2. One transaction commits every shard's parts, or none.
    let ops: Vec<Op> = staged.iter().map(|b| b.op.clone()).collect();
    let shards: Vec<u32> = staged.iter().map(|b| b.shard).collect();
    info!(shards = ?shards, ops = ops.len(), "committing a Distributed insert in one transaction");
    let outcome = tokio::time::timeout(timeout, coordinator.write(Request::ops(ops))).await;
    let results = match outcome {
        Ok(Ok(Response::Ok { results })) => results,
        Ok(Ok(refused)) => {
            abort_all(engine, staged).await;
            let why = match refused {
                Response::Rejected { reason, .. } | Response::CheckFailed { reason, .. } => reason,
                Response::Ok { .. } => String::new(),
            };
            return Err(ReplicationError::Coordinator(format!(
                "the insert was refused and not written to any shard: {why}"
            ))
            .into());
        }
        Ok(Err(e)) => {
            let e = ReplicationError::from_write(&format!("{database}.{table}"), e);
            if matches!(e, ReplicationError::ReadOnly { .. }) {
                abort_all(engine, staged).await;
            }
            return Err(e.into());
        }
        Err(_) => {
            return Err(ReplicationError::UnknownStatus(format!(
                "the commit of the insert into every shard did not finish within insert_quorum_timeout ({} ms)",
                timeout.as_millis()
            ))
            .into())
        }
    };
    if results.len() != staged.len() {
        return Err(QueryError::other(
            ErrorCode::LOGICAL_ERROR,
            format!(
                "a commit of {} ops answered {}",
                staged.len(),
                results.len()
            ),
        ));
    }
    // 3. Move the parts into place (each shard's queue does it anyway).
    let finishes = staged.into_iter().zip(results).map(|(b, r)| async move {
        let committed = match r {
            OpResult::Parts(p) => p,
            other => {
                return Err(QueryError::other(
                    ErrorCode::LOGICAL_ERROR,
                    format!("unexpected answer to a commit: {other:?}"),
                ))
            }
        };
        finish(engine, b, committed).await
    });
    let mut rows = 0;
    for r in futures::future::join_all(finishes).await {
        rows += r?;
    }
    Ok(rows)
}

/// Stages a shard's blocks on one of its replicas: this node in-process,
/// else the first whose connection could be made. On failure also returns
/// what was staged (to be dropped).
#[allow(clippy::too_many_arguments)]
async fn stage_shard(
    engine: &Arc<Engine>,
    shard: &Shard,
    database: &str,
    table: &str,
    blocks: Vec<RecordBatch>,
    settings: &Settings,
    query_id: &str,
    txn: &str,
) -> std::result::Result<Vec<StagedBlock>, (QueryError, Vec<StagedBlock>)> {
    let mut reasons = Vec::new();
    let count = blocks.len();
    for replica in &shard.replicas {
        let mut staged = Vec::new();
        let mut client = None;
        if !replica.local {
            match query_client(engine, &replica.address) {
                Ok(c) => client = Some(c),
                Err(e) => {
                    reasons.push(format!("node {} ({}): {e}", replica.node, replica.address));
                    continue;
                }
            }
        }
        let mut next_replica = false;
        for (k, block) in blocks.iter().enumerate() {
            let block_settings = block_settings(settings, k, count);
            let outcome = match &mut client {
                None => stage_here(engine, database, table, block, &block_settings).await,
                Some(c) => {
                    let block_txn = format!("{txn}/{}/{k}", shard.number);
                    stage_there(
                        c,
                        database,
                        table,
                        block,
                        &block_settings,
                        query_id,
                        block_txn,
                        &replica.address,
                    )
                    .await
                }
            };
            match outcome {
                Ok(Some((on, op, part_rows))) => staged.push(StagedBlock {
                    shard: shard.number,
                    node: replica.node,
                    on,
                    op,
                    part_rows,
                }),
                Ok(None) => {}
                // Nothing taken there yet: the next replica may take it.
                Err(Refusal::Unreachable(why)) if k == 0 => {
                    warn!(node = replica.node, why = %why, "shard replica unreachable for insert; trying the next");
                    reasons.push(format!(
                        "node {} ({}): {why}",
                        replica.node, replica.address
                    ));
                    next_replica = true;
                    break;
                }
                Err(Refusal::Error(e)) if k == 0 && replica_not_ready(&e) => {
                    reasons.push(format!("node {}: {e}", replica.node));
                    next_replica = true;
                    break;
                }
                Err(Refusal::Unreachable(why)) => {
                    // The block may be staged there: dropped by its deadline.
                    let e = QueryError::other(
                        ErrorCode::ALL_CONNECTION_TRIES_FAILED,
                        format!("Shard {} (node {}) failed while staging the insert: {why}; nothing was written to any shard", shard.number, replica.node),
                    );
                    return Err((e, staged));
                }
                Err(Refusal::Error(e)) => {
                    return Err((shard_error(shard.number, replica.node, e), staged))
                }
            }
        }
        if !next_replica {
            return Ok(staged);
        }
    }
    Err((
        QueryError::other(
            ErrorCode::ALL_CONNECTION_TRIES_FAILED,
            format!(
                "All connection tries failed. Shard {}: {}; nothing was written to any shard",
                shard.number,
                reasons.join("; ")
            ),
        ),
        Vec::new(),
    ))
}

/// Why a replica did not stage a block.
enum Refusal {
    /// The request did not get an answer (connection, transport).
    Unreachable(String),
    /// The replica answered with an error.
    Error(QueryError),
}

type Staged = Option<(StagedOn, Op, Vec<u64>)>;

async fn stage_here(
    engine: &Arc<Engine>,
    database: &str,
    table: &str,
    block: &RecordBatch,
    settings: &Settings,
) -> std::result::Result<Staged, Refusal> {
    let insert = engine
        .stage_batches(database, table, vec![block.clone()], settings)
        .await
        .map_err(Refusal::Error)?;
    Ok(insert
        .map(|i| (i.commit_op(), i.part_rows(), i))
        .map(|(op, rows, i)| (StagedOn::Here(i), op, rows)))
}

#[allow(clippy::too_many_arguments)]
async fn stage_there(
    client: &mut QueryClient<qh_meta::InterChannel>,
    database: &str,
    table: &str,
    block: &RecordBatch,
    settings: &Settings,
    query_id: &str,
    txn: String,
    address: &str,
) -> std::result::Result<Staged, Refusal> {
    let request =
        block_request(database, table, block, settings, query_id, &txn).map_err(Refusal::Error)?;
    let reply = match client.insert_block(request).await {
        Ok(r) => r.into_inner(),
        Err(s) if is_connect_error(&s) => {
            return Err(Refusal::Unreachable(s.message().to_string()))
        }
        Err(s) => return Err(Refusal::Unreachable(format!("{s}"))),
    };
    if let Some(x) = reply.exception {
        let code = ErrorCode::from_i32(x.code).unwrap_or(ErrorCode::LOGICAL_ERROR);
        return Err(Refusal::Error(QueryError::other(code, x.message)));
    }
    if reply.commit_op.is_empty() {
        return Ok(None);
    }
    let op: Op = serde_json::from_str(&reply.commit_op).map_err(|e| {
        Refusal::Error(QueryError::other(
            ErrorCode::LOGICAL_ERROR,
            format!("unreadable commit op from {address}: {e}"),
        ))
    })?;
    Ok(Some((
        StagedOn::Remote {
            address: address.to_string(),
            txn,
        },
        op,
        reply.part_rows,
    )))
}

/// A replica that refused a block before taking anything (starting, or
/// cut off from the coordinator): the next replica of the shard is tried.
fn replica_not_ready(e: &QueryError) -> bool {
    e.code() == ErrorCode::TABLE_IS_READ_ONLY
}

/// A shard's failure, saying that the whole insert was not written.
fn shard_error(shard: u32, node: u64, e: QueryError) -> QueryError {
    let code = e.code();
    QueryError::other(
        code,
        format!("Shard {shard} (node {node}): {e}; nothing was written to any shard"),
    )
}

fn query_client(engine: &Engine, address: &str) -> Result<QueryClient<qh_meta::InterChannel>> {
    let repl = engine
        .replication()
        .ok_or_else(|| QueryError::other(ErrorCode::NOT_IMPLEMENTED, "no interserver API"))?;
    let channel = repl.channel(address)?;
    Ok(QueryClient::new(channel).max_encoding_message_size(super::service::MAX_MESSAGE_BYTES))
}

fn block_request(
    database: &str,
    table: &str,
    block: &RecordBatch,
    settings: &Settings,
    query_id: &str,
    txn: &str,
) -> Result<InsertBlockRequest> {
    Ok(InsertBlockRequest {
        build: BUILD.to_string(),
        database: database.to_string(),
        table: table.to_string(),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ipc: ipc_bytes(&block.schema(), Some(block))?,
        initial_query_id: query_id.to_string(),
        txn: txn.to_string(),
    })
}

/// Drops every staged block (best effort: what is missed expires).
async fn abort_all(engine: &Arc<Engine>, staged: Vec<StagedBlock>) {
    let calls = staged.into_iter().map(|b| async move {
        match b.on {
            StagedOn::Here(insert) => insert.abandon().await,
            StagedOn::Remote { address, txn } => {
                let request = FinishInsertRequest {
                    txn,
                    commit: false,
                    committed: String::new(),
                };
                if let Ok(mut c) = query_client(engine, &address) {
                    if let Err(s) = c.finish_insert(request).await {
                        warn!(node = b.node, status = %s, "could not drop a staged block; it expires");
                    }
                }
            }
        }
    });
    futures::future::join_all(calls).await;
}

/// Activates one committed block on the replica that staged it; returns
/// its rows (duplicates excluded). Committed is committed: a replica that
/// does not answer activates it from its log.
async fn finish(
    engine: &Arc<Engine>,
    b: StagedBlock,
    committed: Vec<CommittedPart>,
) -> Result<u64> {
    let written: u64 = b
        .part_rows
        .iter()
        .zip(&committed)
        .filter(|(_, c)| c.log_index.is_some())
        .map(|(r, _)| r)
        .sum();
    match b.on {
        StagedOn::Here(insert) => Ok(insert.activate(committed).await?),
        StagedOn::Remote { address, txn } => {
            let request = FinishInsertRequest {
                txn,
                commit: true,
                committed: serde_json::to_string(&committed)
                    .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))?,
            };
            let reply = match query_client(engine, &address) {
                Ok(mut c) => c.finish_insert(request).await,
                Err(e) => Err(tonic::Status::unavailable(e.to_string())),
            };
            match reply.map(|r| r.into_inner()) {
                Ok(InsertBlockReply {
                    exception: Some(x), ..
                }) => {
                    let code = ErrorCode::from_i32(x.code).unwrap_or(ErrorCode::LOGICAL_ERROR);
                    Err(QueryError::other(code, x.message))
                }
                Ok(reply) => Ok(reply.rows),
                Err(s) => {
                    warn!(node = b.node, status = %s, "shard did not confirm activation; its queue activates the committed parts");
                    Ok(written)
                }
            }
        }
    }
}

/// Shard side of InsertBlock with a `txn`: stages the rows and keeps them
/// until [`finish_staged`].
pub(crate) async fn stage_block(
    engine: &Arc<Engine>,
    request: &InsertBlockRequest,
    batches: Vec<RecordBatch>,
    settings: &Settings,
) -> Result<InsertBlockReply> {
    let Some(staged) = engine
        .stage_batches(&request.database, &request.table, batches, settings)
        .await?
    else {
        return Ok(InsertBlockReply::default());
    };
    let op = serde_json::to_string(&staged.commit_op())
        .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))?;
    let part_rows = staged.part_rows();
    let timeout = Duration::from_millis(settings.uint("insert_quorum_timeout").unwrap_or(600_000));
    engine.pending_inserts().put(
        request.txn.clone(),
        staged,
        timeout + Duration::from_secs(60),
    );
    Ok(InsertBlockReply {
        rows: part_rows.iter().sum(),
        exception: None,
        commit_op: op,
        part_rows,
    })
}

/// Shard side of FinishInsert.
pub(crate) async fn finish_staged(
    engine: &Arc<Engine>,
    request: FinishInsertRequest,
) -> Result<u64> {
    let Some(staged) = engine.pending_inserts().take(&request.txn) else {
        // Expired or already finished; a committed block is activated by
        // the queue, an uncommitted one by cleanup.
        return Ok(0);
    };
    if !request.commit {
        staged.abandon().await;
        return Ok(0);
    }
    let committed: Vec<CommittedPart> = serde_json::from_str(&request.committed)
        .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))?;
    Ok(staged.activate(committed).await?)
}

/// The rows of each shard: shard `key % shards` (ClickHouse's rule with
/// every shard of weight 1).
fn split(
    engine: &Engine,
    meta: &TableMeta,
    key: Option<&str>,
    batch: &RecordBatch,
    shards: usize,
) -> Result<Vec<RecordBatch>> {
    if shards <= 1 {
        return Ok(vec![batch.clone()]);
    }
    let key = key.ok_or_else(|| {
        QueryError::other(
            ErrorCode::STORAGE_REQUIRES_PARAMETER,
            format!(
                "Method write is not supported by storage Distributed with more than one shard and no sharding key provided ({}.{})",
                meta.database, meta.name
            ),
        )
    })?;
    let expr = crate::keys::compile(engine.base_state(), key, &batch.schema())?;
    let values = expr
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))?;
    let values = as_u64(&values, key)?;
    let mut index: Vec<Vec<u32>> = vec![Vec::new(); shards];
    for (row, v) in values.iter().enumerate() {
        let v = v.ok_or_else(|| {
            QueryError::other(
                ErrorCode::TYPE_MISMATCH,
                format!("Sharding expression {key} is NULL in row {}", row + 1),
            )
        })?;
        index[(v % shards as u64) as usize].push(row as u32);
    }
    index
        .into_iter()
        .map(|rows| Ok(take_record_batch(batch, &UInt32Array::from(rows))?))
        .collect()
}

/// An integer sharding key as unsigned (negative values wrap, as
/// ClickHouse's do; unsigned ones, `cityHash64` above 2^63 included, stay).
pub(super) fn as_u64(values: &ArrayRef, key: &str) -> Result<UInt64Array> {
    let t = values.data_type();
    let unsigned = matches!(
        t,
        DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Boolean
    );
    let signed = matches!(
        t,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    );
    if unsigned {
        let wide = cast(values, &DataType::UInt64)?;
        return Ok(wide.as_primitive::<UInt64Type>().clone());
    }
    if signed {
        let wide = cast(values, &DataType::Int64)?;
        return Ok(wide
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|v| v as u64))
            .collect());
    }
    Err(QueryError::other(
        ErrorCode::TYPE_MISMATCH,
        format!("Sharding expression {key} has type {t}, but should be one of integer type"),
    ))
}

/// One shard's rows into one of its replicas (each committing on its own):
/// this node's local table, or the next replica whose connection could not
/// even be made. A failure after the rows were sent is not retried
/// elsewhere (the rows may be there): the INSERT fails and a retry with the
/// same data is deduplicated by a replicated local table.
async fn insert_shard(
    engine: &Arc<Engine>,
    shard: &Shard,
    database: &str,
    table: &str,
    blocks: Vec<RecordBatch>,
    settings: &Settings,
    query_id: &str,
) -> Result<u64> {
    let mut reasons = Vec::new();
    let count = blocks.len();
    for replica in &shard.replicas {
        if replica.local {
            let mut rows = 0;
            for (k, block) in blocks.iter().enumerate() {
                let s = block_settings(settings, k, count);
                rows += engine
                    .insert_batches(database, table, vec![block.clone()], &s)
                    .await?;
            }
            return Ok(rows);
        }
        let mut client = match query_client(engine, &replica.address) {
            Ok(c) => c,
            Err(e) => {
                reasons.push(format!("node {} ({}): {e}", replica.node, replica.address));
                continue;
            }
        };
        let mut rows = 0u64;
        let mut failed = None;
        for (k, block) in blocks.iter().enumerate() {
            let request = block_request(
                database,
                table,
                block,
                &block_settings(settings, k, count),
                query_id,
                "",
            )?;
            match client.insert_block(request).await {
                Ok(reply) => {
                    let reply = reply.into_inner();
                    if let Some(x) = reply.exception {
                        let code = ErrorCode::from_i32(x.code).unwrap_or(ErrorCode::LOGICAL_ERROR);
                        return Err(QueryError::other(code, x.message));
                    }
                    rows += reply.rows;
                }
                Err(s) => {
                    failed = Some((k, s));
                    break;
                }
            }
        }
        match failed {
            None => return Ok(rows),
            Some((0, s)) if is_connect_error(&s) => {
                warn!(node = replica.node, status = %s, "shard replica unreachable for insert; trying the next");
                reasons.push(format!("node {} ({}): {}", replica.node, replica.address, s.message()));
            }
            Some((_, s)) => {
                return Err(QueryError::other(
                    ErrorCode::UNKNOWN_STATUS_OF_INSERT,
                    format!(
                        "Unknown status of the insert into shard {} (node {}): {}; {} of its rows were acknowledged. Retry with the same data (or insert_deduplication_token): a replicated local table writes it once",
                        shard.number,
                        replica.node,
                        s.message(),
                        rows
                    ),
                ))
            }
        }
    }
    Err(QueryError::other(
        ErrorCode::ALL_CONNECTION_TRIES_FAILED,
        format!(
            "All connection tries failed. Shard {}: {}",
            shard.number,
            reasons.join("; ")
        ),
    ))
}

/// The request never reached the server (connection refused or timed out).
fn is_connect_error(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::Unavailable
        && (s.message().contains("connect") || s.message().contains("Connection refused"))
}

/// The batches of one InsertBlock request.
pub(crate) fn decode_block(ipc: &[u8]) -> Result<Vec<RecordBatch>> {
    let reader = StreamReader::try_new(Cursor::new(ipc), None)?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}
