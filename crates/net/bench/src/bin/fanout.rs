//! Fan-out load generator (issue 14): one publisher and N subscribers on one server, which
//! relays every message of the publisher to every subscriber (`tidewire_fanout`,
//! `tungstenite_fanout`). One thread, mio, no WebSocket library: the publisher sends masked
//! text frames; the subscribers parse the server's frames themselves and verify every
//! message: each carries its sequence number, each subscriber must see 0, 1, 2, ... with the
//! exact payload (inflated when compressed), and at the end every subscriber must have
//! received every message sent. Any gap, duplicate, reordering or corruption panics.
//!
//!   fanout --port P --server-pid PID [--subs 1000] [--size 16] [--deflate] [--window 16]
//!          [--warmup 1] [--duration 3] [--per-addr 4000]
//!   --deflate   subscribers offer permessage-deflate as browsers do
//!               (`permessage-deflate; client_max_window_bits`); the publisher never does
//!   --window    publishes in flight (see the pacing below)
//!   --per-addr  subscribers per loopback source address (127.0.0.2, 127.0.0.3, ...)
//!
//! Prints one line of `key=value` fields: deliveries (messages received by all subscribers)
//! per second of wall time, the server's CPU time (user + system, /proc/PID/stat) per
//! delivery, this process's CPU share (if near 100 %, the subscriber side limits the rate),
//! and the server's resident memory: when all subscribers are connected and idle, and its
//! peak above that while publishing (`/proc/PID/clear_refs` resets the peak).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Socket, Type};

struct Args {
    port: u16,
    server_pid: u32,
    subs: usize,
    size: usize,
    deflate: bool,
    window: u64,
    warmup: f64,
    duration: f64,
    per_addr: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        port: 0,
        server_pid: 0,
        subs: 1000,
        size: 16,
        deflate: false,
        window: 16,
        warmup: 1.0,
        duration: 3.0,
        per_addr: 4000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--deflate" {
            a.deflate = true;
            i += 1;
            continue;
        }
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--port" => a.port = v.parse().expect("--port"),
            "--server-pid" => a.server_pid = v.parse().expect("--server-pid"),
            "--subs" => a.subs = v.parse().expect("--subs"),
            "--size" => a.size = v.parse().expect("--size"),
            "--window" => a.window = v.parse().expect("--window"),
            "--warmup" => a.warmup = v.parse().expect("--warmup"),
            "--duration" => a.duration = v.parse().expect("--duration"),
            "--per-addr" => a.per_addr = v.parse().expect("--per-addr"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    assert!(a.server_pid != 0, "--server-pid is required");
    assert!(a.size >= 16, "--size must be at least 16");
    assert!(a.window >= 1, "--window must be at least 1");
    a
}

/// Where the sequence number sits in every message: `{"seq":NNNNNNNN}` starts it.
const SEQ_AT: usize = 7;
const SEQ_DIGITS: usize = 8;

/// The message template: `{"seq":00000000}` then JSON-like lines with changing numbers (text
/// that compresses like a JSON feed), `size` bytes in all.
fn template(size: usize) -> Vec<u8> {
    let mut out = b"{\"seq\":00000000}".to_vec();
    let mut i = 0u64;
    while out.len() < size {
        let line = format!(
            "\n{{\"id\":{i},\"user\":\"player{}\",\"x\":{},\"y\":{},\"event\":\"move\"}}",
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

fn put_seq(msg: &mut [u8], seq: u64) {
    let mut n = seq;
    for d in msg[SEQ_AT..SEQ_AT + SEQ_DIGITS].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Whether `payload` is message `seq` exactly.
fn is_message(payload: &[u8], tpl: &[u8], seq: u64) -> bool {
    if payload.len() != tpl.len()
        || payload[..SEQ_AT] != tpl[..SEQ_AT]
        || payload[SEQ_AT + SEQ_DIGITS..] != tpl[SEQ_AT + SEQ_DIGITS..]
    {
        return false;
    }
    let mut n = 0u64;
    for &d in &payload[SEQ_AT..SEQ_AT + SEQ_DIGITS] {
        if !d.is_ascii_digit() {
            return false;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    n == seq
}

/// Message `seq` as the publisher sends it: a masked text frame.
fn publisher_frame(tpl: &[u8], seq: u64, out: &mut Vec<u8>) {
    const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];
    let len = tpl.len();
    out.push(0x81);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len < 65536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&KEY);
    let start = out.len();
    out.extend_from_slice(tpl);
    put_seq(&mut out[start..], seq);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= KEY[i % 4];
    }
}

fn request(path: &str, deflate: bool) -> Vec<u8> {
    let ext = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    )
    .into_bytes()
}

/// A non-blocking connection from `src` (any port) to the server. IP_BIND_ADDRESS_NO_PORT
/// leaves the choice of the port to `connect`, which only needs the whole 4-tuple to be
/// unused: the TIME_WAIT sockets of earlier runs (towards other server ports) do not use up
/// the port range as they would for a plain `bind`.
fn dial(src: Ipv4Addr, port: u16) -> io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    s.set_tcp_nodelay(true)?;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a local int and its size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    s.bind(&SocketAddr::new(IpAddr::V4(src), 0).into())?;
    let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    match s.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(s.into()))
}

