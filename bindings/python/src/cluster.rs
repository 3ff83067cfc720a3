//! `Cluster`: `tidewire_net::Cluster`, the bridge that carries topic publishes between server
//! processes over Redis pub/sub, with `ClusterStatus` (what its callback hears) and
//! `ClusterStats` (its counters).
//!
//! The bridge runs on two threads of net's. Publishes from other nodes go straight to the
//! given contexts' `Sender`s (applied at each context's next `poll`), so no Python code runs
//! for them. The status callback is the one place where a bridge thread runs Python: it
//! attaches to the interpreter (takes the GIL) for the call, and skips it when the
//! interpreter is finalizing. Because of that callback, every call that stops the bridge
//! (`close`, and dropping an unclosed bridge) waits for the threads with the GIL released.

use std::sync::Mutex;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use tidewire_net::{ClusterOptions, Error, MessageKind};

use crate::context::Context;
use crate::convert::{duration, payload, topic, Payload};
use crate::errors::{invalid_state, to_pyerr};
use crate::sender::Sender;

/// What a cluster's `on_status` callback hears: `kind` is `"connected"` (both links to Redis
/// up, the first time), `"interrupted"` (cross-node delivery stopped; `reason` says which
/// link failed and why) or `"resumed"` (both links up again). `reason` is `""` except for
/// `"interrupted"`.
#[pyclass(module = "tidewire._tidewire", frozen, get_all, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    kind: String,
    reason: String,
}

impl From<tidewire_net::ClusterStatus> for ClusterStatus {
    fn from(status: tidewire_net::ClusterStatus) -> Self {
        let (kind, reason) = match status {
            tidewire_net::ClusterStatus::Connected => ("connected", String::new()),
            tidewire_net::ClusterStatus::Interrupted(why) => ("interrupted", why),
            tidewire_net::ClusterStatus::Resumed => ("resumed", String::new()),
        };
        ClusterStatus {
            kind: kind.to_owned(),
            reason,
        }
    }
}

#[pymethods]
impl ClusterStatus {
    fn __repr__(&self) -> String {
        if self.reason.is_empty() {
            format!("ClusterStatus(kind={:?})", self.kind)
        } else {
            format!(
                "ClusterStatus(kind={:?}, reason={:?})",
                self.kind, self.reason
            )
        }
    }
}

/// Counters of a cluster: `sent` (messages this node published to Redis), `received`
/// (messages of other nodes handed to the contexts), `dropped` (messages of this node lost:
/// the queue was full or Redis unreachable), `malformed` (foreign messages on the channel,
/// ignored).
#[pyclass(module = "tidewire._tidewire", frozen, get_all, eq)]
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterStats {
    sent: u64,
    received: u64,
    dropped: u64,
    malformed: u64,
}

impl From<tidewire_net::ClusterStats> for ClusterStats {
    fn from(s: tidewire_net::ClusterStats) -> Self {
        ClusterStats {
            sent: s.sent,
            received: s.received,
            dropped: s.dropped,
            malformed: s.malformed,
        }
    }
}

#[pymethods]
impl ClusterStats {
    fn __repr__(&self) -> String {
        format!(
            "ClusterStats(sent={}, received={}, dropped={}, malformed={})",
            self.sent, self.received, self.dropped, self.malformed
        )
    }
}

struct Inner {
    bridge: Option<tidewire_net::Cluster>,
    /// The counters when the bridge was closed.
    last_stats: ClusterStats,
}

/// This process's node of a cluster of servers joined through Redis pub/sub.
#[pyclass(module = "tidewire._tidewire", frozen)]
pub struct Cluster {
    inner: Mutex<Inner>,
    node_id: u64,
}

