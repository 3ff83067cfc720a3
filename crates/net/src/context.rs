//! [`Context`]: one mio `Poll` with every listener and connection on it, driven by
//! [`Context::poll`] on the caller's thread.
//!
//! One poll cycle: forget the previous cycle's events; flush what the application sent
//! since; wait for readiness (never longer than the timeout, the next timer, or not at all
//! when work is pending); read every ready connection until `WouldBlock` into the shared
//! receive buffer and turn the bytes into events; run due timers; flush again (pongs, close
//! replies, handshake answers). Output is only ever written in the two flush steps, so all
//! messages sent to one connection between two polls leave in one `write`/`writev`.
//!
//! This file holds the public API; `cycle.rs` the internal steps.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Token};
use tidewire_proto::handshake::{http_response, ClientHandshake, Url};
use tidewire_proto::{MessageKind, Sent};

use crate::config::{Config, ConnectOptions, ListenOptions};
use crate::conn::{flag, Conn, Dial, Stage};
use crate::error::{Error, Result};
use crate::events::{Events, OpenInfo, Raw};
use crate::limits::AddrTable;
use crate::listener::{self, Listener};
use crate::proxy::ProxyDial;
use crate::reconnect::{Backoff, Redial};
use crate::resolve::ResolverPool;
use crate::sender::{Inbox, Sender, Shared};
use crate::slab::{split, ConnId, ListenerId, Slab};
use crate::timer::{TimerKind, Timers};
use crate::tls::{TlsClientOptions, TlsConnector};
use crate::topics::Topics;
use tidewire_proto::proxy::ProxyScheme;

pub(crate) const WAKER: Token = Token(usize::MAX);
/// Listener tokens carry this bit; connection tokens are plain slot indices.
pub(crate) const LISTENER_BIT: usize = 1 << (usize::BITS - 2);

/// Messages at least this long skip the engine's output buffer when it is empty: they are
/// written straight from the caller's slice, and only what the socket does not take is
/// copied (issue 3: "copy outgoing payload at most once, only when the socket cannot take it
/// all"). Smaller ones are buffered and coalesced per poll cycle. A direct write costs a
/// system call per message; a buffered one a copy, but one write for everything sent in the
/// cycle. Measured on the echo benchmark (16 connections x 8 in flight): at 64 KiB buffering
/// costs ~14.6 us of server CPU per message against ~22 us written directly; at 1 MiB the copy
/// dominates and direct writes win (1.13x a raw TCP echo's CPU against 1.34x).
const DIRECT_MIN: usize = 256 << 10;

/// What a send did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Queued; the buffer is below the high water mark.
    Queued,
    /// Queued, but the buffer is above [`Config::high_water_mark`]: stop sending until
    /// [`crate::Event::Writable`].
    Backpressure,
}

/// Events made outside `poll` (by `accept`), delivered by the next one.
pub(crate) enum Pending {
    Open(ConnId, OpenInfo),
}

/// The runtime: owns a mio `Poll`, the listeners and connections registered on it, their
/// timers and TLS state. Lives on one thread; other threads use a [`Sender`].
pub struct Context {
    pub(crate) poll: mio::Poll,
    pub(crate) mio_events: Option<mio::Events>,
    pub(crate) config: Config,
    pub(crate) proto_config: tidewire_proto::Config,
    pub(crate) conns: Slab<Conn>,
    pub(crate) listeners: Slab<Listener>,
    pub(crate) timers: Timers,
    pub(crate) shared: Arc<Shared>,
    pub(crate) inbox: Inbox,
    pub(crate) resolver: ResolverPool,
    /// Connections with output to flush or a state to look at, at the end of the cycle.
    pub(crate) dirty: Vec<u64>,
    /// Connections left readable because the receive buffer was full.
    pub(crate) read_later: Vec<u64>,
    pub(crate) pending: Vec<Pending>,
    pub(crate) default_tls: Option<TlsConnector>,
    pub(crate) now: Instant,
    pub(crate) last_sweep: Instant,
    /// Set by `shutdown`: when to drop whatever is still open.
    pub(crate) shutdown: Option<Instant>,
    /// `shutdown` was called and the not-yet-open connections are still to be dropped.
    pub(crate) shutdown_pending: bool,
    /// The last wait filled mio's event buffer: more readiness may be waiting in the kernel.
    pub(crate) more_ready: bool,
    /// When to try `accept` again on the listeners that ran out of descriptors (`stalled`).
    /// Set while one is stalled; brought forward to now whenever a connection ends.
    pub(crate) accept_retry: Option<Instant>,
    /// Topics and their subscribers (`publish.rs`).
    pub(crate) topics: Topics,
    /// Client connections with a reconnect policy (`reconnect.rs`), by id. Empty unless
    /// some connection asked for it: the paths that look at it check `is_empty` first.
    pub(crate) reconnects: HashMap<u64, Redial>,
}

