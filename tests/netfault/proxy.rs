//! A fault-injecting TCP proxy for tests (issue 16, section 4: network faults).
//!
//! It listens on a free loopback port and forwards every accepted connection to one upstream
//! address. Each direction of each connection has a reader thread and a writer thread joined
//! by a small bounded queue (so back-pressure still reaches the sender), and the writer
//! applies the faults of its direction:
//!
//! * latency: each chunk leaves `latency` after it was read;
//! * a bandwidth cap in bytes per second (writes paced in slices of about 5 ms);
//! * re-slicing: the stream is written in segments of `min..=max` bytes (random, seeded),
//!   with TCP_NODELAY, so the receiver sees frames cut anywhere;
//! * a stall ("black hole"): the writer holds everything, sends no FIN and no RST; the
//!   queue fills, the proxy stops reading, the kernel buffers fill, the sender is blocked;
//! * a reset: after exactly N bytes forwarded in one direction, both sockets get
//!   SO_LINGER 0 and are closed, so both peers see an RST;
//! * half-close: an EOF read on one side becomes `shutdown(Write)` (a FIN) on the other side
//!   once everything before it has been written; the other direction goes on.
//!
//! Test infrastructure, not product: blocking sockets and plain threads, no dependency
//! beyond `socket2` (for SO_LINGER), which `tidewire-net` already depends on.

#![allow(dead_code)] // each test binary that includes this uses a part of it

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

/// A direction of the proxied stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From the client (the side that connected to the proxy) to the upstream server.
    Up = 0,
    /// From the server to the client.
    Down = 1,
}

impl Dir {
    pub const BOTH: [Dir; 2] = [Dir::Up, Dir::Down];
}

/// The faults applied to one direction.
#[derive(Clone, Debug, Default)]
pub struct Shape {
    /// Added one-way delay.
    pub latency: Duration,
    /// Bandwidth cap in bytes per second.
    pub bytes_per_sec: Option<u64>,
    /// Write the stream in segments of `min..=max` bytes.
    pub reslice: Option<(usize, usize)>,
    /// SO_RCVBUF of the proxy's socket that reads this direction and SO_SNDBUF of the one
    /// that writes it (the kernel doubles it): a small value keeps the kernel from queueing
    /// megabytes in front of a slow link, as a router with a short queue would. Default:
    /// the kernel's autotuning.
    pub socket_buffer: Option<usize>,
}

/// Chunks in flight between a reader and its writer (each at most `READ_SIZE` bytes).
const QUEUE_CHUNKS: usize = 16;
const READ_SIZE: usize = 16 << 10;
/// How often sleeping writers look at the stall and reset flags.
const TICK: Duration = Duration::from_millis(2);
/// Bytes of a watched position kept (see [`Link::watch`]).
const WATCH_LEN: usize = 16;
const NONE: u64 = u64::MAX;
/// How far ahead of the bandwidth schedule a writer may run.
const BURST: Duration = Duration::from_millis(2);

/// One proxied connection: the controls and counters of both directions.
pub struct Link {
    /// The two sockets, owned by the four pump threads; the last one to end closes them.
    sockets: Weak<[TcpStream; 2]>,
    stalled: [AtomicBool; 2],
    forwarded: [AtomicU64; 2],
    writes: [AtomicU64; 2],
    reset_at: [AtomicU64; 2],
    watch_at: [AtomicU64; 2],
    watched: Mutex<[Vec<u8>; 2]>,
    half_closed: [AtomicBool; 2],
    reset: AtomicBool,
    reset_when: Mutex<Option<Instant>>,
}

impl Link {
    fn new(sockets: &Arc<[TcpStream; 2]>) -> Link {
        Link {
            sockets: Arc::downgrade(sockets),
            stalled: Default::default(),
            forwarded: Default::default(),
            writes: Default::default(),
            reset_at: [AtomicU64::new(NONE), AtomicU64::new(NONE)],
            watch_at: [AtomicU64::new(NONE), AtomicU64::new(NONE)],
            watched: Mutex::new([Vec::new(), Vec::new()]),
            half_closed: Default::default(),
            reset: AtomicBool::new(false),
            reset_when: Mutex::new(None),
        }
    }

    /// Holds (true) or releases (false) everything in direction `d`: no FIN, no RST.
    pub fn stall(&self, d: Dir, on: bool) {
        self.stalled[d as usize].store(on, Ordering::SeqCst);
    }

    /// Bytes handed to the receiving peer's socket in direction `d` so far. Counted just
    /// before each write, so once a peer has read N bytes, this is at least N: when the
    /// traffic has settled it is exact.
    pub fn forwarded(&self, d: Dir) -> u64 {
        self.forwarded[d as usize].load(Ordering::SeqCst)
    }

    /// Write calls made in direction `d` (segments, when re-slicing).
    pub fn writes(&self, d: Dir) -> u64 {
        self.writes[d as usize].load(Ordering::SeqCst)
    }

