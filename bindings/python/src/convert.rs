//! Conversions between Python and Rust values, in both directions: seconds to `Duration`,
//! message payloads, header lists, addresses, the compression setting. Every other module
//! takes its Python arguments and builds its Python results through these.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyMemoryView, PyString, PyTuple};
use tidewire_net::{server_deflate_default, DeflateConfig, Header, SlowAction, SlowSubscriber};

/// Seconds as a `Duration`; `what` names the argument in the error.
pub fn duration(seconds: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        PyValueError::new_err(format!("{what} must be a non-negative number of seconds"))
    })
}

/// `None`, or seconds as a `Duration`.
pub fn opt_duration(seconds: Option<f64>, what: &str) -> PyResult<Option<Duration>> {
    seconds.map(|s| duration(s, what)).transpose()
}

/// The `compression` argument of `connect`: `"deflate"` (RFC 7692's defaults) or `None`.
pub fn deflate(compression: Option<&str>) -> PyResult<Option<DeflateConfig>> {
    deflate_with(compression, DeflateConfig::default)
}

/// The `compression` argument of `listen`: `"deflate"` (the runtime's listener default,
/// `server_deflate_default`: no server context takeover, so that a publish compresses a
/// message once for all its subscribers) or `None`.
pub fn server_deflate(compression: Option<&str>) -> PyResult<Option<DeflateConfig>> {
    deflate_with(compression, server_deflate_default)
}

fn deflate_with(
    compression: Option<&str>,
    settings: fn() -> DeflateConfig,
) -> PyResult<Option<DeflateConfig>> {
    match compression {
        None => Ok(None),
        Some("deflate") => Ok(Some(settings())),
        Some(other) => Err(PyValueError::new_err(format!(
            "unsupported compression {other:?}: use \"deflate\" or None"
        ))),
    }
}

/// The `slow_subscriber` argument: `None` (the runtime's default) or `(limit, action)` with
/// `action` `"skip"` or `"close"`. The limit's range is the runtime's to check.
pub fn slow_subscriber(value: Option<(usize, String)>) -> PyResult<SlowSubscriber> {
    let Some((limit, action)) = value else {
        return Ok(SlowSubscriber::default());
    };
    let action = match action.as_str() {
        "skip" => SlowAction::Skip,
        "close" => SlowAction::Close,
        other => {
            return Err(PyValueError::new_err(format!(
                "unsupported slow subscriber action {other:?}: use \"skip\" or \"close\""
            )))
        }
    };
    Ok(SlowSubscriber { limit, action })
}

/// A topic: any bytes, `str` as UTF-8.
pub fn topic<'a>(value: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if !(value.is_instance_of::<PyString>()
        || value.is_instance_of::<PyBytes>()
        || value.is_instance_of::<PyByteArray>()
        || value.is_instance_of::<PyMemoryView>())
    {
        return Err(PyTypeError::new_err(format!(
            "topic must be str or bytes-like, not {}",
            value.get_type().name()?
        )));
    }
    payload_bytes(value)
}

/// A message to send: text for `str`, binary for bytes-like objects.
pub enum Payload<'a> {
    Text(Cow<'a, str>),
    Binary(Cow<'a, [u8]>),
}

/// A message from Python: `str`, `bytes`, `bytearray` or `memoryview`.
pub fn payload<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<Payload<'a>> {
    if let Ok(s) = data.cast::<PyString>() {
        return Ok(Payload::Text(s.to_cow()?));
    }
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(Payload::Binary(Cow::Borrowed(b.as_bytes())));
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        return Ok(Payload::Binary(Cow::Owned(b.to_vec())));
    }
    if data.is_instance_of::<PyMemoryView>() {
        let bytes = data.py().get_type::<PyBytes>().call1((data,))?;
        return Ok(Payload::Binary(Cow::Owned(
            bytes.cast::<PyBytes>()?.as_bytes().to_vec(),
        )));
    }
    Err(PyTypeError::new_err(format!(
        "data must be str or bytes-like, not {}",
        data.get_type().name()?
    )))
}

/// The bytes of a payload whatever its type (`str` as UTF-8): pings, fragments, bodies.
pub fn payload_bytes<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    Ok(match payload(data)? {
        Payload::Text(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
        Payload::Text(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
        Payload::Binary(b) => b,
    })
}

/// `payload_bytes`, with `None` as no bytes.
pub fn opt_payload_bytes<'a>(data: Option<&'a Bound<'_, PyAny>>) -> PyResult<Cow<'a, [u8]>> {
    match data {
        None => Ok(Cow::Borrowed(&[])),
        Some(d) => payload_bytes(d),
    }
}

/// Header lists from Python: a mapping or an iterable of `(name, value)` pairs.
pub fn header_pairs(headers: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(h) = headers else {
        return Ok(Vec::new());
    };
    let items = if h.hasattr("items")? && !h.is_instance_of::<PyList>() {
        h.call_method0("items")?
    } else {
        h.clone()
    };
    let mut out = Vec::new();
    for item in items.try_iter()? {
        let (name, value): (String, String) = item?.extract()?;
        out.push((name, value));
    }
    Ok(out)
}

/// Borrowed `(name, value)` pairs, as the runtime takes them.
pub fn header_refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// Header values are bytes on the wire; decoded as Latin-1 so that no value is lost (what
/// `http.client` does too).
fn latin1(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if s.is_ascii() => s.to_owned(),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Headers as a list of `(name, value)` pairs, values decoded as Latin-1.
pub fn header_list(py: Python<'_>, headers: &[Header]) -> PyResult<Py<PyList>> {
    let list = PyList::empty(py);
    for h in headers {
        list.append((h.name.as_str(), latin1(&h.value)))?;
    }
    Ok(list.unbind())
}

/// An address as `(host, port)`.
pub fn addr_tuple<'py>(py: Python<'py>, addr: &SocketAddr) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            addr.ip().to_string().into_pyobject(py)?.into_any(),
            addr.port().into_pyobject(py)?.into_any(),
        ],
    )
}
