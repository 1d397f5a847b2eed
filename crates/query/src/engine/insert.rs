//! INSERT execution: input formats parsed into blocks, written as hidden
//! parts, conformed to the table's schema, and committed through [`Table`].

use super::*;

impl Session {
    pub(super) async fn insert(
        &mut self,
        ins: crate::statement::Insert,
        input: &mut Input,
        settings: &Settings,
    ) -> Result<u64> {
        let table = self.table(&ins.table)?;
        let meta = table.meta();
        session::refuse_view(&meta)?;
        let names: Vec<String> = match &ins.columns {
            Some(cols) => {
                for c in cols {
                    match meta.column(c) {
                        None => {
                            return Err(QueryError::NoSuchColumn(format!(
                                "No such column {c} in table {}.{}",
                                meta.database, meta.name
                            )))
                        }
                        Some(def) if def.kind.is_computed() => {
                            return Err(QueryError::other(
                                ErrorCode::ILLEGAL_COLUMN,
                                format!(
                                    "Cannot insert column {c}, because it is {} column",
                                    def.kind.keyword()
                                ),
                            ))
                        }
                        Some(_) => {}
                    }
                }
                cols.clone()
            }
            // MATERIALIZED and ALIAS columns are computed, never given.
            None => meta
                .columns
                .iter()
                .filter(|c| !c.kind.is_computed())
                .map(|c| c.name.clone())
                .collect(),
        };
        if matches!(meta.engine, EngineKind::Distributed { .. }) {
            return self
                .insert_distributed(ins.source, input, settings, &meta, &names)
                .await;
        }
        if matches!(meta.engine, EngineKind::KeeperMap { .. }) {
            return self
                .insert_keeper_map(ins.source, input, settings, &meta, &names)
                .await;
        }
        if !matches!(ins.source, InsertSource::Select(_)) {
            let replicated = self.engine.replica_of(&table).is_some();
            if let Some(s) = async_insert::AsyncSettings::of(settings, replicated)? {
                return self
                    .insert_async(ins.source, input, settings, &table, &names, s)
                    .await;
            }
        }
        match ins.source {
            InsertSource::Format { name, inline } => {
                let format = InputFormat::parse(&name)?;
                let (reader, too_large, max_bytes) = input_reader(inline, input, settings)?;
                let target = insert_schema(&meta, &names);
                let progress = Arc::clone(&self.progress);
                let block_rows = settings
                    .max_insert_block_size()
                    .map_err(QueryError::BadArguments)? as usize;
                let base = self.engine.base.clone();
                let catalog = Arc::clone(&self.engine.catalog);
                let written = tokio::task::spawn_blocking(move || -> Result<InsertTxn> {
                    // Parsing and writing overlap: this thread parses, a writer
                    // thread sorts and writes the previous block as a hidden part.
                    let full_schema = meta.arrow_schema();
                    let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(1);
                    let (parsed, txn) = std::thread::scope(|scope| {
                        let writer = scope.spawn(|| -> Result<qh_storage::InsertTxn> {
                            let mut txn = table.begin_insert();
                            for b in rx {
                                let full = conform(&base, &meta, &full_schema, &b)?;
                                txn.write(&full)?;
                            }
                            Ok(txn)
                        });
                        let mut pending: Vec<RecordBatch> = Vec::new();
                        let mut pending_rows = 0usize;
                        let send = |pending: &mut Vec<RecordBatch>| -> Result<()> {
                            if pending.is_empty() {
                                return Ok(());
                            }
                            let b = concat_batches(&pending[0].schema(), pending.iter())?;
                            pending.clear();
                            // A send error means the writer failed; its error wins.
                            tx.send(b).map_err(|_| {
                                QueryError::other(ErrorCode::LOGICAL_ERROR, "writer stopped")
                            })
                        };
                        let parsed = read_input(format, reader, target, &mut |b| {
                            pending_rows += b.num_rows();
                            progress.add_written(&b);
                            pending.push(b);
                            if pending_rows >= block_rows {
                                send(&mut pending)?;
                                pending_rows = 0;
                            }
                            Ok(())
                        })
                        .and_then(|_| send(&mut pending));
                        drop(tx);
                        let txn = writer.join().unwrap_or_else(|_| {
                            Err(QueryError::other(
                                ErrorCode::LOGICAL_ERROR,
                                "insert writer panicked",
                            ))
                        });
                        (parsed, txn)
                    });
                    // Either failure drops the transaction: nothing becomes visible.
                    if too_large.load(Ordering::Relaxed) {
                        return Err(crate::limits::insert_too_large(max_bytes));
                    }
                    let txn = txn?;
                    parsed?;
                    Ok(txn)
                })
                .await
                .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))??;
                self.commit(written, settings, &catalog).await
            }
            source => {
                let batches = self.query_rows(source, &names, settings).await?;
                self.write_batches(&table, &names, batches, settings).await
            }
        }
    }

    /// The rows of `INSERT ... VALUES` or `INSERT ... SELECT` (columns by
    /// position, not yet in the table's types).
    pub(super) async fn query_rows(
        &mut self,
        source: InsertSource,
        names: &[String],
        settings: &Settings,
    ) -> Result<Vec<RecordBatch>> {
        let query = match source {
            InsertSource::Values(rows) => {
                if let Some(bad) = rows.iter().find(|r| r.len() != names.len()) {
                    return Err(QueryError::other(
                        ErrorCode::SYNTAX_ERROR,
                        format!(
                            "Expected {} columns in VALUES row, got {}",
                            names.len(),
                            bad.len()
                        ),
                    ));
                }
                crate::statement::values_query(rows)?
            }
            InsertSource::Select(q) => q,
            InsertSource::Format { .. } => {
                return Err(QueryError::other(
                    ErrorCode::LOGICAL_ERROR,
                    "formatted input is not a query",
                ))
            }
        };
        let (_, batches, _) = self
            .run_query(*query, Default::default(), &without_result_limits(settings))
            .await?;
        Ok(batches)
    }

    /// INSERT into a Distributed table: the rows are parsed and completed
    /// (defaults) here, then written to the shards before this returns.
    async fn insert_distributed(
        &mut self,
        source: InsertSource,
        input: &mut Input,
        settings: &Settings,
        meta: &TableMeta,
        names: &[String],
    ) -> Result<u64> {
        let full = self.full_rows(source, input, settings, meta, names).await?;
        let query_id = self.current_query.0.clone();
        // Boxed: the atomic path's future is deep enough to overflow the
        // compiler's layout recursion limit in every caller.
        Box::pin(crate::distributed::insert::insert(
            &self.engine,
            meta,
            full,
            settings,
            &query_id,
        ))
        .await
    }

    /// An INSERT into a KeeperMap table: one coordinator transaction.
    async fn insert_keeper_map(
        &mut self,
        source: InsertSource,
        input: &mut Input,
        settings: &Settings,
        meta: &TableMeta,
        names: &[String],
    ) -> Result<u64> {
        let strict = settings
            .get_bool("keeper_map_strict_mode", false)
            .map_err(QueryError::BadArguments)?;
        let full = self.full_rows(source, input, settings, meta, names).await?;
        match crate::keeper_map::KeeperMap::of(self.engine.coordinator(), meta) {
            Some(km) => km?.insert(&full, strict).await,
            None => Err(QueryError::other(
                ErrorCode::LOGICAL_ERROR,
                "not a KeeperMap table",
            )),
        }
    }

    /// An INSERT's rows in memory, with every column of the table (defaults
    /// and computed columns filled in), for engines that write them whole.
    async fn full_rows(
        &mut self,
        source: InsertSource,
        input: &mut Input,
        settings: &Settings,
        meta: &TableMeta,
        names: &[String],
    ) -> Result<RecordBatch> {
        let batches = match source {
            InsertSource::Format { name, inline } => {
                let format = InputFormat::parse(&name)?;
                let (reader, too_large, max_bytes) = input_reader(inline, input, settings)?;
                let target = insert_schema(meta, names);
                let progress = Arc::clone(&self.progress);
                let parsed = tokio::task::spawn_blocking(move || -> Result<Vec<RecordBatch>> {
                    let mut out = Vec::new();
                    let parsed = read_input(format, reader, target, &mut |b| {
                        progress.add_written(&b);
                        out.push(b);
                        Ok(())
                    });
                    if too_large.load(Ordering::Relaxed) {
                        return Err(crate::limits::insert_too_large(max_bytes));
                    }
                    parsed.map(|_| out)
                })
                .await
                .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))??;
                parsed
            }
            source => {
                let batches = self.query_rows(source, names, settings).await?;
                cast_to_target(meta, names, batches)?
            }
        };
        let target = staging_schema(meta, names);
        let full_schema = meta.arrow_schema();
        let all = concat_batches(&target, batches.iter())?;
        conform(&self.engine.base, meta, &full_schema, &all)
    }

    /// Inserts query results (columns by position) into `names` of `table`.
    pub(super) async fn write_batches(
        &self,
        table: &Arc<MergeTreeTable>,
        names: &[String],
        batches: Vec<RecordBatch>,
        settings: &Settings,
    ) -> Result<u64> {
        let txn = self.prepare_txn(table, names, batches).await?;
        let catalog = Arc::clone(&self.engine.catalog);
        self.commit(txn, settings, &catalog).await
    }

    /// Writes query results (columns by position) into new parts of
    /// `table`, not yet visible.
    pub(super) async fn prepare_txn(
        &self,
        table: &Arc<MergeTreeTable>,
        names: &[String],
        batches: Vec<RecordBatch>,
    ) -> Result<InsertTxn> {
        let meta = table.meta();
        let target = staging_schema(&meta, names);
        let typed = cast_to_target(&meta, names, batches)?;
        let base = self.engine.base.clone();
        let table = Arc::clone(table);
        tokio::task::spawn_blocking(move || -> Result<InsertTxn> {
            let full_schema = meta.arrow_schema();
            let mut txn = table.begin_insert();
            if !typed.is_empty() {
                let b = concat_batches(&target, typed.iter())?;
                let full = conform(&base, &meta, &full_schema, &b)?;
                txn.write(&full)?;
            }
            Ok(txn)
        })
        .await
        .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))?
    }

    /// Makes an insert's parts visible: at once for a local table, through
    /// the coordinator for a replicated one. Returns the rows committed.
    pub(super) async fn commit(
        &self,
        txn: InsertTxn,
        settings: &Settings,
        catalog: &Arc<Catalog>,
    ) -> Result<u64> {
        refuse_distributed(&txn.table().meta())?;
        let table = self.engine.table_of(Arc::clone(txn.table()));
        table
            .commit_insert(txn, &insert_options(settings)?, catalog)
            .await
    }
}

