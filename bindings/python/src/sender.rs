//! `Sender`: the thread-safe handle of a context. Its calls queue a command and wake the
//! context's `poll`, which applies it on the context's own thread.

use pyo3::prelude::*;
use tidewire_net::{ConnId, MessageKind};

use crate::convert::{payload, topic, Payload};
use crate::errors::to_pyerr;

/// Sends to and closes connections of one `Context` from any thread. Failures to apply a
/// command come back as `SendFailedEvent`s from the context's `poll`.
#[pyclass(module = "tidewire._tidewire", frozen)]
pub struct Sender {
    inner: tidewire_net::Sender,
}

impl Sender {
    pub fn new(inner: tidewire_net::Sender) -> Sender {
        Sender { inner }
    }

    /// The net `Sender` (for a cluster bridge's targets).
    pub(crate) fn net_sender(&self) -> tidewire_net::Sender {
        self.inner.clone()
    }
}

#[pymethods]
impl Sender {
    /// Queues a message: text for `str`, binary for bytes-like objects.
    fn send(&self, py: Python<'_>, conn: u64, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let result = match payload(data)? {
            Payload::Text(text) => self.inner.send_text(ConnId(conn), text.into_owned()),
            Payload::Binary(bytes) => self.inner.send_binary(ConnId(conn), bytes.into_owned()),
        };
        result.map_err(|e| to_pyerr(py, &e))
    }

    /// Publishes a message to every subscriber of `topic` (`str` as UTF-8, or bytes-like):
    /// text for `str`, binary for bytes-like objects. Applied by the context's next `poll`;
    /// its report is not returned.
    fn publish(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let topic = self::topic(topic)?.into_owned();
        let (kind, data) = match payload(data)? {
            Payload::Text(text) => (MessageKind::Text, text.into_owned().into_bytes()),
            Payload::Binary(bytes) => (MessageKind::Binary, bytes.into_owned()),
        };
        self.inner
            .publish(topic, kind, data)
            .map_err(|e| to_pyerr(py, &e))
    }

    /// Queues a ping (at most 125 bytes).
    #[pyo3(signature = (conn, data=None))]
    fn ping(&self, py: Python<'_>, conn: u64, data: Option<&[u8]>) -> PyResult<()> {
        self.inner
            .ping(ConnId(conn), data.unwrap_or_default().to_vec())
            .map_err(|e| to_pyerr(py, &e))
    }

    /// Starts the closing handshake.
    #[pyo3(signature = (conn, code=1000, reason=""))]
    fn close(&self, py: Python<'_>, conn: u64, code: u16, reason: &str) -> PyResult<()> {
        self.inner
            .close(ConnId(conn), code, reason)
            .map_err(|e| to_pyerr(py, &e))
    }

    /// Makes the context's current or next `poll` return soon with a `WakeEvent`.
    fn wake(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.wake().map_err(|e| to_pyerr(py, &e))
    }
}
