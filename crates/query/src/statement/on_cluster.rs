//! `... ON CLUSTER name ...` of a DDL statement, found on sqlparser's tokens
//! (never inside a string literal, a quoted name or a comment) and cut out of
//! the text the DDL queue carries to every host.

use super::*;

/// The statements ClickHouse runs through the distributed DDL queue.
const DDL_WORDS: [&str; 5] = ["CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME"];

/// Splits `... ON CLUSTER name ...` of a DDL statement into the cluster
/// name (unquoted; `{cluster}`-style macros kept) and the statement without
/// the clause. `None` for anything else, or text the tokenizer refuses (the
/// statement parser then reports it).
pub fn split_on_cluster(sql: &str) -> Option<(String, String)> {
    let tokens = Tokenizer::new(&parser::DIALECT, sql)
        .tokenize_with_location()
        .ok()?;
    let significant = |t: &&TokenWithSpan| !matches!(t.token, Token::Whitespace(_));
    let first = tokens.iter().find(significant).and_then(word_of)?;
    // Users live in the coordinator, replicated by it: ON CLUSTER is
    // accepted and changes nothing (the parser skips it).
    if !DDL_WORDS.contains(&first.as_str()) || super::is_access_statement(sql) {
        return None;
    }
    let at = (0..tokens.len()).find(|&i| {
        word_of(&tokens[i]).as_deref() == Some("ON")
            && next_significant(&tokens, i + 1)
                .is_some_and(|j| word_of(&tokens[j]).as_deref() == Some("CLUSTER"))
    })?;
    let cluster_word = next_significant(&tokens, at + 1)?;
    let name_start = next_significant(&tokens, cluster_word + 1)?;
    let (name, name_end) = match &tokens[name_start].token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => (s.clone(), name_start),
        Token::Word(w) if w.quote_style.is_some() => (w.value.clone(), name_start),
        _ => {
            // A bare name, possibly a macro like `{cluster}`: every token up
            // to the next blank or bracket.
            let mut end = name_start;
            while tokens.get(end + 1).is_some_and(|t| {
                !matches!(
                    t.token,
                    Token::Whitespace(_) | Token::EOF | Token::LParen | Token::SemiColon
                )
            }) {
                end += 1;
            }
            let text = char_offset(sql, tokens[name_start].span.start)
                ..char_offset(sql, tokens[end].span.end);
            (sql.get(text)?.to_string(), end)
        }
    };
    if name.is_empty() {
        return None;
    }
    // Cut from the blank before ON to the end of the name.
    let cut_from = match at.checked_sub(1).map(|i| &tokens[i]) {
        Some(t) if matches!(t.token, Token::Whitespace(_)) => t.span.start,
        _ => tokens[at].span.start,
    };
    let a = char_offset(sql, cut_from);
    let b = char_offset(sql, tokens[name_end].span.end);
    Some((name, format!("{}{}", sql.get(..a)?, sql.get(b..)?)))
}

fn next_significant(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
}

#[cfg(test)]
mod tests {
    use super::split_on_cluster;

    #[test]
    fn on_cluster_is_split_off_ddl_only() {
        let (c, q) = split_on_cluster(
            "CREATE TABLE t ON CLUSTER default (a UInt8) ENGINE = MergeTree ORDER BY a",
        )
        .unwrap();
        assert_eq!(c, "default");
        assert_eq!(q, "CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a");
        let (c, q) = split_on_cluster("drop database db on cluster 'main'").unwrap();
        assert_eq!((c.as_str(), q.as_str()), ("main", "drop database db"));
        assert!(split_on_cluster("SELECT 'ON CLUSTER x'").is_none());
        assert!(split_on_cluster("CREATE TABLE t (a UInt8) ENGINE = Memory").is_none());
    }

    #[test]
    fn string_literals_comments_and_macros() {
        // The clause inside a literal or a comment is text, not syntax.
        assert!(split_on_cluster("ALTER TABLE t UPDATE s = ' ON CLUSTER x' WHERE 1").is_none());
        assert!(
            split_on_cluster("CREATE TABLE t /* ON CLUSTER c */ (a UInt8) ENGINE = Memory")
                .is_none()
        );
        let (c, q) =
            split_on_cluster("CREATE TABLE `on cluster` ON CLUSTER `my c` (a UInt8)").unwrap();
        assert_eq!(
            (c.as_str(), q.as_str()),
            ("my c", "CREATE TABLE `on cluster` (a UInt8)")
        );
        let (c, q) = split_on_cluster("DROP TABLE t ON CLUSTER {cluster} SYNC").unwrap();
        assert_eq!((c.as_str(), q.as_str()), ("{cluster}", "DROP TABLE t SYNC"));
        let (c, _) = split_on_cluster("TRUNCATE TABLE t ON CLUSTER '{cluster}'").unwrap();
        assert_eq!(c, "{cluster}");
    }
}
