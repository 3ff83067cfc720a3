//! One connection of a context: its socket, optional TLS session, stage of life, and the
//! protocol engine once open; plus the two I/O primitives every stage shares (read one chunk
//! of plaintext, flush everything queued).
//!
//! Memory matters here (an idle open `ws://` connection must stay under 2 KiB in all): what
//! only the handshake needs lives in a `Box` that is dropped when the connection opens, and
//! nothing per connection is allocated while it is idle.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tidewire_proto::deflate::DeflateParams;
use tidewire_proto::handshake::{ClientHandshake, ServerHandshake, Url};
use tidewire_proto::Connection;

use crate::config::{ConnectOptions, ListenOptions};
use crate::limits::AddrKey;
use crate::proxy::ProxyDial;
use crate::rtt::Rtt;
use crate::slab::ListenerId;

/// Client connection set-up, until open.
pub(crate) struct Dial {
    pub(crate) url: Url,
    pub(crate) options: ConnectOptions,
    /// Addresses to try, in order; `next` is the one to try after the current fails.
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) next: usize,
    pub(crate) last_error: Option<io::Error>,
    pub(crate) handshake: Option<ClientHandshake>,
    pub(crate) peer: Option<SocketAddr>,
    /// The proxy and its handshake, until the tunnel is open.
    pub(crate) proxy: Option<Box<ProxyDial>>,
}

impl Dial {
    /// The proxy's URL without credentials, while the connection is on its way through one.
    pub(crate) fn proxy_name(&self) -> Option<String> {
        self.proxy.as_ref().map(|p| p.url.to_string())
    }
}

/// Server connection set-up, until open.
pub(crate) struct Accepting {
    pub(crate) listener: ListenerId,
    pub(crate) options: Arc<ListenOptions>,
    pub(crate) handshake: ServerHandshake,
    pub(crate) peer: SocketAddr,
    /// Filled once the request is complete: what `accept` needs.
    pub(crate) key: String,
    pub(crate) path: String,
    /// The permessage-deflate agreement and the header value to answer with.
    pub(crate) deflate: Option<(DeflateParams, String)>,
}

pub(crate) enum Stage {
    /// Waiting for the resolver (client).
    Resolving(Box<Dial>),
    /// TCP connect in progress (client).
    Connecting(Box<Dial>),
    /// Talking to the proxy: the `CONNECT` request or the SOCKS5 exchange (client).
    Proxying(Box<Dial>),
    /// TLS and upgrade request sent (or being sent), reading the response (client).
    ClientHandshake(Box<Dial>),
    /// Reading the request (server).
    ServerHandshake(Box<Accepting>),
    /// The request was handed to the application, which has not answered yet (server).
    AwaitingDecision(Box<Accepting>),
    /// Sending a final HTTP answer (rejection, plain HTTP response), then closing.
    Answering,
    /// The WebSocket connection: open or in its closing handshake (`ws` says which).
    Open,
    /// A reconnecting client between two attempts: no socket, the context's
    /// `reconnects` entry holds the URL, the options and the schedule (`reconnect.rs`).
    Waiting,
}

impl Stage {
    pub(crate) fn is_open(&self) -> bool {
        matches!(self, Stage::Open)
    }

    /// The proxy's name, while a client connection is on its way through one.
    pub(crate) fn proxy_name(&self) -> Option<String> {
        match self {
            Stage::Resolving(d) | Stage::Connecting(d) | Stage::Proxying(d) => d.proxy_name(),
            _ => None,
        }
    }
}

