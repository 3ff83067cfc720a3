//! The steps of one poll cycle (see `context.rs` for the overview): readiness dispatch,
//! accepting, reading, feeding the protocol engine, flushing and the end of connections.
//! Connecting is in `connect.rs`, the opening handshakes in `handshake.rs`, deadlines,
//! keepalive and the idle sweep in `timer.rs`.

use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::{Interest, Token};
use tidewire_proto::handshake::ServerHandshake;
use tidewire_proto::{Connection, Event as WsEvent, MessageKind, Role};

use crate::conn::{flag, Accepting, Chunk, Conn, Stage};
use crate::context::{push_open, Context, Pending, LISTENER_BIT, WAKER};
use crate::error::{Error, Result};
use crate::events::{Data, Events, Raw, Source, MIN_READ};
use crate::limits::addr_key;
use crate::proxy::{ProxyFailure, Step as ProxyStep};
use crate::reconnect::{classify, classify_close, Retry};
use crate::sender::Command;
use crate::slab::{split, ConnId, ListenerId};
use crate::timer::TimerKind;

/// How long a server waits for the peer to close after sending it a final HTTP answer.
const LINGER: Duration = Duration::from_secs(1);
/// How often idle connections are looked at to release their buffers.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often a listener that ran out of descriptors tries `accept` again, besides right
/// after each connection that ends: often enough that waiting clients are taken soon after
/// descriptors are freed elsewhere in the process, rarely enough not to spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// How far to read a connection's socket.
///
/// Sockets are registered edge-triggered, so a connection must be read until nothing is
/// left or it will not be reported again. A plain TCP read that returns less than the space
/// offered has already taken everything the socket held, and anything that arrives later
/// raises a new edge, so the `WouldBlock` read that would confirm it is one system call per
/// wake-up spent for nothing (a quarter of the calls of a one-message echo). The one thing
/// such a read cannot show is an end of stream queued behind the data: that is why an event
/// that already carries read-closed or an error, and a read that no event prompted (a
/// deferred one), go on to the end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    No,
    UntilShort,
    ToEnd,
}

impl Context {
    /// Runs one cycle: flushes what was sent since the last call, waits for I/O up to
    /// `timeout` (`None`: until something happens; never past the next timer, and not at all
    /// when work is already pending), handles it, and returns the number of events now in
    /// `events`. The previous events of `events` (and the slices they lent) are gone.
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        events.clear();
        self.now = Instant::now();
        for p in self.pending.drain(..) {
            match p {
                Pending::Open(conn, info) => push_open(events, conn, info),
            }
        }
        if self.shutdown_pending {
            self.shutdown_pending = false;
            self.drop_unopened(events);
        }
        self.flush_dirty(events, true);
        self.read_deferred(events);

        let busy = !events.is_empty()
            || !self.dirty.is_empty()
            || !self.read_later.is_empty()
            || self.more_ready;
        let mut wait = if busy { Some(Duration::ZERO) } else { timeout };
        if let Some(at) = self.next_deadline() {
            let d = at.saturating_duration_since(self.now);
            wait = Some(wait.map_or(d, |w| w.min(d)));
        }
        let mut mio_events = self
            .mio_events
            .take()
            .unwrap_or_else(|| mio::Events::with_capacity(1024));
        if let Err(e) = self.poll.poll(&mut mio_events, wait) {
            if e.kind() != io::ErrorKind::Interrupted {
                self.mio_events = Some(mio_events);
                return Err(e.into());
            }
        }
        self.now = Instant::now();
        self.more_ready = mio_events.iter().count() >= mio_events.capacity();
        for e in mio_events.iter() {
            let read = if e.is_read_closed() || e.is_error() {
                Read::ToEnd
            } else if e.is_readable() {
                Read::UntilShort
            } else {
                Read::No
            };
            let writable = e.is_writable() || e.is_write_closed();
            self.dispatch(e.token(), read, writable, events);
        }
        self.mio_events = Some(mio_events);

