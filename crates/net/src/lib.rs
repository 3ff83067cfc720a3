//! `tidewire-net`: the runtime of tidewire.
//!
//! One [`Context`] owns a mio `Poll` with every listener and connection on it, their timers
//! and TLS state, and is driven by [`Context::poll`] on the caller's thread. Nothing blocks
//! in `poll` beyond its timeout: name resolution runs on helper threads, TLS is driven
//! without blocking, and other threads send through a [`Sender`] that wakes the Poll.
//!
//! ```no_run
//! use std::time::Duration;
//! use tidewire_net::{Config, Context, Event, ListenOptions};
//!
//! let mut ctx = Context::new(Config::default())?;
//! ctx.listen("127.0.0.1", 9001, ListenOptions::default())?;
//! let mut events = ctx.new_events();
//! loop {
//!     ctx.poll(&mut events, Some(Duration::from_millis(100)))?;
//!     for event in events.iter() {
//!         if let Event::Message { conn, kind, data } = event {
//!             ctx.send(conn, kind, data)?; // echo; leaves at the next poll
//!         }
//!     }
//! }
//! # Ok::<(), tidewire_net::Error>(())
//! ```
//!
//! Data of [`Event::Message`] is a slice of the receive buffer owned by [`Events`]: valid
//! until the next `poll` with the same `Events`, copied nowhere on the way.
//!
//! A program whose thread must never wait on the network (a game engine, a GUI) can instead
//! run the context on its own I/O thread with [`Background`]: it sends from any thread and
//! drains [`OwnedEvent`]s once per frame without blocking.
//!
//! Client connections may reconnect by themselves, opt-in: [`ConnectOptions::reconnect`]
//! with a [`ReconnectPolicy`]; each retry is an [`Event::Reconnecting`] and the connection
//! keeps its [`ConnId`]. The schedule and which failures are retried: [`reconnect`].

mod background;
mod cluster;
mod config;
mod conn;
mod connect;
mod context;
mod cycle;
mod error;
mod events;
mod handshake;
mod limits;
mod listener;
mod proxy;
mod publish;
pub mod reconnect;
mod resolve;
mod rtt;
mod sender;
mod slab;
mod timer;
mod tls;
mod topics;
mod workers;

pub use background::{
    Background, BackgroundOptions, OwnedEvent, DEFAULT_EVENT_QUEUE_LIMIT, DROP_GRACE,
    MIN_EVENT_QUEUE_LIMIT,
};
pub use cluster::{Cluster, ClusterOptions, ClusterStats, ClusterStatus};
pub use config::{
    server_deflate_default, Config, ConnectOptions, ConnectionRate, ListenOptions, PeerLimits,
    SlowAction, SlowSubscriber, DEFAULT_IDLE_TIMEOUT, DEFAULT_PING_INTERVAL, MAX_BACKLOG,
    MIN_HANDSHAKE_BYTES, MIN_HANDSHAKE_HEADERS, MIN_MESSAGE_SIZE, MIN_RECEIVE_BUFFER, MIN_TIMEOUT,
};
pub use context::{Context, SendStatus};
pub use error::{Error, Result, TimeoutKind};
pub use events::{Event, Events, Source, DEFAULT_RECEIVE_BUFFER};
pub use proxy::{proxy_from_env, Proxy, ProxyFailure};
pub use publish::{PublishReport, SLOW_CLOSE_CODE};
pub use reconnect::{Backoff, ReconnectPolicy, Retry};
pub use resolve::{Resolve, SystemResolver};
pub use sender::Sender;
pub use slab::{ConnId, ListenerId};
pub use tls::{TlsAcceptor, TlsClientOptions, TlsConnector};
pub use workers::{Bus, WorkerOptions, Workers, MAX_WORKER_THREADS};

/// Re-exported from `tidewire-proto`: every type this crate's API mentions, so that
/// applications and the faces (C ABI, Python) depend on this crate alone.
pub use tidewire_proto::deflate::DeflateConfig;
pub use tidewire_proto::handshake::{HandshakeError, Header, Limits, Request, Url, UrlError};
pub use tidewire_proto::proxy::{
    no_proxy_matches, Credentials, ProxyError, ProxyScheme, ProxyUrl, ReplyCode,
};
pub use tidewire_proto::{CloseCode, MessageKind, SendError};
