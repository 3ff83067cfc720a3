//! Client behaviour: failures that say what failed, name resolution off the poll thread,
//! the cross-thread Sender, keepalive, deflate, shutdown.

mod common;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{text_pattern, Harness, RawClient, TEST_DEADLINE};
use tidewire_net::{
    Config, ConnId, ConnectOptions, Context, Error, Event, ListenOptions, MessageKind, Resolve,
    TimeoutKind,
};
use tidewire_proto::deflate::DeflateConfig;

/// Polls a bare context until `f` says done.
fn run(ctx: &mut Context, mut f: impl FnMut(&mut Context, Event<'_>) -> bool) -> bool {
    let mut events = ctx.new_events();
    let end = Instant::now() + TEST_DEADLINE;
    while Instant::now() < end {
        ctx.poll(&mut events, Some(Duration::from_millis(20)))
            .expect("poll");
        let mut done = false;
        for ev in events.iter() {
            done |= f(ctx, ev);
        }
        if done {
            return true;
        }
    }
    false
}

fn connect_error(ctx: &mut Context, url: &str, options: ConnectOptions) -> Error {
    let conn = ctx.connect(url, options).expect("connect starts");
    let mut error = None;
    assert!(run(ctx, |_, ev| {
        match ev {
            Event::Error { error: e, .. } => {
                assert_eq!(ev.conn(), Some(conn));
                error = Some(format!("{e:?}"));
                return true;
            }
            Event::Open { .. } => panic!("should not open"),
            _ => {}
        }
        false
    }));
    // Errors are not Clone; take it again by kind from the debug text for the caller.
    let text = error.expect("error");
    match text {
        t if t.starts_with("Connect") => Error::Connect(io::ErrorKind::ConnectionRefused.into()),
        t if t.starts_with("Resolve") => Error::Resolve {
            host: String::new(),
            error: io::ErrorKind::NotFound.into(),
        },
        t if t.starts_with("Timeout(Connect)") => Error::Timeout(TimeoutKind::Connect),
        t if t.starts_with("HandshakeRejected") => {
            let status = t
                .split("status: ")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            Error::HandshakeRejected {
                status,
                reason: String::new(),
                headers: Vec::new(),
                body: Vec::new(),
            }
        }
        other => Error::InvalidArgument(other),
    }
}

#[test]
fn refused_connection_is_reported_as_connect_error() {
    // A port that was just free: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut ctx = Context::new(Config::default()).expect("ctx");
    let e = connect_error(
        &mut ctx,
        &format!("ws://127.0.0.1:{port}/"),
        ConnectOptions::default(),
    );
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    assert_eq!(ctx.connection_count(), 0);
}

#[test]
fn bad_urls_and_headers_fail_synchronously() {
    let mut ctx = Context::new(Config::default()).expect("ctx");
    for url in [
        "http://x/",
        "ws://",
        "ws://a b/",
        "ws://x/#frag",
        "ws://u@x/",
    ] {
        assert!(
            matches!(
                ctx.connect(url, ConnectOptions::default()),
                Err(Error::InvalidUrl(_))
            ),
            "{url}"
        );
    }
    let bad_header = ConnectOptions {
        headers: vec![("X-Evil".into(), "a\r\nb".into())],
        ..ConnectOptions::default()
    };
    assert!(matches!(
        ctx.connect("ws://127.0.0.1:1/", bad_header),
        Err(Error::Handshake(_))
    ));
    assert_eq!(ctx.connection_count(), 0);
}

#[test]
fn non_websocket_server_answer_is_handshake_rejected_with_its_status() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 2048];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
    });
    let mut ctx = Context::new(Config::default()).expect("ctx");
    let e = connect_error(
        &mut ctx,
        &format!("ws://127.0.0.1:{port}/"),
        ConnectOptions::default(),
    );
    assert!(
        matches!(e, Error::HandshakeRejected { status: 401, .. }),
        "{e:?}"
    );
    server.join().expect("server");
}

