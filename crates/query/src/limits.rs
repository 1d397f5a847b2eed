//! What one query may consume, from ClickHouse's settings: run time
//! (`max_execution_time` → 159), memory (`max_memory_usage` and the server's
//! share of RAM → 241), rows and bytes read (`max_rows_to_read`,
//! `max_bytes_to_read` → 158 / 307, checked where parts are read), result size
//! (`max_result_rows`, `max_result_bytes` → 396), and `readonly` (→ 164).
//!
//! Memory is DataFusion's own accounting: every operator that holds state
//! (hash aggregation, sort, join build sides) reserves it from the query's
//! [`QueryMemoryPool`], which charges the query's limit and the node's
//! [`ServerMemory`] at once. Nothing spills: like ClickHouse without
//! `max_bytes_before_external_*`, a query over its limit fails.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{MemoryLimit, MemoryPool, MemoryReservation};
use qh_types::{ErrorCode, Settings};

use crate::error::{QueryError, Result};

/// `throw` (an error) or `break` (stop and return what was computed so far),
/// ClickHouse's `*_overflow_mode` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Throw,
    Break,
}

fn overflow(settings: &Settings, name: &str) -> Result<Overflow> {
    match settings.get(name).map(str::to_ascii_lowercase).as_deref() {
        None | Some("throw") => Ok(Overflow::Throw),
        Some("break") => Ok(Overflow::Break),
        Some(v) => Err(QueryError::other(
            ErrorCode::INVALID_SETTING_VALUE,
            format!("Unexpected value of OverflowMode: '{v}' for setting {name}"),
        )),
    }
}

fn number(settings: &Settings, name: &str) -> Result<u64> {
    settings.uint(name).map_err(QueryError::BadArguments)
}

/// The limits of one SELECT's execution (0 = none, as in ClickHouse).
#[derive(Debug, Clone)]
pub struct QueryLimits {
    pub execution_time: Option<Duration>,
    pub timeout_mode: Overflow,
    pub max_result_rows: u64,
    pub max_result_bytes: u64,
    pub result_mode: Overflow,
    pub max_memory_usage: u64,
    pub max_rows_to_read: u64,
    pub max_bytes_to_read: u64,
}

impl QueryLimits {
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let execution_time = match settings.get("max_execution_time") {
            None => None,
            Some(v) => {
                let secs: f64 = v.trim().parse().map_err(|_| {
                    QueryError::BadArguments(format!(
                        "cannot parse value '{v}' of setting max_execution_time as seconds"
                    ))
                })?;
                (secs > 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
            }
        };
        let read_mode = overflow(settings, "read_overflow_mode")?;
        if read_mode == Overflow::Break {
            return Err(QueryError::NotImplemented(
                "read_overflow_mode = 'break' is not supported; use 'throw' or LIMIT".into(),
            ));
        }
        Ok(QueryLimits {
            execution_time,
            timeout_mode: overflow(settings, "timeout_overflow_mode")?,
            max_result_rows: number(settings, "max_result_rows")?,
            max_result_bytes: number(settings, "max_result_bytes")?,
            result_mode: overflow(settings, "result_overflow_mode")?,
            max_memory_usage: number(settings, "max_memory_usage")?,
            max_rows_to_read: number(settings, "max_rows_to_read")?,
            max_bytes_to_read: number(settings, "max_bytes_to_read")?,
        })
    }

    pub fn timeout_error(&self, elapsed: Duration) -> QueryError {
        QueryError::other(
            ErrorCode::TIMEOUT_EXCEEDED,
            format!(
                "Timeout exceeded: elapsed {:.6} seconds, maximum: {}",
                elapsed.as_secs_f64(),
                self.execution_time.map(|d| d.as_secs_f64()).unwrap_or(0.0)
            ),
        )
    }

    /// Checks the result gathered so far; `Ok(true)` means stop here
    /// (`result_overflow_mode = 'break'`: the block that crossed the limit
    /// is kept, as ClickHouse keeps it).
    pub fn result_full(&self, rows: u64, bytes: u64) -> Result<bool> {
        let over_rows = self.max_result_rows > 0 && rows > self.max_result_rows;
        let over_bytes = self.max_result_bytes > 0 && bytes > self.max_result_bytes;
        if !over_rows && !over_bytes {
            return Ok(false);
        }
        if self.result_mode == Overflow::Break {
            return Ok(true);
        }
        let message = if over_rows {
            format!(
                "Limit for result exceeded, max rows: {}, current rows: {rows}",
                self.max_result_rows
            )
        } else {
            format!(
                "Limit for result exceeded, max bytes: {}, current bytes: {}",
                readable_size(self.max_result_bytes as usize),
                readable_size(bytes as usize)
            )
        };
        Err(QueryError::other(
            ErrorCode::TOO_MANY_ROWS_OR_BYTES,
            message,
        ))
    }
}

