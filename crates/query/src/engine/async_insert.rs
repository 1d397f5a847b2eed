//! `async_insert = 1`: small INSERTs into one table from many clients are
//! buffered together and written as one part (one per partition) with one
//! commit — what ClickHouse's streaming sinks and HTTP ingestion APIs rely
//! on instead of a part per tiny insert.
//!
//! A client's data is parsed and completed (defaults) before it joins a
//! buffer, so bad data fails that client alone. A buffer is flushed
//! `async_insert_busy_timeout_ms` after its first entry, or at once when it
//! holds `async_insert_max_data_size` bytes or `async_insert_max_query_number`
//! inserts. With `wait_for_async_insert = 1` (the default) each client is
//! answered when the flush committed — with the table's `insert_quorum`, so
//! only once its rows are durable on that many replicas — or with the
//! flush's error, and none of its rows are written. With 0 it is answered
//! once buffered (ClickHouse's fire-and-forget).
//!
//! Entries share a buffer only with the same table, schema version and
//! commit options (quorum, its timeout, deduplication). As in ClickHouse,
//! buffered inserts are not deduplicated unless `async_insert_deduplicate =
//! 1` (replicated tables). Then each entry keeps a block id of its own
//! (from its `insert_deduplication_token`, else its data) per partition its
//! rows fall into; the part written for the buffer carries them all, and
//! when the commit finds some already inserted (or two entries of the
//! buffer alike) those entries are answered as deduplicated (0 rows
//! written) and the rest written again without them — ClickHouse's
//! algorithm for async inserts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::*;

/// Settings of one async insert (ClickHouse's names and defaults).
#[derive(Debug, Clone)]
pub(super) struct AsyncSettings {
    /// Each insert keeps its block id (replicated tables only).
    dedup: bool,
    wait: bool,
    wait_timeout: Duration,
    busy_timeout: Duration,
    max_data_size: u64,
    max_query_number: usize,
}

impl AsyncSettings {
    /// `Some` when this INSERT should be buffered.
    pub(super) fn of(settings: &Settings, replicated: bool) -> Result<Option<AsyncSettings>> {
        let bad = QueryError::BadArguments;
        if !settings.get_bool("async_insert", false).map_err(bad)? {
            return Ok(None);
        }
        let dedup = replicated
            && settings
                .get_bool("async_insert_deduplicate", false)
                .map_err(bad)?
            && settings.get_bool("insert_deduplicate", true).map_err(bad)?;
        Ok(Some(AsyncSettings {
            dedup,
            wait: settings
                .get_bool("wait_for_async_insert", true)
                .map_err(bad)?,
            wait_timeout: Duration::from_secs(
                settings
                    .uint("wait_for_async_insert_timeout")
                    .map_err(bad)?,
            ),
            busy_timeout: Duration::from_millis(
                settings.uint("async_insert_busy_timeout_ms").map_err(bad)?,
            ),
            max_data_size: settings.uint("async_insert_max_data_size").map_err(bad)?,
            max_query_number: settings
                .uint("async_insert_max_query_number")
                .map_err(bad)?
                .max(1) as usize,
        }))
    }
}

/// What entries must share to be written together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// The table's directory: one per table on this node.
    table: std::path::PathBuf,
    schema_version: u64,
    quorum: Quorum,
    quorum_timeout: Duration,
    quorum_parallel: bool,
    dedup: bool,
}

/// The outcome a waiting client gets: rows written, or the flush's error.
type Outcome = std::result::Result<u64, (ErrorCode, String)>;

struct Entry {
    batch: RecordBatch,
    /// Block id without its partition prefix (deduplicated buffers only).
    id: Option<String>,
    reply: Option<oneshot::Sender<Outcome>>,
}

struct Buffer {
    /// Tells a timer whether the buffer it was started for is still this one.
    id: u64,
    dedup: bool,
    table: Table,
    options: InsertOptions,
    entries: Vec<Entry>,
    bytes: u64,
}

/// The node's async insert buffers, and the tasks flushing them (owned
/// here: [`AsyncInserts::shutdown`] flushes what is buffered and waits).
pub(crate) struct AsyncInserts {
    catalog: Arc<Catalog>,
    buffers: Mutex<HashMap<Key, Buffer>>,
    next_id: AtomicU64,
    /// Each buffer's flush timer (aborted at shutdown).
    timers: Mutex<JoinSet<()>>,
    /// Flushes under way (awaited at shutdown).
    flushes: Mutex<JoinSet<()>>,
}

impl AsyncInserts {
    pub(crate) fn new(catalog: Arc<Catalog>) -> Self {
        AsyncInserts {
            catalog,
            buffers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            timers: Mutex::new(JoinSet::new()),
            flushes: Mutex::new(JoinSet::new()),
        }
    }

