//! SELECT execution: the rewrite, DataFusion planning over our catalog, and
//! running the plan within the query's limits.

use super::*;

/// What [`Session::plan_and_run`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    /// The rows.
    Rows,
    /// The optimized physical plan, one `explain` row per line.
    Explain,
    /// The `WITH TOTALS` row of a [`crate::totals::totals_query`].
    Totals,
    /// Only the result's schema: planned, not run.
    Schema,
}

impl Session {
    /// Plans and runs a SELECT through DataFusion.
    pub(super) async fn run_query(
        &self,
        query: Query,
        final_tables: std::collections::HashSet<String>,
        settings: &Settings,
    ) -> Result<(SchemaRef, Vec<RecordBatch>, Summary)> {
        self.plan_and_run(query, final_tables, settings, Run::Rows)
            .await
    }

    /// The `WITH TOTALS` row: `query` (from [`crate::totals::totals_query`])
    /// run like the statement, as one row of the statement's `schema`.
    /// No group at all still has totals: the types' defaults, as in
    /// ClickHouse.
    pub(super) async fn totals_row(
        &self,
        query: Query,
        final_tables: std::collections::HashSet<String>,
        settings: &Settings,
        schema: &SchemaRef,
    ) -> Result<RecordBatch> {
        let (_, batches, _) = self
            .plan_and_run(query, final_tables, settings, Run::Totals)
            .await?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let column = match batches.iter().find(|b| b.num_rows() > 0) {
                    Some(b) if rows > 0 => b.column(i).slice(0, 1),
                    _ => crate::functions::default_scalar(f.data_type())?.to_array()?,
                };
                Ok(if column.data_type() == f.data_type() {
                    column
                } else {
                    datafusion::arrow::compute::cast(&column, f.data_type())?
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }

    /// Plans a SELECT and runs it; or answers its optimized physical plan
    /// (Distributed stages show the fragment each shard runs); or its
    /// totals row.
    pub(super) async fn plan_and_run(
        &self,
        mut query: Query,
        mut final_tables: std::collections::HashSet<String>,
        settings: &Settings,
        run: Run,
    ) -> Result<(SchemaRef, Vec<RecordBatch>, Summary)> {
        let query = on_large_stack(|| {
            self.expand_views(&mut query, &mut final_tables)?;
            self.qualify_temporary(&mut query, &mut final_tables);
            self.hide_computed_columns(&mut query);
            crate::rewrite::rewrite_query(&mut query)?;
            crate::complexity::check_query(&mut query, AstLimits::expanded(settings)?)?;
            Ok::<_, QueryError>(query)
        })?;
        let stats = Arc::clone(&self.progress);
        let limits = QueryLimits::from_settings(settings)?;
        let started = Instant::now();
        stats.set_read_limits(limits.max_rows_to_read, limits.max_bytes_to_read);
        let mut state = self.engine.query_state(settings, &self.database, &stats)?;
        for f in functions::server::session_udfs(&self.user, &self.database) {
            datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(f))?;
        }
        let ctx = Arc::new(QueryContext {
            engine: Arc::clone(&self.engine),
            catalog: Arc::clone(&self.engine.catalog),
            final_tables,
            settings: settings.clone(),
            stats: Arc::clone(&stats),
            coordinator: self.engine.coordinator.clone(),
            replication: self.engine.replication.clone(),
            processes: Arc::clone(&self.engine.processes),
            cluster_config: self.engine.clusters.clone(),
            query_id: self.current_query.0.clone(),
            query: self.current_query.1.clone(),
            database: self.database.clone(),
            temporary: self.temporary_hidden_names(),
            user: self.user.clone(),
            peer: self.peer,
            checked: self.checked,
        });
        let catalogs = Arc::new(MemoryCatalogProviderList::new());
        catalogs.register_catalog(
            "qh".into(),
            Arc::new(QhCatalog {
                ctx: Arc::clone(&ctx),
            }),
        );
        let mut state = SessionStateBuilder::new_from_existing(state)
            .with_catalog_list(catalogs)
            .build();
        for (name, all_replicas) in [("cluster", false), ("clusterAllReplicas", true)] {
            state.register_udtf(
                name,
                Arc::new(crate::distributed::scan::ClusterFunction {
                    ctx: Arc::clone(&ctx),
                    all_replicas,
                }),
            );
        }
        state.register_udtf(
            "remote",
            Arc::new(crate::distributed::remote::RemoteFunction {
                ctx: Arc::clone(&ctx),
            }),
        );
        let plan = state
            .statement_to_plan(DFStatement::Statement(Box::new(SqlStatement::Query(
                Box::new(query),
            ))))
            .await
            .map_err(table_error)?;
        // Deep as the query's longest operator chain: on a large stack.
        on_large_stack(|| crate::typecheck::check_plan(&plan))?;
        // ClickHouse's defaults where DataFusion gives NULLs, unless the
        // settings ask for NULLs.
        type Fill = fn(
            datafusion::logical_expr::LogicalPlan,
        ) -> datafusion::error::Result<datafusion::logical_expr::LogicalPlan>;
        let mut plan = on_large_stack(|| crate::operators::clickhouse_operators(plan, &state))
            .map_err(table_error)?;
        plan = crate::subquery_sets::materialize(plan, &state)
            .await
            .map_err(table_error)?;
        // Before the fills: they make a join's padded columns look Nullable.
        let join_use_nulls = settings
            .uint("join_use_nulls")
            .map_err(QueryError::BadArguments)?
            != 0;
        plan = on_large_stack(|| crate::type_names::name_nullable_types(plan, join_use_nulls))
            .map_err(table_error)?;
        for (setting, fill) in [
            (
                "join_use_nulls",
                crate::use_nulls::fill_join_defaults as Fill,
            ),
            (
                "group_by_use_nulls",
                crate::use_nulls::fill_grouping_defaults,
            ),
            (
                "aggregate_functions_null_for_empty",
                crate::use_nulls::fill_aggregate_defaults,
            ),
        ] {
            if settings.uint(setting).map_err(QueryError::BadArguments)? == 0 {
                plan = fill(plan).map_err(table_error)?;
            }
        }
        // After the fills: they go right above each join, and the merged key
        // must be taken from the join's own (unfilled) values below them.
        plan = crate::joins::using::merge_using_keys(plan).map_err(table_error)?;
        if run == Run::Totals {
            plan = crate::totals::collapse_groups(plan).map_err(table_error)?;
        }
        let df = DataFrame::new(state, plan);
        if run == Run::Schema {
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            return Ok((schema, vec![], Summary::default()));
        }
        if run == Run::Explain {
            let physical = df.create_physical_plan().await.map_err(table_error)?;
            let text = datafusion::physical_plan::displayable(physical.as_ref())
                .set_show_schema(false)
                .indent(true)
                .to_string();
            let schema: SchemaRef = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
                datafusion::arrow::datatypes::Field::new(
                    "explain",
                    datafusion::arrow::datatypes::DataType::Utf8,
                    false,
                ),
            ]));
            let lines: datafusion::arrow::array::StringArray = text.lines().map(Some).collect();
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(lines)])?;
            return Ok((schema, vec![batch], Summary::default()));
        }
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = match self.collect_limited(df, &limits, started).await {
            Ok(b) => b,
            Err(e) => {
                self.report_broken_part(&e);
                return Err(e);
            }
        };
        let summary = Summary {
            read_rows: stats.rows_read.load(Ordering::Relaxed),
            read_bytes: stats.bytes_read.load(Ordering::Relaxed),
            granules_read: stats.granules_read.load(Ordering::Relaxed),
            granules_total: stats.granules_total.load(Ordering::Relaxed),
            ..Default::default()
        };
        let (schema, batches) = restore_duplicate_names(schema, batches)?;
        Ok((schema, batches, summary))
    }

    /// Runs a planned query to the end, within `max_execution_time` (from
    /// `started`) and the result limits; `break` modes return what was
    /// gathered. Dropping the stream stops the query's tasks.
    pub(super) async fn collect_limited(
        &self,
        df: DataFrame,
        limits: &QueryLimits,
        started: Instant,
    ) -> Result<Vec<RecordBatch>> {
        let deadline = limits
            .execution_time
            .map(|d| tokio::time::Instant::from_std(started + d));
        let timed_out = || -> Result<()> {
            match limits.timeout_mode {
                Overflow::Throw => Err(limits.timeout_error(started.elapsed())),
                Overflow::Break => Ok(()),
            }
        };
        let mut batches = Vec::new();
        let stream = match deadline {
            Some(d) => match tokio::time::timeout_at(d, df.execute_stream()).await {
                Ok(s) => s,
                Err(_) => return timed_out().map(|()| batches),
            },
            None => df.execute_stream().await,
        };
        let mut stream = stream.map_err(table_error)?;
        let (mut rows, mut bytes) = (0u64, 0u64);
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, stream.next()).await {
                    Ok(n) => n,
                    Err(_) => return timed_out().map(|()| batches),
                },
                None => stream.next().await,
            };
            let Some(batch) = next else { break };
            let batch = batch.map_err(table_error)?;
            rows += batch.num_rows() as u64;
            bytes += batch.get_array_memory_size() as u64;
            batches.push(batch);
            if limits.result_full(rows, bytes)? {
                break;
            }
        }
        Ok(batches)
    }

    /// A read that hit a checksum error in a replicated table's part: the
    /// replica detaches the part and fetches a good copy.
    pub(super) fn report_broken_part(&self, e: &QueryError) {
        if !matches!(
            e.code(),
            ErrorCode::CHECKSUM_DOESNT_MATCH | ErrorCode::CORRUPTED_DATA
        ) {
            return;
        }
        let Some(repl) = &self.engine.replication else {
            return;
        };
        let msg = e.to_string();
        for r in repl.replicas() {
            let dir = format!("{}/", r.table().dir().display());
            let Some(pos) = msg.find(&dir) else { continue };
            let rest = &msg[pos + dir.len()..];
            let part = rest.split('/').next().unwrap_or_default();
            if let Ok(name) = part.parse::<qh_types::PartName>() {
                r.part_is_broken(&name);
            }
        }
    }
}