/// Result limits are the client's: an INSERT ... SELECT or CREATE ... AS
/// SELECT returns nothing, so they do not apply to its SELECT.
pub fn without_result_limits(settings: &Settings) -> Settings {
    let mut out = settings.clone();
    for name in ["max_result_rows", "max_result_bytes"] {
        if out.get(name).is_some() {
            out.set(name, "0");
        }
    }
    out
}

/// INSERT data beyond `max_insert_input_bytes` (ours; 0 = none): the reader
/// fails, the insert's parts are dropped, nothing is written. Bounds an
/// endless stream or an oversized row before they fill memory or disk.
pub struct LimitedReader<R> {
    inner: R,
    read: u64,
    limit: u64,
    exceeded: Arc<std::sync::atomic::AtomicBool>,
}

impl<R: std::io::Read> LimitedReader<R> {
    /// The reader and a flag that tells, after a failed insert, that the
    /// limit was the cause.
    pub fn new(inner: R, limit: u64) -> (Self, Arc<std::sync::atomic::AtomicBool>) {
        let exceeded = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = LimitedReader {
            inner,
            read: 0,
            limit,
            exceeded: Arc::clone(&exceeded),
        };
        (r, exceeded)
    }
}

impl<R: std::io::Read> std::io::Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.limit > 0 && self.read > self.limit {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other(
                "INSERT data over max_insert_input_bytes",
            ));
        }
        Ok(n)
    }
}

pub fn insert_too_large(limit: u64) -> QueryError {
    QueryError::other(
        ErrorCode::QUERY_IS_TOO_LARGE,
        format!("INSERT data is larger than max_insert_input_bytes = {limit}; nothing was written"),
    )
}

/// Refuses statements that write or change settings under `readonly`
/// (1: reads only; 2: reads and settings), ClickHouse's READONLY (164).
pub fn check_readonly(settings: &Settings, writes: bool, changes_settings: bool) -> Result<()> {
    let readonly = number(settings, "readonly")?;
    if readonly == 0 {
        return Ok(());
    }
    if writes {
        return Err(QueryError::other(
            ErrorCode::READONLY,
            "Cannot execute query in readonly mode",
        ));
    }
    if changes_settings && readonly == 1 {
        return Err(QueryError::other(
            ErrorCode::READONLY,
            "Cannot modify settings in readonly mode",
        ));
    }
    Ok(())
}

/// The node's memory for queries: `max_server_memory_usage` bytes, or (0,
/// the default) `max_server_memory_usage_to_ram_ratio` (0.9) of the
/// machine's memory, as ClickHouse's server settings.
#[derive(Debug)]
pub struct ServerMemory {
    limit: usize,
    used: AtomicUsize,
}

impl ServerMemory {
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let explicit = number(settings, "max_server_memory_usage")? as usize;
        let v = settings.value_or_default("max_server_memory_usage_to_ram_ratio");
        let ratio: f64 = v.trim().parse().map_err(|_| {
            QueryError::BadArguments(format!(
                "cannot parse value '{v}' of setting max_server_memory_usage_to_ram_ratio"
            ))
        })?;
        let limit = if explicit > 0 {
            explicit
        } else {
            match total_ram() {
                Some(ram) if ratio > 0.0 => (ram as f64 * ratio) as usize,
                _ => usize::MAX,
            }
        };
        Ok(ServerMemory {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

fn total_ram() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One query's memory: its own limit (`max_memory_usage`, 0 = none) and the
/// server's, both charged by every reservation.
#[derive(Debug)]
pub struct QueryMemoryPool {
    limit: usize,
    used: AtomicUsize,
    server: Arc<ServerMemory>,
}

impl QueryMemoryPool {
    pub fn new(max_memory_usage: u64, server: Arc<ServerMemory>) -> Self {
        QueryMemoryPool {
            limit: if max_memory_usage == 0 {
                usize::MAX
            } else {
                max_memory_usage as usize
            },
            used: AtomicUsize::new(0),
            server,
        }
    }
}

fn exhausted(scope: &str, would_use: usize, additional: usize, limit: usize) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "Memory limit ({scope}) exceeded: would use {} (attempt to allocate chunk of {} bytes), maximum: {}",
        readable_size(would_use),
        additional,
        readable_size(limit)
    ))
}

