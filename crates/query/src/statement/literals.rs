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
    let tokens = Tokenizer::new(&DIALECT, sql)
        .with_unescape(false)
        .tokenize_with_location()?;
    let mut tokens = hex_literals(sql, tokens);
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

/// Hexadecimal literals as ClickHouse reads them. sqlparser makes `0xFF` a
/// binary string (`ff`) and splits a hexadecimal float (`0x1p-10`) into a
/// string, a word and a number; ClickHouse reads a number (`255`,
/// `0.0009765625`), and `x'4142'` is the string `AB`, not bytes printed as
/// hex. An integer beyond UInt64 is a Float64, as there.
fn hex_literals(sql: &str, tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    if !tokens
        .iter()
        .any(|t| matches!(t.token, Token::HexStringLiteral(_)))
    {
        return tokens;
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut it = tokens.into_iter().peekable();
    while let Some(mut t) = it.next() {
        let Token::HexStringLiteral(digits) = &t.token else {
            out.push(t);
            continue;
        };
        let start = super::tokens::char_offset(sql, t.span.start);
        let rest = &sql[start.min(sql.len())..];
        if rest.starts_with("0x") {
            let (text, len) = hex_number(rest);
            let end = start + len;
            // The pieces sqlparser split the number into.
            while it
                .peek()
                .is_some_and(|n| super::tokens::char_offset(sql, n.span.start) < end)
            {
                it.next();
            }
            t.token = Token::Number(text, false);
        } else if let Some(bytes) = hex_bytes(digits) {
            let text = String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            // Escaped again: the string pass below unescapes every literal.
            t.token = Token::SingleQuotedString(escape(&text).replace('\'', "''"));
        }
        out.push(t);
    }
    out
}

/// The decimal text of the hexadecimal number at the start of `s` (which
/// starts with `0x`), and its length in bytes: `0x` digits, an optional
/// `.` fraction, an optional binary exponent `p[+-]N`.
fn hex_number(s: &str) -> (String, usize) {
    let b = s.as_bytes();
    let mut i = 2;
    let digits = |i: &mut usize, f: fn(&u8) -> bool| {
        let from = *i;
        while b.get(*i).is_some_and(f) {
            *i += 1;
        }
        &s[from..*i]
    };
    let int = digits(&mut i, u8::is_ascii_hexdigit);
    let mut frac = "";
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = digits(&mut i, u8::is_ascii_hexdigit);
    }
    let mut exp: Option<i32> = None;
    if matches!(b.get(i), Some(b'p' | b'P')) {
        let mut j = i + 1;
        let negative = b.get(j) == Some(&b'-');
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let n = digits(&mut j, u8::is_ascii_digit);
        if !n.is_empty() {
            let v: i32 = n.parse().unwrap_or(i32::MAX);
            exp = Some(if negative { -v } else { v });
            i = j;
        }
    }
    let len = i;
    if frac.is_empty() && exp.is_none() && b.get(2 + int.len()) != Some(&b'.') {
        if let Ok(v) = u64::from_str_radix(int, 16) {
            return (v.to_string(), len);
        }
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16).unwrap_or(0));
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16).unwrap_or(0)) * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp.unwrap_or(0));
    (format!("{v:e}"), len)
}

/// The bytes of `X'...'`'s hex digits (pairs), None when they are not.
fn hex_bytes(digits: &str) -> Option<Vec<u8>> {
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
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

    /// The literals' tokens, whitespace left out.
    fn tokens(sql: &str) -> Vec<Token> {
        tokenize(sql)
            .unwrap()
            .into_iter()
            .map(|t| t.token)
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect()
    }

    #[test]
    fn hexadecimal_literals_are_numbers_and_x_strings_are_strings() {
        let number = |n: &str| Token::Number(n.into(), false);
        // Values from ClickHouse (chDB 4.4): 255, 4656, 21, 8.98846567431158e307.
        assert_eq!(tokens("0xFF"), vec![number("255")]);
        assert_eq!(tokens("0x123p4"), vec![number("4.656e3")]);
        assert_eq!(tokens("0xA.8p1"), vec![number("2.1e1")]);
        assert_eq!(
            tokens("0x1P1023"),
            vec![number(&format!("{:e}", 2f64.powi(1023)))]
        );
        assert_eq!(
            tokens("-0x1p-1022 AS x"),
            vec![
                Token::Minus,
                number(&format!("{:e}", f64::MIN_POSITIVE)),
                Token::make_keyword("AS"),
                Token::make_word("x", None),
            ]
        );
        // Beyond UInt64: a Float64.
        assert_eq!(
            tokens("0x123456789ABCDEF01"),
            vec![number("2.0988295479420645e19")]
        );
        assert_eq!(
            tokens("0xFFFFFFFFFFFFFFFF"),
            vec![number("18446744073709551615")]
        );
        assert_eq!(
            tokens("x'4142', X'27'"),
            vec![
                Token::SingleQuotedString("AB".into()),
                Token::Comma,
                Token::SingleQuotedString("'".into()),
            ]
        );
        assert_eq!(
            tokens("'0xFF'"),
            vec![Token::SingleQuotedString("0xFF".into())]
        );
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