/// One WebSocket client connection as far as this benchmark needs it.
struct Peer {
    sock: TcpStream,
    /// The upgrade request still to write (from `sent`).
    request: Vec<u8>,
    sent: usize,
    /// The 101 response being read; cleared once open.
    head: Vec<u8>,
    open: bool,
    /// A frame header split across reads.
    hdr: [u8; 14],
    hdr_len: usize,
    /// Payload bytes of the current frame still to come, and its RSV1 bit.
    need: usize,
    rsv1: bool,
    /// The current frame's payload when it spans reads.
    partial: Vec<u8>,
    /// The sequence number of the next message this subscriber must receive.
    expected: u64,
}

impl Peer {
    fn new(sock: TcpStream, request: Vec<u8>) -> Peer {
        Peer {
            sock,
            request,
            sent: 0,
            head: Vec::new(),
            open: false,
            hdr: [0; 14],
            hdr_len: 0,
            need: 0,
            rsv1: false,
            partial: Vec::new(),
            expected: 0,
        }
    }

    fn write_request(&mut self) {
        while self.sent < self.request.len() {
            match self.sock.write(&self.request[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => panic!("writing the upgrade request: {e}"),
            }
        }
    }
}

/// What the subscribers know: the messages, their verification, and the pacing counts.
struct Check {
    tpl: Vec<u8>,
    subs: u64,
    window: u64,
    /// `counts[s % window]`: subscribers that received message `s`, for `done <= s < sent`.
    counts: Vec<u64>,
    /// Every message below `done` reached every subscriber.
    done: u64,
    delivered: u64,
    /// Compressed payloads already inflated and verified, by sequence number: every
    /// subscriber gets the same bytes for one message, so one inflation per message checks
    /// all of them.
    seen: Vec<(u64, Vec<u8>)>,
    inflater: flate2::Decompress,
    inflated: Vec<u8>,
    compressed: u64,
}

impl Check {
    fn message(&mut self, p: &mut Peer, rsv1: bool, payload: &[u8]) {
        let seq = p.expected;
        let ok = if rsv1 {
            self.compressed += 1;
            self.compressed_is(payload, seq)
        } else {
            is_message(payload, &self.tpl, seq)
        };
        if !ok {
            panic!(
                "a subscriber expected message {seq} and got another payload ({} bytes, rsv1={rsv1}): {:?}",
                payload.len(),
                String::from_utf8_lossy(&payload[..payload.len().min(40)])
            );
        }
        p.expected += 1;
        self.delivered += 1;
        let slot = (seq % self.window) as usize;
        self.counts[slot] += 1;
        while self.counts[(self.done % self.window) as usize] == self.subs {
            self.counts[(self.done % self.window) as usize] = 0;
            self.done += 1;
        }
    }

