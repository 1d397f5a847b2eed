//! Column codecs as ClickHouse declares them: `CODEC(Delta, ZSTD(3))`.
//!
//! A chain is zero or more *transforms* (Delta, DoubleDelta, Gorilla, T64),
//! which reorder or difference fixed-width values so they compress better,
//! followed by at most one *compressor* (LZ4, LZ4HC, ZSTD, NONE). A chain
//! that ends in a transform is compressed with [`DEFAULT_COMPRESSOR`], as
//! ClickHouse's DoubleDelta/Gorilla/T64 compress by themselves.
//!
//! The chain is validated against the column type when the table is
//! created, with ClickHouse's rules and error codes; each written block
//! records the steps it used, so reads never need the table's definition.

use std::fmt;
use std::str::FromStr;

use qh_types::{ChType, ErrorCode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One step of a codec chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecStep {
    /// Stores each value's difference from the previous one (`Delta(bytes)`).
    Delta(Option<u8>),
    /// Differences of differences: steady timestamps become zeros.
    DoubleDelta,
    /// XOR with the previous value: slowly changing floats share high bits.
    Gorilla(Option<u8>),
    /// Transposes values byte by byte so unused high bytes compress away.
    T64,
    None,
    Lz4,
    /// Same block format as LZ4 (the level only buys ratio at write time).
    Lz4Hc(Option<i32>),
    Zstd(Option<i32>),
}

/// The compressor used after transforms when a chain names none, and for
/// columns that declare no codec (ClickHouse's default, LZ4).
pub const DEFAULT_COMPRESSOR: CodecStep = CodecStep::Lz4;

impl CodecStep {
    fn is_compressor(self) -> bool {
        matches!(
            self,
            CodecStep::None | CodecStep::Lz4 | CodecStep::Lz4Hc(_) | CodecStep::Zstd(_)
        )
    }

    /// Whether ClickHouse counts the step as compressing on its own.
    fn compresses(self) -> bool {
        !matches!(self, CodecStep::Delta(_))
    }
}

impl fmt::Display for CodecStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecStep::Delta(Some(n)) => write!(f, "Delta({n})"),
            CodecStep::Delta(None) => write!(f, "Delta"),
            CodecStep::DoubleDelta => write!(f, "DoubleDelta"),
            CodecStep::Gorilla(Some(n)) => write!(f, "Gorilla({n})"),
            CodecStep::Gorilla(None) => write!(f, "Gorilla"),
            CodecStep::T64 => write!(f, "T64"),
            CodecStep::None => write!(f, "NONE"),
            CodecStep::Lz4 => write!(f, "LZ4"),
            CodecStep::Lz4Hc(Some(l)) => write!(f, "LZ4HC({l})"),
            CodecStep::Lz4Hc(None) => write!(f, "LZ4HC"),
            CodecStep::Zstd(Some(l)) => write!(f, "ZSTD({l})"),
            CodecStep::Zstd(None) => write!(f, "ZSTD(1)"),
        }
    }
}

/// A column's codec chain, in the order ClickHouse applies it on write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecChain(pub Vec<CodecStep>);

impl Default for CodecChain {
    fn default() -> Self {
        CodecChain(vec![DEFAULT_COMPRESSOR])
    }
}

/// A codec the table definition cannot use, with ClickHouse's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("Unknown codec family: {0}")]
    Unknown(String),
    #[error("{0}")]
    IllegalParameter(String),
    #[error("{0}")]
    IllegalForType(String),
    #[error("{0}")]
    Meaningless(String),
}

impl CodecError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CodecError::Unknown(_) => ErrorCode::UNKNOWN_CODEC,
            CodecError::IllegalParameter(_) => ErrorCode::ILLEGAL_CODEC_PARAMETER,
            CodecError::IllegalForType(_) => ErrorCode::ILLEGAL_SYNTAX_FOR_CODEC_TYPE,
            CodecError::Meaningless(_) => ErrorCode::BAD_ARGUMENTS,
        }
    }
}

