//! Client connections through real proxies: tinyproxy (HTTP CONNECT, with and without Basic
//! auth), dante (`danted`, SOCKS5 with and without username auth) and an HTTPS proxy
//! (stunnel in front of tinyproxy, with a certificate made by the test), each started by the
//! test on a free loopback port with its own config in a temp dir and stopped by PID; plus
//! fake proxies (plain TcpListeners) that answer garbage or never answer.
//!
//! A missing binary skips its test with a visible `SKIPPED` line, unless
//! `TIDEWIRE_REQUIRE_PROXIES=1` (set by `make test-rust`, which installs them).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Harness, TEST_DEADLINE};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tidewire_net::{
    Config, ConnectOptions, Error, Event, ListenOptions, MessageKind, Proxy, ProxyError,
    ProxyFailure, ReconnectPolicy, TimeoutKind, TlsAcceptor, TlsClientOptions, TlsConnector,
};

// ---------------------------------------------------------------------------------------
// Proxies as child processes
// ---------------------------------------------------------------------------------------

/// The path of `name` (PATH, then the sbin directories), or `None` after printing SKIPPED
/// (a panic when `TIDEWIRE_REQUIRE_PROXIES=1`).
fn binary(name: &str, test: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("TIDEWIRE_REQUIRE_PROXIES").as_deref() == Ok("1") {
            panic!("{name} is required (TIDEWIRE_REQUIRE_PROXIES=1): run `make proxy-tools`");
        }
        eprintln!("SKIPPED {test}: {name} not installed (`make proxy-tools` installs it)");
    }
    found
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tidewire-proxy-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A proxy process, stopped by PID (SIGTERM, so that danted takes its children along) when
/// dropped.
struct ProxyProcess {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl ProxyProcess {
    fn start(mut cmd: Command, port: u16, dir: PathBuf, log: &str) -> ProxyProcess {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start proxy");
        let mut p = ProxyProcess { child, port, dir };
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = p.child.try_wait() {
                let log = std::fs::read_to_string(p.dir.join(log)).unwrap_or_default();
                panic!("proxy exited with {status}: {log}");
            }
            assert!(Instant::now() < end, "proxy did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    fn url(&self, scheme: &str, userinfo: &str) -> String {
        format!("{scheme}://{userinfo}127.0.0.1:{}", self.port)
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of our own child, which has not been waited for yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// tinyproxy in the foreground: `auth` adds Basic credentials, `connect_port` restricts
/// CONNECT to that port (everything else answers 403).
fn tinyproxy(
    test: &str,
    auth: Option<(&str, &str)>,
    connect_port: Option<u16>,
) -> Option<ProxyProcess> {
    let bin = binary("tinyproxy", test)?;
    let dir = temp_dir("tinyproxy");
    let port = free_port();
    let mut conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 100\nLogLevel Info\n\
         LogFile \"{log}\"\nPidFile \"{pid}\"\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
        log = dir.join("tinyproxy.log").display(),
        pid = dir.join("tinyproxy.pid").display(),
    );
    if let Some((user, pass)) = auth {
        conf.push_str(&format!("BasicAuth {user} {pass}\n"));
    }
    if let Some(p) = connect_port {
        conf.push_str(&format!("ConnectPort {p}\n"));
    }
    let file = dir.join("tinyproxy.conf");
    std::fs::write(&file, conf).expect("write conf");
    let mut cmd = Command::new(bin);
    cmd.arg("-d").arg("-c").arg(&file);
    Some(ProxyProcess::start(cmd, port, dir, "tinyproxy.log"))
}

/// danted in the foreground with one process: `username` requires RFC 1929 credentials
/// (checked against the system's users).
fn danted(test: &str, username: bool) -> Option<ProxyProcess> {
    let bin = binary("danted", test)?;
    let dir = temp_dir("danted");
    let port = free_port();
    let conf = format!(
        "logoutput: {log}\n\
         internal: 127.0.0.1 port = {port}\n\
         external: 127.0.0.1\n\
         socksmethod: {method}\n\
         user.privileged: root\n\
         user.unprivileged: nobody\n\
         client pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n}}\n\
         socks pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n}}\n",
        log = dir.join("danted.log").display(),
        method = if username { "username" } else { "none" },
    );
    let file = dir.join("danted.conf");
    std::fs::write(&file, conf).expect("write conf");
    let mut cmd = Command::new(bin);
    cmd.arg("-f")
        .arg(&file)
        .arg("-p")
        .arg(dir.join("danted.pid"))
        .arg("-N")
        .arg("1");
    Some(ProxyProcess::start(cmd, port, dir, "danted.log"))
}

/// An HTTPS proxy: stunnel (TLS, with a certificate for `127.0.0.1` and `localhost` signed
/// by `pki`'s CA) in front of `upstream`, a tinyproxy. stunnel runs in the foreground.
fn https_proxy(test: &str, upstream: &ProxyProcess, pki: &Pki) -> Option<ProxyProcess> {
    let bin = binary("stunnel4", test).or_else(|| binary("stunnel", test))?;
    let dir = temp_dir("stunnel");
    let port = free_port();
    std::fs::write(dir.join("cert.pem"), &pki.cert_pem).expect("cert");
    std::fs::write(dir.join("key.pem"), &pki.key_pem).expect("key");
    let conf = format!(
        "foreground = yes\npid = {pid}\noutput = {log}\ndebug = 4\n\
         [https-proxy]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{up}\n\
         cert = {cert}\nkey = {key}\n",
        pid = dir.join("stunnel.pid").display(),
        log = dir.join("stunnel.log").display(),
        up = upstream.port,
        cert = dir.join("cert.pem").display(),
        key = dir.join("key.pem").display(),
    );
    let file = dir.join("stunnel.conf");
    std::fs::write(&file, conf).expect("write conf");
    let mut cmd = Command::new(bin);
    cmd.arg(&file);
    Some(ProxyProcess::start(cmd, port, dir, "stunnel.log"))
}

const SOCKS_USER: &str = "twproxytest";
const SOCKS_PASS: &str = "tw-s0cks-pass";

/// dante checks usernames against the system's users: creates one (root only). `false`
/// after printing why the test is skipped.
fn socks_user(test: &str) -> bool {
    use std::sync::OnceLock;
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root, cannot create a system user for dante".into());
        }
        let exists = Command::new("id")
            .arg(SOCKS_USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !exists {
            let made = Command::new("useradd")
                .args(["-M", "-s", "/usr/sbin/nologin", SOCKS_USER])
                .status()
                .map_err(|e| format!("useradd: {e}"))?;
            if !made.success() {
                return Err(format!("useradd failed: {made}"));
            }
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| format!("chpasswd: {e}"))?;
        let line = format!("{SOCKS_USER}:{SOCKS_PASS}\n");
        chpasswd
            .stdin
            .take()
            .expect("stdin")
            .write_all(line.as_bytes())
            .map_err(|e| e.to_string())?;
        match chpasswd.wait() {
            Ok(s) if s.success() => Ok(()),
            other => Err(format!("chpasswd: {other:?}")),
        }
    });
    match ready {
        Ok(()) => true,
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            false
        }
    }
}