    fn compressed_is(&mut self, payload: &[u8], seq: u64) -> bool {
        let slot = (seq % self.seen.len() as u64) as usize;
        if self.seen[slot].0 == seq && self.seen[slot].1 == payload {
            return true;
        }
        // The server answered with server_no_context_takeover: each message inflates alone.
        self.inflater.reset(false);
        self.inflated.clear();
        let mut input = payload.to_vec();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        self.inflated.reserve(self.tpl.len() + 64);
        if self
            .inflater
            .decompress_vec(&input, &mut self.inflated, flate2::FlushDecompress::Sync)
            .is_err()
        {
            return false;
        }
        if !is_message(&self.inflated, &self.tpl, seq) {
            return false;
        }
        self.seen[slot] = (seq, payload.to_vec());
        true
    }
}

/// Parses server frames in `data` for subscriber `p`.
fn feed(p: &mut Peer, check: &mut Check, mut data: &[u8]) {
    while !data.is_empty() {
        if p.need > 0 || !p.partial.is_empty() {
            let take = p.need.min(data.len());
            p.partial.extend_from_slice(&data[..take]);
            p.need -= take;
            data = &data[take..];
            if p.need == 0 {
                let payload = std::mem::take(&mut p.partial);
                let rsv1 = p.rsv1;
                check.message(p, rsv1, &payload);
                p.partial = payload;
                p.partial.clear();
            }
            continue;
        }
        // A frame header, maybe split across reads.
        let take = (14 - p.hdr_len).min(data.len());
        p.hdr[p.hdr_len..p.hdr_len + take].copy_from_slice(&data[..take]);
        let have = p.hdr_len + take;
        let h = p.hdr;
        if have < 2 {
            p.hdr_len = have;
            return;
        }
        assert_eq!(h[1] & 0x80, 0, "a server frame is masked");
        let (hl, len) = match h[1] & 0x7f {
            126 if have >= 4 => (4, usize::from(u16::from_be_bytes([h[2], h[3]]))),
            127 if have >= 10 => (
                10,
                u64::from_be_bytes(h[2..10].try_into().unwrap()) as usize,
            ),
            126 | 127 => {
                p.hdr_len = have;
                return;
            }
            n => (2, usize::from(n)),
        };
        assert_eq!(
            h[0] & 0x8f,
            0x81,
            "expected a whole text frame, got first byte {:#x}",
            h[0]
        );
        let rsv1 = h[0] & 0x40 != 0;
        p.rsv1 = rsv1;
        data = &data[hl - p.hdr_len..];
        p.hdr_len = 0;
        if data.len() >= len {
            check.message(p, rsv1, &data[..len]);
            data = &data[len..];
        } else {
            p.need = len;
        }
    }
}

/// Handles the 101 response; returns the bytes after it (frames).
fn read_head<'a>(p: &mut Peer, data: &'a [u8], deflate: bool) -> Option<&'a [u8]> {
    let before = p.head.len();
    p.head.extend_from_slice(data);
    let end = p.head.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    assert!(
        p.head.starts_with(b"HTTP/1.1 101"),
        "upgrade refused: {}",
        String::from_utf8_lossy(&p.head)
    );
    let head = String::from_utf8_lossy(&p.head[..end]).to_ascii_lowercase();
    if deflate {
        assert!(
            head.contains("permessage-deflate") && head.contains("server_no_context_takeover"),
            "the server did not agree to permessage-deflate without server context takeover"
        );
    } else {
        assert!(!head.contains("permessage-deflate"), "deflate not offered");
    }
    p.open = true;
    p.head = Vec::new();
    Some(&data[end - before..])
}

fn proc_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("server stat");
    let after = stat.rsplit_once(')').expect("stat").1;
    after.split_whitespace().map(str::to_owned).collect()
}

/// User + system CPU seconds of the server.
fn server_cpu(pid: u32) -> f64 {
    let f = proc_fields(pid);
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / tick
}

