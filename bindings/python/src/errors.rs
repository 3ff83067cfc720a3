//! `tidewire_net::Error` to Python exceptions, following the error table of docs/DESIGN.md
//! ("One error model, every face"): argument and state mistakes become `ValueError` / `InvalidState`, handshake failures the
//! `InvalidHandshake` family, OS and TLS failures `OSError` subclasses, timers `TimeoutError`.
//!
//! The exception classes are plain Python classes in `tidewire.exceptions` (so that they can
//! carry fields and be subclassed like any exception). The package hands them down once, when
//! it is imported (`_init`): the native module never imports the package. Used on its own,
//! without `_init`, it raises `RuntimeError` in their place.

use std::io;

use pyo3::exceptions::{
    PyBaseException, PyOSError, PyRuntimeError, PyTimeoutError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyType};
use tidewire_net::HandshakeError;
use tidewire_net::{Error, ProxyError, ProxyFailure, TimeoutKind};

use crate::convert::header_list;

/// The classes of `tidewire.exceptions` that the native module raises, by name.
#[derive(Clone, Copy)]
enum Exc {
    InvalidState,
    InvalidUri,
    InvalidHandshake,
    InvalidMessage,
    InvalidHeader,
    InvalidStatus,
    NegotiationError,
    ProtocolError,
    ProxyError,
    ProxyTimeoutError,
}

impl Exc {
    const ALL: [Exc; 10] = [
        Exc::InvalidState,
        Exc::InvalidUri,
        Exc::InvalidHandshake,
        Exc::InvalidMessage,
        Exc::InvalidHeader,
        Exc::InvalidStatus,
        Exc::NegotiationError,
        Exc::ProtocolError,
        Exc::ProxyError,
        Exc::ProxyTimeoutError,
    ];

    fn name(self) -> &'static str {
        match self {
            Exc::InvalidState => "InvalidState",
            Exc::InvalidUri => "InvalidURI",
            Exc::InvalidHandshake => "InvalidHandshake",
            Exc::InvalidMessage => "InvalidMessage",
            Exc::InvalidHeader => "InvalidHeader",
            Exc::InvalidStatus => "InvalidStatus",
            Exc::NegotiationError => "NegotiationError",
            Exc::ProtocolError => "ProtocolError",
            Exc::ProxyError => "ProxyError",
            Exc::ProxyTimeoutError => "ProxyTimeoutError",
        }
    }
}

/// The classes handed down by `_init`, in the order of `Exc::ALL`.
static EXCEPTIONS: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

/// `_init(*, exceptions)`: the package hands down, once, the exception classes the native
/// module raises (`exceptions` maps each name of `tidewire.exceptions` it needs to its class).
/// A second call with the same classes does nothing; with other classes it fails.
#[pyfunction]
#[pyo3(signature = (*, exceptions))]
pub fn _init(py: Python<'_>, exceptions: &Bound<'_, PyAny>) -> PyResult<()> {
    let mut classes = Vec::with_capacity(Exc::ALL.len());
    for exc in Exc::ALL {
        let class = exceptions.get_item(exc.name())?;
        let class = class.cast_into::<PyType>().map_err(|_| {
            PyTypeError::new_err(format!("exceptions[{:?}] must be a class", exc.name()))
        })?;
        if !class.is_subclass_of::<PyBaseException>()? {
            return Err(PyTypeError::new_err(format!(
                "exceptions[{:?}] must be an exception class",
                exc.name()
            )));
        }
        classes.push(class.unbind());
    }
    let stored = EXCEPTIONS.get_or_init(py, || classes.iter().map(|c| c.clone_ref(py)).collect());
    if stored.iter().zip(&classes).any(|(a, b)| !a.is(b)) {
        return Err(PyRuntimeError::new_err(
            "tidewire._tidewire was initialized with other exception classes",
        ));
    }
    Ok(())
}

/// An instance of the package's exception `exc(*args)`, or `RuntimeError(message)` without
/// `_init` (or if the class refused the arguments).
fn tidewire_exc<'py, A>(py: Python<'py>, exc: Exc, args: A, message: &str) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let made = match EXCEPTIONS.get(py) {
        Some(classes) => classes[exc as usize].bind(py).call1(args),
        None => return PyRuntimeError::new_err(message.to_owned()),
    };
    match made {
        Ok(value) => PyErr::from_value(value),
        Err(_) => PyRuntimeError::new_err(message.to_owned()),
    }
}

/// `tidewire_exc` with keyword arguments (falls back to `OSError(message)`, a proxy error
/// being a connection failure).
fn tidewire_exc_kw<'py, A>(
    py: Python<'py>,
    exc: Exc,
    args: A,
    kwargs: &Bound<'py, PyDict>,
    message: &str,
) -> PyResult<PyErr>
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let Some(classes) = EXCEPTIONS.get(py) else {
        return Ok(PyOSError::new_err(message.to_owned()));
    };
    match classes[exc as usize].bind(py).call(args, Some(kwargs)) {
        Ok(value) => Ok(PyErr::from_value(value)),
        Err(_) => Ok(PyOSError::new_err(message.to_owned())),
    }
}

