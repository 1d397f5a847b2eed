//! Access statements: `CREATE/ALTER/DROP USER`, `CREATE/DROP ROLE`,
//! `GRANT`/`REVOKE` of privileges or roles, `SHOW USERS/ROLES/GRANTS`,
//! `SHOW CREATE USER/ROLE`, in ClickHouse's syntax; and
//! [`mask_secrets`], which hides the password in a statement's text before
//! it is traced or shown in `system.processes`.

use std::collections::BTreeSet;

use qh_access::{AccessError, AccessStatement, AuthSpec, HostRule, Hosts, Privilege, TargetSpec};

use super::*;

/// Whether `sql` is an access statement, which the coordinator replicates
/// by itself: `ON CLUSTER` then changes nothing and must not queue it for
/// every host (the second host would find the user already there).
pub fn is_access_statement(sql: &str) -> bool {
    // Runs for every statement (to mask secrets), so it reads only the
    // first words, never tokenizing a large INSERT.
    let words = leading_words(sql, 4);
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let entity = |w: &str| matches!(w, "USER" | "ROLE" | "SETTINGS" | "PROFILE" | "QUOTA");
    matches!(w(0), "CREATE" | "ALTER" | "DROP")
        && (entity(w(1)) || (w(1) == "OR" && w(2) == "REPLACE" && entity(w(3))))
}

/// Up to `n` leading words of `sql`, uppercased, skipping blanks and
/// comments; stops at the first thing that is not a bare word.
fn leading_words(sql: &str, n: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = sql;
    while words.len() < n {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |x| x.1);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |x| x.1);
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            words.push(rest[..end].to_ascii_uppercase());
            rest = &rest[end..];
        }
    }
    words
}

/// `sql` with the strings after `BY` and `SALT` of an access statement
/// replaced by `'[HIDDEN]'`, as ClickHouse shows them; other statements
/// unchanged.
pub fn mask_secrets(sql: &str) -> std::borrow::Cow<'_, str> {
    if !is_access_statement(sql) {
        return sql.into();
    }
    let Ok(tokens) = Tokenizer::new(&parser::DIALECT, sql).tokenize_with_location() else {
        // Not tokenizable: show nothing of it rather than a password.
        return "[HIDDEN]".into();
    };
    let mut out = String::with_capacity(sql.len());
    let mut hide_next = false;
    for t in &tokens {
        match &t.token {
            Token::Whitespace(_) => {}
            Token::SingleQuotedString(_) | Token::DoubleQuotedString(_) if hide_next => {
                out.push_str("'[HIDDEN]'");
                hide_next = false;
                continue;
            }
            Token::Word(w) if w.quote_style.is_none() => {
                let u = w.value.to_ascii_uppercase();
                hide_next = u == "BY" || u == "SALT";
            }
            _ => hide_next = false,
        }
        out.push_str(&t.token.to_string());
    }
    out.into()
}

fn access_err(e: AccessError) -> QueryError {
    QueryError::other(e.code(), e.to_string())
}

