//! Checks a history against what the replicas hold at the end.
//!
//! * **set**: every id of a batch whose insert was acknowledged is on every
//!   replica exactly once; no id of a batch whose every attempt failed
//!   definitely is anywhere; nothing appears that no client wrote; all
//!   replicas hold the same ids.
//! * **sequential**: a read with `select_sequential_consistency = 1` that
//!   starts after an insert was acknowledged sees it (or fails): a read that
//!   answers without it is stale.
//! * **replacing**: under `FINAL`, every replica shows for each key the
//!   newest version that landed — at least the newest acknowledged one, or
//!   a newer one whose outcome was unknown; a key whose newest landed
//!   version is a delete is absent; nothing from a definitely failed upsert.
//! * **availability** (reported, never part of `valid`): per fault, the
//!   longest time without an acknowledged write and the time to the first
//!   acknowledged write (insert or upsert) started after the fault and
//!   after the heal.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::history::{KvRow, Op, OpType, NEMESIS};

/// Rows per id on one replica at the end; `None` when it could not be read.
pub type ReplicaRows = BTreeMap<u64, Option<BTreeMap<u64, u64>>>;

#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct OpCounts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct SetResult {
    /// Ids of acknowledged batches.
    pub acknowledged: u64,
    /// Ids of batches with an unknown outcome found on the replicas.
    pub recovered: u64,
    /// Ids of batches with an unknown outcome found nowhere.
    pub unknown_absent: u64,
    /// (id, replica) pairs: acknowledged but missing there.
    pub lost: Vec<(u64, u64)>,
    /// (id, replica, rows) with more than one row.
    pub duplicates: Vec<(u64, u64, u64)>,
    /// Ids of batches that definitely failed, yet present.
    pub unexpected: Vec<u64>,
    /// Ids no client ever wrote.
    pub phantom: Vec<u64>,
    /// Replicas that could not be read at the end.
    pub unreadable: Vec<u64>,
    /// Replicas whose ids differ from the first readable replica's.
    pub diverged: Vec<u64>,
    /// (token, replica): a batch some but not all of whose ids are there.
    /// One INSERT is atomic, across the shards of a Distributed table too.
    pub partial: Vec<(String, u64)>,
}

impl SetResult {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut add = |n: usize, what: &str| {
            if n > 0 {
                p.push(format!("{n} {what}"));
            }
        };
        add(self.lost.len(), "acknowledged rows missing on a replica");
        add(self.duplicates.len(), "duplicated rows");
        add(
            self.unexpected.len(),
            "rows of definitely failed inserts present",
        );
        add(self.phantom.len(), "rows nobody wrote");
        add(self.unreadable.len(), "replicas unreadable at the end");
        add(self.diverged.len(), "replicas that disagree");
        add(self.partial.len(), "inserts only partly present");
        p
    }
}

#[derive(Serialize, Debug, Default, Clone)]
pub struct SequentialResult {
    pub reads: u64,
    /// Reads that failed (refused: allowed, never stale).
    pub refused: u64,
    /// (read's index in the history, id): answered without an acknowledged id.
    pub stale: Vec<(u64, u64)>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct FaultStats {
    pub fault: String,
    pub node: Option<u64>,
    pub start_s: f64,
    pub heal_s: Option<f64>,
    /// Longest stretch without an acknowledged write from the fault until
    /// the next fault (or the end of the run).
    pub longest_gap_s: f64,
    /// From the fault to the first acknowledgement of a write started after it.
    pub first_ack_after_fault_s: Option<f64>,
    /// From the heal to the first acknowledgement of a write started after it.
    pub first_ack_after_heal_s: Option<f64>,
}

/// Each client completion with the time its invocation was recorded
/// (a worker runs one op at a time, so its previous invoke is this op's).
pub fn completions(history: &[Op]) -> Vec<(f64, &Op)> {
    let mut open: BTreeMap<&str, f64> = BTreeMap::new();
    let mut out = Vec::new();
    for op in history.iter().filter(|o| o.process != NEMESIS) {
        match op.kind {
            OpType::Invoke => {
                open.insert(&op.process, op.time_ms);
            }
            _ => {
                if let Some(t) = open.remove(op.process.as_str()) {
                    out.push((t, op));
                }
            }
        }
    }
    out
}

pub fn count_ops(history: &[Op]) -> OpCounts {
    let mut c = OpCounts::default();
    for op in history.iter().filter(|o| o.process != NEMESIS) {
        match op.kind {
            OpType::Ok => c.ok += 1,
            OpType::Fail => c.fail += 1,
            OpType::Info => c.info += 1,
            OpType::Invoke => {}
        }
    }
    c
}

/// How each batch (all attempts with one token) of op `f` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Acknowledged,
    /// Every attempt failed definitely: it must not be anywhere.
    Failed,
    /// May or may not have landed.
    Unknown,
}

