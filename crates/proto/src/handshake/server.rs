//! The server's side of the opening handshake (RFC 6455 section 4.2): read a request,
//! classify it, and write the answer.
//!
//! Reading never decides policy: a valid upgrade comes back as [`Upgrade::WebSocket`] with
//! everything the application needs to accept or refuse it (path, Origin, offered
//! subprotocols and extensions), and [`accept_response`] / [`http_response`] write whichever
//! answer it chooses.

use super::head::{HeadReader, Kind, StartLine};
use super::{accept_key, check_header, header_has_token, is_token, is_valid_value, trim_ows};
use super::{values, write_header, HandshakeError, Header, Limits, VERSION};
use base64::Engine as _;

/// Reads one request, in as many pieces as it arrives.
#[derive(Debug)]
pub struct ServerHandshake {
    reader: HeadReader,
}

/// A complete request header block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target up to `?`.
    pub path: String,
    /// What follows the first `?`, if there is one (possibly empty).
    pub query: Option<String>,
    /// Every header as received, in order.
    pub headers: Vec<Header>,
    /// The first `Host` header, if it is UTF-8.
    pub host: Option<String>,
    /// The first `Origin` header, if it is UTF-8.
    pub origin: Option<String>,
    /// Offered subprotocols in order, from every `Sec-WebSocket-Protocol` header.
    pub subprotocols: Vec<String>,
    /// Every `Sec-WebSocket-Extensions` value joined with ", ": the offer for the extension
    /// negotiation to read.
    pub extensions: Option<String>,
    pub upgrade: Upgrade,
    /// Offset, in the `input` of the `receive` call that returned this, of the first byte
    /// after the header block: frames the client sent right behind its request.
    pub body_start: usize,
}

/// What kind of request this is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// A valid WebSocket upgrade request; `key` is its `Sec-WebSocket-Key`, to pass to
    /// [`accept_response`].
    WebSocket { key: String },
    /// Not an upgrade at all (no `Upgrade: websocket`): plain HTTP, for the runtime to answer.
    NotUpgrade,
    /// Looks like a WebSocket upgrade but breaks RFC 6455 section 4.2.1: the response to send.
    Invalid(Rejection),
}

/// An error response for a request that cannot be upgraded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    /// Why, in a few words: sent as the plain-text body.
    pub reason: &'static str,
    /// Headers to add, e.g. `Sec-WebSocket-Version: 13` with a 426.
    pub headers: Vec<(String, String)>,
}

impl ServerHandshake {
    pub fn new(limits: Limits) -> Self {
        ServerHandshake {
            reader: HeadReader::new(Kind::Request, limits),
        }
    }

    /// Feeds request bytes as they arrive. `Ok(None)`: the header block is not complete yet.
    /// Errors are about HTTP itself (limits, malformed); [`HandshakeError::rejection`] gives
    /// the 431 or 400 to answer with. Anything WebSocket-specific is in [`Request::upgrade`].
    pub fn receive(&mut self, input: &[u8]) -> Result<Option<Request>, HandshakeError> {
        let Some((head, body_start)) = self.reader.feed(input)? else {
            return Ok(None);
        };
        let StartLine::Request { method, target } = head.start else {
            return Err(HandshakeError::Malformed("expected a request line"));
        };
        let headers = head.headers;
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (target, None),
        };
        let text = |name| {
            values(&headers, name)
                .next()
                .and_then(|v| String::from_utf8(v.to_vec()).ok())
        };
        let host = text("Host");
        let origin = text("Origin");
        let (subprotocols, subprotocols_ok) = offered_subprotocols(&headers);
        let (extensions, extensions_ok) = offered_extensions(&headers);

        let upgrade = if !values(&headers, "Upgrade").any(|v| header_has_token(v, "websocket")) {
            Upgrade::NotUpgrade
        } else {
            match check_upgrade(&method, head.version, &headers) {
                Err(rejection) => Upgrade::Invalid(rejection),
                Ok(_) if !subprotocols_ok => {
                    Upgrade::Invalid(Rejection::bad_request("invalid Sec-WebSocket-Protocol"))
                }
                Ok(_) if !extensions_ok => Upgrade::Invalid(Rejection::bad_request(
                    "Sec-WebSocket-Extensions is not UTF-8",
                )),
                Ok(key) => Upgrade::WebSocket { key },
            }
        };
        Ok(Some(Request {
            method,
            path,
            query,
            headers,
            host,
            origin,
            subprotocols,
            extensions,
            upgrade,
            body_start,
        }))
    }
}

