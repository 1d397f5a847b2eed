//! The coordinator's clock: the one time leases, commit deadlines and
//! deduplication windows are judged by, on every node alike.
//!
//! A node's wall clock can be wrong by minutes or days (a broken NTP, a VM
//! resumed from a snapshot, an operator's `date -s`). If the coordinator's
//! time were whatever a proposer's wall clock said, one such node would
//! push it days ahead: every other node's lease would look expired, every
//! commit deadline passed and every deduplication id aged out, until real
//! time caught up. So:
//! - the leader stamps every command it proposes; the state's clock is the
//!   largest stamp applied and never moves back;
//! - a stamp is the (lower) median of the nodes' wall clocks, as their lease
//!   renewals report them (extrapolated by the monotonic time since), taken
//!   once a majority of the voters reported — so no single node's error, the
//!   leader's included, moves it — and never less than the last applied
//!   clock plus the monotonic time since it applied;
//! - every node reads the time as the last applied clock plus the monotonic
//!   time since ([`Clock::now`]), never its own wall clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::{now_ms, NodeId};

/// A report older than this no longer counts (a node that stopped renewing).
const REPORT_TTL: Duration = Duration::from_secs(10);

pub struct Clock {
    inner: Mutex<Inner>,
}

struct Inner {
    /// The state's clock when it last advanced, and when (monotonic).
    applied_ms: u64,
    applied_at: Instant,
    /// The last stamp this node gave as leader.
    last_stamp: u64,
    /// Wall clocks the nodes reported, with when each report arrived.
    reports: HashMap<NodeId, (u64, Instant)>,
}

fn ms_since(at: Instant) -> u64 {
    at.elapsed().as_millis() as u64
}

impl Clock {
    /// A clock whose state last applied `applied_ms`.
    pub fn new(applied_ms: u64) -> Clock {
        Clock {
            inner: Mutex::new(Inner {
                applied_ms,
                applied_at: Instant::now(),
                last_stamp: 0,
                reports: HashMap::new(),
            }),
        }
    }

    /// The state applied a command: its clock is now `state_ms`.
    pub fn observe(&self, state_ms: u64) {
        let mut i = self.inner.lock();
        if state_ms > i.applied_ms {
            i.applied_ms = state_ms;
            i.applied_at = Instant::now();
        }
    }

    /// The coordinator's time as this node sees it: the applied clock plus
    /// the monotonic time since (the wall clock only before anything applied).
    pub fn now(&self) -> u64 {
        let i = self.inner.lock();
        if i.applied_ms == 0 {
            return now_ms();
        }
        i.applied_ms + ms_since(i.applied_at)
    }

    /// Node `node`'s wall clock said `wall_ms` just now (a lease renewal).
    pub fn report(&self, node: NodeId, wall_ms: u64) {
        self.inner
            .lock()
            .reports
            .insert(node, (wall_ms, Instant::now()));
    }

    /// The time the leader `me` stamps on a command, `voters` voting.
    pub fn stamp(&self, me: NodeId, voters: usize) -> u64 {
        let wall = now_ms();
        let mut i = self.inner.lock();
        i.reports.insert(me, (wall, Instant::now()));
        i.reports.retain(|_, (_, at)| at.elapsed() < REPORT_TTL);
        let floor = match i.applied_ms {
            // A fresh group: nothing to keep time from yet.
            0 => 0,
            applied => applied + ms_since(i.applied_at),
        };
        let mut walls: Vec<u64> = i
            .reports
            .values()
            .map(|(w, at)| w + ms_since(*at))
            .collect();
        walls.sort_unstable();
        let majority = voters.max(1) / 2 + 1;
        let median = match walls.len() >= majority {
            true => walls[(walls.len() - 1) / 2],
            false => 0,
        };
        let t = median.max(floor).max(i.last_stamp);
        i.last_stamp = t;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 60 * 60 * 1000;

    #[test]
    fn one_nodes_wall_clock_cannot_move_the_stamps() {
        let real = now_ms();
        let c = Clock::new(real);
        // Node 2 is a week ahead; the stamps follow the majority.
        c.report(2, real + 7 * DAY);
        c.report(3, real);
        let t = c.stamp(1, 3);
        assert!(t >= real && t < real + 60_000, "{t} vs {real}");
        // Node 3's report lost: with the leader's own and node 2's, the
        // lower median is still the leader's.
        let c = Clock::new(real);
        c.report(2, real + 7 * DAY);
        assert!(c.stamp(1, 3) < real + 60_000);
    }

    #[test]
    fn a_clock_behind_does_not_hold_time_back_and_time_never_goes_back() {
        let real = now_ms();
        let c = Clock::new(real + 5 * DAY);
        // Everyone's wall clock is behind the state's: time keeps running
        // from the state's clock.
        c.report(2, real);
        c.report(3, real);
        let t1 = c.stamp(1, 3);
        assert!(t1 >= real + 5 * DAY);
        let t2 = c.stamp(1, 3);
        assert!(t2 >= t1);
        c.observe(t2);
        assert!(c.now() >= t2);
    }

    #[test]
    fn a_group_behind_real_time_catches_up_with_a_majority() {
        // The group was down for a day: its state's clock is a day old.
        let real = now_ms();
        let c = Clock::new(real - DAY);
        // The leader alone may not move it (it could be the wrong one).
        assert!(c.stamp(1, 3) < real - DAY + 60_000);
        c.report(2, real);
        let t = c.stamp(1, 3);
        assert!(t >= real && t < real + 60_000);
        // A single voter is its own majority.
        let solo = Clock::new(real - DAY);
        assert!(solo.stamp(1, 1) >= real);
    }
}
