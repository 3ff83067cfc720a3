//! Round-trip time of a connection, measured from the pongs that answer our pings.
//!
//! Two kinds of ping have a known send time:
//!
//! - **keepalive pings** (`timer.rs`): the runtime chooses their payload, 8 bytes made of a
//!   marker and a counter ([`keepalive_payload`]). Only the pong carrying the counter of the
//!   latest keepalive ping measures anything, so an unsolicited pong, or the late answer to an
//!   earlier keepalive ping, gives no false figure. No allocation.
//! - **application pings** ([`crate::Context::ping`]): the payload is the application's, so
//!   the send times of the latest [`APP_PINGS`] are kept, by payload (its length and a 64-bit
//!   hash). A pong whose payload matches one of them measures the time since that ping and
//!   forgets it. The table is allocated once, at the connection's first application ping.
//!
//! "Sent" is when the ping was queued (the keepalive timer's tick, or the call to `ping`),
//! "answered" is the poll cycle that read the pong. Queued data ahead of the ping, and the
//! time until the next `poll` when the application queued it, count in the figure: it is
//! the round trip the application sees, not the network's alone.

use std::time::{Duration, Instant};

/// How many application pings waiting for their pong are remembered per connection.
pub(crate) const APP_PINGS: usize = 4;

/// The marker at the start of every keepalive ping's payload.
const KEEPALIVE_MARK: [u8; 4] = *b"twka";

/// The payload of keepalive ping number `seq`: the marker, then `seq` big-endian.
pub(crate) fn keepalive_payload(seq: u32) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[..4].copy_from_slice(&KEEPALIVE_MARK);
    p[4..].copy_from_slice(&seq.to_be_bytes());
    p
}

/// FNV-1a over the payload: a key for an application ping, not a defence against a peer
/// that forges pongs (a forged pong can only make the figure smaller than the truth).
fn key(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Clone, Copy)]
struct AppPing {
    key: u64,
    len: u8,
    sent: Option<Instant>,
}

const EMPTY: AppPing = AppPing {
    key: 0,
    len: 0,
    sent: None,
};

/// The RTT bookkeeping of one connection.
#[derive(Default)]
pub(crate) struct Rtt {
    /// The counter of the latest keepalive ping, and when it was queued (until its pong).
    seq: u32,
    keepalive_sent: Option<Instant>,
    /// Application pings waiting for their pong, the oldest overwritten first.
    app: Option<Box<[AppPing; APP_PINGS]>>,
    /// Where the next application ping goes in `app`.
    next: u8,
    /// The latest measurement.
    last: Option<Duration>,
}

impl Rtt {
    /// The last round-trip time measured, if any.
    pub(crate) fn last(&self) -> Option<Duration> {
        self.last
    }

    /// A keepalive ping is queued at `now`: returns its payload.
    pub(crate) fn keepalive_ping(&mut self, now: Instant) -> [u8; 8] {
        self.seq = self.seq.wrapping_add(1);
        self.keepalive_sent = Some(now);
        keepalive_payload(self.seq)
    }

    /// The application queued a ping with `data` at `now`. A ping with the payload of one
    /// still waiting replaces it (its pong cannot be told apart).
    pub(crate) fn app_ping(&mut self, data: &[u8], now: Instant) {
        let (k, len) = (key(data), data.len() as u8);
        let table = self.app.get_or_insert_with(|| Box::new([EMPTY; APP_PINGS]));
        let slot = match table
            .iter()
            .position(|p| p.sent.is_some() && p.key == k && p.len == len)
        {
            Some(i) => i,
            None => {
                let i = usize::from(self.next);
                self.next = ((i + 1) % APP_PINGS) as u8;
                i
            }
        };
        table[slot] = AppPing {
            key: k,
            len,
            sent: Some(now),
        };
    }

    /// A pong with `data` was read at `now`: returns the round-trip time it measures, if it
    /// answers a ping whose send time is known (and records it as the latest).
    pub(crate) fn pong(&mut self, data: &[u8], now: Instant) -> Option<Duration> {
        let mut sent = None;
        if let Some(at) = self.keepalive_sent {
            if data == keepalive_payload(self.seq) {
                self.keepalive_sent = None;
                sent = Some(at);
            }
        }
        if sent.is_none() && data.len() <= 125 {
            if let Some(table) = self.app.as_mut() {
                let (k, len) = (key(data), data.len() as u8);
                if let Some(p) = table
                    .iter_mut()
                    .find(|p| p.sent.is_some() && p.key == k && p.len == len)
                {
                    sent = p.sent.take();
                }
            }
        }
        let rtt = now.saturating_duration_since(sent?);
        self.last = Some(rtt);
        Some(rtt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn keepalive_pong_measures_only_the_latest_ping() {
        let t0 = Instant::now();
        let mut r = Rtt::default();
        assert_eq!(r.last(), None);
        let first = r.keepalive_ping(t0);
        let second = r.keepalive_ping(t0 + 10 * MS);
        assert_ne!(first, second);
        // The late answer to the first ping, an empty and an unknown pong: nothing.
        assert_eq!(r.pong(&first, t0 + 20 * MS), None);
        assert_eq!(r.pong(b"", t0 + 20 * MS), None);
        assert_eq!(r.pong(b"twka\0\0\0\x09", t0 + 20 * MS), None);
        assert_eq!(r.last(), None);
        assert_eq!(r.pong(&second, t0 + 35 * MS), Some(25 * MS));
        // Answered once: the same pong again measures nothing and keeps the figure.
        assert_eq!(r.pong(&second, t0 + 90 * MS), None);
        assert_eq!(r.last(), Some(25 * MS));
    }

    #[test]
    fn application_pings_are_matched_by_payload_and_bounded() {
        let t0 = Instant::now();
        let mut r = Rtt::default();
        r.app_ping(b"a", t0);
        r.app_ping(b"b", t0 + MS);
        assert_eq!(r.pong(b"c", t0 + 5 * MS), None);
        assert_eq!(r.pong(b"b", t0 + 5 * MS), Some(4 * MS));
        assert_eq!(r.pong(b"b", t0 + 6 * MS), None);
        assert_eq!(r.pong(b"a", t0 + 7 * MS), Some(7 * MS));
        assert_eq!(r.last(), Some(7 * MS));
        // Only the latest APP_PINGS are remembered.
        for i in 0..=APP_PINGS as u8 {
            r.app_ping(&[i], t0 + 10 * MS);
        }
        assert_eq!(r.pong(&[0], t0 + 20 * MS), None);
        assert_eq!(r.pong(&[APP_PINGS as u8], t0 + 20 * MS), Some(10 * MS));
        // The same payload again replaces the waiting one.
        r.app_ping(b"x", t0 + 30 * MS);
        r.app_ping(b"x", t0 + 40 * MS);
        assert_eq!(r.pong(b"x", t0 + 45 * MS), Some(5 * MS));
        assert_eq!(r.pong(b"x", t0 + 46 * MS), None);
    }

    #[test]
    fn an_application_ping_may_share_the_keepalive_path() {
        let t0 = Instant::now();
        let mut r = Rtt::default();
        let ka = r.keepalive_ping(t0);
        r.app_ping(b"", t0 + MS);
        assert_eq!(r.pong(b"", t0 + 3 * MS), Some(2 * MS));
        assert_eq!(r.pong(&ka, t0 + 4 * MS), Some(4 * MS));
    }
}
