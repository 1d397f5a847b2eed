//! Statements through `quorumhouse local` on a data directory (each call a
//! new process, so what one leaves on disk the next reads). Shared by the
//! test files that `mod local_process;`.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn local(dir: &Path, sql: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quorumhouse"))
        .args(["local", "--data-dir"])
        .arg(dir)
        .args(["--query", sql])
        .env("TZ", "UTC")
        .output()
        .expect("run quorumhouse local")
}

/// The answer (TSV); the test fails when the statement does.
pub fn ok(dir: &Path, sql: &str) -> String {
    let o = local(dir, sql);
    assert!(
        o.status.success(),
        "query failed: {sql}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The error text; the test fails when the statement succeeds.
pub fn err(dir: &Path, sql: &str) -> String {
    let o = local(dir, sql);
    assert!(!o.status.success(), "expected failure: {sql}");
    String::from_utf8_lossy(&o.stderr).to_string()
}