impl Cluster {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Held only for calls that never wait (no Python, no I/O): no GIL dance needed.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The net `Sender` of a target: a `Context` or a `Sender`.
fn target_sender(py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<tidewire_net::Sender> {
    if let Ok(ctx) = target.cast::<Context>() {
        let ctx = ctx.get();
        if ctx.is_freed() {
            return Err(invalid_state(py, "the context was freed"));
        }
        return Ok(ctx.net_sender());
    }
    if let Ok(sender) = target.cast::<Sender>() {
        return Ok(sender.get().net_sender());
    }
    Err(PyTypeError::new_err(format!(
        "cluster targets must be Context or Sender objects, not {}",
        target.get_type().name()?
    )))
}

#[pymethods]
impl Cluster {
    /// Starts the bridge. `targets`: the contexts (or their senders) that publishes from
    /// other nodes are delivered to. A URL that is not a Redis URL raises `InvalidURI`; an
    /// unreachable Redis does not raise (the bridge keeps trying, and says so through
    /// `on_status`).
    #[new]
    #[pyo3(signature = (url, targets, *, on_status=None, channel="tidewire",
        backoff_initial=0.1, backoff_max=5.0, connect_timeout=2.0, queue_limit=10_000))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        targets: &Bound<'_, PyAny>,
        on_status: Option<Bound<'_, PyAny>>,
        channel: &str,
        backoff_initial: f64,
        backoff_max: f64,
        connect_timeout: f64,
        queue_limit: usize,
    ) -> PyResult<Cluster> {
        let mut senders = Vec::new();
        for target in targets.try_iter()? {
            senders.push(target_sender(py, &target?)?);
        }
        let callback = match on_status {
            Some(c) if !c.is_callable() => {
                return Err(PyTypeError::new_err("on_status must be callable"))
            }
            c => c.map(Bound::unbind),
        };
        let options = ClusterOptions {
            url,
            channel: channel.to_owned(),
            backoff_initial: duration(backoff_initial, "backoff_initial")?,
            backoff_max: duration(backoff_max, "backoff_max")?,
            connect_timeout: duration(connect_timeout, "connect_timeout")?,
            queue_limit,
        };
        let tell = move |status: tidewire_net::ClusterStatus| {
            let Some(callback) = &callback else {
                return;
            };
            // On a bridge thread: take the GIL for the call (none while finalizing).
            Python::try_attach(|py| {
                let called = Py::new(py, ClusterStatus::from(status))
                    .and_then(|status| callback.call1(py, (status,)));
                if let Err(e) = called {
                    e.write_unraisable(py, Some(callback.bind(py)));
                }
            });
        };
        // Released: a bridge thread that started may already want the GIL for the callback,
        // and a failed start joins it.
        let started = py.detach(|| tidewire_net::Cluster::start(options, senders, tell));
        let bridge = started.map_err(|e| to_pyerr(py, &e))?;
        Ok(Cluster {
            node_id: bridge.node_id(),
            inner: Mutex::new(Inner {
                bridge: Some(bridge),
                last_stats: ClusterStats::default(),
            }),
        })
    }

    /// This node's id (random per start), carried in every message it sends.
    #[getter]
    fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Sends a publish to the other nodes (publish on this node's contexts yourself).
    /// Queued for the bridge's thread; returns False when the queue is full (the message is
    /// dropped for the other nodes and counted in `stats().dropped`). While Redis is
    /// unreachable messages are dropped the same way. Raises `InvalidState` once closed.
    fn publish(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let topic = self::topic(topic)?;
        let (kind, data) = match payload(data)? {
            Payload::Text(text) => (MessageKind::Text, text.into_owned().into_bytes()),
            Payload::Binary(bytes) => (MessageKind::Binary, bytes.into_owned()),
        };
        let inner = self.lock();
        let Some(bridge) = inner.bridge.as_ref() else {
            return Err(invalid_state(py, "the cluster was closed"));
        };
        match bridge.publish(&topic, kind, &data) {
            Ok(()) => Ok(true),
            Err(Error::BufferFull { .. }) => Ok(false),
            Err(e) => Err(to_pyerr(py, &e)),
        }
    }

    /// Whether both links to Redis are up now (False once closed).
    fn is_connected(&self) -> bool {
        self.lock()
            .bridge
            .as_ref()
            .is_some_and(|b| b.is_connected())
    }

    /// The bridge's counters (their last values once closed).
    fn stats(&self) -> ClusterStats {
        let inner = self.lock();
        match inner.bridge.as_ref() {
            Some(bridge) => bridge.stats().into(),
            None => inner.last_stats,
        }
    }

    /// Stops the bridge and waits for its threads (up to about `connect_timeout` when a
    /// connection attempt is under way), with the GIL released. Calling it twice is harmless.
    fn close(&self, py: Python<'_>) {
        let bridge = {
            let mut inner = self.lock();
            let bridge = inner.bridge.take();
            if let Some(b) = bridge.as_ref() {
                inner.last_stats = b.stats().into();
            }
            bridge
        };
        if let Some(bridge) = bridge {
            py.detach(|| drop(bridge));
        }
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.lock().bridge.is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, py: Python<'_>, _exc_info: &Bound<'_, pyo3::types::PyTuple>) {
        self.close(py);
    }

    fn __repr__(&self) -> String {
        let inner = self.lock();
        let state = match inner.bridge.as_ref() {
            None => "closed",
            Some(b) if b.is_connected() => "connected",
            Some(_) => "disconnected",
        };
        format!("<Cluster node={:#018x} {state}>", self.node_id)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let bridge = self
            .inner
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .bridge
            .take();
        if let Some(bridge) = bridge {
            // The bridge's threads may be waiting for the GIL (status callback): release it
            // while they are joined, when this thread holds it.
            let mut bridge = Some(bridge);
            Python::try_attach(|py| {
                let b = bridge.take();
                py.detach(|| drop(b));
            });
            drop(bridge);
        }
    }
}
