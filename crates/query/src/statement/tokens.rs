//! Token passes run before sqlparser: ClickHouse syntax its dialect lacks
//! (LIMIT BY, `cond ? a : b`, `ALL`/`GLOBAL` joins, FINAL, a SELECT's
//! trailing FORMAT/SETTINGS, `VALUES` as a table function) rewritten into
//! what it reads, and the nesting guards that keep its backtracking bounded.

use super::*;

/// sqlparser tries `CAST(`, `POSITION(`, `ARRAY[` ... first as SQL syntax
/// and, when that fails (ClickHouse's `CAST(x, 'T')`), parses the same text
/// again as a function call: every such construct nested inside another
/// doubles the work, so 30 of them take minutes. More than this many open at
/// once are refused before sqlparser sees them.
pub(super) const MAX_BACKTRACKING_NESTING: usize = 8;

/// Function calls nested in each other beyond this are refused: sqlparser
/// tries several readings of each argument (a named argument first) and,
/// near its recursion limit (50), every failed reading is retried at every
/// level — 44 nested calls parse in 50 ms, 48 take minutes.
pub(super) const MAX_CALL_NESTING: usize = 32;

pub(super) fn check_backtracking_depth(
    tokens: &[TokenWithSpan],
) -> std::result::Result<(), String> {
    // Per open bracket: (opened by a backtracking construct, by a call).
    let mut open: Vec<(bool, bool)> = Vec::new();
    let (mut nested, mut calls) = (0usize, 0usize);
    let mut previous: Option<&Token> = None;
    for t in tokens {
        match &t.token {
            Token::LParen | Token::LBracket => {
                let backtracks = match (previous, &t.token) {
                    (Some(Token::Word(w)), Token::LParen) if w.quote_style.is_none() => matches!(
                        w.value.to_ascii_uppercase().as_str(),
                        "CAST"
                            | "TRY_CAST"
                            | "SAFE_CAST"
                            | "POSITION"
                            | "CONVERT"
                            | "OVERLAY"
                            | "INTERVAL"
                    ),
                    (Some(Token::Word(w)), Token::LBracket) => {
                        w.quote_style.is_none() && w.value.eq_ignore_ascii_case("ARRAY")
                    }
                    _ => false,
                };
                let call = matches!((previous, &t.token), (Some(Token::Word(_)), Token::LParen));
                nested += usize::from(backtracks);
                calls += usize::from(call);
                if nested > MAX_BACKTRACKING_NESTING {
                    return Err(format!(
                        "more than {MAX_BACKTRACKING_NESTING} CAST/POSITION/CONVERT/OVERLAY/INTERVAL/ARRAY[ nested in each other"
                    ));
                }
                if calls > MAX_CALL_NESTING {
                    return Err(format!(
                        "more than {MAX_CALL_NESTING} function calls nested in each other"
                    ));
                }
                open.push((backtracks, call));
            }
            Token::RParen | Token::RBracket => {
                if let Some((backtracks, call)) = open.pop() {
                    nested -= usize::from(backtracks);
                    calls -= usize::from(call);
                }
            }
            _ => {}
        }
        if !matches!(t.token, Token::Whitespace(_)) {
            previous = Some(&t.token);
        }
    }
    Ok(())
}

/// The index of the first token at or after `from` that is not whitespace.
fn next_significant(v: &[TokenWithSpan], from: usize) -> Option<usize> {
    v[from..]
        .iter()
        .position(|t| !matches!(t.token, Token::Whitespace(_)))
        .map(|p| p + from)
}

/// Whether a word after `previous` is a name (of a table, column or alias)
/// rather than a keyword.
pub(super) fn names_something(previous: Option<&Token>) -> bool {
    match previous {
        Some(Token::Period) => true,
        Some(Token::Word(w)) if w.quote_style.is_none() => matches!(
            w.value.to_ascii_uppercase().as_str(),
            "FROM" | "JOIN" | "AS" | "TABLE"
        ),
        _ => false,
    }
}

