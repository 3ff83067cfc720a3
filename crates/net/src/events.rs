//! What `poll` hands back: [`Events`], owned by the caller like `mio::Events`, and the
//! [`Event`] views borrowed from it.
//!
//! `Events` is also the arena of one poll cycle. Every read of every connection goes into its
//! receive buffer, frames are unmasked there, and a message that arrived whole is handed out
//! as a slice of it: no copy, no allocation. Messages reassembled by the protocol engine are
//! moved in (their `Vec`, not their bytes); small payloads that live elsewhere (close
//! reasons, pings split across reads) are copied to a side buffer. All of it stays valid
//! until the next `poll`, which clears it. Because the caller owns `Events`, it can walk the
//! events and call `Context::send_*` at the same time.

use std::net::SocketAddr;
use std::time::Duration;

use tidewire_proto::handshake::{Header, Request};
use tidewire_proto::MessageKind;

use crate::error::Error;
use crate::slab::{ConnId, ListenerId};

/// Default size of the receive buffer (see [`crate::Config::receive_buffer_size`]).
pub const DEFAULT_RECEIVE_BUFFER: usize = 256 << 10;

/// Where an event's bytes are.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Data {
    Arena { start: usize, len: usize },
    Side { start: usize, len: usize },
    Owned(usize),
}

impl Data {
    pub(crate) const EMPTY: Data = Data::Side { start: 0, len: 0 };
}

/// Details of an opened connection.
#[derive(Debug)]
pub(crate) struct OpenInfo {
    pub(crate) listener: Option<ListenerId>,
    pub(crate) subprotocol: Option<String>,
    pub(crate) extensions: Option<String>,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) path: String,
    /// Client connections: the headers of the server's 101 response.
    pub(crate) headers: Vec<Header>,
}

#[derive(Debug)]
pub(crate) enum Raw {
    Request {
        conn: ConnId,
        listener: ListenerId,
        index: usize,
        /// Index in the request's offers of the subprotocol the listener selected.
        subprotocol: Option<usize>,
    },
    HttpRequest {
        conn: ConnId,
        listener: ListenerId,
        index: usize,
    },
    Open {
        conn: ConnId,
        index: usize,
    },
    Message {
        conn: ConnId,
        kind: MessageKind,
        data: Data,
    },
    Ping {
        conn: ConnId,
        data: Data,
    },
    Pong {
        conn: ConnId,
        data: Data,
    },
    Writable {
        conn: ConnId,
    },
    Closed {
        conn: ConnId,
        code: u16,
        reason: Data,
        clean: bool,
        remote: bool,
    },
    Error {
        source: Source,
        index: usize,
    },
    SendFailed {
        conn: ConnId,
        index: usize,
    },
    Reconnecting {
        conn: ConnId,
        attempt: u32,
        delay: Duration,
        /// Index into `errors`, or `None` after a `Closed` (then `close_code` says why).
        error: Option<usize>,
        close_code: u16,
    },
    Wake,
}

/// What an error event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Conn(ConnId),
    Listener(ListenerId),
}

