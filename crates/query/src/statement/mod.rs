//! ClickHouse statements: splitting a script, routing each statement, and
//! parsing what sqlparser's ClickHouse dialect does not (CREATE TABLE with
//! ENGINE clauses, INSERT ... FORMAT with inline data, OPTIMIZE, SYSTEM,
//! SELECT ... FINAL). Expressions, types and SELECT bodies are parsed by
//! sqlparser.

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{Expr, FormatClause, Parens, Query, SetExpr, Value};
use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};
use qh_types::{ChType, Settings};

use crate::error::{syntax_error, QueryError, Result};

mod access;
mod aliases;
mod alter;
mod create;
mod join_strictness;
mod literals;
mod on_cluster;
mod params;
mod parser;
mod profiles;
mod quotas;
mod tokens;

pub use access::{is_access_statement, mask_secrets};
pub use literals::expr_sql;
pub use on_cluster::split_on_cluster;
pub use qh_sql_lex::split_statements;

pub use aliases::{INLINE_ALIAS, WITH_ALIAS_PREFIX};
pub use params::bind_parameters;

use aliases::*;
use parser::*;
use tokens::*;
pub use tokens::{LIMIT_BY_MARKER, WITH_TIES_MARKER};

/// `[db.]name`
#[derive(Debug, Clone, PartialEq)]
pub struct TableRef {
    pub database: Option<String>,
    pub name: String,
}

impl TableRef {
    /// `db.t` or `t`, as one word.
    fn from_word(word: &str) -> TableRef {
        match word.split_once('.') {
            Some((db, t)) => TableRef {
                database: Some(db.to_string()),
                name: t.to_string(),
            },
            None => TableRef {
                database: None,
                name: word.to_string(),
            },
        }
    }
}

/// `SYSTEM ...`, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemCommand {
    /// `FLUSH LOGS`, `DROP ... CACHE`: nothing to do here.
    Nothing,
    /// `STOP|START MERGES [t]`.
    Merges { stop: bool, table: Option<TableRef> },
    /// `ADD NODE id 'host:port'`: a coordinator voter.
    AddNode { id: u64, addr: String },
    /// `REMOVE NODE id`.
    RemoveNode { id: u64 },
    /// `SYNC REPLICA t`.
    SyncReplica(TableRef),
    /// `RESTART REPLICA t`.
    RestartReplica(TableRef),
    /// `STOP|START FETCHES [t]`.
    Fetches { stop: bool, table: Option<TableRef> },
    /// `STOP|START REPLICATION QUEUES [t]`.
    ReplicationQueues { stop: bool, table: Option<TableRef> },
}

impl SystemCommand {
    fn parse(words: &[String]) -> Result<SystemCommand> {
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
        let table = |at: usize| words.get(at).map(|w| TableRef::from_word(w));
        let only = |n: usize, cmd: SystemCommand| {
            if words.len() <= n {
                Ok(cmd)
            } else {
                Err(unsupported(words))
            }
        };
        let membership_usage = || {
            QueryError::BadArguments(
                "expected SYSTEM ADD NODE <id> '<host:interserver-port>' or SYSTEM REMOVE NODE <id>"
                    .into(),
            )
        };
        let node_id = || {
            words
                .get(2)
                .and_then(|w| w.parse::<u64>().ok())
                .filter(|id| *id > 0)
                .ok_or_else(membership_usage)
        };
        match upper.as_slice() {
            ["FLUSH", "LOGS", ..] | ["DROP", ..] => Ok(SystemCommand::Nothing),
            [verb @ ("STOP" | "START"), "MERGES", ..] => only(
                3,
                SystemCommand::Merges {
                    stop: *verb == "STOP",
                    table: table(2),
                },
            ),
            ["ADD", "NODE", ..] => {
                let id = node_id()?;
                let addr = words
                    .get(3)
                    .map(|a| a.trim_matches('\'').to_string())
                    .filter(|a| a.contains(':'))
                    .ok_or_else(membership_usage)?;
                Ok(SystemCommand::AddNode { id, addr })
            }
            ["REMOVE", "NODE", ..] => Ok(SystemCommand::RemoveNode { id: node_id()? }),
            ["SYNC" | "RESTART", "REPLICA", ..] => {
                let t = table(2).ok_or_else(|| {
                    QueryError::BadArguments(format!(
                        "SYSTEM {} needs a table name",
                        words.join(" ")
                    ))
                })?;
                Ok(if upper[0] == "SYNC" {
                    SystemCommand::SyncReplica(t)
                } else {
                    SystemCommand::RestartReplica(t)
                })
            }
            [verb @ ("STOP" | "START"), "FETCHES", ..] => Ok(SystemCommand::Fetches {
                stop: *verb == "STOP",
                table: table(2),
            }),
            [verb @ ("STOP" | "START"), "REPLICATION", "QUEUES", ..] => {
                Ok(SystemCommand::ReplicationQueues {
                    stop: *verb == "STOP",
                    table: table(3),
                })
            }
            _ => Err(unsupported(words)),
        }
    }
}

