//! What happened to a cluster's data under faults, judged from the
//! outside: concurrent workers that speak only the public gRPC client
//! protocol ([`workload`]) record every operation as a history
//! ([`history`]: invoke, then ok / fail — definitely did not happen — /
//! info — may have happened), and checkers ([`check`]) compare the history
//! with what every replica holds at the end.
//!
//! Shared by `quorumhouse drill` (faults an operator rehearses on a running
//! cluster) and `jepsen-like-tests` (seeded faults on fresh clusters).
//!
//! Invariant: a check's verdict depends only on safety (nothing
//! acknowledged lost, nothing duplicated, nothing that definitely failed
//! present, no stale sequential read, replicas in agreement); availability
//! is measured and reported, never judged.

/// A full disk for real: the balloon file both disk faults use.
pub mod balloon;
pub mod check;
pub mod history;
/// Linearizability of the `register` workload's reads, writes and
/// compare-and-sets, key by key (Wing & Gong / Lowe search).
pub mod linear;
pub mod workload;
