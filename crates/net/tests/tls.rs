//! wss:// end to end, with a CA and a server certificate made at test time (rcgen).

mod common;

use std::time::Duration;

use common::{pattern, Harness, TEST_DEADLINE};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tidewire_net::{
    Config, ConnectOptions, Error, Event, ListenOptions, MessageKind, TlsAcceptor,
    TlsClientOptions, TlsConnector,
};

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A CA, and a certificate it signed for `localhost` and 127.0.0.1.
fn pki() -> Pki {
    pki_for(&["localhost", "127.0.0.1"])
}

/// A CA, and a certificate it signed for `names`.
fn pki_for(names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let params = CertificateParams::new(names).expect("params");
    let cert = params.signed_by(&key, &ca).expect("cert");
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn tls_harness(pki: &Pki) -> Harness {
    let acceptor =
        TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).expect("acceptor");
    let options = ListenOptions {
        tls: Some(acceptor),
        ..ListenOptions::default()
    };
    Harness::new(Config::default(), options)
}

fn trusting(pki: &Pki) -> ConnectOptions {
    let connector = TlsConnector::new(&TlsClientOptions {
        use_system_roots: false,
        extra_ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        ..TlsClientOptions::default()
    })
    .expect("connector");
    ConnectOptions {
        tls: Some(connector),
        ..ConnectOptions::default()
    }
}

#[test]
fn wss_echo_with_a_certificate_made_at_test_time() {
    let pki = pki();
    let mut h = tls_harness(&pki);
    let url = format!("wss://localhost:{}/secure", h.port);
    let client = h.ctx.connect(&url, trusting(&pki)).expect("connect");
    let mut opened = 0;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Open { path, .. } => {
                assert_eq!(path, "/secure");
                opened += 1;
            }
            Event::Error { error, .. } => panic!("{error}"),
            _ => {}
        }
        opened == 2
    }));
    for size in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
        let msg = pattern(size, 9);
        h.ctx.send_binary(client, &msg).expect("send");
        let mut got = None;
        assert!(h.run_until(TEST_DEADLINE, |ctx, ev| {
            match ev {
                Event::Message { conn, kind, data } if conn != client => {
                    ctx.send(conn, kind, data).expect("echo");
                }
                Event::Message { conn, kind, data } if conn == client => {
                    assert_eq!(kind, MessageKind::Binary);
                    got = Some(data.to_vec());
                }
                Event::Closed { code, .. } => panic!("closed {code}"),
                _ => {}
            }
            got.is_some()
        }));
        assert!(got.expect("echo") == msg, "size {size}");
    }
    h.ctx.close(client, 1000, "tls bye").expect("close");
    let mut closed = 0;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Closed {
            code,
            clean,
            reason,
            ..
        } = ev
        {
            assert_eq!((code, clean), (1000, true));
            // The server sees our reason; we see its reply, which echoes only the code.
            assert!(reason == "tls bye" || reason.is_empty(), "{reason}");
            closed += 1;
        }
        closed == 2
    }));
}

fn tls_failure(h: &mut Harness, url: &str, options: ConnectOptions) -> String {
    let client = h.ctx.connect(url, options).expect("connect");
    let mut error = None;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        match ev {
            Event::Error { error: e, .. } if ev.conn() == Some(client) => {
                assert!(matches!(e, Error::Tls(_)), "{e:?}");
                error = Some(e.to_string());
            }
            Event::Open { conn, .. } if conn == client => panic!("must not open"),
            _ => {}
        }
        error.is_some()
    }));
    // The server side never opened, so it reports nothing; let it wind down.
    h.run_until(Duration::from_millis(100), |_, _| false);
    error.expect("error")
}

#[test]
fn client_refuses_a_certificate_from_an_unknown_ca() {
    let pki = pki();
    let other = pki_other_ca();
    let mut h = tls_harness(&pki);
    let url = format!("wss://localhost:{}/", h.port);
    let e = tls_failure(&mut h, &url, trusting(&other));
    assert!(e.contains("certificate"), "{e}");
}

