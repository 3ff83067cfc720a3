//! tidewire fan-out server for `fanout` (issue 14). Connections to `/sub` are subscribers;
//! every message that arrives on any other connection (the publisher's, `/pub`) goes to all
//! of them, either by one `Context::publish` to a topic (the default) or, with `--loop`, by
//! a loop of `Context::send` over the subscribers (what an application without publish
//! writes). Default settings, except that keepalive pings and the idle timeout are off (the
//! subscribers never send anything) and the backlog is larger.
//!
//! Usage: tidewire_fanout --port P [--loop]
//!
//! Prints `listening on 127.0.0.1:PORT`, and when the publisher's connection ends, the totals
//! of what the publishes or sends did (`published= delivered= skipped_slow= ...`).

use std::time::Duration;

use tidewire_net::{Config, Context, Error, Event, ListenOptions};

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
    let port: u16 = args
        .iter()
        .skip_while(|a| *a != "--port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    raise_nofile();
    let config = Config {
        ping_interval: None,
        idle_timeout: None,
        ..Config::default()
    };
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
