//! `PublishReport`: what one `Context.publish` or `Context.broadcast` did, as a frozen value
//! with the five counts of `tidewire_net::PublishReport`.

use pyo3::prelude::*;

/// What one publish or broadcast did: `delivered` (queued or written), `skipped_slow` and
/// `closed_slow` (slow subscribers, per the listener's `slow_subscriber` policy), `not_open`
/// (connections that could not take a message: not open yet, closing, gone, or in the middle
/// of a fragmented message of their own) and `compressions` (how many times the payload was
/// compressed for them all). Reports add up with `+`.
#[pyclass(module = "tidewire._tidewire", frozen, get_all, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublishReport {
    delivered: usize,
    skipped_slow: usize,
    closed_slow: usize,
    not_open: usize,
    compressions: usize,
}

impl From<tidewire_net::PublishReport> for PublishReport {
    fn from(r: tidewire_net::PublishReport) -> Self {
        PublishReport {
            delivered: r.delivered,
            skipped_slow: r.skipped_slow,
            closed_slow: r.closed_slow,
            not_open: r.not_open,
            compressions: r.compressions,
        }
    }
}

#[pymethods]
impl PublishReport {
    #[new]
    #[pyo3(signature = (*, delivered=0, skipped_slow=0, closed_slow=0, not_open=0, compressions=0))]
    fn new(
        delivered: usize,
        skipped_slow: usize,
        closed_slow: usize,
        not_open: usize,
        compressions: usize,
    ) -> PublishReport {
        PublishReport {
            delivered,
            skipped_slow,
            closed_slow,
            not_open,
            compressions,
        }
    }

    fn __add__(&self, other: &Bound<'_, PyAny>) -> Option<PublishReport> {
        let other = other.cast::<PublishReport>().ok()?.get();
        Some(PublishReport {
            delivered: self.delivered + other.delivered,
            skipped_slow: self.skipped_slow + other.skipped_slow,
            closed_slow: self.closed_slow + other.closed_slow,
            not_open: self.not_open + other.not_open,
            compressions: self.compressions + other.compressions,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "PublishReport(delivered={}, skipped_slow={}, closed_slow={}, not_open={}, \
             compressions={})",
            self.delivered, self.skipped_slow, self.closed_slow, self.not_open, self.compressions
        )
    }
}
