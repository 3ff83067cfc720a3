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
//! Measured with a counting allocator (test `memory_per_codec_is_what_the_docs_say`), with the
//! flate2 zlib-rs backend, which fixes `mem_level` at 8:
//!
//! | state | window 15 | window 12 | window 9 (and 8) |
//! | --- | --- | --- | --- |
//! | [`Compressor`] | 371 KiB | 259 KiB | 245 KiB |
//! | [`Decompressor`] | 46 KiB | 46 KiB | 46 KiB |
//!
//! The compressor holds a sliding buffer of two windows, a 2-byte chain link per window
//! position, a 128 KiB hash table (fixed in zlib-rs; zlib scales it with `mem_level`) and
//! 112 KiB of literal buffers (`7 * 2^(mem_level + 6)`; 14 KiB at `mem_level` 5, once it can be
//! set). The inflater always allocates a 32 KiB window plus its tables, whatever window the peer
//! uses, so asking peers for small windows saves nothing here; a server that must hold many
//! compressed connections saves most with a smaller `server_max_window_bits`.
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

pub use codec::{Compressor, Decompressor, DeflateError};
pub use config::{ConfigError, DeflateConfig, DeflateParams};
pub use negotiate::{client_accept, client_offer, server_negotiate, NegotiationError};

/// The extension token (RFC 7692 section 7).
pub const EXTENSION_NAME: &str = "permessage-deflate";