impl Request {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let found = self
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name));
        found.map(|h| h.value.as_slice())
    }

    /// Every header named `name` (ASCII case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        values(&self.headers, name)
    }
}

/// RFC 6455 section 4.2.1, for a request that asked for `Upgrade: websocket`. Returns the key.
fn check_upgrade(method: &str, version: u8, headers: &[Header]) -> Result<String, Rejection> {
    // Item 1: "An HTTP/1.1 or higher GET request".
    if method != "GET" {
        return Err(Rejection::bad_request("WebSocket upgrade requires GET"));
    }
    if version != 1 {
        return Err(Rejection::bad_request(
            "WebSocket upgrade requires HTTP/1.1",
        ));
    }
    // Item 2: a Host header (and RFC 7230 section 5.4: exactly one).
    match count(headers, "Host") {
        (0, _) => return Err(Rejection::bad_request("missing Host header")),
        (1, Some(host)) if !host.is_empty() => {}
        (1, _) => return Err(Rejection::bad_request("empty Host header")),
        _ => return Err(Rejection::bad_request("more than one Host header")),
    }
    // Item 4: Connection includes the "Upgrade" token.
    if !values(headers, "Connection").any(|v| header_has_token(v, "upgrade")) {
        return Err(Rejection::bad_request("missing Connection: upgrade"));
    }
    // Item 6 and section 4.4: another version gets 426 and the version we speak.
    match count(headers, "Sec-WebSocket-Version") {
        (1, Some(v)) if v == VERSION.as_bytes() => {}
        (0 | 1, _) => return Err(Rejection::unsupported_version()),
        _ => {
            return Err(Rejection::bad_request(
                "more than one Sec-WebSocket-Version header",
            ))
        }
    }
    // Item 5: a key that "when decoded, is 16 bytes in length".
    let key = match count(headers, "Sec-WebSocket-Key") {
        (0, _) => return Err(Rejection::bad_request("missing Sec-WebSocket-Key")),
        (1, Some(key)) => key,
        _ => {
            return Err(Rejection::bad_request(
                "more than one Sec-WebSocket-Key header",
            ))
        }
    };
    // 16 bytes are 24 base64 characters; checking first keeps junk from being decoded.
    let decodes_to_16 = key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|raw| raw.len() == 16);
    match std::str::from_utf8(key) {
        Ok(key) if decodes_to_16 => Ok(key.to_owned()),
        _ => Err(Rejection::bad_request(
            "Sec-WebSocket-Key is not 16 bytes in base64",
        )),
    }
}

/// How many headers are named `name`, and the first one's value.
fn count<'a>(headers: &'a [Header], name: &'a str) -> (usize, Option<&'a [u8]>) {
    let mut found = values(headers, name);
    let first = found.next();
    (first.map_or(0, |_| 1 + found.count()), first)
}

/// Elements of every `Sec-WebSocket-Protocol` header, in order, and whether all were tokens.
fn offered_subprotocols(headers: &[Header]) -> (Vec<String>, bool) {
    let mut list = Vec::new();
    let mut all_valid = true;
    for value in values(headers, "Sec-WebSocket-Protocol") {
        for item in value.split(|&b| b == b',').map(trim_ows) {
            if item.is_empty() {
                // RFC 7230 section 7: empty list elements are allowed and ignored.
                continue;
            }
            match std::str::from_utf8(item) {
                Ok(p) if is_token(item) => list.push(p.to_owned()),
                _ => all_valid = false,
            }
        }
    }
    (list, all_valid)
}

