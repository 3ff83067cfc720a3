//! The event classes returned by `Context.poll`, one frozen class per kind of
//! `tidewire_net::Event`. Payloads are copied once, from the receive buffer straight into the
//! `bytes` or `str` object: the net event only borrows them until the next poll.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use tidewire_net::{Event, MessageKind, Request as NetRequest, Source};

use crate::convert::{addr_tuple, header_list};
use crate::errors::to_exception;

/// An HTTP request as the server read it (the upgrade request, or a plain HTTP request).
#[pyclass(module = "tidewire._tidewire", frozen, get_all)]
pub struct RawRequest {
    method: String,
    /// The request target up to `?`.
    path: String,
    /// What follows `?`, if anything.
    query: Option<String>,
    /// Every header as received, in order, values decoded as Latin-1.
    headers: Py<PyList>,
    host: Option<String>,
    origin: Option<String>,
    subprotocols: Vec<String>,
    extensions: Option<String>,
}

impl RawRequest {
    fn new(py: Python<'_>, r: &NetRequest) -> PyResult<RawRequest> {
        Ok(RawRequest {
            method: r.method.clone(),
            path: r.path.clone(),
            query: r.query.clone(),
            headers: header_list(py, &r.headers)?,
            host: r.host.clone(),
            origin: r.origin.clone(),
            subprotocols: r.subprotocols.clone(),
            extensions: r.extensions.clone(),
        })
    }
}

#[pymethods]
impl RawRequest {
    fn __repr__(&self) -> String {
        format!("<RawRequest {} {}>", self.method, self.path)
    }
}

macro_rules! event_class {
    ($name:ident, $doc:literal, [$($field:ident : $ty:ty),*], $fmt:literal $(, $arg:ident)*) => {
        #[doc = $doc]
        #[pyclass(module = "tidewire._tidewire", frozen, get_all)]
        pub struct $name {
            $(pub $field: $ty,)*
        }

        #[pymethods]
        impl $name {
            #[classattr]
            fn __match_args__() -> Vec<&'static str> {
                vec![$(stringify!($field)),*]
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let _ = py;
                Ok(format!(concat!("<", stringify!($name), " ", $fmt, ">")
                    $(, repr_of(py, &self.$arg)?)*))
            }
        }
    };
}

/// `repr()` of a field, for the event reprs.
trait ReprArg {
    fn repr_arg(&self, py: Python<'_>) -> PyResult<String>;
}

macro_rules! repr_by_debug {
    ($($t:ty),*) => {$(
        impl ReprArg for $t {
            fn repr_arg(&self, _py: Python<'_>) -> PyResult<String> {
                Ok(format!("{self:?}"))
            }
        }
    )*};
}
repr_by_debug!(u64, u32, u16, Option<u64>);

impl ReprArg for bool {
    fn repr_arg(&self, _py: Python<'_>) -> PyResult<String> {
        Ok(if *self { "True" } else { "False" }.to_owned())
    }
}

impl ReprArg for String {
    fn repr_arg(&self, py: Python<'_>) -> PyResult<String> {
        Ok(PyString::new(py, self).repr()?.to_cow()?.into_owned())
    }
}

impl ReprArg for Option<String> {
    fn repr_arg(&self, py: Python<'_>) -> PyResult<String> {
        match self {
            Some(s) => s.repr_arg(py),
            None => Ok("None".to_owned()),
        }
    }
}

impl<T> ReprArg for Py<T> {
    fn repr_arg(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.bind(py).as_any().repr()?.to_cow()?.into_owned())
    }
}

fn repr_of<T: ReprArg>(py: Python<'_>, value: &T) -> PyResult<String> {
    value.repr_arg(py)
}

event_class!(RequestEvent, "A valid upgrade request on a listener with `handle_requests`, which passed the listener's rules (origins, subprotocols): answer it with `Context.accept` or `Context.reject`. `subprotocol`: the one the rules selected, what to pass to `accept` unless the application chooses otherwise.",
    [conn: u64, listener: u64, request: Py<RawRequest>, subprotocol: Option<String>], "conn={} listener={} subprotocol={}", conn, listener, subprotocol);
event_class!(HttpRequestEvent, "A plain HTTP request on a listener with `handle_http`: answer it with `Context.respond`.",
    [conn: u64, listener: u64, request: Py<RawRequest>], "conn={} listener={}", conn, listener);
event_class!(ReconnectingEvent, "A connection opened with `Context.connect(reconnect=...)` failed or ended and tries again under the same id: attempt `attempt` after `delay` seconds. Not terminal: it comes instead of the `CloseEvent` or `ErrorEvent`. The cause: `error` (the exception an `ErrorEvent` would carry) for a connection that never opened, else `None` and `close_code` (1006 when the transport broke).",
    [conn: u64, attempt: u32, delay: f64, error: Option<Py<PyAny>>, close_code: u16], "conn={} attempt={} close_code={}", conn, attempt, close_code);
event_class!(OpenEvent, "The opening handshake completed. `headers`: a client's 101 response headers as `(name, value)` pairs (empty on the server side).",
    [conn: u64, listener: Option<u64>, subprotocol: Option<String>, extensions: Option<String>,
     peer_addr: Py<PyTuple>, path: String, headers: Py<PyList>], "conn={} subprotocol={}", conn, subprotocol);
event_class!(MessageEvent, "A whole message: `data` is `str` for text, `bytes` for binary.",
    [conn: u64, data: Py<PyAny>], "conn={}", conn);
event_class!(PingEvent, "A ping arrived (the pong is already queued).",
    [conn: u64, data: Py<PyBytes>], "conn={} data={}", conn, data);
