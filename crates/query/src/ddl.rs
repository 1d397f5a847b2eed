//! CREATE TABLE → table definition, with ClickHouse's engine rules.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::sql::sqlparser::ast::Expr;
use qh_storage::meta::TABLE_META_VERSION;
use qh_storage::{ColumnDef, EngineKind, TableMeta};

use crate::error::{QueryError, Result};
use crate::keys::referenced_columns;
use crate::statement::{expr_sql, ColumnSpec, CreateTable};

fn ident_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.clone()),
        _ => None,
    }
}

/// Builds the stored definition of a new table in `database`.
pub fn table_meta(ct: &CreateTable, database: &str, columns: &[ColumnSpec]) -> Result<TableMeta> {
    let mut seen = BTreeSet::new();
    for c in columns {
        if !seen.insert(c.name.clone()) {
            return Err(QueryError::DuplicateColumn(format!(
                "Column {} already exists",
                c.name
            )));
        }
    }
    if columns.is_empty() {
        return Err(QueryError::BadArguments(
            "Empty list of columns passed".into(),
        ));
    }
    let mut order_by = ct.order_by.clone();
    let mut partition_by = ct.partition_by.clone();
    let mut settings: BTreeMap<String, String> = ct
        .settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Replicated engines: (path, replica) first, then the plain engine's arguments.
    let (engine_name, replicated, args) = match ct.engine.strip_prefix("Replicated") {
        Some(base) => {
            let literal = |e: Option<&Expr>, what: &str, default: &str| -> Result<String> {
                match e {
                    None => Ok(default.to_string()),
                    Some(Expr::Value(v)) => match &v.value {
                        datafusion::sql::sqlparser::ast::Value::SingleQuotedString(s) => {
                            Ok(s.clone())
                        }
                        _ => Err(QueryError::BadArguments(format!(
                            "{what} of {} must be a string literal",
                            ct.engine
                        ))),
                    },
                    Some(_) => Err(QueryError::BadArguments(format!(
                        "{what} of {} must be a string literal",
                        ct.engine
                    ))),
                }
            };
            let given = ct.engine_args.len().min(2);
            if given == 1 {
                return Err(QueryError::BadArguments(format!(
                    "Engine {} needs both the coordinator path and the replica name (or neither)",
                    ct.engine
                )));
            }
            let path = literal(
                ct.engine_args.first(),
                "the coordinator path",
                "/clickhouse/tables/{shard}/{database}/{table}",
            )?;
            let replica = literal(ct.engine_args.get(1), "the replica name", "{replica}")?;
            let params = qh_storage::ReplicationParams {
                path: String::new(),
                replica: String::new(),
                path_template: path,
                replica_template: replica,
            };
            (
                base.to_string(),
                Some(params),
                ct.engine_args[given..].to_vec(),
            )
        }
        None => (ct.engine.clone(), None, ct.engine_args.clone()),
    };
    let args = &args;
    let engine = match engine_name.as_str() {
        "MergeTree" | "ReplacingMergeTree" => {
            // Old syntax: MergeTree(date, (keys), granularity[, ver]).
            let old = args.len() >= 3 && order_by.is_none();
            let mut version = None;
            let mut is_deleted = None;
            if old {
                let date = ident_name(&args[0]).ok_or_else(|| {
                    QueryError::BadArguments("first engine argument must be a date column".into())
                })?;
                partition_by = Some(crate::statement::parse_expr(&format!("toYYYYMM({date})"))?);
                order_by = Some(match &args[1] {
                    Expr::Tuple(items) => items.clone(),
                    Expr::Nested(inner) => vec![(**inner).clone()],
                    e => vec![e.clone()],
                });
                settings.insert("index_granularity".into(), args[2].to_string());
                if engine_name == "ReplacingMergeTree" {
                    version = args.get(3).and_then(ident_name);
                }
            } else if engine_name == "ReplacingMergeTree" {
                version = args.first().and_then(ident_name);
                is_deleted = args.get(1).and_then(ident_name);
            } else if !args.is_empty() {
                return Err(QueryError::BadArguments(
                    "Engine MergeTree doesn't take arguments with the new syntax".into(),
                ));
            }
            if order_by.is_none() && ct.primary_key.is_none() {
                return Err(QueryError::BadArguments(
                    "ORDER BY or PRIMARY KEY clause is missing. Consider using extended storage definition syntax with ORDER BY or PRIMARY KEY clause. With empty ORDER BY use ORDER BY tuple()".into(),
                ));
            }
            if engine_name == "ReplacingMergeTree" {
                EngineKind::ReplacingMergeTree {
                    version,
                    is_deleted,
                }
            } else {
                EngineKind::MergeTree
            }
        }
        // Log-family and Memory tables keep insertion order, no key.
        "Memory" | "Log" | "TinyLog" | "StripeLog" if replicated.is_none() => EngineKind::Memory,
        "Distributed" if replicated.is_none() => distributed_engine(args, database)?,
        "KeeperMap" if replicated.is_none() => keeper_map_engine(ct, args)?,
        other => {
            return Err(QueryError::other(
                qh_types::ErrorCode::UNKNOWN_STORAGE,
                format!("Unknown table engine {other}"),
            ))
        }
    };
    let order_by: Vec<String> = order_by.unwrap_or_default().iter().map(expr_sql).collect();
    let primary_key: Vec<String> = match &ct.primary_key {
        Some(pk) => pk.iter().map(expr_sql).collect(),
        None => order_by.clone(),
    };
    let order_by = if order_by.is_empty() {
        primary_key.clone()
    } else {
        order_by
    };
    if !order_by.starts_with(&primary_key) {
        return Err(QueryError::BadArguments(
            "Primary key must be a prefix of the sorting key".into(),
        ));
    }
    let names: BTreeSet<String> = columns.iter().map(|c| c.name.clone()).collect();
    let mut index_columns = Vec::new();
    let mut key_exprs: Vec<String> = primary_key.clone();
    key_exprs.extend(order_by.iter().cloned());
    if let Some(p) = &partition_by {
        key_exprs.push(expr_sql(p));
    }
    for k in &key_exprs {
        let e = crate::statement::parse_expr(k)?;
        for c in referenced_columns(&e) {
            if !names.contains(&c) {
                return Err(QueryError::UnknownIdentifier(format!(
                    "Missing columns: '{c}' while processing the table key"
                )));
            }
            if !index_columns.contains(&c) {
                index_columns.push(c);
            }
        }
    }
    Ok(TableMeta {
        format_version: TABLE_META_VERSION,
        database: database.to_string(),
        name: ct.table.name.clone(),
        columns: columns
            .iter()
            .map(|c| {
                let ty = c.ty()?;
                Ok(ColumnDef {
                    name: c.name.clone(),
                    ty: ty.clone(),
                    default: c.default.as_ref().map(expr_sql),
                    kind: c.kind,
                    codec: c.codec.as_ref().map(|k| k.validated_for(ty)).transpose()?,
                    former_types: Vec::new(),
                })
            })
            .collect::<Result<_>>()?,
        engine,
        order_by,
        primary_key,
        partition_by: partition_by.as_ref().map(expr_sql),
        index_columns,
        settings,
        schema_version: 1,
        replicated,
    })
}

