//! The node configuration file (TOML) of `quorumhouse server --config F`:
//! every server option under the name of its flag (`http_port` for
//! `--http-port`), `[profiles.default]`, the settings every session of
//! the node starts with (`insert_quorum = 2`, ...), and `[users.<name>]`,
//! users of the file (read-only to SQL, as ClickHouse's users.xml). A flag given on the
//! command line wins over the file; a key the node does not know is an error
//! naming it. `quorumhouse server --print-default-config` prints every option
//! with its default.

use std::collections::BTreeMap;
use std::path::Path;

use qh_types::Settings;
use toml_edit::{DocumentMut, Item, Value};

use crate::server_args::ServerArgs;

/// One option: its key (= flag without `--`, `_` for `-`), default, and what it does.
struct ConfigOption {
    key: &'static str,
    default: &'static str,
    doc: &'static str,
    numeric: bool,
}

const fn opt(
    key: &'static str,
    default: &'static str,
    doc: &'static str,
    numeric: bool,
) -> ConfigOption {
    ConfigOption {
        key,
        default,
        doc,
        numeric,
    }
}

/// Every server option (kept in step with `ServerArgs`; a test checks it).
const OPTIONS: &[ConfigOption] = &[
    opt(
        "data_dir",
        "./qh-data/node1",
        "Data directory of this node.",
        false,
    ),
    opt("host", "127.0.0.1", "Address to listen on.", false),
    opt("port", "9001", "Port of the gRPC client API.", true),
    opt(
        "http_port",
        "8121",
        "Port of the HTTP interface (/?query=, /ping, /metrics).",
        true,
    ),
    opt("node_id", "1", "This node's id (1-based).", true),
    opt(
        "node_id_from_hostname",
        "false",
        "Take the node id from the host name's -<ordinal> plus one (StatefulSet pods).",
        false,
    ),
    opt(
        "interserver_port",
        "9101",
        "Port of the interserver API (Raft, part transfer).",
        true,
    ),
    opt(
        "advertise",
        "",
        "Interserver address other nodes use for this one (empty: host:interserver_port).",
        false,
    ),
    opt(
        "peers",
        "",
        "Initial coordinator voters, \"id=host:port,...\" (empty: this node alone).",
        false,
    ),
    opt("raft_heartbeat_ms", "100", "Raft heartbeat interval.", true),
    opt(
        "raft_election_timeout_ms",
        "250",
        "Raft election timeout (randomized between this and twice this).",
        true,
    ),
    opt(
        "raft_snapshot_logs",
        "5000",
        "Build a coordinator snapshot every this many entries.",
        true,
    ),
    opt(
        "raft_keep_logs",
        "1000",
        "Log entries kept behind a snapshot.",
        true,
    ),
    opt(
        "lease_ttl_ms",
        "4000",
        "A replica's lease lapses this long after its last renewal.",
        true,
    ),
    opt(
        "coordinator_write_timeout_ms",
        "10000",
        "How long a coordinator write may wait for a leader and a quorum.",
        true,
    ),
    opt(
        "cluster_secret",
        "",
        "The secret every interserver call must carry; the same on every node (empty: none, the interserver port is open). QUORUMHOUSE_CLUSTER_SECRET in the environment when not set here.",
        false,
    ),
    opt(
        "tls_cert_file",
        "",
        "The server certificate chain (PEM) of the TLS doors (empty: no TLS).",
        false,
    ),
    opt("tls_key_file", "", "Its private key (PEM).", false),
    opt(
        "secure_port",
        "",
        "Port of the gRPC client API over TLS (empty: 9440 when a certificate is set).",
        false,
    ),
    opt(
        "https_port",
        "",
        "Port of the HTTPS interface (empty: 8443 when a certificate is set).",
        false,
    ),
    opt(
        "tls_only",
        "false",
        "Open only the TLS doors: no plaintext client API or HTTP port.",
        false,
    ),
    opt(
        "tls_ca_file",
        "",
        "The CA (PEM) that signs every node's certificate (interserver TLS checks peers against it).",
        false,
    ),
    opt(
        "interserver_tls",
        "false",
        "Mutual TLS on the interserver port and this node's calls to others (needs tls_cert_file, tls_key_file, tls_ca_file; the certificate must name the address others reach this node at).",
        false,
    ),
    opt(
        "replica",
        "",
        "The {replica} macro of Replicated* engines (empty: node<id>).",
        false,
    ),
    opt(
        "shard",
        "",
        "The {shard} macro of Replicated* engines (empty: the node's shard in the cluster an ON CLUSTER statement names, else 1).",
        false,
    ),
];

