//! ClickHouse's join strictness on the tokens, before sqlparser (which would
//! take `t1 ANY LEFT JOIN t2` for `t1 AS ANY LEFT JOIN t2` and answer with
//! every matching row).
//!
//! Each side a strictness changes is read through a subquery of the same
//! name (`Rows`): `ANY LEFT JOIN r` joins each left row with at most one row
//! of `r`, the first found, as `(SELECT * FROM r LIMIT 1 BY keys) AS r`, the
//! keys read off `USING (…)` or the `ON a.x = r.y AND …` equalities; `SEMI
//! LEFT` is that under an INNER JOIN; `ANY RIGHT` / `SEMI RIGHT` do it to
//! the left side and `ANY INNER` to both (one row per key of each, as
//! ClickHouse's `any_join_distinct_right_table_keys = 0`). `ANTI LEFT`
//! keeps the left rows whose key `r` lacks and joins them to `(SELECT * FROM
//! r WHERE 0)`, so `r`'s columns are its defaults (or NULLs); `ANTI RIGHT`
//! the other way. A rewritten left side must be the one relation after
//! FROM. ANY FULL and ASOF are refused rather than answered as ALL.

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
        // What each side keeps, and the join that remains.
        let (left_rows, right_rows, join_kind) = match (strictness.as_str(), kind.as_str()) {
            ("ANY", "LEFT") => (Rows::All, Rows::OncePerKey, "LEFT"),
            ("SEMI", "LEFT") => (Rows::All, Rows::OncePerKey, "INNER"),
            ("ANY", "INNER") => (Rows::OncePerKey, Rows::OncePerKey, "INNER"),
            ("ANY", "RIGHT") => (Rows::OncePerKey, Rows::All, "RIGHT"),
            ("SEMI", "RIGHT") => (Rows::OncePerKey, Rows::All, "INNER"),
            ("ANTI", "LEFT") => (Rows::Unmatched, Rows::Nothing, "LEFT"),
            ("ANTI", "RIGHT") => (Rows::Nothing, Rows::Unmatched, "RIGHT"),
            _ => {
                return Err(QueryError::NotImplemented(format!(
                    "{strictness} {kind} JOIN is not supported (ALL, ANY LEFT / INNER / RIGHT, SEMI LEFT / RIGHT and ANTI LEFT / RIGHT joins are)"
                )))
            }
        };
        let refuse = |why: &str| {
            QueryError::NotImplemented(format!("{strictness} {kind} JOIN {why} is not supported"))
        };
        let right = relation(&tokens, join_at + 1).ok_or_else(|| {
            refuse("with this right side (a table, table function or aliased subquery)")
        })?;
        let left_from = last_from(&out);
        let left = left_from.and_then(|f| relation(&out, f + 1));
        // Where the left side is rewritten, it is the one relation after FROM.
        let lone_left = left
            .as_ref()
            .is_some_and(|l| significant(&out, l.after).is_none());
        if left_rows != Rows::All && !lone_left {
            return Err(refuse("after another join or over this left side"));
        }
        // The left side's name matters only where its keys are used.
        let left_name = left
            .as_ref()
            .filter(|_| left_rows != Rows::All)
            .map(|l| l.alias.as_str());
        let (left_keys, right_keys) = constraint_keys(&tokens, right.after, &right.alias, left_name)
            .ok_or_else(|| refuse(&format!(
                "with a condition other than USING (…) or ON equalities of columns (a.x = {}.y AND …)",
                right.alias
            )))?;
        let right_side = Side {
            tokens: &tokens,
            rel: &right,
            keys: &right_keys,
        };
        // An ANTI RIGHT reads the left relation as written for its keys.
        let left_as_written = (right_rows == Rows::Unmatched).then(|| out.clone());
        if let (Some(from), Some(l)) = (left_from, left.as_ref()) {
            if left_rows != Rows::All {
                let left_side = Side {
                    tokens: &out,
                    rel: l,
                    keys: &left_keys,
                };
                let wrapped = left_side.wrap(left_rows, &right_side);
                out.truncate(from + 1);
                out.extend(wrapped);
            }
        }
        let wrapped_right = match (right_rows, &left_as_written, &left) {
            (Rows::All, ..) => None,
            (Rows::Unmatched, Some(written), Some(l)) => {
                let other = Side {
                    tokens: written,
                    rel: l,
                    keys: &left_keys,
                };
                Some(right_side.wrap(Rows::Unmatched, &other))
            }
            (Rows::Unmatched, ..) => return Err(refuse("over this left side")),
            (rows, ..) => Some(right_side.wrap(rows, &right_side)),
        };
        out.push(TokenWithSpan::wrap(Token::make_keyword(join_kind)));
        out.push(space());
        out.push(TokenWithSpan::wrap(Token::make_keyword("JOIN")));
        match wrapped_right {
            Some(w) => out.extend(w),
            None => {
                out.push(space());
                out.extend(tokens[right.start..right.after].iter().cloned());
            }
        }
        i = right.after;
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

