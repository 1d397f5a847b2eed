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

/// `CASE` open (without its `END` yet) beyond this are refused: sqlparser
/// reads a `CASE` that fails as a CASE expression again as a column named
/// `case`, so each unfinished one doubles the work (`CASE + CASE + …` 20
/// deep took seconds, 40 deep minutes — found by the fuzz test).
pub(super) const MAX_CASE_NESTING: usize = 12;

pub(super) fn check_backtracking_depth(
    tokens: &[TokenWithSpan],
) -> std::result::Result<(), String> {
    // Per open bracket: (opened by a backtracking construct, by a call).
    let mut open: Vec<(bool, bool)> = Vec::new();
    let (mut nested, mut calls, mut cases) = (0usize, 0usize, 0usize);
    let mut previous: Option<&Token> = None;
    for t in tokens {
        match &t.token {
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("CASE") => {
                cases += 1;
                if cases > MAX_CASE_NESTING {
                    return Err(format!(
                        "more than {MAX_CASE_NESTING} CASE expressions open (without their END) at once"
                    ));
                }
            }
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("END") => {
                cases = cases.saturating_sub(1);
            }
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

/// ClickHouse's tuple element syntax `t.1` (also `f(x).2`, `(1, 'a').1`):
/// sqlparser reads `.1` as a number, so the operand and index become
/// `tupleElement(operand, 1)` here.
/// `x IN [1, 2]`: ClickHouse takes an array after IN as the list; sqlparser
/// wants parentheses. `IN []` becomes `IN (NULL)`, the empty list to the
/// rewrite (NULLs in a list are skipped).
pub(super) fn in_array_syntax(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let is_in = |t: &Token| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::IN);
    let mut i = 0;
    while i < tokens.len() {
        if !is_in(&tokens[i].token) {
            i += 1;
            continue;
        }
        i += 1;
        let Some(open) =
            next_significant(&tokens, i).filter(|o| tokens[*o].token == Token::LBracket)
        else {
            continue;
        };
        let mut depth = 0usize;
        let close = (open..tokens.len()).find(|j| {
            match tokens[*j].token {
                Token::LBracket => depth += 1,
                Token::RBracket => depth -= 1,
                _ => {}
            }
            depth == 0
        });
        let Some(close) = close else {
            continue;
        };
        tokens[open].token = Token::LParen;
        tokens[close].token = Token::RParen;
        if next_significant(&tokens, open + 1) == Some(close) {
            tokens.insert(close, TokenWithSpan::wrap(Token::make_keyword("NULL")));
        }
    }
    tokens
}

pub(super) fn tuple_index_syntax(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let index_of = |t: &Token| match t {
        Token::Number(n, false) => n
            .strip_prefix('.')
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string),
        _ => None,
    };
    if !tokens.iter().any(|t| index_of(&t.token).is_some()) {
        return tokens;
    }
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len() + 8);
    for t in tokens {
        let Some(index) = index_of(&t.token) else {
            out.push(t);
            continue;
        };
        let Some(start) = operand_start(&out) else {
            out.push(t);
            continue;
        };
        let operand: Vec<TokenWithSpan> = out.drain(start..).collect();
        out.push(TokenWithSpan::wrap(Token::make_word("tupleElement", None)));
        out.push(TokenWithSpan::wrap(Token::LParen));
        out.extend(operand);
        out.push(TokenWithSpan::wrap(Token::Comma));
        out.push(TokenWithSpan::wrap(Token::Number(index, false)));
        out.push(TokenWithSpan::wrap(Token::RParen));
    }
    out
}

/// Where the operand ending at the last token of `out` starts: a dotted
/// name, a parenthesized group with the function name before it, either
/// followed by subscripts `[i]`.
fn operand_start(out: &[TokenWithSpan]) -> Option<usize> {
    operand_start_at(out, out.len().checked_sub(1)?)
}

/// The index of the bracket opening the group that `close` ends.
fn group_start(out: &[TokenWithSpan], close: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut i = close;
    loop {
        match &out[i].token {
            Token::RParen | Token::RBracket => depth += 1,
            Token::LParen | Token::LBracket => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i = i.checked_sub(1)?;
    }
}

fn operand_start_at(out: &[TokenWithSpan], last: usize) -> Option<usize> {
    let mut i = last;
    match &out[i].token {
        Token::Word(_) => {}
        // `a[2].1`: the subscript's operand.
        Token::RBracket => {
            let open = group_start(out, i)?;
            return operand_start_at(out, open.checked_sub(1)?);
        }
        Token::RParen => {
            i = group_start(out, i)?;
            // A call's name; not a clause's keyword (`WHERE (a, b).1`).
            const CLAUSE: &[&str] = &[
                "SELECT", "WHERE", "PREWHERE", "HAVING", "AND", "OR", "NOT", "IN", "ON", "BY",
                "WHEN", "THEN", "ELSE", "CASE", "FROM", "AS", "DISTINCT", "LIKE", "ILIKE",
                "BETWEEN", "IS", "QUALIFY", "USING", "VALUES", "LIMIT", "OFFSET", "INTERVAL",
            ];
            match i.checked_sub(1).map(|p| &out[p].token) {
                Some(Token::Word(w))
                    if w.quote_style.is_some()
                        || !CLAUSE.iter().any(|k| w.value.eq_ignore_ascii_case(k)) =>
                {
                    i -= 1
                }
                _ => return Some(i),
            }
        }
        _ => return None,
    }
    // `db.table.column`: the dotted words before it.
    while i >= 2
        && matches!(out[i - 1].token, Token::Period)
        && matches!(out[i - 2].token, Token::Word(_))
    {
        i -= 2;
    }
    Some(i)
}
