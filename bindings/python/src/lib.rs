//! `tidewire._tidewire`: the native half of the Python package. Conversion and locking only;
//! every behaviour lives in `tidewire-net`. The pure-Python package `tidewire` builds the
//! blocking and asyncio APIs on the `Context` class defined here, and hands down what the
//! native side needs from it once, at import (`_init`): the native module never imports it.
//!
//! Modules, each using only those listed before it: `convert` (Python <-> Rust values),
//! `errors` (runtime errors -> exceptions), `events` (the event classes), `publish`
//! (`PublishReport`), `reconnect` (`ReconnectPolicy`, `Backoff`), `sender`, `context`, `cluster` (the Redis bridge between processes).

use pyo3::prelude::*;

mod cluster;
mod context;
mod convert;
mod errors;
mod events;
mod publish;
mod reconnect;
mod sender;

#[pymodule]
fn _tidewire(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(errors::_init, m)?)?;
    m.add_class::<context::Context>()?;
    m.add_class::<sender::Sender>()?;
    m.add_class::<publish::PublishReport>()?;
    m.add_class::<reconnect::ReconnectPolicy>()?;
    m.add_class::<reconnect::Backoff>()?;
    m.add_class::<cluster::Cluster>()?;
    m.add_class::<cluster::ClusterStatus>()?;
    m.add_class::<cluster::ClusterStats>()?;
    events::register(m)?;
    Ok(())
}