/// The default configuration, every option commented with what it does.
pub fn default_config() -> String {
    let mut out = String::from(
        "# quorumhouse node configuration (quorumhouse server --config FILE).\n\
         # Flags given on the command line win over this file.\n\n",
    );
    for o in OPTIONS {
        out.push_str(&format!("# {}\n", o.doc));
        if o.numeric {
            out.push_str(&format!("{} = {}\n\n", o.key, o.default));
        } else {
            out.push_str(&format!("{} = {:?}\n\n", o.key, o.default));
        }
    }
    out.push_str(
        "# Settings every session starts with (SET and per-query SETTINGS override them).\n\
         [profiles.default]\n\
         # insert_quorum = 2\n\
         # insert_quorum_timeout = 600000\n\
         # select_sequential_consistency = 0\n\
         # Limits (ClickHouse's names and defaults; 0 = none): max_execution_time,\n\
         # max_memory_usage, max_rows_to_read, max_bytes_to_read, max_result_rows,\n\
         # max_result_bytes, result_overflow_mode, timeout_overflow_mode, readonly,\n\
         # max_ast_depth = 1000, max_ast_elements = 50000.\n\
         # Node-wide, read once at start-up:\n\
         # max_concurrent_queries = 100\n\
         # max_server_memory_usage = 0              # bytes for all queries; 0: the ratio below\n\
         # max_server_memory_usage_to_ram_ratio = 0.9\n\n\
         # More {name} macros for engine arguments (shard and replica above).\n\
         [macros]\n\
         # layer = \"prod\"\n\n\
         # Clusters for ON CLUSTER and system.clusters: shards of replicas, by node id.\n\
         # `default` (one shard of every node) and `sharded` (every node a shard)\n\
         # exist without configuration and follow the membership.\n\
         # [clusters.two_shards]\n\
         # shards = [[1, 2], [3]]\n\n\
         # Users of this file (ClickHouse's users.xml): read-only to SQL, the same\n\
         # file on every node. A [users.default] replaces the built-in default.\n\
         # [users.default]\n\
         # networks = [\"::1\", \"127.0.0.1\"]    # default: any host\n\
         # access_management = true              # ALL ON *.* WITH GRANT OPTION\n\
         # [users.etl]\n\
         # password_sha256_hex = \"...\"          # echo -n pw | sha256sum (or password = \"...\")\n\
         # grants = [\"SELECT, INSERT ON warehouse.*\"]\n\
         # roles = [\"analyst\"]\n\
         # profile = \"etl_limits\"               # a settings profile (CREATE SETTINGS PROFILE)\n",
    );
    out
}

/// What a config file holds beside the server options.
#[derive(Debug, Default, PartialEq)]
pub struct NodeConfig {
    /// `[profiles.default]`: settings every session starts with.
    pub profile: Settings,
    /// `[macros]`.
    pub macros: BTreeMap<String, String>,
    /// `[clusters.<name>] shards = [[node ids]]`.
    pub clusters: BTreeMap<String, Vec<Vec<u64>>>,
    /// `[users.<name>]`: users of this file, read-only to SQL.
    pub users: Vec<qh_access::UserDef>,
}

/// Reads `path` into `args` (options not given as flags, per `given`) and
/// returns the rest: profile, macros, clusters.
pub fn apply(
    path: &Path,
    args: &mut ServerArgs,
    given: &dyn Fn(&str) -> bool,
) -> anyhow::Result<NodeConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
    apply_text(&text, &path.display().to_string(), args, given)
}