    /// Adds `batch` (all of the table's columns, defaults filled in) to its
    /// table's buffer and, unless the client does not wait, returns once
    /// the flush that wrote it finished.
    pub(super) async fn submit(
        self: &Arc<Self>,
        table: Table,
        batch: RecordBatch,
        options: InsertOptions,
        s: &AsyncSettings,
    ) -> Result<u64> {
        let rows = batch.num_rows() as u64;
        if rows == 0 {
            return Ok(0);
        }
        let meta = table.data().meta();
        let key = Key {
            table: table.data().dir().to_path_buf(),
            schema_version: meta.schema_version,
            quorum: options.quorum,
            quorum_timeout: options.timeout,
            quorum_parallel: options.parallel,
            dedup: s.dedup,
        };
        let id = if s.dedup {
            Some(match &options.token {
                Some(t) => format!("{:032x}", xxhash_rust::xxh3::xxh3_128(t.as_bytes())),
                None => data_hash(&batch)?,
            })
        } else {
            None
        };
        let bytes = batch.get_array_memory_size() as u64;
        let (tx, rx) = oneshot::channel();
        let full = {
            let mut buffers = self.buffers.lock();
            let buffer = buffers.entry(key.clone()).or_insert_with(|| {
                let id = self.next_id.fetch_add(1, AtomicOrdering::Relaxed);
                self.start_timer(key.clone(), id, s.busy_timeout);
                Buffer {
                    id,
                    dedup: s.dedup,
                    table,
                    // Buffered inserts are not deduplicated (module doc).
                    options: InsertOptions {
                        deduplicate: false,
                        token: None,
                        ..options
                    },
                    entries: Vec::new(),
                    bytes: 0,
                }
            });
            buffer.entries.push(Entry {
                batch,
                id,
                reply: s.wait.then_some(tx),
            });
            buffer.bytes += bytes;
            if buffer.bytes >= s.max_data_size || buffer.entries.len() >= s.max_query_number {
                buffers.remove(&key)
            } else {
                None
            }
        };
        if let Some(buffer) = full {
            self.spawn_flush(buffer);
        }
        if !s.wait {
            return Ok(rows);
        }
        match tokio::time::timeout(s.wait_timeout, rx).await {
            Ok(Ok(Ok(n))) => Ok(n),
            Ok(Ok(Err((code, message)))) => Err(QueryError::other(code, message)),
            Ok(Err(_)) => Err(QueryError::other(
                ErrorCode::UNKNOWN_STATUS_OF_INSERT,
                "the async insert's flush ended without an answer",
            )),
            Err(_) => Err(QueryError::other(
                ErrorCode::TIMEOUT_EXCEEDED,
                format!(
                    "Wait for async insert timeout ({} s) exceeded; the rows may still be written",
                    s.wait_timeout.as_secs()
                ),
            )),
        }
    }

    fn start_timer(self: &Arc<Self>, key: Key, id: u64, after: Duration) {
        let me = Arc::clone(self);
        let mut timers = self.timers.lock();
        // Finished timers are reaped here, so the set stays small.
        while timers.try_join_next().is_some() {}
        timers.spawn(async move {
            tokio::time::sleep(after).await;
            let buffer = {
                let mut buffers = me.buffers.lock();
                match buffers.get(&key) {
                    Some(b) if b.id == id => buffers.remove(&key),
                    _ => None,
                }
            };
            if let Some(buffer) = buffer {
                me.spawn_flush(buffer);
            }
        });
    }

    fn spawn_flush(&self, buffer: Buffer) {
        let catalog = Arc::clone(&self.catalog);
        let mut flushes = self.flushes.lock();
        while flushes.try_join_next().is_some() {}
        flushes.spawn(async move { flush(buffer, &catalog).await });
    }

    /// Flushes every buffer now and waits for every flush (node stop).
    pub(crate) async fn shutdown(&self) {
        self.timers.lock().abort_all();
        let buffers: Vec<Buffer> = self.buffers.lock().drain().map(|(_, b)| b).collect();
        for b in buffers {
            self.spawn_flush(b);
        }
        let mut flushes = std::mem::take(&mut *self.flushes.lock());
        while flushes.join_next().await.is_some() {}
    }
}

