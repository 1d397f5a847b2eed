//! `remote('addresses', db, table)`: a Distributed table over servers the
//! query names, for one query. The addresses are quorumhouse servers' client
//! (or interserver) ports, which both serve the shard stage API; the
//! structure is this node's copy of the table if it has one, else the first
//! server's that answers.

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::error::{DataFusionError, Result as DFResult};
use qh_proto::interserver::query_client::QueryClient;
use qh_proto::interserver::DescribeTableRequest;
use qh_types::ErrorCode;

use super::scan::{ext, name_args, provider_over, Source};
use super::{order_replicas, Shard, ShardReplica};
use crate::error::QueryError;
use crate::provider::QueryContext;

/// A server's port when the address names none (ClickHouse's native port).
const DEFAULT_PORT: u16 = 9000;
/// As ClickHouse's `table_function_remote_max_addresses`.
const MAX_ADDRESSES: usize = 1000;

#[derive(Debug)]
pub struct RemoteFunction {
    pub ctx: Arc<QueryContext>,
}

fn bad(code: ErrorCode, why: String) -> DataFusionError {
    ext(QueryError::other(code, why))
}

impl TableFunctionImpl for RemoteFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let names = name_args(&args, "remote")?;
        let (spec, db, table) = match names.as_slice() {
            [a, t] => match t.split_once('.') {
                Some((d, t)) => (a.clone(), d.to_string(), t.to_string()),
                None => (a.clone(), self.ctx.database.clone(), t.clone()),
            },
            // With a user and password: there is no access control yet.
            [a, d, t] | [a, d, t, _] | [a, d, t, _, _] => (a.clone(), d.clone(), t.clone()),
            _ => {
                return Err(bad(
                    ErrorCode::NUMBER_OF_ARGUMENTS_DOESNT_MATCH,
                    "Table function 'remote' requires from 2 to 5 parameters: addresses, database, table[, user[, password]]".into(),
                ))
            }
        };
        let layout = parse_addresses(&spec).map_err(|why| bad(ErrorCode::BAD_ARGUMENTS, why))?;
        let mut shards = Vec::with_capacity(layout.len());
        for (i, addresses) in layout.into_iter().enumerate() {
            let mut replicas: Vec<ShardReplica> = addresses
                .into_iter()
                .map(|address| ShardReplica {
                    node: 0,
                    address,
                    local: false,
                    active: true,
                })
                .collect();
            let seed = xxhash_rust::xxh3::xxh3_64(format!("{}/{i}", self.ctx.query_id).as_bytes());
            let balancing = self.ctx.settings.value_or_default("load_balancing");
            order_replicas(&mut replicas, &balancing, seed, false).map_err(ext)?;
            shards.push(Shard {
                number: i as u32 + 1,
                replicas,
            });
        }
        let schema = match self.ctx.catalog.table(&db, &table) {
            Ok(local) => local.meta().arrow_schema(),
            Err(_) => describe(&self.ctx, &shards, &db, &table)?,
        };
        provider_over(
            &self.ctx,
            Source {
                cluster: format!("remote('{spec}')"),
                database: db,
                table,
                schema,
                final_: false,
                all_replicas: false,
                sharding_key: None,
            },
            shards,
        )
    }
}

/// The table's columns from the first server that answers.
fn describe(ctx: &QueryContext, shards: &[Shard], db: &str, table: &str) -> DFResult<SchemaRef> {
    let repl = ctx.replication.clone().ok_or_else(|| {
        bad(
            ErrorCode::NOT_IMPLEMENTED,
            "remote() needs a server (quorumhouse server / cluster up), not quorumhouse local"
                .into(),
        )
    })?;
    let handle = tokio::runtime::Handle::try_current()
        .ok()
        .filter(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        .ok_or_else(|| {
            bad(
                ErrorCode::NOT_IMPLEMENTED,
                "remote() of a table this node does not have needs the server's runtime".into(),
            )
        })?;
    let addresses: Vec<String> = shards
        .iter()
        .flat_map(|s| s.replicas.iter().map(|r| r.address.clone()))
        .collect();
    let (db, table) = (db.to_string(), table.to_string());
    // Planning is synchronous here; the one round trip runs on this worker.
    tokio::task::block_in_place(|| {
        handle.block_on(async {
            let mut reasons = Vec::new();
            for address in &addresses {
                let answer = async {
                    let channel = repl.channel(address).map_err(|e| e.to_string())?;
                    let reply = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        QueryClient::new(channel).describe_table(DescribeTableRequest {
                            database: db.clone(),
                            table: table.clone(),
                        }),
                    )
                    .await
                    .map_err(|_| "no answer within 10 s".to_string())?
                    .map_err(|s| s.message().to_string())?
                    .into_inner();
                    Ok::<_, String>(reply)
                }
                .await;
                match answer {
                    Ok(reply) => {
                        if let Some(x) = reply.exception {
                            let code =
                                ErrorCode::from_i32(x.code).unwrap_or(ErrorCode::LOGICAL_ERROR);
                            return Err(bad(code, format!("{address}: {}", x.message)));
                        }
                        let reader = StreamReader::try_new(Cursor::new(reply.schema), None)?;
                        return Ok(reader.schema());
                    }
                    Err(why) => reasons.push(format!("{address}: {why}")),
                }
            }
            Err(bad(
                ErrorCode::ALL_CONNECTION_TRIES_FAILED,
                format!(
                    "All connection tries failed while reading the structure of {db}.{table}: {}",
                    reasons.join("; ")
                ),
            ))
        })
    })
}

