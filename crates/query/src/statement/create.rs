//! `CREATE TABLE / DATABASE / VIEW`, `DROP`, and the column definitions
//! CREATE and ALTER share: type, DEFAULT/MATERIALIZED/ALIAS, CODEC.

use super::*;

impl StmtParser<'_> {
    pub(super) fn create(&mut self) -> Result<Statement> {
        self.parser.next_token();
        let or_replace = self.eat_seq(&["OR", "REPLACE"]);
        match self.peek_word().as_deref() {
            Some("USER") => return self.create_user(or_replace),
            Some("ROLE") => return self.create_role(or_replace),
            Some("SETTINGS" | "PROFILE") => return self.create_profile(or_replace),
            Some("QUOTA") => return self.create_quota(or_replace),
            _ => {}
        }
        // A temporary table without ENGINE is a Memory table, as in ClickHouse;
        // it lives as long as the session.
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
        if !temporary && self.eat("VIEW") {
            return self.create_view(or_replace);
        }
        if let Some(kind @ ("MATERIALIZED" | "LIVE" | "WINDOW")) = self.peek_word().as_deref() {
            if self.peek_nth_word(1).as_deref() == Some("VIEW") {
                return Err(QueryError::NotImplemented(format!(
                    "CREATE {kind} VIEW is not supported (CREATE VIEW is)"
                )));
            }
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
            temporary,
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
                } else if self.parser.peek_nth_token(1).token == Token::LParen {
                    return self.table_over_function(ct);
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

    /// `CREATE TABLE t AS numbers(10)`: a table whose rows are a table
    /// function's. Kept as a view of `SELECT * FROM numbers(10)`: it holds
    /// no data and is read through that query, as ClickHouse reads it
    /// through the function's storage.
    fn table_over_function(&mut self, ct: CreateTable) -> Result<Statement> {
        if ct.temporary || ct.engine_given || !ct.columns.is_empty() {
            return self.fail(
                "Expected a table name after AS (a table function takes no ENGINE or columns)",
            );
        }
        let start = self.parser.peek_token().span.start;
        self.parser.next_token();
        self.skip_parens()?;
        let end = self.parser.peek_token().span.start;
        let query_sql = format!("SELECT * FROM {}", self.slice(start, end).trim());
        let query = Parser::new(&DIALECT)
            .try_with_sql(&query_sql)
            .and_then(|mut p| p.parse_query())
            .map_err(|e| syntax_error(&query_sql, &e))?;
        Ok(Statement::CreateView(Box::new(CreateView {
            view: ct.table,
            if_not_exists: ct.if_not_exists,
            or_replace: false,
            query_sql,
            query,
        })))
    }

    /// After `CREATE [OR REPLACE] VIEW`. The query's text is kept as
    /// written: it is parsed again, with the token passes, wherever the
    /// view is read.
    fn create_view(&mut self, or_replace: bool) -> Result<Statement> {
        let if_not_exists = self.eat_seq(&["IF", "NOT", "EXISTS"]);
        let view = self.table_ref()?;
        self.on_cluster()?;
        if self.parser.peek_token().token == Token::LParen {
            return Err(QueryError::NotImplemented(
                "a column list in CREATE VIEW is not supported: the view's columns are its query's"
                    .into(),
            ));
        }
        self.expect("AS")?;
        let start = self.parser.peek_token().span.start;
        let query = self.parser.parse_query().map_err(|e| self.err(e))?;
        let query_sql = self
            .slice(start, Location { line: 0, column: 0 })
            .trim()
            .trim_end_matches(';')
            .trim_end()
            .to_string();
        Ok(Statement::CreateView(Box::new(CreateView {
            view,
            if_not_exists,
            or_replace,
            query_sql,
            query,
        })))
    }

    pub(super) fn column_spec(&mut self) -> Result<ColumnSpec> {
        let name = self.ident()?;
        let untyped = matches!(
            self.peek_word().as_deref(),
            Some("DEFAULT" | "MATERIALIZED" | "ALIAS")
        );
        self.column_body(name, untyped)
    }

    pub(super) fn column_body(&mut self, name: String, untyped: bool) -> Result<ColumnSpec> {
        // Type names are taken from the source text: sqlparser prints them
        // back in its own spelling (`DATETIME`), not ClickHouse's.
        let mut ty = if untyped {
            None
        } else {
            let start = self.parser.peek_token().span.start;
            self.skip_type()?;
            let end = self.parser.peek_token().span.start;
            Some(parse_ch_type(self.slice(start, end).trim())?)
        };
        let mut default = None;
        let mut kind = qh_storage::ColumnKind::Default;
        let mut codec = None;
        loop {
            let declared = if self.eat("DEFAULT") {
                Some(qh_storage::ColumnKind::Default)
            } else if self.eat("MATERIALIZED") {
                Some(qh_storage::ColumnKind::Materialized)
            } else if self.eat("ALIAS") {
                Some(qh_storage::ColumnKind::Alias)
            } else {
                None
            };
            if let Some(k) = declared {
                kind = k;
                let e = self.expr()?;
                if has_subquery(&e) {
                    return Err(QueryError::other(
                        qh_types::ErrorCode::THERE_IS_NO_DEFAULT_VALUE,
                        format!("Default expression of column {name} cannot contain a subquery"),
                    ));
                }
                default = Some(e);
            } else if self.eat("CODEC") {
                let start = self.parser.peek_token().span.start;
                if self.parser.peek_token().token != Token::LParen {
                    return self.fail("Expected ( after CODEC");
                }
                self.skip_parens()?;
                let end = self.parser.peek_token().span.start;
                let text = self.slice(start, end).trim();
                let inner = &text[1..text.len().saturating_sub(1).max(1)];
                codec = Some(inner.parse::<qh_storage::codec::CodecChain>()?);
            } else if self.eat("TTL") || self.eat("COMMENT") {
                self.expr()?;
            } else if self.eat("NULL") {
                // `x String NULL` means Nullable in ClickHouse.
                ty = ty.map(|t| match t {
                    ChType::Nullable(_) => t,
                    t => ChType::Nullable(Box::new(t)),
                });
            } else if self.eat_seq(&["NOT", "NULL"]) {
            } else {
                break;
            }
        }
        Ok(ColumnSpec {
            name,
            ty,
            default,
            kind,
            codec,
        })
    }

    /// Consumes a type: a name and an optional balanced `(...)` (ClickHouse
    /// types take strings and nested types: `DateTime('UTC')`,
    /// `Nullable(Decimal(10, 2))`).
    pub(super) fn skip_type(&mut self) -> Result<()> {
        match self.parser.next_token().token {
            Token::Word(_) => {}
            _ => {
                self.parser.prev_token();
                return self.fail("Expected a data type");
            }
        }
        if self.parser.peek_token().token == Token::LParen {
            self.skip_parens()?;
        }
        Ok(())
    }

    pub(super) fn drop_stmt(&mut self) -> Result<Statement> {
        self.parser.next_token();
        match self.peek_word().as_deref() {
            Some("USER") => return self.drop_user(),
            Some("ROLE") => return self.drop_role(),
            Some("SETTINGS" | "PROFILE") => return self.drop_profile(),
            Some("QUOTA") => return self.drop_quota(),
            _ => {}
        }
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
}

/// Whether `e` holds a subquery anywhere (`(SELECT …)`, `IN (SELECT …)`,
/// `EXISTS`).
fn has_subquery(e: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::visit_expressions;
    visit_expressions(e, |x| match x {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
            std::ops::ControlFlow::Break(())
        }
        _ => std::ops::ControlFlow::Continue(()),
    })
    .is_break()
}