pub(super) fn table_error(e: datafusion::error::DataFusionError) -> QueryError {
    let q = QueryError::from(e);
    if let QueryError::UnknownTable(msg) = &q {
        if let Some(start) = msg.find('\'') {
            if let Some(end) = msg[start + 1..].find('\'') {
                let name = &msg[start + 1..start + 1 + end];
                let name = name.strip_prefix("qh.").unwrap_or(name);
                return QueryError::UnknownTable(format!("Table {name} does not exist"));
            }
        }
    }
    q
}

/// `SELECT x, x` names both columns `x`, as ClickHouse does (the rewrite
/// made the second unique for DataFusion).
pub(super) fn restore_duplicate_names(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    if !schema
        .fields()
        .iter()
        .any(|f| f.name().contains(crate::rewrite::DUP_MARK))
    {
        return Ok((schema, batches));
    }
    // The batches' own schema: their physical types may be narrower or
    // wider than the plan's (decimal precision) and must stay as they are.
    let base = batches.first().map(|b| b.schema()).unwrap_or(schema);
    let fields: Vec<Field> = base
        .fields()
        .iter()
        .map(|f| {
            f.as_ref()
                .clone()
                .with_name(crate::rewrite::restore_name(f.name()))
        })
        .collect();
    let renamed = Arc::new(Schema::new_with_metadata(fields, base.metadata().clone()));
    let batches = batches
        .into_iter()
        .map(|b| RecordBatch::try_new(Arc::clone(&renamed), b.columns().to_vec()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((renamed, batches))
}