/// The insert settings (`insert_quorum`, deduplication) of a replicated
/// table's commit.
pub(super) fn insert_options(settings: &Settings) -> Result<InsertOptions> {
    Ok(InsertOptions {
        deduplicate: settings
            .uint("insert_deduplicate")
            .map_err(QueryError::BadArguments)?
            != 0,
        token: settings
            .get("insert_deduplication_token")
            .map(|t| t.trim_matches('\'').to_string())
            .filter(|t| !t.is_empty()),
        quorum: match settings.get("insert_quorum") {
            Some(v) => Quorum::parse(v).map_err(QueryError::BadArguments)?,
            None => Quorum::Off,
        },
        timeout: Duration::from_millis(
            settings
                .uint("insert_quorum_timeout")
                .map_err(QueryError::BadArguments)?,
        ),
        parallel: settings
            .get_bool("insert_quorum_parallel", true)
            .map_err(QueryError::BadArguments)?,
        batch_ids: Default::default(),
    })
}

/// An INSERT's data (inline after FORMAT, else the client's input), cut
/// off at `max_insert_input_bytes`: the reader, the flag telling the limit
/// was hit, and the limit.
pub(super) fn input_reader(
    inline: Option<String>,
    input: &mut Input,
    settings: &Settings,
) -> Result<(
    Box<dyn Read + Send>,
    Arc<std::sync::atomic::AtomicBool>,
    u64,
)> {
    let reader: Box<dyn Read + Send> = match inline {
        Some(data) => Box::new(std::io::Cursor::new(data.into_bytes())),
        None => input
            .take()
            .ok_or_else(|| QueryError::other(ErrorCode::BAD_ARGUMENTS, "No data to insert"))?,
    };
    let max_bytes = settings
        .uint("max_insert_input_bytes")
        .map_err(QueryError::BadArguments)?;
    let (reader, too_large) = LimitedReader::new(reader, max_bytes);
    Ok((Box::new(reader), too_large, max_bytes))
}

