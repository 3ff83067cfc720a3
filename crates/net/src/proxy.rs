//! Client connections through a proxy: which proxy (the option, or the environment), and
//! the runtime's side of the tunnel (the proxy's handshake over the non-blocking socket, then
//! handing over to TLS and the WebSocket upgrade). What the bytes mean is proto's
//! (`tidewire_proto::proxy`: `HttpConnect`, `Socks5`, `ProxyUrl`, `no_proxy_matches`).
//!
//! The path of a connection through a proxy:
//!
//! 1. `Resolving`: for `socks5://` the target's name first (the client resolves it), then the
//!    proxy's name, both on the resolver threads (IP literals skip this).
//! 2. `Connecting`: TCP to the proxy's addresses in turn.
//! 3. `Proxying`: the `CONNECT` request or the SOCKS5 exchange, in plain text; for an
//!    `https://` proxy, inside TLS to the proxy (`conn::Wire`: the proxy's certificate is
//!    checked against the connection's TLS settings, `ConnectOptions::tls` or the system's
//!    roots, and the proxy URL's host name). Its failure is `ProxyFailure::Tls`.
//! 4. `ClientHandshake`: as a direct connection: TLS to the origin for `wss://` (inside the
//!    tunnel; through an `https://` proxy, TLS inside TLS), then the upgrade. Bytes the
//!    proxy sent after its answer are kept for this stage.
//!
//! The connect timeout covers steps 1 to 3 (the TLS handshake with an `https://` proxy
//! included); the handshake timeout step 4, as for a direct connection.

use std::fmt;
use std::io;

use tidewire_proto::handshake::Url;
use tidewire_proto::proxy::{
    no_proxy_matches, HttpConnect, HttpConnectOptions, ProxyError, ProxyScheme, ProxyUrl, Socks5,
    Target,
};

use crate::conn::Stage;
use crate::context::Context;
use crate::error::Error;
use crate::events::Events;

/// Which proxy a client connection goes through ([`crate::ConnectOptions::proxy`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Proxy {
    /// Read the environment at `connect`, as curl and python-websockets do (the default).
    /// See [`proxy_from_env`] for the variables and their precedence.
    #[default]
    FromEnv,
    /// Connect directly, whatever the environment says.
    Direct,
    /// Go through this proxy (`no_proxy` is not consulted).
    Url(ProxyUrl),
}

impl Proxy {
    /// `Proxy::Url` from a proxy URL (`http://[user:pass@]host:port`, `socks5://...`,
    /// `socks5h://...`); see [`ProxyUrl::parse`].
    pub fn parse(url: &str) -> Result<Proxy, Error> {
        ProxyUrl::parse(url)
            .map(Proxy::Url)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// The proxy to use for `url`, reading the process environment for [`Proxy::FromEnv`].
    pub(crate) fn for_url(&self, url: &Url) -> Result<Option<ProxyUrl>, Error> {
        match self {
            Proxy::FromEnv => proxy_from_env(url, |name| std::env::var(name).ok()),
            Proxy::Direct => Ok(None),
            Proxy::Url(p) => Ok(Some(p.clone())),
        }
    }

    /// Checks what a connection cannot use whatever the target: credentials the proxy's
    /// protocol cannot carry.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        match self {
            Proxy::Url(p) => check_usable(p),
            _ => Ok(()),
        }
    }
}

fn check_usable(p: &ProxyUrl) -> Result<(), Error> {
    let bad = |e: ProxyError| Error::InvalidArgument(format!("proxy {p}: {e}"));
    let placeholder = Target::ip(std::net::Ipv4Addr::UNSPECIFIED.into(), 1);
    match p.scheme {
        ProxyScheme::Http | ProxyScheme::Https => HttpConnect::new(&placeholder, &http_options(p))
            .map(drop)
            .map_err(bad),
        ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
            Socks5::new(&placeholder, p.credentials.as_ref())
                .map(drop)
                .map_err(bad)
        }
    }
}

fn http_options(p: &ProxyUrl) -> HttpConnectOptions {
    HttpConnectOptions {
        credentials: p.credentials.clone(),
        ..HttpConnectOptions::default()
    }
}