impl StmtParser<'_> {
    /// A user name: an identifier or a string.
    pub(super) fn user_name(&mut self) -> Result<String> {
        let t = self.parser.peek_token();
        if let Token::SingleQuotedString(s) = &t.token {
            let s = s.clone();
            self.parser.next_token();
            return Ok(s);
        }
        self.ident()
    }

    pub(super) fn user_names(&mut self) -> Result<Vec<String>> {
        let mut names = vec![self.user_name()?];
        while self.parser.consume_token(&Token::Comma) {
            names.push(self.user_name()?);
        }
        Ok(names)
    }

    fn string(&mut self) -> Result<String> {
        self.parser.parse_literal_string().map_err(|e| self.err(e))
    }

    /// After `CREATE [OR REPLACE]`, at `USER`.
    pub(super) fn create_user(&mut self, or_replace: bool) -> Result<Statement> {
        self.expect("USER")?;
        let if_not_exists = self.eat_seq(&["IF", "NOT", "EXISTS"]);
        let names = self.user_names()?;
        self.on_cluster()?;
        let clauses = self.user_clauses(false)?;
        Ok(Statement::Access(AccessStatement::CreateUser {
            names,
            if_not_exists,
            or_replace,
            auth: clauses.auth,
            hosts: clauses.hosts,
            default_database: clauses.default_database.flatten(),
            settings: clauses.settings.unwrap_or_default(),
        }))
    }

    /// After `ALTER`, at `USER`.
    pub(super) fn alter_user(&mut self) -> Result<Statement> {
        self.expect("USER")?;
        let if_exists = self.eat_seq(&["IF", "EXISTS"]);
        let name = self.user_name()?;
        self.on_cluster()?;
        let clauses = self.user_clauses(true)?;
        Ok(Statement::Access(AccessStatement::AlterUser {
            name,
            if_exists,
            rename_to: clauses.rename_to,
            auth: clauses.auth,
            hosts: clauses.hosts,
            default_database: clauses.default_database,
            settings: clauses.settings,
        }))
    }

    /// After `DROP`, at `USER`.
    pub(super) fn drop_user(&mut self) -> Result<Statement> {
        self.expect("USER")?;
        let if_exists = self.eat_seq(&["IF", "EXISTS"]);
        let names = self.user_names()?;
        self.on_cluster()?;
        Ok(Statement::Access(AccessStatement::DropUser {
            names,
            if_exists,
        }))
    }

    /// After `CREATE [OR REPLACE]`, at `ROLE`.
    pub(super) fn create_role(&mut self, or_replace: bool) -> Result<Statement> {
        self.expect("ROLE")?;
        let if_not_exists = self.eat_seq(&["IF", "NOT", "EXISTS"]);
        let names = self.user_names()?;
        self.on_cluster()?;
        let settings = match self.eat("SETTINGS") {
            true => self.setting_elements()?,
            false => Vec::new(),
        };
        Ok(Statement::Access(AccessStatement::CreateRole {
            names,
            if_not_exists,
            or_replace,
            settings,
        }))
    }

    /// After `DROP`, at `ROLE`.
    pub(super) fn drop_role(&mut self) -> Result<Statement> {
        self.expect("ROLE")?;
        let if_exists = self.eat_seq(&["IF", "EXISTS"]);
        let names = self.user_names()?;
        self.on_cluster()?;
        Ok(Statement::Access(AccessStatement::DropRole {
            names,
            if_exists,
        }))
    }

    /// Whether a GRANT or REVOKE names roles (`... TO/FROM` comes before any
    /// `ON` outside parentheses) rather than privileges on a target.
    fn names_roles(&self, until: &str) -> bool {
        let mut depth = 0usize;
        for i in 0.. {
            match &self.parser.peek_nth_token(i).token {
                Token::EOF => return false,
                Token::LParen => depth += 1,
                Token::RParen => depth = depth.saturating_sub(1),
                Token::Word(w) if depth == 0 && w.quote_style.is_none() => {
                    let u = w.value.to_ascii_uppercase();
                    if u == "ON" {
                        return false;
                    }
                    if u == until {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }

    /// `GRANT privileges ON target TO grantees [WITH GRANT OPTION]` or
    /// `GRANT roles TO grantees [WITH ADMIN OPTION]`.
    pub(super) fn grant_stmt(&mut self) -> Result<Statement> {
        self.parser.next_token();
        self.on_cluster()?;
        if self.names_roles("TO") {
            let roles = self.user_names()?;
            self.expect("TO")?;
            let grantees = self.user_names()?;
            let admin_option = self.eat_seq(&["WITH", "ADMIN", "OPTION"]);
            return Ok(Statement::Access(AccessStatement::GrantRoles {
                roles,
                grantees,
                admin_option,
            }));
        }
        let privileges = self.privileges()?;
        let target = self.grant_target()?;
        self.expect("TO")?;
        let grantees = self.user_names()?;
        let grant_option = self.eat_seq(&["WITH", "GRANT", "OPTION"]);
        if self.eat_seq(&["WITH", "REPLACE", "OPTION"]) {
            return Err(QueryError::NotImplemented(
                "GRANT ... WITH REPLACE OPTION is not supported yet".into(),
            ));
        }
        Ok(Statement::Access(AccessStatement::Grant {
            privileges,
            target,
            grantees,
            grant_option,
        }))
    }

    /// `REVOKE [GRANT OPTION FOR] privileges ON target FROM grantees` or
    /// `REVOKE [ADMIN OPTION FOR] roles FROM grantees`.
    pub(super) fn revoke_stmt(&mut self) -> Result<Statement> {
        self.parser.next_token();
        self.on_cluster()?;
        let admin_option_only = self.eat_seq(&["ADMIN", "OPTION", "FOR"]);
        if admin_option_only || self.names_roles("FROM") {
            let roles = self.user_names()?;
            self.expect("FROM")?;
            let grantees = self.user_names()?;
            return Ok(Statement::Access(AccessStatement::RevokeRoles {
                roles,
                grantees,
                admin_option_only,
            }));
        }
        let grant_option_only = self.eat_seq(&["GRANT", "OPTION", "FOR"]);
        let privileges = self.privileges()?;
        let target = self.grant_target()?;
        self.expect("FROM")?;
        let grantees = self.user_names()?;
        Ok(Statement::Access(AccessStatement::Revoke {
            privileges,
            target,
            grantees,
            grant_option_only,
        }))
    }

    /// `SELECT(a, b), INSERT, KILL QUERY, ...` up to `ON`.
    fn privileges(&mut self) -> Result<Vec<(Privilege, Option<BTreeSet<String>>)>> {
        let mut out = Vec::new();
        loop {
            let mut words = Vec::new();
            while let Some(w) = self.peek_word() {
                if w == "ON" {
                    break;
                }
                self.parser.next_token();
                words.push(w);
            }
            if words.is_empty() {
                return self.fail("Expected a privilege");
            }
            let columns = if self.parser.consume_token(&Token::LParen) {
                let mut cols = BTreeSet::new();
                loop {
                    cols.insert(self.ident()?);
                    if !self.parser.consume_token(&Token::Comma) {
                        break;
                    }
                }
                if !self.parser.consume_token(&Token::RParen) {
                    return self.fail("Expected )");
                }
                Some(cols)
            } else {
                None
            };
            let privileges = Privilege::parse(&words.join(" ")).map_err(access_err)?;
            if columns.is_some() && privileges != [Privilege::Select] {
                return Err(QueryError::NotImplemented(
                    "column lists are supported for SELECT only".into(),
                ));
            }
            out.extend(privileges.into_iter().map(|p| (p, columns.clone())));
            if !self.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        self.expect("ON")?;
        Ok(out)
    }

    /// `*.*`, `db.*`, `*`, `db.table`, `table`.
    fn grant_target(&mut self) -> Result<TargetSpec> {
        let first = if self.parser.consume_token(&Token::Mul) {
            None
        } else {
            Some(self.ident()?)
        };
        if !self.parser.consume_token(&Token::Period) {
            return Ok(match first {
                None => TargetSpec::Database(None),
                Some(t) => TargetSpec::Table(None, t),
            });
        }
        let second = if self.parser.consume_token(&Token::Mul) {
            None
        } else {
            Some(self.ident()?)
        };
        match (first, second) {
            (None, None) => Ok(TargetSpec::Everything),
            (Some(db), None) => Ok(TargetSpec::Database(Some(db))),
            (Some(db), Some(t)) => Ok(TargetSpec::Table(Some(db), t)),
            (None, Some(_)) => self.fail("Expected *.*, db.* or db.table"),
        }
    }

    /// After `SHOW`: `USERS`, `ROLES`, `CREATE USER|ROLE names` or
    /// `GRANTS [FOR names]`.
    pub(super) fn show_access(&mut self) -> Result<Option<Statement>> {
        if self.eat("GRANTS") {
            let names = if self.eat("FOR") {
                self.user_names()?
            } else {
                Vec::new()
            };
            return Ok(Some(Statement::Access(AccessStatement::ShowGrants {
                names,
            })));
        }
        if self.eat("USERS") {
            return Ok(Some(Statement::Access(AccessStatement::ShowUsers)));
        }
        if self.eat("ROLES") {
            return Ok(Some(Statement::Access(AccessStatement::ShowRoles)));
        }
        if self.eat_seq(&["SETTINGS", "PROFILES"]) || self.eat("PROFILES") {
            return Ok(Some(Statement::Access(AccessStatement::ShowProfiles)));
        }
        if self.eat_seq(&["CREATE", "SETTINGS", "PROFILE"]) || self.eat_seq(&["CREATE", "PROFILE"])
        {
            let names = self.user_names()?;
            return Ok(Some(Statement::Access(
                AccessStatement::ShowCreateProfile { names },
            )));
        }
        if self.eat_seq(&["CREATE", "ROLE"]) {
            let names = self.user_names()?;
            return Ok(Some(Statement::Access(AccessStatement::ShowCreateRole {
                names,
            })));
        }
        if self.eat_seq(&["CREATE", "USER"]) {
            let names = self.user_names()?;
            return Ok(Some(Statement::Access(AccessStatement::ShowCreateUser {
                names,
            })));
        }
        Ok(None)
    }

    fn user_clauses(&mut self, alter: bool) -> Result<UserClauses> {
        let mut c = UserClauses::default();
        loop {
            if alter && self.eat_seq(&["RENAME", "TO"]) {
                c.rename_to = Some(self.user_name()?);
            } else if self.eat_seq(&["NOT", "IDENTIFIED"]) {
                c.auth = Some(AuthSpec::NoPassword);
            } else if self.eat("IDENTIFIED") {
                c.auth = Some(self.identified()?);
            } else if self.eat("HOST") {
                c.hosts = Some(self.hosts()?);
            } else if self.eat_seq(&["DEFAULT", "DATABASE"]) {
                c.default_database = Some(if self.eat("NONE") {
                    None
                } else {
                    Some(self.ident()?)
                });
            } else if self.eat("SETTINGS") {
                c.settings = Some(self.setting_elements()?);
            } else if matches!(
                self.peek_word().as_deref(),
                Some("DEFAULT" | "GRANTEES" | "VALID" | "IN" | "ADD" | "DROP")
            ) {
                let word = self.peek_word().unwrap_or_default();
                return Err(QueryError::NotImplemented(format!(
                    "{word} in a user definition is not supported yet (IDENTIFIED, HOST, DEFAULT DATABASE, SETTINGS are)"
                )));
            } else {
                break;
            }
        }
        Ok(c)
    }

    /// After `IDENTIFIED`: `[WITH kind] [BY 'secret'] [SALT 'salt']`.
    fn identified(&mut self) -> Result<AuthSpec> {
        let kind = if self.eat("WITH") {
            self.ident()?.to_ascii_lowercase()
        } else {
            "sha256_password".to_string()
        };
        let by = if self.eat("BY") {
            Some(self.string()?)
        } else {
            None
        };
        let salt = if self.eat("SALT") {
            Some(self.string()?)
        } else {
            None
        };
        AuthSpec::from_kind(&kind, by, salt).map_err(access_err)
    }

    /// After `HOST`: `ANY | NONE | LOCAL | IP 'net'`, comma-separated.
    fn hosts(&mut self) -> Result<Hosts> {
        let mut rules = Vec::new();
        let mut any = false;
        loop {
            match self.peek_word().as_deref() {
                Some("ANY") => {
                    self.parser.next_token();
                    any = true;
                }
                Some("NONE") => {
                    self.parser.next_token();
                }
                Some("LOCAL") => {
                    self.parser.next_token();
                    rules.push(HostRule::Local);
                }
                Some("IP") => {
                    self.parser.next_token();
                    let net = self.string()?;
                    rules.push(HostRule::ip(&net).map_err(access_err)?);
                }
                Some(w @ ("NAME" | "REGEXP" | "LIKE")) => {
                    return Err(QueryError::NotImplemented(format!(
                        "HOST {w} is not supported (ANY, NONE, LOCAL, IP are)"
                    )))
                }
                _ => return self.fail("Expected ANY, NONE, LOCAL or IP after HOST"),
            }
            if !self.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        Ok(if any {
            Hosts::Any
        } else {
            Hosts::List { rules }
        })
    }
}

#[derive(Default)]
struct UserClauses {
    rename_to: Option<String>,
    auth: Option<AuthSpec>,
    hosts: Option<Hosts>,
    default_database: Option<Option<String>>,
    settings: Option<Vec<qh_access::SettingElement>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Statement {
        fn access(self) -> Option<AccessStatement> {
            match self {
                Statement::Access(a) => Some(a),
                _ => None,
            }
        }
    }

    #[test]
    fn user_statements_parse() {
        let s = parse_statement(
            "CREATE USER IF NOT EXISTS alice, 'bob' IDENTIFIED WITH sha256_password BY 'pw' HOST LOCAL, IP '10.0.0.0/8' DEFAULT DATABASE db",
        )
        .unwrap();
        let Statement::Access(AccessStatement::CreateUser {
            names,
            if_not_exists,
            auth,
            hosts,
            default_database,
            ..
        }) = s
        else {
            panic!("{s:?}")
        };
        assert_eq!(names, ["alice", "bob"]);
        assert!(if_not_exists);
        assert_eq!(auth, Some(AuthSpec::Password("pw".into())));
        assert_eq!(
            hosts,
            Some(Hosts::List {
                rules: vec![HostRule::Local, HostRule::ip("10.0.0.0/8").unwrap()]
            })
        );
        assert_eq!(default_database.as_deref(), Some("db"));
        assert!(matches!(
            parse_statement("ALTER USER a RENAME TO b IDENTIFIED BY 'x'").unwrap(),
            Statement::Access(AccessStatement::AlterUser {
                rename_to: Some(_),
                auth: Some(AuthSpec::Password(_)),
                ..
            })
        ));
        assert!(matches!(
            parse_statement("DROP USER IF EXISTS a, b").unwrap(),
            Statement::Access(AccessStatement::DropUser {
                if_exists: true,
                ..
            })
        ));
        assert!(matches!(
            parse_statement("SHOW USERS").unwrap(),
            Statement::Access(AccessStatement::ShowUsers)
        ));
        assert_eq!(
            parse_statement(
                "GRANT SELECT(a, b), INSERT, KILL QUERY ON db.* TO alice, bob WITH GRANT OPTION"
            )
            .unwrap_or_else(|e| panic!("{e}"))
            .access(),
            Some(AccessStatement::Grant {
                privileges: vec![
                    (
                        Privilege::Select,
                        Some(["a".to_string(), "b".to_string()].into())
                    ),
                    (Privilege::Insert, None),
                    (Privilege::KillQuery, None),
                ],
                target: TargetSpec::Database(Some("db".into())),
                grantees: vec!["alice".into(), "bob".into()],
                grant_option: true,
            })
        );
        assert!(matches!(
            parse_statement("REVOKE GRANT OPTION FOR ALL ON *.* FROM alice")
                .unwrap()
                .access(),
            Some(AccessStatement::Revoke {
                grant_option_only: true,
                target: TargetSpec::Everything,
                ..
            })
        ));
        assert!(matches!(
            parse_statement("GRANT SELECT ON t TO a").unwrap().access(),
            Some(AccessStatement::Grant {
                target: TargetSpec::Table(None, _),
                ..
            })
        ));
        assert!(matches!(
            parse_statement("SHOW GRANTS FOR a").unwrap().access(),
            Some(AccessStatement::ShowGrants { .. })
        ));
        assert_eq!(
            parse_statement("GRANT reader, `ops team` TO alice, writer WITH ADMIN OPTION")
                .unwrap()
                .access(),
            Some(AccessStatement::GrantRoles {
                roles: vec!["reader".into(), "ops team".into()],
                grantees: vec!["alice".into(), "writer".into()],
                admin_option: true,
            })
        );
        assert!(matches!(
            parse_statement("REVOKE ADMIN OPTION FOR reader FROM alice")
                .unwrap()
                .access(),
            Some(AccessStatement::RevokeRoles {
                admin_option_only: true,
                ..
            })
        ));
        assert!(matches!(
            parse_statement("REVOKE reader FROM alice")
                .unwrap()
                .access(),
            Some(AccessStatement::RevokeRoles {
                admin_option_only: false,
                ..
            })
        ));
        // A column named like a keyword inside the column list: still privileges.
        assert!(matches!(
            parse_statement("GRANT SELECT(`to`, b) ON db.t TO r")
                .unwrap()
                .access(),
            Some(AccessStatement::Grant { .. })
        ));
        assert!(matches!(
            parse_statement("CREATE ROLE IF NOT EXISTS r1, r2")
                .unwrap()
                .access(),
            Some(AccessStatement::CreateRole {
                if_not_exists: true,
                ..
            })
        ));
        assert!(matches!(
            parse_statement("DROP ROLE IF EXISTS r1").unwrap().access(),
            Some(AccessStatement::DropRole {
                if_exists: true,
                ..
            })
        ));
        assert!(matches!(
            parse_statement("SHOW ROLES").unwrap().access(),
            Some(AccessStatement::ShowRoles)
        ));
        assert!(is_access_statement("create role r"));
        assert_eq!(
            parse_statement("GRANT DANCE ON *.* TO a")
                .unwrap_err()
                .code(),
            qh_types::ErrorCode::NOT_IMPLEMENTED
        );
        let e = parse_statement("CREATE USER a IDENTIFIED WITH ldap SERVER 'x'").unwrap_err();
        assert_eq!(e.code(), qh_types::ErrorCode::NOT_IMPLEMENTED);
        let e = parse_statement("CREATE USER a HOST IP 'nonsense'").unwrap_err();
        assert_eq!(e.code(), qh_types::ErrorCode::BAD_ARGUMENTS);
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_secrets("CREATE USER a IDENTIFIED BY 'secret' HOST LOCAL"),
            "CREATE USER a IDENTIFIED BY '[HIDDEN]' HOST LOCAL"
        );
        assert_eq!(
            mask_secrets("alter user a identified with sha256_hash by 'abc' salt 'x'"),
            "alter user a identified with sha256_hash by '[HIDDEN]' salt '[HIDDEN]'"
        );
        assert_eq!(mask_secrets("SELECT 'BY' , 'x'"), "SELECT 'BY' , 'x'");
        assert!(is_access_statement("create or replace user x"));
        assert!(!is_access_statement(
            "CREATE TABLE user (a UInt8) ENGINE = Memory"
        ));
        assert!(is_access_statement("/* c */ -- x\n  drop user a"));
    }
}