/// `Distributed(cluster, database, table[, sharding_key[, policy]])`: names
/// as identifiers or string literals, `currentDatabase()` for the database.
fn distributed_engine(args: &[Expr], database: &str) -> Result<EngineKind> {
    if !(3..=5).contains(&args.len()) {
        return Err(QueryError::other(
            qh_types::ErrorCode::NUMBER_OF_ARGUMENTS_DOESNT_MATCH,
            "Storage Distributed requires from 3 to 5 parameters - name of configuration section with list of remote servers, name of remote database, name of remote table, sharding key expression (optional), policy name (optional)",
        ));
    }
    let name = |e: &Expr, what: &str| -> Result<String> {
        match e {
            Expr::Identifier(i) => Ok(i.value.clone()),
            Expr::Value(v) => match &v.value {
                datafusion::sql::sqlparser::ast::Value::SingleQuotedString(s) => Ok(s.clone()),
                _ => Err(QueryError::BadArguments(format!(
                    "Distributed: {what} must be a name, not {e}"
                ))),
            },
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("currentDatabase") => {
                Ok(database.to_string())
            }
            _ => Err(QueryError::BadArguments(format!(
                "Distributed: {what} must be a name, not {e}"
            ))),
        }
    };
    Ok(EngineKind::Distributed {
        cluster: name(&args[0], "the cluster")?,
        database: name(&args[1], "the remote database")?,
        table: name(&args[2], "the remote table")?,
        sharding_key: args.get(3).map(expr_sql),
    })
}

