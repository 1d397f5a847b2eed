//! A MergeTree table: its directory, its set of active parts, inserts and
//! merges.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use parking_lot::{Mutex, RwLock};
use qh_types::PartName;
use tracing::{debug, info, warn};

use crate::error::{Result, StorageError};
use crate::fsutil::sync_dir;
use crate::keys::{sort_batch, split_by_partition, KeyEvaluator};
use crate::merge::{merge_rows, select_merge};
use crate::meta::TableMeta;
use crate::part::{write_part, Part, PartColumn, PreparedPart};

pub const TABLE_META_FILE: &str = "table.json";

/// Table subdirectory of staged (uncommitted) parts.
pub const STAGING_DIR: &str = "staging";

/// A MergeTree table on disk.
#[derive(Debug)]
pub struct MergeTreeTable {
    dir: PathBuf,
    meta: RwLock<TableMeta>,
    keys: RwLock<Arc<dyn KeyEvaluator>>,
    parts: RwLock<BTreeMap<PartName, Arc<Part>>>,
    /// Parts replaced by a merge; deleted once no reader holds them.
    outdated: Mutex<Vec<Arc<Part>>>,
    next_block: AtomicU64,
    tmp_counter: AtomicU64,
    /// Serialises merges of this table (background and OPTIMIZE).
    merge_lock: Mutex<()>,
    /// Serialises moving staged parts into place.
    attach_lock: Mutex<()>,
    dropped: AtomicBool,
    /// `SYSTEM STOP MERGES`: background merges skip this table.
    merges_stopped: AtomicBool,
}

