//! Quotas in ClickHouse's syntax: `CREATE/ALTER/DROP QUOTA` with
//! `KEYED BY`, `FOR [RANDOMIZED] INTERVAL n unit {MAX res = n, ... |
//! NO LIMITS | TRACKING ONLY}` and `TO`; `SHOW QUOTAS`, `SHOW CREATE
//! QUOTA`, `SHOW QUOTA`.

use std::collections::BTreeMap;

use qh_access::{AccessStatement, Applies, KeyType, QuotaInterval, Resource, UNITS};

use super::*;

/// Clauses of CREATE or ALTER QUOTA after the name.
#[derive(Default)]
struct QuotaClauses {
    rename_to: Option<String>,
    keyed_by: Option<KeyType>,
    intervals: Option<Vec<QuotaInterval>>,
    to: Option<Applies>,
}

impl StmtParser<'_> {
    fn quota_clauses(&mut self, alter: bool) -> Result<QuotaClauses> {
        let mut c = QuotaClauses::default();
        loop {
            if alter && self.eat_seq(&["RENAME", "TO"]) {
                c.rename_to = Some(self.user_name()?);
            } else if self.eat_seq(&["NOT", "KEYED"]) {
                c.keyed_by = Some(KeyType::NotKeyed);
            } else if self.eat_seq(&["KEYED", "BY"]) {
                let mut words = vec![self.user_name()?];
                while self.parser.consume_token(&Token::Comma) {
                    words.push(self.user_name()?);
                }
                c.keyed_by = Some(KeyType::parse(&words).ok_or_else(|| {
                    QueryError::BadArguments(format!(
                        "Unknown KEYED BY {}: expected user_name, ip_address, client_key, client_key, user_name or client_key, ip_address",
                        words.join(", ")
                    ))
                })?);
            } else if self.peek_word().as_deref() == Some("FOR") {
                let list = c.intervals.get_or_insert_with(Vec::new);
                let interval = self.quota_interval()?;
                list.retain(|i| i.seconds != interval.seconds);
                list.push(interval);
            } else if self.eat("TO") {
                c.to = Some(self.applies_to()?);
            } else if self.eat("IN") {
                self.ident()?;
            } else {
                return Ok(c);
            }
        }
    }

    /// `FOR [RANDOMIZED] INTERVAL n unit {MAX res = n [, ...] | NO LIMITS |
    /// TRACKING ONLY}` and the comma after it, if any.
    fn quota_interval(&mut self) -> Result<QuotaInterval> {
        self.expect("FOR")?;
        let randomized = self.eat("RANDOMIZED");
        self.expect("INTERVAL")?;
        let n: u64 = self
            .setting_value()?
            .parse()
            .map_err(|_| QueryError::BadArguments("INTERVAL needs a whole number".into()))?;
        let unit = self.ident()?.to_ascii_lowercase();
        let unit = unit.strip_suffix('s').unwrap_or(&unit);
        let Some((_, len)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return self.fail("Expected SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER or YEAR");
        };
        let seconds = n
            .checked_mul(*len)
            .filter(|s| *s > 0)
            .ok_or_else(|| QueryError::BadArguments("INTERVAL out of range".into()))?;
        let mut max = BTreeMap::new();
        if self.eat_seq(&["NO", "LIMITS"]) || self.eat_seq(&["TRACKING", "ONLY"]) {
            self.interval_comma();
        } else {
            self.expect("MAX")?;
            loop {
                let mut words = Vec::new();
                while !self.parser.consume_token(&Token::Eq) {
                    words.push(self.ident()?);
                    if words.len() > 3 {
                        return self.fail("Expected = after the quota's resource");
                    }
                }
                let name = words.join(" ");
                let resource = Resource::parse(&name).ok_or_else(|| {
                    QueryError::BadArguments(format!("Unknown quota resource {name}"))
                })?;
                let value: f64 = self
                    .setting_value()?
                    .parse()
                    .map_err(|_| QueryError::BadArguments(format!("MAX {name} needs a number")))?;
                if value.is_nan() || value < 0.0 {
                    return Err(QueryError::BadArguments(format!(
                        "MAX {name} must not be negative"
                    )));
                }
                max.insert(resource, value);
                if !self.interval_comma() {
                    break;
                }
            }
        }
        Ok(QuotaInterval {
            seconds,
            randomized,
            max,
        })
    }

    /// Eats a comma that continues a MAX list (not one before `FOR`);
    /// whether it did.
    fn interval_comma(&mut self) -> bool {
        if self.parser.peek_token().token != Token::Comma {
            return false;
        }
        self.parser.next_token();
        // `..., FOR INTERVAL ...`: the comma separated intervals.
        self.peek_word().as_deref() != Some("FOR")
    }

    /// After `CREATE [OR REPLACE]`, at `QUOTA`.
    pub(super) fn create_quota(&mut self, or_replace: bool) -> Result<Statement> {
        self.expect("QUOTA")?;
        let if_not_exists = self.eat_seq(&["IF", "NOT", "EXISTS"]);
        let names = self.user_names()?;
        self.on_cluster()?;
        let c = self.quota_clauses(false)?;
        Ok(Statement::Access(AccessStatement::CreateQuota {
            names,
            if_not_exists,
            or_replace,
            keyed_by: c.keyed_by.unwrap_or_default(),
            intervals: c.intervals.unwrap_or_default(),
            to: c.to.unwrap_or_default(),
        }))
    }

    /// After `ALTER`, at `QUOTA`.
    pub(super) fn alter_quota(&mut self) -> Result<Statement> {
        self.expect("QUOTA")?;
        let if_exists = self.eat_seq(&["IF", "EXISTS"]);
        let name = self.user_name()?;
        self.on_cluster()?;
        let c = self.quota_clauses(true)?;
        Ok(Statement::Access(AccessStatement::AlterQuota {
            name,
            if_exists,
            rename_to: c.rename_to,
            keyed_by: c.keyed_by,
            intervals: c.intervals,
            to: c.to,
        }))
    }

    /// After `DROP`, at `QUOTA`.
    pub(super) fn drop_quota(&mut self) -> Result<Statement> {
        self.expect("QUOTA")?;
        let if_exists = self.eat_seq(&["IF", "EXISTS"]);
        let names = self.user_names()?;
        self.on_cluster()?;
        Ok(Statement::Access(AccessStatement::DropQuota {
            names,
            if_exists,
        }))
    }

    /// After `SHOW`: `QUOTAS`, `CREATE QUOTA names`, `QUOTA` / `CURRENT QUOTA`.
    pub(super) fn show_quota(&mut self) -> Result<Option<Statement>> {
        if self.eat("QUOTAS") {
            return Ok(Some(Statement::Access(AccessStatement::ShowQuotas)));
        }
        if self.eat_seq(&["CREATE", "QUOTA"]) {
            let names = self.user_names()?;
            return Ok(Some(Statement::Access(AccessStatement::ShowCreateQuota {
                names,
            })));
        }
        if self.eat("QUOTA") || self.eat_seq(&["CURRENT", "QUOTA"]) {
            return Ok(Some(Statement::Access(AccessStatement::ShowQuota)));
        }
        Ok(None)
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
    fn quota_statements_parse() {
        let a = access(
            "CREATE QUOTA qB KEYED BY user_name FOR INTERVAL 30 minute MAX execution_time = 0.5, FOR INTERVAL 5 quarter MAX queries = 321, errors = 10 TO default",
        );
        let AccessStatement::CreateQuota {
            names,
            keyed_by,
            intervals,
            to,
            ..
        } = a
        else {
            panic!("{a:?}")
        };
        assert_eq!(names, vec!["qB".to_string()]);
        assert_eq!(keyed_by, KeyType::UserName);
        assert_eq!(intervals.len(), 2);
        assert_eq!(intervals[0].seconds, 1_800);
        assert_eq!(intervals[0].max[&Resource::ExecutionTime], 0.5);
        assert_eq!(intervals[1].seconds, 5 * 7_889_238);
        assert_eq!(intervals[1].max.len(), 2);
        assert_eq!(to.names, vec!["default".to_string()]);
        let a = access("CREATE QUOTA q FOR RANDOMIZED INTERVAL 1 hours MAX READ ROWS = 10 TO ALL");
        assert!(matches!(
            a,
            AccessStatement::CreateQuota { ref intervals, to: Applies { all: true, .. }, .. }
                if intervals[0].randomized && intervals[0].max.contains_key(&Resource::ReadRows)
        ));
        assert!(matches!(
            access("ALTER QUOTA IF EXISTS q FOR INTERVAL 15 minute TRACKING ONLY"),
            AccessStatement::AlterQuota { intervals: Some(ref i), if_exists: true, .. } if i[0].max.is_empty()
        ));
        assert!(matches!(
            access("DROP QUOTA q1, q2"),
            AccessStatement::DropQuota { ref names, .. } if names.len() == 2
        ));
        assert!(matches!(access("SHOW QUOTA"), AccessStatement::ShowQuota));
        for bad in [
            "CREATE QUOTA q FOR INTERVAL 1 fortnight MAX queries = 1",
            "CREATE QUOTA q FOR INTERVAL 1 hour MAX cpu = 1",
            "CREATE QUOTA q FOR INTERVAL 1 hour MAX queries = -1",
            "CREATE QUOTA q KEYED BY shoe_size",
        ] {
            assert!(parse_statement(bad).is_err(), "{bad}");
        }
    }
}