/// Bit flags of a connection.
pub(crate) mod flag {
    /// On the context's dirty list (has output to flush or a state to look at).
    pub const DIRTY: u16 = 1;
    /// On the context's read-later list (readable, but the receive buffer was full).
    pub const READ_LATER: u16 = 1 << 1;
    /// Back-pressure was reported: a Writable event is owed once the buffer drains.
    pub const ABOVE_HIGH: u16 = 1 << 2;
    /// Received or sent something since the last idle sweep.
    pub const ACTIVE: u16 = 1 << 3;
    /// The peer broke the protocol: close the transport once the close frame is out.
    pub const FAILED: u16 = 1 << 4;
    /// The transport said EOF (reading is over).
    pub const EOF: u16 = 1 << 5;
    /// A keepalive timer entry is pending in the heap.
    pub const KEEPALIVE: u16 = 1 << 6;
    /// A ping was sent by the keepalive and nothing came back since.
    pub const PINGED: u16 = 1 << 7;
    /// The application knows this connection (client, or a request event was delivered):
    /// its end is reported.
    pub const VISIBLE: u16 = 1 << 8;
    /// The application closed it before it opened: drop it at the next flush.
    pub const ABORT: u16 = 1 << 9;
    /// An HTTP answer was sent and our side shut down: waiting for the peer's EOF.
    pub const LINGER: u16 = 1 << 10;
    /// Idle buffers were released; nothing to release until the next activity.
    pub const SHRUNK: u16 = 1 << 11;
    /// A publish closes this connection when it is slow (`SlowAction::Close`) instead of
    /// skipping it.
    pub const CLOSE_WHEN_SLOW: u16 = 1 << 12;
    /// The application paused reading (`Context::pause_reading`).
    pub const PAUSED: u16 = 1 << 13;
    /// Reading is held because the output buffer reached `Config::max_buffered`: a peer that
    /// does not read what it provokes (pongs, echoes) is not read either, until it has
    /// drained the buffer to the low water mark.
    pub const OUT_FULL: u16 = 1 << 14;
}

pub(crate) struct Conn {
    /// `None` only while resolving.
    pub(crate) sock: Option<mio::net::TcpStream>,
    pub(crate) tls: Option<Box<rustls::Connection>>,
    /// TLS to an `https://` proxy, under `tls` and everything else (see [`Wire`]).
    pub(crate) outer: Option<Box<rustls::Connection>>,
    pub(crate) stage: Stage,
    pub(crate) ws: Option<Connection>,
    /// Handshake bytes (request, response, HTTP answer) to send before anything of `ws`.
    pub(crate) pre: OutBuf,
    /// Frames shared with other connections (publish, broadcast), interleaved with the
    /// engine's output in the order they were sent; `ws://` connections only.
    pub(crate) shared: SharedOut,
    /// Bytes received and not processed yet (data that followed a request the application
    /// has not answered).
    pub(crate) stash: Vec<u8>,
    /// The deadline of the current stage (connect, handshake, close), if armed.
    pub(crate) deadline: Option<Instant>,
    /// When something was last received (keepalive).
    pub(crate) last_rx: Instant,
    pub(crate) flags: u16,
    /// Server side: the listener and the peer address this connection counts against
    /// (`ListenOptions::peer_limits`), released when it ends.
    pub(crate) counted: Option<(u64, AddrKey)>,
    /// The peer's TCP had acknowledged this many of our bytes at the last keepalive look.
    pub(crate) acked: u64,
    /// The topics this connection is subscribed to (indices into the context's `Topics`).
    pub(crate) topics: Vec<u32>,
    /// `SlowSubscriber::limit` of its listener (the default for client connections).
    pub(crate) slow_limit: usize,
    /// Pings waiting for their pong and the last round-trip time (`rtt.rs`).
    pub(crate) rtt: Rtt,
}

/// What one attempt to read plaintext gave.
pub(crate) enum Chunk {
    /// This many bytes at the start of the buffer.
    Data(usize),
    WouldBlock,
    Eof,
    Error(io::Error),
    /// TLS rejected the peer's data (the alert is queued for the flush).
    Tls(rustls::Error),
}

impl Conn {
    pub(crate) fn new(sock: Option<mio::net::TcpStream>, stage: Stage, now: Instant) -> Conn {
        Conn {
            sock,
            tls: None,
            outer: None,
            stage,
            ws: None,
            pre: OutBuf::default(),
            shared: SharedOut::default(),
            stash: Vec::new(),
            deadline: None,
            last_rx: now,
            flags: 0,
            counted: None,
            acked: 0,
            topics: Vec::new(),
            slow_limit: crate::config::SlowSubscriber::default().limit,
            rtt: Rtt::default(),
        }
    }

    pub(crate) fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    pub(crate) fn set(&mut self, f: u16) {
        self.flags |= f;
    }

    pub(crate) fn clear(&mut self, f: u16) {
        self.flags &= !f;
    }

    /// Bytes queued for the peer and not yet handed to the socket or to TLS.
    pub(crate) fn buffered(&self) -> usize {
        self.pre.len() + self.shared.bytes + self.ws.as_ref().map_or(0, Connection::buffered_amount)
    }

