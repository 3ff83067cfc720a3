//! The client's side of proxy handshakes, sans-IO: what a client says to a proxy on a fresh
//! TCP connection, before TLS to the origin and before the WebSocket upgrade, and how it reads
//! the answers.
//!
//! * [`http::HttpConnect`]: an HTTP `CONNECT` tunnel (RFC 9110 section 9.3.6, message syntax
//!   of RFC 9112, `Basic` proxy authentication of RFC 7617). The same request serves an
//!   `https://` proxy: only the transport under it differs.
//! * [`socks5::Socks5`]: a SOCKS5 `CONNECT` (RFC 1928), with username/password authentication
//!   (RFC 1929) when credentials are given.
//!
//! Both take the proxy's bytes as they arrive, answer "need more" until the proxy's answer is
//! complete, never buffer more than a fixed bound, and report where the tunnel's own data
//! begins in the input that completed the answer (`body_start`): a proxy may send the first
//! bytes of the origin's stream (a TLS server hello, say) in the same segment as its answer.
//!
//! Which proxy to use is a [`ProxyUrl`] ([`url`]), and [`no_proxy_matches`] says which hosts
//! bypass it.
//!
//! Where the tunnel goes is a [`Target`]: a host name that the proxy resolves (`socks5h://`,
//! and every HTTP proxy), or an address the client resolved itself (`socks5://`).

pub mod http;
pub mod socks5;
pub mod url;

pub use http::{Established, HttpConnect, HttpConnectOptions};
pub use socks5::{Bound, Progress, ReplyCode, Socks5};
pub use url::{no_proxy_matches, ProxyScheme, ProxyUrl};

use crate::handshake::{HandshakeError, Url};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The longest host name a SOCKS5 request can carry (RFC 1928 section 5: one length octet).
/// HTTP has no such bound, but DNS names are shorter still, so both use it.
pub const MAX_DOMAIN_LEN: usize = 255;

/// Where the tunnel leads: host and port of the origin server.
///
/// A domain name is checked when the target is made, so every `Target` can be written into a
/// request as it is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Target {
    host: Host,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Host {
    Ip(IpAddr),
    Domain(Box<str>),
}

impl Target {
    /// An address the client resolved itself (`socks5://`): SOCKS5 sends it as address type
    /// IPv4 or IPv6, HTTP as `192.0.2.1:443` or `[2001:db8::1]:443`.
    pub fn ip(addr: IpAddr, port: u16) -> Target {
        Target {
            host: Host::Ip(addr),
            port,
        }
    }

    /// A host name for the proxy to resolve (`socks5h://`, HTTP). It must be 1 to 255 bytes
    /// of an RFC 3986 `reg-name`: letters, digits, `-._~`, `%` and the sub-delimiters, as in
    /// a URL's host (so an internationalized name goes in its ASCII, `xn--` form). The name
    /// is sent as given, even when it spells an IPv4 address; [`Target::new`] tells the two
    /// apart.
    pub fn domain(name: &str, port: u16) -> Result<Target, ProxyError> {
        let bytes = name.as_bytes();
        let reg_name = |b: &u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(b);
        if bytes.is_empty() || bytes.len() > MAX_DOMAIN_LEN || !bytes.iter().all(reg_name) {
            return Err(ProxyError::InvalidDomain(name.to_owned()));
        }
        Ok(Target {
            host: Host::Domain(name.into()),
            port,
        })
    }

    /// A host as a URL holds it: an IPv4 literal or an IPv6 literal (with or without its
    /// brackets) becomes an address, anything else a [`Target::domain`].
    pub fn new(host: &str, port: u16) -> Result<Target, ProxyError> {
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(v6) = literal.parse::<Ipv6Addr>() {
            return Ok(Target::ip(IpAddr::V6(v6), port));
        }
        match host.parse::<IpAddr>() {
            Ok(addr) => Ok(Target::ip(addr, port)),
            Err(_) => Target::domain(host, port),
        }
    }