impl Context {
    /// Creates a context. Fails with [`Error::InvalidArgument`] when the config does not
    /// pass [`Config::validate`].
    ///
    /// The first context of a process also starts loading the system's root certificates on
    /// a helper thread (once per process), so that the first `wss://` connect without TLS
    /// settings does not read them on the polling thread.
    pub fn new(config: Config) -> Result<Context> {
        config.validate()?;
        // The first wss:// connect must not read the system's roots inside a frame.
        crate::tls::prefetch_system_roots();
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let shared = Arc::new(Shared::new(waker, config.sender_queue_limit));
        let resolver = ResolverPool::new(
            config.resolver.clone(),
            shared.clone(),
            config.resolver_threads,
        );
        let proto_config = tidewire_proto::Config {
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            // The application sees a whole batch of events after the engine has parsed
            // them; the close the engine decides on goes out only at the next poll, after
            // whatever the application sent in answer to the messages before it.
            defer_close_replies: true,
        };
        let now = Instant::now();
        Ok(Context {
            poll,
            mio_events: Some(mio::Events::with_capacity(1024)),
            config,
            proto_config,
            conns: Slab::new(),
            listeners: Slab::new(),
            timers: Timers::default(),
            shared,
            inbox: Inbox::default(),
            resolver,
            dirty: Vec::new(),
            read_later: Vec::new(),
            pending: Vec::new(),
            default_tls: None,
            now,
            last_sweep: now,
            shutdown: None,
            shutdown_pending: false,
            more_ready: false,
            accept_retry: None,
            topics: Topics::default(),
            reconnects: HashMap::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Events sized for this context (receive buffer of [`Config::receive_buffer_size`]).
    pub fn new_events(&self) -> Events {
        Events::with_receive_buffer(self.config.receive_buffer_size)
    }

    /// A handle for other threads. See [`Sender`].
    pub fn sender(&self) -> Sender {
        Sender {
            shared: self.shared.clone(),
        }
    }

    /// The Poll's file descriptor: readable when `poll(Some(Duration::ZERO))` has work. For
    /// host loops (asyncio, libuv, epoll, game engines), together with
    /// [`Context::next_timeout`].
    pub fn fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    /// How long a host loop may wait on [`Context::fd`] before calling `poll` again: zero
    /// when work is pending (output to flush, data left to read), `None` when no timer is
    /// armed.
    pub fn next_timeout(&self) -> Option<Duration> {
        if !self.dirty.is_empty() || !self.read_later.is_empty() || !self.pending.is_empty() {
            return Some(Duration::ZERO);
        }
        if self.shutdown_pending || self.more_ready {
            return Some(Duration::ZERO);
        }
        self.next_deadline()
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The earliest of the timers, the shutdown deadline and the accept retry.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [self.timers.next(), self.shutdown, self.accept_retry]
            .into_iter()
            .flatten()
            .min()
    }

    /// Connections of every kind (connecting, handshaking, open, closing).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn listener_count(&self) -> usize {
        self.listeners.len()
    }

    // ---------------------------------------------------------------------------------------
    // Listeners
    // ---------------------------------------------------------------------------------------

    /// Listens on `host:port`. `host` is an IP literal (`127.0.0.1`, `::1`, `0.0.0.0`, `::`)
    /// or a name. A name is resolved inside this call with the system resolver
    /// (`getaddrinfo`): **this blocks the calling thread** for as long as the resolver takes,
    /// so call it at start-up, or pass an IP literal (which never blocks). It binds the first
    /// address. [`crate::Background::listen`] runs it on the I/O thread. Port 0 picks a free port: see
    /// [`Context::local_addr`].
    pub fn listen(&mut self, host: &str, port: u16, options: ListenOptions) -> Result<ListenerId> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addr = match host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => (host, port)
                .to_socket_addrs()
                .map_err(|e| Error::Resolve {
                    host: host.to_owned(),
                    error: e,
                })?
                .next()
                .ok_or_else(|| Error::Resolve {
                    host: host.to_owned(),
                    error: std::io::ErrorKind::NotFound.into(),
                })?,
        };
        self.listen_addr(addr, options)
    }

