//! The statement parser's core: tokens, words, names, settings, and the
//! dispatch of each statement by its first word; DDL is in `create` and
//! `alter`, access statements in `access`. Expressions, types and SELECT
//! bodies are sqlparser's.

use super::*;

pub(super) struct StmtParser<'a> {
    sql: &'a str,
    pub(super) parser: Parser<'a>,
    final_tables: HashSet<String>,
    /// The outermost SELECT said `WITH TOTALS`.
    totals: bool,
    /// A SELECT's trailing `FORMAT x` / `SETTINGS ...`, cut off before
    /// parsing (sqlparser would take `FORMAT` for a column alias).
    trailer_format: Option<String>,
    pub(super) trailer_settings: Settings,
}

pub(super) const DIALECT: ClickHouseDialect = ClickHouseDialect {};

pub(super) fn word_of(t: &TokenWithSpan) -> Option<String> {
    match &t.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

impl<'a> StmtParser<'a> {
    pub(super) fn new(sql: &'a str) -> Result<Self> {
        let tokens = super::literals::tokenize(sql)
            .map_err(|e| syntax_error(sql, &ParserError::TokenizerError(e.to_string())))?;
        check_backtracking_depth(&tokens).map_err(|m| QueryError::Syntax {
            position: 0,
            message: m,
        })?;
        let (tokens, final_tables) = strip_final(tokens);
        let (tokens, totals) = strip_totals(tokens);
        let tokens = join_syntax(tokens);
        let tokens = super::join_strictness::join_strictness(tokens)?;
        let tokens = limit_by_syntax(tokens);
        let tokens = values_function(tokens);
        let tokens = ternary_operator(tokens);
        let tokens = tuple_index_syntax(tokens);
        let tokens = in_array_syntax(tokens);
        let tokens = with_aliases(tokens);
        let tokens = inline_aliases(tokens);
        let (tokens, trailer_format, trailer_settings) =
            split_trailer(tokens).map_err(|m| syntax_error(sql, &ParserError::ParserError(m)))?;
        let parser = Parser::new(&DIALECT).with_tokens_with_locations(tokens);
        Ok(StmtParser {
            sql,
            parser,
            final_tables,
            totals,
            trailer_format,
            trailer_settings,
        })
    }

    pub(super) fn err(&self, e: ParserError) -> QueryError {
        syntax_error(self.sql, &e)
    }

    pub(super) fn fail<T>(&self, msg: &str) -> Result<T> {
        let t = self.parser.peek_token();
        Err(self.err(ParserError::ParserError(format!(
            "{msg}, found: {}{}",
            t.token, t.span.start
        ))))
    }

    /// Source text between two token locations (end exclusive; an empty
    /// end location means the end of the statement).
    pub(super) fn slice(&self, start: Location, end: Location) -> &'a str {
        let a = char_offset(self.sql, start);
        let b = if end.line == 0 {
            self.sql.len()
        } else {
            char_offset(self.sql, end)
        };
        self.sql.get(a..b.max(a)).unwrap_or("")
    }

    pub(super) fn peek_word(&self) -> Option<String> {
        word_of(&self.parser.peek_token())
    }

    pub(super) fn peek_nth_word(&self, n: usize) -> Option<String> {
        word_of(&self.parser.peek_nth_token(n))
    }

    pub(super) fn eat(&mut self, word: &str) -> bool {
        if self.peek_word().as_deref() == Some(word) {
            self.parser.next_token();
            true
        } else {
            false
        }
    }

    pub(super) fn eat_seq(&mut self, words: &[&str]) -> bool {
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

    pub(super) fn expect(&mut self, word: &str) -> Result<()> {
        if self.eat(word) {
            Ok(())
        } else {
            self.fail(&format!("Expected {word}"))
        }
    }

    pub(super) fn expect_end(&mut self) -> Result<()> {
        while self.parser.consume_token(&Token::SemiColon) {}
        match self.parser.peek_token().token {
            Token::EOF => Ok(()),
            _ => self.fail("Expected end of query"),
        }
    }

    pub(super) fn ident(&mut self) -> Result<String> {
        self.parser
            .parse_identifier()
            .map(|i| i.value)
            .map_err(|e| self.err(e))
    }

    pub(super) fn table_ref(&mut self) -> Result<TableRef> {
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

    pub(super) fn expr(&mut self) -> Result<Expr> {
        self.parser.parse_expr().map_err(|e| self.err(e))
    }

    /// `expr` or `(e1, e2, ...)` or `tuple()`: a key list.
    pub(super) fn key_list(&mut self) -> Result<Vec<Expr>> {
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

    /// A setting's value: one literal, as ClickHouse accepts after `name =`
    /// (`SET x = 1 + 1` is its syntax error too). Read as a token, so a
    /// value millions of operators long is refused before any tree as deep
    /// as it is built (printing or dropping one overflows the stack).
    pub(super) fn setting_value(&mut self) -> Result<String> {
        let negative = self.parser.consume_token(&Token::Minus);
        let t = self.parser.peek_token();
        let value = match &t.token {
            Token::Number(n, _) if negative => format!("-{n}"),
            Token::Number(n, _) => n.clone(),
            Token::SingleQuotedString(v) | Token::DoubleQuotedString(v) if !negative => v.clone(),
            Token::Word(w) if !negative => match w.value.to_ascii_lowercase().as_str() {
                "true" => "1".to_string(),
                "false" => "0".to_string(),
                _ => w.value.clone(),
            },
            _ => return self.fail("Expected a literal as the setting's value"),
        };
        self.parser.next_token();
        Ok(value)
    }

    pub(super) fn settings_list(&mut self) -> Result<Settings> {
        let mut s = Settings::new();
        loop {
            let k = self.ident()?;
            if !self.parser.consume_token(&Token::Eq) {
                return self.fail("Expected =");
            }
            let v = self.setting_value()?;
            s.set(&k, v);
            if !self.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        Ok(s)
    }

    pub(super) fn format_suffix(&mut self) -> Result<Option<String>> {
        if self.eat("FORMAT") {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    pub(super) fn statement(&mut self, first: &str) -> Result<Statement> {
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
            "DELETE" => {
                // Lightweight DELETE: the same mutation as ALTER ... DELETE.
                self.parser.next_token();
                self.expect("FROM")?;
                let table = self.table_ref()?;
                self.on_cluster()?;
                self.expect("WHERE")?;
                let filter = Box::new(self.expr()?);
                Ok(Statement::Alter {
                    table,
                    ops: vec![AlterOp::Delete { filter }],
                })
            }
            "GRANT" => self.grant_stmt(),
            "REVOKE" => self.revoke_stmt(),
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

    pub(super) fn select(&mut self) -> Result<Statement> {
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
            totals: self.totals,
            format,
            settings,
        })
    }

    pub(super) fn on_cluster(&mut self) -> Result<Option<String>> {
        if self.eat_seq(&["ON", "CLUSTER"]) {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    pub(super) fn insert_head(&mut self, format: Option<InsertSource>) -> Result<Statement> {
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

    /// Consumes a balanced `(...)` starting at the next token.
    pub(super) fn skip_parens(&mut self) -> Result<()> {
        let mut depth = 0;
        loop {
            match self.parser.next_token().token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Token::EOF => return self.fail("Unbalanced parentheses"),
                _ => {}
            }
        }
    }

    pub(super) fn show(&mut self) -> Result<Statement> {
        self.parser.next_token();
        if let Some(s) = self.show_access()? {
            return Ok(s);
        }
        if let Some(s) = self.show_quota()? {
            return Ok(s);
        }
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
        self.fail("Expected TABLES, DATABASES, USERS, CREATE TABLE or CREATE USER after SHOW")
    }
}
