//! The one error type of the runtime.
//!
//! Every fallible function returns [`Result`]; the same values travel inside
//! [`crate::Event::Error`] when a connection fails before it opened, so the application learns
//! *what* failed (resolution, refusal, timeout, TLS, an HTTP status) and not just "it failed".

use std::fmt;
use std::io;

use tidewire_proto::handshake::{HandshakeError, Header};
use tidewire_proto::SendError;

use crate::proxy::ProxyFailure;

/// What the runtime was waiting for when a timer ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// The TCP connection (client role) was not established in time.
    Connect,
    /// The opening handshake (TLS and HTTP upgrade) did not complete in time.
    Handshake,
    /// The peer did not answer our close frame (or close the TCP connection) in time.
    Close,
    /// Nothing was received for the configured idle timeout.
    Idle,
    /// A client connection through a proxy did not reach the origin in time: resolving or
    /// connecting to the proxy, or the proxy's handshake (the connect timeout covers them).
    Proxy,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::Handshake => "handshake",
            TimeoutKind::Close => "close",
            TimeoutKind::Idle => "idle",
            TimeoutKind::Proxy => "proxy",
        })
    }
}

/// Errors of `tidewire-net`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The id names no live connection or listener (it was closed and its slot reused, or it
    /// never existed). Never a panic, never another connection.
    StaleId,
    /// The connection exists but is not open (still handshaking, or closing), so it cannot
    /// send data messages.
    NotOpen,
    /// The output buffer is above [`crate::Config::max_buffered`]; the message was refused.
    /// Wait for [`crate::Event::Writable`].
    BufferFull { buffered: usize, limit: usize },
    /// The context already holds [`crate::Config::max_connections`] connections.
    TooManyConnections,
    /// A bad argument (the text says which).
    InvalidArgument(String),
    /// The URL given to `connect` could not be used.
    InvalidUrl(String),
    /// The host name could not be resolved (or resolved to no address).
    Resolve { host: String, error: io::Error },
    /// The TCP connection could not be established (refused, unreachable, ...).
    Connect(io::Error),
    /// A client connection through a proxy failed before the tunnel was open: `proxy` is
    /// the proxy's URL without credentials (`http://127.0.0.1:3128`), `failure` says what
    /// failed (proxy unreachable, refused with its status, bad SOCKS reply, ...).
    Proxy {
        proxy: String,
        failure: ProxyFailure,
    },
    /// A timer ran out.
    Timeout(TimeoutKind),
    /// TLS failed: bad certificate, name mismatch, protocol error, or a bad TLS configuration.
    Tls(String),
    /// The server answered the upgrade request with this HTTP status instead of 101.
    HandshakeRejected {
        status: u16,
        reason: String,
        /// The response's headers.
        headers: Vec<Header>,
        /// The part of the response body that came with its header block.
        body: Vec<u8>,
    },
    /// The opening handshake failed for another reason (malformed HTTP, bad accept key, ...).
    Handshake(HandshakeError),
    /// The peer closed the TCP connection during the opening handshake.
    HandshakeEof,
    /// The server's answer to our permessage-deflate offer was invalid.
    Extension(String),
    /// The protocol engine refused a message (invalid close code, control payload too long,
    /// ...).
    Send(SendError),
    /// An I/O error on a socket or on the poller.
    Io(io::Error),
    /// The [`crate::Context`] behind a [`crate::Sender`] is gone.
    ContextGone,
    /// The context is shutting down and accepts no new connections or listeners.
    ShuttingDown,
    /// The application closed the connection before it opened.
    Aborted,
}

impl Error {
    /// A short stable name for the kind of error (used by the C and Python faces).
    pub fn kind_str(&self) -> &'static str {
        match self {
            Error::StaleId => "stale id",
            Error::NotOpen => "not open",
            Error::BufferFull { .. } => "buffer full",
            Error::TooManyConnections => "too many connections",
            Error::InvalidArgument(_) => "invalid argument",
            Error::InvalidUrl(_) => "invalid url",
            Error::Resolve { .. } => "resolve",
            Error::Connect(_) => "connect",
            Error::Proxy { .. } => "proxy",
            Error::Timeout(_) => "timeout",
            Error::Tls(_) => "tls",
            Error::HandshakeRejected { .. } => "handshake rejected",
            Error::Handshake(_) => "handshake",
            Error::HandshakeEof => "handshake eof",
            Error::Extension(_) => "extension",
            Error::Send(_) => "send",
            Error::Io(_) => "io",
            Error::ContextGone => "context gone",
            Error::ShuttingDown => "shutting down",
            Error::Aborted => "aborted",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::StaleId => f.write_str("no such connection or listener (stale id)"),
            Error::NotOpen => f.write_str("connection is not open"),
            Error::BufferFull { buffered, limit } => write!(
                f,
                "output buffer full ({buffered} bytes buffered, limit {limit})"
            ),
            Error::TooManyConnections => f.write_str("too many connections"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::InvalidUrl(what) => write!(f, "invalid url: {what}"),
            Error::Resolve { host, error } => write!(f, "cannot resolve {host:?}: {error}"),
            Error::Connect(e) => write!(f, "connect failed: {e}"),
            Error::Proxy { proxy, failure } => write!(f, "proxy {proxy}: {failure}"),
            Error::Timeout(kind) => write!(f, "{kind} timeout"),
            Error::Tls(e) => write!(f, "tls: {e}"),
            Error::HandshakeRejected { status, reason, .. } => {
                write!(f, "server rejected the upgrade: {status} {reason}")
            }
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::HandshakeEof => f.write_str("peer closed the connection during the handshake"),
            Error::Extension(e) => write!(f, "extension negotiation failed: {e}"),
            Error::Send(e) => write!(f, "send refused: {e}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::ContextGone => f.write_str("the context was dropped"),
            Error::ShuttingDown => f.write_str("the context is shutting down"),
            Error::Aborted => f.write_str("closed by the application before it opened"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Resolve { error, .. } => Some(error),
            Error::Connect(e) | Error::Io(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Send(e) => Some(e),
            Error::Proxy { failure, .. } => match failure {
                ProxyFailure::Resolve(e) | ProxyFailure::Connect(e) | ProxyFailure::Io(e) => {
                    Some(e)
                }
                ProxyFailure::Handshake(e) => Some(e),
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Closed => Error::NotOpen,
            other => Error::Send(other),
        }
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        match e {
            HandshakeError::Status {
                status,
                reason,
                headers,
                body,
            } => Error::HandshakeRejected {
                status,
                reason,
                headers,
                body,
            },
            other => Error::Handshake(other),
        }
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls(e.to_string())
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