const SUSPICIOUS: &str =
    "(Note: you can enable setting 'allow_suspicious_codecs' to skip this check)";

impl FromStr for CodecChain {
    type Err = CodecError;

    /// Parses the inside of `CODEC(...)`: `Delta(4), ZSTD(3)`.
    fn from_str(s: &str) -> Result<Self, CodecError> {
        let mut steps = Vec::new();
        for item in split_top_level(s) {
            let item = item.trim();
            let (name, arg) = match item.split_once('(') {
                Some((n, rest)) => {
                    let arg = rest.strip_suffix(')').ok_or_else(|| {
                        CodecError::IllegalParameter(format!("Malformed codec argument: {item}"))
                    })?;
                    (n.trim(), Some(arg.trim()))
                }
                None => (item, None),
            };
            let int = |what: &str| -> Result<Option<i64>, CodecError> {
                match arg {
                    None | Some("") => Ok(None),
                    Some(a) => a.parse::<i64>().map(Some).map_err(|_| {
                        CodecError::IllegalParameter(format!(
                            "{what} codec argument must be integer"
                        ))
                    }),
                }
            };
            let no_arg = |step: CodecStep| -> Result<CodecStep, CodecError> {
                match arg {
                    None | Some("") => Ok(step),
                    Some(_) => Err(CodecError::IllegalParameter(format!(
                        "{step} codec does not accept any arguments"
                    ))),
                }
            };
            let step = match name.to_ascii_uppercase().as_str() {
                "DELTA" => match int("Delta")? {
                    None => CodecStep::Delta(None),
                    Some(n @ (1 | 2 | 4 | 8)) => CodecStep::Delta(Some(n as u8)),
                    Some(n) => {
                        return Err(CodecError::IllegalParameter(format!(
                            "Delta value for delta codec can be 1, 2, 4 or 8, given {n}"
                        )))
                    }
                },
                // The width a block uses is the stored type's; the argument
                // is kept for SHOW CREATE.
                "GORILLA" => match int("Gorilla")? {
                    None => CodecStep::Gorilla(None),
                    Some(n @ (1 | 2 | 4 | 8)) => CodecStep::Gorilla(Some(n as u8)),
                    Some(n) => {
                        return Err(CodecError::IllegalParameter(format!(
                            "Gorilla value for gorilla codec can be 1, 2, 4 or 8, given {n}"
                        )))
                    }
                },
                "DOUBLEDELTA" => {
                    int("DoubleDelta")?;
                    CodecStep::DoubleDelta
                }
                "T64" => no_arg(CodecStep::T64)?,
                "NONE" => no_arg(CodecStep::None)?,
                "LZ4" => no_arg(CodecStep::Lz4)?,
                "LZ4HC" => match int("LZ4HC")? {
                    Some(l) if l > 12 => {
                        return Err(CodecError::IllegalParameter(format!(
                            "LZ4HC codec can't have level more than 12, given {l}"
                        )))
                    }
                    l => CodecStep::Lz4Hc(l.map(|l| l as i32)),
                },
                "ZSTD" => match int("ZSTD")? {
                    Some(l) if l > 22 => {
                        return Err(CodecError::IllegalParameter(format!(
                            "ZSTD codec can't have level more than 22, given {l}"
                        )))
                    }
                    l => CodecStep::Zstd(l.map(|l| l as i32)),
                },
                _ => return Err(CodecError::Unknown(name.to_string())),
            };
            steps.push(step);
        }
        if steps.is_empty() {
            return Err(CodecError::IllegalParameter(
                "Compression codec cannot be empty".into(),
            ));
        }
        Ok(CodecChain(steps))
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() || !out.is_empty() {
        out.push(&s[start..]);
    }
    out
}

impl fmt::Display for CodecChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|s| s.to_string()).collect();
        write!(f, "{}", parts.join(", "))
    }
}

