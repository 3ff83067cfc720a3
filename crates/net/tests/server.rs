//! Server behaviour against hand-driven peers: fragmentation, rejections, timeouts, resets,
//! back-pressure.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{pattern, wait_server_open, Harness, RawClient, TEST_DEADLINE};
use tidewire_net::{
    Config, ConnId, ConnectOptions, Error, Event, ListenOptions, MessageKind, SendStatus,
};

fn short_timeouts() -> Config {
    Config {
        handshake_timeout: Duration::from_millis(300),
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    }
}

#[test]
fn fragmented_message_with_ping_between_fragments_arrives_whole() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let port = h.port;
    let peer = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        raw.send_frame(false, 0x1, b"Hel");
        raw.send_frame(true, 0x9, b"p");
        raw.send_frame(false, 0x0, b"lo");
        raw.send_frame(true, 0x0, b" world");
        let pong = raw.read_frame().expect("pong");
        let echo = raw.read_frame().expect("echo");
        (pong, echo)
    });
    let mut ping_seen = false;
    let ok = h.run_until(TEST_DEADLINE, |ctx, ev| match ev {
        Event::Ping { data, .. } => {
            assert_eq!(data, b"p");
            ping_seen = true;
            false
        }
        Event::Message { conn, kind, data } => {
            assert_eq!(kind, MessageKind::Text);
            assert_eq!(data, b"Hello world");
            assert!(ping_seen, "the ping came first");
            ctx.send(conn, kind, data).expect("echo");
            true
        }
        _ => false,
    });
    assert!(ok);
    // Keep polling so that the echo is flushed while the peer reads it.
    let deadline = Instant::now() + TEST_DEADLINE;
    while !peer.is_finished() && Instant::now() < deadline {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(10)))
            .expect("poll");
    }
    let (pong, echo) = peer.join().expect("peer done");
    assert_eq!(pong, (true, 0xA, b"p".to_vec()));
    assert_eq!(echo, (true, 0x1, b"Hello world".to_vec()));
}

#[test]
fn message_sent_as_fragments_by_the_client_api_arrives_whole() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let client = h
        .ctx
        .connect(&h.url("/"), ConnectOptions::default())
        .expect("connect");
    assert!(h.run_until(
        TEST_DEADLINE,
        |_, ev| matches!(ev, Event::Open { conn, .. } if conn == client)
    ));
    let big = pattern(200_000, 3);
    h.ctx
        .begin_message(client, MessageKind::Binary)
        .expect("begin");
    for (i, part) in big.chunks(70_000).enumerate() {
        let fin = (i + 1) * 70_000 >= big.len();
        h.ctx.send_fragment(client, part, fin).expect("fragment");
        h.ctx.ping(client, b"between").expect("ping");
    }
    let mut got = None;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Message { conn, data, .. } = ev {
            if conn != client {
                got = Some(data.to_vec());
            }
        }
        got.is_some()
    }));
    assert!(got.expect("message") == big);
}

#[test]
fn server_rejects_by_path_through_request_events() {
    let options = ListenOptions {
        handle_requests: true,
        ..ListenOptions::default()
    };
    let mut h = Harness::new(Config::default(), options);
    let good = h
        .ctx
        .connect(&h.url("/ok?x=1"), ConnectOptions::default())
        .expect("c1");
    let bad = h
        .ctx
        .connect(&h.url("/nope"), ConnectOptions::default())
        .expect("c2");
    let (mut good_open, mut bad_status) = (false, None);
    assert!(h.run_until(TEST_DEADLINE, |ctx, ev| {
        match ev {
            Event::Request { conn, request, .. } => {
                if request.path == "/ok" {
                    assert_eq!(request.query.as_deref(), Some("x=1"));
                    ctx.accept(conn, None, &[("X-Test", "yes")])
                        .expect("accept");
                } else {
                    ctx.reject(conn, 404, &[], b"no such path").expect("reject");
                }
            }
            Event::Open { conn, .. } if conn == good => good_open = true,
            Event::Error { error, .. } => {
                if let Error::HandshakeRejected { status, .. } = error {
                    bad_status = Some(*status);
                }
                assert_eq!(ev.conn(), Some(bad));
            }
            _ => {}
        }
        good_open && bad_status.is_some()
    }));
    assert_eq!(bad_status, Some(404));
}