fn unsupported(words: &[String]) -> QueryError {
    QueryError::NotImplemented(format!("SYSTEM {} is not supported yet", words.join(" ")))
}

#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub name: String,
    /// None when the definition gives only a DEFAULT / MATERIALIZED /
    /// ALIAS expression (`b DEFAULT 0`): the column takes the expression's
    /// type, which the engine works out before anything uses it.
    pub ty: Option<ChType>,
    pub default: Option<Expr>,
    /// DEFAULT, MATERIALIZED or ALIAS (what `default` is).
    pub kind: qh_storage::ColumnKind,
    /// `CODEC(...)`, parsed but not yet checked against the type.
    pub codec: Option<qh_storage::codec::CodecChain>,
}

impl ColumnSpec {
    /// The column's type, once known (the engine infers a missing one
    /// before using the definition).
    pub fn ty(&self) -> Result<&ChType> {
        self.ty.as_ref().ok_or_else(|| {
            QueryError::other(
                qh_types::ErrorCode::LOGICAL_ERROR,
                format!("the type of column {} was not inferred", self.name),
            )
        })
    }
}

#[derive(Debug, Clone)]
pub struct CreateTable {
    pub table: TableRef,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnSpec>,
    pub engine: String,
    pub engine_args: Vec<Expr>,
    pub order_by: Option<Vec<Expr>>,
    pub primary_key: Option<Vec<Expr>>,
    pub partition_by: Option<Expr>,
    pub settings: Settings,
    pub as_select: Option<Box<Query>>,
    /// `CREATE TABLE t AS other`: columns (and, without ENGINE, the engine)
    /// of `other`.
    pub as_table: Option<TableRef>,
    /// Whether ENGINE was written (`AS other` copies it when not).
    pub engine_given: bool,
    /// `CREATE TEMPORARY TABLE`: the session's own table.
    pub temporary: bool,
}

/// `CREATE [OR REPLACE] VIEW [IF NOT EXISTS] [db.]v AS SELECT ...`.
#[derive(Debug, Clone)]
pub struct CreateView {
    pub view: TableRef,
    pub if_not_exists: bool,
    pub or_replace: bool,
    /// The SELECT as written (what the view keeps and reads).
    pub query_sql: String,
    /// The same, parsed (privileges and AST limits look at it).
    pub query: Box<Query>,
}

#[derive(Debug, Clone)]
pub enum InsertSource {
    Values(Vec<Vec<Expr>>),
    /// `FORMAT name` with the data after it in the query, or on stdin/stream.
    Format {
        name: String,
        inline: Option<String>,
    },
    Select(Box<Query>),
}

#[derive(Debug, Clone)]
pub struct Insert {
    pub table: TableRef,
    pub columns: Option<Vec<String>>,
    pub source: InsertSource,
    pub settings: Settings,
}

