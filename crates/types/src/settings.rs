//! Query and session settings (`SETTINGS k = v`, `SET k = v`, `--setting k=v`).
//!
//! ClickHouse has about two thousand settings; scripts written for it set many
//! we do not act on, so a name ClickHouse knows is accepted and kept, and only
//! a name it does not know is refused (UNKNOWN_SETTING, as ClickHouse does).
//! The ones we act on are listed once, in [`SETTING_DEFS`], with ClickHouse's
//! types and defaults. A few that would change a result if honoured and are
//! not ([`NOT_HONOURED`]) are refused unless set to their default: an error
//! instead of a different answer.

use std::collections::BTreeMap;

/// A setting quorumhouse acts on: ClickHouse's name, type and default, and
/// what it does here. The one table behind typed reads ([`Settings::uint`])
/// and `system.settings`; a setting not listed is kept but does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingDef {
    pub name: &'static str,
    /// ClickHouse's type name as `system.settings.type` shows it.
    pub ty: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

macro_rules! setting_defs {
    ($(($name:literal, $ty:literal, $default:literal, $doc:literal),)*) => {
        /// Every setting we act on, by name.
        pub const SETTING_DEFS: &[SettingDef] = &[
            $(SettingDef { name: $name, ty: $ty, default: $default, description: $doc },)*
        ];
    };
}

