//! The client's progress display on stderr: a bar over the bytes sent when an
//! INSERT reads a file from stdin, otherwise a spinner; both with the rows
//! and bytes the server reports, rates and the elapsed time. Hidden when
//! stderr is not a terminal, so scripts see nothing of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct ProgressDisplay {
    bar: ProgressBar,
    started: Instant,
}

impl ProgressDisplay {
    /// `input_bytes`: the size of the INSERT's input when known (stdin is a
    /// regular file), which turns the spinner into a bar.
    pub fn new(input_bytes: Option<u64>) -> ProgressDisplay {
        let bar = match input_bytes {
            Some(total) => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template(
                    "[{bar:30}] {percent:>3}% {bytes}/{total_bytes} {msg}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                    bar.set_style(style);
                }
                bar
            }
        };
        ProgressDisplay {
            bar,
            started: Instant::now(),
        }
    }

    /// Receives the server's progress messages.
    pub fn callback(&self) -> qh_client::ProgressCallback {
        let bar = self.bar.clone();
        let started = self.started;
        Arc::new(move |p: &qh_client::Progress| {
            bar.set_message(describe(p, started.elapsed()));
        })
    }

    /// Counts input bytes handed to the client (from the stdin reader).
    pub fn input_counter(&self) -> ProgressBar {
        self.bar.clone()
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `1.23 million rows, 45.60 MB (1.10 million rows/s., 40.00 MB/s.) 1.1 s`,
/// as clickhouse-client words it.
fn describe(p: &qh_client::Progress, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let (rows, bytes, verb) = if p.written_rows > 0 {
        (p.written_rows, p.written_bytes, "written")
    } else {
        (p.read_rows, p.read_bytes, "read")
    };
    format!(
        "Progress: {} rows {verb}, {} ({} rows/s., {}/s.) {secs:.1} s",
        readable_quantity(rows as f64),
        readable_size(bytes as f64),
        readable_quantity(rows as f64 / secs),
        readable_size(bytes as f64 / secs),
    )
}

fn readable_quantity(n: f64) -> String {
    const UNITS: [(f64, &str); 4] = [
        (1e12, "trillion"),
        (1e9, "billion"),
        (1e6, "million"),
        (1e3, "thousand"),
    ];
    for (scale, name) in UNITS {
        if n >= scale {
            return format!("{:.2} {name}", n / scale);
        }
    }
    format!("{n:.0}")
}

fn readable_size(n: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")];
    for (scale, name) in UNITS {
        if n >= scale {
            return format!("{:.2} {name}", n / scale);
        }
    }
    format!("{n:.0} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_like_clickhouse_client() {
        let p = qh_client::Progress {
            read_rows: 1_230_000,
            read_bytes: 45_600_000,
            written_rows: 0,
            written_bytes: 0,
        };
        assert_eq!(
            describe(&p, Duration::from_secs(2)),
            "Progress: 1.23 million rows read, 45.60 MB (615.00 thousand rows/s., 22.80 MB/s.) 2.0 s"
        );
        assert_eq!(readable_quantity(999.0), "999");
        assert_eq!(readable_size(1500.0), "1.50 KB");
    }
}