/// Cuts a SELECT's trailing `FORMAT name` and `SETTINGS k = v, ...` (in any
/// order, outside parentheses) off the token list.
#[allow(clippy::type_complexity)]
pub(super) fn split_trailer(
    tokens: Vec<TokenWithSpan>,
) -> std::result::Result<(Vec<TokenWithSpan>, Option<String>, Settings), String> {
    let first = tokens.iter().find_map(word_of);
    let mut settings = Settings::new();
    if !matches!(first.as_deref(), Some("SELECT" | "WITH")) {
        return Ok((tokens, None, settings));
    }
    let mut depth = 0i32;
    let mut cut = None;
    // The token before this one (whitespace skipped): `system.settings`,
    // `FROM settings` or `AS format` name things, they start no clause.
    let mut previous: Option<&Token> = None;
    for (i, t) in tokens.iter().enumerate() {
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0
                && matches!(word_of(t).as_deref(), Some("FORMAT" | "SETTINGS"))
                && !names_something(previous) =>
            {
                cut = Some(i);
                break;
            }
            _ => {}
        }
        if !matches!(t.token, Token::Whitespace(_)) {
            previous = Some(&t.token);
        }
    }
    let Some(cut) = cut else {
        return Ok((tokens, None, settings));
    };
    let mut rest: Vec<Token> = tokens[cut..]
        .iter()
        .map(|t| t.token.clone())
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon | Token::EOF))
        .collect();
    rest.reverse();
    let mut head = tokens;
    head.truncate(cut);
    let mut format = None;
    let text = |t: &Token| match t {
        Token::Word(w) => w.value.clone(),
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
        other => other.to_string(),
    };
    while let Some(t) = rest.pop() {
        match word_of(&TokenWithSpan::wrap(t.clone())).as_deref() {
            Some("FORMAT") => {
                let name = rest.pop().ok_or("Expected a format name after FORMAT")?;
                format = Some(text(&name));
            }
            Some("SETTINGS") => loop {
                let k = rest.pop().ok_or("Expected a setting name")?;
                if rest.pop() != Some(Token::Eq) {
                    return Err(format!("Expected = after setting {}", text(&k)));
                }
                let mut v = rest.pop().ok_or("Expected a setting value")?;
                let mut value = text(&v);
                if v == Token::Minus {
                    v = rest.pop().ok_or("Expected a setting value")?;
                    value = format!("-{}", text(&v));
                }
                settings.set(&text(&k), value);
                if rest.last() == Some(&Token::Comma) {
                    rest.pop();
                    continue;
                }
                break;
            },
            _ => return Err(format!("Unexpected {t} after FORMAT/SETTINGS")),
        }
    }
    Ok((head, format, settings))
}

/// Name of the marker `LIMIT ... BY` becomes; `rewrite.rs` turns it into a
/// `row_number()` window over the query's ORDER BY.
pub const LIMIT_BY_MARKER: &str = "__qh_limit_by";
/// Likewise for `LIMIT [offset,] n WITH TIES`: `QUALIFY __qh_with_ties(offset, n)`.
pub const WITH_TIES_MARKER: &str = "__qh_with_ties";

