//! Deadlines of every connection in one binary heap.
//!
//! Entries are never removed early: when one comes due, the context checks that the
//! connection still exists (its id carries a generation) and still waits for that kind of
//! deadline at that instant; otherwise the entry is stale and dropped. This keeps arming a
//! timer O(log n) and cancelling free, at the price of a few dead entries that leave the heap
//! when their time comes.
//!
//! The second half of the file is what the context does when a deadline comes: the phase
//! timeouts, keepalive pings and the idle timeout, and the idle sweep.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use tidewire_proto::handshake::Rejection;

use crate::conn::{flag, Stage};
use crate::context::Context;
use crate::error::{Error, TimeoutKind};
use crate::events::Events;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKind {
    /// Connect, TLS and HTTP upgrade (the connection's `deadline`).
    Phase,
    /// Ping interval and idle timeout of an open connection.
    Keepalive,
    /// The next attempt of a reconnecting client (`reconnect.rs`).
    Reconnect,
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

    /// Entries of one kind for one connection (stale ones included).
    #[cfg(test)]
    pub(crate) fn count(&self, conn: u64, kind: TimerKind) -> usize {
        self.heap
            .iter()
            .filter(|Reverse((_, c, k))| *c == conn && *k == kind)
            .count()
    }
}

/// The context's deadlines: the phase timeouts (connect, TLS, upgrade, close), keepalive
/// pings and the idle timeout of open connections, and the periodic sweep that releases the
/// buffers of idle connections.
impl Context {
    pub(crate) fn run_timers(&mut self, ev: &mut Events) {
        while let Some((at, id, kind)) = self.timers.pop_due(self.now) {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            match kind {
                TimerKind::Phase => {
                    if c.deadline != Some(at) {
                        continue;
                    }
                    c.deadline = None;
                    if let Some(ws) = c.ws.as_mut().filter(|w| w.close_reply_owed()) {
                        // A held close the application never released: send it now and
                        // give the peer the close timeout to end the connection.
                        ws.queue_close_reply();
                        self.mark_dirty(id);
                        let at = self.now + self.config.close_timeout;
                        self.arm_phase(id, at);
                        continue;
                    }
                    let kind = match c.stage {
                        _ if c.stage.proxy_name().is_some() => TimeoutKind::Proxy,
                        Stage::Resolving(_) | Stage::Connecting(_) => TimeoutKind::Connect,
                        Stage::Open => TimeoutKind::Close,
                        _ => TimeoutKind::Handshake,
                    };
                    if matches!(c.stage, Stage::AwaitingDecision(_)) {
                        // The application was given the request and never answered it: tell
                        // the client (503) rather than closing without a word. `finish`
                        // writes the answer if the socket takes it and reports the timeout.
                        self.answer(id, &Rejection::not_decided());
                    }
                    self.finish(id, ev, Some(Error::Timeout(kind)));
                }
                TimerKind::Keepalive => self.keepalive(id, ev),
                TimerKind::Reconnect => self.redial(id, at, ev),
            }
        }
        if self.shutdown.is_some_and(|d| self.now >= d) {
            for id in self.conns.ids() {
                self.finish(id, ev, Some(Error::Timeout(TimeoutKind::Close)));
            }
        }
    }

    pub(crate) fn keepalive_step(&self) -> Option<Duration> {
        match (self.config.ping_interval, self.config.idle_timeout) {
            (None, None) => None,
            (Some(p), None) => Some(p),
            (None, Some(i)) => Some(i),
            (Some(p), Some(i)) => Some(p.min(i)),
        }
    }

    pub(crate) fn arm_keepalive(&mut self, id: u64) {
        let Some(step) = self.keepalive_step() else {
            return;
        };
        let now = self.now;
        if let Some(c) = self.conns.get_mut(id) {
            if !c.has(flag::KEEPALIVE) {
                c.set(flag::KEEPALIVE);
                self.timers.push(now + step, id, TimerKind::Keepalive);
            }
        }
    }

    fn keepalive(&mut self, id: u64, ev: &mut Events) {
        let (ping, idle) = (self.config.ping_interval, self.config.idle_timeout);
        let step = self.keepalive_step();
        let now = self.now;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.clear(flag::KEEPALIVE);
        let open = c.stage.is_open()
            && c.ws
                .as_ref()
                .is_some_and(|w| w.state() == tidewire_proto::State::Open);
        if !open {
            return;
        }
        let mut silent = now.saturating_duration_since(c.last_rx);
        if step.is_some_and(|s| silent >= s) && c.peer_acked_queued_data() {
            // A slow but live link: our ping waits behind the data queued before it, and the
            // peer's TCP is taking that data. That is as good as a pong.
            c.last_rx = now;
            c.clear(flag::PINGED);
            silent = Duration::ZERO;
        }
        if idle.is_some_and(|i| silent >= i) {
            self.finish(id, ev, Some(Error::Timeout(TimeoutKind::Idle)));
            return;
        }
        if let Some(p) = ping {
            if silent >= p && !c.has(flag::PINGED) {
                if let Some(ws) = c.ws.as_mut() {
                    // The payload names this ping, so that only its own pong measures the
                    // round-trip time (`rtt.rs`).
                    let _ = ws.send_ping(&c.rtt.keepalive_ping(now));
                }
                c.set(flag::PINGED);
                if !c.has(flag::DIRTY) {
                    c.set(flag::DIRTY);
                    self.dirty.push(id);
                }
            }
        }
        let mut next: Option<Instant> = idle.map(|i| c.last_rx + i);
        if let Some(p) = ping {
            let at = if c.has(flag::PINGED) {
                now + p
            } else {
                c.last_rx + p
            };
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        if let Some(at) = next {
            let at = at.max(now + Duration::from_millis(1));
            c.set(flag::KEEPALIVE);
            self.timers.push(at, id, TimerKind::Keepalive);
        }
    }

    /// Releases the buffers of open connections that were idle since the last sweep, and
    /// forgets the peer addresses that hold nothing any more.
    pub(crate) fn sweep_idle(&mut self) {
        let now = self.now;
        for (_, l) in self.listeners.iter_mut() {
            l.addrs.prune(&l.options.peer_limits, now);
        }
        for (_, c) in self.conns.iter_mut() {
            if c.has(flag::ACTIVE) {
                c.clear(flag::ACTIVE);
                continue;
            }
            if c.has(flag::SHRUNK) || !c.stage.is_open() || c.buffered() != 0 {
                continue;
            }
            if let Some(ws) = c.ws.as_mut() {
                ws.shrink();
            }
            c.set(flag::SHRUNK);
        }
    }

    pub(crate) fn drop_unopened(&mut self, ev: &mut Events) {
        for id in self.conns.ids() {
            let open = self.conns.get(id).is_some_and(|c| c.stage.is_open());
            if !open {
                self.finish(id, ev, Some(Error::ShuttingDown));
            }
        }
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
