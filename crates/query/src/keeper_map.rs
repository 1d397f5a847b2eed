//! KeeperMap tables (`ENGINE = KeeperMap('/root'[, keys_limit]) PRIMARY KEY k`):
//! ClickHouse's key-value table kept in Keeper, here kept in the built-in
//! coordinator. The node holds no data for them; every table naming the same
//! root, on any node, shares the rows.
//!
//! Invariants:
//! - one row is one coordinator key, `keeper_map/<len>:<root>/data/` followed
//!   by the hex of the primary key's RowBinary, holding the hex of the whole
//!   row's RowBinary (exact for every type; equal rows give equal values, so a
//!   value read back is a compare-and-set guard for the row);
//! - every write is one coordinator transaction that applies at most once
//!   (an id the state machine remembers), however often the coordinator
//!   proposes it again: an acknowledged write happened once, a failed one
//!   not at all, an unknown one at most once;
//! - reads are linearizable (a read index confirmed by the leader), so a read
//!   sees every write acknowledged before it started;
//! - UPDATE and DELETE read the rows, compute the new ones and commit only if
//!   every row they matched is unchanged, so a mutation applies to the rows
//!   as of one instant (a conditional UPDATE is a compare-and-set).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use qh_meta::{Check, Coordinator, Op, Request, Response};
use qh_storage::{EngineKind, TableMeta};
use qh_types::native::declared_type;
use qh_types::row_binary::{RowBinaryHeader, RowBinaryReader, RowBinaryWriter};
use qh_types::ErrorCode;

use crate::error::{QueryError, Result};

/// A mutation that raced another write is computed again this many times
/// before it gives up (`keeper_map_strict_mode = 0`).
const MUTATION_ATTEMPTS: usize = 16;

/// One KeeperMap table as its statements see it.
pub(crate) struct KeeperMap<'a> {
    coordinator: &'a Coordinator,
    meta: &'a TableMeta,
    root: &'a str,
    keys_limit: u64,
}

fn coordinator_error(e: qh_meta::MetaError) -> QueryError {
    QueryError::other(ErrorCode::KEEPER_EXCEPTION, e.to_string())
}

fn encoding_error(e: impl std::fmt::Display) -> QueryError {
    QueryError::other(
        ErrorCode::LOGICAL_ERROR,
        format!("KeeperMap row encoding: {e}"),
    )
}