// ---------------------------------------------------------------------------------------
// The tidewire side: a server in the test, a client through the proxy
// ---------------------------------------------------------------------------------------

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let key = KeyPair::generate().expect("key");
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = CertificateParams::new(names)
        .expect("params")
        .signed_by(&key, &ca)
        .expect("cert");
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A context with a `ws://` listener and a `wss://` one, and a client connector trusting
/// the test CA.
struct Servers {
    h: Harness,
    wss_port: u16,
    connector: TlsConnector,
}

impl Servers {
    fn new() -> Servers {
        Servers::trusting("")
    }

    /// The client connector trusts the origin's CA and `also` (PEM; an HTTPS proxy's CA).
    fn trusting(also: &str) -> Servers {
        let pki = pki();
        let mut h = Harness::new(Config::default(), ListenOptions::default());
        let acceptor = TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes())
            .expect("acceptor");
        let tls = ListenOptions {
            tls: Some(acceptor),
            ..ListenOptions::default()
        };
        let l = h.ctx.listen("127.0.0.1", 0, tls).expect("listen wss");
        let wss_port = h.ctx.local_addr(l).expect("addr").port();
        let connector = TlsConnector::new(&TlsClientOptions {
            use_system_roots: false,
            extra_ca_pem: Some(format!("{}{also}", pki.ca_pem).into_bytes()),
            ..TlsClientOptions::default()
        })
        .expect("connector");
        Servers {
            h,
            wss_port,
            connector,
        }
    }

    fn url(&self, secure: bool, host: &str) -> String {
        if secure {
            format!("wss://{host}:{}/through", self.wss_port)
        } else {
            format!("ws://{host}:{}/through", self.h.port)
        }
    }

    fn options(&self, proxy: Proxy, timeout: Duration) -> ConnectOptions {
        ConnectOptions {
            proxy,
            tls: Some(self.connector.clone()),
            connect_timeout: Some(timeout),
            ..ConnectOptions::default()
        }
    }

    /// Connects through `proxy`, exchanges one echoed message, closes; returns the time
    /// from `connect` to the client's Open.
    fn round_trip(&mut self, proxy: &str, secure: bool, host: &str) -> Duration {
        let url = self.url(secure, host);
        let options = self.options(proxy_of(proxy), Duration::from_secs(10));
        let started = Instant::now();
        let client = self.h.ctx.connect(&url, options).expect("connect");
        let mut opened_at = None;
        let mut echoed = false;
        let what = format!("{url} via {proxy}");
        assert!(
            self.h.run_until(TEST_DEADLINE, |ctx, ev| {
                match ev {
                    Event::Open { conn, path, .. } if conn == client => {
                        assert_eq!(path, "/through");
                        opened_at = Some(started.elapsed());
                        ctx.send_text(client, "hello through the proxy")
                            .expect("send");
                    }
                    Event::Message { conn, kind, data } if conn != client => {
                        ctx.send(conn, kind, data).expect("echo");
                    }
                    Event::Message { conn, kind, data } if conn == client => {
                        assert_eq!(kind, MessageKind::Text);
                        assert_eq!(data, b"hello through the proxy");
                        echoed = true;
                    }
                    Event::Error { error, .. } if ev.conn() == Some(client) => {
                        panic!("{what}: {error}")
                    }
                    _ => {}
                }
                echoed
            }),
            "{what}: no echo"
        );
        self.h.ctx.close(client, 1000, "").expect("close");
        let mut closed = 0;
        self.h.run_until(TEST_DEADLINE, |_, ev| {
            if let Event::Closed { .. } = ev {
                closed += 1;
            }
            closed == 2
        });
        opened_at.expect("opened")
    }

    /// Connects through `proxy` and returns the terminal error, with the time it took.
    fn failure(&mut self, proxy: &str, secure: bool, timeout: Duration) -> (Error, Duration) {
        let url = self.url(secure, "127.0.0.1");
        let options = self.options(proxy_of(proxy), timeout);
        let started = Instant::now();
        let client = self.h.ctx.connect(&url, options).expect("connect");
        let mut error = None;
        assert!(self.h.run_until(TEST_DEADLINE, |_, ev| {
            match ev {
                Event::Open { conn, .. } if conn == client => panic!("opened through {proxy}"),
                Event::Error { error: e, .. } if ev.conn() == Some(client) => {
                    // `Error` is not Clone: keep what the assertions need.
                    error = Some(clone_error(e));
                }
                _ => {}
            }
            error.is_some()
        }));
        (error.expect("error"), started.elapsed())
    }
}

