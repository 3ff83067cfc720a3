//! WebSocket URIs (RFC 6455 section 3): `ws://host[:port]/path?query` and `wss://...`.
//!
//! Only what the handshake needs: scheme, host, port and the resource name. Deliberately
//! strict, because the pieces go straight into the request line and the Host header:
//! anything that could change their meaning (spaces, control characters, non-ASCII) is
//! refused, and the caller percent-encodes.

use std::fmt;
use std::net::Ipv6Addr;

/// A parsed `ws://` or `wss://` URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Url {
    /// `wss` (TLS).
    pub secure: bool,
    /// Host name (ASCII-lowercased), IPv4 address, or IPv6 address without brackets.
    pub host: String,
    /// The explicit port, or 80 / 443 by scheme.
    pub port: u16,
    /// Path and query as sent in the request line: `/` when the URL has no path.
    pub resource: String,
}

/// Why a string is not a WebSocket URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is missing or is not `ws` / `wss` (RFC 6455 section 3).
    BadScheme,
    /// No `//` authority, or an empty host.
    MissingHost,
    /// A host with characters a host name cannot have, or a bracketed literal that is not an
    /// IPv6 address (zone identifiers are not supported).
    BadHost,
    /// A port that is not a decimal number in 1-65535.
    BadPort,
    /// `user:password@` before the host. Rejected rather than ignored: the handshake has no
    /// place to send credentials, and a URL like `ws://good.example@evil.example/` would
    /// otherwise connect somewhere the reader did not expect.
    UserInfo,
    /// A `#fragment`: RFC 6455 section 3 says fragments "MUST NOT be used" (escape `#` as
    /// `%23`).
    Fragment,
    /// A path or query with a space, a control character or non-ASCII (percent-encode them).
    BadResource,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::BadScheme => "URL scheme must be ws or wss",
            UrlError::MissingHost => "URL has no host",
            UrlError::BadHost => "URL host is invalid",
            UrlError::BadPort => "URL port must be a number in 1-65535",
            UrlError::UserInfo => "URL may not contain user information",
            UrlError::Fragment => "WebSocket URL may not contain a fragment",
            UrlError::BadResource => "URL path or query has a space, control or non-ASCII byte",
        })
    }
}

impl std::error::Error for UrlError {}

impl Url {
    /// Parses a WebSocket URL. The scheme is case-insensitive; user information is rejected
    /// ([`UrlError::UserInfo`]).
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        let (scheme, rest) = s.split_once(':').ok_or(UrlError::BadScheme)?;
        let secure = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else {
            return Err(UrlError::BadScheme);
        };
        let rest = rest.strip_prefix("//").ok_or(UrlError::MissingHost)?;

        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            // RFC 3986 section 3.2.3: an empty port means the scheme's default.
            None | Some("") => default_port(secure),
            Some(digits) => parse_port(digits)?,
        };

        if resource.contains('#') {
            return Err(UrlError::Fragment);
        }
        if !resource.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UrlError::BadResource);
        }
        let resource = if resource.starts_with('/') {
            resource.to_owned()
        } else {
            // Empty, or a bare query: the path is "/" (RFC 6455 section 3).
            format!("/{resource}")
        };
        Ok(Url {
            secure,
            host,
            port,
            resource,
        })
    }

    /// The `Host` header value: the host (IPv6 in brackets), with `:port` only when the port
    /// is not the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port(self.secure) {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        write!(f, "{scheme}://{}{}", self.host_header(), self.resource)
    }
}

fn default_port(secure: bool) -> u16 {
    if secure {
        443
    } else {
        80
    }
}

