//! Token passes for ClickHouse's aliases that sqlparser does not read:
//! `WITH expr AS name` items and aliases inside expressions (`(expr AS
//! name)`, a GROUP BY key's `AS k`), each turned into a form it parses and
//! the rewrite (`rewrite/aliases.rs`) turns back into an alias.

use super::*;

/// The CTE name prefix that carries a ClickHouse `WITH expr AS name` to
/// the rewrite (`rewrite::with_aliases`), which substitutes it.
pub const WITH_ALIAS_PREFIX: &str = "__qh_with_";

/// ClickHouse's `WITH expr AS name, ... SELECT` (an alias usable anywhere in
/// the query, its subqueries included) beside SQL's `WITH name AS (query)`:
/// sqlparser reads only the latter, so each `expr AS name` item becomes
/// `` `__qh_with_name` AS (SELECT expr) `` and the rewrite puts `expr` in
/// place of `name`. A WITH whose items do not end before a SELECT (`WITH
/// ROLLUP`, `WITH FILL`, `WITH TIES`) is left alone.
pub(super) fn with_aliases(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let is_with = |t: &TokenWithSpan| word_of(t).as_deref() == Some("WITH");
    if !tokens.iter().any(is_with) {
        return tokens;
    }
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if is_with(&tokens[i]) {
            if let Some((items, end)) = with_items(&tokens, i + 1) {
                if items.iter().any(|item| alias_item(&tokens, item).is_some()) {
                    out.push(tokens[i].clone());
                    for (k, item) in items.iter().enumerate() {
                        if k > 0 {
                            out.push(TokenWithSpan::wrap(Token::Comma));
                        }
                        match alias_item(&tokens, item) {
                            Some((expr_end, name)) => {
                                let space = || {
                                    TokenWithSpan::wrap(Token::Whitespace(
                                        datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
                                    ))
                                };
                                out.push(space());
                                out.push(TokenWithSpan::wrap(Token::make_word(
                                    &format!("{WITH_ALIAS_PREFIX}{name}"),
                                    Some('`'),
                                )));
                                out.push(space());
                                out.push(TokenWithSpan::wrap(Token::make_keyword("AS")));
                                out.push(TokenWithSpan::wrap(Token::LParen));
                                out.push(TokenWithSpan::wrap(Token::make_keyword("SELECT")));
                                out.push(space());
                                out.extend(tokens[item.start..expr_end].iter().cloned());
                                out.push(TokenWithSpan::wrap(Token::RParen));
                            }
                            None => out.extend(tokens[item.clone()].iter().cloned()),
                        }
                    }
                    i = end;
                    continue;
                }
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// The items of a WITH list starting at `from` (comma-separated at depth
/// 0) and the index of the SELECT that follows them; None when no SELECT
/// at depth 0 follows.
fn with_items(
    tokens: &[TokenWithSpan],
    from: usize,
) -> Option<(Vec<std::ops::Range<usize>>, usize)> {
    let mut items = Vec::new();
    let (mut start, mut depth) = (from, 0usize);
    for (j, t) in tokens.iter().enumerate().skip(from) {
        match &t.token {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => {
                if depth == 0 {
                    return None;
                }
                depth -= 1;
            }
            Token::Comma if depth == 0 => {
                items.push(start..j);
                start = j + 1;
            }
            Token::SemiColon if depth == 0 => return None,
            _ if depth == 0 && word_of(t).as_deref() == Some("SELECT") => {
                items.push(start..j);
                return Some((items, j));
            }
            _ => {}
        }
    }
    None
}

/// For an `expr AS name` item (not a CTE `name [(cols)] AS (query)`): where
/// `expr` ends and the alias.
fn alias_item(tokens: &[TokenWithSpan], item: &std::ops::Range<usize>) -> Option<(usize, String)> {
    let sig: Vec<usize> = item
        .clone()
        .filter(|&k| !matches!(tokens[k].token, Token::Whitespace(_)))
        .collect();
    let [first, second, ..] = sig.as_slice() else {
        return None;
    };
    let is_word = |k: usize| matches!(tokens[k].token, Token::Word(_));
    // `AS (query)` (or `AS [NOT] MATERIALIZED (query)`) at sig[at].
    let as_query = |at: usize| {
        word_of(&tokens[sig[at]]).as_deref() == Some("AS")
            && sig.get(at + 1).is_some_and(|&k| {
                tokens[k].token == Token::LParen
                    || matches!(word_of(&tokens[k]).as_deref(), Some("MATERIALIZED" | "NOT"))
            })
    };
    // `name (columns) AS (query)`: past the column list's `)`.
    let after_columns = || {
        let mut depth = 0usize;
        for (n, &k) in sig.iter().enumerate().skip(1) {
            match tokens[k].token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return n + 1 < sig.len() && as_query(n + 1);
                    }
                }
                _ => {}
            }
        }
        false
    };
    let cte = is_word(*first)
        && if tokens[*second].token == Token::LParen {
            after_columns()
        } else {
            as_query(1)
        };
    if cte || sig.len() < 3 {
        return None;
    }
    let (as_kw, name) = (sig[sig.len() - 2], sig[sig.len() - 1]);
    if word_of(&tokens[as_kw]).as_deref() != Some("AS") {
        return None;
    }
    match &tokens[name].token {
        Token::Word(w) => Some((as_kw, w.value.clone())),
        _ => None,
    }
}