/// Answers "slow.test" after a delay and fails "missing.test"; everything else is 127.0.0.1.
struct SlowResolver {
    delay: Duration,
}

impl Resolve for SlowResolver {
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        match host {
            "slow.test" => {
                thread::sleep(self.delay);
                Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
            }
            "missing.test" => Err(io::Error::new(io::ErrorKind::NotFound, "no such host")),
            _ => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
        }
    }
}

#[test]
fn slow_name_resolution_does_not_stall_poll_for_other_connections() {
    let delay = Duration::from_millis(1500);
    let config = Config {
        resolver: Arc::new(SlowResolver { delay }),
        ..Config::default()
    };
    let mut h = Harness::new(config, ListenOptions::default());
    let started = Instant::now();
    let slow = h
        .ctx
        .connect(
            &format!("ws://slow.test:{}/", h.port),
            ConnectOptions::default(),
        )
        .expect("slow connect");
    let fast = h
        .ctx
        .connect(&h.url("/"), ConnectOptions::default())
        .expect("fast");
    let mut longest_poll = Duration::ZERO;
    let mut echoes = 0;
    let mut fast_open_at = None;
    let mut slow_open_at = None;
    let end = Instant::now() + TEST_DEADLINE;
    let mut ok = false;
    while !ok && Instant::now() < end {
        let t = Instant::now();
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(20)))
            .expect("poll");
        longest_poll = longest_poll.max(t.elapsed());
        for ev in h.events.iter() {
            match ev {
                Event::Open { conn, .. } if conn == fast => {
                    fast_open_at = Some(started.elapsed());
                    h.ctx.send_text(fast, "ping?").expect("send");
                }
                Event::Open { conn, .. } if conn == slow => slow_open_at = Some(started.elapsed()),
                Event::Message { conn, kind, data } if conn != fast => {
                    h.ctx.send(conn, kind, data).expect("echo");
                }
                Event::Message { conn, .. } if conn == fast => {
                    echoes += 1;
                    if echoes < 50 {
                        h.ctx.send_text(fast, "again").expect("send");
                    }
                }
                Event::Error { error, .. } => panic!("{error}"),
                _ => {}
            }
        }
        ok = slow_open_at.is_some() && echoes >= 50;
    }
    assert!(ok);
    let fast_open = fast_open_at.expect("fast opened");
    let slow_open = slow_open_at.expect("slow opened");
    assert!(
        fast_open < Duration::from_millis(500),
        "fast opened at {fast_open:?}"
    );
    assert!(slow_open >= delay, "slow opened at {slow_open:?}");
    assert!(
        longest_poll < Duration::from_millis(200),
        "a poll took {longest_poll:?}"
    );
}

#[test]
fn failed_name_resolution_is_reported_as_resolve_error() {
    let config = Config {
        resolver: Arc::new(SlowResolver {
            delay: Duration::ZERO,
        }),
        ..Config::default()
    };
    let mut ctx = Context::new(config).expect("ctx");
    let e = connect_error(&mut ctx, "ws://missing.test:9/", ConnectOptions::default());
    assert!(matches!(e, Error::Resolve { .. }), "{e:?}");
}

