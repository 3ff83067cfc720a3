//! Fuzz harnesses: one function per `cargo fuzz` target in `crates/proto/fuzz`.
//!
//! Each harness takes arbitrary bytes, drives one part of the engine with them and panics when
//! an invariant breaks. The same functions run under libFuzzer (`make fuzz`, nightly) and, on
//! the stable toolchain, over every committed corpus and crash file (`tests/fuzz_corpus.rs`,
//! part of `cargo test`), so an input that once crashed stays a regression test.
//!
//! Not part of the public API: the module is hidden from the documentation and may change
//! with any release.
//!
//! Memory: a binary that installs [`TrackingAlloc`] as its global allocator lets the
//! connection harness check that a connection never holds more than its limits allow
//! (heap allocated inside the engine's calls, measured per thread). Without it that one check
//! is skipped.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use crate::close::CloseCode;
use crate::connection::{Config, Connection, Event, MessageKind, State, PONG_BACKLOG};
use crate::deflate::{
    client_accept, client_offer, server_negotiate, Compressor, Decompressor, DeflateConfig,
    DeflateError, DeflateParams,
};
use crate::error::{ProtocolError, SendError};
use crate::frame::{apply_mask, mask::apply_mask_reference, FrameHeader, MAX_CONTROL_PAYLOAD};
use crate::handshake::{
    accept_response, ClientHandshake, ClientOptions, HandshakeError, Limits, ServerHandshake,
    Upgrade, Url,
};
use crate::proxy::socks5::MAX_REPLY_LEN;
use crate::proxy::{
    Credentials, Established, HttpConnect, HttpConnectOptions, Progress, ProxyError, Socks5, Target,
};
use crate::Role;

/// A harness: panics when an invariant breaks.
pub type Harness = fn(&[u8]);

/// Every harness with the name of its fuzz target (and corpus directory).
pub const TARGETS: &[(&str, Harness)] = &[
    ("frame_header", frame_header),
    ("mask", mask),
    ("server_handshake", server_handshake),
    ("client_handshake", client_handshake),
    ("deflate_negotiate", deflate_negotiate),
    ("inflate", inflate),
    ("connection", connection),
    ("url", url),
    ("proxy_http_reply", proxy_http_connect_reply),
    ("proxy_socks5_reply", proxy_socks5_reply),
];

// -------------------------------------------------------------------------------------------
// Input reader
// -------------------------------------------------------------------------------------------

/// Reads the fuzzer's bytes as a little program; past the end every read gives zeros.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

/// Chunk lengths for feeding a stream "in arbitrary pieces": 0 means all at once, anything
/// else seeds a small generator of lengths in 1..=64 (mostly short).
struct Chunker(u32);

impl Chunker {
    fn new(seed: u8) -> Self {
        Chunker(u32::from(seed))
    }

    fn next(&mut self, left: usize) -> usize {
        if self.0 == 0 {
            return left;
        }
        // xorshift32
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        let len = if x & 0x100 != 0 { x % 8 } else { x % 64 };
        (len as usize + 1).min(left)
    }
}

fn deflate_params(byte: u8, bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: byte & 1 != 0,
        client_no_context_takeover: byte & 2 != 0,
        server_max_window_bits: 8 + (bits & 7),
        client_max_window_bits: 8 + (bits >> 4 & 7),
    }
}

fn deflate_config(a: u8, b: u8) -> DeflateConfig {
    let bits = |on: bool, v: u8| on.then_some(8 + (v & 7));
    DeflateConfig {
        enabled: a & 1 == 0,
        level: u32::from(a >> 1 & 0x0F) % 10,
        mem_level: 1 + (a >> 5) % 9,
        threshold: usize::from(b & 0x3F),
        server_no_context_takeover: b & 0x40 != 0,
        client_no_context_takeover: b & 0x80 != 0,
        server_max_window_bits: bits(a & 0x10 != 0, b),
        client_max_window_bits: bits(a & 0x20 == 0, b >> 3),
    }
}

