//! Proxy URLs and the `no_proxy` list: which proxy a client uses, and which hosts bypass it.
//! Pure text rules, no environment and no I/O (the runtime reads the environment and hands
//! the strings here).
//!
//! A proxy URL is `scheme://[user[:password]@]host[:port][/]`:
//!
//! | scheme | handshake | the target's name is resolved by | default port |
//! | --- | --- | --- | --- |
//! | `http` (or no scheme, as curl reads `host:port`) | HTTP `CONNECT` | the proxy | 80 |
//! | `https` | HTTP `CONNECT` over TLS to the proxy | the proxy | 443 |
//! | `socks5` | SOCKS5 | the client | 1080 |
//! | `socks5h` | SOCKS5 | the proxy | 1080 |
//!
//! User and password are percent-decoded (`%40` for `@`, `%3A` for `:`).

use super::{Credentials, ProxyError};
use std::fmt;
use std::net::IpAddr;

/// The kind of proxy a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyScheme {
    /// HTTP `CONNECT` on a plain TCP connection to the proxy.
    Http,
    /// HTTP `CONNECT` on a TLS connection to the proxy.
    Https,
    /// SOCKS5; the client resolves the target's name and sends the address.
    Socks5,
    /// SOCKS5; the proxy resolves the target's name.
    Socks5h,
}

impl ProxyScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            ProxyScheme::Http => 80,
            ProxyScheme::Https => 443,
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => 1080,
        }
    }
}

/// A parsed proxy URL. `Display` shows it without the credentials (safe to log).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub scheme: ProxyScheme,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub credentials: Option<Credentials>,
}

impl ProxyUrl {
    /// Parses `scheme://[user[:password]@]host[:port][/]`. A URL without `://` is an `http`
    /// proxy (as curl reads `proxy.example:3128`). A path other than `/`, a query or a
    /// fragment is refused, as is an unknown scheme (`socks4`, ...).
    pub fn parse(text: &str) -> Result<ProxyUrl, ProxyError> {
        let bad = |why: &str| ProxyError::InvalidProxyUrl(format!("{}: {why}", redact(text)));
        let text = text.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "http" => ProxyScheme::Http,
                    "https" => ProxyScheme::Https,
                    "socks5" => ProxyScheme::Socks5,
                    "socks5h" => ProxyScheme::Socks5h,
                    _ => return Err(bad("unsupported scheme (http, https, socks5, socks5h)")),
                };
                (scheme, rest)
            }
            None => (ProxyScheme::Http, text),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path, query or fragment"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user).ok_or_else(|| bad("bad %-escape in user"))?;
                let pass = percent_decode(pass).ok_or_else(|| bad("bad %-escape in password"))?;
                Some(Credentials::new(user, pass))
            }
        };
        let (host, port) = if let Some(after) = hostport.strip_prefix('[') {
            let (v6, tail) = after
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in host"))?;
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("bad IPv6 literal"));
            }
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (v6.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if !host.contains(':') && super::Target::domain(&host, 1).is_err() {
            return Err(bad("bad host name"));
        }
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(bad("bad port")),
            },
        };
        Ok(ProxyUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            credentials,
        })
    }

    /// `host:port`, IPv6 in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Without credentials: `socks5h://proxy.example:1080`.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority())
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self}")?;
        if let Some(c) = &self.credentials {
            write!(f, ", user {:?}", String::from_utf8_lossy(&c.username))?;
        }
        f.write_str(")")
    }
}

/// The URL as an error message may show it: the userinfo replaced by `***`.
fn redact(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, text),
    };
    let rest = match rest.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => rest.to_owned(),
    };
    match scheme {
        Some(s) => format!("{s}://{rest}"),
        None => rest,
    }
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Whether `host` (a name or an IP literal, IPv6 with or without brackets) on `port` is
/// exempt from proxying by a `no_proxy` list, read as curl and Python's `urllib` read it:
///
/// * entries are separated by commas (spaces around them are ignored; empty ones skipped);
/// * `*` alone exempts every host;
/// * a name matches itself and every subdomain, case-insensitively: `example.com`,
///   `.example.com` and `*.example.com` all match `example.com` and `a.b.example.com`,
///   never `notexample.com`;
/// * an IP literal (`127.0.0.1`, `::1`, `[::1]`) matches that address given as a literal;
/// * a CIDR range (`10.0.0.0/8`, `fd00::/8`) matches addresses given as literals in it;
/// * an entry may end in `:port` (`[::1]:8080` for IPv6), and then matches that port only.
///
/// Names are not resolved: `localhost` does not match `127.0.0.1`, nor the reverse.
pub fn no_proxy_matches(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok();
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| entry_matches(entry, &host, host_ip, port))
}

fn entry_matches(entry: &str, host: &str, host_ip: Option<IpAddr>, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let (pattern, entry_port) = split_entry_port(entry);
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    if let Some((net, bits)) = pattern.split_once('/') {
        let (Ok(net), Ok(bits), Some(ip)) = (net.parse::<IpAddr>(), bits.parse::<u8>(), host_ip)
        else {
            return false;
        };
        return in_cidr(ip, net, bits);
    }
    if let Ok(ip) = pattern.parse::<IpAddr>() {
        return host_ip == Some(ip);
    }
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let name = name.strip_prefix('.').unwrap_or(name);
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() || host_ip.is_some() {
        return false;
    }
    host == name
        || (host.len() > name.len()
            && host.ends_with(name.as_str())
            && host.as_bytes()[host.len() - name.len() - 1] == b'.')
}

