//! Round-trip time (issue 15, section 3): `Context::latency` measured from keepalive pings
//! and from application pings, through the fault-injecting proxy of `tests/netfault/proxy.rs`
//! adding a known one-way delay in each direction; and pongs that answer no known ping
//! (unsolicited, repeated, stale) leave the figure alone.

#[path = "../../../tests/netfault/proxy.rs"]
mod proxy;

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{RawClient, TEST_DEADLINE};
use proxy::{Proxy, Shape};
use tidewire_net::{Config, ConnId, ConnectOptions, Context, Event, Events, ListenOptions};

/// The delay the proxy adds in each direction.
const ONE_WAY: Duration = Duration::from_millis(50);
/// How far above the injected round trip a measurement may be on a busy shared machine
/// (scheduling, the proxy's 2 ms tick, the poll that reads the pong).
const ABOVE: Duration = Duration::from_millis(150);

/// A tidewire server on its own thread (no keepalive of its own, so that only the client's
/// pings cross the link); stops when dropped.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let config = Config {
            ping_interval: None,
            idle_timeout: None,
            ..Config::default()
        };
        let mut ctx = Context::new(config).expect("server context");
        let listener = ctx
            .listen("127.0.0.1", 0, ListenOptions::default())
            .expect("listen");
        let port = ctx.local_addr(listener).expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut events = ctx.new_events();
            while !flag.load(Ordering::Relaxed) {
                ctx.poll(&mut events, Some(Duration::from_millis(5)))
                    .expect("server poll");
            }
        });
        Server {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A client context connected to the server through a proxy delaying each direction by
/// `ONE_WAY`.
fn client_through_delay(
    ping_interval: Option<Duration>,
) -> (Server, Proxy, Context, Events, ConnId) {
    let server = Server::start();
    let shape = Shape {
        latency: ONE_WAY,
        ..Shape::default()
    };
    let upstream = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let proxy = Proxy::start(upstream, shape.clone(), shape, 15);
    let config = Config {
        ping_interval,
        idle_timeout: Some(Duration::from_secs(20)),
        ..Config::default()
    };
    let mut ctx = Context::new(config).expect("client context");
    let mut events = ctx.new_events();
    let url = format!("ws://127.0.0.1:{}/", proxy.port());
    let conn = ctx
        .connect(&url, ConnectOptions::default())
        .expect("connect");
    let end = Instant::now() + TEST_DEADLINE;
    let mut open = false;
    while !open {
        assert!(Instant::now() < end, "the connection did not open");
        ctx.poll(&mut events, Some(Duration::from_millis(20)))
            .expect("poll");
        for ev in events.iter() {
            match ev {
                Event::Open { conn: c, .. } if c == conn => open = true,
                Event::Error { .. } | Event::Closed { .. } => panic!("{ev:?}"),
                _ => {}
            }
        }
    }
    (server, proxy, ctx, events, conn)
}

fn assert_plausible(rtt: Duration) {
    let injected = 2 * ONE_WAY;
    assert!(
        rtt >= injected && rtt <= injected + ABOVE,
        "measured {rtt:?}, injected {injected:?}"
    );
}

/// Polls until `latency` differs from `before`, or fails after the test deadline. Returns the
/// new figure and the pong payloads seen meanwhile.
fn poll_until_measured(
    ctx: &mut Context,
    events: &mut Events,
    conn: ConnId,
    before: Option<Duration>,
) -> (Duration, Vec<Vec<u8>>) {
    let end = Instant::now() + TEST_DEADLINE;
    let mut pongs = Vec::new();
    loop {
        assert!(Instant::now() < end, "no measurement");
        ctx.poll(events, Some(Duration::from_millis(20)))
            .expect("poll");
        for ev in events.iter() {
            match ev {
                Event::Pong { conn: c, data } if c == conn => pongs.push(data.to_vec()),
                Event::Error { .. } | Event::Closed { .. } => panic!("{ev:?}"),
                _ => {}
            }
        }
        if let Some(now) = ctx.latency(conn).expect("latency") {
            if Some(now) != before {
                return (now, pongs);
            }
        }
    }
}

#[test]
fn keepalive_pings_measure_the_injected_round_trip() {
    let (_server, _proxy, mut ctx, mut events, conn) =
        client_through_delay(Some(Duration::from_millis(150)));
    assert_eq!(ctx.latency(conn).expect("latency"), None);
    let (first, pongs) = poll_until_measured(&mut ctx, &mut events, conn, None);
    assert_plausible(first);
    // The keepalive's own payload came back (the application sees the pong as usual).
    assert!(
        pongs.iter().any(|p| p.len() == 8 && p.starts_with(b"twka")),
        "{pongs:?}"
    );
    // And again at the next keepalive ping.
    let (second, _) = poll_until_measured(&mut ctx, &mut events, conn, Some(first));
    assert_plausible(second);
}

#[test]
fn an_application_ping_measures_the_injected_round_trip() {
    let (_server, _proxy, mut ctx, mut events, conn) = client_through_delay(None);
    assert_eq!(ctx.latency(conn).expect("latency"), None);
    ctx.ping(conn, b"app ping 1").expect("ping");
    let (rtt, pongs) = poll_until_measured(&mut ctx, &mut events, conn, None);
    assert_plausible(rtt);
    assert_eq!(pongs, vec![b"app ping 1".to_vec()]);
}

#[test]
fn pongs_that_answer_no_known_ping_leave_the_figure_alone() {
    let config = Config {
        ping_interval: None,
        idle_timeout: None,
        ..Config::default()
    };
    let mut h = common::Harness::new(config, ListenOptions::default());
    let port = h.port;
    let peer = thread::spawn(move || {
        let mut raw = RawClient::open(port);
        // Unsolicited, before any ping.
        raw.send_frame(true, 0xA, b"unsolicited");
        // Answer the server's ping late, so that its figure is at least 30 ms.
        let (_, op, data) = raw.read_frame().expect("ping");
        assert_eq!(op, 0x9);
        thread::sleep(Duration::from_millis(30));
        raw.send_frame(true, 0xA, &data);
        // Then the same answer again, a pong shaped like a keepalive one, and another stray.
        let (_, op, _) = raw.read_frame().expect("marker message");
        assert_eq!(op, 0x1);
        raw.send_frame(true, 0xA, &data);
        raw.send_frame(true, 0xA, b"twka\0\0\0\x01");
        raw.send_frame(true, 0xA, b"");
        raw.send_frame(true, 0x1, b"done");
        let _ = raw.read_frame();
    });
    let server = common::wait_server_open(&mut h);
    let mut pongs = 0;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        pongs += usize::from(matches!(ev, Event::Pong { .. }));
        pongs == 1
    }));
    assert_eq!(h.ctx.latency(server).expect("latency"), None);

    h.ctx.ping(server, b"known").expect("ping");
    assert!(h.run_until(TEST_DEADLINE, |_, ev| matches!(ev, Event::Pong { .. })));
    let measured = h.ctx.latency(server).expect("latency").expect("measured");
    assert!(measured >= Duration::from_millis(30), "{measured:?}");
    assert!(measured < Duration::from_secs(5), "{measured:?}");

    thread::sleep(Duration::from_millis(50));
    h.ctx
        .send(server, tidewire_net::MessageKind::Text, b"go")
        .expect("send");
    let mut late_pongs = 0;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        late_pongs += usize::from(matches!(ev, Event::Pong { .. }));
        matches!(ev, Event::Message { .. })
    }));
    assert_eq!(late_pongs, 3);
    assert_eq!(h.ctx.latency(server).expect("latency"), Some(measured));
    h.ctx.close(server, 1000, "").expect("close");
    let _ = h.run_until(Duration::from_secs(2), |_, ev| {
        matches!(ev, Event::Closed { .. })
    });
    peer.join().expect("raw peer");
}

#[test]
fn latency_of_a_stale_id_is_refused() {
    let mut h = common::Harness::new(Config::default(), ListenOptions::default());
    let port = h.port;
    let raw = thread::spawn(move || RawClient::open(port));
    let server = common::wait_server_open(&mut h);
    drop(raw.join().expect("raw peer"));
    assert!(h.run_until(TEST_DEADLINE, |_, ev| matches!(ev, Event::Closed { .. })));
    assert!(matches!(
        h.ctx.latency(server),
        Err(tidewire_net::Error::StaleId)
    ));
}