fn space() -> TokenWithSpan {
    TokenWithSpan::wrap(Token::Whitespace(
        datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
    ))
}

/// A relation in a FROM or JOIN: its tokens `start..=end`, the name its
/// columns are qualified with, and the index after its alias.
struct Relation {
    start: usize,
    end: usize,
    alias: String,
    after: usize,
}

/// The relation from `from` on: a dotted name, a table function or a
/// parenthesized subquery (which needs an alias), with `[AS] alias`.
fn relation(tokens: &[TokenWithSpan], from: usize) -> Option<Relation> {
    let start = significant(tokens, from)?;
    let mut end = start;
    let mut name = None;
    if tokens[start].token == Token::LParen {
        end = closing_paren(tokens, start)?;
    } else {
        loop {
            let Token::Word(w) = &tokens[end].token else {
                return None;
            };
            name = Some(w.value.clone());
            match significant(tokens, end + 1) {
                Some(dot) if tokens[dot].token == Token::Period => {
                    end = significant(tokens, dot + 1)?;
                }
                _ => break,
            }
        }
        // A table function: `numbers(10)`.
        if let Some(open) =
            significant(tokens, end + 1).filter(|o| tokens[*o].token == Token::LParen)
        {
            end = closing_paren(tokens, open)?;
        }
    }
    let mut after = end + 1;
    let mut alias = name;
    if let Some(n) = significant(tokens, after) {
        let w = word_of(&tokens[n]);
        let alias_at = if w.as_deref() == Some("AS") {
            significant(tokens, n + 1)
        } else if matches!(&tokens[n].token, Token::Word(_))
            && !w.as_deref().is_some_and(|w| {
                matches!(
                    w,
                    "USING"
                        | "ON"
                        | "FINAL"
                        | "WHERE"
                        | "PREWHERE"
                        | "GROUP"
                        | "ORDER"
                        | "LIMIT"
                        | "SETTINGS"
                        | "FORMAT"
                        | "UNION"
                        | "ARRAY"
                        | "SAMPLE"
                ) || KINDS.contains(&w)
                    || STRICTNESS.contains(&w)
                    || w == "JOIN"
            })
        {
            Some(n)
        } else {
            None
        };
        if let Some(a) = alias_at {
            let Token::Word(word) = &tokens[a].token else {
                return None;
            };
            alias = Some(word.value.clone());
            after = a + 1;
        }
    }
    Some(Relation {
        start,
        end,
        alias: alias?,
        after,
    })
}

/// Where the FROM of the query `out` ends in starts (None inside an
/// unclosed parenthesis of another construct).
fn last_from(out: &[TokenWithSpan]) -> Option<usize> {
    let mut depth = 0usize;
    for i in (0..out.len()).rev() {
        match out[i].token {
            Token::RParen => depth += 1,
            Token::LParen if depth == 0 => return None,
            Token::LParen => depth -= 1,
            _ if depth == 0 && word_of(&out[i]).as_deref() == Some("FROM") => return Some(i),
            _ => {}
        }
    }
    None
}

/// What a rewritten side of a join keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    All,
    /// The first row per key in reading order ("the first found").
    OncePerKey,
    /// No row: the other side's unmatched rows get this side's defaults.
    Nothing,
    /// The rows whose key the other side does not hold.
    Unmatched,
}

/// One side of a join: the tokens its relation is in, and its keys.
struct Side<'a> {
    tokens: &'a [TokenWithSpan],
    rel: &'a Relation,
    keys: &'a [String],
}

