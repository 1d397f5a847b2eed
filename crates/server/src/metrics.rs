//! Counters of a node, exposed in Prometheus' text format on `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use qh_query::Engine;

#[derive(Debug, Default)]
pub struct Metrics {
    pub queries: AtomicU64,
    pub failed_queries: AtomicU64,
    pub inserted_rows: AtomicU64,
    pub read_rows: AtomicU64,
    /// Connections refused with AUTHENTICATION_FAILED.
    pub failed_logins: AtomicU64,
    /// Interserver calls refused for a missing or wrong cluster secret.
    pub interserver_refused: AtomicU64,
}

impl Metrics {
    /// Records a finished statement.
    pub fn record(&self, ok: bool, read_rows: u64, written_rows: u64) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed_queries.fetch_add(1, Ordering::Relaxed);
        }
        self.read_rows.fetch_add(read_rows, Ordering::Relaxed);
        self.inserted_rows
            .fetch_add(written_rows, Ordering::Relaxed);
    }

    /// The exposition text: counters plus gauges read from the catalog.
    pub fn render(&self, engine: &Engine) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            "qh_queries_total",
            "Statements executed.",
            self.queries.load(Ordering::Relaxed),
        );
        counter(
            "qh_failed_queries_total",
            "Statements that ended with an exception.",
            self.failed_queries.load(Ordering::Relaxed),
        );
        counter(
            "qh_inserted_rows_total",
            "Rows written by INSERT.",
            self.inserted_rows.load(Ordering::Relaxed),
        );
        counter(
            "qh_read_rows_total",
            "Rows read from parts.",
            self.read_rows.load(Ordering::Relaxed),
        );
        counter(
            "qh_failed_logins_total",
            "Requests refused with AUTHENTICATION_FAILED (unknown user, wrong password or host).",
            self.failed_logins.load(Ordering::Relaxed),
        );
        counter(
            "qh_interserver_refused_total",
            "Interserver calls (Raft, coordinator, part transfer, shard stages) refused for a missing or wrong cluster secret.",
            self.interserver_refused.load(Ordering::Relaxed),
        );
        let traffic = engine.distributed_traffic();
        counter(
            "qh_distributed_received_bytes_total",
            "Arrow IPC bytes received from remote shards by Distributed queries this node initiated.",
            traffic.received.load(Ordering::Relaxed),
        );
        counter(
            "qh_distributed_sent_bytes_total",
            "Arrow IPC bytes this node sent as a shard of other nodes' Distributed queries.",
            traffic.sent.load(Ordering::Relaxed),
        );
        let cat = engine.catalog();
        let (mut tables, mut parts, mut bytes, mut rows) = (0u64, 0u64, 0u64, 0u64);
        for db in cat.databases() {
            for t in cat.tables(&db).unwrap_or_default() {
                tables += 1;
                for p in t.active_parts() {
                    parts += 1;
                    bytes += p.bytes_on_disk;
                    rows += p.rows;
                }
            }
        }
        for (name, help, v) in [
            ("qh_tables", "Tables in the catalog.", tables),
            ("qh_active_parts", "Active data parts.", parts),
            ("qh_parts_bytes", "Bytes on disk of active parts.", bytes),
            ("qh_parts_rows", "Rows in active parts.", rows),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        if let Some(c) = engine.coordinator() {
            let st = c.status();
            let active = st.leases.iter().filter(|l| l.is_active).count() as u64;
            for (name, help, v) in [
                (
                    "qh_coordinator_is_leader",
                    "1 when this node leads the coordinator group.",
                    u64::from(st.role == "leader"),
                ),
                ("qh_coordinator_term", "Current Raft term.", st.term),
                (
                    "qh_coordinator_last_log_index",
                    "Last Raft log index on this node.",
                    st.last_log_index,
                ),
                (
                    "qh_coordinator_applied_index",
                    "Raft log index applied to the state machine.",
                    st.applied_index,
                ),
                (
                    "qh_coordinator_snapshot_index",
                    "Log index of the last snapshot.",
                    st.snapshot_index,
                ),
                (
                    "qh_coordinator_voters",
                    "Voting members of the group.",
                    st.voters.len() as u64,
                ),
                (
                    "qh_coordinator_active_leases",
                    "Nodes whose liveness lease is valid.",
                    active,
                ),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
            }
        }
        out
    }
}
