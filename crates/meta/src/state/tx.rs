//! A transaction in progress: every mutation of [`MetaState`] goes through
//! [`Tx`], which records its inverse so a refused op rolls back the ops of
//! the same request that already ran.

use super::*;

type Undo = Vec<Box<dyn FnOnce(&mut MetaState) + Send>>;

pub(super) struct Tx<'a> {
    pub(super) s: &'a mut MetaState,
    undo: Undo,
}

macro_rules! journaled_set {
    ($name:ident, $field:ident, $k:ty, $v:ty) => {
        pub(super) fn $name(&mut self, key: $k, val: Option<$v>) -> Option<$v> {
            let old = match val {
                Some(v) => self.s.$field.insert(key.clone(), v),
                None => self.s.$field.remove(&key),
            };
            let restore = old.clone();
            self.undo.push(Box::new(move |s: &mut MetaState| {
                match restore {
                    Some(v) => s.$field.insert(key, v),
                    None => s.$field.remove(&key),
                };
            }));
            old
        }
    };
}

macro_rules! journaled_flag {
    ($name:ident, $field:ident) => {
        pub(super) fn $name(&mut self, key: String, present: bool) {
            let was = if present {
                !self.s.$field.insert(key.clone())
            } else {
                self.s.$field.remove(&key)
            };
            self.undo.push(Box::new(move |s: &mut MetaState| {
                if was {
                    s.$field.insert(key);
                } else {
                    s.$field.remove(&key);
                }
            }));
        }
    };
}

impl<'a> Tx<'a> {
    pub(super) fn new(s: &'a mut MetaState) -> Self {
        Tx {
            s,
            undo: Vec::new(),
        }
    }

    journaled_set!(set_table, tables, String, TableMeta);
    journaled_set!(set_log, log, String, LogEntry);
    journaled_set!(set_part, parts, String, PartMeta);
    journaled_set!(set_dedup, dedup, String, DedupBlock);
    journaled_set!(set_dedup_order, dedup_order, String, String);
    journaled_set!(set_lease, leases, NodeId, Lease);
    journaled_set!(set_ddl, ddl, u64, DdlTask);
    journaled_set!(set_kv, kv, String, String);
    journaled_set!(set_committed_stage, committed_stages, String, u64);
    journaled_flag!(set_stage_expiry, stage_expiry);
    journaled_flag!(set_database, databases);

    pub(super) fn set_next_ddl(&mut self, next: u64) {
        let old = std::mem::replace(&mut self.s.next_ddl, next);
        self.undo
            .push(Box::new(move |s: &mut MetaState| s.next_ddl = old));
    }

    /// A copy of `table`'s record, to change and put back with `set_table`.
    pub(super) fn table(&self, table: &str) -> ApplyResult<TableMeta> {
        self.s
            .tables
            .get(table)
            .cloned()
            .ok_or_else(|| ApplyError::TableMissing(table.to_string()))
    }

    pub(super) fn rollback(self) {
        let Tx { s, undo } = self;
        for f in undo.into_iter().rev() {
            f(s);
        }
    }
}