setting_defs! {
    ("max_threads", "MaxThreads", "0", "Parallel partitions of a query (0: the number of cores)."),
    ("max_insert_block_size", "UInt64", "1048449", "Rows per part written by one INSERT."),
    ("max_insert_input_bytes", "UInt64", "0", "quorumhouse: bytes of INSERT data accepted (0: no limit); beyond it the insert fails with QUERY_IS_TOO_LARGE and writes nothing."),
    ("insert_quorum", "UInt64Auto", "0", "Acknowledge an INSERT only when this many replicas hold it ('auto': a majority)."),
    ("insert_quorum_timeout", "Milliseconds", "600000", "How long a quorum INSERT waits for its replicas."),
    ("insert_quorum_parallel", "Bool", "1", "Allow several quorum INSERTs into one table at once."),
    ("insert_deduplicate", "Bool", "1", "Drop an INSERT block already inserted (by its hash or insert_deduplication_token)."),
    ("insert_deduplication_token", "String", "", "Identifies an INSERT for deduplication of retries."),
    ("async_insert", "Bool", "0", "Buffer small INSERTs into one table from many clients and write them as one part with one commit."),
    ("wait_for_async_insert", "Bool", "1", "An async INSERT is answered once its buffer was written (with insert_quorum: on that many replicas); 0: once buffered."),
    ("wait_for_async_insert_timeout", "Seconds", "120", "How long an async INSERT waits for its buffer to be written."),
    ("async_insert_busy_timeout_ms", "Milliseconds", "200", "An async insert buffer is written this long after its first INSERT."),
    ("async_insert_max_data_size", "UInt64", "10485760", "An async insert buffer is written at once when it holds this many bytes."),
    ("async_insert_max_query_number", "UInt64", "450", "An async insert buffer is written at once when it holds this many INSERTs."),
    ("async_insert_deduplicate", "Bool", "0", "Deduplicate async INSERTs into replicated tables: each buffered insert keeps its own block id."),
    ("select_sequential_consistency", "UInt64", "0", "Refuse to read on a replica that lacks a part written with a quorum."),
    ("receive_timeout", "Seconds", "300", "Seconds a replica waits for data (SYSTEM SYNC REPLICA)."),
    ("distributed_ddl_task_timeout", "Int64", "180", "Seconds an ON CLUSTER statement waits for every host."),
    ("aggregate_functions_null_for_empty", "Bool", "0", "An aggregate of a non-Nullable argument over no rows is NULL (1) or its type's default, nan for avg (0)."),
    ("join_use_nulls", "Bool", "0", "Unmatched rows of an outer join get NULL (1) or the type's default (0)."),
    ("group_by_use_nulls", "Bool", "0", "ROLLUP/CUBE rows get NULL (1) or the type's default (0)."),
    ("max_ast_depth", "UInt64", "1000", "Maximum depth of a query's syntax tree (TOO_DEEP_AST)."),
    ("max_ast_elements", "UInt64", "50000", "Maximum elements of a query's syntax tree (TOO_BIG_AST)."),
    ("max_expanded_ast_elements", "UInt64", "500000", "Maximum elements of the syntax tree after aliases are substituted."),
    ("max_execution_time", "Seconds", "0", "Seconds a SELECT may run (0: no limit); TIMEOUT_EXCEEDED."),
    ("timeout_overflow_mode", "OverflowMode", "throw", "At max_execution_time: throw, or break and return what was read."),
    ("max_memory_usage", "UInt64", "0", "Bytes a query's operators may hold (0: no limit); MEMORY_LIMIT_EXCEEDED."),
    ("max_rows_to_read", "UInt64", "0", "Rows a query may read (0: no limit); TOO_MANY_ROWS."),
    ("max_bytes_to_read", "UInt64", "0", "Uncompressed bytes a query may read (0: no limit); TOO_MANY_BYTES."),
    ("read_overflow_mode", "OverflowMode", "throw", "At the read limits: throw (break is not supported)."),
    ("max_result_rows", "UInt64", "0", "Rows of a result (0: no limit); TOO_MANY_ROWS_OR_BYTES."),
    ("max_result_bytes", "UInt64", "0", "Bytes of a result (0: no limit); TOO_MANY_ROWS_OR_BYTES."),
    ("result_overflow_mode", "OverflowMode", "throw", "At the result limits: throw, or break and return whole blocks read so far."),
    ("skip_unavailable_shards", "Bool", "0", "A Distributed query answers from the shards it reaches instead of failing with ALL_CONNECTION_TRIES_FAILED."),
    ("optimize_move_to_prewhere", "Bool", "1", "Scans read the columns of the WHERE conditions first and the other columns only for granules where some row passes; a condition on one LowCardinality column is evaluated once per distinct value."),
    ("count_distinct_optimization", "Bool", "0", "count(DISTINCT x) and uniqExact(x) computed as a grouping by x below the count (1), instead of one set of values per group (0)."),
    ("query_plan_optimize_lazy_materialization", "Bool", "1", "A top-N (ORDER BY … LIMIT n) reads the columns it sorts and filters by first, and the other columns only for the n rows it keeps."),
    ("query_plan_max_limit_for_lazy_materialization", "UInt64", "10000", "The largest LIMIT read lazily (0: no limit)."),
    ("optimize_read_in_order", "Bool", "1", "A top-N by a prefix of the table's sorting key (ORDER BY key LIMIT n) merges the parts read in key order instead of sorting: rows with equal keys come in the order they are stored."),
    ("optimize_skip_unused_shards", "Bool", "0", "A Distributed query whose WHERE fixes the sharding key (key = v, key IN (...)) asks only the shards those values were inserted into."),
    ("distributed_group_by_no_merge", "UInt64", "0", "1: every shard runs the whole query and their results are concatenated, not merged; 2: likewise, but the ORDER BY and LIMIT apply over the shards' results on the initiator."),
    ("prefer_localhost_replica", "Bool", "1", "A Distributed query reads this node's shard replica in-process when it has one."),
    ("max_replica_delay_for_distributed_queries", "Seconds", "300", "A Distributed query skips a replica of a replicated local table that is this far behind the replication log (0: no limit)."),
    ("fallback_to_stale_replicas_for_distributed_queries", "Bool", "1", "When every replica of a shard is too far behind, a Distributed query reads the stale ones anyway instead of failing with ALL_REPLICAS_ARE_STALE."),
    ("connect_timeout_with_failover_ms", "Milliseconds", "1000", "How long a Distributed query waits to connect to a shard replica before trying the next."),
    ("max_parallel_replicas", "NonZeroUInt64", "1", "A Distributed aggregation splits each shard's rows by ranges of the first sorting-key column over this many of its replicas (Replicated* local tables whose replicas are caught up; else one replica reads it all)."),
    ("distributed_product_mode", "DistributedProductMode", "deny", "A subquery or join over a Distributed table inside a query over one: deny, global and allow all compute it once over every shard (GLOBAL); local is refused."),
    ("load_balancing", "LoadBalancing", "random", "Which replica of a shard a Distributed query tries first: random, in_order, first_or_random, round_robin, nearest_hostname."),
    ("enable_http_compression", "Bool", "0", "Compress HTTP responses with the first encoding of Accept-Encoding we write (zstd, lz4, gzip, deflate)."),
    ("keeper_map_strict_mode", "Bool", "0", "KeeperMap: an INSERT of a key that exists fails (else it overwrites), and an UPDATE or DELETE that raced another change fails (else it runs again on the new rows)."),
    ("final", "Bool", "0", "Read every table of the query as with FINAL (ReplacingMergeTree rows collapsed)."),
    ("output_format_json_quote_64bit_integers", "Bool", "0", "JSON formats write (U)Int64 values as strings."),
    ("output_format_json_escape_forward_slashes", "Bool", "1", "JSON formats escape / in strings as \\/."),
    ("send_progress_in_http_headers", "Bool", "0", "HTTP: an X-ClickHouse-Progress header; sent once, with the final counts, since results are computed before the response starts."),
    ("readonly", "UInt64", "0", "1: reads only; 2: reads and setting changes; 0: everything (READONLY)."),
    ("max_concurrent_queries", "UInt64", "100", "Node-wide, from the config: statements running at once (TOO_MANY_SIMULTANEOUS_QUERIES)."),
    ("max_server_memory_usage", "UInt64", "0", "Node-wide, from the config: bytes all queries may hold (0: the ratio of RAM)."),
    ("max_server_memory_usage_to_ram_ratio", "Double", "0.9", "Node-wide, from the config: share of RAM all queries may hold."),
}