/// ClickHouse's `LIMIT [offset,] n [OFFSET offset] BY e1, e2` (optionally
/// followed by an ordinary LIMIT) becomes `QUALIFY __qh_limit_by(offset, n,
/// e1, e2)` placed before the query's ORDER BY (sqlparser reads neither the
/// comma form nor a second LIMIT), and `LIMIT [offset,] n WITH TIES` becomes
/// `QUALIFY __qh_with_ties(offset, n)`. Works at any nesting depth.
pub(super) fn limit_by_syntax(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let number = |t: &TokenWithSpan| match &t.token {
        Token::Number(n, _) => Some(n.clone()),
        _ => None,
    };
    // Per open parenthesis: where the current query's ORDER BY starts.
    let mut order_at: Vec<Option<usize>> = vec![None];
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match &t.token {
            Token::LParen => order_at.push(None),
            Token::RParen => {
                order_at.pop();
                if order_at.is_empty() {
                    order_at.push(None);
                }
            }
            _ => {}
        }
        let w = word_of(t);
        if matches!(
            w.as_deref(),
            Some("SELECT" | "UNION" | "EXCEPT" | "INTERSECT")
        ) {
            if let Some(top) = order_at.last_mut() {
                *top = None;
            }
        }
        if w.as_deref() == Some("ORDER") {
            let next = next_significant(&tokens, i + 1).and_then(|n| word_of(&tokens[n]));
            if next.as_deref() == Some("BY") {
                if let Some(top) = order_at.last_mut() {
                    *top = Some(out.len());
                }
            }
        }
        if w.as_deref() == Some("LIMIT") {
            // LIMIT a [, b | OFFSET b] BY ...
            let a = next_significant(&tokens, i + 1);
            let first = a.and_then(|a| number(&tokens[a]));
            let mut parsed = None;
            if let (Some(a), Some(first)) = (a, first) {
                let n1 = next_significant(&tokens, a + 1);
                let (offset, limit, after) = match n1.map(|n| (&tokens[n].token, n)) {
                    Some((Token::Comma, c)) => {
                        let b = next_significant(&tokens, c + 1);
                        match b.and_then(|b| number(&tokens[b]).map(|v| (v, b))) {
                            Some((v, b)) => (first.clone(), v, next_significant(&tokens, b + 1)),
                            None => ("0".to_string(), first.clone(), None),
                        }
                    }
                    Some((_, n)) if word_of(&tokens[n]).as_deref() == Some("OFFSET") => {
                        let b = next_significant(&tokens, n + 1);
                        match b.and_then(|b| number(&tokens[b]).map(|v| (v, b))) {
                            Some((v, b)) => (v, first.clone(), next_significant(&tokens, b + 1)),
                            None => ("0".to_string(), first.clone(), None),
                        }
                    }
                    _ => ("0".to_string(), first.clone(), n1),
                };
                let ties = after.filter(|w| word_of(&tokens[*w]).as_deref() == Some("WITH"));
                let ties = ties
                    .and_then(|w| next_significant(&tokens, w + 1))
                    .filter(|t| word_of(&tokens[*t]).as_deref() == Some("TIES"));
                if let Some(t) = ties {
                    parsed = Some((
                        WITH_TIES_MARKER,
                        offset.clone(),
                        limit.clone(),
                        t + 1,
                        t + 1,
                    ));
                } else if let Some(by) =
                    after.filter(|b| word_of(&tokens[*b]).as_deref() == Some("BY"))
                {
                    // The BY list runs to a LIMIT, a closing parenthesis of
                    // this level, or the end.
                    let mut depth = 0i32;
                    let mut end = by + 1;
                    while end < tokens.len() {
                        match &tokens[end].token {
                            Token::LParen => depth += 1,
                            Token::RParen if depth == 0 => break,
                            Token::RParen => depth -= 1,
                            Token::SemiColon if depth == 0 => break,
                            _ => {}
                        }
                        if depth == 0
                            && matches!(
                                word_of(&tokens[end]).as_deref(),
                                Some("LIMIT" | "SETTINGS" | "FORMAT" | "UNION")
                            )
                        {
                            break;
                        }
                        end += 1;
                    }
                    parsed = Some((LIMIT_BY_MARKER, offset, limit, by + 1, end));
                }
            }
            if let Some((marker, offset, limit, from, end)) = parsed {
                let mut clause = vec![
                    TokenWithSpan::wrap(Token::Whitespace(
                        datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
                    )),
                    TokenWithSpan::wrap(Token::make_keyword("QUALIFY")),
                    TokenWithSpan::wrap(Token::Whitespace(
                        datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
                    )),
                    TokenWithSpan::wrap(Token::make_word(marker, None)),
                    TokenWithSpan::wrap(Token::LParen),
                    TokenWithSpan::wrap(Token::Number(offset, false)),
                    TokenWithSpan::wrap(Token::Comma),
                    TokenWithSpan::wrap(Token::Number(limit, false)),
                ];
                if from < end {
                    clause.push(TokenWithSpan::wrap(Token::Comma));
                    clause.extend(tokens[from..end].iter().cloned());
                }
                clause.push(TokenWithSpan::wrap(Token::RParen));
                clause.push(TokenWithSpan::wrap(Token::Whitespace(
                    datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
                )));
                match order_at.last().copied().flatten() {
                    Some(at) => {
                        let tail = out.split_off(at);
                        out.extend(clause);
                        out.extend(tail);
                    }
                    None => out.extend(clause),
                }
                i = end;
                continue;
            }
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

/// ClickHouse's `values` table function after FROM/JOIN —
/// `VALUES('a UInt8, b String', (1, 'x'), ...)`, `VALUES((1, 'x'), ...)` or
/// `VALUES(1, 2, ...)` — becomes the standard `(VALUES (1, 'x'), ...) AS
/// alias(a, b)`; columns are `c1, c2, ...` unless the structure names them.
pub(super) fn values_function(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    use datafusion::sql::sqlparser::tokenizer::Whitespace;
    let space = || TokenWithSpan::wrap(Token::Whitespace(Whitespace::Space));
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let prev = out
            .iter()
            .rev()
            .find(|p| !matches!(p.token, Token::Whitespace(_)))
            .and_then(word_of);
        let open = next_significant(&tokens, i + 1).filter(|o| tokens[*o].token == Token::LParen);
        let is_values = word_of(t).as_deref() == Some("VALUES")
            && matches!(prev.as_deref(), Some("FROM" | "JOIN"))
            && open.is_some();
        let Some(open) = open.filter(|_| is_values) else {
            out.push(t.clone());
            i += 1;
            continue;
        };
        // Arguments at depth 1, split by commas.
        let mut args: Vec<Vec<TokenWithSpan>> = vec![vec![]];
        let mut depth = 0;
        let mut close = None;
        for (k, tok) in tokens.iter().enumerate().skip(open + 1) {
            match &tok.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => {
                    close = Some(k);
                    break;
                }
                Token::RParen => depth -= 1,
                Token::Comma if depth == 0 => {
                    args.push(vec![]);
                    continue;
                }
                _ => {}
            }
            if let Some(last) = args.last_mut() {
                last.push(tok.clone());
            }
        }
        let Some(close) = close else {
            out.push(t.clone());
            i += 1;
            continue;
        };
        let significant = |a: &[TokenWithSpan]| -> Vec<TokenWithSpan> {
            a.iter()
                .filter(|t| !matches!(t.token, Token::Whitespace(_)))
                .cloned()
                .collect()
        };
        let mut names: Option<Vec<String>> = None;
        if let [only] = significant(&args[0]).as_slice() {
            if let Token::SingleQuotedString(structure) = &only.token {
                names = Some(
                    structure
                        .split(',')
                        .filter_map(|c| c.split_whitespace().next().map(str::to_string))
                        .collect(),
                );
                args.remove(0);
            }
        }
        // Each row: a tuple as it is, a scalar in parentheses.
        let mut rows: Vec<Vec<TokenWithSpan>> = Vec::new();
        let mut width = 1;
        for (n, a) in args.iter().enumerate() {
            let sig_tokens = significant(a);
            let is_tuple = sig_tokens.first().map(|t| &t.token) == Some(&Token::LParen)
                && sig_tokens.last().map(|t| &t.token) == Some(&Token::RParen);
            if is_tuple {
                if n == 0 {
                    let mut d = 0;
                    width = 1;
                    for tk in &sig_tokens[1..sig_tokens.len() - 1] {
                        match tk.token {
                            Token::LParen => d += 1,
                            Token::RParen => d -= 1,
                            Token::Comma if d == 0 => width += 1,
                            _ => {}
                        }
                    }
                }
                rows.push(a.clone());
            } else {
                let mut r = vec![TokenWithSpan::wrap(Token::LParen)];
                r.extend(a.iter().cloned());
                r.push(TokenWithSpan::wrap(Token::RParen));
                rows.push(r);
            }
        }
        let names = names.unwrap_or_else(|| (1..=width).map(|k| format!("c{k}")).collect());
        // A following `[AS] alias` names the table.
        let mut next = close + 1;
        let mut alias = "values".to_string();
        if let Some(a) = next_significant(&tokens, close + 1) {
            let a = if word_of(&tokens[a]).as_deref() == Some("AS") {
                next_significant(&tokens, a + 1).unwrap_or(a)
            } else {
                a
            };
            if let Token::Word(w) = &tokens[a].token {
                if w.keyword == Keyword::NoKeyword || w.quote_style.is_some() {
                    alias = w.value.clone();
                    next = a + 1;
                }
            }
        }
        out.push(TokenWithSpan::wrap(Token::LParen));
        out.push(TokenWithSpan::wrap(Token::make_keyword("VALUES")));
        out.push(space());
        for (n, r) in rows.into_iter().enumerate() {
            if n > 0 {
                out.push(TokenWithSpan::wrap(Token::Comma));
            }
            out.extend(r);
        }
        out.push(TokenWithSpan::wrap(Token::RParen));
        out.push(space());
        out.push(TokenWithSpan::wrap(Token::make_keyword("AS")));
        out.push(space());
        out.push(TokenWithSpan::wrap(Token::make_word(&alias, Some('"'))));
        out.push(TokenWithSpan::wrap(Token::LParen));
        for (n, name) in names.iter().enumerate() {
            if n > 0 {
                out.push(TokenWithSpan::wrap(Token::Comma));
            }
            out.push(TokenWithSpan::wrap(Token::make_word(name, Some('"'))));
        }
        out.push(TokenWithSpan::wrap(Token::RParen));
        out.push(space());
        i = next;
    }
    out
}

