//! Small durable-file helpers.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{Result, StorageError};

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| StorageError::io(&tmp, e))?;
        f.sync_all().map_err(|e| StorageError::io(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| StorageError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs `files` concurrently (up to 16 threads): the filesystem journal
/// commits concurrent fsyncs together, so N files cost about one commit
/// instead of N in a row.
pub fn sync_files(files: &[(&Path, &File)]) -> Result<()> {
    const THREADS: usize = 16;
    let sync = |chunk: &[(&Path, &File)]| -> Result<()> {
        for (p, f) in chunk {
            f.sync_all().map_err(|e| StorageError::io(p, e))?;
        }
        Ok(())
    };
    if files.len() <= 1 {
        return sync(files);
    }
    let per_thread = files.len().div_ceil(THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || sync(chunk)))
            .collect();
        let mut first = Ok(());
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(StorageError::Unsupported("fsync thread panicked".into())));
            if first.is_ok() {
                first = r;
            }
        }
        first
    })
}

/// fsyncs a directory so a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// Column names become file names: keep `[A-Za-z0-9_]`, escape the rest as
/// `%XX` like ClickHouse does.
pub fn escape_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::escape_file_name("a.b c"), "a%2Eb%20c");
        assert_eq!(super::escape_file_name("user_id"), "user_id");
    }
}
