//! A full disk, for real: a balloon file that takes a file system's free
//! space down to its last few KiB (`fallocate`, so even a large disk fills
//! at once), and gives it back when freed or dropped. The one disk fault
//! the operator drill (`quorumhouse drill disk-full`) and the harness's
//! `disk-full` nemesis share.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Left free by a fill: less than any part, so every write fails with ENOSPC.
pub const LEFT_FREE: u64 = 16 << 10;

/// A balloon file filling the file system it lives on; dropping it frees
/// the space.
#[derive(Debug)]
pub struct Balloon {
    path: PathBuf,
}

impl Balloon {
    /// Creates `path` and grows it until less than [`LEFT_FREE`] bytes are
    /// left on its file system.
    pub fn fill(path: &Path) -> anyhow::Result<Balloon> {
        let f = std::fs::File::create(path)?;
        let balloon = Balloon {
            path: path.to_path_buf(),
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        // Other writers keep writing meanwhile: grow the balloon in steps
        // until less than LEFT_FREE is left (a step that no longer fits is
        // halved).
        let mut step = free_bytes(dir)?;
        let mut len: u64 = 0;
        while step > LEFT_FREE {
            let want = libc::off_t::try_from(len + step)?;
            // SAFETY: fallocate on a file descriptor we own.
            let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, want) };
            if r == 0 {
                len += step;
            } else {
                let e = std::io::Error::last_os_error();
                anyhow::ensure!(
                    e.raw_os_error() == Some(libc::ENOSPC),
                    "fallocate {} bytes in {}: {e}",
                    len + step,
                    path.display()
                );
                step /= 2;
            }
        }
        Ok(balloon)
    }

    /// Deletes the balloon, giving its space back.
    pub fn free(self) -> anyhow::Result<()> {
        let r = remove(&self.path);
        std::mem::forget(self);
        r
    }
}

fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::anyhow!("deleting {}: {e}", path.display())),
    }
}

impl Drop for Balloon {
    fn drop(&mut self) {
        let _ = remove(&self.path);
    }
}

/// Bytes an unprivileged writer can still use on `dir`'s file system.
pub fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: statvfs writes into the struct we pass; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    anyhow::ensure!(
        r == 0,
        "statvfs {}: {}",
        dir.display(),
        std::io::Error::last_os_error()
    );
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_balloon_gives_its_space_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("balloon");
        // Not filled here (that would fill the machine's disk): a balloon
        // that exists is deleted by free and by drop alike.
        std::fs::write(&path, b"x").unwrap();
        Balloon { path: path.clone() }.free().unwrap();
        assert!(!path.exists());
        std::fs::write(&path, b"x").unwrap();
        drop(Balloon { path: path.clone() });
        assert!(!path.exists());
        assert!(free_bytes(dir.path()).unwrap() > 0);
    }
}
