//! Settings profiles in ClickHouse's syntax: `CREATE/ALTER/DROP SETTINGS
//! PROFILE`, `ALTER ROLE ... SETTINGS`, the `SETTINGS ...` elements users,
//! roles and profiles share, and `TO {names | ALL [EXCEPT names] | NONE}`.

use qh_access::{AccessStatement, Applies, SettingElement, Writability};

use super::*;

impl StmtParser<'_> {
    /// After `SETTINGS`: `NONE`, or elements separated by commas:
    /// `PROFILE 'p'` / `INHERIT 'p'`, or
    /// `name [= value] [MIN [=] v] [MAX [=] v] [CONST|READONLY|WRITABLE|CHANGEABLE_IN_READONLY]`.
    pub(super) fn setting_elements(&mut self) -> Result<Vec<SettingElement>> {
        if self.eat("NONE") {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        loop {
            if self.eat("PROFILE") || self.eat("INHERIT") {
                out.push(SettingElement::Profile {
                    name: self.user_name()?,
                });
            } else {
                let name = self.ident()?;
                let value = match self.parser.consume_token(&Token::Eq) {
                    true => Some(self.setting_value()?),
                    false => None,
                };
                let (mut min, mut max, mut writability) = (None, None, None);
                loop {
                    if self.eat("MIN") {
                        let _ = self.parser.consume_token(&Token::Eq);
                        min = Some(self.setting_value()?);
                    } else if self.eat("MAX") {
                        let _ = self.parser.consume_token(&Token::Eq);
                        max = Some(self.setting_value()?);
                    } else if self.eat("CONST") || self.eat("READONLY") {
                        writability = Some(Writability::Const);
                    } else if self.eat("WRITABLE") {
                        writability = Some(Writability::Writable);
                    } else if self.eat("CHANGEABLE_IN_READONLY") {
                        writability = Some(Writability::ChangeableInReadonly);
                    } else {
                        break;
                    }
                }
                out.push(SettingElement::Setting {
                    name,
                    value,
                    min,
                    max,
                    writability,
                });
            }
            if !self.parser.consume_token(&Token::Comma) {
                return Ok(out);
            }
        }
    }

    /// After `TO`: `NONE`, `ALL [EXCEPT names]` or names.
    pub(super) fn applies_to(&mut self) -> Result<Applies> {
        if self.eat("NONE") {
            return Ok(Applies::default());
        }
        if self.eat("ALL") {
            let names = match self.eat("EXCEPT") {
                true => self.user_names()?,
                false => Vec::new(),
            };
            return Ok(Applies { all: true, names });
        }
        Ok(Applies {
            all: false,
            names: self.user_names()?,
        })
    }

    /// At `SETTINGS PROFILE` or `PROFILE` (after CREATE, ALTER or DROP).
    fn profile_keyword(&mut self) -> Result<()> {
        self.eat("SETTINGS");
        self.expect("PROFILE")
    }

    /// After `CREATE [OR REPLACE]`, at `[SETTINGS] PROFILE`.
    pub(super) fn create_profile(&mut self, or_replace: bool) -> Result<Statement> {
        self.profile_keyword()?;
        let if_not_exists = self.eat_seq(&["IF", "NOT", "EXISTS"]);
        let names = self.user_names()?;
        self.on_cluster()?;
        let mut elements = Vec::new();
        let mut to = Applies::default();
        loop {
            if self.eat("SETTINGS") {
                elements = self.setting_elements()?;
            } else if self.eat("TO") {
                to = self.applies_to()?;
            } else if self.eat("IN") {
                self.ident()?;
            } else {
                break;
            }
        }
        Ok(Statement::Access(AccessStatement::CreateProfile {
            names,
            if_not_exists,
            or_replace,
            elements,
            to,
        }))
    }

    /// After `ALTER`, at `[SETTINGS] PROFILE`.
    pub(super) fn alter_profile(&mut self) -> Result<Statement> {
        self.profile_keyword()?;
        let if_exists = self.eat_seq(&["IF", "EXISTS"]);
        let name = self.user_name()?;
        self.on_cluster()?;
        let (mut rename_to, mut elements, mut to) = (None, None, None);
        loop {
            if self.eat_seq(&["RENAME", "TO"]) {
                rename_to = Some(self.user_name()?);
            } else if self.eat("SETTINGS") {
                elements = Some(self.setting_elements()?);
            } else if self.eat("TO") {
                to = Some(self.applies_to()?);
            } else if matches!(self.peek_word().as_deref(), Some("ADD" | "MODIFY" | "DROP")) {
                return Err(QueryError::NotImplemented(
                    "ALTER SETTINGS PROFILE ... ADD/MODIFY/DROP SETTINGS is not supported: SETTINGS replaces the list".into(),
                ));
            } else {
                break;
            }
        }
        Ok(Statement::Access(AccessStatement::AlterProfile {
            name,
            if_exists,
            rename_to,
            elements,
            to,
        }))
    }

    /// After `DROP`, at `[SETTINGS] PROFILE`.
    pub(super) fn drop_profile(&mut self) -> Result<Statement> {
        self.profile_keyword()?;
        let if_exists = self.eat_seq(&["IF", "EXISTS"]);
        let names = self.user_names()?;
        self.on_cluster()?;
        Ok(Statement::Access(AccessStatement::DropProfile {
            names,
            if_exists,
        }))
    }

    /// After `ALTER`, at `ROLE`: only its `SETTINGS` change.
    pub(super) fn alter_role(&mut self) -> Result<Statement> {
        self.expect("ROLE")?;
        let if_exists = self.eat_seq(&["IF", "EXISTS"]);
        let name = self.user_name()?;
        self.on_cluster()?;
        if self.peek_word().as_deref() == Some("RENAME") {
            return Err(QueryError::NotImplemented(
                "ALTER ROLE ... RENAME TO is not supported: create the new role, grant it, drop the old".into(),
            ));
        }
        let settings = match self.eat("SETTINGS") {
            true => Some(self.setting_elements()?),
            false => None,
        };
        Ok(Statement::Access(AccessStatement::AlterRole {
            name,
            if_exists,
            settings,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(sql: &str) -> AccessStatement {
        match parse_statement(sql) {
            Ok(Statement::Access(a)) => a,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn profile_statements_parse() {
        let a = access(
            "CREATE SETTINGS PROFILE IF NOT EXISTS xyz SETTINGS max_memory_usage = 100000001 MIN 90000000 MAX = 110000000, readonly = 1 CONST, PROFILE 'base' TO robin, analysts",
        );
        let AccessStatement::CreateProfile {
            names,
            if_not_exists,
            elements,
            to,
            ..
        } = a
        else {
            panic!("{a:?}")
        };
        assert_eq!(names, vec!["xyz".to_string()]);
        assert!(if_not_exists);
        assert_eq!(elements.len(), 3);
        assert_eq!(
            elements[0],
            SettingElement::Setting {
                name: "max_memory_usage".into(),
                value: Some("100000001".into()),
                min: Some("90000000".into()),
                max: Some("110000000".into()),
                writability: None,
            }
        );
        assert_eq!(
            elements[2],
            SettingElement::Profile {
                name: "base".into()
            }
        );
        assert_eq!(to.names, vec!["robin".to_string(), "analysts".to_string()]);
        assert!(!to.all);
        let a = access("ALTER PROFILE xyz TO ALL EXCEPT admin");
        assert!(matches!(
            a,
            AccessStatement::AlterProfile { to: Some(Applies { all: true, ref names }), elements: None, .. } if names == &["admin".to_string()]
        ));
        assert!(matches!(
            access("DROP SETTINGS PROFILE IF EXISTS xyz, alpha"),
            AccessStatement::DropProfile { ref names, if_exists: true } if names.len() == 2
        ));
        assert!(matches!(
            access("ALTER ROLE worker SETTINGS NONE"),
            AccessStatement::AlterRole { settings: Some(ref s), .. } if s.is_empty()
        ));
        assert!(matches!(
            access("ALTER USER robin SETTINGS PROFILE 'xyz'"),
            AccessStatement::AlterUser { settings: Some(ref s), .. } if s.len() == 1
        ));
        assert!(matches!(
            access("CREATE ROLE worker SETTINGS max_threads = 2 CHANGEABLE_IN_READONLY"),
            AccessStatement::CreateRole { ref settings, .. } if settings.len() == 1
        ));
        assert!(parse_statement("CREATE SETTINGS PROFILE p SETTINGS max_threads =").is_err());
    }
}
