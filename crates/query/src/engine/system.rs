//! `SYSTEM ...` commands and `KILL QUERY`.

use datafusion::sql::sqlparser::ast::{Expr, SetExpr};

use super::*;

impl Session {
    /// `KILL QUERY WHERE <predicate> [SYNC|ASYNC|TEST]`: the predicate is
    /// evaluated over `system.processes`; the matching statements (not this
    /// one) are asked to stop. SYNC waits (bounded) until they stopped.
    pub(super) async fn kill_query(
        &mut self,
        predicate: Expr,
        mode: KillMode,
        format: Option<String>,
        own_id: &str,
    ) -> Result<QueryResult> {
        // The parsed predicate goes into a fixed query; no text is built.
        let template = "SELECT query_id, query FROM system.processes";
        let Statement::Select {
            mut query,
            final_tables,
            ..
        } = parse_statement(template)?
        else {
            return Err(QueryError::other(
                ErrorCode::LOGICAL_ERROR,
                "the KILL QUERY template is not a SELECT",
            ));
        };
        match query.body.as_mut() {
            SetExpr::Select(select) => select.selection = Some(predicate),
            _ => {
                return Err(QueryError::other(
                    ErrorCode::LOGICAL_ERROR,
                    "the KILL QUERY template is not a plain SELECT",
                ))
            }
        }
        let settings = self.settings.clone();
        let (_, batches, _) = self.run_query(*query, final_tables, &settings).await?;
        let mut found: Vec<(String, String)> = Vec::new();
        for b in &batches {
            let ids = b.column(0).as_any().downcast_ref::<StringArray>();
            let texts = b.column(1).as_any().downcast_ref::<StringArray>();
            if let (Some(ids), Some(texts)) = (ids, texts) {
                for r in 0..b.num_rows() {
                    if ids.value(r) != own_id {
                        found.push((ids.value(r).to_string(), texts.value(r).to_string()));
                    }
                }
            }
        }
        let list = Arc::clone(&self.engine.processes);
        let mut status = Vec::with_capacity(found.len());
        for (id, _) in &found {
            let s = match mode {
                KillMode::Test => "waiting",
                _ if !list.kill(id) => "finished",
                KillMode::Async => "waiting",
                KillMode::Sync => {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while list.is_running(id) && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    if list.is_running(id) {
                        "waiting"
                    } else {
                        "finished"
                    }
                }
            };
            status.push(s);
        }
        result_of(
            vec![
                ("kill_status", DataType::Utf8),
                ("query_id", DataType::Utf8),
                ("user", DataType::Utf8),
                ("query", DataType::Utf8),
            ],
            vec![
                Arc::new(StringArray::from(status)) as ArrayRef,
                Arc::new(StringArray::from(
                    found.iter().map(|f| f.0.clone()).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(vec!["default"; found.len()])),
                Arc::new(StringArray::from(
                    found.iter().map(|f| f.1.clone()).collect::<Vec<_>>(),
                )),
            ],
            format,
        )
    }

    /// `SYSTEM ...`: merges, coordinator membership, replica commands.
    pub(super) async fn system(&self, cmd: SystemCommand) -> Result<QueryResult> {
        match cmd {
            SystemCommand::Nothing => {}
            SystemCommand::Merges { stop, table } => {
                let tables = match table {
                    Some(t) => vec![self.resolve(&t)?],
                    None => {
                        let cat = &self.engine.catalog;
                        cat.databases()
                            .iter()
                            .flat_map(|d| cat.tables(d).unwrap_or_default())
                            .map(|t| self.engine.table_of(t))
                            .collect()
                    }
                };
                for t in tables {
                    t.set_merges_stopped(stop);
                }
            }
            SystemCommand::AddNode { id, addr } => {
                self.coordinator_for_membership()?
                    .add_node(id, addr)
                    .await
                    .map_err(membership_error)?;
            }
            SystemCommand::RemoveNode { id } => {
                self.coordinator_for_membership()?
                    .remove_node(id)
                    .await
                    .map_err(membership_error)?;
            }
            SystemCommand::SyncReplica(t) => {
                self.replica_named(&t)?.sync(self.sync_timeout()).await?;
            }
            SystemCommand::RestartReplica(t) => self.replica_named(&t)?.restart(),
            SystemCommand::Fetches { stop, table } => {
                for r in self.replicas_named(table.as_ref())? {
                    r.set_fetches_stopped(stop);
                }
            }
            SystemCommand::ReplicationQueues { stop, table } => {
                for r in self.replicas_named(table.as_ref())? {
                    r.set_queue_stopped(stop);
                }
            }
        }
        Ok(QueryResult::empty())
    }

    /// `SYSTEM ADD|REMOVE NODE` needs the built-in coordinator.
    pub(super) fn coordinator_for_membership(&self) -> Result<Arc<qh_meta::Coordinator>> {
        self.engine.coordinator.clone().ok_or_else(|| {
            QueryError::BadArguments("this node has no coordinator (quorumhouse local)".into())
        })
    }

    /// The replica of the table `t` names (`SYSTEM SYNC REPLICA t`, ...).
    pub(super) fn replica_named(&self, t: &TableRef) -> Result<Arc<Replica>> {
        self.engine.replication_for("SYSTEM ... REPLICA")?;
        let table = self.resolve(t)?;
        table.replica().cloned().ok_or_else(|| {
            QueryError::other(
                ErrorCode::BAD_ARGUMENTS,
                format!("Table {} is not replicated", t.name),
            )
        })
    }

    /// The replica of `t`, or every replica of the node without a table.
    pub(super) fn replicas_named(&self, t: Option<&TableRef>) -> Result<Vec<Arc<Replica>>> {
        match t {
            Some(t) => Ok(vec![self.replica_named(t)?]),
            None => Ok(self
                .engine
                .replication_for("SYSTEM ... REPLICA")?
                .replicas()),
        }
    }
}

pub(super) fn membership_error(e: impl std::fmt::Display) -> QueryError {
    QueryError::other(ErrorCode::KEEPER_EXCEPTION, e.to_string())
}

pub(super) fn like_match(pattern: &str, s: &str) -> bool {
    pub(super) fn go(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('%'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some('_'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    go(&p, &s)
}
