//! One compressor per thread and parameter set, shared by every connection that compresses
//! its messages without context takeover.
//!
//! A compressor without context takeover is reset after every message (section 7.1.1.1), so
//! between two messages it holds nothing of the connection that used it: any connection with
//! the same window, level and `mem_level` can use the same one. A server that keeps the
//! default `server_no_context_takeover` therefore pays for one 371 KiB compressor per thread
//! (and parameter set), not one per connection; its compressed connections cost no more than
//! the inflater. It is also what lets a publish compress a message once for all subscribers
//! that agreed on the same parameters (see [`crate::Prepared`]).
//!
//! A message sent in fragments (`Connection::begin_message`) keeps the compressor across
//! calls, so it uses the connection's own compressor; so does a connection with context
//! takeover, whose compressor is its history.

use std::cell::RefCell;

use super::codec::{
    Compressor, DeflateError, MAX_MEM_LEVEL, MIN_MEM_LEVEL, SMALLEST_DEFLATE_WINDOW,
};
use super::config::MAX_WINDOW_BITS;

/// What makes two compressors interchangeable: the window actually used, the level and the
/// `mem_level`, as [`Compressor::with_window`] takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CompressorKey {
    pub(crate) bits: u8,
    pub(crate) level: u8,
    pub(crate) mem_level: u8,
}

impl CompressorKey {
    /// The key of a compressor for a window of `bits`, clamped as the compressor clamps it.
    pub(crate) fn new(bits: u8, level: u32, mem_level: u8) -> CompressorKey {
        CompressorKey {
            bits: bits.clamp(SMALLEST_DEFLATE_WINDOW, MAX_WINDOW_BITS),
            level: level.min(9) as u8,
            mem_level: mem_level.clamp(MIN_MEM_LEVEL, MAX_MEM_LEVEL),
        }
    }
}

thread_local! {
    /// Few entries (usually one): a linear search is the fastest map.
    static SHARED: RefCell<Vec<(CompressorKey, Compressor)>> = const { RefCell::new(Vec::new()) };
}

/// Appends one whole message, compressed as by [`Compressor::compress`] with `fin`, to `out`,
/// using this thread's compressor for `key` (created at first use).
pub(crate) fn compress_message(
    key: CompressorKey,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), DeflateError> {
    SHARED.with(|shared| {
        let mut shared = shared.borrow_mut();
        let index = match shared.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                let c =
                    Compressor::with_window(key.bits, true, u32::from(key.level), key.mem_level);
                shared.push((key, c));
                shared.len() - 1
            }
        };
        let result = shared[index].1.compress(input, true, out);
        if result.is_err() {
            // The stream's state is unknown after an internal error: start afresh next time.
            shared.swap_remove(index);
        }
        result
    })
}

/// How many shared compressors this thread holds (tests and memory accounting).
pub fn shared_compressors() -> usize {
    SHARED.with(|shared| shared.borrow().len())
}

/// Frees this thread's shared compressors; the next message compressed without context
/// takeover creates its compressor again. For a thread that will not compress for a long
/// while.
pub fn release_shared_compressors() {
    SHARED.with(|shared| shared.borrow_mut().clear());
}