fn proxy_of(url: &str) -> Proxy {
    if url == "direct" {
        Proxy::Direct
    } else {
        Proxy::parse(url).expect("proxy url")
    }
}

/// Enough of an `Error` for the assertions (the event lends it).
fn clone_error(e: &Error) -> Error {
    match e {
        Error::Proxy { proxy, failure } => Error::Proxy {
            proxy: proxy.clone(),
            failure: match failure {
                ProxyFailure::Handshake(p) => ProxyFailure::Handshake(p.clone()),
                ProxyFailure::Closed => ProxyFailure::Closed,
                ProxyFailure::Resolve(io) => ProxyFailure::Resolve(io.kind().into()),
                ProxyFailure::Connect(io) => ProxyFailure::Connect(io.kind().into()),
                ProxyFailure::Io(io) => ProxyFailure::Io(io.kind().into()),
                ProxyFailure::Tls(e) => ProxyFailure::Tls(e.clone()),
                other => panic!("{other:?}"),
            },
        },
        Error::Timeout(kind) => Error::Timeout(*kind),
        other => Error::InvalidArgument(format!("unexpected: {other:?}")),
    }
}

fn handshake_failure(e: &Error) -> &ProxyError {
    match e {
        Error::Proxy {
            failure: ProxyFailure::Handshake(p),
            ..
        } => p,
        other => panic!("expected a proxy handshake failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Real proxies
// ---------------------------------------------------------------------------------------

#[test]
fn ws_and_wss_through_tinyproxy() {
    let Some(proxy) = tinyproxy("ws_and_wss_through_tinyproxy", None, None) else {
        return;
    };
    let mut s = Servers::new();
    for secure in [false, true] {
        s.round_trip(&proxy.url("http", ""), secure, "127.0.0.1");
        s.round_trip(&proxy.url("http", ""), secure, "localhost");
    }
}

#[test]
fn tinyproxy_with_basic_auth() {
    let test = "tinyproxy_with_basic_auth";
    let Some(proxy) = tinyproxy(test, Some(("alice", "s3cret")), None) else {
        return;
    };
    let mut s = Servers::new();
    for secure in [false, true] {
        s.round_trip(&proxy.url("http", "alice:s3cret@"), secure, "127.0.0.1");
    }
    // No credentials: 407 with the challenge.
    let (e, _) = s.failure(&proxy.url("http", ""), true, Duration::from_secs(5));
    match handshake_failure(&e) {
        ProxyError::Refused {
            status: 407,
            authenticate: Some(challenge),
            ..
        } => assert!(challenge.starts_with("Basic"), "{challenge}"),
        other => panic!("{other:?}"),
    }
    eprintln!("no credentials: {e}");
    // Wrong ones: tinyproxy 1.11 answers 401 (with `WWW-Authenticate`) rather than 407;
    // either way the refusal carries the status, and never the password.
    let (e, _) = s.failure(
        &proxy.url("http", "alice:wrong@"),
        true,
        Duration::from_secs(5),
    );
    assert!(
        matches!(
            handshake_failure(&e),
            ProxyError::Refused {
                status: 401 | 407,
                ..
            }
        ),
        "{e:?}"
    );
    let shown = e.to_string();
    assert!(!shown.contains("wrong"), "{shown}");
    eprintln!("wrong credentials: {shown}");
}

#[test]
fn tinyproxy_refusing_the_target_port_gives_403() {
    let Some(proxy) = tinyproxy(
        "tinyproxy_refusing_the_target_port_gives_403",
        None,
        Some(443),
    ) else {
        return;
    };
    let mut s = Servers::new();
    let (e, _) = s.failure(&proxy.url("http", ""), false, Duration::from_secs(5));
    assert!(
        matches!(
            handshake_failure(&e),
            ProxyError::Refused { status: 403, .. }
        ),
        "{e:?}"
    );
    eprintln!("refused: {e}");
}

#[test]
fn ws_and_wss_through_danted() {
    let Some(proxy) = danted("ws_and_wss_through_danted", false) else {
        return;
    };
    let mut s = Servers::new();
    for secure in [false, true] {
        // socks5: the client resolves (a literal here, a name in the second case).
        s.round_trip(&proxy.url("socks5", ""), secure, "127.0.0.1");
        // socks5h: the proxy resolves.
        s.round_trip(&proxy.url("socks5h", ""), secure, "127.0.0.1");
    }
}

#[test]
fn danted_with_username_auth() {
    let test = "danted_with_username_auth";
    if !socks_user(test) {
        return;
    }
    let Some(proxy) = danted(test, true) else {
        return;
    };
    let mut s = Servers::new();
    let good = format!("{SOCKS_USER}:{SOCKS_PASS}@");
    for secure in [false, true] {
        s.round_trip(&proxy.url("socks5", &good), secure, "127.0.0.1");
        s.round_trip(&proxy.url("socks5h", &good), secure, "127.0.0.1");
    }
    let bad = format!("{SOCKS_USER}:wrong@");
    let (e, _) = s.failure(&proxy.url("socks5h", &bad), false, Duration::from_secs(5));
    assert!(
        matches!(handshake_failure(&e), ProxyError::AuthFailed { .. }),
        "{e:?}"
    );
    eprintln!("wrong credentials: {e}");
    // Without credentials, dante accepts none of the offered methods.
    let (e, _) = s.failure(&proxy.url("socks5", ""), false, Duration::from_secs(5));
    assert!(
        matches!(handshake_failure(&e), ProxyError::NoAcceptableMethods),
        "{e:?}"
    );
    eprintln!("no credentials: {e}");
}

#[test]
fn ws_and_wss_through_an_https_proxy() {
    let test = "ws_and_wss_through_an_https_proxy";
    let Some(upstream) = tinyproxy(test, Some(("alice", "s3cret")), None) else {
        return;
    };
    let proxy_pki = pki();
    let Some(proxy) = https_proxy(test, &upstream, &proxy_pki) else {
        return;
    };
    let mut s = Servers::trusting(&proxy_pki.ca_pem);
    let good = proxy.url("https", "alice:s3cret@");
    let by_name = format!("https://alice:s3cret@localhost:{}", proxy.port);
    for secure in [false, true] {
        // wss: TLS to the origin inside the tunnel inside TLS to the proxy.
        s.round_trip(&good, secure, "127.0.0.1");
        s.round_trip(&good, secure, "localhost");
        s.round_trip(&by_name, secure, "127.0.0.1");
    }
    // The proxy's refusal comes through its TLS like any other.
    let (e, _) = s.failure(
        &proxy.url("https", "alice:wrong@"),
        true,
        Duration::from_secs(5),
    );
    assert!(
        matches!(
            handshake_failure(&e),
            ProxyError::Refused {
                status: 401 | 407,
                ..
            }
        ),
        "{e:?}"
    );
    eprintln!("wrong credentials through TLS: {e}");
}

fn proxy_tls_failure(e: &Error) -> &rustls::Error {
    match e {
        Error::Proxy {
            failure: ProxyFailure::Tls(t),
            ..
        } => t,
        other => panic!("expected TLS to the proxy to fail, got {other:?}"),
    }
}

#[test]
fn an_untrusted_https_proxy_is_a_proxy_tls_error() {
    let test = "an_untrusted_https_proxy_is_a_proxy_tls_error";
    let Some(upstream) = tinyproxy(test, None, None) else {
        return;
    };
    let proxy_pki = pki();
    let Some(proxy) = https_proxy(test, &upstream, &proxy_pki) else {
        return;
    };
    // The client trusts the origin's CA only: the proxy's certificate is refused, and the
    // error says it was TLS to the proxy, not to the origin.
    let mut s = Servers::new();
    for secure in [false, true] {
        let (e, took) = s.failure(&proxy.url("https", ""), secure, Duration::from_secs(5));
        assert!(
            matches!(proxy_tls_failure(&e), rustls::Error::InvalidCertificate(_)),
            "{e:?}"
        );
        let shown = e.to_string();
        assert!(shown.contains("TLS to the proxy failed"), "{shown}");
        assert!(took < Duration::from_secs(4), "{took:?}");
        eprintln!("untrusted proxy certificate: {shown}");
    }
    // A plain HTTP proxy named with https://: its answer to the TLS hello is not TLS.
    let port = fake_proxy(Some(b"HTTP/1.1 400 Bad Request\r\n\r\n"));
    let (e, took) = s.failure(
        &format!("https://127.0.0.1:{port}"),
        false,
        Duration::from_secs(5),
    );
    proxy_tls_failure(&e);
    assert!(took < Duration::from_secs(4), "{took:?}");
    eprintln!("https:// to a plain proxy: {e}");
}

#[test]
fn an_https_proxy_that_never_answers_times_out() {
    let mut s = Servers::new();
    let port = fake_proxy(None);
    let timeout = Duration::from_millis(600);
    let (e, took) = s.failure(&format!("https://127.0.0.1:{port}"), true, timeout);
    assert!(matches!(e, Error::Timeout(TimeoutKind::Proxy)), "{e:?}");
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(2),
        "{took:?}"
    );
}

/// The note's figures: the time from `connect` to Open, direct and through each proxy.
#[test]
fn connect_time_through_each_proxy_kind() {
    let test = "connect_time_through_each_proxy_kind";
    let (Some(http), Some(socks)) = (tinyproxy(test, None, None), danted(test, false)) else {
        return;
    };
    let proxy_pki = pki();
    let Some(https) = https_proxy(test, &http, &proxy_pki) else {
        return;
    };
    let mut s = Servers::trusting(&proxy_pki.ca_pem);
    let routes = [
        ("direct", "direct".to_string()),
        ("HTTP CONNECT (tinyproxy)", http.url("http", "")),
        ("HTTPS (stunnel+tinyproxy)", https.url("https", "")),
        ("SOCKS5 (danted)", socks.url("socks5", "")),
        ("SOCKS5h (danted)", socks.url("socks5h", "")),
    ];
    const RUNS: usize = 15;
    eprintln!("connect to Open on loopback, median of {RUNS} (min .. max):");
    for secure in [false, true] {
        for (name, proxy) in &routes {
            let mut times: Vec<Duration> = (0..RUNS)
                .map(|_| s.round_trip(proxy, secure, "127.0.0.1"))
                .collect();
            times.sort();
            eprintln!(
                "  {:4} {name:26} {:>8.2?}  ({:.2?} .. {:.2?})",
                if secure { "wss" } else { "ws" },
                times[RUNS / 2],
                times[0],
                times[RUNS - 1]
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fake proxies
// ---------------------------------------------------------------------------------------

/// A listener whose connections get `answer` after the first bytes arrive (or nothing,
/// when `answer` is `None`), and are then held open.
fn fake_proxy(answer: Option<&'static [u8]>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for sock in l.incoming() {
            let Ok(mut sock) = sock else { return };
            if let Some(answer) = answer {
                let mut buf = [0u8; 512];
                let _ = sock.read(&mut buf);
                let _ = sock.write_all(answer);
            }
            held.push(sock);
        }
    });
    port
}

#[test]
fn a_proxy_answering_garbage_is_a_specific_error() {
    let mut s = Servers::new();
    let port = fake_proxy(Some(b"\x00\x01garbage that is not HTTP\r\n\r\n"));
    let (e, took) = s.failure(
        &format!("http://127.0.0.1:{port}"),
        false,
        Duration::from_secs(5),
    );
    assert!(
        matches!(handshake_failure(&e), ProxyError::Malformed(_)),
        "{e:?}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    eprintln!("garbage to HTTP: {e}");
    let (e, _) = s.failure(
        &format!("socks5://127.0.0.1:{port}"),
        false,
        Duration::from_secs(5),
    );
    assert!(
        matches!(handshake_failure(&e), ProxyError::BadVersion { got: 0, .. }),
        "{e:?}"
    );
    eprintln!("garbage to SOCKS5: {e}");
    // An HTTP proxy where a SOCKS5 one was expected.
    let port = fake_proxy(Some(b"HTTP/1.1 400 Bad Request\r\n\r\n"));
    let (e, _) = s.failure(
        &format!("socks5h://127.0.0.1:{port}"),
        false,
        Duration::from_secs(5),
    );
    assert!(
        matches!(
            handshake_failure(&e),
            ProxyError::BadVersion { got: b'H', .. }
        ),
        "{e:?}"
    );
    eprintln!("HTTP answer to SOCKS5: {e}");
}

#[test]
fn a_proxy_that_never_answers_times_out_within_the_connect_timeout() {
    let mut s = Servers::new();
    let port = fake_proxy(None);
    for scheme in ["http", "socks5h"] {
        let timeout = Duration::from_millis(600);
        let (e, took) = s.failure(&format!("{scheme}://127.0.0.1:{port}"), true, timeout);
        assert!(matches!(e, Error::Timeout(TimeoutKind::Proxy)), "{e:?}");
        assert!(
            took >= timeout && took < timeout + Duration::from_secs(2),
            "{took:?}"
        );
        eprintln!("{scheme} proxy never answers: {e} after {took:.2?}");
    }
}

#[test]
fn a_proxy_that_closes_or_is_not_there() {
    let mut s = Servers::new();
    let closing = TcpListener::bind("127.0.0.1:0").expect("bind");
    let closing_port = closing.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for sock in closing.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut buf = [0u8; 512];
            let _ = sock.read(&mut buf);
            drop(sock);
        }
    });
    let (e, _) = s.failure(
        &format!("http://127.0.0.1:{closing_port}"),
        false,
        Duration::from_secs(5),
    );
    assert!(
        matches!(
            e,
            Error::Proxy {
                failure: ProxyFailure::Closed,
                ..
            }
        ),
        "{e:?}"
    );
    eprintln!("proxy closes: {e}");
    let nobody = free_port();
    let (e, took) = s.failure(
        &format!("socks5://127.0.0.1:{nobody}"),
        false,
        Duration::from_secs(5),
    );
    match &e {
        Error::Proxy {
            proxy,
            failure: ProxyFailure::Connect(_),
        } => assert_eq!(proxy, &format!("socks5://127.0.0.1:{nobody}")),
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_secs(4), "{took:?}");
    eprintln!("proxy unreachable: {e}");
}

/// What a proxy sends after its answer belongs to the next layer: here the origin's answer
/// to the upgrade arrives in the same segment as the proxy's 200, and the client reads it
/// as the upgrade's response.
#[test]
fn bytes_after_the_proxy_answer_reach_the_upgrade() {
    let mut s = Servers::new();
    let port = fake_proxy(Some(
        b"HTTP/1.1 200 Connection established\r\n\r\n\
          HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n",
    ));
    let url = s.url(false, "127.0.0.1");
    let options = s.options(
        proxy_of(&format!("http://127.0.0.1:{port}")),
        Duration::from_secs(5),
    );
    let client = s.h.ctx.connect(&url, options).expect("connect");
    let mut status = None;
    assert!(s.h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Error { error, .. } = &ev {
            if ev.conn() == Some(client) {
                match error {
                    Error::HandshakeRejected { status: st, .. } => status = Some(*st),
                    other => panic!("{other:?}"),
                }
            }
        }
        status.is_some()
    }));
    assert_eq!(status, Some(418));
}