#[derive(Debug, Clone)]
pub enum AlterOp {
    AddColumn {
        column: Box<ColumnSpec>,
        if_not_exists: bool,
        after: Option<String>,
        first: bool,
    },
    DropColumn {
        name: String,
        if_exists: bool,
    },
    /// `MODIFY COLUMN c [T] [DEFAULT e] …` (and `ALTER COLUMN c TYPE T`):
    /// what the spec leaves out stays as it was.
    ModifyColumn {
        column: Box<ColumnSpec>,
        if_exists: bool,
        after: Option<String>,
        first: bool,
    },
    /// `MODIFY COLUMN c REMOVE DEFAULT | MATERIALIZED | ALIAS | CODEC | …`.
    RemoveColumnProperty {
        name: String,
        property: String,
        if_exists: bool,
    },
    DropPartition(Box<Expr>),
    /// `UPDATE c = e [, ...] WHERE cond`: a mutation (KeeperMap tables;
    /// MergeTree tables refuse it).
    Update {
        assignments: Vec<(String, Expr)>,
        filter: Box<Expr>,
    },
    /// `DELETE WHERE cond`, and `DELETE FROM t WHERE cond`.
    Delete {
        filter: Box<Expr>,
    },
}

#[derive(Debug, Clone)]
pub enum Statement {
    /// `EXPLAIN [PLAN | PIPELINE] <select>`: the optimized physical plan
    /// (the inner statement is always a `Select`).
    Explain(Box<Statement>),
    Select {
        query: Box<Query>,
        /// Tables named with FINAL.
        final_tables: HashSet<String>,
        /// `WITH TOTALS`: the answer carries a totals row besides its rows.
        totals: bool,
        format: Option<String>,
        settings: Settings,
    },
    Insert(Insert),
    CreateTable(Box<CreateTable>),
    CreateView(Box<CreateView>),
    CreateDatabase {
        name: String,
        if_not_exists: bool,
    },
    DropTable {
        table: TableRef,
        if_exists: bool,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
    },
    Truncate {
        table: TableRef,
        if_exists: bool,
    },
    Alter {
        table: TableRef,
        ops: Vec<AlterOp>,
    },
    Optimize {
        table: TableRef,
        partition: Option<Box<Expr>>,
        final_: bool,
    },
    Set(Settings),
    Use(String),
    ShowTables {
        database: Option<String>,
        like: Option<String>,
        format: Option<String>,
    },
    ShowDatabases {
        format: Option<String>,
    },
    Describe {
        table: TableRef,
        format: Option<String>,
    },
    ShowCreateTable {
        table: TableRef,
        format: Option<String>,
    },
    Exists {
        table: TableRef,
        format: Option<String>,
        /// `EXISTS DATABASE name`: `table.name` is the database.
        database: bool,
    },
    /// `SYSTEM ...`.
    System(SystemCommand),
    /// `KILL QUERY WHERE <predicate over system.processes> [SYNC|ASYNC|TEST]`.
    KillQuery {
        predicate: Box<Expr>,
        mode: KillMode,
        format: Option<String>,
    },
    /// `CHECK TABLE t`: verifies every part's checksums.
    Check {
        table: TableRef,
        format: Option<String>,
    },
    /// Users (`CREATE/ALTER/DROP USER`, `SHOW USERS`, `SHOW CREATE USER`).
    Access(qh_access::AccessStatement),
}

/// How `KILL QUERY` waits: ASYNC (the default) asks and returns, SYNC waits
/// until the statements stopped, TEST only lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMode {
    Async,
    Sync,
    Test,
}

/// The rows of `INSERT ... VALUES` as a query DataFusion plans
/// (`VALUES (..), (..)`), built from the parsed rows rather than printed and
/// parsed again.
pub fn values_query(rows: Vec<Vec<Expr>>) -> Result<Box<Query>> {
    let template = "VALUES (0)";
    let mut query = Parser::new(&DIALECT)
        .try_with_sql(template)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| syntax_error(template, &e))?;
    let SetExpr::Values(values) = query.body.as_mut() else {
        return Err(QueryError::other(
            qh_types::ErrorCode::LOGICAL_ERROR,
            "VALUES did not parse as a VALUES query",
        ));
    };
    values.rows = rows.into_iter().map(Parens::with_empty_span).collect();
    Ok(query)
}