#[test]
fn server_enforces_the_origin_allow_list() {
    let options = ListenOptions {
        allowed_origins: Some(vec!["https://good.example".into()]),
        ..ListenOptions::default()
    };
    let mut h = Harness::new(Config::default(), options);
    let with = |origin: &str| ConnectOptions {
        origin: Some(origin.into()),
        ..ConnectOptions::default()
    };
    let good = h
        .ctx
        .connect(&h.url("/"), with("https://GOOD.example"))
        .expect("c1");
    let evil = h
        .ctx
        .connect(&h.url("/"), with("https://evil.example"))
        .expect("c2");
    let none = h
        .ctx
        .connect(&h.url("/"), ConnectOptions::default())
        .expect("c3");
    let mut opened = Vec::new();
    let mut rejected = None;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Open {
                conn,
                listener: None,
                ..
            } => opened.push(conn),
            Event::Error { error, .. } => {
                assert_eq!(ev.conn(), Some(evil));
                rejected = Some(error.to_string());
                assert!(matches!(
                    error,
                    Error::HandshakeRejected { status: 403, .. }
                ));
            }
            _ => {}
        }
        opened.len() == 2 && rejected.is_some()
    }));
    opened.sort();
    let mut expected = vec![good, none];
    expected.sort();
    assert_eq!(opened, expected);
}

/// The listener's rules (proto's `handshake::Policy`) run before the application sees a
/// request, also with `handle_requests`, and the Request event carries their selection.
#[test]
fn listener_rules_apply_before_request_events_and_select_the_subprotocol() {
    let options = ListenOptions {
        subprotocols: vec!["v2".into(), "v1".into()],
        require_subprotocol: true,
        allowed_origins: Some(vec!["https://good.example".into()]),
        require_origin: true,
        handle_requests: true,
        ..ListenOptions::default()
    };
    let mut h = Harness::new(Config::default(), options);
    let client = |origin: Option<&str>, protocols: &[&str]| ConnectOptions {
        origin: origin.map(str::to_owned),
        subprotocols: protocols.iter().map(|p| p.to_string()).collect(),
        ..ConnectOptions::default()
    };
    let good = h
        .ctx
        .connect(
            &h.url("/"),
            client(Some("https://good.example"), &["v1", "v2"]),
        )
        .expect("good");
    let mut expected = std::collections::HashMap::new();
    for (opts, status) in [
        (client(Some("https://good.example"), &[]), 400),
        (client(Some("https://good.example"), &["v3"]), 400),
        (client(None, &["v1"]), 403),
        (client(Some("https://evil.example"), &["v1"]), 403),
    ] {
        let id = h.ctx.connect(&h.url("/"), opts).expect("connect");
        expected.insert(id, status);
    }
    let mut rejected = std::collections::HashMap::new();
    let (mut requests, mut opened) = (0, None);
    assert!(h.run_until(TEST_DEADLINE, |ctx, ev| {
        match ev {
            Event::Request {
                conn, subprotocol, ..
            } => {
                requests += 1;
                assert_eq!(subprotocol, Some("v2"), "the server's preference wins");
                let chosen = subprotocol.map(str::to_owned);
                ctx.accept(conn, chosen.as_deref(), &[]).expect("accept");
            }
            Event::Open {
                conn,
                listener: None,
                subprotocol,
                ..
            } => {
                assert_eq!(conn, good);
                opened = subprotocol.map(str::to_owned);
            }
            Event::Error {
                error: Error::HandshakeRejected { status, .. },
                ..
            } => {
                rejected.insert(ev.conn().expect("a connection's error"), *status);
            }
            _ => {}
        }
        opened.is_some() && rejected.len() == expected.len()
    }));
    assert_eq!(requests, 1, "refused requests never reach the application");
    assert_eq!(opened.as_deref(), Some("v2"));
    assert_eq!(rejected, expected);
}

#[test]
fn plain_http_request_is_answered_426_by_default() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let port = h.port;
    let peer = thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(TEST_DEADLINE)).expect("timeout");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    });
    let start = Instant::now();
    while !peer.is_finished() && start.elapsed() < TEST_DEADLINE {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(10)))
            .expect("poll");
        assert!(h.events.is_empty(), "no event for an answered request");
    }
    let answer = peer.join().expect("peer");
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
    assert!(answer.contains("Sec-WebSocket-Version: 13"), "{answer}");
}

#[test]
fn http_requests_reach_the_application_when_asked() {
    let options = ListenOptions {
        handle_http: true,
        ..ListenOptions::default()
    };
    let mut h = Harness::new(Config::default(), options);
    let port = h.port;
    let peer = thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(TEST_DEADLINE)).expect("timeout");
        s.write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    });
    let start = Instant::now();
    while !peer.is_finished() && start.elapsed() < TEST_DEADLINE {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(10)))
            .expect("poll");
        for ev in h.events.iter() {
            if let Event::HttpRequest { conn, request, .. } = ev {
                assert_eq!(request.path, "/index.html");
                h.ctx
                    .respond(conn, 200, &[("Content-Type", "text/html")], b"<p>hi</p>")
                    .expect("respond");
            }
        }
    }
    let answer = peer.join().expect("peer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("<p>hi</p>"), "{answer}");
}

