//! One message to many connections: topics ([`Context::subscribe`], [`Context::publish`])
//! and explicit lists ([`Context::broadcast`]).
//!
//! A publish frames its message once ([`tidewire_proto::Prepared`]) and hands the same
//! bytes to every subscriber: a `ws://` connection queues a reference to that one frame
//! behind its other output (no copy; everything it has queued leaves in one `writev` at the
//! end of the poll cycle, so the publishes of a cycle cost one system call per subscriber),
//! except that messages under 256 bytes are copied (cheaper than a reference at that size),
//! and a `wss://` connection encrypts them (TLS needs its own copy anyway). With
//! permessage-deflate, the message is compressed once per parameter set among the
//! subscribers whose server side has no context takeover (tidewire's default); a subscriber
//! that agreed to context takeover compresses its own copy.
//!
//! Subscribers that do not keep up are skipped or closed as their listener's
//! [`crate::SlowSubscriber`] says; [`PublishReport`] counts what happened.

use std::time::Instant;

use tidewire_proto::{MessageKind, Prepared, SentFrame};

use crate::conn::flag;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::slab::ConnId;

/// The close code and reason a slow subscriber gets under `SlowAction::Close`.
pub const SLOW_CLOSE_CODE: u16 = 1008;
const SLOW_CLOSE_REASON: &str = "too slow";

/// Messages shorter than this are copied into each subscriber's output instead of shared:
/// a copy of a few dozen bytes costs less than a reference (40 bytes of bookkeeping and one
/// more slice in the `writev`). Measured with `make bench-fanout` (10,000 subscribers, 16
/// publishes per cycle): at 16 B sharing cost 1.20x the CPU per delivery of copying, at
/// 1 KiB 0.61x.
const SHARE_MIN: usize = 256;

/// What one [`Context::publish`] or [`Context::broadcast`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Connections the message was queued or written for.
    pub delivered: usize,
    /// Slow connections that missed the message (`SlowAction::Skip`).
    pub skipped_slow: usize,
    /// Slow connections closed with 1008 instead (`SlowAction::Close`).
    pub closed_slow: usize,
    /// Connections that could not take a message: not open yet, closing, or in the middle
    /// of a fragmented message of their own; for a broadcast also ids that name no
    /// connection any more.
    pub not_open: usize,
    /// How many times the payload was compressed (at most once per parameter set, plus once
    /// per subscriber with context takeover that compressed its own copy, not counted here).
    pub compressions: usize,
}