/// ClickHouse's `cond ? a : b` becomes `if(cond, a, b)`. The operator binds
/// loosest (below OR) and to the right, so the rightmost `?` is rewritten
/// first; the condition runs back to a comma, an open parenthesis or a
/// clause keyword, the else branch on to a comma, a closing parenthesis, an
/// alias or the next clause.
pub(super) fn ternary_operator(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    const BEFORE: &[&str] = &[
        "SELECT", "WHERE", "PREWHERE", "HAVING", "ON", "WHEN", "THEN", "ELSE", "BY", "DISTINCT",
        "QUALIFY",
    ];
    const AFTER: &[&str] = &[
        "AS", "FROM", "WHERE", "PREWHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "SETTINGS",
        "FORMAT", "UNION", "END", "THEN", "ELSE", "WHEN", "ASC", "DESC", "QUALIFY", "WINDOW",
    ];
    let is_q = |t: &TokenWithSpan| matches!(&t.token, Token::Placeholder(p) if p == "?");
    // Bounded: each pass removes one `?`.
    for _ in 0..tokens.len() {
        let Some(q) = tokens.iter().rposition(is_q) else {
            break;
        };
        // The matching `:` at the same depth.
        let mut depth = 0i32;
        let mut colon = None;
        for (k, t) in tokens.iter().enumerate().skip(q + 1) {
            match &t.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => break,
                Token::RParen => depth -= 1,
                Token::Colon if depth == 0 => {
                    colon = Some(k);
                    break;
                }
                _ => {}
            }
        }
        let Some(colon) = colon else {
            break; // not ClickHouse's ternary: leave it to the parser's error
        };
        let mut start = q;
        let mut depth = 0i32;
        while start > 0 {
            let t = &tokens[start - 1];
            match &t.token {
                Token::RParen => depth += 1,
                Token::LParen if depth == 0 => break,
                Token::LParen => depth -= 1,
                // An enclosing ternary's `?` or `:` ends this one's condition.
                Token::Comma | Token::Colon if depth == 0 => break,
                Token::Placeholder(p) if depth == 0 && p == "?" => break,
                _ => {}
            }
            if depth == 0 && word_of(t).is_some_and(|w| BEFORE.contains(&w.as_str())) {
                break;
            }
            start -= 1;
        }
        let mut end = colon + 1;
        let mut depth = 0i32;
        while end < tokens.len() {
            let t = &tokens[end];
            match &t.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => break,
                Token::RParen => depth -= 1,
                Token::Comma | Token::SemiColon | Token::Colon if depth == 0 => break,
                _ => {}
            }
            if depth == 0 && word_of(t).is_some_and(|w| AFTER.contains(&w.as_str())) {
                break;
            }
            end += 1;
        }
        let mut call = vec![
            TokenWithSpan::wrap(Token::make_word("if", None)),
            TokenWithSpan::wrap(Token::LParen),
        ];
        call.extend(tokens[start..q].iter().cloned());
        call.push(TokenWithSpan::wrap(Token::Comma));
        call.extend(tokens[q + 1..colon].iter().cloned());
        call.push(TokenWithSpan::wrap(Token::Comma));
        call.extend(tokens[colon + 1..end].iter().cloned());
        call.push(TokenWithSpan::wrap(Token::RParen));
        call.push(TokenWithSpan::wrap(Token::Whitespace(
            datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
        )));
        tokens.splice(start..end, call);
    }
    tokens
}

