//! ClickHouse data types and their Arrow representation.

use std::fmt;
use std::str::FromStr;

use arrow::datatypes::{DataType, Field, TimeUnit};
use serde::{Deserialize, Serialize};

/// Field metadata key under which a column's ClickHouse type name travels with
/// its Arrow field, so output formats and `toTypeName` can tell `DateTime`
/// from a plain timestamp and `LowCardinality(String)` from `String`.
pub const CH_TYPE_KEY: &str = "clickhouse.type";

/// A type name we cannot parse or do not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown data type: {0}")]
pub struct TypeError(pub String);

/// Whether `name` (quoted or not) is a zone that is UTC at every instant.
pub fn is_utc_zone(name: &str) -> bool {
    let n = name.trim().trim_matches(|c| c == '\'' || c == '"').trim();
    matches!(
        n,
        "UTC"
            | "Etc/UTC"
            | "UCT"
            | "Etc/UCT"
            | "GMT"
            | "Etc/GMT"
            | "Universal"
            | "Etc/Universal"
            | "Zulu"
            | "Etc/Zulu"
            | "GMT0"
            | "Etc/GMT0"
            | "Etc/GMT+0"
            | "Etc/GMT-0"
    )
}

/// A ClickHouse column type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ChType {
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    String,
    Date,
    DateTime,
    /// DateTime64 with precision 0..=9 (0, 3, 6 and 9 map exactly onto Arrow).
    DateTime64(u8),
    Decimal(u8, u8),
    Nullable(Box<ChType>),
    LowCardinality(Box<ChType>),
    Array(Box<ChType>),
    /// `Tuple(T1, T2)` or `Tuple(a T1, b T2)`: an Arrow struct whose fields
    /// are the element names, `1`, `2`, … for unnamed elements (the names
    /// ClickHouse gives them: `t.1`, `tupleElement(t, 1)`).
    Tuple(Vec<TupleElement>),
    /// `Map(K, V)`: an Arrow map of `key` / `value` entries (DataFusion's
    /// names, so its `map()` values need no renaming).
    Map(Box<ChType>, Box<ChType>),
}

/// One element of a `Tuple` type: its name when the tuple is named.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TupleElement {
    pub name: Option<String>,
    pub ty: ChType,
}

/// Field names of a map's entries (DataFusion's `map()` uses these).
pub const MAP_ENTRIES: &str = "entries";
pub const MAP_KEY: &str = "key";
pub const MAP_VALUE: &str = "value";

/// The Arrow field of a map's entries for `key` and `value` types.
pub fn map_entries_field(key: DataType, value: DataType, value_nullable: bool) -> Field {
    Field::new(
        MAP_ENTRIES,
        DataType::Struct(arrow::datatypes::Fields::from(vec![
            Field::new(MAP_KEY, key, false),
            Field::new(MAP_VALUE, value, value_nullable),
        ])),
        false,
    )
}

