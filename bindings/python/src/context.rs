//! `Context`: one `tidewire_net::Context` and the `Events` it fills, behind a mutex.
//!
//! The class is frozen (shared across threads by reference) and locks its inner state for
//! every call; the net context itself only ever runs on the thread holding the lock. The GIL is
//! released while `poll` waits and works; payloads are copied into Python objects afterwards,
//! still under the lock, because they borrow the receive buffer until the next poll.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBytes, PyList, PyTuple};
use tidewire_net::Url;
use tidewire_net::{
    Config, ConnId, ConnectOptions, ConnectionRate, ListenOptions, ListenerId, MessageKind,
    PeerLimits, Proxy, SendStatus, TlsAcceptor, TlsClientOptions, TlsConnector,
};

use crate::convert::{
    addr_tuple, deflate, duration, header_pairs, header_refs, opt_duration, opt_payload_bytes,
    payload, payload_bytes, server_deflate, slow_subscriber, topic, Payload,
};
use crate::errors::{invalid_state, to_pyerr};

/// `proxy=` of `connect`: `True` (the environment), `False`/`None` (direct), or a URL.
#[derive(FromPyObject)]
pub enum ProxyArg {
    Flag(bool),
    Url(String),
}
use crate::events::{event_object, CloseHeldEvent};
use crate::publish::PublishReport;
use crate::reconnect::ReconnectPolicy;
use crate::sender::Sender;

struct Inner {
    ctx: tidewire_net::Context,
    events: tidewire_net::Events,
    /// The last TLS connector built for custom client settings, with its settings: building
    /// one reads certificate files, so consecutive connects with the same settings share it.
    connector: Option<(TlsKey, TlsConnector)>,
}

#[derive(Clone, PartialEq, Eq)]
struct TlsKey {
    cafile: Option<String>,
    cadata: Option<Vec<u8>>,
    verify: bool,
}

/// A WebSocket runtime: listeners and connections driven by `poll`.
///
/// Belongs to one thread at a time: calls from several threads are serialized by a lock,
/// and a thread blocked in `poll(timeout)` holds it. Other threads use `sender()`.
#[pyclass(module = "tidewire._tidewire", frozen)]
pub struct Context {
    inner: Mutex<Option<Inner>>,
    fd: i32,
    /// Set by `free`, read without the lock (a thread blocked in `poll` holds it).
    freed: AtomicBool,
    sender: tidewire_net::Sender,
}

impl Context {
    /// Locks the inner state without holding the GIL while waiting (a thread blocked in
    /// `poll` holds the lock and may need the GIL to finish).
    fn lock<'a>(&'a self, py: Python<'_>) -> PyResult<MutexGuard<'a, Option<Inner>>> {
        let guard = match self.inner.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => self
                .inner
                .lock_py_attached(py)
                .unwrap_or_else(|p| p.into_inner()),
            // A panic while holding the lock was turned into a Python exception; the net
            // context stays usable (each of its calls leaves it consistent).
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        if guard.is_none() {
            return Err(invalid_state(py, "the context was freed"));
        }
        Ok(guard)
    }

    /// A publish or broadcast with the GIL released (the lock taken first, as `poll` does).
    fn detached(
        &self,
        py: Python<'_>,
        f: impl Send
            + FnOnce(&mut tidewire_net::Context) -> tidewire_net::Result<tidewire_net::PublishReport>,
    ) -> PyResult<PublishReport> {
        let mut guard = self.lock(py)?;
        let inner = guard
            .as_mut()
            .ok_or_else(|| invalid_state(py, "the context was freed"))?;
        let ctx = &mut inner.ctx;
        let report = py.detach(|| f(ctx)).map_err(|e| to_pyerr(py, &e))?;
        Ok(report.into())
    }

    fn with<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Inner) -> tidewire_net::Result<T>,
    ) -> PyResult<T> {
        let mut guard = self.lock(py)?;
        let inner = guard
            .as_mut()
            .ok_or_else(|| invalid_state(py, "the context was freed"))?;
        f(inner).map_err(|e| to_pyerr(py, &e))
    }

    /// The context's net `Sender` (for a cluster bridge's targets).
    pub(crate) fn net_sender(&self) -> tidewire_net::Sender {
        self.sender.clone()
    }

    /// Whether `free()` was called.
    pub(crate) fn is_freed(&self) -> bool {
        self.freed.load(Ordering::Acquire)
    }
}