        if self.accept_retry.is_some_and(|at| self.now >= at) {
            self.retry_accepts(events);
        }
        self.run_timers(events);
        self.flush_dirty(events, false);
        if self.now.saturating_duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.last_sweep = self.now;
            self.sweep_idle();
        }
        Ok(events.len())
    }

    fn dispatch(&mut self, token: Token, read: Read, writable: bool, ev: &mut Events) {
        if token == WAKER {
            self.drain_inbox(ev);
            return;
        }
        if token.0 & LISTENER_BIT != 0 {
            self.accept_all(token.0 & !LISTENER_BIT, ev);
            return;
        }
        let Some(id) = self.conns.id_at(token.0) else {
            return;
        };
        let connecting = self
            .conns
            .get(id)
            .is_some_and(|c| matches!(c.stage, Stage::Connecting(_)));
        if connecting {
            self.finish_connect(id, ev);
            return;
        }
        if read != Read::No {
            self.read_conn(id, read, ev);
        }
        if writable {
            self.mark_dirty(id);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Cross-thread inbox
    // ---------------------------------------------------------------------------------------

    fn drain_inbox(&mut self, ev: &mut Events) {
        let mut inbox = std::mem::take(&mut self.inbox);
        self.shared.take(&mut inbox);
        for r in inbox.resolved.drain(..) {
            self.resolver.answered();
            self.on_resolved(r, ev);
        }
        let mut woke = false;
        for cmd in inbox.commands.drain(..) {
            let (conn, result) = match cmd {
                Command::Text(conn, text) => (conn, self.send_text(conn, &text).map(drop)),
                Command::Binary(conn, data) => (conn, self.send_binary(conn, &data).map(drop)),
                Command::Ping(conn, data) => (conn, self.ping(conn, &data).map(drop)),
                Command::Close(conn, code, reason) => (conn, self.close(conn, code, &reason)),
                Command::Publish(topic, kind, data) => {
                    // Checked by the sender: text is UTF-8, so this cannot fail.
                    let _ = self.publish(&topic, kind, &data);
                    continue;
                }
                Command::PublishShared(topic, kind, data) => {
                    let _ = self.publish(&topic, kind, &data);
                    continue;
                }
                Command::Wake => {
                    if !woke {
                        woke = true;
                        ev.list.push(Raw::Wake);
                    }
                    continue;
                }
            };
            if let Err(e) = result {
                ev.push_send_failed(conn, e);
            }
        }
        self.inbox = inbox;
    }

    // ---------------------------------------------------------------------------------------
    // Server: accepting
    // ---------------------------------------------------------------------------------------

    fn accept_all(&mut self, index: usize, ev: &mut Events) {
        let Some(lid) = self.listeners.id_at(index) else {
            return;
        };
        loop {
            let Some(l) = self.listeners.get_mut(lid) else {
                return;
            };
            let (mut sock, peer) = match l.sock.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    l.stalled = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // Out of descriptors or memory, typically (EMFILE, ENFILE, ENOBUFS,
                    // ENOMEM). The clients stay in the backlog, but the edge-triggered
                    // listener will not be reported again for them: retry when a
                    // connection ends, and on a timer (descriptors may be freed elsewhere
                    // in the process). Reported once per stall, not once per retry.
                    if !l.stalled {
                        l.stalled = true;
                        ev.push_error(Source::Listener(ListenerId(lid)), Error::Io(e));
                    }
                    let at = self.now + ACCEPT_RETRY;
                    self.accept_retry = Some(self.accept_retry.map_or(at, |r| r.min(at)));
                    return;
                }
            };
            if self.conns.len() >= self.config.max_connections || self.shutdown.is_some() {
                continue; // dropping `sock` closes it
            }
            let key = addr_key(peer.ip());
            if l.addrs
                .admit(key, &l.options.peer_limits, self.now)
                .is_err()
            {
                continue; // over a per-address limit: closed before anything is read
            }
            let options = l.options.clone();
            let tls = match &options.tls {
                Some(acceptor) => match acceptor.session() {
                    Ok(s) => Some(Box::new(s)),
                    Err(e) => {
                        l.addrs.ended(key, false);
                        ev.push_error(Source::Listener(ListenerId(lid)), e);
                        continue;
                    }
                },
                None => None,
            };
            // Small frames must not wait for Nagle: latency matters more than packet count,
            // and writes are coalesced per poll cycle anyway.
            let _ = sock.set_nodelay(true);
            let accepting = Box::new(Accepting {
                listener: ListenerId(lid),
                options,
                handshake: ServerHandshake::new(self.config.handshake_limits.clone()),
                peer,
                key: String::new(),
                path: String::new(),
                deflate: None,
            });
            let mut conn = Conn::new(None, Stage::ServerHandshake(accepting), self.now);
            conn.tls = tls;
            conn.counted = Some((lid, key));
            let Some(id) = self.conns.insert(conn) else {
                l.addrs.ended(key, false);
                continue;
            };
            let (idx, _) = split(id);
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut sock, Token(idx), interest)
                .is_err()
            {
                self.conns.remove(id);
                l.addrs.ended(key, false);
                continue;
            }
            if let Some(c) = self.conns.get_mut(id) {
                c.sock = Some(sock);
            }
            let at = self.now + self.config.handshake_timeout;
            self.arm_phase(id, at);
        }
    }

    /// Accepts again on every stalled listener (see [`ACCEPT_RETRY`]).
    fn retry_accepts(&mut self, ev: &mut Events) {
        self.accept_retry = None;
        for lid in self.listeners.ids() {
            if self.listeners.get(lid).is_some_and(|l| l.stalled) {
                self.accept_all(split(lid).0, ev);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Client: resolving and connecting
    // ---------------------------------------------------------------------------------------

    // ---------------------------------------------------------------------------------------
    // Reading
    // ---------------------------------------------------------------------------------------

    /// Connections whose reading was deferred (receive buffer full, or data stashed while
    /// the application decided about a request).
    fn read_deferred(&mut self, ev: &mut Events) {
        if self.read_later.is_empty() {
            return;
        }
        let list = std::mem::take(&mut self.read_later);
        for &id in &list {
            if let Some(c) = self.conns.get_mut(id) {
                c.clear(flag::READ_LATER);
            }
        }
        for &id in &list {
            self.read_conn(id, Read::ToEnd, ev);
        }
    }

    /// Reads until `WouldBlock`, EOF, an error, or a full receive buffer; with
    /// `Read::UntilShort`, a plain socket also stops after a read that did not fill the
    /// space offered (see [`Read`]).
    fn read_conn(&mut self, id: u64, read: Read, ev: &mut Events) {
        loop {
            let Some(c) = self.conns.get_mut(id) else {
                return;
            };
            if matches!(
                c.stage,
                Stage::Resolving(_)
                    | Stage::Connecting(_)
                    | Stage::AwaitingDecision(_)
                    | Stage::Waiting
            ) || c.has(flag::EOF | flag::PAUSED | flag::OUT_FULL)
            {
                return;
            }
            if c.buffered() >= self.config.max_buffered {
                // Whatever filled it (the application's sends, pongs, close replies), a
                // peer that does not read is not read from: TCP slows it down. Resumed by
                // `flush_dirty` once the buffer drains.
                c.set(flag::OUT_FULL);
                return;
            }
            if !c.stash.is_empty() {
                // Frames that came right behind a request the application has now accepted.
                if c.stash.len() > ev.free() {
                    self.queue_read(id);
                    return;
                }
                let stash = std::mem::take(&mut c.stash);
                let start = ev.used;
                ev.arena[start..start + stash.len()].copy_from_slice(&stash);
                if matches!(c.stage, Stage::ClientHandshake(_)) {
                    // Bytes that came with a proxy's answer: the upgrade response's start.
                    if !self.on_data(id, start, stash.len(), ev) {
                        return;
                    }
                    continue;
                }
                ev.used += stash.len();
                if !self.feed_ws(id, start, start + stash.len(), ev) {
                    return;
                }
                continue;
            }
            if ev.free() < MIN_READ || ev.owned_bytes >= self.config.max_message_size {
                // The receive buffer is full, or this cycle already holds a message's worth
                // of reassembled (or inflated) data: the rest waits for the next poll.
                self.queue_read(id);
                return;
            }
            let start = ev.used;
            let offered = ev.arena.len() - start;
            let drained_if_short = read == Read::UntilShort && c.tls.is_none() && c.outer.is_none();
            let chunk = c.read_chunk(&mut ev.arena[start..]);
            if c.tls_wants_write() && !c.has(flag::DIRTY) {
                c.set(flag::DIRTY);
                self.dirty.push(id);
            }
            match chunk {
                Chunk::Data(n) => {
                    c.last_rx = self.now;
                    c.set(flag::ACTIVE);
                    c.clear(flag::PINGED | flag::SHRUNK);
                    if !self.on_data(id, start, n, ev) || (drained_if_short && n < offered) {
                        return;
                    }
                }
                Chunk::WouldBlock => return,
                Chunk::Eof => return self.on_eof(id, None, ev),
                Chunk::Error(e) => return self.on_eof(id, Some(e), ev),
                Chunk::Tls(e) => {
                    // rustls queued an alert; send it if the socket takes it.
                    let _ = c.flush();
                    return self.finish(id, ev, Some(Error::from(e)));
                }
            }
        }
    }

    /// `n` bytes arrived at `ev.arena[start..]` (not yet counted as used). Returns whether
    /// to keep reading.
    fn on_data(&mut self, id: u64, start: usize, n: usize, ev: &mut Events) -> bool {
        let Some(c) = self.conns.get_mut(id) else {
            return false;
        };
        let end = start + n;
        match &mut c.stage {
            Stage::Open => {
                ev.used = end;
                self.feed_ws(id, start, end, ev)
            }
            // Whatever a peer sends after being answered is read and dropped, so that the
            // close does not turn into a reset that could destroy the answer in flight.
            Stage::Answering => true,
            Stage::ClientHandshake(dial) => {
                let Some(hs) = dial.handshake.as_mut() else {
                    return false;
                };
                match hs.receive(&ev.arena[start..end]) {
                    Ok(None) => true,
                    Ok(Some(response)) => {
                        let body = start + response.body_start.min(n);
                        if !self.open_client(id, response, ev) {
                            return false;
                        }
                        ev.used = end;
                        body >= end || self.feed_ws(id, body, end, ev)
                    }
                    Err(e) => {
                        self.finish(id, ev, Some(Error::from(e)));
                        false
                    }
                }
            }
            Stage::Proxying(dial) => {
                let Some(machine) = dial.proxy.as_deref_mut().and_then(|p| p.machine.as_mut())
                else {
                    return false;
                };
                let step = machine.receive(&ev.arena[start..end]);
                match step {
                    Ok(ProxyStep::NeedMore) => true,
                    Ok(ProxyStep::Send(bytes)) => {
                        c.pre.set(bytes);
                        self.mark_dirty(id);
                        true
                    }
                    Ok(ProxyStep::Open(body)) => self.tunnel_open(id, start + body.min(n), end, ev),
                    Err(e) => {
                        let proxy = dial.proxy_name().unwrap_or_default();
                        let failure = ProxyFailure::Handshake(e);
                        self.finish(id, ev, Some(Error::Proxy { proxy, failure }));
                        false
                    }
                }
            }
            Stage::ServerHandshake(acc) => match acc.handshake.receive(&ev.arena[start..end]) {
                Ok(None) => true,
                Ok(Some(request)) => self.on_request(id, request, start, end, ev),
                Err(e) => {
                    match e.rejection() {
                        Some(rejection) => self.answer(id, &rejection),
                        None => self.finish(id, ev, Some(Error::from(e))),
                    }
                    true
                }
            },
            _ => false,
        }
    }

    /// Runs `ev.arena[from..to]` through the protocol engine and records its events.
    /// Returns whether to keep reading: yes, even after the peer's close or a failure (the
    /// engine then discards the input), because reading on until EOF or `WouldBlock` is what
    /// lets an edge-triggered poll report the peer's FIN that may already be queued.
    pub(crate) fn feed_ws(&mut self, id: u64, from: usize, to: usize, ev: &mut Events) -> bool {
        let Some(c) = self.conns.get_mut(id) else {
            return false;
        };
        let Some(ws) = c.ws.as_mut() else {
            return false;
        };
        let conn = ConnId(id);
        let base = ev.arena.as_ptr() as usize;
        let cap = ev.arena.len();
        let mut pos = from;
        let mut ended = false;
        let mut reply = false;
        let mut failed = false;
        let mut deferred = false;
        let budget = self.config.max_message_size;
        let now = self.now;
        while pos < to {
            let r = ws.receive(&mut ev.arena[pos..to]);
            pos += r.consumed;
            let mut take = None;
            match r.event {
                None => break,
                Some(WsEvent::Message {
                    kind,
                    data,
                    buffered,
                }) => {
                    if buffered {
                        take = Some(kind);
                    } else {
                        let data = locate(base, cap, data, &mut ev.side);
                        ev.list.push(Raw::Message { conn, kind, data });
                    }
                }
                Some(WsEvent::Ping(data)) => {
                    let data = locate(base, cap, data, &mut ev.side);
                    ev.list.push(Raw::Ping { conn, data });
                    reply = true;
                }
                Some(WsEvent::Pong(data)) => {
                    c.rtt.pong(data, now);
                    let data = locate(base, cap, data, &mut ev.side);
                    ev.list.push(Raw::Pong { conn, data });
                }
                Some(WsEvent::Close { .. }) => {
                    ended = true;
                    reply = true;
                }
                Some(WsEvent::Failed { .. }) => {
                    ended = true;
                    reply = true;
                    failed = true;
                }
            }
            if let Some(kind) = take {
                take_message(ws, kind, conn, ev);
                if ev.owned_bytes >= budget && pos < to && !ended {
                    // Enough held for one cycle: a few kilobytes of compressed input can
                    // inflate to many messages of the maximum size. Keep the rest of the
                    // input for the next poll, so one cycle never holds much more than
                    // `max_message_size` of message data.
                    c.stash.extend_from_slice(&ev.arena[pos..to]);
                    deferred = true;
                    break;
                }
            }
            if ended {
                break;
            }
        }
        if failed {
            c.set(flag::FAILED);
        }
        if reply && !c.has(flag::DIRTY) {
            c.set(flag::DIRTY);
            self.dirty.push(id);
        }
        if deferred {
            self.queue_read(id);
            return false;
        }
        true
    }

    fn on_eof(&mut self, id: u64, error: Option<io::Error>, ev: &mut Events) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.set(flag::EOF);
        let cause = match (error, c.stage.proxy_name()) {
            (Some(e), None) => Error::Io(e),
            (Some(e), Some(proxy)) => Error::Proxy {
                proxy,
                failure: ProxyFailure::from_io(e),
            },
            (None, _) if c.stage.is_open() => Error::Io(io::ErrorKind::UnexpectedEof.into()),
            (None, None) => Error::HandshakeEof,
            (None, Some(proxy)) => Error::Proxy {
                proxy,
                failure: ProxyFailure::Closed,
            },
        };
        self.finish(id, ev, Some(cause));
    }

    // ---------------------------------------------------------------------------------------
    // Writing
    // ---------------------------------------------------------------------------------------

    /// Flushes every connection on the dirty list and acts on what the flush tells: drained
    /// below the low water mark (Writable), transport to close, answer sent.
    ///
    /// `app_has_answered`: this is the flush at the start of a poll, after the application
    /// handled the previous batch of events, so the close frames the engine held back
    /// (`defer_close_replies`) may now follow what it sent. At the end of a cycle they stay
    /// held and their connections stay dirty for the next poll.
    fn flush_dirty(&mut self, ev: &mut Events, app_has_answered: bool) {
        if self.dirty.is_empty() {
            return;
        }
        let mut list = std::mem::take(&mut self.dirty);
        let low = self.config.low_water_mark;
        let hold = self.config.hold_close_replies;
        let close_by = self.now + self.config.close_timeout;
        for &id in &list {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            c.clear(flag::DIRTY);
            if let Some(ws) = c.ws.as_mut() {
                if ws.close_reply_owed() {
                    if hold {
                        // Released by the application, or by the close timer at the latest.
                        if c.deadline.is_none() {
                            c.deadline = Some(close_by);
                            self.timers.push(close_by, id, TimerKind::Phase);
                            ev.held.push(ConnId(id));
                        }
                    } else if app_has_answered {
                        ws.queue_close_reply();
                    } else {
                        c.set(flag::DIRTY);
                        self.dirty.push(id);
                    }
                }
            }
            if c.has(flag::ABORT) {
                self.finish(id, ev, Some(Error::Aborted));
                continue;
            }
            if matches!(
                c.stage,
                Stage::Resolving(_)
                    | Stage::Connecting(_)
                    | Stage::AwaitingDecision(_)
                    | Stage::Waiting
            ) {
                continue;
            }
            let done = match c.flush() {
                Ok(done) => done && !c.tls_wants_write(),
                Err(e) => {
                    let cause = match c.stage.proxy_name() {
                        Some(proxy) => Error::Proxy {
                            proxy,
                            failure: ProxyFailure::from_io(e),
                        },
                        None => Error::Io(e),
                    };
                    self.finish(id, ev, Some(cause));
                    continue;
                }
            };
            if c.has(flag::ABOVE_HIGH) && c.buffered() <= low {
                c.clear(flag::ABOVE_HIGH);
                ev.list.push(Raw::Writable { conn: ConnId(id) });
            }
            if c.has(flag::OUT_FULL) && c.buffered() <= low {
                c.clear(flag::OUT_FULL);
                // Readiness is edge-triggered: what arrived meanwhile raised no new edge.
                if !c.has(flag::READ_LATER) {
                    c.set(flag::READ_LATER);
                    self.read_later.push(id);
                }
            }
            if !done {
                continue;
            }
            match c.stage {
                Stage::Answering => {
                    if c.has(flag::EOF) {
                        self.finish(id, ev, None);
                    } else if !c.has(flag::LINGER) {
                        // Half-close and let the peer read the answer and close first.
                        c.set(flag::LINGER);
                        if let Some(sock) = c.sock.as_ref() {
                            let _ = sock.shutdown(Shutdown::Write);
                        }
                        let at = self.now + LINGER;
                        self.arm_phase(id, at);
                    }
                }
                Stage::Open => {
                    let close = c.ws.as_ref().is_some_and(Connection::wants_transport_close);
                    if !close {
                        continue;
                    }
                    let server = c.ws.as_ref().is_some_and(|w| w.role() == Role::Server);
                    if server || c.has(flag::FAILED) || c.has(flag::EOF) {
                        self.finish(id, ev, None);
                    } else if c.deadline.is_none() {
                        // RFC 6455 7.1.1: the client waits for the server to close TCP.
                        let at = self.now + self.config.close_timeout;
                        self.arm_phase(id, at);
                    }
                }
                _ => {}
            }
        }
        list.clear();
        if self.dirty.is_empty() {
            self.dirty = list;
        }
    }

    // ---------------------------------------------------------------------------------------
    // Timers
    // ---------------------------------------------------------------------------------------

    // ---------------------------------------------------------------------------------------
    // The end
    // ---------------------------------------------------------------------------------------

    /// Removes a connection and reports its end: `Closed` if it was open, `Error` with
    /// `cause` if the application knew it, nothing otherwise.
    ///
    /// A reconnecting client (`reconnect.rs`) keeps its slot, and so its id: its state is
    /// swapped for a `Waiting` placeholder, which stays when another attempt follows
    /// (reported by `Reconnecting`) and goes otherwise.
    pub(crate) fn finish(&mut self, id: u64, ev: &mut Events, cause: Option<Error>) {
        let redial = !self.reconnects.is_empty() && self.reconnects.contains_key(&id);
        let taken = if redial {
            let now = self.now;
            self.conns.get_mut(id).map(|slot| {
                let mut waiting = Conn::new(None, Stage::Waiting, now);
                waiting.set(flag::VISIBLE);
                // A keepalive entry still in the heap names this id: the flag goes along,
                // so that the next incarnation continues that chain instead of starting a
                // second one (`arm_keepalive`).
                if slot.has(flag::KEEPALIVE) {
                    waiting.set(flag::KEEPALIVE);
                }
                std::mem::replace(slot, waiting)
            })
        } else {
            self.conns.remove(id)
        };
        let Some(mut c) = taken else {
            return;
        };
        if !c.topics.is_empty() {
            let topics = std::mem::take(&mut c.topics);
            self.leave_topics(ConnId(id), &topics);
        }
        if self.accept_retry.is_some() {
            // A descriptor is about to be freed: a stalled listener can take a client.
            self.accept_retry = Some(self.now);
        }
        if let Some((lid, key)) = c.counted {
            if let Some(l) = self.listeners.get_mut(lid) {
                l.addrs.ended(key, c.stage.is_open());
            }
        }
        if matches!(c.stage, Stage::Open | Stage::Answering) && !c.has(flag::EOF) {
            // Best effort: a close frame or an answer may still fit in the socket.
            let _ = c.flush();
        }
        let eof = c.has(flag::EOF);
        if let (Some(tls), Some(sock), false) = (c.tls.as_deref_mut(), c.sock.as_ref(), eof) {
            tls.send_close_notify();
            let mut wire = crate::conn::Wire {
                sock,
                outer: c.outer.as_deref_mut(),
            };
            let _ = tls.write_tls(&mut wire);
            let _ = wire.drain_outer();
        }
        // Dropping the socket closes it, which also removes it from the epoll set.
        drop(c.sock.take());
        let conn = ConnId(id);
        if c.stage.is_open() {
            let failed = c.has(flag::FAILED);
            let (code, reason, clean, remote) = match c.ws.as_ref() {
                Some(ws) => match (ws.peer_close(), ws.sent_close()) {
                    _ if failed => match ws.sent_close() {
                        Some((code, reason)) => (code.0, reason, false, false),
                        None => (1006, "", false, false),
                    },
                    (Some((code, reason)), sent) => (code.0, reason, sent.is_some(), true),
                    (None, _) => (1006, "", false, false),
                },
                None => (1006, "", false, false),
            };
            if redial
                && self
                    .redial_or_forget(id, ev, classify_close(code), None, code)
                    .is_ok()
            {
                // Reported by `Reconnecting` instead: `Closed` stays terminal.
                return;
            }
            let reason = if reason.is_empty() {
                Data::EMPTY
            } else {
                ev.push_side(reason.as_bytes())
            };
            ev.list.push(Raw::Closed {
                conn,
                code,
                reason,
                clean,
                remote,
            });
        } else if c.has(flag::VISIBLE) {
            let cause = cause.unwrap_or(Error::Aborted);
            let cause = if redial {
                match self.redial_or_forget(id, ev, classify(&cause), Some(cause), 0) {
                    Ok(()) => return,
                    Err(cause) => cause.unwrap_or(Error::Aborted),
                }
            } else {
                cause
            };
            ev.push_error(Source::Conn(conn), cause);
        } else if redial {
            let _ = self.redial_or_forget(id, ev, Retry::Never, None, 0);
        }
    }

    /// After a reconnecting client failed or ended: schedules its next attempt and reports
    /// `Reconnecting`, or, when that was the last one (not retryable, attempts used up,
    /// shutting down), forgets it and frees its slot, giving `error` back for the caller to
    /// report.
    fn redial_or_forget(
        &mut self,
        id: u64,
        ev: &mut Events,
        retry: Retry,
        error: Option<Error>,
        close_code: u16,
    ) -> Result<(), Option<Error>> {
        let retry = if self.shutdown.is_some() {
            Retry::Never
        } else {
            retry
        };
        let now = self.now;
        let next = self.reconnects.get_mut(&id).and_then(|r| {
            let delay = r.backoff.next_delay(retry, now)?;
            r.due = Some(now + delay);
            Some((r.backoff.attempt(), delay))
        });
        match next {
            Some((attempt, delay)) => {
                self.timers.push(now + delay, id, TimerKind::Reconnect);
                ev.push_reconnecting(ConnId(id), attempt, delay, error, close_code);
                Ok(())
            }
            None => {
                self.reconnects.remove(&id);
                self.conns.remove(id);
                Err(error)
            }
        }
    }
}

/// Where a payload slice handed out by the engine lives: inside the receive buffer (zero
/// copy), or elsewhere (a control payload assembled inside the engine), then copied to the
/// side buffer.
fn locate(base: usize, cap: usize, data: &[u8], side: &mut Vec<u8>) -> Data {
    if data.is_empty() {
        return Data::EMPTY;
    }
    let p = data.as_ptr() as usize;
    if p >= base && p + data.len() <= base + cap {
        Data::Arena {
            start: p - base,
            len: data.len(),
        }
    } else {
        let start = side.len();
        side.extend_from_slice(data);
        Data::Side {
            start,
            len: data.len(),
        }
    }
}

/// Moves a reassembled message out of the engine into `ev` (the `Vec`, not its bytes) and
/// gives the engine a spare buffer from the previous cycle, if any.
fn take_message(ws: &mut Connection, kind: MessageKind, conn: ConnId, ev: &mut Events) {
    let buf = ws.take_message_buffer();
    if let Some(spare) = ev.spare.pop() {
        ws.recycle_buffer(spare);
    }
    let data = ev.push_owned(buf);
    ev.list.push(Raw::Message { conn, kind, data });
}
