//! Linearizability of the `register` workload.
//!
//! Every key is an independent register (as Jepsen's `independent`
//! checker splits a history): its initial state is absent (nil), a `read`
//! returns the current value, a `write` sets it, and a `cas [expected,
//! new]` sets it to `new` iff it holds `expected`. A key's sub-history is
//! linearizable when its ops can be put in one order, each taking effect
//! at an instant between its invocation and its completion, in which every
//! op behaves as that sequential register says.
//!
//! What each completion means:
//!
//! * `ok`: the op took effect once, inside its interval (a read with the
//!   value it returned; a cas applied);
//! * `fail`: it definitely did not take effect, so it is dropped. A failed
//!   cas is *not* read as "the register did not hold `expected`": the
//!   workload also reports refusals without effect as `fail`;
//! * `info`, or no completion at all (the run ended): it may have taken
//!   effect at any instant after its invocation, or never. A read that
//!   ended so tells nothing and is dropped.
//!
//! The search is Wing & Gong's, with Lowe's memoisation, as in Knossos
//! and Porcupine (WGL): the invocations and completions of a key, ordered
//! by time, form a doubly linked list; the search repeatedly takes an
//! invocation that comes before the first completion still in the list,
//! applies its op to the model, and lifts the op out of the list; reaching
//! a completion whose op has not taken effect means the choices so far
//! were wrong, so it puts back the last op taken and tries the next
//! candidate. Configurations (the set of ops taken, register value)
//! already explored are remembered and never explored again, which keeps
//! the search polynomial in practice. An `info` op has no completion in
//! the list, so nothing forces it to take effect; the search succeeds once
//! every op with a completion has taken effect (the rest never happened,
//! or happened after everything observed).
//!
//! `info` ops would otherwise multiply the configurations (any subset of
//! them may have happened by any point), so the search differs from plain
//! WGL in three ways that keep it exact:
//!
//! * a configuration is skipped when one visited before has the same ops
//!   with a completion taken, the same register, and a *subset* of the
//!   `info` ops taken: it has the same ops to place and more options;
//! * ops with a completion are tried before `info` ops, so configurations
//!   with few `info` ops taken come first and cover the others;
//! * of identical `info` ops (same action), the earliest invoked is taken
//!   first, as which of them took effect makes no difference.
//!
//! A brute-force test (every order of small random histories) checks the
//! search's verdicts.
//!
//! The search is bounded: a key whose search takes more than the step
//! budget is reported `unknown` — not proven linearizable, so the verdict
//! is invalid — rather than letting a pathological history run for ever.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::history::{Op, OpType, NEMESIS};

/// Search steps allowed per key by [`check_register`]. A step is one
/// candidate considered or one remembered configuration compared: about a
/// second of a debug build, a tenth of that optimised, and little memory.
pub const DEFAULT_MAX_STEPS: u64 = 20_000_000;

/// How the ops of one kind (read / write / cas) ended.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct KindCounts {
    pub ok: u64,
    pub fail: u64,
    /// Unknown outcome, or never completed.
    pub info: u64,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct RegisterResult {
    /// Registers (keys) the history acts on.
    pub keys: u64,
    pub reads: KindCounts,
    pub writes: KindCounts,
    pub cas: KindCounts,
    /// Register ops without the key, written value or `[expected, new]`
    /// they need: not checked.
    pub malformed: u64,
    /// The step budget of each key's search.
    pub max_steps: u64,
    /// Search steps taken over all keys.
    pub steps: u64,
    /// Keys whose history is not linearizable.
    pub non_linearizable: Vec<u64>,
    /// Keys whose search ran out of its step budget: neither proven
    /// linearizable nor not.
    pub unknown: Vec<u64>,
    /// Why the first non-linearizable key is not: the longest linearizable
    /// prefix found and the op that could not follow it.
    pub explanation: Option<String>,
}

impl RegisterResult {
    /// What makes the verdict invalid; empty means every key was proven
    /// linearizable.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.non_linearizable.is_empty() {
            let mut s = format!(
                "{} keys not linearizable: {:?}",
                self.non_linearizable.len(),
                self.non_linearizable
            );
            if let Some(why) = &self.explanation {
                s.push_str("; ");
                s.push_str(why);
            }
            p.push(s);
        }
        if !self.unknown.is_empty() {
            p.push(format!(
                "{} keys whose linearizability search ran out of its budget of {} steps: {:?}",
                self.unknown.len(),
                self.max_steps,
                self.unknown
            ));
        }
        if self.malformed > 0 {
            p.push(format!(
                "{} register ops without the key, value or cas they need",
                self.malformed
            ));
        }
        p
    }

    /// Every key's history was proven linearizable (and every op checked).
    pub fn linearizable(&self) -> bool {
        self.problems().is_empty()
    }
}

/// [`check_register_with_budget`] with [`DEFAULT_MAX_STEPS`].
pub fn check_register(history: &[Op]) -> RegisterResult {
    check_register_with_budget(history, DEFAULT_MAX_STEPS)
}

