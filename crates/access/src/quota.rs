//! Quotas: limits on what a user may use over an interval (queries, errors,
//! rows and bytes read or returned, execution time), ClickHouse's
//! `CREATE QUOTA`. Definitions live in the coordinator (`quota_store.rs`);
//! what has been used is counted by each node in memory ([`QuotaUsage`]),
//! as each ClickHouse server counts its own.
//!
//! **Invariants:** an interval's counters start from zero when it ends; an
//! interval ends on a multiple of its length since the epoch (plus a fixed
//! offset per key when randomized), so every node's intervals line up.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::AccessError;
use crate::profile::Applies;

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Queries,
    QuerySelects,
    QueryInserts,
    Errors,
    ResultRows,
    ResultBytes,
    ReadRows,
    ReadBytes,
    WrittenBytes,
    /// Seconds.
    ExecutionTime,
}

impl Resource {
    pub const ALL: [Resource; 10] = [
        Resource::Queries,
        Resource::QuerySelects,
        Resource::QueryInserts,
        Resource::Errors,
        Resource::ResultRows,
        Resource::ResultBytes,
        Resource::ReadRows,
        Resource::ReadBytes,
        Resource::WrittenBytes,
        Resource::ExecutionTime,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Queries => "queries",
            Resource::QuerySelects => "query_selects",
            Resource::QueryInserts => "query_inserts",
            Resource::Errors => "errors",
            Resource::ResultRows => "result_rows",
            Resource::ResultBytes => "result_bytes",
            Resource::ReadRows => "read_rows",
            Resource::ReadBytes => "read_bytes",
            Resource::WrittenBytes => "written_bytes",
            Resource::ExecutionTime => "execution_time",
        }
    }

    /// `read_rows` or ClickHouse's older `READ ROWS` (any case).
    pub fn parse(words: &str) -> Option<Resource> {
        let name = words.to_ascii_lowercase().replace(' ', "_");
        Resource::ALL.into_iter().find(|r| r.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// An amount as ClickHouse prints it (seconds with a fraction for
    /// execution time, whole numbers otherwise).
    pub fn amount(self, v: f64) -> String {
        match self {
            Resource::ExecutionTime => format!("{v}"),
            _ => format!("{}", v as u64),
        }
    }
}

/// Whose usage a quota counts together (`KEYED BY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// Everyone it applies to shares one set of counters.
    #[default]
    NotKeyed,
    UserName,
    IpAddress,
    /// The client's `quota_key` setting.
    ClientKey,
    ClientKeyOrUserName,
    ClientKeyOrIpAddress,
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::NotKeyed => "",
            KeyType::UserName => "user_name",
            KeyType::IpAddress => "ip_address",
            KeyType::ClientKey => "client_key",
            KeyType::ClientKeyOrUserName => "client_key, user_name",
            KeyType::ClientKeyOrIpAddress => "client_key, ip_address",
        }
    }

    /// `user_name`, `ip_address`, `client_key`, `client_key,user_name`,
    /// `client_key,ip_address` (also ClickHouse's older `'user name'`...).
    pub fn parse(words: &[String]) -> Option<KeyType> {
        let norm: Vec<String> = words
            .iter()
            .map(|w| w.to_ascii_lowercase().replace(' ', "_"))
            .collect();
        let parts: Vec<&str> = norm.iter().map(String::as_str).collect();
        Some(match parts.as_slice() {
            ["none"] => KeyType::NotKeyed,
            ["user_name"] => KeyType::UserName,
            ["ip_address"] => KeyType::IpAddress,
            ["client_key"] => KeyType::ClientKey,
            ["client_key", "user_name"] | ["client_key_or_user_name"] => {
                KeyType::ClientKeyOrUserName
            }
            ["client_key", "ip_address"] | ["client_key_or_ip_address"] => {
                KeyType::ClientKeyOrIpAddress
            }
            _ => return None,
        })
    }

    /// The key the counters of `who` are kept under.
    fn key(self, who: &Who) -> String {
        let ip = || who.ip.map(|i| i.to_string()).unwrap_or_default();
        match self {
            KeyType::NotKeyed => String::new(),
            KeyType::UserName => who.user.to_string(),
            KeyType::IpAddress => ip(),
            KeyType::ClientKey => who.client_key.to_string(),
            KeyType::ClientKeyOrUserName if who.client_key.is_empty() => who.user.to_string(),
            KeyType::ClientKeyOrIpAddress if who.client_key.is_empty() => ip(),
            KeyType::ClientKeyOrUserName | KeyType::ClientKeyOrIpAddress => {
                who.client_key.to_string()
            }
        }
    }
}

/// One `FOR [RANDOMIZED] INTERVAL n unit MAX ...` of a quota; no maxima
/// is `TRACKING ONLY`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaInterval {
    pub seconds: u64,
    #[serde(default)]
    pub randomized: bool,
    #[serde(default)]
    pub max: BTreeMap<Resource, f64>,
}