// ---------------------------------------------------------------------------------------
// Reconnecting through a proxy
// ---------------------------------------------------------------------------------------

/// A reconnect uses the connection's options again, proxy and its credentials included:
/// the server ends the first connection with 1001, the client comes back through tinyproxy
/// (wss, so TLS inside the tunnel) under the same id, and the proxy saw two CONNECTs.
#[test]
fn a_reconnect_goes_through_the_same_proxy() {
    let Some(proxy) = tinyproxy(
        "a_reconnect_goes_through_the_same_proxy",
        Some(("user", "secret")),
        None,
    ) else {
        return;
    };
    let mut s = Servers::new();
    let url = s.url(true, "127.0.0.1");
    let options = ConnectOptions {
        reconnect: Some(ReconnectPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_attempts: Some(3),
            reset_after: Duration::from_secs(10),
        }),
        ..s.options(
            proxy_of(&proxy.url("http", "user:secret@")),
            Duration::from_secs(10),
        )
    };
    let client = s.h.ctx.connect(&url, options).expect("connect");
    let (mut opens, mut retried, mut echoed) = (0, false, false);
    assert!(s.h.run_until(TEST_DEADLINE, |ctx, ev| {
        match ev {
            Event::Open {
                conn,
                listener: Some(_),
                ..
            } if opens == 0 => {
                ctx.close(conn, 1001, "restarting").expect("close");
            }
            Event::Open { conn, .. } if conn == client => {
                opens += 1;
                if opens == 2 {
                    ctx.send_text(client, "back").expect("send");
                }
            }
            Event::Reconnecting {
                conn,
                attempt,
                close_code,
                error,
                ..
            } => {
                assert_eq!(conn, client);
                assert_eq!((attempt, close_code), (1, 1001));
                assert!(error.is_none());
                retried = true;
            }
            Event::Message { conn, kind, data } if conn != client => {
                ctx.send(conn, kind, data).expect("echo");
            }
            Event::Message { conn, data, .. } if conn == client => {
                assert_eq!(data, b"back");
                echoed = true;
            }
            Event::Error { error, .. } if ev.conn() == Some(client) => panic!("{error}"),
            _ => {}
        }
        echoed
    }));
    assert!(retried && opens == 2);
    s.h.ctx.close(client, 1000, "").expect("close");
    let mut closed = 0;
    s.h.run_until(TEST_DEADLINE, |_, ev| {
        if let Event::Closed { .. } = ev {
            closed += 1;
        }
        closed == 2
    });
    let log = std::fs::read_to_string(proxy.dir.join("tinyproxy.log")).unwrap_or_default();
    let connects = log
        .matches(&format!("CONNECT 127.0.0.1:{}", s.wss_port))
        .count();
    assert_eq!(connects, 2, "tinyproxy's log:\n{log}");
}

