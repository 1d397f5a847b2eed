//! `ALTER TABLE … MODIFY COLUMN` (and `ALTER COLUMN c TYPE T`): a new type,
//! default, codec or position of a column.
//!
//! A type change rewrites nothing. The column records its former types, and
//! parts still holding one are read through `CAST` to the new type (see
//! `keys::conversion_chain`) until a merge writes them anew — the values
//! ClickHouse's mutation would have written. Unlike ClickHouse, whose
//! mutation fails after the ALTER was accepted and leaves the table
//! half-converted, every stored value is converted once before the change
//! is committed: a value that does not convert fails the ALTER with the
//! conversion's own error, and nothing changes.

use super::*;
use crate::keys::{conversion_chain, referenced_columns, ComputedColumn};
use crate::statement::{expr_sql, parse_expr, ColumnSpec};
use qh_storage::{ColumnDef, ColumnKind, ComputedDefault, MergeTreeTable};

/// Applies one MODIFY COLUMN to `meta`; returns whether the type changed.
pub(super) fn modify_column(
    meta: &mut TableMeta,
    spec: &ColumnSpec,
    if_exists: bool,
    after: Option<String>,
    first: bool,
) -> Result<bool> {
    let Some(pos) = meta.columns.iter().position(|c| c.name == spec.name) else {
        if if_exists {
            return Ok(false);
        }
        return Err(QueryError::other(
            ErrorCode::NOT_FOUND_COLUMN_IN_BLOCK,
            format!("Wrong column. Cannot find column `{}` to modify", spec.name),
        ));
    };
    let mut def = meta.columns.remove(pos);
    let mut retyped = false;
    if let Some(ty) = spec.ty.as_ref().filter(|t| **t != def.ty) {
        if key_columns(meta)?.contains(&def.name) {
            return Err(QueryError::other(
                ErrorCode::ALTER_OF_COLUMN_IS_FORBIDDEN,
                format!(
                    "ALTER of key column {} from type {} to type {ty} is not safe because it can change the representation of primary key",
                    def.name, def.ty
                ),
            ));
        }
        def.former_types
            .push(std::mem::replace(&mut def.ty, ty.clone()));
        retyped = true;
    }
    // ClickHouse keeps the DEFAULT when only the type is given.
    if let Some(d) = &spec.default {
        let expr = expr_sql(d);
        refuse_stored_alias_change(&def, spec.kind, Some(&expr))?;
        def.default = Some(expr);
        def.kind = spec.kind;
    }
    if let Some(codec) = &spec.codec {
        def.codec = Some(codec.validated_for(&def.ty)?);
    } else if retyped {
        // A codec declared for the old type (Gorilla on a float) may not
        // suit the new one: validate it again.
        def.codec = def
            .codec
            .as_ref()
            .map(|c| c.validated_for(&def.ty))
            .transpose()?;
    }
    let at = column_position(meta, first, after, pos)?;
    meta.columns.insert(at, def);
    Ok(retyped)
}

/// Where `FIRST` / `AFTER a` puts a column among `meta`'s (it is not among
/// them); `otherwise` without either.
pub(super) fn column_position(
    meta: &TableMeta,
    first: bool,
    after: Option<String>,
    otherwise: usize,
) -> Result<usize> {
    if first {
        return Ok(0);
    }
    let Some(a) = after else {
        return Ok(otherwise);
    };
    meta.columns
        .iter()
        .position(|c| c.name == a)
        .map(|p| p + 1)
        .ok_or_else(|| {
            QueryError::NoSuchColumn(format!(
                "Wrong column name. Cannot find column {a} to insert after"
            ))
        })
}

/// `MODIFY COLUMN c REMOVE DEFAULT | MATERIALIZED | ALIAS | CODEC | …`.
pub(super) fn remove_property(
    meta: &mut TableMeta,
    name: &str,
    property: &str,
    if_exists: bool,
) -> Result<()> {
    let Some(def) = meta.columns.iter_mut().find(|c| c.name == name) else {
        if if_exists {
            return Ok(());
        }
        return Err(QueryError::other(
            ErrorCode::NOT_FOUND_COLUMN_IN_BLOCK,
            format!("Wrong column. Cannot find column `{name}` to modify"),
        ));
    };
    let kind = match property {
        "DEFAULT" => Some(ColumnKind::Default),
        "MATERIALIZED" => Some(ColumnKind::Materialized),
        "ALIAS" => Some(ColumnKind::Alias),
        "CODEC" => {
            def.codec = None;
            None
        }
        // Neither is kept by this engine.
        _ => None,
    };
    if let Some(kind) = kind {
        if kind == ColumnKind::Alias && def.kind == kind {
            refuse_stored_alias_change(def, ColumnKind::Default, None)?;
        }
        if def.default.is_none() || def.kind != kind {
            return Err(QueryError::BadArguments(format!(
                "Column {name} doesn't have {property}, cannot remove it"
            )));
        }
        def.default = None;
        def.kind = ColumnKind::Default;
    }
    Ok(())
}