/// The proxy the environment names for `url`, or `None` for a direct connection. `lookup`
/// reads one variable (`std::env::var` in [`Proxy::FromEnv`]; tests pass a map). An empty
/// value counts as unset. The rules, curl's and python-websockets':
///
/// 1. `no_proxy`, else `NO_PROXY`: when it matches the URL's host (and port), no proxy
///    ([`no_proxy_matches`]: names with their subdomains, `.domain`, IP literals, CIDR
///    ranges, `*`).
/// 2. For `wss://`: `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`;
///    for `ws://`: `ws_proxy`, `WS_PROXY`, `http_proxy`, `HTTP_PROXY` (the last one is
///    skipped when `REQUEST_METHOD` is set: in a CGI program it comes from the client's
///    `Proxy:` header, as Python's `urllib` also guards);
///    the first one set wins.
/// 3. Then `all_proxy`, `ALL_PROXY`.
///
/// A value that is not a proxy URL is an [`Error::InvalidArgument`] naming the variable
/// (never silently a direct connection).
pub fn proxy_from_env(
    url: &Url,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<ProxyUrl>, Error> {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    if let Some(list) = get("no_proxy").or_else(|| get("NO_PROXY")) {
        if no_proxy_matches(&list, &url.host, url.port) {
            return Ok(None);
        }
    }
    let cgi = get("REQUEST_METHOD").is_some();
    let names: &[&str] = if url.secure {
        &["wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY"]
    } else {
        &["ws_proxy", "WS_PROXY", "http_proxy", "HTTP_PROXY"]
    };
    let found = names
        .iter()
        .chain(&["all_proxy", "ALL_PROXY"])
        .filter(|name| !(cgi && **name == "HTTP_PROXY"))
        .find_map(|name| get(name).map(|v| (*name, v)));
    match found {
        None => Ok(None),
        Some((name, value)) => ProxyUrl::parse(&value)
            .map(Some)
            .map_err(|e| Error::InvalidArgument(format!("${name}: {e}"))),
    }
}

/// What failed on the way through a proxy (inside [`Error::Proxy`]). A timeout on that way
/// is `Error::Timeout(TimeoutKind::Proxy)`.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyFailure {
    /// The proxy's host name could not be resolved.
    Resolve(io::Error),
    /// No TCP connection to the proxy (refused, unreachable): the proxy is unreachable.
    Connect(io::Error),
    /// The proxy's answer: refused ([`ProxyError::Refused`] with the HTTP status and, for a
    /// 407, the `Proxy-Authenticate` challenge; [`ProxyError::ConnectFailed`] with the SOCKS
    /// reply code; [`ProxyError::AuthFailed`]), or not the protocol expected (which field).
    Handshake(ProxyError),
    /// The proxy closed the connection before its answer was complete.
    Closed,
    /// A socket error while talking to the proxy.
    Io(io::Error),
    /// TLS to an `https://` proxy failed (its certificate is not trusted by the
    /// connection's TLS settings or is not for the proxy's name, or a TLS protocol error):
    /// distinct from [`Error::Tls`], which is TLS to the origin.
    Tls(rustls::Error),
}

impl fmt::Display for ProxyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyFailure::Resolve(e) => write!(f, "cannot resolve the proxy's name: {e}"),
            ProxyFailure::Connect(e) => write!(f, "proxy unreachable: {e}"),
            ProxyFailure::Handshake(e) => e.fmt(f),
            ProxyFailure::Closed => f.write_str("the proxy closed the connection before answering"),
            ProxyFailure::Io(e) => write!(f, "i/o error talking to the proxy: {e}"),
            ProxyFailure::Tls(e) => write!(f, "TLS to the proxy failed: {e}"),
        }
    }
}

/// The proxy part of a client connection being set up.
pub(crate) struct ProxyDial {
    pub(crate) url: ProxyUrl,
    /// `socks5://` with a target name: the resolver's next answer is the target's.
    pub(crate) resolving_target: bool,
    /// Where the tunnel goes; `None` until the target's name is resolved (`socks5://`).
    pub(crate) target: Option<Target>,
    pub(crate) machine: Option<Machine>,
    /// The TLS session to the origin (`wss://`), put in place once the tunnel is open.
    pub(crate) tls: Option<Box<rustls::Connection>>,
    /// The TLS session to an `https://` proxy, put in place once TCP to it is up.
    pub(crate) outer: Option<Box<rustls::Connection>>,
}

pub(crate) enum Machine {
    Http(HttpConnect),
    Socks(Socks5),
}

impl ProxyDial {
    pub(crate) fn new(url: ProxyUrl, origin: &Url) -> Result<ProxyDial, Error> {
        check_usable(&url)?;
        let literal =
            origin.host.parse::<std::net::IpAddr>().is_ok() || origin.host.starts_with('[');
        let resolving_target = url.scheme == ProxyScheme::Socks5 && !literal;
        let target = if resolving_target {
            None
        } else {
            Some(Target::from_url(origin).map_err(|e| Error::InvalidUrl(e.to_string()))?)
        };
        Ok(ProxyDial {
            url,
            resolving_target,
            target,
            machine: None,
            tls: None,
            outer: None,
        })
    }

