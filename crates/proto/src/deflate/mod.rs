//! permessage-deflate (RFC 7692): negotiation and the per-message codec.
//!
//! * Client: send [`client_offer`] as `Sec-WebSocket-Extensions`; if the 101 response carries
//!   that header, [`client_accept`] checks it and gives the [`DeflateParams`] (an error fails
//!   the connection).
//! * Server: [`server_negotiate`] picks the first acceptable offer and gives the params and the
//!   header value to answer with (`Ok(None)`: answer without the header).
//! * Then, on both sides, one [`Compressor`] for outgoing and one [`Decompressor`] for incoming
//!   messages, created only when compression was agreed. The first frame of a compressed
//!   message carries RSV1; messages shorter than [`DeflateConfig::threshold`] go out
//!   uncompressed (RSV1 clear), which needs no agreement.
//!
//! # Memory per connection
//!
//! Measured with a counting allocator (tests `memory_per_codec_is_what_the_docs_say` and
//! `mem_level_is_applied_to_the_compressor`; zlib-rs 0.6):
//!
//! | state | window 15 | window 12 | window 9 (and 8) |
//! | --- | --- | --- | --- |
//! | [`Compressor`], `mem_level` 8 (default) | 371 KiB | 259 KiB | 245 KiB |
//! | [`Compressor`], `mem_level` 5 | 273 KiB | 161 KiB | 147 KiB |
//! | [`Compressor`], `mem_level` 1 | 260 KiB | 148 KiB | 134 KiB |
//! | [`Decompressor`] | 46 KiB | 46 KiB | 46 KiB |
//!
//! The compressor holds a sliding buffer of two windows, a 2-byte chain link per window
//! position, a 128 KiB hash table and `7 * 2^(mem_level + 6)` bytes of symbol and pending
//! buffers (112 KiB at `mem_level` 8, 14 KiB at 5, 896 bytes at 1). zlib scales its hash table
//! with `mem_level` too; zlib-rs keeps 64 Ki entries whatever the level, so `mem_level` only
//! shrinks those buffers, by 111 KiB at most, and the hash table sets the floor: 134 KiB for the
//! smallest compressor. A smaller buffer ends deflate blocks sooner: at level 1 (static codes)
//! that changed nothing we could measure, at level 6 one 300 KB text went from 23.8% of its size
//! and 83 MB/s at `mem_level` 8 to 24.0% and 78 MB/s at 5 and 26.8% and 44 MB/s at 1 (release
//! build); messages of a few hundred bytes fit a block at any level and do not change.
//! The inflater always allocates a 32 KiB window plus its tables, whatever window the peer
//! uses, so asking peers for small windows saves nothing here; a server that must hold many
//! compressed connections saves most with a smaller `server_max_window_bits` and `mem_level`.
//!
//! Time per message is deflate's own, plus, without context takeover, a reset that clears the
//! 128 KiB hash table: a two-byte message costs 54 ns with takeover and 1.2 µs without
//! (release build). Resetting the inflater is cheap (no allocation, no clearing).
//!
//! # Defaults
//!
//! [`DeflateConfig::default`]: level 1, mem_level 8, threshold 32 bytes, window sizes and
//! context takeover left at the RFC's defaults (15 bits, takeover allowed); each field's
//! documentation says why.

mod codec;
mod config;
mod extlist;
mod negotiate;
#[cfg(test)]
mod reference;
pub(crate) mod shared;

pub use codec::{Compressor, Decompressor, DeflateError};
pub use config::{ConfigError, DeflateConfig, DeflateParams};
pub use negotiate::{client_accept, client_offer, server_negotiate, NegotiationError};
pub use shared::{release_shared_compressors, shared_compressors};

/// The extension token (RFC 7692 section 7).
pub const EXTENSION_NAME: &str = "permessage-deflate";