/// DROP COLUMN leaves the values in the parts that hold them (a merge
/// drops them when it rewrites the part). A column added again under the
/// same name must not read them back: the partitions of those parts are
/// merged first (OPTIMIZE … FINAL, through the log on a replicated table),
/// as ClickHouse's DROP COLUMN mutation would have rewritten them.
pub(super) async fn clear_dropped_values(t: &Table, name: &str, wait: Duration) -> Result<()> {
    let stale = |t: &Table| -> std::collections::BTreeSet<String> {
        t.data()
            .active_parts()
            .iter()
            .filter(|p| p.columns.iter().any(|c| c.name == name))
            .map(|p| p.name.partition_id.clone())
            .collect()
    };
    for partition in stale(t) {
        t.optimize(Some(partition), true, wait).await?;
    }
    let left = stale(t);
    if left.is_empty() {
        return Ok(());
    }
    Err(QueryError::NotImplemented(format!(
        "Cannot add column {name} yet: parts of partitions {} still hold the values of a dropped column of that name and could not be rewritten now (merges stopped?); run OPTIMIZE TABLE … FINAL, then add the column",
        left.into_iter().collect::<Vec<_>>().join(", ")
    )))
}

/// ALIAS columns are stored here (computed on insert), where ClickHouse
/// computes them on every read: an ALIAS that becomes another expression,
/// or a stored column that becomes an ALIAS, would read the old values.
fn refuse_stored_alias_change(def: &ColumnDef, kind: ColumnKind, expr: Option<&str>) -> Result<()> {
    let same_expr = expr.is_some() && def.default.as_deref() == expr;
    let was_alias = def.kind == ColumnKind::Alias;
    let allowed = match (was_alias, kind == ColumnKind::Alias) {
        (false, false) => true,
        (true, true) => same_expr,
        // The stored values are the alias's: still right as a DEFAULT.
        (true, false) => same_expr,
        (false, true) => false,
    };
    if allowed {
        return Ok(());
    }
    Err(QueryError::NotImplemented(format!(
        "MODIFY COLUMN {}: ALIAS columns are stored by this engine, so an ALIAS cannot take another expression, lose it, or replace a stored column (see docs/sql-differences.md)",
        def.name
    )))
}

/// Plain columns the sorting, primary, partition and engine keys read.
fn key_columns(meta: &TableMeta) -> Result<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    let exprs = meta
        .order_by
        .iter()
        .chain(meta.primary_key.iter())
        .chain(meta.partition_by.iter());
    for e in exprs {
        out.extend(referenced_columns(&parse_expr(e)?));
    }
    out.extend(meta.index_columns.iter().cloned());
    if let EngineKind::ReplacingMergeTree {
        version,
        is_deleted,
    } = &meta.engine
    {
        out.extend(version.iter().chain(is_deleted.iter()).cloned());
    }
    Ok(out)
}

/// Converts every stored value of the retyped columns as reads will, so a
/// value that does not convert fails the ALTER now. A column returning to a
/// type it had before must read its older parts in that type unchanged
/// (they are read without conversion): a value the types in between would
/// have altered refuses the ALTER.
pub(super) fn check_conversions(
    state: &SessionState,
    data: &MergeTreeTable,
    meta: &TableMeta,
    retyped: &[String],
) -> Result<()> {
    for name in retyped {
        let Some(def) = meta.column(name) else {
            continue;
        };
        for part in data.active_parts() {
            let Some(stored) = part.columns.iter().find(|c| &c.name == name) else {
                continue;
            };
            let chain = round_trip(def, &stored.ty);
            if chain.is_empty() {
                continue;
            }
            let conversion = ComputedColumn::conversion(state, name, &stored.ty, &chain)?;
            let plain = Arc::new(Schema::new(vec![stored.ty.field(name)]));
            let values = part.read_all(&plain, &Default::default())?;
            let converted = conversion.evaluate(&values)?;
            if stored.ty == def.ty && converted.to_data() != values.column(0).to_data() {
                return Err(QueryError::NotImplemented(format!(
                    "MODIFY COLUMN {name} back to {}: part {} holds values the types in between would have changed; OPTIMIZE TABLE … FINAL first, so that no part holds the old type",
                    def.ty, part.name
                )));
            }
        }
    }
    Ok(())
}

/// What a part storing the column as `stored` is cast through: the reads'
/// chain, or for a part in the column's (returned-to) type the round trip
/// through the types it had since.
fn round_trip(def: &ColumnDef, stored: &ChType) -> Vec<ChType> {
    if *stored != def.ty {
        return conversion_chain(def, stored);
    }
    match def.former_types.iter().rposition(|t| t == stored) {
        Some(i) => def.former_types[i + 1..]
            .iter()
            .chain(std::iter::once(&def.ty))
            .cloned()
            .collect(),
        None => Vec::new(),
    }
}
