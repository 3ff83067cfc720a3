//! Topics, publish and broadcast: exactly-once delivery to many subscribers, compression
//! once per parameter set, slow subscribers under each policy, publishing from another
//! thread. Clients and server share one context (its clients are ordinary tidewire
//! connections); every wait is bounded.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{text_pattern, Harness, TEST_DEADLINE};
use tidewire_net::{
    Config, ConnId, ConnectOptions, Context, DeflateConfig, Event, ListenOptions, MessageKind,
    PublishReport, SlowAction, SlowSubscriber,
};

/// Connects `n` clients (with deflate offered or not), subscribes each server side to
/// `room` as it opens, and returns (client ids, server ids) once all are open.
fn open_subscribers(h: &mut Harness, n: usize, deflate: bool) -> (Vec<ConnId>, Vec<ConnId>) {
    let options = ConnectOptions {
        deflate: deflate.then(DeflateConfig::default),
        ..ConnectOptions::default()
    };
    let clients: Vec<ConnId> = (0..n)
        .map(|_| {
            h.ctx
                .connect(&h.url("/"), options.clone())
                .expect("connect")
        })
        .collect();
    let mut servers = Vec::new();
    let mut opened = 0;
    let ok = h.run_until(TEST_DEADLINE, |ctx, ev| {
        match ev {
            Event::Open {
                conn,
                listener: Some(_),
                extensions,
                ..
            } => {
                assert_eq!(extensions.is_some(), deflate);
                assert!(ctx.subscribe(conn, b"room").expect("subscribe"));
                servers.push(conn);
            }
            Event::Open { listener: None, .. } => opened += 1,
            Event::Error { error, .. } => panic!("{error}"),
            _ => {}
        }
        opened == n && servers.len() == n
    });
    assert!(
        ok,
        "{opened} clients and {} servers open of {n}",
        servers.len()
    );
    (clients, servers)
}

/// Polls until every client in `clients` got `count` messages; checks each against
/// `expected(i)` in order. Returns the messages that arrived elsewhere (none expected).
fn receive_all(
    h: &mut Harness,
    clients: &[ConnId],
    count: usize,
    expected: impl Fn(usize) -> (MessageKind, Vec<u8>),
) {
    let mut got: HashMap<ConnId, usize> = clients.iter().map(|&c| (c, 0)).collect();
    let mut done = 0;
    let ok = h.run_until(TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Message { conn, kind, data } => {
                let n = got.get_mut(&conn).expect("only subscribers receive");
                assert!(*n < count, "a message arrived twice");
                let (want_kind, want) = expected(*n);
                assert_eq!(kind, want_kind);
                assert!(data == want.as_slice(), "message {n} intact and in order");
                *n += 1;
                if *n == count {
                    done += 1;
                }
            }
            Event::Closed { code, .. } => panic!("closed {code}"),
            Event::Error { error, .. } => panic!("{error}"),
            _ => {}
        }
        done == clients.len()
    });
    assert!(
        ok,
        "{done} of {} clients got all {count} messages",
        clients.len()
    );
}

fn message(i: usize) -> (MessageKind, Vec<u8>) {
    if i % 2 == 0 {
        (
            MessageKind::Text,
            format!("update {i}: {}", text_pattern(i * 7)).into_bytes(),
        )
    } else {
        (MessageKind::Binary, common::pattern(i * 13, i as u8))
    }
}

#[test]
fn a_thousand_subscribers_get_every_message_exactly_once() {
    const SUBSCRIBERS: usize = 1000;
    const MESSAGES: usize = 20;
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let (clients, _) = open_subscribers(&mut h, SUBSCRIBERS, false);
    assert_eq!(h.ctx.subscriber_count(b"room"), SUBSCRIBERS);
    for i in 0..MESSAGES {
        let (kind, data) = message(i);
        let report = h.ctx.publish(b"room", kind, &data).expect("publish");
        assert_eq!(
            report,
            PublishReport {
                delivered: SUBSCRIBERS,
                ..PublishReport::default()
            }
        );
    }
    receive_all(&mut h, &clients, MESSAGES, message);
}

#[test]
fn with_deflate_the_payload_is_compressed_once_per_publish() {
    const SUBSCRIBERS: usize = 200;
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let (clients, _) = open_subscribers(&mut h, SUBSCRIBERS, true);
    let text = |i: usize| {
        let body = format!(
            "{{\"seq\":{i},\"price\":101.25,\"note\":\"{}\"}}",
            "steady ".repeat(40)
        );
        (MessageKind::Text, body.into_bytes())
    };
    for i in 0..10 {
        let (kind, data) = text(i);
        let report = h.ctx.publish(b"room", kind, &data).expect("publish");
        assert_eq!(report.delivered, SUBSCRIBERS);
        assert_eq!(
            report.compressions, 1,
            "compressed once for {SUBSCRIBERS} subscribers"
        );
    }
    receive_all(&mut h, &clients, 10, text);
}

