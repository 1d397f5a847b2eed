//! ClickHouse's join strictness on the tokens, before sqlparser (which would
//! take `t1 ANY LEFT JOIN t2` for `t1 AS ANY LEFT JOIN t2` and answer with
//! every matching row).
//!
//! `ANY LEFT JOIN r` joins each left row with at most one row of `r`, the
//! first found: `r` becomes `(SELECT * FROM r LIMIT 1 BY keys) AS r`, the
//! keys read off `USING (…)` or off the `ON a.x = r.y AND …` equalities.
//! `SEMI LEFT JOIN` keeps only the left rows with a match, with that row:
//! the same wrapping under an INNER JOIN. Other strictnesses (ANY INNER /
//! RIGHT / FULL, SEMI RIGHT, ANTI, ASOF) are refused rather than answered
//! as ALL.

use super::*;

const KINDS: &[&str] = &["LEFT", "RIGHT", "INNER", "FULL", "OUTER", "CROSS"];
const STRICTNESS: &[&str] = &["ANY", "SEMI", "ANTI", "ASOF"];

fn significant(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|i| !matches!(tokens[*i].token, Token::Whitespace(_)))
}

/// Rewrites every `[strictness] [kind] JOIN` that has a strictness word.
pub(super) fn join_strictness(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>> {
    let has_strictness = tokens
        .iter()
        .any(|t| word_of(t).is_some_and(|w| STRICTNESS.contains(&w.as_str())));
    if !has_strictness {
        return Ok(tokens);
    }
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len() + 16);
    let mut i = 0;
    while i < tokens.len() {
        let Some((words, join_at)) = join_head(&tokens, i) else {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        };
        let strictness = words.iter().find(|w| STRICTNESS.contains(&w.as_str()));
        let Some(strictness) = strictness.cloned() else {
            out.extend(tokens[i..=join_at].iter().cloned());
            i = join_at + 1;
            continue;
        };
        let kind = words
            .iter()
            .find(|w| matches!(w.as_str(), "LEFT" | "RIGHT" | "INNER" | "FULL" | "CROSS"))
            .cloned()
            .unwrap_or_else(|| "INNER".into());
        let join_kind = match (strictness.as_str(), kind.as_str()) {
            ("ANY", "LEFT") => "LEFT",
            ("SEMI", "LEFT") => "INNER",
            _ => {
                return Err(QueryError::NotImplemented(format!(
                    "{strictness} {kind} JOIN is not supported (ALL joins, ANY LEFT JOIN and SEMI LEFT JOIN are)"
                )))
            }
        };
        let (wrapped, next) = wrap_right(&tokens, join_at + 1, &strictness, &kind)?;
        out.push(TokenWithSpan::wrap(Token::make_keyword(join_kind)));
        out.push(TokenWithSpan::wrap(Token::Whitespace(
            datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
        )));
        out.push(TokenWithSpan::wrap(Token::make_keyword("JOIN")));
        out.extend(wrapped);
        i = next;
    }
    Ok(out)
}

/// At `i`, a run of join words ending in `JOIN`: the words (without JOIN)
/// and JOIN's index. The run must start with a join word, not in the middle
/// of one (the caller moves one token at a time, so a run is seen at its
/// first word).
fn join_head(tokens: &[TokenWithSpan], i: usize) -> Option<(Vec<String>, usize)> {
    let first = word_of(&tokens[i])?;
    if !(KINDS.contains(&first.as_str()) || STRICTNESS.contains(&first.as_str())) {
        return None;
    }
    let mut words = vec![first];
    let mut at = i;
    loop {
        let n = significant(tokens, at + 1)?;
        let w = word_of(&tokens[n])?;
        if w == "JOIN" {
            return Some((words, n));
        }
        if !(KINDS.contains(&w.as_str()) || STRICTNESS.contains(&w.as_str())) || words.len() > 3 {
            return None;
        }
        words.push(w);
        at = n;
    }
}