#[test]
fn resolution_slower_than_the_connect_timeout_is_a_connect_timeout() {
    let config = Config {
        resolver: Arc::new(SlowResolver {
            delay: Duration::from_millis(800),
        }),
        connect_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let mut ctx = Context::new(config).expect("ctx");
    let e = connect_error(&mut ctx, "ws://slow.test:9/", ConnectOptions::default());
    assert!(matches!(e, Error::Timeout(TimeoutKind::Connect)), "{e:?}");
}

#[test]
fn sender_used_from_four_threads_at_once_delivers_everything_in_order() {
    const PER_THREAD: u32 = 2000;
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let client = h
        .ctx
        .connect(&h.url("/"), ConnectOptions::default())
        .expect("connect");
    let mut server = None;
    assert!(
        h.run_until(TEST_DEADLINE, |_, ev| {
            if let Event::Open {
                conn,
                listener: Some(_),
                ..
            } = ev
            {
                server = Some(conn);
            }
            server.is_some() && h_is_open(ev, client)
        }) || server.is_some()
    );
    let server = server.expect("server side");
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let sender = h.ctx.sender();
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let mut msg = vec![t];
                    msg.extend_from_slice(&i.to_be_bytes());
                    // Server to client; the client counts per thread.
                    sender.send_binary(server, msg).expect("sender");
                }
            })
        })
        .collect();
    let mut next: HashMap<u8, u32> = HashMap::new();
    let mut total = 0;
    let ok = h.run_until(TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Message { conn, data, .. } if conn == client => {
                let t = data[0];
                let i = u32::from_be_bytes([data[1], data[2], data[3], data[4]]);
                let expected = next.entry(t).or_insert(0);
                assert_eq!(i, *expected, "thread {t} out of order");
                *expected += 1;
                total += 1;
            }
            Event::SendFailed { error, .. } => panic!("{error}"),
            _ => {}
        }
        total == 4 * PER_THREAD
    });
    for t in threads {
        t.join().expect("thread");
    }
    assert!(ok, "received {total}");
}

fn h_is_open(ev: Event<'_>, client: ConnId) -> bool {
    matches!(ev, Event::Open { conn, .. } if conn == client)
}

#[test]
fn sender_to_a_gone_connection_reports_send_failed_and_wake_wakes() {
    let mut ctx = Context::new(Config::default()).expect("ctx");
    let sender = ctx.sender();
    let t = thread::spawn(move || {
        sender.send_text(ConnId(77), "nobody").expect("queued");
        sender.wake().expect("wake");
    });
    t.join().expect("thread");
    let (mut failed, mut woke) = (false, false);
    assert!(run(&mut ctx, |_, ev| {
        match ev {
            Event::SendFailed { error, .. } => {
                assert!(matches!(error, Error::StaleId));
                failed = true;
            }
            Event::Wake => woke = true,
            _ => {}
        }
        failed && woke
    }));
    let sender = ctx.sender();
    drop(ctx);
    assert!(matches!(sender.wake(), Err(Error::ContextGone)));
}

#[test]
fn silent_peer_is_pinged_then_dropped_after_the_idle_timeout() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(100)),
        idle_timeout: Some(Duration::from_millis(500)),
        ..Config::default()
    };
    let mut h = Harness::new(config, ListenOptions::default());
    let port = h.port;
    let peer = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        // Read the ping but never answer it.
        let first = raw.read_frame().expect("frame");
        let eof = raw.wait_eof();
        (first, eof)
    });
    let start = Instant::now();
    let mut closed = None;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Closed { code, clean, .. } = ev {
            closed = Some((code, clean, start.elapsed()));
        }
        closed.is_some()
    }));
    let (code, clean, at) = closed.expect("closed");
    assert_eq!((code, clean), (1006, false));
    assert!(at >= Duration::from_millis(450), "{at:?}");
    let (first, eof) = peer.join().expect("peer");
    assert_eq!(first.1, 0x9, "a ping came first");
    assert!(eof);
}

#[test]
fn live_peer_answers_keepalive_pings_and_stays_open() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(50)),
        idle_timeout: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    let mut h = Harness::new(config, ListenOptions::default());
    let client = h
        .ctx
        .connect(&h.url("/"), ConnectOptions::default())
        .expect("connect");
    let mut pongs = 0;
    let end = Instant::now() + Duration::from_millis(1200);
    h.run_until(Duration::from_millis(1300), |_, ev| {
        match ev {
            Event::Pong { .. } => pongs += 1,
            Event::Closed { .. } => panic!("keepalive must not close a live peer"),
            _ => {}
        }
        Instant::now() >= end
    });
    assert!(pongs >= 3, "pongs: {pongs}");
    assert!(h.ctx.is_open(client));
}