/// Parses one ClickHouse expression (a key, a default, a sharding key).
pub fn parse_expr(sql: &str) -> Result<Expr> {
    let tokens = literals::tokenize(sql)
        .map_err(|e| syntax_error(sql, &ParserError::TokenizerError(e.to_string())))?;
    Parser::new(&parser::DIALECT)
        .with_tokens_with_locations(tokens)
        .parse_expr()
        .map_err(|e| syntax_error(sql, &e))
}

/// Parses one statement (no trailing `;`).
pub fn parse_statement(sql: &str) -> Result<Statement> {
    let first = sql
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_ascii_uppercase();
    if first == "INSERT" {
        if let Some(f) = qh_sql_lex::insert_format(sql) {
            let mut p = StmtParser::new(f.head)?;
            return p.insert_head(Some(InsertSource::Format {
                name: f.name.to_string(),
                inline: f.inline.map(str::to_string),
            }));
        }
    }
    if first == "EXPLAIN" {
        return explain(sql);
    }
    let mut p = StmtParser::new(sql)?;
    let stmt = p.statement(&first)?;
    p.expect_end()?;
    Ok(stmt)
}

/// `EXPLAIN [PLAN | PIPELINE] SELECT ...`; the other kinds ClickHouse has
/// (AST, SYNTAX, ESTIMATE, QUERY TREE) are refused.
fn explain(sql: &str) -> Result<Statement> {
    let start = sql.trim_start();
    let mut rest = start.get(7..).unwrap_or("").trim_start();
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    match word.as_str() {
        "PLAN" | "PIPELINE" => rest = rest[word.len()..].trim_start(),
        "AST" | "SYNTAX" | "ESTIMATE" | "QUERY" | "TABLE" | "CURRENT" => {
            return Err(QueryError::other(
                qh_types::ErrorCode::NOT_IMPLEMENTED,
                format!("EXPLAIN {word} is not supported; EXPLAIN [PLAN] SELECT ... shows the physical plan"),
            ))
        }
        _ => {}
    }
    match parse_statement(rest)? {
        select @ Statement::Select { .. } => Ok(Statement::Explain(Box::new(select))),
        _ => Err(QueryError::other(
            qh_types::ErrorCode::NOT_IMPLEMENTED,
            "EXPLAIN is supported for SELECT",
        )),
    }
}