/// Every setting name ClickHouse knows, aliases included, one per line
/// (generated from chDB by `data/gen_clickhouse_settings.py`).
const CLICKHOUSE_SETTINGS: &str = include_str!("../data/clickhouse_settings.txt");

/// ClickHouse settings that change a result and that quorumhouse does not
/// act on, with the values that mean ClickHouse's default behaviour (what
/// we do). Any other value is refused rather than silently ignored.
pub const NOT_HONOURED: &[(&str, &[&str])] = &[
    ("transform_null_in", &["0"]),
    ("extremes", &["0"]),
    ("limit", &["0"]),
    ("offset", &["0"]),
    ("cast_keep_nullable", &["0"]),
    ("join_default_strictness", &["ALL", ""]),
    ("any_join_distinct_right_table_keys", &["0"]),
    ("prefer_column_name_to_alias", &["0"]),
    ("totals_mode", &["after_having_exclusive"]),
    ("empty_result_for_aggregation_by_empty_set", &["0"]),
    ("data_type_default_nullable", &["0"]),
    ("do_not_merge_across_partitions_select_final", &["0"]),
    ("count_distinct_implementation", &["uniqExact"]),
    ("additional_table_filters", &["", "{}"]),
    ("additional_result_filter", &[""]),
    ("session_timezone", &["", "UTC"]),
    ("date_time_output_format", &["simple"]),
    ("output_format_decimal_trailing_zeros", &["0"]),
    ("output_format_json_quote_decimals", &["0"]),
    ("output_format_json_quote_denormals", &["0"]),
    ("output_format_json_quote_64bit_floats", &["0"]),
    ("output_format_csv_crlf_end_of_line", &["0"]),
    ("output_format_tsv_crlf_end_of_line", &["0"]),
    ("format_csv_delimiter", &[","]),
    ("format_csv_null_representation", &["\\N"]),
    ("format_tsv_null_representation", &["\\N"]),
];

/// Why a setting is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// Neither ours nor ClickHouse's (UNKNOWN_SETTING).
    #[error("Setting {0} is neither a builtin setting nor started with the prefix 'custom_' registered for user-defined settings")]
    Unknown(String),
    /// A [`NOT_HONOURED`] setting at a value we would not act on.
    #[error("Setting {name} = {value} is not supported by quorumhouse: it would change the result, and only its default is implemented")]
    NotHonoured { name: String, value: String },
}

impl SettingError {
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            SettingError::Unknown(_) => crate::ErrorCode::UNKNOWN_SETTING,
            SettingError::NotHonoured { .. } => crate::ErrorCode::NOT_IMPLEMENTED,
        }
    }
}

fn clickhouse_knows(name: &str) -> bool {
    static NAMES: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| {
            CLICKHOUSE_SETTINGS
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .collect()
        })
        .contains(name)
}

