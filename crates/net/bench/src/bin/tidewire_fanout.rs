//! tidewire fan-out server for `fanout` (issue 14). Connections to `/sub` are subscribers;
//! every message that arrives on any other connection (the publisher's, `/pub`) goes to all
//! of them, either by one `Context::publish` to a topic (the default) or, with `--loop`, by
//! a loop of `Context::send` over the subscribers (what an application without publish
//! writes). Default settings, except that keepalive pings and the idle timeout are off (the
//! subscribers never send anything) and the backlog is larger.
//!
//! With `--threads N` the server is `Workers` with N event loops sharing the port: each
//! message is published with `Bus::publish`, on the publisher's worker at once and on the
//! others through their inbox (the cross-worker cost).
//!
//! Usage: tidewire_fanout --port P [--loop | --threads N]
//!
//! Prints `listening on 127.0.0.1:PORT`, and when the publisher's connection ends, the totals
//! of what the publishes or sends did (`published= delivered= skipped_slow= ...`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidewire_net::{Bus, Config, Context, Error, Event, ListenOptions, WorkerOptions, Workers};

const TOPIC: &[u8] = b"feed";

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

#[derive(Default)]
struct Totals {
    published: u64,
    delivered: u64,
    skipped_slow: u64,
    closed_slow: u64,
    not_open: u64,
    compressions: u64,
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let send_loop = args.iter().any(|a| a == "--loop");
    let value = |flag: &str| {
        args.iter()
            .skip_while(|a| *a != flag)
            .nth(1)
            .and_then(|p| p.parse::<u64>().ok())
    };
    let port = value("--port").unwrap_or(0) as u16;
    raise_nofile();
    let config = Config {
        ping_interval: None,
        idle_timeout: None,
        ..Config::default()
    };
    if let Some(threads) = value("--threads") {
        return run_workers(port, threads as usize, config);
    }
    let mut ctx = Context::new(config)?;
    let listener = ctx.listen(
        "127.0.0.1",
        port,
        ListenOptions {
            backlog: 4096,
            ..ListenOptions::default()
        },
    )?;
    println!("listening on {}", ctx.local_addr(listener)?);
    let mut events = ctx.new_events();
    // The send loop's subscriber list (publish keeps its own, in the topic).
    let mut subs = Vec::new();
    let mut publisher = None;
    let mut t = Totals::default();
    loop {
        ctx.poll(&mut events, Some(Duration::from_millis(500)))?;
        for event in events.iter() {
            match event {
                Event::Open { conn, path, .. } => {
                    if path == "/sub" {
                        if send_loop {
                            subs.push(conn);
                        } else {
                            ctx.subscribe(conn, TOPIC)?;
                        }
                    } else {
                        publisher = Some(conn);
                    }
                }
                Event::Message { kind, data, .. } => {
                    t.published += 1;
                    if send_loop {
                        for &s in &subs {
                            match ctx.send(s, kind, data) {
                                Ok(_) => t.delivered += 1,
                                Err(Error::BufferFull { .. }) => t.skipped_slow += 1,
                                Err(_) => t.not_open += 1,
                            }
                        }
                    } else {
                        let r = ctx.publish(TOPIC, kind, data)?;
                        t.delivered += r.delivered as u64;
                        t.skipped_slow += r.skipped_slow as u64;
                        t.closed_slow += r.closed_slow as u64;
                        t.not_open += r.not_open as u64;
                        t.compressions += r.compressions as u64;
                    }
                }
                Event::Closed { conn, .. } => {
                    if publisher == Some(conn) {
                        println!(
                            "published={} delivered={} skipped_slow={} closed_slow={} not_open={} compressions={}",
                            t.published, t.delivered, t.skipped_slow, t.closed_slow, t.not_open,
                            t.compressions
                        );
                        publisher = None;
                    } else if let Some(at) = subs.iter().position(|&s| s == conn) {
                        subs.swap_remove(at);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The `--threads` server: every worker subscribes its `/sub` connections; the publisher's
/// worker publishes each message to all of them with `Bus::publish`.
fn run_workers(port: u16, threads: usize, config: Config) -> Result<(), Error> {
    let options = WorkerOptions {
        threads,
        config,
        listen: ListenOptions {
            backlog: 4096,
            ..ListenOptions::default()
        },
        ..WorkerOptions::default()
    };
    let published = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let (p, d, r) = (published.clone(), delivered.clone(), refused.clone());
    let workers = Workers::start("127.0.0.1", port, options, move |_| {
        let (p, d, r) = (p.clone(), d.clone(), r.clone());
        let mut publisher = None;
        move |ctx: &mut Context, bus: &Bus, event: Event<'_>| match event {
            Event::Open { conn, path, .. } => {
                if path == "/sub" {
                    let _ = ctx.subscribe(conn, TOPIC);
                } else {
                    publisher = Some(conn);
                }
            }
            Event::Message { kind, data, .. } => {
                p.fetch_add(1, Ordering::Relaxed);
                match bus.publish(ctx, TOPIC, kind, data) {
                    Ok(report) => {
                        d.fetch_add(report.delivered as u64, Ordering::Relaxed);
                        let bad = report.skipped_slow + report.closed_slow + report.not_open;
                        r.fetch_add(bad as u64, Ordering::Relaxed);
                    }
                    Err(_) => {
                        r.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Event::Closed { conn, .. } if publisher == Some(conn) => {
                // The report covers the publisher's worker; the others deliver from their
                // inbox (the client checks every subscriber got everything).
                println!(
                    "published={} delivered={} skipped_slow={} closed_slow=0 not_open=0 compressions=0",
                    p.load(Ordering::Relaxed),
                    d.load(Ordering::Relaxed),
                    r.load(Ordering::Relaxed)
                );
                publisher = None;
            }
            _ => {}
        }
    })?;
    println!("listening on {}", workers.local_addr());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