    /// Listens on a socket address.
    pub fn listen_addr(&mut self, addr: SocketAddr, options: ListenOptions) -> Result<ListenerId> {
        if self.shutdown.is_some() {
            return Err(Error::ShuttingDown);
        }
        options.validate()?;
        let sock = listener::bind(addr, &options)?;
        let local_addr = sock.local_addr()?;
        // The token needs the slot index, so insert first, then register (undone on failure).
        let id = self
            .listeners
            .insert(Listener {
                sock,
                options: Arc::new(options),
                local_addr,
                stalled: false,
                addrs: AddrTable::default(),
            })
            .ok_or(Error::TooManyConnections)?;
        let (index, _) = split(id);
        let registered = match self.listeners.get_mut(id) {
            Some(l) => self.poll.registry().register(
                &mut l.sock,
                Token(LISTENER_BIT | index),
                Interest::READABLE,
            ),
            None => Ok(()),
        };
        if let Err(e) = registered {
            self.listeners.remove(id);
            return Err(e.into());
        }
        Ok(ListenerId(id))
    }

    /// The address a listener is bound to (with the real port when 0 was asked).
    pub fn local_addr(&self, listener: ListenerId) -> Result<SocketAddr> {
        self.listeners
            .get(listener.0)
            .map(|l| l.local_addr)
            .ok_or(Error::StaleId)
    }

