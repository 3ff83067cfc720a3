//! [`Background`]: a [`Context`] driven by its own I/O thread, for programs whose main thread
//! must never wait on the network (game engines, GUI programs): IXWebSocket's and Unreal's
//! model, next to the poll-per-frame model of [`Context::poll`].
//!
//! The I/O thread owns the context. Everything the network costs (name resolution hand-off,
//! TCP, TLS handshakes and records, permessage-deflate, timers, keepalive) runs there. The
//! application's threads only
//!
//! * drain a queue of owned events ([`Background::try_recv`], [`Background::drain`]: never
//!   block; [`Background::recv_timeout`]: waits at most the timeout), and
//! * queue commands ([`Background::connect`], [`Background::send_text`], `send_binary`,
//!   `ping`, `close`, `unlisten`): never block beyond a short uncontended lock; the I/O thread
//!   is woken through the context's `mio::Waker` when the command queue goes from empty to
//!   non-empty, and applies the commands in order after each poll.
//!
//! **Connection ids.** [`Background::connect`] returns the new connection's id at once,
//! without a round trip: ids of this mode are allocated on the caller's side from a counter
//! of the handle (never reused, never 0), and the I/O thread maps them to the context's own
//! ids. Connections accepted by a listener get an id from the same counter, first seen in
//! their [`OwnedEvent::Open`]. These ids belong to this handle only. [`Background::listen`]
//! is the one documented round trip: it waits until the I/O thread has bound the socket
//! (microseconds; a host name is resolved blocking, as [`Context::listen`] does), so that it
//! can return the listener's id and bound address; call it at start-up, not per frame.
//!
//! **Events.** Per connection, events come in the order the context produced them; the
//! connection's last event is [`OwnedEvent::Closed`] or a terminal [`OwnedEvent::Error`], as
//! in the poll mode. Every event the context produces is queued exactly once (the I/O thread
//! moves them from one `poll`'s [`Events`] into the queue under one lock per poll); the
//! internal wake-ups are not reported. The last event of all is [`OwnedEvent::Stopped`],
//! when the I/O thread ends (after [`Background::shutdown`], or on a fatal error of the
//! poller). Events left in the queue stay readable after the thread has ended.
//!
//! **Memory.** Message data is owned by its event: one allocation per message copied out of
//! the receive buffer, none for a message the engine reassembled or inflated (its buffer is
//! moved). The queue toward the application is bounded by
//! [`BackgroundOptions::event_queue_limit`] bytes of payload: when it is above, the I/O
//! thread pauses reading on every open connection ([`Context::pause_reading`]: TCP flow
//! control then slows the peers down) and resumes them once the application has drained the
//! queue to half the limit. Nothing is dropped; the queue can exceed the limit by at most one
//! poll's worth of events: one receive buffer ([`crate::Config::receive_buffer_size`]) plus
//! at most [`crate::Config::max_message_size`] of reassembled or inflated messages (a
//! compressed stream inflates beyond what was read). The command
//! queue toward the I/O thread is bounded by [`crate::Config::sender_queue_limit`] bytes:
//! beyond it a send returns [`Error::BufferFull`] at once. A command the context refuses
//! (stale id, connection not open, output buffer at [`crate::Config::max_buffered`]) comes
//! back as an [`OwnedEvent::SendFailed`].
//!
//! **Shutdown.** [`Background::shutdown`] closes every connection with 1001, gives the close
//! handshakes `grace`, stops the I/O thread and joins it. Dropping the handle does the same
//! with [`DROP_GRACE`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tidewire_proto::handshake::{Header, Url};
use tidewire_proto::MessageKind;

use crate::config::{Config, ConnectOptions, ListenOptions};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::{Data, Event, Events, Raw, Source};
use crate::sender::Sender;
use crate::slab::{ConnId, ListenerId};

/// How long dropping a [`Background`] waits for the close handshakes.
pub const DROP_GRACE: Duration = Duration::from_secs(1);

/// Default of [`BackgroundOptions::event_queue_limit`]: 16 MiB of queued payload.
pub const DEFAULT_EVENT_QUEUE_LIMIT: usize = 16 << 20;

/// What an event costs in the queue besides its payload (for the limit).
const EVENT_OVERHEAD: usize = 64;

