//! A client's session: its database, settings and user, and the statement
//! dispatch every SQL text goes through (parse, check grants and limits,
//! run, account). The statement kinds' own code lives beside it
//! (`select.rs`, `insert.rs`, `definition.rs`, …) as further `impl Session`
//! blocks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{ArrayRef, StringArray, UInt8Array};
use datafusion::arrow::datatypes::DataType;
use qh_storage::{MergeTreeTable, StorageError};
use qh_types::formats::FormatOptions;
use qh_types::{ErrorCode, Settings};
use tracing::{debug, info_span, Instrument};

use super::select;
use super::system::like_match;
use crate::complexity::AstLimits;
use crate::ddl;
use crate::error::{QueryError, Result};
use crate::keys::compile;
use crate::provider::QueryStats;
use crate::statement::{parse_statement, Statement, TableRef};
use crate::table::Table;

use super::{on_large_stack, result_of, Engine, Input, QueryResult};

/// Per-connection state: the current database and `SET` settings.
pub struct Session {
    pub(super) engine: Arc<Engine>,
    pub(super) settings: Settings,
    pub(super) database: String,
    /// Counters of the running statement, readable while it runs (the
    /// server turns them into progress messages).
    pub(super) progress: Arc<QueryStats>,
    /// The id the next statement runs under (empty: a fresh one).
    pub(super) next_query_id: String,
    /// Macros an `ON CLUSTER` task brings (`{cluster}`, `{shard}`).
    pub(super) macro_context: BTreeMap<String, String>,
    /// The running statement's id and text (shard stages carry them).
    pub(super) current_query: (String, String),
    /// Names this session's temporary tables' hidden names (see
    /// `temporary.rs`), numbered by `number`.
    pub(super) temporary: BTreeMap<String, String>,
    pub(super) number: u64,
    /// Who runs this session's statements (`currentUser()`).
    pub(super) user: String,
    /// Whether its statements are checked against the user's grants: a
    /// client's session is; the node's own (the DDL worker's, `local`'s)
    /// is not.
    pub(super) checked: bool,
    /// The user's profiles' settings and constraints (`user_limits.rs`).
    pub(super) profile: qh_access::ResolvedSettings,
    /// The settings the user's sessions start with: the node's defaults
    /// and its profiles' values; a statement's change is checked against them.
    pub(super) baseline: Settings,
    /// Where the running request came from (quotas keyed by IP address).
    pub(super) peer: Option<std::net::IpAddr>,
    /// The user the running statement was charged to, for what it used
    /// once it ends (`user_limits.rs`).
    pub(super) charged: Option<qh_access::UserDef>,
}