#[test]
fn permessage_deflate_is_negotiated_and_messages_round_trip() {
    let options = ListenOptions {
        deflate: Some(DeflateConfig::default()),
        ..ListenOptions::default()
    };
    let mut h = Harness::new(Config::default(), options);
    let connect = ConnectOptions {
        deflate: Some(DeflateConfig::default()),
        ..ConnectOptions::default()
    };
    let client = h.ctx.connect(&h.url("/"), connect).expect("connect");
    let mut extensions = Vec::new();
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Open { extensions: e, .. } = ev {
            extensions.push(e.map(str::to_owned));
        }
        extensions.len() == 2
    }));
    for e in &extensions {
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("permessage-deflate")),
            "{extensions:?}"
        );
    }
    let text = text_pattern(100_000);
    h.ctx.send_text(client, &text).expect("send");
    let mut got = None;
    assert!(h.run_until(TEST_DEADLINE, |ctx, ev| {
        match ev {
            Event::Message { conn, kind, data } if conn != client => {
                ctx.send(conn, kind, data).expect("echo");
            }
            Event::Message { conn, data, kind } if conn == client => {
                assert_eq!(kind, MessageKind::Text);
                got = Some(data.to_vec());
            }
            _ => {}
        }
        got.is_some()
    }));
    assert!(got.expect("echo") == text.as_bytes());
}

#[test]
fn deflate_is_on_by_default_and_one_message_can_go_uncompressed() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let port = h.port;
    let raw = std::thread::spawn(move || {
        let (mut raw, head) = RawClient::upgrade(
            port,
            "/",
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        )
        .expect("upgrade");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains(
                "sec-websocket-extensions: permessage-deflate; server_no_context_takeover"
            ),
            "{head}"
        );
        raw.send_frame(true, 1, b"go");
        let first = raw.read_frame_raw().expect("first");
        let second = raw.read_frame_raw().expect("second");
        (first, second)
    });
    let text = "compressible ".repeat(100);
    let mut sent = false;
    assert!(h.run_until(TEST_DEADLINE, |ctx, ev| {
        if let Event::Message { conn, .. } = ev {
            ctx.send_text(conn, &text).expect("compressed");
            ctx.send_with(conn, MessageKind::Text, text.as_bytes(), false)
                .expect("uncompressed");
            sent = true;
        }
        sent
    }));
    h.run_until(Duration::from_millis(200), |_, _| false);
    let ((b0, compressed), (b1, plain)) = raw.join().expect("raw client");
    assert_eq!(b0 & 0x40, 0x40, "RSV1 set on the compressed message");
    assert!(compressed.len() < text.len() / 4);
    assert_eq!(b1 & 0x40, 0, "RSV1 clear when asked not to compress");
    assert_eq!(plain, text.as_bytes());
}

#[test]
fn shutdown_closes_every_connection_with_1001() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let clients: Vec<_> = (0..5)
        .map(|_| {
            h.ctx
                .connect(&h.url("/"), ConnectOptions::default())
                .expect("connect")
        })
        .collect();
    let mut open = 0;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if matches!(ev, Event::Open { .. }) {
            open += 1;
        }
        open == 10
    }));
    h.ctx.shutdown(Duration::from_secs(5));
    assert_eq!(h.ctx.listener_count(), 0);
    let mut closed = Vec::new();
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Closed {
            conn, code, clean, ..
        } = ev
        {
            assert_eq!(code, 1001);
            assert!(clean);
            closed.push(conn);
        }
        closed.len() == 10
    }));
    for c in clients {
        assert!(closed.contains(&c));
    }
    assert_eq!(h.ctx.connection_count(), 0);
    assert!(matches!(
        h.ctx.connect(&h.url("/"), ConnectOptions::default()),
        Err(Error::ShuttingDown)
    ));
}