#[test]
fn subscriptions_follow_subscribe_unsubscribe_and_close() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let (clients, servers) = open_subscribers(&mut h, 3, false);
    let (a, b, c) = (servers[0], servers[1], servers[2]);
    assert!(!h.ctx.subscribe(a, b"room").unwrap(), "already subscribed");
    assert!(h.ctx.subscribe(a, b"other").unwrap());
    assert_eq!(h.ctx.topic_count(), 2);
    let mut topics = h.ctx.topics(a).unwrap();
    topics.sort();
    assert_eq!(topics, vec![b"other".to_vec(), b"room".to_vec()]);
    assert!(h.ctx.unsubscribe(b, b"room").unwrap());
    assert!(!h.ctx.unsubscribe(b, b"room").unwrap());
    assert!(!h.ctx.unsubscribe(b, b"never").unwrap());
    assert_eq!(h.ctx.subscriber_count(b"room"), 2);

    // Closing `a` (from the client side) takes it out of both of its topics.
    h.ctx.close(clients[0], 1000, "bye").unwrap();
    let ok = h.run_until(
        TEST_DEADLINE,
        |_, ev| matches!(ev, Event::Closed { conn, .. } if conn == a),
    );
    assert!(ok);
    assert_eq!(h.ctx.subscriber_count(b"room"), 1);
    assert_eq!(h.ctx.subscriber_count(b"other"), 0);
    assert_eq!(
        h.ctx.topic_count(),
        1,
        "a topic without subscribers is gone"
    );
    assert!(h.ctx.subscribe(a, b"room").is_err(), "stale id");

    let report = h
        .ctx
        .publish(b"room", MessageKind::Text, b"only c")
        .unwrap();
    assert_eq!(report.delivered, 1);
    let mut got = None;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Message { conn, data, .. } = ev {
            got = Some((conn, data.to_vec()));
        }
        got.is_some()
    }));
    assert_eq!(got, Some((clients[2], b"only c".to_vec())));
    let _ = c;

    assert!(
        h.ctx.publish(b"room", MessageKind::Text, &[0xff]).is_err(),
        "invalid UTF-8"
    );
    assert_eq!(
        h.ctx.publish(b"nobody", MessageKind::Binary, b"x").unwrap(),
        PublishReport::default()
    );
}

#[test]
fn broadcast_reaches_a_list_and_counts_what_it_could_not() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let (clients, servers) = open_subscribers(&mut h, 4, false);
    let mut targets = servers[..3].to_vec();
    targets.push(ConnId(0xdead_0000_0001));
    let report = h
        .ctx
        .broadcast(&targets, MessageKind::Binary, b"hello three")
        .unwrap();
    assert_eq!(report.delivered, 3);
    assert_eq!(report.not_open, 1);
    receive_all(&mut h, &clients[..3], 1, |_| {
        (MessageKind::Binary, b"hello three".to_vec())
    });
}

/// One subscriber stops reading; the publisher keeps publishing 16 KiB messages. Returns
/// (reports summed, messages the fast subscriber got, how the slow one ended).
fn slow_subscriber(action: SlowAction) -> (PublishReport, usize, Option<u16>) {
    const MESSAGES: usize = 1500;
    let options = ListenOptions {
        slow_subscriber: SlowSubscriber {
            limit: 256 << 10,
            action,
        },
        ..ListenOptions::default()
    };
    let mut h = Harness::new(Config::default(), options);
    let (clients, servers) = open_subscribers(&mut h, 2, false);
    let (fast, slow) = (clients[0], clients[1]);
    h.ctx.pause_reading(slow).unwrap();
    let mut sum = PublishReport::default();
    let mut fast_got = 0;
    let mut slow_end = None;
    let payload = common::pattern(16 << 10, 7);
    let end = Instant::now() + Duration::from_secs(60);
    let mut published = 0;
    while Instant::now() < end && (published < MESSAGES || fast_got < published) {
        if published < MESSAGES {
            let r = h
                .ctx
                .publish(b"room", MessageKind::Binary, &payload)
                .unwrap();
            sum.delivered += r.delivered;
            sum.skipped_slow += r.skipped_slow;
            sum.closed_slow += r.closed_slow;
            sum.not_open += r.not_open;
            published += 1;
        }
        poll_once(&mut h.ctx, &mut h.events, |ev| match ev {
            Event::Message { conn, data, .. } if conn == fast => {
                assert!(data == payload.as_slice());
                fast_got += 1;
            }
            Event::Closed { conn, .. } if conn == slow || conn == servers[1] => {
                panic!("the slow subscriber ended before it read again")
            }
            _ => {}
        });
    }
    // The slow subscriber reads again: it gets what was delivered to it, then (under the
    // close policy) the close.
    h.ctx.resume_reading(slow).unwrap();
    let mut slow_got = 0;
    let want = sum.delivered - fast_got;
    let ok = h.run_until(TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Message { conn, data, .. } if conn == slow => {
                assert!(data == payload.as_slice());
                slow_got += 1;
            }
            Event::Closed { conn, code, .. } if conn == slow => slow_end = Some(code),
            _ => {}
        }
        slow_got == want && (action == SlowAction::Skip || slow_end.is_some())
    });
    assert!(
        ok,
        "slow subscriber got {slow_got} of {want}, ended {slow_end:?}"
    );
    (sum, fast_got, slow_end)
}

