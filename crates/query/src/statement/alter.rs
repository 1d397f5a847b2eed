//! `ALTER TABLE`: ADD / MODIFY / ALTER / DROP COLUMN, DROP PARTITION,
//! UPDATE and DELETE. ALTER of access entities is in `access`, `profiles`
//! and `quotas`.

use super::*;

impl StmtParser<'_> {
    pub(super) fn alter(&mut self) -> Result<Statement> {
        self.parser.next_token();
        match self.peek_word().as_deref() {
            Some("USER") => return self.alter_user(),
            Some("ROLE") => return self.alter_role(),
            Some("SETTINGS" | "PROFILE") => return self.alter_profile(),
            Some("QUOTA") => return self.alter_quota(),
            _ => {}
        }
        self.expect("TABLE")?;
        let table = self.table_ref()?;
        self.on_cluster()?;
        let mut ops = Vec::new();
        loop {
            if self.eat_seq(&["ADD", "COLUMN"]) {
                let if_not_exists = self.eat_seq(&["IF", "NOT", "EXISTS"]);
                let column = self.column_spec()?;
                let (after, first) = self.column_position()?;
                ops.push(AlterOp::AddColumn {
                    column: Box::new(column),
                    if_not_exists,
                    after,
                    first,
                });
            } else if self.eat_seq(&["MODIFY", "COLUMN"]) {
                let if_exists = self.eat_seq(&["IF", "EXISTS"]);
                let name = self.ident()?;
                if self.eat("REMOVE") {
                    let Some(property) = self.peek_word().filter(|w| {
                        matches!(
                            w.as_str(),
                            "DEFAULT" | "MATERIALIZED" | "ALIAS" | "CODEC" | "COMMENT" | "TTL"
                        )
                    }) else {
                        return self.fail(
                            "Expected DEFAULT, MATERIALIZED, ALIAS, CODEC, COMMENT or TTL after REMOVE",
                        );
                    };
                    self.parser.next_token();
                    ops.push(AlterOp::RemoveColumnProperty {
                        name,
                        property,
                        if_exists,
                    });
                } else {
                    let column = self.modify_column_spec(name)?;
                    ops.push(self.modify_column(column, if_exists)?);
                }
            } else if self.eat_seq(&["ALTER", "COLUMN"]) {
                // PostgreSQL's spelling: `ALTER COLUMN c TYPE T [DEFAULT …]`.
                let if_exists = self.eat_seq(&["IF", "EXISTS"]);
                let name = self.ident()?;
                self.expect("TYPE")?;
                let column = self.column_body(name, false)?;
                ops.push(self.modify_column(column, if_exists)?);
            } else if self.eat_seq(&["DROP", "PARTITION"]) {
                ops.push(AlterOp::DropPartition(Box::new(self.expr()?)));
            } else if self.eat_seq(&["DROP", "COLUMN"]) {
                let if_exists = self.eat_seq(&["IF", "EXISTS"]);
                let name = self.ident()?;
                ops.push(AlterOp::DropColumn { name, if_exists });
            } else if self.eat("UPDATE") {
                let mut assignments = Vec::new();
                loop {
                    let column = self.ident()?;
                    if !self.parser.consume_token(&Token::Eq) {
                        return self.fail("Expected = after the column to update");
                    }
                    assignments.push((column, self.expr()?));
                    if !self.parser.consume_token(&Token::Comma) {
                        break;
                    }
                }
                self.expect("WHERE")?;
                let filter = Box::new(self.expr()?);
                ops.push(AlterOp::Update {
                    assignments,
                    filter,
                });
            } else if self.eat("DELETE") {
                self.expect("WHERE")?;
                ops.push(AlterOp::Delete {
                    filter: Box::new(self.expr()?),
                });
            } else {
                return Err(QueryError::NotImplemented(format!(
                    "ALTER {} is not supported yet (ADD, DROP and MODIFY COLUMN, DROP PARTITION, and UPDATE and DELETE of KeeperMap tables are)",
                    self.parser.peek_token().token
                )));
            }
            if !self.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        Ok(Statement::Alter { table, ops })
    }

    /// A MODIFY COLUMN of `column`, with its position if one follows.
    fn modify_column(&mut self, column: ColumnSpec, if_exists: bool) -> Result<AlterOp> {
        let (after, first) = self.column_position()?;
        Ok(AlterOp::ModifyColumn {
            column: Box::new(column),
            if_exists,
            after,
            first,
        })
    }

    /// `AFTER c` or `FIRST` of ADD / MODIFY COLUMN.
    fn column_position(&mut self) -> Result<(Option<String>, bool)> {
        if self.eat("AFTER") {
            Ok((Some(self.ident()?), false))
        } else {
            Ok((None, self.eat("FIRST")))
        }
    }

    /// What follows a column's name in `MODIFY COLUMN`: every part optional,
    /// the type too (it is then kept).
    fn modify_column_spec(&mut self, name: String) -> Result<ColumnSpec> {
        let next = self.parser.peek_token().token;
        let untyped = matches!(next, Token::EOF | Token::Comma | Token::SemiColon)
            || matches!(
                self.peek_word().as_deref(),
                Some(
                    "DEFAULT"
                        | "MATERIALIZED"
                        | "ALIAS"
                        | "CODEC"
                        | "COMMENT"
                        | "TTL"
                        | "FIRST"
                        | "AFTER"
                        | "SETTINGS"
                )
            );
        if self.peek_word().as_deref() == Some("TYPE") {
            // `ALTER COLUMN c TYPE T` is the other spelling; MODIFY takes
            // the type alone, as ClickHouse's parser does.
            return self.fail("Expected a data type, not TYPE, after MODIFY COLUMN <name>");
        }
        self.column_body(name, untyped)
    }
}
