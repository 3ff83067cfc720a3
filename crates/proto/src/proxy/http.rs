//! An HTTP `CONNECT` tunnel, client side (RFC 9110 section 9.3.6): build the request, then
//! read the proxy's response.
//!
//! ```text
//! CONNECT server.example.com:443 HTTP/1.1
//! Host: server.example.com:443
//! Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==
//!
//! ```
//!
//! Any 2xx answer opens the tunnel right after its header block; everything else refuses it.
//! Interim 1xx responses before the final one are skipped (RFC 9110 section 15.2: a client
//! "MUST be able to parse one or more 1xx responses received prior to a final response").

use super::{Credentials, ProxyError, Target};
use crate::handshake::head::{HeadReader, Kind, StartLine};
use crate::handshake::{check_header, values, write_header, Header, Limits};
use base64::Engine as _;

/// What the request carries besides the target.
#[derive(Clone, Debug, Default)]
pub struct HttpConnectOptions {
    /// Sent as `Proxy-Authorization: Basic base64(username ":" password)` (RFC 7617).
    pub credentials: Option<Credentials>,
    /// More headers (`User-Agent`, or `Proxy-Authorization` with another scheme when
    /// `credentials` is `None`), written after the request's own.
    pub headers: Vec<(String, String)>,
    /// Bounds on the response's header block.
    pub limits: Limits,
}

/// A tunnel request in progress: the bytes to send, and the state to read the answer.
pub struct HttpConnect {
    request: Vec<u8>,
    limits: Limits,
    reader: HeadReader,
    /// Bytes fed to `reader` by earlier calls: the start of a header block still incomplete.
    buffered: usize,
    /// Bytes of the interim (1xx) responses already read; they count against the limit.
    interim: usize,
    finished: bool,
}

/// The request holds the credentials: show only its length.
impl std::fmt::Debug for HttpConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnect")
            .field("request_len", &self.request.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// A 2xx answer: the tunnel is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Established {
    pub status: u16,
    /// The final response's header fields. `Content-Length` and `Transfer-Encoding` among
    /// them mean nothing: RFC 9110 section 9.3.6, a client "MUST ignore" them in a 2xx answer
    /// to `CONNECT`.
    pub headers: Vec<Header>,
    /// Offset, in the `input` of the `receive` call that returned this, of the first byte
    /// after the header block: data from the origin server that came in the same read.
    pub body_start: usize,
}

/// Headers the request writes itself or may not carry.
const FORBIDDEN: &[&str] = &["Host", "Content-Length", "Transfer-Encoding"];
const FORBIDDEN_WITH_CREDENTIALS: &[&str] = &[
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Proxy-Authorization",
];

