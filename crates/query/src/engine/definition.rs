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
                        ty,
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
                        ty: c.ty.clone(),
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
        for op in ops {
            match op {
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
                    let def = qh_storage::ColumnDef {
                        name: column.name.clone(),
                        ty: column.ty.clone(),
                        default: column.default.as_ref().map(crate::statement::expr_sql),
                        kind: column.kind,
                        codec: column
                            .codec
                            .as_ref()
                            .map(|c| c.validated_for(&column.ty))
                            .transpose()?,
                    };
                    let pos = if first {
                        0
                    } else if let Some(a) = after {
                        meta.columns
                            .iter()
                            .position(|c| c.name == a)
                            .map(|p| p + 1)
                            .ok_or_else(|| {
                                QueryError::NoSuchColumn(format!(
                                    "Wrong column name. Cannot find column {a} to insert after"
                                ))
                            })?
                    } else {
                        meta.columns.len()
                    };
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
        t.alter(meta, keys, self.sync_timeout()).await?;
        Ok(QueryResult::empty())
    }
}
