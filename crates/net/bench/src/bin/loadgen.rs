//! Echo load generator: N connections, each with K messages of S bytes in flight, counting
//! the echoes for a fixed time after a warm-up. One thread, mio, no WebSocket library: the
//! frames are built once (binary, masked as RFC 6455 requires of clients) and written from a
//! buffer that repeats them, and answers are counted by their frame headers alone, masked or
//! not, so the same generator drives a raw TCP echo (which sends our masked frames back
//! unchanged) and WebSocket servers.
//!
//! Throughput:  loadgen --port P [--raw] [--conns 16] [--inflight 8] [--size 16]
//!                      [--warmup 1] [--duration 5] [--server-pid PID] [--text] [--deflate]
//!   --text     compressible text messages (JSON-like lines) instead of binary noise
//!   --deflate  --text, compressed: offers permessage-deflate with client_no_context_takeover,
//!              so one precompressed frame stands for every message; the server inflates
//!              and deflates each one
//! Idle memory: loadgen --port P --idle 5000 [--duration 3] --server-pid PID
//!
//! Prints one line of `key=value` fields.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

struct Args {
    port: u16,
    raw: bool,
    conns: usize,
    inflight: u64,
    size: usize,
    warmup: f64,
    duration: f64,
    server_pid: Option<u32>,
    idle: usize,
    text: bool,
    deflate: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        port: 0,
        raw: false,
        conns: 16,
        inflight: 8,
        size: 16,
        warmup: 1.0,
        duration: 5.0,
        server_pid: None,
        idle: 0,
        text: false,
        deflate: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--raw" => {
                a.raw = true;
                i += 1;
                continue;
            }
            "--text" | "--deflate" => {
                a.text = true;
                a.deflate |= args[i] == "--deflate";
                i += 1;
                continue;
            }
            "--port" => a.port = v.parse().expect("--port"),
            "--conns" => a.conns = v.parse().expect("--conns"),
            "--inflight" => a.inflight = v.parse().expect("--inflight"),
            "--size" => a.size = v.parse().expect("--size"),
            "--warmup" => a.warmup = v.parse().expect("--warmup"),
            "--duration" => a.duration = v.parse().expect("--duration"),
            "--server-pid" => a.server_pid = Some(v.parse().expect("--server-pid")),
            "--idle" => a.idle = v.parse().expect("--idle"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// `size` bytes of compressible text: JSON-like lines with changing numbers.
fn text_payload(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 100);
    let mut i = 0u64;
    while out.len() < size {
        let line = format!(
            "{{\"id\":{i},\"user\":\"player{}\",\"x\":{},\"y\":{},\"event\":\"move\"}}\n",
            i % 97,
            i * 7 % 1000,
            i * 13 % 1000
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(size);
    out
}

/// Raw deflate with a sync flush, minus the 00 00 ff ff tail (RFC 7692 section 7.2.1).
fn deflate_message(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync)
        .expect("deflate");
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// One frame with a fixed mask, payload already masked: binary noise, or text (compressed
/// and marked with RSV1 for `deflate`).
fn client_frame(size: usize, text: bool, deflate: bool) -> Vec<u8> {
    let payload: Vec<u8> = if text {
        let t = text_payload(size);
        if deflate {
            deflate_message(&t)
        } else {
            t
        }
    } else {
        (0..size).map(|i| i as u8 ^ 0x5a).collect()
    };
    let size = payload.len();
    let first = match (text, deflate) {
        (false, _) => 0x82,
        (true, false) => 0x81,
        (true, true) => 0xc1,
    };
    let mut f = vec![first];
    if size < 126 {
        f.push(0x80 | size as u8);
    } else if size < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(size as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(size as u64).to_be_bytes());
    }
    let key = [0x12, 0x34, 0x56, 0x78];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

const UPGRADE_DEFLATE: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n\r\n";

struct Conn {
    sock: TcpStream,
    /// The upgrade request to send.
    upgrade: &'static [u8],
    /// Still reading the 101 response (WebSocket mode).
    handshaking: bool,
    head: Vec<u8>,
    /// Bytes of the upgrade request still to write.
    request_left: usize,
    /// A frame header split across reads.
    carry: [u8; 14],
    carry_len: usize,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    /// Frames to send, and bytes of the first one already written.
    to_send: u64,
    partial: usize,
}

/// Counts the frames completed in `data`, skipping payloads.
fn count_frames(c: &mut Conn, data: &[u8]) -> u64 {
    let mut done = 0;
    let mut i = 0;
    while i < data.len() {
        if c.skip > 0 {
            let take = (c.skip as usize).min(data.len() - i);
            c.skip -= take as u64;
            i += take;
            if c.skip == 0 {
                done += 1;
            }
            continue;
        }
        let take = (14 - c.carry_len).min(data.len() - i);
        c.carry[c.carry_len..c.carry_len + take].copy_from_slice(&data[i..i + take]);
        let have = c.carry_len + take;
        let h = &c.carry[..have];
        let header_len = if have < 2 {
            None
        } else {
            let ext = match h[1] & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            Some(2 + ext + if h[1] & 0x80 != 0 { 4 } else { 0 })
        };
        match header_len {
            Some(hl) if have >= hl => {
                let len = match h[1] & 0x7f {
                    126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
                    127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
                    n => u64::from(n),
                };
                i += hl - c.carry_len;
                c.carry_len = 0;
                if len == 0 {
                    done += 1;
                } else {
                    c.skip = len;
                }
            }
            _ => {
                c.carry_len = have;
                i += take;
            }
        }
    }
    done
}

/// Writes pending frames from `batch` (the frame repeated). Returns false on a dead socket.
fn write_frames(c: &mut Conn, batch: &[u8], flen: usize) -> bool {
    if c.request_left > 0 {
        let start = c.upgrade.len() - c.request_left;
        match c.sock.write(&c.upgrade[start..]) {
            Ok(n) => c.request_left -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
        return true;
    }
    if c.handshaking {
        return true;
    }
    while c.to_send > 0 {
        let pending = (c.to_send as usize)
            .saturating_mul(flen)
            .saturating_sub(c.partial);
        let len = pending.min(batch.len() - c.partial);
        match c.sock.write(&batch[c.partial..c.partial + len]) {
            Ok(n) => {
                let total = c.partial + n;
                c.to_send -= (total / flen) as u64;
                c.partial = total % flen;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// User + system CPU seconds of a process, from /proc (clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn connect(poll: &Poll, port: u16, token: usize, raw: bool, deflate: bool) -> io::Result<Conn> {
    let upgrade = if deflate { UPGRADE_DEFLATE } else { UPGRADE };
    let mut sock = TcpStream::connect(([127, 0, 0, 1], port).into())?;
    poll.registry().register(
        &mut sock,
        Token(token),
        Interest::READABLE | Interest::WRITABLE,
    )?;
    Ok(Conn {
        sock,
        upgrade,
        handshaking: !raw,
        head: Vec::new(),
        request_left: if raw { 0 } else { upgrade.len() },
        carry: [0; 14],
        carry_len: 0,
        skip: 0,
        to_send: 0,
        partial: 0,
    })
}

fn main() -> io::Result<()> {
    let a = parse_args();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    if a.idle > 0 {
        return idle(&a, &mut poll, &mut events);
    }
    let frame = client_frame(a.size, a.text, a.deflate);
    let flen = frame.len();
    let copies = ((256 << 10) / flen).max(2);
    let batch: Vec<u8> = frame.iter().copied().cycle().take(flen * copies).collect();
    let mut conns = Vec::new();
    for i in 0..a.conns {
        let mut c = connect(&poll, a.port, i, a.raw, a.deflate)?;
        if a.raw {
            c.to_send = a.inflight;
        }
        c.sock.set_nodelay(true)?;
        conns.push(c);
    }
    let mut buf = vec![0u8; 256 << 10];
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(a.warmup);
    let end = warm_end + Duration::from_secs_f64(a.duration);
    let mut received: u64 = 0;
    let mut at_warm: Option<(u64, Option<f64>, Instant)> = None;
    loop {
        let now = Instant::now();
        if at_warm.is_none() && now >= warm_end {
            at_warm = Some((received, a.server_pid.and_then(cpu_seconds), now));
        }
        if now >= end {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if ev.is_readable() {
                loop {
                    match c.sock.read(&mut buf) {
                        Ok(0) => panic!("server closed a connection"),
                        Ok(n) => {
                            let mut data = &buf[..n];
                            if c.handshaking {
                                c.head.extend_from_slice(data);
                                let Some(p) = c.head.windows(4).position(|w| w == b"\r\n\r\n")
                                else {
                                    continue;
                                };
                                assert!(c.head.starts_with(b"HTTP/1.1 101"), "upgrade refused");
                                let agreed = String::from_utf8_lossy(&c.head[..p])
                                    .to_ascii_lowercase()
                                    .contains("permessage-deflate");
                                assert_eq!(agreed, a.deflate, "deflate negotiation");
                                c.handshaking = false;
                                c.to_send = a.inflight;
                                let rest = c.head.split_off(p + 4);
                                let got = count_frames(c, &rest);
                                received += got;
                                c.to_send += got;
                                data = &[];
                            }
                            let got = count_frames(c, data);
                            received += got;
                            c.to_send += got;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if !write_frames(c, &batch, flen) {
                panic!("connection died");
            }
            // The upgrade request may have gone out on this event; frames follow the 101.
            if c.request_left == 0 && !c.handshaking && c.to_send > 0 {
                write_frames(c, &batch, flen);
            }
        }
    }
    let (r0, cpu0, t0) = at_warm.expect("warm-up ended");
    let secs = t0.elapsed().as_secs_f64();
    let msgs = received - r0;
    let rate = msgs as f64 / secs;
    let cpu = match (cpu0, a.server_pid.and_then(cpu_seconds)) {
        (Some(c0), Some(c1)) => c1 - c0,
        _ => f64::NAN,
    };
    println!(
        "size={} conns={} inflight={} msgs={} secs={:.2} msg_per_s={:.0} mib_per_s={:.1} server_cpu_s={:.2} server_us_per_msg={:.3}",
        a.size,
        a.conns,
        a.inflight,
        msgs,
        secs,
        rate,
        rate * a.size as f64 / (1 << 20) as f64,
        cpu,
        cpu * 1e6 / msgs as f64
    );
    Ok(())
}

/// Opens `a.idle` WebSocket connections, leaves them idle, and reports the server's resident
/// memory per connection.
fn idle(a: &Args, poll: &mut Poll, events: &mut Events) -> io::Result<()> {
    let pid = a.server_pid.expect("--idle needs --server-pid");
    let before = rss_kib(pid).expect("server rss");
    let mut conns = Vec::new();
    let mut open = 0usize;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(120);
    while open < a.idle && Instant::now() < deadline {
        // Connect in batches so that the server's accept queue never overflows.
        while conns.len() < a.idle && conns.len() < open + 512 {
            let c = connect(poll, a.port, conns.len(), false, false)?;
            conns.push(c);
        }
        poll.poll(events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            write_frames(c, &[], 1);
            if ev.is_readable() && c.handshaking {
                while let Ok(n) = c.sock.read(&mut buf) {
                    if n == 0 {
                        panic!("server closed a connection");
                    }
                    c.head.extend_from_slice(&buf[..n]);
                }
                if c.head.windows(4).any(|w| w == b"\r\n\r\n") {
                    assert!(c.head.starts_with(b"HTTP/1.1 101"), "upgrade refused");
                    c.handshaking = false;
                    c.head = Vec::new();
                    open += 1;
                }
            }
        }
    }
    assert_eq!(open, a.idle, "not every connection opened");
    // Idle long enough for the server to release what idle connections do not need.
    let settle = Instant::now() + Duration::from_secs_f64(a.duration);
    while Instant::now() < settle {
        poll.poll(events, Some(Duration::from_millis(100)))?;
    }
    let after = rss_kib(pid).expect("server rss");
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / a.idle as f64;
    println!(
        "idle_conns={} server_rss_before_kib={before} server_rss_after_kib={after} bytes_per_conn={per:.0}",
        a.idle
    );
    Ok(())
}
