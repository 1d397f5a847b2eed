//! Query parameters: `{name:Type}` in a statement, bound to the value a
//! client sends as `param_name=...` (HTTP). Values are escaped text, as in
//! ClickHouse; each is validated for its type and spliced in as a quoted
//! literal converted to that type, so a value can never change the
//! statement's shape (no injection).

use std::collections::HashMap;

use qh_types::ErrorCode;

use crate::error::{QueryError, Result};

/// `sql` with every `{name:Type}` outside strings and comments replaced by
/// `params[name]` as a literal of `Type`. Without a placeholder the text is
/// returned unchanged.
pub fn bind_parameters(sql: &str, params: &HashMap<String, String>) -> Result<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(b.len(), |p| i + p + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + p + 4);
            }
            b'{' => match placeholder(&sql[i..]) {
                Some((len, name, ty)) => {
                    out.push_str(&sql[last..i]);
                    let value = params.get(name).ok_or_else(|| {
                        QueryError::other(
                            ErrorCode::UNKNOWN_QUERY_PARAMETER,
                            format!("Substitution `{name}` is not set"),
                        )
                    })?;
                    out.push_str(&literal(name, ty, value)?);
                    i += len;
                    last = i;
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    out.push_str(&sql[last.min(sql.len())..]);
    Ok(out)
}

/// `{name:Type}` at the start of `s`: its length, name and type.
fn placeholder(s: &str) -> Option<(usize, &str, &str)> {
    let end = s.find('}')?;
    let inner = &s[1..end];
    let (name, ty) = inner.split_once(':')?;
    let (name, ty) = (name.trim(), ty.trim());
    let ident = |t: &str| {
        !t.is_empty()
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !t.starts_with(|c: char| c.is_ascii_digit())
    };
    (ident(name) && !ty.is_empty() && !ty.contains('{')).then_some((end + 1, name, ty))
}

fn quoted(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `raw` (escaped text) as a literal of `ty`.
fn literal(name: &str, ty: &str, raw: &str) -> Result<String> {
    if let Some(inner) = ty
        .strip_prefix("Nullable(")
        .and_then(|t| t.strip_suffix(')'))
    {
        return if raw == "\\N" || raw == "NULL" {
            Ok("NULL".into())
        } else {
            literal(name, inner.trim(), raw)
        };
    }
    // Escaped like a TSV field, as ClickHouse reads parameter values.
    let value = &crate::input::unescape_tsv(raw);
    let bad = |why: &str| {
        QueryError::other(
            ErrorCode::BAD_QUERY_PARAMETER,
            format!("Value {value:?} of query parameter {name} cannot be parsed as {ty}: {why}"),
        )
    };
    if let Some(inner) = ty
        .strip_prefix("LowCardinality(")
        .and_then(|t| t.strip_suffix(')'))
    {
        return literal(name, inner.trim(), raw);
    }
    let int = |signed: bool| -> Result<String> {
        let ok = if signed {
            value.trim().parse::<i128>().is_ok()
        } else {
            value.trim().parse::<u128>().is_ok()
        };
        if !ok {
            return Err(bad("not an integer"));
        }
        Ok(format!("to{ty}({})", quoted(value.trim())))
    };
    match ty {
        "String" => Ok(quoted(value)),
        _ if ty.starts_with("FixedString(") => Ok(quoted(value)),
        "Identifier" => Ok(format!(
            "`{}`",
            value.replace('\\', "\\\\").replace('`', "\\`")
        )),
        "UInt8" | "UInt16" | "UInt32" | "UInt64" => int(false),
        "Int8" | "Int16" | "Int32" | "Int64" => int(true),
        "Float32" | "Float64" => {
            value
                .trim()
                .parse::<f64>()
                .map_err(|_| bad("not a number"))?;
            Ok(format!("to{ty}({})", quoted(value.trim())))
        }
        "Bool" => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok("true".into()),
            "false" | "0" => Ok("false".into()),
            _ => Err(bad("not true or false")),
        },
        "Date" | "Date32" => {
            chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
                .map_err(|_| bad("not YYYY-MM-DD"))?;
            Ok(format!("toDate({})", quoted(value.trim())))
        }
        "DateTime" => {
            let v = value.trim();
            let ok = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S").is_ok()
                || v.parse::<u32>().is_ok();
            if !ok {
                return Err(bad("not YYYY-MM-DD hh:mm:ss"));
            }
            Ok(format!("toDateTime({})", quoted(v)))
        }
        _ => Err(QueryError::other(
            ErrorCode::BAD_QUERY_PARAMETER,
            format!("Query parameters of type {ty} are not supported (parameter {name})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn placeholders_become_typed_literals() {
        let params = p(&[("id", "42"), ("s", "it's"), ("t", "events"), ("n", "\\N")]);
        let q = bind_parameters(
            "SELECT {s:String}, '{id:UInt64}' FROM {t:Identifier} WHERE id = {id:UInt64} AND x = {n:Nullable(Int8)} -- {nope:String}",
            &params,
        )
        .unwrap();
        assert_eq!(
            q,
            "SELECT 'it\\'s', '{id:UInt64}' FROM `events` WHERE id = toUInt64('42') AND x = NULL -- {nope:String}"
        );
        let err = bind_parameters("SELECT {x:UInt8}", &params).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UNKNOWN_QUERY_PARAMETER);
        let err = bind_parameters("SELECT {s:UInt8}", &params).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BAD_QUERY_PARAMETER);
        // A value cannot end the literal it is put in.
        let evil = p(&[("v", "1') OR (1")]);
        assert!(bind_parameters("SELECT {v:UInt64}", &evil).is_err());
        assert_eq!(
            bind_parameters("SELECT {v:String}", &evil).unwrap(),
            "SELECT '1\\') OR (1'"
        );
        assert_eq!(bind_parameters("SELECT {}", &params).unwrap(), "SELECT {}");
    }
}