/// A message's type and bytes: text for `str`, binary for bytes-like objects.
fn message<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<(MessageKind, Cow<'a, [u8]>)> {
    Ok(match payload(data)? {
        Payload::Text(Cow::Borrowed(t)) => (MessageKind::Text, Cow::Borrowed(t.as_bytes())),
        Payload::Text(Cow::Owned(t)) => (MessageKind::Text, Cow::Owned(t.into_bytes())),
        Payload::Binary(b) => (MessageKind::Binary, b),
    })
}

#[pymethods]
impl Context {
    /// Every argument defaults to the runtime's default (see the stub for the values).
    #[new]
    #[pyo3(signature = (*, max_message_size=None, max_frame_size=None, handshake_timeout=None,
        connect_timeout=None, close_timeout=None, ping_interval=None, idle_timeout=None,
        high_water_mark=None, low_water_mark=None, max_buffered=None, max_connections=None,
        receive_buffer_size=None, hold_close_replies=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        max_message_size: Option<usize>,
        max_frame_size: Option<usize>,
        handshake_timeout: Option<f64>,
        connect_timeout: Option<f64>,
        close_timeout: Option<f64>,
        ping_interval: Option<f64>,
        idle_timeout: Option<f64>,
        high_water_mark: Option<usize>,
        low_water_mark: Option<usize>,
        max_buffered: Option<usize>,
        max_connections: Option<usize>,
        receive_buffer_size: Option<usize>,
        hold_close_replies: bool,
        py: Python<'_>,
    ) -> PyResult<Context> {
        let mut config = Config {
            hold_close_replies,
            ..Config::default()
        };
        if let Some(v) = max_message_size {
            config.max_message_size = v;
            config.max_frame_size = v;
        }
        if let Some(v) = max_frame_size {
            config.max_frame_size = v;
        }
        if let Some(v) = opt_duration(handshake_timeout, "handshake_timeout")? {
            config.handshake_timeout = v;
        }
        if let Some(v) = opt_duration(connect_timeout, "connect_timeout")? {
            config.connect_timeout = v;
        }
        if let Some(v) = opt_duration(close_timeout, "close_timeout")? {
            config.close_timeout = v;
        }
        config.ping_interval = opt_duration(ping_interval, "ping_interval")?;
        config.idle_timeout = opt_duration(idle_timeout, "idle_timeout")?;
        if let Some(v) = high_water_mark {
            config.high_water_mark = v;
        }
        if let Some(v) = low_water_mark {
            config.low_water_mark = v;
        }
        if let Some(v) = max_buffered {
            config.max_buffered = v;
        }
        if let Some(v) = max_connections {
            config.max_connections = v;
        }
        if let Some(v) = receive_buffer_size {
            config.receive_buffer_size = v;
        }
        let ctx = tidewire_net::Context::new(config).map_err(|e| to_pyerr(py, &e))?;
        let events = ctx.new_events();
        let fd = ctx.fd();
        let sender = ctx.sender();
        Ok(Context {
            inner: Mutex::new(Some(Inner {
                ctx,
                events,
                connector: None,
            })),
            fd,
            freed: AtomicBool::new(false),
            sender,
        })
    }

    /// The file descriptor to wait on (readable when `poll(0)` has work).
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        if self.freed.load(Ordering::Acquire) {
            return Err(invalid_state(py, "the context was freed"));
        }
        Ok(self.fd)
    }

    /// Seconds a host loop may wait on `fileno()` before calling `poll` again; 0.0 when work
    /// is pending, None when no timer is armed.
    fn next_timeout(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with(py, |i| Ok(i.ctx.next_timeout().map(|d| d.as_secs_f64())))
    }

    /// Does all ready I/O, waiting at most `timeout` seconds (None: until something happens),
    /// and returns the events. The GIL is released meanwhile.
    #[pyo3(signature = (timeout=None))]
    fn poll<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyList>> {
        let timeout = opt_duration(timeout, "timeout")?;
        let mut guard = self.lock(py)?;
        let inner = guard
            .as_mut()
            .ok_or_else(|| invalid_state(py, "the context was freed"))?;
        let Inner { ctx, events, .. } = inner;
        // Released even for `poll(0)`: the cycle writes and reads sockets, and other Python
        // threads (the blocking API's handlers) can run meanwhile.
        let polled = py.detach(|| ctx.poll(events, timeout));
        polled.map_err(|e| to_pyerr(py, &e))?;
        let mut out = Vec::with_capacity(events.len());
        for ev in events.iter() {
            out.push(event_object(py, &ev)?);
        }
        for conn in events.held_close_replies() {
            out.push(Py::new(py, CloseHeldEvent { conn: conn.0 })?.into_any());
        }
        drop(guard);
        if out.is_empty() {
            // A signal (Ctrl-C) ended the wait: raise its exception now. With events in hand
            // it is left to the interpreter's next check, so that no event is lost.
            py.check_signals()?;
        }
        PyList::new(py, out)
    }

    /// Listens on `host:port` (port 0 picks a free one: see `local_addr`). Returns the
    /// listener id. The per-address limits (IPv6 by /64; `None`: no limit) default to the
    /// runtime's: `max_connections_per_address=None`, `max_handshakes_per_address=4096`,
    /// `max_handshakes=16384`, `connection_rate=None` (or `(per_second, burst)`). A
    /// connection over one is closed right after accept, before anything is read.
    ///
    /// The listener's rules, applied before any `RequestEvent` (which carries the selected
    /// subprotocol): the first of `subprotocols` that the client offered is selected, and
    /// with `require_subprotocol` a client offering none of them is refused with 400; with
    /// `origins`, a request whose Origin is not listed is refused with 403, and with
    /// `require_origin` one without Origin too.
    ///
    /// `slow_subscriber=(limit, action)`: a connection of this listener that a `publish` or
    /// `broadcast` reaches with `limit` bytes or more waiting in its output is skipped
    /// (`"skip"`: it misses that message) or closed with 1008 (`"close"`). `None`: the
    /// runtime's default, `(1048576, "skip")`.
    #[pyo3(signature = (host, port, *, certfile=None, keyfile=None, subprotocols=None,
        require_subprotocol=false, origins=None, require_origin=false, handle_requests=false,
        handle_http=false, compression=None,
        reuse_port=false, backlog=1024,
        max_connections_per_address=PeerLimits::default().max_connections_per_address,
        max_handshakes_per_address=PeerLimits::default().max_handshakes_per_address,
        max_handshakes=PeerLimits::default().max_handshakes,
        connection_rate=None, slow_subscriber=None))]
    #[allow(clippy::too_many_arguments)]
    fn listen(
        &self,
        py: Python<'_>,
        host: &str,
        port: u16,
        certfile: Option<String>,
        keyfile: Option<String>,
        subprotocols: Option<Vec<String>>,
        require_subprotocol: bool,
        origins: Option<Vec<String>>,
        require_origin: bool,
        handle_requests: bool,
        handle_http: bool,
        compression: Option<&str>,
        reuse_port: bool,
        backlog: i32,
        max_connections_per_address: Option<usize>,
        max_handshakes_per_address: Option<usize>,
        max_handshakes: Option<usize>,
        connection_rate: Option<(f64, u32)>,
        slow_subscriber: Option<(usize, String)>,
    ) -> PyResult<u64> {
        let slow_subscriber = self::slow_subscriber(slow_subscriber)?;
        let tls = match (certfile, keyfile) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(
                py.detach(|| TlsAcceptor::from_pem_files(&cert, &key))
                    .map_err(|e| to_pyerr(py, &e))?,
            ),
            (Some(cert), None) => Some(
                py.detach(|| TlsAcceptor::from_pem_files(&cert, &cert))
                    .map_err(|e| to_pyerr(py, &e))?,
            ),
            (None, Some(_)) => return Err(PyValueError::new_err("keyfile given without certfile")),
        };
        let options = ListenOptions {
            reuse_port,
            backlog,
            tls,
            subprotocols: subprotocols.unwrap_or_default(),
            allowed_origins: origins,
            handle_requests,
            require_subprotocol,
            require_origin,
            handle_http,
            deflate: server_deflate(compression)?,
            peer_limits: PeerLimits {
                max_connections_per_address,
                max_handshakes_per_address,
                max_handshakes,
                connection_rate: connection_rate
                    .map(|(per_second, burst)| ConnectionRate { per_second, burst }),
            },
            slow_subscriber,
        };
        let host = host.to_owned();
        self.with(py, |i| i.ctx.listen(&host, port, options).map(|l| l.0))
    }

    /// `(host, port)` a listener is bound to.
    fn local_addr<'py>(&self, py: Python<'py>, listener: u64) -> PyResult<Bound<'py, PyTuple>> {
        let addr = self.with(py, |i| i.ctx.local_addr(ListenerId(listener)))?;
        addr_tuple(py, &addr)
    }

    /// Stops listening; accepted connections go on.
    fn unlisten(&self, py: Python<'_>, listener: u64) -> PyResult<()> {
        self.with(py, |i| i.ctx.unlisten(ListenerId(listener)))
    }

    /// Opens a client connection to a `ws://` or `wss://` URL and returns its id at once; an
    /// `OpenEvent` or a terminal `ErrorEvent` follows. For `wss://`: `cafile` / `cadata` (PEM)
    /// replace the system's roots; `verify=False` accepts any certificate (tests only).
    /// `local_address` (an IP literal) is the address to connect from. `proxy`: `True`
    /// (the default) reads the environment as python-websockets does (`no_proxy`, then
    /// `wss_proxy`/`https_proxy` or `ws_proxy`/`http_proxy`, then `all_proxy`), `None`
    /// connects directly, a string is a proxy URL (`http://`, `https://`, `socks5://`,
    /// `socks5h://`, with `user:password@` if needed). TLS to an `https://` proxy trusts
    /// what `cafile` / `cadata` / `verify` say, as for a `wss://` origin.
    /// `reconnect` (a `ReconnectPolicy`): after a retryable failure or end the connection
    /// tries again under the same id, reported by `ReconnectingEvent`; `close` or
    /// `stop_reconnecting` end it.
    #[pyo3(signature = (url, *, headers=None, origin=None, subprotocols=None, compression=None,
        cafile=None, cadata=None, verify=true, connect_timeout=None, local_address=None,
        proxy=Some(ProxyArg::Flag(true)), reconnect=None))]
    #[pyo3(
        text_signature = "($self, url, *, headers=None, origin=None, subprotocols=None, compression=None, cafile=None, cadata=None, verify=True, connect_timeout=None, local_address=None, proxy=True, reconnect=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn connect(
        &self,
        py: Python<'_>,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        origin: Option<String>,
        subprotocols: Option<Vec<String>>,
        compression: Option<&str>,
        cafile: Option<String>,
        cadata: Option<&Bound<'_, PyAny>>,
        verify: bool,
        connect_timeout: Option<f64>,
        local_address: Option<&str>,
        proxy: Option<ProxyArg>,
        reconnect: Option<PyRef<'_, ReconnectPolicy>>,
    ) -> PyResult<u64> {
        let proxy = match proxy {
            None | Some(ProxyArg::Flag(false)) => Proxy::Direct,
            Some(ProxyArg::Flag(true)) => Proxy::FromEnv,
            Some(ProxyArg::Url(url)) => Proxy::parse(&url).map_err(|e| to_pyerr(py, &e))?,
        };
        let https_proxy =
            matches!(&proxy, Proxy::Url(p) if p.scheme == tidewire_net::ProxyScheme::Https);
        let local_address = match local_address {
            None => None,
            Some(text) => Some(text.parse::<std::net::IpAddr>().map_err(|_| {
                PyValueError::new_err(format!("local_address {text:?} is not an IP address"))
            })?),
        };
        let cadata = match cadata {
            None => None,
            Some(d) => Some(payload_bytes(d)?.into_owned()),
        };
        let key = TlsKey {
            cafile,
            cadata,
            verify,
        };
        let custom_tls = key.cafile.is_some() || key.cadata.is_some() || !key.verify;
        let mut options = ConnectOptions {
            headers: header_pairs(headers)?,
            origin,
            subprotocols: subprotocols.unwrap_or_default(),
            tls: None,
            connect_timeout: opt_duration(connect_timeout, "connect_timeout")?,
            local_address,
            deflate: deflate(compression)?,
            reconnect: reconnect.map(|r| r.net),
            proxy,
        };
        let url = url.to_owned();
        // Parsed here first: a bad URL is reported as such before any TLS setting is looked
        // at, and `wss` is known without slicing the caller's string.
        let secure = match Url::parse(&url) {
            Ok(parsed) => parsed.secure,
            Err(e) => {
                let error = tidewire_net::Error::InvalidUrl(format!("{url:?}: {e}"));
                return Err(to_pyerr(py, &error));
            }
        };
        let mut guard = self.lock(py)?;
        let inner = guard
            .as_mut()
            .ok_or_else(|| invalid_state(py, "the context was freed"))?;
        // The TLS settings serve the origin (`wss://`) and an `https://` proxy alike.
        if custom_tls && (secure || https_proxy) {
            let cached = inner
                .connector
                .as_ref()
                .filter(|(k, _)| *k == key)
                .map(|(_, c)| c.clone());
            let connector = match cached {
                Some(c) => c,
                None => {
                    let tls_options = TlsClientOptions {
                        use_system_roots: key.cafile.is_none() && key.cadata.is_none(),
                        extra_ca_pem: key.cadata.clone(),
                        extra_ca_file: key.cafile.clone().map(Into::into),
                        dangerous_skip_verification: !key.verify,
                    };
                    let c = py
                        .detach(|| TlsConnector::new(&tls_options))
                        .map_err(|e| to_pyerr(py, &e))?;
                    inner.connector = Some((key, c.clone()));
                    c
                }
            };
            options.tls = Some(connector);
        }
        inner
            .ctx
            .connect(&url, options)
            .map(|c| c.0)
            .map_err(|e| to_pyerr(py, &e))
    }

    /// Accepts an upgrade request (`RequestEvent`) with an optional subprotocol and extra
    /// response headers. The connection is open when this returns.
    #[pyo3(signature = (conn, subprotocol=None, headers=None))]
    fn accept(
        &self,
        py: Python<'_>,
        conn: u64,
        subprotocol: Option<&str>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let headers = header_pairs(headers)?;
        let refs = header_refs(&headers);
        self.with(py, |i| i.ctx.accept(ConnId(conn), subprotocol, &refs))
    }

    /// Refuses an upgrade request (or answers a plain HTTP request) with an HTTP response,
    /// then closes the connection.
    #[pyo3(signature = (conn, status, headers=None, body=None))]
    fn reject(
        &self,
        py: Python<'_>,
        conn: u64,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let headers = header_pairs(headers)?;
        let refs = header_refs(&headers);
        let body = opt_payload_bytes(body)?;
        self.with(py, |i| i.ctx.reject(ConnId(conn), status, &refs, &body))
    }

    /// Same as `reject`, named for answering `HttpRequestEvent`s.
    #[pyo3(signature = (conn, status, headers=None, body=None))]
    fn respond(
        &self,
        py: Python<'_>,
        conn: u64,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.reject(py, conn, status, headers, body)
    }

    /// Queues a message (text for `str`, binary for bytes-like); it leaves at the next poll.
    /// Returns True when the output buffer is now over the high water mark: stop sending until
    /// the `WritableEvent`.
    fn send(&self, py: Python<'_>, conn: u64, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let data = payload(data)?;
        let status = self.with(py, |i| match &data {
            Payload::Text(t) => i.ctx.send(ConnId(conn), MessageKind::Text, t.as_bytes()),
            Payload::Binary(b) => i.ctx.send(ConnId(conn), MessageKind::Binary, b),
        })?;
        Ok(status == SendStatus::Backpressure)
    }

    /// Subscribes `conn` to `topic` (`str` as UTF-8, or bytes-like); returns False when it
    /// already was. A connection leaves all its topics when it ends.
    fn subscribe(&self, py: Python<'_>, conn: u64, topic: &Bound<'_, PyAny>) -> PyResult<bool> {
        let topic = self::topic(topic)?;
        self.with(py, |i| i.ctx.subscribe(ConnId(conn), &topic))
    }

    /// Unsubscribes `conn` from `topic`; returns False when it was not subscribed.
    fn unsubscribe(&self, py: Python<'_>, conn: u64, topic: &Bound<'_, PyAny>) -> PyResult<bool> {
        let topic = self::topic(topic)?;
        self.with(py, |i| i.ctx.unsubscribe(ConnId(conn), &topic))
    }

    /// The topics `conn` is subscribed to, as bytes.
    fn topics<'py>(&self, py: Python<'py>, conn: u64) -> PyResult<Bound<'py, PyList>> {
        let topics = self.with(py, |i| i.ctx.topics(ConnId(conn)))?;
        PyList::new(py, topics.iter().map(|t| PyBytes::new(py, t)))
    }

    /// How many connections are subscribed to `topic`.
    fn subscriber_count(&self, py: Python<'_>, topic: &Bound<'_, PyAny>) -> PyResult<usize> {
        let topic = self::topic(topic)?;
        self.with(py, |i| Ok(i.ctx.subscriber_count(&topic)))
    }

    /// How many topics have at least one subscriber.
    fn topic_count(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |i| Ok(i.ctx.topic_count()))
    }

    /// Sends one message (text for `str`, binary for bytes-like) to every subscriber of
    /// `topic`, framed once and compressed at most once per deflate parameter set; it leaves
    /// at the next poll (or `flush`). A topic without subscribers is not an error. The GIL
    /// is released meanwhile.
    fn publish(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<PublishReport> {
        let topic = self::topic(topic)?;
        let (kind, data) = message(data)?;
        self.detached(py, |ctx| ctx.publish(&topic, kind, &data))
    }

    /// Sends one message to each of `conns` (an iterable of connection ids), framed and
    /// compressed once as `publish` does. Ids of connections that are not open (or gone)
    /// are counted in the report's `not_open`, not refused. The GIL is released meanwhile.
    fn broadcast(
        &self,
        py: Python<'_>,
        conns: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<PublishReport> {
        let mut ids = Vec::new();
        for conn in conns.try_iter()? {
            ids.push(ConnId(conn?.extract::<u64>()?));
        }
        let (kind, data) = message(data)?;
        self.detached(py, |ctx| ctx.broadcast(&ids, kind, &data))
    }

    /// Starts a message sent in fragments (`send_fragment`); `text` picks its type.
    fn begin_message(&self, py: Python<'_>, conn: u64, text: bool) -> PyResult<()> {
        let kind = if text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        self.with(py, |i| i.ctx.begin_message(ConnId(conn), kind))
    }

    /// Queues the next fragment of the current message; `fin` ends it. Returns True over
    /// the high water mark, like `send`.
    #[pyo3(signature = (conn, data, fin=false))]
    fn send_fragment(
        &self,
        py: Python<'_>,
        conn: u64,
        data: &Bound<'_, PyAny>,
        fin: bool,
    ) -> PyResult<bool> {
        let data = payload_bytes(data)?;
        let status = self.with(py, |i| i.ctx.send_fragment(ConnId(conn), &data, fin))?;
        Ok(status == SendStatus::Backpressure)
    }

    /// Queues a ping (at most 125 bytes).
    #[pyo3(signature = (conn, data=None))]
    fn ping(&self, py: Python<'_>, conn: u64, data: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let data = opt_payload_bytes(data)?;
        let status = self.with(py, |i| i.ctx.ping(ConnId(conn), &data))?;
        Ok(status == SendStatus::Backpressure)
    }

    /// Sends the close frame held for `conn` (contexts made with `hold_close_replies=True`);
    /// returns whether one was held. Call it once the messages received before the peer's
    /// close (or its protocol error) have been consumed, so that answers to them go first.
    fn release_close_reply(&self, py: Python<'_>, conn: u64) -> PyResult<bool> {
        self.with(py, |i| i.ctx.release_close_reply(ConnId(conn)))
    }

    /// Starts the closing handshake (a connection not open yet is dropped).
    #[pyo3(signature = (conn, code=1000, reason=""))]
    fn close(&self, py: Python<'_>, conn: u64, code: u16, reason: &str) -> PyResult<()> {
        self.with(py, |i| i.ctx.close(ConnId(conn), code, reason))
    }

    /// Writes what is queued for `conn` now rather than at the next `poll`; returns whether
    /// nothing is left queued. Whatever else follows (errors, the rest of a partial write)
    /// is reported by the next `poll`.
    fn flush(&self, py: Python<'_>, conn: u64) -> PyResult<bool> {
        self.with(py, |i| i.ctx.flush(ConnId(conn)))
    }

    /// Stops reading from an open connection: nothing more is received (the kernel's buffer
    /// fills, then TCP slows the peer down) until `resume_reading`. Sending and timers go on.
    /// Receive-side back-pressure, for an application that queues messages faster than it
    /// consumes them. Pausing twice is the same as once.
    fn pause_reading(&self, py: Python<'_>, conn: u64) -> PyResult<()> {
        self.with(py, |i| i.ctx.pause_reading(ConnId(conn)))
    }

    /// Reads again from a connection paused with `pause_reading`; what arrived meanwhile is
    /// delivered by the next `poll`.
    fn resume_reading(&self, py: Python<'_>, conn: u64) -> PyResult<()> {
        self.with(py, |i| i.ctx.resume_reading(ConnId(conn)))
    }

    /// Whether reading is paused on the connection (`pause_reading`).
    fn is_reading_paused(&self, py: Python<'_>, conn: u64) -> PyResult<bool> {
        self.with(py, |i| i.ctx.is_reading_paused(ConnId(conn)))
    }

    /// Bytes queued for the peer and not yet written.
    fn buffered_amount(&self, py: Python<'_>, conn: u64) -> PyResult<usize> {
        self.with(py, |i| i.ctx.buffered_amount(ConnId(conn)))
    }

    /// The last round-trip time measured on the connection, in seconds; 0.0 before the
    /// first measurement (as `websockets`' `latency`). Measured from the pong of a keepalive
    /// ping or of one of the latest few `ping` calls, from when the ping was queued to the
    /// poll that read its pong.
    fn latency(&self, py: Python<'_>, conn: u64) -> PyResult<f64> {
        let rtt = self.with(py, |i| i.ctx.latency(ConnId(conn)))?;
        Ok(rtt.map_or(0.0, |d| d.as_secs_f64()))
    }

    /// `(host, port)` of the peer.
    fn peer_addr<'py>(&self, py: Python<'py>, conn: u64) -> PyResult<Bound<'py, PyTuple>> {
        let addr = self.with(py, |i| i.ctx.peer_addr(ConnId(conn)))?;
        addr_tuple(py, &addr)
    }

    /// Whether the connection is open (handshake done, no close frame sent or received).
    fn is_open(&self, py: Python<'_>, conn: u64) -> PyResult<bool> {
        self.with(py, |i| Ok(i.ctx.is_open(ConnId(conn))))
    }

    /// Stops reconnecting `conn`: an open connection stays open and its end is final; one
    /// waiting for its next attempt ends with an `ErrorEvent` at the next poll.
    fn stop_reconnecting(&self, py: Python<'_>, conn: u64) -> PyResult<()> {
        self.with(py, |i| i.ctx.stop_reconnecting(ConnId(conn)))
    }

    /// Connections of every kind (connecting, open, closing).
    fn connection_count(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |i| Ok(i.ctx.connection_count()))
    }

    /// A handle that other threads may use to send, close and wake this context.
    fn sender(&self) -> Sender {
        Sender::new(self.sender.clone())
    }

    /// Stops listening, closes every open connection with 1001 and gives the closing
    /// handshakes `grace` seconds; keep polling until `connection_count()` is 0.
    fn shutdown(&self, py: Python<'_>, grace: f64) -> PyResult<()> {
        let grace = duration(grace, "grace")?;
        self.with(py, |i| {
            i.ctx.shutdown(grace);
            Ok(())
        })
    }

    /// Drops the runtime now: every socket is closed without a closing handshake and every
    /// later call raises `InvalidState`. Calling it twice is harmless.
    fn free(&self, py: Python<'_>) {
        self.freed.store(true, Ordering::Release);
        let taken = match self.inner.try_lock() {
            Ok(mut g) => g.take(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().take(),
            Err(TryLockError::WouldBlock) => self
                .inner
                .lock_py_attached(py)
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        };
        // Dropping joins nothing but closes sockets: cheap, no need to release the GIL.
        drop(taken);
    }

    /// Whether `free()` was called.
    #[getter]
    fn freed(&self) -> bool {
        self.freed.load(Ordering::Acquire)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.lock(py) {
            Ok(g) => match g.as_ref() {
                Some(i) => format!(
                    "<Context fd={} connections={} listeners={}>",
                    self.fd,
                    i.ctx.connection_count(),
                    i.ctx.listener_count()
                ),
                None => "<Context freed>".to_owned(),
            },
            Err(_) => "<Context freed>".to_owned(),
        }
    }
}