event_class!(PongEvent, "A pong arrived.",
    [conn: u64, data: Py<PyBytes>], "conn={} data={}", conn, data);
event_class!(WritableEvent, "The output buffer drained below the low water mark after back-pressure.",
    [conn: u64], "conn={}", conn);
event_class!(CloseEvent, "The connection is over (terminal). `clean`: the closing handshake completed. `remote`: code and reason are the peer's (False: ours, e.g. we failed the connection because the peer broke the protocol, or 1006).",
    [conn: u64, code: u16, reason: String, clean: bool, remote: bool], "conn={} code={} reason={} clean={}",
    conn, code, reason, clean);
event_class!(ErrorEvent, "Something failed: terminal for a connection that never opened, a report for a listener. `error` is the exception that says what.",
    [conn: Option<u64>, listener: Option<u64>, error: Py<PyAny>], "conn={} listener={} error={}",
    conn, listener, error);
event_class!(SendFailedEvent, "A command from a `Sender` could not be applied. Not terminal.",
    [conn: u64, error: Py<PyAny>], "conn={} error={}", conn, error);
event_class!(WakeEvent, "`Sender.wake()` was called.", [], "");
event_class!(CloseHeldEvent, "With `hold_close_replies`: the peer closed (or broke the protocol) and the answering close frame waits for `Context.release_close_reply`. After every other event of the same poll.",
    [conn: u64], "conn={}", conn);

/// Builds the Python object for one net event.
pub fn event_object(py: Python<'_>, ev: &Event<'_>) -> PyResult<Py<PyAny>> {
    Ok(match *ev {
        Event::Message { conn, kind, data } => {
            let data = match kind {
                MessageKind::Text => match ev.text() {
                    Some(text) => PyString::new(py, text).into_any().unbind(),
                    None => PyBytes::new(py, data).into_any().unbind(),
                },
                MessageKind::Binary => PyBytes::new(py, data).into_any().unbind(),
            };
            Py::new(py, MessageEvent { conn: conn.0, data })?.into_any()
        }
        Event::Writable { conn } => Py::new(py, WritableEvent { conn: conn.0 })?.into_any(),
        Event::Open {
            conn,
            listener,
            subprotocol,
            extensions,
            peer_addr,
            path,
            headers,
        } => Py::new(
            py,
            OpenEvent {
                conn: conn.0,
                listener: listener.map(|l| l.0),
                subprotocol: subprotocol.map(str::to_owned),
                extensions: extensions.map(str::to_owned),
                peer_addr: addr_tuple(py, &peer_addr)?.unbind(),
                path: path.to_owned(),
                headers: header_list(py, headers)?,
            },
        )?
        .into_any(),
        Event::Request {
            conn,
            listener,
            request,
            subprotocol,
        } => Py::new(
            py,
            RequestEvent {
                conn: conn.0,
                listener: listener.0,
                request: Py::new(py, RawRequest::new(py, request)?)?,
                subprotocol: subprotocol.map(str::to_owned),
            },
        )?
        .into_any(),
        Event::HttpRequest {
            conn,
            listener,
            request,
        } => Py::new(
            py,
            HttpRequestEvent {
                conn: conn.0,
                listener: listener.0,
                request: Py::new(py, RawRequest::new(py, request)?)?,
            },
        )?
        .into_any(),
        Event::Ping { conn, data } => Py::new(
            py,
            PingEvent {
                conn: conn.0,
                data: PyBytes::new(py, data).unbind(),
            },
        )?
        .into_any(),
        Event::Pong { conn, data } => Py::new(
            py,
            PongEvent {
                conn: conn.0,
                data: PyBytes::new(py, data).unbind(),
            },
        )?
        .into_any(),
        Event::Closed {
            conn,
            code,
            reason,
            clean,
            remote,
        } => Py::new(
            py,
            CloseEvent {
                conn: conn.0,
                code,
                reason: reason.to_owned(),
                clean,
                remote,
            },
        )?
        .into_any(),
        Event::Error { source, error } => {
            let (conn, listener) = match source {
                Source::Conn(c) => (Some(c.0), None),
                Source::Listener(l) => (None, Some(l.0)),
            };
            Py::new(
                py,
                ErrorEvent {
                    conn,
                    listener,
                    error: to_exception(py, error),
                },
            )?
            .into_any()
        }
        Event::SendFailed { conn, error } => Py::new(
            py,
            SendFailedEvent {
                conn: conn.0,
                error: to_exception(py, error),
            },
        )?
        .into_any(),
        Event::Reconnecting {
            conn,
            attempt,
            delay,
            error,
            close_code,
        } => Py::new(
            py,
            ReconnectingEvent {
                conn: conn.0,
                attempt,
                delay: delay.as_secs_f64(),
                error: error.map(|e| to_exception(py, e)),
                close_code,
            },
        )?
        .into_any(),
        Event::Wake => Py::new(py, WakeEvent {})?.into_any(),
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RawRequest>()?;
    m.add_class::<RequestEvent>()?;
    m.add_class::<HttpRequestEvent>()?;
    m.add_class::<OpenEvent>()?;
    m.add_class::<MessageEvent>()?;
    m.add_class::<PingEvent>()?;
    m.add_class::<PongEvent>()?;
    m.add_class::<WritableEvent>()?;
    m.add_class::<CloseEvent>()?;
    m.add_class::<ErrorEvent>()?;
    m.add_class::<SendFailedEvent>()?;
    m.add_class::<WakeEvent>()?;
    m.add_class::<ReconnectingEvent>()?;
    m.add_class::<CloseHeldEvent>()?;
    Ok(())
}