    /// Builds the handshake once the TCP connection to the proxy is up; returns the first
    /// bytes to send.
    pub(crate) fn start(&mut self) -> Result<Vec<u8>, ProxyError> {
        let target = self
            .target
            .as_ref()
            .ok_or(ProxyError::Malformed("no target"))?;
        let (machine, first) = match self.url.scheme {
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
                let mut s = Socks5::new(target, self.url.credentials.as_ref())?;
                let out = s.output().to_vec();
                s.consume_output(out.len());
                (Machine::Socks(s), out)
            }
            ProxyScheme::Http | ProxyScheme::Https => {
                let h = HttpConnect::new(target, &http_options(&self.url))?;
                let out = h.request().to_vec();
                (Machine::Http(h), out)
            }
        };
        self.machine = Some(machine);
        Ok(first)
    }
}

/// What the proxy's bytes did.
pub(crate) enum Step {
    NeedMore,
    /// Send these bytes (the next SOCKS5 request).
    Send(Vec<u8>),
    /// The tunnel is open; the input from this offset on is the origin's.
    Open(usize),
}

impl Machine {
    pub(crate) fn receive(&mut self, input: &[u8]) -> Result<Step, ProxyError> {
        use tidewire_proto::proxy::Progress;
        match self {
            Machine::Http(h) => Ok(match h.receive(input)? {
                None => Step::NeedMore,
                Some(est) => Step::Open(est.body_start),
            }),
            Machine::Socks(s) => Ok(match s.receive(input)? {
                Progress::NeedMore => Step::NeedMore,
                Progress::Send => {
                    let out = s.output().to_vec();
                    s.consume_output(out.len());
                    Step::Send(out)
                }
                Progress::Done { body_start } => Step::Open(body_start),
            }),
        }
    }
}

impl ProxyFailure {
    /// What an I/O error on the way through a proxy was: TLS to an `https://` proxy, or
    /// the socket's.
    pub(crate) fn from_io(e: io::Error) -> ProxyFailure {
        match crate::conn::OuterTls::of(&e) {
            Some(tls) => ProxyFailure::Tls(tls),
            None => ProxyFailure::Io(e),
        }
    }
}