/// Query results (columns by position) as batches of `names`' types.
pub(super) fn cast_to_target(
    meta: &TableMeta,
    names: &[String],
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    let target = staging_schema(meta, names);
    let opts = CastOptions {
        safe: false,
        ..Default::default()
    };

    let mut typed = Vec::with_capacity(batches.len());
    for b in batches {
        if b.num_columns() != names.len() {
            return Err(QueryError::other(
                ErrorCode::NUMBER_OF_COLUMNS_DOESNT_MATCH,
                format!(
                    "Number of columns doesn't match: expected {}, got {}",
                    names.len(),
                    b.num_columns()
                ),
            ));
        }
        let mut cols = Vec::with_capacity(names.len());
        for (i, f) in target.fields().iter().enumerate() {
            let c = b.column(i);
            let mismatch = |e: &dyn std::fmt::Display| {
                QueryError::other(
                    ErrorCode::TYPE_MISMATCH,
                    format!(
                        "Cannot convert column {} to {}: {e}",
                        f.name(),
                        type_of(meta, f.name())
                    ),
                )
            };
            let c = if c.data_type() == f.data_type() {
                Arc::clone(c)
            } else if let Some(def) = meta.column(f.name()) {
                // ClickHouse converts inserted values as CAST does
                // (wrapping integers, truncating floats and Decimals).
                crate::functions::convert(c, &def.ty).map_err(|e| match QueryError::from(e) {
                    q @ QueryError::Other { .. } => q,
                    q => mismatch(&q),
                })?
            } else {
                cast_with_options(c, f.data_type(), &opts).map_err(|e| mismatch(&e))?
            };
            cols.push(c);
        }
        typed.push(RecordBatch::try_new_with_options(
            Arc::clone(&target),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
        )?);
    }
    Ok(typed)
}