fn poll_once(ctx: &mut Context, events: &mut tidewire_net::Events, mut f: impl FnMut(Event<'_>)) {
    ctx.poll(events, Some(Duration::from_millis(1)))
        .expect("poll");
    for ev in events.iter() {
        f(ev);
    }
}

#[test]
fn a_slow_subscriber_is_skipped_while_the_others_get_everything() {
    let (sum, fast_got, slow_end) = slow_subscriber(SlowAction::Skip);
    assert_eq!(fast_got, 1500, "the fast subscriber missed nothing");
    assert!(sum.skipped_slow > 0, "{sum:?}");
    assert_eq!(sum.closed_slow, 0);
    assert_eq!(sum.delivered + sum.skipped_slow, 3000);
    assert_eq!(slow_end, None, "skipped, not closed");
}

#[test]
fn a_slow_subscriber_is_closed_with_1008_under_the_close_policy() {
    let (sum, fast_got, slow_end) = slow_subscriber(SlowAction::Close);
    assert_eq!(fast_got, 1500, "the fast subscriber missed nothing");
    assert_eq!(sum.closed_slow, 1, "{sum:?}");
    assert_eq!(sum.skipped_slow, 0);
    assert_eq!(
        slow_end,
        Some(tidewire_net::SLOW_CLOSE_CODE),
        "its client sees 1008"
    );
}

#[test]
fn another_thread_publishes_through_the_sender() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let (clients, _) = open_subscribers(&mut h, 10, false);
    let sender = h.ctx.sender();
    let publisher = std::thread::spawn(move || {
        for i in 0..50 {
            let (kind, data) = message(i);
            sender.publish(&b"room"[..], kind, data).expect("publish");
        }
        sender
            .publish(&b"room"[..], MessageKind::Text, vec![0xff])
            .expect_err("invalid UTF-8 is refused at the call");
    });
    receive_all(&mut h, &clients, 50, message);
    publisher.join().expect("publisher thread");
}

#[test]
fn sends_and_publishes_to_one_connection_keep_their_order_through_partial_writes() {
    // Many more shared frames than one writev takes (64 slices), sizes up to 24 KiB so the
    // socket fills and writes are partial, ordinary sends and pings in between, and a reader
    // that starts late: every message must arrive once, in the order it was sent.
    const MESSAGES: usize = 600;
    let options = ListenOptions {
        // About 7 MB wait unread: not slow for this test.
        slow_subscriber: SlowSubscriber {
            limit: 16 << 20,
            action: SlowAction::Skip,
        },
        ..ListenOptions::default()
    };
    let mut h = Harness::new(Config::default(), options);
    let (clients, servers) = open_subscribers(&mut h, 1, false);
    let (client, server) = (clients[0], servers[0]);
    h.ctx.pause_reading(client).unwrap();
    let body = |i: usize| {
        let len = (i * 7919) % (24 << 10);
        let mut m = format!("{i:05}:").into_bytes();
        m.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
        m
    };
    for i in 0..MESSAGES {
        let data = body(i);
        if i % 3 == 0 {
            h.ctx.send(server, MessageKind::Binary, &data).unwrap();
        } else {
            let r = h.ctx.publish(b"room", MessageKind::Binary, &data).unwrap();
            assert_eq!(r.delivered, 1, "message {i}");
        }
        if i % 50 == 0 {
            h.ctx.ping(server, b"keepalive").unwrap();
        }
        if i % 40 == 0 {
            poll_once(&mut h.ctx, &mut h.events, |_| {});
        }
    }
    h.ctx.resume_reading(client).unwrap();
    let mut next = 0;
    let ok = h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Message { conn, data, .. } = ev {
            assert_eq!(conn, client);
            assert!(
                data == body(next).as_slice(),
                "message {next} intact and in order"
            );
            next += 1;
        }
        next == MESSAGES
    });
    assert!(ok, "got {next} of {MESSAGES}");
    assert_eq!(h.ctx.buffered_amount(server).unwrap(), 0);
}
