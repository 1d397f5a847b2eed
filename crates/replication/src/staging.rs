//! A replicated table's staging area on this node: parts of inserts that are
//! durably written (here, and on the other stagers) but whose commit has not
//! been applied yet. Each staged part is `staging/<stage id>/` (the part's
//! files, fsynced) plus `staging/<stage id>.json` (what it belongs to),
//! written last, so a directory without its description is an interrupted
//! transfer and is removed at start-up.
//!
//! A staged copy leaves the area in one of three ways: its GET_PART entry is
//! applied (it is renamed into place as the committed part), the writer
//! reports that the insert failed before committing, or cleanup proves that
//! its commit can no longer land (the coordinator's clock passed its deadline
//! and no unexecuted log entry names it).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use qh_storage::fsutil::sync_dir;
use qh_storage::part::Part;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{ReplicationError, Result};

/// What a staged part belongs to (the `.json` beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInfo {
    pub partition_id: String,
    /// Coordinator clock (ms) after which the commit can no longer land.
    pub deadline_ms: u64,
    /// The inserting replica.
    pub writer: String,
    pub rows: u64,
    /// Digest of the part's checksums.
    pub checksum: String,
    pub quorum: u64,
    /// Staged under `insert_quorum_parallel = 0`.
    #[serde(default)]
    pub exclusive: bool,
    /// Wall-clock time it was staged (ms), for `system.quorum_inserts`.
    pub staged_ms: u64,
}

#[derive(Debug, Clone)]
pub struct StagedPart {
    pub id: String,
    pub dir: PathBuf,
    pub info: StageInfo,
    /// The part as loaded by its writer or receiver (its `dir` is `dir`):
    /// activation moves it into place without reading it back. None for a
    /// part found at start-up.
    pub loaded: Option<Arc<Part>>,
}

/// The staging area of one table.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    parts: Mutex<BTreeMap<String, StagedPart>>,
    counter: AtomicU64,
}