/// Checks every key's sub-history of the `register` workload for
/// linearizability (see the module doc), giving each key's search at most
/// `max_steps` steps.
pub fn check_register_with_budget(history: &[Op], max_steps: u64) -> RegisterResult {
    let mut r = RegisterResult {
        max_steps,
        ..RegisterResult::default()
    };
    let by_key = register_ops(history, &mut r);
    r.keys = by_key.len() as u64;
    for (key, ops) in &by_key {
        let (verdict, steps) = search(ops, max_steps);
        r.steps += steps;
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Unknown => r.unknown.push(*key),
            Verdict::NotLinearizable(deepest) => {
                if r.explanation.is_none() {
                    r.explanation = Some(explain(*key, ops, &deepest));
                }
                r.non_linearizable.push(*key);
            }
        }
    }
    r
}

/// The register: `None` while the key is absent.
type Register = Option<u64>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// Reads this value.
    Read(Register),
    Write(u64),
    /// `[expected, new]`, applied.
    Cas(u64, u64),
}

impl Action {
    /// The register after this action takes effect on `reg`, or `None`
    /// when it cannot take effect there.
    ///
    /// An `info` cas needs no "did not apply" branch: not taking effect at
    /// all is always possible (see the module doc).
    fn apply(self, reg: Register) -> Option<Register> {
        match self {
            Action::Read(v) => (reg == v).then_some(reg),
            Action::Write(v) => Some(Some(v)),
            Action::Cas(expected, new) => (reg == Some(expected)).then_some(Some(new)),
        }
    }
}

/// Where an event is in the history: its time, then the recorder's index
/// (which orders events recorded within one clock tick).
#[derive(Clone, Copy, Debug, PartialEq)]
struct At {
    time_ms: f64,
    index: u64,
}

impl At {
    fn of(op: &Op) -> At {
        At {
            time_ms: op.time_ms,
            index: op.index,
        }
    }

    fn cmp(&self, other: &At) -> Ordering {
        self.time_ms
            .total_cmp(&other.time_ms)
            .then(self.index.cmp(&other.index))
    }
}

/// One op of a register, as the search sees it.
#[derive(Debug, Clone)]
struct RegOp<'a> {
    process: &'a str,
    action: Action,
    call: At,
    /// `None`: `info` or never completed — it may take effect at any
    /// instant after its call, or never.
    ret: Option<At>,
}

/// The register ops of the history by key, with `fail`ed ops and `info`
/// reads dropped; counts kinds and malformed ops into `r`.
fn register_ops<'a>(history: &'a [Op], r: &mut RegisterResult) -> BTreeMap<u64, Vec<RegOp<'a>>> {
    // Pair each completion with its process's latest open invocation.
    let mut open: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    let mut pairs: Vec<(&Op, Option<&Op>)> = Vec::new();
    for op in history.iter().filter(|o| o.process != NEMESIS) {
        if op.kind == OpType::Invoke {
            open.entry(&op.process).or_default().push(op);
        } else if let Some(invoke) = open.get_mut(op.process.as_str()).and_then(Vec::pop) {
            pairs.push((invoke, Some(op)));
        }
    }
    pairs.extend(open.into_values().flatten().map(|invoke| (invoke, None)));

    let mut by_key: BTreeMap<u64, Vec<RegOp>> = BTreeMap::new();
    for (invoke, done) in pairs {
        let counts = match invoke.f.as_str() {
            "read" => &mut r.reads,
            "write" => &mut r.writes,
            "cas" => &mut r.cas,
            _ => continue,
        };
        let kind = done.map_or(OpType::Info, |d| d.kind);
        match kind {
            OpType::Ok => counts.ok += 1,
            OpType::Fail => counts.fail += 1,
            OpType::Info | OpType::Invoke => counts.info += 1,
        }
        let action = match (invoke.f.as_str(), invoke.value, invoke.cas) {
            ("read", _, _) => Action::Read(done.and_then(|d| d.value)),
            ("write", Some(v), _) => Action::Write(v),
            ("cas", _, Some([expected, new])) => Action::Cas(expected, new),
            _ => {
                r.malformed += 1;
                continue;
            }
        };
        let Some(key) = invoke.key else {
            r.malformed += 1;
            continue;
        };
        // Listed even if every op of it is dropped: it still counts as a key.
        let ops = by_key.entry(key).or_default();
        let ret = match (kind, done) {
            (OpType::Ok, Some(done)) => {
                // A completion recorded before its invocation (a clock
                // step) is taken as at it, so the op still has an interval.
                let ret = At::of(done);
                Some(if ret.cmp(&At::of(invoke)) == Ordering::Less {
                    At::of(invoke)
                } else {
                    ret
                })
            }
            (OpType::Fail, _) => continue,
            _ if matches!(action, Action::Read(_)) => continue,
            _ => None,
        };
        ops.push(RegOp {
            process: &invoke.process,
            action,
            call: At::of(invoke),
            ret,
        });
    }
    by_key
}