/// Settings of the background mode itself (the context's are in [`Config`]).
#[derive(Clone, Debug)]
pub struct BackgroundOptions {
    /// Bytes of event payload queued toward the application above which the I/O thread
    /// pauses reading (see the module's "Memory"). At least 64 KiB. Default 16 MiB.
    pub event_queue_limit: usize,
    /// The I/O thread's name. Default `tidewire-io`.
    pub thread_name: String,
}

impl Default for BackgroundOptions {
    fn default() -> Self {
        BackgroundOptions {
            event_queue_limit: DEFAULT_EVENT_QUEUE_LIMIT,
            thread_name: "tidewire-io".into(),
        }
    }
}

/// The smallest [`BackgroundOptions::event_queue_limit`].
pub const MIN_EVENT_QUEUE_LIMIT: usize = 64 << 10;

impl BackgroundOptions {
    pub fn validate(&self) -> Result<()> {
        if self.event_queue_limit < MIN_EVENT_QUEUE_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "event_queue_limit {} is below the minimum {MIN_EVENT_QUEUE_LIMIT}",
                self.event_queue_limit
            )));
        }
        Ok(())
    }
}

/// An event of the background mode: [`Event`] with its data owned. Connection ids are the
/// handle's own (see the module's "Connection ids").
#[derive(Debug)]
pub enum OwnedEvent {
    /// The opening handshake completed (see [`Event::Open`]).
    Open {
        conn: ConnId,
        listener: Option<ListenerId>,
        subprotocol: Option<String>,
        extensions: Option<String>,
        peer_addr: SocketAddr,
        path: String,
        headers: Vec<Header>,
    },
    /// A whole message; text is valid UTF-8.
    Message {
        conn: ConnId,
        kind: MessageKind,
        data: Vec<u8>,
    },
    Ping {
        conn: ConnId,
        data: Vec<u8>,
    },
    Pong {
        conn: ConnId,
        data: Vec<u8>,
    },
    /// See [`Event::Writable`].
    Writable {
        conn: ConnId,
    },
    /// Terminal: see [`Event::Closed`].
    Closed {
        conn: ConnId,
        code: u16,
        reason: String,
        clean: bool,
        remote: bool,
    },
    /// See [`Event::Error`]: terminal for a connection (it never opened), a report for a
    /// listener.
    Error {
        source: Source,
        error: Error,
    },
    /// A client connection with a reconnect policy failed or ended and tries again after
    /// `delay` (see [`Event::Reconnecting`]): not terminal, the id stays valid.
    Reconnecting {
        conn: ConnId,
        attempt: u32,
        delay: Duration,
        /// Why the connection failed before it opened; `None` when an open connection ended
        /// (then `close_code` says how).
        error: Option<Error>,
        close_code: u16,
    },
    /// A command of this handle could not be applied (see [`Event::SendFailed`]).
    SendFailed {
        conn: ConnId,
        error: Error,
    },
    /// The I/O thread ended: after [`Background::shutdown`] (`error` is `None`), or because
    /// the poller failed (`error` says how). Always the last event.
    Stopped {
        error: Option<Error>,
    },
}

impl OwnedEvent {
    /// The connection the event is about, if any.
    pub fn conn(&self) -> Option<ConnId> {
        match *self {
            OwnedEvent::Open { conn, .. }
            | OwnedEvent::Message { conn, .. }
            | OwnedEvent::Ping { conn, .. }
            | OwnedEvent::Pong { conn, .. }
            | OwnedEvent::Writable { conn }
            | OwnedEvent::Closed { conn, .. }
            | OwnedEvent::Reconnecting { conn, .. }
            | OwnedEvent::SendFailed { conn, .. } => Some(conn),
            OwnedEvent::Error {
                source: Source::Conn(conn),
                ..
            } => Some(conn),
            OwnedEvent::Error { .. } | OwnedEvent::Stopped { .. } => None,
        }
    }

    /// Whether this is the last event of its connection.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            OwnedEvent::Closed { .. }
                | OwnedEvent::Error {
                    source: Source::Conn(_),
                    ..
                }
        )
    }

    /// The text of a text message.
    pub fn text(&self) -> Option<&str> {
        match self {
            OwnedEvent::Message {
                kind: MessageKind::Text,
                data,
                ..
            } => std::str::from_utf8(data).ok(),
            _ => None,
        }
    }

    fn cost(&self) -> usize {
        EVENT_OVERHEAD
            + match self {
                OwnedEvent::Message { data, .. }
                | OwnedEvent::Ping { data, .. }
                | OwnedEvent::Pong { data, .. } => data.len(),
                OwnedEvent::Closed { reason, .. } => reason.len(),
                _ => 0,
            }
    }
}

