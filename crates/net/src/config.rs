//! Settings: [`Config`] for the whole context, [`ListenOptions`] per listener and
//! [`ConnectOptions`] per client connection. Every default is written next to its field.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tidewire_proto::deflate::client_offer;
use tidewire_proto::deflate::DeflateConfig;
use tidewire_proto::handshake::{ClientOptions, Limits, Policy};

use crate::proxy::Proxy;
use crate::reconnect::ReconnectPolicy;
use crate::resolve::{Resolve, SystemResolver};
use crate::tls::{TlsAcceptor, TlsConnector};

/// Smallest [`Config::max_message_size`] and [`Config::max_frame_size`].
pub const MIN_MESSAGE_SIZE: usize = 1;
/// Smallest [`Limits::max_header_bytes`] of [`Config::handshake_limits`]: room for a minimal
/// upgrade request.
pub const MIN_HANDSHAKE_BYTES: usize = 256;
/// Smallest [`Limits::max_headers`] of [`Config::handshake_limits`]: the five headers an
/// upgrade needs, and a few more.
pub const MIN_HANDSHAKE_HEADERS: usize = 8;
/// Smallest timeout and interval of every kind.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// Smallest [`Config::receive_buffer_size`]: a TLS record (16 KiB) must fit.
pub const MIN_RECEIVE_BUFFER: usize = 16 << 10;

/// Largest [`ListenOptions::backlog`] (the kernel caps it at `somaxconn` anyway).
pub const MAX_BACKLOG: i32 = 65535;

/// [`Config::ping_interval`]'s default.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);
/// [`Config::idle_timeout`]'s default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Limits, timeouts and buffer sizes shared by every connection of a [`crate::Context`].
#[derive(Clone)]
pub struct Config {
    /// Largest message accepted from a peer, after reassembly and decompression; a larger
    /// one fails the connection with 1009. Default 16 MiB.
    pub max_message_size: usize,
    /// Largest single frame accepted from a peer (1009 beyond). Default 16 MiB.
    pub max_frame_size: usize,
    /// Bounds on the opening handshake's header block. Default 8 KiB and 64 fields.
    pub handshake_limits: Limits,
    /// Time for a connection to finish TLS and the HTTP upgrade, counted from accept (server)
    /// or from the TCP connection being established (client). Default 10 s.
    pub handshake_timeout: Duration,
    /// Time for establishing the TCP connection, name resolution included (client).
    /// Default 10 s; [`ConnectOptions::connect_timeout`] overrides it per connection.
    pub connect_timeout: Duration,
    /// Time the peer gets to answer a close frame and close the TCP connection; then the
    /// connection is dropped and reported with 1006. Default 5 s.
    pub close_timeout: Duration,
    /// Hold the close frame that answers the peer's close (or that fails the connection)
    /// until [`crate::Context::release_close_reply`], [`crate::Context::close`], or at most
    /// `close_timeout`. Default false: it goes out at the next `poll`, after whatever the
    /// application sent in answer to the events before it, which is right for a poll loop.
    /// A runtime that hands messages to other threads or tasks turns this on and releases
    /// the close once the application has consumed the messages that came before it, so
    /// their answers still precede the close (RFC 6455 section 7.1.1 ordering; Autobahn's
    /// strict verdicts in cases 3.2, 4.x, 5.15).
    pub hold_close_replies: bool,
    /// Send a ping when nothing was received for this long. Default 20 s (as browsers'
    /// and python-websockets' keepalive); `None` turns it off. The pong of this ping
    /// measures the round-trip time ([`crate::Context::latency`]).
    pub ping_interval: Option<Duration>,
    /// Drop a connection (reported with 1006) when nothing at all was received for this
    /// long: dead-peer detection, and the end of a peer that completes the handshake and
    /// then goes silent (it would otherwise hold its slot forever). A live peer answers the
    /// keepalive ping, so it is never dropped while `ping_interval` is shorter. Default 60 s
    /// (three ping intervals); `None` turns it off.
    pub idle_timeout: Option<Duration>,
    /// Above this many buffered output bytes a send answers
    /// [`crate::SendStatus::Backpressure`]. Default 1 MiB.
    pub high_water_mark: usize,
    /// After back-pressure was reported, [`crate::Event::Writable`] comes once the buffer
    /// drained to this many bytes or fewer. Default 256 KiB.
    pub low_water_mark: usize,
    /// Hard cap: while this many bytes or more are buffered, sends are refused with
    /// [`crate::Error::BufferFull`]. A send below it is always taken whole, so a connection
    /// holds at most `max_buffered` plus one message. Default 16 MiB.
    pub max_buffered: usize,
    /// Connections of all kinds (accepted, connecting, open, closing). Beyond it accepted
    /// sockets are closed at once and `connect` fails. Default 100 000.
    pub max_connections: usize,
    /// The receive buffer shared by every connection of the context: all reads of one
    /// `poll` go into it, and message slices handed to the application point into it.
    /// Default 256 KiB.
    pub receive_buffer_size: usize,
    /// Payload bytes that [`crate::Sender`]s may have queued and not yet applied.
    /// Default 64 MiB.
    pub sender_queue_limit: usize,
    /// The name resolver used for host names (IP literals skip it). Default: the system's.
    pub resolver: Arc<dyn Resolve>,
    /// Helper threads for name resolution, started on demand. Default 2.
    pub resolver_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            handshake_limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            hold_close_replies: false,
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            high_water_mark: 1 << 20,
            low_water_mark: 256 << 10,
            max_buffered: 16 << 20,
            max_connections: 100_000,
            receive_buffer_size: 256 << 10,
            sender_queue_limit: 64 << 20,
            resolver: Arc::new(SystemResolver),
            resolver_threads: 2,
        }
    }
}