impl ChType {
    /// The Arrow type that holds values of this type in memory and in parts.
    pub fn to_arrow(&self) -> DataType {
        match self {
            ChType::UInt8 => DataType::UInt8,
            ChType::UInt16 => DataType::UInt16,
            ChType::UInt32 => DataType::UInt32,
            ChType::UInt64 => DataType::UInt64,
            ChType::Int8 => DataType::Int8,
            ChType::Int16 => DataType::Int16,
            ChType::Int32 => DataType::Int32,
            ChType::Int64 => DataType::Int64,
            ChType::Float32 => DataType::Float32,
            ChType::Float64 => DataType::Float64,
            ChType::Bool => DataType::Boolean,
            ChType::String => DataType::Utf8,
            ChType::Date => DataType::Date32,
            ChType::DateTime => DataType::Timestamp(TimeUnit::Second, None),
            ChType::DateTime64(p) => DataType::Timestamp(time_unit_for_precision(*p), None),
            ChType::Decimal(p, s) => DataType::Decimal128(*p, *s as i8),
            ChType::Nullable(t) | ChType::LowCardinality(t) => t.to_arrow(),
            ChType::Array(t) => DataType::List(std::sync::Arc::new(Field::new(
                "item",
                t.to_arrow(),
                t.is_nullable(),
            ))),
            ChType::Tuple(elements) => DataType::Struct(
                elements
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let name = e.name.clone().unwrap_or_else(|| (i + 1).to_string());
                        Field::new(name, e.ty.to_arrow(), e.ty.is_nullable())
                    })
                    .collect::<Vec<_>>()
                    .into(),
            ),
            ChType::Map(k, v) => DataType::Map(
                std::sync::Arc::new(map_entries_field(
                    k.to_arrow(),
                    v.to_arrow(),
                    v.is_nullable(),
                )),
                false,
            ),
        }
    }

    /// The ClickHouse type of an Arrow field: the name it carries, else the
    /// best name for its Arrow type.
    pub fn of_field(f: &Field) -> Option<ChType> {
        f.metadata()
            .get(CH_TYPE_KEY)
            .and_then(|t| t.parse().ok())
            .or_else(|| {
                let t = Self::from_arrow(f.data_type())?;
                Some(if f.is_nullable() && t.can_be_nullable() {
                    ChType::Nullable(Box::new(t))
                } else {
                    t
                })
            })
    }

    /// Whether ClickHouse allows `Nullable(self)` (not for composite types).
    pub fn can_be_nullable(&self) -> bool {
        !matches!(
            self,
            ChType::Nullable(_)
                | ChType::LowCardinality(_)
                | ChType::Array(_)
                | ChType::Tuple(_)
                | ChType::Map(..)
        )
    }

    /// The best ClickHouse name for an Arrow type (for computed columns).
    pub fn from_arrow(dt: &DataType) -> Option<ChType> {
        Some(match dt {
            DataType::UInt8 => ChType::UInt8,
            DataType::UInt16 => ChType::UInt16,
            DataType::UInt32 => ChType::UInt32,
            DataType::UInt64 => ChType::UInt64,
            DataType::Int8 => ChType::Int8,
            DataType::Int16 => ChType::Int16,
            DataType::Int32 => ChType::Int32,
            DataType::Int64 => ChType::Int64,
            DataType::Float16 | DataType::Float32 => ChType::Float32,
            DataType::Float64 => ChType::Float64,
            DataType::Boolean => ChType::Bool,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ChType::String,
            DataType::Date32 | DataType::Date64 => ChType::Date,
            DataType::Timestamp(TimeUnit::Second, _) => ChType::DateTime,
            DataType::Timestamp(TimeUnit::Millisecond, _) => ChType::DateTime64(3),
            DataType::Timestamp(TimeUnit::Microsecond, _) => ChType::DateTime64(6),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => ChType::DateTime64(9),
            DataType::Decimal128(p, s) => ChType::Decimal(*p, (*s).max(0) as u8),
            DataType::Null => ChType::Nullable(Box::new(ChType::String)),
            DataType::Dictionary(_, v) => ChType::LowCardinality(Box::new(Self::from_arrow(v)?)),
            DataType::List(f) | DataType::LargeList(f) => {
                let inner = Self::from_arrow(f.data_type())?;
                ChType::Array(Box::new(if f.is_nullable() && !inner.is_nullable() {
                    ChType::Nullable(Box::new(inner))
                } else {
                    inner
                }))
            }
            DataType::Struct(fields) => {
                let positional = tuple_is_positional(fields);
                let mut elements = Vec::with_capacity(fields.len());
                for f in fields.iter() {
                    let ty = Self::from_arrow(f.data_type())?;
                    let ty = if f.is_nullable() && ty.can_be_nullable() {
                        ChType::Nullable(Box::new(ty))
                    } else {
                        ty
                    };
                    elements.push(TupleElement {
                        name: (!positional).then(|| f.name().clone()),
                        ty,
                    });
                }
                ChType::Tuple(elements)
            }
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => {
                    let k = Self::from_arrow(kv[0].data_type())?;
                    let v = Self::from_arrow(kv[1].data_type())?;
                    let v = if kv[1].is_nullable() && v.can_be_nullable() {
                        ChType::Nullable(Box::new(v))
                    } else {
                        v
                    };
                    ChType::Map(Box::new(k), Box::new(v))
                }
                _ => return None,
            },
            _ => return None,
        })
    }

    /// The name as ClickHouse prints it with `print_pretty_type_names` (on
    /// by default; `toTypeName` and DESCRIBE): each element of a named tuple
    /// on a line of its own, indented four spaces a level. Elsewhere (format
    /// headers, system.columns) the one-line [`Display`] name.
    pub fn pretty_name(&self) -> String {
        let mut out = String::new();
        self.write_pretty(&mut out, 0);
        out
    }

    fn write_pretty(&self, out: &mut String, depth: usize) {
        use std::fmt::Write;
        match self {
            ChType::Tuple(elements) if elements.iter().all(|e| e.name.is_some()) => {
                out.push_str("Tuple(");
                for (i, e) in elements.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    out.push_str(&" ".repeat(4 * (depth + 1)));
                    let name = e.name.as_deref().unwrap_or_default();
                    if is_plain_identifier(name) {
                        out.push_str(name);
                    } else {
                        let _ = write!(out, "`{}`", name.replace('`', "\\`"));
                    }
                    out.push(' ');
                    e.ty.write_pretty(out, depth + 1);
                }
                out.push(')');
            }
            ChType::Tuple(elements) => {
                out.push_str("Tuple(");
                for (i, e) in elements.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    e.ty.write_pretty(out, depth);
                }
                out.push(')');
            }
            ChType::Map(k, v) => {
                out.push_str("Map(");
                k.write_pretty(out, depth);
                out.push_str(", ");
                v.write_pretty(out, depth);
                out.push(')');
            }
            ChType::Array(t) | ChType::Nullable(t) | ChType::LowCardinality(t) => {
                let head = match self {
                    ChType::Array(_) => "Array(",
                    ChType::Nullable(_) => "Nullable(",
                    _ => "LowCardinality(",
                };
                out.push_str(head);
                t.write_pretty(out, depth);
                out.push(')');
            }
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }

    pub fn is_nullable(&self) -> bool {
        match self {
            ChType::Nullable(_) => true,
            ChType::LowCardinality(t) => t.is_nullable(),
            _ => false,
        }
    }

    /// The type without `Nullable`/`LowCardinality` wrappers.
    pub fn base(&self) -> &ChType {
        match self {
            ChType::Nullable(t) | ChType::LowCardinality(t) => t.base(),
            t => t,
        }
    }

    /// An Arrow field for a column of this type, carrying the ClickHouse name.
    pub fn field(&self, name: &str) -> Field {
        let mut md = std::collections::HashMap::new();
        md.insert(CH_TYPE_KEY.to_string(), self.to_string());
        Field::new(name, self.to_arrow(), self.is_nullable()).with_metadata(md)
    }
}

