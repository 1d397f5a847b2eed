//! Mutations: `ALTER TABLE t UPDATE c = e WHERE cond`, `ALTER TABLE t DELETE
//! WHERE cond` and `DELETE FROM t WHERE cond`. KeeperMap tables run them
//! (each one atomic over the rows it read, see [`crate::keeper_map`]);
//! MergeTree tables do not have mutations yet and refuse them.

use super::*;
use crate::keeper_map::KeeperMap;
use datafusion::sql::sqlparser::ast::Expr;

impl Session {
    /// The ALTER of a KeeperMap table: only UPDATE and DELETE (as in
    /// ClickHouse). The summary's `written_rows` is the rows changed, which
    /// tells a conditional UPDATE (a compare-and-set) whether it applied.
    pub(super) async fn alter_keeper_map(
        &self,
        meta: &TableMeta,
        ops: Vec<AlterOp>,
    ) -> Result<QueryResult> {
        let strict = self
            .settings
            .get_bool("keeper_map_strict_mode", false)
            .map_err(QueryError::BadArguments)?;
        let km = KeeperMap::of(self.engine.coordinator(), meta).ok_or_else(|| {
            QueryError::other(ErrorCode::LOGICAL_ERROR, "not a KeeperMap table")
        })??;
        let mut changed = 0;
        for op in ops {
            let (assignments, filter) = match op {
                AlterOp::Update {
                    assignments,
                    filter,
                } => (Some(assignments), filter),
                AlterOp::Delete { filter } => (None, filter),
                _ => {
                    return Err(QueryError::NotImplemented(
                        "Only DELETE and UPDATE mutation supported for storage KeeperMap".into(),
                    ))
                }
            };
            if let Some(a) = &assignments {
                check_assignments(meta, a)?;
            }
            let select = mutation_select(meta, assignments.as_deref(), &filter)?;
            self.check_reads(&select)?;
            let n_columns = meta.columns.len();
            let assignments = assignments.as_deref();
            changed += km
                .mutate(strict, || {
                    let select = select.clone();
                    async move {
                        let (_, batches, _) = self
                            .run_query(select, Default::default(), &self.settings)
                            .await?;
                        split_rows(meta, n_columns, assignments, batches)
                    }
                })
                .await?;
        }
        let mut r = QueryResult::empty();
        r.summary.written_rows = changed;
        Ok(r)
    }
}

/// The columns assigned exist, are stored, and are not the key.
fn check_assignments(meta: &TableMeta, assignments: &[(String, Expr)]) -> Result<()> {
    for (column, _) in assignments {
        match meta.column(column) {
            None => {
                return Err(QueryError::NoSuchColumn(format!(
                    "There is no column {column} in table {}.{}",
                    meta.database, meta.name
                )))
            }
            Some(_) if meta.primary_key.iter().any(|k| k == column) => {
                return Err(QueryError::BadArguments(format!(
                    "Primary key cannot be updated (cannot update column {column})"
                )))
            }
            Some(def) if def.kind.is_computed() => {
                return Err(QueryError::other(
                    ErrorCode::CANNOT_UPDATE_COLUMN,
                    format!("Cannot UPDATE {} column {column}", def.kind.keyword()),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `SELECT <every column>[, CAST(<new value> AS <type>) ...] FROM t WHERE
/// <filter>`: the rows a mutation changes, with their new values.
fn mutation_select(
    meta: &TableMeta,
    assignments: Option<&[(String, Expr)]>,
    filter: &Expr,
) -> Result<Query> {
    let quote = |n: &str| format!("`{}`", n.replace('`', "\\`"));
    let mut items: Vec<String> = meta.columns.iter().map(|c| quote(&c.name)).collect();
    for (column, e) in assignments.unwrap_or_default() {
        let ty = meta
            .column(column)
            .map(|c| c.ty.to_string())
            .unwrap_or_default();
        items.push(format!("CAST(({}) AS {ty})", crate::statement::expr_sql(e)));
    }
    let sql = format!(
        "SELECT {} FROM {}.{} WHERE {}",
        items.join(", "),
        quote(&meta.database),
        quote(&meta.name),
        crate::statement::expr_sql(filter)
    );
    match parse_statement(&sql)? {
        Statement::Select { query, .. } => Ok(*query),
        _ => Err(QueryError::other(
            ErrorCode::LOGICAL_ERROR,
            format!("a mutation's query did not parse as SELECT: {sql}"),
        )),
    }
}

/// The rows matched (every column) and, for UPDATE, the same rows with the
/// assigned columns replaced.
fn split_rows(
    meta: &TableMeta,
    n_columns: usize,
    assignments: Option<&[(String, Expr)]>,
    batches: Vec<RecordBatch>,
) -> Result<(RecordBatch, Option<RecordBatch>)> {
    let schema = meta.arrow_schema();
    let cast = |c: &ArrayRef, f: &Field| -> Result<ArrayRef> {
        Ok(cast_with_options(
            c,
            f.data_type(),
            &CastOptions::default(),
        )?)
    };
    let mut old = Vec::with_capacity(batches.len());
    let mut new = Vec::with_capacity(batches.len());
    for b in &batches {
        let columns = (0..n_columns)
            .map(|i| cast(b.column(i), schema.field(i)))
            .collect::<Result<Vec<_>>>()?;
        old.push(RecordBatch::try_new(Arc::clone(&schema), columns.clone())?);
        if let Some(a) = assignments {
            let mut columns = columns;
            for (j, (column, _)) in a.iter().enumerate() {
                let i = schema.index_of(column)?;
                columns[i] = cast(b.column(n_columns + j), schema.field(i))?;
            }
            new.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
        }
    }
    let old = concat_batches(&schema, &old)?;
    let new = match assignments {
        Some(_) => Some(concat_batches(&schema, &new)?),
        None => None,
    };
    Ok((old, new))
}
