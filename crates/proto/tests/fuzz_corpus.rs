//! Replays every committed fuzz input, on the stable toolchain, through the same harness
//! functions the `cargo fuzz` targets call (`tidewire_proto::fuzzing`): the seed corpora and
//! minimized corpora in `fuzz/corpus/<target>/` and the crash inputs kept as regressions in
//! `fuzz/regressions/<target>/`. An input that once crashed stays a test.
//!
//! `cargo test -p tidewire-proto --test fuzz_corpus -- --ignored write_seeds` (re)writes the
//! hand-made seeds (`seed-*` files: RFC 6455 / RFC 7692 examples, the unit tests' vectors,
//! Autobahn-like frames) into the corpus directories; `make fuzz-cmin` minimizes them.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use tidewire_proto::deflate::{Compressor, DeflateParams};
use tidewire_proto::fuzzing::{self, op, TrackingAlloc, TARGETS};
use tidewire_proto::Role;

// Turns on the connection harness's check of the heap each connection holds.
#[global_allocator]
static ALLOC: TrackingAlloc = TrackingAlloc;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn harness(target: &str) -> fn(&[u8]) {
    TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no harness {target}"))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let run = harness(target);
    let corpus = files_in(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "no corpus for {target} in {}",
        fuzz_dir().display()
    );
    let regressions = files_in(&fuzz_dir().join("regressions").join(target));
    let mut failed = Vec::new();
    let count = corpus.len() + regressions.len();
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).expect("read corpus file");
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {count} inputs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

macro_rules! replay_tests {
    ($($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*
        /// Every harness has its test above.
        #[test]
        fn every_target_is_replayed() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in TARGETS {
                assert!(tested.contains(name), "{name} is not replayed");
            }
        }
    };
}

replay_tests!(
    frame_header,
    mask,
    server_handshake,
    client_handshake,
    deflate_negotiate,
    inflate,
    connection,
    url,
    proxy_http_reply,
    proxy_socks5_reply
);

// -------------------------------------------------------------------------------------------
// Seeds
// -------------------------------------------------------------------------------------------

/// A program for the connection harness (see `fuzzing::op`); `.1`: the engine is the client
/// (so the peer's frames carry no mask key).
struct Prog(Vec<u8>, bool);

impl Prog {
    /// `client`: the engine plays the client. `deflate`: permessage-deflate with these
    /// parameter and config bytes.
    fn new(client: bool, defer: bool, max_message: u16, deflate: Option<[u8; 4]>) -> Prog {
        let flags = client as u8 | (defer as u8) << 1 | (deflate.is_some() as u8) << 2 | 0x30;
        let mut p = vec![flags];
        p.extend_from_slice(&max_message.to_be_bytes());
        if let Some(d) = deflate {
            p.extend_from_slice(&d);
        }
        Prog(p, client)
    }

