//! Client and server of this crate echoing through one context over loopback.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{pattern, text_pattern, Harness, TEST_DEADLINE};
use tidewire_net::{
    Config, ConnId, ConnectOptions, Error, Event, ListenOptions, MessageKind, SendError,
};

const SIZES: &[usize] = &[0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20];

/// Opens one client connection to the harness; returns (client, server) ids.
fn open_pair(h: &mut Harness) -> (ConnId, ConnId) {
    open_pair_with(h, ConnectOptions::default())
}

fn open_pair_with(h: &mut Harness, options: ConnectOptions) -> (ConnId, ConnId) {
    let client = h.ctx.connect(&h.url("/echo"), options).expect("connect");
    let mut server = None;
    let mut client_open = false;
    let ok = h.run_until(TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Open {
                conn,
                listener: Some(_),
                path,
                ..
            } => {
                assert_eq!(path, "/echo");
                server = Some(conn);
            }
            Event::Open { conn, .. } if conn == client => client_open = true,
            Event::Error { error, .. } => panic!("unexpected error {error}"),
            _ => {}
        }
        client_open && server.is_some()
    });
    assert!(ok, "connection did not open");
    (client, server.expect("server side"))
}

fn echo_roundtrip(h: &mut Harness, client: ConnId, server: ConnId, kind: MessageKind, msg: &[u8]) {
    h.ctx.send(client, kind, msg).expect("client send");
    let mut got = None;
    let ok = h.run_until(TEST_DEADLINE, |ctx, ev| match ev {
        Event::Message { conn, kind, data } if conn == server => {
            ctx.send(conn, kind, data).expect("echo");
            false
        }
        Event::Message {
            conn,
            kind: k,
            data,
        } if conn == client => {
            assert_eq!(k, kind);
            got = Some(data.to_vec());
            true
        }
        Event::Closed { code, reason, .. } => panic!("closed {code} {reason}"),
        _ => false,
    });
    assert!(ok, "no echo for {} bytes", msg.len());
    let got = got.expect("echo");
    assert_eq!(got.len(), msg.len());
    assert!(got == msg, "echo differs for {} bytes", msg.len());
}

#[test]
fn text_and_binary_of_every_size_echo_unchanged() {
    let config = Config::default();
    let mut h = Harness::new(config, ListenOptions::default());
    let (client, server) = open_pair(&mut h);
    for &size in SIZES {
        echo_roundtrip(
            &mut h,
            client,
            server,
            MessageKind::Binary,
            &pattern(size, 7),
        );
        echo_roundtrip(
            &mut h,
            client,
            server,
            MessageKind::Text,
            text_pattern(size).as_bytes(),
        );
    }
    h.ctx.close(client, 1000, "bye").expect("close");
    let closing = std::time::Instant::now();
    let mut closed = HashSet::new();
    let ok = h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Closed {
            conn, code, clean, ..
        } = ev
        {
            assert_eq!(code, 1000);
            assert!(clean);
            closed.insert(conn);
        }
        closed.len() == 2
    });
    assert!(ok, "both ends report Closed");
    // The closing handshake completes by itself, not by the 5 s close timeout.
    assert!(
        closing.elapsed() < Duration::from_secs(2),
        "{:?}",
        closing.elapsed()
    );
    assert_eq!(h.ctx.connection_count(), 0);
}

/// A plain server writes large messages straight from the caller's slice; the engine's send
/// rules hold on that path as on the buffered one: text must be UTF-8, and a whole message
/// waits for a streamed one to end.
#[test]
fn large_server_messages_keep_the_engines_send_rules() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    // Without permessage-deflate, where large messages can skip the output buffer.
    let options = ConnectOptions {
        deflate: None,
        ..ConnectOptions::default()
    };
    let (client, server) = open_pair_with(&mut h, options);
    let big = pattern(1 << 20, 5);
    let mut bad_text = text_pattern(1 << 20).into_bytes();
    bad_text[1000] = 0xFF;
    assert!(matches!(
        h.ctx.send(server, MessageKind::Text, &bad_text),
        Err(Error::Send(SendError::InvalidUtf8))
    ));
    h.ctx
        .begin_message(server, MessageKind::Binary)
        .expect("begin");
    assert!(matches!(
        h.ctx.send_binary(server, &big),
        Err(Error::Send(SendError::MessageInProgress))
    ));
    h.ctx
        .send_fragment(server, b"streamed", true)
        .expect("fragment");
    h.ctx.flush(server).expect("flush");
    h.ctx.send_binary(server, &big).expect("whole message");
    let mut got = Vec::new();
    let ok = h.run_until(TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Message { conn, data, .. } if conn == client => got.push(data.to_vec()),
            Event::Closed { code, reason, .. } => panic!("closed {code} {reason}"),
            _ => {}
        }
        got.len() == 2
    });
    assert!(ok, "got {} of 2 messages", got.len());
    assert_eq!(got[0], b"streamed");
    assert!(got[1] == big, "the large message differs");
}

#[test]
fn many_messages_sent_in_one_cycle_all_arrive_in_order() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let (client, server) = open_pair(&mut h);
    for i in 0..1000u32 {
        h.ctx.send_binary(client, &i.to_be_bytes()).expect("send");
    }
    let mut next = 0u32;
    let ok = h.run_until(TEST_DEADLINE, |ctx, ev| match ev {
        Event::Message { conn, kind, data } if conn == server => {
            ctx.send(conn, kind, data).expect("echo");
            false
        }
        Event::Message { conn, data, .. } if conn == client => {
            assert_eq!(data, next.to_be_bytes());
            next += 1;
            next == 1000
        }
        _ => false,
    });
    assert!(ok, "got {next} of 1000");
}