/// Type families whose names ClickHouse accepts in any case.
fn canonical_head(h: &str) -> &str {
    match h.to_ascii_lowercase().as_str() {
        "datetime" => "DateTime",
        "datetime64" => "DateTime64",
        "decimal" | "dec" | "numeric" => "Decimal",
        "nullable" => "Nullable",
        "lowcardinality" => "LowCardinality",
        "array" => "Array",
        "fixedstring" => "FixedString",
        "tuple" => "Tuple",
        "map" => "Map",
        _ => h,
    }
}

fn time_unit_for_precision(p: u8) -> TimeUnit {
    match p {
        0 => TimeUnit::Second,
        1..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

impl fmt::Display for ChType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChType::UInt8 => f.write_str("UInt8"),
            ChType::UInt16 => f.write_str("UInt16"),
            ChType::UInt32 => f.write_str("UInt32"),
            ChType::UInt64 => f.write_str("UInt64"),
            ChType::Int8 => f.write_str("Int8"),
            ChType::Int16 => f.write_str("Int16"),
            ChType::Int32 => f.write_str("Int32"),
            ChType::Int64 => f.write_str("Int64"),
            ChType::Float32 => f.write_str("Float32"),
            ChType::Float64 => f.write_str("Float64"),
            ChType::Bool => f.write_str("Bool"),
            ChType::String => f.write_str("String"),
            ChType::Date => f.write_str("Date"),
            ChType::DateTime => f.write_str("DateTime"),
            ChType::DateTime64(p) => write!(f, "DateTime64({p})"),
            ChType::Decimal(p, s) => write!(f, "Decimal({p}, {s})"),
            ChType::Nullable(t) => write!(f, "Nullable({t})"),
            ChType::LowCardinality(t) => write!(f, "LowCardinality({t})"),
            ChType::Array(t) => write!(f, "Array({t})"),
            ChType::Tuple(elements) => {
                f.write_str("Tuple(")?;
                for (i, e) in elements.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match &e.name {
                        Some(n) if is_plain_identifier(n) => write!(f, "{n} {}", e.ty)?,
                        Some(n) => write!(f, "`{}` {}", n.replace('`', "\\`"), e.ty)?,
                        None => write!(f, "{}", e.ty)?,
                    }
                }
                f.write_str(")")
            }
            ChType::Map(k, v) => write!(f, "Map({k}, {v})"),
        }
    }
}