/// Rows of a Distributed table live on its shards, never in the table.
fn refuse_distributed(meta: &TableMeta) -> Result<()> {
    if matches!(meta.engine, EngineKind::Distributed { .. }) {
        return Err(QueryError::other(
            ErrorCode::NOT_IMPLEMENTED,
            format!(
                "INSERT into the Distributed table {}.{} is not supported yet: insert into its local table on each shard",
                meta.database, meta.name
            ),
        ));
    }
    Ok(())
}

pub(super) fn type_of(meta: &TableMeta, col: &str) -> String {
    meta.column(col)
        .map(|c| c.ty.to_string())
        .unwrap_or_default()
}

/// [`insert_schema`] with every column Nullable: rows on their way in, where
/// a NULL for a non-Nullable column is still allowed; `conform` makes it the
/// column's default (ClickHouse's input_format_null_as_default = 1).
pub(super) fn staging_schema(meta: &TableMeta, names: &[String]) -> SchemaRef {
    Arc::new(Schema::new(
        insert_schema(meta, names)
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

pub(super) fn insert_schema(meta: &TableMeta, names: &[String]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .filter_map(|n| meta.column(n))
            .map(|c| c.ty.field(&c.name))
            .collect::<Vec<_>>(),
    ))
}

/// `b` with the DEFAULT of every column it lacks appended, computed in
/// dependency order, as ClickHouse does: a default may read another's
/// value (`c DEFAULT b + 1` where `b DEFAULT a * 2` is missing too).
fn missing_defaults(
    state: &SessionState,
    meta: &TableMeta,
    b: &RecordBatch,
) -> Result<RecordBatch> {
    let n = b.num_rows();
    let mut pending = Vec::new();
    for c in &meta.columns {
        if let (None, Some(sql)) = (b.column_by_name(&c.name), &c.default) {
            let reads = crate::keys::referenced_columns(&crate::statement::parse_expr(sql)?);
            pending.push((c, sql, reads));
        }
    }
    let mut work = b.clone();
    while !pending.is_empty() {
        let have = work.schema();
        let ready = |reads: &std::collections::BTreeSet<String>| {
            reads
                .iter()
                .all(|r| have.field_with_name(r).is_ok() || meta.column(r).is_none())
        };
        // None ready (a cycle): the first is compiled anyway, and its error
        // names the column it lacks.
        let i = pending.iter().position(|(_, _, r)| ready(r)).unwrap_or(0);
        let (c, sql, _) = pending.remove(i);
        let e = compile(state, sql, &have)?;
        let v = crate::functions::convert(&e.evaluate(&work)?.into_array(n)?, &c.ty)?;
        let mut fields: Vec<_> = have.fields().iter().map(|f| f.as_ref().clone()).collect();
        // Nullable while on its way: NULLs become the default below.
        fields.push(c.ty.field(&c.name).with_nullable(true));
        let mut cols = work.columns().to_vec();
        cols.push(v);
        work = RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
    }
    Ok(work)
}

/// Completes a batch of some of the table's columns into all of them:
/// missing columns get their DEFAULT (which may refer to other columns) or
/// the type's default; NULLs in non-Nullable columns become the default.
pub(super) fn conform(
    state: &SessionState,
    meta: &TableMeta,
    full: &SchemaRef,
    b: &RecordBatch,
) -> Result<RecordBatch> {
    let n = b.num_rows();
    let computed = missing_defaults(state, meta, b)?;
    let mut cols = Vec::with_capacity(full.fields().len());
    for f in full.fields().iter() {
        let col = match b
            .column_by_name(f.name())
            .or_else(|| computed.column_by_name(f.name()))
        {
            Some(c) => Arc::clone(c),
            None => qh_storage::part::type_default(f.data_type(), f.is_nullable())?
                .to_array_of_size(n)?,
        };
        let col = if !f.is_nullable() && col.null_count() > 0 {
            let d = qh_storage::part::type_default(f.data_type(), false)?.to_array_of_size(n)?;
            let mask = datafusion::arrow::compute::is_not_null(&col)?;
            datafusion::arrow::compute::kernels::zip::zip(&mask, &col, &d)?
        } else {
            col
        };
        cols.push(col);
    }
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(full),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )?)
}
