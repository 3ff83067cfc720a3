//! The per-message codec (RFC 7692 section 7.2) over zlib-rs: its own API for deflate, because
//! flate2 cannot set `mem_level`, and flate2 (on the same zlib-rs) for inflate.
//!
//! Each message is deflated with a sync flush, which ends the data with an empty stored block
//! (`00 00 ff ff` once byte-aligned); the sender strips those four bytes and the receiver puts
//! them back. Without context takeover the stream is reset after each message; with it the LZ77
//! window carries over, so the peer's inflater must see every compressed message in order.

use std::fmt;

use flate2::{Decompress, FlushDecompress, Status};
use zlib_rs::{Deflate, DeflateFlush};

use super::config::DeflateParams;
use crate::Role;

/// The LEN/NLEN half of the empty stored block a sync flush ends with (section 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// zlib's deflate cannot run with a 256-byte window; see [`Compressor::new`].
pub(crate) const SMALLEST_DEFLATE_WINDOW: u8 = 9;

/// zlib's range for `memLevel` (deflateInit2).
pub(crate) const MIN_MEM_LEVEL: u8 = 1;
pub(crate) const MAX_MEM_LEVEL: u8 = 9;

/// Output reserved when `out` is full and the inflated size is unknown.
const MIN_INFLATE_GROWTH: usize = 4096;

/// Deflate streams one message may start after a BFINAL block. Each restart costs a reset
/// (~35 ns with zlib-rs) for as little as two bytes of input (`03 00`, an empty final block),
/// so a message made of them costs about 18 ms per MiB, ten to forty times a normal message
/// of the same size. Senders that end every flush with BFINAL (section 7.2.3.4) restart once
/// per fragment; this leaves them thousands of fragments per message.
const MAX_STREAMS_PER_MESSAGE: u32 = 4096;

/// Why a message could not be (de)compressed. The connection fails with 1009 for
/// [`TooBig`](DeflateError::TooBig) and 1007 for [`Corrupt`](DeflateError::Corrupt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeflateError {
    /// The inflated message would exceed the caller's limit.
    TooBig,
    /// The peer sent data that is not valid DEFLATE, or a back-reference to history this
    /// inflater does not have.
    Corrupt,
    /// The message restarted the deflate stream (a BFINAL block followed by more data) more
    /// than 4096 times: nothing invalid, but work out of proportion to the data. The connection
    /// fails, with 1008 (policy violation) if it can name the reason, else as for `Corrupt`.
    TooManyStreams,
    /// zlib reported an internal error while compressing; the compressor is unusable.
    Compress,
}

impl fmt::Display for DeflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeflateError::TooBig => "inflated message exceeds the size limit",
            DeflateError::Corrupt => "invalid compressed data",
            DeflateError::TooManyStreams => "too many deflate streams in one message",
            DeflateError::Compress => "deflate failed",
        })
    }
}

impl std::error::Error for DeflateError {}