/// A setting's value as text: strings unquoted, numbers and booleans as typed.
pub fn expr_to_setting_value(e: &Expr) -> String {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            Value::Boolean(b) => (if *b { "1" } else { "0" }).to_string(),
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// Parses a type name as sqlparser prints it back.
pub fn parse_ch_type(s: &str) -> Result<ChType> {
    s.parse::<ChType>()
        .map_err(|e| QueryError::UnknownType(format!("Unknown data type family: {}", e.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_create_table() {
        let st = parse_statement(
            "CREATE TABLE IF NOT EXISTS db.hits (ts DateTime, user_id UInt64, event LowCardinality(String), v Nullable(Float64) DEFAULT 1, d Decimal(10, 2), t DateTime64(3))
             ENGINE = ReplacingMergeTree(ts) PARTITION BY toYYYYMM(ts) ORDER BY (user_id, ts) SETTINGS index_granularity = 1024",
        )
        .unwrap();
        let Statement::CreateTable(ct) = st else {
            panic!()
        };
        assert!(ct.if_not_exists);
        assert_eq!(ct.table.database.as_deref(), Some("db"));
        assert_eq!(ct.columns.len(), 6);
        assert_eq!(
            ct.columns[2].ty().unwrap().to_string(),
            "LowCardinality(String)"
        );
        assert_eq!(ct.columns[3].ty().unwrap().to_string(), "Nullable(Float64)");
        assert_eq!(ct.columns[4].ty().unwrap().to_string(), "Decimal(10, 2)");
        assert_eq!(ct.columns[5].ty().unwrap().to_string(), "DateTime64(3)");
        assert_eq!(ct.engine, "ReplacingMergeTree");
        assert_eq!(ct.engine_args.len(), 1);
        assert_eq!(ct.order_by.as_ref().unwrap().len(), 2);
        assert!(ct.partition_by.is_some());
        assert_eq!(ct.settings.get("index_granularity"), Some("1024"));
    }

    #[test]
    fn parses_insert_forms() {
        let Statement::Insert(i) = parse_statement("INSERT INTO t FORMAT CSV").unwrap() else {
            panic!()
        };
        assert!(
            matches!(i.source, InsertSource::Format { ref name, inline: None } if name == "CSV")
        );
        let Statement::Insert(i) =
            parse_statement("insert into t (a, b) format TSV\n1\t2\n").unwrap()
        else {
            panic!()
        };
        assert_eq!(i.columns, Some(vec!["a".into(), "b".into()]));
        assert!(
            matches!(i.source, InsertSource::Format { inline: Some(ref d), .. } if d == "1\t2\n")
        );
        let Statement::Insert(i) =
            parse_statement("INSERT INTO t VALUES (1, 'a'), (2, 'b')").unwrap()
        else {
            panic!()
        };
        assert!(matches!(i.source, InsertSource::Values(ref r) if r.len() == 2));
        let Statement::Insert(i) =
            parse_statement("INSERT INTO t SELECT number FROM numbers(10)").unwrap()
        else {
            panic!()
        };
        assert!(matches!(i.source, InsertSource::Select(_)));
        let Statement::Insert(i) = parse_statement(
            "INSERT INTO t SELECT number FROM numbers(10) SETTINGS insert_quorum = 3, max_threads = 1",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(i.settings.get("insert_quorum"), Some("3"));
        assert_eq!(i.settings.get("max_threads"), Some("1"));
        assert!(matches!(i.source, InsertSource::Select(ref q) if q.settings.is_none()));
    }

    #[test]
    fn final_is_recorded() {
        let Statement::Select { final_tables, .. } =
            parse_statement("SELECT * FROM t FINAL WHERE x = 1").unwrap()
        else {
            panic!()
        };
        assert!(final_tables.contains("t"));
        let Statement::Optimize { final_, .. } = parse_statement("OPTIMIZE TABLE t FINAL").unwrap()
        else {
            panic!()
        };
        assert!(final_);
    }

    #[test]
    fn syntax_error_has_position() {
        match parse_statement("SELECT * FRM t") {
            Err(QueryError::Syntax { position, .. }) => assert!(position > 0),
            other => panic!("{other:?}"),
        }
        let e = parse_statement("CREATE TABLE t (a Strin) ENGINE = MergeTree ORDER BY a");
        assert!(e.is_err());
    }

    #[test]
    fn select_settings_and_format() {
        let Statement::Select {
            settings, format, ..
        } = parse_statement("SELECT 1 SETTINGS max_threads = 1 FORMAT JSONEachRow").unwrap()
        else {
            panic!()
        };
        assert_eq!(settings.get("max_threads"), Some("1"));
        assert_eq!(format.as_deref(), Some("JSONEachRow"));
    }

    #[test]
    fn global_in_and_join_are_read_and_a_column_named_global_is_kept() {
        let sql = |q: &str| match parse_statement(q).unwrap() {
            Statement::Select { query, .. } => query.to_string(),
            _ => panic!("{q}"),
        };
        let q = sql("SELECT count() FROM t WHERE id GLOBAL NOT IN (SELECT id FROM u) AND x GLOBAL IN (1, 2)");
        assert!(!q.contains("GLOBAL"), "{q}");
        assert!(q.contains("NOT IN") && q.contains("x IN (1, 2)"), "{q}");
        let q = sql("SELECT * FROM t AS a GLOBAL ALL LEFT JOIN u AS b ON a.k = b.k");
        assert!(q.contains("LEFT JOIN"), "{q}");
        let q = sql("SELECT global FROM t WHERE global IN (1)");
        assert!(q.contains("WHERE global IN (1)"), "{q}");
    }

    #[test]
    fn explain_wraps_a_select_and_refuses_the_rest() {
        for q in [
            "EXPLAIN SELECT 1",
            "explain plan SELECT 1 FORMAT TSV",
            "EXPLAIN PIPELINE SELECT x FROM t WHERE x > 1",
        ] {
            assert!(
                matches!(parse_statement(q), Ok(Statement::Explain(_))),
                "{q}"
            );
        }
        for q in [
            "EXPLAIN AST SELECT 1",
            "EXPLAIN INSERT INTO t VALUES (1)",
            "EXPLAIN",
        ] {
            assert!(parse_statement(q).is_err(), "{q}");
        }
    }

    #[test]
    fn kill_query_parses_its_condition() {
        let Statement::KillQuery {
            predicate,
            mode,
            format,
        } = parse_statement(
            "KILL QUERY WHERE query LIKE '%x%' AND query_id = 'a' SYNC FORMAT JSONEachRow",
        )
        .unwrap()
        else {
            panic!("not KILL")
        };
        assert_eq!(predicate.to_string(), "query LIKE '%x%' AND query_id = 'a'");
        assert_eq!(mode, KillMode::Sync);
        assert_eq!(format.as_deref(), Some("JSONEachRow"));
        let Statement::KillQuery { mode, .. } =
            parse_statement("kill query where query_id = 'b'").unwrap()
        else {
            panic!("not KILL")
        };
        assert_eq!(mode, KillMode::Async);
        assert!(parse_statement("KILL QUERY").is_err());
    }

    #[test]
    fn system_commands_parse_once() {
        let sys = |sql: &str| match parse_statement(sql) {
            Ok(Statement::System(c)) => Ok(c),
            Ok(other) => panic!("{sql}: {other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            sys("SYSTEM STOP MERGES db.t").unwrap(),
            SystemCommand::Merges {
                stop: true,
                table: Some(TableRef {
                    database: Some("db".into()),
                    name: "t".into()
                })
            }
        );
        assert_eq!(
            sys("system start replication queues").unwrap(),
            SystemCommand::ReplicationQueues {
                stop: false,
                table: None
            }
        );
        assert_eq!(
            sys("SYSTEM ADD NODE 4 '127.0.0.1:9104'").unwrap(),
            SystemCommand::AddNode {
                id: 4,
                addr: "127.0.0.1:9104".into()
            }
        );
        assert_eq!(sys("SYSTEM FLUSH LOGS").unwrap(), SystemCommand::Nothing);
        let code = |sql: &str| sys(sql).expect_err(sql).code();
        assert_eq!(
            code("SYSTEM ADD NODE x"),
            qh_types::ErrorCode::BAD_ARGUMENTS
        );
        assert_eq!(
            code("SYSTEM SYNC REPLICA"),
            qh_types::ErrorCode::BAD_ARGUMENTS
        );
        assert_eq!(
            code("SYSTEM RELOAD CONFIG"),
            qh_types::ErrorCode::NOT_IMPLEMENTED
        );
    }

    #[test]
    fn nested_backtracking_constructs_are_bounded() {
        let t = std::time::Instant::now();
        let sql = format!("SELECT {}x", "CAST(x OR ".repeat(2_000));
        let e = parse_statement(&sql).expect_err("2,000 nested CASTs");
        assert_eq!(e.code(), qh_types::ErrorCode::SYNTAX_ERROR, "{e}");
        let sql = format!("SELECT {}x{}", "position(".repeat(30), ")".repeat(30));
        assert!(parse_statement(&sql).is_err());
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        // Eight still parse (ClickHouse's CAST(x, 'T') form included).
        let sql = format!("SELECT {}x{}", "CAST(".repeat(8), ", 'UInt8')".repeat(8));
        parse_statement(&sql).expect("8 nested CASTs");
        // Plain calls: 30 parse, 60 are refused at once (they took minutes).
        let t = std::time::Instant::now();
        let call = |n: usize| {
            format!(
                "SELECT {}number{}",
                "substring(materialize('abc'), ".repeat(n),
                ")".repeat(n)
            )
        };
        parse_statement(&call(30)).expect("30 nested calls");
        let e = parse_statement(&call(60)).expect_err("60 nested calls");
        assert_eq!(e.code(), qh_types::ErrorCode::SYNTAX_ERROR, "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        // Unfinished CASEs (the fuzz test's `CASE + CASE + …`, minutes at
        // 40) are refused at once; ten nested ones still parse.
        let t = std::time::Instant::now();
        let sql = format!("SELECT {}CASE WHEN x = 1 THEN 1 END", "CASE + ".repeat(600));
        let e = parse_statement(&sql).expect_err("600 unfinished CASEs");
        assert_eq!(e.code(), qh_types::ErrorCode::SYNTAX_ERROR, "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        let nested = format!(
            "SELECT {}0{}",
            "CASE WHEN x = 1 THEN ".repeat(10),
            " ELSE 1 END".repeat(10)
        );
        parse_statement(&nested).expect("10 nested CASEs");
    }

    #[test]
    fn with_totals_is_read_for_the_outer_query_and_a_cte_named_totals_is_kept() {
        let totals = |q: &str| match parse_statement(q).unwrap() {
            Statement::Select { totals, query, .. } => (totals, query.to_string()),
            _ => panic!("{q}"),
        };
        let (t, q) =
            totals("SELECT k, count() FROM t GROUP BY k WITH TOTALS HAVING count() > 1 ORDER BY k");
        assert!(t);
        assert!(!q.contains("TOTALS") && q.contains("HAVING"), "{q}");
        assert!(totals("SELECT count() FROM t WITH TOTALS").0);
        assert!(!totals("SELECT c FROM (SELECT count() AS c FROM t WITH TOTALS)").0);
        let (t, q) = totals("WITH totals AS (SELECT 1 AS x) SELECT x FROM totals");
        assert!(!t);
        assert!(q.contains("totals AS"), "{q}");
    }

    #[test]
    fn a_setting_value_is_one_literal_and_a_huge_expression_is_refused_unbuilt() {
        let Statement::Set(s) =
            parse_statement("SET max_threads = 2, log_comment = 'x', a = -1, b = true").unwrap()
        else {
            panic!()
        };
        assert_eq!(s.get("max_threads"), Some("2"));
        assert_eq!(s.get("log_comment"), Some("x"));
        assert_eq!(s.get("a"), Some("-1"));
        assert_eq!(s.get("b"), Some("1"));
        // Printing or dropping a tree 200,000 operators deep overflowed the
        // stack and killed the node (found by the fuzz test).
        let long = format!("SET max_block_size = {}", vec!["10"; 200_000].join(" + "));
        let e = parse_statement(&long).unwrap_err();
        assert_eq!(e.code(), qh_types::ErrorCode::SYNTAX_ERROR, "{e}");
    }

    #[test]
    fn tables_named_settings_or_format_are_names() {
        for sql in [
            "SELECT name FROM system.settings WHERE name = 'x' SETTINGS max_threads = 1",
            "SELECT name FROM settings SETTINGS max_threads = 1",
            "SELECT 1 AS format SETTINGS max_threads = 1",
        ] {
            let Statement::Select {
                settings, format, ..
            } = parse_statement(sql).unwrap()
            else {
                panic!("{sql}")
            };
            assert_eq!(settings.get("max_threads"), Some("1"), "{sql}");
            assert_eq!(format, None, "{sql}");
        }
    }
}
