//! Deadlines of every connection in one binary heap.
//!
//! Entries are never removed early: when one comes due, the context checks that the
//! connection still exists (its id carries a generation) and still waits for that kind of
//! deadline at that instant; otherwise the entry is stale and dropped. This keeps arming a
//! timer O(log n) and cancelling free, at the price of a few dead entries that leave the heap
//! when their time comes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKind {
    /// Connect, TLS and HTTP upgrade (the connection's `deadline`).
    Phase,
    /// Ping interval and idle timeout of an open connection.
    Keepalive,
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, TimerKind)>>,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, conn: u64, kind: TimerKind) {
        self.heap.push(Reverse((at, conn, kind)));
    }

    /// The earliest deadline, possibly of a stale entry (waking early is harmless).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, u64, TimerKind)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_come_due_in_deadline_order() {
        let now = Instant::now();
        let mut t = Timers::default();
        t.push(now + Duration::from_secs(2), 2, TimerKind::Phase);
        t.push(now + Duration::from_secs(1), 1, TimerKind::Keepalive);
        assert_eq!(t.next(), Some(now + Duration::from_secs(1)));
        assert_eq!(t.pop_due(now), None);
        let later = now + Duration::from_secs(3);
        assert_eq!(t.pop_due(later).map(|e| e.1), Some(1));
        assert_eq!(t.pop_due(later).map(|e| e.1), Some(2));
        assert_eq!(t.pop_due(later), None);
        assert_eq!(t.len(), 0);
    }
}
