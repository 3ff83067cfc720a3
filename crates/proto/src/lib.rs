//! `tidewire-proto`: the sans-IO WebSocket engine of tidewire.
//!
//! Everything here is a pure function or a state machine over byte buffers: no sockets, no
//! threads, no clock. The runtime (`tidewire-net`) moves the bytes; this crate decides what
//! they mean, following RFC 6455 (WebSocket) and RFC 7692 (permessage-deflate).
//!
//! * [`handshake`]: the opening handshake, client and server side.
//! * [`frame`]: frame headers and masking.
//! * [`connection::Connection`]: one state machine per connection: bytes in, events out,
//!   messages in, bytes out.
//! * [`deflate`]: permessage-deflate negotiation and codec.
//! * [`prepared`]: a message framed once for many connections (publish, broadcast).
//! * [`proxy`]: the client's side of HTTP `CONNECT` and SOCKS5 proxy handshakes, spoken on
//!   the TCP connection before TLS and the WebSocket handshake.

pub mod close;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
pub mod prepared;
pub mod proxy;
pub mod utf8;

pub use close::CloseCode;
pub use connection::{Config, Connection, Event, MessageKind, Received, Sent, SentFrame, State};
pub use error::{ProtocolError, SendError};
pub use prepared::Prepared;

/// Which end of the connection this engine plays. Clients mask what they send; servers
/// require masked input and close the TCP connection first (RFC 6455 section 5.1, 7.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}