impl MergeTreeTable {
    /// Creates the directory and metadata of a new table.
    pub fn create(dir: &Path, meta: TableMeta, keys: Arc<dyn KeyEvaluator>) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        meta.store(&dir.join(TABLE_META_FILE))?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Self::with_parts(dir, meta, keys, BTreeMap::new())
    }

    /// Opens an existing table: removes `tmp_*` leftovers of a crash, loads
    /// the parts, and drops parts covered by a merged part that was already
    /// durable when the process stopped.
    pub fn open(
        dir: &Path,
        make_keys: &dyn Fn(&TableMeta) -> Result<Arc<dyn KeyEvaluator>>,
    ) -> Result<Self> {
        let meta = TableMeta::load(&dir.join(TABLE_META_FILE))?;
        let keys = make_keys(&meta)?;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
            let entry = entry.map_err(|e| StorageError::io(dir, e))?;
            let fname = entry.file_name().to_string_lossy().to_string();
            let path = entry.path();
            if !path.is_dir() || fname == "detached" || fname == STAGING_DIR {
                continue;
            }
            if fname.starts_with("tmp_") || fname.starts_with("delete_tmp_") {
                info!(part = %fname, "removing leftover temporary part");
                fs::remove_dir_all(&path).map_err(|e| StorageError::io(&path, e))?;
                continue;
            }
            match fname.parse::<PartName>() {
                Ok(name) => found.push(name),
                Err(_) => warn!(dir = %path.display(), "ignoring unexpected directory"),
            }
        }
        let mut parts = BTreeMap::new();
        for name in &found {
            if let Some(cover) = found.iter().find(|o| o.covers(name)) {
                info!(part = %name, covered_by = %cover, "removing part covered by a merged part");
                let p = dir.join(name.to_string());
                fs::remove_dir_all(&p).map_err(|e| StorageError::io(&p, e))?;
                continue;
            }
            let part = Part::load(&dir.join(name.to_string()), name.clone())?;
            parts.insert(name.clone(), Arc::new(part));
        }
        Self::with_parts(dir, meta, keys, parts)
    }

    fn with_parts(
        dir: &Path,
        meta: TableMeta,
        keys: Arc<dyn KeyEvaluator>,
        parts: BTreeMap<PartName, Arc<Part>>,
    ) -> Result<Self> {
        let next = parts.keys().map(|p| p.max_block).max().unwrap_or(0) + 1;
        Ok(MergeTreeTable {
            dir: dir.to_path_buf(),
            meta: RwLock::new(meta),
            keys: RwLock::new(keys),
            parts: RwLock::new(parts),
            outdated: Mutex::new(Vec::new()),
            next_block: AtomicU64::new(next),
            tmp_counter: AtomicU64::new(0),
            merge_lock: Mutex::new(()),
            attach_lock: Mutex::new(()),
            dropped: AtomicBool::new(false),
            merges_stopped: AtomicBool::new(false),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> TableMeta {
        self.meta.read().clone()
    }

    /// The ids of the partitions `batch`'s rows fall into.
    pub fn partition_ids(&self, batch: &RecordBatch) -> Result<Vec<String>> {
        let pkey = self.keys().partition_key(batch)?;
        Ok(split_by_partition(batch, pkey)?
            .into_iter()
            .map(|(p, _)| p.id)
            .collect())
    }

    pub fn keys(&self) -> Arc<dyn KeyEvaluator> {
        Arc::clone(&self.keys.read())
    }

    /// Replaces the table definition (ALTER); durable before it returns.
    pub fn alter(&self, meta: TableMeta, keys: Arc<dyn KeyEvaluator>) -> Result<()> {
        let _m = self.merge_lock.lock();
        meta.store(&self.dir.join(TABLE_META_FILE))?;
        *self.meta.write() = meta;
        *self.keys.write() = keys;
        Ok(())
    }

    /// A consistent snapshot of the active parts, in name order.
    pub fn active_parts(&self) -> Vec<Arc<Part>> {
        self.parts.read().values().cloned().collect()
    }

    /// Parts replaced by merges but still on disk because a reader holds them.
    pub fn outdated_parts(&self) -> Vec<Arc<Part>> {
        self.outdated.lock().clone()
    }

    pub fn begin_insert(self: &Arc<Self>) -> InsertTxn {
        InsertTxn {
            table: Arc::clone(self),
            prepared: Vec::new(),
        }
    }

    fn tmp_dir(&self, what: &str) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("tmp_{what}_{}_{n}", std::process::id()))
    }

    fn part_columns(meta: &TableMeta) -> Vec<PartColumn> {
        meta.columns
            .iter()
            .map(|c| PartColumn {
                name: c.name.clone(),
                ty: c.ty.clone(),
                codec: c.codec.clone(),
            })
            .collect()
    }

    /// Merges one window of parts chosen by the size-tiered policy. Returns
    /// whether it merged anything. Does nothing while another merge of this
    /// table runs.
    pub fn merge_once(&self) -> Result<bool> {
        // A replicated table merges only what its replication log assigns.
        if self.merges_stopped.load(Ordering::Acquire) || self.is_replicated() {
            return Ok(false);
        }
        let Some(_guard) = self.merge_lock.try_lock() else {
            return Ok(false);
        };
        let mut by_partition: BTreeMap<String, Vec<Arc<Part>>> = BTreeMap::new();
        for p in self.active_parts() {
            by_partition
                .entry(p.name.partition_id.clone())
                .or_default()
                .push(p);
        }
        for parts in by_partition.values_mut() {
            parts.sort_by_key(|p| p.name.min_block);
            if let Some(window) = select_merge(parts) {
                self.merge_parts(&window)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `OPTIMIZE TABLE ... [PARTITION p] [FINAL]`: merges the parts of each
    /// (or the given) partition into one. With `final_`, a partition that is
    /// already one part is rewritten too (ReplacingMergeTree collapses it).
    pub fn optimize(&self, partition_id: Option<&str>, final_: bool) -> Result<()> {
        let _guard = self.merge_lock.lock();
        let mut by_partition: BTreeMap<String, Vec<Arc<Part>>> = BTreeMap::new();
        for p in self.active_parts() {
            if partition_id.is_some_and(|id| id != p.name.partition_id) {
                continue;
            }
            by_partition
                .entry(p.name.partition_id.clone())
                .or_default()
                .push(p);
        }
        for (_, mut parts) in by_partition {
            parts.sort_by_key(|p| p.name.min_block);
            if parts.len() >= 2 || (final_ && parts.len() == 1) {
                self.merge_parts(&parts)?;
            }
        }
        // The sources are no longer referenced here: delete them now.
        self.cleanup_outdated();
        Ok(())
    }

    /// Merges `parts` (one partition, adjacent, sorted by block) into one.
    /// The caller holds `merge_lock`.
    fn merge_parts(&self, parts: &[Arc<Part>]) -> Result<()> {
        let names: Vec<&PartName> = parts.iter().map(|p| &p.name).collect();
        let Some(new_name) = PartName::merged(&names) else {
            return Ok(());
        };
        self.merge_parts_into(parts, new_name).map(|_| ())
    }

    /// Merges `parts` into a part called `new_name`; the caller holds `merge_lock`.
    fn merge_parts_into(&self, parts: &[Arc<Part>], new_name: PartName) -> Result<Arc<Part>> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(StorageError::ShutDown(self.dir.display().to_string()));
        }
        let meta = self.meta();
        let keys = self.keys();
        let schema = meta.arrow_schema();
        let defaults = keys.column_defaults();
        let mut batches = Vec::with_capacity(parts.len());
        for p in parts {
            batches.push(p.read_all(&schema, &defaults)?);
        }
        let merged = merge_rows(&meta, keys.as_ref(), batches, false)?;
        let tmp = self.tmp_dir("merge");
        let prepared = write_part(
            &tmp,
            &merged,
            &Self::part_columns(&meta),
            &meta.index_columns,
            &meta.part_format(),
            crate::part::PartitionInfo {
                id: new_name.partition_id.clone(),
                value: parts[0].partition.clone(),
            },
        );
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        // The merged part is durable before any source goes away.
        let new_part = Arc::new(prepared.commit(&self.dir, new_name.clone())?);
        {
            let mut active = self.parts.write();
            for p in parts {
                active.remove(&p.name);
            }
            active.insert(new_name.clone(), Arc::clone(&new_part));
        }
        debug!(table = %self.dir.display(), part = %new_name, sources = parts.len(), "merged parts");
        self.outdated.lock().extend(parts.iter().cloned());
        self.cleanup_outdated();
        Ok(new_part)
    }

    pub fn is_replicated(&self) -> bool {
        self.meta.read().replicated.is_some()
    }

    /// The active part called `name`, or an active part covering it.
    pub fn part_or_covering(&self, name: &PartName) -> Option<Arc<Part>> {
        let parts = self.parts.read();
        if let Some(p) = parts.get(name) {
            return Some(Arc::clone(p));
        }
        parts.values().find(|p| p.name.covers(name)).cloned()
    }

    /// A directory for a part being received from another replica.
    pub fn fetch_dir(&self, name: &PartName) -> PathBuf {
        self.tmp_dir(&format!("fetch_{name}"))
    }

    /// Renames a written part to its final name without making it visible
    /// (the replication log decides when it becomes active).
    /// Where staged parts of quorum inserts wait for their commit (owned by
    /// the replication layer).
    pub fn staging_dir(&self) -> PathBuf {
        self.dir.join(STAGING_DIR)
    }

    /// Moves a staged part (its insert committed as `name`) into place and
    /// makes it active. Not serialised with merges: a freshly committed
    /// block cannot be covered by a merge in progress (the coordinator only
    /// assigns merges of parts it already recorded), so an insert never
    /// waits for a merge to finish.
    /// `loaded`: the part as its writer or receiver loaded it (at
    /// `staged`), so it is not read back.
    pub fn attach_staged(
        &self,
        staged: &Path,
        name: PartName,
        loaded: Option<Arc<Part>>,
    ) -> Result<Arc<Part>> {
        let _one_at_a_time = self.attach_lock.lock();
        self.move_into_place(staged, name, loaded.as_deref())
    }

    /// Makes parts visible; active parts they cover become outdated.
    pub fn activate(&self, new: Vec<Arc<Part>>) {
        let mut replaced = Vec::new();
        {
            let mut active = self.parts.write();
            for part in new {
                let covered: Vec<PartName> = active
                    .keys()
                    .filter(|n| part.name.covers(n))
                    .cloned()
                    .collect();
                for n in covered {
                    replaced.extend(active.remove(&n));
                }
                active.insert(part.name.clone(), part);
            }
        }
        if !replaced.is_empty() {
            self.outdated.lock().extend(replaced);
            self.cleanup_outdated();
        }
    }

    /// Accepts a part received into `tmp` (see [`Self::fetch_dir`]): loads it
    /// (and with `verify`, re-hashes every file against its checksums), renames
    /// it into place and activates it.
    pub fn attach_fetched(&self, tmp: &Path, name: PartName, verify: bool) -> Result<Arc<Part>> {
        let checked = Part::load(tmp, name.clone()).and_then(|p| {
            if verify {
                p.verify().map(|_| p)
            } else {
                Ok(p)
            }
        });
        let loaded = match checked {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_dir_all(tmp);
                return Err(e);
            }
        };
        // Serialised with merges and other attaches, so the covering check
        // still holds when the part is activated.
        let _guard = self.merge_lock.lock();
        self.move_into_place(tmp, name, Some(&loaded))
    }

    /// Renames a complete part at `from` to `name` and activates it, unless
    /// the part (or one covering it) is already active — concurrent fetches
    /// and activations can bring the same part: the active one wins. The
    /// caller holds the lock that serialises it with its rivals. `loaded`:
    /// the part at `from` already in memory (else it is loaded after the
    /// rename).
    fn move_into_place(
        &self,
        from: &Path,
        name: PartName,
        loaded: Option<&Part>,
    ) -> Result<Arc<Part>> {
        if let Some(p) = self.part_or_covering(&name) {
            let _ = fs::remove_dir_all(from);
            return Ok(p);
        }
        let dir = self.dir.join(name.to_string());
        if dir.exists() {
            if self.outdated.lock().iter().any(|p| p.name == name) {
                // Replaced meanwhile (dropped or merged), and a query still reads it.
                let _ = fs::remove_dir_all(from);
                return Err(StorageError::Unsupported(format!(
                    "part {name} was replaced while it was being fetched"
                )));
            }
            // A stale inactive copy (e.g. an earlier broken one): set it aside.
            self.detach_dir(&dir, &format!("ignored_{name}"))?;
        }
        fs::rename(from, &dir).map_err(|e| StorageError::io(&dir, e))?;
        sync_dir(&self.dir)?;
        let part = Arc::new(match loaded {
            Some(p) => p.clone().moved(dir, name),
            None => Part::load(&dir, name)?,
        });
        self.activate(vec![Arc::clone(&part)]);
        Ok(part)
    }

    /// Merges the active parts `sources` into `new_name` (a merge the
    /// replication log assigned). None when a source is not active here.
    pub fn merge_named(
        &self,
        sources: &[PartName],
        new_name: PartName,
    ) -> Result<Option<Arc<Part>>> {
        let _guard = self.merge_lock.lock();
        let parts: Option<Vec<Arc<Part>>> = {
            let active = self.parts.read();
            sources.iter().map(|n| active.get(n).cloned()).collect()
        };
        match parts {
            Some(parts) if !parts.is_empty() => self.merge_parts_into(&parts, new_name).map(Some),
            _ => Ok(None),
        }
    }

    /// A window of active parts worth merging (size-tiered), if any.
    pub fn select_merge(&self) -> Option<Vec<Arc<Part>>> {
        let mut by_partition: BTreeMap<String, Vec<Arc<Part>>> = BTreeMap::new();
        for p in self.active_parts() {
            by_partition
                .entry(p.name.partition_id.clone())
                .or_default()
                .push(p);
        }
        by_partition.into_values().find_map(|mut parts| {
            parts.sort_by_key(|p| p.name.min_block);
            select_merge(&parts)
        })
    }

    /// Removes the active parts of `partition` whose blocks are all at or
    /// below `max_block` (a replicated DROP PARTITION / TRUNCATE).
    pub fn drop_range(&self, partition_id: &str, max_block: u64) -> usize {
        let _guard = self.merge_lock.lock();
        let removed: Vec<Arc<Part>> = {
            let mut active = self.parts.write();
            let names: Vec<PartName> = active
                .keys()
                .filter(|n| n.partition_id == partition_id && n.max_block <= max_block)
                .cloned()
                .collect();
            names.iter().filter_map(|n| active.remove(n)).collect()
        };
        let n = removed.len();
        self.outdated.lock().extend(removed);
        self.cleanup_outdated();
        n
    }

    /// Takes an active part out of the table into `detached/<prefix>_<name>`
    /// (never deleted: an operator may want it back).
    pub fn detach_part(&self, name: &PartName, prefix: &str) -> Result<bool> {
        let Some(part) = self.parts.write().remove(name) else {
            return Ok(false);
        };
        self.detach_dir(&part.dir, &format!("{prefix}_{name}"))?;
        Ok(true)
    }

    fn detach_dir(&self, dir: &Path, as_name: &str) -> Result<()> {
        let detached = self.dir.join("detached");
        fs::create_dir_all(&detached).map_err(|e| StorageError::io(&detached, e))?;
        let mut target = detached.join(as_name);
        let mut n = 1;
        while target.exists() {
            target = detached.join(format!("{as_name}_try{n}"));
            n += 1;
        }
        fs::rename(dir, &target).map_err(|e| StorageError::io(&target, e))?;
        sync_dir(&detached)?;
        sync_dir(&self.dir)?;
        info!(part = %dir.display(), to = %target.display(), "part detached");
        Ok(())
    }

    /// Deletes replaced parts that no query holds any more.
    pub fn cleanup_outdated(&self) {
        let mut outdated = self.outdated.lock();
        outdated.retain(|p| {
            if Arc::strong_count(p) > 1 {
                return true;
            }
            let del = self.dir.join(format!("delete_tmp_{}", p.name));
            if fs::rename(&p.dir, &del).is_ok() {
                let _ = fs::remove_dir_all(&del);
            }
            false
        });
    }

    /// `SYSTEM STOP MERGES` / `START MERGES` for background merges.
    pub fn set_merges_stopped(&self, stopped: bool) {
        self.merges_stopped.store(stopped, Ordering::Release);
    }

    /// Removes the parts of one partition (`ALTER TABLE ... DROP PARTITION`).
    pub fn drop_partition(&self, partition_id: &str) -> Result<usize> {
        Ok(self.drop_range(partition_id, u64::MAX))
    }

    /// Removes every part (TRUNCATE).
    pub fn truncate(&self) -> Result<()> {
        let _guard = self.merge_lock.lock();
        let old: Vec<Arc<Part>> = std::mem::take(&mut *self.parts.write())
            .into_values()
            .collect();
        self.outdated.lock().extend(old);
        self.cleanup_outdated();
        Ok(())
    }

    /// Marks the table dropped (stops merges) and removes its directory.
    pub fn drop_data(&self) -> Result<()> {
        self.dropped.store(true, Ordering::Release);
        let _guard = self.merge_lock.lock();
        self.parts.write().clear();
        self.outdated.lock().clear();
        fs::remove_dir_all(&self.dir).map_err(|e| StorageError::io(&self.dir, e))
    }

    /// Rows of the given parts with ReplacingMergeTree's collapse applied
    /// across them, partition by partition (SELECT ... FINAL).
    pub fn read_final(&self, parts: &[Arc<Part>]) -> Result<Vec<RecordBatch>> {
        let meta = self.meta();
        let keys = self.keys();
        let schema = meta.arrow_schema();
        let defaults = keys.column_defaults();
        let mut by_partition: BTreeMap<String, Vec<Arc<Part>>> = BTreeMap::new();
        for p in parts {
            by_partition
                .entry(p.name.partition_id.clone())
                .or_default()
                .push(Arc::clone(p));
        }
        let mut out = Vec::new();
        for (_, mut ps) in by_partition {
            ps.sort_by_key(|p| p.name.min_block);
            let batches = ps
                .iter()
                .map(|p| p.read_all(&schema, &defaults))
                .collect::<Result<Vec<_>>>()?;
            out.push(merge_rows(&meta, keys.as_ref(), batches, true)?);
        }
        Ok(out)
    }
}