/// `ProxyError(text, proxy=..., kind=..., status=..., field=..., authenticate=...)`.
fn proxy_error(py: Python<'_>, text: &str, proxy: Option<&str>, failure: &ProxyFailure) -> PyErr {
    let mut status: Option<u16> = None;
    let mut field: Option<&str> = None;
    let mut authenticate: Option<String> = None;
    let kind = match failure {
        ProxyFailure::Resolve(_) => "resolve",
        ProxyFailure::Connect(_) => "unreachable",
        ProxyFailure::Closed => "closed",
        ProxyFailure::Io(_) => "io",
        ProxyFailure::Tls(_) => "tls",
        ProxyFailure::Handshake(e) => match e {
            ProxyError::Refused {
                status: s,
                authenticate: a,
                ..
            } => {
                status = Some(*s);
                authenticate = a.clone();
                "refused"
            }
            ProxyError::AuthFailed { status: s } => {
                status = Some(u16::from(*s));
                "auth"
            }
            ProxyError::NoAcceptableMethods | ProxyError::UnofferedMethod(_) => {
                field = Some("METHOD");
                "auth"
            }
            ProxyError::ConnectFailed(code) => {
                status = Some(u16::from(code.rep()));
                field = Some("REP");
                "socks"
            }
            ProxyError::BadVersion { field: f, .. } => {
                field = Some(f);
                "malformed"
            }
            ProxyError::BadReserved(_) => {
                field = Some("RSV");
                "malformed"
            }
            ProxyError::UnknownAddressType(_) => {
                field = Some("ATYP");
                "malformed"
            }
            _ => "malformed",
        },
        _ => "io",
    };
    let kwargs = PyDict::new(py);
    let made = (|| -> PyResult<PyErr> {
        kwargs.set_item("proxy", proxy)?;
        kwargs.set_item("kind", kind)?;
        kwargs.set_item("status", status)?;
        kwargs.set_item("field", field)?;
        kwargs.set_item("authenticate", authenticate)?;
        tidewire_exc_kw(py, Exc::ProxyError, (text,), &kwargs, text)
    })();
    made.unwrap_or_else(|e| e)
}

/// An instance of a standard library exception `module.name(*args)`, or `OSError(message)`
/// if the module is missing (Python built without `ssl`).
fn stdlib_exc<'py, A>(py: Python<'py>, module: &str, name: &str, args: A, message: &str) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    match py
        .import(module)
        .and_then(|m| m.getattr(name))
        .and_then(|cls| cls.call1(args))
    {
        Ok(value) => PyErr::from_value(value),
        Err(_) => PyOSError::new_err(message.to_owned()),
    }
}

/// `InvalidState(message)`: the operation does not fit the connection's state.
pub fn invalid_state(py: Python<'_>, message: &str) -> PyErr {
    tidewire_exc(py, Exc::InvalidState, (message,), message)
}

/// An `OSError` whose subclass follows the errno (`OSError(errno, text)` picks
/// `ConnectionRefusedError` and friends by itself), prefixed with what was being done.
fn os_error(what: &str, e: &io::Error) -> PyErr {
    let text = format!("{what}: {e}");
    if let Some(code) = e.raw_os_error() {
        return PyOSError::new_err((code, text));
    }
    match e.kind() {
        io::ErrorKind::TimedOut => PyTimeoutError::new_err(text),
        io::ErrorKind::ConnectionRefused => {
            pyo3::exceptions::PyConnectionRefusedError::new_err(text)
        }
        io::ErrorKind::ConnectionReset => pyo3::exceptions::PyConnectionResetError::new_err(text),
        io::ErrorKind::ConnectionAborted => {
            pyo3::exceptions::PyConnectionAbortedError::new_err(text)
        }
        _ => PyOSError::new_err(text),
    }
}