/// `KeeperMap('/root'[, keys_limit]) PRIMARY KEY k`: the root is a path in
/// the coordinator; the primary key is one column (its value names the row).
fn keeper_map_engine(ct: &CreateTable, args: &[Expr]) -> Result<EngineKind> {
    use datafusion::sql::sqlparser::ast::Value;
    if args.is_empty() || args.len() > 2 {
        return Err(QueryError::other(
            qh_types::ErrorCode::NUMBER_OF_ARGUMENTS_DOESNT_MATCH,
            "Storage KeeperMap requires 1-2 arguments: root path, keys limit (optional)",
        ));
    }
    let root = match &args[0] {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let root = root.trim_end_matches('/').to_string();
    if root.is_empty() {
        return Err(QueryError::BadArguments(format!(
            "KeeperMap: the root path must be a non-empty string literal, not {}",
            args[0]
        )));
    }
    let keys_limit = match args.get(1) {
        None => 0,
        Some(Expr::Value(v)) => match &v.value {
            Value::Number(n, _) => n.parse::<u64>().map_err(|_| {
                QueryError::BadArguments(format!("KeeperMap: keys limit {n} is not a UInt64"))
            })?,
            _ => {
                return Err(QueryError::BadArguments(format!(
                    "KeeperMap: keys limit must be a number, not {}",
                    args[1]
                )))
            }
        },
        Some(e) => {
            return Err(QueryError::BadArguments(format!(
                "KeeperMap: keys limit must be a number, not {e}"
            )))
        }
    };
    match &ct.primary_key {
        Some(pk) if pk.len() == 1 && ident_name(&pk[0]).is_some() => {}
        _ => {
            return Err(QueryError::BadArguments(
                "KeeperMap requires one column in primary key".into(),
            ))
        }
    }
    if ct.partition_by.is_some() || ct.order_by.is_some() {
        return Err(QueryError::BadArguments(
            "Storage KeeperMap takes neither PARTITION BY nor ORDER BY, only PRIMARY KEY".into(),
        ));
    }
    Ok(EngineKind::KeeperMap { root, keys_limit })
}

/// `SHOW CREATE TABLE` text.
pub fn show_create(meta: &TableMeta) -> String {
    let cols: Vec<String> = meta
        .columns
        .iter()
        .map(|c| {
            let mut s = format!("    `{}` {}", c.name, c.ty);
            if let Some(d) = &c.default {
                s.push_str(&format!(" {} {d}", c.kind.keyword()));
            }
            if let Some(k) = &c.codec {
                s.push_str(&format!(" CODEC({k})"));
            }
            s
        })
        .collect();
    let engine = match &meta.engine {
        EngineKind::View { query, .. } => {
            return format!(
                "CREATE VIEW {}.{}\n(\n{}\n)\nAS {query}",
                meta.database,
                meta.name,
                cols.join(",\n")
            )
        }
        EngineKind::MergeTree => "MergeTree".to_string(),
        EngineKind::KeeperMap { root, keys_limit } => {
            let mut quoted = String::from("'");
            qh_types::text::escape(&mut quoted, root);
            quoted.push('\'');
            let root = quoted;
            match keys_limit {
                0 => format!("KeeperMap({root})"),
                n => format!("KeeperMap({root}, {n})"),
            }
        }
        EngineKind::Memory => "Memory".to_string(),
        EngineKind::Distributed {
            cluster,
            database,
            table,
            sharding_key,
        } => {
            let mut args = vec![cluster.clone(), database.clone(), table.clone()];
            args.extend(sharding_key.iter().cloned());
            format!("Distributed({})", args.join(", "))
        }
        EngineKind::ReplacingMergeTree {
            version,
            is_deleted,
        } => {
            let args: Vec<String> = version.iter().chain(is_deleted.iter()).cloned().collect();
            format!("ReplacingMergeTree({})", args.join(", "))
        }
    };
    let engine = match &meta.replicated {
        Some(r) => {
            let (base, args) = match engine.split_once('(') {
                Some((b, rest)) => (b.to_string(), rest.trim_end_matches(')').to_string()),
                None => (engine.clone(), String::new()),
            };
            let mut all = format!("'{}', '{}'", r.path_template, r.replica_template);
            if !args.is_empty() {
                all.push_str(", ");
                all.push_str(&args);
            }
            format!("Replicated{base}({all})")
        }
        None => engine,
    };
    let mut s = format!(
        "CREATE TABLE {}.{}\n(\n{}\n)\nENGINE = {}",
        meta.database,
        meta.name,
        cols.join(",\n"),
        engine
    );
    if let Some(p) = &meta.partition_by {
        s.push_str(&format!("\nPARTITION BY {p}"));
    }
    if let EngineKind::KeeperMap { .. } = meta.engine {
        s.push_str(&format!("\nPRIMARY KEY {}", key_text(&meta.primary_key)));
    } else if !matches!(
        meta.engine,
        EngineKind::Memory | EngineKind::Distributed { .. }
    ) {
        if meta.primary_key != meta.order_by {
            s.push_str(&format!("\nPRIMARY KEY {}", key_text(&meta.primary_key)));
        }
        s.push_str(&format!("\nORDER BY {}", key_text(&meta.order_by)));
        let mut settings = meta.settings.clone();
        settings
            .entry("index_granularity".into())
            .or_insert_with(|| "8192".into());
        let list: Vec<String> = settings.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        s.push_str(&format!("\nSETTINGS {}", list.join(", ")));
    }
    s
}

fn key_text(k: &[String]) -> String {
    match k.len() {
        0 => "tuple()".into(),
        1 => k[0].clone(),
        _ => format!("({})", k.join(", ")),
    }
}
