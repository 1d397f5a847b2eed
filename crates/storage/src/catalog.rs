//! Databases and tables under `<data-dir>/data/<db>/<table>/`, and the
//! background merge thread that serves them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};
use tracing::{info, info_span, warn};

use crate::error::{Result, StorageError};
use crate::fsutil::sync_dir;
use crate::keys::KeyEvaluator;
use crate::meta::TableMeta;
use crate::table::{MergeTreeTable, TABLE_META_FILE};

/// Builds the key evaluator of a table from its definition (query layer).
pub type KeysFactory = Arc<dyn Fn(&TableMeta) -> Result<Arc<dyn KeyEvaluator>> + Send + Sync>;

type Tables = BTreeMap<String, BTreeMap<String, Arc<MergeTreeTable>>>;

/// Where sessions keep their temporary tables (ClickHouse's name). Hidden
/// from [`Catalog::databases`], emptied at open: a temporary table never
/// outlives its session, let alone the process.
pub const TEMPORARY_DATABASE: &str = "_temporary_and_external_tables";

pub struct Catalog {
    root: PathBuf,
    dbs: RwLock<Tables>,
    make_keys: KeysFactory,
    /// Wakes the merge thread after an insert.
    wake: Arc<(Mutex<bool>, Condvar)>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("root", &self.root).finish()
    }
}