impl Serialize for CodecChain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for CodecChain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The value size ClickHouse gives a type (for codec rules), if fixed.
fn value_size(ty: &ChType) -> Option<u8> {
    Some(match ty {
        ChType::UInt8 | ChType::Int8 | ChType::Bool => 1,
        ChType::UInt16 | ChType::Int16 | ChType::Date => 2,
        ChType::UInt32 | ChType::Int32 | ChType::Float32 | ChType::DateTime => 4,
        ChType::UInt64 | ChType::Int64 | ChType::Float64 | ChType::DateTime64(_) => 8,
        ChType::Decimal(p, _) => match p {
            0..=9 => 4,
            10..=18 => 8,
            19..=38 => 16,
            _ => 32,
        },
        ChType::Nullable(t) | ChType::Array(t) => return value_size(t),
        ChType::String | ChType::LowCardinality(_) | ChType::Tuple(_) | ChType::Map(..) => {
            return None
        }
    })
}

fn is_float(ty: &ChType) -> bool {
    match ty {
        ChType::Float32 | ChType::Float64 => true,
        ChType::Nullable(t) | ChType::Array(t) => is_float(t),
        _ => false,
    }
}

impl CodecChain {
    /// Checks the chain against the column's type with ClickHouse's rules
    /// (without `allow_suspicious_codecs`) and fills in the defaults it
    /// shows: `Delta` becomes `Delta(<value size>)`.
    pub fn validated_for(&self, ty: &ChType) -> Result<CodecChain, CodecError> {
        let size = value_size(ty);
        let mut steps = Vec::with_capacity(self.0.len());
        for (i, step) in self.0.iter().enumerate() {
            let step = match *step {
                s @ (CodecStep::Delta(_)
                | CodecStep::DoubleDelta
                | CodecStep::Gorilla(_)
                | CodecStep::T64) => {
                    let family = match s {
                        CodecStep::Delta(_) => "Delta",
                        CodecStep::DoubleDelta => "DoubleDelta",
                        CodecStep::Gorilla(_) => "Gorilla",
                        _ => "T64",
                    };
                    let Some(size) = size else {
                        return Err(CodecError::Meaningless(format!(
                            "Codec {family} is not applicable for {ty} because the data type is not of fixed size"
                        )));
                    };
                    if s == CodecStep::T64 && is_float(ty) {
                        return Err(CodecError::IllegalForType(format!(
                            "T64 codec is not supported for specified type {ty}"
                        )));
                    }
                    if !matches!(size, 1 | 2 | 4 | 8) {
                        return Err(CodecError::Meaningless(format!(
                            "Codec {family} is only applicable for data types of size 1, 2, 4, 8 bytes. Given type {ty}"
                        )));
                    }
                    match s {
                        CodecStep::Delta(None) => CodecStep::Delta(Some(size)),
                        CodecStep::Gorilla(None) => CodecStep::Gorilla(Some(size)),
                        s => s,
                    }
                }
                s => s,
            };
            if i > 0 && self.0[i - 1].is_compressor() {
                return Err(CodecError::Meaningless(format!(
                    "The combination of compression codecs {self} is meaningless, because it does not make sense to apply any transformations after generic compression algorithm. {SUSPICIOUS}"
                )));
            }
            steps.push(step);
        }
        let chain = CodecChain(steps);
        if chain.0.contains(&CodecStep::None) && chain.0.len() > 1 {
            return Err(CodecError::Meaningless(format!(
                "It does not make sense to have codec NONE along with other compression codecs: {chain}. {SUSPICIOUS}"
            )));
        }
        let gorilla = chain.0.iter().any(|s| matches!(s, CodecStep::Gorilla(_)));
        if gorilla && !is_float(ty) {
            return Err(CodecError::Meaningless(format!(
                "The combination of compression codecs {chain} is meaningless, because it does not make sense to apply a floating-point time series codec to non-floating-point columns {SUSPICIOUS}"
            )));
        }
        if !chain.0.iter().any(|s| s.compresses()) {
            return Err(CodecError::Meaningless(format!(
                "Compression codec {chain} does not compress anything. You may want to add generic compression algorithm after other transformations, like: {chain}, LZ4. {SUSPICIOUS}"
            )));
        }
        Ok(chain)
    }