/// One event. Borrowed slices stay valid until the next `poll` with the same [`Events`].
///
/// How connections end:
/// * a connection for which [`Event::Open`] was delivered ends with exactly one
///   [`Event::Closed`];
/// * a client connection that fails before it opens ends with exactly one [`Event::Error`]
///   saying what failed (name resolution, connect refused, timeout, TLS, the server's HTTP
///   status, a malformed handshake);
/// * a server connection the application saw as [`Event::Request`] or [`Event::HttpRequest`]
///   and did not answer ends with an [`Event::Error`] (timeout, peer gone);
/// * a server connection the application never saw (bad request, 426, Origin refused,
///   handshake timeout) and one it answered itself with `reject` / `respond` end silently.
///
/// After its last event a connection's id is stale. A client connection with
/// [`crate::ConnectOptions::reconnect`] gets [`Event::Reconnecting`] instead of its `Closed`
/// or `Error` when another attempt follows; its id stays valid, and the attempt ends the
/// same way (`Open`, `Reconnecting`, or a terminal event).
#[derive(Debug)]
pub enum Event<'a> {
    /// A valid upgrade request on a listener with `handle_requests`, that passed the
    /// listener's Origin and subprotocol rules ([`crate::ListenOptions::allowed_origins`],
    /// [`crate::ListenOptions::subprotocols`]). Answer it with [`crate::Context::accept`]
    /// or [`crate::Context::reject`] (the handshake timeout keeps running meanwhile).
    Request {
        conn: ConnId,
        listener: ListenerId,
        request: &'a Request,
        /// The subprotocol the listener's rules selected (one of the request's offers), or
        /// `None`: what to pass to `accept` unless the application chooses otherwise.
        subprotocol: Option<&'a str>,
    },
    /// A request that is not an upgrade, on a listener with `handle_http`. Answer it with
    /// [`crate::Context::respond`]; the connection then closes without further event.
    HttpRequest {
        conn: ConnId,
        listener: ListenerId,
        request: &'a Request,
    },
    /// The opening handshake completed; the connection can send and will receive.
    Open {
        conn: ConnId,
        /// The listener that accepted it (`None` for client connections).
        listener: Option<ListenerId>,
        subprotocol: Option<&'a str>,
        /// The negotiated `Sec-WebSocket-Extensions` value, if any.
        extensions: Option<&'a str>,
        peer_addr: SocketAddr,
        /// The request path (server: what the client asked for; client: the URL's resource).
        path: &'a str,
        /// Client connections: the headers of the server's 101 response (empty on the
        /// server side, where the request came with [`Event::Request`]).
        headers: &'a [Header],
    },
    /// A whole message. Text messages are valid UTF-8 ([`Event::text`]).
    Message {
        conn: ConnId,
        kind: MessageKind,
        data: &'a [u8],
    },
    /// A ping arrived; the pong is already queued.
    Ping {
        conn: ConnId,
        data: &'a [u8],
    },
    Pong {
        conn: ConnId,
        data: &'a [u8],
    },
    /// The output buffer, after having passed the high water mark, drained to the low water
    /// mark: sending may go on.
    Writable {
        conn: ConnId,
    },
    /// The connection is over (terminal). `code` is the peer's close code (1005 when its
    /// close frame had none), the code we failed the connection with when the peer broke the
    /// protocol, or 1006 when the transport ended without a close frame (reset, timeout).
    /// `clean` is true when the closing handshake completed. `remote` is true when `code`
    /// and `reason` are the peer's (from its close frame), false when they are ours (we
    /// failed the connection, or closed first and got no answer) or 1006.
    Closed {
        conn: ConnId,
        code: u16,
        reason: &'a str,
        clean: bool,
        remote: bool,
    },
    /// Something failed. For a connection this is its last event (it never opened); for a
    /// listener it is a report (accepting failed, e.g. out of descriptors; the listener
    /// stays).
    Error {
        source: Source,
        error: &'a Error,
    },
    /// A command from a [`crate::Sender`] could not be applied (connection gone or closing,
    /// buffer full, invalid payload). Not terminal.
    SendFailed {
        conn: ConnId,
        error: &'a Error,
    },
    /// A client connection with [`crate::ConnectOptions::reconnect`] failed or ended, and
    /// attempt number `attempt` (1, 2, ... since the last reset) starts after `delay`. Not
    /// terminal: it takes the place of the `Closed` or `Error` event, and the id stays
    /// valid. The attempt ends with [`Event::Open`] (same `conn`), another `Reconnecting`,
    /// or a terminal [`Event::Error`] once the failure is not retryable or the attempts are
    /// used up. The cause: `error` for a connection that failed before it opened (`None`
    /// otherwise); `close_code` for an open connection that ended (the code its `Closed`
    /// would have had, 1006 when the transport broke; 0 otherwise).
    /// [`crate::Context::close`] stops it at any time, also during the delay (the
    /// connection then ends with `Error(Aborted)`).
    Reconnecting {
        conn: ConnId,
        attempt: u32,
        delay: Duration,
        error: Option<&'a Error>,
        close_code: u16,
    },
    /// [`crate::Sender::wake`] was called.
    Wake,
}