/// Splits `host[:port]` or `[v6][:port]`; the host comes back validated and lowercased.
fn split_host_port(authority: &str) -> Result<(String, Option<&str>), UrlError> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (literal, after) = rest.split_once(']').ok_or(UrlError::BadHost)?;
        literal.parse::<Ipv6Addr>().map_err(|_| UrlError::BadHost)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlError::BadHost)?),
        };
        return Ok((literal.to_ascii_lowercase(), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    // RFC 3986 reg-name: unreserved / pct-encoded / sub-delims. IPv4 literals fit too.
    let reg_name = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b);
    if !host.bytes().all(reg_name) {
        return Err(UrlError::BadHost);
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(digits: &str) -> Result<u16, UrlError> {
    // `u16::from_str` would also accept a leading '+'.
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::BadPort);
    }
    match digits.parse::<u16>() {
        Ok(0) | Err(_) => Err(UrlError::BadPort),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn ws_defaults_to_port_80_and_root_resource() {
        let u = url("ws://example.com");
        assert_eq!(
            u,
            Url {
                secure: false,
                host: "example.com".into(),
                port: 80,
                resource: "/".into()
            }
        );
        assert_eq!(u.host_header(), "example.com");
    }

    #[test]
    fn wss_defaults_to_port_443() {
        let u = url("wss://example.com/");
        assert!(u.secure);
        assert_eq!(u.port, 443);
        assert_eq!(u.host_header(), "example.com");
    }

    #[test]
    fn scheme_and_host_are_case_insensitive() {
        let u = url("WsS://Example.COM/Path");
        assert!(u.secure);
        assert_eq!(u.host, "example.com");
        // The path is case-sensitive and kept as written.
        assert_eq!(u.resource, "/Path");
    }

    #[test]
    fn host_header_has_port_only_when_not_default() {
        assert_eq!(url("ws://h:8080/").host_header(), "h:8080");
        assert_eq!(url("ws://h:80/").host_header(), "h");
        assert_eq!(url("ws://h:443/").host_header(), "h:443");
        assert_eq!(url("wss://h:443/").host_header(), "h");
        assert_eq!(url("wss://h:80/").host_header(), "h:80");
    }

    #[test]
    fn ipv6_host_is_stored_without_brackets_and_sent_with_them() {
        let u = url("ws://[::1]:9000/chat");
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(u.host_header(), "[::1]:9000");
        assert_eq!(url("wss://[2001:DB8::1]").host_header(), "[2001:db8::1]");
    }

    #[test]
    fn path_and_query_form_the_resource_name() {
        assert_eq!(url("ws://h/a/b?x=1&y=%20").resource, "/a/b?x=1&y=%20");
        assert_eq!(url("ws://h?x=1").resource, "/?x=1");
        assert_eq!(url("ws://h:81?").resource, "/?");
    }

    #[test]
    fn empty_port_means_default() {
        assert_eq!(url("ws://h:/").port, 80);
    }

    #[test]
    fn other_schemes_are_refused() {
        for s in ["http://h/", "https://h/", "h/path", "", "wss", "w s://h"] {
            assert_eq!(Url::parse(s), Err(UrlError::BadScheme), "{s}");
        }
    }

    #[test]
    fn missing_host_is_refused() {
        for s in [
            "ws:",
            "ws:/h",
            "ws://",
            "ws:///path",
            "ws://:80/",
            "wss://?q",
        ] {
            assert_eq!(Url::parse(s), Err(UrlError::MissingHost), "{s}");
        }
    }

    #[test]
    fn bad_hosts_are_refused() {
        for s in [
            "ws://h st/",
            "ws://hé/",
            "ws://[::1/",
            "ws://[nothex::1]/",
            "ws://[fe80::1%25eth0]/",
            "ws://[::1]x/",
            "ws://h\r\nX: y/",
        ] {
            assert_eq!(Url::parse(s), Err(UrlError::BadHost), "{s:?}");
        }
    }

    #[test]
    fn bad_ports_are_refused() {
        for s in [
            "ws://h:0/",
            "ws://h:65536/",
            "ws://h:+80/",
            "ws://h:8a/",
            "ws://[::1]:x/",
            "ws://h:1:2/",
        ] {
            assert_eq!(Url::parse(s), Err(UrlError::BadPort), "{s}");
        }
        assert_eq!(url("ws://h:65535").port, 65535);
    }

    #[test]
    fn userinfo_is_rejected() {
        assert_eq!(Url::parse("ws://user:pw@h/"), Err(UrlError::UserInfo));
        assert_eq!(
            Url::parse("ws://good.example@evil.example/"),
            Err(UrlError::UserInfo)
        );
        // An '@' in the path is just a character.
        assert_eq!(url("ws://h/a@b").resource, "/a@b");
    }

    #[test]
    fn fragment_must_not_be_used_rfc6455_section_3() {
        assert_eq!(Url::parse("ws://h/path#frag"), Err(UrlError::Fragment));
        assert_eq!(Url::parse("ws://h#frag"), Err(UrlError::Fragment));
        assert_eq!(url("ws://h/path%23frag").resource, "/path%23frag");
    }

    #[test]
    fn resources_that_would_break_the_request_line_are_refused() {
        for s in ["ws://h/a b", "ws://h/a\r\nX: y", "ws://h/é", "ws://h/?q=\t"] {
            assert_eq!(Url::parse(s), Err(UrlError::BadResource), "{s:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["ws://h/", "wss://[::1]:9000/a?b", "ws://h:8080/x"] {
            assert_eq!(url(s).to_string(), s);
            assert_eq!(url(&url(s).to_string()), url(s));
        }
    }
}
