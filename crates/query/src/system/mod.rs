//! `system.*` tables, built from the catalog when a query names them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array, UInt8Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::Result as DFResult;
use datafusion::datasource::{MemTable, TableProvider};

use qh_types::settings::{setting_def, SETTING_DEFS};
use qh_types::Settings;

use crate::provider::QueryContext;

mod access;

pub use access::ACCESS_TABLES;

pub const TABLES: &[&str] = &[
    "tables",
    "parts",
    "columns",
    "databases",
    "one",
    "settings",
    "numbers",
    "coordinator",
    "coordinator_leases",
    "replicas",
    "replication_queue",
    "quorum_inserts",
    "processes",
    "clusters",
    "macros",
    "users",
    "roles",
    "role_grants",
    "grants",
    "settings_profiles",
    "settings_profile_elements",
    "quotas",
    "quota_limits",
    "quota_usage",
];

fn s(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}
fn u64s(v: Vec<u64>) -> ArrayRef {
    Arc::new(UInt64Array::from(v))
}
fn i64s(v: Vec<i64>) -> ArrayRef {
    Arc::new(datafusion::arrow::array::Int64Array::from(v))
}
fn u8s(v: Vec<u8>) -> ArrayRef {
    Arc::new(UInt8Array::from(v))
}

fn mem(
    fields: Vec<(&str, DataType)>,
    cols: Vec<ArrayRef>,
) -> DFResult<Option<Arc<dyn TableProvider>>> {
    let schema = Arc::new(Schema::new(
        fields
            .into_iter()
            .map(|(n, t)| Field::new(n, t, false))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols)?;
    Ok(Some(Arc::new(MemTable::try_new(
        schema,
        vec![vec![batch]],
    )?)))
}

/// The provider of `system.<name>`, or None for an unknown name.
pub fn table(ctx: &QueryContext, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
    let cat = &ctx.catalog;
    let all_tables = || {
        cat.databases()
            .into_iter()
            .flat_map(|db| cat.tables(&db).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    match name {
        "one" => mem(vec![("dummy", DataType::UInt8)], vec![u8s(vec![0])]),
        "numbers" => Ok(Some(crate::provider::numbers_table(0, None)?)),
        "coordinator" => coordinator_table(ctx),
        "replicas" => replicas_table(ctx),
        "replication_queue" => replication_queue_table(ctx),
        "quorum_inserts" => quorum_inserts_table(ctx),
        "clusters" => clusters_table(ctx),
        "macros" => {
            let macros: Vec<(String, String)> = ctx
                .replication
                .as_ref()
                .map(|r| {
                    r.macros()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            mem(
                vec![("macro", DataType::Utf8), ("substitution", DataType::Utf8)],
                vec![
                    s(macros.iter().map(|m| m.0.clone()).collect()),
                    s(macros.iter().map(|m| m.1.clone()).collect()),
                ],
            )
        }
        _ if ACCESS_TABLES.contains(&name) || name == "quota_usage" => access::table(ctx, name),
        "processes" => {
            let ps = ctx.processes.snapshot();
            mem(
                vec![
                    ("query_id", DataType::Utf8),
                    ("user", DataType::Utf8),
                    ("elapsed", DataType::Float64),
                    ("read_rows", DataType::UInt64),
                    ("read_bytes", DataType::UInt64),
                    ("written_rows", DataType::UInt64),
                    ("written_bytes", DataType::UInt64),
                    ("is_cancelled", DataType::UInt8),
                    ("query", DataType::Utf8),
                    ("initial_query_id", DataType::Utf8),
                    ("is_initial_query", DataType::UInt8),
                ],
                vec![
                    s(ps.iter().map(|p| p.query_id.clone()).collect()),
                    s(ps.iter().map(|p| p.user.clone()).collect()),
                    Arc::new(datafusion::arrow::array::Float64Array::from(
                        ps.iter().map(|p| p.elapsed).collect::<Vec<_>>(),
                    )),
                    u64s(ps.iter().map(|p| p.read_rows).collect()),
                    u64s(ps.iter().map(|p| p.read_bytes).collect()),
                    u64s(ps.iter().map(|p| p.written_rows).collect()),
                    u64s(ps.iter().map(|p| p.written_bytes).collect()),
                    u8s(ps.iter().map(|p| p.is_cancelled as u8).collect()),
                    s(ps.iter().map(|p| p.query.clone()).collect()),
                    s(ps.iter().map(|p| p.initial_query_id.clone()).collect()),
                    u8s(ps.iter().map(|p| p.is_initial_query as u8).collect()),
                ],
            )
        }
        "coordinator_leases" => {
            let leases = ctx
                .coordinator
                .as_ref()
                .map(|c| c.status().leases)
                .unwrap_or_default();
            mem(
                vec![
                    ("node_id", DataType::UInt64),
                    ("address", DataType::Utf8),
                    ("is_active", DataType::UInt8),
                    ("expires_in_ms", DataType::Int64),
                ],
                vec![
                    u64s(leases.iter().map(|l| l.node_id).collect()),
                    s(leases.iter().map(|l| l.address.clone()).collect()),
                    u8s(leases.iter().map(|l| l.is_active as u8).collect()),
                    i64s(leases.iter().map(|l| l.expires_in_ms).collect()),
                ],
            )
        }
        "databases" => {
            let dbs = cat.databases();
            let n = dbs.len();
            mem(
                vec![("name", DataType::Utf8), ("engine", DataType::Utf8)],
                vec![s(dbs), s(vec!["Atomic".into(); n])],
            )
        }
        "tables" => {
            let (mut db, mut nm, mut eng, mut rows, mut bytes, mut parts) =
                (vec![], vec![], vec![], vec![], vec![], vec![]);
            for t in all_tables() {
                let m = t.meta();
                let ps = t.active_parts();
                db.push(m.database.clone());
                nm.push(m.name.clone());
                eng.push(m.engine_name());
                rows.push(ps.iter().map(|p| p.rows).sum());
                bytes.push(ps.iter().map(|p| p.bytes_on_disk).sum());
                parts.push(ps.len() as u64);
            }
            mem(
                vec![
                    ("database", DataType::Utf8),
                    ("name", DataType::Utf8),
                    ("engine", DataType::Utf8),
                    ("total_rows", DataType::UInt64),
                    ("total_bytes", DataType::UInt64),
                    ("parts", DataType::UInt64),
                ],
                vec![s(db), s(nm), s(eng), u64s(rows), u64s(bytes), u64s(parts)],
            )
        }
        "parts" => {
            let mut c: [Vec<String>; 7] = Default::default();
            let (mut rows, mut bytes, mut level, mut active, mut minb, mut maxb, mut marks) =
                (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
            for t in all_tables() {
                let m = t.meta();
                let active_parts = t.active_parts();
                let outdated = t.outdated_parts();
                for (p, is_active) in active_parts
                    .iter()
                    .map(|p| (p, 1u8))
                    .chain(outdated.iter().map(|p| (p, 0u8)))
                {
                    c[0].push(m.database.clone());
                    c[1].push(m.name.clone());
                    c[2].push(p.partition.clone());
                    c[3].push(p.name.to_string());
                    c[4].push(p.name.partition_id.clone());
                    c[5].push(p.checksum_digest());
                    c[6].push(p.kind.as_str().to_string());
                    rows.push(p.rows);
                    bytes.push(p.bytes_on_disk);
                    level.push(p.name.level as u64);
                    active.push(is_active);
                    minb.push(p.name.min_block);
                    maxb.push(p.name.max_block);
                    marks.push(p.granules() as u64);
                }
            }
            let [db, table, partition, name, partition_id, hash, part_type] = c;
            mem(
                vec![
                    ("database", DataType::Utf8),
                    ("table", DataType::Utf8),
                    ("partition", DataType::Utf8),
                    ("name", DataType::Utf8),
                    ("rows", DataType::UInt64),
                    ("bytes_on_disk", DataType::UInt64),
                    ("level", DataType::UInt64),
                    ("active", DataType::UInt8),
                    ("min_block_number", DataType::UInt64),
                    ("max_block_number", DataType::UInt64),
                    ("marks", DataType::UInt64),
                    ("partition_id", DataType::Utf8),
                    ("hash_of_all_files", DataType::Utf8),
                    ("part_type", DataType::Utf8),
                ],
                vec![
                    s(db),
                    s(table),
                    s(partition),
                    s(name),
                    u64s(rows),
                    u64s(bytes),
                    u64s(level),
                    u8s(active),
                    u64s(minb),
                    u64s(maxb),
                    u64s(marks),
                    s(partition_id),
                    s(hash),
                    s(part_type),
                ],
            )
        }
        "columns" => {
            let mut c: [Vec<String>; 7] = Default::default();
            let mut pos = vec![];
            for t in all_tables() {
                let m = t.meta();
                for (i, col) in m.columns.iter().enumerate() {
                    c[0].push(m.database.clone());
                    c[1].push(m.name.clone());
                    c[2].push(col.name.clone());
                    c[3].push(col.ty.to_string());
                    c[4].push(if col.default.is_some() {
                        col.kind.keyword().into()
                    } else {
                        String::new()
                    });
                    c[5].push(col.default.clone().unwrap_or_default());
                    c[6].push(
                        col.codec
                            .as_ref()
                            .map(|k| format!("CODEC({k})"))
                            .unwrap_or_default(),
                    );
                    pos.push(i as u64 + 1);
                }
            }
            let [db, table, name, ty, kind, expr, codec] = c;
            mem(
                vec![
                    ("database", DataType::Utf8),
                    ("table", DataType::Utf8),
                    ("name", DataType::Utf8),
                    ("type", DataType::Utf8),
                    ("default_kind", DataType::Utf8),
                    ("default_expression", DataType::Utf8),
                    ("position", DataType::UInt64),
                    ("compression_codec", DataType::Utf8),
                ],
                vec![
                    s(db),
                    s(table),
                    s(name),
                    s(ty),
                    s(kind),
                    s(expr),
                    u64s(pos),
                    s(codec),
                ],
            )
        }
        "settings" => settings_table(&ctx.settings),
        _ => Ok(None),
    }
}

/// `system.coordinator`: this node's view of the Raft group (no row in `local`).
fn coordinator_table(ctx: &QueryContext) -> DFResult<Option<Arc<dyn TableProvider>>> {
    let st: Vec<qh_meta::NodeStatus> = ctx.coordinator.iter().map(|c| c.status()).collect();
    let join = |m: &std::collections::BTreeMap<u64, String>| {
        m.iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let col = |f: &dyn Fn(&qh_meta::NodeStatus) -> u64| u64s(st.iter().map(f).collect());
    mem(
        vec![
            ("node_id", DataType::UInt64),
            ("role", DataType::Utf8),
            ("term", DataType::UInt64),
            ("leader", DataType::UInt64),
            ("last_log_index", DataType::UInt64),
            ("applied_index", DataType::UInt64),
            ("snapshot_index", DataType::UInt64),
            ("purged_index", DataType::UInt64),
            ("members", DataType::Utf8),
            ("learners", DataType::Utf8),
            ("active_leases", DataType::UInt64),
            ("leases", DataType::Utf8),
        ],
        vec![
            col(&|s| s.node_id),
            s(st.iter().map(|x| x.role.clone()).collect()),
            col(&|s| s.term),
            col(&|s| s.leader.unwrap_or(0)),
            col(&|s| s.last_log_index),
            col(&|s| s.applied_index),
            col(&|s| s.snapshot_index),
            col(&|s| s.purged_index),
            s(st.iter().map(|x| join(&x.voters)).collect()),
            s(st.iter().map(|x| join(&x.learners)).collect()),
            col(&|s| s.leases.iter().filter(|l| l.is_active).count() as u64),
            s(st.iter()
                .map(|x| {
                    let each = x.leases.iter().map(|l| {
                        let state = if l.is_active { "active" } else { "expired" };
                        format!("{}:{state}", l.node_id)
                    });
                    each.collect::<Vec<_>>().join(",")
                })
                .collect()),
        ],
    )
}

fn replicas_table(ctx: &QueryContext) -> DFResult<Option<Arc<dyn TableProvider>>> {
    let rows: Vec<qh_replication::ReplicaStatus> = ctx
        .replication
        .as_ref()
        .map(|r| r.replicas().iter().map(|r| r.status()).collect())
        .unwrap_or_default();
    let str_col =
        |f: &dyn Fn(&qh_replication::ReplicaStatus) -> String| s(rows.iter().map(f).collect());
    let u64_col =
        |f: &dyn Fn(&qh_replication::ReplicaStatus) -> u64| u64s(rows.iter().map(f).collect());
    let u8_col = |f: &dyn Fn(&qh_replication::ReplicaStatus) -> bool| {
        u8s(rows.iter().map(|r| f(r) as u8).collect())
    };
    mem(
        vec![
            ("database", DataType::Utf8),
            ("table", DataType::Utf8),
            ("engine", DataType::Utf8),
            ("is_leader", DataType::UInt8),
            ("is_readonly", DataType::UInt8),
            ("is_session_expired", DataType::UInt8),
            ("zookeeper_path", DataType::Utf8),
            ("replica_name", DataType::Utf8),
            ("queue_size", DataType::UInt64),
            ("inserts_in_queue", DataType::UInt64),
            ("merges_in_queue", DataType::UInt64),
            ("log_max_index", DataType::UInt64),
            ("log_pointer", DataType::UInt64),
            ("absolute_delay", DataType::UInt64),
            ("total_replicas", DataType::UInt64),
            ("active_replicas", DataType::UInt64),
            ("last_queue_update_exception", DataType::Utf8),
        ],
        vec![
            str_col(&|r| r.database.clone()),
            str_col(&|r| r.table.clone()),
            str_col(&|r| r.engine.clone()),
            u8_col(&|r| r.is_leader),
            u8_col(&|r| r.is_readonly),
            u8_col(&|r| r.is_session_expired),
            str_col(&|r| r.zookeeper_path.clone()),
            str_col(&|r| r.replica_name.clone()),
            u64_col(&|r| r.queue_size),
            u64_col(&|r| r.inserts_in_queue),
            u64_col(&|r| r.merges_in_queue),
            u64_col(&|r| r.log_max_index),
            u64_col(&|r| r.log_pointer),
            u64_col(&|r| r.absolute_delay),
            u64_col(&|r| r.total_replicas),
            u64_col(&|r| r.active_replicas),
            str_col(&|r| r.last_queue_update_exception.clone()),
        ],
    )
}

fn replication_queue_table(ctx: &QueryContext) -> DFResult<Option<Arc<dyn TableProvider>>> {
    let mut c: [Vec<String>; 7] = Default::default();
    let (mut pos, mut tries) = (vec![], vec![]);
    for r in ctx
        .replication
        .as_ref()
        .map(|r| r.replicas())
        .unwrap_or_default()
    {
        let st = r.status();
        for q in r.queue() {
            c[0].push(st.database.clone());
            c[1].push(st.table.clone());
            c[2].push(st.replica_name.clone());
            c[3].push(q.kind.to_string());
            c[4].push(q.new_part_name.clone());
            c[5].push(q.parts_to_merge.join(","));
            c[6].push(q.last_exception.clone());
            pos.push(q.index);
            tries.push(q.num_tries);
        }
    }
    let [db, table, replica, kind, new_part, merge, exc] = c;
    mem(
        vec![
            ("database", DataType::Utf8),
            ("table", DataType::Utf8),
            ("replica_name", DataType::Utf8),
            ("position", DataType::UInt64),
            ("type", DataType::Utf8),
            ("new_part_name", DataType::Utf8),
            ("parts_to_merge", DataType::Utf8),
            ("num_tries", DataType::UInt64),
            ("last_exception", DataType::Utf8),
        ],
        vec![
            s(db),
            s(table),
            s(replica),
            u64s(pos),
            s(kind),
            s(new_part),
            s(merge),
            u64s(tries),
            s(exc),
        ],
    )
}

/// Inserts being staged or committed on this node, and staged parts
/// awaiting their commit or cleanup.
fn quorum_inserts_table(ctx: &QueryContext) -> DFResult<Option<Arc<dyn TableProvider>>> {
    let mut c: [Vec<String>; 8] = Default::default();
    let (mut rows, mut quorum, mut started, mut deadline) = (vec![], vec![], vec![], vec![]);
    for r in ctx
        .replication
        .as_ref()
        .map(|r| r.replicas())
        .unwrap_or_default()
    {
        let meta = r.table().meta();
        for q in r.quorum_inserts() {
            c[0].push(meta.database.clone());
            c[1].push(meta.name.clone());
            c[2].push(q.stage_id);
            c[3].push(q.role.to_string());
            c[4].push(q.state.to_string());
            c[5].push(q.writer);
            c[6].push(q.partition_id);
            c[7].push(q.replicas.join(","));
            rows.push(q.rows);
            quorum.push(q.quorum);
            started.push(q.started_ms);
            deadline.push(q.deadline_ms);
        }
    }
    let [db, table, stage, role, state, writer, partition, replicas] = c;
    mem(
        vec![
            ("database", DataType::Utf8),
            ("table", DataType::Utf8),
            ("stage_id", DataType::Utf8),
            ("role", DataType::Utf8),
            ("state", DataType::Utf8),
            ("writer", DataType::Utf8),
            ("partition_id", DataType::Utf8),
            ("rows", DataType::UInt64),
            ("quorum", DataType::UInt64),
            ("replicas", DataType::Utf8),
            ("started_ms", DataType::UInt64),
            ("deadline_ms", DataType::UInt64),
        ],
        vec![
            s(db),
            s(table),
            s(stage),
            s(role),
            s(state),
            s(writer),
            s(partition),
            u64s(rows),
            u64s(quorum),
            s(replicas),
            u64s(started),
            u64s(deadline),
        ],
    )
}

/// `system.clusters`: one row per (cluster, shard, replica).
fn clusters_table(ctx: &QueryContext) -> DFResult<Option<Arc<dyn TableProvider>>> {
    let status = ctx.coordinator.as_ref().map(|c| c.status());
    let leases = status
        .as_ref()
        .map(|s| s.leases.clone())
        .unwrap_or_default();
    let voters: Vec<u64> = status
        .as_ref()
        .map(|s| s.voters.keys().copied().collect())
        .unwrap_or_default();
    let me = ctx.coordinator.as_ref().map(|c| c.node_id());
    let (mut cluster, mut shard, mut replica, mut node_id) = (vec![], vec![], vec![], vec![]);
    let (mut host, mut address) = (Vec::<String>::new(), Vec::<String>::new());
    let (mut weight, mut local, mut active) = (vec![], vec![], vec![]);
    let layouts = if ctx.coordinator.is_some() {
        ctx.cluster_config.all(&voters)
    } else {
        Default::default()
    };
    for (name, layout) in layouts {
        for (si, replicas) in layout.iter().enumerate() {
            for (ri, node) in replicas.iter().enumerate() {
                let addr = status
                    .as_ref()
                    .and_then(|s| s.voters.get(node).cloned())
                    .unwrap_or_default();
                cluster.push(name.clone());
                shard.push(si as u64 + 1);
                replica.push(ri as u64 + 1);
                node_id.push(*node);
                host.push(format!("node{node}"));
                address.push(addr);
                weight.push(1u64);
                local.push((Some(*node) == me) as u8);
                active.push(leases.iter().any(|l| l.node_id == *node && l.is_active) as u8);
            }
        }
    }
    mem(
        vec![
            ("cluster", DataType::Utf8),
            ("shard_num", DataType::UInt64),
            ("shard_weight", DataType::UInt64),
            ("replica_num", DataType::UInt64),
            ("node_id", DataType::UInt64),
            ("host_name", DataType::Utf8),
            ("host_address", DataType::Utf8),
            ("is_local", DataType::UInt8),
            ("is_active", DataType::UInt8),
        ],
        vec![
            s(cluster),
            u64s(shard),
            u64s(weight),
            u64s(replica),
            u64s(node_id),
            s(host),
            s(address),
            u8s(local),
            u8s(active),
        ],
    )
}

/// `system.settings`: every setting we act on (the settings table), then
/// any other the session set, with ClickHouse's columns.
fn settings_table(settings: &Settings) -> DFResult<Option<Arc<dyn TableProvider>>> {
    let readonly = u8::from(settings.uint("readonly").unwrap_or(0) > 0);
    let (mut name, mut value, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    let (mut description, mut ty, mut default) = (Vec::new(), Vec::new(), Vec::new());
    for d in SETTING_DEFS {
        name.push(d.name.to_string());
        value.push(settings.value_or_default(d.name));
        changed.push(u8::from(settings.get(d.name).is_some()));
        description.push(d.description.to_string());
        ty.push(d.ty.to_string());
        default.push(d.default.to_string());
    }
    for (k, v) in settings.iter().filter(|(k, _)| setting_def(k).is_none()) {
        name.push(k.to_string());
        value.push(v.to_string());
        changed.push(1);
        description.push("Not used by quorumhouse.".to_string());
        ty.push("String".to_string());
        default.push(String::new());
    }
    let n = name.len();
    mem(
        vec![
            ("name", DataType::Utf8),
            ("value", DataType::Utf8),
            ("changed", DataType::UInt8),
            ("description", DataType::Utf8),
            ("readonly", DataType::UInt8),
            ("type", DataType::Utf8),
            ("default", DataType::Utf8),
        ],
        vec![
            s(name),
            s(value),
            u8s(changed),
            s(description),
            u8s(vec![readonly; n]),
            s(ty),
            s(default),
        ],
    )
}