fn apply_text(
    text: &str,
    name: &str,
    args: &mut ServerArgs,
    given: &dyn Fn(&str) -> bool,
) -> anyhow::Result<NodeConfig> {
    let doc: DocumentMut = text
        .parse()
        .map_err(|e| anyhow::anyhow!("config {name}: {e}"))?;
    let mut profile = Settings::new();
    let mut macros = BTreeMap::new();
    let mut clusters = BTreeMap::new();
    let mut users = Vec::new();
    for (key, item) in doc.iter() {
        if key == "users" {
            let table = item
                .as_table_like()
                .ok_or_else(|| anyhow::anyhow!("config {name}: `users` must be a table"))?;
            for (uname, u) in table.iter() {
                users.push(config_user(name, uname, u)?);
            }
            continue;
        }
        if key == "macros" {
            let table = item
                .as_table_like()
                .ok_or_else(|| anyhow::anyhow!("config {name}: `macros` must be a table"))?;
            for (k, v) in table.iter() {
                let value = scalar(v).ok_or_else(|| {
                    anyhow::anyhow!("config {name}: macro `{k}` must be a string or number")
                })?;
                macros.insert(k.to_string(), value);
            }
            continue;
        }
        if key == "clusters" {
            let table = item
                .as_table_like()
                .ok_or_else(|| anyhow::anyhow!("config {name}: `clusters` must be a table"))?;
            for (cname, c) in table.iter() {
                clusters.insert(cname.to_string(), cluster_layout(name, cname, c)?);
            }
            continue;
        }
        if key == "profiles" {
            let table = item
                .as_table_like()
                .ok_or_else(|| anyhow::anyhow!("config {name}: `profiles` must be a table"))?;
            for (pname, p) in table.iter() {
                if pname != "default" {
                    anyhow::bail!(
                        "config {name}: unknown profile `{pname}` (only `profiles.default` exists here; other profiles are CREATE SETTINGS PROFILE)"
                    );
                }
                let settings = p.as_table_like().ok_or_else(|| {
                    anyhow::anyhow!("config {name}: `profiles.default` must be a table")
                })?;
                for (k, v) in settings.iter() {
                    let value = scalar(v).ok_or_else(|| {
                        anyhow::anyhow!(
                            "config {name}: setting `{k}` must be a number, bool or string"
                        )
                    })?;
                    qh_types::settings::check_setting(k, &value)
                        .map_err(|e| anyhow::anyhow!("config {name}: profiles.default: {e}"))?;
                    profile.set(k, value);
                }
            }
            continue;
        }
        let Some(o) = OPTIONS.iter().find(|o| o.key == key) else {
            anyhow::bail!(
                "config {name}: unknown key `{key}` (known: {})",
                OPTIONS.iter().map(|o| o.key).collect::<Vec<_>>().join(", ")
            );
        };
        let value = scalar(item).ok_or_else(|| {
            anyhow::anyhow!("config {name}: `{key}` must be a number or a string")
        })?;
        if o.numeric && value.parse::<u64>().is_err() {
            anyhow::bail!("config {name}: `{key}` must be a number, not {value:?}");
        }
        if given(key) {
            continue;
        }
        set(args, key, &value).map_err(|e| anyhow::anyhow!("config {name}: `{key}`: {e}"))?;
    }
    Ok(NodeConfig {
        profile,
        macros,
        clusters,
        users,
    })
}

/// `[users.<uname>]`: password (or password_sha256_hex), networks, grants,
/// access_management, roles, profile, default_database.
fn config_user(name: &str, uname: &str, item: &Item) -> anyhow::Result<qh_access::UserDef> {
    let table = item
        .as_table_like()
        .ok_or_else(|| anyhow::anyhow!("config {name}: `users.{uname}` must be a table"))?;
    let err = |what: &str| anyhow::anyhow!("config {name}: users.{uname}: {what}");
    let strings = |v: &Item| -> Option<Vec<String>> {
        v.as_array()
            .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect())
    };
    let mut spec = qh_access::ConfigUserSpec::default();
    for (k, v) in table.iter() {
        match k {
            "password" => spec.password = Some(scalar(v).ok_or_else(|| err("password must be a string"))?),
            "password_sha256_hex" => {
                spec.password_sha256_hex =
                    Some(scalar(v).ok_or_else(|| err("password_sha256_hex must be a string"))?)
            }
            "networks" => {
                spec.networks = Some(strings(v).ok_or_else(|| err("networks must be a list of strings"))?)
            }
            "grants" => spec.grants = strings(v).ok_or_else(|| err("grants must be a list of strings"))?,
            "roles" => spec.roles = strings(v).ok_or_else(|| err("roles must be a list of strings"))?,
            "access_management" => {
                spec.access_management = v
                    .as_bool()
                    .ok_or_else(|| err("access_management must be true or false"))?
            }
            "profile" => spec.profile = Some(scalar(v).ok_or_else(|| err("profile must be a string"))?),
            "default_database" => {
                spec.default_database =
                    Some(scalar(v).ok_or_else(|| err("default_database must be a string"))?)
            }
            other => {
                return Err(err(&format!(
                    "unknown key `{other}` (known: password, password_sha256_hex, networks, grants, access_management, roles, profile, default_database)"
                )))
            }
        }
    }
    spec.into_user(uname).map_err(|e| err(&e.to_string()))
}