    /// Resets the connection (RST to both peers) once exactly `at` bytes have been forwarded
    /// in direction `d`.
    pub fn reset_after(&self, d: Dir, at: u64) {
        self.reset_at[d as usize].store(at, Ordering::SeqCst);
    }

    /// Keeps the first bytes forwarded in direction `d` from stream offset `at` on (to
    /// check what a reset cut: e.g. the header of the frame that starts there).
    pub fn watch(&self, d: Dir, at: u64) {
        self.watched.lock().unwrap()[d as usize].clear();
        self.watch_at[d as usize].store(at, Ordering::SeqCst);
    }

    pub fn watched(&self, d: Dir) -> Vec<u8> {
        self.watched.lock().unwrap()[d as usize].clone()
    }

    /// Whether a FIN was passed on in direction `d`.
    pub fn half_closed(&self, d: Dir) -> bool {
        self.half_closed[d as usize].load(Ordering::SeqCst)
    }

    pub fn is_reset(&self) -> bool {
        self.reset.load(Ordering::SeqCst)
    }

    /// When the reset happened.
    pub fn reset_time(&self) -> Option<Instant> {
        *self.reset_when.lock().unwrap()
    }

    /// Resets both sides now: SO_LINGER 0, then the pump threads end and the last one
    /// drops the sockets, and the close sends an RST. Readers blocked in `read` are woken
    /// by a read shutdown (which sends nothing to the peer).
    pub fn reset_now(&self) {
        if self.reset.swap(true, Ordering::SeqCst) {
            return;
        }
        *self.reset_when.lock().unwrap() = Some(Instant::now());
        if let Some(sockets) = self.sockets.upgrade() {
            for s in sockets.iter() {
                let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
                let _ = s.shutdown(Shutdown::Read);
            }
        }
    }

    /// Sleeps until `until`, and on while direction `d` (when given) is stalled; false when
    /// the link was reset meanwhile.
    fn wait(&self, until: Instant, d: Option<Dir>) -> bool {
        loop {
            if self.is_reset() {
                return false;
            }
            let stalled = d.is_some_and(|d| self.stalled[d as usize].load(Ordering::SeqCst));
            let now = Instant::now();
            if now >= until && !stalled {
                return true;
            }
            let step = if stalled {
                TICK
            } else {
                (until - now).min(TICK)
            };
            thread::sleep(step);
        }
    }

    fn note_written(&self, d: Dir, offset: u64, bytes: &[u8]) {
        let i = d as usize;
        let watch = self.watch_at[i].load(Ordering::SeqCst);
        let end = offset + bytes.len() as u64;
        if watch != NONE && watch < end {
            let mut watched = self.watched.lock().unwrap();
            let from = watch.max(offset);
            let mut at = (from - offset) as usize;
            while watched[i].len() < WATCH_LEN && at < bytes.len() {
                watched[i].push(bytes[at]);
                at += 1;
            }
        }
        self.forwarded[i].store(end, Ordering::SeqCst);
        self.writes[i].fetch_add(1, Ordering::SeqCst);
    }
}

struct Shared {
    upstream: SocketAddr,
    shapes: [Shape; 2],
    seed: u64,
    stop: AtomicBool,
    links: Mutex<Vec<Arc<Link>>>,
}

