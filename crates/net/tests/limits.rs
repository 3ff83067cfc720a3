//! Limits that keep one peer from growing the server's memory or taking all its capacity
//! (issue 12): reading stops while a peer does not read what it provokes, pings are answered
//! one per flush at most, and a client over `max_connections` is turned away at once.

mod common;

use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

use common::{Harness, RawClient, TEST_DEADLINE};
use tidewire_net::{Config, ConnId, Event, ListenOptions};

fn wait_server_open(h: &mut Harness) -> ConnId {
    let mut server = None;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Open { conn, .. } = ev {
            server = Some(conn);
        }
        server.is_some()
    }));
    server.expect("open")
}

/// The output over `max_buffered` holds reading, whatever filled it: a peer that does not
/// read gets nothing more read from it, until it drains the buffer; then all of it arrives.
#[test]
fn output_over_the_cap_holds_reading_until_the_peer_drains_it() {
    const BIG: usize = 12 << 20;
    const MESSAGES: usize = 64;
    let config = Config {
        max_buffered: 256 << 10,
        high_water_mark: 128 << 10,
        low_water_mark: 64 << 10,
        ..Config::default()
    };
    let mut h = Harness::new(config, ListenOptions::default());
    let port = h.port;
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        raw.send_frame(true, 2, b"go");
        // Wait for the server's big answer to begin, then send without reading it.
        let mut first = [0u8; 1];
        raw.sock.read_exact(&mut first).expect("first byte");
        for i in 0..MESSAGES {
            raw.send_frame(true, 2, &[i as u8; 1024]);
        }
        // Start reading only when the test says so.
        let _ = go_rx.recv_timeout(TEST_DEADLINE);
        let mut rest = vec![0u8; 1 << 20];
        let mut got = 1usize;
        while got < BIG + 10 {
            let n = raw.sock.read(&mut rest).expect("read");
            assert!(n > 0, "EOF after {got} bytes");
            got += n;
        }
        got
    });
    let server = wait_server_open(&mut h);
    let mut received = 0usize;
    let mut sent_big = false;
    let end = Instant::now() + TEST_DEADLINE;
    // Phase 1: the peer sends 64 messages and reads nothing; only "go" may be read.
    let hold_until = loop {
        assert!(Instant::now() < end, "never reached the cap");
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(20)))
            .expect("poll");
        for ev in h.events.iter() {
            if let Event::Message { data, .. } = ev {
                if data == b"go" {
                    sent_big = true;
                } else {
                    received += 1;
                }
            }
        }
        if sent_big && h.ctx.buffered_amount(server).expect("buffered") == 0 && received == 0 {
            h.ctx
                .send_binary(server, &vec![7u8; BIG])
                .expect("big send");
        }
        if sent_big && h.ctx.buffered_amount(server).expect("buffered") > 0 {
            break Instant::now() + Duration::from_millis(500);
        }
    };
    while Instant::now() < hold_until {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(20)))
            .expect("poll");
        received += h
            .events
            .iter()
            .filter(|e| matches!(e, Event::Message { .. }))
            .count();
    }
    assert!(
        h.ctx.buffered_amount(server).expect("buffered") >= 256 << 10,
        "the kernel took it all: the test proves nothing"
    );
    assert_eq!(
        received, 0,
        "read from a peer that does not read its output"
    );
    // Phase 2: the peer reads; the server drains and reads every message.
    go_tx.send(()).expect("go");
    let end = Instant::now() + TEST_DEADLINE;
    while received < MESSAGES && Instant::now() < end {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(20)))
            .expect("poll");
        received += h
            .events
            .iter()
            .filter(|e| matches!(e, Event::Message { .. }))
            .count();
    }
    assert_eq!(received, MESSAGES);
    let end = Instant::now() + TEST_DEADLINE;
    while !peer.is_finished() && Instant::now() < end {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(20)))
            .expect("poll");
    }
    assert!(peer.join().expect("peer") >= BIG);
}

/// A client over `max_connections` sees its connection closed (or reset) at once, before
/// any answer (no HTTP status: the server spends nothing on it); the others are untouched and a new
/// client gets in as soon as one leaves.
#[test]
fn a_client_over_max_connections_is_closed_at_once() {
    let config = Config {
        max_connections: 2,
        ..Config::default()
    };
    let mut h = Harness::new(config, ListenOptions::default());
    let port = h.port;
    let first = thread::spawn(move || (RawClient::open(port), RawClient::open(port)));
    let end = Instant::now() + TEST_DEADLINE;
    while !first.is_finished() && Instant::now() < end {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(20)))
            .expect("poll");
    }
    let (mut a, b) = first.join().expect("two clients");
    assert_eq!(h.ctx.connection_count(), 2);

    let over = thread::spawn(move || {
        let started = Instant::now();
        // Closed with the request unread, so the kernel may answer with a reset.
        let ended = match RawClient::upgrade(port, "/", "") {
            Ok((mut raw, head)) => head.is_empty() && raw.wait_eof(),
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        (ended, started.elapsed())
    });
    let end = Instant::now() + TEST_DEADLINE;
    while !over.is_finished() && Instant::now() < end {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(20)))
            .expect("poll");
    }
    let (ended, took) = over.join().expect("third client");
    assert!(ended, "closed or reset without an answer");
    assert!(
        took < Duration::from_secs(2),
        "closed at once, not after {took:?}"
    );
    assert_eq!(h.ctx.connection_count(), 2);

    // The two inside still work; when one leaves, a new client gets in.
    a.send_frame(true, 1, b"hi");
    let mut echoed = false;
    assert!(h.run_until(TEST_DEADLINE, |ctx, ev| {
        if let Event::Message { conn, kind, data } = ev {
            ctx.send(conn, kind, data).expect("echo");
            echoed = true;
        }
        echoed
    }));
    h.ctx
        .poll(&mut h.events, Some(Duration::from_millis(20)))
        .expect("poll");
    assert_eq!(a.read_frame().expect("echo").2, b"hi");
    drop(b);
    let mut closed = false;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        closed |= matches!(ev, Event::Closed { .. });
        closed
    }));
    let again = thread::spawn(move || RawClient::open(port));
    let end = Instant::now() + TEST_DEADLINE;
    while !again.is_finished() && Instant::now() < end {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(20)))
            .expect("poll");
    }
    again.join().expect("a new client gets in");
}