fn is_plain_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits `s` at its top-level commas (outside parentheses and quotes).
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut quote) = (0i32, 0usize, None::<char>);
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '`' | '"' => quote = Some(c),
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s[start..].trim());
    parts
}

/// One element of `Tuple(...)`: `name Type` or `Type`.
fn tuple_element(s: &str) -> Result<TupleElement, TypeError> {
    let s = s.trim();
    let (name, rest) = if let Some(quoted) = s.strip_prefix('`') {
        match quoted.find('`') {
            Some(end) => (Some(quoted[..end].to_string()), quoted[end + 1..].trim()),
            None => return Err(TypeError(s.to_string())),
        }
    } else {
        match s.split_once(char::is_whitespace) {
            Some((head, rest)) if is_plain_identifier(head) && !rest.trim().is_empty() => {
                match rest.trim().parse::<ChType>() {
                    Ok(ty) => {
                        return Ok(TupleElement {
                            name: Some(head.to_string()),
                            ty,
                        })
                    }
                    Err(_) => (None, s),
                }
            }
            _ => (None, s),
        }
    };
    Ok(TupleElement {
        name,
        ty: rest.parse()?,
    })
}

impl From<ChType> for String {
    fn from(t: ChType) -> String {
        t.to_string()
    }
}

impl TryFrom<String> for ChType {
    type Error = TypeError;
    fn try_from(s: String) -> Result<Self, TypeError> {
        s.parse()
    }
}

impl FromStr for ChType {
    type Err = TypeError;