/// `[clusters.<cname>] shards = [[1, 2], [3]]`: shards of node ids.
fn cluster_layout(name: &str, cname: &str, item: &Item) -> anyhow::Result<Vec<Vec<u64>>> {
    let bad = || {
        anyhow::anyhow!(
            "config {name}: cluster `{cname}` needs `shards = [[node ids], ...]`, e.g. [[1, 2], [3]]"
        )
    };
    let table = item.as_table_like().ok_or_else(bad)?;
    for (k, _) in table.iter() {
        if k != "shards" {
            anyhow::bail!("config {name}: cluster `{cname}`: unknown key `{k}` (known: shards)");
        }
    }
    let shards = table
        .get("shards")
        .and_then(|s| s.as_array())
        .ok_or_else(bad)?;
    let mut out = Vec::new();
    for shard in shards.iter() {
        let replicas = shard.as_array().ok_or_else(bad)?;
        let mut ids = Vec::new();
        for r in replicas.iter() {
            match r.as_integer() {
                Some(id) if id >= 1 => ids.push(id as u64),
                Some(id) => anyhow::bail!(
                    "config {name}: cluster `{cname}`: node ids are integers from 1, not {id}"
                ),
                None => {
                    anyhow::bail!("config {name}: cluster `{cname}`: node ids are integers from 1")
                }
            }
        }
        if ids.is_empty() {
            return Err(bad());
        }
        out.push(ids);
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

fn scalar(item: &Item) -> Option<String> {
    match item.as_value()? {
        Value::String(s) => Some(s.value().clone()),
        Value::Integer(i) => Some(i.value().to_string()),
        Value::Boolean(b) => Some(if *b.value() { "1" } else { "0" }.to_string()),
        Value::Float(f) => Some(f.value().to_string()),
        _ => None,
    }
}

fn switch(v: &str) -> anyhow::Result<bool> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => anyhow::bail!("true or false expected, not {v:?}"),
    }
}

fn set(a: &mut ServerArgs, key: &str, v: &str) -> anyhow::Result<()> {
    let num = |v: &str| v.parse::<u64>().map_err(|e| anyhow::anyhow!("{e}"));
    let opt = |v: &str| (!v.is_empty()).then(|| v.to_string());
    match key {
        "data_dir" => a.data_dir = v.into(),
        "host" => a.host = v.to_string(),
        "port" => a.port = u16::try_from(num(v)?)?,
        "http_port" => a.http_port = u16::try_from(num(v)?)?,
        "node_id" => a.node_id = u32::try_from(num(v)?)?,
        "node_id_from_hostname" => a.node_id_from_hostname = switch(v)?,
        "interserver_port" => a.interserver_port = u16::try_from(num(v)?)?,
        "advertise" => a.advertise = opt(v),
        "peers" => a.peers = v.to_string(),
        "raft_heartbeat_ms" => a.raft_heartbeat_ms = num(v)?,
        "raft_election_timeout_ms" => a.raft_election_timeout_ms = num(v)?,
        "raft_snapshot_logs" => a.raft_snapshot_logs = num(v)?,
        "raft_keep_logs" => a.raft_keep_logs = num(v)?,
        "lease_ttl_ms" => a.lease_ttl_ms = num(v)?,
        "coordinator_write_timeout_ms" => a.coordinator_write_timeout_ms = num(v)?,
        "cluster_secret" => a.cluster_secret = opt(v),
        "tls_cert_file" => a.tls_cert_file = opt(v).map(Into::into),
        "tls_key_file" => a.tls_key_file = opt(v).map(Into::into),
        "secure_port" => a.secure_port = opt(v).map(|p| p.parse()).transpose()?,
        "https_port" => a.https_port = opt(v).map(|p| p.parse()).transpose()?,
        "tls_only" => a.tls_only = switch(v)?,
        "tls_ca_file" => a.tls_ca_file = opt(v).map(Into::into),
        "interserver_tls" => a.interserver_tls = switch(v)?,
        "replica" => a.replica = opt(v),
        "shard" => a.shard = opt(v),
        other => anyhow::bail!("no such option {other}"),
    }
    Ok(())
}