/// The deepest point the search reached: the ops taken, in order, the
/// register after them, and the op whose completion stopped it.
#[derive(Debug, Clone)]
struct Deepest {
    taken: Vec<usize>,
    reg: Register,
    blocked: Option<usize>,
}

enum Verdict {
    Linearizable,
    NotLinearizable(Deepest),
    Unknown,
}

const NIL: usize = usize::MAX;

/// A node of the search's list: node 0 is the head, the others an op's
/// call or return event.
#[derive(Debug, Clone)]
struct Node {
    op: usize,
    call: bool,
    /// A call's return node, or [`NIL`] (an op that may never happen).
    ret: usize,
    prev: usize,
    next: usize,
}

/// Dancing-links list of call and return events, ordered by time.
struct Events {
    nodes: Vec<Node>,
}

impl Events {
    fn new(ops: &[RegOp]) -> Events {
        let mut events: Vec<(At, bool, usize)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, true, i));
            if let Some(ret) = op.ret {
                events.push((ret, false, i));
            }
        }
        // At one instant a call comes before a return: overlapping is the
        // weaker claim, so ties never make a history fail.
        events.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut nodes = vec![Node {
            op: NIL,
            call: false,
            ret: NIL,
            prev: NIL,
            next: NIL,
        }];
        let mut ret_node = vec![NIL; ops.len()];
        for (i, (_, call, op)) in events.iter().enumerate() {
            let n = i + 1;
            if !call {
                ret_node[*op] = n;
            }
            nodes[n - 1].next = n;
            nodes.push(Node {
                op: *op,
                call: *call,
                ret: NIL,
                prev: n - 1,
                next: NIL,
            });
        }
        for node in nodes.iter_mut().skip(1).filter(|n| n.call) {
            node.ret = ret_node[node.op];
        }
        Events { nodes }
    }

    fn first(&self) -> usize {
        self.nodes[0].next
    }

    fn unlink(&mut self, n: usize) {
        let (prev, next) = (self.nodes[n].prev, self.nodes[n].next);
        self.nodes[prev].next = next;
        if next != NIL {
            self.nodes[next].prev = prev;
        }
    }

    /// Puts back a node unlinked last (its neighbours still point past it).
    fn relink(&mut self, n: usize) {
        let (prev, next) = (self.nodes[n].prev, self.nodes[n].next);
        self.nodes[prev].next = n;
        if next != NIL {
            self.nodes[next].prev = n;
        }
    }

    /// Whether a call of an op identical to `node`'s, both without a
    /// return, is still in the list before it.
    fn twin_before(&self, node: usize, ops: &[RegOp]) -> bool {
        let action = ops[self.nodes[node].op].action;
        let mut n = self.first();
        while n != node && n != NIL {
            let other = &self.nodes[n];
            if other.call && other.ret == NIL && ops[other.op].action == action {
                return true;
            }
            n = other.next;
        }
        false
    }

    /// Takes a call and its return out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        let ret = self.nodes[call].ret;
        if ret != NIL {
            self.unlink(ret);
        }
    }

    /// Undoes [`Events::lift`] of the call lifted last: in reverse order, so
    /// every node's saved neighbours are current again.
    fn unlift(&mut self, call: usize) {
        let ret = self.nodes[call].ret;
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// The configurations the search has visited, each the set of ops taken
/// and the register. Ops that may never happen are compared by inclusion:
/// a configuration with the same ops with a completion taken and the same
/// register as one already visited, and a superset of its optional ops
/// taken, has no way to finish the other lacked (it has the same ops left
/// to place and fewer optional ones), so it is not explored again.
struct Memo {
    /// Per op: whether it is optional (no completion), and its bit.
    slot: Vec<(bool, usize)>,
    /// The ops with a completion taken, as a bitset, then the register as
    /// two words (present, value): compared exactly.
    exact: Vec<u64>,
    exact_bits: usize,
    /// The optional ops taken, as a bitset.
    optional: Vec<u64>,
    /// Per exact part, the minimal optional sets visited with it.
    seen: HashMap<Box<[u64]>, Vec<Box<[u64]>>>,
}

impl Memo {
    fn new(ops: &[RegOp]) -> Memo {
        let (mut exact, mut optional) = (0usize, 0usize);
        let slot = ops
            .iter()
            .map(|op| {
                let n = if op.ret.is_some() {
                    &mut exact
                } else {
                    &mut optional
                };
                *n += 1;
                (op.ret.is_none(), *n - 1)
            })
            .collect();
        let exact_bits = exact.div_ceil(64);
        Memo {
            slot,
            exact: vec![0; exact_bits + 2],
            exact_bits,
            optional: vec![0; optional.div_ceil(64)],
            seen: HashMap::new(),
        }
    }

    fn set(&mut self, op: usize, on: bool) {
        let (optional, bit) = self.slot[op];
        let words = if optional {
            &mut self.optional
        } else {
            &mut self.exact
        };
        let (w, b) = (bit / 64, 1u64 << (bit % 64));
        if on {
            words[w] |= b;
        } else {
            words[w] &= !b;
        }
    }

    /// Records the current set of ops taken with register `reg`; false
    /// when it is covered by a visited configuration. Adds the work done
    /// (sets compared) to `steps`.
    fn visit(&mut self, reg: Register, steps: &mut u64) -> bool {
        self.exact[self.exact_bits] = u64::from(reg.is_some());
        self.exact[self.exact_bits + 1] = reg.unwrap_or(0);
        let current = self.optional.as_slice();
        let Some(sets) = self.seen.get_mut(self.exact.as_slice()) else {
            self.seen
                .insert(self.exact.as_slice().into(), vec![current.into()]);
            return true;
        };
        *steps += sets.len() as u64;
        let subset = |a: &[u64], b: &[u64]| a.iter().zip(b).all(|(a, b)| a & !b == 0);
        if sets.iter().any(|s| subset(s, current)) {
            return false;
        }
        // Sets it covers in turn need no comparing any more.
        sets.retain(|s| !subset(current, s));
        sets.push(current.into());
        true
    }
}

/// WGL search of one key's ops (see the module doc); returns the verdict
/// and the steps taken.
///
/// Below the first completion still in the list, the ops with a
/// completion are tried first and the optional ones after them, so that
/// configurations with few optional ops taken are visited first and cover
/// the others (see [`Memo`]).
fn search(ops: &[RegOp], max_steps: u64) -> (Verdict, u64) {
    let mut events = Events::new(ops);
    let mut memo = Memo::new(ops);
    // The calls taken, with the register before each.
    let mut taken: Vec<(usize, Register)> = Vec::new();
    let mut reg: Register = None;
    // Ops with a completion not yet taken: done when none is left.
    let mut owed = ops.iter().filter(|o| o.ret.is_some()).count();
    let mut deepest: Option<Deepest> = None;
    let mut node = events.first();
    // Whether this pass over the candidates tries the optional ops.
    let mut optional_pass = false;
    let mut steps = 0;
    while owed > 0 {
        steps += 1;
        if steps > max_steps {
            return (Verdict::Unknown, max_steps);
        }
        if node != NIL && events.nodes[node].call {
            let op = events.nodes[node].op;
            let optional = ops[op].ret.is_none();
            // Of identical optional ops, the earliest called is taken
            // first: which of them took effect makes no difference, and
            // trying each would multiply the search.
            let candidate =
                optional == optional_pass && !(optional && events.twin_before(node, ops));
            if let Some(next) = ops[op].action.apply(reg).filter(|_| candidate) {
                memo.set(op, true);
                if memo.visit(next, &mut steps) {
                    taken.push((node, reg));
                    reg = next;
                    events.lift(node);
                    if !optional {
                        owed -= 1;
                    }
                    node = events.first();
                    optional_pass = false;
                    continue;
                }
                memo.set(op, false);
            }
            node = events.nodes[node].next;
        } else if !optional_pass {
            optional_pass = true;
            node = events.first();
        } else {
            // An op's completion comes before it took effect (the end of the
            // list cannot come first while a completion is owed, but is
            // handled alike): the last choice was wrong.
            if deepest.as_ref().is_none_or(|d| taken.len() > d.taken.len()) {
                deepest = Some(Deepest {
                    taken: taken.iter().map(|(n, _)| events.nodes[*n].op).collect(),
                    reg,
                    blocked: (node != NIL).then(|| events.nodes[node].op),
                });
            }
            let Some((call, before)) = taken.pop() else {
                let deepest = deepest.unwrap_or(Deepest {
                    taken: Vec::new(),
                    reg: None,
                    blocked: None,
                });
                return (Verdict::NotLinearizable(deepest), steps);
            };
            let op = events.nodes[call].op;
            reg = before;
            memo.set(op, false);
            events.unlift(call);
            optional_pass = ops[op].ret.is_none();
            if !optional_pass {
                owed += 1;
            }
            node = events.nodes[call].next;
        }
    }
    (Verdict::Linearizable, steps)
}

fn show_register(reg: Register) -> String {
    reg.map_or("nil".to_string(), |v| v.to_string())
}

fn describe(op: &RegOp) -> String {
    let what = match op.action {
        Action::Read(v) => format!("read {}", show_register(v)),
        Action::Write(v) => format!("write {v}"),
        Action::Cas(expected, new) => format!("cas {expected}->{new}"),
    };
    let end = op
        .ret
        .map_or("? (info)".to_string(), |r| format!("{:.1} ms", r.time_ms));
    format!(
        "{what} (process {}, op {}, {:.1}..{end})",
        op.process, op.call.index, op.call.time_ms
    )
}

/// How many ops of the linearizable prefix an explanation shows.
const SHOWN: usize = 8;

fn explain(key: u64, ops: &[RegOp], deepest: &Deepest) -> String {
    let taken = &deepest.taken;
    let skipped = taken.len().saturating_sub(SHOWN);
    let mut prefix: Vec<String> = taken[skipped..]
        .iter()
        .map(|op| describe(&ops[*op]))
        .collect();
    if skipped > 0 {
        prefix.insert(0, format!("… {skipped} earlier ops"));
    }
    let blocked = deepest
        .blocked
        .map_or("an op".to_string(), |op| describe(&ops[op]));
    format!(
        "key {key}: the longest linearizable prefix takes {} of {} ops [{}], leaving the register at {}; \
         then {blocked} must take effect before it completed, and no order of the ops concurrent with it allows that",
        taken.len(),
        ops.len(),
        prefix.join(", "),
        show_register(deepest.reg),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use OpType::*;

    /// A history of `(time_ms, op)` lines, indexed in the order given.
    fn history(lines: &[(f64, Op)]) -> Vec<Op> {
        lines
            .iter()
            .enumerate()
            .map(|(i, (t, op))| {
                let mut op = op.clone();
                op.index = i as u64;
                op.time_ms = *t;
                op
            })
            .collect()
    }

    fn write(p: &str, key: u64, v: u64) -> Op {
        Op::new(p, Invoke, "write").key(key).value(v)
    }

    fn read(p: &str, key: u64) -> Op {
        Op::new(p, Invoke, "read").key(key)
    }

    fn cas(p: &str, key: u64, expected: u64, new: u64) -> Op {
        Op::new(p, Invoke, "cas").key(key).cas([expected, new])
    }

    fn ok(op: &Op) -> Op {
        op.complete(Ok)
    }

    fn read_ok(op: &Op, v: Option<u64>) -> Op {
        let mut done = op.complete(Ok);
        done.value = v;
        done
    }

    #[track_caller]
    fn assert_linearizable(h: &[Op]) -> RegisterResult {
        let r = check_register(h);
        assert!(r.linearizable(), "{:?}", r.problems());
        r
    }

    #[track_caller]
    fn assert_not_linearizable(h: &[Op], keys: &[u64]) -> RegisterResult {
        let r = check_register(h);
        assert_eq!(r.non_linearizable, keys, "{r:?}");
        assert!(r.unknown.is_empty(), "{r:?}");
        assert!(!r.linearizable());
        assert!(r.explanation.is_some());
        r
    }

    #[test]
    fn a_sequential_write_then_read_is_linearizable() {
        let (w, r) = (write("0", 1, 1), read("0", 1));
        let h = history(&[
            (0.0, w.clone()),
            (10.0, ok(&w)),
            (20.0, r.clone()),
            (30.0, read_ok(&r, Some(1))),
        ]);
        let res = assert_linearizable(&h);
        assert_eq!(res.keys, 1);
        assert_eq!(res.reads.ok + res.writes.ok, 2);
    }

    #[test]
    fn a_read_overlapping_a_write_may_see_either_value() {
        for seen in [None, Some(1)] {
            let (w, r) = (write("0", 1, 1), read("1", 1));
            let h = history(&[
                (0.0, w.clone()),
                (5.0, r.clone()),
                (10.0, ok(&w)),
                (15.0, read_ok(&r, seen)),
            ]);
            assert_linearizable(&h);
        }
        // A read before any write sees nil, not 1.
        let (r, w) = (read("1", 1), write("0", 1, 1));
        let h = history(&[
            (0.0, r.clone()),
            (5.0, read_ok(&r, Some(1))),
            (10.0, w.clone()),
            (15.0, ok(&w)),
        ]);
        assert_not_linearizable(&h, &[1]);
    }

    #[test]
    fn a_stale_read_is_not_linearizable() {
        let (w1, w2, r) = (write("0", 1, 1), write("1", 1, 2), read("2", 1));
        let h = history(&[
            (0.0, w1.clone()),
            (10.0, ok(&w1)),
            (20.0, w2.clone()),
            (30.0, ok(&w2)),
            (40.0, r.clone()),
            (50.0, read_ok(&r, Some(1))),
        ]);
        let res = assert_not_linearizable(&h, &[1]);
        let why = res.explanation.clone().unwrap_or_default();
        assert!(why.contains("then read 1 (process 2"), "{why}");
        assert!(why.contains("register at 2"), "{why}");
        assert!(res.problems()[0].contains("1 keys not linearizable: [1]"));
    }

    #[test]
    fn a_read_of_a_value_never_written_is_not_linearizable() {
        let (w, r) = (write("0", 1, 1), read("1", 1));
        let h = history(&[
            (0.0, w.clone()),
            (0.0, r.clone()),
            (10.0, ok(&w)),
            (10.0, read_ok(&r, Some(7))),
        ]);
        assert_not_linearizable(&h, &[1]);
    }

    #[test]
    fn an_applied_cas_needs_its_expected_value() {
        let (w, c, r) = (write("0", 1, 1), cas("1", 1, 1, 2), read("2", 1));
        let h = history(&[
            (0.0, w.clone()),
            (10.0, ok(&w)),
            (20.0, c.clone()),
            (30.0, ok(&c)),
            (40.0, r.clone()),
            (50.0, read_ok(&r, Some(2))),
        ]);
        assert_linearizable(&h);
        // The register only ever held 1: a cas from 5 cannot have applied.
        let c = cas("1", 1, 5, 6);
        let h = history(&[
            (0.0, w.clone()),
            (10.0, ok(&w)),
            (20.0, c.clone()),
            (30.0, ok(&c)),
        ]);
        assert_not_linearizable(&h, &[1]);
    }

    #[test]
    fn a_failed_cas_is_dropped_even_when_it_could_have_applied() {
        // The choice documented in the module doc: `fail` means only "did
        // not take effect" (a refusal is one), not "the register differed".
        let (w, c, r) = (write("0", 1, 1), cas("1", 1, 1, 2), read("2", 1));
        let h = history(&[
            (0.0, w.clone()),
            (10.0, ok(&w)),
            (20.0, c.clone()),
            (30.0, c.complete(Fail)),
            (40.0, r.clone()),
            (50.0, read_ok(&r, Some(1))),
        ]);
        let res = assert_linearizable(&h);
        assert_eq!(res.cas.fail, 1);
        // And it did not take effect: reading its new value is not allowed.
        let h = history(&[
            (0.0, w.clone()),
            (10.0, ok(&w)),
            (20.0, c.clone()),
            (30.0, c.complete(Fail)),
            (40.0, r.clone()),
            (50.0, read_ok(&r, Some(2))),
        ]);
        assert_not_linearizable(&h, &[1]);
    }

    #[test]
    fn an_unknown_write_may_or_may_not_take_effect() {
        let (w, r) = (write("0", 1, 1), read("1", 1));
        // Seen later: it happened.
        let h = history(&[
            (0.0, w.clone()),
            (10.0, w.complete(Info)),
            (20.0, r.clone()),
            (30.0, read_ok(&r, Some(1))),
        ]);
        assert_linearizable(&h);
        // Never seen: it did not (or not yet).
        let h = history(&[
            (0.0, w.clone()),
            (10.0, w.complete(Info)),
            (20.0, r.clone()),
            (30.0, read_ok(&r, None)),
        ]);
        assert_linearizable(&h);
        // Never completed at all: the same as info, even seen long after.
        let h = history(&[
            (0.0, w.clone()),
            (200.0, r.clone()),
            (300.0, read_ok(&r, Some(1))),
        ]);
        let res = assert_linearizable(&h);
        assert_eq!(res.writes.info, 1);
    }

    #[test]
    fn an_unknown_write_seen_then_unseen_is_not_linearizable() {
        let (w0, w1) = (write("0", 1, 0), write("1", 1, 1));
        let (r1, r2) = (read("2", 1), read("2", 1));
        let h = history(&[
            (0.0, w0.clone()),
            (10.0, ok(&w0)),
            (20.0, w1.clone()),
            (30.0, w1.complete(Info)),
            (40.0, r1.clone()),
            (50.0, read_ok(&r1, Some(1))),
            (60.0, r2.clone()),
            (70.0, read_ok(&r2, Some(0))),
        ]);
        assert_not_linearizable(&h, &[1]);
    }

    #[test]
    fn an_unknown_cas_may_apply_or_not() {
        let (w, c) = (write("0", 1, 1), cas("1", 1, 1, 2));
        let (r1, r2) = (read("2", 1), read("2", 1));
        for seen in [1, 2] {
            let h = history(&[
                (0.0, w.clone()),
                (10.0, ok(&w)),
                (20.0, c.clone()),
                (30.0, c.complete(Info)),
                (40.0, r1.clone()),
                (50.0, read_ok(&r1, Some(seen))),
            ]);
            assert_linearizable(&h);
        }
        // Applied, then undone with nothing else written.
        let h = history(&[
            (0.0, w.clone()),
            (10.0, ok(&w)),
            (20.0, c.clone()),
            (30.0, c.complete(Info)),
            (40.0, r1.clone()),
            (50.0, read_ok(&r1, Some(2))),
            (60.0, r2.clone()),
            (70.0, read_ok(&r2, Some(1))),
        ]);
        assert_not_linearizable(&h, &[1]);
    }

    #[test]
    fn only_the_broken_key_is_reported() {
        let (a, b) = (write("0", 1, 1), write("1", 2, 1));
        let (ra, rb) = (read("2", 1), read("3", 2));
        let h = history(&[
            (0.0, a.clone()),
            (0.0, b.clone()),
            (10.0, ok(&a)),
            (10.0, ok(&b)),
            (20.0, ra.clone()),
            (20.0, rb.clone()),
            (30.0, read_ok(&ra, Some(1))),
            (30.0, read_ok(&rb, None)),
        ]);
        let res = assert_not_linearizable(&h, &[2]);
        assert_eq!(res.keys, 2);
        assert!(res.explanation.unwrap_or_default().starts_with("key 2:"));
    }

    #[test]
    fn nemesis_and_other_ops_are_ignored_and_malformed_ones_reported() {
        let (w, r) = (write("0", 1, 1), read("0", 1));
        let ins = Op::new("1", Invoke, "insert").ids(vec![1]);
        let kill = Op::new(NEMESIS, Invoke, "kill").node(1);
        let h = history(&[
            (0.0, kill.clone()),
            (1.0, ins.clone()),
            (2.0, w.clone()),
            (3.0, ok(&ins)),
            (10.0, ok(&w)),
            (11.0, kill.complete(Ok)),
            (20.0, r.clone()),
            (30.0, read_ok(&r, Some(1))),
        ]);
        let res = assert_linearizable(&h);
        assert_eq!((res.keys, res.reads.ok, res.writes.ok), (1, 1, 1));
        let bad = Op::new("0", Invoke, "write").value(1); // no key
        let res = check_register(&history(&[(0.0, bad.clone()), (1.0, ok(&bad))]));
        assert_eq!(res.malformed, 1);
        assert!(!res.linearizable());
    }

    #[test]
    fn register_fields_round_trip_through_json() {
        let op = cas("0", 3, 1, 2).node(1);
        let line = serde_json::to_string(&op).unwrap();
        assert!(
            line.contains("\"key\":3") && line.contains("\"cas\":[1,2]"),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<Op>(&line).unwrap(), op);
        // Ops of the other workloads carry neither.
        let line = serde_json::to_string(&Op::new("0", Invoke, "insert")).unwrap();
        assert!(!line.contains("key") && !line.contains("cas"), "{line}");
    }

    /// One op of a simulated run.
    struct Planned {
        process: usize,
        op: Op,
        invoke: f64,
        effect: f64,
        complete: f64,
        /// Reported `info`; whether it took effect is a coin toss.
        unknown: bool,
        takes_effect: bool,
        /// Never completed (the process's last op, the run ended).
        open: bool,
        done: Option<Op>,
    }

    /// A run of `n` ops by `processes` workers against real sequential
    /// registers (`keys` of them): every op takes effect at a random
    /// instant inside its interval, and is recorded as it came out; a
    /// share `unknown` of them are reported `info` (and took effect or not).
    fn simulate(seed: u64, n: usize, processes: usize, keys: u64, unknown: f64) -> Vec<Op> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut clock = vec![0u64; processes];
        let mut plan: Vec<Planned> = Vec::new();
        for _ in 0..n {
            // The worker that is free first goes next, so ops overlap.
            let p = (0..processes).min_by_key(|p| clock[*p]).unwrap_or(0);
            let start = clock[p] + rng.random_range(0..10);
            let end = start + rng.random_range(1..30);
            clock[p] = end + 1;
            // Distinct times across workers: no ties to reason about.
            let at = |tick: u64| (tick * processes as u64 + p as u64) as f64;
            let (invoke, complete) = (at(start), at(end));
            let key = rng.random_range(0..keys);
            let process = p.to_string();
            let op = match rng.random_range(0..3) {
                0 => read(&process, key),
                1 => write(&process, key, rng.random_range(0..4)),
                _ => cas(
                    &process,
                    key,
                    rng.random_range(0..4),
                    rng.random_range(0..4),
                ),
            };
            let unknown = rng.random_bool(unknown);
            plan.push(Planned {
                process: p,
                op,
                invoke,
                effect: invoke + rng.random::<f64>() * (complete - invoke),
                complete,
                unknown,
                takes_effect: !unknown || rng.random_bool(0.5),
                open: false,
                done: None,
            });
        }
        for p in 0..processes {
            if let Some(last) = plan.iter_mut().rev().find(|o| o.process == p) {
                last.open = rng.random_bool(0.5);
            }
        }
        let mut order: Vec<usize> = (0..plan.len()).collect();
        order.sort_by(|a, b| plan[*a].effect.total_cmp(&plan[*b].effect));
        let mut registers: BTreeMap<u64, u64> = BTreeMap::new();
        for i in order {
            let o = &mut plan[i];
            let key = o.op.key.unwrap_or(0);
            let reg = registers.get(&key).copied();
            let mut done = o.op.complete(if o.unknown { Info } else { Ok });
            match (o.op.f.as_str(), o.takes_effect) {
                ("read", true) if !o.unknown => done.value = reg,
                ("write", true) => {
                    registers.insert(key, o.op.value.unwrap_or(0));
                }
                ("cas", true) => match o.op.cas {
                    Some([expected, new]) if reg == Some(expected) => {
                        registers.insert(key, new);
                    }
                    _ if !o.unknown => done.kind = Fail,
                    _ => {}
                },
                _ => {}
            }
            o.done = (!o.open).then_some(done);
        }
        let mut lines: Vec<(f64, Op)> = Vec::new();
        for o in plan {
            lines.push((o.invoke, o.op));
            if let Some(done) = o.done {
                lines.push((o.complete, done));
            }
        }
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        history(&lines)
    }

    #[test]
    fn simulated_registers_are_linearizable_and_a_corrupted_read_is_caught() {
        for seed in 0..50 {
            let mut h = simulate(seed, 200, 5, 2, 0.08);
            let r = check_register(&h);
            assert!(r.linearizable(), "seed {seed}: {:?}", r.problems());
            assert!(r.reads.ok + r.writes.ok + r.cas.ok > 100, "{r:?}");

            let mut rng = ChaCha8Rng::seed_from_u64(seed + 1000);
            let reads: Vec<usize> = (0..h.len())
                .filter(|i| h[*i].f == "read" && h[*i].kind == Ok)
                .collect();
            let victim = reads[rng.random_range(0..reads.len())];
            h[victim].value = Some(1_000_000);
            let key = h[victim].key.unwrap();
            let r = check_register(&h);
            assert_eq!(r.non_linearizable, vec![key], "seed {seed}: {r:?}");
            assert!(r.unknown.is_empty());
        }
    }

    /// Whether `ops` can be ordered as the module doc says, by trying every
    /// order: the reference the search must agree with.
    fn brute_force(ops: &[RegOp], taken: &mut Vec<bool>, reg: Register) -> bool {
        if (0..ops.len()).all(|i| taken[i] || ops[i].ret.is_none()) {
            return true;
        }
        for i in 0..ops.len() {
            // Next only if every op that completed before it started is taken.
            let ready = !taken[i]
                && (0..ops.len()).all(|j| {
                    taken[j]
                        || ops[j]
                            .ret
                            .is_none_or(|r| r.cmp(&ops[i].call) != Ordering::Less)
                });
            let Some(next) = ops[i].action.apply(reg).filter(|_| ready) else {
                continue;
            };
            taken[i] = true;
            let found = brute_force(ops, taken, next);
            taken[i] = false;
            if found {
                return true;
            }
        }
        false
    }

    #[test]
    fn the_search_agrees_with_trying_every_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        // (histories, most ops, share of info writes and cases, values):
        // the second has many identical info ops, for the memo's inclusion
        // test and the order among identical ops.
        for (histories, most, info, values) in [(3000, 7, 0.3, 3), (1500, 8, 0.6, 2)] {
            let mut verdicts = [0; 2];
            for _ in 0..histories {
                let n = rng.random_range(1..=most);
                let mut events: Vec<u64> = (0..2 * n as u64).collect();
                // Random distinct event instants, two per op.
                for i in (1..events.len()).rev() {
                    events.swap(i, rng.random_range(0..=i));
                }
                let ops: Vec<RegOp> = (0..n)
                    .map(|i| {
                        let (a, b) = (events[2 * i], events[2 * i + 1]);
                        let at = |t: u64| At {
                            time_ms: t as f64,
                            index: t,
                        };
                        let value = |rng: &mut ChaCha8Rng| rng.random_range(0..values);
                        let action = match rng.random_range(0..3) {
                            0 => Action::Read(rng.random_bool(0.8).then(|| value(&mut rng))),
                            1 => Action::Write(value(&mut rng)),
                            _ => Action::Cas(value(&mut rng), value(&mut rng)),
                        };
                        let info = !matches!(action, Action::Read(_)) && rng.random_bool(info);
                        RegOp {
                            process: "p",
                            action,
                            call: at(a.min(b)),
                            ret: (!info).then(|| at(a.max(b))),
                        }
                    })
                    .collect();
                let expected = brute_force(&ops, &mut vec![false; n], None);
                let (verdict, _) = search(&ops, DEFAULT_MAX_STEPS);
                let got = match verdict {
                    Verdict::Linearizable => true,
                    Verdict::NotLinearizable(_) => false,
                    Verdict::Unknown => panic!("out of budget on {ops:?}"),
                };
                assert_eq!(got, expected, "{ops:?}");
                verdicts[usize::from(got)] += 1;
            }
            // Both verdicts are well represented.
            assert!(verdicts.iter().all(|v| *v > histories / 10), "{verdicts:?}");
        }
    }

    #[test]
    fn many_unknown_ops_are_searched_to_the_end() {
        // A fifth of the ops info, one key: the kind of history a long
        // partition leaves. A corrupted read half-way is still proven
        // non-linearizable within the default budget.
        for seed in 0..3 {
            let mut h = simulate(seed, 300, 6, 1, 0.2);
            let r = check_register(&h);
            assert!(r.linearizable(), "seed {seed}: {:?}", r.problems());
            let reads: Vec<usize> = (0..h.len())
                .filter(|i| h[*i].f == "read" && h[*i].kind == Ok)
                .collect();
            h[reads[reads.len() / 2]].value = Some(1_000_000);
            let r = check_register(&h);
            assert_eq!(r.non_linearizable, vec![0], "seed {seed}: {r:?}");
        }
    }

    #[test]
    fn a_search_over_budget_is_unknown() {
        let h = simulate(7, 300, 6, 1, 0.08);
        assert!(check_register(&h).linearizable());
        let r = check_register_with_budget(&h, 20);
        assert_eq!(r.unknown, vec![0], "{r:?}");
        assert!(r.non_linearizable.is_empty());
        assert!(!r.linearizable());
        assert!(
            r.problems()[0].contains("budget of 20 steps"),
            "{:?}",
            r.problems()
        );
    }
}
