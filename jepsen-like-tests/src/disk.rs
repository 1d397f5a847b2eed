//! A small disk per node, to fill: each node's data directory is a tmpfs of
//! its own (`mount -t tmpfs -o size=…`), and a fault fills one with a
//! balloon file up to the last few KiB (`qh_checker::balloon`); healing
//! deletes the balloon.
//! Dropping [`Disks`] unmounts them. Needs root (mount).

use std::path::PathBuf;
use std::process::Command;

use qh_checker::balloon::Balloon;

pub struct Disks {
    dirs: Vec<(u64, PathBuf)>,
    balloons: std::sync::Mutex<Vec<Balloon>>,
}

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
        let mut disks = Disks {
            dirs: Vec::new(),
            balloons: Default::default(),
        };
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

    /// Fills node `id`'s disk.
    pub fn fill(&self, id: u64) -> anyhow::Result<()> {
        let (_, dir) = self
            .dirs
            .iter()
            .find(|(n, _)| *n == id)
            .ok_or_else(|| anyhow::anyhow!("node {id} has no disk of its own"))?;
        let balloon = Balloon::fill(&dir.join("balloon"))?;
        self.balloons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(balloon);
        Ok(())
    }

    /// Frees every disk.
    pub fn heal(&self) -> anyhow::Result<()> {
        let balloons =
            std::mem::take(&mut *self.balloons.lock().unwrap_or_else(|p| p.into_inner()));
        balloons.into_iter().try_for_each(Balloon::free)
    }
}

impl Drop for Disks {
    fn drop(&mut self) {
        for (_, dir) in &self.dirs {
            let _ = run(&["umount", "-l", &dir.to_string_lossy()]);
            let _ = std::fs::remove_dir(dir);
        }
    }
}