    /// A mask key when the peer masks (the engine is the server).
    fn key(&mut self) {
        if !self.1 {
            self.0.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]);
        }
    }

    fn raw(mut self, bytes: &[u8]) -> Prog {
        for chunk in bytes.chunks(255) {
            self.0.extend_from_slice(&[op::RAW, chunk.len() as u8]);
            self.0.extend_from_slice(chunk);
        }
        self
    }

    /// A frame with first byte `b0`, masked as the peer should.
    fn frame(mut self, b0: u8, payload: &[u8]) -> Prog {
        assert!(payload.len() < 256);
        self.0.extend_from_slice(&[
            op::FRAME,
            b0,
            payload.len() as u8,
            0,
            0x37,
            0xfa,
            0x21,
            0x3d,
        ]);
        self.0.extend_from_slice(payload);
        self
    }

    /// A frame masked the wrong way for the peer.
    fn wrong_mask(mut self, b0: u8, payload: &[u8]) -> Prog {
        self.0
            .extend_from_slice(&[op::FRAME, b0, payload.len() as u8, 1, 1, 2, 3, 4]);
        self.0.extend_from_slice(payload);
        self
    }

    /// A message in `flags >> 2 & 3` + 1 frames (see `op::MESSAGE`).
    fn message(mut self, flags: u8, payload: &[u8]) -> Prog {
        self.0.push(op::MESSAGE);
        self.0.push(flags);
        self.0
            .extend_from_slice(&(payload.len() as u16).to_be_bytes());
        self.0.extend_from_slice(payload);
        // Mask keys for every frame (and the pings between them).
        let frames = usize::from(flags >> 2 & 3) + 1;
        let pings = if flags & 0x10 != 0 { frames - 1 } else { 0 };
        for _ in 0..frames + pings {
            self.key();
        }
        self
    }

    fn deliver(mut self, n: u16) -> Prog {
        self.0.push(op::DELIVER);
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    fn deliver_all(mut self) -> Prog {
        self.0.push(op::DELIVER_ALL);
        self
    }

    fn pieces(mut self, n: u16, seed: u8) -> Prog {
        self.0.push(op::DELIVER_PIECES);
        self.0.extend_from_slice(&n.to_be_bytes());
        self.0.push(seed);
        self
    }

    fn consume(mut self, n: u16) -> Prog {
        self.0.push(op::CONSUME);
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    fn send(mut self, flags: u8, payload: &[u8]) -> Prog {
        self.0
            .extend_from_slice(&[op::SEND, flags, payload.len() as u8]);
        self.0.extend_from_slice(payload);
        self
    }

    fn ping(mut self, flags: u8, payload: &[u8]) -> Prog {
        self.0
            .extend_from_slice(&[op::PING, flags, payload.len() as u8]);
        self.0.extend_from_slice(payload);
        self
    }

    fn close(mut self, code: u16, reason: &str) -> Prog {
        self.0.push(op::CLOSE);
        self.0.extend_from_slice(&code.to_be_bytes());
        self.0.push(reason.len() as u8);
        self.0.extend_from_slice(reason.as_bytes());
        self
    }

    fn stream(mut self, flags: u8, payload: &[u8]) -> Prog {
        self.0
            .extend_from_slice(&[op::STREAM, flags, payload.len() as u8]);
        self.0.extend_from_slice(payload);
        self
    }

    fn peer_close(mut self, code: u16, reason: &[u8]) -> Prog {
        self.0.push(op::PEER_CLOSE);
        self.0.extend_from_slice(&code.to_be_bytes());
        self.0.push(reason.len() as u8);
        self.0.extend_from_slice(reason);
        self.key();
        self
    }

    fn peer_ping(mut self, payload: &[u8]) -> Prog {
        self.0
            .extend_from_slice(&[op::PEER_PING, payload.len() as u8]);
        self.0.extend_from_slice(payload);
        self.key();
        self
    }

    fn ping_flood(mut self, count: u16, payload: &[u8]) -> Prog {
        self.0.push(op::PEER_PING_FLOOD);
        self.0.extend_from_slice(&count.to_be_bytes());
        self.0.push(payload.len() as u8);
        self.0.extend_from_slice(payload);
        self.key();
        self
    }

    fn shrink(mut self) -> Prog {
        self.0.push(op::SHRINK);
        self
    }

    fn queue_close_reply(mut self) -> Prog {
        self.0.push(op::QUEUE_CLOSE_REPLY);
        self
    }
}

/// Header bytes of a frame: `b0`, then the length in the given encoding.
fn header(b0: u8, masked: bool, len: u64, ext: usize) -> Vec<u8> {
    let m = if masked { 0x80 } else { 0 };
    let mut h = vec![b0];
    match ext {
        0 => h.push(m | len as u8),
        2 => {
            h.push(m | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(m | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    if masked {
        h.extend_from_slice(&[0x37, 0xfa, 0x21, 0x3d]);
    }
    h
}

fn compressed(text: &[u8], params: &DeflateParams, role: Role) -> Vec<u8> {
    let mut c = Compressor::new(params, role, 6, 8);
    let mut out = Vec::new();
    c.compress(text, true, &mut out).expect("deflate");
    out
}

const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";

/// Autobahn case 6.3.1's invalid UTF-8 ("κόσμε" with a surrogate inside).
const BAD_UTF8: &[u8] =
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";

fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut all: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let mut add = |target: &'static str, name: &str, data: Vec<u8>| {
        all.push((target, name.to_owned(), data));
    };

    // frame_header: RFC 6455 section 5.7 and the header unit tests.
    for (name, bytes) in [
        (
            "hello-unmasked",
            vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        ),
        (
            "hello-masked",
            vec![
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
        ),
        ("fragment-first", vec![0x01, 0x03, 0x48, 0x65, 0x6c]),
        ("fragment-last", vec![0x80, 0x02, 0x6c, 0x6f]),
        ("ping", vec![0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
        (
            "pong-masked",
            vec![0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f],
        ),
        ("len-256", vec![0x82, 0x7E, 0x01, 0x00]),
        ("len-65536", vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]),
        (
            "len-65536-masked",
            vec![0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4],
        ),
        ("len-top-bit", vec![0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        (
            "len-max",
            vec![0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        ),
        ("len-nonminimal", vec![0x82, 0x7E, 0x00, 0x05]),
        ("reserved-opcode", vec![0x83, 0x00]),
        ("reserved-control", vec![0x8B, 0x00]),
        ("control-too-long", vec![0x89, 0x7E, 0x00, 0x7E]),
        ("control-fragmented", vec![0x09, 0x00]),
        ("rsv-bits", vec![0xF1, 0x00]),
    ] {
        add("frame_header", name, bytes);
    }

    // mask: key, phase, offset, split, repeat, payload.
    add(
        "mask",
        "hello",
        b"\x37\xfa\x21\x3d\x00\x00\x00\x02\x00Hello".to_vec(),
    );
    add(
        "mask",
        "unaligned-long",
        [&[1u8, 2, 3, 4, 3, 5, 0, 200, 31][..], &[0x55; 100][..]].concat(),
    );

    // server_handshake: limits byte, chunk seed, request.
    let with = |extra: &str| RFC_REQUEST.replace("\r\n\r\n", &format!("\r\n{extra}\r\n"));
    let requests = [
        ("rfc", RFC_REQUEST.to_owned()),
        (
            "deflate",
            with("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"),
        ),
        (
            "deflate-params",
            with("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits=\"12\"; server_no_context_takeover, permessage-deflate\r\nSec-WebSocket-Extensions: x-webkit-deflate-frame"),
        ),
        ("version-8", RFC_REQUEST.replace("Version: 13", "Version: 8")),
        ("no-key", RFC_REQUEST.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "")),
        ("short-key", RFC_REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==")),
        ("post", RFC_REQUEST.replace("GET", "POST")),
        ("http10", RFC_REQUEST.replace("HTTP/1.1", "HTTP/1.0")),
        ("two-hosts", with("Host: other.example")),
        ("bad-protocol", with("Sec-WebSocket-Protocol: a b")),
        ("plain-get", "GET /index.html?x=1 HTTP/1.1\r\nHost: a\r\n\r\n".to_owned()),
        ("obs-fold", with("X-Folded: a\r\n b")),
        (
            "with-frame",
            format!("{RFC_REQUEST}\u{81}\u{85}7\u{fa}!=\u{7f}\u{9f}MQX"),
        ),
        ("garbage", "\u{16}\u{3}\u{1}\u{0}\u{a5}\u{1}\r\n\r\n".to_owned()),
        ("lf-only", RFC_REQUEST.replace("\r\n", "\n")),
    ];
    for (name, req) in &requests {
        for (limits, seed) in [(0u8, 0u8), (0, 7)] {
            let mut data = vec![limits, seed];
            data.extend_from_slice(req.as_bytes());
            add("server_handshake", &format!("{name}-{seed}"), data);
        }
    }
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..70 {
        many.push_str(&format!("X-{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    add(
        "server_handshake",
        "many-headers",
        [&[0u8, 3][..], many.as_bytes()].concat(),
    );
    add(
        "server_handshake",
        "small-limits",
        [&[0xC3u8, 0][..], RFC_REQUEST.as_bytes()].concat(),
    );

    // client_handshake: limits, flags (bit 0-1 subprotocols, bit 2 deflate), seed, response.
    let responses = [
        ("rfc", 0u8, format!("{RFC_RESPONSE}\r\n")),
        (
            "protocol",
            2,
            format!("{RFC_RESPONSE}Sec-WebSocket-Protocol: chat\r\n\r\n"),
        ),
        (
            "unoffered-protocol",
            1,
            format!("{RFC_RESPONSE}Sec-WebSocket-Protocol: superchat\r\n\r\n"),
        ),
        (
            "deflate",
            4,
            format!("{RFC_RESPONSE}Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10; server_no_context_takeover\r\n\r\n"),
        ),
        (
            "unoffered-deflate",
            0,
            format!("{RFC_RESPONSE}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
        ),
        (
            "forbidden",
            0,
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!".to_owned(),
        ),
        (
            "bad-accept",
            0,
            RFC_RESPONSE.replace("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAA") + "\r\n",
        ),
        (
            "two-accepts",
            0,
            format!("{RFC_RESPONSE}Sec-WebSocket-Accept: x\r\n\r\n"),
        ),
        (
            "with-frame",
            0,
            format!("{RFC_RESPONSE}\r\n\u{81}\u{5}Hello"),
        ),
        ("no-upgrade", 0, RFC_RESPONSE.replace("Upgrade: websocket\r\n", "") + "\r\n"),
    ];
    for (name, flags, resp) in &responses {
        for seed in [0u8, 5] {
            let mut data = vec![0, *flags, seed];
            data.extend_from_slice(resp.as_bytes());
            add("client_handshake", &format!("{name}-{seed}"), data);
        }
    }

    // deflate_negotiate: server config (2 bytes), client config (2 bytes), header value.
    for (i, value) in [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=10, permessage-deflate",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; client_max_window_bits=\"10\"",
        "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits; client_max_window_bits",
        "permessage-deflate; foo=bar",
        "x-webkit-deflate-frame, permessage-deflate; a=\"b\\\"c\"",
        "  ,, permessage-deflate ;\tclient_max_window_bits = 15 ,",
        "permessage-deflate; =",
        "",
    ]
    .iter()
    .enumerate()
    {
        for cfg in [[0u8, 0, 0, 0], [0x30, 0xC5, 0x10, 0xFF]] {
            let mut data = cfg.to_vec();
            data.extend_from_slice(value.as_bytes());
            add("deflate_negotiate", &format!("{i}-{}", cfg[0]), data);
        }
    }

    // inflate, mode 0 (mode, params (2), limit (2), seed, then [len:u16, bytes]*).
    let hello = [0xf2u8, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]; // RFC 7692 section 7.2.3.1
    let bfinal = [0xf3u8, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]; // section 7.2.3.4
    let stored = [
        0x00u8, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ]; // 7.2.3.3
    let params = DeflateParams::default();
    let bomb = {
        let mut c = Compressor::new(&params, Role::Client, 9, 8);
        let mut out = Vec::new();
        c.compress(&vec![0u8; 200_000], true, &mut out)
            .expect("deflate");
        out
    };
    for (name, limit, messages) in [
        ("hello", 100u16, vec![&hello[..], &hello[..]]),
        ("hello-limit-3", 3, vec![&hello[..]]),
        ("bfinal", 100, vec![&bfinal[..], &hello[..]]),
        ("stored", 100, vec![&stored[..]]),
        ("bomb", 4096, vec![&bomb[..]]),
    ] {
        for seed in [0u8, 3] {
            let mut data = vec![0, 0, 0xFF];
            data.extend_from_slice(&limit.to_be_bytes());
            data.push(seed);
            for m in &messages {
                data.extend_from_slice(&(m.len() as u16).to_be_bytes());
                data.extend_from_slice(m);
            }
            add("inflate", &format!("{name}-{seed}"), data);
        }
    }
    // inflate, mode 1: round trips ([fragments, len:u16, repeat, bytes]*).
    for (name, mode, p0, limit, text) in [
        (
            "text",
            1u8 | 6 << 2,
            0u8,
            60000u16,
            &b"Hello, Hello, Hello! permessage-deflate"[..],
        ),
        (
            "no-takeover",
            3 | 1 << 2,
            3,
            60000,
            &b"{\"a\": [1, 2, 3], \"b\": \"xyzxyzxyz\"}"[..],
        ),
        ("too-big", 1, 0, 10, &b"0123456789abcdef"[..]),
    ] {
        let mut data = vec![mode, p0, 0x70];
        data.extend_from_slice(&limit.to_be_bytes());
        data.push(9);
        for fragments in [0u8, 2] {
            data.push(fragments);
            data.extend_from_slice(&(text.len() as u16).to_be_bytes());
            data.push(3);
            data.extend_from_slice(text);
        }
        add("inflate", name, data);
    }

    // url.
    for (i, u) in [
        "ws://example.com/chat",
        "wss://example.com:8443/a/b?x=1&y=%20",
        "WS://EXAMPLE.com",
        "ws://127.0.0.1:9001/runCase?case=1&agent=tidewire",
        "ws://[::1]:80/",
        "wss://[2001:db8::1]/?",
        "ws://host:/",
        "ws://user@host/",
        "ws://host/#frag",
        "http://host/",
        "ws://host:65536/",
        "ws://ho st/",
        "ws:host",
        "ws://[::1/",
    ]
    .iter()
    .enumerate()
    {
        add("url", &i.to_string(), u.as_bytes().to_vec());
    }

    // proxy_http_reply: limits byte, flags (target: & 3, credentials: & 4), chunk seed, the
    // proxy's response.
    let tls_hello = "\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}";
    let interim_flood = "HTTP/1.1 100 Continue\r\n\r\n".repeat(400);
    for (name, limits, flags, resp) in [
        (
            "200",
            0u8,
            0u8,
            format!("HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n{tls_hello}"),
        ),
        ("200-http10", 0, 1, "HTTP/1.0 200 OK\r\n\r\n".to_owned()),
        (
            "100-then-200",
            0,
            2,
            format!("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\n\r\n{tls_hello}"),
        ),
        (
            "200-content-length",
            0,
            3,
            format!("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{tls_hello}"),
        ),
        (
            "200-chunked",
            0,
            0,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_owned(),
        ),
        (
            "407",
            0,
            4,
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"proxy\"\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n".to_owned(),
        ),
        (
            "403",
            0,
            5,
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!".to_owned(),
        ),
        ("502", 0, 6, "HTTP/1.1 502 Bad Gateway\r\n\r\n".to_owned()),
        (
            "101",
            0,
            0,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_owned(),
        ),
        ("ssh", 0, 0, "SSH-2.0-OpenSSH_9.6\r\n".to_owned()),
        ("socks-reply", 0, 0, "\u{5}\u{0}".to_owned()),
        (
            "too-many-headers",
            0x81,
            0,
            "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n".to_owned(),
        ),
        (
            "too-large",
            0x80,
            0,
            "HTTP/1.1 200 Connection established\r\n\r\n".to_owned(),
        ),
        ("interim-flood", 0, 0, interim_flood),
        ("folded-header", 0, 0, "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n".to_owned()),
    ] {
        for seed in [0u8, 5] {
            let mut data = vec![limits, flags, seed];
            data.extend_from_slice(resp.as_bytes());
            add("proxy_http_reply", &format!("{name}-{seed}"), data);
        }
    }

    // proxy_socks5_reply: flags (target: & 3, credentials: & 4), chunk seed, every byte the
    // proxy sends (method selection, authentication status, reply, tunnel data).
    let reply_v4: &[u8] = b"\x05\x00\x00\x01\xc0\x00\x02\x01\x1f\x90";
    let reply_v6: &[u8] = b"\x05\x00\x00\x04\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01\x01\xbb";
    let reply_domain: &[u8] = b"\x05\x00\x00\x03\x0dproxy.example\x04\x38";
    let reply_long = [&b"\x05\x00\x00\x03\xff"[..], &[b'n'; 255], b"\x00\x50"].concat();
    let hello: &[u8] = b"\x16\x03\x01\x02\x00\x01";
    let mut socks: Vec<(String, u8, Vec<u8>)> = vec![
        (
            "noauth-v4".into(),
            1,
            [b"\x05\x00", reply_v4, hello].concat(),
        ),
        ("noauth-v6".into(), 2, [b"\x05\x00", reply_v6].concat()),
        (
            "noauth-domain".into(),
            0,
            [b"\x05\x00", reply_domain, hello].concat(),
        ),
        (
            "noauth-long".into(),
            3,
            [&b"\x05\x00"[..], &reply_long, hello].concat(),
        ),
        (
            "userpass-domain".into(),
            4,
            [b"\x05\x02", b"\x01\x00", reply_domain, hello].concat(),
        ),
        (
            "userpass-v6".into(),
            6,
            [b"\x05\x02", b"\x01\x00", reply_v6].concat(),
        ),
        ("creds-noauth".into(), 5, [b"\x05\x00", reply_v4].concat()),
        (
            "auth-ver-5".into(),
            4,
            [b"\x05\x02", b"\x05\x00", reply_v4].concat(),
        ),
        ("auth-failed".into(), 4, b"\x05\x02\x01\x01".to_vec()),
        ("no-acceptable".into(), 4, b"\x05\xff".to_vec()),
        ("unoffered".into(), 0, b"\x05\x02".to_vec()),
        (
            "http-answer".into(),
            0,
            b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        ),
        ("bad-rsv".into(), 0, b"\x05\x00\x05\x00\x01\x01".to_vec()),
        ("bad-atyp".into(), 0, b"\x05\x00\x05\x00\x00\x02".to_vec()),
        ("early".into(), 0, [b"\x05\x00\x05\x00", reply_v4].concat()),
    ];
    for rep in 1u8..=9 {
        let mut reply = reply_v4.to_vec();
        reply[1] = rep;
        socks.push((format!("rep-{rep}"), 0, [b"\x05\x00", &reply[..]].concat()));
    }
    for (name, flags, bytes) in socks {
        for seed in [0u8, 3] {
            let mut data = vec![flags, seed];
            data.extend_from_slice(&bytes);
            add("proxy_socks5_reply", &format!("{name}-{seed}"), data);
        }
    }

    // connection: RFC 6455 and Autobahn-like exchanges, each role.
    let d = Some([0u8, 0x77, 0x02, 0x20]); // deflate: takeover, windows 15, level 1
    let dn = Some([3u8, 0x00, 0x0C, 0x00]); // no context takeover, 8-bit windows
    let mut conn = |name: &str, p: Prog| add("connection", name, p.0);
    for (role, client) in [("server", false), ("client", true)] {
        let masked = !client;
        let raw_hello = if masked {
            vec![
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ]
        } else {
            vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        };
        let r = |n: &str| format!("{role}-{n}");
        conn(
            &r("rfc-hello"),
            Prog::new(client, false, 1000, None)
                .raw(&raw_hello)
                .deliver_all(),
        );
        conn(
            &r("rfc-fragments"),
            Prog::new(client, false, 1000, None)
                .frame(0x01, b"Hel")
                .frame(0x89, b"")
                .frame(0x80, b"lo")
                .pieces(100, 3),
        );
        conn(
            &r("ping-pong"),
            Prog::new(client, false, 1000, None)
                .frame(0x89, b"Hello")
                .frame(0x8A, b"Hello")
                .deliver_all()
                .consume(3)
                .peer_ping(b"again")
                .deliver_all()
                .consume(1000),
        );
        conn(
            &r("messages"),
            Prog::new(client, false, 4000, None)
                .message(1, "κόσμε and more text".as_bytes())
                .message(0x0E, &[0xAB; 300])
                .message(0x11, b"split text with pings")
                .pieces(2000, 9)
                .send(1, b"echo")
                .send(0, &[1, 2, 3])
                .consume(2)
                .peer_close(1000, b"bye")
                .deliver_all(),
        );
        conn(
            &r("deferred-close"),
            Prog::new(client, true, 1000, None)
                .frame(0x81, b"hi")
                .peer_close(1001, b"")
                .deliver_all()
                .send(1, b"answer before the close")
                .queue_close_reply(),
        );
        conn(
            &r("app-close"),
            Prog::new(client, false, 1000, None)
                .ping(0, b"p")
                .stream(0x05, b"")
                .stream(0x00, "κό".as_bytes())
                .stream(0x02, "σμε".as_bytes())
                .close(1000, "done")
                .close(1000, "again")
                .frame(0x88, &[0x03, 0xE8])
                .deliver_all(),
        );
        conn(
            &r("bad-utf8"),
            Prog::new(client, false, 1000, None)
                .frame(0x81, BAD_UTF8)
                .deliver_all(),
        );
        conn(
            &r("bad-utf8-fragmented"),
            Prog::new(client, true, 1000, None)
                .frame(0x01, &BAD_UTF8[..12])
                .frame(0x80, &BAD_UTF8[12..])
                .pieces(100, 1)
                .send(0, b"x"),
        );
        for (n, code) in [
            ("999", 999u16),
            ("1005", 1005),
            ("1016", 1016),
            ("5000", 5000),
            ("3000", 3000),
        ] {
            conn(
                &r(&format!("close-{n}")),
                Prog::new(client, false, 1000, None)
                    .peer_close(code, b"reason")
                    .deliver_all(),
            );
        }
        conn(
            &r("close-1-byte"),
            Prog::new(client, false, 1000, None)
                .frame(0x88, &[0x03])
                .deliver_all(),
        );
        conn(
            &r("close-bad-reason"),
            Prog::new(client, false, 1000, None)
                .peer_close(1000, b"\xff\xfe")
                .deliver_all(),
        );
        conn(
            &r("reserved-opcode"),
            Prog::new(client, false, 1000, None)
                .frame(0x83, b"")
                .deliver_all(),
        );
        conn(
            &r("reserved-control"),
            Prog::new(client, false, 1000, None)
                .frame(0x8B, b"x")
                .deliver_all(),
        );
        conn(
            &r("rsv-bits"),
            Prog::new(client, false, 1000, None)
                .frame(0xC1, b"x")
                .deliver_all(),
        );
        conn(
            &r("ping-126"),
            Prog::new(client, false, 1000, None)
                .frame(0x89, &[0; 126])
                .deliver_all(),
        );
        conn(
            &r("ping-fragmented"),
            Prog::new(client, false, 1000, None)
                .frame(0x09, b"x")
                .deliver_all(),
        );
        conn(
            &r("continuation-first"),
            Prog::new(client, false, 1000, None)
                .frame(0x80, b"x")
                .deliver_all(),
        );
        conn(
            &r("text-in-fragmented"),
            Prog::new(client, false, 1000, None)
                .frame(0x01, b"a")
                .frame(0x81, b"b")
                .deliver_all(),
        );
        conn(
            &r("message-too-big"),
            Prog::new(client, false, 10, None)
                .frame(0x01, b"0123456")
                .frame(0x80, b"789ab")
                .deliver_all(),
        );
        conn(
            &r("length-2-63"),
            Prog::new(client, false, 1000, None)
                .raw(&header(0x82, masked, (1 << 63) - 1, 8))
                .deliver_all(),
        );
        conn(
            &r("length-top-bit"),
            Prog::new(client, false, 1000, None)
                .raw(&header(0x82, masked, 1 << 63, 8))
                .deliver_all(),
        );
        conn(
            &r("length-16-bit"),
            Prog::new(client, false, 60000, None)
                .raw(&header(0x82, masked, 300, 2))
                .raw(&[0x42; 300])
                .pieces(400, 17),
        );
        conn(
            &r("wrong-mask"),
            Prog::new(client, false, 1000, None)
                .wrong_mask(0x81, b"x")
                .deliver_all(),
        );
        conn(
            &r("ping-flood"),
            Prog::new(client, false, 1000, None)
                .peer_ping(b"1")
                .peer_ping(b"2")
                .peer_ping(&[7; 125])
                .deliver_all()
                .peer_ping(b"3")
                .deliver(3)
                .deliver_all()
                .shrink(),
        );
        conn(
            &r("ping-flood-past-backlog"),
            Prog::new(client, false, 1000, None)
                .ping_flood(200, &[0x70; 125])
                .deliver_all()
                .consume(100)
                .ping_flood(150, &[0x71; 125])
                .pieces(30000, 13)
                .deliver_all(),
        );
        // permessage-deflate.
        let peer = if client { Role::Server } else { Role::Client };
        let hello = [0xf2u8, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        conn(
            &r("deflate-rfc-hello"),
            Prog::new(client, false, 1000, d)
                .frame(0xC1, &hello)
                .frame(0xC1, &hello)
                .frame(0xC1, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
                .frame(
                    0xC1,
                    &[
                        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
                    ],
                )
                .frame(0x41, &[0xf2, 0x48])
                .frame(0x80, &[0xcd, 0xc9, 0xc9, 0x07, 0x00])
                .deliver_all(),
        );
        conn(
            &r("deflate-messages"),
            Prog::new(client, false, 3000, d)
                .message(0x03, "the same words, the same words again".as_bytes())
                .message(0x03, "the same words, the same words again".as_bytes())
                .message(0x1E, &[0x61; 2000])
                .pieces(3000, 5)
                .send(3, b"a compressed answer, long enough to pass the threshold")
                .stream(0x09, b"")
                .stream(0x00, b"streamed ")
                .stream(0x02, b"and compressed")
                .consume(20)
                .shrink()
                .message(0x02, b"after shrink")
                .deliver_all(),
        );
        conn(
            &r("deflate-no-takeover"),
            Prog::new(client, false, 3000, dn)
                .message(0x03, "κόσμε κόσμε κόσμε".as_bytes())
                .message(0x07, "κόσμε κόσμε κόσμε".as_bytes())
                .deliver_all()
                .send(3, &[0x62; 100]),
        );
        let bomb = compressed(&vec![0u8; 60000], &DeflateParams::default(), peer);
        conn(
            &r("deflate-bomb"),
            Prog::new(client, false, 1000, d)
                .raw(&{
                    let mut f = header(
                        0xC2,
                        masked,
                        bomb.len() as u64,
                        if bomb.len() > 125 { 2 } else { 0 },
                    );
                    let mut body = bomb.clone();
                    if masked {
                        tidewire_proto::frame::apply_mask(&mut body, [0x37, 0xfa, 0x21, 0x3d], 0);
                    }
                    f.extend_from_slice(&body);
                    f
                })
                .pieces(2000, 11),
        );
        conn(
            &r("deflate-corrupt"),
            Prog::new(client, false, 1000, d)
                .frame(0xC1, &[0xff; 8])
                .deliver_all(),
        );
        conn(
            &r("deflate-rsv1-continuation"),
            Prog::new(client, false, 1000, d)
                .frame(0x01, b"a")
                .frame(0xC0, b"b")
                .deliver_all(),
        );
        conn(
            &r("deflate-rsv1-ping"),
            Prog::new(client, false, 1000, d)
                .frame(0xC9, b"")
                .deliver_all(),
        );
        conn(
            &r("deflate-bad-utf8"),
            Prog::new(client, false, 1000, d)
                .message(0x23, BAD_UTF8)
                .deliver_all(),
        );
    }
    all
}

/// Writes the hand-made seeds into `fuzz/corpus/<target>/seed-<name>`.
#[test]
#[ignore = "writes into the source tree; run by hand to regenerate the seeds"]
fn write_seeds() {
    for (target, name, data) in seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
    }
}

/// The seeds themselves pass every harness (also when they have been minimized away).
#[test]
fn seeds_pass() {
    let mut failed = Vec::new();
    for (target, name, data) in seeds() {
        let run = harness(target);
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(format!("{target}/{name}"));
        }
    }
    assert!(failed.is_empty(), "seeds failed: {failed:?}");
    let _ = fuzzing::CLIENT_KEY;
}

/// Runs one input by hand: `FUZZ_TARGET=connection FUZZ_FILE=crash-... cargo test -p
/// tidewire-proto --test fuzz_corpus -- --ignored one_file --nocapture`.
#[test]
#[ignore = "runs the file named by FUZZ_FILE through FUZZ_TARGET"]
fn one_file() {
    let target = std::env::var("FUZZ_TARGET").expect("FUZZ_TARGET");
    let file = std::env::var("FUZZ_FILE").expect("FUZZ_FILE");
    harness(&target)(&std::fs::read(file).expect("read FUZZ_FILE"));
}