/// Whether `name = value` may be set: ours, or ClickHouse's and not
/// changing a result we would compute differently, or `custom_*`.
pub fn check_setting(name: &str, value: &str) -> Result<(), SettingError> {
    if setting_def(name).is_some() || name.starts_with("custom_") {
        return Ok(());
    }
    if !clickhouse_knows(name) {
        return Err(SettingError::Unknown(name.to_string()));
    }
    // Every spelling of UTC is UTC.
    if name == "session_timezone" && crate::types::is_utc_zone(value) {
        return Ok(());
    }
    match NOT_HONOURED.iter().find(|(n, _)| *n == name) {
        Some((_, defaults)) if !defaults.iter().any(|d| same_value(d, value)) => {
            Err(SettingError::NotHonoured {
                name: name.to_string(),
                value: value.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// Whether two textual values of a setting are the same value (`1` and
/// `true` are).
pub fn same_value(a: &str, b: &str) -> bool {
    match (parse_bool_or_u64(a), parse_bool_or_u64(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The definition of a setting we act on.
pub fn setting_def(name: &str) -> Option<&'static SettingDef> {
    SETTING_DEFS.iter().find(|d| d.name == name)
}

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

    /// A numeric setting from [`SETTING_DEFS`], with its default there.
    pub fn uint(&self, name: &str) -> Result<u64, String> {
        let default = setting_def(name)
            .and_then(|d| parse_bool_or_u64(d.default))
            .unwrap_or(0);
        self.get_u64(name, default)
    }

    /// The value `system.settings` shows: ours, else the default.
    pub fn value_or_default(&self, name: &str) -> String {
        match self.get(name) {
            Some(v) => v.to_string(),
            None => setting_def(name)
                .map(|d| d.default.to_string())
                .unwrap_or_default(),
        }
    }

    pub fn get_bool(&self, name: &str, default: bool) -> Result<bool, String> {
        self.get_u64(name, default as u64).map(|v| v != 0)
    }

    /// Every setting here may be set ([`check_setting`]).
    pub fn check(&self) -> Result<(), SettingError> {
        self.iter().try_for_each(|(k, v)| check_setting(k, v))
    }

    /// `max_insert_block_size`: rows per part written by one INSERT.
    pub fn max_insert_block_size(&self) -> Result<u64, String> {
        self.uint("max_insert_block_size")
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
    fn defaults_come_from_the_table() {
        let mut s = Settings::new();
        assert_eq!(s.uint("max_ast_depth"), Ok(1000));
        assert_eq!(s.uint("max_insert_block_size"), Ok(1_048_449));
        assert_eq!(s.value_or_default("timeout_overflow_mode"), "throw");
        s.set("max_ast_depth", "10");
        assert_eq!(s.uint("max_ast_depth"), Ok(10));
        let mut names: Vec<&str> = SETTING_DEFS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETTING_DEFS.len(), "each setting once");
        for d in SETTING_DEFS {
            if matches!(
                d.ty,
                "UInt64" | "Bool" | "Seconds" | "Milliseconds" | "Int64"
            ) {
                assert!(
                    parse_bool_or_u64(d.default).is_some(),
                    "{} default {:?}",
                    d.name,
                    d.default
                );
            }
        }
    }

    #[test]
    fn unknown_settings_are_refused_and_clickhouses_kept() {
        assert_eq!(check_setting("insert_quorum", "2"), Ok(()));
        assert_eq!(check_setting("max_block_size", "1000"), Ok(()));
        assert_eq!(check_setting("custom_anything", "x"), Ok(()));
        // An alias ClickHouse lists.
        assert_eq!(check_setting("insert_distributed_sync", "1"), Ok(()));
        assert!(matches!(
            check_setting("insert_qourum", "2"),
            Err(SettingError::Unknown(n)) if n == "insert_qourum"
        ));
        assert_eq!(check_setting("transform_null_in", "0"), Ok(()));
        assert_eq!(check_setting("transform_null_in", "false"), Ok(()));
        assert!(matches!(
            check_setting("transform_null_in", "1"),
            Err(SettingError::NotHonoured { .. })
        ));
        assert_eq!(check_setting("session_timezone", "UTC"), Ok(()));
        assert_eq!(check_setting("session_timezone", "Etc/UTC"), Ok(()));
        assert!(check_setting("session_timezone", "Europe/Berlin").is_err());
        for (name, defaults) in NOT_HONOURED {
            assert!(clickhouse_knows(name), "{name} is ClickHouse's");
            assert!(setting_def(name).is_none(), "{name} is honoured");
            for d in *defaults {
                assert_eq!(check_setting(name, d), Ok(()));
            }
        }
        for d in SETTING_DEFS {
            assert_eq!(check_setting(d.name, d.default), Ok(()));
        }
    }

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
