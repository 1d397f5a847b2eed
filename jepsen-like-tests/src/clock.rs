//! A wall clock of its own per node, to skew: every node starts with a small
//! preloaded library (`LD_PRELOAD`, built here from C with the system's `cc`,
//! the way Jepsen uses libfaketime) that adds an offset to `CLOCK_REALTIME`,
//! read from a file of the node's own. A fault writes an offset (seconds to
//! days, either way) and waits until the node's `now()` shows it — so a
//! nemesis that could not take hold fails the run instead of passing
//! silently; healing writes 0. Monotonic clocks (timers, timeouts) are left
//! alone: only what the node believes the time of day is changes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The preloaded library: `clock_gettime` of the real-time clocks plus the
/// offset in the file `QH_FAKE_CLOCK_FILE` names (milliseconds, re-read at
/// most every 50 ms of the monotonic clock).
const SHIM_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
static clock_gettime_fn real_clock_gettime;
static const char *offset_file;
static atomic_llong offset_ms;
static atomic_llong next_read_ns;

__attribute__((constructor)) static void qh_clock_init(void) {
    real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    offset_file = getenv("QH_FAKE_CLOCK_FILE");
}

static long long current_offset_ms(void) {
    if (!offset_file) return 0;
    struct timespec mono;
    real_clock_gettime(CLOCK_MONOTONIC, &mono);
    long long now = (long long)mono.tv_sec * 1000000000LL + mono.tv_nsec;
    if (now >= atomic_load(&next_read_ns)) {
        atomic_store(&next_read_ns, now + 50000000LL);
        int fd = open(offset_file, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char buf[32];
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n > 0) {
                buf[n] = 0;
                atomic_store(&offset_ms, strtoll(buf, NULL, 10));
            }
        }
    }
    return atomic_load(&offset_ms);
}

int clock_gettime(clockid_t clk, struct timespec *ts) {
    if (!real_clock_gettime) {
        real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    }
    int r = real_clock_gettime(clk, ts);
    if (r == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) {
        long long off = current_offset_ms();
        if (off != 0) {
            long long t = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + off * 1000000LL;
            ts->tv_sec = t / 1000000000LL;
            ts->tv_nsec = t % 1000000000LL;
        }
    }
    return r;
}
"#;

pub struct Clocks {
    dir: PathBuf,
    library: PathBuf,
}

impl Clocks {
    /// Builds the library and a zero offset file per node.
    pub fn create(nodes: &[u64]) -> anyhow::Result<Clocks> {
        let dir = std::env::temp_dir().join(format!("qhj-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let source = dir.join("qh_fake_clock.c");
        let library = dir.join("libqh_fake_clock.so");
        std::fs::write(&source, SHIM_C)?;
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&library)
            .arg(&source)
            .arg("-ldl")
            .output()
            .map_err(|e| anyhow::anyhow!("the clock nemesis builds its library with cc: {e}"))?;
        anyhow::ensure!(
            out.status.success(),
            "building the clock library failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let clocks = Clocks { dir, library };
        for &id in nodes {
            clocks.set(id, 0)?;
        }
        Ok(clocks)
    }

    fn offset_file(&self, id: u64) -> PathBuf {
        self.dir.join(format!("offset-{id}"))
    }

    /// What node `id` starts with: the library preloaded, its offset file.
    pub fn env(&self, id: u64) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), path_text(&self.library)),
            (
                "QH_FAKE_CLOCK_FILE".into(),
                path_text(&self.offset_file(id)),
            ),
        ]
    }

    /// Node `id`'s clock runs `offset_ms` ahead (behind, if negative).
    pub fn set(&self, id: u64, offset_ms: i64) -> anyhow::Result<()> {
        // Written whole and renamed, so the library never reads half a number.
        let tmp = self.dir.join(format!("offset-{id}.tmp"));
        std::fs::write(&tmp, offset_ms.to_string())?;
        std::fs::rename(&tmp, self.offset_file(id))?;
        Ok(())
    }
}

impl Drop for Clocks {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The skews a fault picks from (ms): small and large, both ways; a week
/// and a day are past ClickHouse's default deduplication window and lease
/// lengths by far.
pub const SKEWS_MS: &[i64] = &[
    2 * 60 * 1000,
    -2 * 60 * 1000,
    60 * 60 * 1000,
    -60 * 60 * 1000,
    8 * 24 * 60 * 60 * 1000,
    -24 * 60 * 60 * 1000,
];