/// A process-unique id for a write (node, process start, sequence).
fn write_id(node: u64) -> String {
    static START: OnceLock<u128> = OnceLock::new();
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let start = START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    });
    format!(
        "keeper_map-{node}-{start}-{}",
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

impl<'a> KeeperMap<'a> {
    /// The KeeperMap table `meta`; `None` for any other engine.
    pub(crate) fn of(
        coordinator: Option<&'a Arc<Coordinator>>,
        meta: &'a TableMeta,
    ) -> Option<Result<Self>> {
        let EngineKind::KeeperMap { root, keys_limit } = &meta.engine else {
            return None;
        };
        Some(match coordinator {
            Some(c) => Ok(KeeperMap {
                coordinator: c,
                meta,
                root,
                keys_limit: *keys_limit,
            }),
            None => Err(disabled()),
        })
    }

    /// Every row of the KeeperMap table `meta`, as of a linearizable read.
    pub(crate) async fn read_table(
        coordinator: Option<&'a Arc<Coordinator>>,
        meta: &'a TableMeta,
    ) -> Result<RecordBatch> {
        match Self::of(coordinator, meta) {
            Some(km) => km?.read().await,
            None => Err(QueryError::other(
                ErrorCode::LOGICAL_ERROR,
                format!("{}.{} is not a KeeperMap table", meta.database, meta.name),
            )),
        }
    }

    fn data_prefix(&self) -> String {
        format!("keeper_map/{}:{}/data/", self.root.len(), self.root)
    }

    fn tables_prefix(&self) -> String {
        format!("keeper_map/{}:{}/tables/", self.root.len(), self.root)
    }

    /// This table's registration under its root (data is dropped with the
    /// last table that uses the root, as in ClickHouse).
    fn registration(&self) -> String {
        format!(
            "{}{}/{}.{}",
            self.tables_prefix(),
            self.coordinator.node_id(),
            self.meta.database,
            self.meta.name
        )
    }

    fn schema(&self) -> SchemaRef {
        self.meta.arrow_schema()
    }

    fn key_column(&self) -> Result<usize> {
        let name = self.meta.primary_key.first().ok_or_else(|| {
            QueryError::BadArguments("KeeperMap requires one column in primary key".into())
        })?;
        self.schema().index_of(name).map_err(|_| {
            QueryError::NoSuchColumn(format!("KeeperMap primary key {name} is not a column"))
        })
    }

    /// Each row of `batch` (the table's full schema) as its coordinator key
    /// and value, in order.
    fn encode(&self, batch: &RecordBatch) -> Result<Vec<(String, String)>> {
        let schema = self.schema();
        let key_idx = self.key_column()?;
        let row_writer =
            RowBinaryWriter::new(&schema, RowBinaryHeader::None).map_err(encoding_error)?;
        let key_schema = Schema::new(vec![schema.field(key_idx).clone()]);
        let key_writer =
            RowBinaryWriter::new(&key_schema, RowBinaryHeader::None).map_err(encoding_error)?;
        let keys = RecordBatch::try_new(
            Arc::new(key_schema),
            vec![Arc::clone(batch.column(key_idx))],
        )?;
        let prefix = self.data_prefix();
        (0..batch.num_rows())
            .map(|i| {
                let key = key_writer
                    .write_batch(&keys.slice(i, 1))
                    .map_err(encoding_error)?;
                let row = row_writer
                    .write_batch(&batch.slice(i, 1))
                    .map_err(encoding_error)?;
                Ok((format!("{prefix}{}", hex::encode(key)), hex::encode(row)))
            })
            .collect()
    }

    /// Rows from their stored values.
    fn decode<'v>(&self, values: impl Iterator<Item = &'v str>) -> Result<RecordBatch> {
        let schema = self.schema();
        let mut bytes = Vec::new();
        for v in values {
            bytes.extend(hex::decode(v).map_err(encoding_error)?);
        }
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                declared_type(f)
                    .map(|t| (f.name().clone(), t))
                    .ok_or_else(|| encoding_error(format!("column {} has no type", f.name())))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut reader = RowBinaryReader::new(Cursor::new(bytes), RowBinaryHeader::None, columns);
        let mut batches = Vec::new();
        while let Some(b) = reader.next_block().map_err(encoding_error)? {
            batches.push(conform_to(&schema, b)?);
        }
        Ok(datafusion::arrow::compute::concat_batches(
            &schema, &batches,
        )?)
    }

    /// Every row, as of a linearizable read.
    pub(crate) async fn read(&self) -> Result<RecordBatch> {
        let prefix = self.data_prefix();
        let values: Vec<String> = self
            .coordinator
            .read_linearizable(|s| {
                s.keys_with_prefix(&prefix)
                    .map(|(_, v)| v.to_string())
                    .collect()
            })
            .await
            .map_err(coordinator_error)?;
        self.decode(values.iter().map(String::as_str))
    }

    async fn commit(&self, req: Request) -> Result<Response> {
        self.coordinator
            .write(req.once(write_id(self.coordinator.node_id())))
            .await
            .map_err(coordinator_error)
    }

    /// Registers the table under its root (CREATE).
    pub(crate) async fn register(&self) -> Result<()> {
        let req = Request::op(Op::Put {
            key: self.registration(),
            value: String::new(),
        });
        self.commit(req).await.map(|_| ())
    }

    /// Unregisters the table (DROP); the last table of a root takes its rows
    /// with it.
    pub(crate) async fn unregister(&self) -> Result<()> {
        let (me, tables_prefix, data_prefix) = (
            self.registration(),
            self.tables_prefix(),
            self.data_prefix(),
        );
        let (others, keys) = self
            .coordinator
            .read_linearizable(|s| {
                let others = s
                    .keys_with_prefix(&tables_prefix)
                    .filter(|(k, _)| *k != me)
                    .count();
                let keys: Vec<String> = s
                    .keys_with_prefix(&data_prefix)
                    .map(|(k, _)| k.to_string())
                    .collect();
                (others, keys)
            })
            .await
            .map_err(coordinator_error)?;
        let mut ops = vec![Op::Delete { key: me }];
        if others == 0 {
            ops.extend(keys.into_iter().map(|key| Op::Delete { key }));
        }
        self.commit(Request::ops(ops)).await.map(|_| ())
    }

    /// Writes the rows of `batch` (full schema), a later row of a key
    /// replacing an earlier one; with `strict`, a key that exists fails the
    /// whole insert. Answers the rows written.
    pub(crate) async fn insert(&self, batch: &RecordBatch, strict: bool) -> Result<u64> {
        let rows: BTreeMap<String, String> = self.encode(batch)?.into_iter().collect();
        if rows.is_empty() {
            return Ok(0);
        }
        if self.keys_limit > 0 {
            let prefix = self.data_prefix();
            let (total, new) = self
                .coordinator
                .read_linearizable(|s| {
                    let total = s.keys_with_prefix(&prefix).count() as u64;
                    let new = rows.keys().filter(|k| s.key(k).is_none()).count() as u64;
                    (total, new)
                })
                .await
                .map_err(coordinator_error)?;
            if new > 0 && total + new > self.keys_limit {
                return Err(QueryError::other(
                    ErrorCode::LIMIT_EXCEEDED,
                    format!(
                        "Limit ({}) of keys in {}.{} would be exceeded by inserting {new} new key(s)",
                        self.keys_limit, self.meta.database, self.meta.name
                    ),
                ));
            }
        }
        let checks = match strict {
            true => rows
                .keys()
                .map(|k| Check::KeyEquals {
                    key: k.clone(),
                    value: None,
                })
                .collect(),
            false => Vec::new(),
        };
        let n = batch.num_rows() as u64;
        let ops = rows
            .into_iter()
            .map(|(key, value)| Op::Put { key, value })
            .collect();
        match self.commit(Request::ops(ops).with_checks(checks)).await? {
            Response::Ok { .. } => Ok(n),
            Response::CheckFailed { .. } => Err(QueryError::other(
                ErrorCode::KEEPER_EXCEPTION,
                format!(
                    "Transaction failed (Node exists): a key inserted into {}.{} exists already (keeper_map_strict_mode = 1)",
                    self.meta.database, self.meta.name
                ),
            )),
            Response::Rejected { reason, .. } => {
                Err(QueryError::other(ErrorCode::KEEPER_EXCEPTION, reason))
            }
        }
    }

    /// A mutation: `compute` reads the table (a linearizable read) and
    /// answers the rows it changes as (old rows, their new values — `None`
    /// deletes them). The change commits only if each old row is still as
    /// read; otherwise it is computed again (or, with `strict`, fails).
    /// Answers the rows changed.
    pub(crate) async fn mutate<F, Fut>(&self, strict: bool, mut compute: F) -> Result<u64>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(RecordBatch, Option<RecordBatch>)>>,
    {
        for _ in 0..MUTATION_ATTEMPTS {
            let (old, new) = compute().await?;
            if old.num_rows() == 0 {
                return Ok(0);
            }
            let old_rows = self.encode(&old)?;
            let mut checks = Vec::with_capacity(old_rows.len());
            let mut ops = Vec::with_capacity(old_rows.len());
            for (key, value) in &old_rows {
                checks.push(Check::KeyEquals {
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
            match &new {
                Some(new) => {
                    for ((old_key, _), (key, value)) in old_rows.iter().zip(self.encode(new)?) {
                        if *old_key != key {
                            return Err(QueryError::BadArguments(
                                "Primary key cannot be updated".into(),
                            ));
                        }
                        ops.push(Op::Put { key, value });
                    }
                }
                None => ops.extend(
                    old_rows
                        .iter()
                        .map(|(key, _)| Op::Delete { key: key.clone() }),
                ),
            }
            match self.commit(Request::ops(ops).with_checks(checks)).await? {
                Response::Ok { .. } => return Ok(old_rows.len() as u64),
                Response::CheckFailed { .. } if !strict => continue,
                Response::CheckFailed { .. } => {
                    return Err(QueryError::other(
                        ErrorCode::KEEPER_EXCEPTION,
                        format!(
                            "Transaction failed (Bad version): rows of {}.{} changed while the mutation ran (keeper_map_strict_mode = 1)",
                            self.meta.database, self.meta.name
                        ),
                    ))
                }
                Response::Rejected { reason, .. } => {
                    return Err(QueryError::other(ErrorCode::KEEPER_EXCEPTION, reason))
                }
            }
        }
        Err(QueryError::other(
            ErrorCode::KEEPER_EXCEPTION,
            format!(
                "the mutation of {}.{} raced other writes {MUTATION_ATTEMPTS} times; run it again",
                self.meta.database, self.meta.name
            ),
        ))
    }

    /// Deletes every row (TRUNCATE).
    pub(crate) async fn truncate(&self) -> Result<()> {
        let prefix = self.data_prefix();
        let keys: Vec<String> = self
            .coordinator
            .read_linearizable(|s| {
                s.keys_with_prefix(&prefix)
                    .map(|(k, _)| k.to_string())
                    .collect()
            })
            .await
            .map_err(coordinator_error)?;
        if keys.is_empty() {
            return Ok(());
        }
        let ops = keys.into_iter().map(|key| Op::Delete { key }).collect();
        self.commit(Request::ops(ops)).await.map(|_| ())
    }
}

/// ClickHouse's words for a KeeperMap table where there is no Keeper.
pub(crate) fn disabled() -> QueryError {
    QueryError::BadArguments(
        "KeeperMap is disabled: it needs a node with the built-in coordinator (quorumhouse server / cluster up), not quorumhouse local".into(),
    )
}

/// `b` with `schema`'s field types (the reader's types may differ in field
/// metadata only, or in a representation arrow casts exactly).
fn conform_to(schema: &SchemaRef, b: RecordBatch) -> Result<RecordBatch> {
    let columns = b
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| match c.data_type() == f.data_type() {
            true => Ok(Arc::clone(c)),
            false => datafusion::arrow::compute::cast(c, f.data_type()),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