#[test]
fn client_that_sends_nothing_is_dropped_after_the_handshake_timeout() {
    let mut h = Harness::new(short_timeouts(), ListenOptions::default());
    let port = h.port;
    let peer = thread::spawn(move || {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let start = Instant::now();
        let mut raw = RawClient::from_stream(s);
        let eof = raw.wait_eof();
        (eof, start.elapsed())
    });
    let start = Instant::now();
    while !peer.is_finished() && start.elapsed() < TEST_DEADLINE {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(50)))
            .expect("poll");
        assert!(h.events.is_empty(), "invisible connection, no event");
    }
    let (eof, took) = peer.join().expect("peer");
    assert!(eof);
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(h.ctx.connection_count(), 0);
}

/// A request handed to the application (`handle_requests`, `handle_http`) that it never
/// answers gets a 503 when the handshake time is up, and the application hears the timeout.
#[test]
fn request_the_application_never_decides_on_is_answered_503_after_the_handshake_timeout() {
    use std::io::{Read, Write};
    let options = ListenOptions {
        handle_requests: true,
        handle_http: true,
        ..ListenOptions::default()
    };
    let mut h = Harness::new(short_timeouts(), options);
    let port = h.port;
    let ask = move |request: &'static str| {
        thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_read_timeout(Some(TEST_DEADLINE)).expect("timeout");
            let start = Instant::now();
            s.write_all(request.as_bytes()).expect("request");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            (answer, start.elapsed())
        })
    };
    let upgrade = ask(
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let plain = ask("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    let (mut asked, mut timed_out) = (0, 0);
    let start = Instant::now();
    while !(upgrade.is_finished() && plain.is_finished()) && start.elapsed() < TEST_DEADLINE {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(10)))
            .expect("poll");
        for ev in h.events.iter() {
            match ev {
                Event::Request { .. } | Event::HttpRequest { .. } => asked += 1,
                Event::Error {
                    error: Error::Timeout(kind),
                    ..
                } => {
                    assert_eq!(*kind, tidewire_net::TimeoutKind::Handshake);
                    timed_out += 1;
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    for peer in [upgrade, plain] {
        let (answer, took) = peer.join().expect("peer");
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answer}"
        );
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
        assert!(
            answer.ends_with("The server did not answer in time.\n"),
            "{answer}"
        );
        assert!(took >= Duration::from_millis(250), "{took:?}");
    }
    assert_eq!((asked, timed_out), (2, 2));
    assert_eq!(h.ctx.connection_count(), 0);
}

#[test]
fn peer_that_never_answers_a_close_is_dropped_after_the_close_timeout() {
    let mut h = Harness::new(short_timeouts(), ListenOptions::default());
    let port = h.port;
    let (tx, rx) = mpsc::channel();
    let peer = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        let close = raw.read_frame().expect("close frame");
        tx.send(Instant::now()).expect("tx");
        let eof = raw.wait_eof();
        (close, eof)
    });
    let server = wait_server_open(&mut h);
    h.ctx.close(server, 1000, "done").expect("close");
    let mut closed = None;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Closed { code, clean, .. } = ev {
            closed = Some((code, clean, Instant::now()));
        }
        closed.is_some()
    }));
    let (code, clean, at) = closed.expect("closed");
    assert_eq!((code, clean), (1006, false));
    let sent = rx.recv_timeout(TEST_DEADLINE).expect("peer got the close");
    let waited = at.duration_since(sent);
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    let (close, eof) = peer.join().expect("peer");
    assert_eq!(close.1, 0x8);
    assert_eq!(&close.2[..2], &1000u16.to_be_bytes());
    assert_eq!(&close.2[2..], b"done");
    assert!(eof);
}

#[test]
fn abrupt_reset_gives_closed_1006_without_panic() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let port = h.port;
    let (tx, rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        raw.send_frame(true, 0x2, b"last words");
        let _ = rx.recv_timeout(TEST_DEADLINE);
        // SO_LINGER 0: close sends RST instead of FIN.
        socket2::SockRef::from(&raw.sock)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
        drop(raw);
    });
    let mut closed = None;
    let mut got_message = false;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Message { data, .. } => {
                assert_eq!(data, b"last words");
                got_message = true;
                let _ = tx.send(());
            }
            Event::Closed {
                code,
                clean,
                reason,
                ..
            } => closed = Some((code, clean, reason.to_owned())),
            _ => {}
        }
        closed.is_some()
    }));
    assert!(got_message);
    assert_eq!(closed, Some((1006, false, String::new())));
    peer.join().expect("peer");
}