impl<'a> Event<'a> {
    /// The text of a text message.
    pub fn text(&self) -> Option<&'a str> {
        match *self {
            Event::Message {
                kind: MessageKind::Text,
                data,
                ..
            } => {
                // SAFETY: text messages are only recorded from the protocol engine's
                // `Message { kind: Text }` events, whose payload it validated as UTF-8, and
                // the bytes are not modified until the next poll clears the arena.
                Some(unsafe { std::str::from_utf8_unchecked(data) })
            }
            _ => None,
        }
    }

    /// The connection the event is about, if any.
    pub fn conn(&self) -> Option<ConnId> {
        match *self {
            Event::Request { conn, .. }
            | Event::HttpRequest { conn, .. }
            | Event::Open { conn, .. }
            | Event::Message { conn, .. }
            | Event::Ping { conn, .. }
            | Event::Pong { conn, .. }
            | Event::Writable { conn }
            | Event::Closed { conn, .. }
            | Event::SendFailed { conn, .. }
            | Event::Reconnecting { conn, .. } => Some(conn),
            Event::Error {
                source: Source::Conn(conn),
                ..
            } => Some(conn),
            Event::Error { .. } | Event::Wake => None,
        }
    }

    /// Whether this is the last event of its connection ([`Event::Closed`], or an
    /// [`Event::Error`] about a connection): after it the id is stale, and whatever the
    /// application attached to the connection can be released.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Event::Closed { .. }
                | Event::Error {
                    source: Source::Conn(_),
                    ..
                }
        )
    }
}

/// The events of one `poll`, and the memory their payloads live in.
pub struct Events {
    pub(crate) arena: Box<[u8]>,
    /// Bytes of `arena` in use this cycle.
    pub(crate) used: usize,
    pub(crate) side: Vec<u8>,
    pub(crate) owned: Vec<Vec<u8>>,
    /// Bytes of the messages in `owned` (reassembled or inflated this cycle).
    pub(crate) owned_bytes: usize,
    pub(crate) list: Vec<Raw>,
    pub(crate) requests: Vec<Request>,
    pub(crate) opens: Vec<OpenInfo>,
    pub(crate) errors: Vec<Error>,
    /// Message buffers of the previous cycle, kept to recycle into connections.
    pub(crate) spare: Vec<Vec<u8>>,
    /// Connections whose close reply started to be held this cycle.
    pub(crate) held: Vec<ConnId>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

/// Reads smaller than this are not worth a syscall: the connection waits for the next cycle.
pub(crate) const MIN_READ: usize = 4096;

/// Reassembly buffers kept from one cycle to the next: at most this many...
const SPARE_BUFFERS: usize = 8;
/// ...holding at most this many bytes in all.
const SPARE_BYTES: usize = 8 << 20;

impl Events {
    /// Events with the default 256 KiB receive buffer.
    pub fn new() -> Events {
        Events::with_receive_buffer(DEFAULT_RECEIVE_BUFFER)
    }