enum Cmd {
    Connect(u64, String, Box<ConnectOptions>),
    Listen(
        String,
        u16,
        Box<ListenOptions>,
        mpsc::SyncSender<Result<(ListenerId, SocketAddr)>>,
    ),
    Unlisten(ListenerId),
    Send(u64, MessageKind, Vec<u8>),
    Ping(u64, Vec<u8>),
    Close(u64, u16, String),
    Shutdown(Duration),
}

impl Cmd {
    fn cost(&self) -> usize {
        match self {
            Cmd::Send(_, _, d) | Cmd::Ping(_, d) => d.len(),
            Cmd::Close(_, _, r) => r.len(),
            _ => 0,
        }
    }
}

#[derive(Default)]
struct CmdQueue {
    list: VecDeque<Cmd>,
    bytes: usize,
}

#[derive(Default)]
struct EventQueue {
    list: VecDeque<OwnedEvent>,
    bytes: usize,
    /// The I/O thread has queued its `Stopped` event.
    stopped: bool,
}

struct Shared {
    commands: Mutex<CmdQueue>,
    command_limit: usize,
    events: Mutex<EventQueue>,
    ready: Condvar,
    event_limit: usize,
    /// The I/O thread paused reading because of the event queue.
    paused: AtomicBool,
    /// Shutdown was asked: further commands are refused.
    closing: AtomicBool,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single push or swap: a panic elsewhere leaves the
    // queue usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn take_events(&self, max: usize, out: &mut Vec<OwnedEvent>) -> usize {
        let mut q = lock(&self.events);
        let n = max.min(q.list.len());
        let mut freed = 0;
        for e in q.list.drain(..n) {
            freed += e.cost();
            out.push(e);
        }
        q.bytes -= freed;
        n
    }
}

/// A context on its own I/O thread. `Send + Sync`: any thread may send and drain.
pub struct Background {
    shared: Arc<Shared>,
    sender: Sender,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Creates the context (checking `config` here) and starts its I/O thread with the
    /// default [`BackgroundOptions`].
    pub fn new(config: Config) -> Result<Background> {
        Background::with_options(config, BackgroundOptions::default())
    }

    /// Creates the context and starts its I/O thread.
    pub fn with_options(config: Config, options: BackgroundOptions) -> Result<Background> {
        options.validate()?;
        let command_limit = config.sender_queue_limit;
        let ctx = Context::new(config)?;
        let sender = ctx.sender();
        let shared = Arc::new(Shared {
            commands: Mutex::new(CmdQueue::default()),
            command_limit,
            events: Mutex::new(EventQueue::default()),
            ready: Condvar::new(),
            event_limit: options.event_queue_limit,
            paused: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        });
        let io = IoThread {
            ctx,
            shared: shared.clone(),
            to_ctx: HashMap::new(),
            to_app: HashMap::new(),
            paused: false,
            shutdown_at: None,
        };
        let thread = std::thread::Builder::new()
            .name(options.thread_name)
            .spawn(move || io.run())?;
        Ok(Background {
            shared,
            sender,
            thread: Some(thread),
        })
    }

    fn push(&self, cmd: Cmd) -> Result<()> {
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let was_empty = {
            let mut q = lock(&self.shared.commands);
            let cost = cmd.cost();
            if q.bytes > 0 && q.bytes + cost > self.shared.command_limit {
                return Err(Error::BufferFull {
                    buffered: q.bytes,
                    limit: self.shared.command_limit,
                });
            }
            q.bytes += cost;
            q.list.push_back(cmd);
            q.list.len() == 1
        };
        if was_empty {
            self.wake()?;
        }
        Ok(())
    }

    fn wake(&self) -> Result<()> {
        match self.sender.wake() {
            // The I/O thread is gone (a fatal poller error): its `Stopped` event says why.
            Err(Error::ContextGone) => Err(Error::ContextGone),
            other => other,
        }
    }

