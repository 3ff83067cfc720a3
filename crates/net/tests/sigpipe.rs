//! Writing to a peer that is gone must not raise SIGPIPE: C and C++ programs (unlike Rust
//! ones) keep SIGPIPE's default action, which ends the process. This test binary restores
//! that default, then makes the server write to a client that has closed its socket; the
//! process would die with signal 13 instead of failing an assertion.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Harness, TEST_DEADLINE};
use tidewire_net::{Config, Event, ListenOptions, TlsAcceptor};

fn upgrade(port: u16) -> TcpStream {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    sock.write_all(request.as_bytes()).expect("request");
    sock
}

fn write_until_the_connection_ends(h: &mut Harness) {
    // SAFETY: setting a signal's disposition to its default has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let sock = upgrade(h.port);
    let mut server = None;
    let mut got_101 = false;
    let end = Instant::now() + TEST_DEADLINE;
    let mut reader = sock.try_clone().expect("clone");
    reader
        .set_read_timeout(Some(Duration::from_millis(5)))
        .expect("timeout");
    while server.is_none() || !got_101 {
        assert!(Instant::now() < end, "open");
        h.run_until(Duration::from_millis(10), |_, ev| {
            if let Event::Open { conn, .. } = ev {
                server = Some(conn);
            }
            false
        });
        let mut buf = [0u8; 512];
        if let Ok(n) = reader.read(&mut buf) {
            got_101 |= n > 0;
        }
    }
    let conn = server.expect("open");
    // Fill the client's receive buffer, then close with the data unread: its kernel answers
    // with a reset, and the server's next writes fail (ECONNRESET, then EPIPE). Messages of
    // 512 KiB go out by `writev` (the direct path), which, unlike `send`, raises SIGPIPE
    // unless told not to.
    let payload = vec![7u8; 512 << 10];
    for _ in 0..8 {
        let _ = h.ctx.send_binary(conn, &payload);
        h.run_until(Duration::from_millis(2), |_, _| false);
    }
    drop(reader);
    drop(sock);
    let mut ended = false;
    for _ in 0..200 {
        let _ = h.ctx.send_binary(conn, &payload);
        h.run_until(Duration::from_millis(5), |_, ev| {
            ended |= matches!(ev, Event::Closed { .. } | Event::Error { .. });
            ended
        });
        if ended {
            break;
        }
    }
    assert!(ended, "the write error ends the connection");
}

#[test]
fn a_write_to_a_closed_peer_is_an_error_not_a_signal() {
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    write_until_the_connection_ends(&mut h);
    // The process is still alive and serving.
    let mut h2 = Harness::new(Config::default(), ListenOptions::default());
    write_until_the_connection_ends(&mut h2);
}

#[test]
fn tls_alerts_to_a_closed_peer_raise_no_signal_either() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let acceptor = TlsAcceptor::from_pem(
        cert.cert.pem().as_bytes(),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .expect("acceptor");
    let options = ListenOptions {
        tls: Some(acceptor),
        ..ListenOptions::default()
    };
    // The "request" is garbage to the TLS server: it answers with an alert to a peer that
    // has gone, and drops the connection.
    let mut h = Harness::new(Config::default(), options);
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    for _ in 0..20 {
        let sock = upgrade(h.port);
        drop(sock);
        h.run_until(Duration::from_millis(20), |_, _| false);
    }
    assert_eq!(h.ctx.connection_count(), 0);
}
