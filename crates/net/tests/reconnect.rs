//! Reconnecting clients (`ConnectOptions::reconnect`): a real server process killed and
//! restarted on the same port, the schedule's bounds, a 4xx rejection not retried, a 503's
//! Retry-After honoured, the application stopping it mid-backoff, and its own close never
//! retried. Loopback only, free ports, every child process killed by its PID.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Harness, TEST_DEADLINE};
use tidewire_net::{
    Config, ConnId, ConnectOptions, Context, Error, Event, ListenOptions, MessageKind, Proxy,
    ReconnectPolicy,
};

const CHILD_PORT: &str = "TIDEWIRE_RECONNECT_CHILD_PORT";

fn policy(initial_ms: u64, max_ms: u64, attempts: Option<u32>) -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay: Duration::from_millis(initial_ms),
        max_delay: Duration::from_millis(max_ms),
        max_attempts: attempts,
        reset_after: Duration::from_secs(10),
    }
}

fn options(p: ReconnectPolicy) -> ConnectOptions {
    ConnectOptions {
        reconnect: Some(p),
        proxy: Proxy::Direct,
        connect_timeout: Some(Duration::from_secs(2)),
        ..ConnectOptions::default()
    }
}

/// Polls a client context until `f` says done, or fails after `limit`.
fn run(ctx: &mut Context, limit: Duration, mut f: impl FnMut(&mut Context, Event<'_>) -> bool) {
    let mut events = ctx.new_events();
    let end = Instant::now() + limit;
    while Instant::now() < end {
        ctx.poll(&mut events, Some(Duration::from_millis(10)))
            .expect("poll");
        let mut done = false;
        for ev in events.iter() {
            done |= f(ctx, ev);
        }
        if done {
            return;
        }
    }
    panic!("condition not reached within {limit:?}");
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Not a test of its own: the echo server that `server_process` runs in a child process
/// (this same test binary, with `CHILD_PORT` set).
#[test]
fn child_echo_server() {
    let Ok(port) = std::env::var(CHILD_PORT) else {
        return;
    };
    let port: u16 = port.parse().expect("port");
    let mut h = Harness::new_on(port);
    println!("listening on {port}");
    let _ = std::io::stdout().flush();
    let mut conns = Vec::new();
    h.run_until(Duration::from_secs(60), |ctx, ev| {
        match ev {
            Event::Open { conn, .. } => conns.push(conn),
            Event::Message { conn, kind, data } => {
                let _ = ctx.send(conn, kind, data);
            }
            _ => {}
        }
        false
    });
}

trait On {
    fn new_on(port: u16) -> Harness;
}

impl On for Harness {
    fn new_on(port: u16) -> Harness {
        let mut ctx = Context::new(Config::default()).expect("context");
        let listener = ctx
            .listen("127.0.0.1", port, ListenOptions::default())
            .expect("listen");
        let events = ctx.new_events();
        Harness {
            ctx,
            events,
            listener,
            port,
        }
    }
}

/// A real server process on `port`; returns once it listens.
struct ServerProcess(Child);

impl ServerProcess {
    fn start(port: u16) -> ServerProcess {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "child_echo_server",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_PORT, port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the server process");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let end = Instant::now() + TEST_DEADLINE;
        loop {
            assert!(Instant::now() < end, "server process did not start");
            match lines.next() {
                Some(Ok(l)) if l.contains("listening on") => break,
                Some(Ok(_)) => continue,
                _ => panic!("server process ended before listening"),
            }
        }
        // Keep draining its output so that it never blocks on a full pipe.
        thread::spawn(move || for _ in lines {});
        ServerProcess(child)
    }

    fn kill(mut self) {
        let _ = self.0.kill(); // SIGKILL to this PID only
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn server_process_killed_and_restarted_on_the_same_port() {
    let port = free_port();
    let server = ServerProcess::start(port);
    let mut ctx = Context::new(Config::default()).expect("context");
    let p = policy(40, 160, None);
    let conn = ctx
        .connect(&format!("ws://127.0.0.1:{port}/"), options(p))
        .expect("connect");

    // Open, and the echo works.
    run(&mut ctx, TEST_DEADLINE, |ctx, ev| match ev {
        Event::Open { conn: c, .. } => {
            assert_eq!(c, conn);
            ctx.send(c, MessageKind::Text, b"one").expect("send");
            false
        }
        Event::Message { data, .. } => data == b"one",
        other => panic!("unexpected {other:?}"),
    });

    server.kill();

    // The end of the open connection, then attempts against a closed port.
    let mut attempts: Vec<(u32, Duration, Instant)> = Vec::new();
    run(&mut ctx, TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Reconnecting {
                conn: c,
                attempt,
                delay,
                error,
                close_code,
            } => {
                assert_eq!(c, conn, "the id is kept");
                if attempts.is_empty() {
                    assert!(error.is_none());
                    assert_eq!(close_code, 1006);
                } else {
                    assert!(
                        matches!(error, Some(Error::Connect(_))),
                        "refused: {error:?}"
                    );
                }
                attempts.push((attempt, delay, Instant::now()));
            }
            other => panic!("unexpected {other:?}"),
        }
        attempts.len() >= 4
    });
    for (i, (attempt, delay, _)) in attempts.iter().enumerate() {
        assert_eq!(*attempt, i as u32 + 1);
        assert!(*delay <= p.ceiling(*attempt), "{attempt}: {delay:?}");
    }
    // Each failure came after the previous delay (the timer does not fire early).
    for w in attempts.windows(2) {
        let (_, delay, at) = w[0];
        assert!(w[1].2.duration_since(at) + Duration::from_millis(2) >= delay);
    }

    // Restarted on the same port: the same id opens again and echoes.
    let server = ServerProcess::start(port);
    let mut reopened = false;
    run(&mut ctx, TEST_DEADLINE, |ctx, ev| match ev {
        Event::Reconnecting { conn: c, .. } => {
            assert_eq!(c, conn);
            false
        }
        Event::Open { conn: c, .. } => {
            assert_eq!(c, conn, "a reconnected connection keeps its id");
            reopened = true;
            ctx.send(c, MessageKind::Text, b"two").expect("send");
            false
        }
        Event::Message { data, .. } => reopened && data == b"two",
        other => panic!("unexpected {other:?}"),
    });

    // The application's close is final: Closed, no Reconnecting, the id goes stale.
    ctx.close(conn, 1000, "bye").expect("close");
    run(&mut ctx, TEST_DEADLINE, |_, ev| match ev {
        Event::Closed { conn: c, .. } => c == conn,
        Event::Reconnecting { .. } => panic!("an application close is not retried"),
        _ => false,
    });
    let mut events = ctx.new_events();
    let _ = ctx.poll(&mut events, Some(Duration::from_millis(200)));
    assert!(events
        .iter()
        .all(|e| !matches!(e, Event::Reconnecting { .. })));
    assert_eq!(ctx.connection_count(), 0);
    assert!(matches!(ctx.latency(conn), Err(Error::StaleId)));
    server.kill();
}

/// A raw HTTP server answering every connection with `answer(n)` (n = 1, 2, ...); counts
/// the connections.
fn http_server(answer: fn(usize) -> String) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                }
            }
            let _ = s.write_all(answer(n).as_bytes());
        }
    });
    (port, count)
}