/// Compresses the messages one endpoint sends. One per connection, created only once
/// permessage-deflate was agreed: it allocates 371 KiB with a 15-bit window and `mem_level` 8,
/// 260 KiB with `mem_level` 1 (see the module documentation).
pub struct Compressor {
    /// zlib-rs's safe deflate state; dropping it ends the stream and frees its one allocation.
    stream: Deflate,
    /// Reset after every message (our side agreed to no context takeover).
    reset_after_message: bool,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("reset_after_message", &self.reset_after_message)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor for `role`'s outgoing messages: a server uses the `server_*` parameters,
    /// a client the `client_*` ones. `level` above 9 is treated as 9.
    ///
    /// `mem_level` (1 to 9; values outside are clamped) sizes deflate's symbol and pending
    /// buffers, `7 * 2^(mem_level + 6)` bytes together, and so how many symbols a deflate block
    /// holds before it is emitted. zlib-rs keeps its hash table at 64 Ki entries whatever the
    /// `mem_level` (zlib would shrink it too), so going from 8 to 1 saves 111 KiB and no more.
    ///
    /// A window of 8 bits is compressed with a 9-bit deflate window. zlib (and zlib-rs) refuse
    /// 8 for raw deflate because of an old bug in their 256-byte window, but their deflate never
    /// emits a distance above `2^bits - 262` (`MAX_DIST`: the window minus the longest match
    /// and its lookahead), which for 9 bits is 250. Every back-reference therefore fits the
    /// 256-byte window the peer agreed to inflate with, and the output is valid for an 8-bit
    /// agreement (the test `window_bits_8_output_never_reaches_back_beyond_256_bytes` checks
    /// this with an independent decoder). Autobahn and python-websockets ask for 8 in their
    /// tests; declining would lose compression for those peers.
    pub fn new(params: &DeflateParams, role: Role, level: u32, mem_level: u8) -> Compressor {
        let (bits, no_context_takeover) = match role {
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
            ),
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
            ),
        };
        Compressor::with_window(bits, no_context_takeover, level, mem_level)
    }

    /// A compressor for a window of `bits` (8 to 15), reset after every message when
    /// `no_context_takeover`.
    pub(crate) fn with_window(
        bits: u8,
        no_context_takeover: bool,
        level: u32,
        mem_level: u8,
    ) -> Compressor {
        let bits = bits.clamp(SMALLEST_DEFLATE_WINDOW, super::config::MAX_WINDOW_BITS);
        let config = zlib_rs::DeflateConfig {
            // At most 9, so the cast is exact.
            level: level.min(9) as i32,
            // Negative: raw deflate, without the zlib header and checksum.
            window_bits: -i32::from(bits),
            mem_level: i32::from(mem_level.clamp(MIN_MEM_LEVEL, MAX_MEM_LEVEL)),
            ..zlib_rs::DeflateConfig::default()
        };
        // Every field is in the range zlib-rs accepts, so this only fails (panics) when the
        // allocation does, as flate2 and `Vec` do.
        Compressor {
            stream: Deflate::new_with_config(config),
            reset_after_message: no_context_takeover,
        }
    }

    /// Appends the compressed form of one whole message (or one piece of a streamed message)
    /// to `out`.
    ///
    /// Every piece ends with a sync flush, so the peer can inflate what it has received so far.
    /// `fin`: last piece of the message: the trailing `00 00 ff ff` is stripped (section 7.2.1)
    /// and, without context takeover, the stream is reset. An empty last piece after flushed
    /// pieces becomes the single byte `00`, which the peer's appended tail completes into an
    /// empty stored block (section 7.2.3.6); so does an empty message.
    ///
    /// Reserves about `input.len() * 9 / 8 + 16` bytes, so one deflate call usually suffices and
    /// nothing is allocated when `out` already has that capacity.
    pub fn compress(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), DeflateError> {
        let start = out.len();
        out.reserve(max_compressed_len(input.len()));
        let mut rest = input;
        loop {
            let out_before = out.len();
            let consumed = self.sync_flush(rest, out)?;
            rest = rest.get(consumed..).unwrap_or_default();
            // A sync flush is complete once all input is taken and the output did not fill up
            // (zlib manual, deflate()); otherwise call again with more room.
            if rest.is_empty() && out.len() < out.capacity() {
                break;
            }
            if consumed == 0 && out.len() == out_before && out.len() < out.capacity() {
                return Err(DeflateError::Compress);
            }
            out.reserve(max_compressed_len(rest.len()));
        }
        if fin {
            let produced = out.get(start..).unwrap_or_default();
            if produced.is_empty() {
                // Already flushed and nothing new: deflate wrote nothing.
                out.push(0x00);
            } else if produced.ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            } else {
                // A completed sync flush always ends with the empty stored block.
                return Err(DeflateError::Compress);
            }
            if self.reset_after_message {
                self.stream.reset();
            }
        }
        Ok(())
    }

    /// One deflate call with a sync flush, writing into the spare capacity of `out` (never
    /// allocating); returns how many bytes of `input` it took. zlib's "no progress possible"
    /// (`Z_BUF_ERROR`, e.g. a second flush with nothing new) is not an error here: the caller
    /// sees that nothing moved.
    fn sync_flush(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, DeflateError> {
        let in_before = self.stream.total_in();
        let out_before = self.stream.total_out();
        let spare = out.spare_capacity_mut();
        let space = spare.len();
        let result = self
            .stream
            .compress_uninit(input, spare, DeflateFlush::SyncFlush);
        let written = delta(out_before, self.stream.total_out()).min(space);
        // SAFETY: deflate initialised the first `written` bytes of the spare capacity (its
        // output count), and `written` is at most the slice it was given.
        unsafe { out.set_len(out.len() + written) };
        result.map_err(|_| DeflateError::Compress)?;
        Ok(delta(in_before, self.stream.total_in()))
    }
}

/// Inflates the messages one endpoint receives. One per connection, created only once
/// permessage-deflate was agreed: it allocates 46 KiB whatever the window size (see the module
/// documentation).
pub struct Decompressor {
    stream: Decompress,
    /// Reset after every message (the peer agreed to no context takeover).
    reset_after_message: bool,
    /// The current message hit a block with BFINAL set: the deflate stream ended and the next
    /// byte starts a new one (section 7.2.3.4).
    stream_ended: bool,
    /// Bytes of the current message fed so far are zero: an empty payload.
    message_empty: bool,
    /// Deflate streams restarted in the current message.
    restarts: u32,
}

impl fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decompressor")
            .field("reset_after_message", &self.reset_after_message)
            .finish_non_exhaustive()
    }
}

impl Decompressor {
    /// An inflater for the messages `role` receives: a server uses the `client_*` parameters,
    /// a client the `server_*` ones.
    ///
    /// It always inflates with a 15-bit window, which accepts every window the peer may use:
    /// zlib-rs allocates 32 KiB of inflate window whatever the size asked for, and resetting a
    /// 15-bit inflater costs no allocation, while flate2 rebuilds any other size on reset.
    pub fn new(params: &DeflateParams, role: Role) -> Decompressor {
        let no_context_takeover = match role {
            Role::Server => params.client_no_context_takeover,
            Role::Client => params.server_no_context_takeover,
        };
        Decompressor {
            stream: Decompress::new(false),
            reset_after_message: no_context_takeover,
            stream_ended: false,
            message_empty: true,
            restarts: 0,
        }
    }