#[test]
fn stale_ids_are_errors_not_panics() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let bogus = ConnId(0);
    assert!(matches!(
        h.ctx.send_text(bogus, "x"),
        Err(tidewire_net::Error::StaleId)
    ));
    assert!(h.ctx.close(ConnId(u64::MAX), 1000, "").is_err());
    assert!(h.ctx.buffered_amount(ConnId(12345)).is_err());
    let (client, _server) = open_pair(&mut h);
    h.ctx.close(client, 1000, "").expect("close");
    h.run_until(
        Duration::from_secs(5),
        |_, ev| matches!(ev, Event::Closed { conn, .. } if conn == client),
    );
    assert!(matches!(
        h.ctx.send_text(client, "late"),
        Err(tidewire_net::Error::StaleId)
    ));
}

#[test]
fn ipv6_loopback_listener_and_client_echo() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let mut ctx = tidewire_net::Context::new(Config::default()).expect("ctx");
    let l = ctx
        .listen("::1", 0, ListenOptions::default())
        .expect("listen v6");
    let addr = ctx.local_addr(l).expect("addr");
    assert!(addr.is_ipv6());
    let url = format!("ws://[::1]:{}/v6", addr.port());
    let client = ctx
        .connect(&url, ConnectOptions::default())
        .expect("connect");
    let mut events = ctx.new_events();
    let end = std::time::Instant::now() + TEST_DEADLINE;
    let mut echoed = false;
    while !echoed && std::time::Instant::now() < end {
        ctx.poll(&mut events, Some(Duration::from_millis(20)))
            .expect("poll");
        for ev in events.iter() {
            match ev {
                Event::Open {
                    conn, peer_addr, ..
                } if conn == client => {
                    assert!(peer_addr.is_ipv6());
                    ctx.send_text(client, "over v6").expect("send");
                }
                Event::Message { conn, kind, data } if conn != client => {
                    ctx.send(conn, kind, data).expect("echo");
                }
                Event::Message { data, .. } => {
                    assert_eq!(data, b"over v6");
                    echoed = true;
                }
                _ => {}
            }
        }
    }
    assert!(echoed);
}

#[test]
fn two_contexts_share_a_port_with_reuse_port() {
    let options = ListenOptions {
        reuse_port: true,
        ..ListenOptions::default()
    };
    let mut a = tidewire_net::Context::new(Config::default()).expect("a");
    let la = a.listen("127.0.0.1", 0, options.clone()).expect("listen a");
    let port = a.local_addr(la).expect("addr").port();
    let mut b = tidewire_net::Context::new(Config::default()).expect("b");
    let lb = b.listen("127.0.0.1", port, options).expect("listen b");
    assert_eq!(b.local_addr(lb).expect("addr").port(), port);
}

/// A host loop as a C program, asyncio or a game engine runs it: wait on `fd()` for at
/// most `next_timeout()`, then `poll` with a zero timeout.
#[test]
fn host_loop_drives_the_context_through_fd_and_next_timeout() {
    use mio::unix::SourceFd;
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let mut outer = mio::Poll::new().expect("outer poll");
    let fd = h.ctx.fd();
    outer
        .registry()
        .register(&mut SourceFd(&fd), mio::Token(0), mio::Interest::READABLE)
        .expect("register ctx fd");
    let mut outer_events = mio::Events::with_capacity(8);
    let client = h
        .ctx
        .connect(&h.url("/"), ConnectOptions::default())
        .expect("connect");
    let end = std::time::Instant::now() + TEST_DEADLINE;
    let mut echoes = 0;
    while echoes < 100 && std::time::Instant::now() < end {
        let wait = h
            .ctx
            .next_timeout()
            .map_or(Duration::from_millis(200), |t| {
                t.min(Duration::from_millis(200))
            });
        outer.poll(&mut outer_events, Some(wait)).expect("outer");
        h.ctx
            .poll(&mut h.events, Some(Duration::ZERO))
            .expect("poll");
        for ev in h.events.iter() {
            match ev {
                Event::Open { conn, .. } if conn == client => {
                    h.ctx.send_text(client, "tick").expect("send");
                }
                Event::Message { conn, kind, data } if conn != client => {
                    h.ctx.send(conn, kind, data).expect("echo");
                }
                Event::Message { .. } => {
                    echoes += 1;
                    h.ctx.send_text(client, "tick").expect("send");
                }
                _ => {}
            }
        }
    }
    assert_eq!(echoes, 100);
}

/// Large messages from a server may be written straight from the caller's slice; whatever
/// the socket does not take is queued before later messages, so order and content hold.
#[test]
fn server_messages_large_and_small_interleaved_arrive_in_order() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let (client, server) = open_pair(&mut h);
    let sizes: Vec<usize> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                100_000 + i * 1000
            } else {
                10 + i
            }
        })
        .collect();
    for (i, &size) in sizes.iter().enumerate() {
        h.ctx
            .send_binary(server, &pattern(size, i as u8))
            .expect("send");
    }
    let mut next = 0;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Message { conn, data, .. } = ev {
            assert_eq!(conn, client);
            assert!(data == pattern(sizes[next], next as u8), "message {next}");
            next += 1;
        }
        next == sizes.len()
    }));
    assert_eq!(h.ctx.buffered_amount(server).expect("buffered"), 0);
}