/// A read that does not fill the buffer ends reading (the socket is drained), unless the
/// event said the stream had ended: then the end behind the data must still be seen.
#[test]
fn end_of_stream_right_behind_data_is_seen_and_data_split_by_pauses_arrives_whole() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let port = h.port;
    let peer = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        // One frame in three pieces, each after the server has read what came before.
        let frame = {
            let mut b = vec![0x82, 0x80 | 5, 1, 2, 3, 4];
            b.extend(
                b"piece"
                    .iter()
                    .zip([1u8, 2, 3, 4].iter().cycle())
                    .map(|(p, m)| p ^ m),
            );
            b
        };
        for part in [&frame[..3], &frame[3..8], &frame[8..]] {
            std::io::Write::write_all(&mut raw.sock, part).expect("write");
            thread::sleep(Duration::from_millis(30));
        }
        // A message and the end of the stream in one go.
        raw.send_frame(true, 0x2, b"last words");
        raw.sock
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        let _ = raw.read_frame();
    });
    let mut messages = Vec::new();
    let mut closed = None;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Message { data, .. } => messages.push(data.to_vec()),
            Event::Closed { code, clean, .. } => closed = Some((code, clean)),
            _ => {}
        }
        closed.is_some()
    }));
    assert_eq!(messages, vec![b"piece".to_vec(), b"last words".to_vec()]);
    assert_eq!(closed, Some((1006, false)));
    peer.join().expect("peer");
}

#[test]
fn peer_that_stops_reading_gets_backpressure_and_memory_stays_bounded() {
    const TOTAL: usize = 100 << 20;
    const MSG: usize = 64 << 10;
    let config = Config {
        high_water_mark: 1 << 20,
        low_water_mark: 256 << 10,
        max_buffered: 4 << 20,
        ..Config::default()
    };
    let (high, max) = (config.high_water_mark, config.max_buffered);
    let mut h = Harness::new(config, ListenOptions::default());
    let port = h.port;
    let (tx, rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        // Not reading until the server has hit its limits.
        let _ = rx.recv_timeout(TEST_DEADLINE);
        let mut payload = 0usize;
        while payload < TOTAL {
            let t = Instant::now();
            let (_, op, data) = raw
                .read_frame()
                .unwrap_or_else(|e| panic!("{e} after {:?} at {payload}", t.elapsed()));
            assert_eq!(op, 0x2);
            payload += data.len();
        }
        payload
    });
    let server = wait_server_open(&mut h);
    let chunk = pattern(MSG, 1);
    let (mut sent, mut max_seen, mut backpressure, mut refused) = (0usize, 0usize, 0, 0);
    let start = Instant::now();
    let limit = Duration::from_secs(60);
    let mut writable_seen = false;
    // Phase 1: the peer reads nothing and the application ignores back-pressure, so the
    // kernel's buffers fill up and then the hard cap refuses sends.
    while refused == 0 && start.elapsed() < limit {
        loop {
            match h.ctx.send_binary(server, &chunk) {
                Ok(SendStatus::Queued) => sent += MSG,
                Ok(SendStatus::Backpressure) => {
                    sent += MSG;
                    backpressure += 1;
                }
                Err(Error::BufferFull { .. }) => {
                    refused += 1;
                    writable_seen = false;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
            max_seen = max_seen.max(h.ctx.buffered_amount(server).expect("buffered"));
        }
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(10)))
            .expect("poll");
        // The kernel's buffers grow while they fill, so a Writable may come even here.
        writable_seen |= h.events.iter().any(|e| matches!(e, Event::Writable { .. }));
    }
    // Phase 2: the peer reads; the application now waits for Writable after back-pressure.
    let _ = tx.send(());
    let mut blocked = !writable_seen;
    while sent < TOTAL && start.elapsed() < limit {
        while !blocked && sent < TOTAL {
            match h.ctx.send_binary(server, &chunk) {
                Ok(SendStatus::Queued) => sent += MSG,
                Ok(SendStatus::Backpressure) => {
                    sent += MSG;
                    backpressure += 1;
                    blocked = true;
                }
                Err(e) => panic!("{e}"),
            }
            max_seen = max_seen.max(h.ctx.buffered_amount(server).expect("buffered"));
        }
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(20)))
            .expect("poll");
        for ev in h.events.iter() {
            match ev {
                Event::Writable { .. } => blocked = false,
                // The peer hangs up once it has read everything.
                Event::Closed { code, .. } => assert!(sent >= TOTAL, "closed {code} early"),
                _ => {}
            }
        }
    }
    while !peer.is_finished() && start.elapsed() < limit {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(20)))
            .expect("poll");
    }
    let received = peer.join().expect("peer");
    assert!(backpressure > 0, "back-pressure was reported");
    assert!(refused > 0, "sends above the hard cap were refused");
    assert!(
        max_seen <= max + MSG,
        "buffered {max_seen} > {max} + one message"
    );
    assert!(max_seen > high);
    assert!(received >= TOTAL);
    assert_eq!(received, sent);
}