fn batches<'a>(history: &'a [Op], f: &str) -> BTreeMap<&'a str, (Outcome, &'a Op)> {
    let mut out: BTreeMap<&str, (Outcome, &Op)> = BTreeMap::new();
    let mut completed: BTreeSet<&str> = BTreeSet::new();
    for op in history.iter().filter(|o| o.f == f && o.process != NEMESIS) {
        let Some(token) = op.token.as_deref() else {
            continue;
        };
        let entry = out.entry(token).or_insert((Outcome::Failed, op));
        match op.kind {
            OpType::Invoke => {}
            OpType::Ok => entry.0 = Outcome::Acknowledged,
            OpType::Info if entry.0 != Outcome::Acknowledged => entry.0 = Outcome::Unknown,
            OpType::Info | OpType::Fail => {}
        }
        if op.kind != OpType::Invoke {
            completed.insert(token);
        }
    }
    // An attempt left without a completion (the run ended) is unknown.
    for (token, b) in out.iter_mut() {
        if !completed.contains(token) && b.0 == Outcome::Failed {
            b.0 = Outcome::Unknown;
        }
    }
    out
}

/// The set check (see the module doc).
pub fn check_set(history: &[Op], replicas: &ReplicaRows) -> SetResult {
    let batches = batches(history, "insert");
    let mut r = SetResult::default();
    let written: BTreeSet<u64> = batches.values().flat_map(|b| b.1.ids.clone()).collect();
    let readable: Vec<(u64, &BTreeMap<u64, u64>)> = replicas
        .iter()
        .filter_map(|(n, rows)| rows.as_ref().map(|rows| (*n, rows)))
        .collect();
    r.unreadable = replicas
        .iter()
        .filter(|(_, rows)| rows.is_none())
        .map(|(n, _)| *n)
        .collect();
    let present: BTreeSet<u64> = readable
        .iter()
        .flat_map(|(_, rows)| rows.keys().copied())
        .collect();
    if let Some((_, first)) = readable.first() {
        let first: BTreeSet<&u64> = first.keys().collect();
        r.diverged = readable
            .iter()
            .filter(|(_, rows)| rows.keys().collect::<BTreeSet<_>>() != first)
            .map(|(n, _)| *n)
            .collect();
    }
    for (node, rows) in &readable {
        for (id, n) in rows.iter() {
            if *n > 1 {
                r.duplicates.push((*id, *node, *n));
            }
        }
    }
    r.phantom = present.difference(&written).copied().collect();
    for (token, (_, op)) in &batches {
        for (node, rows) in &readable {
            let there = op.ids.iter().filter(|id| rows.contains_key(id)).count();
            if there > 0 && there < op.ids.len() {
                r.partial.push((token.to_string(), *node));
            }
        }
    }
    for (outcome, op) in batches.values() {
        let ids = &op.ids;
        if *outcome == Outcome::Acknowledged {
            r.acknowledged += ids.len() as u64;
            for id in ids {
                for (node, rows) in &readable {
                    if !rows.contains_key(id) {
                        r.lost.push((*id, *node));
                    }
                }
            }
        } else if *outcome == Outcome::Failed {
            r.unexpected
                .extend(ids.iter().filter(|id| present.contains(id)).copied());
        } else {
            let found = ids.iter().filter(|id| present.contains(id)).count() as u64;
            r.recovered += found;
            r.unknown_absent += ids.len() as u64 - found;
        }
    }
    r
}

/// key → version under FINAL on each replica; `None` when unreadable.
pub type ReplicaVersions = BTreeMap<u64, Option<BTreeMap<u64, u64>>>;

