//! Real `quorumhouse server` processes on free loopback ports, each with its
//! own data directory: what the benches and drills of the product binary and
//! the fault-injection harness (`jepsen-like-tests`) share.
//!
//! Invariant: this crate speaks only the public client protocol (gRPC
//! queries, HTTP addresses) and process signals, never the coordinator's
//! internals, so the product binary can use it without linking a test crate.

use std::net::TcpListener;
use std::path::PathBuf;

pub mod cluster;
pub use cluster::{LocalCluster, LocalNode, Placement};

/// The `quorumhouse` binary to drive: `$QH_BIN`, else the one cargo built
/// next to this executable (`target/<profile>/quorumhouse`).
pub fn quorumhouse_binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("QH_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    // A binary: target/<profile>/<bin>; a test: target/<profile>/deps/<test>.
    let dir = exe.parent().ok_or_else(|| {
        anyhow::anyhow!("cannot locate the target directory from {}", exe.display())
    })?;
    let candidates = [Some(dir), dir.parent()];
    for d in candidates.into_iter().flatten() {
        let bin = d.join("quorumhouse");
        if bin.is_file() {
            return Ok(bin);
        }
    }
    anyhow::bail!(
        "quorumhouse not found next to {}: build it first (cargo build -p quorumhouse) or set QH_BIN",
        exe.display()
    )
}

/// A TCP port on 127.0.0.1 that was free a moment ago, so parallel test
/// clusters never collide on fixed ports. Picked at random in 10000..20000,
/// below the kernel's ephemeral range (32768+): a port handed out by `:0`
/// could be taken by any outgoing connection before the server binds it.
///
/// Test processes run in parallel and each picks ports between checking
/// and the server binding them, so a port is also reserved across processes:
/// a file `qh-test-ports/<port>` holding the owner's pid, taken over only
/// when that process is gone.
pub fn free_port() -> anyhow::Result<u16> {
    free_port_inner()
}

/// A fresh random cluster secret (192 bits from the kernel, as hex): what
/// `cluster up` and every test cluster give their nodes.
pub fn new_cluster_secret() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn free_port_inner() -> anyhow::Result<u16> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let seed = (std::process::id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nanos;
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + (seed.wrapping_add(n.wrapping_mul(7_919)) % 10_000) as u16;
        if reserve(port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Claims `port` for this process (see [`free_port`]).
fn reserve(port: u16) -> bool {
    use std::io::Write;
    let dir = std::env::temp_dir().join("qh-test-ports");
    if std::fs::create_dir_all(&dir).is_err() {
        return true; // no reservations possible: fall back to the bind check
    }
    let path = dir.join(port.to_string());
    let me = std::process::id();
    let claim = |f: std::fs::File| {
        let mut f = f;
        f.write_all(me.to_string().as_bytes()).is_ok()
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => claim(f),
        Err(_) => {
            let owner: Option<u32> = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            match owner {
                Some(pid) if pid == me => false, // ours already (used by this cluster)
                Some(pid) if std::path::Path::new(&format!("/proc/{pid}")).exists() => false,
                // The owner is gone: take it over (remove + exclusive create,
                // so two processes cannot both win).
                _ => {
                    let _ = std::fs::remove_file(&path);
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map(claim)
                        .unwrap_or(false)
                }
            }
        }
    }
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