    /// Events with a receive buffer of `bytes` (at least 16 KiB). A larger buffer lets one
    /// poll read more before it has to return.
    pub fn with_receive_buffer(bytes: usize) -> Events {
        Events {
            arena: vec![0u8; bytes.max(4 * MIN_READ)].into_boxed_slice(),
            used: 0,
            side: Vec::new(),
            owned: Vec::new(),
            owned_bytes: 0,
            list: Vec::new(),
            requests: Vec::new(),
            opens: Vec::new(),
            errors: Vec::new(),
            spare: Vec::new(),
            held: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Event<'_>> + '_ {
        self.list.iter().map(move |raw| self.view(raw))
    }

    /// With [`crate::Config::hold_close_replies`]: the connections that began holding a close
    /// frame in this poll (the peer closed, or broke the protocol). Release each with
    /// [`crate::Context::release_close_reply`] once the messages before it are consumed.
    pub fn held_close_replies(&self) -> &[ConnId] {
        &self.held
    }

    /// The event at `index` (in delivery order).
    pub fn get(&self, index: usize) -> Option<Event<'_>> {
        self.list.get(index).map(|raw| self.view(raw))
    }

    /// Starts a new cycle: forgets the previous events and their payloads.
    pub(crate) fn clear(&mut self) {
        self.used = 0;
        self.side.clear();
        // Keep a few message buffers to hand back to connections that reassemble: a large
        // message then lands in memory that is already there instead of growing a new
        // vector by doubling. Bounded in count and bytes so that a burst does not pin memory.
        let mut kept: usize = self.spare.iter().map(Vec::capacity).sum();
        for buf in self.owned.drain(..) {
            if self.spare.len() < SPARE_BUFFERS && kept + buf.capacity() <= SPARE_BYTES {
                kept += buf.capacity();
                self.spare.push(buf);
            }
        }
        self.owned_bytes = 0;
        self.list.clear();
        self.held.clear();
        self.requests.clear();
        self.opens.clear();
        self.errors.clear();
    }

    pub(crate) fn free(&self) -> usize {
        self.arena.len() - self.used
    }

    pub(crate) fn push_side(&mut self, bytes: &[u8]) -> Data {
        let start = self.side.len();
        self.side.extend_from_slice(bytes);
        Data::Side {
            start,
            len: bytes.len(),
        }
    }

    pub(crate) fn push_owned(&mut self, buf: Vec<u8>) -> Data {
        self.owned_bytes += buf.len();
        self.owned.push(buf);
        Data::Owned(self.owned.len() - 1)
    }

    pub(crate) fn push_error(&mut self, source: Source, error: Error) {
        self.errors.push(error);
        self.list.push(Raw::Error {
            source,
            index: self.errors.len() - 1,
        });
    }

    pub(crate) fn push_reconnecting(
        &mut self,
        conn: ConnId,
        attempt: u32,
        delay: Duration,
        error: Option<Error>,
        close_code: u16,
    ) {
        let error = error.map(|e| {
            self.errors.push(e);
            self.errors.len() - 1
        });
        self.list.push(Raw::Reconnecting {
            conn,
            attempt,
            delay,
            error,
            close_code,
        });
    }

    pub(crate) fn push_send_failed(&mut self, conn: ConnId, error: Error) {
        self.errors.push(error);
        self.list.push(Raw::SendFailed {
            conn,
            index: self.errors.len() - 1,
        });
    }

    fn bytes(&self, data: Data) -> &[u8] {
        let found = match data {
            Data::Arena { start, len } => self.arena.get(start..start + len),
            Data::Side { start, len } => self.side.get(start..start + len),
            Data::Owned(i) => self.owned.get(i).map(Vec::as_slice),
        };
        found.unwrap_or(&[])
    }

    fn text(&self, data: Data) -> &str {
        // Reasons and paths are recorded from `&str`s; checked again because a wrong
        // record must not become undefined behaviour.
        std::str::from_utf8(self.bytes(data)).unwrap_or("")
    }

    fn view<'a>(&'a self, raw: &Raw) -> Event<'a> {
        match *raw {
            Raw::Request {
                conn,
                listener,
                index,
                subprotocol,
            } => match self.requests.get(index) {
                Some(request) => Event::Request {
                    conn,
                    listener,
                    request,
                    subprotocol: subprotocol
                        .and_then(|i| request.subprotocols.get(i))
                        .map(String::as_str),
                },
                None => Event::Wake,
            },
            Raw::HttpRequest {
                conn,
                listener,
                index,
            } => match self.requests.get(index) {
                Some(request) => Event::HttpRequest {
                    conn,
                    listener,
                    request,
                },
                None => Event::Wake,
            },
            Raw::Open { conn, index } => match self.opens.get(index) {
                Some(info) => Event::Open {
                    conn,
                    listener: info.listener,
                    subprotocol: info.subprotocol.as_deref(),
                    extensions: info.extensions.as_deref(),
                    peer_addr: info.peer_addr,
                    path: &info.path,
                    headers: &info.headers,
                },
                None => Event::Wake,
            },
            Raw::Message { conn, kind, data } => Event::Message {
                conn,
                kind,
                data: self.bytes(data),
            },
            Raw::Ping { conn, data } => Event::Ping {
                conn,
                data: self.bytes(data),
            },
            Raw::Pong { conn, data } => Event::Pong {
                conn,
                data: self.bytes(data),
            },
            Raw::Writable { conn } => Event::Writable { conn },
            Raw::Closed {
                conn,
                code,
                reason,
                clean,
                remote,
            } => Event::Closed {
                conn,
                code,
                reason: self.text(reason),
                clean,
                remote,
            },
            Raw::Error { source, index } => match self.errors.get(index) {
                Some(error) => Event::Error { source, error },
                None => Event::Wake,
            },
            Raw::SendFailed { conn, index } => match self.errors.get(index) {
                Some(error) => Event::SendFailed { conn, error },
                None => Event::Wake,
            },
            Raw::Reconnecting {
                conn,
                attempt,
                delay,
                error,
                close_code,
            } => Event::Reconnecting {
                conn,
                attempt,
                delay,
                error: error.and_then(|i| self.errors.get(i)),
                close_code,
            },
            Raw::Wake => Event::Wake,
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