#[derive(Serialize, Debug, Default, Clone)]
pub struct ReplacingResult {
    pub keys: u64,
    /// Upserted rows acknowledged.
    pub acknowledged: u64,
    /// (key, replica, version seen or absent, why it is wrong).
    pub wrong: Vec<(u64, u64, Option<u64>, String)>,
    pub unreadable: Vec<u64>,
    pub diverged: Vec<u64>,
}

impl ReplacingResult {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.wrong.is_empty() {
            p.push(format!(
                "{} keys with a wrong FINAL version",
                self.wrong.len()
            ));
        }
        if !self.unreadable.is_empty() {
            p.push(format!(
                "{} replicas unreadable at the end",
                self.unreadable.len()
            ));
        }
        if !self.diverged.is_empty() {
            p.push(format!("{} replicas that disagree", self.diverged.len()));
        }
        p
    }
}

/// The replacing check (see the module doc).
pub fn check_replacing(history: &[Op], replicas: &ReplicaVersions) -> ReplacingResult {
    let mut rows: BTreeMap<u64, Vec<(KvRow, Outcome)>> = BTreeMap::new();
    let mut r = ReplacingResult::default();
    for (outcome, op) in batches(history, "upsert").values() {
        for row in &op.rows {
            rows.entry(row.key).or_default().push((*row, *outcome));
            if *outcome == Outcome::Acknowledged {
                r.acknowledged += 1;
            }
        }
    }
    r.keys = rows.len() as u64;
    r.unreadable = replicas
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    let readable: Vec<(u64, &BTreeMap<u64, u64>)> = replicas
        .iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| (*n, v)))
        .collect();
    if let Some((_, first)) = readable.first() {
        r.diverged = readable
            .iter()
            .filter(|(_, v)| v != first)
            .map(|(n, _)| *n)
            .collect();
    }
    let keys: BTreeSet<u64> = rows
        .keys()
        .copied()
        .chain(readable.iter().flat_map(|(_, v)| v.keys().copied()))
        .collect();
    for key in keys {
        let candidates = rows.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        // The newest acknowledged version bounds what may show from below.
        let newest_acked = candidates
            .iter()
            .filter(|(_, o)| *o == Outcome::Acknowledged)
            .map(|(row, _)| row)
            .max_by_key(|row| row.version);
        let may_have_landed = |row: &KvRow, o: Outcome| {
            o != Outcome::Failed && newest_acked.is_none_or(|a| row.version >= a.version)
        };
        for (node, versions) in &readable {
            let seen = versions.get(&key).copied();
            let why = match seen {
                Some(v) => match candidates.iter().find(|(row, _)| row.version == v) {
                    None => Some("a version nobody wrote".to_string()),
                    Some((_, Outcome::Failed)) => {
                        Some("a version whose upsert definitely failed".to_string())
                    }
                    Some((row, _)) if row.deleted => Some("a deleted version".to_string()),
                    Some((row, o)) if !may_have_landed(row, *o) => Some(format!(
                        "older than the acknowledged version {}",
                        newest_acked.map(|a| a.version).unwrap_or(0)
                    )),
                    Some(_) => None,
                },
                // Absent: right if nothing acknowledged, or if a delete at
                // least as new as the newest acknowledged version may have landed.
                None => {
                    let deleted_last = candidates
                        .iter()
                        .any(|(row, o)| row.deleted && may_have_landed(row, *o));
                    (newest_acked.is_some() && !deleted_last).then(|| {
                        format!(
                            "absent, though version {} was acknowledged",
                            newest_acked.map(|a| a.version).unwrap_or(0)
                        )
                    })
                }
            };
            if let Some(why) = why {
                r.wrong.push((key, *node, seen, why));
            }
        }
    }
    r
}