impl Config {
    /// Checks every field against its range (the constants above) and the fields against
    /// each other (`low_water_mark` not above `high_water_mark`). [`crate::Context::new`]
    /// calls it; the error names the field.
    pub fn validate(&self) -> Result<(), crate::Error> {
        self.check_ranges()?;
        if self.low_water_mark > self.high_water_mark {
            return Err(invalid(format!(
                "low_water_mark ({}) is above high_water_mark ({})",
                self.low_water_mark, self.high_water_mark
            )));
        }
        Ok(())
    }

    /// The per-field half of [`Config::validate`]: each field on its own, so that a face
    /// that sets one field at a time can refuse a bad value at once.
    pub fn check_ranges(&self) -> Result<(), crate::Error> {
        let sizes = [
            ("max_message_size", self.max_message_size, MIN_MESSAGE_SIZE),
            ("max_frame_size", self.max_frame_size, MIN_MESSAGE_SIZE),
            (
                "max_handshake_bytes",
                self.handshake_limits.max_header_bytes,
                MIN_HANDSHAKE_BYTES,
            ),
            (
                "max_handshake_headers",
                self.handshake_limits.max_headers,
                MIN_HANDSHAKE_HEADERS,
            ),
            ("max_buffered", self.max_buffered, 1),
            ("max_connections", self.max_connections, 1),
            (
                "receive_buffer_size",
                self.receive_buffer_size,
                MIN_RECEIVE_BUFFER,
            ),
            ("sender_queue_limit", self.sender_queue_limit, 1),
            ("resolver_threads", self.resolver_threads, 1),
        ];
        for (name, value, min) in sizes {
            if value < min {
                return Err(invalid(format!(
                    "{name} must be at least {min}, got {value}"
                )));
            }
        }
        let times = [
            ("handshake_timeout", Some(self.handshake_timeout)),
            ("connect_timeout", Some(self.connect_timeout)),
            ("close_timeout", Some(self.close_timeout)),
            ("ping_interval", self.ping_interval),
            ("idle_timeout", self.idle_timeout),
        ];
        for (name, value) in times {
            check_time(name, value)?;
        }
        Ok(())
    }
}

fn invalid(message: String) -> crate::Error {
    crate::Error::InvalidArgument(message)
}

fn check_time(name: &str, value: Option<Duration>) -> Result<(), crate::Error> {
    match value {
        Some(t) if t < MIN_TIMEOUT => Err(invalid(format!(
            "{name} must be at least {} ms (None to turn it off where allowed)",
            MIN_TIMEOUT.as_millis()
        ))),
        _ => Ok(()),
    }
}

/// Subprotocol names: distinct HTTP tokens (the handshake's rule, shared by both roles).
fn check_subprotocols(list: &[String]) -> Result<(), crate::Error> {
    tidewire_proto::handshake::check_subprotocols(list).map_err(|e| invalid(e.to_string()))
}