/// Interval units and their length in seconds, ClickHouse's (a month is
/// an average month), longest first.
pub const UNITS: [(&str, u64); 8] = [
    ("year", 31_556_952),
    ("quarter", 7_889_238),
    ("month", 2_629_746),
    ("week", 604_800),
    ("day", 86_400),
    ("hour", 3_600),
    ("minute", 60),
    ("second", 1),
];

impl QuotaInterval {
    fn sql(&self) -> String {
        let (unit, len) = UNITS
            .iter()
            .find(|(_, len)| self.seconds.is_multiple_of(*len))
            .copied()
            .unwrap_or(("second", 1));
        let mut s = format!(
            " FOR {}INTERVAL {} {unit}",
            if self.randomized { "RANDOMIZED " } else { "" },
            self.seconds / len
        );
        if self.max.is_empty() {
            s.push_str(" TRACKING ONLY");
        } else {
            let parts: Vec<String> = self
                .max
                .iter()
                .map(|(r, v)| format!("{} = {}", r.name(), r.amount(*v)))
                .collect();
            s.push_str(" MAX ");
            s.push_str(&parts.join(", "));
        }
        s
    }
}

/// A quota as the coordinator stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaDef {
    pub name: String,
    #[serde(default)]
    pub keyed_by: KeyType,
    #[serde(default)]
    pub intervals: Vec<QuotaInterval>,
    #[serde(default)]
    pub to: Applies,
}

impl QuotaDef {
    pub fn create_sql(&self) -> String {
        let mut s = format!("CREATE QUOTA {}", self.name);
        if self.keyed_by != KeyType::NotKeyed {
            s.push_str(" KEYED BY ");
            s.push_str(self.keyed_by.name());
        }
        for i in &self.intervals {
            s.push_str(&i.sql());
        }
        s.push_str(&self.to.sql());
        s
    }
}

/// Who runs a query, as quotas key it.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub user: &'a str,
    pub ip: Option<IpAddr>,
    /// The `quota_key` setting.
    pub client_key: &'a str,
}

/// What a statement is, for `query_selects` and `query_inserts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Select,
    Insert,
    Other,
}

/// One interval's counters under one key.
#[derive(Debug, Clone)]
struct Counters {
    end: u64,
    used: [f64; Resource::ALL.len()],
}

/// A row of `system.quota_usage`.
#[derive(Debug, Clone)]
pub struct UsageRow {
    pub quota: String,
    pub key: String,
    pub seconds: u64,
    pub end: u64,
    pub used: BTreeMap<Resource, f64>,
    pub max: BTreeMap<Resource, f64>,
}

/// What this node has counted, by (quota, key, interval length).
#[derive(Debug, Default)]
pub struct QuotaUsage {
    counters: Mutex<HashMap<(String, String, u64), Counters>>,
}

/// The end of the interval of `seconds` holding `now` (both Unix seconds).
fn interval_end(now: u64, seconds: u64, randomized: bool, quota: &str, key: &str) -> u64 {
    let seconds = seconds.max(1);
    let offset = if randomized {
        // Fixed per key, so a restart keeps the same boundaries.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in quota.bytes().chain([0]).chain(key.bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        h % seconds
    } else {
        0
    };
    let since = now.saturating_sub(offset);
    (since / seconds + 1) * seconds + offset
}

impl QuotaUsage {
    /// Adds `amounts` to the counters of `who` under each of `quotas`, then
    /// (when `check`) refuses if any limit is now passed.
    pub fn charge(
        &self,
        quotas: &[QuotaDef],
        who: &Who,
        amounts: &[(Resource, f64)],
        check: bool,
        now: u64,
    ) -> Result<(), AccessError> {
        let mut map = self.counters.lock();
        let mut exceeded = None;
        for q in quotas {
            let key = q.keyed_by.key(who);
            for i in &q.intervals {
                let end = interval_end(now, i.seconds, i.randomized, &q.name, &key);
                let c = map
                    .entry((q.name.clone(), key.clone(), i.seconds))
                    .or_insert(Counters {
                        end,
                        used: [0.0; Resource::ALL.len()],
                    });
                if now >= c.end {
                    *c = Counters {
                        end,
                        used: [0.0; Resource::ALL.len()],
                    };
                }
                for (r, v) in amounts {
                    c.used[r.index()] += v;
                }
                if !check || exceeded.is_some() {
                    continue;
                }
                if let Some((r, max)) = i.max.iter().find(|(r, max)| c.used[r.index()] > **max) {
                    exceeded = Some(format!(
                        "Quota for user `{}` for {}s has been exceeded: {} = {}/{}. Interval will end at {}. Name of quota template: `{}`",
                        who.user,
                        i.seconds,
                        r.name(),
                        r.amount(c.used[r.index()]),
                        r.amount(*max),
                        datetime(c.end),
                        q.name
                    ));
                }
            }
        }
        match exceeded {
            Some(m) => Err(AccessError::QuotaExceeded(m)),
            None => Ok(()),
        }
    }

