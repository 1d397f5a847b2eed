//! The history of a run: every client operation as an invocation and its
//! completion (`ok`, `fail` — definitely did not happen — or `info` — may
//! have happened), and every fault the nemesis injected, with times since
//! the run started. Written as JSON lines, one op per line, in the order the
//! harness saw them.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One row of an upsert into the ReplacingMergeTree table.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvRow {
    pub key: u64,
    /// Unique over the run, increasing in the order the upserts were made.
    pub version: u64,
    /// Written with `is_deleted = 1`: the key vanishes under FINAL.
    pub deleted: bool,
}

/// Who performed an op: a client worker, or the nemesis.
pub const NEMESIS: &str = "nemesis";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Op {
    pub index: u64,
    /// Milliseconds since the run started.
    pub time_ms: f64,
    /// A client worker's number, or [`NEMESIS`].
    pub process: String,
    #[serde(rename = "type")]
    pub kind: OpType,
    /// `insert` / `read` / `upsert` for clients (`read` / `write` / `cas` in
    /// the `register` workload); the fault's name (`kill`, `pause`,
    /// `partition`, ...) for the nemesis, whose `invoke` starts the fault
    /// and whose `ok` ends (heals) it.
    pub f: String,
    /// The node the op was sent to (the fault's target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    /// The ids an insert writes or a read looks for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<u64>,
    /// The insert's `insert_deduplication_token`: every retry of one batch
    /// carries the same token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The rows an upsert writes (the `replacing` workload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<KvRow>,
    /// What a read saw (rows found). In the `register` workload: the value
    /// a write writes, or on a read's `ok` the value it read (`None`: the
    /// key was absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
    /// The register an op of the `register` workload acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u64>,
    /// A compare-and-set's `[expected, new]` value: `ok` means it applied
    /// (the register held `expected` and now holds `new`), `fail` that it
    /// definitely did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cas: Option<[u64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// An op with only the fields every op has; the rest default.
    pub fn new(process: impl Into<String>, kind: OpType, f: impl Into<String>) -> Op {
        Op {
            index: 0,
            time_ms: 0.0,
            process: process.into(),
            kind,
            f: f.into(),
            node: None,
            ids: Vec::new(),
            token: None,
            rows: Vec::new(),
            value: None,
            key: None,
            cas: None,
            error: None,
        }
    }

    pub fn node(mut self, node: u64) -> Op {
        self.node = Some(node);
        self
    }

    pub fn ids(mut self, ids: Vec<u64>) -> Op {
        self.ids = ids;
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Op {
        self.token = Some(token.into());
        self
    }

    pub fn rows(mut self, rows: Vec<KvRow>) -> Op {
        self.rows = rows;
        self
    }

    pub fn value(mut self, v: u64) -> Op {
        self.value = Some(v);
        self
    }

    pub fn key(mut self, key: u64) -> Op {
        self.key = Some(key);
        self
    }

    /// A compare-and-set's `[expected, new]` value.
    pub fn cas(mut self, cas: [u64; 2]) -> Op {
        self.cas = Some(cas);
        self
    }

    pub fn error(mut self, e: impl Into<String>) -> Op {
        self.error = Some(e.into());
        self
    }

    /// The same op completed as `kind` (keeps what was invoked).
    pub fn complete(&self, kind: OpType) -> Op {
        let mut op = self.clone();
        op.kind = kind;
        op
    }
}

/// Records ops from every task of a run, stamping index and time.
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    pub fn new(start: Instant) -> Recorder {
        Recorder {
            start,
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }

    pub fn record(&self, mut op: Op) -> Op {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        op.index = ops.len() as u64;
        op.time_ms = self.now_ms();
        ops.push(op.clone());
        op
    }

    pub fn history(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

pub fn write_jsonl(path: &Path, ops: &[Op]) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        serde_json::to_writer(&mut f, op)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    Ok(())
}

pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Op>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}