fn check_deflate(deflate: &Option<DeflateConfig>) -> Result<(), crate::Error> {
    match deflate {
        Some(d) => d.validate().map_err(|e| invalid(e.to_string())),
        None => Ok(()),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("max_message_size", &self.max_message_size)
            .field("max_frame_size", &self.max_frame_size)
            .field("handshake_limits", &self.handshake_limits)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("hold_close_replies", &self.hold_close_replies)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("high_water_mark", &self.high_water_mark)
            .field("low_water_mark", &self.low_water_mark)
            .field("max_buffered", &self.max_buffered)
            .field("max_connections", &self.max_connections)
            .field("receive_buffer_size", &self.receive_buffer_size)
            .field("sender_queue_limit", &self.sender_queue_limit)
            .field("resolver_threads", &self.resolver_threads)
            .finish_non_exhaustive()
    }
}

/// How a listener accepts connections.
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// Set SO_REUSEPORT so that several contexts (one per core) can listen on the same port
    /// and the kernel spreads connections over them. Default false.
    pub reuse_port: bool,
    /// Length of the kernel's accept queue, 1 to [`MAX_BACKLOG`]. Default 1024.
    pub backlog: i32,
    /// Serve `wss://`: TLS with this certificate. Default `None` (`ws://`).
    pub tls: Option<TlsAcceptor>,
    /// Subprotocols this server speaks, in order of preference: the first of these that the
    /// client offered is selected, or none (see `require_subprotocol`). Default empty.
    pub subprotocols: Vec<String>,
    /// Refuse with 400 a client that offers none of `subprotocols` (python-websockets'
    /// behaviour). Ignored when `subprotocols` is empty. Default false: such a client is
    /// served without a subprotocol.
    pub require_subprotocol: bool,
    /// When set, an upgrade request whose Origin is not in this list (compared without
    /// regard to ASCII case) is refused with 403. Requests without Origin (non-browser
    /// clients) pass unless `require_origin`. Default `None` (any origin).
    pub allowed_origins: Option<Vec<String>>,
    /// With `allowed_origins`, also refuse with 403 a request without Origin. Default false.
    pub require_origin: bool,
    /// Deliver every valid upgrade request that passed the rules above as
    /// [`crate::Event::Request`], with the subprotocol they selected; the application then
    /// calls [`crate::Context::accept`] or [`crate::Context::reject`] within
    /// [`Config::handshake_timeout`] (counted from accept); a request still undecided then is
    /// answered 503 and reported as [`crate::Error::Timeout`]. Default false (accepted
    /// automatically).
    pub handle_requests: bool,
    /// Deliver requests that are not upgrades as [`crate::Event::HttpRequest`]; the
    /// application answers with [`crate::Context::respond`] (within the handshake timeout, as
    /// for `handle_requests`). Default false (answered with 426 Upgrade Required).
    pub handle_http: bool,
    /// Limits per peer address (connections, handshakes in progress, connection rate).
    /// Default: [`PeerLimits::default`].
    pub peer_limits: PeerLimits,
    /// Accept permessage-deflate (RFC 7692) when a client offers it, with these settings;
    /// `None` never compresses. Default: on, as browsers expect, with
    /// [`server_deflate_default`]: the server compresses each message on its own (no context
    /// takeover), so all its connections share one compressor per thread (about 370 KiB with
    /// zlib-rs) and a publish compresses a message once for all of them. The client's context
    /// is kept as it asks (about 46 KiB of inflate state per connection that has received
    /// compressed data, released when the client does not keep context and goes idle).
    pub deflate: Option<DeflateConfig>,
    /// What a publish or broadcast does with a connection of this listener that does not
    /// keep up. Default: [`SlowSubscriber::default`] (skip it while 1 MiB waits).
    pub slow_subscriber: SlowSubscriber,
}

/// A connection a publish or broadcast reaches while its output already holds
/// [`SlowSubscriber::limit`] bytes or more does not keep up with the publisher: it is
/// skipped or closed (see [`SlowAction`]) instead of growing its buffer, so one slow reader
/// never stalls the publisher nor holds an unbounded backlog. Sends addressed to the
/// connection alone ([`crate::Context::send`]) keep their own rules (`Config::max_buffered`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowSubscriber {
    /// Bytes waiting in the connection's output at or above which it is slow, at least 1;
    /// `Config::max_buffered` applies when it is lower. Default 1 MiB (the default
    /// `Config::high_water_mark`).
    pub limit: usize,
    /// Default [`SlowAction::Skip`] (as uWebSockets' `maxBackpressure`).
    pub action: SlowAction,
}