impl Side<'_> {
    fn keys(&self, out: &mut Vec<TokenWithSpan>) {
        for (n, k) in self.keys.iter().enumerate() {
            if n > 0 {
                out.push(TokenWithSpan::wrap(Token::Comma));
            }
            out.push(TokenWithSpan::wrap(Token::make_word(k, Some('`'))));
        }
    }

    /// ` (SELECT * FROM rel <rows>) AS alias `, `other` the far side.
    fn wrap(&self, rows: Rows, other: &Side) -> Vec<TokenWithSpan> {
        let kw = |k: &str| TokenWithSpan::wrap(Token::make_keyword(k));
        let open = || TokenWithSpan::wrap(Token::LParen);
        let close = || TokenWithSpan::wrap(Token::RParen);
        let mut out = vec![space(), open(), kw("SELECT"), space()];
        out.extend([
            TokenWithSpan::wrap(Token::Mul),
            space(),
            kw("FROM"),
            space(),
        ]);
        out.extend(self.tokens[self.rel.start..=self.rel.end].iter().cloned());
        out.push(space());
        match rows {
            Rows::All => {}
            Rows::OncePerKey => {
                out.extend([kw("LIMIT"), space()]);
                out.push(TokenWithSpan::wrap(Token::Number("1".into(), false)));
                out.extend([space(), kw("BY"), space()]);
                self.keys(&mut out);
            }
            Rows::Nothing => {
                out.extend([kw("WHERE"), space()]);
                out.push(TokenWithSpan::wrap(Token::Number("0".into(), false)));
            }
            Rows::Unmatched => {
                // `(k) NOT IN (SELECT o FROM other WHERE o IS NOT NULL) OR k
                // IS NULL`: a NULL key matches nothing, as in ClickHouse.
                out.extend([kw("WHERE"), space(), open(), open()]);
                self.keys(&mut out);
                out.extend([close(), space(), kw("NOT"), space(), kw("IN"), space()]);
                out.extend([open(), kw("SELECT"), space()]);
                other.keys(&mut out);
                out.extend([space(), kw("FROM"), space()]);
                out.extend(
                    other.tokens[other.rel.start..=other.rel.end]
                        .iter()
                        .cloned(),
                );
                out.extend([space(), kw("WHERE"), space()]);
                for (n, k) in other.keys.iter().enumerate() {
                    if n > 0 {
                        out.extend([space(), kw("AND"), space()]);
                    }
                    out.push(TokenWithSpan::wrap(Token::make_word(k, Some('`'))));
                    out.extend([space(), kw("IS"), space(), kw("NOT"), space(), kw("NULL")]);
                }
                out.push(close());
                for k in self.keys {
                    out.extend([space(), kw("OR"), space()]);
                    out.push(TokenWithSpan::wrap(Token::make_word(k, Some('`'))));
                    out.extend([space(), kw("IS"), space(), kw("NULL")]);
                }
                out.push(close());
            }
        }
        out.extend([close(), space(), kw("AS"), space()]);
        out.push(TokenWithSpan::wrap(Token::make_word(
            &self.rel.alias,
            Some('`'),
        )));
        out.push(space());
        out
    }
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

/// The key columns of the left and of the right side: the names in
/// `USING (…)` for both, or the operands of `ON l.x = r.y AND …` (either
/// order; a left operand may be unqualified).
fn constraint_keys(
    tokens: &[TokenWithSpan],
    from: usize,
    right: &str,
    left: Option<&str>,
) -> Option<(Vec<String>, Vec<String>)> {
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
                    Token::RParen => return Some((keys.clone(), keys)),
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
                let (a, after_left) = dotted(tokens, i, &mut parens)?;
                let eq = significant(tokens, after_left)?;
                if tokens[eq].token != Token::Eq {
                    return None;
                }
                let (b, after_right) = dotted(tokens, eq + 1, &mut 0)?;
                let mut after = after_right;
                while parens > 0 {
                    let c = significant(tokens, after)?;
                    if tokens[c].token != Token::RParen {
                        return None;
                    }
                    parens -= 1;
                    after = c + 1;
                }
                let of_right = |p: &[String]| match p {
                    [q, c] if q == right => Some(c.clone()),
                    _ => None,
                };
                let of_left = |p: &[String]| match p {
                    [q, c] if q != right && left.is_none_or(|l| l == q) => Some(c.clone()),
                    [c] => Some(c.clone()),
                    _ => None,
                };
                let (l, r) = match (of_right(&a), of_right(&b)) {
                    (Some(r), None) => (of_left(&b)?, r),
                    (None, Some(r)) => (of_left(&a)?, r),
                    _ => return None,
                };
                keys.push((l, r));
                match significant(tokens, after) {
                    Some(n) if word_of(&tokens[n]).as_deref() == Some("AND") => i = n + 1,
                    _ => return Some(keys.into_iter().unzip()),
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