impl HttpConnect {
    /// Builds the request for `target`. Fails on credentials that `Basic` cannot carry (RFC
    /// 7617 section 2: a user-id with `:`, a control character in either part) and on extra
    /// headers with a bad name or value, or that the request writes itself.
    pub fn new(target: &Target, opts: &HttpConnectOptions) -> Result<HttpConnect, ProxyError> {
        let forbidden = match opts.credentials {
            Some(_) => FORBIDDEN_WITH_CREDENTIALS,
            None => FORBIDDEN,
        };
        for (name, value) in &opts.headers {
            check_header(name, value, forbidden).map_err(|e| ProxyError::from_handshake(e, 0))?;
        }
        let authority = target.authority();
        let mut request = Vec::with_capacity(128);
        // RFC 9112 section 3.2.3: the request-target is the authority form, `host:port`.
        request.extend_from_slice(b"CONNECT ");
        request.extend_from_slice(authority.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\n");
        // RFC 9112 section 3.2: every HTTP/1.1 request has a Host.
        write_header(&mut request, "Host", authority.as_bytes());
        if let Some(c) = &opts.credentials {
            let value = basic_authorization(c)?;
            write_header(&mut request, "Proxy-Authorization", value.as_bytes());
        }
        for (name, value) in &opts.headers {
            write_header(&mut request, name, value.as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        Ok(HttpConnect {
            request,
            limits: opts.limits.clone(),
            reader: HeadReader::new(Kind::Response, opts.limits.clone()),
            buffered: 0,
            interim: 0,
            finished: false,
        })
    }

    /// The request bytes to send.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Feeds the proxy's bytes as they arrive. `Ok(None)`: the answer is not complete yet.
    /// `Ok(Some(established))`: the tunnel is open and `input[established.body_start..]`
    /// already belongs to it. Any error ends the handshake; after either end every call
    /// answers [`ProxyError::Finished`].
    pub fn receive(&mut self, input: &[u8]) -> Result<Option<Established>, ProxyError> {
        if self.finished {
            return Err(ProxyError::Finished);
        }
        let result = self.receive_inner(input);
        // The reader has freed its buffer by then: it finishes with the block it returns.
        if !matches!(result, Ok(None)) {
            self.finished = true;
        }
        result
    }

    fn receive_inner(&mut self, input: &[u8]) -> Result<Option<Established>, ProxyError> {
        let mut offset = 0;
        loop {
            let rest = &input[offset..];
            let fed = self
                .reader
                .feed(rest)
                .map_err(|e| ProxyError::from_handshake(e, self.limits.max_header_bytes))?;
            let Some((head, used)) = fed else {
                // The reader kept all of `rest` (or failed above).
                self.buffered += rest.len();
                return Ok(None);
            };
            let head_len = self.buffered + used;
            offset += used;
            let StartLine::Response { status, reason } = head.start else {
                return Err(ProxyError::Malformed("expected a status line"));
            };
            match status {
                200..=299 => {
                    return Ok(Some(Established {
                        status,
                        headers: head.headers,
                        body_start: offset,
                    }))
                }
                // 101 is a 1xx in form, but it hands the connection over to a protocol that
                // nobody asked for (RFC 9110 section 15.2.2): no tunnel, so a refusal.
                100..=199 if status != 101 => {
                    // Interim: the final response follows, within what is left of the limit.
                    self.interim += head_len;
                    self.buffered = 0;
                    let limits = Limits {
                        max_header_bytes: self.limits.max_header_bytes.saturating_sub(self.interim),
                        max_headers: self.limits.max_headers,
                    };
                    self.reader = HeadReader::new(Kind::Response, limits);
                }
                _ => {
                    return Err(ProxyError::Refused {
                        status,
                        reason,
                        authenticate: joined(&head.headers, "Proxy-Authenticate"),
                    })
                }
            }
        }
    }
}

/// `Basic base64(user-id ":" password)` (RFC 7617 section 2).
fn basic_authorization(c: &Credentials) -> Result<String, ProxyError> {
    if c.username.contains(&b':') {
        // The first colon separates the two: the user-id cannot hold one.
        return Err(ProxyError::InvalidCredentials(
            "a Basic user-id may not contain ':' (RFC 7617 section 2)",
        ));
    }
    let control = |b: &u8| b.is_ascii_control();
    if c.username.iter().any(control) || c.password.iter().any(control) {
        return Err(ProxyError::InvalidCredentials(
            "Basic credentials may not contain control characters (RFC 7617 section 2)",
        ));
    }
    let mut pass = Vec::with_capacity(c.username.len() + 1 + c.password.len());
    pass.extend_from_slice(&c.username);
    pass.push(b':');
    pass.extend_from_slice(&c.password);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&pass);
    Ok(format!("Basic {encoded}"))
}

/// The values of every header named `name`, joined with ", " (RFC 9110 section 5.3).
fn joined(headers: &[Header], name: &str) -> Option<String> {
    let mut all: Option<String> = None;
    for value in values(headers, name) {
        let value = String::from_utf8_lossy(value);
        match &mut all {
            None => all = Some(value.into_owned()),
            Some(all) => {
                all.push_str(", ");
                all.push_str(&value);
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn target() -> Target {
        Target::domain("server.example.com", 443).unwrap()
    }

    fn connect(opts: &HttpConnectOptions) -> HttpConnect {
        HttpConnect::new(&target(), opts).unwrap()
    }

    fn request_text(target: &Target, opts: &HttpConnectOptions) -> String {
        let c = HttpConnect::new(target, opts).unwrap();
        String::from_utf8(c.request().to_vec()).unwrap()
    }

    fn with_auth(user: &str, pass: &str) -> HttpConnectOptions {
        HttpConnectOptions {
            credentials: Some(Credentials::new(user, pass)),
            ..Default::default()
        }
    }

    fn err(resp: &[u8]) -> ProxyError {
        connect(&HttpConnectOptions::default())
            .receive(resp)
            .unwrap_err()
    }

    fn limits(bytes: usize, headers: usize) -> HttpConnectOptions {
        HttpConnectOptions {
            limits: Limits {
                max_header_bytes: bytes,
                max_headers: headers,
            },
            ..Default::default()
        }
    }

    const OK: &[u8] = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\n";
    /// A TLS ClientHello's first bytes, as the tunnel's first data.
    const TUNNEL: &[u8] = b"\x16\x03\x01\x02\x00\x01";

    #[test]
    fn request_is_authority_form_with_host_rfc9110_9_3_6() {
        assert_eq!(
            request_text(&target(), &HttpConnectOptions::default()),
            "CONNECT server.example.com:443 HTTP/1.1\r\n\
             Host: server.example.com:443\r\n\
             \r\n"
        );
    }

    #[test]
    fn request_brackets_ipv6_and_writes_ipv4_as_is() {
        let opts = HttpConnectOptions::default();
        let v6 = Target::ip(IpAddr::V6(Ipv6Addr::LOCALHOST), 8443);
        assert_eq!(
            request_text(&v6, &opts),
            "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"
        );
        let v4 = Target::ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 80);
        assert_eq!(
            request_text(&v4, &opts),
            "CONNECT 192.0.2.7:80 HTTP/1.1\r\nHost: 192.0.2.7:80\r\n\r\n"
        );
    }

    #[test]
    fn request_carries_basic_credentials_of_rfc7617_example() {
        // RFC 7617 section 2: "Aladdin" / "open sesame".
        assert_eq!(
            request_text(&target(), &with_auth("Aladdin", "open sesame")),
            "CONNECT server.example.com:443 HTTP/1.1\r\n\
             Host: server.example.com:443\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\
             \r\n"
        );
    }

    #[test]
    fn basic_credentials_are_sent_as_given_bytes() {
        // RFC 7617 section 2.1's UTF-8 example: "test" / "123£".
        let text = request_text(&target(), &with_auth("test", "123\u{a3}"));
        assert!(text.contains("\r\nProxy-Authorization: Basic dGVzdDoxMjPCow==\r\n"));
        // Empty parts and a colon in the password are fine.
        let text = request_text(&target(), &with_auth("", "a:b"));
        assert!(text.contains("\r\nProxy-Authorization: Basic OmE6Yg==\r\n"));
    }

    #[test]
    fn basic_credentials_refuse_colon_in_user_and_controls_rfc7617_2() {
        for (user, pass) in [("a:b", "x"), ("a\r\nb", "x"), ("a", "x\0"), ("a", "\x7f")] {
            assert!(
                matches!(
                    HttpConnect::new(&target(), &with_auth(user, pass)),
                    Err(ProxyError::InvalidCredentials(_))
                ),
                "{user:?} {pass:?}"
            );
        }
    }

    #[test]
    fn request_writes_extra_headers_last_and_refuses_its_own() {
        let opts = HttpConnectOptions {
            headers: vec![
                ("User-Agent".into(), "tidewire".into()),
                ("Proxy-Authorization".into(), "Bearer abc".into()),
            ],
            ..Default::default()
        };
        assert!(request_text(&target(), &opts).ends_with(
            "Host: server.example.com:443\r\nUser-Agent: tidewire\r\n\
             Proxy-Authorization: Bearer abc\r\n\r\n"
        ));
        let with_credentials = HttpConnectOptions {
            credentials: Some(Credentials::new("u", "p")),
            ..opts
        };
        assert_eq!(
            HttpConnect::new(&target(), &with_credentials).unwrap_err(),
            ProxyError::ForbiddenHeader("Proxy-Authorization".into())
        );
        for name in ["host", "Content-Length", "transfer-encoding"] {
            let opts = HttpConnectOptions {
                headers: vec![(name.into(), "1".into())],
                ..Default::default()
            };
            assert_eq!(
                HttpConnect::new(&target(), &opts).unwrap_err(),
                ProxyError::ForbiddenHeader(name.into())
            );
        }
    }

    #[test]
    fn request_refuses_header_injection() {
        let opts = HttpConnectOptions {
            headers: vec![("X-A".into(), "v\r\n\r\nGET /evil".into())],
            ..Default::default()
        };
        assert_eq!(
            HttpConnect::new(&target(), &opts).unwrap_err(),
            ProxyError::InvalidHeaderValue("X-A".into())
        );
        let opts = HttpConnectOptions {
            headers: vec![("X A".into(), "v".into())],
            ..Default::default()
        };
        assert_eq!(
            HttpConnect::new(&target(), &opts).unwrap_err(),
            ProxyError::InvalidHeaderName("X A".into())
        );
    }

    #[test]
    fn debug_does_not_show_the_credentials() {
        let c = connect(&with_auth("Aladdin", "open sesame"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("QWxhZGRp"), "{shown}");
    }

    #[test]
    fn client_opens_tunnel_on_200_and_reports_tunnel_bytes() {
        let packet = [OK, TUNNEL].concat();
        let ok = connect(&HttpConnectOptions::default())
            .receive(&packet)
            .unwrap()
            .unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(ok.headers.len(), 1);
        assert_eq!(ok.body_start, OK.len());
        assert_eq!(&packet[ok.body_start..], TUNNEL);
    }

    #[test]
    fn client_opens_tunnel_on_any_2xx_and_http_1_0() {
        for resp in [
            &b"HTTP/1.0 200 Connection established\r\n\r\n"[..],
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 299 \r\n\r\n",
        ] {
            let ok = connect(&HttpConnectOptions::default())
                .receive(resp)
                .unwrap()
                .unwrap();
            assert_eq!(ok.body_start, resp.len());
        }
    }

    #[test]
    fn client_ignores_content_length_and_transfer_encoding_in_2xx_rfc9110_9_3_6() {
        for header in ["Content-Length: 100", "Transfer-Encoding: chunked"] {
            let resp = format!("HTTP/1.1 200 OK\r\n{header}\r\n\r\n");
            let packet = [resp.as_bytes(), TUNNEL].concat();
            let ok = connect(&HttpConnectOptions::default())
                .receive(&packet)
                .unwrap()
                .unwrap();
            assert_eq!(&packet[ok.body_start..], TUNNEL, "{header}");
        }
    }

    #[test]
    fn client_opens_tunnel_with_answer_split_at_every_byte_position() {
        let packet = [OK, TUNNEL].concat();
        for cut in 1..OK.len() {
            let mut c = connect(&HttpConnectOptions::default());
            assert_eq!(c.receive(&packet[..cut]).unwrap(), None, "cut {cut}");
            let ok = c.receive(&packet[cut..]).unwrap().unwrap();
            assert_eq!(ok.body_start, OK.len() - cut);
            assert_eq!(ok.headers[0].name, "Proxy-Agent");
        }
    }

    #[test]
    fn client_opens_tunnel_with_answer_fed_in_every_chunk_size() {
        let packet = [b"HTTP/1.1 100 Continue\r\n\r\n", OK, TUNNEL].concat();
        for size in 1..=packet.len() {
            let mut c = connect(&HttpConnectOptions::default());
            let mut done = None;
            for (i, chunk) in packet.chunks(size).enumerate() {
                if let Some(ok) = c.receive(chunk).unwrap() {
                    done = Some(i * size + ok.body_start);
                    break;
                }
            }
            let start = done.unwrap_or_else(|| panic!("size {size} never completed"));
            assert_eq!(&packet[start..], TUNNEL, "size {size}");
        }
    }

    #[test]
    fn client_skips_interim_1xx_responses_rfc9110_15_2() {
        let packet = [
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\n"[..],
            OK,
            TUNNEL,
        ]
        .concat();
        let ok = connect(&HttpConnectOptions::default())
            .receive(&packet)
            .unwrap()
            .unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(&packet[ok.body_start..], TUNNEL);
        // An interim response ending exactly at the end of a read.
        let mut c = connect(&HttpConnectOptions::default());
        assert_eq!(c.receive(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap(), None);
        assert_eq!(c.receive(OK).unwrap().unwrap().body_start, OK.len());
    }

    #[test]
    fn interim_responses_count_against_the_header_limit() {
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
        let packet = [&interim[..], OK].concat();
        let mut c = connect(&limits(packet.len(), 8));
        assert!(c.receive(&packet).unwrap().is_some());
        let mut c = connect(&limits(packet.len() - 1, 8));
        assert_eq!(
            c.receive(&packet).unwrap_err(),
            ProxyError::HeaderTooLarge {
                limit: packet.len() - 1
            }
        );
        // An endless stream of 100s is cut off at the limit, fed at once or in pieces.
        let flood = interim.repeat(1000);
        let mut c = connect(&limits(8192, 8));
        assert_eq!(
            c.receive(&flood).unwrap_err(),
            ProxyError::HeaderTooLarge { limit: 8192 }
        );
        let mut c = connect(&limits(8192, 8));
        let mut result = Ok(None);
        for chunk in flood.chunks(7) {
            result = c.receive(chunk);
            if result != Ok(None) {
                break;
            }
        }
        assert_eq!(result, Err(ProxyError::HeaderTooLarge { limit: 8192 }));
    }

    #[test]
    fn client_is_refused_on_407_with_proxy_authenticate() {
        let resp = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                     Proxy-Authenticate: Basic realm=\"proxy\"\r\n\
                     proxy-authenticate: Negotiate\r\n\
                     Content-Length: 0\r\n\r\n";
        assert_eq!(
            err(resp),
            ProxyError::Refused {
                status: 407,
                reason: "Proxy Authentication Required".into(),
                authenticate: Some("Basic realm=\"proxy\", Negotiate".into()),
            }
        );
    }

    #[test]
    fn client_is_refused_on_other_statuses() {
        for (resp, status) in [
            (
                &b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope"[..],
                403,
            ),
            (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", 502),
            (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
                101,
            ),
            (
                b"HTTP/1.1 301 Moved Permanently\r\nLocation: /\r\n\r\n",
                301,
            ),
            (b"HTTP/1.0 404 \r\n\r\n", 404),
        ] {
            match err(resp) {
                ProxyError::Refused {
                    status: s,
                    authenticate: None,
                    ..
                } => assert_eq!(s, status),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn client_fails_on_garbage_and_a_socks_reply() {
        for resp in [&b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..], b"\x05\x00\r\n"] {
            assert!(matches!(err(resp), ProxyError::Malformed(_)), "{resp:?}");
        }
    }

    #[test]
    fn client_fails_on_oversized_answer_or_too_many_headers() {
        assert_eq!(
            connect(&limits(20, 8)).receive(OK).unwrap_err(),
            ProxyError::HeaderTooLarge { limit: 20 }
        );
        // Without a line end in sight, too.
        let mut c = connect(&limits(20, 8));
        assert_eq!(c.receive(b"HTTP/1.1 200 aaaaaa").unwrap(), None);
        assert_eq!(
            c.receive(b"aaaa").unwrap_err(),
            ProxyError::HeaderTooLarge { limit: 20 }
        );
        let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            connect(&limits(8192, 2)).receive(many).unwrap_err(),
            ProxyError::TooManyHeaders { limit: 2 }
        );
        // The header count limit holds for the final response after an interim one.
        let packet = [&b"HTTP/1.1 100 Continue\r\n\r\n"[..], many].concat();
        assert_eq!(
            connect(&limits(8192, 2)).receive(&packet).unwrap_err(),
            ProxyError::TooManyHeaders { limit: 2 }
        );
    }

    #[test]
    fn receive_after_the_end_is_an_error() {
        let mut c = connect(&HttpConnectOptions::default());
        assert!(c.receive(OK).unwrap().is_some());
        assert_eq!(c.receive(b"x").unwrap_err(), ProxyError::Finished);
        let mut c = connect(&HttpConnectOptions::default());
        assert!(c.receive(b"HTTP/1.1 502 x\r\n\r\n").is_err());
        assert_eq!(c.receive(OK).unwrap_err(), ProxyError::Finished);
    }

    #[test]
    fn empty_input_needs_more() {
        let mut c = connect(&HttpConnectOptions::default());
        assert_eq!(c.receive(b"").unwrap(), None);
        assert!(c.receive(OK).unwrap().is_some());
    }
}