impl Context {
    /// The proxy opened the tunnel; `ev.arena[from..to]` is what came after its answer (the
    /// origin's first bytes, if any). Continues as a direct connection does after its TCP
    /// connect: TLS to the origin for `wss://`, the upgrade request, under the handshake
    /// timeout. Returns whether to keep reading.
    pub(crate) fn tunnel_open(&mut self, id: u64, from: usize, to: usize, ev: &mut Events) -> bool {
        let at = self.now + self.config.handshake_timeout;
        let Some(c) = self.conns.get_mut(id) else {
            return false;
        };
        let stage = std::mem::replace(&mut c.stage, Stage::Answering);
        let Stage::Proxying(mut dial) = stage else {
            c.stage = stage;
            return false;
        };
        c.tls = dial.proxy.take().and_then(|p| p.tls);
        let mut early = &ev.arena[from..to];
        let mut failed = None;
        match c.tls.as_deref_mut() {
            Some(tls) if !early.is_empty() => {
                // TLS records: rustls takes them as if read from the socket.
                while !early.is_empty() {
                    match tls.read_tls(&mut early) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                failed = tls.process_new_packets().err();
            }
            Some(_) => {}
            // Plain: the start of the upgrade response, read before the socket's next bytes.
            None => c.stash.extend_from_slice(early),
        }
        if let Some(hs) = &dial.handshake {
            c.pre.set(hs.request().to_vec());
        }
        c.stage = Stage::ClientHandshake(dial);
        if let Some(e) = failed {
            self.finish(id, ev, Some(Error::from(e)));
            return false;
        }
        self.arm_phase(id, at);
        self.mark_dirty(id);
        if from < to {
            // No readiness edge will announce these bytes: read them at the next poll.
            self.queue_read(id);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(url: &str, vars: &[(&str, &str)]) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let url = Url::parse(url).unwrap();
        proxy_from_env(&url, |name| map.get(name).cloned())
            .unwrap()
            .map(|p| p.to_string())
    }

    #[test]
    fn scheme_specific_then_all_proxy_lower_case_first() {
        let vars = [
            ("wss_proxy", "http://wss:1"),
            ("WSS_PROXY", "http://WSS:1"),
            ("https_proxy", "http://https:1"),
            ("HTTPS_PROXY", "http://HTTPS:1"),
            ("ws_proxy", "http://ws:1"),
            ("http_proxy", "http://http:1"),
            ("all_proxy", "socks5h://all:1"),
            ("ALL_PROXY", "socks5h://ALL:1"),
        ];
        assert_eq!(env("wss://o/", &vars).as_deref(), Some("http://wss:1"));
        assert_eq!(env("wss://o/", &vars[1..]).as_deref(), Some("http://wss:1"));
        assert_eq!(
            env("wss://o/", &vars[2..]).as_deref(),
            Some("http://https:1")
        );
        assert_eq!(
            env("wss://o/", &vars[3..]).as_deref(),
            Some("http://https:1")
        );
        assert_eq!(
            env("wss://o/", &vars[4..]).as_deref(),
            Some("socks5h://all:1")
        );
        assert_eq!(env("ws://o/", &vars).as_deref(), Some("http://ws:1"));
        assert_eq!(env("ws://o/", &vars[5..]).as_deref(), Some("http://http:1"));
        assert_eq!(
            env("ws://o/", &vars[6..]).as_deref(),
            Some("socks5h://all:1")
        );
        assert_eq!(
            env("ws://o/", &vars[7..]).as_deref(),
            Some("socks5h://all:1")
        );
        assert_eq!(env("ws://o/", &[]), None);
        // An empty value is unset.
        assert_eq!(
            env(
                "ws://o/",
                &[("ws_proxy", ""), ("HTTP_PROXY", "http://up:2")]
            )
            .as_deref(),
            Some("http://up:2")
        );
        // HTTP_PROXY is not trusted in a CGI program; http_proxy is.
        let cgi = [("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://evil:1")];
        assert_eq!(env("ws://o/", &cgi), None);
        let cgi = [("REQUEST_METHOD", "GET"), ("http_proxy", "http://ok:1")];
        assert_eq!(env("ws://o/", &cgi).as_deref(), Some("http://ok:1"));
    }

    #[test]
    fn no_proxy_wins_lower_case_first() {
        let vars = [("all_proxy", "http://p:1"), ("no_proxy", "example.com")];
        assert_eq!(env("ws://a.example.com/", &vars), None);
        assert_eq!(env("ws://other.org/", &vars).as_deref(), Some("http://p:1"));
        let vars = [
            ("all_proxy", "http://p:1"),
            ("no_proxy", "other.org"),
            ("NO_PROXY", "example.com"),
        ];
        assert_eq!(
            env("ws://example.com/", &vars).as_deref(),
            Some("http://p:1")
        );
        let vars = [("all_proxy", "http://p:1"), ("NO_PROXY", "*")];
        assert_eq!(env("wss://example.com/", &vars), None);
        let vars = [
            ("https_proxy", "http://p:1"),
            ("no_proxy", "127.0.0.0/8,::1"),
        ];
        assert_eq!(env("wss://127.0.0.1:9/", &vars), None);
        assert_eq!(env("wss://[::1]:9/", &vars), None);
        assert_eq!(
            env("wss://localhost:9/", &vars).as_deref(),
            Some("http://p:1")
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let url = Url::parse("ws://o/").unwrap();
        let e = proxy_from_env(&url, |n| (n == "http_proxy").then(|| "ftp://u:pw@x".into()))
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("$http_proxy") && !text.contains("pw"),
            "{text}"
        );
    }

    #[test]
    fn explicit_choices_and_validation() {
        let url = Url::parse("ws://o/").unwrap();
        assert_eq!(Proxy::Direct.for_url(&url).unwrap(), None);
        let p = Proxy::parse("socks5://u:p@127.0.0.1:1080").unwrap();
        assert_eq!(
            p.for_url(&url).unwrap().map(|u| u.to_string()).as_deref(),
            Some("socks5://127.0.0.1:1080")
        );
        assert!(p.validate().is_ok());
        assert!(Proxy::parse("https://p").unwrap().validate().is_ok());
        assert!(Proxy::parse("http://a:b@p").unwrap().validate().is_ok());
        assert!(Proxy::parse("http://a%3Ab:c@p")
            .unwrap()
            .validate()
            .is_err());
        let long = format!("socks5://{}:x@p", "u".repeat(300));
        assert!(Proxy::parse(&long).unwrap().validate().is_err());
        assert!(Proxy::parse("nope://p").is_err());
    }
}