/// See [`SlowSubscriber`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowAction {
    /// The slow connection misses this message and stays open; it receives the next ones
    /// once it has caught up. For feeds where the latest value replaces the previous one.
    Skip,
    /// The slow connection is closed with 1008 ("too slow"): nothing is missed silently,
    /// the client reconnects and resynchronises. For chats and anything where a gap is a bug.
    /// The close frame waits behind the backlog: a peer that reads nothing more never sees
    /// it and is dropped after `Config::close_timeout` (its `Closed` event says 1006).
    Close,
}

impl Default for SlowSubscriber {
    fn default() -> Self {
        SlowSubscriber {
            limit: 1 << 20,
            action: SlowAction::Skip,
        }
    }
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            reuse_port: false,
            backlog: 1024,
            tls: None,
            subprotocols: Vec::new(),
            require_subprotocol: false,
            allowed_origins: None,
            require_origin: false,
            handle_requests: false,
            handle_http: false,
            peer_limits: PeerLimits::default(),
            deflate: Some(server_deflate_default()),
            slow_subscriber: SlowSubscriber::default(),
        }
    }
}

impl ListenOptions {
    /// Checks the options: the backlog's range, subprotocol names that are HTTP tokens,
    /// the deflate settings, the peer limits. [`crate::Context::listen`] calls it.
    pub fn validate(&self) -> Result<(), crate::Error> {
        if !(1..=MAX_BACKLOG).contains(&self.backlog) {
            return Err(invalid(format!(
                "backlog {} is not in 1..={MAX_BACKLOG}",
                self.backlog
            )));
        }
        check_subprotocols(&self.subprotocols)?;
        check_deflate(&self.deflate)?;
        if self.slow_subscriber.limit == 0 {
            return Err(invalid("slow_subscriber.limit must be at least 1".into()));
        }
        self.peer_limits.validate()
    }

    /// The acceptance rules (Origin, subprotocol) as the protocol engine applies them.
    pub(crate) fn policy(&self) -> Policy<'_> {
        Policy {
            subprotocols: &self.subprotocols,
            require_subprotocol: self.require_subprotocol,
            allowed_origins: self.allowed_origins.as_deref(),
            require_origin: self.require_origin,
        }
    }
}

/// What one peer address may take of a listener. Addresses are counted whole for IPv4 and
/// by their /64 for IPv6 (one host, or one customer of a provider, usually owns a /64).
///
/// A connection over a limit is closed right after `accept`, before anything is read from
/// it: no HTTP answer (a 503 would mean reading the request, which is what a flood wants the
/// server to spend on), no event; the client sees the connection closed or reset. The
/// others are not affected. Each check costs one hash lookup per accepted connection.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerLimits {
    /// Connections per address, handshaking or open. Default `None` (no limit): a NAT or a
    /// corporate proxy can put thousands of legitimate users behind one address.
    pub max_connections_per_address: Option<usize>,
    /// Opening handshakes in progress (accepted, not yet open) per address: what a slow
    /// handshake ("slowloris") flood from one address can hold. Default 4096 (at most
    /// about 4096 x the handshake's 8 KiB header limit).
    pub max_handshakes_per_address: Option<usize>,
    /// Opening handshakes in progress on the listener, all addresses together: what a
    /// distributed slow-handshake flood can hold. Default 16 384.
    pub max_handshakes: Option<usize>,
    /// New connections per address: a token bucket that holds `burst` connections and
    /// refills at `per_second`. Default `None` (no limit).
    pub connection_rate: Option<ConnectionRate>,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            max_connections_per_address: None,
            max_handshakes_per_address: Some(4096),
            max_handshakes: Some(16_384),
            connection_rate: None,
        }
    }
}

/// A rate of new connections (see [`PeerLimits::connection_rate`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConnectionRate {
    /// Sustained connections per second, greater than 0.
    pub per_second: f64,
    /// Connections allowed at once before the rate applies, at least 1.
    pub burst: u32,
}