    /// Opens a client connection; returns its id at once (allocated here, see the module's
    /// "Connection ids"). The URL and the options are checked here ([`Error::InvalidUrl`],
    /// [`Error::InvalidArgument`]); everything else (a TLS setting, name resolution, TCP,
    /// TLS, the upgrade) is reported by the connection's [`OwnedEvent::Open`] or terminal
    /// [`OwnedEvent::Error`].
    pub fn connect(&self, url: &str, options: ConnectOptions) -> Result<ConnId> {
        Url::parse(url).map_err(|e| Error::InvalidUrl(format!("{url:?}: {e}")))?;
        options.validate()?;
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.push(Cmd::Connect(id, url.to_owned(), Box::new(options)))?;
        Ok(ConnId(id))
    }

    /// Listens on `host:port` (see [`Context::listen`]); a short round trip to the I/O
    /// thread that returns the listener and its bound address. Listeners of this mode
    /// accept by their options' rules: `handle_requests` and `handle_http` are refused with
    /// [`Error::InvalidArgument`] (there is no way to answer a request from the queue).
    pub fn listen(
        &self,
        host: &str,
        port: u16,
        options: ListenOptions,
    ) -> Result<(ListenerId, SocketAddr)> {
        if options.handle_requests || options.handle_http {
            return Err(Error::InvalidArgument(
                "handle_requests and handle_http are not available in the background mode".into(),
            ));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.push(Cmd::Listen(host.to_owned(), port, Box::new(options), tx))?;
        rx.recv().map_err(|_| Error::ContextGone)?
    }

    /// Stops listening (connections already accepted go on). A stale id is reported by an
    /// [`OwnedEvent::Error`] about the listener.
    pub fn unlisten(&self, listener: ListenerId) -> Result<()> {
        self.push(Cmd::Unlisten(listener))
    }

    /// Queues a text message (checked for UTF-8 on the engine's side: an
    /// [`OwnedEvent::SendFailed`] reports a refusal).
    pub fn send_text(&self, conn: ConnId, text: impl Into<String>) -> Result<()> {
        self.push(Cmd::Send(
            conn.0,
            MessageKind::Text,
            text.into().into_bytes(),
        ))
    }

    /// Queues a binary message.
    pub fn send_binary(&self, conn: ConnId, data: impl Into<Vec<u8>>) -> Result<()> {
        self.push(Cmd::Send(conn.0, MessageKind::Binary, data.into()))
    }

    /// Queues a message of `kind`, copying `data` (one allocation). Text must be UTF-8
    /// ([`Error::Send`] here when it is not).
    pub fn send(&self, conn: ConnId, kind: MessageKind, data: &[u8]) -> Result<()> {
        if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
            return Err(Error::Send(tidewire_proto::SendError::InvalidUtf8));
        }
        self.push(Cmd::Send(conn.0, kind, data.to_vec()))
    }

    /// Queues a ping (at most 125 bytes; longer ones fail when applied).
    pub fn ping(&self, conn: ConnId, data: impl Into<Vec<u8>>) -> Result<()> {
        self.push(Cmd::Ping(conn.0, data.into()))
    }

    /// Queues the start of the closing handshake (see [`Context::close`]).
    pub fn close(&self, conn: ConnId, code: u16, reason: impl Into<String>) -> Result<()> {
        self.push(Cmd::Close(conn.0, code, reason.into()))
    }

    /// The next event, without waiting.
    pub fn try_recv(&self) -> Option<OwnedEvent> {
        let e = {
            let mut q = lock(&self.shared.events);
            let e = q.list.pop_front();
            if let Some(e) = &e {
                q.bytes -= e.cost();
            }
            e
        };
        self.after_drain();
        e
    }

    /// Moves up to `max` queued events to the end of `out`, without waiting (once per
    /// frame). Returns how many.
    pub fn drain(&self, out: &mut Vec<OwnedEvent>, max: usize) -> usize {
        let n = self.shared.take_events(max, out);
        self.after_drain();
        n
    }