/// A server that writes its 101 response and two frames (a text message, then a frame with a
/// reserved bit) in one segment, and returns everything the client sent after its request.
fn scripted_server(frames: &'static [u8]) -> (u16, thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).expect("read request");
            request.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&request).into_owned();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .expect("key")
            .trim()
            .to_owned();
        let accept = tidewire_proto::handshake::accept_key(key.as_bytes());
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        out.extend_from_slice(frames);
        sock.write_all(&out).expect("write");
        let mut got = Vec::new();
        while let Ok(n) = sock.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    (port, handle)
}

#[test]
fn message_in_the_same_read_as_the_101_is_answered_before_the_failure_close() {
    // Autobahn 3.2 as a client sees it when the response and the frames share a segment.
    let (port, server) = scripted_server(b"\x81\x05hello\xa1\x05hello");
    let mut ctx = Context::new(Config::default()).expect("context");
    let mut events = ctx.new_events();
    let options = ConnectOptions {
        deflate: None,
        ..ConnectOptions::default()
    };
    let client = ctx
        .connect(&format!("ws://127.0.0.1:{port}/"), options)
        .expect("connect");
    let deadline = Instant::now() + TEST_DEADLINE;
    let mut closed = None;
    while closed.is_none() && Instant::now() < deadline {
        ctx.poll(&mut events, Some(Duration::from_millis(50)))
            .expect("poll");
        for ev in events.iter() {
            match ev {
                Event::Message { conn, kind, data } => {
                    ctx.send(conn, kind, data).expect("echo before the close");
                }
                Event::Closed { code, .. } => closed = Some(code),
                Event::Error { error, .. } => panic!("{error}"),
                _ => {}
            }
        }
    }
    assert_eq!(closed, Some(1002));
    assert!(!ctx.is_open(client));
    let got = server.join().expect("server");
    // The first frame the server reads back is the masked echo (text, 5 bytes), then a close.
    assert_eq!(&got[..2], &[0x81, 0x85], "echo first: {got:02x?}");
    assert_eq!(got[11] & 0x0f, 0x8, "then the close: {got:02x?}");
}

/// Runs a client of `scripted_server` that answers the message only five polls later, then
/// releases the held close (when `release`). Returns the close code and what the
/// server read back.
fn held_close_client(release: bool) -> (Option<u16>, Vec<u8>, Duration) {
    let (port, server) = scripted_server(b"\x81\x05hello\xa1\x05hello");
    let config = Config {
        hold_close_replies: true,
        close_timeout: Duration::from_millis(400),
        ..Config::default()
    };
    let mut ctx = Context::new(config).expect("context");
    let mut events = ctx.new_events();
    let options = ConnectOptions {
        deflate: None,
        ..ConnectOptions::default()
    };
    let client = ctx
        .connect(&format!("ws://127.0.0.1:{port}/"), options)
        .expect("connect");
    let start = Instant::now();
    let deadline = start + TEST_DEADLINE;
    let mut message = None;
    let mut polls_since_message = 0;
    let mut answered = false;
    let mut held_seen = false;
    let mut closed = None;
    while closed.is_none() && Instant::now() < deadline {
        ctx.poll(&mut events, Some(Duration::from_millis(20)))
            .expect("poll");
        let held_now = events.held_close_replies() == [client];
        for ev in events.iter() {
            match ev {
                Event::Message { data, .. } => message = Some(data.to_vec()),
                Event::Closed { code, .. } => closed = Some(code),
                Event::Error { error, .. } => panic!("{error}"),
                _ => {}
            }
        }
        if message.is_some() {
            polls_since_message += 1;
            held_seen |= held_now && polls_since_message == 1;
        }
        // An application (another task, say) that answers some polls later.
        if polls_since_message == 5 && release && !answered {
            answered = true;
            let data = message.take().expect("message");
            ctx.send_binary(client, &data)
                .expect("the close is still held");
            assert!(ctx.release_close_reply(client).expect("release"));
            assert!(!ctx.release_close_reply(client).expect("released once"));
        }
    }
    assert!(
        held_seen,
        "the held close is reported in the same poll as the message"
    );
    (closed, server.join().expect("server"), start.elapsed())
}