/// The right relation from `from` on, with its alias and join constraint:
/// the tokens of ` (SELECT * FROM rel LIMIT 1 BY keys) AS alias` and the
/// index after the relation and alias (the constraint is left in place).
fn wrap_right(
    tokens: &[TokenWithSpan],
    from: usize,
    strictness: &str,
    kind: &str,
) -> Result<(Vec<TokenWithSpan>, usize)> {
    let refuse = |why: &str| {
        Err(QueryError::NotImplemented(format!(
            "{strictness} {kind} JOIN {why} is not supported"
        )))
    };
    let Some(start) = significant(tokens, from) else {
        return refuse("without a right table");
    };
    // The relation: a parenthesized subquery or a dotted name.
    let mut end;
    let mut name = None;
    if tokens[start].token == Token::LParen {
        let Some(close) = closing_paren(tokens, start) else {
            return refuse("with unbalanced parentheses");
        };
        end = close;
    } else {
        end = start;
        loop {
            let Token::Word(w) = &tokens[end].token else {
                return refuse("with this right side");
            };
            name = Some(w.value.clone());
            match significant(tokens, end + 1) {
                Some(dot) if tokens[dot].token == Token::Period => {
                    match significant(tokens, dot + 1) {
                        Some(n) => end = n,
                        None => return refuse("with this right side"),
                    }
                }
                _ => break,
            }
        }
        // A table function: `numbers(10)`.
        if let Some(open) =
            significant(tokens, end + 1).filter(|o| tokens[*o].token == Token::LParen)
        {
            let Some(close) = closing_paren(tokens, open) else {
                return refuse("with unbalanced parentheses");
            };
            end = close;
        }
    }
    // The alias: `AS a` or a bare name that is not the constraint.
    let mut after = end + 1;
    let mut alias = name;
    if let Some(n) = significant(tokens, after) {
        let w = word_of(&tokens[n]);
        let alias_at = if w.as_deref() == Some("AS") {
            significant(tokens, n + 1)
        } else if matches!(&tokens[n].token, Token::Word(_))
            && !matches!(w.as_deref(), Some("USING" | "ON" | "FINAL"))
        {
            Some(n)
        } else {
            None
        };
        if let Some(a) = alias_at {
            let Token::Word(word) = &tokens[a].token else {
                return refuse("with this alias");
            };
            alias = Some(word.value.clone());
            after = a + 1;
        }
    }
    let Some(alias) = alias else {
        return refuse("of a subquery without an alias");
    };
    let keys = constraint_keys(tokens, after, &alias).ok_or_else(|| {
        QueryError::NotImplemented(format!(
            "{strictness} {kind} JOIN is supported with USING (…) or ON equalities of columns (a.x = {alias}.y AND …) only"
        ))
    })?;
    // ` (SELECT * FROM rel LIMIT 1 BY k1, k2) AS alias`
    let space = || {
        TokenWithSpan::wrap(Token::Whitespace(
            datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
        ))
    };
    let kw = |k: &str| TokenWithSpan::wrap(Token::make_keyword(k));
    let mut wrapped = vec![space(), TokenWithSpan::wrap(Token::LParen)];
    for k in ["SELECT", "*", "FROM"] {
        if k == "*" {
            wrapped.push(TokenWithSpan::wrap(Token::Mul));
        } else {
            wrapped.push(kw(k));
        }
        wrapped.push(space());
    }
    wrapped.extend(tokens[start..=end].iter().cloned());
    for k in ["LIMIT", "1", "BY"] {
        wrapped.push(space());
        if k == "1" {
            wrapped.push(TokenWithSpan::wrap(Token::Number("1".into(), false)));
        } else {
            wrapped.push(kw(k));
        }
    }
    wrapped.push(space());
    for (n, k) in keys.iter().enumerate() {
        if n > 0 {
            wrapped.push(TokenWithSpan::wrap(Token::Comma));
        }
        wrapped.push(TokenWithSpan::wrap(Token::make_word(k, Some('`'))));
    }
    wrapped.push(TokenWithSpan::wrap(Token::RParen));
    wrapped.push(space());
    wrapped.push(kw("AS"));
    wrapped.push(space());
    wrapped.push(TokenWithSpan::wrap(Token::make_word(&alias, Some('`'))));
    wrapped.push(space());
    Ok((wrapped, after))
}

/// The index of the `)` closing the `(` at `open`.
fn closing_paren(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The right side's key columns: the names in `USING (…)`, or the right
/// operands of `ON l.x = alias.y AND …` (either order).
fn constraint_keys(tokens: &[TokenWithSpan], from: usize, alias: &str) -> Option<Vec<String>> {
    let at = significant(tokens, from)?;
    match word_of(&tokens[at]).as_deref() {
        Some("USING") => {
            let open = significant(tokens, at + 1)?;
            if tokens[open].token != Token::LParen {
                return None;
            }
            let mut keys = Vec::new();
            let mut i = open + 1;
            loop {
                let n = significant(tokens, i)?;
                match &tokens[n].token {
                    Token::Word(w) => keys.push(w.value.clone()),
                    _ => return None,
                }
                let sep = significant(tokens, n + 1)?;
                match tokens[sep].token {
                    Token::Comma => i = sep + 1,
                    Token::RParen => return Some(keys),
                    _ => return None,
                }
            }
        }
        Some("ON") => {
            // `ON` conjuncts up to the end of the join clause.
            let mut keys = Vec::new();
            let mut i = at + 1;
            let mut parens = 0usize;
            loop {
                let (left, after_left) = dotted(tokens, i, &mut parens)?;
                let eq = significant(tokens, after_left)?;
                if tokens[eq].token != Token::Eq {
                    return None;
                }
                let (right, after_right) = dotted(tokens, eq + 1, &mut 0)?;
                let mut after = after_right;
                while parens > 0 {
                    let c = significant(tokens, after)?;
                    if tokens[c].token != Token::RParen {
                        return None;
                    }
                    parens -= 1;
                    after = c + 1;
                }
                let of_right = |parts: &[String]| {
                    (parts.len() == 2 && parts[0] == alias).then(|| parts[1].clone())
                };
                keys.push(of_right(&right).or_else(|| of_right(&left))?);
                match significant(tokens, after) {
                    Some(n) if word_of(&tokens[n]).as_deref() == Some("AND") => i = n + 1,
                    _ => return Some(keys),
                }
            }
        }
        _ => None,
    }
}

/// A dotted name from `from` (after any opening parentheses, counted in
/// `parens`): its parts and the index after it.
fn dotted(
    tokens: &[TokenWithSpan],
    from: usize,
    parens: &mut usize,
) -> Option<(Vec<String>, usize)> {
    let mut i = significant(tokens, from)?;
    while tokens[i].token == Token::LParen {
        *parens += 1;
        i = significant(tokens, i + 1)?;
    }
    let mut parts = Vec::new();
    loop {
        let Token::Word(w) = &tokens[i].token else {
            return None;
        };
        parts.push(w.value.clone());
        match significant(tokens, i + 1) {
            Some(d) if tokens[d].token == Token::Period => i = significant(tokens, d + 1)?,
            _ => return Some((parts, i + 1)),
        }
    }
}