/// Writes a buffer's entries as one insert and answers each entry.
async fn flush(buffer: Buffer, catalog: &Arc<Catalog>) {
    let Buffer {
        table,
        options,
        mut entries,
        dedup,
        ..
    } = buffer;
    let span = tracing::info_span!("async_insert_flush", table = %table.data().dir().display(), inserts = entries.len());
    let outcome = async {
        if !dedup {
            let txn = write_entries(&table, &entries).await?;
            return table.commit_insert(txn, &options, catalog).await;
        }
        // Deduplicated: entries found inserted are answered and dropped, the
        // rest written again. Each round drops at least one entry.
        let Some(replica) = table.replica().cloned() else {
            return Err(QueryError::other(
                ErrorCode::LOGICAL_ERROR,
                "a deduplicated async insert buffer of a table that is not replicated",
            ));
        };
        let mut written = 0;
        let mut seen = std::collections::HashSet::new();
        answer_duplicates(&mut entries, |e| !seen.insert(e.id.clone()));
        while !entries.is_empty() {
            let data = Arc::clone(table.data());
            let batches: Vec<RecordBatch> = entries.iter().map(|e| e.batch.clone()).collect();
            let ids: Vec<Option<String>> = entries.iter().map(|e| e.id.clone()).collect();
            let batch_ids = tokio::task::spawn_blocking(move || -> Result<_> {
                let mut by_partition: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (b, id) in batches.iter().zip(ids) {
                    for p in data.partition_ids(b)? {
                        let id = format!("{p}_{}", id.as_deref().unwrap_or_default());
                        by_partition.entry(p).or_default().push(id);
                    }
                }
                Ok(by_partition)
            })
            .await
            .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))??;
            let txn = write_entries(&table, &entries).await?;
            let opts = InsertOptions {
                batch_ids,
                ..options.clone()
            };
            match replica.commit_insert(txn.into_prepared(), &opts).await {
                Ok(n) => {
                    written += n;
                    break;
                }
                Err(qh_replication::ReplicationError::DuplicateBlocks(found)) => {
                    let before = entries.len();
                    answer_duplicates(&mut entries, |e| {
                        let id = e.id.as_deref().unwrap_or_default();
                        found
                            .iter()
                            .any(|f| f.rsplit_once('_').is_some_and(|(_, h)| h == id))
                    });
                    tracing::info!(
                        deduplicated = before - entries.len(),
                        "async inserts already inserted; writing the rest"
                    );
                    if entries.len() == before {
                        return Err(QueryError::other(
                            ErrorCode::LOGICAL_ERROR,
                            format!("the commit named duplicate blocks no entry has: {found:?}"),
                        ));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(written)
    }
    .instrument(span)
    .await;
    for e in entries {
        let rows = e.batch.num_rows() as u64;
        if let Some(reply) = e.reply {
            let _ = reply.send(match &outcome {
                Ok(_) => Ok(rows),
                Err(err) => Err((err.code(), err.to_string())),
            });
        }
    }
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "async insert flush failed");
    }
}

/// Answers the entries `duplicate` picks as deduplicated (nothing written)
/// and removes them.
fn answer_duplicates(entries: &mut Vec<Entry>, mut duplicate: impl FnMut(&Entry) -> bool) {
    entries.retain_mut(|e| {
        if !duplicate(e) {
            return true;
        }
        if let Some(reply) = e.reply.take() {
            let _ = reply.send(Ok(0));
        }
        false
    });
}

/// The entries' rows as one insert's parts (written, not committed).
async fn write_entries(table: &Table, entries: &[Entry]) -> Result<InsertTxn> {
    let data = Arc::clone(table.data());
    let batches: Vec<RecordBatch> = entries.iter().map(|e| e.batch.clone()).collect();
    tokio::task::spawn_blocking(move || -> Result<InsertTxn> {
        let schema = data.meta().arrow_schema();
        let all = concat_batches(&schema, batches.iter())?;
        let mut txn = data.begin_insert();
        txn.write(&all)?;
        Ok(txn)
    })
    .await
    .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))?
}

/// An insert's block id from its data (Arrow IPC bytes, so equal rows of
/// equal types hash alike).
fn data_hash(batch: &RecordBatch) -> Result<String> {
    let mut buf = Vec::new();
    {
        let mut w =
            datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut buf, &batch.schema())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&buf)))
}

impl Session {
    /// An `async_insert = 1` INSERT of data (FORMAT or VALUES): parsed and
    /// completed here, then handed to the table's buffer.
    pub(super) async fn insert_async(
        &mut self,
        source: InsertSource,
        input: &mut Input,
        settings: &Settings,
        table: &Arc<MergeTreeTable>,
        names: &[String],
        s: AsyncSettings,
    ) -> Result<u64> {
        let meta = table.meta();
        let full_schema = meta.arrow_schema();
        let target = insert::insert_schema(&meta, names);
        let batch = match source {
            InsertSource::Format { name, inline } => {
                let format = InputFormat::parse(&name)?;
                let (reader, too_large, max_bytes) = insert::input_reader(inline, input, settings)?;
                let progress = Arc::clone(&self.progress);
                let base = self.engine.base.clone();
                tokio::task::spawn_blocking(move || -> Result<RecordBatch> {
                    let mut parsed = Vec::new();
                    let read = read_input(format, reader, Arc::clone(&target), &mut |b| {
                        progress.add_written(&b);
                        parsed.push(b);
                        Ok(())
                    });
                    if too_large.load(Ordering::Relaxed) {
                        return Err(crate::limits::insert_too_large(max_bytes));
                    }
                    read?;
                    let b = concat_batches(&target, parsed.iter())?;
                    insert::conform(&base, &meta, &full_schema, &b)
                })
                .await
                .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))??
            }
            source => {
                let batches = self.query_rows(source, names, settings).await?;
                let typed = insert::cast_to_target(&meta, names, batches)?;
                let b = concat_batches(&insert::staging_schema(&meta, names), typed.iter())?;
                insert::conform(&self.engine.base, &meta, &full_schema, &b)?
            }
        };
        let options = insert::insert_options(settings)?;
        let table = self.engine.table_of(Arc::clone(table));
        self.engine
            .async_inserts
            .submit(table, batch, options, &s)
            .await
    }
}
