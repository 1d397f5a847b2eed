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
    pub ty: ChType,
    pub default: Option<Expr>,
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
    DropPartition(Box<Expr>),
}

#[derive(Debug, Clone)]
pub enum Statement {
    Select {
        query: Box<Query>,
        /// Tables named with FINAL.
        final_tables: HashSet<String>,
        format: Option<String>,
        settings: Settings,
    },
    Insert(Insert),
    CreateTable(Box<CreateTable>),
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
}

/// Splits a script on top-level `;` (outside quotes and comments).
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            cur.push('\n');
            i += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            let mut depth = 1;
            i += 2;
            while i < chars.len() && depth > 0 {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            cur.push(' ');
            continue;
        }
        if c == '\'' || c == '"' || c == '`' {
            cur.push(c);
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                cur.push(d);
                i += 1;
                if d == '\\' && i < chars.len() {
                    cur.push(chars[i]);
                    i += 1;
                    continue;
                }
                if d == c {
                    if chars.get(i) == Some(&c) {
                        cur.push(c);
                        i += 1;
                        continue;
                    }
                    break;
                }
            }
            continue;
        }
        if c == ';' {
            let s = cur.trim();
            if !s.is_empty() {
                out.push(s.to_string());
            }
            cur.clear();
            i += 1;
            continue;
        }
        cur.push(c);
        i += 1;
    }
    let s = cur.trim();
    if !s.is_empty() {
        out.push(s.to_string());
    }
    out
}

/// Finds a top-level `FORMAT <name>` in an INSERT (outside quotes and before
/// VALUES/SELECT): returns (byte offset of FORMAT, name, offset after name).
fn find_insert_format(sql: &str) -> Option<(usize, String, usize)> {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut depth = 0i32;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ => {}
        }
        if depth == 0 && c.is_ascii_alphabetic() && (i == 0 || !is_ident_byte(b[i - 1])) {
            let start = i;
            while i < b.len() && is_ident_byte(b[i]) {
                i += 1;
            }
            let word = sql[start..i].to_ascii_uppercase();
            match word.as_str() {
                "VALUES" | "SELECT" | "WITH" => return None,
                "FORMAT" => {
                    let mut j = i;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    let ns = j;
                    while j < b.len() && is_ident_byte(b[j]) {
                        j += 1;
                    }
                    if ns == j {
                        return None;
                    }
                    return Some((start, sql[ns..j].to_string(), j));
                }
                _ => continue,
            }
        }
        i += 1;
    }
    None
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Parses one statement (no trailing `;`).
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

pub fn parse_statement(sql: &str) -> Result<Statement> {
    let first = sql
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_ascii_uppercase();
    if first == "INSERT" {
        if let Some((fpos, name, after)) = find_insert_format(sql) {
            let head = &sql[..fpos];
            let data = &sql[after..];
            let data = data
                .strip_prefix("\r\n")
                .or_else(|| data.strip_prefix('\n'))
                .or_else(|| data.strip_prefix(' '))
                .unwrap_or(data);
            let inline = if data.trim().is_empty() {
                None
            } else {
                Some(data.to_string())
            };
            let mut p = StmtParser::new(head)?;
            return p.insert_head(Some(InsertSource::Format { name, inline }));
        }
    }
    let mut p = StmtParser::new(sql)?;
    let stmt = p.statement(&first)?;
    p.expect_end()?;
    Ok(stmt)
}

struct StmtParser<'a> {
    sql: &'a str,
    parser: Parser<'a>,
    final_tables: HashSet<String>,
    /// A SELECT's trailing `FORMAT x` / `SETTINGS ...`, cut off before
    /// parsing (sqlparser would take `FORMAT` for a column alias).
    trailer_format: Option<String>,
    trailer_settings: Settings,
}

const DIALECT: ClickHouseDialect = ClickHouseDialect {};