#[test]
fn paused_connection_receives_nothing_until_resumed() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let port = h.port;
    let sent = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        for i in 0..3u8 {
            raw.send_frame(true, 2, &[i; 1000]);
        }
        raw
    });
    let server = wait_server_open(&mut h);
    h.ctx.pause_reading(server).expect("pause");
    assert!(h.ctx.is_reading_paused(server).expect("state"));
    let _raw = sent.join().expect("client");
    let mut early = 0;
    h.run_until(Duration::from_millis(300), |_, ev| {
        if matches!(ev, Event::Message { .. }) {
            early += 1;
        }
        false
    });
    assert_eq!(early, 0, "nothing is read while paused");
    h.ctx.resume_reading(server).expect("resume");
    let mut got = Vec::new();
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Message { data, .. } = ev {
            got.push(data[0]);
        }
        got.len() == 3
    }));
    assert_eq!(got, vec![0, 1, 2], "in order, none lost");
    assert!(matches!(
        h.ctx.pause_reading(ConnId(u64::MAX)),
        Err(Error::StaleId)
    ));
}

#[test]
fn flush_sends_at_once_and_poll_does_not_wake_for_it_afterwards() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let port = h.port;
    let (tx, rx) = mpsc::channel();
    let peer = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        let frame = raw.read_frame().expect("frame");
        tx.send(frame).expect("report");
        raw
    });
    let server = wait_server_open(&mut h);
    h.ctx
        .send(server, MessageKind::Binary, b"now")
        .expect("send");
    assert!(h.ctx.flush(server).expect("flush"), "nothing left");
    // No poll: the bytes are already on the wire.
    let (_, opcode, payload) = rx.recv_timeout(TEST_DEADLINE).expect("peer got it");
    assert_eq!((opcode, payload.as_slice()), (0x2, &b"now"[..]));
    // And the next poll has nothing left to do for it: it waits for the timeout.
    let start = Instant::now();
    h.ctx
        .poll(&mut h.events, Some(Duration::from_millis(100)))
        .expect("poll");
    assert!(h.events.is_empty());
    assert!(
        start.elapsed() >= Duration::from_millis(90),
        "poll returned early"
    );
    // A close that was sent is written, and poll still has work: the peer's answer.
    let mut raw = peer.join().expect("peer");
    h.ctx.close(server, 1000, "bye").expect("close");
    h.ctx.flush(server).expect("flush while closing");
    let (_, opcode, _) = raw.read_frame().expect("close frame");
    assert_eq!(opcode, 0x8);
    drop(raw);
    // A stale id is an error, not a panic.
    assert!(h.run_until(TEST_DEADLINE, |_, ev| matches!(ev, Event::Closed { .. })));
    assert!(matches!(h.ctx.flush(server), Err(Error::StaleId)));
}

#[test]
fn flush_after_backpressure_leaves_the_writable_event_to_poll() {
    let config = Config {
        high_water_mark: 1024,
        low_water_mark: 512,
        ..Config::default()
    };
    let mut h = Harness::new(config, ListenOptions::default());
    let port = h.port;
    let peer = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        raw.read_frame().expect("frame")
    });
    let server = wait_server_open(&mut h);
    let big = pattern(4096, 7);
    let status = h.ctx.send(server, MessageKind::Binary, &big).expect("send");
    assert_eq!(status, SendStatus::Backpressure);
    // Everything fits in the socket, but the writable event is still owed: poll must run.
    assert!(!h.ctx.flush(server).expect("flush"));
    assert_eq!(h.ctx.buffered_amount(server).expect("buffered"), 0);
    assert!(h.run_until(
        TEST_DEADLINE,
        |_, ev| matches!(ev, Event::Writable { conn } if conn == server)
    ));
    let (_, _, payload) = peer.join().expect("peer");
    assert_eq!(payload, big);
}