/// Every `Sec-WebSocket-Extensions` value joined with ", ", and whether all were UTF-8.
fn offered_extensions(headers: &[Header]) -> (Option<String>, bool) {
    let mut joined: Option<String> = None;
    for value in values(headers, "Sec-WebSocket-Extensions") {
        let Ok(value) = std::str::from_utf8(value) else {
            return (None, false);
        };
        match &mut joined {
            None => joined = Some(value.to_owned()),
            Some(all) => {
                all.push_str(", ");
                all.push_str(value);
            }
        }
    }
    (joined, true)
}

/// Headers `accept_response` writes itself.
const ACCEPT_RESERVED: &[&str] = &[
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
];

/// Appends the 101 response that accepts an upgrade (RFC 6455 section 4.2.2, item 5).
///
/// `key` is [`Upgrade::WebSocket`]'s key; `subprotocol` should be one the client offered;
/// `extensions` is the negotiated answer. Nothing is appended on error.
pub fn accept_response(
    key: &str,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    extra_headers: &[(&str, &str)],
    out: &mut Vec<u8>,
) -> Result<(), HandshakeError> {
    if let Some(p) = subprotocol {
        if !is_token(p.as_bytes()) {
            return Err(HandshakeError::InvalidSubprotocol(p.to_owned()));
        }
    }
    if let Some(ext) = extensions {
        if !is_valid_value(ext.as_bytes()) {
            return Err(HandshakeError::InvalidHeaderValue(
                "Sec-WebSocket-Extensions".into(),
            ));
        }
    }
    for (name, value) in extra_headers {
        check_header(name, value, ACCEPT_RESERVED)?;
    }
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    write_header(out, "Upgrade", b"websocket");
    write_header(out, "Connection", b"Upgrade");
    write_header(
        out,
        "Sec-WebSocket-Accept",
        accept_key(key.as_bytes()).as_bytes(),
    );
    if let Some(p) = subprotocol {
        write_header(out, "Sec-WebSocket-Protocol", p.as_bytes());
    }
    if let Some(ext) = extensions {
        write_header(out, "Sec-WebSocket-Extensions", ext.as_bytes());
    }
    for (name, value) in extra_headers {
        write_header(out, name, value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Headers `http_response` writes itself.
const HTTP_RESERVED: &[&str] = &["Content-Length", "Connection", "Transfer-Encoding"];

/// Appends a complete HTTP/1.1 response that ends the connection: status line with its
/// reason phrase, `headers`, `Content-Length` (except for 1xx and 204), `Connection: close`
/// and `body`. For rejections (400, 403, 404, 426, ...) and plain HTTP answers. Nothing is
/// appended on error.
pub fn http_response(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), HandshakeError> {
    if !(100..=999).contains(&status) {
        return Err(HandshakeError::InvalidStatus(status));
    }
    // RFC 7230 section 3.3.3: these never have a body, whatever the headers say.
    let bodiless = status < 200 || status == 204 || status == 304;
    if bodiless && !body.is_empty() {
        return Err(HandshakeError::BodyNotAllowed(status));
    }
    for (name, value) in headers {
        check_header(name, value, HTTP_RESERVED)?;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        write_header(out, name, value.as_bytes());
    }
    if status >= 200 && status != 204 {
        write_header(out, "Content-Length", body.len().to_string().as_bytes());
    }
    write_header(out, "Connection", b"close");
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(())
}

impl Rejection {
    /// Appends the response: the status, the headers, and `reason` as a plain-text body.
    ///
    /// The fields are public, so they may hold what `http_response` refuses (a status
    /// outside 100-999, a header with CR/LF); the response is then a plain 400 with the
    /// same body, without the extra headers.
    pub fn write_response(&self, out: &mut Vec<u8>) {
        let mut body = String::with_capacity(self.reason.len() + 1);
        body.push_str(self.reason);
        body.push('\n');
        let content_type = ("Content-Type", "text/plain; charset=utf-8");
        let mut headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
        {
            headers.push(content_type);
        }
        if http_response(self.status, &headers, body.as_bytes(), out).is_err() {
            // Cannot fail: valid status, no body restriction, constant headers.
            let _ = http_response(400, &[content_type], body.as_bytes(), out);
        }
    }
}

/// RFC 9110 section 15 reason phrases; empty (which HTTP/1.1 allows) for the rest.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{ClientHandshake, ClientOptions, Url};

    /// RFC 6455 section 1.3, with the version header that section 4.1 requires.
    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\
        \r\n";

    fn read(req: &[u8]) -> Request {
        ServerHandshake::new(Limits::default())
            .receive(req)
            .unwrap()
            .unwrap_or_else(|| panic!("incomplete: {}", String::from_utf8_lossy(req)))
    }

    /// The RFC request with `from` replaced by `to`.
    fn edited(from: &str, to: &str) -> Vec<u8> {
        let text = std::str::from_utf8(RFC_REQUEST).unwrap();
        assert!(text.contains(from), "{from}");
        text.replacen(from, to, 1).into_bytes()
    }

    fn rejection(req: &[u8]) -> Rejection {
        match read(req).upgrade {
            Upgrade::Invalid(r) => r,
            other => panic!("{other:?} for {}", String::from_utf8_lossy(req)),
        }
    }

    fn response_text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn server_reads_rfc_6455_sample_request() {
        let req = read(RFC_REQUEST);
        assert_eq!(
            req.upgrade,
            Upgrade::WebSocket {
                key: "dGhlIHNhbXBsZSBub25jZQ==".into()
            }
        );
        assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/chat"));
        assert_eq!(req.query, None);
        assert_eq!(req.host.as_deref(), Some("server.example.com"));
        assert_eq!(req.origin.as_deref(), Some("http://example.com"));
        assert_eq!(req.subprotocols, ["chat", "superchat"]);
        assert_eq!(req.extensions, None);
        assert_eq!(req.headers.len(), 7);
        assert_eq!(req.body_start, RFC_REQUEST.len());
        assert_eq!(req.header("sec-websocket-version"), Some(&b"13"[..]));
        assert_eq!(req.header("X-Missing"), None);
    }

    #[test]
    fn server_answers_rfc_6455_sample_response() {
        let text = response_text(|out| {
            accept_response("dGhlIHNhbXBsZSBub25jZQ==", Some("chat"), None, &[], out).unwrap()
        });
        assert_eq!(
            text,
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Sec-WebSocket-Protocol: chat\r\n\
             \r\n"
        );
    }

    #[test]
    fn server_reads_request_split_at_every_byte_position() {
        let whole = read(RFC_REQUEST);
        for cut in 1..RFC_REQUEST.len() {
            let mut hs = ServerHandshake::new(Limits::default());
            assert_eq!(hs.receive(&RFC_REQUEST[..cut]).unwrap(), None, "cut {cut}");
            let got = hs.receive(&RFC_REQUEST[cut..]).unwrap().unwrap();
            assert_eq!(got.body_start, RFC_REQUEST.len() - cut);
            assert_eq!(
                Request {
                    body_start: whole.body_start,
                    ..got
                },
                whole
            );
        }
    }

    #[test]
    fn server_reads_request_fed_in_every_chunk_size_with_frame_behind() {
        let mut packet = RFC_REQUEST.to_vec();
        packet.extend_from_slice(b"\x81\x85mask!hello");
        for size in 1..=packet.len() {
            let mut hs = ServerHandshake::new(Limits::default());
            let mut offset = None;
            for (i, chunk) in packet.chunks(size).enumerate() {
                if let Some(req) = hs.receive(chunk).unwrap() {
                    assert!(matches!(req.upgrade, Upgrade::WebSocket { .. }));
                    offset = Some(i * size + req.body_start);
                    break;
                }
            }
            assert_eq!(offset, Some(RFC_REQUEST.len()), "size {size}");
        }
    }

    #[test]
    fn server_reports_frame_bytes_after_request_via_body_start() {
        let mut packet = RFC_REQUEST.to_vec();
        packet.extend_from_slice(b"\x81\x85mask!hello");
        let req = read(&packet);
        assert_eq!(&packet[req.body_start..], b"\x81\x85mask!hello");
    }

    #[test]
    fn server_splits_query_from_path() {
        let req = read(&edited("GET /chat ", "GET /chat?room=1&x=%20 "));
        assert_eq!(req.path, "/chat");
        assert_eq!(req.query.as_deref(), Some("room=1&x=%20"));
        let req = read(&edited("GET /chat ", "GET /chat? "));
        assert_eq!(req.query.as_deref(), Some(""));
    }

    #[test]
    fn server_rejects_non_get_with_400() {
        let r = rejection(&edited("GET", "POST"));
        assert_eq!(r.status, 400);
    }

    #[test]
    fn server_rejects_http_1_0_with_400() {
        assert_eq!(rejection(&edited("HTTP/1.1", "HTTP/1.0")).status, 400);
    }

    #[test]
    fn server_rejects_missing_empty_or_duplicate_host_with_400() {
        for req in [
            edited("Host: server.example.com\r\n", ""),
            edited("Host: server.example.com", "Host: "),
            edited("Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n"),
        ] {
            assert_eq!(rejection(&req).status, 400);
        }
    }

    #[test]
    fn server_rejects_missing_connection_upgrade_with_400() {
        for req in [
            edited("Connection: Upgrade\r\n", ""),
            edited("Connection: Upgrade", "Connection: keep-alive"),
        ] {
            let r = rejection(&req);
            assert_eq!((r.status, r.reason), (400, "missing Connection: upgrade"));
        }
    }

    #[test]
    fn server_rejects_key_that_is_not_16_bytes_of_base64_with_400() {
        for key in [
            "",
            "dGhlIHNhbXBsZSBub25jZQ",     // unpadded
            "dGhlIHNhbXBsZSBub25j",       // 15 bytes
            "dGhlIHNhbXBsZSBub25jZQ==QQ", // trailing junk
            "dGhlIHNhbXBsZSBub25jZTE=",   // 17 bytes
            "dGhlIHNhbXBsZSBub25jZQ!=",   // not base64
        ] {
            let req = edited("dGhlIHNhbXBsZSBub25jZQ==", key);
            let r = rejection(&req);
            assert_eq!(r.status, 400, "{key}");
        }
        let r = rejection(&edited(
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "",
        ));
        assert_eq!((r.status, r.reason), (400, "missing Sec-WebSocket-Key"));
        let two = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let r = rejection(&edited(two, &two.repeat(2)));
        assert_eq!(r.status, 400);
    }

    #[test]
    fn server_rejects_version_12_with_426_and_version_header() {
        for req in [
            edited("Version: 13", "Version: 12"),
            edited("Version: 13", "Version: 8, 13"),
            edited("Sec-WebSocket-Version: 13\r\n", ""),
        ] {
            let r = rejection(&req);
            assert_eq!(r.status, 426);
            assert_eq!(r.headers, [("Sec-WebSocket-Version".into(), "13".into())]);
            let text = response_text(|out| r.write_response(out));
            assert!(
                text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
                "{text}"
            );
            assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
            assert!(text.contains("\r\nConnection: close\r\n"));
        }
        let two = "Sec-WebSocket-Version: 13\r\n";
        assert_eq!(rejection(&edited(two, &two.repeat(2))).status, 400);
    }

    #[test]
    fn server_rejects_invalid_offered_subprotocol_with_400() {
        let r = rejection(&edited("chat, superchat", "chat, super chat"));
        assert_eq!(r.status, 400);
    }

    #[test]
    fn server_reports_plain_http_as_not_upgrade() {
        let plain = b"GET /index.html HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n";
        let req = read(plain);
        assert_eq!(req.upgrade, Upgrade::NotUpgrade);
        assert_eq!(req.path, "/index.html");
        let h2c = edited("Upgrade: websocket", "Upgrade: h2c");
        assert_eq!(read(&h2c).upgrade, Upgrade::NotUpgrade);
        // Not an upgrade, so WebSocket rules do not apply, even to an HTTP/1.0 POST.
        let post = b"POST /form HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(read(post).upgrade, Upgrade::NotUpgrade);
    }

    #[test]
    fn server_fails_when_header_limits_are_exceeded() {
        let small = Limits {
            max_header_bytes: 100,
            ..Limits::default()
        };
        let err = ServerHandshake::new(small)
            .receive(RFC_REQUEST)
            .unwrap_err();
        assert_eq!(err, HandshakeError::HeaderTooLarge { limit: 100 });
        assert_eq!(err.rejection().map(|r| r.status), Some(431));

        let few = Limits {
            max_headers: 6,
            ..Limits::default()
        };
        let err = ServerHandshake::new(few).receive(RFC_REQUEST).unwrap_err();
        assert_eq!(err, HandshakeError::TooManyHeaders { limit: 6 });
        assert_eq!(err.rejection().map(|r| r.status), Some(431));

        // Trickled one byte at a time, the byte limit still holds.
        let mut hs = ServerHandshake::new(Limits {
            max_header_bytes: 100,
            ..Limits::default()
        });
        let mut result = Ok(None);
        for byte in RFC_REQUEST.chunks(1) {
            result = hs.receive(byte);
            if result != Ok(None) {
                break;
            }
        }
        assert_eq!(result, Err(HandshakeError::HeaderTooLarge { limit: 100 }));
    }

    #[test]
    fn server_answers_garbage_with_400() {
        for garbage in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET\r\n\r\n",
        ] {
            let err = ServerHandshake::new(Limits::default())
                .receive(garbage)
                .unwrap_err();
            assert!(
                matches!(err, HandshakeError::Malformed(_)),
                "{garbage:?}: {err:?}"
            );
            assert_eq!(err.rejection().map(|r| r.status), Some(400));
        }
    }

    #[test]
    fn server_tokens_and_names_are_case_insensitive() {
        let req = edited("Connection: Upgrade", "connection: keep-alive, Upgrade");
        let req = String::from_utf8(req)
            .unwrap()
            .replace("Upgrade: websocket", "upgrade: WebSocket");
        let req = req.replace("Sec-WebSocket-Key", "SEC-WEBSOCKET-KEY");
        assert!(matches!(
            read(req.as_bytes()).upgrade,
            Upgrade::WebSocket { .. }
        ));
    }

    #[test]
    fn server_merges_multiple_subprotocol_and_extension_headers() {
        let req = edited(
            "Sec-WebSocket-Protocol: chat, superchat\r\n",
            "Sec-WebSocket-Protocol: chat, superchat\r\n\
             sec-websocket-protocol: ,v2.json ,\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
             Sec-WebSocket-Extensions: x-foo\r\n",
        );
        let req = read(&req);
        assert_eq!(req.subprotocols, ["chat", "superchat", "v2.json"]);
        assert_eq!(
            req.extensions.as_deref(),
            Some("permessage-deflate; client_max_window_bits, x-foo")
        );
        assert_eq!(req.header_values("Sec-WebSocket-Protocol").count(), 2);
        assert!(matches!(req.upgrade, Upgrade::WebSocket { .. }));
    }

    #[test]
    fn server_receive_after_the_end_is_an_error() {
        let mut hs = ServerHandshake::new(Limits::default());
        assert!(hs.receive(RFC_REQUEST).unwrap().is_some());
        assert_eq!(hs.receive(b"GET"), Err(HandshakeError::Finished));
    }

    #[test]
    fn accept_response_carries_extensions_and_extra_headers() {
        let text = response_text(|out| {
            accept_response(
                "dGhlIHNhbXBsZSBub25jZQ==",
                None,
                Some("permessage-deflate; server_no_context_takeover"),
                &[("Set-Cookie", "a=b")],
                out,
            )
            .unwrap()
        });
        assert!(text.ends_with(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\
             Set-Cookie: a=b\r\n\r\n"
        ));
        assert!(!text.contains("Sec-WebSocket-Protocol"));
    }

    /// Runs `accept_response` expecting an error, and checks that `out` was left alone.
    fn refused(proto: Option<&str>, ext: Option<&str>, extra: &[(&str, &str)]) -> HandshakeError {
        let mut out = b"kept".to_vec();
        let err = accept_response("dGhlIHNhbXBsZSBub25jZQ==", proto, ext, extra, &mut out);
        assert_eq!(out, b"kept");
        err.unwrap_err()
    }

    #[test]
    fn accept_response_refuses_injection_and_writes_nothing() {
        assert_eq!(
            refused(Some("chat\r\nX: y"), None, &[]),
            HandshakeError::InvalidSubprotocol("chat\r\nX: y".into())
        );
        assert_eq!(
            refused(None, Some("x\r\nX: y"), &[]),
            HandshakeError::InvalidHeaderValue("Sec-WebSocket-Extensions".into())
        );
        assert_eq!(
            refused(None, None, &[("X-A", "1\n2")]),
            HandshakeError::InvalidHeaderValue("X-A".into())
        );
        assert_eq!(
            refused(None, None, &[("X A", "1")]),
            HandshakeError::InvalidHeaderName("X A".into())
        );
        assert_eq!(
            refused(None, None, &[("upgrade", "h2c")]),
            HandshakeError::ReservedHeader("upgrade".into())
        );
    }

    #[test]
    fn http_response_writes_status_length_and_close() {
        let text = response_text(|out| {
            http_response(404, &[("Content-Type", "text/plain")], b"no such path", out).unwrap()
        });
        assert_eq!(
            text,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\
             Connection: close\r\n\r\nno such path"
        );
        let text = response_text(|out| http_response(599, &[], b"", out).unwrap());
        assert_eq!(
            text,
            "HTTP/1.1 599 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let text = response_text(|out| http_response(204, &[], b"", out).unwrap());
        assert_eq!(text, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn http_response_refuses_bad_status_body_and_headers() {
        let mut out = Vec::new();
        assert_eq!(
            http_response(99, &[], b"", &mut out),
            Err(HandshakeError::InvalidStatus(99))
        );
        assert_eq!(
            http_response(1000, &[], b"", &mut out),
            Err(HandshakeError::InvalidStatus(1000))
        );
        assert_eq!(
            http_response(204, &[], b"x", &mut out),
            Err(HandshakeError::BodyNotAllowed(204))
        );
        assert_eq!(
            http_response(400, &[("X", "a\r\nSet-Cookie: evil")], b"", &mut out),
            Err(HandshakeError::InvalidHeaderValue("X".into()))
        );
        assert_eq!(
            http_response(400, &[("content-length", "5")], b"", &mut out),
            Err(HandshakeError::ReservedHeader("content-length".into()))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn rejection_writes_reason_as_plain_text_body() {
        let r = Rejection::bad_request("missing Host header");
        let text = response_text(|out| r.write_response(out));
        assert_eq!(
            text,
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 20\r\nConnection: close\r\n\r\nmissing Host header\n"
        );
    }

    #[test]
    fn rejection_with_bad_fields_falls_back_to_plain_400() {
        let r = Rejection {
            status: 403,
            reason: "no",
            headers: vec![("X".into(), "a\r\nb".into())],
        };
        let text = response_text(|out| r.write_response(out));
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(!text.contains("\r\nX:"));
    }

    #[test]
    fn client_and_server_complete_a_handshake_together() {
        let url = Url::parse("ws://[::1]:9000/chat?room=7").unwrap();
        let opts = ClientOptions {
            origin: Some("https://app.example".into()),
            subprotocols: vec!["v1".into(), "v2".into()],
            extensions: Some("permessage-deflate".into()),
            ..Default::default()
        };
        let mut client = ClientHandshake::new(&url, &opts).unwrap();
        let req = read(client.request());
        let Upgrade::WebSocket { key } = &req.upgrade else {
            panic!("{:?}", req.upgrade);
        };
        assert_eq!(req.host.as_deref(), Some("[::1]:9000"));
        assert_eq!(
            (req.path.as_str(), req.query.as_deref()),
            ("/chat", Some("room=7"))
        );
        assert_eq!(req.subprotocols, ["v1", "v2"]);
        assert_eq!(req.extensions.as_deref(), Some("permessage-deflate"));
        let mut out = Vec::new();
        accept_response(key, Some("v2"), Some("permessage-deflate"), &[], &mut out).unwrap();
        let resp = client.receive(&out).unwrap().unwrap();
        assert_eq!(resp.subprotocol.as_deref(), Some("v2"));
        assert_eq!(resp.extensions.as_deref(), Some("permessage-deflate"));
    }
}
