//! Errors of the coordinator, mapped to ClickHouse codes at the edge (server).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum MetaError {
    /// The coordinator store could not be opened (bad path, corrupt sled files).
    #[error("cannot open the coordinator store at {path}: {message}")]
    Open { path: String, message: String },
    /// No leader could be reached before the deadline; the write did not commit.
    #[error("coordinator has no leader: {0}")]
    NoLeader(String),
    /// The write was sent but its outcome is unknown (it may still commit).
    #[error("coordinator write outcome is unknown: {0}")]
    Unknown(String),
    /// A linearizable read could not confirm leadership in time.
    #[error("coordinator read failed: {0}")]
    Read(String),
    #[error("coordinator membership change failed: {0}")]
    Membership(String),
    #[error("bad coordinator message: {0}")]
    Protocol(String),
    #[error("coordinator is shutting down")]
    Stopped,
    #[error("cannot connect to coordinator at {addr}: {message}")]
    Connect { addr: String, message: String },
}