/// Messages of several megabytes both ways through the HTTPS proxy: the proxy TLS's output
/// waits for the socket (back-pressure through two TLS layers for wss://) and nothing is
/// lost or reordered.
#[test]
fn large_messages_through_the_https_proxy() {
    let test = "large_messages_through_the_https_proxy";
    let Some(upstream) = tinyproxy(test, None, None) else {
        return;
    };
    let proxy_pki = pki();
    let Some(proxy) = https_proxy(test, &upstream, &proxy_pki) else {
        return;
    };
    let mut s = Servers::trusting(&proxy_pki.ca_pem);
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    for secure in [false, true] {
        let url = s.url(secure, "127.0.0.1");
        let options = s.options(proxy_of(&proxy.url("https", "")), Duration::from_secs(10));
        let client = s.h.ctx.connect(&url, options).expect("connect");
        let mut echoed = 0;
        assert!(
            s.h.run_until(TEST_DEADLINE, |ctx, ev| {
                match ev {
                    Event::Open { conn, .. } if conn == client => {
                        for _ in 0..3 {
                            ctx.send(client, MessageKind::Binary, &big).expect("send");
                        }
                    }
                    Event::Message { conn, kind, data } if conn != client => {
                        ctx.send(conn, kind, data).expect("echo");
                    }
                    Event::Message { conn, data, .. } if conn == client => {
                        assert!(data == &big[..], "message {echoed} changed on the way");
                        echoed += 1;
                    }
                    Event::Error { error, .. } if ev.conn() == Some(client) => {
                        panic!("secure={secure}: {error}")
                    }
                    _ => {}
                }
                echoed == 3
            }),
            "secure={secure}: {echoed} of 3 echoed"
        );
        s.h.ctx.close(client, 1000, "").expect("close");
    }
}
