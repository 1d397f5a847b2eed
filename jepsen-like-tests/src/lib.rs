//! Fault-injection harness for quorumhouse: starts real `quorumhouse`
//! processes on free loopback ports with their own data directories, injects
//! faults (SIGKILL, pauses, partitions) and checks invariants.
//!
//! This crate holds the process plumbing shared by the workloads; the
//! workloads themselves live in `tests/`.

use std::net::TcpListener;
use std::path::PathBuf;

pub mod cluster;
pub use cluster::TestCluster;

/// The `quorumhouse` binary to drive: `$QH_BIN`, else the one cargo built
/// next to this test executable (`target/<profile>/quorumhouse`).
pub fn quorumhouse_binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("QH_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> -> target/<profile>/quorumhouse
    let profile_dir = exe.parent().and_then(|d| d.parent()).ok_or_else(|| {
        anyhow::anyhow!("cannot locate the target directory from {}", exe.display())
    })?;
    let bin = profile_dir.join("quorumhouse");
    if bin.exists() {
        Ok(bin)
    } else {
        anyhow::bail!(
            "{} not found: build it first (cargo build -p quorumhouse) or set QH_BIN",
            bin.display()
        )
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to :0 and
/// release), so parallel test clusters never collide on fixed ports.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let a = super::free_port().unwrap();
        let b = super::free_port().unwrap();
        assert!(a > 0 && b > 0);
        std::net::TcpListener::bind(("127.0.0.1", a)).unwrap();
    }
}