/// The sequential check (see the module doc).
pub fn check_sequential(history: &[Op]) -> SequentialResult {
    let mut acked_at: BTreeMap<u64, f64> = BTreeMap::new();
    for op in history
        .iter()
        .filter(|o| o.f == "insert" && o.kind == OpType::Ok)
    {
        for id in &op.ids {
            acked_at.entry(*id).or_insert(op.time_ms);
        }
    }
    let mut r = SequentialResult::default();
    for (invoked, op) in completions(history) {
        if op.f != "read" {
            continue;
        }
        r.reads += 1;
        match op.kind {
            OpType::Ok => {
                let seen = op.value.unwrap_or(0);
                for id in &op.ids {
                    let acked_before = acked_at.get(id).is_some_and(|t| *t <= invoked);
                    if acked_before && seen == 0 {
                        r.stale.push((op.index, *id));
                    }
                }
            }
            _ => r.refused += 1,
        }
    }
    r
}

/// Write availability around each fault (see the module doc).
pub fn availability(history: &[Op], end_ms: f64) -> Vec<FaultStats> {
    // Faults: a nemesis invoke starts one, the next nemesis ok heals it.
    let mut faults: Vec<(Op, Option<f64>)> = Vec::new();
    for op in history.iter().filter(|o| o.process == NEMESIS) {
        match op.kind {
            OpType::Invoke => faults.push((op.clone(), None)),
            _ => {
                if let Some(last) = faults.last_mut().filter(|f| f.1.is_none()) {
                    last.1 = Some(op.time_ms);
                }
            }
        }
    }
    let acks: Vec<(f64, f64)> = completions(history)
        .into_iter()
        .filter(|(_, op)| op.f != "read" && op.kind == OpType::Ok)
        .map(|(inv, op)| (inv, op.time_ms))
        .collect();
    let mut out = Vec::new();
    for (i, (fault, heal)) in faults.iter().enumerate() {
        let start = fault.time_ms;
        let window_end = faults.get(i + 1).map(|f| f.0.time_ms).unwrap_or(end_ms);
        let mut last = start;
        let mut gap: f64 = 0.0;
        let mut ack_times: Vec<f64> = acks
            .iter()
            .map(|(_, done)| *done)
            .filter(|t| *t >= start && *t <= window_end)
            .collect();
        ack_times.sort_by(f64::total_cmp);
        for t in ack_times {
            gap = gap.max(t - last);
            last = t;
        }
        gap = gap.max(window_end - last);
        let first_after = |from: f64| {
            acks.iter()
                .filter(|(inv, _)| *inv >= from)
                .map(|(_, done)| done - from)
                .min_by(f64::total_cmp)
                .map(|ms| ms / 1000.0)
        };
        out.push(FaultStats {
            fault: fault.f.clone(),
            node: fault.node,
            start_s: start / 1000.0,
            heal_s: heal.map(|h| h / 1000.0),
            longest_gap_s: gap / 1000.0,
            first_ack_after_fault_s: first_after(start),
            first_ack_after_heal_s: heal.and_then(first_after),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Recorder;

    /// One hand-made op: (process, type, f, ids, token, value).
    type Line<'a> = (&'a str, OpType, &'a str, &'a [u64], &'a str, Option<u64>);

    fn history(ops: &[Line]) -> Vec<Op> {
        let rec = Recorder::new(std::time::Instant::now());
        for (p, t, f, ids, token, v) in ops {
            let mut op = Op::new(*p, *t, *f).ids(ids.to_vec());
            if !token.is_empty() {
                op = op.token(*token);
            }
            op.value = *v;
            rec.record(op);
        }
        rec.history()
    }

    fn replicas(each: &[(u64, &[(u64, u64)])]) -> ReplicaRows {
        each.iter()
            .map(|(n, rows)| (*n, Some(rows.iter().copied().collect())))
            .collect()
    }

    use OpType::*;

    #[test]
    fn a_clean_set_history_is_valid() {
        let h = history(&[
            ("0", Invoke, "insert", &[1, 2], "t1", None),
            ("0", Ok, "insert", &[1, 2], "t1", None),
            ("1", Invoke, "insert", &[3], "t2", None),
            ("1", Fail, "insert", &[3], "t2", None),
            ("1", Invoke, "insert", &[4], "t3", None),
            ("1", Info, "insert", &[4], "t3", None),
        ]);
        let r = check_set(
            &h,
            &replicas(&[
                (1, &[(1, 1), (2, 1), (4, 1)]),
                (2, &[(1, 1), (2, 1), (4, 1)]),
            ]),
        );
        assert!(r.problems().is_empty(), "{:?}", r.problems());
        assert_eq!((r.acknowledged, r.recovered, r.unknown_absent), (2, 1, 0));
    }

    #[test]
    fn a_lost_acknowledged_row_is_caught() {
        let h = history(&[
            ("0", Invoke, "insert", &[1, 2], "t1", None),
            ("0", Ok, "insert", &[1, 2], "t1", None),
        ]);
        let r = check_set(&h, &replicas(&[(1, &[(1, 1), (2, 1)]), (2, &[(1, 1)])]));
        assert_eq!(r.lost, vec![(2, 2)]);
        assert!(!r.problems().is_empty());
    }

    #[test]
    fn a_duplicate_is_caught() {
        let h = history(&[
            ("0", Invoke, "insert", &[7], "t1", None),
            ("0", Info, "insert", &[7], "t1", None),
            ("0", Invoke, "insert", &[7], "t1", None),
            ("0", Ok, "insert", &[7], "t1", None),
        ]);
        let r = check_set(&h, &replicas(&[(1, &[(7, 2)])]));
        assert_eq!(r.duplicates, vec![(7, 1, 2)]);
        assert!(!r.problems().is_empty());
    }

    #[test]
    fn a_definitely_failed_insert_that_appears_is_caught() {
        let h = history(&[
            ("0", Invoke, "insert", &[5], "t1", None),
            ("0", Fail, "insert", &[5], "t1", None),
        ]);
        let r = check_set(&h, &replicas(&[(1, &[(5, 1)])]));
        assert_eq!(r.unexpected, vec![5]);
        assert!(!r.problems().is_empty());
    }

    #[test]
    fn an_insert_only_partly_present_is_caught() {
        // Unknown outcome: present or absent are both fine, but whole.
        let h = history(&[
            ("0", Invoke, "insert", &[1, 2, 3], "t1", None),
            ("0", Info, "insert", &[1, 2, 3], "t1", None),
            ("1", Invoke, "insert", &[4, 5, 6], "t2", None),
            ("1", Info, "insert", &[4, 5, 6], "t2", None),
        ]);
        let r = check_set(&h, &replicas(&[(1, &[(1, 1), (2, 1), (3, 1), (4, 1)])]));
        assert_eq!(r.partial, vec![("t2".to_string(), 1)]);
        assert!(!r.problems().is_empty());
    }

    #[test]
    fn phantoms_divergence_and_unreadable_replicas_are_caught() {
        let h = history(&[
            ("0", Invoke, "insert", &[1], "t1", None),
            ("0", Info, "insert", &[1], "t1", None),
        ]);
        let mut reps = replicas(&[(1, &[(1, 1), (99, 1)]), (2, &[])]);
        reps.insert(3, None);
        let r = check_set(&h, &reps);
        assert_eq!(r.phantom, vec![99]);
        assert_eq!(r.diverged, vec![2]);
        assert_eq!(r.unreadable, vec![3]);
    }

    #[test]
    fn a_stale_read_is_caught_and_a_refusal_is_not() {
        let h = history(&[
            ("0", Invoke, "insert", &[1], "t1", None),
            ("0", Ok, "insert", &[1], "t1", None),
            ("0", Invoke, "read", &[1], "", None),
            ("0", Ok, "read", &[1], "", Some(0)),
            ("0", Invoke, "read", &[1], "", None),
            ("0", Fail, "read", &[1], "", None),
            ("0", Invoke, "read", &[1], "", None),
            ("0", Ok, "read", &[1], "", Some(1)),
        ]);
        let r = check_sequential(&h);
        assert_eq!(r.stale, vec![(3, 1)]);
        assert_eq!((r.reads, r.refused), (3, 1));
    }

    #[test]
    fn a_read_racing_the_ack_is_not_stale() {
        // The read started before the insert was acknowledged.
        let h = history(&[
            ("0", Invoke, "insert", &[1], "t1", None),
            ("1", Invoke, "read", &[1], "", None),
            ("0", Ok, "insert", &[1], "t1", None),
            ("1", Ok, "read", &[1], "", Some(0)),
        ]);
        assert!(check_sequential(&h).stale.is_empty());
    }

    fn upsert(p: &str, t: OpType, token: &str, rows: &[(u64, u64, bool)]) -> Op {
        Op::new(p, t, "upsert").token(token).rows(
            rows.iter()
                .map(|&(key, version, deleted)| KvRow {
                    key,
                    version,
                    deleted,
                })
                .collect(),
        )
    }

    fn finals(each: &[(u64, &[(u64, u64)])]) -> ReplicaVersions {
        each.iter()
            .map(|(n, kv)| (*n, Some(kv.iter().copied().collect())))
            .collect()
    }

    #[test]
    fn replacing_accepts_the_newest_landed_version() {
        let h = vec![
            upsert("0", Invoke, "a", &[(1, 10, false), (2, 11, false)]),
            upsert("0", Ok, "a", &[(1, 10, false), (2, 11, false)]),
            upsert("1", Invoke, "b", &[(1, 12, false)]),
            upsert("1", Info, "b", &[(1, 12, false)]),
            upsert("0", Invoke, "c", &[(2, 13, true)]),
            upsert("0", Ok, "c", &[(2, 13, true)]),
        ];
        // Key 1 at 12 (unknown, landed) or 10; key 2 deleted.
        let r = check_replacing(&h, &finals(&[(1, &[(1, 12)]), (2, &[(1, 12)])]));
        assert!(r.problems().is_empty(), "{r:?}");
        let r = check_replacing(&h, &finals(&[(1, &[(1, 10)])]));
        assert!(r.problems().is_empty(), "{r:?}");
    }

    #[test]
    fn replacing_catches_an_old_version_a_lost_delete_and_a_failed_write() {
        let h = vec![
            upsert("0", Invoke, "a", &[(1, 10, false)]),
            upsert("0", Ok, "a", &[(1, 10, false)]),
            upsert("0", Invoke, "b", &[(1, 11, false)]),
            upsert("0", Ok, "b", &[(1, 11, false)]),
            upsert("0", Invoke, "c", &[(2, 12, false)]),
            upsert("0", Ok, "c", &[(2, 12, false)]),
            upsert("0", Invoke, "d", &[(2, 13, true)]),
            upsert("0", Ok, "d", &[(2, 13, true)]),
            upsert("1", Invoke, "e", &[(3, 14, false)]),
            upsert("1", Fail, "e", &[(3, 14, false)]),
        ];
        let r = check_replacing(&h, &finals(&[(1, &[(1, 10), (2, 12), (3, 14)])]));
        let keys: Vec<u64> = r.wrong.iter().map(|w| w.0).collect();
        assert_eq!(keys, vec![1, 2, 3], "{r:?}");
        // An acknowledged key that vanished.
        let r = check_replacing(&h, &finals(&[(1, &[])]));
        assert_eq!(r.wrong.len(), 1, "{r:?}");
        assert_eq!(r.wrong[0].0, 1);
    }

    #[test]
    fn availability_measures_the_gap_around_a_fault() {
        let mut h = Vec::new();
        let mut push = |t: f64, p: &str, kind: OpType, f: &str| {
            let mut op = Op::new(p, kind, f);
            op.time_ms = t;
            op.index = h.len() as u64;
            h.push(op);
        };
        push(0.0, "0", Invoke, "insert");
        push(10.0, "0", Ok, "insert");
        push(100.0, NEMESIS, Invoke, "kill");
        push(110.0, "0", Invoke, "insert");
        push(1100.0, "0", Ok, "insert"); // 1 s without an ack
        push(1200.0, "0", Invoke, "insert");
        push(1300.0, "0", Ok, "insert");
        push(2000.0, NEMESIS, Ok, "kill");
        push(2050.0, "0", Invoke, "insert");
        push(2100.0, "0", Ok, "insert");
        let a = availability(&h, 2500.0);
        assert_eq!(a.len(), 1);
        let f = &a[0];
        assert!((f.longest_gap_s - 1.0).abs() < 1e-9, "{f:?}");
        assert!((f.first_ack_after_fault_s.unwrap() - 1.0).abs() < 1e-9);
        assert!((f.first_ack_after_heal_s.unwrap() - 0.1).abs() < 1e-9);
        assert_eq!(f.heal_s, Some(2.0));
    }
}
