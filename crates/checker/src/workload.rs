//! Client workloads: concurrent workers speaking only the public gRPC
//! client protocol, each recording its ops.
//!
//! * **set**: a worker inserts batches of unique ids with `insert_quorum`
//!   and an `insert_deduplication_token`; on an unknown outcome it retries
//!   the batch with the same token on the next node (bounded attempts).
//! * **sequential**: after each acknowledged insert the worker reads the id
//!   back on another node with `select_sequential_consistency = 1`.
//! * **replacing**: upserts of a few keys (new versions, some of them
//!   deletes with `is_deleted = 1`) into a ReplicatedReplacingMergeTree,
//!   and re-runs of an acknowledged batch — the idempotent load of a
//!   warehouse pipeline; `FINAL` must show the last version of each key.
//! * **sharded**: the set workload through a Distributed table over the
//!   `sharded` cluster (every node its own shard, a replicated local table
//!   each) or, on 4, 6, … nodes, over shards of two replicas
//!   ([`ShardLayout::Pairs`]); a batch's ids fall on several shards, and
//!   one INSERT must be on all of them or on none; reads through it on
//!   every node must agree.
//! * **register**: reads, writes and compare-and-sets of a few keys of a
//!   KeeperMap table (rows in the coordinator), each on a random node;
//!   every key's history must be linearizable ([`crate::linear`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qh_client::{Client, ClientError};
use qh_types::RetryClass;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::history::{KvRow, Op, OpType, Recorder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Set,
    Sequential,
    Replacing,
    Sharded,
    Register,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Set => "set",
            Workload::Sequential => "sequential",
            Workload::Replacing => "replacing",
            Workload::Sharded => "sharded",
            Workload::Register => "register",
        }
    }
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Workload, String> {
        match s {
            "set" => Ok(Workload::Set),
            "sequential" => Ok(Workload::Sequential),
            "replacing" => Ok(Workload::Replacing),
            "sharded" => Ok(Workload::Sharded),
            "register" => Ok(Workload::Register),
            _ => Err(format!(
                "unknown workload {s:?} (set, sequential, replacing, sharded, register)"
            )),
        }
    }
}

/// The table `set` and `sequential` write: one replica on each node.
pub const TABLE: &str = "jepsen";
/// The table `replacing` writes.
pub const KV_TABLE: &str = "jepsen_kv";
/// The Distributed table `sharded` writes and reads.
pub const SHARDED_TABLE: &str = "jepsen_sh";
/// The local table under it: on each node a replicated table of its own
/// (its path names the node), the node's shard of the `sharded` cluster.
pub const SHARD_TABLE: &str = "jepsen_sh_local";
/// Keys the `replacing` workload upserts (few, so versions contend).
const KEYS: u64 = 24;
/// The KeeperMap table `register` works on (the same rows on every node).
pub const REGISTER_TABLE: &str = "jepsen_reg";
/// Registers of the `register` workload: each key's history is checked on
/// its own, so a few keys keep each search small while ops still contend.
const REGISTER_KEYS: u64 = 6;
/// Values written and compared: a small range, so compare-and-sets succeed.
const REGISTER_VALUES: u64 = 5;

/// The cluster of two-replica shards (nodes 1–2, 3–4, …) the `sharded`
/// workload uses on an even number of nodes, four or more.
pub const PAIRS_CLUSTER: &str = "jepsen_pairs";

/// How the `sharded` workload's shards are laid out over the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardLayout {
    /// Every node its own shard: the built-in `sharded` cluster.
    OwnShard,
    /// Shards of two replicas: [`PAIRS_CLUSTER`] (the run configures it).
    Pairs,
}

impl ShardLayout {
    /// Pairs where the nodes pair up (an even number, four or more).
    pub fn for_nodes(nodes: u64) -> ShardLayout {
        match nodes >= 4 && nodes.is_multiple_of(2) {
            true => ShardLayout::Pairs,
            false => ShardLayout::OwnShard,
        }
    }

    /// Replicas of each shard.
    pub fn replicas(self) -> usize {
        match self {
            ShardLayout::OwnShard => 1,
            ShardLayout::Pairs => 2,
        }
    }