fn handshake_error(py: Python<'_>, e: &HandshakeError) -> PyErr {
    let text = format!("handshake failed: {e}");
    match e {
        // Mistakes in what the caller asked us to send: raised by `connect` itself.
        HandshakeError::InvalidHeaderName(_)
        | HandshakeError::InvalidHeaderValue(_)
        | HandshakeError::ReservedHeader(_)
        | HandshakeError::InvalidSubprotocol(_)
        | HandshakeError::DuplicateSubprotocol(_)
        | HandshakeError::InvalidStatus(_)
        | HandshakeError::BodyNotAllowed(_) => PyValueError::new_err(e.to_string()),
        HandshakeError::Status { status, reason, .. } => {
            tidewire_exc(py, Exc::InvalidStatus, (*status, reason.clone()), &text)
        }
        HandshakeError::HeaderTooLarge { .. }
        | HandshakeError::TooManyHeaders { .. }
        | HandshakeError::Malformed(_)
        | HandshakeError::Finished => tidewire_exc(py, Exc::InvalidMessage, (text.clone(),), &text),
        HandshakeError::MissingUpgradeWebSocket => {
            tidewire_exc(py, Exc::InvalidHeader, ("Upgrade", text.clone()), &text)
        }
        HandshakeError::MissingConnectionUpgrade => {
            tidewire_exc(py, Exc::InvalidHeader, ("Connection", text.clone()), &text)
        }
        HandshakeError::MissingAccept | HandshakeError::AcceptMismatch { .. } => tidewire_exc(
            py,
            Exc::InvalidHeader,
            ("Sec-WebSocket-Accept", text.clone()),
            &text,
        ),
        HandshakeError::DuplicateHeader(name) | HandshakeError::NonUtf8Header(name) => {
            tidewire_exc(py, Exc::InvalidHeader, (*name, text.clone()), &text)
        }
        HandshakeError::UnexpectedSubprotocol(_) | HandshakeError::UnexpectedExtensions(_) => {
            tidewire_exc(py, Exc::NegotiationError, (text.clone(),), &text)
        }
        HandshakeError::RandomUnavailable => PyOSError::new_err(text),
        _ => tidewire_exc(py, Exc::InvalidHandshake, (text.clone(),), &text),
    }
}

/// The Python exception for a runtime error.
/// The attribute on every exception made from a runtime error that carries the runtime's
/// reconnect verdict (`tidewire_net::reconnect::classify`): `None` not retryable, `0.0`
/// retryable, more: retryable after that many seconds (`Retry-After`). Read by
/// `reconnect.rs`'s `Backoff.next_delay`.
pub const RETRY_ATTR: &str = "_tidewire_retry";

pub fn to_pyerr(py: Python<'_>, e: &Error) -> PyErr {
    let err = convert(py, e);
    let mark = match tidewire_net::reconnect::classify(e) {
        tidewire_net::Retry::Never => None,
        tidewire_net::Retry::Backoff => Some(0.0),
        tidewire_net::Retry::After(d) => Some(d.as_secs_f64()),
    };
    // Best effort: an exception class that refuses attributes is simply not retried.
    let _ = err.value(py).setattr(RETRY_ATTR, mark);
    err
}

fn convert(py: Python<'_>, e: &Error) -> PyErr {
    let text = e.to_string();
    match e {
        Error::StaleId | Error::NotOpen | Error::ContextGone | Error::ShuttingDown => {
            invalid_state(py, &text)
        }
        Error::Aborted => invalid_state(py, &text),
        Error::BufferFull { .. } => invalid_state(py, &text),
        Error::TooManyConnections => PyOSError::new_err(text),
        Error::InvalidArgument(_) => PyValueError::new_err(text),
        Error::InvalidUrl(what) => {
            tidewire_exc(py, Exc::InvalidUri, (what.clone(), text.clone()), &text)
        }
        Error::Resolve { host, error } => stdlib_exc(
            py,
            "socket",
            "gaierror",
            (format!("cannot resolve {host:?}: {error}"),),
            &text,
        ),
        Error::Connect(io) => os_error("connect failed", io),
        // A proxy that failed: ProxyError (an InvalidHandshake and an OSError) with what
        // failed as fields.
        Error::Proxy { proxy, failure } => proxy_error(py, &text, Some(proxy), failure),
        Error::Timeout(TimeoutKind::Proxy) => {
            let text = "the proxy did not answer within the connect timeout";
            let kwargs = PyDict::new(py);
            let made = kwargs
                .set_item("kind", "timeout")
                .and_then(|_| tidewire_exc_kw(py, Exc::ProxyTimeoutError, (text,), &kwargs, text));
            made.unwrap_or_else(|e| e)
        }
        Error::Timeout(kind) => PyTimeoutError::new_err(format!("{kind} timed out")),
        Error::Tls(what) => stdlib_exc(py, "ssl", "SSLError", (format!("tls: {what}"),), &text),
        Error::HandshakeRejected {
            status,
            reason,
            headers,
            body,
        } => match header_list(py, headers) {
            Ok(headers) => tidewire_exc(
                py,
                Exc::InvalidStatus,
                (*status, reason.clone(), headers, PyBytes::new(py, body)),
                &text,
            ),
            Err(e) => e,
        },
        Error::Handshake(h) => handshake_error(py, h),
        Error::HandshakeEof => tidewire_exc(py, Exc::InvalidMessage, (text.clone(),), &text),
        Error::Extension(_) => tidewire_exc(py, Exc::NegotiationError, (text.clone(),), &text),
        Error::Send(tidewire_net::SendError::Closed) => invalid_state(py, &text),
        Error::Send(_) => tidewire_exc(py, Exc::ProtocolError, (text.clone(),), &text),
        Error::Io(io) => os_error("i/o error", io),
        _ => PyRuntimeError::new_err(text),
    }
}

/// The exception instance (not raised) for an error carried by an event.
pub fn to_exception(py: Python<'_>, e: &Error) -> Py<PyAny> {
    to_pyerr(py, e).into_value(py).into_any()
}
