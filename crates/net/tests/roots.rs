//! The first `wss://` connect without TLS settings needs the system's root certificates.
//! This file measures what that costs the thread that calls `connect` and `poll` (a game's
//! frame), in a fresh process (one test only: the roots are loaded once per process).
//! It prints the figures and asserts nothing about time (machines differ); run with
//! `cargo test -p tidewire-net --test roots -- --nocapture`.

use std::time::{Duration, Instant};

use tidewire_net::{Config, ConnectOptions, Context};

#[test]
fn first_wss_connect_does_not_stall_the_polling_thread() {
    let created = Instant::now();
    let mut ctx = Context::new(Config::default()).expect("context");
    let new_took = created.elapsed();
    let mut events = ctx.new_events();
    // A few frames of a game loop before it connects (menus, asset loading).
    for _ in 0..6 {
        ctx.poll(&mut events, Some(Duration::from_millis(16)))
            .expect("poll");
    }
    // Nothing listens on port 1: the connection fails later, as an event. What counts is
    // what `connect` costs the calling thread now.
    let start = Instant::now();
    let conn = match ctx.connect("wss://127.0.0.1:1/", ConnectOptions::default()) {
        Ok(conn) => conn,
        // A machine without system roots has nothing to measure.
        Err(tidewire_net::Error::Tls(e)) => {
            eprintln!("roots: no system roots on this machine ({e}); nothing measured");
            return;
        }
        Err(e) => panic!("connect: {e}"),
    };
    let connect_took = start.elapsed();
    let mut worst_poll = Duration::ZERO;
    let mut ended = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ended && Instant::now() < deadline {
        let t = Instant::now();
        ctx.poll(&mut events, Some(Duration::from_millis(16)))
            .expect("poll");
        worst_poll = worst_poll.max(t.elapsed().saturating_sub(Duration::from_millis(16)));
        ended = events
            .iter()
            .any(|e| e.conn() == Some(conn) && e.is_terminal());
    }
    assert!(ended, "the failed connect is reported");
    // A second connect: the connector is cached by the context.
    let start = Instant::now();
    ctx.connect("wss://127.0.0.1:1/", ConnectOptions::default())
        .expect("connect");
    let second_took = start.elapsed();
    eprintln!(
        "roots: Context::new {:?}; first wss connect {:?} (after 96 ms of frames); second {:?}; \
         worst poll overrun {:?}",
        new_took, connect_took, second_took, worst_poll
    );
}