/// An INSERT in progress: blocks are written as hidden `tmp_` parts and all
/// become visible together at [`InsertTxn::commit`]. Dropped uncommitted, it
/// removes them, so a failed INSERT leaves nothing behind.
pub struct InsertTxn {
    table: Arc<MergeTreeTable>,
    prepared: Vec<PreparedPart>,
}

impl InsertTxn {
    /// Writes one block (rows in the table's column order and types).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let meta = self.table.meta();
        let keys = self.table.keys();
        let pkey = keys.partition_key(batch)?;
        for (partition, rows) in split_by_partition(batch, pkey)? {
            let sort_key = keys.sort_key(&rows)?;
            let sorted = sort_batch(&rows, &sort_key)?;
            let tmp = self.table.tmp_dir("insert");
            match write_part(
                &tmp,
                &sorted,
                &MergeTreeTable::part_columns(&meta),
                &meta.index_columns,
                &meta.part_format(),
                partition,
            ) {
                Ok(p) => self.prepared.push(p),
                Err(e) => {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.prepared.iter().map(PreparedPart::rows).sum()
    }

    pub fn table(&self) -> &Arc<MergeTreeTable> {
        &self.table
    }

    /// The written blocks, one per partition, for a caller that names and
    /// activates them itself (replicated tables).
    pub fn into_prepared(mut self) -> Vec<PreparedPart> {
        std::mem::take(&mut self.prepared)
    }

    /// Makes every written block visible; returns the new parts' names.
    pub fn commit(mut self) -> Result<Vec<PartName>> {
        let table = Arc::clone(&self.table);
        let prepared = std::mem::take(&mut self.prepared);
        let mut names = Vec::with_capacity(prepared.len());
        let mut loaded = Vec::with_capacity(prepared.len());
        let mut pending = prepared.into_iter();
        while let Some(p) = pending.next() {
            let block = table.next_block.fetch_add(1, Ordering::SeqCst);
            let name = PartName {
                partition_id: p.partition.id.clone(),
                min_block: block,
                max_block: block,
                level: 0,
            };
            match p.commit(&table.dir, name.clone()) {
                Ok(part) => {
                    names.push(name);
                    loaded.push(Arc::new(part));
                }
                Err(e) => {
                    for rest in pending {
                        rest.discard();
                    }
                    // Already renamed parts of this insert are removed too.
                    for part in loaded {
                        let _ = fs::remove_dir_all(&part.dir);
                    }
                    return Err(e);
                }
            }
        }
        let mut active = table.parts.write();
        for part in loaded {
            active.insert(part.name.clone(), part);
        }
        Ok(names)
    }
}

impl Drop for InsertTxn {
    fn drop(&mut self) {
        for p in self.prepared.drain(..) {
            p.discard();
        }
    }
}