impl PeerLimits {
    /// Checks the values: counts of at least 1, a rate above 0 and finite, a burst of at
    /// least 1. `listen` calls it.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let counts = [
            (
                "max_connections_per_address",
                self.max_connections_per_address,
            ),
            (
                "max_handshakes_per_address",
                self.max_handshakes_per_address,
            ),
            ("max_handshakes", self.max_handshakes),
        ];
        for (name, value) in counts {
            if value == Some(0) {
                return Err(crate::Error::InvalidArgument(format!(
                    "{name} must be at least 1 (None for no limit)"
                )));
            }
        }
        if let Some(rate) = self.connection_rate {
            if !(rate.per_second.is_finite() && rate.per_second > 0.0) || rate.burst == 0 {
                return Err(crate::Error::InvalidArgument(
                    "connection_rate needs per_second > 0 and burst >= 1".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The permessage-deflate settings a listener uses by default: RFC 7692's defaults, except
/// that the server answers with `server_no_context_takeover`. That costs some compression
/// on streams of small similar messages and saves a compressor's memory on every idle
/// connection: many connections stay cheap.
pub fn server_deflate_default() -> DeflateConfig {
    DeflateConfig {
        server_no_context_takeover: true,
        ..DeflateConfig::default()
    }
}

/// How a client connection is opened.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Extra request headers. Default none.
    pub headers: Vec<(String, String)>,
    /// The Origin header to send. Default none.
    pub origin: Option<String>,
    /// Subprotocols to offer, in order of preference. Default none.
    pub subprotocols: Vec<String>,
    /// TLS settings for `wss://`. Default `None`: verify against the system's roots.
    pub tls: Option<TlsConnector>,
    /// Overrides [`Config::connect_timeout`] for this connection.
    pub connect_timeout: Option<Duration>,
    /// Connect from this local address (bind before connect), e.g. one of several
    /// interfaces, or several loopback addresses to spread many connections to one server
    /// over more port ranges. Addresses of the other family than the server's are skipped.
    /// Default `None` (the system chooses).
    pub local_address: Option<IpAddr>,
    /// Offer permessage-deflate (RFC 7692) with these settings; `None` offers nothing.
    /// Default: on, with RFC 7692's defaults (as browsers offer it).
    pub deflate: Option<DeflateConfig>,
    /// The proxy to go through. Default [`Proxy::FromEnv`]: the environment at `connect`,
    /// with this precedence (curl's and python-websockets'; lower case before upper case,
    /// an empty value is unset):
    ///
    /// 1. `no_proxy` / `NO_PROXY` matching the host: direct (comma list of names with
    ///    their subdomains, `.domain`, IP literals, CIDR ranges, `*`);
    /// 2. `wss://`: `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`;
    ///    `ws://`: `ws_proxy`, `WS_PROXY`, `http_proxy`, `HTTP_PROXY`;
    /// 3. `all_proxy`, `ALL_PROXY`.
    ///
    /// [`Proxy::Direct`] ignores the environment; [`Proxy::Url`] (from [`Proxy::parse`]:
    /// `http://[user:pass@]host:port`, `socks5://` resolving the target here, `socks5h://`
    /// letting the proxy resolve it, `https://` with TLS to the proxy) always uses that
    /// proxy. TLS to an `https://` proxy trusts what [`ConnectOptions::tls`] trusts (the
    /// system's roots by default), the same settings as a `wss://` origin, and checks the
    /// proxy URL's host name; its failure is `ProxyFailure::Tls`, not [`crate::Error::Tls`]. See
    /// `crate::proxy` for the path and its timeouts.
    pub proxy: Proxy,
    /// Reconnect after a retryable failure or end, with this schedule. Default `None`: a
    /// failure is final. The connection keeps its [`crate::ConnId`] across attempts and
    /// reports [`crate::Event::Reconnecting`] before each; see `crate::reconnect` for the
    /// schedule and which failures are retried. Every attempt uses these same options
    /// (proxy included).
    pub reconnect: Option<ReconnectPolicy>,
}

impl ConnectOptions {
    /// Checks the options: what the request will carry (distinct token subprotocols,
    /// header names and values that can be written, none of the handshake's own headers),
    /// a connect timeout of at least [`MIN_TIMEOUT`], the deflate settings, the reconnect
    /// policy ([`ReconnectPolicy::validate`]).
    /// [`crate::Context::connect`] calls it. What the request would carry wrongly is an
    /// [`crate::Error::Handshake`], the rest [`crate::Error::InvalidArgument`].
    pub fn validate(&self) -> Result<(), crate::Error> {
        check_time("connect_timeout", self.connect_timeout)?;
        check_deflate(&self.deflate)?;
        self.proxy.validate()?;
        if let Some(r) = &self.reconnect {
            r.validate()?;
        }
        Ok(self.client_options(Limits::default()).validate()?)
    }

    /// The handshake's view of these options.
    pub(crate) fn client_options(&self, limits: Limits) -> ClientOptions {
        ClientOptions {
            origin: self.origin.clone(),
            subprotocols: self.subprotocols.clone(),
            extensions: self
                .deflate
                .as_ref()
                .filter(|d| d.enabled)
                .map(client_offer),
            headers: self.headers.clone(),
            limits,
        }
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            headers: Vec::new(),
            origin: None,
            subprotocols: Vec::new(),
            tls: None,
            connect_timeout: None,
            local_address: None,
            deflate: Some(DeflateConfig::default()),
            proxy: Proxy::FromEnv,
            reconnect: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(config: Config) -> String {
        match config.validate() {
            Err(crate::Error::InvalidArgument(message)) => message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_pass_and_every_bound_is_its_named_constant() {
        Config::default().validate().expect("defaults");
        ListenOptions::default().validate().expect("defaults");
        ConnectOptions::default().validate().expect("defaults");
        let at = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c
        };
        at(|c| c.max_message_size = MIN_MESSAGE_SIZE)
            .validate()
            .unwrap();
        assert!(refused(at(|c| c.max_message_size = 0)).starts_with("max_message_size"));
        assert!(refused(at(|c| c.max_frame_size = 0)).starts_with("max_frame_size"));
        at(|c| c.handshake_limits.max_header_bytes = MIN_HANDSHAKE_BYTES)
            .validate()
            .unwrap();
        let small = at(|c| c.handshake_limits.max_header_bytes = MIN_HANDSHAKE_BYTES - 1);
        assert!(refused(small).starts_with("max_handshake_bytes"));
        let few = at(|c| c.handshake_limits.max_headers = MIN_HANDSHAKE_HEADERS - 1);
        assert!(refused(few).starts_with("max_handshake_headers"));
        let buf = at(|c| c.receive_buffer_size = MIN_RECEIVE_BUFFER - 1);
        assert!(refused(buf).starts_with("receive_buffer_size"));
        assert!(refused(at(|c| c.close_timeout = Duration::ZERO)).starts_with("close_timeout"));
        let ping = at(|c| c.ping_interval = Some(Duration::ZERO));
        assert!(refused(ping).starts_with("ping_interval"));
        at(|c| c.ping_interval = None).validate().unwrap();
        at(|c| c.idle_timeout = Some(MIN_TIMEOUT))
            .validate()
            .unwrap();
        assert!(refused(at(|c| c.resolver_threads = 0)).starts_with("resolver_threads"));
    }

    #[test]
    fn water_marks_are_checked_against_each_other_only_by_validate() {
        let c = Config {
            low_water_mark: 2 << 20,
            ..Config::default()
        };
        c.check_ranges().expect("each field is in range");
        assert!(refused(c).contains("above high_water_mark"));
    }

    #[test]
    fn listen_and_connect_options_name_what_is_wrong() {
        let backlog = ListenOptions {
            backlog: 0,
            ..ListenOptions::default()
        };
        assert!(backlog.validate().is_err());
        let duplicate = ListenOptions {
            subprotocols: vec!["chat".into(), "chat".into()],
            ..ListenOptions::default()
        };
        assert!(duplicate
            .validate()
            .unwrap_err()
            .to_string()
            .contains("chat"));
        let reserved = ConnectOptions {
            headers: vec![("Sec-WebSocket-Key".into(), "x".into())],
            ..ConnectOptions::default()
        };
        assert!(reserved.validate().is_err());
        let timeout = ConnectOptions {
            connect_timeout: Some(Duration::ZERO),
            ..ConnectOptions::default()
        };
        assert!(timeout.validate().is_err());
        let deflate = ConnectOptions {
            deflate: Some(DeflateConfig {
                level: 10,
                ..DeflateConfig::default()
            }),
            ..ConnectOptions::default()
        };
        assert!(deflate.validate().is_err());
    }
}