#[test]
fn a_4xx_rejection_is_not_retried() {
    let (port, count) =
        http_server(|_| "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".into());
    let mut ctx = Context::new(Config::default()).expect("context");
    let conn = ctx
        .connect(
            &format!("ws://127.0.0.1:{port}/"),
            options(policy(10, 20, None)),
        )
        .expect("connect");
    run(&mut ctx, TEST_DEADLINE, |_, ev| match ev {
        Event::Error { error, .. } => {
            assert_eq!(ev.conn(), Some(conn));
            assert!(
                matches!(error, Error::HandshakeRejected { status: 403, .. }),
                "{error:?}"
            );
            true
        }
        other => panic!("unexpected {other:?}"),
    });
    thread::sleep(Duration::from_millis(100));
    let mut events = ctx.new_events();
    let _ = ctx.poll(&mut events, Some(Duration::from_millis(100)));
    assert_eq!(events.iter().count(), 0);
    assert_eq!(count.load(Ordering::SeqCst), 1, "one attempt only");
    assert_eq!(ctx.connection_count(), 0);
}

#[test]
fn a_503_retry_after_is_honoured_and_max_attempts_ends_it() {
    let (port, count) = http_server(|_| {
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n".into()
    });
    let mut ctx = Context::new(Config::default()).expect("context");
    let conn = ctx
        .connect(
            &format!("ws://127.0.0.1:{port}/"),
            options(policy(10, 20, Some(1))),
        )
        .expect("connect");
    let mut at = None;
    run(&mut ctx, TEST_DEADLINE, |_, ev| match ev {
        Event::Reconnecting {
            attempt,
            delay,
            error,
            ..
        } => {
            assert_eq!(attempt, 1);
            assert_eq!(delay, Duration::from_secs(1), "Retry-After: 1");
            assert!(matches!(
                error,
                Some(Error::HandshakeRejected { status: 503, .. })
            ));
            at = Some(Instant::now());
            false
        }
        Event::Error { error, .. } => {
            assert_eq!(ev.conn(), Some(conn));
            assert!(matches!(
                error,
                Error::HandshakeRejected { status: 503, .. }
            ));
            true
        }
        other => panic!("unexpected {other:?}"),
    });
    let waited = at.expect("a Reconnecting event").elapsed();
    assert!(waited >= Duration::from_millis(990), "{waited:?}");
    assert_eq!(count.load(Ordering::SeqCst), 2, "max_attempts = 1");
    assert_eq!(ctx.connection_count(), 0);
}

