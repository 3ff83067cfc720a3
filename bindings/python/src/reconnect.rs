//! `ReconnectPolicy` and `Backoff`: tidewire-net's reconnect schedule and its retry
//! classification (`tidewire_net::reconnect`), for `Context.connect(reconnect=...)` and for
//! the reconnecting loops of the blocking and asyncio clients. Nothing is decided here: the
//! policy is validated by net, the delays are net's `Backoff`, and whether an exception is
//! retryable is what net's `classify` said of the error it came from (`errors.rs` marks
//! every exception made from a runtime error).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use tidewire_net::reconnect::{classify, Backoff as NetBackoff, Retry};
use tidewire_net::{Error, ReconnectPolicy as NetPolicy, TimeoutKind};

use crate::convert::duration;
use crate::errors::{to_pyerr, RETRY_ATTR};

/// How to reconnect: exponential backoff with full jitter (each delay drawn from 0 to
/// `initial_delay * 2**(attempt - 1)`, at most `max_delay`, in seconds), `max_attempts`
/// failed attempts in a row (`None`: unlimited), and a connection that stayed open
/// `reset_after` seconds starts the schedule again. Checked by the runtime: `ValueError`
/// out of range.
#[pyclass(module = "tidewire._tidewire", frozen)]
#[derive(Clone)]
pub struct ReconnectPolicy {
    pub(crate) net: NetPolicy,
}

#[pymethods]
impl ReconnectPolicy {
    #[new]
    #[pyo3(signature = (*, initial_delay=1.0, max_delay=30.0, max_attempts=None, reset_after=10.0))]
    fn new(
        py: Python<'_>,
        initial_delay: f64,
        max_delay: f64,
        max_attempts: Option<u32>,
        reset_after: f64,
    ) -> PyResult<Self> {
        let net = NetPolicy {
            initial_delay: duration(initial_delay, "initial_delay")?,
            max_delay: duration(max_delay, "max_delay")?,
            max_attempts,
            reset_after: duration(reset_after, "reset_after")?,
        };
        net.validate().map_err(|e| to_pyerr(py, &e))?;
        Ok(ReconnectPolicy { net })
    }

    #[getter]
    fn initial_delay(&self) -> f64 {
        self.net.initial_delay.as_secs_f64()
    }
    #[getter]
    fn max_delay(&self) -> f64 {
        self.net.max_delay.as_secs_f64()
    }
    #[getter]
    fn max_attempts(&self) -> Option<u32> {
        self.net.max_attempts
    }
    #[getter]
    fn reset_after(&self) -> f64 {
        self.net.reset_after.as_secs_f64()
    }

    /// A new schedule under this policy (`seed`: the same seed gives the same delays).
    #[pyo3(signature = (seed=None))]
    fn backoff(&self, seed: Option<u64>) -> Backoff {
        let b = match seed {
            Some(s) => NetBackoff::with_seed(self.net, s),
            None => NetBackoff::new(self.net),
        };
        Backoff {
            inner: Mutex::new(b),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "ReconnectPolicy(initial_delay={}, max_delay={}, max_attempts={}, reset_after={})",
            self.net.initial_delay.as_secs_f64(),
            self.net.max_delay.as_secs_f64(),
            self.net
                .max_attempts
                .map_or_else(|| "None".to_owned(), |n| n.to_string()),
            self.net.reset_after.as_secs_f64()
        )
    }
}

/// One reconnecting loop's state: the attempt count and when it last opened.
#[pyclass(module = "tidewire._tidewire", frozen)]
pub struct Backoff {
    inner: Mutex<NetBackoff>,
}

impl Backoff {
    fn with<T>(&self, f: impl FnOnce(&mut NetBackoff) -> T) -> T {
        let mut b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut b)
    }
}

/// The runtime's verdict on an exception: the mark `errors.rs` put on exceptions made from
/// runtime errors (on it or on its cause), or, for the asyncio and blocking clients' own
/// `TimeoutError` (`open_timeout`), the verdict on a handshake timeout. Anything else was
/// not raised by the runtime and is not retried.
fn verdict(py: Python<'_>, exc: &Bound<'_, PyAny>) -> PyResult<Retry> {
    let mut current = Some(exc.clone());
    for _ in 0..4 {
        let Some(e) = current else { break };
        if let Ok(mark) = e.getattr(RETRY_ATTR) {
            return Ok(match mark.extract::<Option<f64>>()? {
                None => Retry::Never,
                Some(s) if s > 0.0 => Retry::After(Duration::from_secs_f64(s)),
                Some(_) => Retry::Backoff,
            });
        }
        if e.is_instance_of::<PyTimeoutError>() {
            return Ok(classify(&Error::Timeout(TimeoutKind::Handshake)));
        }
        current = e.getattr("__cause__").ok().filter(|c| !c.is_none());
    }
    let _ = py;
    Ok(Retry::Never)
}

#[pymethods]
impl Backoff {
    /// Attempts made since the last reset.
    #[getter]
    fn attempt(&self) -> u32 {
        self.with(|b| b.attempt())
    }

    /// The connection opened now.
    fn opened(&self) {
        self.with(|b| b.opened(Instant::now()));
    }

    /// The seconds to wait before the next attempt, or `None` when there is none: `exc`
    /// is not retryable (a 4xx, a TLS failure, a bad argument, ...) or `max_attempts` was
    /// reached. `exc=None`: an open connection ended and the loop goes on.
    #[pyo3(signature = (exc=None))]
    fn next_delay(&self, py: Python<'_>, exc: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
        let retry = match exc {
            None => Retry::Backoff,
            Some(e) => verdict(py, e)?,
        };
        Ok(self
            .with(|b| b.next_delay(retry, Instant::now()))
            .map(|d| d.as_secs_f64()))
    }
}