fn word_of(t: &TokenWithSpan) -> Option<String> {
    match &t.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

impl<'a> StmtParser<'a> {
    fn new(sql: &'a str) -> Result<Self> {
        let tokens = Tokenizer::new(&DIALECT, sql)
            .tokenize_with_location()
            .map_err(|e| syntax_error(sql, &ParserError::TokenizerError(e.to_string())))?;
        check_backtracking_depth(&tokens).map_err(|m| QueryError::Syntax {
            position: 0,
            message: m,
        })?;
        let (tokens, final_tables) = strip_final(tokens);
        let tokens = join_syntax(tokens);
        let tokens = limit_by_syntax(tokens);
        let tokens = values_function(tokens);
        let tokens = ternary_operator(tokens);
        let (tokens, trailer_format, trailer_settings) =
            split_trailer(tokens).map_err(|m| syntax_error(sql, &ParserError::ParserError(m)))?;
        let parser = Parser::new(&DIALECT).with_tokens_with_locations(tokens);
        Ok(StmtParser {
            sql,
            parser,
            final_tables,
            trailer_format,
            trailer_settings,
        })
    }

    fn err(&self, e: ParserError) -> QueryError {
        syntax_error(self.sql, &e)
    }

    fn fail<T>(&self, msg: &str) -> Result<T> {
        let t = self.parser.peek_token();
        Err(self.err(ParserError::ParserError(format!(
            "{msg}, found: {}{}",
            t.token, t.span.start
        ))))
    }

    /// Source text between two token locations (end exclusive; an empty
    /// end location means the end of the statement).
    fn slice(&self, start: Location, end: Location) -> &'a str {
        let a = char_offset(self.sql, start);
        let b = if end.line == 0 {
            self.sql.len()
        } else {
            char_offset(self.sql, end)
        };
        self.sql.get(a..b.max(a)).unwrap_or("")
    }

    fn peek_word(&self) -> Option<String> {
        word_of(&self.parser.peek_token())
    }

    fn peek_nth_word(&self, n: usize) -> Option<String> {
        word_of(&self.parser.peek_nth_token(n))
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.peek_word().as_deref() == Some(word) {
            self.parser.next_token();
            true
        } else {
            false
        }
    }

    fn eat_seq(&mut self, words: &[&str]) -> bool {
        for (i, w) in words.iter().enumerate() {
            if self.peek_nth_word(i).as_deref() != Some(*w) {
                return false;
            }
        }
        for _ in words {
            self.parser.next_token();
        }
        true
    }

    fn expect(&mut self, word: &str) -> Result<()> {
        if self.eat(word) {
            Ok(())
        } else {
            self.fail(&format!("Expected {word}"))
        }
    }

    fn expect_end(&mut self) -> Result<()> {
        while self.parser.consume_token(&Token::SemiColon) {}
        match self.parser.peek_token().token {
            Token::EOF => Ok(()),
            _ => self.fail("Expected end of query"),
        }
    }

    fn ident(&mut self) -> Result<String> {
        self.parser
            .parse_identifier()
            .map(|i| i.value)
            .map_err(|e| self.err(e))
    }

    fn table_ref(&mut self) -> Result<TableRef> {
        let name = self
            .parser
            .parse_object_name(false)
            .map_err(|e| self.err(e))?;
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| {
                p.as_ident()
                    .map(|i| i.value.clone())
                    .unwrap_or_else(|| p.to_string())
            })
            .collect();
        match parts.as_slice() {
            [t] => Ok(TableRef {
                database: None,
                name: t.clone(),
            }),
            [d, t] => Ok(TableRef {
                database: Some(d.clone()),
                name: t.clone(),
            }),
            _ => self.fail("Expected [db.]table"),
        }
    }

    fn expr(&mut self) -> Result<Expr> {
        self.parser.parse_expr().map_err(|e| self.err(e))
    }

    /// `expr` or `(e1, e2, ...)` or `tuple()`: a key list.
    fn key_list(&mut self) -> Result<Vec<Expr>> {
        let e = self.expr()?;
        Ok(match e {
            Expr::Tuple(items) => items,
            Expr::Nested(inner) => vec![*inner],
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("tuple") => match f.args {
                datafusion::sql::sqlparser::ast::FunctionArguments::List(l) => l
                    .args
                    .into_iter()
                    .filter_map(|a| match a {
                        datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                            datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(e),
                        ) => Some(e),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            },
            e => vec![e],
        })
    }

    fn settings_list(&mut self) -> Result<Settings> {
        let mut s = Settings::new();
        loop {
            let k = self.ident()?;
            if !self.parser.consume_token(&Token::Eq) {
                return self.fail("Expected =");
            }
            let v = self.expr()?;
            s.set(&k, expr_to_setting_value(&v));
            if !self.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        Ok(s)
    }

    fn format_suffix(&mut self) -> Result<Option<String>> {
        if self.eat("FORMAT") {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    fn statement(&mut self, first: &str) -> Result<Statement> {
        match first {
            "SELECT" | "WITH" | "" => self.select(),
            "INSERT" => self.insert_head(None),
            "CREATE" | "ATTACH" => self.create(),
            "DROP" | "DETACH" => self.drop_stmt(),
            "TRUNCATE" => {
                self.parser.next_token();
                self.eat("TABLE");
                let if_exists = self.eat_seq(&["IF", "EXISTS"]);
                let table = self.table_ref()?;
                Ok(Statement::Truncate { table, if_exists })
            }
            "ALTER" => self.alter(),
            "CHECK" => {
                self.parser.next_token();
                self.eat("TABLE");
                let table = self.table_ref()?;
                let format = self.format_suffix()?;
                self.expect_end()?;
                Ok(Statement::Check { table, format })
            }
            "OPTIMIZE" => {
                self.parser.next_token();
                self.expect("TABLE")?;
                let table = self.table_ref()?;
                self.on_cluster()?;
                let partition = if self.eat("PARTITION") {
                    if self.eat("ID") {
                        let id = self.expr()?;
                        Some(Expr::Function(datafusion::sql::sqlparser::ast::Function {
                            name: datafusion::sql::sqlparser::ast::ObjectName::from(vec![
                                datafusion::sql::sqlparser::ast::Ident::new("__partition_id"),
                            ]),
                            uses_odbc_syntax: false,
                            parameters: datafusion::sql::sqlparser::ast::FunctionArguments::None,
                            args: datafusion::sql::sqlparser::ast::FunctionArguments::List(
                                datafusion::sql::sqlparser::ast::FunctionArgumentList {
                                    duplicate_treatment: None,
                                    args: vec![
                                        datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                                            datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(
                                                id,
                                            ),
                                        ),
                                    ],
                                    clauses: vec![],
                                },
                            ),
                            filter: None,
                            null_treatment: None,
                            over: None,
                            within_group: vec![],
                        }))
                    } else {
                        Some(self.expr()?)
                    }
                } else {
                    None
                };
                let final_ = self.eat("FINAL");
                if self.eat("DEDUPLICATE") {
                    return Err(QueryError::NotImplemented(
                        "OPTIMIZE ... DEDUPLICATE is not supported yet".into(),
                    ));
                }
                Ok(Statement::Optimize {
                    table,
                    partition: partition.map(Box::new),
                    final_,
                })
            }
            "SET" => {
                self.parser.next_token();
                Ok(Statement::Set(self.settings_list()?))
            }
            "USE" => {
                self.parser.next_token();
                Ok(Statement::Use(self.ident()?))
            }
            "SHOW" => self.show(),
            "DESCRIBE" | "DESC" => {
                self.parser.next_token();
                self.eat("TABLE");
                let table = self.table_ref()?;
                let format = self.format_suffix()?;
                Ok(Statement::Describe { table, format })
            }
            "EXISTS" => {
                self.parser.next_token();
                let database = self.eat("DATABASE");
                if !database {
                    self.eat("TABLE");
                }
                let table = self.table_ref()?;
                let format = self.format_suffix()?;
                Ok(Statement::Exists {
                    table,
                    format,
                    database,
                })
            }
            "KILL" => {
                self.parser.next_token();
                self.expect("QUERY")?;
                self.expect("WHERE")?;
                let predicate = Box::new(self.expr()?);
                let mode = if self.eat("SYNC") {
                    KillMode::Sync
                } else if self.eat("TEST") {
                    KillMode::Test
                } else {
                    self.eat("ASYNC");
                    KillMode::Async
                };
                let format = self.format_suffix()?;
                Ok(Statement::KillQuery {
                    predicate,
                    mode,
                    format,
                })
            }
            "SYSTEM" => {
                self.parser.next_token();
                let mut words = Vec::new();
                loop {
                    let t = self.parser.next_token();
                    match t.token {
                        Token::EOF | Token::SemiColon => break,
                        Token::Word(w) => words.push(w.value),
                        Token::Period => {
                            if let Some(last) = words.pop() {
                                let next = self.ident()?;
                                words.push(format!("{last}.{next}"));
                            }
                        }
                        other => words.push(other.to_string()),
                    }
                }
                SystemCommand::parse(&words).map(Statement::System)
            }
            _ => {
                if self.parser.peek_token().token == Token::LParen {
                    return self.select();
                }
                self.fail("Unrecognized statement")
            }
        }
    }

    fn select(&mut self) -> Result<Statement> {
        let mut query = self.parser.parse_query().map_err(|e| self.err(e))?;
        let mut settings = Settings::new();
        if let Some(list) = query.settings.take() {
            for s in list {
                settings.set(&s.key.value, expr_to_setting_value(&s.value));
            }
        }
        let mut format = match query.format_clause.take() {
            Some(FormatClause::Identifier(i)) => Some(i.value),
            Some(FormatClause::Null) => Some("Null".to_string()),
            None => self.trailer_format.take(),
        };
        settings = settings.merged_with(&self.trailer_settings);
        // ClickHouse also allows SETTINGS after FORMAT.
        if self.eat("SETTINGS") {
            settings = settings.merged_with(&self.settings_list()?);
        }
        if format.is_none() {
            format = self.format_suffix()?;
        }
        Ok(Statement::Select {
            query,
            final_tables: std::mem::take(&mut self.final_tables),
            format,
            settings,
        })
    }

    fn on_cluster(&mut self) -> Result<Option<String>> {
        if self.eat_seq(&["ON", "CLUSTER"]) {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    fn insert_head(&mut self, format: Option<InsertSource>) -> Result<Statement> {
        self.expect("INSERT")?;
        self.expect("INTO")?;
        self.eat("TABLE");
        if self.eat("FUNCTION") {
            return Err(QueryError::NotImplemented(
                "INSERT INTO FUNCTION is not supported".into(),
            ));
        }
        let table = self.table_ref()?;
        let mut columns = None;
        if self.parser.peek_token().token == Token::LParen
            && !matches!(self.peek_nth_word(1).as_deref(), Some("SELECT" | "WITH"))
        {
            self.parser.next_token();
            let mut cols = Vec::new();
            loop {
                cols.push(self.ident()?);
                if !self.parser.consume_token(&Token::Comma) {
                    break;
                }
            }
            self.parser
                .expect_token(&Token::RParen)
                .map_err(|e| self.err(e))?;
            columns = Some(cols);
        }
        let mut settings = Settings::new();
        if self.eat("SETTINGS") {
            settings = self.settings_list()?;
        }
        let source = match format {
            Some(f) => {
                self.expect_end()?;
                f
            }
            None if self.peek_word().as_deref() == Some("VALUES") => {
                self.parser.next_token();
                let mut rows = Vec::new();
                loop {
                    self.parser
                        .expect_token(&Token::LParen)
                        .map_err(|e| self.err(e))?;
                    let mut row = Vec::new();
                    if self.parser.peek_token().token != Token::RParen {
                        loop {
                            row.push(self.expr()?);
                            if !self.parser.consume_token(&Token::Comma) {
                                break;
                            }
                        }
                    }
                    self.parser
                        .expect_token(&Token::RParen)
                        .map_err(|e| self.err(e))?;
                    rows.push(row);
                    // ClickHouse allows rows separated by commas or nothing.
                    let _ = self.parser.consume_token(&Token::Comma);
                    if self.parser.peek_token().token != Token::LParen {
                        break;
                    }
                }
                self.expect_end()?;
                InsertSource::Values(rows)
            }
            None => {
                let mut q = self.parser.parse_query().map_err(|e| self.err(e))?;
                self.expect_end()?;
                // As in ClickHouse, `INSERT ... SELECT ... SETTINGS k = v`
                // applies to the whole statement: the insert's quorum and
                // deduplication as well as the SELECT.
                for s in q.settings.take().unwrap_or_default() {
                    settings.set(&s.key.value, expr_to_setting_value(&s.value));
                }
                InsertSource::Select(q)
            }
        };
        Ok(Statement::Insert(Insert {
            table,
            columns,
            source,
            settings,
        }))
    }

    fn create(&mut self) -> Result<Statement> {
        self.parser.next_token();
        self.eat_seq(&["OR", "REPLACE"]);
        // A temporary table without ENGINE is a Memory table, as in ClickHouse
        // (it lives as long as the table, not the session, here).
        let temporary = self.eat("TEMPORARY");
        if self.eat("DATABASE") {
            let if_not_exists = self.eat_seq(&["IF", "NOT", "EXISTS"]);
            let name = self.ident()?;
            self.on_cluster()?;
            if self.eat("ENGINE") {
                let _ = self.parser.consume_token(&Token::Eq);
                self.expr()?;
            }
            return Ok(Statement::CreateDatabase {
                name,
                if_not_exists,
            });
        }
        self.expect("TABLE")?;
        let if_not_exists = self.eat_seq(&["IF", "NOT", "EXISTS"]);
        let table = self.table_ref()?;
        self.on_cluster()?;
        let mut columns = Vec::new();
        if self.parser.consume_token(&Token::LParen) {
            loop {
                if matches!(
                    self.peek_word().as_deref(),
                    Some("INDEX" | "CONSTRAINT" | "PROJECTION")
                ) {
                    // Skip secondary indexes and constraints: accepted, unused.
                    let mut depth = 0;
                    loop {
                        match self.parser.peek_token().token {
                            Token::LParen => depth += 1,
                            Token::RParen if depth == 0 => break,
                            Token::RParen => depth -= 1,
                            Token::Comma if depth == 0 => break,
                            Token::EOF => break,
                            _ => {}
                        }
                        self.parser.next_token();
                    }
                } else if matches!(self.peek_word().as_deref(), Some("PRIMARY"))
                    && self.peek_nth_word(1).as_deref() == Some("KEY")
                {
                    self.parser.next_token();
                    self.parser.next_token();
                    self.key_list()?;
                } else {
                    columns.push(self.column_spec()?);
                }
                if !self.parser.consume_token(&Token::Comma)
                    || self.parser.peek_token().token == Token::RParen
                {
                    break;
                }
            }
            self.parser
                .expect_token(&Token::RParen)
                .map_err(|e| self.err(e))?;
        }
        let mut ct = CreateTable {
            table,
            if_not_exists,
            columns,
            engine: if temporary { "Memory" } else { "MergeTree" }.into(),
            engine_args: vec![],
            order_by: None,
            primary_key: None,
            partition_by: None,
            settings: Settings::new(),
            as_select: None,
            as_table: None,
            engine_given: false,
        };
        loop {
            if self.eat("ENGINE") {
                let _ = self.parser.consume_token(&Token::Eq);
                ct.engine_given = true;
                ct.engine = self.ident()?;
                if self.parser.consume_token(&Token::LParen)
                    && !self.parser.consume_token(&Token::RParen)
                {
                    {
                        loop {
                            ct.engine_args.push(self.expr()?);
                            if !self.parser.consume_token(&Token::Comma) {
                                break;
                            }
                        }
                        self.parser
                            .expect_token(&Token::RParen)
                            .map_err(|e| self.err(e))?;
                    }
                }
            } else if self.eat_seq(&["ORDER", "BY"]) {
                ct.order_by = Some(self.key_list()?);
            } else if self.eat_seq(&["PRIMARY", "KEY"]) {
                ct.primary_key = Some(self.key_list()?);
            } else if self.eat_seq(&["PARTITION", "BY"]) {
                ct.partition_by = Some(self.expr()?);
            } else if self.eat("SETTINGS") {
                ct.settings = self.settings_list()?;
            } else if self.eat("COMMENT") {
                self.expr()?;
            } else if self.eat("AS") {
                let query_follows = self.parser.peek_token().token == Token::LParen
                    || matches!(self.peek_word().as_deref(), Some("SELECT" | "WITH"));
                if query_follows || !ct.columns.is_empty() {
                    ct.as_select = Some(self.parser.parse_query().map_err(|e| self.err(e))?);
                } else {
                    ct.as_table = Some(self.table_ref()?);
                }
            } else if self.eat_seq(&["SAMPLE", "BY"]) || self.eat("TTL") {
                self.expr()?;
            } else {
                break;
            }
        }
        Ok(Statement::CreateTable(Box::new(ct)))
    }

    fn column_spec(&mut self) -> Result<ColumnSpec> {
        let name = self.ident()?;
        // Type names are taken from the source text: sqlparser prints them
        // back in its own spelling (`DATETIME`), not ClickHouse's.
        let start = self.parser.peek_token().span.start;
        self.skip_type()?;
        let end = self.parser.peek_token().span.start;
        let ty = parse_ch_type(self.slice(start, end).trim())?;
        let mut default = None;
        loop {
            if self.eat("DEFAULT") || self.eat("MATERIALIZED") || self.eat("ALIAS") {
                default = Some(self.expr()?);
            } else if self.eat("CODEC") || self.eat("TTL") || self.eat("COMMENT") {
                self.expr()?;
            } else if self.eat("NULL") {
                // `x String NULL` means Nullable in ClickHouse.
            } else if self.eat_seq(&["NOT", "NULL"]) {
            } else {
                break;
            }
        }
        Ok(ColumnSpec { name, ty, default })
    }

    /// Consumes a type: a name and an optional balanced `(...)` (ClickHouse
    /// types take strings and nested types: `DateTime('UTC')`,
    /// `Nullable(Decimal(10, 2))`).
    fn skip_type(&mut self) -> Result<()> {
        match self.parser.next_token().token {
            Token::Word(_) => {}
            _ => {
                self.parser.prev_token();
                return self.fail("Expected a data type");
            }
        }
        if self.parser.peek_token().token == Token::LParen {
            let mut depth = 0;
            loop {
                match self.parser.next_token().token {
                    Token::LParen => depth += 1,
                    Token::RParen => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Token::EOF => return self.fail("Unbalanced parentheses in a data type"),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn drop_stmt(&mut self) -> Result<Statement> {
        self.parser.next_token();
        if self.eat("DATABASE") {
            let if_exists = self.eat_seq(&["IF", "EXISTS"]);
            let name = self.ident()?;
            self.on_cluster()?;
            return Ok(Statement::DropDatabase { name, if_exists });
        }
        self.eat("TEMPORARY");
        if !self.eat("TABLE") && !self.eat("VIEW") && !self.eat("DICTIONARY") {
            return self.fail("Expected TABLE or DATABASE");
        }
        let if_exists = self.eat_seq(&["IF", "EXISTS"]);
        let table = self.table_ref()?;
        self.on_cluster()?;
        self.eat("SYNC");
        Ok(Statement::DropTable { table, if_exists })
    }

    fn alter(&mut self) -> Result<Statement> {
        self.parser.next_token();
        self.expect("TABLE")?;
        let table = self.table_ref()?;
        self.on_cluster()?;
        let mut ops = Vec::new();
        loop {
            if self.eat_seq(&["ADD", "COLUMN"]) {
                let if_not_exists = self.eat_seq(&["IF", "NOT", "EXISTS"]);
                let column = self.column_spec()?;
                let mut after = None;
                let mut first = false;
                if self.eat("AFTER") {
                    after = Some(self.ident()?);
                } else if self.eat("FIRST") {
                    first = true;
                }
                ops.push(AlterOp::AddColumn {
                    column: Box::new(column),
                    if_not_exists,
                    after,
                    first,
                });
            } else if self.eat_seq(&["DROP", "PARTITION"]) {
                ops.push(AlterOp::DropPartition(Box::new(self.expr()?)));
            } else if self.eat_seq(&["DROP", "COLUMN"]) {
                let if_exists = self.eat_seq(&["IF", "EXISTS"]);
                let name = self.ident()?;
                ops.push(AlterOp::DropColumn { name, if_exists });
            } else {
                return Err(QueryError::NotImplemented(format!(
                    "ALTER {} is not supported yet (ADD COLUMN and DROP COLUMN are)",
                    self.parser.peek_token().token
                )));
            }
            if !self.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        Ok(Statement::Alter { table, ops })
    }

    fn show(&mut self) -> Result<Statement> {
        self.parser.next_token();
        if self.eat("DATABASES") {
            let format = self.format_suffix()?;
            return Ok(Statement::ShowDatabases { format });
        }
        if self.eat_seq(&["CREATE", "TABLE"]) || self.eat("CREATE") {
            let table = self.table_ref()?;
            let format = self.format_suffix()?;
            return Ok(Statement::ShowCreateTable { table, format });
        }
        self.eat("FULL");
        self.eat("TEMPORARY");
        if self.eat("TABLES") {
            let mut database = None;
            if self.eat("FROM") || self.eat("IN") {
                database = Some(self.ident()?);
            }
            let mut like = None;
            if self.eat("LIKE") {
                like = Some(
                    self.parser
                        .parse_literal_string()
                        .map_err(|e| self.err(e))?,
                );
            }
            let format = self.format_suffix()?;
            return Ok(Statement::ShowTables {
                database,
                like,
                format,
            });
        }
        self.fail("Expected TABLES, DATABASES or CREATE TABLE after SHOW")
    }
}

/// Cuts a SELECT's trailing `FORMAT name` and `SETTINGS k = v, ...` (in any
/// order, outside parentheses) off the token list.
#[allow(clippy::type_complexity)]
/// sqlparser tries `CAST(`, `POSITION(`, `ARRAY[` ... first as SQL syntax
/// and, when that fails (ClickHouse's `CAST(x, 'T')`), parses the same text
/// again as a function call: every such construct nested inside another
/// doubles the work, so 30 of them take minutes. More than this many open at
/// once are refused before sqlparser sees them.
const MAX_BACKTRACKING_NESTING: usize = 8;

/// Function calls nested in each other beyond this are refused: sqlparser
/// tries several readings of each argument (a named argument first) and,
/// near its recursion limit (50), every failed reading is retried at every
/// level — 44 nested calls parse in 50 ms, 48 take minutes.
const MAX_CALL_NESTING: usize = 32;

fn check_backtracking_depth(tokens: &[TokenWithSpan]) -> std::result::Result<(), String> {
    // Per open bracket: (opened by a backtracking construct, by a call).
    let mut open: Vec<(bool, bool)> = Vec::new();
    let (mut nested, mut calls) = (0usize, 0usize);
    let mut previous: Option<&Token> = None;
    for t in tokens {
        match &t.token {
            Token::LParen | Token::LBracket => {
                let backtracks = match (previous, &t.token) {
                    (Some(Token::Word(w)), Token::LParen) if w.quote_style.is_none() => matches!(
                        w.value.to_ascii_uppercase().as_str(),
                        "CAST"
                            | "TRY_CAST"
                            | "SAFE_CAST"
                            | "POSITION"
                            | "CONVERT"
                            | "OVERLAY"
                            | "INTERVAL"
                    ),
                    (Some(Token::Word(w)), Token::LBracket) => {
                        w.quote_style.is_none() && w.value.eq_ignore_ascii_case("ARRAY")
                    }
                    _ => false,
                };
                let call = matches!((previous, &t.token), (Some(Token::Word(_)), Token::LParen));
                nested += usize::from(backtracks);
                calls += usize::from(call);
                if nested > MAX_BACKTRACKING_NESTING {
                    return Err(format!(
                        "more than {MAX_BACKTRACKING_NESTING} CAST/POSITION/CONVERT/OVERLAY/INTERVAL/ARRAY[ nested in each other"
                    ));
                }
                if calls > MAX_CALL_NESTING {
                    return Err(format!(
                        "more than {MAX_CALL_NESTING} function calls nested in each other"
                    ));
                }
                open.push((backtracks, call));
            }
            Token::RParen | Token::RBracket => {
                if let Some((backtracks, call)) = open.pop() {
                    nested -= usize::from(backtracks);
                    calls -= usize::from(call);
                }
            }
            _ => {}
        }
        if !matches!(t.token, Token::Whitespace(_)) {
            previous = Some(&t.token);
        }
    }
    Ok(())
}

/// Whether a word after `previous` is a name (of a table, column or alias)
/// rather than a keyword.
fn names_something(previous: Option<&Token>) -> bool {
    match previous {
        Some(Token::Period) => true,
        Some(Token::Word(w)) if w.quote_style.is_none() => matches!(
            w.value.to_ascii_uppercase().as_str(),
            "FROM" | "JOIN" | "AS" | "TABLE"
        ),
        _ => false,
    }
}

fn split_trailer(
    tokens: Vec<TokenWithSpan>,
) -> std::result::Result<(Vec<TokenWithSpan>, Option<String>, Settings), String> {
    let first = tokens.iter().find_map(word_of);
    let mut settings = Settings::new();
    if !matches!(first.as_deref(), Some("SELECT" | "WITH")) {
        return Ok((tokens, None, settings));
    }
    let mut depth = 0i32;
    let mut cut = None;
    // The token before this one (whitespace skipped): `system.settings`,
    // `FROM settings` or `AS format` name things, they start no clause.
    let mut previous: Option<&Token> = None;
    for (i, t) in tokens.iter().enumerate() {
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0
                && matches!(word_of(t).as_deref(), Some("FORMAT" | "SETTINGS"))
                && !names_something(previous) =>
            {
                cut = Some(i);
                break;
            }
            _ => {}
        }
        if !matches!(t.token, Token::Whitespace(_)) {
            previous = Some(&t.token);
        }
    }
    let Some(cut) = cut else {
        return Ok((tokens, None, settings));
    };
    let mut rest: Vec<Token> = tokens[cut..]
        .iter()
        .map(|t| t.token.clone())
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon | Token::EOF))
        .collect();
    rest.reverse();
    let mut head = tokens;
    head.truncate(cut);
    let mut format = None;
    let text = |t: &Token| match t {
        Token::Word(w) => w.value.clone(),
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
        other => other.to_string(),
    };
    while let Some(t) = rest.pop() {
        match word_of(&TokenWithSpan::wrap(t.clone())).as_deref() {
            Some("FORMAT") => {
                let name = rest.pop().ok_or("Expected a format name after FORMAT")?;
                format = Some(text(&name));
            }
            Some("SETTINGS") => loop {
                let k = rest.pop().ok_or("Expected a setting name")?;
                if rest.pop() != Some(Token::Eq) {
                    return Err(format!("Expected = after setting {}", text(&k)));
                }
                let mut v = rest.pop().ok_or("Expected a setting value")?;
                let mut value = text(&v);
                if v == Token::Minus {
                    v = rest.pop().ok_or("Expected a setting value")?;
                    value = format!("-{}", text(&v));
                }
                settings.set(&text(&k), value);
                if rest.last() == Some(&Token::Comma) {
                    rest.pop();
                    continue;
                }
                break;
            },
            _ => return Err(format!("Unexpected {t} after FORMAT/SETTINGS")),
        }
    }
    Ok((head, format, settings))
}

/// Name of the marker `LIMIT ... BY` becomes; `rewrite.rs` turns it into a
/// `row_number()` window over the query's ORDER BY.
pub const LIMIT_BY_MARKER: &str = "__qh_limit_by";
/// Likewise for `LIMIT [offset,] n WITH TIES`: `QUALIFY __qh_with_ties(offset, n)`.
pub const WITH_TIES_MARKER: &str = "__qh_with_ties";

/// ClickHouse's `LIMIT [offset,] n [OFFSET offset] BY e1, e2` (optionally
/// followed by an ordinary LIMIT) becomes `QUALIFY __qh_limit_by(offset, n,
/// e1, e2)` placed before the query's ORDER BY (sqlparser reads neither the
/// comma form nor a second LIMIT), and `LIMIT [offset,] n WITH TIES` becomes
/// `QUALIFY __qh_with_ties(offset, n)`. Works at any nesting depth.
fn limit_by_syntax(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let sig = |v: &[TokenWithSpan], from: usize| {
        v[from..]
            .iter()
            .position(|t| !matches!(t.token, Token::Whitespace(_)))
            .map(|p| p + from)
    };
    let number = |t: &TokenWithSpan| match &t.token {
        Token::Number(n, _) => Some(n.clone()),
        _ => None,
    };
    // Per open parenthesis: where the current query's ORDER BY starts.
    let mut order_at: Vec<Option<usize>> = vec![None];
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match &t.token {
            Token::LParen => order_at.push(None),
            Token::RParen => {
                order_at.pop();
                if order_at.is_empty() {
                    order_at.push(None);
                }
            }
            _ => {}
        }
        let w = word_of(t);
        if matches!(
            w.as_deref(),
            Some("SELECT" | "UNION" | "EXCEPT" | "INTERSECT")
        ) {
            if let Some(top) = order_at.last_mut() {
                *top = None;
            }
        }
        if w.as_deref() == Some("ORDER") {
            let next = sig(&tokens, i + 1).and_then(|n| word_of(&tokens[n]));
            if next.as_deref() == Some("BY") {
                if let Some(top) = order_at.last_mut() {
                    *top = Some(out.len());
                }
            }
        }
        if w.as_deref() == Some("LIMIT") {
            // LIMIT a [, b | OFFSET b] BY ...
            let a = sig(&tokens, i + 1);
            let first = a.and_then(|a| number(&tokens[a]));
            let mut parsed = None;
            if let (Some(a), Some(first)) = (a, first) {
                let n1 = sig(&tokens, a + 1);
                let (offset, limit, after) = match n1.map(|n| (&tokens[n].token, n)) {
                    Some((Token::Comma, c)) => {
                        let b = sig(&tokens, c + 1);
                        match b.and_then(|b| number(&tokens[b]).map(|v| (v, b))) {
                            Some((v, b)) => (first.clone(), v, sig(&tokens, b + 1)),
                            None => ("0".to_string(), first.clone(), None),
                        }
                    }
                    Some((_, n)) if word_of(&tokens[n]).as_deref() == Some("OFFSET") => {
                        let b = sig(&tokens, n + 1);
                        match b.and_then(|b| number(&tokens[b]).map(|v| (v, b))) {
                            Some((v, b)) => (v, first.clone(), sig(&tokens, b + 1)),
                            None => ("0".to_string(), first.clone(), None),
                        }
                    }
                    _ => ("0".to_string(), first.clone(), n1),
                };
                let ties = after.filter(|w| word_of(&tokens[*w]).as_deref() == Some("WITH"));
                let ties = ties
                    .and_then(|w| sig(&tokens, w + 1))
                    .filter(|t| word_of(&tokens[*t]).as_deref() == Some("TIES"));
                if let Some(t) = ties {
                    parsed = Some((
                        WITH_TIES_MARKER,
                        offset.clone(),
                        limit.clone(),
                        t + 1,
                        t + 1,
                    ));
                } else if let Some(by) =
                    after.filter(|b| word_of(&tokens[*b]).as_deref() == Some("BY"))
                {
                    // The BY list runs to a LIMIT, a closing parenthesis of
                    // this level, or the end.
                    let mut depth = 0i32;
                    let mut end = by + 1;
                    while end < tokens.len() {
                        match &tokens[end].token {
                            Token::LParen => depth += 1,
                            Token::RParen if depth == 0 => break,
                            Token::RParen => depth -= 1,
                            Token::SemiColon if depth == 0 => break,
                            _ => {}
                        }
                        if depth == 0
                            && matches!(
                                word_of(&tokens[end]).as_deref(),
                                Some("LIMIT" | "SETTINGS" | "FORMAT" | "UNION")
                            )
                        {
                            break;
                        }
                        end += 1;
                    }
                    parsed = Some((LIMIT_BY_MARKER, offset, limit, by + 1, end));
                }
            }
            if let Some((marker, offset, limit, from, end)) = parsed {
                let mut clause = vec![
                    TokenWithSpan::wrap(Token::Whitespace(
                        datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
                    )),
                    TokenWithSpan::wrap(Token::make_keyword("QUALIFY")),
                    TokenWithSpan::wrap(Token::Whitespace(
                        datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
                    )),
                    TokenWithSpan::wrap(Token::make_word(marker, None)),
                    TokenWithSpan::wrap(Token::LParen),
                    TokenWithSpan::wrap(Token::Number(offset, false)),
                    TokenWithSpan::wrap(Token::Comma),
                    TokenWithSpan::wrap(Token::Number(limit, false)),
                ];
                if from < end {
                    clause.push(TokenWithSpan::wrap(Token::Comma));
                    clause.extend(tokens[from..end].iter().cloned());
                }
                clause.push(TokenWithSpan::wrap(Token::RParen));
                clause.push(TokenWithSpan::wrap(Token::Whitespace(
                    datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
                )));
                match order_at.last().copied().flatten() {
                    Some(at) => {
                        let tail = out.split_off(at);
                        out.extend(clause);
                        out.extend(tail);
                    }
                    None => out.extend(clause),
                }
                i = end;
                continue;
            }
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

/// ClickHouse's `values` table function after FROM/JOIN —
/// `VALUES('a UInt8, b String', (1, 'x'), ...)`, `VALUES((1, 'x'), ...)` or
/// `VALUES(1, 2, ...)` — becomes the standard `(VALUES (1, 'x'), ...) AS
/// alias(a, b)`; columns are `c1, c2, ...` unless the structure names them.
fn values_function(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    use datafusion::sql::sqlparser::tokenizer::Whitespace;
    let sig = |v: &[TokenWithSpan], from: usize| {
        v[from..]
            .iter()
            .position(|t| !matches!(t.token, Token::Whitespace(_)))
            .map(|p| p + from)
    };
    let space = || TokenWithSpan::wrap(Token::Whitespace(Whitespace::Space));
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let prev = out
            .iter()
            .rev()
            .find(|p| !matches!(p.token, Token::Whitespace(_)))
            .and_then(word_of);
        let open = sig(&tokens, i + 1).filter(|o| tokens[*o].token == Token::LParen);
        let is_values = word_of(t).as_deref() == Some("VALUES")
            && matches!(prev.as_deref(), Some("FROM" | "JOIN"))
            && open.is_some();
        let Some(open) = open.filter(|_| is_values) else {
            out.push(t.clone());
            i += 1;
            continue;
        };
        // Arguments at depth 1, split by commas.
        let mut args: Vec<Vec<TokenWithSpan>> = vec![vec![]];
        let mut depth = 0;
        let mut close = None;
        for (k, tok) in tokens.iter().enumerate().skip(open + 1) {
            match &tok.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => {
                    close = Some(k);
                    break;
                }
                Token::RParen => depth -= 1,
                Token::Comma if depth == 0 => {
                    args.push(vec![]);
                    continue;
                }
                _ => {}
            }
            if let Some(last) = args.last_mut() {
                last.push(tok.clone());
            }
        }
        let Some(close) = close else {
            out.push(t.clone());
            i += 1;
            continue;
        };
        let significant = |a: &[TokenWithSpan]| -> Vec<TokenWithSpan> {
            a.iter()
                .filter(|t| !matches!(t.token, Token::Whitespace(_)))
                .cloned()
                .collect()
        };
        let mut names: Option<Vec<String>> = None;
        if let [only] = significant(&args[0]).as_slice() {
            if let Token::SingleQuotedString(structure) = &only.token {
                names = Some(
                    structure
                        .split(',')
                        .filter_map(|c| c.split_whitespace().next().map(str::to_string))
                        .collect(),
                );
                args.remove(0);
            }
        }
        // Each row: a tuple as it is, a scalar in parentheses.
        let mut rows: Vec<Vec<TokenWithSpan>> = Vec::new();
        let mut width = 1;
        for (n, a) in args.iter().enumerate() {
            let sig_tokens = significant(a);
            let is_tuple = sig_tokens.first().map(|t| &t.token) == Some(&Token::LParen)
                && sig_tokens.last().map(|t| &t.token) == Some(&Token::RParen);
            if is_tuple {
                if n == 0 {
                    let mut d = 0;
                    width = 1;
                    for tk in &sig_tokens[1..sig_tokens.len() - 1] {
                        match tk.token {
                            Token::LParen => d += 1,
                            Token::RParen => d -= 1,
                            Token::Comma if d == 0 => width += 1,
                            _ => {}
                        }
                    }
                }
                rows.push(a.clone());
            } else {
                let mut r = vec![TokenWithSpan::wrap(Token::LParen)];
                r.extend(a.iter().cloned());
                r.push(TokenWithSpan::wrap(Token::RParen));
                rows.push(r);
            }
        }
        let names = names.unwrap_or_else(|| (1..=width).map(|k| format!("c{k}")).collect());
        // A following `[AS] alias` names the table.
        let mut next = close + 1;
        let mut alias = "values".to_string();
        if let Some(a) = sig(&tokens, close + 1) {
            let a = if word_of(&tokens[a]).as_deref() == Some("AS") {
                sig(&tokens, a + 1).unwrap_or(a)
            } else {
                a
            };
            if let Token::Word(w) = &tokens[a].token {
                if w.keyword == Keyword::NoKeyword || w.quote_style.is_some() {
                    alias = w.value.clone();
                    next = a + 1;
                }
            }
        }
        out.push(TokenWithSpan::wrap(Token::LParen));
        out.push(TokenWithSpan::wrap(Token::make_keyword("VALUES")));
        out.push(space());
        for (n, r) in rows.into_iter().enumerate() {
            if n > 0 {
                out.push(TokenWithSpan::wrap(Token::Comma));
            }
            out.extend(r);
        }
        out.push(TokenWithSpan::wrap(Token::RParen));
        out.push(space());
        out.push(TokenWithSpan::wrap(Token::make_keyword("AS")));
        out.push(space());
        out.push(TokenWithSpan::wrap(Token::make_word(&alias, Some('"'))));
        out.push(TokenWithSpan::wrap(Token::LParen));
        for (n, name) in names.iter().enumerate() {
            if n > 0 {
                out.push(TokenWithSpan::wrap(Token::Comma));
            }
            out.push(TokenWithSpan::wrap(Token::make_word(name, Some('"'))));
        }
        out.push(TokenWithSpan::wrap(Token::RParen));
        out.push(space());
        i = next;
    }
    out
}

/// ClickHouse's `cond ? a : b` becomes `if(cond, a, b)`. The operator binds
/// loosest (below OR) and to the right, so the rightmost `?` is rewritten
/// first; the condition runs back to a comma, an open parenthesis or a
/// clause keyword, the else branch on to a comma, a closing parenthesis, an
/// alias or the next clause.
fn ternary_operator(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    const BEFORE: &[&str] = &[
        "SELECT", "WHERE", "PREWHERE", "HAVING", "ON", "WHEN", "THEN", "ELSE", "BY", "DISTINCT",
        "QUALIFY",
    ];
    const AFTER: &[&str] = &[
        "AS", "FROM", "WHERE", "PREWHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "SETTINGS",
        "FORMAT", "UNION", "END", "THEN", "ELSE", "WHEN", "ASC", "DESC", "QUALIFY", "WINDOW",
    ];
    let is_q = |t: &TokenWithSpan| matches!(&t.token, Token::Placeholder(p) if p == "?");
    // Bounded: each pass removes one `?`.
    for _ in 0..tokens.len() {
        let Some(q) = tokens.iter().rposition(is_q) else {
            break;
        };
        // The matching `:` at the same depth.
        let mut depth = 0i32;
        let mut colon = None;
        for (k, t) in tokens.iter().enumerate().skip(q + 1) {
            match &t.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => break,
                Token::RParen => depth -= 1,
                Token::Colon if depth == 0 => {
                    colon = Some(k);
                    break;
                }
                _ => {}
            }
        }
        let Some(colon) = colon else {
            break; // not ClickHouse's ternary: leave it to the parser's error
        };
        let mut start = q;
        let mut depth = 0i32;
        while start > 0 {
            let t = &tokens[start - 1];
            match &t.token {
                Token::RParen => depth += 1,
                Token::LParen if depth == 0 => break,
                Token::LParen => depth -= 1,
                // An enclosing ternary's `?` or `:` ends this one's condition.
                Token::Comma | Token::Colon if depth == 0 => break,
                Token::Placeholder(p) if depth == 0 && p == "?" => break,
                _ => {}
            }
            if depth == 0 && word_of(t).is_some_and(|w| BEFORE.contains(&w.as_str())) {
                break;
            }
            start -= 1;
        }
        let mut end = colon + 1;
        let mut depth = 0i32;
        while end < tokens.len() {
            let t = &tokens[end];
            match &t.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => break,
                Token::RParen => depth -= 1,
                Token::Comma | Token::SemiColon | Token::Colon if depth == 0 => break,
                _ => {}
            }
            if depth == 0 && word_of(t).is_some_and(|w| AFTER.contains(&w.as_str())) {
                break;
            }
            end += 1;
        }
        let mut call = vec![
            TokenWithSpan::wrap(Token::make_word("if", None)),
            TokenWithSpan::wrap(Token::LParen),
        ];
        call.extend(tokens[start..q].iter().cloned());
        call.push(TokenWithSpan::wrap(Token::Comma));
        call.extend(tokens[q + 1..colon].iter().cloned());
        call.push(TokenWithSpan::wrap(Token::Comma));
        call.extend(tokens[colon + 1..end].iter().cloned());
        call.push(TokenWithSpan::wrap(Token::RParen));
        call.push(TokenWithSpan::wrap(Token::Whitespace(
            datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
        )));
        tokens.splice(start..end, call);
    }
    tokens
}

/// ClickHouse join syntax sqlparser lacks: `ALL` strictness (the standard
/// join, so it is dropped), `USING a, b` without parentheses, and `GLOBAL`
/// before IN and JOIN.
fn join_syntax(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    const JOIN_WORDS: &[&str] = &["LEFT", "RIGHT", "INNER", "FULL", "JOIN", "OUTER", "CROSS"];
    let sig = |v: &[TokenWithSpan], from: usize| {
        v[from..]
            .iter()
            .position(|t| !matches!(t.token, Token::Whitespace(_)))
            .map(|p| p + from)
    };
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let w = word_of(t);
        if w.as_deref() == Some("ALL") {
            let next = sig(&tokens, i + 1).and_then(|n| word_of(&tokens[n]));
            let prev = out
                .iter()
                .rev()
                .find(|p| !matches!(p.token, Token::Whitespace(_)))
                .and_then(word_of);
            // `ALL LEFT JOIN`, `LEFT ALL JOIN`, `GLOBAL ALL JOIN`
            if next.as_deref().is_some_and(|n| JOIN_WORDS.contains(&n))
                && !matches!(prev.as_deref(), Some("UNION" | "EXCEPT" | "INTERSECT"))
            {
                i += 1;
                continue;
            }
        }
        // `x GLOBAL IN (subquery)`, `GLOBAL JOIN`: the executor computes a
        // subquery or the right side once on the initiator over every shard
        // in any case, which is what GLOBAL asks for.
        if w.as_deref() == Some("GLOBAL") {
            let next = sig(&tokens, i + 1).and_then(|n| word_of(&tokens[n]));
            let after_operand = out
                .iter()
                .rev()
                .find(|p| !matches!(p.token, Token::Whitespace(_)))
                .is_some_and(|p| match &p.token {
                    Token::RParen | Token::Number(..) | Token::SingleQuotedString(_) => true,
                    Token::Word(_) => !word_of(p).is_some_and(|w| {
                        matches!(
                            w.as_str(),
                            "WHERE"
                                | "PREWHERE"
                                | "HAVING"
                                | "AND"
                                | "OR"
                                | "NOT"
                                | "SELECT"
                                | "ON"
                                | "WHEN"
                                | "THEN"
                                | "ELSE"
                                | "BY"
                                | "DISTINCT"
                        )
                    }),
                    _ => false,
                });
            let keyword_next = next.as_deref().is_some_and(|n| {
                matches!(n, "IN" | "NOT" | "ANY" | "ALL" | "SEMI" | "ANTI" | "ASOF")
                    || JOIN_WORDS.contains(&n)
            });
            if after_operand && keyword_next {
                i += 1;
                continue;
            }
        }
        if w.as_deref() == Some("USING") {
            if let Some(n) = sig(&tokens, i + 1) {
                if tokens[n].token != Token::LParen {
                    out.push(t.clone());
                    out.push(TokenWithSpan::wrap(Token::LParen));
                    let mut j = n;
                    loop {
                        // identifier
                        out.push(tokens[j].clone());
                        match sig(&tokens, j + 1) {
                            Some(c) if tokens[c].token == Token::Comma => {
                                out.push(tokens[c].clone());
                                match sig(&tokens, c + 1) {
                                    Some(nx) => j = nx,
                                    None => {
                                        j = c;
                                        break;
                                    }
                                }
                            }
                            _ => break,
                        }
                    }
                    out.push(TokenWithSpan::wrap(Token::RParen));
                    i = j + 1;
                    continue;
                }
            }
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

/// Byte offset of a 1-based line/column location.
fn char_offset(sql: &str, loc: Location) -> usize {
    let mut off = 0;
    for (i, line) in sql.split('\n').enumerate() {
        if i + 1 == loc.line as usize {
            let col = (loc.column as usize).saturating_sub(1);
            return off
                + line
                    .char_indices()
                    .nth(col)
                    .map(|(b, _)| b)
                    .unwrap_or(line.len());
        }
        off += line.len() + 1;
    }
    sql.len()
}

/// Removes `FINAL` after a table name in a SELECT and records the table.
fn strip_final(tokens: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, HashSet<String>) {
    let first_word = tokens.iter().find_map(word_of);
    let mut finals = HashSet::new();
    if matches!(first_word.as_deref(), Some("OPTIMIZE")) {
        return (tokens, finals);
    }
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if word_of(&t).as_deref() == Some("FINAL") {
            // Previous significant token: the table name or its alias.
            let prev = out
                .iter()
                .rev()
                .find(|p| !matches!(p.token, Token::Whitespace(_)));
            if let Some(Token::Word(w)) = prev.map(|p| &p.token) {
                // A table may be named like a keyword (`replace`); only the
                // words that end a FROM item cannot be its name.
                if !matches!(w.keyword, Keyword::FROM | Keyword::JOIN) || w.quote_style.is_some() {
                    // The table is the word before the alias when there is one.
                    let mut sig = out
                        .iter()
                        .rev()
                        .filter(|p| !matches!(p.token, Token::Whitespace(_)));
                    let last = sig.next();
                    let before = sig.next();
                    let name = match (before.map(|b| &b.token), last.map(|l| &l.token)) {
                        (Some(Token::Word(b)), _) if b.keyword == Keyword::AS => {
                            sig.next().and_then(|t| match &t.token {
                                Token::Word(w) => Some(w.value.clone()),
                                _ => None,
                            })
                        }
                        (_, Some(Token::Word(l))) => Some(l.value.clone()),
                        _ => None,
                    };
                    if let Some(n) = name {
                        finals.insert(n);
                    }
                    continue;
                }
            }
        }
        out.push(t);
    }
    (out, finals)
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
        .map_err(|_| QueryError::UnknownType(format!("Unknown data type family: {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_scripts() {
        let s = split_statements("SELECT 1; SELECT ';' -- x;\n; /* ; */ SELECT 2");
        assert_eq!(s, vec!["SELECT 1", "SELECT ';'", "SELECT 2"]);
    }

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
        assert_eq!(ct.columns[2].ty.to_string(), "LowCardinality(String)");
        assert_eq!(ct.columns[3].ty.to_string(), "Nullable(Float64)");
        assert_eq!(ct.columns[4].ty.to_string(), "Decimal(10, 2)");
        assert_eq!(ct.columns[5].ty.to_string(), "DateTime64(3)");
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
