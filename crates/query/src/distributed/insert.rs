//! INSERT into a Distributed table: synchronous. The rows are split by the
//! sharding key and written into each shard's local table (on this node
//! in-process, elsewhere over `Query.InsertBlock`) before the INSERT
//! returns; `insert_quorum` and deduplication apply within each shard. There
//! is no spool that could lose or repeat rows after the acknowledgement.

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use datafusion::arrow::compute::{cast, take_record_batch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::ipc::reader::StreamReader;
use qh_proto::interserver::query_client::QueryClient;
use qh_proto::interserver::InsertBlockRequest;
use qh_storage::{EngineKind, TableMeta};
use qh_types::{ErrorCode, Settings};
use tracing::warn;

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
    let writes = shards
        .iter()
        .zip(pieces)
        .filter(|(_, b)| b.num_rows() > 0)
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
/// ClickHouse's do).
fn as_u64(values: &ArrayRef, key: &str) -> Result<UInt64Array> {
    let t = values.data_type();
    let integer = matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Boolean
    );
    if !integer {
        return Err(QueryError::other(
            ErrorCode::TYPE_MISMATCH,
            format!("Sharding expression {key} has type {t}, but should be one of integer type"),
        ));
    }
    let wide = cast(values, &DataType::Int64).or_else(|_| cast(values, &DataType::UInt64))?;
    if let Some(i) = wide
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
    {
        return Ok(i.iter().map(|v| v.map(|v| v as u64)).collect());
    }
    Ok(wide
        .as_any()
        .downcast_ref::<UInt64Array>()
        .cloned()
        .unwrap_or_else(|| UInt64Array::from(Vec::<u64>::new())))
}

/// One shard's rows into one of its replicas: this node's local table, or
/// the next replica whose connection could not even be made. A failure
/// after the rows were sent is not retried elsewhere (the rows may be
/// there): the INSERT fails and a retry with the same data is deduplicated
/// by a replicated local table.
async fn insert_shard(
    engine: &Arc<Engine>,
    shard: &Shard,
    database: &str,
    table: &str,
    batch: RecordBatch,
    settings: &Settings,
    query_id: &str,
) -> Result<u64> {
    let mut reasons = Vec::new();
    for replica in &shard.replicas {
        if replica.local {
            return engine
                .insert_batches(database, table, vec![batch], settings)
                .await;
        }
        let repl = engine
            .replication()
            .ok_or_else(|| QueryError::other(ErrorCode::NOT_IMPLEMENTED, "no interserver API"))?;
        let channel = match repl.channel(&replica.address) {
            Ok(c) => c,
            Err(e) => {
                reasons.push(format!("node {} ({}): {e}", replica.node, replica.address));
                continue;
            }
        };
        let mut client =
            QueryClient::new(channel).max_encoding_message_size(super::service::MAX_MESSAGE_BYTES);
        let mut rows = 0u64;
        let per_block = (batch.num_rows() * BLOCK_BYTES / batch.get_array_memory_size().max(1))
            .clamp(1, batch.num_rows().max(1));
        let mut sent_any = false;
        let mut offset = 0;
        let mut failed = None;
        while offset < batch.num_rows() {
            let len = per_block.min(batch.num_rows() - offset);
            let block = batch.slice(offset, len);
            let request = InsertBlockRequest {
                build: BUILD.to_string(),
                database: database.to_string(),
                table: table.to_string(),
                settings: settings
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ipc: ipc_bytes(&block.schema(), Some(&block))?,
                initial_query_id: query_id.to_string(),
            };
            match client.insert_block(request).await {
                Ok(reply) => {
                    let reply = reply.into_inner();
                    if let Some(x) = reply.exception {
                        let code = ErrorCode::from_i32(x.code).unwrap_or(ErrorCode::LOGICAL_ERROR);
                        return Err(QueryError::other(code, x.message));
                    }
                    rows += reply.rows;
                    sent_any = true;
                }
                Err(s) => {
                    failed = Some(s);
                    break;
                }
            }
            offset += len;
        }
        match failed {
            None => return Ok(rows),
            Some(s) if !sent_any && is_connect_error(&s) => {
                warn!(node = replica.node, status = %s, "shard replica unreachable for insert; trying the next");
                reasons.push(format!("node {} ({}): {}", replica.node, replica.address, s.message()));
            }
            Some(s) => {
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
