//! Soak client: N tidewire client connections (spread over several loopback source
//! addresses, deflate on a third, TLS on a tenth when a `wss://` URL is given), each sending
//! one message of a random size at a time and verifying its echo byte for byte, for a set
//! time. Reports lost and corrupted messages, unexpected closes, the echo latency (p50, p99,
//! max) and the servers' resident memory after warm-up; exits 1 when anything was lost or
//! corrupted, a connection dropped, or a server's memory grew by more than 5 % (or
//! `--rss-tolerance`).
//!
//! Usage: soak --url ws://127.0.0.1:P [--tls-url wss://127.0.0.1:Q --ca FILE]
//!             [--conns 10000] [--seconds 600] [--warmup 60] [--sources 8]
//!             [--interval-ms 1000] [--max-size 16384] [--rss-tolerance 5] [--server-pid PID]...

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tidewire_net::{
    Config, ConnId, ConnectOptions, Context, Event, MessageKind, TlsClientOptions, TlsConnector,
};

struct Args {
    url: String,
    tls_url: Option<String>,
    ca: Option<String>,
    conns: usize,
    seconds: u64,
    warmup: u64,
    sources: u8,
    interval: Duration,
    max_size: usize,
    /// Largest growth of a server's RSS after warm-up, in percent.
    rss_tolerance: f64,
    server_pids: Vec<u32>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        tls_url: None,
        ca: None,
        conns: 10_000,
        seconds: 600,
        warmup: 60,
        sources: 8,
        interval: Duration::from_millis(1000),
        max_size: 16 << 10,
        rss_tolerance: 5.0,
        server_pids: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--url" => a.url = value,
            "--tls-url" => a.tls_url = Some(value),
            "--ca" => a.ca = Some(value),
            "--conns" => a.conns = num(&value)? as usize,
            "--seconds" => a.seconds = num(&value)?,
            "--warmup" => a.warmup = num(&value)?,
            "--sources" => a.sources = num(&value)?.clamp(1, 250) as u8,
            "--interval-ms" => a.interval = Duration::from_millis(num(&value)?),
            "--max-size" => a.max_size = num(&value)?.max(16) as usize,
            "--server-pid" => a.server_pids.push(num(&value)? as u32),
            "--rss-tolerance" => {
                a.rss_tolerance = value.parse().map_err(|e| format!("{flag}: {e}"))?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.url.is_empty() {
        return Err("--url is required".into());
    }
    Ok(a)
}

/// A small deterministic generator (xorshift64*), so every payload can be rebuilt from its
/// connection and sequence number to check the echo without keeping a copy.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The message `seq` of connection `index`: a 16-byte header (index, seq, length) and a body
/// that is half text-like (compressible) and half noise, of a log-uniform size.
fn payload(index: usize, seq: u64, max_size: usize, out: &mut Vec<u8>) {
    let mut rng = Rng::new((index as u64) << 32 ^ seq);
    let bits = (usize::BITS - max_size.leading_zeros()) as u64;
    let len = ((1usize << (rng.next() % bits)) + (rng.next() as usize % 64)).clamp(16, max_size);
    out.clear();
    out.extend_from_slice(&(index as u32).to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(len as u32).to_be_bytes());
    while out.len() < len {
        let word = rng.next();
        if out.len() % 64 < 32 {
            out.extend_from_slice(b"{\"tick\":1234,\"price\":42.5},");
        } else {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }
    out.truncate(len);
}

#[derive(Default)]
struct Conn {
    index: usize,
    open: bool,
    seq: u64,
    /// When the message `seq` was sent, while its echo is awaited.
    sent_at: Option<Instant>,
}

#[derive(Default)]
struct Tally {
    opened: usize,
    echoed: u64,
    corrupted: u64,
    closed: u64,
    failed: u64,
    send_errors: u64,
    latencies_us: Vec<u32>,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn raise_open_files_limit() {
    // SAFETY: plain system calls on a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    raise_open_files_limit();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let config = Config {
        max_connections: args.conns + 100,
        // Keepalive stays on (its defaults): a soak must not be kept alive by pings alone.
        ..Config::default()
    };
    let mut ctx = Context::new(config)?;
    let tls = match &args.tls_url {
        Some(_) => Some(TlsConnector::new(&TlsClientOptions {
            use_system_roots: false,
            extra_ca_file: args.ca.as_ref().map(Into::into),
            ..TlsClientOptions::default()
        })?),
        None => None,
    };
    let mut events = ctx.new_events();
    let mut conns: HashMap<ConnId, Conn> = HashMap::with_capacity(args.conns);
    let mut tally = Tally::default();
    let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut by_index: Vec<Option<ConnId>> = vec![None; args.conns];
    let mut buf = Vec::new();
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let warm = start + Duration::from_secs(args.warmup);
    let mut next_connect = 0usize;
    let mut pending_handshakes = 0usize;
    let mut rss: Vec<Vec<u64>> = vec![Vec::new(); args.server_pids.len()];
    let mut next_sample = warm;
    let mut rng = Rng::new(7);

    while Instant::now() < end {
        // Open connections in waves, so the servers' accept queues never overflow.
        while next_connect < args.conns && pending_handshakes < 256 {
            let i = next_connect;
            next_connect += 1;
            let use_tls = args.tls_url.is_some() && i.is_multiple_of(10);
            let url = if use_tls {
                args.tls_url.as_deref().unwrap_or_default()
            } else {
                &args.url
            };
            let source: IpAddr = format!("127.0.0.{}", 1 + (i % usize::from(args.sources)))
                .parse()
                .expect("loopback address");
            let options = ConnectOptions {
                local_address: Some(source),
                tls: if use_tls { tls.clone() } else { None },
                deflate: if i.is_multiple_of(3) {
                    ConnectOptions::default().deflate
                } else {
                    None
                },
                ..ConnectOptions::default()
            };
            let id = ctx.connect(url, options)?;
            conns.insert(
                id,
                Conn {
                    index: i,
                    ..Conn::default()
                },
            );
            by_index[i] = Some(id);
            pending_handshakes += 1;
        }
        let now = Instant::now();
        while let Some(&Reverse((at, i))) = due.peek() {
            if at > now {
                break;
            }
            due.pop();
            let Some(id) = by_index[i as usize] else {
                continue;
            };
            let Some(c) = conns.get_mut(&id) else {
                continue;
            };
            payload(c.index, c.seq, args.max_size, &mut buf);
            match ctx.send(id, MessageKind::Binary, &buf) {
                Ok(_) => c.sent_at = Some(now),
                Err(e) => {
                    tally.send_errors += 1;
                    eprintln!("soak: send on connection {}: {e}", c.index);
                }
            }
        }
        let wait = due
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(50))
            .min(Duration::from_millis(50));
        ctx.poll(&mut events, Some(wait))?;
        let now = Instant::now();
        for ev in events.iter() {
            match ev {
                Event::Open { conn, .. } => {
                    pending_handshakes = pending_handshakes.saturating_sub(1);
                    if let Some(c) = conns.get_mut(&conn) {
                        c.open = true;
                        tally.opened += 1;
                        let jitter = rng.next() % args.interval.as_millis().max(1) as u64;
                        due.push(Reverse((
                            now + Duration::from_millis(jitter),
                            c.index as u64,
                        )));
                    }
                }
                Event::Message { conn, data, .. } => {
                    let Some(c) = conns.get_mut(&conn) else {
                        continue;
                    };
                    payload(c.index, c.seq, args.max_size, &mut buf);
                    match c.sent_at.take() {
                        Some(sent) if data == buf.as_slice() => {
                            tally.echoed += 1;
                            if now >= warm {
                                let us = now.duration_since(sent).as_micros();
                                tally.latencies_us.push(us.min(u128::from(u32::MAX)) as u32);
                            }
                            c.seq += 1;
                            due.push(Reverse((now + args.interval, c.index as u64)));
                        }
                        _ => {
                            tally.corrupted += 1;
                            eprintln!(
                                "soak: connection {} message {}: unexpected echo of {} bytes",
                                c.index,
                                c.seq,
                                data.len()
                            );
                        }
                    }
                }
                Event::Closed {
                    conn, code, clean, ..
                } => {
                    if let Some(c) = conns.remove(&conn) {
                        tally.closed += 1;
                        by_index[c.index] = None;
                        eprintln!(
                            "soak: connection {} closed ({code}, clean {clean}) with message {} {}",
                            c.index,
                            c.seq,
                            if c.sent_at.is_some() {
                                "in flight"
                            } else {
                                "echoed"
                            }
                        );
                    }
                }
                Event::Error { error, .. } => {
                    if let Some(c) = ev.conn().and_then(|id| conns.remove(&id)) {
                        pending_handshakes = pending_handshakes.saturating_sub(1);
                        tally.failed += 1;
                        by_index[c.index] = None;
                        eprintln!("soak: connection {} failed: {error}", c.index);
                    }
                }
                _ => {}
            }
        }
        if now >= next_sample && !args.server_pids.is_empty() {
            for (samples, &pid) in rss.iter_mut().zip(&args.server_pids) {
                if let Some(kib) = rss_kib(pid) {
                    samples.push(kib);
                }
            }
            next_sample = now + Duration::from_secs(5);
        }
    }

    // Messages still in flight at the end get a few seconds to come back.
    let lost_by = Instant::now() + Duration::from_secs(10);
    while conns.values().any(|c| c.sent_at.is_some()) && Instant::now() < lost_by {
        ctx.poll(&mut events, Some(Duration::from_millis(20)))?;
        for ev in events.iter() {
            if let Event::Message { conn, data, .. } = ev {
                if let Some(c) = conns.get_mut(&conn) {
                    payload(c.index, c.seq, args.max_size, &mut buf);
                    if c.sent_at.take().is_some() && data == buf.as_slice() {
                        tally.echoed += 1;
                    } else {
                        tally.corrupted += 1;
                    }
                }
            }
        }
    }
    let lost = conns.values().filter(|c| c.sent_at.is_some()).count() as u64;

    let mut lat = std::mem::take(&mut tally.latencies_us);
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        f64::from(lat[i]) / 1000.0
    };
    let secs = args.seconds.saturating_sub(args.warmup).max(1) as f64;
    println!(
        "soak: conns={} opened={} seconds={} echoed={} ({:.0}/s after warm-up) lost={} \
         corrupted={} closed={} failed={} send_errors={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        args.conns,
        tally.opened,
        args.seconds,
        tally.echoed,
        lat.len() as f64 / secs,
        lost,
        tally.corrupted,
        tally.closed,
        tally.failed,
        tally.send_errors,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let mut ok = tally.opened == args.conns
        && lost == 0
        && tally.corrupted == 0
        && tally.closed == 0
        && tally.failed == 0
        && tally.send_errors == 0;
    for (pid, samples) in args.server_pids.iter().zip(&rss) {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            println!("soak: server {pid}: no memory samples");
            ok = false;
            continue;
        };
        let (min, max) = (
            samples.iter().min().unwrap_or(first),
            samples.iter().max().unwrap_or(last),
        );
        let growth = (*last as f64 - *first as f64) / *first as f64 * 100.0;
        println!(
            "soak: server {pid}: RSS after warm-up {first} KiB -> {last} KiB ({growth:+.1} %), \
             min {min} max {max}; every 5 s: {samples:?}"
        );
        ok &= growth <= args.rss_tolerance;
    }
    println!("soak: {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}