impl Staging {
    /// Loads the staged parts under `dir`, removing interrupted transfers.
    pub fn open(dir: PathBuf) -> Staging {
        let mut parts = BTreeMap::new();
        if let Ok(entries) = fs::read_dir(&dir) {
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect();
            names.sort();
            for name in &names {
                let path = dir.join(name);
                if let Some(id) = name.strip_suffix(".json") {
                    if !dir.join(id).is_dir() {
                        // Renamed into place before the description went.
                        let _ = fs::remove_file(&path);
                    }
                    continue;
                }
                let described = fs::read(dir.join(format!("{name}.json")))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<StageInfo>(&b).ok());
                match described {
                    Some(info) if path.is_dir() => {
                        parts.insert(
                            name.clone(),
                            StagedPart {
                                id: name.clone(),
                                dir: path,
                                info,
                                loaded: None,
                            },
                        );
                    }
                    _ => {
                        info!(stage = %name, "removing an interrupted staging transfer");
                        let _ = fs::remove_dir_all(&path);
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
        if !parts.is_empty() {
            info!(parts = parts.len(), "staged parts awaiting their commit");
        }
        Staging {
            dir,
            parts: Mutex::new(parts),
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh stage id for this replica's insert.
    pub fn new_id(&self, replica: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seed = format!("{replica}/{}/{nanos}/{n}", std::process::id());
        let h = xxhash_rust::xxh3::xxh3_64(seed.as_bytes());
        format!("{replica}_{h:016x}")
    }

    /// Where a transfer of `id` is received before it is complete.
    pub fn receive_dir(&self, id: &str) -> PathBuf {
        self.dir.join(format!("tmp_{id}"))
    }

    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Records a complete staged part: its description is written (and
    /// fsynced), then the part's directory `received` is renamed to
    /// `dir_of(id)`, and one directory fsync makes both durable. Blocking.
    pub fn add(
        &self,
        id: &str,
        received: &Path,
        info: StageInfo,
        loaded: Option<Part>,
    ) -> Result<StagedPart> {
        valid_id(id)?;
        let dir = self.dir_of(id);
        fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let json = self.dir.join(format!("{id}.json"));
        let bytes = serde_json::to_vec(&info)
            .map_err(|e| ReplicationError::Coordinator(format!("stage description: {e}")))?;
        let mut f = fs::File::create(&json).map_err(|e| io(&json, e))?;
        f.write_all(&bytes).map_err(|e| io(&json, e))?;
        f.sync_all().map_err(|e| io(&json, e))?;
        // A description without its directory is removed at start-up.
        fs::rename(received, &dir).map_err(|e| io(&dir, e))?;
        sync_dir(&self.dir)?;
        let loaded = loaded.map(|p| {
            let name = p.name.clone();
            Arc::new(p.moved(dir.clone(), name))
        });
        let part = StagedPart {
            id: id.to_string(),
            dir,
            info,
            loaded,
        };
        self.parts.lock().insert(id.to_string(), part.clone());
        Ok(part)
    }

    /// Takes a staged part out of the area; the caller moves its directory
    /// into place (then calls [`Staging::forget`]) or deletes it.
    pub fn take(&self, id: &str) -> Option<StagedPart> {
        self.parts.lock().remove(id)
    }

    /// Puts back a part taken but not moved into place.
    pub fn restore(&self, part: StagedPart) {
        self.parts.lock().insert(part.id.clone(), part);
    }

    /// Removes the description of a part taken and moved into place.
    pub fn forget(&self, id: &str) {
        let _ = fs::remove_file(self.dir.join(format!("{id}.json")));
    }

    /// Drops a staged part (its insert failed, or its commit cannot land).
    pub fn discard(&self, id: &str) -> bool {
        let taken = self.take(id);
        if valid_id(id).is_ok() {
            let _ = fs::remove_dir_all(self.dir_of(id));
            let _ = fs::remove_dir_all(self.receive_dir(id));
            self.forget(id);
        }
        taken.is_some()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.parts.lock().contains_key(id)
    }

    pub fn list(&self) -> Vec<StagedPart> {
        self.parts.lock().values().cloned().collect()
    }

    /// A staged part of another insert that `committed` does not know as
    /// committed (for `insert_quorum_parallel = 0`).
    pub fn uncommitted_other_than(
        &self,
        id: &str,
        committed: impl Fn(&StagedPart) -> bool,
    ) -> Option<StagedPart> {
        self.parts
            .lock()
            .values()
            .find(|p| id_prefix(&p.id) != id_prefix(id) && !committed(p))
            .cloned()
    }
}

/// Stage ids of one insert share the prefix before the last `.`.
fn id_prefix(id: &str) -> &str {
    id.rsplit_once('.').map(|(p, _)| p).unwrap_or(id)
}

/// Ids come from the network: never a path.
pub(crate) fn valid_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with("tmp_")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        warn!(stage = %id, "refusing a malformed stage id");
        Err(ReplicationError::BadArguments(format!(
            "malformed stage id {id:?}"
        )))
    }
}

fn io(path: &Path, e: std::io::Error) -> ReplicationError {
    ReplicationError::Storage(qh_storage::StorageError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> StageInfo {
        StageInfo {
            partition_id: "all".into(),
            deadline_ms: 10,
            writer: "r1".into(),
            rows: 1,
            checksum: "c".into(),
            quorum: 2,
            exclusive: false,
            staged_ms: 1,
        }
    }

    #[test]
    fn staged_parts_survive_a_restart_and_interrupted_transfers_do_not() {
        let tmp = std::env::temp_dir().join(format!("qh-staging-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).unwrap();
        let s = Staging::open(tmp.clone());
        let id = s.new_id("r1") + ".0";
        fs::create_dir_all(s.receive_dir(&id)).unwrap();
        fs::write(s.receive_dir(&id).join("a.bin"), b"x").unwrap();
        s.add(&id, &s.receive_dir(&id), info(), None).unwrap();
        // An interrupted transfer: a directory without its description.
        fs::create_dir_all(tmp.join("r2_half.0")).unwrap();
        fs::create_dir_all(s.receive_dir("r3_x.0")).unwrap();
        let s = Staging::open(tmp.clone());
        assert_eq!(s.list().len(), 1);
        assert_eq!(s.list()[0].info, info());
        assert!(!tmp.join("r2_half.0").exists());
        assert!(!s.receive_dir("r3_x.0").exists());
        assert!(s.uncommitted_other_than("r9_y.0", |_| false).is_some());
        assert!(s.uncommitted_other_than("r9_y.0", |p| p.id == id).is_none());
        assert!(s.uncommitted_other_than(&id, |_| false).is_none());
        assert!(s.discard(&id));
        assert!(Staging::open(tmp.clone()).list().is_empty());
        assert!(s.add("../etc", &tmp, info(), None).is_err());
        let _ = fs::remove_dir_all(&tmp);
    }
}
