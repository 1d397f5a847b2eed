//! DDL that changes a table's definition: CREATE TABLE (with AS, AS SELECT
//! and the Distributed engine's checks) and ALTER TABLE.

use super::*;
use crate::statement::CreateTable;

impl Session {
    pub(super) async fn create_table(&mut self, mut ct: Box<CreateTable>) -> Result<QueryResult> {
        let cat = Arc::clone(&self.engine.catalog);
        let temporary = match ct.temporary {
            true => match self.prepare_temporary(&mut ct)? {
                Some(name) => Some(name),
                None => return Ok(QueryResult::empty()),
            },
            false => {
                // A permanent table goes to the current database even when a
                // temporary table of the same name would shadow it.
                if ct.table.database.is_none() {
                    ct.table.database = Some(self.database.clone());
                }
                None
            }
        };
        let (db, _) = self.table_ref(&ct.table);
        if !cat.has_database(&db) {
            return Err(StorageError::UnknownDatabase(db).into());
        }
        if ct.if_not_exists && cat.table(&db, &ct.table.name).is_ok() {
            return Ok(QueryResult::empty());
        }
        let mut columns = ct.columns.clone();
        infer_column_types(&self.engine.base, &mut columns)?;
        let mut select_result = None;
        if let Some(q) = &ct.as_select {
            let (schema, batches, _) = self
                .run_query(
                    (**q).clone(),
                    Default::default(),
                    &without_result_limits(&self.settings),
                )
                .await?;
            if columns.is_empty() {
                for f in schema.fields() {
                    let base = ChType::from_arrow(f.data_type()).ok_or_else(|| {
                        QueryError::UnknownType(format!("cannot store {}", f.data_type()))
                    })?;
                    let ty = base;
                    columns.push(ColumnSpec {
                        name: f.name().clone(),
                        ty: Some(ty),
                        default: None,
                        kind: qh_storage::ColumnKind::Default,
                        codec: None,
                    });
                }
            }
            select_result = Some(batches);
        }
        let mut as_meta = None;
        if let Some(other) = &ct.as_table {
            let other = self.table(other)?.meta();
            if columns.is_empty() {
                for c in &other.columns {
                    columns.push(ColumnSpec {
                        name: c.name.clone(),
                        ty: Some(c.ty.clone()),
                        default: match &c.default {
                            Some(d) => Some(crate::statement::parse_expr(d)?),
                            None => None,
                        },
                        kind: c.kind,
                        codec: c.codec.clone(),
                    });
                }
            }
            as_meta = Some(other);
        }
        let mut meta = match as_meta {
            // `AS other` without ENGINE: other's engine and keys.
            Some(mut other) if !ct.engine_given => {
                other.database = db.clone();
                other.name = ct.table.name.clone();
                other.schema_version = 1;
                other
            }
            _ => ddl::table_meta(&ct, &db, &columns)?,
        };
        if let EngineKind::Distributed {
            cluster,
            sharding_key,
            ..
        } = &meta.engine
        {
            crate::distributed::check_definition(
                &self.engine,
                cluster,
                sharding_key.as_deref(),
                &meta,
            )?;
        }
        if let Some(params) = meta.replicated.as_mut() {
            let repl = self
                .engine
                .replication_for(&format!("Engine {}", ct.engine))?;
            params.path = repl
                .expand_macros(
                    &params.path_template,
                    &db,
                    &ct.table.name,
                    &self.macro_context,
                )?
                .trim_end_matches('/')
                .to_string();
            params.replica = repl.expand_macros(
                &params.replica_template,
                &db,
                &ct.table.name,
                &self.macro_context,
            )?;
            repl.register(&meta).await?;
        }
        if let Some(km) = crate::keeper_map::KeeperMap::of(self.engine.coordinator(), &meta) {
            km?;
        }
        let table = cat.create_table(meta, ct.if_not_exists)?;
        if let Some(km) = crate::keeper_map::KeeperMap::of(self.engine.coordinator(), &table.meta())
        {
            km?.register().await?;
        }
        if let Some(name) = temporary {
            self.add_temporary(name, ct.table.name.clone());
        }
        if let Some(repl) = &self.engine.replication {
            if repl.replica_of(&table).is_none() {
                if let Some(replica) = repl.attach(Arc::clone(&table)) {
                    // Bounded: without a coordinator the first insert
                    // says why the replica is read-only (242).
                    replica.wait_started(Duration::from_secs(5)).await;
                }
            }
        }
        if let Some(batches) = select_result {
            let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
            self.write_batches(&table, &names, batches, &self.settings.clone())
                .await?;
        }
        Ok(QueryResult::empty())
    }