/// The marker function an alias inside an expression becomes (see
/// [`inline_aliases`]); the rewrite takes it out again.
pub const INLINE_ALIAS: &str = "__qh_alias";

/// ClickHouse names a value anywhere inside an expression — `(toDate(x) AS
/// d) + 1`, `f(x AS y, ...)` — and the name is usable elsewhere in the
/// query. sqlparser reads `AS` only after a SELECT item, so each such
/// `expr AS name` inside brackets becomes `__qh_alias(expr, 'name')`, which
/// the rewrite turns back into `expr` and an alias of the query. `CAST(x AS
/// T)` and its kind, `* REPLACE (e AS c)` and subqueries are left alone.
pub(super) fn inline_aliases(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    // Each pass rewrites the outermost of nested aliases; the statement's
    // size bounds the passes (each removes an `AS`), the cap bounds the work.
    for _ in 0..64 {
        let (out, changed) = inline_aliases_once(tokens);
        tokens = out;
        if !changed {
            break;
        }
    }
    tokens
}

fn inline_aliases_once(tokens: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, bool) {
    struct Frame {
        /// Elements here are never aliases (a CAST-like call, an array).
        skip: bool,
        start: usize,
        /// Inside a GROUP BY list at this level: where its current item
        /// started (`GROUP BY x % 3 AS k` names the key).
        group_by: Option<usize>,
    }
    let frame = |skip: bool, start: usize| Frame {
        skip,
        start,
        group_by: None,
    };
    // (first token of the element, the AS, the name token, end exclusive, the name)
    let mut edits: Vec<(usize, usize, usize, usize, String)> = Vec::new();
    // The statement's own level is the root: its items are SELECT items.
    let mut stack: Vec<Frame> = vec![frame(true, 0)];
    let mut previous: Option<usize> = None;
    let element = |from: usize, to: usize| -> Option<(usize, usize, usize, String)> {
        let sig: Vec<usize> = (from..to)
            .filter(|&k| !matches!(tokens[k].token, Token::Whitespace(_)))
            .collect();
        let [first, .., as_kw, name] = sig.as_slice() else {
            return None;
        };
        let Token::Word(alias) = &tokens[*name].token else {
            return None;
        };
        if sig.len() < 3 || word_of(&tokens[*as_kw]).as_deref() != Some("AS") {
            return None;
        }
        Some((*first, *as_kw, *name, alias.value.clone()))
    };
    let end_group_by = |f: &mut Frame, at: usize, edits: &mut Vec<_>| {
        if let Some(start) = f.group_by.take() {
            if let Some((first, as_kw, name, alias)) = element(start, at) {
                edits.push((first, as_kw, name, at, alias));
            }
        }
    };
    for i in 0..tokens.len() {
        let word = word_of(&tokens[i]);
        match &tokens[i].token {
            Token::LParen => {
                let skip = previous.and_then(|p| word_of(&tokens[p])).is_some_and(|w| {
                    matches!(
                        w.as_str(),
                        "CAST"
                            | "TRY_CAST"
                            | "SAFE_CAST"
                            | "CONVERT"
                            | "TRY_CONVERT"
                            | "REPLACE"
                            | "RENAME"
                            | "EXCEPT"
                    )
                });
                stack.push(frame(skip, i + 1));
            }
            Token::LBracket => stack.push(frame(true, i + 1)),
            Token::Comma | Token::RParen | Token::RBracket => {
                if let Some(f) = stack.last_mut() {
                    if !f.skip {
                        if let Some((first, as_kw, name, alias)) = element(f.start, i) {
                            edits.push((first, as_kw, name, i, alias));
                        }
                    }
                    f.start = i + 1;
                    if matches!(tokens[i].token, Token::Comma) {
                        if f.group_by.is_some() {
                            end_group_by(f, i, &mut edits);
                            f.group_by = Some(i + 1);
                        }
                    } else {
                        end_group_by(f, i, &mut edits);
                    }
                }
                if !matches!(tokens[i].token, Token::Comma) && stack.len() > 1 {
                    stack.pop();
                }
            }
            Token::SemiColon => {
                for f in stack.iter_mut() {
                    end_group_by(f, i, &mut edits);
                }
                stack = vec![frame(true, i + 1)];
            }
            // A subquery's items are SELECT items.
            _ if matches!(word.as_deref(), Some("SELECT" | "WITH")) => {
                if let Some(f) = stack.last_mut() {
                    end_group_by(f, i, &mut edits);
                    f.skip = true;
                }
            }
            _ if word.as_deref() == Some("BY")
                && previous.and_then(|p| word_of(&tokens[p])).as_deref() == Some("GROUP") =>
            {
                if let Some(f) = stack.last_mut() {
                    f.group_by = Some(i + 1);
                }
            }
            _ if matches!(
                word.as_deref(),
                Some(
                    "HAVING"
                        | "ORDER"
                        | "LIMIT"
                        | "SETTINGS"
                        | "FORMAT"
                        | "UNION"
                        | "INTERSECT"
                        | "EXCEPT"
                        | "WINDOW"
                        | "QUALIFY"
                        | "OFFSET"
                )
            ) =>
            {
                if let Some(f) = stack.last_mut() {
                    end_group_by(f, i, &mut edits);
                }
            }
            _ => {}
        }
        if !matches!(tokens[i].token, Token::Whitespace(_)) {
            previous = Some(i);
        }
    }
    for f in stack.iter_mut() {
        end_group_by(f, tokens.len(), &mut edits);
    }
    if edits.is_empty() {
        return (tokens, false);
    }
    edits.sort_unstable();
    let mut out = Vec::with_capacity(tokens.len() + 4 * edits.len());
    let mut i = 0;
    for (first, as_kw, name, end, alias) in edits {
        if first < i {
            // Inside an alias rewritten here: the next pass.
            continue;
        }
        out.extend(tokens[i..first].iter().cloned());
        out.push(TokenWithSpan::wrap(Token::make_word(INLINE_ALIAS, None)));
        out.push(TokenWithSpan::wrap(Token::LParen));
        out.extend(tokens[first..as_kw].iter().cloned());
        out.push(TokenWithSpan::wrap(Token::Comma));
        out.push(TokenWithSpan::wrap(Token::SingleQuotedString(alias)));
        out.push(TokenWithSpan::wrap(Token::RParen));
        out.extend(tokens[name + 1..end].iter().cloned());
        i = end;
    }
    out.extend(tokens[i..].iter().cloned());
    (out, true)
}