/// ClickHouse join syntax sqlparser lacks: `ALL` strictness (the standard
/// join, so it is dropped), `USING a, b` without parentheses, and `GLOBAL`
/// before IN and JOIN.
pub(super) fn join_syntax(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    const JOIN_WORDS: &[&str] = &["LEFT", "RIGHT", "INNER", "FULL", "JOIN", "OUTER", "CROSS"];
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let w = word_of(t);
        if w.as_deref() == Some("ALL") {
            let next = next_significant(&tokens, i + 1).and_then(|n| word_of(&tokens[n]));
            let prev = out
                .iter()
                .rev()
                .find(|p| !matches!(p.token, Token::Whitespace(_)))
                .and_then(word_of);
            // `ALL LEFT JOIN`, `LEFT ALL JOIN`, `GLOBAL ALL JOIN`
            if next.as_deref().is_some_and(|n| JOIN_WORDS.contains(&n))
                && !matches!(prev.as_deref(), Some("UNION" | "EXCEPT" | "INTERSECT"))
            {
                i += 1;
                continue;
            }
        }
        // `x GLOBAL IN (subquery)`, `GLOBAL JOIN`: the executor computes a
        // subquery or the right side once on the initiator over every shard
        // in any case, which is what GLOBAL asks for.
        if w.as_deref() == Some("GLOBAL") {
            let next = next_significant(&tokens, i + 1).and_then(|n| word_of(&tokens[n]));
            let after_operand = out
                .iter()
                .rev()
                .find(|p| !matches!(p.token, Token::Whitespace(_)))
                .is_some_and(|p| match &p.token {
                    Token::RParen | Token::Number(..) | Token::SingleQuotedString(_) => true,
                    Token::Word(_) => !word_of(p).is_some_and(|w| {
                        matches!(
                            w.as_str(),
                            "WHERE"
                                | "PREWHERE"
                                | "HAVING"
                                | "AND"
                                | "OR"
                                | "NOT"
                                | "SELECT"
                                | "ON"
                                | "WHEN"
                                | "THEN"
                                | "ELSE"
                                | "BY"
                                | "DISTINCT"
                        )
                    }),
                    _ => false,
                });
            let keyword_next = next.as_deref().is_some_and(|n| {
                matches!(n, "IN" | "NOT" | "ANY" | "ALL" | "SEMI" | "ANTI" | "ASOF")
                    || JOIN_WORDS.contains(&n)
            });
            if after_operand && keyword_next {
                i += 1;
                continue;
            }
        }
        if w.as_deref() == Some("USING") {
            if let Some(n) = next_significant(&tokens, i + 1) {
                if tokens[n].token != Token::LParen {
                    out.push(t.clone());
                    out.push(TokenWithSpan::wrap(Token::LParen));
                    let mut j = n;
                    loop {
                        // identifier
                        out.push(tokens[j].clone());
                        match next_significant(&tokens, j + 1) {
                            Some(c) if tokens[c].token == Token::Comma => {
                                out.push(tokens[c].clone());
                                match next_significant(&tokens, c + 1) {
                                    Some(nx) => j = nx,
                                    None => {
                                        j = c;
                                        break;
                                    }
                                }
                            }
                            _ => break,
                        }
                    }
                    out.push(TokenWithSpan::wrap(Token::RParen));
                    i = j + 1;
                    continue;
                }
            }
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

/// Byte offset of a 1-based line/column location.
pub(super) fn char_offset(sql: &str, loc: Location) -> usize {
    let mut off = 0;
    for (i, line) in sql.split('\n').enumerate() {
        if i + 1 == loc.line as usize {
            let col = (loc.column as usize).saturating_sub(1);
            return off
                + line
                    .char_indices()
                    .nth(col)
                    .map(|(b, _)| b)
                    .unwrap_or(line.len());
        }
        off += line.len() + 1;
    }
    sql.len()
}

/// Removes `FINAL` after a table name in a SELECT and records the table.
pub(super) fn strip_final(tokens: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, HashSet<String>) {
    let first_word = tokens.iter().find_map(word_of);
    let mut finals = HashSet::new();
    if matches!(first_word.as_deref(), Some("OPTIMIZE")) {
        return (tokens, finals);
    }
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if word_of(&t).as_deref() == Some("FINAL") {
            // Previous significant token: the table name or its alias.
            let prev = out
                .iter()
                .rev()
                .find(|p| !matches!(p.token, Token::Whitespace(_)));
            if let Some(Token::Word(w)) = prev.map(|p| &p.token) {
                // A table may be named like a keyword (`replace`); only the
                // words that end a FROM item cannot be its name.
                if !matches!(w.keyword, Keyword::FROM | Keyword::JOIN) || w.quote_style.is_some() {
                    // The table is the word before the alias when there is one.
                    let mut sig = out
                        .iter()
                        .rev()
                        .filter(|p| !matches!(p.token, Token::Whitespace(_)));
                    let last = sig.next();
                    let before = sig.next();
                    let name = match (before.map(|b| &b.token), last.map(|l| &l.token)) {
                        (Some(Token::Word(b)), _) if b.keyword == Keyword::AS => {
                            sig.next().and_then(|t| match &t.token {
                                Token::Word(w) => Some(w.value.clone()),
                                _ => None,
                            })
                        }
                        (_, Some(Token::Word(l))) => Some(l.value.clone()),
                        _ => None,
                    };
                    if let Some(n) = name {
                        finals.insert(n);
                    }
                    continue;
                }
            }
        }
        out.push(t);
    }
    (out, finals)
}

/// Removes ClickHouse's `WITH TOTALS` (after GROUP BY, or after the FROM of
/// an aggregate query without one) and says whether the outermost query
/// asked for it; a subquery's totals reach nobody, as in ClickHouse. A CTE
/// named `totals` (`WITH totals AS (...)`, `WITH totals (a) AS`) stays.
pub(super) fn strip_totals(tokens: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, bool) {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut totals = false;
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        if word_of(t).as_deref() == Some("WITH") {
            let after_something = out.iter().any(|p| !matches!(p.token, Token::Whitespace(_)))
                && !matches!(
                    out.iter()
                        .rev()
                        .find(|p| !matches!(p.token, Token::Whitespace(_)))
                        .map(|p| &p.token),
                    Some(Token::LParen | Token::Comma)
                );
            if let Some(n) = next_significant(&tokens, i + 1) {
                let cte = next_significant(&tokens, n + 1).is_some_and(|m| {
                    tokens[m].token == Token::LParen || word_of(&tokens[m]).as_deref() == Some("AS")
                });
                if word_of(&tokens[n]).as_deref() == Some("TOTALS") && after_something && !cte {
                    totals |= depth == 0;
                    i = n + 1;
                    continue;
                }
            }
        }
        out.push(t.clone());
        i += 1;
    }
    (out, totals)
}

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