#[test]
fn client_checks_the_host_name() {
    let pki = pki_for(&["localhost"]);
    let mut h = tls_harness(&pki);
    // Trusted CA, reachable server, but 127.0.0.1 is not a name the certificate holds.
    let url = format!("wss://127.0.0.1:{}/", h.port);
    let e = tls_failure(&mut h, &url, trusting(&pki));
    assert!(e.contains("not valid for name"), "{e}");
}

#[test]
fn dangerous_skip_verification_accepts_anything() {
    let pki = pki();
    let mut h = tls_harness(&pki);
    let connector = TlsConnector::new(&TlsClientOptions {
        use_system_roots: false,
        dangerous_skip_verification: true,
        ..TlsClientOptions::default()
    })
    .expect("connector");
    let options = ConnectOptions {
        tls: Some(connector),
        ..ConnectOptions::default()
    };
    let client = h
        .ctx
        .connect(&format!("wss://127.0.0.1:{}/", h.port), options)
        .expect("connect");
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Error { error, .. } = ev {
            panic!("{error}");
        }
        matches!(ev, Event::Open { conn, .. } if conn == client)
    }));
}

#[test]
fn plain_client_to_a_tls_listener_fails_without_hanging() {
    let pki = pki();
    let config = Config {
        handshake_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let acceptor =
        TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).expect("acceptor");
    let mut h = Harness::new(
        config,
        ListenOptions {
            tls: Some(acceptor),
            ..ListenOptions::default()
        },
    );
    let client = h
        .ctx
        .connect(&h.url("/"), ConnectOptions::default())
        .expect("connect");
    let mut failed = false;
    assert!(h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Error { .. } = ev {
            assert_eq!(ev.conn(), Some(client));
            failed = true;
        }
        failed
    }));
}

fn pki_other_ca() -> Pki {
    pki()
}

/// A wss request the application never decides on is answered 503 inside TLS when the
/// handshake time runs out (the answer goes out before close_notify).
#[test]
fn undecided_request_over_tls_gets_a_503() {
    let pki = pki();
    let acceptor =
        TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).expect("acceptor");
    let config = Config {
        handshake_timeout: Duration::from_millis(400),
        ..Config::default()
    };
    let mut h = Harness::new(
        config,
        ListenOptions {
            tls: Some(acceptor),
            handle_requests: true,
            ..ListenOptions::default()
        },
    );
    // The client has its own context and the default (10 s) handshake timeout.
    let mut client_ctx = tidewire_net::Context::new(Config::default()).expect("client context");
    let mut client_events = client_ctx.new_events();
    let url = format!("wss://localhost:{}/", h.port);
    let client = client_ctx.connect(&url, trusting(&pki)).expect("connect");
    let (mut asked, mut server_timeout, mut status) = (false, false, None);
    let start = std::time::Instant::now();
    while status.is_none() && start.elapsed() < TEST_DEADLINE {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(5)))
            .expect("server poll");
        for ev in h.events.iter() {
            match ev {
                Event::Request { .. } => asked = true,
                Event::Error {
                    error: Error::Timeout(_),
                    ..
                } => server_timeout = true,
                other => panic!("server: unexpected {other:?}"),
            }
        }
        client_ctx
            .poll(&mut client_events, Some(Duration::from_millis(5)))
            .expect("client poll");
        for ev in client_events.iter() {
            match ev {
                Event::Error {
                    error: Error::HandshakeRejected { status: s, .. },
                    ..
                } => {
                    assert_eq!(ev.conn(), Some(client));
                    status = Some(*s);
                }
                other => panic!("client: unexpected {other:?}"),
            }
        }
    }
    assert!(
        asked && server_timeout,
        "asked {asked}, timeout {server_timeout}"
    );
    assert_eq!(status, Some(503));
}