impl MemoryPool for QueryMemoryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn grow(&self, _: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.server.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, _: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::Relaxed);
        self.server.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, _: &MemoryReservation, additional: usize) -> datafusion::error::Result<()> {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                let new = used.saturating_add(additional);
                (new <= self.limit).then_some(new)
            })
            .map_err(|used| exhausted("for query", used + additional, additional, self.limit))?;
        let server = self
            .server
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                let new = used.saturating_add(additional);
                (new <= self.server.limit).then_some(new)
            });
        if let Err(used) = server {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(exhausted(
                "total",
                used + additional,
                additional,
                self.server.limit,
            ));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit.min(self.server.limit))
    }
}

impl fmt::Display for QueryMemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "query memory (used: {}, limit: {})",
            readable_size(self.reserved()),
            readable_size(self.limit)
        )
    }
}

/// ClickHouse's `formatReadableSizeWithBinarySuffix`: `9.31 GiB`.
pub fn readable_size(bytes: usize) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::MemoryConsumer;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let mut s = Settings::new();
        for (k, v) in pairs {
            s.set(k, *v);
        }
        s
    }

    #[test]
    fn query_and_server_limits_both_apply() {
        let server = Arc::new(ServerMemory {
            limit: 1000,
            used: AtomicUsize::new(0),
        });
        let a: Arc<dyn MemoryPool> = Arc::new(QueryMemoryPool::new(600, Arc::clone(&server)));
        let b: Arc<dyn MemoryPool> = Arc::new(QueryMemoryPool::new(0, Arc::clone(&server)));
        let ra = MemoryConsumer::new("a").register(&a);
        let rb = MemoryConsumer::new("b").register(&b);
        ra.try_grow(500).expect("within both");
        let e = ra.try_grow(200).expect_err("over the query's 600");
        assert!(e.to_string().contains("(for query)"), "{e}");
        rb.try_grow(450).expect("server has 500 left");
        let e = rb.try_grow(100).expect_err("over the server's 1000");
        assert!(e.to_string().contains("(total)"), "{e}");
        assert_eq!(server.used(), 950);
        drop(ra);
        assert_eq!(server.used(), 450, "a query's memory returns to the server");
        rb.try_grow(100).expect("room again");
    }

    #[test]
    fn settings_and_modes() {
        let l = QueryLimits::from_settings(&settings(&[
            ("max_execution_time", "1.5"),
            ("max_result_rows", "10"),
            ("result_overflow_mode", "break"),
        ]))
        .expect("valid");
        assert_eq!(l.execution_time, Some(Duration::from_millis(1500)));
        assert!(!l.result_full(10, 0).expect("at the limit"));
        assert!(l.result_full(11, 0).expect("break"));
        let l = QueryLimits::from_settings(&settings(&[("max_result_rows", "10")])).expect("ok");
        let e = l.result_full(11, 0).expect_err("throw");
        assert_eq!(e.code(), ErrorCode::TOO_MANY_ROWS_OR_BYTES);
        let e = QueryLimits::from_settings(&settings(&[("timeout_overflow_mode", "x")]))
            .expect_err("bad mode");
        assert_eq!(e.code(), ErrorCode::INVALID_SETTING_VALUE);
        assert_eq!(
            QueryLimits::from_settings(&Settings::new())
                .expect("defaults")
                .execution_time,
            None
        );
    }

    #[test]
    fn readonly_levels() {
        let ro1 = settings(&[("readonly", "1")]);
        let ro2 = settings(&[("readonly", "2")]);
        assert!(check_readonly(&ro1, false, false).is_ok());
        assert_eq!(
            check_readonly(&ro1, true, false).expect_err("write").code(),
            ErrorCode::READONLY
        );
        assert!(check_readonly(&ro1, false, true).is_err());
        assert!(check_readonly(&ro2, false, true).is_ok());
        assert!(check_readonly(&ro2, true, false).is_err());
        assert!(check_readonly(&Settings::new(), true, true).is_ok());
    }

    #[test]
    fn sizes_read_like_clickhouse() {
        assert_eq!(readable_size(50_000_000), "47.68 MiB");
        assert_eq!(readable_size(512), "512.00 B");
    }
}