    /// The transforms, in write order.
    pub fn transforms(&self) -> impl Iterator<Item = CodecStep> + '_ {
        self.0.iter().copied().filter(|s| !s.is_compressor())
    }

    /// The compressor that ends the chain.
    pub fn compressor(&self) -> CodecStep {
        self.0
            .iter()
            .copied()
            .rfind(|s| s.is_compressor())
            .unwrap_or(DEFAULT_COMPRESSOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, ty: ChType) -> Result<String, (i32, String)> {
        text.parse::<CodecChain>()
            .and_then(|c| c.validated_for(&ty))
            .map(|c| c.to_string())
            .map_err(|e| (e.code() as i32, e.to_string()))
    }

    // Expected texts and codes from ClickHouse (chDB 4.4).
    #[test]
    fn valid_chains_print_as_clickhouse_does() {
        assert_eq!(
            check("Delta, LZ4", ChType::Decimal(10, 2)).unwrap(),
            "Delta(8), LZ4"
        );
        assert_eq!(
            check("Delta(2), ZSTD", ChType::Nullable(Box::new(ChType::Int32))).unwrap(),
            "Delta(2), ZSTD(1)"
        );
        assert_eq!(check("DoubleDelta", ChType::Int64).unwrap(), "DoubleDelta");
        assert_eq!(check("T64", ChType::UInt32).unwrap(), "T64");
        assert_eq!(
            check("T64, LZ4", ChType::Array(Box::new(ChType::UInt32))).unwrap(),
            "T64, LZ4"
        );
        assert_eq!(check("ZSTD(22)", ChType::String).unwrap(), "ZSTD(22)");
        assert_eq!(check("NONE", ChType::UInt8).unwrap(), "NONE");
        assert_eq!(
            check("Gorilla, ZSTD(3)", ChType::Float64).unwrap(),
            "Gorilla(8), ZSTD(3)"
        );
        assert_eq!(check("Gorilla", ChType::Float32).unwrap(), "Gorilla(4)");
        assert_eq!(
            check("Delta, Delta, LZ4", ChType::UInt64).unwrap(),
            "Delta(8), Delta(8), LZ4"
        );
    }

    #[test]
    fn invalid_chains_carry_clickhouse_codes() {
        let code = |t: &str, ty: ChType| check(t, ty).unwrap_err().0;
        assert_eq!(code("Foo", ChType::UInt64), 432);
        assert_eq!(code("ZSTD(23)", ChType::UInt64), 433);
        assert_eq!(code("Delta(3), LZ4", ChType::UInt64), 433);
        assert_eq!(code("T64, LZ4", ChType::Float64), 431);
        assert_eq!(code("Delta, LZ4", ChType::String), 36);
        assert_eq!(code("Delta", ChType::UInt64), 36);
        assert_eq!(code("ZSTD, Delta", ChType::UInt64), 36);
        assert_eq!(code("LZ4, ZSTD", ChType::UInt64), 36);
        assert_eq!(code("Delta(8), NONE", ChType::UInt64), 36);
        assert_eq!(code("Gorilla, ZSTD(3)", ChType::UInt64), 36);
        assert_eq!(code("Delta, LZ4", ChType::Decimal(38, 2)), 36);
        assert!(check("Delta, LZ4", ChType::String).unwrap_err().1.contains(
            "Codec Delta is not applicable for String because the data type is not of fixed size"
        ));
    }

    #[test]
    fn serde_is_the_sql_text() {
        let c: CodecChain = "Delta(4), ZSTD(3)".parse().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"Delta(4), ZSTD(3)\"");
        assert_eq!(serde_json::from_str::<CodecChain>(&json).unwrap(), c);
    }
}