/// ClickHouse's address expression: shards separated by commas; in braces
/// `{a,b}` and `{n..m}` make one shard per value, `{a|b}` (or `a|b`) one
/// shard with these replicas. A host without a port gets 9000.
pub fn parse_addresses(spec: &str) -> Result<Vec<Vec<String>>, String> {
    let mut shards = Vec::new();
    for piece in split_top(spec, ',') {
        let piece = piece.trim();
        if piece.is_empty() {
            return Err(format!("Empty address in remote('{spec}')"));
        }
        match braces(piece)? {
            None => shards.push(piece.split('|').map(with_port).collect()),
            Some((head, inner, tail)) if inner.contains('|') => shards.push(
                inner
                    .split('|')
                    .map(|alt| with_port(&format!("{head}{alt}{tail}")))
                    .collect(),
            ),
            Some((head, inner, tail)) => {
                for v in expand(inner)? {
                    shards.push(vec![with_port(&format!("{head}{v}{tail}"))]);
                    if shards.len() > MAX_ADDRESSES {
                        return Err(format!(
                            "remote() names more than {MAX_ADDRESSES} addresses"
                        ));
                    }
                }
            }
        }
    }
    if shards.len() > MAX_ADDRESSES {
        return Err(format!(
            "remote() names more than {MAX_ADDRESSES} addresses"
        ));
    }
    Ok(shards)
}

/// `s` split at `sep` outside braces.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The one brace group of `piece`: (before, inside, after).
fn braces(piece: &str) -> Result<Option<(&str, &str, &str)>, String> {
    let Some(open) = piece.find('{') else {
        return Ok(None);
    };
    let close = piece[open..]
        .find('}')
        .map(|c| c + open)
        .ok_or_else(|| format!("Unclosed brace in address '{piece}'"))?;
    if piece[close + 1..].contains('{') {
        return Err(format!(
            "Only one brace group per address is supported: '{piece}'"
        ));
    }
    Ok(Some((
        &piece[..open],
        &piece[open + 1..close],
        &piece[close + 1..],
    )))
}

/// `a,b,c` or `n..m` (zero-padded like `n` when it has leading zeros).
fn expand(inner: &str) -> Result<Vec<String>, String> {
    let Some((from, to)) = inner.split_once("..") else {
        return Ok(inner.split(',').map(|v| v.trim().to_string()).collect());
    };
    let bad = || format!("Bad range {{{inner}}} in an address");
    let (a, b) = (
        from.trim().parse::<u64>().map_err(|_| bad())?,
        to.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if b < a || b - a >= MAX_ADDRESSES as u64 {
        return Err(bad());
    }
    let width = if from.trim().starts_with('0') {
        from.trim().len()
    } else {
        0
    };
    Ok((a..=b).map(|v| format!("{v:0width$}")).collect())
}

fn with_port(address: &str) -> String {
    let a = address.trim();
    if a.rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        a.to_string()
    } else {
        format!("{a}:{DEFAULT_PORT}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_patterns_make_shards_and_replicas() {
        assert_eq!(
            parse_addresses("a:1,b").unwrap(),
            vec![vec!["a:1".to_string()], vec!["b:9000".to_string()]]
        );
        assert_eq!(
            parse_addresses("h-{01..03}:7").unwrap(),
            vec![
                vec!["h-01:7".to_string()],
                vec!["h-02:7".to_string()],
                vec!["h-03:7".to_string()]
            ]
        );
        assert_eq!(
            parse_addresses("h{1|2}:7, x|y:5").unwrap(),
            vec![
                vec!["h1:7".to_string(), "h2:7".to_string()],
                vec!["x:9000".to_string(), "y:5".to_string()]
            ]
        );
        assert_eq!(parse_addresses("{a,b}").unwrap().len(), 2);
        assert!(parse_addresses("h{1..").is_err());
        assert!(parse_addresses("h{1..5000}").is_err());
        assert!(parse_addresses("a,,b").is_err());
    }
}