    /// Inflates one chunk of a compressed message (chunks as they arrive, possibly partial
    /// frames), appending to `out`.
    ///
    /// Never lets `out` grow past `limit` bytes in total: returns [`DeflateError::TooBig`] as
    /// soon as the output would exceed it, after producing at most `limit` bytes, so a
    /// decompression bomb costs at most `limit` bytes of work. Reserves only when `out` is full.
    pub fn decompress(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        if !input.is_empty() {
            self.message_empty = false;
        }
        self.inflate(input, out, limit)
    }

    /// End of message: feeds the `00 00 ff ff` tail (section 7.2.2), and resets the stream when
    /// the peer has no context takeover. After any error the connection fails; the state is not
    /// meant to be used again.
    ///
    /// The tail is not fed when it would leave the inflater inside a stored block and break the
    /// next message: after a message with no payload at all (it inflates to nothing), and after
    /// one whose data ends exactly with a BFINAL block (section 7.2.3.4 asks for a `00` byte
    /// after it, which some senders leave out).
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), DeflateError> {
        let result = if self.message_empty || self.stream_ended {
            Ok(())
        } else {
            self.inflate(&TAIL, out, limit)
        };
        if self.reset_after_message || self.stream_ended {
            self.stream.reset(false);
        }
        self.stream_ended = false;
        self.message_empty = true;
        self.restarts = 0;
        result
    }

    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        let mut rest = input;
        loop {
            if self.stream_ended && !rest.is_empty() {
                // More blocks follow a BFINAL block: zlib needs a new stream for them. The
                // window does not survive (zlib's reset forgets it), so a reference back past
                // the BFINAL block fails as Corrupt; it is never mis-decoded.
                self.restarts += 1;
                if self.restarts > MAX_STREAMS_PER_MESSAGE {
                    return Err(DeflateError::TooManyStreams);
                }
                self.stream.reset(false);
                self.stream_ended = false;
            }
            let room = limit.saturating_sub(out.len());
            let in_before = self.stream.total_in();
            let out_before = self.stream.total_out();
            let (status, space) = if room == 0 {
                // At the limit: one more byte of output means the message is too big.
                let mut probe = [0u8; 1];
                let status = self
                    .stream
                    .decompress(rest, &mut probe, FlushDecompress::None);
                (status, probe.len())
            } else {
                if out.len() == out.capacity() {
                    // Grow geometrically, as `reserve` would, but never past the limit: a bomb
                    // costs at most `limit` bytes of memory too.
                    let grow = out
                        .capacity()
                        .max(rest.len().saturating_mul(4))
                        .max(MIN_INFLATE_GROWTH);
                    out.reserve_exact(grow.min(room));
                }
                let spare = out.spare_capacity_mut();
                let space = spare.len().min(room);
                let window = spare.get_mut(..space).unwrap_or_default();
                let status = self
                    .stream
                    .decompress_uninit(rest, window, FlushDecompress::None);
                let written = delta(out_before, self.stream.total_out()).min(space);
                // SAFETY: the inflater initialised the first `written` bytes of the spare
                // capacity (its output count), and `written` is at most the slice it was given.
                unsafe { out.set_len(out.len() + written) };
                (status, space)
            };
            let status = status.map_err(|_| DeflateError::Corrupt)?;
            let consumed = delta(in_before, self.stream.total_in());
            let produced = delta(out_before, self.stream.total_out());
            rest = rest.get(consumed..).unwrap_or_default();
            if room == 0 && produced > 0 {
                return Err(DeflateError::TooBig);
            }
            if status == Status::StreamEnd {
                self.stream_ended = true;
                if rest.is_empty() {
                    return Ok(());
                }
                continue;
            }
            // zlib's inflate stops only when the input is used up or the output is full.
            if rest.is_empty() && produced < space {
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                return Err(DeflateError::Corrupt);
            }
        }
    }
}

/// Bytes moved between two readings of a flate2 or zlib-rs counter.
fn delta(before: u64, after: u64) -> usize {
    usize::try_from(after.saturating_sub(before)).unwrap_or(usize::MAX)
}

