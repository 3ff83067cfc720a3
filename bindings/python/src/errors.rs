//! `tidewire_net::Error` to Python exceptions, following the error table of the house style:
//! argument and state mistakes become `ValueError` / `InvalidState`, handshake failures the
//! `InvalidHandshake` family, OS and TLS failures `OSError` subclasses, timers `TimeoutError`.
//!
//! The exception classes are plain Python classes in `tidewire.exceptions` (so that they can
//! carry fields and be subclassed like any exception); they are looked up once, on first use.

use std::io;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyModule};
use tidewire_net::Error;
use tidewire_net::HandshakeError;

static EXCEPTIONS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// An instance of `tidewire.exceptions.<name>(*args)`, or `RuntimeError(message)` if the
/// package is not importable (the native module used on its own).
fn tidewire_exc<'py, A>(py: Python<'py>, name: &str, args: A, message: &str) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let made = EXCEPTIONS
        .get_or_try_init(py, || py.import("tidewire.exceptions").map(Bound::unbind))
        .and_then(|m| m.bind(py).getattr(name))
        .and_then(|cls| cls.call1(args));
    match made {
        Ok(value) => PyErr::from_value(value),
        Err(_) => PyRuntimeError::new_err(message.to_owned()),
    }
}

fn class_exc<'py, A>(py: Python<'py>, module: &str, name: &str, args: A, message: &str) -> PyErr
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
    tidewire_exc(py, "InvalidState", (message,), message)
}

/// An `OSError` whose subclass follows the errno (`OSError(errno, text)` picks
/// `ConnectionRefusedError` and friends by itself), prefixed with what was being done.
pub fn os_error(py: Python<'_>, what: &str, e: &io::Error) -> PyErr {
    let text = format!("{what}: {e}");
    if let Some(code) = e.raw_os_error() {
        return class_exc(py, "builtins", "OSError", (code, text.clone()), &text);
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
            tidewire_exc(py, "InvalidStatus", (*status, reason.clone()), &text)
        }
        HandshakeError::HeaderTooLarge { .. }
        | HandshakeError::TooManyHeaders { .. }
        | HandshakeError::Malformed(_)
        | HandshakeError::Finished => tidewire_exc(py, "InvalidMessage", (text.clone(),), &text),
        HandshakeError::MissingUpgradeWebSocket => {
            tidewire_exc(py, "InvalidHeader", ("Upgrade", text.clone()), &text)
        }
        HandshakeError::MissingConnectionUpgrade => {
            tidewire_exc(py, "InvalidHeader", ("Connection", text.clone()), &text)
        }
        HandshakeError::MissingAccept | HandshakeError::AcceptMismatch { .. } => tidewire_exc(
            py,
            "InvalidHeader",
            ("Sec-WebSocket-Accept", text.clone()),
            &text,
        ),
        HandshakeError::DuplicateHeader(name) | HandshakeError::NonUtf8Header(name) => {
            tidewire_exc(py, "InvalidHeader", (*name, text.clone()), &text)
        }
        HandshakeError::UnexpectedSubprotocol(_) | HandshakeError::UnexpectedExtensions(_) => {
            tidewire_exc(py, "NegotiationError", (text.clone(),), &text)
        }
        HandshakeError::RandomUnavailable => PyOSError::new_err(text),
        _ => tidewire_exc(py, "InvalidHandshake", (text.clone(),), &text),
    }
}

/// The Python exception for a runtime error.
pub fn to_pyerr(py: Python<'_>, e: &Error) -> PyErr {
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
            tidewire_exc(py, "InvalidURI", (what.clone(), text.clone()), &text)
        }
        Error::Resolve { host, error } => class_exc(
            py,
            "socket",
            "gaierror",
            (format!("cannot resolve {host:?}: {error}"),),
            &text,
        ),
        Error::Connect(io) => os_error(py, "connect failed", io),
        Error::Timeout(kind) => PyTimeoutError::new_err(format!("{kind} timed out")),
        Error::Tls(what) => class_exc(py, "ssl", "SSLError", (format!("tls: {what}"),), &text),
        Error::HandshakeRejected {
            status,
            reason,
            headers,
            body,
        } => match crate::events::header_list(py, headers) {
            Ok(headers) => tidewire_exc(
                py,
                "InvalidStatus",
                (*status, reason.clone(), headers, PyBytes::new(py, body)),
                &text,
            ),
            Err(e) => e,
        },
        Error::Handshake(h) => handshake_error(py, h),
        Error::HandshakeEof => tidewire_exc(py, "InvalidMessage", (text.clone(),), &text),
        Error::Extension(_) => tidewire_exc(py, "NegotiationError", (text.clone(),), &text),
        Error::Send(tidewire_net::SendError::Closed) => invalid_state(py, &text),
        Error::Send(_) => tidewire_exc(py, "ProtocolError", (text.clone(),), &text),
        Error::Io(io) => os_error(py, "i/o error", io),
        _ => PyRuntimeError::new_err(text),
    }
}

/// The exception instance (not raised) for an error carried by an event.
pub fn to_exception(py: Python<'_>, e: &Error) -> Py<PyAny> {
    to_pyerr(py, e).into_value(py).into_any()
}