/// Whether `--flag` (for config key `key`) is on this process's command line.
pub fn flag_given(key: &str) -> bool {
    let flag = format!("--{}", key.replace('_', "-"));
    std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn defaults() -> ServerArgs {
        Cli::parse_from(["quorumhouse"]).server
    }

    #[test]
    fn the_default_config_parses_to_the_flag_defaults() {
        let mut a = defaults();
        let extra = apply_text(&default_config(), "default", &mut a, &|_| false).unwrap();
        assert_eq!(format!("{a:?}"), format!("{:?}", defaults()));
        assert_eq!(extra, NodeConfig::default());
        // Every option is documented in docs/configuration.md.
        let doc = include_str!("../../../docs/configuration.md");
        for o in OPTIONS {
            assert!(
                doc.contains(&format!("{} =", o.key)),
                "{} undocumented",
                o.key
            );
        }
    }

    #[test]
    fn every_server_flag_is_a_config_key_with_the_same_default() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let mut flags: Vec<(String, String)> = cmd
            .get_arguments()
            .filter(|a| !["config", "print_default_config", "help"].contains(&a.get_id().as_str()))
            .map(|a| {
                let default = match a.get_default_values().first() {
                    Some(v) => v.to_string_lossy().to_string(),
                    // A switch: off unless given.
                    None if !a.get_action().takes_values() => "false".to_string(),
                    None => String::new(),
                };
                (a.get_id().to_string(), default)
            })
            .collect();
        flags.sort();
        let mut keys: Vec<(String, String)> = OPTIONS
            .iter()
            .map(|o| (o.key.to_string(), o.default.to_string()))
            .collect();
        keys.sort();
        assert_eq!(flags, keys);
    }

    #[test]
    fn options_apply_unless_given_as_flags_and_typos_are_named() {
        let mut a = defaults();
        let text = "port = 9500\nshard = \"2\"\nreplica = \"r1\"\n[profiles.default]\ninsert_quorum = 2\nselect_sequential_consistency = true\n[macros]\nlayer = \"prod\"\n[clusters.two]\nshards = [[1, 2], [3]]\n";
        let extra = apply_text(text, "t", &mut a, &|k| k == "shard").unwrap();
        let profile = extra.profile;
        assert_eq!(a.port, 9500);
        assert_eq!(a.shard, None, "the flag wins");
        assert_eq!(extra.macros["layer"], "prod");
        assert_eq!(extra.clusters["two"], vec![vec![1, 2], vec![3]]);
        let e = apply_text(
            "[clusters.c]\nshards = [[0]]\n",
            "t",
            &mut defaults(),
            &|_| false,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("node ids are integers from 1"),
            "{e}"
        );
        let e = apply_text(
            "[clusters.c]\nshard = [[1]]\n",
            "t",
            &mut defaults(),
            &|_| false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown key `shard`"), "{e}");
        for (text, says) in [
            ("[users.u]\npasword = \"x\"\n", "unknown key `pasword`"),
            ("[users.u]\nnetworks = \"::1\"\n", "networks must be a list"),
            ("[users.u]\ngrants = [\"SELECT db.t\"]\n", "SELECT db.t"),
            (
                "[users.u]\npassword_sha256_hex = \"abc\"\n",
                "64 hexadecimal",
            ),
        ] {
            let e = apply_text(text, "t", &mut defaults(), &|_| false).unwrap_err();
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
        let users = apply_text(
            "[users.etl]\npassword = \"pw\"\ngrants = [\"SELECT ON db.*\"]\n",
            "t",
            &mut defaults(),
            &|_| false,
        )
        .unwrap()
        .users;
        assert_eq!(users.len(), 1);
        assert!(users[0].read_only && users[0].admits("pw", None));
        assert_eq!(a.replica.as_deref(), Some("r1"));
        assert_eq!(profile.get("insert_quorum"), Some("2"));
        assert_eq!(profile.get("select_sequential_consistency"), Some("1"));
        let e = apply_text("prot = 9500\n", "t", &mut defaults(), &|_| false).unwrap_err();
        assert!(e.to_string().contains("unknown key `prot`"), "{e}");
        let e = apply_text("port = \"x\"\n", "t", &mut defaults(), &|_| false).unwrap_err();
        assert!(e.to_string().contains("`port` must be a number"), "{e}");
        let e = apply_text("port = 99999\n", "t", &mut defaults(), &|_| false).unwrap_err();
        assert!(e.to_string().contains("`port`"), "{e}");
        let e =
            apply_text("[profiles.web]\nx = 1\n", "t", &mut defaults(), &|_| false).unwrap_err();
        assert!(e.to_string().contains("unknown profile `web`"), "{e}");
        let e = apply_text(
            "[profiles.default]\ninsert_qourum = 2\n",
            "t",
            &mut defaults(),
            &|_| false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("insert_qourum is neither"), "{e}");
    }
}