    /// The counters of `who` under `quotas` now (zero for an interval
    /// that has ended or not started).
    pub fn usage(&self, quotas: &[QuotaDef], who: &Who, now: u64) -> Vec<UsageRow> {
        let map = self.counters.lock();
        let mut rows = Vec::new();
        for q in quotas {
            let key = q.keyed_by.key(who);
            for i in &q.intervals {
                let end = interval_end(now, i.seconds, i.randomized, &q.name, &key);
                let used = map
                    .get(&(q.name.clone(), key.clone(), i.seconds))
                    .filter(|c| now < c.end)
                    .map(|c| c.used)
                    .unwrap_or([0.0; Resource::ALL.len()]);
                rows.push(UsageRow {
                    quota: q.name.clone(),
                    key: key.clone(),
                    seconds: i.seconds,
                    end,
                    used: Resource::ALL
                        .iter()
                        .map(|r| (*r, used[r.index()]))
                        .collect(),
                    max: i.max.clone(),
                });
            }
        }
        rows
    }
}

/// `YYYY-MM-DD hh:mm:ss` (UTC) of Unix seconds.
fn datetime(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(keyed_by: KeyType, max_queries: f64) -> QuotaDef {
        QuotaDef {
            name: "q".into(),
            keyed_by,
            intervals: vec![QuotaInterval {
                seconds: 60,
                randomized: false,
                max: [(Resource::Queries, max_queries)].into(),
            }],
            to: Applies::default(),
        }
    }

    #[test]
    fn limits_hold_per_key_and_reset_when_the_interval_ends() {
        let usage = QuotaUsage::default();
        let q = [quota(KeyType::UserName, 2.0)];
        let who = |user| Who {
            user,
            ip: None,
            client_key: "",
        };
        let one = [(Resource::Queries, 1.0)];
        let t = 1_700_000_010;
        assert!(usage.charge(&q, &who("a"), &one, true, t).is_ok());
        assert!(usage.charge(&q, &who("a"), &one, true, t).is_ok());
        let e = usage.charge(&q, &who("a"), &one, true, t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Quota for user `a` for 60s has been exceeded: queries = 3/2. Interval will end at 2023-11-14 22:14:00. Name of quota template: `q`"
        );
        assert_eq!(e.code(), qh_types::ErrorCode::QUOTA_EXCEEDED);
        // Another user has its own counters; a new interval starts at zero.
        assert!(usage.charge(&q, &who("b"), &one, true, t).is_ok());
        assert!(usage.charge(&q, &who("a"), &one, true, t + 60).is_ok());
        let rows = usage.usage(&q, &who("a"), t + 60);
        assert_eq!(rows[0].used[&Resource::Queries], 1.0);
        // Not keyed: everyone shares one set of counters.
        let shared = [quota(KeyType::NotKeyed, 1.0)];
        assert!(usage.charge(&shared, &who("a"), &one, true, t).is_ok());
        assert!(usage.charge(&shared, &who("b"), &one, true, t).is_err());
    }

    #[test]
    fn intervals_line_up_and_print_as_clickhouse_does() {
        assert_eq!(interval_end(119, 60, false, "q", ""), 120);
        assert_eq!(interval_end(120, 60, false, "q", ""), 180);
        let r = interval_end(1_000, 60, true, "q", "k");
        assert!(r > 1_000 && r <= 1_060);
        assert_eq!(interval_end(r, 60, true, "q", "k"), r + 60);
        assert_eq!(datetime(0), "1970-01-01 00:00:00");
        assert_eq!(datetime(1_709_210_096), "2024-02-29 12:34:56");
        let q = QuotaDef {
            name: "qb".into(),
            keyed_by: KeyType::UserName,
            intervals: vec![
                QuotaInterval {
                    seconds: 1_800,
                    randomized: false,
                    max: [(Resource::ExecutionTime, 0.5), (Resource::Queries, 321.0)].into(),
                },
                QuotaInterval {
                    seconds: 5 * 7_889_238,
                    randomized: true,
                    max: BTreeMap::new(),
                },
            ],
            to: Applies {
                all: false,
                names: vec!["default".into()],
            },
        };
        assert_eq!(
            q.create_sql(),
            "CREATE QUOTA qb KEYED BY user_name FOR INTERVAL 30 minute MAX queries = 321, execution_time = 0.5 FOR RANDOMIZED INTERVAL 5 quarter TRACKING ONLY TO default"
        );
        assert_eq!(Resource::parse("READ ROWS"), Some(Resource::ReadRows));
        assert_eq!(
            KeyType::parse(&["client_key".into(), "user_name".into()]),
            Some(KeyType::ClientKeyOrUserName)
        );
    }
}
