//! The access `system.*` tables: users, roles, grants, settings profiles
//! and quotas, from the node's view of the coordinator; and
//! `system.quota_usage`, what the current user has used here.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampSecondArray, UInt64Array, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::Result as DFResult;
use datafusion::datasource::{MemTable, TableProvider};
use qh_access::{Resource, SettingElement, Who};

use super::{mem, s, u64s, u8s};
use crate::provider::QueryContext;

/// Who exists and what they may do: readable by access managers only.
pub const ACCESS_TABLES: &[&str] = &[
    "users",
    "roles",
    "role_grants",
    "grants",
    "settings_profiles",
    "settings_profile_elements",
    "quotas",
    "quota_limits",
];

/// `max_<resource>`, the column of a limit.
fn max_names(r: Resource) -> &'static str {
    match r {
        Resource::Queries => "max_queries",
        Resource::QuerySelects => "max_query_selects",
        Resource::QueryInserts => "max_query_inserts",
        Resource::Errors => "max_errors",
        Resource::ResultRows => "max_result_rows",
        Resource::ResultBytes => "max_result_bytes",
        Resource::ReadRows => "max_read_rows",
        Resource::ReadBytes => "max_read_bytes",
        Resource::WrittenBytes => "max_written_bytes",
        Resource::ExecutionTime => "max_execution_time",
    }
}

/// A nullable column of amounts of `r`: seconds as Float64, counts as UInt64.
fn amounts(r: Resource, v: impl Iterator<Item = Option<f64>>) -> (DataType, ArrayRef) {
    match r {
        Resource::ExecutionTime => (
            DataType::Float64,
            Arc::new(Float64Array::from(v.collect::<Vec<_>>())),
        ),
        _ => (
            DataType::UInt64,
            Arc::new(UInt64Array::from(
                v.map(|x| x.map(|x| x as u64)).collect::<Vec<_>>(),
            )),
        ),
    }
}

