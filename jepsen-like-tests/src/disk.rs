//! A small disk per node, to fill: each node's data directory is a tmpfs of
//! its own (`mount -t tmpfs -o size=…`), and a fault fills one with a
//! balloon file up to the last few KiB; healing deletes the balloon.
//! Dropping [`Disks`] unmounts them. Needs root (mount).

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Disks {
    dirs: Vec<(u64, PathBuf)>,
}

/// Left free by a fill: less than any part, so every write fails with ENOSPC.
const LEFT_FREE: u64 = 16 << 10;

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    anyhow::ensure!(
        out.status.success(),
        "`{}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl Disks {
    /// One tmpfs of `size_mb` per node, under the system's temp directory.
    pub fn create(nodes: &[u64], size_mb: u64) -> anyhow::Result<Disks> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            anyhow::bail!("the disk-full nemesis mounts a tmpfs per node: run as root");
        }
        let mut disks = Disks { dirs: Vec::new() };
        for &id in nodes {
            let dir = std::env::temp_dir().join(format!("qhj-disk-{}-{id}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let size = format!("size={size_mb}m");
            run(&[
                "mount",
                "-t",
                "tmpfs",
                "-o",
                &size,
                "tmpfs",
                &dir.to_string_lossy(),
            ])?;
            disks.dirs.push((id, dir));
        }
        Ok(disks)
    }

    /// Node `id`'s data directory (on its own tmpfs).
    pub fn data_dir(&self, id: u64) -> Option<PathBuf> {
        self.dirs
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, d)| d.join("data"))
    }

    fn balloon(dir: &Path) -> PathBuf {
        dir.join("balloon")
    }

    /// Fills node `id`'s disk.
    pub fn fill(&self, id: u64) -> anyhow::Result<()> {
        let (_, dir) = self
            .dirs
            .iter()
            .find(|(n, _)| *n == id)
            .ok_or_else(|| anyhow::anyhow!("node {id} has no disk of its own"))?;
        use std::os::fd::AsRawFd;
        let f = std::fs::File::create(Self::balloon(dir))?;
        // The node keeps writing meanwhile: grow the balloon in steps until
        // less than LEFT_FREE is left (a step that no longer fits is halved).
        let mut step = free_bytes(dir)?;
        let mut len: u64 = 0;
        while step > LEFT_FREE {
            // SAFETY: fallocate on a file descriptor we own.
            let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, (len + step) as libc::off_t) };
            if r == 0 {
                len += step;
            } else {
                let e = std::io::Error::last_os_error();
                anyhow::ensure!(
                    e.raw_os_error() == Some(libc::ENOSPC),
                    "fallocate {} bytes: {e}",
                    len + step
                );
                step /= 2;
            }
        }
        Ok(())
    }

    /// Frees every disk.
    pub fn heal(&self) -> anyhow::Result<()> {
        for (_, dir) in &self.dirs {
            match std::fs::remove_file(Self::balloon(dir)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: statvfs writes into the struct we pass; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    anyhow::ensure!(
        unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0,
        "statvfs {}: {}",
        dir.display(),
        std::io::Error::last_os_error()
    );
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

impl Drop for Disks {
    fn drop(&mut self) {
        for (_, dir) in &self.dirs {
            let _ = run(&["umount", "-l", &dir.to_string_lossy()]);
            let _ = std::fs::remove_dir(dir);
        }
    }
}
