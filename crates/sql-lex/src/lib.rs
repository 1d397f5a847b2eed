//! SQL text at the lexer level, for code that must not link the query
//! engine (the network client) and for the engine's own front end: splitting
//! a script into statements and finding where an `INSERT ... FORMAT`'s
//! data starts. Both skip quotes and comments; neither parses expressions.
//! The statement parser proper lives in `qh_query::statement`.

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
fn find_insert_format(sql: &str) -> Option<(usize, &str, usize)> {
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
                    return Some((start, &sql[ns..j], j));
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

/// An `INSERT ... FORMAT <name>` split at its format clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertFormat<'a> {
    /// The statement before `FORMAT` (the INSERT head to parse).
    pub head: &'a str,
    pub name: &'a str,
    /// Data written after the format name in the statement itself (one
    /// separator after the name dropped); `None` when there is none and
    /// the data comes from the request body or stdin.
    pub inline: Option<&'a str>,
}

/// The format clause of an `INSERT ... FORMAT <name> [data]`: `None` for
/// other statements and for `INSERT ... VALUES` / `SELECT`.
pub fn insert_format(sql: &str) -> Option<InsertFormat<'_>> {
    let first = sql
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .find(|w| !w.is_empty())?;
    if !first.eq_ignore_ascii_case("INSERT") {
        return None;
    }
    let (at, name, after) = find_insert_format(sql)?;
    let data = &sql[after..];
    let data = data
        .strip_prefix("\r\n")
        .or_else(|| data.strip_prefix('\n'))
        .or_else(|| data.strip_prefix(' '))
        .unwrap_or(data);
    Some(InsertFormat {
        head: &sql[..at],
        name,
        inline: (!data.trim().is_empty()).then_some(data),
    })
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
    fn finds_insert_data() {
        let f = insert_format("INSERT INTO t FORMAT CSV\n1,2\n").unwrap();
        assert_eq!(
            (f.head, f.name, f.inline),
            ("INSERT INTO t ", "CSV", Some("1,2\n"))
        );
        let f = insert_format("insert into t (a) format TSV").unwrap();
        assert_eq!((f.name, f.inline), ("TSV", None));
        assert!(insert_format("INSERT INTO t VALUES ('FORMAT CSV')").is_none());
        assert!(insert_format("INSERT INTO t SELECT 1 FORMAT CSV").is_none());
        assert!(insert_format("SELECT 1 FORMAT CSV").is_none());
        assert_eq!(
            insert_format("INSERT INTO `FORMAT x` FORMAT JSONEachRow {}").map(|f| f.name),
            Some("JSONEachRow")
        );
    }
}