    /// Host and port of a WebSocket URL: the origin server that the tunnel must reach.
    pub fn from_url(url: &Url) -> Result<Target, ProxyError> {
        Target::new(&url.host, url.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address, for a target made from one.
    pub fn ip_addr(&self) -> Option<IpAddr> {
        match &self.host {
            Host::Ip(addr) => Some(*addr),
            Host::Domain(_) => None,
        }
    }

    /// The host name, for a target the proxy resolves.
    pub fn domain_name(&self) -> Option<&str> {
        match &self.host {
            Host::Ip(_) => None,
            Host::Domain(name) => Some(name),
        }
    }

    /// `host:port` as an HTTP `authority` (RFC 9112 section 3.2.3), IPv6 in brackets.
    pub fn authority(&self) -> String {
        self.to_string()
    }
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Target {
        Target::ip(addr.ip(), addr.port())
    }
}

/// Shows the authority: `example.com:443`, `192.0.2.1:80`, `[::1]:8080`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
            Host::Ip(IpAddr::V4(v4)) => write!(f, "{v4}:{}", self.port),
            Host::Domain(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// A username and password for the proxy, as bytes: already percent-decoded from the proxy
/// URL, in whatever encoding the proxy expects (RFC 7617 section 2.1 suggests UTF-8; RFC 1929
/// says nothing). `Debug` shows the username only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: Vec<u8>,
    pub password: Vec<u8>,
}

impl Credentials {
    pub fn new(username: impl Into<Vec<u8>>, password: impl Into<Vec<u8>>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a proxy handshake failed, or why a request could not be built. After any error the
/// connection to the proxy is of no further use: close it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyError {
    // Reading a proxy URL.
    /// A proxy URL that cannot be used; the text shows it (credentials hidden) and why.
    InvalidProxyUrl(String),

    // Building a request.
    /// A host name that is empty, longer than [`MAX_DOMAIN_LEN`] bytes, or has a byte that a
    /// URL's host cannot have.
    InvalidDomain(String),
    /// Credentials the protocol cannot carry; the text names the rule.
    InvalidCredentials(&'static str),
    /// An extra header whose name is not an RFC 9110 token.
    InvalidHeaderName(String),
    /// An extra header whose value has CR, LF or another control character.
    InvalidHeaderValue(String),
    /// An extra header that the `CONNECT` request writes itself (`Host`, and
    /// `Proxy-Authorization` when credentials are given) or may not carry (`Content-Length`,
    /// `Transfer-Encoding`: RFC 9110 section 9.3.6, "A CONNECT request message does not have
    /// content").
    ForbiddenHeader(String),

    // Either protocol.
    /// `receive` was called again after the handshake succeeded or failed.
    Finished,

    // HTTP CONNECT: the proxy's response.
    /// The response's header block (with any interim 1xx responses before it) did not end
    /// within `limit` bytes.
    HeaderTooLarge { limit: usize },
    /// A response with more than `limit` header fields.
    TooManyHeaders { limit: usize },
    /// Not an HTTP/1.x response: the text says which part was wrong.
    Malformed(&'static str),
    /// The proxy answered with a status other than 2xx: 407 (authentication required), 403,
    /// 502 (it could not reach the target), and so on.
    Refused {
        status: u16,
        reason: String,
        /// The `Proxy-Authenticate` challenges (RFC 9110 section 11.7.1), several fields
        /// joined with ", ": which schemes the proxy accepts, for a 407.
        authenticate: Option<String>,
    },

    // SOCKS5: the proxy's replies.
    /// A version field that is not what RFC 1928 / RFC 1929 prescribe. `field` names the
    /// message (an HTTP proxy answering a SOCKS5 greeting shows up here, with `got` = `b'H'`).
    BadVersion {
        field: &'static str,
        expected: u8,
        got: u8,
    },
    /// The proxy accepts none of the offered methods (RFC 1928 section 3: `X'FF'`).
    NoAcceptableMethods,
    /// The proxy selected a method that was not offered (user/password without credentials,
    /// GSSAPI, ...).
    UnofferedMethod(u8),
    /// Username/password authentication failed (RFC 1929 section 2: a non-zero STATUS).
    AuthFailed { status: u8 },
    /// The proxy could not or would not connect to the target (RFC 1928 section 6: REP).
    ConnectFailed(ReplyCode),
    /// The reply's RSV field was not `X'00'` (RFC 1928 section 6).
    BadReserved(u8),
    /// The reply's ATYP field is none of IPv4 (1), domain name (3), IPv6 (4).
    UnknownAddressType(u8),
    /// The proxy sent more bytes than the answer to the request it was sent, or sent them
    /// before the request was written out: the proxy can only speak after it has heard the
    /// whole request. `step` names the answer the machine was waiting for.
    UnexpectedBytes { step: &'static str },
}

impl ProxyError {
    /// Takes an error of the shared header reader or header checks.
    fn from_handshake(e: HandshakeError, limit: usize) -> ProxyError {
        use HandshakeError as H;
        match e {
            H::HeaderTooLarge { .. } => ProxyError::HeaderTooLarge { limit },
            H::TooManyHeaders { limit } => ProxyError::TooManyHeaders { limit },
            H::Malformed(what) => ProxyError::Malformed(what),
            H::Finished => ProxyError::Finished,
            H::InvalidHeaderName(name) => ProxyError::InvalidHeaderName(name),
            H::InvalidHeaderValue(name) => ProxyError::InvalidHeaderValue(name),
            H::ReservedHeader(name) => ProxyError::ForbiddenHeader(name),
            _ => ProxyError::Malformed("unexpected header error"),
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProxyError as E;
        match self {
            E::InvalidProxyUrl(why) => write!(f, "invalid proxy URL {why}"),
            E::InvalidDomain(name) => write!(f, "invalid proxy target host name {name:?}"),
            E::InvalidCredentials(why) => write!(f, "invalid proxy credentials: {why}"),
            E::InvalidHeaderName(name) => write!(f, "invalid header name {name:?}"),
            E::InvalidHeaderValue(name) => write!(f, "invalid value for header {name:?}"),
            E::ForbiddenHeader(name) => {
                write!(f, "header {name:?} may not be given for a CONNECT request")
            }
            E::Finished => f.write_str("the proxy handshake is already over"),
            E::HeaderTooLarge { limit } => {
                write!(f, "proxy response header block longer than {limit} bytes")
            }
            E::TooManyHeaders { limit } => {
                write!(f, "proxy response has more than {limit} header fields")
            }
            E::Malformed(what) => write!(f, "malformed HTTP from the proxy: {what}"),
            E::Refused {
                status,
                reason,
                authenticate,
            } => {
                write!(f, "proxy answered CONNECT with {status} {reason}")?;
                match authenticate {
                    Some(challenge) => write!(f, " (Proxy-Authenticate: {challenge})"),
                    None => Ok(()),
                }
            }
            E::BadVersion {
                field,
                expected,
                got,
            } => write!(
                f,
                "SOCKS5 {field}: version {got:#04x}, expected {expected:#04x}"
            ),
            E::NoAcceptableMethods => {
                f.write_str("SOCKS5 proxy accepts none of the offered authentication methods")
            }
            E::UnofferedMethod(m) => {
                write!(
                    f,
                    "SOCKS5 proxy selected method {m:#04x}, which was not offered"
                )
            }
            E::AuthFailed { status } => write!(
                f,
                "SOCKS5 proxy rejected the username and password (status {status:#04x})"
            ),
            E::ConnectFailed(code) => write!(f, "SOCKS5 proxy could not connect: {code}"),
            E::BadReserved(b) => write!(f, "SOCKS5 reply RSV is {b:#04x}, expected 0x00"),
            E::UnknownAddressType(t) => write!(f, "SOCKS5 reply has unknown ATYP {t:#04x}"),
            E::UnexpectedBytes { step } => write!(
                f,
                "SOCKS5 proxy sent bytes it could not have been asked for, waiting for the {step}"
            ),
        }
    }
}

impl std::error::Error for ProxyError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV6};

    #[test]
    fn target_authority_brackets_ipv6_only() {
        let v4 = Target::ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 443);
        assert_eq!(v4.authority(), "192.0.2.1:443");
        let v6: Target = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 8080, 0, 7)).into();
        assert_eq!(v6.authority(), "[::1]:8080");
        let name = Target::domain("server.example.com", 80).unwrap();
        assert_eq!(name.authority(), "server.example.com:80");
        assert_eq!(format!("{name:?}"), "Target(server.example.com:80)");
    }

    #[test]
    fn target_new_tells_literals_from_names() {
        let t = Target::new("2001:db8::1", 1).unwrap();
        assert_eq!(t.ip_addr(), Some("2001:db8::1".parse().unwrap()));
        let t = Target::new("[2001:db8::1]", 1).unwrap();
        assert_eq!(t.ip_addr(), Some("2001:db8::1".parse().unwrap()));
        let t = Target::new("127.0.0.1", 1).unwrap();
        assert_eq!(t.ip_addr(), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let t = Target::new("Example.COM", 1).unwrap();
        assert_eq!((t.domain_name(), t.ip_addr()), (Some("Example.COM"), None));
        assert_eq!(t.port(), 1);
        assert!(Target::new("[example.com]", 1).is_err());
    }

    #[test]
    fn target_from_url_uses_host_and_port() {
        let url = Url::parse("wss://[::1]/chat").unwrap();
        assert_eq!(Target::from_url(&url).unwrap().authority(), "[::1]:443");
        let url = Url::parse("ws://echo.example:9001").unwrap();
        assert_eq!(
            Target::from_url(&url).unwrap().authority(),
            "echo.example:9001"
        );
    }

    #[test]
    fn domain_is_1_to_255_bytes_of_reg_name() {
        assert!(Target::domain(&"a".repeat(255), 1).is_ok());
        assert!(Target::domain("xn--bcher-kva.example", 1).is_ok());
        for bad in [
            String::new(),
            "a".repeat(256),
            "a b".into(),
            "a:1".into(),
            "a/b".into(),
            "a\r\nHost: x".into(),
            "a@b".into(),
            "[::1]".into(),
            "bücher.example".into(),
        ] {
            assert_eq!(
                Target::domain(&bad, 1),
                Err(ProxyError::InvalidDomain(bad.clone())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials::new("alice", "s3cret");
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn errors_display_their_details() {
        let e = ProxyError::Refused {
            status: 407,
            reason: "Proxy Authentication Required".into(),
            authenticate: Some("Basic realm=\"proxy\"".into()),
        };
        assert_eq!(
            e.to_string(),
            "proxy answered CONNECT with 407 Proxy Authentication Required \
             (Proxy-Authenticate: Basic realm=\"proxy\")"
        );
        let e = ProxyError::BadVersion {
            field: "method selection VER",
            expected: 5,
            got: b'H',
        };
        assert_eq!(
            e.to_string(),
            "SOCKS5 method selection VER: version 0x48, expected 0x05"
        );
        let e: Box<dyn std::error::Error> =
            Box::new(ProxyError::ConnectFailed(ReplyCode::ConnectionRefused));
        assert_eq!(
            e.to_string(),
            "SOCKS5 proxy could not connect: connection refused (REP 0x05)"
        );
    }
}
