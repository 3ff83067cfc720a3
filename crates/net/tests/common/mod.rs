//! Shared by the integration tests: a context with an echo listener, and a loop that drives
//! it until a condition holds or a deadline passes (every test is time-bounded).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use tidewire_net::{Config, ConnId, Context, Event, Events, ListenOptions, ListenerId};

/// Fails the test instead of hanging when something never happens.
pub const TEST_DEADLINE: Duration = Duration::from_secs(30);

pub struct Harness {
    pub ctx: Context,
    pub events: Events,
    pub listener: ListenerId,
    pub port: u16,
}

impl Harness {
    pub fn new(config: Config, options: ListenOptions) -> Harness {
        let mut ctx = Context::new(config).expect("context");
        let listener = ctx.listen("127.0.0.1", 0, options).expect("listen");
        let port = ctx.local_addr(listener).expect("local addr").port();
        let events = ctx.new_events();
        Harness {
            ctx,
            events,
            listener,
            port,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }

    /// Polls, handing each event to `f` (with the context, so it can send), until `f`
    /// returns true or `limit` passes. Returns whether `f` returned true.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&mut Context, Event<'_>) -> bool,
    ) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            self.ctx
                .poll(&mut self.events, Some(Duration::from_millis(20)))
                .expect("poll");
            let mut done = false;
            for ev in self.events.iter() {
                if f(&mut self.ctx, ev) {
                    done = true;
                }
            }
            if done {
                return true;
            }
        }
        false
    }
}

/// Polls until a server-side connection opens; returns it.
pub fn wait_server_open(h: &mut Harness) -> ConnId {
    let mut server = None;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Open { conn, .. } = ev {
            server = Some(conn);
        }
        server.is_some()
    }));
    server.expect("open")
}

/// Server-side echo of one event (messages echoed with their own kind). Returns true for
/// server-side events it handled.
pub fn echo(ctx: &mut Context, ev: &Event<'_>, server_conns: &[ConnId]) -> bool {
    if let Event::Message { conn, kind, data } = *ev {
        if server_conns.contains(&conn) {
            ctx.send(conn, kind, data).expect("echo send");
            return true;
        }
    }
    false
}

/// Deterministic bytes of a given length (no RNG dependency).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect()
}

pub fn text_pattern(len: usize) -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 ";
    (0..len)
        .map(|i| alphabet[i % alphabet.len()] as char)
        .collect()
}

/// A hand-driven blocking client for the tests that need a misbehaving peer: one that sends
/// nothing, never answers a close, stops reading, or resets the connection.
pub struct RawClient {
    pub sock: std::net::TcpStream,
    pending: Vec<u8>,
}

impl RawClient {
    /// Connects and sends an upgrade request for `path` with `extra` header lines; returns
    /// the client and the response head (status line and headers).
    pub fn upgrade(port: u16, path: &str, extra: &str) -> std::io::Result<(RawClient, String)> {
        use std::io::{Read, Write};
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", port))?;
        sock.set_read_timeout(Some(TEST_DEADLINE))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        );
        sock.write_all(request.as_bytes())?;
        let mut got = Vec::new();
        let mut byte = [0u8; 1024];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).into_owned();
                let pending = got[end + 4..].to_vec();
                return Ok((RawClient { sock, pending }, head));
            }
            let n = sock.read(&mut byte)?;
            if n == 0 {
                let head = String::from_utf8_lossy(&got).into_owned();
                return Ok((
                    RawClient {
                        sock,
                        pending: Vec::new(),
                    },
                    head,
                ));
            }
            got.extend_from_slice(&byte[..n]);
        }
    }

    /// Wraps a socket connected by hand.
    pub fn from_stream(sock: std::net::TcpStream) -> RawClient {
        RawClient {
            sock,
            pending: Vec::new(),
        }
    }

    /// Upgrades and asserts a 101.
    pub fn open(port: u16) -> RawClient {
        let (client, head) = RawClient::upgrade(port, "/", "").expect("raw upgrade");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        client
    }

    /// Sends one masked frame.
    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        use std::io::Write;
        let mut frame = vec![(u8::from(fin) << 7) | opcode];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len < 65536 {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let key = [0x37, 0xfa, 0x21, 0x3d];
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        self.sock.write_all(&frame).expect("raw send");
    }

    fn fill(&mut self, want: usize) -> std::io::Result<()> {
        use std::io::Read;
        let mut buf = [0u8; 65536];
        while self.pending.len() < want {
            let n = self.sock.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
        Ok(())
    }

    /// Reads one (unmasked, server) frame: (fin, opcode, payload).
    pub fn read_frame(&mut self) -> std::io::Result<(bool, u8, Vec<u8>)> {
        let (b0, payload) = self.read_frame_raw()?;
        Ok((b0 & 0x80 != 0, b0 & 0x0f, payload))
    }

    /// Reads one (unmasked, server) frame: its first byte (FIN, RSV1-3, opcode) and payload.
    pub fn read_frame_raw(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        self.fill(2)?;
        let (b0, b1) = (self.pending[0], self.pending[1]);
        let (len, header) = match b1 & 0x7f {
            126 => {
                self.fill(4)?;
                (
                    u16::from_be_bytes([self.pending[2], self.pending[3]]) as usize,
                    4,
                )
            }
            127 => {
                self.fill(10)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.pending[2..10]);
                (u64::from_be_bytes(b) as usize, 10)
            }
            n => (n as usize, 2),
        };
        self.fill(header + len)?;
        let payload = self.pending[header..header + len].to_vec();
        self.pending.drain(..header + len);
        Ok((b0, payload))
    }

    /// Reads until EOF (or error); returns whether EOF came.
    pub fn wait_eof(&mut self) -> bool {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        loop {
            match self.sock.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}