    /// Parses ClickHouse type names; simple names are case-insensitive like
    /// ClickHouse's aliases (`INT`, `BIGINT`, `TEXT`, ...).
    fn from_str(s: &str) -> Result<Self, TypeError> {
        let s = s.trim();
        let err = || TypeError(s.to_string());
        if let Some(open) = s.find('(') {
            if !s.ends_with(')') {
                return Err(err());
            }
            let head = canonical_head(s[..open].trim());
            let inner = &s[open + 1..s.len() - 1];
            return match head {
                "Nullable" => Ok(ChType::Nullable(Box::new(inner.parse()?))),
                "LowCardinality" => Ok(ChType::LowCardinality(Box::new(inner.parse()?))),
                "Array" => Ok(ChType::Array(Box::new(inner.parse()?))),
                "Tuple" => {
                    let elements = split_top_level(inner)
                        .into_iter()
                        .map(tuple_element)
                        .collect::<Result<Vec<_>, _>>()?;
                    if elements.is_empty() || inner.trim().is_empty() {
                        return Err(err());
                    }
                    let named = elements.iter().filter(|e| e.name.is_some()).count();
                    if named != 0 && named != elements.len() {
                        return Err(TypeError(format!(
                            "{s} (either all or none of a tuple's elements have names)"
                        )));
                    }
                    Ok(ChType::Tuple(elements))
                }
                "Map" => match split_top_level(inner).as_slice() {
                    [k, v] => {
                        let k: ChType = k.parse()?;
                        if k.is_nullable() {
                            return Err(TypeError(format!("{s} (a map's key cannot be {k})")));
                        }
                        Ok(ChType::Map(Box::new(k), Box::new(v.parse()?)))
                    }
                    _ => Err(err()),
                },
                "DateTime64" => {
                    let p = inner.split(',').next().unwrap_or("").trim();
                    let p: u8 = p.parse().map_err(|_| err())?;
                    if p > 9 {
                        return Err(err());
                    }
                    if let Some(zone) = inner.split_once(',').map(|(_, z)| z) {
                        if !is_utc_zone(zone) {
                            return Err(TypeError(format!(
                                "{s} (only the UTC time zone is implemented)"
                            )));
                        }
                    }
                    Ok(ChType::DateTime64(p))
                }
                // Values are UTC instants shown in UTC: a column declared in
                // another zone would parse and print its values differently
                // in ClickHouse, so it is refused rather than answered wrong.
                "DateTime" if inner.trim().is_empty() || is_utc_zone(inner) => Ok(ChType::DateTime),
                "DateTime" => Err(TypeError(format!(
                    "{s} (only the UTC time zone is implemented)"
                ))),
                "Decimal" => {
                    let mut it = inner.split(',').map(str::trim);
                    let p: u8 = it.next().and_then(|v| v.parse().ok()).ok_or_else(err)?;
                    let sc: u8 = match it.next() {
                        Some(v) => v.parse().map_err(|_| err())?,
                        None => 0,
                    };
                    if p == 0 || p > 38 || sc > p {
                        return Err(err());
                    }
                    Ok(ChType::Decimal(p, sc))
                }
                "Decimal32" | "Decimal64" | "Decimal128" => {
                    let sc: u8 = inner.trim().parse().map_err(|_| err())?;
                    let p = match head {
                        "Decimal32" => 9,
                        "Decimal64" => 18,
                        _ => 38,
                    };
                    Ok(ChType::Decimal(p, sc))
                }
                "FixedString" => Ok(ChType::String),
                _ => Err(err()),
            };
        }
        Ok(match s {
            "UInt8" => ChType::UInt8,
            "UInt16" => ChType::UInt16,
            "UInt32" => ChType::UInt32,
            "UInt64" => ChType::UInt64,
            "Int8" => ChType::Int8,
            "Int16" => ChType::Int16,
            "Int32" => ChType::Int32,
            "Int64" => ChType::Int64,
            "Float32" => ChType::Float32,
            "Float64" => ChType::Float64,
            "Bool" => ChType::Bool,
            "String" => ChType::String,
            "Date" | "Date32" => ChType::Date,
            "DateTime" => ChType::DateTime,
            _ => match s.to_ascii_uppercase().as_str() {
                "DATETIME" => ChType::DateTime,
                "DATE" => ChType::Date,
                "STRING" => ChType::String,
                "TINYINT" | "INT1" | "BYTE" => ChType::Int8,
                "SMALLINT" | "INT2" => ChType::Int16,
                "INT" | "INTEGER" | "INT4" => ChType::Int32,
                "BIGINT" | "INT8" => ChType::Int64,
                "FLOAT" | "REAL" => ChType::Float32,
                "DOUBLE" => ChType::Float64,
                "BOOLEAN" | "BOOL" => ChType::Bool,
                "TEXT" | "VARCHAR" | "CHAR" | "BLOB" => ChType::String,
                "TIMESTAMP" => ChType::DateTime,
                // ClickHouse's default precision and scale.
                "DECIMAL" | "DEC" | "NUMERIC" => ChType::Decimal(10, 0),
                _ => return Err(err()),
            },
        })
    }
}