/// Splits `host:port`, `[v6]:port`, `[v6]`, `v6` (no port: an IPv6 literal has several
/// colons) and `v6/bits`.
fn split_entry_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(after) = entry.strip_prefix('[') {
        if let Some((v6, tail)) = after.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (v6, port);
        }
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        // An IPv4-mapped IPv6 host against an IPv4 range.
        (IpAddr::V6(ip), IpAddr::V4(_)) => ip
            .to_ipv4_mapped()
            .is_some_and(|v4| in_cidr(IpAddr::V4(v4), net, bits)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme_with_default_ports() {
        let u = ProxyUrl::parse("http://proxy.example:3128").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (ProxyScheme::Http, "proxy.example", 3128)
        );
        assert_eq!(u.credentials, None);
        assert_eq!(ProxyUrl::parse("http://p/").unwrap().port, 80);
        assert_eq!(ProxyUrl::parse("https://p").unwrap().port, 443);
        let u = ProxyUrl::parse("SOCKS5://p").unwrap();
        assert_eq!((u.scheme, u.port), (ProxyScheme::Socks5, 1080));
        assert_eq!(
            ProxyUrl::parse("socks5h://p:9").unwrap().scheme,
            ProxyScheme::Socks5h
        );
        let u = ProxyUrl::parse("p.example:8080").unwrap();
        assert_eq!((u.scheme, u.port), (ProxyScheme::Http, 8080));
        let u = ProxyUrl::parse("http://[::1]:3128").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 3128));
        assert_eq!(u.to_string(), "http://[::1]:3128");
        assert_eq!(ProxyUrl::parse("socks5://[::1]").unwrap().port, 1080);
    }

    #[test]
    fn credentials_are_percent_decoded_and_never_shown() {
        let u = ProxyUrl::parse("http://al%40ice:p%3Ass@w@proxy:1").unwrap();
        assert_eq!(u.credentials, Some(Credentials::new("al@ice", "p:ss@w")));
        assert_eq!(u.to_string(), "http://proxy:1");
        let shown = format!("{u:?}");
        assert!(
            shown.contains("al@ice") && !shown.contains("p:ss"),
            "{shown}"
        );
        let u = ProxyUrl::parse("socks5://bob@proxy").unwrap();
        assert_eq!(u.credentials, Some(Credentials::new("bob", "")));
    }

    #[test]
    fn refuses_what_is_not_a_proxy_url() {
        for bad in [
            "socks4://p:1",
            "ftp://p",
            "http://",
            "http://:80",
            "http://p:0",
            "http://p:99999",
            "http://p:+80",
            "http://p/path",
            "http://p?q",
            "http://[::1",
            "http://[zz]:1",
            "http://p q:1",
            "http://u:%zz@p",
        ] {
            assert!(ProxyUrl::parse(bad).is_err(), "{bad}");
        }
        let e = ProxyUrl::parse("ftp://user:secret@p").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn no_proxy_names_match_themselves_and_subdomains() {
        for list in [
            "example.com",
            ".example.com",
            "*.example.com",
            "EXAMPLE.com.",
        ] {
            assert!(no_proxy_matches(list, "example.com", 80), "{list}");
            assert!(no_proxy_matches(list, "a.b.Example.com", 80), "{list}");
            assert!(!no_proxy_matches(list, "notexample.com", 80), "{list}");
            assert!(!no_proxy_matches(list, "example.com.evil", 80), "{list}");
        }
        assert!(no_proxy_matches("other, localhost ,x", "localhost", 1));
        assert!(no_proxy_matches("localhost", "localhost.", 1));
        assert!(!no_proxy_matches("localhost", "127.0.0.1", 1));
        assert!(!no_proxy_matches("", "localhost", 1));
        assert!(!no_proxy_matches(" , ,", "localhost", 1));
    }

    #[test]
    fn no_proxy_star_ips_cidrs_and_ports() {
        assert!(no_proxy_matches("*", "anything", 1));
        assert!(no_proxy_matches("a, *", "1.2.3.4", 1));
        assert!(!no_proxy_matches("*.", "anything", 1));
        assert!(no_proxy_matches("127.0.0.1", "127.0.0.1", 1));
        assert!(!no_proxy_matches("127.0.0.1", "127.0.0.2", 1));
        assert!(no_proxy_matches("::1", "[::1]", 1));
        assert!(no_proxy_matches("[::1]", "::1", 1));
        assert!(no_proxy_matches("10.0.0.0/8", "10.200.1.1", 1));
        assert!(!no_proxy_matches("10.0.0.0/8", "11.0.0.1", 1));
        assert!(!no_proxy_matches("10.0.0.0/8", "ten.example", 1));
        assert!(no_proxy_matches("0.0.0.0/0", "8.8.8.8", 1));
        assert!(no_proxy_matches("192.168.1.7/32", "192.168.1.7", 1));
        assert!(no_proxy_matches("fd00::/8", "fdab::1", 1));
        assert!(!no_proxy_matches("fd00::/8", "fe80::1", 1));
        assert!(!no_proxy_matches("fd00::/8", "10.0.0.1", 1));
        assert!(no_proxy_matches("10.0.0.0/8", "::ffff:10.1.2.3", 1));
        assert!(!no_proxy_matches("10.0.0.0/33", "10.0.0.1", 1));
        assert!(no_proxy_matches(
            "example.com:8080",
            "www.example.com",
            8080
        ));
        assert!(!no_proxy_matches(
            "example.com:8080",
            "www.example.com",
            443
        ));
        assert!(no_proxy_matches("[::1]:9", "::1", 9));
        assert!(!no_proxy_matches("[::1]:9", "::1", 10));
        assert!(no_proxy_matches("127.0.0.1:80", "127.0.0.1", 80));
    }
}