/// The proxy; dropping it resets every connection and stops accepting.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 (free port) to `upstream`, with the faults of each
    /// direction (`up`: client to server) and a seed for the re-slicing.
    pub fn start(upstream: SocketAddr, up: Shape, down: Shape, seed: u64) -> Proxy {
        let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("proxy socket");
        if let Some(size) = up.socket_buffer {
            // Before listen, so that the window scale is chosen for it; accepted sockets
            // inherit it.
            listener.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        listener.bind(&any.into()).expect("proxy bind");
        listener.listen(128).expect("proxy listen");
        let listener = TcpListener::from(listener);
        listener.set_nonblocking(true).expect("proxy nonblocking");
        let addr = listener.local_addr().expect("proxy addr");
        let shared = Arc::new(Shared {
            upstream,
            shapes: [up, down],
            seed,
            stop: AtomicBool::new(false),
            links: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(listener, s))
            .expect("spawn proxy");
        Proxy { addr, shared }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The `n`th connection (0-based) once accepted and connected upstream, waiting at
    /// most `limit`.
    pub fn link(&self, n: usize, limit: Duration) -> Option<Arc<Link>> {
        let end = Instant::now() + limit;
        loop {
            if let Some(l) = self.shared.links.lock().unwrap().get(n) {
                return Some(l.clone());
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn link_count(&self) -> usize {
        self.shared.links.lock().unwrap().len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for link in self.shared.links.lock().unwrap().iter() {
            link.reset_now();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut n = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let [up, down] = &shared.shapes;
        let Ok(server) = connect_upstream(shared.upstream, up, down) else {
            continue; // dropping `client` closes it
        };
        if let Some(size) = down.socket_buffer {
            let _ = socket2::SockRef::from(&client).set_send_buffer_size(size);
        }
        let _ = client.set_nonblocking(false);
        for s in [&client, &server] {
            let _ = s.set_nodelay(true);
        }
        let sockets = Arc::new([client, server]);
        let link = Arc::new(Link::new(&sockets));
        for d in Dir::BOTH {
            let (tx, rx) = sync_channel(QUEUE_CHUNKS);
            let (l, s) = (link.clone(), sockets.clone());
            thread::spawn(move || read_side(l, s, d, tx));
            let (l, s) = (link.clone(), sockets.clone());
            let shape = shared.shapes[d as usize].clone();
            let rng = Rng::new(shared.seed ^ (n << 8) ^ d as u64);
            thread::spawn(move || write_side(l, s, d, rx, shape, rng));
        }
        shared.links.lock().unwrap().push(link);
        n += 1;
    }
}

/// The proxy's connection to the upstream server, its buffers sized before the connect.
fn connect_upstream(addr: SocketAddr, up: &Shape, down: &Shape) -> io::Result<TcpStream> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    if let Some(size) = down.socket_buffer {
        sock.set_recv_buffer_size(size)?;
    }
    if let Some(size) = up.socket_buffer {
        sock.set_send_buffer_size(size)?;
    }
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    Ok(sock.into())
}

enum Chunk {
    Data(Instant, Vec<u8>),
    Eof,
}

/// Socket index a direction reads from (Up reads the client's socket) and writes to.
fn ends(d: Dir) -> (usize, usize) {
    match d {
        Dir::Up => (0, 1),
        Dir::Down => (1, 0),
    }
}

fn read_side(link: Arc<Link>, sockets: Arc<[TcpStream; 2]>, d: Dir, tx: SyncSender<Chunk>) {
    let mut src = &sockets[ends(d).0];
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        match src.read(&mut buf) {
            Ok(0) => {
                if !link.is_reset() {
                    let _ = tx.send(Chunk::Eof);
                }
                return;
            }
            Ok(n) => {
                if link.is_reset()
                    || tx
                        .send(Chunk::Data(Instant::now(), buf[..n].to_vec()))
                        .is_err()
                {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // The peer reset its side: pass the reset on.
                link.reset_now();
                return;
            }
        }
    }
}

fn write_side(
    link: Arc<Link>,
    sockets: Arc<[TcpStream; 2]>,
    d: Dir,
    rx: Receiver<Chunk>,
    shape: Shape,
    mut rng: Rng,
) {
    let mut dst = &sockets[ends(d).1];
    let i = d as usize;
    // Bandwidth pacing: the earliest time the next byte may leave.
    let mut next_free = Instant::now();
    let pace_slice = shape
        .bytes_per_sec
        .map(|r| (r / 200).max(1) as usize)
        .unwrap_or(usize::MAX);
    while let Ok(chunk) = rx.recv() {
        let (arrived, bytes) = match chunk {
            Chunk::Data(at, bytes) => (at, bytes),
            Chunk::Eof => {
                if link.wait(Instant::now(), Some(d)) {
                    let _ = dst.shutdown(Shutdown::Write);
                    link.half_closed[i].store(true, Ordering::SeqCst);
                }
                return;
            }
        };
        if !link.wait(arrived + shape.latency, Some(d)) {
            return;
        }
        let mut off = 0;
        while off < bytes.len() {
            let mut n = match shape.reslice {
                Some((lo, hi)) => rng.range(lo, hi),
                None => bytes.len() - off,
            };
            n = n.min(pace_slice).min(bytes.len() - off);
            let fwd = link.forwarded[i].load(Ordering::SeqCst);
            let reset_at = link.reset_at[i].load(Ordering::SeqCst);
            let cut = reset_at != NONE && fwd + n as u64 >= reset_at;
            if cut {
                n = reset_at.saturating_sub(fwd) as usize;
            }
            if let Some(rate) = shape.bytes_per_sec {
                // A little burst is allowed, so that tiny segments are not each paced by a
                // sleep (which lasts at least tens of microseconds).
                if !link.wait(next_free.checked_sub(BURST).unwrap_or(next_free), Some(d)) {
                    return;
                }
                let cost = Duration::from_secs_f64(n as f64 / rate as f64);
                next_free = next_free.max(Instant::now()) + cost;
            } else if !link.wait(Instant::now(), Some(d)) {
                return;
            }
            if n > 0 {
                // Counted before the write: a peer that has read N bytes sees at least N.
                link.note_written(d, fwd, &bytes[off..off + n]);
                if dst.write_all(&bytes[off..off + n]).is_err() {
                    link.reset_now();
                    return;
                }
                off += n;
            }
            if cut {
                link.reset_now();
                return;
            }
        }
    }
}

/// splitmix64: small, seeded, good enough for test traffic.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }
}