    /// Reads plaintext into `buf` (the free tail of the receive buffer).
    pub(crate) fn read_chunk(&mut self, buf: &mut [u8]) -> Chunk {
        let Some(sock) = self.sock.as_ref() else {
            return Chunk::WouldBlock;
        };
        let sock = &mut Wire {
            sock,
            outer: self.outer.as_deref_mut(),
        };
        match self.tls.as_deref_mut() {
            None => loop {
                match sock.read(buf) {
                    Ok(0) => return Chunk::Eof,
                    Ok(n) => return Chunk::Data(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Chunk::WouldBlock,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Chunk::Error(e),
                }
            },
            Some(tls) => read_tls_chunk(sock, tls, buf),
        }
    }

    /// Writes what is queued until done or until the socket would block. Returns whether
    /// everything went out.
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        let Some(sock) = self.sock.as_ref() else {
            return Ok(false);
        };
        let sock = &mut Wire {
            sock,
            outer: self.outer.as_deref_mut(),
        };
        // What TLS to the proxy holds goes first (an edge-triggered writable event).
        if !sock.drain_outer()? {
            return Ok(false);
        }
        let done = match self.tls.as_deref_mut() {
            None if self.shared.is_empty() => flush_plain(sock, &mut self.pre, self.ws.as_mut()),
            None => flush_shared(sock, &mut self.pre, &mut self.shared, self.ws.as_mut()),
            Some(tls) => flush_tls(sock, tls, &mut self.pre, self.ws.as_mut()),
        }?;
        Ok(done && sock.drain_outer()?)
    }

    /// Whether the transport can take a message straight from the caller's slice: a plain
    /// socket (nothing to encrypt) with nothing of ours waiting to go before it. Whether the
    /// protocol allows it is the engine's answer (`Connection::send_message_or_head`).
    pub(crate) fn can_write_direct(&self) -> bool {
        self.tls.is_none()
            && self.outer.is_none()
            && self.sock.is_some()
            && self.pre.is_empty()
            && self.shared.is_empty()
    }

    /// Whether the transport can queue a reference to a shared frame instead of a copy: a
    /// plain socket (TLS encrypts each connection's bytes anyway).
    pub(crate) fn can_share_frames(&self) -> bool {
        self.tls.is_none() && self.outer.is_none() && self.sock.is_some()
    }

    /// Queues a shared frame behind everything queued so far (`pre`, the engine's output,
    /// earlier shared frames); see [`SharedOut`].
    pub(crate) fn queue_shared(&mut self, frame: &Arc<[u8]>) {
        let engine = self.ws.as_ref().map_or(0, Connection::buffered_amount);
        self.shared.push(engine, frame);
    }

    /// Writes one frame from where its parts are, the header from the engine and the
    /// payload from the caller, in one `writev`. What the socket does not take goes to
    /// `pre`, which is flushed before anything the engine queues later, so frame order
    /// holds. A socket error is left for the next flush to find.
    pub(crate) fn write_direct(&mut self, head: &[u8], data: &[u8]) {
        let head_len = head.len();
        let mut written = 0;
        if let Some(sock) = self.sock.as_mut() {
            loop {
                match NoSigPipe(sock).write_vectored(&[IoSlice::new(head), IoSlice::new(data)]) {
                    Ok(n) => written = n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {}
                }
                break;
            }
        }
        if written < head_len {
            self.pre.vec().extend_from_slice(&head[written..]);
            self.pre.vec().extend_from_slice(data);
        } else {
            self.pre
                .vec()
                .extend_from_slice(&data[written - head_len..]);
        }
    }

    /// Whether the peer's TCP acknowledged more of our data since the last call while more
    /// than a keepalive ping waits to be sent or acknowledged: the sign of a slow but live
    /// link, where a pong can only come back after everything queued before the ping. A
    /// peer that reads nothing (zero window) or only has our pings to acknowledge does not
    /// pass. Linux (`TCP_INFO`); elsewhere always false.
    pub(crate) fn peer_acked_queued_data(&mut self) -> bool {
        let Some(sock) = self.sock.as_ref() else {
            return false;
        };
        let Some((acked, unacked)) = tcp_progress(sock) else {
            return false;
        };
        let queued = self.buffered() > 0 || unacked > 64;
        let progressed = acked > self.acked;
        self.acked = acked;
        queued && progressed
    }