/// Whether a Struct's fields carry positional names ("1", "2", … as an
/// unnamed Tuple maps to Arrow, or `struct(a, b)`'s c0, c1, …): such a Struct
/// is an unnamed tuple.
pub fn tuple_is_positional(fields: &arrow::datatypes::Fields) -> bool {
    fields.iter().enumerate().all(|(i, f)| {
        let n = f.name().as_str();
        n.parse::<usize>() == Ok(i + 1)
            || n.strip_prefix('c').and_then(|d| d.parse::<usize>().ok()) == Some(i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_roundtrip() {
        for s in [
            "UInt8",
            "Int64",
            "Float64",
            "Bool",
            "String",
            "Date",
            "DateTime",
            "DateTime64(3)",
            "Decimal(10, 2)",
            "Nullable(String)",
            "LowCardinality(String)",
            "LowCardinality(Nullable(String))",
            "Array(UInt32)",
            "Tuple(UInt8, String)",
            "Tuple(a String, b Nullable(Int32))",
            "Tuple(a Decimal(10, 2), `b c` Array(Tuple(DateTime64(3), String)))",
            "Map(String, UInt64)",
            "Map(LowCardinality(String), Array(Nullable(Float64)))",
            "Array(Map(UInt8, Tuple(String, String)))",
        ] {
            let t: ChType = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert!("Strin".parse::<ChType>().is_err());
        assert!("DateTime64(12)".parse::<ChType>().is_err());
        assert!("Tuple(a String, UInt8)".parse::<ChType>().is_err());
        assert!("Map(Nullable(String), String)".parse::<ChType>().is_err());
        assert!("Map(String)".parse::<ChType>().is_err());
        assert!("Tuple()".parse::<ChType>().is_err());
    }

    #[test]
    fn pretty_names_put_named_tuple_elements_on_lines() {
        let t: ChType = "Tuple(a Tuple(b UInt8, c String), d Array(Tuple(e UInt8)))"
            .parse()
            .unwrap();
        assert_eq!(
            t.pretty_name(),
            "Tuple(\n    a Tuple(\n        b UInt8,\n        c String),\n    d Array(Tuple(\n        e UInt8)))"
        );
        let u: ChType = "Map(String, Tuple(UInt8, String))".parse().unwrap();
        assert_eq!(u.pretty_name(), u.to_string());
    }

    #[test]
    fn composite_types_round_trip_through_arrow() {
        for s in [
            "Tuple(UInt8, String)",
            "Tuple(a String, b Nullable(Int32))",
            "Map(String, UInt64)",
            "Map(String, Nullable(Float64))",
            "Array(Tuple(String, UInt8))",
        ] {
            let t: ChType = s.parse().unwrap();
            assert_eq!(ChType::from_arrow(&t.to_arrow()), Some(t), "{s}");
        }
    }

    #[test]
    fn arrow_mapping() {
        let t: ChType = "Nullable(DateTime)".parse().unwrap();
        assert_eq!(t.to_arrow(), DataType::Timestamp(TimeUnit::Second, None));
        assert!(t.field("ts").is_nullable());
        assert_eq!(ChType::from_arrow(&DataType::Utf8), Some(ChType::String));
    }
}