    pub(super) async fn alter(
        &mut self,
        table: TableRef,
        ops: Vec<AlterOp>,
    ) -> Result<QueryResult> {
        let cat = Arc::clone(&self.engine.catalog);
        let kind = self.table(&table)?.meta();
        if let EngineKind::KeeperMap { .. } = kind.engine {
            return self.alter_keeper_map(&kind, ops).await;
        }
        let t = self.resolve(&table)?;
        let mut meta = t.meta();
        let mut retyped = Vec::new();
        for op in ops {
            match op {
                AlterOp::ModifyColumn {
                    column,
                    if_exists,
                    after,
                    first,
                } => {
                    if modify_column::modify_column(&mut meta, &column, if_exists, after, first)? {
                        retyped.push(column.name.clone());
                    }
                }
                AlterOp::RemoveColumnProperty {
                    name,
                    property,
                    if_exists,
                } => modify_column::remove_property(&mut meta, &name, &property, if_exists)?,
                AlterOp::AddColumn {
                    column,
                    if_not_exists,
                    after,
                    first,
                } => {
                    if meta.column(&column.name).is_some() {
                        if if_not_exists {
                            continue;
                        }
                        return Err(QueryError::DuplicateColumn(format!(
                            "Cannot add column {}: column with this name already exists",
                            column.name
                        )));
                    }
                    modify_column::clear_dropped_values(&t, &column.name, self.sync_timeout())
                        .await?;
                    // ClickHouse infers a type only in CREATE TABLE.
                    let Some(ty) = column.ty.clone() else {
                        return Err(QueryError::BadArguments(format!(
                            "Data type have to be specified for column `{}` to add",
                            column.name
                        )));
                    };
                    let def = qh_storage::ColumnDef {
                        name: column.name.clone(),
                        ty: ty.clone(),
                        default: column.default.as_ref().map(crate::statement::expr_sql),
                        kind: column.kind,
                        codec: column
                            .codec
                            .as_ref()
                            .map(|c| c.validated_for(&ty))
                            .transpose()?,
                        former_types: Vec::new(),
                    };
                    let end = meta.columns.len();
                    let pos = modify_column::column_position(&meta, first, after, end)?;
                    meta.columns.insert(pos, def);
                }
                AlterOp::DropPartition(e) => {
                    let id = self.partition_id(t.data(), &e)?;
                    t.drop_partition(&id, self.sync_timeout()).await?;
                    continue;
                }
                AlterOp::DropColumn { name, if_exists } => {
                    let Some(pos) = meta.columns.iter().position(|c| c.name == name) else {
                        if if_exists {
                            continue;
                        }
                        return Err(QueryError::NoSuchColumn(format!(
                            "Wrong column name. Cannot find column {name} to drop"
                        )));
                    };
                    if meta.index_columns.contains(&name) {
                        return Err(QueryError::BadArguments(format!(
                            "Trying to ALTER DROP key {name} column which is a part of key expression"
                        )));
                    }
                    meta.columns.remove(pos);
                }
                AlterOp::Update { .. } | AlterOp::Delete { .. } => {
                    return Err(QueryError::NotImplemented(format!(
                        "Mutations (ALTER UPDATE, ALTER DELETE, DELETE FROM) of {} tables are not supported yet; KeeperMap tables have them",
                        meta.engine.name()
                    )))
                }
            }
        }
        if meta == t.meta() {
            return Ok(QueryResult::empty());
        }
        meta.schema_version += 1;
        let keys = cat.keys_for(&meta)?;
        modify_column::check_conversions(&self.engine.base, t.data(), &meta, &retyped)?;
        t.alter(meta, keys, self.sync_timeout()).await?;
        Ok(QueryResult::empty())
    }
}

/// Gives each column of a new table declared by its expression alone
/// (`b DEFAULT 0`, `c MATERIALIZED b + 1`) that expression's type, as
/// ClickHouse does: the expression is planned over the typed columns and
/// the ones inferred before it.
fn infer_column_types(
    state: &datafusion::execution::SessionState,
    columns: &mut [ColumnSpec],
) -> Result<()> {
    let mut fields: Vec<_> = columns
        .iter()
        .filter_map(|c| c.ty.as_ref().map(|t| t.field(&c.name)))
        .collect();
    let names: std::collections::BTreeSet<String> =
        columns.iter().map(|c| c.name.clone()).collect();
    // In dependency order: `c DEFAULT b * 2` after `b DEFAULT a + 1`,
    // wherever each is declared.
    let mut pending: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i].ty.is_none())
        .collect();
    while !pending.is_empty() {
        let ready = |i: &usize| {
            columns[*i].default.as_ref().is_some_and(|d| {
                crate::keys::referenced_columns(d)
                    .iter()
                    .all(|r| !names.contains(r) || fields.iter().any(|f| f.name() == r))
            })
        };
        // None ready (a cycle): the first is planned anyway, and its error
        // names the column it lacks.
        let at = pending.iter().position(ready).unwrap_or(0);
        let c = &mut columns[pending.remove(at)];
        let Some(d) = &c.default else {
            return Err(QueryError::BadArguments(format!(
                "Column {} has neither a type nor a default expression",
                c.name
            )));
        };
        let schema: datafusion::arrow::datatypes::SchemaRef =
            Arc::new(datafusion::arrow::datatypes::Schema::new(fields.clone()));
        let sql = crate::statement::expr_sql(d);
        let field = crate::keys::query_type(state, &sql, &schema)?;
        // DataFusion marks nearly every computed value nullable, so
        // Nullable is not read off the plan: an expression over no Nullable
        // column and without NULL is not Nullable in ClickHouse either.
        let read = crate::keys::referenced_columns(d);
        let nullable_input = fields.iter().any(|f| {
            read.contains(f.name()) && ChType::of_field(f).is_some_and(|t| t.is_nullable())
        });
        let ty = ChType::from_arrow(field.data_type());
        // What is not yet typed as ClickHouse types it — array, map and
        // tuple literals (`[0, 1]` is Array(UInt8) there), comparisons
        // (UInt8 there), anything Nullable — must be declared: better no
        // column than one of another type.
        let settled = match &ty {
            Some(ChType::Array(_) | ChType::Map(..) | ChType::Tuple(_) | ChType::Bool) | None => {
                false
            }
            Some(_) => !nullable_input && !sql.to_ascii_lowercase().contains("null"),
        };
        let Some(ty) = ty.filter(|_| settled) else {
            return Err(QueryError::NotImplemented(format!(
                "the type of column {} cannot be taken from its default expression `{sql}` yet: declare it",
                c.name
            )));
        };
        fields.push(ty.field(&c.name));
        c.ty = Some(ty);
    }
    Ok(())
}