    /// Whether TLS still has records to send (alerts, handshake, close_notify).
    pub(crate) fn tls_wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
            || self.outer.as_ref().is_some_and(|t| t.wants_write())
    }
}

/// Bytes of ours the peer's TCP acknowledged so far, and bytes sent or queued in the kernel
/// and not acknowledged yet.
#[cfg(target_os = "linux")]
fn tcp_progress(sock: &mio::net::TcpStream) -> Option<(u64, u64)> {
    use std::os::fd::AsRawFd;
    // SAFETY: getsockopt and ioctl write at most the sizes given into locals they own.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let fd = sock.as_raw_fd();
        let got = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        let mut outq: libc::c_int = 0;
        if got != 0 || libc::ioctl(fd, libc::TIOCOUTQ, &mut outq) != 0 {
            return None;
        }
        Some((info.tcpi_bytes_acked, u64::try_from(outq).unwrap_or(0)))
    }
}

#[cfg(not(target_os = "linux"))]
fn tcp_progress(_sock: &mio::net::TcpStream) -> Option<(u64, u64)> {
    None
}

fn read_tls_chunk(sock: &mut Wire<'_>, tls: &mut rustls::Connection, buf: &mut [u8]) -> Chunk {
    loop {
        // Plaintext already decrypted comes first.
        match tls.reader().read(buf) {
            Ok(0) => return Chunk::Eof, // close_notify
            Ok(n) => return Chunk::Data(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The peer closed TCP without close_notify: for WebSocket the close frame is
            // what matters, so this is an ordinary EOF.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Chunk::Eof,
            Err(e) => return Chunk::Error(e),
        }
        match tls.read_tls(sock) {
            Ok(0) => {
                // Let rustls see the EOF; the reader then answers Ok(0) or UnexpectedEof.
                if let Err(e) = tls.process_new_packets() {
                    return Chunk::Tls(e);
                }
                match tls.reader().read(buf) {
                    Ok(n) if n > 0 => return Chunk::Data(n),
                    _ => return Chunk::Eof,
                }
            }
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    return Chunk::Tls(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Chunk::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Chunk::Error(e),
        }
    }
}

/// The transport under a connection's own TLS (or its plaintext): the socket, or TLS to an
/// `https://` proxy over the socket (the tunnel is inside it, so `wss://` through such a
/// proxy is TLS inside TLS). Reads give the proxy TLS's plaintext, reading the socket when it
/// has none; writes hand plaintext to it and push its records to the socket as far as the
/// socket takes them (what stays is sent by [`Wire::drain_outer`] at the next flush).
pub(crate) struct Wire<'a> {
    pub(crate) sock: &'a mio::net::TcpStream,
    pub(crate) outer: Option<&'a mut rustls::Connection>,
}

/// A TLS failure on the connection to an `https://` proxy, inside the `io::Error` that
/// [`Wire`] returns (`ProxyFailure::Tls` once it reaches the runtime).
#[derive(Debug)]
pub(crate) struct OuterTls(pub(crate) rustls::Error);

impl std::fmt::Display for OuterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS to the proxy failed: {}", self.0)
    }
}

impl std::error::Error for OuterTls {}

impl OuterTls {
    /// The TLS error inside `e`, when `e` came from TLS to a proxy.
    pub(crate) fn of(e: &io::Error) -> Option<rustls::Error> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<OuterTls>())
            .map(|o| o.0.clone())
    }
}

