//! Why an op was refused. The text is what `Response::Rejected` carries
//! over the wire and into logs, unchanged from the strings it replaced.

/// An op the state refuses; the whole transaction is rolled back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("database {0} already exists")]
    DatabaseExists(String),
    #[error("database {0} does not exist")]
    DatabaseMissing(String),
    #[error("table {0} already exists")]
    TableExists(String),
    #[error("table {0} does not exist")]
    TableMissing(String),
    #[error("replica {replica} of {table} already exists")]
    ReplicaExists { table: String, replica: String },
    #[error("replica {replica} of {table} does not exist")]
    ReplicaMissing { table: String, replica: String },
    #[error("log pointer {pointer} is past the log's end {end}")]
    PointerPastEnd { pointer: u64, end: u64 },
    #[error("log pointer {pointer} is outside the retained log [{oldest}, {end}]")]
    PointerOutsideLog { pointer: u64, oldest: u64, end: u64 },
    #[error("part {part} of {table} already exists")]
    PartExists { table: String, part: String },
    #[error("part {part} of {table} does not exist")]
    PartMissing { table: String, part: String },
    #[error("part {part} of {table}: checksums {new} differ from {have}")]
    ChecksumMismatch {
        table: String,
        part: String,
        new: String,
        have: String,
    },
    #[error("bad part name {0}")]
    BadPartName(String),
    #[error("part {part} of {table} overlaps existing part {other}")]
    PartOverlaps {
        table: String,
        part: String,
        other: String,
    },
    #[error("part {part} of {table} is already being merged into {into}")]
    AlreadyMerging {
        table: String,
        part: String,
        into: String,
    },
    #[error("merge into {new_part} would cover {other}, which is not one of its sources")]
    MergeCoversPart { new_part: String, other: String },
    #[error("merge into {new_part} would cover block {block}, whose insert is not committed yet")]
    MergeCoversInflight { new_part: String, block: u64 },
    #[error("block {0} was already inserted")]
    BlockExists(String),
    #[error("commit deadline passed ({late_ms} ms late): the insert was not written")]
    DeadlinePassed { late_ms: u64 },
    #[error("stage {0} was already committed")]
    StageCommitted(String),
    #[error("DDL task {0} does not exist")]
    DdlTaskMissing(u64),
}

pub type ApplyResult<T> = Result<T, ApplyError>;