    /// The node config defining the cluster, if it is not built in.
    pub fn config(self, nodes: u64) -> Option<String> {
        match self {
            ShardLayout::OwnShard => None,
            ShardLayout::Pairs => {
                let shards: Vec<String> = (1..=nodes)
                    .step_by(2)
                    .map(|n| format!("[{n}, {}]", n + 1))
                    .collect();
                Some(format!(
                    "[clusters.{PAIRS_CLUSTER}]\nshards = [{}]\n",
                    shards.join(", ")
                ))
            }
        }
    }
}

/// The tables every run creates on node `node`.
pub fn create_tables_sql(node: u64, layout: ShardLayout) -> Vec<String> {
    let (shard_path, cluster) = match layout {
        ShardLayout::OwnShard => ("{replica}".to_string(), "sharded"),
        ShardLayout::Pairs => (format!("s{}", (node - 1) / 2 + 1), PAIRS_CLUSTER),
    };
    vec![
        format!(
            "CREATE TABLE {TABLE} (id UInt64, token String) \
             ENGINE = ReplicatedMergeTree('/tables/{TABLE}', '{{replica}}') ORDER BY id"
        ),
        format!(
            "CREATE TABLE {KV_TABLE} (key UInt64, version UInt64, is_deleted UInt8, token String) \
             ENGINE = ReplicatedReplacingMergeTree('/tables/{KV_TABLE}', '{{replica}}', version, is_deleted) \
             ORDER BY key"
        ),
        format!(
            "CREATE TABLE {SHARD_TABLE} (id UInt64, token String) \
             ENGINE = ReplicatedMergeTree('/tables/{SHARD_TABLE}/{shard_path}', '{{replica}}') ORDER BY id"
        ),
        format!(
            "CREATE TABLE {SHARDED_TABLE} AS {SHARD_TABLE} \
             ENGINE = Distributed({cluster}, default, {SHARD_TABLE}, id)"
        ),
        format!(
            "CREATE TABLE {REGISTER_TABLE} (key UInt64, value UInt64) \
             ENGINE = KeeperMap('/{REGISTER_TABLE}') PRIMARY KEY key"
        ),
    ]
}

#[derive(Debug)]
pub struct Config {
    pub workload: Workload,
    /// `insert_quorum` of every insert.
    pub quorum: u32,
    /// gRPC endpoints, node `i + 1` at index `i`.
    pub endpoints: Vec<String>,
    /// Ops per second over all workers.
    pub rate: f64,
    pub workers: usize,
    /// A call that has not answered by then is abandoned: outcome unknown.
    pub op_timeout: Duration,
    /// Attempts per batch (the first plus retries of an unknown outcome).
    pub attempts: u32,
    pub ids_per_batch: u64,
    pub seed: u64,
    /// The table `set` and `sequential` write (with `id` and `token`
    /// columns, as [`TABLE`]).
    pub table: String,
    /// The next upsert version (shared: versions increase over the run).
    pub versions: std::sync::atomic::AtomicU64,
}

/// How an op ended, from the client's error.
fn outcome(e: &ClientError) -> OpType {
    match e.retry_class() {
        RetryClass::Retryable | RetryClass::Final => OpType::Fail,
        RetryClass::UnknownOutcome => OpType::Info,
    }
}

struct Connections {
    endpoints: Vec<String>,
    clients: Vec<Option<Client>>,
}

impl Connections {
    async fn run(
        &mut self,
        node: u64,
        sql: &str,
        timeout: Duration,
    ) -> Result<qh_client::QueryOutput, (OpType, String)> {
        let i = (node - 1) as usize;
        let result = tokio::time::timeout(timeout, async {
            if self.clients[i].is_none() {
                let c = Client::connect_with_timeout(&[&self.endpoints[i]], timeout).await?;
                self.clients[i] = Some(c);
            }
            match self.clients[i].as_mut() {
                Some(c) => c.query(sql).await,
                None => Err(ClientError::Protocol("no connection".into())),
            }
        })
        .await;
        match result {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => {
                if !matches!(e, ClientError::Server { .. }) {
                    self.clients[i] = None;
                }
                Err((outcome(&e), e.to_string()))
            }
            Err(_) => {
                self.clients[i] = None;
                Err((OpType::Info, format!("no answer within {timeout:?}")))
            }
        }
    }
}

/// When the workers stop: set at the start, and movable while they run
/// (a drill ends its workload a fixed time after the fault healed, however
/// long healing took).
#[derive(Debug)]
pub struct Deadline(std::sync::Mutex<Instant>);