impl Catalog {
    /// Opens (or creates) the data directory and every table in it. The
    /// `default` database always exists.
    pub fn open(root: &Path, make_keys: KeysFactory) -> Result<Catalog> {
        fs::create_dir_all(root.join("default")).map_err(|e| StorageError::io(root, e))?;
        let temporary = root.join(TEMPORARY_DATABASE);
        if temporary.exists() {
            fs::remove_dir_all(&temporary).map_err(|e| StorageError::io(&temporary, e))?;
        }
        fs::create_dir_all(&temporary).map_err(|e| StorageError::io(&temporary, e))?;
        let mut dbs = Tables::new();
        for entry in fs::read_dir(root).map_err(|e| StorageError::io(root, e))? {
            let entry = entry.map_err(|e| StorageError::io(root, e))?;
            if !entry.path().is_dir() {
                continue;
            }
            let db = entry.file_name().to_string_lossy().to_string();
            let mut tables = BTreeMap::new();
            for t in fs::read_dir(entry.path()).map_err(|e| StorageError::io(&entry.path(), e))? {
                let t = t.map_err(|e| StorageError::io(&entry.path(), e))?;
                let dir = t.path();
                if !dir.join(TABLE_META_FILE).exists() {
                    // A CREATE that crashed before its metadata was durable.
                    if dir.is_dir() {
                        warn!(dir = %dir.display(), "removing table directory without metadata");
                        let _ = fs::remove_dir_all(&dir);
                    }
                    continue;
                }
                let table = MergeTreeTable::open(&dir, make_keys.as_ref())?;
                tables.insert(table.meta().name.clone(), Arc::new(table));
            }
            dbs.insert(db, tables);
        }
        Ok(Catalog {
            root: root.to_path_buf(),
            dbs: RwLock::new(dbs),
            make_keys,
            wake: Arc::new((Mutex::new(false), Condvar::new())),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn keys_for(&self, meta: &TableMeta) -> Result<Arc<dyn KeyEvaluator>> {
        (self.make_keys)(meta)
    }

    /// The databases a user sees (not the sessions' temporary tables).
    pub fn databases(&self) -> Vec<String> {
        self.dbs
            .read()
            .keys()
            .filter(|d| *d != TEMPORARY_DATABASE)
            .cloned()
            .collect()
    }

    pub fn has_database(&self, db: &str) -> bool {
        self.dbs.read().contains_key(db)
    }

    pub fn create_database(&self, db: &str, if_not_exists: bool) -> Result<()> {
        let mut dbs = self.dbs.write();
        if dbs.contains_key(db) {
            return if if_not_exists {
                Ok(())
            } else {
                Err(StorageError::DatabaseExists(db.into()))
            };
        }
        let dir = self.root.join(db);
        fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        sync_dir(&self.root)?;
        dbs.insert(db.to_string(), BTreeMap::new());
        Ok(())
    }

    pub fn drop_database(&self, db: &str, if_exists: bool) -> Result<()> {
        let mut dbs = self.dbs.write();
        let Some(tables) = dbs.remove(db) else {
            return if if_exists {
                Ok(())
            } else {
                Err(StorageError::UnknownDatabase(db.into()))
            };
        };
        for t in tables.values() {
            t.drop_data()?;
        }
        let dir = self.root.join(db);
        fs::remove_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        if db == "default" {
            fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
            dbs.insert(db.into(), BTreeMap::new());
        }
        Ok(())
    }

    pub fn tables(&self, db: &str) -> Result<Vec<Arc<MergeTreeTable>>> {
        self.dbs
            .read()
            .get(db)
            .map(|t| t.values().cloned().collect())
            .ok_or_else(|| StorageError::UnknownDatabase(db.into()))
    }

    pub fn table(&self, db: &str, name: &str) -> Result<Arc<MergeTreeTable>> {
        let dbs = self.dbs.read();
        let tables = dbs
            .get(db)
            .ok_or_else(|| StorageError::UnknownDatabase(db.into()))?;
        tables
            .get(name)
            .cloned()
            .ok_or_else(|| StorageError::UnknownTable(db.into(), name.into()))
    }

    /// Creates a table; with `if_not_exists` an existing one is returned.
    pub fn create_table(
        &self,
        meta: TableMeta,
        if_not_exists: bool,
    ) -> Result<Arc<MergeTreeTable>> {
        let mut dbs = self.dbs.write();
        let tables = dbs
            .get_mut(&meta.database)
            .ok_or_else(|| StorageError::UnknownDatabase(meta.database.clone()))?;
        if let Some(t) = tables.get(&meta.name) {
            return if if_not_exists {
                Ok(Arc::clone(t))
            } else {
                Err(StorageError::TableExists(
                    meta.database.clone(),
                    meta.name.clone(),
                ))
            };
        }
        let keys = (self.make_keys)(&meta)?;
        let dir = self
            .root
            .join(&meta.database)
            .join(crate::fsutil::escape_file_name(&meta.name));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        }
        let name = meta.name.clone();
        let table = Arc::new(MergeTreeTable::create(&dir, meta, keys)?);
        tables.insert(name, Arc::clone(&table));
        Ok(table)
    }

    pub fn drop_table(&self, db: &str, name: &str, if_exists: bool) -> Result<()> {
        let mut dbs = self.dbs.write();
        let tables = match dbs.get_mut(db) {
            Some(t) => t,
            None if if_exists => return Ok(()),
            None => return Err(StorageError::UnknownDatabase(db.into())),
        };
        match tables.remove(name) {
            Some(t) => t.drop_data(),
            None if if_exists => Ok(()),
            None => Err(StorageError::UnknownTable(db.into(), name.into())),
        }
    }

    fn all_tables(&self) -> Vec<Arc<MergeTreeTable>> {
        self.dbs
            .read()
            .values()
            .flat_map(|t| t.values().cloned())
            .collect()
    }

    /// Tells the merge thread there may be work (after an insert).
    pub fn notify_merges(&self) {
        let (lock, cv) = &*self.wake;
        *lock.lock() = true;
        cv.notify_one();
    }

    /// Starts the background merge thread. It stops when the returned handle
    /// is dropped or the catalog goes away.
    pub fn start_merges(self: &Arc<Self>) -> BackgroundMerges {
        let stop = Arc::new(AtomicBool::new(false));
        let weak: Weak<Catalog> = Arc::downgrade(self);
        let wake = Arc::clone(&self.wake);
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("qh-merges".into())
            .spawn(move || merge_loop(weak, wake, stop2))
            .ok();
        BackgroundMerges {
            stop,
            wake: Arc::clone(&self.wake),
            handle,
        }
    }
}

fn merge_loop(catalog: Weak<Catalog>, wake: Arc<(Mutex<bool>, Condvar)>, stop: Arc<AtomicBool>) {
    let _span = info_span!("background_merges").entered();
    info!("merge thread started");
    while !stop.load(Ordering::Acquire) {
        let Some(cat) = catalog.upgrade() else { break };
        let mut merged_any = false;
        for t in cat.all_tables() {
            if stop.load(Ordering::Acquire) {
                break;
            }
            match t.merge_once() {
                Ok(m) => merged_any |= m,
                Err(e) => warn!(table = %t.dir().display(), error = %e, "background merge failed"),
            }
            t.cleanup_outdated();
        }
        drop(cat);
        if merged_any {
            continue;
        }
        let (lock, cv) = &*wake;
        let mut woken = lock.lock();
        if !*woken {
            cv.wait_for(&mut woken, Duration::from_secs(1));
        }
        *woken = false;
    }
    info!("merge thread stopped");
}

/// Owner of the merge thread: dropping it stops and joins the thread.
pub struct BackgroundMerges {
    stop: Arc<AtomicBool>,
    wake: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for BackgroundMerges {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let (lock, cv) = &*self.wake;
        *lock.lock() = true;
        cv.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