impl Session {
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn set_database(&mut self, db: &str) {
        self.database = db.to_string();
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Live counters of the statement being executed.
    pub fn progress(&self) -> Arc<QueryStats> {
        Arc::clone(&self.progress)
    }

    /// Executes one statement (no trailing `;`). `input` feeds
    /// `INSERT ... FORMAT X` without inline data.
    ///
    /// The statement is listed in `system.processes` while it runs and stops
    /// with QUERY_WAS_CANCELLED when `KILL QUERY` names it (or the caller
    /// drops the future, say because the client went away).
    pub async fn execute(&mut self, sql: &str, input: &mut Input) -> Result<QueryResult> {
        let started = Instant::now();
        self.progress.reset();
        let id = std::mem::take(&mut self.next_query_id);
        let mut running = self
            .engine
            .processes
            // A password in CREATE/ALTER USER never shows in system.processes.
            .register(
                &id,
                &crate::statement::mask_secrets(sql),
                &self.user,
                Arc::clone(&self.progress),
            )?;
        let query_id = running.query_id().to_string();
        let outcome = tokio::select! {
            r = self.execute_statement(sql, input, &query_id) => r,
            _ = running.cancelled() => Err(QueryError::other(
                ErrorCode::QUERY_WAS_CANCELLED,
                "Query was cancelled",
            )),
        };
        drop(running);
        self.charge_finish(&outcome, started);
        let mut res = outcome?;
        res.summary.elapsed = started.elapsed();
        res.summary.query_id = query_id;
        debug!(
            elapsed_ms = res.summary.elapsed.as_millis() as u64,
            rows = res.num_rows(),
            "statement done"
        );
        Ok(res)
    }

    /// Macros for the statements of this session beyond the node's own: the
    /// DDL worker sets `{cluster}` and the node's `{shard}` in it.
    pub fn set_macro_context(&mut self, macros: BTreeMap<String, String>) {
        self.macro_context = macros;
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// Runs the next statement under this id (clickhouse-client's
    /// `--query_id`); the id shows in `system.processes` and `KILL QUERY`.
    pub fn set_query_id(&mut self, query_id: &str) {
        self.next_query_id = query_id.to_string();
    }

    pub(super) async fn execute_statement(
        &mut self,
        sql: &str,
        input: &mut Input,
        query_id: &str,
    ) -> Result<QueryResult> {
        self.current_query = (query_id.to_string(), sql.to_string());
        if let Some((cluster, local_sql)) = crate::statement::split_on_cluster(sql) {
            crate::limits::check_readonly(&self.settings, true, false)?;
            // Every host runs it as the node's own session: check here.
            let (stmt, settings) = self.parse_checked(&local_sql)?;
            self.check_privileges(&stmt)?;
            self.check_setting_changes(&settings)?;
            self.charge_start(&stmt, &settings)?;
            let span = info_span!("query", kind = "on_cluster", cluster = %cluster, query_id);
            return self
                .execute_on_cluster(&cluster, local_sql)
                .instrument(span)
                .await;
        }
        let (stmt, settings) = self.parse_checked(sql)?;
        self.check_privileges(&stmt)?;
        settings.check()?;
        self.check_setting_changes(&settings)?;
        self.charge_start(&stmt, &settings)?;
        let format_options =
            FormatOptions::from_settings(&settings).map_err(QueryError::BadArguments)?;
        let changes_settings = match &stmt {
            Statement::Set(_) => true,
            Statement::Select { settings, .. } => settings.iter().next().is_some(),
            Statement::Insert(ins) => ins.settings.iter().next().is_some(),
            _ => false,
        };
        let reads_only = matches!(
            stmt,
            Statement::Select { .. }
                | Statement::Explain(_)
                | Statement::ShowTables { .. }
                | Statement::ShowDatabases { .. }
                | Statement::Describe { .. }
                | Statement::ShowCreateTable { .. }
                | Statement::Exists { .. }
                | Statement::Use(_)
                | Statement::Set(_)
                | Statement::Access(
                    qh_access::AccessStatement::ShowUsers
                        | qh_access::AccessStatement::ShowCreateUser { .. }
                        | qh_access::AccessStatement::ShowRoles
                        | qh_access::AccessStatement::ShowCreateRole { .. }
                        | qh_access::AccessStatement::ShowGrants { .. }
                        | qh_access::AccessStatement::ShowProfiles
                        | qh_access::AccessStatement::ShowCreateProfile { .. }
                        | qh_access::AccessStatement::ShowQuotas
                        | qh_access::AccessStatement::ShowCreateQuota { .. }
                        | qh_access::AccessStatement::ShowQuota
                )
        );
        crate::limits::check_readonly(&self.settings, !reads_only, changes_settings)?;
        let span = info_span!("query", kind = stmt_kind(&stmt), query_id);
        if let Statement::KillQuery {
            predicate,
            mode,
            format,
        } = stmt
        {
            return self
                .kill_query(*predicate, mode, format, query_id)
                .instrument(span)
                .await;
        }
        let mut res = self.dispatch(stmt, input).instrument(span).await?;
        res.format_options = format_options;
        Ok(res)
    }

    /// Parses one statement and applies ClickHouse's AST limits
    /// (`max_ast_depth`, `max_ast_elements`) from the session's and the
    /// statement's settings, which it returns merged. Runs on a large stack:
    /// the parsed tree of a long operator chain is as deep as the chain
    /// until the check cuts it.
    pub(super) fn parse_checked(&self, sql: &str) -> Result<(Statement, Settings)> {
        on_large_stack(|| {
            let mut stmt = parse_statement(sql)?;
            let settings = match &stmt {
                Statement::Select { settings, .. } => self.settings.merged_with(settings),
                Statement::Insert(ins) => self.settings.merged_with(&ins.settings),
                Statement::Set(s) => self.settings.merged_with(s),
                _ => self.settings.clone(),
            };
            crate::complexity::check_statement(&mut stmt, AstLimits::parsed(&settings)?)?;
            Ok((stmt, settings))
        })
    }

    /// The database and table `t` names: this session's temporary table
    /// for an unqualified name it has, else in the current database.
    pub(super) fn table_ref(&self, t: &TableRef) -> (String, String) {
        if t.database.is_none() {
            if let Some(hidden) = self.temporary_table(&t.name) {
                return (
                    qh_storage::TEMPORARY_DATABASE.to_string(),
                    hidden.to_string(),
                );
            }
        }
        (
            t.database.clone().unwrap_or_else(|| self.database.clone()),
            t.name.clone(),
        )
    }

    pub(super) fn table(&self, t: &TableRef) -> Result<Arc<MergeTreeTable>> {
        let (db, name) = self.table_ref(t);
        if db == "system" {
            return Err(QueryError::other(
                ErrorCode::NOT_IMPLEMENTED,
                format!("Table system.{name} is read-only"),
            ));
        }
        Ok(self.engine.catalog.table(&db, &name)?)
    }

    /// The table `t` names, local or replicated, for a statement that
    /// reads or changes its data as a whole (not a view: it has none).
    pub(super) fn resolve(&self, t: &TableRef) -> Result<Table> {
        let table = self.table(t)?;
        refuse_view(&table.meta())?;
        refuse_keeper_map(&table.meta())?;
        Ok(self.engine.table_of(table))
    }

    pub(super) async fn dispatch(
        &mut self,
        stmt: Statement,
        input: &mut Input,
    ) -> Result<QueryResult> {
        let cat = Arc::clone(&self.engine.catalog);
        match stmt {
            Statement::Explain(select) => {
                let Statement::Select {
                    query,
                    final_tables,
                    format,
                    settings,
                    ..
                } = *select
                else {
                    return Err(QueryError::other(
                        ErrorCode::NOT_IMPLEMENTED,
                        "EXPLAIN is supported for SELECT",
                    ));
                };
                let settings = self.settings.merged_with(&settings);
                let (schema, batches, summary) = self
                    .plan_and_run(*query, final_tables, &settings, select::Run::Explain)
                    .await?;
                Ok(QueryResult {
                    schema,
                    batches,
                    totals: None,
                    format,
                    format_options: FormatOptions::default(),
                    summary,
                })
            }
            Statement::Select {
                query,
                final_tables,
                totals,
                format,
                settings,
            } => {
                let settings = self.settings.merged_with(&settings);
                let totals_query = match totals {
                    true => Some(crate::totals::totals_query(&query)?),
                    false => None,
                };
                let (schema, batches, summary) = self
                    .run_query(*query, final_tables.clone(), &settings)
                    .await?;
                let totals = match totals_query {
                    Some(q) => Some(self.totals_row(q, final_tables, &settings, &schema).await?),
                    None => None,
                };
                Ok(QueryResult {
                    schema,
                    batches,
                    totals,
                    format,
                    format_options: FormatOptions::default(),
                    summary,
                })
            }
            Statement::Insert(ins) => {
                let settings = self.settings.merged_with(&ins.settings);
                let written = self.insert(ins, input, &settings).await?;
                let mut r = QueryResult::empty();
                r.summary.written_rows = written;
                Ok(r)
            }
            Statement::CreateDatabase {
                name,
                if_not_exists,
            } => {
                cat.create_database(&name, if_not_exists)?;
                Ok(QueryResult::empty())
            }
            Statement::DropDatabase { name, if_exists } => {
                cat.drop_database(&name, if_exists)?;
                if self.database == name {
                    self.database = "default".into();
                }
                Ok(QueryResult::empty())
            }
            Statement::CreateTable(ct) => self.create_table(ct).await,
            Statement::CreateView(cv) => self.create_view(cv).await,
            Statement::DropTable { table, if_exists } => {
                let (db, name) = self.table_ref(&table);
                if let (Ok(t), Some(repl)) = (cat.table(&db, &name), &self.engine.replication) {
                    repl.drop_replica(&t).await?;
                }
                if let Ok(t) = cat.table(&db, &name) {
                    let meta = t.meta();
                    if let Some(km) =
                        crate::keeper_map::KeeperMap::of(self.engine.coordinator(), &meta)
                    {
                        km?.unregister().await?;
                    }
                }
                cat.drop_table(&db, &name, if_exists)?;
                if db == qh_storage::TEMPORARY_DATABASE {
                    self.forget_temporary(&name);
                }
                Ok(QueryResult::empty())
            }
            Statement::Truncate { table, if_exists } => {
                if let Ok(t) = self.table(&table) {
                    let meta = t.meta();
                    if let Some(km) =
                        crate::keeper_map::KeeperMap::of(self.engine.coordinator(), &meta)
                    {
                        km?.truncate().await?;
                        return Ok(QueryResult::empty());
                    }
                }
                match self.resolve(&table) {
                    Ok(t) => t.truncate(self.sync_timeout()).await?,
                    Err(_) if if_exists => {}
                    Err(e) => return Err(e),
                }
                Ok(QueryResult::empty())
            }
            Statement::Alter { table, ops } => self.alter(table, ops).await,
            Statement::Optimize {
                table,
                partition,
                final_,
            } => {
                let t = self.resolve(&table)?;
                let partition_id = match partition {
                    None => None,
                    Some(e) => Some(self.partition_id(t.data(), &e)?),
                };
                t.optimize(partition_id, final_, self.sync_timeout())
                    .await?;
                Ok(QueryResult::empty())
            }
            Statement::Set(s) => {
                self.settings = self.settings.merged_with(&s);
                Ok(QueryResult::empty())
            }
            Statement::Use(db) => {
                if !cat.has_database(&db) {
                    return Err(StorageError::UnknownDatabase(db).into());
                }
                self.database = db;
                Ok(QueryResult::empty())
            }
            Statement::ShowDatabases { format } => {
                let mut dbs = cat.databases();
                dbs.push("system".into());
                dbs.sort();
                result_of(
                    vec![("name", DataType::Utf8)],
                    vec![Arc::new(StringArray::from(dbs))],
                    format,
                )
            }
            Statement::ShowTables {
                database,
                like,
                format,
            } => {
                let db = database.unwrap_or_else(|| self.database.clone());
                let mut names: Vec<String> = if db == "system" {
                    crate::system::TABLES
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                } else {
                    cat.tables(&db)?.iter().map(|t| t.meta().name).collect()
                };
                if let Some(p) = like {
                    names.retain(|n| like_match(&p, n));
                }
                names.sort();
                result_of(
                    vec![("name", DataType::Utf8)],
                    vec![Arc::new(StringArray::from(names))],
                    format,
                )
            }
            Statement::Describe { table, format } => {
                let meta = self.table(&table)?.meta();
                let n = meta.columns.len();
                let col = |f: &dyn Fn(&qh_storage::ColumnDef) -> String| -> ArrayRef {
                    Arc::new(StringArray::from(
                        meta.columns.iter().map(f).collect::<Vec<_>>(),
                    ))
                };
                let empty = || -> ArrayRef { Arc::new(StringArray::from(vec![String::new(); n])) };
                result_of(
                    vec![
                        ("name", DataType::Utf8),
                        ("type", DataType::Utf8),
                        ("default_type", DataType::Utf8),
                        ("default_expression", DataType::Utf8),
                        ("comment", DataType::Utf8),
                        ("codec_expression", DataType::Utf8),
                        ("ttl_expression", DataType::Utf8),
                    ],
                    vec![
                        col(&|c| c.name.clone()),
                        col(&|c| c.ty.pretty_name()),
                        col(&|c| {
                            if c.default.is_some() {
                                c.kind.keyword().into()
                            } else {
                                String::new()
                            }
                        }),
                        col(&|c| c.default.clone().unwrap_or_default()),
                        empty(),
                        empty(),
                        empty(),
                    ],
                    format,
                )
            }
            Statement::ShowCreateTable { table, format } => {
                let meta = self.table(&table)?.meta();
                result_of(
                    vec![("statement", DataType::Utf8)],
                    vec![Arc::new(StringArray::from(vec![ddl::show_create(&meta)]))],
                    format,
                )
            }
            Statement::Exists {
                table,
                format,
                database,
            } => {
                let exists = if database {
                    cat.databases().contains(&table.name)
                } else {
                    self.table(&table).is_ok()
                } as u8;
                result_of(
                    vec![("result", DataType::UInt8)],
                    vec![Arc::new(UInt8Array::from(vec![exists]))],
                    format,
                )
            }
            Statement::Check { table, format } => {
                let t = self.resolve(&table)?;
                let parts = t.data().active_parts();
                let broken = tokio::task::spawn_blocking(move || {
                    parts
                        .iter()
                        .filter_map(|p| p.verify().err().map(|e| (p.name.clone(), e)))
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(|e| QueryError::other(ErrorCode::LOGICAL_ERROR, e.to_string()))?;
                for (name, e) in &broken {
                    tracing::warn!(part = %name, error = %e, "CHECK TABLE: part is broken");
                    t.part_is_broken(name);
                }
                result_of(
                    vec![("result", DataType::UInt8)],
                    vec![Arc::new(UInt8Array::from(vec![broken.is_empty() as u8]))],
                    format,
                )
            }
            Statement::Access(stmt) => self.access_statement(stmt).await,
            // Handled before dispatch (it needs the statement's own id).
            Statement::KillQuery { .. } => Err(QueryError::other(
                ErrorCode::LOGICAL_ERROR,
                "KILL QUERY reached the statement dispatcher",
            )),
            Statement::System(cmd) => self.system(cmd).await,
        }
    }

    pub(super) fn partition_id(
        &self,
        t: &MergeTreeTable,
        e: &datafusion::sql::sqlparser::ast::Expr,
    ) -> Result<String> {
        use datafusion::sql::sqlparser::ast::Expr as E;
        if let E::Function(f) = e {
            if f.name.to_string() == "__partition_id" {
                let arg = f.args.to_string();
                return Ok(arg
                    .trim_matches(|c| c == '(' || c == ')' || c == '\'')
                    .to_string());
            }
        }
        let meta = t.meta();
        let Some(pexpr) = &meta.partition_by else {
            return Ok("all".into());
        };
        // Evaluate the literal as the partition key's type.
        let schema = meta.arrow_schema();
        let key = compile(&self.engine.base, pexpr, &schema)?;
        let dt = key.data_type(&schema)?;
        let v = crate::keys::constant_value(&self.engine.base, &e.to_string(), &dt)?;
        Ok(qh_storage::keys::partition_info(&v).id)
    }

    /// How long replicated DDL waits for this replica (`receive_timeout`, s).
    pub(super) fn sync_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.uint("receive_timeout").unwrap_or(300))
    }
}

/// A KeeperMap table's rows are not parts: OPTIMIZE, CHECK, DROP PARTITION
/// and the like are refused (INSERT, SELECT, TRUNCATE and mutations have
/// their own paths).
fn refuse_keeper_map(meta: &qh_storage::TableMeta) -> Result<()> {
    if matches!(meta.engine, qh_storage::EngineKind::KeeperMap { .. }) {
        return Err(QueryError::other(
            ErrorCode::NOT_IMPLEMENTED,
            format!(
                "Table {}.{} is a KeeperMap table (its rows are in the coordinator): this statement is not supported for it",
                meta.database, meta.name
            ),
        ));
    }
    Ok(())
}

/// A view holds no data: INSERT, TRUNCATE, ALTER, OPTIMIZE and the like
/// are refused as ClickHouse's StorageView refuses them.
pub(super) fn refuse_view(meta: &qh_storage::TableMeta) -> Result<()> {
    if matches!(meta.engine, qh_storage::EngineKind::View { .. }) {
        return Err(QueryError::other(
            ErrorCode::NOT_IMPLEMENTED,
            format!(
                "Table {}.{} is a view (storage View holds no data): this statement is not supported for it",
                meta.database, meta.name
            ),
        ));
    }
    Ok(())
}

pub(super) fn stmt_kind(s: &Statement) -> &'static str {
    match s {
        Statement::Select { .. } | Statement::Explain(_) => "select",
        Statement::Insert(_) => "insert",
        Statement::CreateTable(_) | Statement::CreateView(_) | Statement::CreateDatabase { .. } => {
            "create"
        }
        Statement::DropTable { .. } | Statement::DropDatabase { .. } => "drop",
        Statement::Alter { .. } => "alter",
        Statement::Optimize { .. } => "optimize",
        _ => "other",
    }
}