/// Room for one sync-flushed piece: zlib-rs's bound for raw deflate (input plus 1/8 for its
/// fastest level's 9-bit literals, plus block overhead) and the 5-byte empty stored block.
fn max_compressed_len(len: usize) -> usize {
    len.saturating_add(len >> 3).saturating_add(16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::reference;
    use std::time::{Duration, Instant};

    const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    const NO_LIMIT: usize = usize::MAX;

    fn params(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: sbits,
            client_max_window_bits: cbits,
        }
    }

    fn compress_message(c: &mut Compressor, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        c.compress(msg, true, &mut out).unwrap();
        out
    }

    fn inflate_message(d: &mut Decompressor, payload: &[u8]) -> Result<Vec<u8>, DeflateError> {
        inflate_chunked(d, payload, payload.len().max(1))
    }

    fn inflate_chunked(
        d: &mut Decompressor,
        payload: &[u8],
        chunk: usize,
    ) -> Result<Vec<u8>, DeflateError> {
        let mut out = Vec::new();
        for piece in payload.chunks(chunk) {
            d.decompress(piece, &mut out, NO_LIMIT)?;
        }
        d.finish(&mut out, NO_LIMIT)?;
        Ok(out)
    }

    fn client_inflater() -> Decompressor {
        Decompressor::new(&DeflateParams::default(), Role::Client)
    }

    /// Deterministic text with repeats at many distances, like chat or JSON traffic.
    fn text(seed: u64, len: usize) -> Vec<u8> {
        const WORDS: [&str; 12] = [
            "permessage",
            "deflate",
            "window",
            "the",
            "of",
            "context",
            "takeover",
            "{\"id\":",
            "\"text\":",
            "hello",
            "world",
            "1234",
        ];
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(WORDS[(x % 12) as usize].as_bytes());
            out.push(if x % 7 == 0 { b'\n' } else { b' ' });
        }
        out.truncate(len);
        out
    }

    /// Bytes that repeat with period `period`, and otherwise look random.
    fn periodic(period: usize, len: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        let unit: Vec<u8> = (0..period)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect();
        unit.iter().copied().cycle().take(len).collect()
    }

    #[test]
    fn rfc7692_7_2_3_1_hello_in_one_compressed_block() {
        assert_eq!(
            inflate_message(&mut client_inflater(), &HELLO).unwrap(),
            b"Hello"
        );
        for level in [1, 6] {
            let mut c = Compressor::new(&DeflateParams::default(), Role::Server, level, 8);
            assert_eq!(compress_message(&mut c, b"Hello"), HELLO, "level {level}");
        }
    }

    #[test]
    fn rfc7692_7_2_3_1_hello_inflates_in_every_split() {
        // The RFC's fragmented example splits after 3 bytes; try every split and every byte.
        for split in 0..=HELLO.len() {
            let mut d = client_inflater();
            let mut out = Vec::new();
            d.decompress(&HELLO[..split], &mut out, NO_LIMIT).unwrap();
            d.decompress(&HELLO[split..], &mut out, NO_LIMIT).unwrap();
            d.finish(&mut out, NO_LIMIT).unwrap();
            assert_eq!(out, b"Hello", "split at {split}");
        }
        assert_eq!(
            inflate_chunked(&mut client_inflater(), &HELLO, 1).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn rfc7692_7_2_3_2_second_hello_refers_to_the_first_with_context_takeover() {
        let mut d = client_inflater();
        assert_eq!(inflate_message(&mut d, &HELLO).unwrap(), b"Hello");
        assert_eq!(
            inflate_message(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00]).unwrap(),
            b"Hello"
        );

        let mut c = Compressor::new(&DeflateParams::default(), Role::Server, 6, 8);
        assert_eq!(compress_message(&mut c, b"Hello"), HELLO);
        assert_eq!(
            compress_message(&mut c, b"Hello"),
            [0xf2, 0x00, 0x11, 0x00, 0x00]
        );
    }

    #[test]
    fn rfc7692_7_2_3_3_uncompressed_deflate_block() {
        let payload = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        for chunk in 1..=payload.len() {
            assert_eq!(
                inflate_chunked(&mut client_inflater(), &payload, chunk).unwrap(),
                b"Hello"
            );
        }
    }

    #[test]
    fn rfc7692_7_2_3_4_bfinal_block_then_the_stream_goes_on() {
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        for chunk in 1..=bfinal.len() {
            let mut d = client_inflater();
            assert_eq!(inflate_chunked(&mut d, &bfinal, chunk).unwrap(), b"Hello");
            // The next messages still decode, with context takeover in force.
            assert_eq!(inflate_message(&mut d, &HELLO).unwrap(), b"Hello");
            assert_eq!(
                inflate_message(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00]).unwrap(),
                b"Hello"
            );
        }
    }

    #[test]
    fn bfinal_block_without_the_trailing_zero_byte_is_tolerated() {
        let mut d = client_inflater();
        assert_eq!(
            inflate_message(&mut d, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]).unwrap(),
            b"Hello"
        );
        assert_eq!(inflate_message(&mut d, &HELLO).unwrap(), b"Hello");
    }

    #[test]
    fn blocks_after_a_bfinal_block_are_inflated_too() {
        let mut c = Compressor::new(&DeflateParams::default(), Role::Server, 6, 8);
        let world = compress_message(&mut c, b"World");
        let payload = [&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..], &world].concat();
        for chunk in 1..=payload.len() {
            assert_eq!(
                inflate_chunked(&mut client_inflater(), &payload, chunk).unwrap(),
                b"HelloWorld"
            );
        }
    }

    #[test]
    fn a_reference_back_past_a_bfinal_block_fails_as_corrupt() {
        // "Hello" ends its stream; the second message points 5 bytes back into it, which the
        // restarted inflater no longer has. Refused, never mis-decoded.
        let payload = [
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..],
            &[0xf2, 0x00, 0x11, 0x00, 0x00],
        ]
        .concat();
        assert_eq!(
            inflate_message(&mut client_inflater(), &payload),
            Err(DeflateError::Corrupt)
        );
    }

    #[test]
    fn many_streams_in_one_message_are_refused_past_the_ceiling() {
        // `03 00`: a final fixed block holding only end-of-block.
        let storm = |n: usize| {
            let mut p: Vec<u8> = [0x03, 0x00].repeat(n);
            p.push(0x00);
            p
        };
        let ok = MAX_STREAMS_PER_MESSAGE as usize;
        assert_eq!(
            inflate_message(&mut client_inflater(), &storm(ok)).unwrap(),
            b""
        );
        assert_eq!(
            inflate_message(&mut client_inflater(), &storm(ok + 1)),
            Err(DeflateError::TooManyStreams)
        );
        // The count is per message.
        let mut d = client_inflater();
        for _ in 0..3 {
            assert_eq!(inflate_message(&mut d, &storm(ok)).unwrap(), b"");
        }
    }

    #[test]
    fn rfc7692_7_2_3_5_two_deflate_blocks_in_one_message() {
        let payload = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        for chunk in 1..=payload.len() {
            assert_eq!(
                inflate_chunked(&mut client_inflater(), &payload, chunk).unwrap(),
                b"Hello"
            );
        }
    }

    #[test]
    fn rfc7692_7_2_3_6_empty_message_is_one_zero_byte() {
        let mut c = Compressor::new(&DeflateParams::default(), Role::Client, 1, 8);
        assert_eq!(compress_message(&mut c, b""), [0x00]);
        assert_eq!(compress_message(&mut c, b"Hello"), HELLO);
        assert_eq!(compress_message(&mut c, b""), [0x00]);
        let mut d = client_inflater();
        assert_eq!(inflate_message(&mut d, &[0x00]).unwrap(), b"");
        assert_eq!(inflate_message(&mut d, &HELLO).unwrap(), b"Hello");
    }

    #[test]
    fn empty_compressed_payload_is_an_empty_message_and_leaves_the_stream_intact() {
        let mut d = client_inflater();
        assert_eq!(inflate_message(&mut d, &HELLO).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &[]).unwrap(), b"");
        assert_eq!(
            inflate_message(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00]).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn streamed_pieces_are_flushed_and_end_with_the_tail_stripped() {
        let mut c = Compressor::new(&DeflateParams::default(), Role::Client, 1, 8);
        let mut d = Decompressor::new(&DeflateParams::default(), Role::Server);
        for pieces in [
            &[&b"Hel"[..], b"", b"lo", b""][..],
            &[b"", b"Hello"],
            &[b"Hello", b""],
            &[b"", b""],
        ] {
            let mut wire = Vec::new();
            let mut out = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                let fin = i + 1 == pieces.len();
                let start = wire.len();
                c.compress(piece, fin, &mut wire).unwrap();
                // Each piece is usable on its own: the peer inflates as it goes.
                d.decompress(&wire[start..], &mut out, NO_LIMIT).unwrap();
                if !fin {
                    let so_far: Vec<u8> = pieces[..=i].concat();
                    assert_eq!(out, so_far);
                }
            }
            d.finish(&mut out, NO_LIMIT).unwrap();
            assert_eq!(out, pieces.concat(), "{pieces:?}");
            assert!(!wire.ends_with(&TAIL));
        }
    }

    /// Every combination of the four parameters, both directions, several levels and memory
    /// levels: what one side sends the other inflates; an independent decoder agrees and sees
    /// no reference longer than the agreed window, and none across messages without context
    /// takeover.
    #[test]
    fn round_trip_every_parameter_combination_in_both_roles() {
        let messages = [
            text(1, 1500),
            text(1, 1500),
            periodic(300, 1200),
            text(2, 40),
            Vec::new(),
        ];
        for sbits in 8..=15u8 {
            for cbits in 8..=15u8 {
                for (snct, cnct) in [(false, false), (false, true), (true, false), (true, true)] {
                    let p = params(snct, cnct, sbits, cbits);
                    let level = u32::from(sbits + cbits) % 10;
                    let directions = [
                        (Role::Server, Role::Client, sbits, snct),
                        (Role::Client, Role::Server, cbits, cnct),
                    ];
                    let mem_levels = [1, 5, 8, 9];
                    for ((sender, receiver, bits, nct), mem_level) in directions
                        .into_iter()
                        .flat_map(|dir| mem_levels.map(|m| (dir, m)))
                    {
                        let mut c = Compressor::new(&p, sender, level, mem_level);
                        let mut d = Decompressor::new(&p, receiver);
                        let mut history: Vec<u8> = Vec::new();
                        for msg in &messages {
                            let wire = compress_message(&mut c, msg);
                            let case = format!("{p:?} {sender:?} level {level} mem {mem_level}");
                            assert_eq!(&inflate_message(&mut d, &wire).unwrap(), msg, "{case}");
                            let full = [&wire[..], &TAIL].concat();
                            let seen = reference::inflate(&full, if nct { &[] } else { &history })
                                .unwrap_or_else(|e| panic!("{e}: {case}"));
                            assert_eq!(&seen.data, msg);
                            assert!(
                                seen.max_distance <= 1 << bits,
                                "{} > 2^{bits}: {case}",
                                seen.max_distance
                            );
                            history.extend_from_slice(msg);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_level_and_mem_level_round_trips_a_large_message_in_pieces() {
        // Larger than every buffer mem_level sizes, so deflate emits many blocks; level 0 sizes
        // its stored blocks from the pending buffer too (512 bytes at mem_level 1).
        let msg = [text(8, 60_000), periodic(700, 40_000)].concat();
        for level in 0..=9 {
            for mem_level in [1, 2, 8, 9] {
                let mut c =
                    Compressor::new(&DeflateParams::default(), Role::Server, level, mem_level);
                let mut wire = Vec::new();
                let pieces: Vec<&[u8]> = msg.chunks(30_000).collect();
                for (i, piece) in pieces.iter().enumerate() {
                    c.compress(piece, i + 1 == pieces.len(), &mut wire).unwrap();
                }
                let case = format!("level {level}, mem_level {mem_level}");
                assert_eq!(
                    inflate_message(&mut client_inflater(), &wire).unwrap(),
                    msg,
                    "{case}"
                );
                let seen = reference::inflate(&[&wire[..], &TAIL].concat(), &[])
                    .unwrap_or_else(|e| panic!("{e}: {case}"));
                assert_eq!(seen.data, msg, "{case}");
                if level > 0 {
                    assert!(wire.len() < msg.len() / 2, "{case}: {}", wire.len());
                }
            }
        }
    }

    #[test]
    fn window_bits_8_output_never_reaches_back_beyond_256_bytes() {
        // Period 257..300 tempts a 512-byte deflate window into distances above 256.
        // The largest distance over mem_level 1 and 8 (smaller blocks, same matcher).
        let check = |bits: u8, data: &[u8]| {
            let p = params(false, false, bits, bits);
            let mut max = 0;
            for mem_level in [1, 8] {
                let mut c = Compressor::new(&p, Role::Server, 9, mem_level);
                let wire = [compress_message(&mut c, data), TAIL.to_vec()].concat();
                let seen = reference::inflate(&wire, &[]).unwrap();
                assert_eq!(seen.data, data);
                max = max.max(seen.max_distance);
            }
            max
        };
        for period in [200, 250, 251, 257, 280, 300, 500] {
            let data = periodic(period, 20_000);
            assert!(check(8, &data) <= 256, "period {period}");
        }
        let prose = text(7, 30_000);
        assert!(check(8, &prose) <= 256);
        // The checker can fail: a 10-bit window does reach back 280 bytes.
        assert_eq!(check(10, &periodic(280, 20_000)), 280);
    }

    #[test]
    fn inflate_accepts_its_input_in_every_chunk_size() {
        let msg = text(3, 20_000);
        let mut c = Compressor::new(&DeflateParams::default(), Role::Server, 6, 8);
        let first = compress_message(&mut c, &msg);
        let second = compress_message(&mut c, &msg);
        for chunk in [1, 2, 3, 5, 7, 13, 64, 1000, first.len()] {
            let mut d = client_inflater();
            assert_eq!(
                inflate_chunked(&mut d, &first, chunk).unwrap(),
                msg,
                "chunk {chunk}"
            );
            assert_eq!(
                inflate_chunked(&mut d, &second, chunk).unwrap(),
                msg,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn context_takeover_makes_a_repeated_message_shorter() {
        let msg = text(4, 400);
        let mut c = Compressor::new(&DeflateParams::default(), Role::Client, 1, 8);
        let first = compress_message(&mut c, &msg);
        let second = compress_message(&mut c, &msg);
        assert!(
            second.len() * 4 < first.len(),
            "{} vs {}",
            second.len(),
            first.len()
        );
        let mut d = Decompressor::new(&DeflateParams::default(), Role::Server);
        assert_eq!(inflate_message(&mut d, &first).unwrap(), msg);
        assert_eq!(inflate_message(&mut d, &second).unwrap(), msg);
    }

    #[test]
    fn no_context_takeover_resets_after_every_message() {
        let msg = text(4, 400);
        for role in [Role::Client, Role::Server] {
            let p = params(role == Role::Server, role == Role::Client, 15, 15);
            let mut c = Compressor::new(&p, role, 1, 8);
            let first = compress_message(&mut c, &msg);
            assert_eq!(compress_message(&mut c, &msg), first, "{role:?}");
        }
    }

    #[test]
    fn decompressor_resets_only_when_the_peer_has_no_context_takeover() {
        // A server inflates client messages: client_no_context_takeover decides.
        let mut d = Decompressor::new(&params(true, false, 15, 15), Role::Server);
        assert_eq!(inflate_message(&mut d, &HELLO).unwrap(), b"Hello");
        assert_eq!(
            inflate_message(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00]).unwrap(),
            b"Hello"
        );
        let mut d = Decompressor::new(&params(false, true, 15, 15), Role::Server);
        assert_eq!(inflate_message(&mut d, &HELLO).unwrap(), b"Hello");
        assert_eq!(
            inflate_message(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            Err(DeflateError::Corrupt)
        );
    }

    /// 100 MiB of zeros: the first MiB compressed, then a second MiB whose compressed form
    /// inflates to zeros after any window of zeros, repeated.
    fn zero_bomb(mib: usize) -> Vec<u8> {
        let zeros = vec![0u8; 1 << 20];
        let mut c = Compressor::new(&DeflateParams::default(), Role::Client, 9, 8);
        let mut first = Vec::new();
        c.compress(&zeros, false, &mut first).unwrap();
        let mut unit = Vec::new();
        c.compress(&zeros, false, &mut unit).unwrap();
        let mut bomb = first;
        for _ in 1..mib {
            bomb.extend_from_slice(&unit);
        }
        bomb
    }

    #[test]
    fn zero_bomb_builder_really_inflates_to_zeros() {
        let mut d = client_inflater();
        let out = inflate_message(&mut d, &zero_bomb(3)).unwrap();
        assert_eq!(out.len(), 3 << 20);
        assert!(out.iter().all(|&b| b == 0));
    }

    #[test]
    fn decompression_bomb_stops_at_the_limit() {
        let bomb = zero_bomb(100);
        assert!(bomb.len() < 200_000, "{}", bomb.len());
        let limit = 1 << 20;
        let started = Instant::now();
        let mut d = client_inflater();
        let mut out = Vec::new();
        assert_eq!(
            d.decompress(&bomb, &mut out, limit),
            Err(DeflateError::TooBig)
        );
        assert!(out.len() <= limit);
        assert!(
            out.capacity() <= limit,
            "memory is bounded too: {}",
            out.capacity()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn limit_is_inclusive_and_counts_what_out_already_holds() {
        let msg = text(5, 5000);
        let mut c = Compressor::new(&DeflateParams::default(), Role::Server, 1, 8);
        let wire = compress_message(&mut c, &msg);
        for prefix in [0, 10] {
            let limit = prefix + msg.len();
            let mut out = vec![b'x'; prefix];
            let mut d = client_inflater();
            d.decompress(&wire, &mut out, limit).unwrap();
            d.finish(&mut out, limit).unwrap();
            assert_eq!(&out[prefix..], &msg[..]);

            let mut out = vec![b'x'; prefix];
            let mut d = client_inflater();
            let r = d
                .decompress(&wire, &mut out, limit - 1)
                .and_then(|()| d.finish(&mut out, limit - 1));
            assert_eq!(r, Err(DeflateError::TooBig));
            assert_eq!(out.len(), limit - 1);
        }
    }

    #[test]
    fn the_tail_can_push_a_message_over_the_limit() {
        // The final bytes of "Hello" only come out when the tail is fed.
        for limit in 0..5 {
            let mut d = client_inflater();
            let mut out = Vec::new();
            let r = d
                .decompress(&HELLO, &mut out, limit)
                .and_then(|()| d.finish(&mut out, limit));
            assert_eq!(r, Err(DeflateError::TooBig), "limit {limit}");
            assert!(out.len() <= limit);
        }
    }

    #[test]
    fn invalid_deflate_data_is_corrupt() {
        for bad in [
            &[0xff][..],
            &[0x07, 0xff, 0xff],
            &[0x00, 0x05, 0x00, 0x00, 0x00, b'H'],
            &[0xf2, 0x00, 0x11, 0x00, 0x00],
        ] {
            assert_eq!(
                inflate_message(&mut client_inflater(), bad),
                Err(DeflateError::Corrupt),
                "{bad:02x?}"
            );
        }
    }

    /// Counts the bytes this thread has live on the heap, so that tests running in parallel do
    /// not disturb each other. It is the whole test binary's allocator; it only adds a
    /// thread-local counter to the system allocator.
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            static LIVE: Cell<isize> = const { Cell::new(0) };
            static CALLS: Cell<usize> = const { Cell::new(0) };
        }

        fn record(bytes: isize) {
            // try_with: nothing to count once the thread's locals are gone.
            let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
            if bytes > 0 {
                let _ = CALLS.try_with(|calls| calls.set(calls.get() + 1));
            }
        }

        pub struct Counting;

        // SAFETY: every call is forwarded unchanged to the system allocator; only counters
        // (const-initialised, destructor-free thread-locals, which never allocate) are touched.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                record(layout.size() as isize);
                System.alloc(layout)
            }
            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                record(layout.size() as isize);
                System.alloc_zeroed(layout)
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                record(-(layout.size() as isize));
                System.dealloc(ptr, layout)
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                record(new_size as isize - layout.size() as isize);
                System.realloc(ptr, layout, new_size)
            }
        }

        #[global_allocator]
        static COUNTING: Counting = Counting;

        /// (bytes live, allocation calls) on this thread.
        pub fn now() -> (isize, usize) {
            (LIVE.with(Cell::get), CALLS.with(Cell::get))
        }
    }

    /// Bytes a new Compressor allocates, and checks that dropping it frees every one of them
    /// (zlib-rs's `end` runs on drop).
    fn compressor_bytes(bits: u8, mem_level: u8) -> isize {
        let p = params(false, false, bits, bits);
        let (before, _) = counting::now();
        let c = Compressor::new(&p, Role::Server, 1, mem_level);
        let (after, _) = counting::now();
        drop(c);
        assert_eq!(
            counting::now().0,
            before,
            "window {bits}, mem_level {mem_level}: leak"
        );
        after - before
    }

    #[test]
    fn memory_per_codec_is_what_the_docs_say() {
        let kib = |bytes: isize| bytes as f64 / 1024.0;
        // (window bits, mem_level, KiB low, KiB high): the table in the module documentation.
        for (bits, mem_level, low, high) in [
            (15u8, 8u8, 366.0, 376.0),
            (15, 5, 268.0, 278.0),
            (15, 1, 255.0, 265.0),
            (12, 8, 254.0, 264.0),
            (12, 5, 156.0, 166.0),
            (12, 1, 143.0, 153.0),
            (9, 8, 240.0, 250.0),
            (9, 5, 142.0, 152.0),
            (9, 1, 129.0, 139.0),
        ] {
            let c_kib = kib(compressor_bytes(bits, mem_level));
            println!("window {bits}, mem_level {mem_level}: Compressor {c_kib:.1} KiB");
            assert!(
                (low..high).contains(&c_kib),
                "window {bits}, mem_level {mem_level}: {c_kib} KiB"
            );
        }
        for bits in [15, 12, 9] {
            let p = params(false, false, bits, bits);
            let (before, _) = counting::now();
            let d = Decompressor::new(&p, Role::Server);
            let d_kib = kib(counting::now().0 - before);
            println!("window {bits}: Decompressor {d_kib:.1} KiB");
            assert!((40.0..50.0).contains(&d_kib), "window {bits}: {d_kib} KiB");
            drop(d);
            assert_eq!(counting::now().0, before, "window {bits}: inflater leaks");
        }
    }

    #[test]
    fn mem_level_is_applied_to_the_compressor() {
        // Each step down halves the symbol and pending buffers (7 * 2^(mem_level + 6) bytes:
        // 112 KiB at 8, under 1 KiB at 1); the window, chain and hash table stay.
        for bits in [15, 12, 9] {
            let sizes: Vec<isize> = (1..=9).map(|m| compressor_bytes(bits, m)).collect();
            for (m, pair) in (1..).zip(sizes.windows(2)) {
                assert!(
                    pair[0] < pair[1],
                    "window {bits}: mem_level {m} vs {}",
                    m + 1
                );
            }
            let saved = sizes[7] - sizes[0];
            assert!(
                (105 << 10..115 << 10).contains(&saved),
                "window {bits}: mem_level 8 to 1 saves {saved} bytes"
            );
        }
    }

    #[test]
    fn codecs_can_move_to_another_thread() {
        // As flate2's state could: a connection (and its codecs) may be handed to a thread.
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<Compressor>();
        send_and_sync::<Decompressor>();
    }

    #[test]
    fn mem_level_outside_1_to_9_is_clamped_not_a_panic() {
        assert_eq!(compressor_bytes(15, 0), compressor_bytes(15, 1));
        assert_eq!(compressor_bytes(15, 10), compressor_bytes(15, 9));
        assert_eq!(compressor_bytes(15, u8::MAX), compressor_bytes(15, 9));
        let mut c = Compressor::new(&DeflateParams::default(), Role::Server, 6, 0);
        assert_eq!(compress_message(&mut c, b"Hello"), HELLO);
    }

    #[test]
    fn no_allocation_per_message_when_out_has_room() {
        let msg = text(6, 3000);
        for (nct, mem_level) in [(false, 8), (true, 8), (false, 1), (true, 1)] {
            let p = params(nct, nct, 15, 15);
            let mut c = Compressor::new(&p, Role::Client, 1, mem_level);
            let mut d = Decompressor::new(&p, Role::Server);
            let mut wire = Vec::with_capacity(8192);
            let mut out = Vec::with_capacity(8192);
            for round in 0..3 {
                wire.clear();
                out.clear();
                let (_, calls) = counting::now();
                c.compress(&msg, true, &mut wire).unwrap();
                d.decompress(&wire, &mut out, NO_LIMIT).unwrap();
                d.finish(&mut out, NO_LIMIT).unwrap();
                assert_eq!(
                    counting::now().1,
                    calls,
                    "nct {nct}, mem_level {mem_level}, round {round}"
                );
                assert_eq!(out, msg);
            }
        }
    }

    #[test]
    fn compressor_uses_the_window_and_takeover_of_its_own_role() {
        // A server compresses with server_* even when client_* would allow more.
        let p = params(true, false, 10, 15);
        let data = periodic(2000, 20_000);
        let mut c = Compressor::new(&p, Role::Server, 9, 8);
        let seen = reference::inflate(
            &[compress_message(&mut c, &data), TAIL.to_vec()].concat(),
            &[],
        )
        .unwrap();
        assert!(seen.max_distance <= 1024);
        let mut c = Compressor::new(&p, Role::Client, 9, 8);
        let seen = reference::inflate(
            &[compress_message(&mut c, &data), TAIL.to_vec()].concat(),
            &[],
        )
        .unwrap();
        assert_eq!(seen.max_distance, 2000);
    }
}