impl Wire<'_> {
    /// Sends the proxy TLS's queued records. Returns whether none is left (false: the
    /// socket would block).
    pub(crate) fn drain_outer(&mut self) -> io::Result<bool> {
        let Some(outer) = self.outer.as_deref_mut() else {
            return Ok(true);
        };
        while outer.wants_write() {
            match outer.write_tls(&mut NoSigPipe(self.sock)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(outer) = self.outer.as_deref_mut() else {
            return (&mut &*self.sock).read(buf);
        };
        loop {
            match outer.reader().read(buf) {
                Ok(n) => return Ok(n), // 0: close_notify
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let got = outer.read_tls(&mut &*self.sock)?;
            if let Err(e) = outer.process_new_packets() {
                // The alert rustls queued goes out if the socket takes it.
                let _ = outer.write_tls(&mut NoSigPipe(self.sock));
                return Err(io::Error::new(io::ErrorKind::InvalidData, OuterTls(e)));
            }
            if got == 0 {
                return match outer.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(_) => Ok(0),
                };
            }
        }
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.outer.is_none() {
            return NoSigPipe(self.sock).write(buf);
        }
        if !self.drain_outer()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = match self.outer.as_deref_mut() {
            Some(outer) => outer.writer().write(buf)?,
            None => 0,
        };
        // Records the socket does not take now go at the next flush (`drain_outer`).
        self.drain_outer()?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.outer.is_none() {
            return NoSigPipe(self.sock).write_vectored(bufs);
        }
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(b) => self.write(b),
            None => Ok(0),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A socket as a writer that never raises SIGPIPE: a write to a peer that is gone fails
/// with `EPIPE` instead (`send`/`sendmsg` with `MSG_NOSIGNAL`). Rust programs ignore SIGPIPE,
/// but C and C++ programs using the library do not, and the signal would end them.
pub(crate) struct NoSigPipe<'a>(pub(crate) &'a mio::net::TcpStream);

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: the pointer and length describe `buf`, which outlives the call.
        let n = unsafe {
            libc::send(
                self.0.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: an all-zero msghdr is valid (no address, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // `IoSlice` is ABI-compatible with `iovec` on Unix (its documented guarantee), and
        // sendmsg only reads through the pointer.
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len().min(1024) as _;
        // SAFETY: `msg` points at `bufs`, which outlives the call.
        let n = unsafe { libc::sendmsg(self.0.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&mut &*self.0).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&mut &*self.0).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Handshake bytes first, then frames: one `writev` per round, rounds until the socket
/// refuses (a short write is followed by one more attempt, which sees `WouldBlock`, so mio's
/// edge-triggered writable event is re-armed).
fn flush_plain(
    sock: &mut Wire<'_>,
    pre: &mut OutBuf,
    mut ws: Option<&mut Connection>,
) -> io::Result<bool> {
    loop {
        let out: &[u8] = ws.as_deref().map_or(&[], Connection::pending_output);
        let first = pre.pending();
        let result = match (first.is_empty(), out.is_empty()) {
            (true, true) => return Ok(true),
            (false, true) => sock.write(first),
            (true, false) => sock.write(out),
            (false, false) => sock.write_vectored(&[IoSlice::new(first), IoSlice::new(out)]),
        };
        match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                let from_pre = n.min(first.len());
                pre.consume(from_pre);
                if let Some(ws) = ws.as_deref_mut() {
                    ws.consume(n - from_pre);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The order of a connection's output when shared frames are queued: `pre`, then for each
/// shared frame the engine bytes that were queued before it and the frame, then the rest of
/// the engine's output. The frames are reference-counted: a publish to N connections holds
/// one copy of its frame, not N.
#[derive(Default)]
pub(crate) struct SharedOut {
    frames: VecDeque<SharedFrame>,
    /// Engine bytes covered by `frames` (the sum of their `engine_before`).
    engine_covered: usize,
    /// Unsent bytes of the frames.
    pub(crate) bytes: usize,
}

struct SharedFrame {
    /// Bytes of the engine's output that go before this frame (after the frames before it).
    engine_before: usize,
    frame: Arc<[u8]>,
    /// How much of `frame` is sent.
    pos: usize,
}

impl SharedOut {
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Queues `frame` after the engine's `engine_pending` queued bytes.
    fn push(&mut self, engine_pending: usize, frame: &Arc<[u8]>) {
        let engine_before = engine_pending.saturating_sub(self.engine_covered);
        self.engine_covered += engine_before;
        self.bytes += frame.len();
        self.frames.push_back(SharedFrame {
            engine_before,
            frame: frame.clone(),
            pos: 0,
        });
    }

    /// Marks `n` written bytes (after `pre`) as sent, from the front of the interleaving;
    /// the engine's share goes to `ws.consume`.
    fn consume(&mut self, mut n: usize, mut ws: Option<&mut Connection>) {
        while n > 0 {
            let Some(front) = self.frames.front_mut() else {
                break;
            };
            let engine = n.min(front.engine_before);
            if engine > 0 {
                if let Some(ws) = ws.as_deref_mut() {
                    ws.consume(engine);
                }
                front.engine_before -= engine;
                self.engine_covered -= engine;
                n -= engine;
            }
            if front.engine_before > 0 {
                break;
            }
            let own = n.min(front.frame.len() - front.pos);
            front.pos += own;
            self.bytes -= own;
            n -= own;
            if front.pos == front.frame.len() {
                self.frames.pop_front();
            } else {
                break;
            }
        }
        if n > 0 {
            if let Some(ws) = ws {
                ws.consume(n);
            }
        }
    }
}

/// At most this many slices per `writev` (the rest goes in the next round).
const MAX_SLICES: usize = 64;

fn push_slice<'a>(slices: &mut [IoSlice<'a>; MAX_SLICES], count: &mut usize, bytes: &'a [u8]) {
    if !bytes.is_empty() && *count < MAX_SLICES {
        slices[*count] = IoSlice::new(bytes);
        *count += 1;
    }
}

/// `flush_plain` with shared frames queued: the same rounds of one `writev` each, over the
/// interleaving described at [`SharedOut`].
fn flush_shared(
    sock: &mut Wire<'_>,
    pre: &mut OutBuf,
    shared: &mut SharedOut,
    mut ws: Option<&mut Connection>,
) -> io::Result<bool> {
    loop {
        let out: &[u8] = ws.as_deref().map_or(&[], Connection::pending_output);
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        push_slice(&mut slices, &mut count, pre.pending());
        let mut engine_at = 0;
        let mut every_frame = true;
        for f in &shared.frames {
            if count == MAX_SLICES {
                every_frame = false;
                break;
            }
            let end = (engine_at + f.engine_before).min(out.len());
            push_slice(&mut slices, &mut count, &out[engine_at.min(end)..end]);
            engine_at += f.engine_before;
            push_slice(&mut slices, &mut count, &f.frame[f.pos..]);
        }
        if every_frame {
            // Every frame is in this round: the engine's tail follows them.
            push_slice(
                &mut slices,
                &mut count,
                out.get(engine_at..).unwrap_or_default(),
            );
        }
        if count == 0 {
            return Ok(true);
        }
        let pre_len = pre.len();
        match sock.write_vectored(&slices[..count]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                let from_pre = n.min(pre_len);
                pre.consume(from_pre);
                shared.consume(n - from_pre, ws.as_deref_mut());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Bytes to send before the engine's output: handshake messages, and the unsent rest of a
/// message written directly. Consumed from the front without moving the rest each time.
#[derive(Default)]
pub(crate) struct OutBuf {
    buf: Vec<u8>,
    pos: usize,
}

impl OutBuf {
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// The vector to append to.
    pub(crate) fn vec(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Replaces the content.
    pub(crate) fn set(&mut self, bytes: Vec<u8>) {
        self.buf = bytes;
        self.pos = 0;
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            // Mostly sent once (handshakes): give the memory back.
            *self = OutBuf::default();
        } else if self.pos >= 64 << 10 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

/// Moves plaintext into rustls (bounded by its buffer limit) and records out, alternately,
/// until everything is out or the socket would block.
fn flush_tls(
    sock: &mut Wire<'_>,
    tls: &mut rustls::Connection,
    pre: &mut OutBuf,
    mut ws: Option<&mut Connection>,
) -> io::Result<bool> {
    loop {
        if !pre.is_empty() {
            let n = tls.writer().write(pre.pending())?;
            pre.consume(n);
        }
        if pre.is_empty() {
            if let Some(ws) = ws.as_deref_mut() {
                let out = ws.pending_output();
                if !out.is_empty() {
                    let n = tls.writer().write(out)?;
                    ws.consume(n);
                }
            }
        }
        if !tls.wants_write() {
            let rest = pre.len() + ws.as_deref().map_or(0, |w| w.pending_output().len());
            // Nothing to send, or plaintext rustls cannot take yet (handshake not done):
            // the next readable event moves the handshake on and marks us dirty again.
            return Ok(rest == 0);
        }
        match tls.write_tls(sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot of an idle open connection is most of its memory; keep an eye on it.
    #[test]
    fn connection_state_stays_small() {
        let conn = std::mem::size_of::<Conn>();
        let engine = std::mem::size_of::<Connection>();
        let stage = std::mem::size_of::<Stage>();
        eprintln!("Conn {conn} bytes (engine {engine}, stage {stage})");
        assert_eq!(stage, 16, "stage data lives behind a Box");
        assert!(conn <= 1024, "Conn is {conn} bytes");
    }
}