    /// The next event, waiting at most `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<OwnedEvent> {
        let deadline = Instant::now() + timeout;
        let mut q = lock(&self.shared.events);
        while q.list.is_empty() && !q.stopped {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            q = match self.shared.ready.wait_timeout(q, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        let e = q.list.pop_front();
        if let Some(e) = &e {
            q.bytes -= e.cost();
        }
        drop(q);
        self.after_drain();
        e
    }

    /// Events waiting in the queue.
    pub fn pending_events(&self) -> usize {
        lock(&self.shared.events).list.len()
    }

    /// Bytes of payload (plus a small fixed cost per event) waiting in the queue: what
    /// [`BackgroundOptions::event_queue_limit`] bounds.
    pub fn pending_bytes(&self) -> usize {
        lock(&self.shared.events).bytes
    }

    /// Whether the I/O thread is still running (false once it queued
    /// [`OwnedEvent::Stopped`]).
    pub fn is_running(&self) -> bool {
        !lock(&self.shared.events).stopped
    }

    fn after_drain(&self) {
        if !self.shared.paused.load(Ordering::Acquire) {
            return;
        }
        let bytes = lock(&self.shared.events).bytes;
        // Paused and drained to half the limit: wake the I/O thread (once) so that it
        // resumes reading after its poll.
        if bytes <= self.shared.event_limit / 2 && self.shared.paused.swap(false, Ordering::AcqRel)
        {
            let _ = self.sender.wake();
        }
    }

    /// Closes every connection with 1001, gives the close handshakes `grace`, stops the I/O
    /// thread and joins it. The events of the closes, and [`OwnedEvent::Stopped`], stay in
    /// the queue. Later commands return [`Error::ShuttingDown`]. Calling it again does
    /// nothing.
    pub fn shutdown(&mut self, grace: Duration) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // Queued even when the queue is over its byte limit (it costs nothing).
        {
            let mut q = lock(&self.shared.commands);
            q.list.push_back(Cmd::Shutdown(grace));
        }
        self.shared.closing.store(true, Ordering::Release);
        let _ = self.sender.wake();
        thread.join().map_err(|_| {
            Error::Io(std::io::Error::other(
                "the tidewire I/O thread panicked (a bug in tidewire)",
            ))
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.shutdown(DROP_GRACE);
    }
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

/// The I/O thread's state.
struct IoThread {
    ctx: Context,
    shared: Arc<Shared>,
    /// The handle's ids to the context's.
    to_ctx: HashMap<u64, ConnId>,
    /// The context's ids to the handle's.
    to_app: HashMap<ConnId, u64>,
    paused: bool,
    shutdown_at: Option<Instant>,
}

impl IoThread {
    fn run(mut self) {
        let mut events = self.ctx.new_events();
        let mut batch: Vec<OwnedEvent> = Vec::new();
        let mut commands = CmdQueue::default();
        let error = loop {
            let timeout = self.shutdown_at.map(|at| {
                at.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50))
            });
            if let Err(e) = self.ctx.poll(&mut events, timeout) {
                break Some(e);
            }
            self.forward(&mut events, &mut batch);
            {
                let mut q = lock(&self.shared.commands);
                std::mem::swap(&mut *q, &mut commands);
            }
            for cmd in commands.list.drain(..) {
                self.apply(cmd, &mut batch);
            }
            commands.bytes = 0;
            self.publish(&mut batch);
            self.flow_control();
            if let Some(at) = self.shutdown_at {
                if self.ctx.connection_count() == 0 || Instant::now() >= at {
                    // One more poll applies the deadline (1006 for what is left).
                    if let Err(e) = self.ctx.poll(&mut events, Some(Duration::ZERO)) {
                        break Some(e);
                    }
                    self.forward(&mut events, &mut batch);
                    self.publish(&mut batch);
                    break None;
                }
            }
        };
        self.shared.closing.store(true, Ordering::Release);
        // Commands that arrived too late are answered: a listen waiting for its reply gets
        // `ContextGone`, a send `SendFailed`.
        let late = std::mem::take(&mut *lock(&self.shared.commands));
        for cmd in late.list {
            match cmd {
                Cmd::Send(id, ..) | Cmd::Ping(id, ..) | Cmd::Close(id, ..) => {
                    batch.push(OwnedEvent::SendFailed {
                        conn: ConnId(id),
                        error: Error::ShuttingDown,
                    })
                }
                Cmd::Connect(id, ..) => batch.push(OwnedEvent::Error {
                    source: Source::Conn(ConnId(id)),
                    error: Error::ShuttingDown,
                }),
                Cmd::Listen(.., reply) => {
                    let _ = reply.send(Err(Error::ShuttingDown));
                }
                Cmd::Unlisten(_) | Cmd::Shutdown(_) => {}
            }
        }
        batch.push(OwnedEvent::Stopped { error });
        let mut q = lock(&self.shared.events);
        for e in batch.drain(..) {
            q.bytes += e.cost();
            q.list.push_back(e);
        }
        q.stopped = true;
        drop(q);
        self.shared.ready.notify_all();
    }

    /// The handle's id for a context id, allocating one for a connection first seen here
    /// (accepted by a listener).
    fn app_id(&mut self, conn: ConnId) -> ConnId {
        if let Some(&id) = self.to_app.get(&conn) {
            return ConnId(id);
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.to_app.insert(conn, id);
        self.to_ctx.insert(id, conn);
        ConnId(id)
    }

    fn forget(&mut self, conn: ConnId) {
        if let Some(id) = self.to_app.remove(&conn) {
            self.to_ctx.remove(&id);
        }
    }

    /// Moves the events of one poll into `batch` as owned events.
    fn forward(&mut self, events: &mut Events, batch: &mut Vec<OwnedEvent>) {
        // Errors are moved out (they are not `Clone`); the raw list says which is where.
        let mut errors: Vec<Option<Error>> = events.errors.drain(..).map(Some).collect();
        for i in 0..events.list.len() {
            let owned = match events.list[i] {
                Raw::Wake => continue,
                Raw::Error { source, index } => {
                    let Some(error) = errors.get_mut(index).and_then(Option::take) else {
                        continue;
                    };
                    let source = match source {
                        Source::Conn(c) => {
                            let id = self.app_id(c);
                            self.forget(c);
                            Source::Conn(id)
                        }
                        other => other,
                    };
                    OwnedEvent::Error { source, error }
                }
                Raw::Reconnecting {
                    conn,
                    attempt,
                    delay,
                    error,
                    close_code,
                } => OwnedEvent::Reconnecting {
                    conn: self.app_id(conn),
                    attempt,
                    delay,
                    error: error.and_then(|j| errors.get_mut(j).and_then(Option::take)),
                    close_code,
                },
                Raw::SendFailed { conn, index } => {
                    let Some(error) = errors.get_mut(index).and_then(Option::take) else {
                        continue;
                    };
                    OwnedEvent::SendFailed {
                        conn: self.app_id(conn),
                        error,
                    }
                }
                Raw::Message {
                    conn,
                    kind,
                    data: Data::Owned(j),
                } => {
                    // Reassembled or inflated: the buffer moves, no copy.
                    let data = events
                        .owned
                        .get_mut(j)
                        .map(std::mem::take)
                        .unwrap_or_default();
                    OwnedEvent::Message {
                        conn: self.app_id(conn),
                        kind,
                        data,
                    }
                }
                _ => {
                    let Some(event) = events.get(i) else {
                        continue;
                    };
                    match self.own(&event) {
                        Some(e) => e,
                        None => continue,
                    }
                }
            };
            if let OwnedEvent::Open { .. } = owned {
                if self.paused {
                    if let Some(c) = events.list.get(i).and_then(raw_conn) {
                        let _ = self.ctx.pause_reading(c);
                    }
                }
            }
            batch.push(owned);
        }
    }

    fn own(&mut self, event: &Event<'_>) -> Option<OwnedEvent> {
        Some(match *event {
            Event::Open {
                conn,
                listener,
                subprotocol,
                extensions,
                peer_addr,
                path,
                headers,
            } => OwnedEvent::Open {
                conn: self.app_id(conn),
                listener,
                subprotocol: subprotocol.map(str::to_owned),
                extensions: extensions.map(str::to_owned),
                peer_addr,
                path: path.to_owned(),
                headers: headers.to_vec(),
            },
            Event::Message { conn, kind, data } => OwnedEvent::Message {
                conn: self.app_id(conn),
                kind,
                data: data.to_vec(),
            },
            Event::Ping { conn, data } => OwnedEvent::Ping {
                conn: self.app_id(conn),
                data: data.to_vec(),
            },
            Event::Pong { conn, data } => OwnedEvent::Pong {
                conn: self.app_id(conn),
                data: data.to_vec(),
            },
            Event::Writable { conn } => OwnedEvent::Writable {
                conn: self.app_id(conn),
            },
            Event::Closed {
                conn,
                code,
                reason,
                clean,
                remote,
            } => {
                let id = self.app_id(conn);
                self.forget(conn);
                OwnedEvent::Closed {
                    conn: id,
                    code,
                    reason: reason.to_owned(),
                    clean,
                    remote,
                }
            }
            // Refused at `listen`; a request that comes anyway is not answerable here.
            Event::Request { .. } | Event::HttpRequest { .. } => return None,
            // Handled from the raw list (moved, not copied).
            Event::Error { .. }
            | Event::SendFailed { .. }
            | Event::Reconnecting { .. }
            | Event::Wake => return None,
        })
    }

    fn apply(&mut self, cmd: Cmd, batch: &mut Vec<OwnedEvent>) {
        let failed = |id: u64, error: Error| OwnedEvent::SendFailed {
            conn: ConnId(id),
            error,
        };
        match cmd {
            Cmd::Connect(id, url, options) => match self.ctx.connect(&url, *options) {
                Ok(c) => {
                    self.to_ctx.insert(id, c);
                    self.to_app.insert(c, id);
                }
                Err(error) => batch.push(OwnedEvent::Error {
                    source: Source::Conn(ConnId(id)),
                    error,
                }),
            },
            Cmd::Listen(host, port, options, reply) => {
                let result = self
                    .ctx
                    .listen(&host, port, *options)
                    .and_then(|l| Ok((l, self.ctx.local_addr(l)?)));
                let _ = reply.send(result);
            }
            Cmd::Unlisten(l) => {
                if let Err(error) = self.ctx.unlisten(l) {
                    batch.push(OwnedEvent::Error {
                        source: Source::Listener(l),
                        error,
                    });
                }
            }
            Cmd::Send(id, kind, data) => {
                let Some(&c) = self.to_ctx.get(&id) else {
                    batch.push(failed(id, Error::StaleId));
                    return;
                };
                if let Err(e) = self.ctx.send(c, kind, &data) {
                    batch.push(failed(id, e));
                }
            }
            Cmd::Ping(id, data) => {
                let Some(&c) = self.to_ctx.get(&id) else {
                    batch.push(failed(id, Error::StaleId));
                    return;
                };
                if let Err(e) = self.ctx.ping(c, &data) {
                    batch.push(failed(id, e));
                }
            }
            Cmd::Close(id, code, reason) => {
                let Some(&c) = self.to_ctx.get(&id) else {
                    batch.push(failed(id, Error::StaleId));
                    return;
                };
                if let Err(e) = self.ctx.close(c, code, &reason) {
                    batch.push(failed(id, e));
                }
            }
            Cmd::Shutdown(grace) => {
                if self.shutdown_at.is_none() {
                    self.ctx.shutdown(grace);
                    self.shutdown_at = Some(Instant::now() + grace);
                }
            }
        }
    }

    /// Queues a batch under one lock and wakes a waiting reader.
    fn publish(&mut self, batch: &mut Vec<OwnedEvent>) {
        if batch.is_empty() {
            return;
        }
        let mut q = lock(&self.shared.events);
        for e in batch.drain(..) {
            q.bytes += e.cost();
            q.list.push_back(e);
        }
        drop(q);
        self.shared.ready.notify_all();
    }

    /// Pauses reading when the application's queue is above its limit; resumes it when the
    /// application drained it to half.
    fn flow_control(&mut self) {
        let mut bytes = lock(&self.shared.events).bytes;
        if !self.paused && bytes > self.shared.event_limit {
            self.paused = true;
            self.shared.paused.store(true, Ordering::Release);
            for &c in self.to_ctx.values() {
                let _ = self.ctx.pause_reading(c);
            }
            // The application may have drained the queue before it could see the flag:
            // looked at again after setting it (under the lock that orders both sides).
            bytes = lock(&self.shared.events).bytes;
        }
        if self.paused && bytes <= self.shared.event_limit / 2 {
            self.shared.paused.store(false, Ordering::Release);
            self.paused = false;
            for &c in self.to_ctx.values() {
                let _ = self.ctx.resume_reading(c);
            }
        }
    }
}

fn raw_conn(raw: &Raw) -> Option<ConnId> {
    match *raw {
        Raw::Open { conn, .. } => Some(conn),
        _ => None,
    }
}