#[test]
fn held_close_goes_out_after_the_answer_when_released() {
    let (closed, got, elapsed) = held_close_client(true);
    assert_eq!(closed, Some(1002));
    assert_eq!(&got[..2], &[0x82, 0x85], "the answer first: {got:02x?}");
    assert_eq!(got[11] & 0x0f, 0x8, "then the close: {got:02x?}");
    assert!(
        elapsed < Duration::from_millis(400),
        "no wait for the timer"
    );
}

#[test]
fn held_close_that_is_never_released_goes_out_at_the_close_timeout() {
    let (closed, got, elapsed) = held_close_client(false);
    assert_eq!(closed, Some(1002));
    assert_eq!(got[0] & 0x0f, 0x8, "only the close: {got:02x?}");
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
}

#[test]
fn closed_says_whether_the_code_came_from_the_peer() {
    // The peer's own close: remote.
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let client = h
        .ctx
        .connect(&h.url("/"), ConnectOptions::default())
        .expect("connect");
    let mut seen = None;
    assert!(h.run_until(TEST_DEADLINE, |ctx, ev| {
        match ev {
            Event::Open { conn, listener, .. } if listener.is_some() => {
                ctx.close(conn, 4000, "server says bye").expect("close");
            }
            Event::Closed {
                conn, code, remote, ..
            } if conn == client => seen = Some((code, remote)),
            _ => {}
        }
        seen.is_some()
    }));
    assert_eq!(seen, Some((4000, true)));

    // A code we sent because the peer broke the protocol: not remote.
    let (port, server) = scripted_server(b"\xa1\x05hello");
    let mut ctx = Context::new(Config::default()).expect("context");
    let options = ConnectOptions {
        deflate: None,
        ..ConnectOptions::default()
    };
    let conn = ctx
        .connect(&format!("ws://127.0.0.1:{port}/"), options)
        .expect("connect");
    let mut seen = None;
    assert!(run(&mut ctx, |_, ev| {
        if let Event::Closed {
            conn: c,
            code,
            remote,
            ..
        } = ev
        {
            assert_eq!(c, conn);
            seen = Some((code, remote));
        }
        seen.is_some()
    }));
    assert_eq!(seen, Some((1002, false)));
    server.join().expect("server");
}

#[test]
fn a_client_connects_from_the_local_address_it_asks_for() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let url = h.url("/");
    let options = ConnectOptions {
        local_address: Some("127.0.0.7".parse().expect("ip")),
        ..ConnectOptions::default()
    };
    let client = h.ctx.connect(&url, options).expect("connect");
    let mut server_peer = None;
    let mut client_open = false;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Open {
            conn, peer_addr, ..
        } = ev
        {
            if conn == client {
                client_open = true;
            } else {
                server_peer = Some(peer_addr);
            }
        }
        client_open && server_peer.is_some()
    }));
    let ip: std::net::IpAddr = "127.0.0.7".parse().expect("ip");
    assert_eq!(server_peer.map(|a| a.ip()), Some(ip));

    // An IPv6 local address cannot reach an IPv4 server: said plainly, no hang.
    let options = ConnectOptions {
        local_address: Some("::1".parse().expect("ip")),
        ..ConnectOptions::default()
    };
    match h.ctx.connect(&url, options) {
        Err(Error::Connect(e)) => assert!(e.to_string().contains("cannot reach"), "{e}"),
        other => panic!("expected a connect error, got {other:?}"),
    }
}
