//! Query and session settings (`SETTINGS k = v`, `SET k = v`, `--setting k=v`).
//!
//! ClickHouse has thousands of settings; scripts written for it set many we do
//! not act on, so unknown names are kept rather than refused. The ones we act on
//! have typed getters with ClickHouse's defaults.

use std::collections::BTreeMap;

/// An ordered map of setting name to its textual value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` (quotes around string values already removed).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_string(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Settings of `overrides` win over ours (query SETTINGS over session SET).
    pub fn merged_with(&self, overrides: &Settings) -> Settings {
        let mut out = self.clone();
        for (k, v) in &overrides.values {
            out.values.insert(k.clone(), v.clone());
        }
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A numeric setting, or `default` when unset. A value that is not a
    /// number is an error naming the setting.
    pub fn get_u64(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_bool_or_u64(v)
                .ok_or_else(|| format!("cannot parse value '{v}' of setting {name} as a number")),
        }
    }

    pub fn get_bool(&self, name: &str, default: bool) -> Result<bool, String> {
        self.get_u64(name, default as u64).map(|v| v != 0)
    }

    /// `max_insert_block_size`: rows per part written by one INSERT.
    pub fn max_insert_block_size(&self) -> Result<u64, String> {
        self.get_u64("max_insert_block_size", 1_048_449)
    }
}

fn parse_bool_or_u64(v: &str) -> Option<u64> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(1),
        "false" => Some(0),
        s => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_and_overrides() {
        let mut s = Settings::new();
        s.set("insert_quorum", "3");
        s.set("final", "true");
        assert_eq!(s.get_u64("insert_quorum", 0), Ok(3));
        assert_eq!(s.get_bool("final", false), Ok(true));
        assert_eq!(s.get_u64("missing", 7), Ok(7));
        s.set("x", "abc");
        assert!(s.get_u64("x", 0).is_err());
        let mut o = Settings::new();
        o.set("insert_quorum", "2");
        assert_eq!(s.merged_with(&o).get("insert_quorum"), Some("2"));
    }
}