/// `Array(String)` values.
fn lists(v: Vec<Vec<String>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for names in v {
        for n in names {
            b.values().append_value(n);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn opt(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

/// A table of nullable and non-nullable columns.
fn table_of(
    fields: Vec<(&str, DataType, bool)>,
    cols: Vec<ArrayRef>,
) -> DFResult<Option<Arc<dyn TableProvider>>> {
    let schema = Arc::new(Schema::new(
        fields
            .into_iter()
            .map(|(n, t, nullable)| Field::new(n, t, nullable))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols)?;
    Ok(Some(Arc::new(MemTable::try_new(
        schema,
        vec![vec![batch]],
    )?)))
}

pub(super) fn table(ctx: &QueryContext, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
    match name {
        "users" => {
            let users = ctx.engine.access().map(|a| a.users()).unwrap_or_default();
            mem(
                vec![
                    ("name", DataType::Utf8),
                    ("storage", DataType::Utf8),
                    ("auth_type", DataType::Utf8),
                    ("host_ip", DataType::Utf8),
                    ("default_database", DataType::Utf8),
                ],
                vec![
                    s(users.iter().map(|u| u.name.clone()).collect()),
                    s(users
                        .iter()
                        .map(|u| {
                            if u.read_only {
                                "users_xml"
                            } else {
                                "replicated"
                            }
                            .to_string()
                        })
                        .collect()),
                    s(users
                        .iter()
                        .map(|u| u.auth.type_name().to_string())
                        .collect()),
                    s(users.iter().map(|u| host_ip(&u.hosts)).collect()),
                    s(users
                        .iter()
                        .map(|u| u.default_database.clone().unwrap_or_default())
                        .collect()),
                ],
            )
        }
        "roles" => {
            let roles = ctx.engine.access().map(|a| a.roles()).unwrap_or_default();
            mem(
                vec![("name", DataType::Utf8), ("storage", DataType::Utf8)],
                vec![
                    s(roles.iter().map(|r| r.name.clone()).collect()),
                    s(vec!["replicated".to_string(); roles.len()]),
                ],
            )
        }
        "role_grants" => {
            let access = ctx.engine.access();
            let users = access.map(|a| a.users()).unwrap_or_default();
            let roles = access.map(|a| a.roles()).unwrap_or_default();
            // (user, role, granted role, admin option): one row per grant.
            let mut rows: Vec<(Option<String>, Option<String>, String, u8)> = Vec::new();
            for u in &users {
                rows.extend(u.roles.iter().map(|g| {
                    (
                        Some(u.name.clone()),
                        None,
                        g.role.clone(),
                        g.admin_option as u8,
                    )
                }));
            }
            for r in &roles {
                rows.extend(r.roles.iter().map(|g| {
                    (
                        None,
                        Some(r.name.clone()),
                        g.role.clone(),
                        g.admin_option as u8,
                    )
                }));
            }
            let opt = |v: Vec<Option<String>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
            let schema = Arc::new(Schema::new(vec![
                Field::new("user_name", DataType::Utf8, true),
                Field::new("role_name", DataType::Utf8, true),
                Field::new("granted_role_name", DataType::Utf8, false),
                Field::new("granted_role_is_default", DataType::UInt8, false),
                Field::new("with_admin_option", DataType::UInt8, false),
            ]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    opt(rows.iter().map(|r| r.0.clone()).collect()),
                    opt(rows.iter().map(|r| r.1.clone()).collect()),
                    s(rows.iter().map(|r| r.2.clone()).collect()),
                    // Every granted role is active (DEFAULT ROLE ALL).
                    u8s(vec![1; rows.len()]),
                    u8s(rows.iter().map(|r| r.3).collect()),
                ],
            )?;
            Ok(Some(Arc::new(MemTable::try_new(
                schema,
                vec![vec![batch]],
            )?)))
        }
        "grants" => {
            let access = ctx.engine.access();
            let users = access.map(|a| a.users()).unwrap_or_default();
            let roles = access.map(|a| a.roles()).unwrap_or_default();
            // One row per grant, or per column of a column grant.
            let mut rows: Vec<GrantRow> = Vec::new();
            let holders = users
                .iter()
                .map(|u| (Some(u.name.clone()), None, &u.grants))
                .chain(
                    roles
                        .iter()
                        .map(|r| (None, Some(r.name.clone()), &r.grants)),
                );
            for (user, role, grants) in holders {
                for g in grants {
                    let base = |column: Option<String>| GrantRow {
                        user: user.clone(),
                        role: role.clone(),
                        privilege: g.privilege.name(),
                        database: g.database.clone(),
                        table: g.table.clone(),
                        column,
                        grant_option: g.grant_option as u8,
                    };
                    match &g.columns {
                        None => rows.push(base(None)),
                        Some(cols) => rows.extend(cols.iter().map(|c| base(Some(c.clone())))),
                    }
                }
            }
            let opt = |v: Vec<Option<String>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
            let schema = Arc::new(Schema::new(vec![
                Field::new("user_name", DataType::Utf8, true),
                Field::new("role_name", DataType::Utf8, true),
                Field::new("access_type", DataType::Utf8, false),
                Field::new("database", DataType::Utf8, true),
                Field::new("table", DataType::Utf8, true),
                Field::new("column", DataType::Utf8, true),
                Field::new("is_partial_revoke", DataType::UInt8, false),
                Field::new("grant_option", DataType::UInt8, false),
            ]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    opt(rows.iter().map(|r| r.user.clone()).collect()),
                    opt(rows.iter().map(|r| r.role.clone()).collect()),
                    s(rows.iter().map(|r| r.privilege.to_string()).collect()),
                    opt(rows.iter().map(|r| r.database.clone()).collect()),
                    opt(rows.iter().map(|r| r.table.clone()).collect()),
                    opt(rows.iter().map(|r| r.column.clone()).collect()),
                    u8s(vec![0; rows.len()]),
                    u8s(rows.iter().map(|r| r.grant_option).collect()),
                ],
            )?;
            Ok(Some(Arc::new(MemTable::try_new(
                schema,
                vec![vec![batch]],
            )?)))
        }
        "settings_profiles" => {
            let profiles = ctx
                .engine
                .access()
                .map(|a| a.profiles())
                .unwrap_or_default();
            let (to, except): (Vec<_>, Vec<_>) = profiles
                .iter()
                .map(|p| match p.to.all {
                    true => (Vec::new(), p.to.names.clone()),
                    false => (p.to.names.clone(), Vec::new()),
                })
                .unzip();
            let (to, except) = (lists(to), lists(except));
            let list_type = to.data_type().clone();
            mem(
                vec![
                    ("name", DataType::Utf8),
                    ("storage", DataType::Utf8),
                    ("num_elements", DataType::UInt64),
                    ("apply_to_all", DataType::UInt8),
                    ("apply_to_list", list_type.clone()),
                    ("apply_to_except", list_type),
                ],
                vec![
                    s(profiles.iter().map(|p| p.name.clone()).collect()),
                    s(vec!["replicated".to_string(); profiles.len()]),
                    u64s(profiles.iter().map(|p| p.elements.len() as u64).collect()),
                    u8s(profiles.iter().map(|p| p.to.all as u8).collect()),
                    to,
                    except,
                ],
            )
        }
        "settings_profile_elements" => {
            let access = ctx.engine.access();
            let profiles = access.map(|a| a.profiles()).unwrap_or_default();
            let users = access.map(|a| a.users()).unwrap_or_default();
            let roles = access.map(|a| a.roles()).unwrap_or_default();
            let owners = profiles
                .iter()
                .map(|p| ([Some(p.name.clone()), None, None], &p.elements))
                .chain(
                    users
                        .iter()
                        .map(|u| ([None, Some(u.name.clone()), None], &u.settings)),
                )
                .chain(
                    roles
                        .iter()
                        .map(|r| ([None, None, Some(r.name.clone())], &r.settings)),
                );
            let mut cols: [Vec<Option<String>>; 9] = Default::default();
            let mut index = Vec::new();
            for (owner, elements) in owners {
                for (i, e) in elements.iter().enumerate() {
                    let row: [Option<String>; 6] = match e {
                        SettingElement::Profile { name } => {
                            [None, None, None, None, None, Some(name.clone())]
                        }
                        SettingElement::Setting {
                            name,
                            value,
                            min,
                            max,
                            writability,
                        } => [
                            Some(name.clone()),
                            value.clone(),
                            min.clone(),
                            max.clone(),
                            writability.map(|w| w.keyword().to_string()),
                            None,
                        ],
                    };
                    for (c, v) in owner.iter().cloned().chain(row).enumerate() {
                        cols[c].push(v);
                    }
                    index.push(i as u64);
                }
            }
            let [profile, user, role, setting, value, min, max, writability, inherit] = cols;
            table_of(
                vec![
                    ("profile_name", DataType::Utf8, true),
                    ("user_name", DataType::Utf8, true),
                    ("role_name", DataType::Utf8, true),
                    ("index", DataType::UInt64, false),
                    ("setting_name", DataType::Utf8, true),
                    ("value", DataType::Utf8, true),
                    ("min", DataType::Utf8, true),
                    ("max", DataType::Utf8, true),
                    ("writability", DataType::Utf8, true),
                    ("inherit_profile", DataType::Utf8, true),
                ],
                vec![
                    opt(profile),
                    opt(user),
                    opt(role),
                    u64s(index),
                    opt(setting),
                    opt(value),
                    opt(min),
                    opt(max),
                    opt(writability),
                    opt(inherit),
                ],
            )
        }
        "quotas" => {
            let quotas = ctx.engine.access().map(|a| a.quotas()).unwrap_or_default();
            let (to, except): (Vec<_>, Vec<_>) = quotas
                .iter()
                .map(|q| match q.to.all {
                    true => (Vec::new(), q.to.names.clone()),
                    false => (q.to.names.clone(), Vec::new()),
                })
                .unzip();
            let keys = lists(
                quotas
                    .iter()
                    .map(|q| match q.keyed_by.name() {
                        "" => Vec::new(),
                        k => k.split(", ").map(str::to_string).collect(),
                    })
                    .collect(),
            );
            let durations = {
                let mut b = ListBuilder::new(UInt64Builder::new());
                for q in &quotas {
                    for i in &q.intervals {
                        b.values().append_value(i.seconds);
                    }
                    b.append(true);
                }
                Arc::new(b.finish()) as ArrayRef
            };
            let (to, except) = (lists(to), lists(except));
            let list_type = to.data_type().clone();
            mem(
                vec![
                    ("name", DataType::Utf8),
                    ("storage", DataType::Utf8),
                    ("keys", list_type.clone()),
                    ("durations", durations.data_type().clone()),
                    ("apply_to_all", DataType::UInt8),
                    ("apply_to_list", list_type.clone()),
                    ("apply_to_except", list_type),
                ],
                vec![
                    s(quotas.iter().map(|q| q.name.clone()).collect()),
                    s(vec!["replicated".to_string(); quotas.len()]),
                    keys,
                    durations,
                    u8s(quotas.iter().map(|q| q.to.all as u8).collect()),
                    to,
                    except,
                ],
            )
        }
        "quota_limits" => {
            let quotas = ctx.engine.access().map(|a| a.quotas()).unwrap_or_default();
            let rows: Vec<(&str, &qh_access::QuotaInterval)> = quotas
                .iter()
                .flat_map(|q| q.intervals.iter().map(move |i| (q.name.as_str(), i)))
                .collect();
            let mut fields = vec![
                ("quota_name", DataType::Utf8, false),
                ("duration", DataType::UInt64, false),
                ("is_randomized_interval", DataType::UInt8, false),
            ];
            let mut cols = vec![
                s(rows.iter().map(|r| r.0.to_string()).collect()),
                u64s(rows.iter().map(|r| r.1.seconds).collect()),
                u8s(rows.iter().map(|r| r.1.randomized as u8).collect()),
            ];
            for r in Resource::ALL {
                let (ty, col) = amounts(r, rows.iter().map(|(_, i)| i.max.get(&r).copied()));
                fields.push((max_names(r), ty, true));
                cols.push(col);
            }
            table_of(fields, cols)
        }
        "quota_usage" => {
            let rows = ctx
                .engine
                .access()
                .and_then(|a| {
                    let user = a.local_user(&ctx.user)?;
                    let who = Who {
                        user: &ctx.user,
                        ip: ctx.peer,
                        client_key: ctx.settings.get("quota_key").unwrap_or(""),
                    };
                    Some(a.quota_usage_of(&user, &who))
                })
                .unwrap_or_default();
            let time = |v: Vec<i64>| -> ArrayRef { Arc::new(TimestampSecondArray::from(v)) };
            let mut fields = vec![
                ("quota_name", DataType::Utf8, false),
                ("quota_key", DataType::Utf8, false),
                (
                    "start_time",
                    DataType::Timestamp(TimeUnit::Second, None),
                    false,
                ),
                (
                    "end_time",
                    DataType::Timestamp(TimeUnit::Second, None),
                    false,
                ),
                ("duration", DataType::UInt64, false),
            ];
            let mut cols = vec![
                s(rows.iter().map(|r| r.quota.clone()).collect()),
                s(rows.iter().map(|r| r.key.clone()).collect()),
                time(rows.iter().map(|r| (r.end - r.seconds) as i64).collect()),
                time(rows.iter().map(|r| r.end as i64).collect()),
                u64s(rows.iter().map(|r| r.seconds).collect()),
            ];
            for r in Resource::ALL {
                let (ty, used) = amounts(r, rows.iter().map(|u| u.used.get(&r).copied()));
                fields.push((r.name(), ty.clone(), true));
                cols.push(used);
                let (_, max) = amounts(r, rows.iter().map(|u| u.max.get(&r).copied()));
                fields.push((max_names(r), ty, true));
                cols.push(max);
            }
            table_of(fields, cols)
        }
        _ => Ok(None),
    }
}

/// `system.users.host_ip`: the networks a user may connect from, as
/// ClickHouse lists them (`::/0` for any host), comma-separated.
fn host_ip(hosts: &qh_access::Hosts) -> String {
    match hosts {
        qh_access::Hosts::Any => "::/0".into(),
        qh_access::Hosts::List { rules } => rules
            .iter()
            .map(|r| match r {
                qh_access::HostRule::Local => "::1, 127.0.0.1".to_string(),
                qh_access::HostRule::Ip { net } => net.clone(),
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A `system.grants` row (of a user or of a role).
struct GrantRow {
    user: Option<String>,
    role: Option<String>,
    privilege: &'static str,
    database: Option<String>,
    table: Option<String>,
    column: Option<String>,
    grant_option: u8,
}
