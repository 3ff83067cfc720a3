//! Limits that keep one peer from growing the server's memory or taking all its capacity
//! (issue 12): reading stops while a peer does not read what it provokes, pings are answered
//! one per flush at most, and a client over `max_connections` is turned away at once.

mod common;

use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

use common::{wait_server_open, Harness, RawClient, TEST_DEADLINE};
use tidewire_net::{Config, ConnectionRate, Event, ListenOptions, PeerLimits};

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

/// Connects from `source` (an address of 127.0.0.0/8) and upgrades; `None` when the server
/// closed or reset the connection without an answer.
fn upgrade_from(source: &str, port: u16) -> Option<RawClient> {
    use socket2::{Domain, Socket, Type};
    use std::io::Write;
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let from: std::net::SocketAddr = format!("{source}:0").parse().expect("addr");
    sock.bind(&from.into()).expect("bind source");
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    sock.connect(&to.into()).expect("connect");
    let mut stream: std::net::TcpStream = sock.into();
    stream
        .set_read_timeout(Some(TEST_DEADLINE))
        .expect("timeout");
    let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return None;
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    Some(RawClient::from_stream(stream))
}

/// Runs `f` on a thread while polling the context; returns what `f` returned.
fn with_server<T: Send + 'static>(h: &mut Harness, f: impl FnOnce() -> T + Send + 'static) -> T {
    let t = thread::spawn(f);
    let end = Instant::now() + TEST_DEADLINE;
    while !t.is_finished() && Instant::now() < end {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(5)))
            .expect("poll");
    }
    t.join().expect("client thread")
}

#[test]
fn connections_per_address_are_limited_without_costing_other_addresses() {
    let options = ListenOptions {
        peer_limits: PeerLimits {
            max_connections_per_address: Some(2),
            ..PeerLimits::default()
        },
        ..ListenOptions::default()
    };
    let mut h = Harness::new(Config::default(), options);
    let port = h.port;
    let (a, b, over, other) = with_server(&mut h, move || {
        let a = upgrade_from("127.0.0.2", port);
        let b = upgrade_from("127.0.0.2", port);
        let over = upgrade_from("127.0.0.2", port);
        let other = upgrade_from("127.0.0.3", port);
        (a, b, over, other)
    });
    assert!(a.is_some() && b.is_some(), "two from one address");
    assert!(
        over.is_none(),
        "a third from the same address is closed at once"
    );
    assert!(other.is_some(), "another address is not affected");
    drop(a);
    let mut closed = false;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        closed |= matches!(ev, Event::Closed { .. });
        closed
    }));
    let again = with_server(&mut h, move || upgrade_from("127.0.0.2", port));
    assert!(again.is_some(), "room again once one left");
    drop((b, other));
}

#[test]
fn handshakes_in_progress_per_address_are_limited() {
    let options = ListenOptions {
        peer_limits: PeerLimits {
            max_handshakes_per_address: Some(3),
            ..PeerLimits::default()
        },
        ..ListenOptions::default()
    };
    let mut h = Harness::new(Config::default(), options);
    let port = h.port;
    // Three slow handshakes (connected, nothing sent) hold the address's slots.
    let slow: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < end {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(5)))
            .expect("poll");
    }
    assert_eq!(h.ctx.connection_count(), 3);
    let (refused, other) = with_server(&mut h, move || {
        (
            upgrade_from("127.0.0.1", port),
            upgrade_from("127.0.0.4", port),
        )
    });
    assert!(
        refused.is_none(),
        "a fourth handshake from the address is refused"
    );
    assert!(other.is_some(), "another address upgrades");
    drop(slow);
}

#[test]
fn the_connection_rate_per_address_allows_a_burst_then_refills() {
    let options = ListenOptions {
        peer_limits: PeerLimits {
            connection_rate: Some(ConnectionRate {
                per_second: 5.0,
                burst: 2,
            }),
            ..PeerLimits::default()
        },
        ..ListenOptions::default()
    };
    let mut h = Harness::new(Config::default(), options);
    let port = h.port;
    let got = with_server(&mut h, move || {
        let burst: Vec<bool> = (0..3)
            .map(|_| upgrade_from("127.0.0.5", port).is_some())
            .collect();
        let other = upgrade_from("127.0.0.6", port).is_some();
        thread::sleep(Duration::from_millis(300));
        let refilled = upgrade_from("127.0.0.5", port).is_some();
        (burst, other, refilled)
    });
    assert_eq!(got, (vec![true, true, false], true, true));
}

#[test]
fn invalid_peer_limits_are_refused_by_listen() {
    let mut ctx = tidewire_net::Context::new(Config::default()).expect("context");
    for limits in [
        PeerLimits {
            max_handshakes: Some(0),
            ..PeerLimits::default()
        },
        PeerLimits {
            connection_rate: Some(ConnectionRate {
                per_second: f64::NAN,
                burst: 1,
            }),
            ..PeerLimits::default()
        },
        PeerLimits {
            connection_rate: Some(ConnectionRate {
                per_second: 1.0,
                burst: 0,
            }),
            ..PeerLimits::default()
        },
    ] {
        let options = ListenOptions {
            peer_limits: limits,
            ..ListenOptions::default()
        };
        assert!(matches!(
            ctx.listen("127.0.0.1", 0, options),
            Err(tidewire_net::Error::InvalidArgument(_))
        ));
    }
}