    /// Stops listening (connections already accepted go on).
    pub fn unlisten(&mut self, listener: ListenerId) -> Result<()> {
        let mut l = self.listeners.remove(listener.0).ok_or(Error::StaleId)?;
        let _ = self.poll.registry().deregister(&mut l.sock);
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Client
    // ---------------------------------------------------------------------------------------

    /// Opens a client connection to a `ws://` or `wss://` URL. Returns at once: the
    /// connection reports [`crate::Event::Open`] or a terminal [`crate::Event::Error`] saying
    /// what failed. Errors returned here are about the arguments (bad URL, header, TLS
    /// configuration) or local resources.
    ///
    /// With [`ConnectOptions::reconnect`], a retryable failure or end is followed by
    /// [`crate::Event::Reconnecting`] and a new attempt under the same id (see
    /// [`crate::reconnect`]); [`Context::close`] or [`Context::stop_reconnecting`] ends that.
    pub fn connect(&mut self, url: &str, options: ConnectOptions) -> Result<ConnId> {
        if self.shutdown.is_some() {
            return Err(Error::ShuttingDown);
        }
        options.validate()?;
        if self.conns.len() >= self.config.max_connections {
            return Err(Error::TooManyConnections);
        }
        let redial = options.reconnect.map(|policy| Redial {
            url: url.to_owned(),
            options: options.clone(),
            backoff: Backoff::new(policy),
            due: None,
        });
        let (conn, timeout) = self.new_dial(url, options)?;
        let now = conn.last_rx;
        let id = self.conns.insert(conn).ok_or(Error::TooManyConnections)?;
        self.arm_phase(id, now + timeout);
        let started = self.resolve_next(id);
        if let Err(e) = started {
            self.conns.remove(id);
            return Err(e);
        }
        if let Some(r) = redial {
            self.reconnects.insert(id, r);
        }
        Ok(ConnId(id))
    }

    /// Stops reconnecting `conn`: an open connection stays open and its end becomes final;
    /// one waiting for its next attempt ends now with [`crate::Event::Error`]
    /// ([`Error::Aborted`]) at the next poll; one being set up goes on, and its failure is
    /// final. A connection without a reconnect policy is left as it is.
    pub fn stop_reconnecting(&mut self, conn: ConnId) -> Result<()> {
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        if self.reconnects.remove(&conn.0).is_some() && matches!(c.stage, Stage::Waiting) {
            c.set(flag::ABORT);
            self.mark_dirty(conn.0);
        }
        Ok(())
    }

    /// The next attempt of a reconnecting connection is due: dial again under the same id.
    pub(crate) fn redial(&mut self, id: u64, at: Instant, ev: &mut Events) {
        let Some(r) = self.reconnects.get_mut(&id).filter(|r| r.due == Some(at)) else {
            return;
        };
        r.due = None;
        if self.shutdown.is_some() {
            return; // `drop_unopened` ends it
        }
        let (url, options) = (r.url.clone(), r.options.clone());
        let waiting = self
            .conns
            .get(id)
            .is_some_and(|c| matches!(c.stage, Stage::Waiting) && !c.has(flag::ABORT));
        if !waiting {
            return;
        }
        let started = self
            .new_dial(&url, options)
            .and_then(|(mut conn, timeout)| {
                if let Some(slot) = self.conns.get_mut(id) {
                    // See `finish`: a pending keepalive entry is inherited, not duplicated.
                    if slot.has(flag::KEEPALIVE) {
                        conn.set(flag::KEEPALIVE);
                    }
                    *slot = conn;
                }
                self.arm_phase(id, self.now + timeout);
                self.resolve_next(id)
            });
        if let Err(e) = started {
            self.finish(id, ev, Some(e));
        }
    }

    /// A client connection ready to resolve (not in the slab yet), and its connect timeout.
    fn new_dial(&mut self, url: &str, options: ConnectOptions) -> Result<(Conn, Duration)> {
        let url = Url::parse(url).map_err(|e| Error::InvalidUrl(format!("{url:?}: {e}")))?;
        // Built now so that a bad header or subprotocol is an error of this call.
        let handshake = ClientHandshake::new(
            &url,
            &options.client_options(self.config.handshake_limits.clone()),
        )?;
        let tls = if url.secure {
            let connector = match &options.tls {
                Some(c) => c.clone(),
                None => self.default_connector()?,
            };
            Some(Box::new(connector.session(&url.host)?))
        } else {
            None
        };
        let mut proxy = match options.proxy.for_url(&url)? {
            Some(p) => Some(Box::new(ProxyDial::new(p, &url)?)),
            None => None,
        };
        if let Some(p) = proxy
            .as_mut()
            .filter(|p| p.url.scheme == ProxyScheme::Https)
        {
            // TLS to the proxy: the same trust as the origin's (`options.tls`, else the
            // system's roots), checked against the proxy's host name.
            let connector = match &options.tls {
                Some(c) => c.clone(),
                None => self.default_connector()?,
            };
            p.outer = Some(Box::new(connector.session(&p.url.host)?));
        }
        let literal = url.host.parse::<IpAddr>().ok();
        let port = url.port;
        let timeout = options
            .connect_timeout
            .unwrap_or(self.config.connect_timeout);
        let dial = Box::new(Dial {
            url,
            options,
            addrs: literal
                .map(|ip| vec![SocketAddr::new(ip, port)])
                .unwrap_or_default(),
            next: 0,
            last_error: None,
            handshake: Some(handshake),
            peer: None,
            proxy: None,
        });
        let now = Instant::now();
        let mut dial = dial;
        let tls = match proxy.as_mut() {
            // TLS to the origin starts once the tunnel is open.
            Some(p) => {
                p.tls = tls;
                dial.addrs.clear();
                dial.proxy = proxy;
                None
            }
            None => tls,
        };
        let mut conn = Conn::new(None, Stage::Resolving(dial), now);
        conn.tls = tls;
        conn.set(flag::VISIBLE);
        Ok((conn, timeout))
    }

    fn default_connector(&mut self) -> Result<TlsConnector> {
        if let Some(c) = &self.default_tls {
            return Ok(c.clone());
        }
        let c = TlsConnector::new(&TlsClientOptions::default())?;
        self.default_tls = Some(c.clone());
        Ok(c)
    }

    // ---------------------------------------------------------------------------------------
    // Server decisions
    // ---------------------------------------------------------------------------------------

    /// Accepts an upgrade request delivered as [`crate::Event::Request`], selecting
    /// `subprotocol` (should be one the client offered) and adding `headers` to the 101
    /// response. The connection is open when this returns (sending is allowed); its
    /// [`crate::Event::Open`] comes with the next `poll`.
    pub fn accept(
        &mut self,
        conn: ConnId,
        subprotocol: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<()> {
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        match &c.stage {
            Stage::AwaitingDecision(acc) if !acc.key.is_empty() => {}
            _ => {
                return Err(Error::InvalidArgument(
                    "no upgrade request is waiting".into(),
                ))
            }
        }
        let info = self.open_server(conn.0, subprotocol, headers)?;
        self.pending.push(Pending::Open(conn, info));
        // Data that followed the request is in the stash; read it (and the socket) soon.
        self.queue_read(conn.0);
        Ok(())
    }

    /// Refuses an upgrade request (or answers a plain HTTP request) with `status`,
    /// `headers` and `body`, then closes the connection. No further event comes for it.
    pub fn reject(
        &mut self,
        conn: ConnId,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<()> {
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        if !matches!(c.stage, Stage::AwaitingDecision(_)) {
            return Err(Error::InvalidArgument("no request is waiting".into()));
        }
        let mut out = Vec::new();
        http_response(status, headers, body, &mut out)?;
        c.pre.set(out);
        c.stash = Vec::new();
        c.stage = Stage::Answering;
        c.clear(flag::VISIBLE);
        self.mark_dirty(conn.0);
        Ok(())
    }

    /// Answers a plain HTTP request delivered as [`crate::Event::HttpRequest`] (same as
    /// [`Context::reject`], named for what it does there).
    pub fn respond(
        &mut self,
        conn: ConnId,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<()> {
        self.reject(conn, status, headers, body)
    }

    // ---------------------------------------------------------------------------------------
    // Sending
    // ---------------------------------------------------------------------------------------

    /// Queues a text message. Never blocks; the bytes leave at the next `poll`.
    pub fn send_text(&mut self, conn: ConnId, text: &str) -> Result<SendStatus> {
        self.send(conn, MessageKind::Text, text.as_bytes())
    }

    pub fn send_binary(&mut self, conn: ConnId, data: &[u8]) -> Result<SendStatus> {
        self.send(conn, MessageKind::Binary, data)
    }

    /// Queues a message. Refused with [`Error::BufferFull`] while the output buffer holds
    /// [`Config::max_buffered`] bytes or more; answers [`SendStatus::Backpressure`] when it
    /// is above [`Config::high_water_mark`] after queueing. Text must be valid UTF-8.
    pub fn send(&mut self, conn: ConnId, kind: MessageKind, data: &[u8]) -> Result<SendStatus> {
        self.send_with(conn, kind, data, true)
    }

    /// [`Context::send`] with a choice: `compress: false` sends this one message uncompressed
    /// even on a connection that negotiated permessage-deflate (for data that is already
    /// compressed, or latency-critical).
    pub fn send_with(
        &mut self,
        conn: ConnId,
        kind: MessageKind,
        data: &[u8],
        compress: bool,
    ) -> Result<SendStatus> {
        let max_buffered = self.config.max_buffered;
        let high = self.config.high_water_mark;
        // `let else` rather than `ok_or(Error::…)`: an `Error` built eagerly runs its drop
        // glue on every send.
        let Some(c) = self.conns.get_mut(conn.0) else {
            return Err(Error::StaleId);
        };
        if !c.stage.is_open() {
            return Err(Error::NotOpen);
        }
        let buffered = c.buffered();
        if buffered >= max_buffered {
            return Err(Error::BufferFull {
                buffered,
                limit: max_buffered,
            });
        }
        let direct = data.len() >= DIRECT_MIN && c.can_write_direct();
        let Some(ws) = c.ws.as_mut() else {
            return Err(Error::NotOpen);
        };
        match ws.send_message_or_head(kind, data, compress, direct)? {
            Sent::Queued => {}
            Sent::Direct(head) => c.write_direct(head.as_bytes(), data),
        }
        Ok(self.after_send(conn.0, high))
    }

    /// Starts a message that is sent as several frames with [`Context::send_fragment`]
    /// (for messages produced piece by piece). Pings and closes may go in between.
    pub fn begin_message(&mut self, conn: ConnId, kind: MessageKind) -> Result<()> {
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        let ws =
            c.ws.as_mut()
                .filter(|_| c.stage.is_open())
                .ok_or(Error::NotOpen)?;
        ws.begin_message(kind, true)?;
        Ok(())
    }

    /// Queues the next frame of the message started by [`Context::begin_message`]; `fin`
    /// ends the message. Same buffer rules as [`Context::send`].
    pub fn send_fragment(&mut self, conn: ConnId, data: &[u8], fin: bool) -> Result<SendStatus> {
        let max_buffered = self.config.max_buffered;
        let high = self.config.high_water_mark;
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        let buffered = c.buffered();
        if buffered >= max_buffered {
            return Err(Error::BufferFull {
                buffered,
                limit: max_buffered,
            });
        }
        let ws =
            c.ws.as_mut()
                .filter(|_| c.stage.is_open())
                .ok_or(Error::NotOpen)?;
        ws.send_fragment(data, fin)?;
        Ok(self.after_send(conn.0, high))
    }

    /// Queues a ping (payload at most 125 bytes). The time it is queued is remembered for
    /// the latest few pings of each connection, so that the pong answering one of them
    /// measures the round-trip time ([`Context::latency`]); a ping with the payload of one
    /// still unanswered replaces it.
    pub fn ping(&mut self, conn: ConnId, data: &[u8]) -> Result<SendStatus> {
        let high = self.config.high_water_mark;
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        let ws =
            c.ws.as_mut()
                .filter(|_| c.stage.is_open())
                .ok_or(Error::NotOpen)?;
        ws.send_ping(data)?;
        c.rtt.app_ping(data, Instant::now());
        Ok(self.after_send(conn.0, high))
    }

    /// The last round-trip time measured on this connection, `None` before the first.
    ///
    /// It is measured from pongs that answer a ping whose send time is known: the keepalive
    /// pings ([`Config::ping_interval`]; their payload carries a counter, so an unsolicited
    /// or late pong measures nothing) and the latest few application pings sent with
    /// [`Context::ping`] (matched by payload). It runs from when the ping was queued to the
    /// poll that read its pong, so data queued before the ping, and an application that
    /// polls late, count in it.
    pub fn latency(&self, conn: ConnId) -> Result<Option<Duration>> {
        let c = self.conns.get(conn.0).ok_or(Error::StaleId)?;
        Ok(c.rtt.last())
    }

    /// Starts the closing handshake with `code` and `reason` (at most 123 bytes of UTF-8).
    /// The connection ends with [`crate::Event::Closed`] when the peer answers, or after
    /// [`Config::close_timeout`]. A connection that is not open yet is dropped at once
    /// (reported by a terminal [`crate::Event::Error`] at the next poll). A reconnecting
    /// connection stops reconnecting, also during the delay before its next attempt.
    pub fn close(&mut self, conn: ConnId, code: u16, reason: &str) -> Result<()> {
        let close_timeout = self.config.close_timeout;
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        if !self.reconnects.is_empty() {
            // A close the application asked for is never retried.
            self.reconnects.remove(&conn.0);
        }
        if !c.stage.is_open() {
            c.set(flag::ABORT);
            self.mark_dirty(conn.0);
            return Ok(());
        }
        let ws = c.ws.as_mut().ok_or(Error::NotOpen)?;
        ws.close(code, reason)?;
        let at = Instant::now() + close_timeout;
        self.arm_phase(conn.0, at);
        self.mark_dirty(conn.0);
        Ok(())
    }

    /// Writes what is queued for `conn` now instead of at the next [`poll`](Self::poll), for
    /// a request/response exchange that should not wait for the end of the cycle.
    ///
    /// Returns `Ok(true)` when everything went out and the next `poll` has nothing left to
    /// do for this connection. `Ok(false)` means that something is left to `poll`: the rest
    /// of a partial write, a failed socket, a close that completes, a writable event owed
    /// after back-pressure, or a connection that is not open yet; call `poll` soon. `poll`
    /// flushes everything anyway, so this call is never needed for correctness, and a batch
    /// of sends followed by one `poll` costs fewer system calls than a flush after each.
    pub fn flush(&mut self, conn: ConnId) -> Result<bool> {
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        let writable = matches!(c.stage, Stage::Open)
            && !c.has(flag::ABORT)
            && c.ws.as_ref().is_some_and(|ws| !ws.close_reply_owed());
        if !writable {
            return Ok(false);
        }
        let done = matches!(c.flush(), Ok(true)) && !c.tls_wants_write();
        let settled = done
            && !c.has(flag::ABOVE_HIGH | flag::OUT_FULL)
            && c.ws.as_ref().is_some_and(|ws| !ws.wants_transport_close());
        if !settled {
            self.mark_dirty(conn.0);
            return Ok(false);
        }
        // Drop the connection's entry when it is the last one (the common case), so that
        // the next poll does not return at once for nothing.
        if self.dirty.last() == Some(&conn.0) {
            self.dirty.pop();
            c.clear(flag::DIRTY);
        }
        Ok(true)
    }

    /// Bytes queued for the peer and not yet written to the socket (or to TLS).
    pub fn buffered_amount(&self, conn: ConnId) -> Result<usize> {
        self.conns
            .get(conn.0)
            .map(Conn::buffered)
            .ok_or(Error::StaleId)
    }

    /// The peer's address (of the connected socket).
    pub fn peer_addr(&self, conn: ConnId) -> Result<SocketAddr> {
        let c = self.conns.get(conn.0).ok_or(Error::StaleId)?;
        let sock = c.sock.as_ref().ok_or(Error::NotOpen)?;
        Ok(sock.peer_addr()?)
    }

    /// Our own address on the connection's socket.
    pub fn conn_local_addr(&self, conn: ConnId) -> Result<SocketAddr> {
        let c = self.conns.get(conn.0).ok_or(Error::StaleId)?;
        let sock = c.sock.as_ref().ok_or(Error::NotOpen)?;
        Ok(sock.local_addr()?)
    }

    /// Sends the close frame held for this connection ([`Config::hold_close_replies`]), if
    /// one is held; returns whether one was. Call it once the application has consumed the
    /// messages received before the peer's close or protocol error.
    pub fn release_close_reply(&mut self, conn: ConnId) -> Result<bool> {
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        let Some(ws) = c.ws.as_mut().filter(|w| w.close_reply_owed()) else {
            return Ok(false);
        };
        ws.queue_close_reply();
        self.mark_dirty(conn.0);
        Ok(true)
    }

    /// Stops reading from an open connection: nothing more is received (the kernel's buffer
    /// fills, then TCP flow control slows the peer down) until [`Context::resume_reading`].
    /// Sending and timers go on. This is receive-side back-pressure for an application that
    /// queues messages faster than it consumes them. Pausing twice is the same as once.
    pub fn pause_reading(&mut self, conn: ConnId) -> Result<()> {
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        if !c.stage.is_open() {
            return Err(Error::NotOpen);
        }
        c.set(flag::PAUSED);
        Ok(())
    }

    /// Reads again from a connection paused with [`Context::pause_reading`]; what arrived
    /// meanwhile is delivered at the next `poll`.
    pub fn resume_reading(&mut self, conn: ConnId) -> Result<()> {
        let c = self.conns.get_mut(conn.0).ok_or(Error::StaleId)?;
        if c.has(flag::PAUSED) {
            c.clear(flag::PAUSED);
            // Readiness is edge-triggered: an edge may have come while paused.
            self.queue_read(conn.0);
        }
        Ok(())
    }

    /// Whether reading is paused on this connection.
    pub fn is_reading_paused(&self, conn: ConnId) -> Result<bool> {
        let c = self.conns.get(conn.0).ok_or(Error::StaleId)?;
        Ok(c.has(flag::PAUSED))
    }

    /// Whether the connection is open (handshake done, no close frame sent or received).
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.conns.get(conn.0).is_some_and(|c| {
            c.stage.is_open()
                && c.ws
                    .as_ref()
                    .is_some_and(|w| w.state() == tidewire_proto::State::Open)
        })
    }

    pub(crate) fn after_send(&mut self, id: u64, high: usize) -> SendStatus {
        let status = match self.conns.get_mut(id) {
            Some(c) => {
                c.set(flag::ACTIVE);
                c.clear(flag::SHRUNK);
                if c.buffered() > high {
                    c.set(flag::ABOVE_HIGH);
                    SendStatus::Backpressure
                } else {
                    SendStatus::Queued
                }
            }
            None => SendStatus::Queued,
        };
        self.mark_dirty(id);
        status
    }

    // ---------------------------------------------------------------------------------------
    // Shutdown
    // ---------------------------------------------------------------------------------------

    /// Starts shutting down: stops listening, sends close 1001 on every open connection,
    /// drops the ones not open yet, and gives the close handshakes `grace` to complete;
    /// then the next `poll` drops what is left (Closed with 1006). Keep polling until
    /// [`Context::connection_count`] is 0 (or use [`Context::shutdown_blocking`]).
    pub fn shutdown(&mut self, grace: Duration) {
        let now = Instant::now();
        let deadline = now + grace;
        self.shutdown = Some(match self.shutdown {
            Some(d) => d.min(deadline),
            None => deadline,
        });
        for id in self.listeners.ids() {
            let _ = self.unlisten(ListenerId(id));
        }
        for id in self.conns.ids() {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            let open = c.stage.is_open()
                && c.ws
                    .as_ref()
                    .is_some_and(|w| w.state() == tidewire_proto::State::Open);
            if open {
                if let Some(ws) = c.ws.as_mut() {
                    let _ = ws.close(1001, "going away");
                }
                self.arm_phase(id, deadline);
                self.mark_dirty(id);
            }
        }
        self.shutdown_pending = true;
    }

    /// [`Context::shutdown`], then polls (discarding events) until every connection is gone
    /// or `grace` has passed.
    pub fn shutdown_blocking(&mut self, grace: Duration) -> Result<()> {
        self.shutdown(grace);
        let deadline = Instant::now() + grace;
        let mut events = Events::with_receive_buffer(64 << 10);
        while self.conns.len() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            self.poll(&mut events, Some(left.min(Duration::from_millis(100))))?;
            if Instant::now() >= deadline {
                // One more poll applies the deadline and drops what is left.
                self.poll(&mut events, Some(Duration::ZERO))?;
                break;
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Internal helpers shared with cycle.rs
    // ---------------------------------------------------------------------------------------

    pub(crate) fn mark_dirty(&mut self, id: u64) {
        if let Some(c) = self.conns.get_mut(id) {
            if !c.has(flag::DIRTY) {
                c.set(flag::DIRTY);
                self.dirty.push(id);
            }
        }
    }

    pub(crate) fn queue_read(&mut self, id: u64) {
        if let Some(c) = self.conns.get_mut(id) {
            if !c.has(flag::READ_LATER) {
                c.set(flag::READ_LATER);
                self.read_later.push(id);
            }
        }
    }

    pub(crate) fn arm_phase(&mut self, id: u64, at: Instant) {
        if let Some(c) = self.conns.get_mut(id) {
            c.deadline = Some(at);
            self.timers.push(at, id, TimerKind::Phase);
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.shared.mark_closed();
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("connections", &self.conns.len())
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn push_open(events: &mut Events, conn: ConnId, info: OpenInfo) {
    events.opens.push(info);
    events.list.push(Raw::Open {
        conn,
        index: events.opens.len() - 1,
    });
}
