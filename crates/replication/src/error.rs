//! Errors of replicated tables, with the ClickHouse code each maps to.

use qh_meta::MetaError;
use qh_storage::StorageError;
use qh_types::ErrorCode;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReplicationError {
    /// The coordinator cannot be reached (no leader); nothing was written.
    #[error("Table is in readonly mode (replica path: {path}): {why}")]
    ReadOnly { path: String, why: String },
    /// A coordinator write was sent but its outcome is unknown.
    #[error("Unknown status of insert: {0}. The insert may or may not have been written; retry it with the same data or insert_deduplication_token")]
    UnknownStatus(String),
    #[error("Coordination error: {0}")]
    Coordinator(String),
    #[error(
        "Existing table metadata in the coordinator at {path} differs from this table: {detail}"
    )]
    MetadataMismatch { path: String, detail: String },
    #[error("Replica {replica} of {path} already exists on node {node_id}")]
    ReplicaExists {
        path: String,
        replica: String,
        node_id: u64,
    },
    #[error("No active replica has part {part} or covering part (table {path})")]
    NoReplicaHasPart { path: String, part: String },
    #[error("Cannot fetch part {part} from {replica}: {why}")]
    Fetch {
        part: String,
        replica: String,
        why: String,
    },
    #[error("Number of alive replicas ({live}) is less than requested quorum ({quorum}/{total}).")]
    TooFewLiveReplicas {
        live: usize,
        quorum: u64,
        total: usize,
    },
    /// Fewer replicas than the quorum could stage the insert; nothing was written.
    #[error("{0}")]
    StagingFailed(String),
    #[error("Quorum for previous write has not been satisfied yet: {0}")]
    PreviousQuorum(String),
    #[error("Replica doesn't have part {0} which was successfully written to quorum of other replicas. Send query to another replica or disable 'select_sequential_consistency' setting")]
    NotInQuorum(String),
    #[error("Timeout exceeded: {0}")]
    Timeout(String),
    #[error("{0}")]
    BadArguments(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("replication is shutting down")]
    Stopped,
    /// Buffered inserts with these block ids were inserted before; nothing
    /// of the batch was written (its writer drops them and writes the rest).
    #[error("blocks already inserted: {}", .0.join(", "))]
    DuplicateBlocks(Vec<String>),
}

pub type Result<T, E = ReplicationError> = std::result::Result<T, E>;

impl ReplicationError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ReplicationError::ReadOnly { .. } => ErrorCode::TABLE_IS_READ_ONLY,
            ReplicationError::UnknownStatus(_) => ErrorCode::UNKNOWN_STATUS_OF_INSERT,
            ReplicationError::Coordinator(_) => ErrorCode::KEEPER_EXCEPTION,
            ReplicationError::MetadataMismatch { .. } => ErrorCode::METADATA_MISMATCH,
            ReplicationError::ReplicaExists { .. } => ErrorCode::REPLICA_ALREADY_EXISTS,
            ReplicationError::NoReplicaHasPart { .. } => ErrorCode::NO_REPLICA_HAS_PART,
            ReplicationError::Fetch { .. } => ErrorCode::NETWORK_ERROR,
            ReplicationError::TooFewLiveReplicas { .. } | ReplicationError::StagingFailed(_) => {
                ErrorCode::TOO_FEW_LIVE_REPLICAS
            }
            ReplicationError::PreviousQuorum(_) => ErrorCode::UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE,
            ReplicationError::NotInQuorum(_) => ErrorCode::REPLICA_IS_NOT_IN_QUORUM,
            ReplicationError::Timeout(_) => ErrorCode::TIMEOUT_EXCEEDED,
            ReplicationError::BadArguments(_) => ErrorCode::BAD_ARGUMENTS,
            ReplicationError::Storage(e) => e.code(),
            ReplicationError::Stopped => ErrorCode::ABORTED,
            ReplicationError::DuplicateBlocks(_) => ErrorCode::LOGICAL_ERROR,
        }
    }

    /// A coordinator write failure: `NoLeader` means nothing was committed.
    pub fn from_write(path: &str, e: MetaError) -> Self {
        match e {
            MetaError::NoLeader(why) => ReplicationError::ReadOnly {
                path: path.to_string(),
                why: format!("coordinator has no leader ({why})"),
            },
            MetaError::Unknown(why) => ReplicationError::UnknownStatus(why),
            MetaError::Stopped => ReplicationError::Stopped,
            other => ReplicationError::Coordinator(other.to_string()),
        }
    }
}
