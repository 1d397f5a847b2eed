//! String literals with ClickHouse's escapes, not sqlparser's: `\\xHH` is a
//! byte, `\\e` ESC, `\\v` VT, and a backslash before any other character is
//! kept (`'\\d+'` is the regex `\\d+`, `'\\1'` a back-reference, `'a\\_b'` a
//! LIKE pattern with a literal underscore). sqlparser drops such backslashes,
//! which would silently change what a regex or LIKE pattern matches.
//!
//! Statements are tokenized without unescaping ([`tokenize`]) and each
//! literal is then unescaped here; text stored for re-parsing (column
//! defaults, keys) is printed with [`expr_sql`], which escapes what
//! [`unescape`] reads back, so the round trip is exact.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Value, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, TokenizerError};

use super::parser::DIALECT;

/// The tokens of `sql`, string literals unescaped as ClickHouse does.
pub(crate) fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>, TokenizerError> {
    let mut tokens = Tokenizer::new(&DIALECT, sql)
        .with_unescape(false)
        .tokenize_with_location()?;
    for t in &mut tokens {
        match &mut t.token {
            Token::SingleQuotedString(s) => *s = unescape(s, '\''),
            Token::Word(w) => {
                if let Some(q) = w.quote_style {
                    // Quoted identifiers keep their doubled quotes raw.
                    let doubled: String = [q, q].iter().collect();
                    w.value = w.value.replace(&doubled, &q.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(tokens)
}

/// The value of a quoted literal's raw body: `''` is one quote; backslash
/// escapes as ClickHouse reads them.
pub(crate) fn unescape(raw: &str, quote: char) -> String {
    if !raw.contains('\\') && !raw.contains(quote) {
        return raw.to_string();
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        if c == quote && chars.peek() == Some(&quote) {
            chars.next();
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        if c != '\\' {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some(next) = chars.next() else {
            out.push(b'\\');
            break;
        };
        let byte = match next {
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            '0' => Some(0),
            'a' => Some(0x07),
            'v' => Some(0x0b),
            'e' => Some(0x1b),
            '\\' | '\'' | '"' | '`' => Some(next as u8),
            'x' | 'X' => {
                let hex: String = chars.clone().take(2).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if hex.len() == 2 => {
                        chars.next();
                        chars.next();
                        Some(b)
                    }
                    _ => None,
                }
            }
            // As ClickHouse reads it (the TSV NULL marker means nothing here).
            'N' => {
                continue;
            }
            _ => None,
        };
        match byte {
            Some(b) => out.push(b),
            None => {
                out.push(b'\\');
                out.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    // `\xHH` may spell bytes that are not UTF-8; strings here are UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The text of a string value that [`unescape`] reads back as `s` once
/// sqlparser's printer has doubled its quotes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

/// `e` as SQL text that parses back to the same expression (for text
/// stored and parsed again: defaults, keys, sharding keys).
pub fn expr_sql(e: &Expr) -> String {
    struct Escape;
    impl VisitorMut for Escape {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Value(v) = e {
                if let Value::SingleQuotedString(s) = &mut v.value {
                    *s = escape(s);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut e = e.clone();
    let _ = e.visit(&mut Escape);
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_clickhouse_reads_them() {
        // Expected values from ClickHouse (chDB 4.4).
        assert_eq!(unescape(r"\1", '\''), r"\1");
        assert_eq!(unescape(r"a\qb", '\''), r"a\qb");
        assert_eq!(unescape(r"\x30\xD0\xA0", '\''), "0Р");
        assert_eq!(unescape(r"\e", '\''), "\u{1b}");
        assert_eq!(unescape(r"\N", '\''), "");
        assert_eq!(unescape(r"it''s \'q\' \\ \t", '\''), "it's 'q' \\ \t");
        assert_eq!(unescape(r"\d+", '\''), r"\d+");
        assert_eq!(unescape(r"\xZZ", '\''), r"\xZZ");
        assert_eq!(unescape("tail\\", '\''), "tail\\");
    }

    #[test]
    fn stored_text_parses_back_to_the_same_value() {
        for s in [
            "a\\nb",
            "it's",
            "tab\there",
            "back\\slash\\",
            "\\d+",
            "new\nline",
            "",
        ] {
            let e = Expr::value(Value::SingleQuotedString(s.to_string()));
            let text = expr_sql(&e);
            let tokens = tokenize(&text).unwrap();
            let back = tokens
                .iter()
                .find_map(|t| match &t.token {
                    Token::SingleQuotedString(v) => Some(v.clone()),
                    _ => None,
                })
                .unwrap();
            assert_eq!(back, s, "{text}");
        }
    }
}