#[test]
fn stopping_mid_backoff_ends_it_with_a_final_error() {
    let (port, count) = http_server(|_| {
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n".into()
    });
    for stop_with_close in [true, false] {
        let before = count.load(Ordering::SeqCst);
        let mut ctx = Context::new(Config::default()).expect("context");
        let conn = ctx
            .connect(
                &format!("ws://127.0.0.1:{port}/"),
                options(policy(10, 20, None)),
            )
            .expect("connect");
        run(
            &mut ctx,
            TEST_DEADLINE,
            |_, ev| matches!(ev, Event::Reconnecting { conn: c, .. } if c == conn),
        );
        // Mid-backoff (the delay is 5 s): stop it.
        if stop_with_close {
            ctx.close(conn, 1000, "").expect("close while waiting");
        } else {
            ctx.stop_reconnecting(conn).expect("stop while waiting");
        }
        let started = Instant::now();
        run(&mut ctx, Duration::from_secs(2), |_, ev| match ev {
            Event::Error { error, .. } => {
                assert_eq!(ev.conn(), Some(conn));
                assert!(matches!(error, Error::Aborted), "{error:?}");
                true
            }
            other => panic!("unexpected {other:?}"),
        });
        assert!(started.elapsed() < Duration::from_secs(1));
        let mut events = ctx.new_events();
        let _ = ctx.poll(&mut events, Some(Duration::from_millis(300)));
        assert_eq!(events.iter().count(), 0, "no further attempt");
        assert_eq!(count.load(Ordering::SeqCst), before + 1);
        assert_eq!(ctx.connection_count(), 0);
        assert!(matches!(ctx.close(conn, 1000, ""), Err(Error::StaleId)));
    }
}

#[test]
fn policy_is_validated() {
    let mut ctx = Context::new(Config::default()).expect("context");
    for p in [
        policy(0, 10, None),
        policy(20, 10, None),
        policy(10, 10, Some(0)),
    ] {
        let e = ctx.connect("ws://127.0.0.1:9/", options(p)).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    }
    assert_eq!(ctx.connection_count(), 0);
    let _unused: Option<ConnId> = None;
}