impl Context {
    /// Subscribes `conn` to `topic` (any bytes). Returns false when it already was. A
    /// connection leaves all its topics when it ends. A connection whose handshake is not
    /// done yet may subscribe too (e.g. on [`crate::Event::Request`]); publishes reach it
    /// once it is open.
    pub fn subscribe(&mut self, conn: ConnId, topic: &[u8]) -> Result<bool> {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return Err(Error::StaleId);
        };
        match self.topics.subscribe(conn, topic) {
            Some(index) => {
                c.topics.push(index);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Unsubscribes `conn` from `topic`. Returns false when it was not subscribed.
    pub fn unsubscribe(&mut self, conn: ConnId, topic: &[u8]) -> Result<bool> {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return Err(Error::StaleId);
        };
        let Some(index) = self.topics.find(topic) else {
            return Ok(false);
        };
        let Some(at) = c.topics.iter().position(|&t| t == index) else {
            return Ok(false);
        };
        c.topics.swap_remove(at);
        Ok(self.topics.remove(conn, index))
    }

    /// The topics `conn` is subscribed to.
    pub fn topics(&self, conn: ConnId) -> Result<Vec<Vec<u8>>> {
        let Some(c) = self.conns.get(conn.0) else {
            return Err(Error::StaleId);
        };
        Ok(c.topics
            .iter()
            .filter_map(|&i| self.topics.name(i).map(<[u8]>::to_vec))
            .collect())
    }

    /// How many topics have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// How many connections are subscribed to `topic`.
    pub fn subscriber_count(&self, topic: &[u8]) -> usize {
        self.topics.subscriber_count(topic)
    }

    /// Sends one message to every subscriber of `topic`, framed (and compressed) once. Text
    /// must be valid UTF-8 ([`Error::Send`] otherwise, and nothing is sent). A topic without
    /// subscribers is not an error: the report says 0 delivered.
    pub fn publish(
        &mut self,
        topic: &[u8],
        kind: MessageKind,
        data: &[u8],
    ) -> Result<PublishReport> {
        let mut msg = Prepared::new(kind, data)?;
        let mut report = PublishReport::default();
        let Some(index) = self.topics.find(topic) else {
            return Ok(report);
        };
        // Delivering never ends a connection (ends happen in the flush), so the list cannot
        // change while it is lent out.
        let subscribers = self.topics.take_subscribers(index);
        for &conn in &subscribers {
            self.deliver(conn, &mut msg, &mut report);
        }
        self.topics.put_back(index, subscribers);
        report.compressions = msg.compressions();
        Ok(report)
    }

    /// Sends one message to each of `conns`, framed (and compressed) once, as
    /// [`Context::publish`] does for a topic. Ids that name no open connection are counted
    /// in [`PublishReport::not_open`], not refused; a connection listed twice gets the
    /// message twice.
    pub fn broadcast(
        &mut self,
        conns: &[ConnId],
        kind: MessageKind,
        data: &[u8],
    ) -> Result<PublishReport> {
        let mut msg = Prepared::new(kind, data)?;
        let mut report = PublishReport::default();
        for &conn in conns {
            self.deliver(conn, &mut msg, &mut report);
        }
        report.compressions = msg.compressions();
        Ok(report)
    }

    /// One subscriber's share of a publish.
    fn deliver(&mut self, conn: ConnId, msg: &mut Prepared<'_>, report: &mut PublishReport) {
        let high = self.config.high_water_mark;
        let Some(c) = self.conns.get_mut(conn.0) else {
            report.not_open += 1;
            return;
        };
        if !c.stage.is_open() {
            report.not_open += 1;
            return;
        }
        // `Config::max_buffered` caps every connection's output, a publish's too, whatever
        // limit its listener set.
        if c.buffered() >= c.slow_limit.min(self.config.max_buffered) {
            if c.has(flag::CLOSE_WHEN_SLOW) {
                if let Some(ws) = c.ws.as_mut() {
                    if ws.close(SLOW_CLOSE_CODE, SLOW_CLOSE_REASON).is_ok() {
                        report.closed_slow += 1;
                        let at = Instant::now() + self.config.close_timeout;
                        self.arm_phase(conn.0, at);
                        self.mark_dirty(conn.0);
                        return;
                    }
                }
                report.not_open += 1;
            } else {
                report.skipped_slow += 1;
            }
            return;
        }
        let shares = c.can_share_frames() && msg.data().len() >= SHARE_MIN;
        let Some(ws) = c.ws.as_mut() else {
            report.not_open += 1;
            return;
        };
        match ws.send_prepared(msg, shares) {
            Ok(SentFrame::Queued) => {}
            // Written at the end of the poll cycle with whatever else this connection has
            // queued, so the publishes of one cycle leave in one `writev` per connection.
            Ok(SentFrame::Shared(frame)) => c.queue_shared(frame),
            Err(_) => {
                // Closing, failed, or streaming a message of its own: nothing was queued.
                report.not_open += 1;
                return;
            }
        }
        report.delivered += 1;
        let _ = self.after_send(conn.0, high);
    }

    /// Takes `conn` out of every topic (it is ending).
    pub(crate) fn leave_topics(&mut self, conn: ConnId, topics: &[u32]) {
        for &index in topics {
            self.topics.remove(conn, index);
        }
    }
}