impl Deadline {
    pub fn new(at: Instant) -> Deadline {
        Deadline(std::sync::Mutex::new(at))
    }

    pub fn set(&self, at: Instant) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    fn passed(&self) -> bool {
        Instant::now() >= *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One worker until `deadline`.
pub async fn worker(w: usize, cfg: Arc<Config>, rec: Arc<Recorder>, deadline: Arc<Deadline>) {
    let n = cfg.endpoints.len() as u64;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ (w as u64).wrapping_mul(0x9E37_79B9));
    let mut conns = Connections {
        endpoints: cfg.endpoints.clone(),
        clients: (0..n).map(|_| None).collect(),
    };
    let process = w.to_string();
    let home = w as u64 % n + 1;
    let mean_pause = cfg.workers as f64 / cfg.rate.max(0.001);
    let mut seq: u64 = 0;
    while !deadline.passed() {
        // Exponential-ish think time around the mean keeps the total rate.
        let pause = mean_pause * rng.random_range(0.5..1.5);
        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
        if deadline.passed() {
            break;
        }
        if cfg.workload == Workload::Register {
            register_op(&mut rng, &mut conns, &process, n, &cfg, &rec).await;
            continue;
        }
        seq += 1;
        let token = format!("w{w}-{seq}");
        let first = (w as u64 + 1) * 100_000_000 + seq * cfg.ids_per_batch;
        let (f, sql, ids, kv) = match cfg.workload {
            Workload::Set | Workload::Sequential | Workload::Sharded | Workload::Register => {
                let ids: Vec<u64> = (first..first + cfg.ids_per_batch).collect();
                let rows: Vec<String> = ids.iter().map(|id| format!("({id}, '{token}')")).collect();
                let sql = format!(
                    "INSERT INTO {} SETTINGS insert_quorum = {}, insert_deduplication_token = '{token}' VALUES {}",
                    cfg.table,
                    cfg.quorum,
                    rows.join(", ")
                );
                ("insert", sql, ids, Vec::new())
            }
            Workload::Replacing => {
                let n_rows = rng.random_range(1..=3);
                let kv: Vec<KvRow> = (0..n_rows)
                    .map(|_| KvRow {
                        key: rng.random_range(0..KEYS),
                        version: cfg
                            .versions
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        deleted: rng.random_bool(0.15),
                    })
                    .collect();
                let rows: Vec<String> = kv
                    .iter()
                    .map(|r| {
                        format!(
                            "({}, {}, {}, '{token}')",
                            r.key,
                            r.version,
                            u8::from(r.deleted)
                        )
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO {KV_TABLE} SETTINGS insert_quorum = {}, insert_deduplication_token = '{token}' VALUES {}",
                    cfg.quorum,
                    rows.join(", ")
                );
                ("upsert", sql, Vec::new(), kv)
            }
        };
        // The replacing workload re-runs some acknowledged batches, as a
        // pipeline that restarts a step does: they must change nothing.
        let runs = if cfg.workload == Workload::Replacing && rng.random_bool(0.25) {
            2
        } else {
            1
        };
        let mut acked_on = None;
        for run in 0..runs {
            if run > 0 && acked_on.is_none() {
                break;
            }
            let mut node = home + run as u64;
            node = (node - 1) % n + 1;
            for attempt in 0..cfg.attempts {
                let op = Op::new(&process, OpType::Invoke, f)
                    .node(node)
                    .ids(ids.clone())
                    .rows(kv.clone())
                    .token(&token);
                rec.record(op.clone());
                match conns.run(node, &sql, cfg.op_timeout).await {
                    Ok(_) => {
                        rec.record(op.complete(OpType::Ok));
                        acked_on = Some(node);
                        break;
                    }
                    Err((kind, e)) => {
                        rec.record(op.complete(kind).error(e));
                        // A definite failure wrote nothing: the batch is done
                        // (it stays absent). Unknown: retry it elsewhere, same token.
                        if kind == OpType::Fail || attempt + 1 == cfg.attempts {
                            break;
                        }
                        node = node % n + 1;
                    }
                }
            }
        }
        if cfg.workload == Workload::Sequential {
            if let Some(on) = acked_on {
                let reader = on % n + 1;
                let sql = format!(
                    "SELECT count() FROM {} WHERE id = {first} \
                     SETTINGS select_sequential_consistency = 1",
                    cfg.table
                );
                let op = Op::new(&process, OpType::Invoke, "read")
                    .node(reader)
                    .ids(vec![first]);
                rec.record(op.clone());
                match conns.run(reader, &sql, cfg.op_timeout).await {
                    Ok(out) => match first_u64(&out) {
                        Some(v) => rec.record(op.complete(OpType::Ok).value(v)),
                        None => {
                            rec.record(op.complete(OpType::Fail).error("no count in the answer"))
                        }
                    },
                    // A read changes nothing: any failure is a definite one.
                    Err((_, e)) => rec.record(op.complete(OpType::Fail).error(e)),
                };
            }
        }
    }
}

/// One read, write or compare-and-set of a random register on a random node.
async fn register_op(
    rng: &mut ChaCha8Rng,
    conns: &mut Connections,
    process: &str,
    nodes: u64,
    cfg: &Config,
    rec: &Recorder,
) {
    let key = rng.random_range(0..REGISTER_KEYS);
    let node = rng.random_range(1..=nodes);
    let (op, sql) = match rng.random_range(0..4) {
        0 | 1 => (
            Op::new(process, OpType::Invoke, "read"),
            format!("SELECT value FROM {REGISTER_TABLE} WHERE key = {key}"),
        ),
        2 => {
            let v = rng.random_range(0..REGISTER_VALUES);
            (
                Op::new(process, OpType::Invoke, "write").value(v),
                format!("INSERT INTO {REGISTER_TABLE} VALUES ({key}, {v})"),
            )
        }
        _ => {
            let (old, new) = (
                rng.random_range(0..REGISTER_VALUES),
                rng.random_range(0..REGISTER_VALUES),
            );
            (
                Op::new(process, OpType::Invoke, "cas").cas([old, new]),
                // The rows changed tell whether the compare held.
                format!(
                    "ALTER TABLE {REGISTER_TABLE} UPDATE value = {new} WHERE key = {key} AND value = {old}"
                ),
            )
        }
    };
    let op = op.node(node).key(key);
    rec.record(op.clone());
    let done = match conns.run(node, &sql, cfg.op_timeout).await {
        Ok(out) => match op.f.as_str() {
            "read" => match out.num_rows() {
                0 => op.complete(OpType::Ok),
                _ => match first_u64(&out) {
                    Some(v) => op.complete(OpType::Ok).value(v),
                    None => op.complete(OpType::Fail).error("no value in the answer"),
                },
            },
            "cas" => match out.summary.written_rows {
                1 => op.complete(OpType::Ok),
                0 => op
                    .complete(OpType::Fail)
                    .error("the register did not hold the expected value"),
                n => op.complete(OpType::Info).error(format!("{n} rows changed")),
            },
            _ => op.complete(OpType::Ok),
        },
        // A read changes nothing: any failure of it is a definite one.
        Err((_, e)) if op.f == "read" => op.complete(OpType::Fail).error(e),
        Err((kind, e)) => op.complete(kind).error(e),
    };
    rec.record(done);
}

fn first_u64(out: &qh_client::QueryOutput) -> Option<u64> {
    let b = out.batches.iter().find(|b| b.num_rows() > 0)?;
    qh_types::text::value_text(b.column(0).as_ref(), 0)
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_pair_up_on_an_even_number_of_nodes() {
        assert_eq!(ShardLayout::for_nodes(3), ShardLayout::OwnShard);
        assert_eq!(ShardLayout::for_nodes(5), ShardLayout::OwnShard);
        assert_eq!(ShardLayout::OwnShard.config(3), None);
        let pairs = ShardLayout::for_nodes(6);
        assert_eq!(pairs, ShardLayout::Pairs);
        assert_eq!(
            pairs.config(6).as_deref(),
            Some("[clusters.jepsen_pairs]\nshards = [[1, 2], [3, 4], [5, 6]]\n")
        );
        // Nodes 3 and 4 are one shard's replicas: one coordinator path.
        let path = |node| create_tables_sql(node, pairs)[2].clone();
        assert_eq!(path(3), path(4));
        assert_ne!(path(2), path(3));
        assert!(create_tables_sql(1, pairs)[3].contains("Distributed(jepsen_pairs,"));
        assert!(create_tables_sql(1, ShardLayout::OwnShard)[3].contains("Distributed(sharded,"));
    }
}