fn own_cpu() -> f64 {
    // SAFETY: getrusage fills a local struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server status");
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .expect("status field");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() -> io::Result<()> {
    let a = parse_args();
    raise_nofile();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4096);
    let mut buf = vec![0u8; 64 << 10];
    let n = a.subs;
    let pub_token = n;

    // Connect the subscribers, at most 256 handshakes at a time (the server's accept queue
    // never overflows), then the publisher.
    let t_connect = Instant::now();
    let sub_request = request("/sub", a.deflate);
    let mut peers: Vec<Peer> = Vec::with_capacity(n + 1);
    let mut open = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    let tpl = template(a.size);
    let mut check = Check {
        tpl: tpl.clone(),
        subs: n as u64,
        window: a.window,
        counts: vec![0; a.window as usize],
        done: 0,
        delivered: 0,
        seen: vec![(u64::MAX, Vec::new()); (2 * a.window) as usize],
        inflater: flate2::Decompress::new(false),
        inflated: Vec::new(),
        compressed: 0,
    };
    while open < n + 1 {
        assert!(Instant::now() < deadline, "only {open} connections opened");
        while peers.len() < n && peers.len() < open + 256 {
            let i = peers.len();
            let src = Ipv4Addr::new(127, 0, 0, 2 + (i / a.per_addr) as u8);
            let mut sock = dial(src, a.port)?;
            poll.registry().register(
                &mut sock,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            peers.push(Peer::new(sock, sub_request.clone()));
        }
        if peers.len() == n && open == n {
            let mut sock = dial(Ipv4Addr::new(127, 0, 0, 1), a.port)?;
            poll.registry().register(
                &mut sock,
                Token(pub_token),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            peers.push(Peer::new(sock, request("/pub", false)));
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let p = &mut peers[i];
            p.write_request();
            if !ev.is_readable() || p.open {
                continue;
            }
            loop {
                match p.sock.read(&mut buf) {
                    Ok(0) => panic!("the server closed a connection during the handshake"),
                    Ok(k) => {
                        if let Some(rest) = read_head(p, &buf[..k], a.deflate && i != pub_token) {
                            assert!(rest.is_empty(), "frames before the first publish");
                            open += 1;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();
    let pid = a.server_pid;
    let rss_idle = status_kib(pid, "VmRSS:");
    // Resets the server's peak resident size (VmHWM) to its current size.
    let peak_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();

    // Pacing: at most `window` messages are in flight. Message s + window is sent only once
    // every subscriber has received message s (`check.done` counts the messages that reached
    // all of them). The server therefore never holds more than `window` messages per
    // subscriber, its buffers stay bounded, no slow-subscriber rule fires, and the rate
    // measured is the steady rate at which the server fans messages out to all subscribers,
    // not the rate at which queues grow. With a window above 1, several publishes usually
    // arrive in one read of the server, as with a busy publisher.
    let mut out: Vec<u8> = Vec::new();
    let mut out_at = 0usize;
    let mut sent: u64 = 0;
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(a.warmup);
    let end = warm_end + Duration::from_secs_f64(a.duration);
    let mut at_warm: Option<(u64, u64, f64, f64, Instant)> = None;
    let mut at_end: Option<(u64, u64, f64, f64, Instant)> = None;
    let mut drain_deadline = None;
    loop {
        let now = Instant::now();
        if at_warm.is_none() && now >= warm_end {
            at_warm = Some((check.delivered, sent, server_cpu(pid), own_cpu(), now));
        }
        if at_end.is_none() && now >= end {
            at_end = Some((check.delivered, sent, server_cpu(pid), own_cpu(), now));
            drain_deadline = Some(now + Duration::from_secs(30));
        }
        if let Some(d) = drain_deadline {
            if check.done == sent && out_at == out.len() {
                break;
            }
            assert!(
                now < d,
                "messages lost: {} of {sent} reached every subscriber",
                check.done
            );
        } else {
            while sent < check.done + a.window {
                publisher_frame(&tpl, sent, &mut out);
                sent += 1;
            }
        }
        let publisher = &mut peers[pub_token];
        while out_at < out.len() {
            match publisher.sock.write(&out[out_at..]) {
                Ok(k) => out_at += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if out_at == out.len() {
            out.clear();
            out_at = 0;
        }
        poll.poll(&mut events, Some(Duration::from_millis(10)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            if i == pub_token || !ev.is_readable() {
                continue;
            }
            let p = &mut peers[i];
            loop {
                match p.sock.read(&mut buf) {
                    Ok(0) => panic!("the server closed subscriber {i}"),
                    Ok(k) => {
                        feed(p, &mut check, &buf[..k]);
                        // Edge-triggered: a short read emptied the socket, and data that
                        // arrives later raises a new event.
                        if k < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    for (i, p) in peers[..n].iter().enumerate() {
        assert_eq!(p.expected, sent, "subscriber {i}: messages received");
        assert!(
            p.need == 0 && p.hdr_len == 0,
            "subscriber {i}: a partial frame"
        );
    }
    assert_eq!(check.delivered, sent * n as u64, "deliveries");
    let rss_peak = status_kib(pid, "VmHWM:");
    let (d0, s0, c0, o0, t0) = at_warm.expect("warm-up ended");
    let (d1, s1, c1, o1, t1) = at_end.expect("run ended");
    let secs = (t1 - t0).as_secs_f64();
    let deliveries = d1 - d0;
    let growth = if peak_reset {
        rss_peak.saturating_sub(rss_idle) as f64
    } else {
        f64::NAN
    };
    println!(
        "subs={n} size={} deflate={} window={} connect_s={connect_secs:.1} published={} \
         sent_total={sent} compressed_received={} deliveries={deliveries} secs={secs:.2} \
         deliveries_per_s={:.0} server_cpu_s={:.2} server_ns_per_delivery={:.0} \
         client_cpu_pct={:.0} server_rss_idle_kib={rss_idle} server_rss_peak_growth_kib={growth:.0} \
         growth_kib_per_publish_in_flight={:.1}",
        a.size,
        a.deflate,
        a.window,
        s1 - s0,
        check.compressed,
        deliveries as f64 / secs,
        c1 - c0,
        (c1 - c0) * 1e9 / deliveries as f64,
        (o1 - o0) * 100.0 / secs,
        growth / a.window as f64,
    );
    // The publisher leaves first (the tidewire server prints its totals then).
    drop(peers.pop());
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}