fn opposite(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

// -------------------------------------------------------------------------------------------
// Heap tracking
// -------------------------------------------------------------------------------------------

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// A global allocator (over the system one) that counts, per thread, the bytes allocated and
/// freed inside the harness's tracked sections. Install it with `#[global_allocator]` in a fuzz target or
/// test binary to turn on the connection harness's memory check.
pub struct TrackingAlloc;

fn account(delta: isize) {
    let _ = TRACKING.try_with(|on| {
        if on.get() {
            let _ = LIVE.try_with(|live| {
                let now = live.get() + delta;
                live.set(now);
                let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
            });
        }
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the bookkeeping only
// touches thread-local `Cell`s (const-initialised, no destructor, so no allocation).
unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` with heap accounting on (a no-op unless [`TrackingAlloc`] is installed).
fn tracked<R>(f: impl FnOnce() -> R) -> R {
    TRACKING.with(|on| on.set(true));
    let r = f();
    TRACKING.with(|on| on.set(false));
    r
}

/// Runs `f` with heap accounting off, inside a [`tracked`] section: the harness's own copies.
fn untracked<R>(f: impl FnOnce() -> R) -> R {
    let was = TRACKING.with(|on| on.replace(false));
    let r = f();
    TRACKING.with(|on| on.set(was));
    r
}

/// Starts a fresh measurement; `true` when [`TrackingAlloc`] is the global allocator.
fn reset_tracking() -> bool {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    let probe = tracked(|| std::hint::black_box(Box::new([0u8; 64])));
    let installed = LIVE.with(|l| l.get()) >= 64;
    tracked(|| drop(probe));
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    installed
}

fn peak_tracked() -> usize {
    PEAK.with(|p| p.get()).max(0) as usize
}

// -------------------------------------------------------------------------------------------
// Frame header and masking
// -------------------------------------------------------------------------------------------

/// `FrameHeader::decode` on arbitrary bytes: a decoded header is found again in every
/// re-encoding, every shorter prefix asks for more bytes, and errors are protocol errors.
pub fn frame_header(data: &[u8]) {
    match FrameHeader::decode(data) {
        Ok(Some((h, n))) => {
            let ext = match data[1] & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            assert_eq!(n, 2 + ext + if h.mask.is_some() { 4 } else { 0 });
            assert!(n <= data.len());
            assert!(h.payload_len < 1 << 63);
            if h.opcode.is_control() {
                assert!(h.fin && h.payload_len <= MAX_CONTROL_PAYLOAD as u64);
            }
            for cut in 0..n {
                assert_eq!(FrameHeader::decode(&data[..cut]), Ok(None), "prefix {cut}");
            }
            let mut again = Vec::new();
            h.write_to(&mut again);
            assert_eq!(again.len(), h.encoded_len());
            assert!(again.len() <= n);
            assert_eq!(FrameHeader::decode(&again), Ok(Some((h, again.len()))));
            let minimal = match ext {
                0 => true,
                2 => h.payload_len > 125,
                _ => h.payload_len > 0xFFFF,
            };
            if minimal {
                assert_eq!(&again[..], &data[..n]);
            }
        }
        Ok(None) => assert!(data.len() < crate::frame::MAX_HEADER_LEN),
        Err(e) => {
            assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
            // Errors come from the first bytes: any longer input fails the same way.
            let mut longer = data.to_vec();
            longer.extend_from_slice(&[0xFF; 16]);
            assert_eq!(FrameHeader::decode(&longer), Err(e));
        }
    }
}

/// `apply_mask` (word and AVX2 paths, any alignment, any phase, in pieces) against the
/// byte-at-a-time reference.
pub fn mask(data: &[u8]) {
    let mut r = Input::new(data);
    let key = [r.u8(), r.u8(), r.u8(), r.u8()];
    let phase = usize::from(r.u8());
    let offset = usize::from(r.u8() % 64);
    let split = usize::from(r.u16());
    let repeat = usize::from(r.u8() % 32) + 1;
    let payload: Vec<u8> = r.rest().repeat(repeat);
    // Unaligned starts: the payload begins `offset` bytes into the buffer.
    let mut buf = vec![0xA5u8; offset];
    buf.extend_from_slice(&payload);
    let mut expected = payload.clone();
    apply_mask_reference(&mut expected, key, phase);
    apply_mask(&mut buf[offset..], key, phase);
    assert_eq!(&buf[offset..], &expected[..]);
    assert!(buf[..offset].iter().all(|&b| b == 0xA5));
    // In two pieces, the second continuing the key phase.
    let mut pieces = payload.clone();
    let split = split.min(pieces.len());
    let (a, b) = pieces.split_at_mut(split);
    apply_mask(a, key, phase);
    apply_mask(b, key, phase + split);
    assert_eq!(pieces, expected);
    // Masking twice restores the input.
    apply_mask(&mut buf[offset..], key, phase);
    assert_eq!(&buf[offset..], &payload[..]);
}

// -------------------------------------------------------------------------------------------
// Handshake
// -------------------------------------------------------------------------------------------

fn limits(r: &mut Input<'_>) -> Limits {
    let byte = r.u8();
    match byte {
        0..=127 => Limits::default(),
        _ => Limits {
            max_header_bytes: 16 + usize::from(byte & 0x3F) * 64,
            max_headers: usize::from(byte >> 6 & 1) * 80 + usize::from(byte & 7),
        },
    }
}

/// What a reader returned after being fed a whole stream, in comparable form.
#[derive(Debug, PartialEq)]
enum Outcome<T, E = HandshakeError> {
    Done(T, usize),
    Failed(E),
    NeedMore,
}

/// Whether two readings of the same stream agree. A reader looks at a line only once it has
/// ended (so a peer trickling bytes costs one parse per line), so a broken line without its
/// `\n` is an error when read whole and "need more" (or, at the size limit, "too large") when
/// read in pieces. Both readings refuse the request; only a complete head must read the same.
fn same_answer<T: PartialEq>(a: &Outcome<T>, b: &Outcome<T>) -> bool {
    let unfinished = |x: &Outcome<T>| {
        matches!(
            x,
            Outcome::NeedMore
                | Outcome::Failed(
                    HandshakeError::Malformed(_)
                        | HandshakeError::TooManyHeaders { .. }
                        | HandshakeError::HeaderTooLarge { .. }
                )
        )
    };
    a == b || (unfinished(a) && unfinished(b))
}

/// Feeds `stream` to `receive` in the pieces `chunker` picks; `Done` carries the absolute
/// offset of the first byte after the head, checked against every limit on the way.
fn feed_head<T>(
    stream: &[u8],
    chunker: &mut Chunker,
    limits: &Limits,
    mut receive: impl FnMut(&[u8]) -> Result<Option<T>, HandshakeError>,
    body_start: impl Fn(&T) -> usize,
) -> Outcome<T> {
    let mut pos = 0;
    while pos < stream.len() {
        let len = chunker.next(stream.len() - pos);
        let chunk = &stream[pos..pos + len];
        match receive(chunk) {
            Ok(None) => pos += len,
            Ok(Some(done)) => {
                let start = body_start(&done);
                assert!(start > 0 && start <= chunk.len(), "body_start {start}");
                let end = pos + start;
                assert!(end <= limits.max_header_bytes, "head longer than the limit");
                // The head really ends there.
                assert!(stream[..end].ends_with(b"\n"));
                // Nothing more is accepted.
                assert_eq!(receive(b"x").err(), Some(HandshakeError::Finished));
                return Outcome::Done(done, end);
            }
            Err(e) => {
                if let HandshakeError::HeaderTooLarge { limit } = e {
                    assert_eq!(limit, limits.max_header_bytes);
                    assert!(pos + len >= limit);
                }
                assert_eq!(receive(b"x").err(), Some(HandshakeError::Finished));
                return Outcome::Failed(e);
            }
        }
    }
    Outcome::NeedMore
}

/// The server's request reader over arbitrary bytes in arbitrary pieces: the same answer
/// whatever the pieces, never past the limits, and every answer it leads to is well formed:
/// an accepted upgrade's 101 satisfies our own client, a rejection reads back as its status.
pub fn server_handshake(data: &[u8]) {
    let mut r = Input::new(data);
    let limits = limits(&mut r);
    let seed = r.u8();
    let stream = r.rest();

    let whole = {
        let mut hs = ServerHandshake::new(limits.clone());
        feed_head(
            stream,
            &mut Chunker::new(0),
            &limits,
            |c| hs.receive(c),
            |q| q.body_start,
        )
    };
    let pieces = {
        let mut hs = ServerHandshake::new(limits.clone());
        feed_head(
            stream,
            &mut Chunker::new(seed),
            &limits,
            |c| hs.receive(c),
            |q| q.body_start,
        )
    };
    // body_start is relative to the last piece; compare the rest.
    let normalise = |o: Outcome<crate::handshake::Request>| match o {
        Outcome::Done(mut q, end) => {
            q.body_start = 0;
            Outcome::Done(q, end)
        }
        other => other,
    };
    let whole = normalise(whole);
    let pieces = normalise(pieces);
    assert!(
        same_answer(&whole, &pieces),
        "the pieces changed the answer: {whole:?} / {pieces:?}"
    );

    let rejection = match &whole {
        Outcome::Done(q, _) => {
            assert!(q.path.len() + q.query.as_ref().map_or(0, |s| s.len() + 1) > 0);
            match &q.upgrade {
                Upgrade::WebSocket { key } => {
                    check_accept(key, q);
                    None
                }
                Upgrade::Invalid(rej) => Some(rej.clone()),
                Upgrade::NotUpgrade => None,
            }
        }
        Outcome::Failed(e) => {
            let rej = e.rejection();
            assert!(rej.is_some(), "a read error without a response: {e:?}");
            rej
        }
        Outcome::NeedMore => None,
    };
    if let Some(rej) = rejection {
        assert!(matches!(rej.status, 400 | 426 | 431), "{}", rej.status);
        let mut out = Vec::new();
        rej.write_response(&mut out);
        let url = Url::parse("ws://example.com/").expect("static URL");
        let mut client = ClientHandshake::with_key(&url, &ClientOptions::default(), [7; 16])
            .expect("static handshake");
        match client.receive(&out) {
            Err(HandshakeError::Status { status, .. }) => assert_eq!(status, rej.status),
            other => panic!("rejection read back as {other:?}"),
        }
    }
}

/// A valid upgrade: the 101 we would send (with the first offered subprotocol and the
/// negotiated permessage-deflate answer) is accepted by our own client.
fn check_accept(key: &str, q: &crate::handshake::Request) {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("an accepted key is base64");
    let raw: [u8; 16] = raw.try_into().expect("an accepted key is 16 bytes");
    let subprotocol = q.subprotocols.first().map(String::as_str);
    let cfg = DeflateConfig::default();
    let negotiated = match q.extensions.as_deref() {
        Some(offers) => server_negotiate(&cfg, offers).ok().flatten(),
        None => None,
    };
    let answer = negotiated.as_ref().map(|(_, a)| a.as_str());
    let mut out = Vec::new();
    accept_response(key, subprotocol, answer, &[], &mut out).expect("accept_response");
    let url = Url::parse("ws://example.com/").expect("static URL");
    let opts = ClientOptions {
        subprotocols: subprotocol.map(|p| vec![p.to_owned()]).unwrap_or_default(),
        extensions: answer.map(|_| client_offer(&cfg)),
        ..ClientOptions::default()
    };
    let mut client = ClientHandshake::with_key(&url, &opts, raw).expect("client handshake");
    let resp = client
        .receive(&out)
        .expect("our 101 is valid")
        .expect("complete");
    assert_eq!(resp.subprotocol.as_deref(), subprotocol);
    assert_eq!(resp.body_start, out.len());
    assert_eq!(resp.extensions.is_some(), negotiated.is_some());
}

/// The key of the client harness: RFC 6455 section 1.3's sample nonce, so the committed
/// responses carry its known accept value `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
pub const CLIENT_KEY: [u8; 16] = *b"the sample nonce";

/// The client's response reader over arbitrary bytes in arbitrary pieces: the same answer
/// whatever the pieces, never past the limits, and a success only for a 101 that offered
/// what was asked.
pub fn client_handshake(data: &[u8]) {
    let mut r = Input::new(data);
    let limits = limits(&mut r);
    let flags = r.u8();
    let seed = r.u8();
    let stream = r.rest();
    let offered: Vec<String> = match flags & 3 {
        0 => vec![],
        1 => vec!["chat".into()],
        _ => vec!["chat".into(), "superchat".into()],
    };
    let cfg = DeflateConfig::default();
    let opts = ClientOptions {
        subprotocols: offered.clone(),
        extensions: (flags & 4 != 0).then(|| client_offer(&cfg)),
        limits: limits.clone(),
        ..ClientOptions::default()
    };
    let url = Url::parse("ws://server.example.com/chat").expect("static URL");
    let run = |seed| {
        let mut hs = ClientHandshake::with_key(&url, &opts, CLIENT_KEY).expect("handshake");
        feed_head(
            stream,
            &mut Chunker::new(seed),
            &limits,
            |c| hs.receive(c),
            |resp| resp.body_start,
        )
    };
    // The body of a non-101 status is whatever followed the head in the same piece, so only
    // the status is compared for those.
    let comparable = |o: Outcome<crate::handshake::ClientResponse>| match o {
        Outcome::Done(mut resp, end) => {
            resp.body_start = 0;
            Outcome::Done(resp, end)
        }
        Outcome::Failed(HandshakeError::Status {
            status,
            reason,
            headers,
            ..
        }) => Outcome::Failed(HandshakeError::Status {
            status,
            reason,
            headers,
            body: Vec::new(),
        }),
        other => other,
    };
    let whole = comparable(run(0));
    let pieces = comparable(run(seed));
    assert!(
        same_answer(&whole, &pieces),
        "the pieces changed the answer: {whole:?} / {pieces:?}"
    );
    match whole {
        Outcome::Done(resp, _) => {
            assert_eq!(resp.status, 101);
            if let Some(p) = &resp.subprotocol {
                assert!(offered.contains(p));
            }
            if let Some(ext) = &resp.extensions {
                assert!(opts.extensions.is_some());
                if let Ok(params) = client_accept(&cfg, ext) {
                    check_params(&params);
                }
            }
        }
        Outcome::Failed(HandshakeError::Status { status, .. }) => assert_ne!(status, 101),
        _ => {}
    }
}

// -------------------------------------------------------------------------------------------
// permessage-deflate
// -------------------------------------------------------------------------------------------

fn check_params(p: &DeflateParams) {
    assert!((8..=15).contains(&p.server_max_window_bits), "{p:?}");
    assert!((8..=15).contains(&p.client_max_window_bits), "{p:?}");
}

/// Offer/answer negotiation: arbitrary header values never panic, whatever a server answers
/// it would also accept as an offer, and the answer to any offer our client makes is accepted
/// by that client with the same parameters.
pub fn deflate_negotiate(data: &[u8]) {
    let mut r = Input::new(data);
    let server = deflate_config(r.u8(), r.u8());
    let client = deflate_config(r.u8(), r.u8());
    let text = String::from_utf8_lossy(r.rest());

    // The server reading an arbitrary offer.
    if let Ok(Some((params, answer))) = server_negotiate(&server, &text) {
        check_params(&params);
        assert!(answer
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)));
        if let Some(bits) = server.server_max_window_bits {
            assert!(params.server_max_window_bits <= bits);
        }
        assert!(params.server_no_context_takeover || !server.server_no_context_takeover);
        assert!(params.client_no_context_takeover || !server.client_no_context_takeover);
        // An answer is also a valid offer.
        let again = server_negotiate(&server, &answer);
        assert!(matches!(again, Ok(Some(_))), "{answer:?} -> {again:?}");
    }

    // The client reading an arbitrary answer.
    match client_accept(&client, &text) {
        Ok(params) => {
            assert!(client.enabled);
            check_params(&params);
            if client.server_no_context_takeover {
                assert!(params.server_no_context_takeover);
            }
            if client.client_no_context_takeover {
                assert!(params.client_no_context_takeover);
            }
            if let Some(bits) = client.server_max_window_bits {
                assert!(params.server_max_window_bits <= bits);
            }
            if let Some(bits) = client.client_max_window_bits {
                assert!(params.client_max_window_bits <= bits);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    // Our client's offer, answered by our server, read back by our client.
    if client.enabled && server.enabled {
        let offer = client_offer(&client);
        let (sp, answer) = match server_negotiate(&server, &offer) {
            Ok(Some(agreed)) => agreed,
            other => panic!("offer {offer:?} not accepted: {other:?}"),
        };
        let cp = match client_accept(&client, &answer) {
            Ok(cp) => cp,
            Err(e) => panic!("answer {answer:?} to {offer:?} refused: {e}"),
        };
        assert_eq!(
            sp.server_no_context_takeover, cp.server_no_context_takeover,
            "{offer} / {answer}"
        );
        assert_eq!(
            sp.client_no_context_takeover, cp.client_no_context_takeover,
            "{offer} / {answer}"
        );
        assert_eq!(
            sp.client_max_window_bits, cp.client_max_window_bits,
            "{offer} / {answer}"
        );
        // The server may compress with less than it announced, never with more.
        assert!(
            sp.server_max_window_bits <= cp.server_max_window_bits,
            "{offer} / {answer}"
        );
    }
}

/// The inflater with a size limit. Mode 0: arbitrary bytes as compressed messages in
/// arbitrary pieces; the output never passes the limit, in length or in capacity. Mode 1:
/// messages compressed by our compressor (any parameters, fragments) inflate back to
/// themselves, or fail with `TooBig` exactly when they exceed the limit.
pub fn inflate(data: &[u8]) {
    let mut r = Input::new(data);
    let mode = r.u8();
    let params = deflate_params(r.u8(), r.u8());
    let role = if mode & 2 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let limit = usize::from(r.u16());
    let mut chunker = Chunker::new(r.u8());
    let mut inflater = Decompressor::new(&params, role);
    let mut out = Vec::new();

    if mode & 1 == 0 {
        while !r.is_empty() {
            let len = usize::from(r.u16() % 2048);
            let message = r.take(len);
            out.clear();
            let mut pos = 0;
            let mut result = Ok(());
            while pos < message.len() && result.is_ok() {
                let n = chunker.next(message.len() - pos);
                result = inflater.decompress(&message[pos..pos + n], &mut out, limit);
                pos += n;
            }
            if result.is_ok() {
                result = inflater.finish(&mut out, limit);
            }
            assert!(out.len() <= limit, "{} > {limit}", out.len());
            assert!(
                out.capacity() <= limit,
                "capacity {} > {limit}",
                out.capacity()
            );
            if result.is_err() {
                return; // the connection fails; the inflater is not used again
            }
        }
        return;
    }

    let level = u32::from(mode >> 2 & 0x0F) % 10;
    let mem_level = 1 + (mode >> 6);
    let mut deflater = Compressor::new(&params, opposite(role), level, mem_level);
    let mut compressed = Vec::new();
    while !r.is_empty() {
        let fragments = usize::from(r.u8() % 4) + 1;
        let len = usize::from(r.u16() % 4096);
        let repeat = usize::from(r.u8() % 8) + 1;
        let message = r.take(len).repeat(repeat);
        out.clear();
        let mut result = Ok(());
        let piece = message.len().div_ceil(fragments).max(1);
        let mut pieces: Vec<&[u8]> = message.chunks(piece).collect();
        while pieces.len() < fragments {
            pieces.push(&[]);
        }
        for (i, p) in pieces.iter().enumerate() {
            let fin = i + 1 == pieces.len();
            compressed.clear();
            deflater.compress(p, fin, &mut compressed).expect("deflate");
            let mut pos = 0;
            while pos < compressed.len() && result.is_ok() {
                let n = chunker.next(compressed.len() - pos);
                result = inflater.decompress(&compressed[pos..pos + n], &mut out, limit);
                pos += n;
            }
        }
        if result.is_ok() {
            result = inflater.finish(&mut out, limit);
        }
        assert!(out.len() <= limit);
        assert!(out.capacity() <= limit);
        if message.len() > limit {
            assert_eq!(
                result,
                Err(DeflateError::TooBig),
                "{} > {limit}",
                message.len()
            );
            return;
        }
        assert_eq!(result, Ok(()));
        assert!(
            out == message,
            "round trip changed a {}-byte message",
            message.len()
        );
    }
}

// -------------------------------------------------------------------------------------------
// Connection
// -------------------------------------------------------------------------------------------

/// Heap a connection may hold besides its message buffer: the inflater (zlib-rs allocates
/// about 46 KiB), the pongs it may queue for a peer that does not read (up to
/// [`PONG_BACKLOG`], twice for the doubling of a growing `Vec`) and small change.
const CONNECTION_OVERHEAD: usize = (64 << 10) + 2 * PONG_BACKLOG;

/// The longest frame the engine queues by itself: a pong or a close, 125 bytes of payload.
const MAX_CONTROL_FRAME: usize = crate::frame::MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD;

/// Op codes of the connection harness's input (one byte each, then their arguments).
pub mod op {
    /// `n:u8, bytes[n]`: raw bytes to the incoming stream.
    pub const RAW: u8 = 0;
    /// `b0:u8, len:u8, flags:u8, key[4], payload[len]`: one frame with any first byte;
    /// masked as the peer should (flags bit 0 flips that).
    pub const FRAME: u8 = 1;
    /// `flags:u8, n:u16, payload[n]`: a well-formed data message from the peer. Flags: bit 0
    /// text, bit 1 compressed (when deflate is on), bits 2-3 fragments - 1, bit 4 a ping
    /// between fragments.
    pub const MESSAGE: u8 = 2;
    /// `n:u16`: receive the next `n` incoming bytes.
    pub const DELIVER: u8 = 3;
    /// Receive everything incoming.
    pub const DELIVER_ALL: u8 = 4;
    /// `n:u16`: the transport writes `n` bytes of output.
    pub const CONSUME: u8 = 5;
    /// `flags:u8, n:u8, payload[n]`: the application sends a message (bit 0 text, bit 1
    /// compress).
    pub const SEND: u8 = 6;
    /// `flags:u8, n:u8, payload[n]`: the application sends a ping (bit 0: a pong).
    pub const PING: u8 = 7;
    /// `code:u16, n:u8, reason[n]`: the application closes.
    pub const CLOSE: u8 = 8;
    /// `flags:u8, n:u8, payload[n]`: the application streams (bit 0 begin, bit 1 fin, bit 2
    /// text, bit 3 compress).
    pub const STREAM: u8 = 9;
    /// `n:u16, seed:u8`: receive the next `n` incoming bytes in pieces of 1 to 64 bytes.
    pub const DELIVER_PIECES: u8 = 10;
    pub const SHRINK: u8 = 11;
    pub const QUEUE_CLOSE_REPLY: u8 = 12;
    /// `code:u16, n:u8, reason[n]`: a well-formed close frame from the peer.
    pub const PEER_CLOSE: u8 = 13;
    /// `n:u8, payload[n]`: a ping from the peer.
    pub const PEER_PING: u8 = 14;
    /// `count:u16, n:u8, payload[n]`: `count % 2048` pings from the peer (a flood that passes
    /// the pong backlog).
    pub const PEER_PING_FLOOD: u8 = 15;
    /// Ops are taken modulo this.
    pub const COUNT: u8 = 16;
}

/// What the application saw or did, to check against what the peer receives.
#[derive(Debug, PartialEq, Eq)]
struct Sent {
    kind: MessageKind,
    data: Vec<u8>,
}

struct ConnHarness {
    conn: Connection,
    role: Role,
    config: Config,
    deflate: Option<(DeflateParams, DeflateConfig)>,
    /// The peer's compressor, for well-formed compressed input.
    peer_deflater: Option<Compressor>,
    incoming: Vec<u8>,
    /// Every byte the transport took from `pending_output`, in order.
    wire: Vec<u8>,
    /// Data messages the application queued, in order.
    sent: Vec<Sent>,
    /// The streamed message being sent.
    streaming: Option<Sent>,
    /// Bytes the application queued (sends, pings, closes): room for the output's growth.
    app_bytes: usize,
    /// Output queued by the engine itself since the transport last took some.
    engine_since_consume: isize,
    failed: Option<ProtocolError>,
    closed_by_peer: bool,
    /// The messages the peer sent, while every byte of input came from well-formed message,
    /// ping and close ops (`None` once raw bytes or arbitrary frames went in).
    expected_in: Option<Vec<Sent>>,
    /// The messages the connection delivered (copies), while `expected_in` is kept.
    received_in: Option<Vec<Sent>>,
    track: bool,
    /// Take each buffered message's buffer (and give it back when `recycle_buffers`).
    take_buffers: bool,
    recycle_buffers: bool,
}

impl ConnHarness {
    /// The most heap a connection may hold: its message buffer (twice the limit for the
    /// doubling of a growing `Vec`), the inflater, and output the application queued.
    fn heap_bound(&self) -> usize {
        2 * self.config.max_message_size + CONNECTION_OVERHEAD + 4 * self.app_bytes
    }

    fn check_heap(&self, what: &str) {
        if self.track {
            let peak = peak_tracked();
            assert!(
                peak <= self.heap_bound(),
                "{what}: the connection held {peak} bytes, more than {} (max_message_size {})",
                self.heap_bound(),
                self.config.max_message_size
            );
        }
    }

    fn mask_for_peer(&self) -> bool {
        // The peer of a server is a client, which masks.
        self.role == Role::Server
    }

    fn push_frame(&mut self, b0: u8, payload: &[u8], mask: Option<[u8; 4]>) {
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        self.incoming.push(b0);
        match payload.len() {
            n @ 0..=125 => self.incoming.push(mask_bit | n as u8),
            n @ 126..=0xFFFF => {
                self.incoming.push(mask_bit | 126);
                self.incoming.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                self.incoming.push(mask_bit | 127);
                self.incoming.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if let Some(key) = mask {
            self.incoming.extend_from_slice(&key);
        }
        let body = self.incoming.len();
        self.incoming.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.incoming[body..], key, 0);
        }
    }

    fn peer_mask(&self, r: &mut Input<'_>) -> Option<[u8; 4]> {
        self.mask_for_peer()
            .then(|| [r.u8(), r.u8(), r.u8(), r.u8()])
    }

    fn op_frame(&mut self, r: &mut Input<'_>) {
        let b0 = r.u8();
        let len = usize::from(r.u8());
        let flags = r.u8();
        let key = [r.u8(), r.u8(), r.u8(), r.u8()];
        let payload = r.take(len).to_vec();
        let masked = self.mask_for_peer() != (flags & 1 != 0);
        self.push_frame(b0, &payload, masked.then_some(key));
    }

    fn op_message(&mut self, r: &mut Input<'_>) {
        let flags = r.u8();
        let len = usize::from(r.u16() % 8192);
        let raw = r.take(len);
        let text = flags & 1 != 0;
        let payload: Vec<u8> = if text && flags & 0x20 == 0 {
            String::from_utf8_lossy(raw).into_owned().into_bytes()
        } else {
            raw.to_vec()
        };
        if let Some(expected) = self.expected_in.as_mut() {
            expected.push(Sent {
                kind: if text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                },
                data: payload.clone(),
            });
        }
        let compress = flags & 2 != 0 && self.deflate.is_some();
        let fragments = usize::from(flags >> 2 & 3) + 1;
        let ping_between = flags & 0x10 != 0;
        let piece = payload.len().div_ceil(fragments).max(1);
        let mut pieces: Vec<&[u8]> = payload.chunks(piece).collect();
        while pieces.len() < fragments {
            pieces.push(&[]);
        }
        let count = pieces.len();
        for (i, p) in pieces.into_iter().enumerate() {
            let fin = i + 1 == count;
            let opcode = match (i, text) {
                (0, true) => 0x1,
                (0, false) => 0x2,
                _ => 0x0,
            };
            let rsv1 = if compress && i == 0 { 0x40 } else { 0 };
            let b0 = (fin as u8) << 7 | rsv1 | opcode;
            let body = if compress {
                let mut out = Vec::new();
                let deflater = self.peer_deflater();
                if deflater.compress(p, fin, &mut out).is_err() {
                    return;
                }
                out
            } else {
                p.to_vec()
            };
            let mask = self.peer_mask(r);
            self.push_frame(b0, &body, mask);
            if ping_between && !fin {
                let mask = self.peer_mask(r);
                self.push_frame(0x89, b"between", mask);
            }
        }
    }

    fn peer_deflater(&mut self) -> &mut Compressor {
        let (params, cfg) = self.deflate.as_ref().expect("deflate on");
        let role = opposite(self.role);
        self.peer_deflater
            .get_or_insert_with(|| Compressor::new(params, role, cfg.level, cfg.mem_level))
    }

    fn deliver(&mut self, n: usize) {
        let n = n.min(self.incoming.len());
        let mut chunk: Vec<u8> = self.incoming.drain(..n).collect();
        let before_out = self.conn.buffered_amount();
        let mut pos = 0;
        let mut events = 0;
        loop {
            let was_failed = self.failed.is_some() || self.closed_by_peer;
            let sent_close_before = self.conn.sent_close().is_some();
            let max_message = self.config.max_message_size;
            let input = &mut chunk[pos..];
            let input_len = input.len();
            let conn = &mut self.conn;
            let received_in = &mut self.received_in;
            // Borrow the event only to copy out what is checked.
            let (consumed, seen) = tracked(|| {
                let received = conn.receive(input);
                let seen = received.event.as_ref().map(|event| {
                    let (is_text_ok, len) = match event {
                        Event::Message { kind, data, .. } => {
                            let ok = *kind == MessageKind::Binary
                                || (std::str::from_utf8(data).is_ok() && event.as_text().is_some());
                            if let Some(got) = received_in.as_mut() {
                                untracked(|| {
                                    got.push(Sent {
                                        kind: *kind,
                                        data: data.to_vec(),
                                    })
                                });
                            }
                            (ok, data.len())
                        }
                        Event::Ping(d) | Event::Pong(d) => (true, d.len()),
                        Event::Close { reason, .. } => (true, reason.len()),
                        Event::Failed { .. } => (true, 0),
                    };
                    let summary = match event {
                        Event::Message { buffered, .. } => Seen::Message(*buffered),
                        Event::Ping(_) => Seen::Ping,
                        Event::Pong(_) => Seen::Pong,
                        Event::Close { code, .. } => Seen::Close(*code),
                        Event::Failed { error } => Seen::Failed(*error),
                    };
                    (summary, is_text_ok, len)
                });
                (received.consumed, seen)
            });
            self.check_heap("receive");
            assert!(consumed <= input_len);
            pos += consumed;
            let Some((seen, text_ok, len)) = seen else {
                assert_eq!(pos, chunk.len(), "no event but input left");
                break;
            };
            assert!(
                !was_failed,
                "an event after the connection closed: {seen:?}"
            );
            events += 1;
            assert!(events <= chunk.len() + 2, "events without input");
            match seen {
                Seen::Message(buffered) => {
                    assert!(text_ok, "text message is not UTF-8");
                    assert!(
                        len <= max_message,
                        "{len}-byte message, limit {max_message}"
                    );
                    if buffered && self.take_buffers {
                        // The reassembly buffer stays within the limit too.
                        let buf = tracked(|| self.conn.take_message_buffer());
                        assert_eq!(buf.len(), len);
                        assert!(
                            buf.capacity() <= (2 * max_message).max(64),
                            "message buffer capacity {} for a limit of {max_message}",
                            buf.capacity()
                        );
                        if self.recycle_buffers {
                            tracked(|| self.conn.recycle_buffer(buf));
                        } else {
                            tracked(|| drop(buf));
                        }
                        self.check_heap("take_message_buffer");
                    }
                }
                Seen::Ping | Seen::Pong => {
                    assert!(len <= MAX_CONTROL_PAYLOAD);
                    if seen == Seen::Ping && !sent_close_before {
                        assert!(self.conn.buffered_amount() > 0, "ping not answered");
                    }
                }
                Seen::Close(code) => {
                    assert!(code.is_valid_on_wire() || code == CloseCode::NO_STATUS);
                    assert!(len <= MAX_CONTROL_PAYLOAD - 2);
                    assert_ne!(self.conn.state(), State::Open);
                    assert_eq!(consumed, input_len);
                    if !sent_close_before {
                        let expected = if code == CloseCode::NO_STATUS {
                            CloseCode::NORMAL
                        } else {
                            code
                        };
                        if self.config.defer_close_replies {
                            assert!(self.conn.close_reply_owed());
                        } else {
                            assert_eq!(self.conn.sent_close().map(|c| c.0), Some(expected));
                        }
                    }
                    self.closed_by_peer = true;
                }
                Seen::Failed(error) => {
                    assert_eq!(self.conn.state(), State::Closed);
                    assert_eq!(consumed, input_len);
                    if !sent_close_before {
                        if self.config.defer_close_replies {
                            assert!(self.conn.close_reply_owed());
                        } else {
                            let code = self.conn.sent_close().map(|c| c.0);
                            assert_eq!(code, Some(error.close_code()));
                        }
                    }
                    self.failed = Some(error);
                }
            }
        }
        self.engine_since_consume += self.conn.buffered_amount() as isize - before_out as isize;
        self.check_output_bound();
    }

    fn check_output_bound(&self) {
        // A peer that never reads can make us queue pongs up to the backlog (past it a newer
        // ping replaces the unsent pong), one more pong and one close, nothing more, between
        // two writes of the transport.
        assert!(
            self.engine_since_consume <= (PONG_BACKLOG + 2 * MAX_CONTROL_FRAME) as isize,
            "the engine queued {} bytes by itself without a write",
            self.engine_since_consume
        );
    }

    fn consume(&mut self, n: usize) {
        let out = self.conn.pending_output();
        let n = n.min(out.len());
        self.wire.extend_from_slice(&out[..n]);
        self.conn.consume(n);
        self.engine_since_consume = 0;
    }

    fn op_send(&mut self, r: &mut Input<'_>) {
        // What the engine queued before this is no longer the last thing in the output.
        self.engine_since_consume = 0;
        let flags = r.u8();
        let n = usize::from(r.u8());
        let raw = r.take(n);
        let kind = if flags & 1 != 0 {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        let data = match kind {
            MessageKind::Text => String::from_utf8_lossy(raw).into_owned().into_bytes(),
            MessageKind::Binary => raw.to_vec(),
        };
        let can = self.can_send();
        let compress = flags & 2 != 0;
        let result = if flags & 4 != 0 {
            // The runtime's direct path: a header to write, then the payload as is. Allowed
            // only with nothing of the engine's pending, so appending both to the wire keeps
            // the order the peer must see.
            match self.conn.send_message_or_head(kind, &data, compress, true) {
                Ok(crate::Sent::Direct(head)) => {
                    assert!(self.conn.pending_output().is_empty());
                    assert!(!self.conn.deflate_enabled());
                    self.wire.extend_from_slice(head.as_bytes());
                    self.wire.extend_from_slice(&data);
                    Ok(())
                }
                Ok(crate::Sent::Queued) => Ok(()),
                Err(e) => Err(e),
            }
        } else {
            self.conn.send_message(kind, &data, compress)
        };
        self.app_bytes += data.len() + 16;
        match result {
            Ok(()) => {
                assert!(can && self.streaming.is_none());
                self.sent.push(Sent { kind, data });
            }
            Err(SendError::Closed) => assert!(!can),
            Err(SendError::MessageInProgress) => assert!(self.streaming.is_some()),
            Err(SendError::CompressionFailed) => panic!("compression failed"),
            Err(e) => panic!("unexpected send error {e}"),
        }
    }

    fn can_send(&self) -> bool {
        self.conn.sent_close().is_none() && (self.failed.is_none() || self.conn.close_reply_owed())
    }

    fn op_stream(&mut self, r: &mut Input<'_>) {
        // What the engine queued before this is no longer the last thing in the output.
        self.engine_since_consume = 0;
        let flags = r.u8();
        let n = usize::from(r.u8());
        let raw = r.take(n).to_vec();
        let can = self.can_send();
        if flags & 1 != 0 {
            let kind = if flags & 4 != 0 {
                MessageKind::Text
            } else {
                MessageKind::Binary
            };
            match self.conn.begin_message(kind, flags & 8 != 0) {
                Ok(()) => {
                    assert!(can && self.streaming.is_none());
                    self.streaming = Some(Sent {
                        kind,
                        data: Vec::new(),
                    });
                }
                Err(SendError::Closed) => assert!(!can),
                Err(SendError::MessageInProgress) => assert!(self.streaming.is_some()),
                Err(e) => panic!("unexpected begin error {e}"),
            }
            return;
        }
        let fin = flags & 2 != 0;
        self.app_bytes += raw.len() + 16;
        match self.conn.send_fragment(&raw, fin) {
            Ok(()) => {
                let stream = self.streaming.as_mut().expect("a stream is open");
                stream.data.extend_from_slice(&raw);
                if fin {
                    let done = self.streaming.take().expect("open");
                    if done.kind == MessageKind::Text {
                        assert!(std::str::from_utf8(&done.data).is_ok());
                    }
                    self.sent.push(done);
                }
            }
            Err(SendError::Closed) => assert!(!can),
            Err(SendError::NoMessageInProgress) => assert!(self.streaming.is_none()),
            Err(SendError::InvalidUtf8) => {
                assert_eq!(
                    self.streaming.as_ref().map(|s| s.kind),
                    Some(MessageKind::Text)
                )
            }
            Err(e) => panic!("unexpected fragment error {e}"),
        }
    }

    fn op_ping(&mut self, r: &mut Input<'_>) {
        // What the engine queued before this is no longer the last thing in the output.
        self.engine_since_consume = 0;
        let flags = r.u8();
        let n = usize::from(r.u8());
        let data = r.take(n).to_vec();
        let can = self.can_send();
        self.app_bytes += data.len() + 16;
        let result = if flags & 1 == 0 {
            self.conn.send_ping(&data)
        } else {
            self.conn.send_pong(&data)
        };
        match result {
            Ok(()) => assert!(can && data.len() <= MAX_CONTROL_PAYLOAD),
            Err(SendError::Closed) => assert!(!can),
            Err(SendError::ControlPayloadTooLong) => assert!(data.len() > MAX_CONTROL_PAYLOAD),
            Err(e) => panic!("unexpected ping error {e}"),
        }
    }

    fn op_close(&mut self, r: &mut Input<'_>) {
        // What the engine queued before this is no longer the last thing in the output.
        self.engine_since_consume = 0;
        let code = r.u16();
        let n = usize::from(r.u8() % 130);
        let reason = String::from_utf8_lossy(r.take(n)).into_owned();
        let can = self.can_send();
        self.app_bytes += reason.len() + 16;
        match self.conn.close(code, &reason) {
            Ok(()) => {
                assert!(can && CloseCode(code).is_valid_on_wire() && reason.len() <= 123);
                assert_eq!(self.conn.sent_close(), Some((CloseCode(code), &reason[..])));
                assert!(!self.conn.close_reply_owed());
            }
            Err(SendError::Closed) => assert!(!can),
            Err(SendError::InvalidCloseCode(c)) => {
                assert_eq!(c, code);
                assert!(!CloseCode(code).is_valid_on_wire());
            }
            Err(SendError::ControlPayloadTooLong) => assert!(reason.len() > 123),
            Err(e) => panic!("unexpected close error {e}"),
        }
    }

    fn queue_close_reply(&mut self) {
        let before = self.conn.buffered_amount();
        tracked(|| self.conn.queue_close_reply());
        self.check_heap("queue_close_reply");
        self.engine_since_consume += self.conn.buffered_amount() as isize - before as isize;
        self.check_output_bound();
    }

    fn op_peer_close(&mut self, r: &mut Input<'_>) {
        let code = r.u16();
        let n = usize::from(r.u8() % 130);
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(r.take(n));
        let mask = self.peer_mask(r);
        self.push_frame(0x88, &payload, mask);
    }

    fn op_peer_ping(&mut self, r: &mut Input<'_>) {
        let n = usize::from(r.u8() % 126);
        let payload = r.take(n).to_vec();
        let mask = self.peer_mask(r);
        self.push_frame(0x89, &payload, mask);
    }

    /// Everything the transport wrote is a valid stream of frames for the peer: it carries
    /// the application's messages in order, and ends with a valid close frame when the
    /// connection failed or closed.
    fn check_wire(&self) {
        let peer_role = opposite(self.role);
        let mut peer = Connection::new(
            peer_role,
            Config {
                max_frame_size: usize::MAX,
                max_message_size: usize::MAX,
                defer_close_replies: false,
            },
        );
        if let Some((params, cfg)) = &self.deflate {
            peer.set_deflate(*params, cfg);
        }
        // The frames themselves, structurally: nothing after a close.
        let mut pos = 0;
        let mut close_at = None;
        while pos < self.wire.len() {
            let (h, n) = match FrameHeader::decode(&self.wire[pos..]) {
                Ok(Some(found)) => found,
                other => panic!("output at byte {pos} is no frame: {other:?}"),
            };
            assert_eq!(h.mask.is_some(), self.role == Role::Client, "masking");
            assert!(close_at.is_none(), "a frame after the close frame");
            if h.opcode == crate::frame::OpCode::Close {
                close_at = Some(pos);
            }
            pos += n + usize::try_from(h.payload_len).expect("small frame");
        }
        assert_eq!(pos, self.wire.len(), "output ends inside a frame");

        let mut wire = self.wire.clone();
        let mut pos = 0;
        let mut messages = Vec::new();
        let mut close = None;
        loop {
            let received = peer.receive(&mut wire[pos..]);
            pos += received.consumed;
            match received.event {
                None => break,
                Some(Event::Message { kind, data, .. }) => messages.push(Sent {
                    kind,
                    data: data.to_vec(),
                }),
                Some(Event::Failed { error }) => panic!("the peer failed on our output: {error}"),
                Some(Event::Close { code, reason }) => close = Some((code, reason.to_owned())),
                Some(Event::Ping(_) | Event::Pong(_)) => {}
            }
        }
        assert!(messages == self.sent, "the peer received other messages");
        let sent_close = self.conn.sent_close();
        match (&close, sent_close) {
            (Some((code, reason)), Some((sent, sent_reason))) => {
                assert!(code.is_valid_on_wire(), "close code {code} on the wire");
                assert_eq!((*code, reason.as_str()), (sent, sent_reason));
            }
            (None, None) => assert!(close_at.is_none()),
            other => panic!("close frame and sent_close disagree: {other:?}"),
        }
        if self.failed.is_some() {
            assert!(sent_close.is_some(), "a failed connection queued no close");
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Message(bool),
    Ping,
    Pong,
    Close(CloseCode),
    Failed(ProtocolError),
}

/// A whole [`Connection`], either role, with or without permessage-deflate, driven by a little
/// program of peer input (raw bytes, any frame, well-formed and compressed messages), deliveries
/// in arbitrary pieces, writes of the transport and calls of the application. Checked all
/// along: no panic; messages within `max_message_size` and text valid; the heap held within
/// the limits; output queued by the engine itself bounded; a closed or failed connection has
/// queued its close frame; and what the transport wrote is a valid frame stream carrying the
/// application's messages and a close code allowed on the wire.
pub fn connection(data: &[u8]) {
    let mut r = Input::new(data);
    let flags = r.u8();
    let role = if flags & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let config = Config {
        max_frame_size: if flags & 8 != 0 {
            usize::from(r.u16())
        } else {
            16 << 20
        },
        max_message_size: usize::from(r.u16()),
        defer_close_replies: flags & 2 != 0,
    };
    let deflate = (flags & 4 != 0).then(|| {
        let params = deflate_params(r.u8(), r.u8());
        (params, deflate_config(r.u8() & !1, r.u8()))
    });
    let track = reset_tracking();
    let mut conn = tracked(|| Connection::new(role, config.clone()));
    if let Some((params, cfg)) = &deflate {
        tracked(|| conn.set_deflate(*params, cfg));
    }
    let mut h = ConnHarness {
        conn,
        role,
        config,
        deflate,
        peer_deflater: None,
        incoming: Vec::new(),
        wire: Vec::new(),
        sent: Vec::new(),
        streaming: None,
        app_bytes: 0,
        engine_since_consume: 0,
        failed: None,
        closed_by_peer: false,
        expected_in: Some(Vec::new()),
        received_in: Some(Vec::new()),
        track,
        take_buffers: flags & 0x10 != 0,
        recycle_buffers: flags & 0x20 != 0,
    };
    let mut ops = 0;
    while !r.is_empty() && ops < 10_000 {
        ops += 1;
        match r.u8() % op::COUNT {
            op::RAW => {
                h.expected_in = None;
                h.received_in = None;
                let n = usize::from(r.u8());
                let raw = r.take(n);
                h.incoming.extend_from_slice(raw);
            }
            op::FRAME => {
                h.expected_in = None;
                h.received_in = None;
                h.op_frame(&mut r);
            }
            op::MESSAGE => h.op_message(&mut r),
            op::DELIVER => {
                let n = usize::from(r.u16());
                h.deliver(n);
            }
            op::DELIVER_ALL => h.deliver(usize::MAX),
            op::CONSUME => {
                let n = usize::from(r.u16());
                h.consume(n);
            }
            op::SEND => h.op_send(&mut r),
            op::PING => h.op_ping(&mut r),
            op::CLOSE => h.op_close(&mut r),
            op::STREAM => h.op_stream(&mut r),
            op::DELIVER_PIECES => {
                let n = usize::from(r.u16()).min(h.incoming.len());
                let mut chunker = Chunker::new(r.u8() | 1);
                let mut left = n;
                while left > 0 {
                    let piece = chunker.next(left);
                    h.deliver(piece);
                    left -= piece;
                }
            }
            op::SHRINK => {
                tracked(|| h.conn.shrink());
                h.check_heap("shrink");
            }
            op::QUEUE_CLOSE_REPLY => h.queue_close_reply(),
            op::PEER_CLOSE => h.op_peer_close(&mut r),
            op::PEER_PING => h.op_peer_ping(&mut r),
            op::PEER_PING_FLOOD => {
                let count = r.u16() % 2048;
                let n = usize::from(r.u8() % 126);
                let payload = r.take(n).to_vec();
                let mask = h.peer_mask(&mut r);
                for _ in 0..count {
                    h.push_frame(0x89, &payload, mask);
                }
            }
            _ => unreachable!("ops are taken modulo COUNT"),
        }
    }
    // The end: everything arrives, the application answers, the transport writes it all.
    h.deliver(usize::MAX);
    h.queue_close_reply();
    if h.failed.is_some() || h.closed_by_peer {
        assert!(
            h.conn.sent_close().is_some(),
            "closed without a close frame"
        );
        assert!(h.conn.wants_transport_close());
    }
    h.consume(usize::MAX);
    h.check_wire();
    if let (Some(expected), Some(received)) = (&h.expected_in, &h.received_in) {
        // Well-formed input arrives as sent, whatever the pieces and the compression; only a
        // failure (a limit, text that is not UTF-8) or the peer's close cut the list short.
        let n = received.len();
        assert!(n <= expected.len(), "more messages than the peer sent");
        assert!(received[..] == expected[..n], "a message arrived changed");
        if h.failed.is_none() && !h.closed_by_peer {
            assert_eq!(n, expected.len(), "messages lost");
        }
    }
    if let Some((code, _)) = h.conn.sent_close() {
        assert!(code.is_valid_on_wire(), "close code {code} on the wire");
    }
}

// -------------------------------------------------------------------------------------------
// URL
// -------------------------------------------------------------------------------------------

/// `Url::parse`: what it accepts prints and parses back to itself, makes a request our
/// server reads back with the same host and resource.
pub fn url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = Url::parse(text) else {
        return;
    };
    assert!(!url.host.is_empty());
    assert!(url.port != 0);
    assert!(url.resource.starts_with('/'));
    assert!(url.resource.bytes().all(|b| b.is_ascii_graphic()));
    let printed = url.to_string();
    assert_eq!(
        Url::parse(&printed).as_ref(),
        Ok(&url),
        "{text:?} printed as {printed:?}"
    );
    let hs = match ClientHandshake::with_key(&url, &ClientOptions::default(), CLIENT_KEY) {
        Ok(hs) => hs,
        Err(e) => panic!("{text:?} parsed but makes no request: {e}"),
    };
    let mut server = ServerHandshake::new(Limits {
        max_header_bytes: usize::MAX,
        max_headers: 64,
    });
    let request = match server.receive(hs.request()) {
        Ok(Some(q)) => q,
        other => panic!("{text:?}: our request does not read back: {other:?}"),
    };
    assert!(matches!(request.upgrade, Upgrade::WebSocket { .. }));
    assert_eq!(request.host.as_deref(), Some(url.host_header().as_str()));
    let target = match &request.query {
        Some(q) => format!("{}?{q}", request.path),
        None => request.path.clone(),
    };
    assert_eq!(target, url.resource);
}

// -------------------------------------------------------------------------------------------
// Proxy handshakes
// -------------------------------------------------------------------------------------------

/// The proxy harnesses' credentials.
pub const PROXY_USER: &str = "alice";
pub const PROXY_PASSWORD: &str = "s3cret";

/// The target a proxy harness asks for: `flags & 3` picks a domain name, an IPv4 address, an
/// IPv6 address or a domain of the longest length a SOCKS5 request can carry.
fn proxy_target(flags: u8) -> Target {
    let made = match flags & 3 {
        0 => Target::domain("echo.example", 443),
        1 => Target::new("192.0.2.1", 80),
        2 => Target::new("2001:db8::1", 8443),
        _ => Target::domain(&"n".repeat(crate::proxy::MAX_DOMAIN_LEN), 1),
    };
    made.expect("static target")
}

fn proxy_credentials(flags: u8) -> Option<Credentials> {
    (flags & 4 != 0).then(|| Credentials::new(PROXY_USER, PROXY_PASSWORD))
}

/// Whether a run of the tracked sections stayed within `bound` bytes of heap (always true
/// without [`TrackingAlloc`]).
fn within_heap(installed: bool, bound: usize) {
    if installed {
        let peak = peak_tracked();
        assert!(peak <= bound, "{peak} bytes of heap, bound {bound}");
    }
}

/// Feeds `stream` to an HTTP CONNECT reader in the pieces `chunker` picks; `Done` carries the
/// absolute offset of the first tunnel byte.
fn feed_http(
    hs: &mut HttpConnect,
    stream: &[u8],
    chunker: &mut Chunker,
    limits: &Limits,
) -> Outcome<Established, ProxyError> {
    let mut pos = 0;
    while pos < stream.len() {
        let len = chunker.next(stream.len() - pos);
        let chunk = &stream[pos..pos + len];
        match tracked(|| hs.receive(chunk)) {
            Ok(None) => pos += len,
            Ok(Some(mut done)) => {
                let start = done.body_start;
                assert!(start > 0 && start <= chunk.len(), "body_start {start}");
                let end = pos + start;
                // Interim responses and the final one, together within the limit.
                assert!(
                    end <= limits.max_header_bytes,
                    "answer longer than the limit"
                );
                assert!(stream[..end].ends_with(b"\n"));
                assert!((200..300).contains(&done.status), "{}", done.status);
                assert!(done.headers.len() <= limits.max_headers);
                assert_eq!(hs.receive(b"x"), Err(ProxyError::Finished));
                done.body_start = 0;
                return Outcome::Done(done, end);
            }
            Err(e) => {
                match &e {
                    ProxyError::HeaderTooLarge { limit } => {
                        assert_eq!(*limit, limits.max_header_bytes);
                        assert!(pos + len >= *limit);
                    }
                    ProxyError::TooManyHeaders { limit } => assert_eq!(*limit, limits.max_headers),
                    ProxyError::Refused { status, .. } => {
                        assert!(!(200..300).contains(status), "{status}");
                        // Interim 1xx responses are skipped; 101 alone is final.
                        assert!(!(100..200).contains(status) || *status == 101, "{status}");
                    }
                    ProxyError::Malformed(_) => {}
                    other => panic!("unexpected error reading a response: {other:?}"),
                }
                let _ = e.to_string();
                assert_eq!(hs.receive(b"x"), Err(ProxyError::Finished));
                return Outcome::Failed(e);
            }
        }
    }
    Outcome::NeedMore
}

/// The request an [`HttpConnect`] writes: `CONNECT authority HTTP/1.1`, `Host` the same
/// authority, and the Basic credentials when given.
fn check_connect_request(request: &[u8], target: &Target, credentials: Option<&Credentials>) {
    use base64::Engine as _;
    let mut headers = [httparse::EMPTY_HEADER; 4];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(request) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!("our CONNECT request does not parse: {other:?}"),
    };
    assert_eq!(len, request.len());
    assert_eq!(req.method, Some("CONNECT"));
    let authority = target.authority();
    assert_eq!(req.path, Some(authority.as_str()));
    assert_eq!(req.version, Some(1));
    assert_eq!(req.headers[0].name, "Host");
    assert_eq!(req.headers[0].value, authority.as_bytes());
    let auth = req.headers.iter().find(|h| h.name == "Proxy-Authorization");
    match (credentials, auth) {
        (None, None) => {}
        (Some(c), Some(h)) => {
            let encoded = h.value.strip_prefix(b"Basic ").expect("Basic scheme");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("base64");
            assert_eq!(decoded, [&c.username[..], b":", &c.password[..]].concat());
        }
        other => panic!("credentials and Proxy-Authorization disagree: {other:?}"),
    }
}

/// The HTTP CONNECT response reader over arbitrary bytes in arbitrary pieces: the same
/// answer whatever the pieces (up to where a broken line is noticed, as for the handshake),
/// never past the limits, interim responses skipped, `body_start` inside the input, heap
/// bounded by the limits. Input: limits byte, flags (target, credentials), chunk seed, the
/// proxy's bytes.
pub fn proxy_http_connect_reply(data: &[u8]) {
    let mut r = Input::new(data);
    let limits = limits(&mut r);
    let flags = r.u8();
    let seed = r.u8();
    let stream = r.rest();
    let target = proxy_target(flags);
    let credentials = proxy_credentials(flags);
    let opts = HttpConnectOptions {
        credentials: credentials.clone(),
        headers: Vec::new(),
        limits: limits.clone(),
    };
    // The reader buffers one header block (doubling a Vec up to the limit), httparse's
    // header array beyond 64 entries, and the owned headers of the answer.
    let heap_bound = 4 * limits.max_header_bytes + 256 * limits.max_headers + 8192;
    let run = |seed| {
        let installed = reset_tracking();
        let mut hs = tracked(|| HttpConnect::new(&target, &opts)).expect("static request");
        check_connect_request(hs.request(), &target, credentials.as_ref());
        let outcome = feed_http(&mut hs, stream, &mut Chunker::new(seed), &limits);
        tracked(move || drop(hs));
        within_heap(installed, heap_bound);
        outcome
    };
    let whole = run(0);
    let pieces = run(seed);
    let unfinished = |x: &Outcome<Established, ProxyError>| {
        matches!(
            x,
            Outcome::NeedMore
                | Outcome::Failed(
                    ProxyError::Malformed(_)
                        | ProxyError::TooManyHeaders { .. }
                        | ProxyError::HeaderTooLarge { .. }
                )
        )
    };
    assert!(
        whole == pieces || (unfinished(&whole) && unfinished(&pieces)),
        "the pieces changed the answer: {whole:?} / {pieces:?}"
    );
}

/// What a SOCKS5 run came to: the tunnel open at an absolute offset with the bound address,
/// an error, or more bytes needed.
type Socks5Outcome = Outcome<Option<crate::proxy::Bound>, ProxyError>;

/// Feeds the proxy's `stream` to `s`, the piece lengths from `next_len`; sends (takes) every
/// request as soon as it is queued, and checks each against what the handshake must say.
fn feed_socks5(
    s: &mut Socks5,
    stream: &[u8],
    mut next_len: impl FnMut(usize) -> usize,
    target: &Target,
    credentials: Option<&Credentials>,
) -> Socks5Outcome {
    let mut sent = Vec::new();
    let mut take = |s: &mut Socks5| {
        let out = s.output().to_vec();
        s.consume_output(out.len());
        assert!(s.output().is_empty());
        sent.push(out);
    };
    take(s);
    let mut pos = 0;
    let outcome = loop {
        if pos >= stream.len() {
            break Outcome::NeedMore;
        }
        let len = next_len(stream.len() - pos);
        let chunk = &stream[pos..pos + len];
        match tracked(|| s.receive(chunk)) {
            Ok(Progress::NeedMore) => {
                assert!(s.output().is_empty());
                pos += len;
            }
            Ok(Progress::Send) => {
                assert!(!s.output().is_empty());
                take(s);
                pos += len;
            }
            Ok(Progress::Done { body_start }) => {
                assert!(body_start > 0 && body_start <= chunk.len(), "{body_start}");
                assert!(s.output().is_empty());
                assert!(s.bound().is_some());
                assert_eq!(s.receive(b"x"), Err(ProxyError::Finished));
                break Outcome::Done(s.bound().cloned(), pos + body_start);
            }
            Err(e) => {
                assert!(
                    !matches!(
                        e,
                        ProxyError::Finished
                            | ProxyError::InvalidCredentials(_)
                            | ProxyError::InvalidDomain(_)
                    ),
                    "{e:?}"
                );
                let _ = e.to_string();
                assert!(s.output().is_empty());
                assert_eq!(s.receive(b"x"), Err(ProxyError::Finished));
                break Outcome::Failed(e);
            }
        }
    };
    // What was sent: the greeting, the RFC 1929 request only if credentials were given, and
    // the CONNECT request last, never more than the reply it was answered with allows.
    let greeting: &[u8] = match credentials {
        Some(_) => b"\x05\x02\x00\x02",
        None => b"\x05\x01\x00",
    };
    assert_eq!(sent[0], greeting);
    let mut rest = sent[1..].iter();
    let mut next = rest.next();
    if let (Some(c), Some(auth)) = (credentials, next) {
        if auth.first() == Some(&1) {
            let expected = [
                &[1, c.username.len() as u8][..],
                &c.username,
                &[c.password.len() as u8],
                &c.password,
            ]
            .concat();
            assert_eq!(auth, &expected);
            next = rest.next();
        }
    }
    if let Some(connect) = next {
        let mut expected = vec![5, 1, 0];
        match (target.ip_addr(), target.domain_name()) {
            (Some(std::net::IpAddr::V4(v4)), _) => {
                expected.push(1);
                expected.extend_from_slice(&v4.octets());
            }
            (Some(std::net::IpAddr::V6(v6)), _) => {
                expected.push(4);
                expected.extend_from_slice(&v6.octets());
            }
            (None, name) => {
                let name = name.expect("a target is an address or a name").as_bytes();
                expected.extend_from_slice(&[3, name.len() as u8]);
                expected.extend_from_slice(name);
            }
        }
        expected.extend_from_slice(&target.port().to_be_bytes());
        assert_eq!(connect, &expected);
        assert!(rest.next().is_none(), "more requests than the protocol has");
    } else {
        assert!(
            !matches!(outcome, Outcome::Done(..)),
            "done without a request"
        );
    }
    outcome
}

/// The SOCKS5 client over arbitrary proxy bytes in arbitrary pieces (each request sent as
/// soon as it is queued): never more than a reply's worth of heap, `body_start` inside the
/// input, the requests what RFC 1928 / 1929 prescribe, and the same answer as when the bytes
/// come one at a time, except that a piece running past an answer before the reply is
/// refused ([`ProxyError::UnexpectedBytes`]). Input: flags (target, credentials), chunk seed,
/// the proxy's bytes.
pub fn proxy_socks5_reply(data: &[u8]) {
    let mut r = Input::new(data);
    let flags = r.u8();
    let seed = r.u8();
    let stream = r.rest();
    let target = proxy_target(flags);
    let credentials = proxy_credentials(flags);
    let run = |next_len: &mut dyn FnMut(usize) -> usize| {
        let installed = reset_tracking();
        let mut s = tracked(|| Socks5::new(&target, credentials.as_ref())).expect("static");
        let outcome = feed_socks5(&mut s, stream, next_len, &target, credentials.as_ref());
        tracked(move || drop(s));
        // The queued requests (the greeting, an RFC 1929 request of 513 bytes at most, a
        // CONNECT request of 262 at most) and one answer of MAX_REPLY_LEN bytes at most.
        within_heap(installed, 2 * (4 + 513 + 262 + MAX_REPLY_LEN));
        outcome
    };
    let mut chunker = Chunker::new(seed);
    let pieces = run(&mut |left| chunker.next(left));
    let bytes = run(&mut |_| 1);
    assert!(
        pieces == bytes || matches!(pieces, Outcome::Failed(ProxyError::UnexpectedBytes { .. })),
        "the pieces changed the answer: {pieces:?} / {bytes:?}"
    );
}
