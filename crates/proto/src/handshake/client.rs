//! The client's side of the opening handshake (RFC 6455 section 4.1): build the upgrade
//! request, then check the server's response.

use super::head::{HeadReader, Kind, StartLine};
use super::url::Url;
use super::{accept_key, check_header, header_has_token, is_token, is_valid_value, values};
use super::{write_header, HandshakeError, Header, Limits, VERSION};
use base64::Engine as _;

/// Headers that the request writes itself; giving them in `ClientOptions::headers` is an
/// error rather than a silent duplicate.
const RESERVED: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Origin",
];

/// What the client asks for, beyond the URL.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Sent as `Origin` (browsers always send one; other clients may).
    pub origin: Option<String>,
    /// Offered in `Sec-WebSocket-Protocol`, in order of preference.
    pub subprotocols: Vec<String>,
    /// The full `Sec-WebSocket-Extensions` offer, e.g.
    /// `permessage-deflate; client_max_window_bits`.
    pub extensions: Option<String>,
    /// More headers, written after the handshake's own (which they may not repeat).
    pub headers: Vec<(String, String)>,
    /// Bounds on the response's header block.
    pub limits: Limits,
}

impl ClientOptions {
    /// Checks what the request will carry: subprotocols are distinct tokens, header values
    /// hold no line breaks or controls, extra headers have token names and do not repeat
    /// the handshake's own. [`ClientHandshake::new`] calls it.
    pub fn validate(&self) -> Result<(), HandshakeError> {
        check_subprotocols(&self.subprotocols)?;
        for (value, name) in [
            (&self.origin, "Origin"),
            (&self.extensions, "Sec-WebSocket-Extensions"),
        ] {
            if let Some(value) = value {
                if !is_valid_value(value.as_bytes()) {
                    return Err(HandshakeError::InvalidHeaderValue(name.into()));
                }
            }
        }
        for (name, value) in &self.headers {
            check_header(name, value, RESERVED)?;
        }
        Ok(())
    }
}

/// A handshake in progress: the request to send and the state to check the response.
#[derive(Debug)]
pub struct ClientHandshake {
    request: Vec<u8>,
    key: String,
    accept: String,
    subprotocols: Vec<String>,
    extensions_offered: bool,
    reader: HeadReader,
}

/// A successful response (status 101, every RFC check passed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientResponse {
    pub status: u16,
    /// The subprotocol the server selected, one of those offered.
    pub subprotocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` answer, several headers joined with ", ". Only checked
    /// for presence here; the extension negotiation validates its parameters.
    pub extensions: Option<String>,
    pub headers: Vec<Header>,
    /// Offset, in the `input` of the `receive` call that returned this, of the first byte
    /// after the header block: WebSocket frames the server sent right behind its response.
    pub body_start: usize,
}

impl ClientHandshake {
    /// Prepares a handshake with a fresh random key (RFC 6455 section 4.1, item 7: "randomly
    /// selected" for each connection).
    pub fn new(url: &Url, opts: &ClientOptions) -> Result<ClientHandshake, HandshakeError> {
        let mut key = [0u8; 16];
        // The OS generator failing leaves no safe fallback: a guessable key is what the
        // nonce exists to prevent.
        getrandom::getrandom(&mut key).map_err(|_| HandshakeError::RandomUnavailable)?;
        Self::with_key(url, opts, key)
    }

    /// Prepares a handshake with the given key bytes. For tests and reproducible traces; real
    /// connections use [`ClientHandshake::new`].
    pub fn with_key(
        url: &Url,
        opts: &ClientOptions,
        key: [u8; 16],
    ) -> Result<ClientHandshake, HandshakeError> {
        opts.validate()?;
        // `Url` fields are public, so they may not have come from `Url::parse`.
        let host = url.host_header();
        if !is_valid_value(host.as_bytes()) || host.contains(' ') {
            return Err(HandshakeError::InvalidHeaderValue("Host".into()));
        }
        if !url.resource.starts_with('/') || !url.resource.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HandshakeError::InvalidHeaderValue("request target".into()));
        }

        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let mut request = Vec::with_capacity(256);
        request.extend_from_slice(b"GET ");
        request.extend_from_slice(url.resource.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\n");
        write_header(&mut request, "Host", host.as_bytes());
        write_header(&mut request, "Upgrade", b"websocket");
        write_header(&mut request, "Connection", b"Upgrade");
        write_header(&mut request, "Sec-WebSocket-Key", key.as_bytes());
        write_header(&mut request, "Sec-WebSocket-Version", VERSION.as_bytes());
        if let Some(origin) = &opts.origin {
            write_header(&mut request, "Origin", origin.as_bytes());
        }
        if !opts.subprotocols.is_empty() {
            let list = opts.subprotocols.join(", ");
            write_header(&mut request, "Sec-WebSocket-Protocol", list.as_bytes());
        }
        if let Some(ext) = &opts.extensions {
            write_header(&mut request, "Sec-WebSocket-Extensions", ext.as_bytes());
        }
        for (name, value) in &opts.headers {
            write_header(&mut request, name, value.as_bytes());
        }
        request.extend_from_slice(b"\r\n");

        Ok(ClientHandshake {
            request,
            accept: accept_key(key.as_bytes()),
            key,
            subprotocols: opts.subprotocols.clone(),
            extensions_offered: opts.extensions.is_some(),
            reader: HeadReader::new(Kind::Response, opts.limits.clone()),
        })
    }

    /// The request bytes to send.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// The `Sec-WebSocket-Key` sent (base64 of 16 bytes).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Feeds response bytes as they arrive. `Ok(None)`: the header block is not complete yet.
    /// `Ok(Some(response))`: the handshake succeeded and `input[response.body_start..]`
    /// already belongs to the WebSocket connection. Any error ends the handshake: the client
    /// must fail the connection (RFC 6455 section 4.1).
    pub fn receive(&mut self, input: &[u8]) -> Result<Option<ClientResponse>, HandshakeError> {
        let Some((head, body_start)) = self.reader.feed(input)? else {
            return Ok(None);
        };
        let StartLine::Response { status, reason } = head.start else {
            return Err(HandshakeError::Malformed("expected a status line"));
        };
        let headers = head.headers;
        if status != 101 {
            return Err(HandshakeError::Status {
                status,
                reason,
                headers,
                body: input[body_start..].to_vec(),
            });
        }
        if !values(&headers, "Upgrade").any(|v| header_has_token(v, "websocket")) {
            return Err(HandshakeError::MissingUpgradeWebSocket);
        }
        if !values(&headers, "Connection").any(|v| header_has_token(v, "upgrade")) {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        self.check_accept(&headers)?;
        let subprotocol = self.check_subprotocol(&headers)?;
        let extensions = self.check_extensions(&headers)?;
        Ok(Some(ClientResponse {
            status,
            subprotocol,
            extensions,
            headers,
            body_start,
        }))
    }

    fn check_accept(&self, headers: &[Header]) -> Result<(), HandshakeError> {
        let received =
            single(headers, "Sec-WebSocket-Accept")?.ok_or(HandshakeError::MissingAccept)?;
        if received != self.accept.as_bytes() {
            return Err(HandshakeError::AcceptMismatch {
                expected: self.accept.clone(),
                received: String::from_utf8_lossy(received).into_owned(),
            });
        }
        Ok(())
    }

    /// RFC 6455 section 4.1, item 6: a subprotocol "that was not present in the client's
    /// handshake" fails the connection. The server selects one, so a list is also refused.
    fn check_subprotocol(&self, headers: &[Header]) -> Result<Option<String>, HandshakeError> {
        let Some(value) = single(headers, "Sec-WebSocket-Protocol")? else {
            return Ok(None);
        };
        match std::str::from_utf8(value) {
            Ok(p) if self.subprotocols.iter().any(|offered| offered == p) => Ok(Some(p.to_owned())),
            _ => Err(HandshakeError::UnexpectedSubprotocol(
                String::from_utf8_lossy(value).into_owned(),
            )),
        }
    }

    /// RFC 6455 section 4.1, item 5: an extension "not present in the client's handshake"
    /// fails the connection. Which answers fit the offer is the extension's business.
    fn check_extensions(&self, headers: &[Header]) -> Result<Option<String>, HandshakeError> {
        let mut joined: Option<String> = None;
        for value in values(headers, "Sec-WebSocket-Extensions") {
            let value = std::str::from_utf8(value)
                .map_err(|_| HandshakeError::NonUtf8Header("Sec-WebSocket-Extensions"))?;
            match &mut joined {
                None => joined = Some(value.to_owned()),
                Some(all) => {
                    all.push_str(", ");
                    all.push_str(value);
                }
            }
        }
        match joined {
            Some(ext) if !self.extensions_offered => Err(HandshakeError::UnexpectedExtensions(ext)),
            other => Ok(other),
        }
    }
}

/// The value of a header that may appear at most once.
fn single<'a>(
    headers: &'a [Header],
    name: &'static str,
) -> Result<Option<&'a [u8]>, HandshakeError> {
    let mut found = values(headers, name);
    let first = found.next();
    if found.next().is_some() {
        return Err(HandshakeError::DuplicateHeader(name));
    }
    Ok(first)
}

/// Subprotocol names, as either side lists them: distinct HTTP tokens (RFC 6455 section
/// 4.1, item 10: "unique strings", each a token).
pub fn check_subprotocols(list: &[String]) -> Result<(), HandshakeError> {
    for (i, p) in list.iter().enumerate() {
        if !is_token(p.as_bytes()) {
            return Err(HandshakeError::InvalidSubprotocol(p.clone()));
        }
        if list[..i].contains(p) {
            return Err(HandshakeError::DuplicateSubprotocol(p.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = *b"the sample nonce";
    // accept_key("dGhlIHNhbXBsZSBub25jZQ==") from RFC 6455 section 1.3.
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn handshake(opts: &ClientOptions) -> ClientHandshake {
        ClientHandshake::with_key(&url("ws://server.example.com/chat"), opts, KEY).unwrap()
    }

    fn request_text(url_str: &str, opts: &ClientOptions) -> String {
        let hs = ClientHandshake::with_key(&url(url_str), opts, KEY).unwrap();
        String::from_utf8(hs.request().to_vec()).unwrap()
    }

    fn response(extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn with_protocols() -> ClientOptions {
        ClientOptions {
            subprotocols: vec!["chat".into(), "superchat".into()],
            ..Default::default()
        }
    }

    fn err(opts: &ClientOptions, resp: &[u8]) -> HandshakeError {
        handshake(opts).receive(resp).unwrap_err()
    }

    #[test]
    fn request_matches_rfc_6455_section_1_3_example() {
        let opts = ClientOptions {
            origin: Some("http://example.com".into()),
            ..with_protocols()
        };
        assert_eq!(
            request_text("ws://server.example.com/chat", &opts),
            "GET /chat HTTP/1.1\r\n\
             Host: server.example.com\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\
             Origin: http://example.com\r\n\
             Sec-WebSocket-Protocol: chat, superchat\r\n\
             \r\n"
        );
    }

    #[test]
    fn request_host_has_port_only_when_not_default() {
        let o = ClientOptions::default();
        assert!(request_text("ws://h/", &o).contains("\r\nHost: h\r\n"));
        assert!(request_text("ws://h:8080/", &o).contains("\r\nHost: h:8080\r\n"));
        assert!(request_text("wss://h:443/", &o).contains("\r\nHost: h\r\n"));
        assert!(request_text("ws://[::1]:9000/", &o).contains("\r\nHost: [::1]:9000\r\n"));
    }

    #[test]
    fn request_line_keeps_path_and_query() {
        let text = request_text("ws://h/a/b?x=1&y=2", &ClientOptions::default());
        assert!(text.starts_with("GET /a/b?x=1&y=2 HTTP/1.1\r\n"));
        let text = request_text("ws://h", &ClientOptions::default());
        assert!(text.starts_with("GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn request_carries_extensions_offer_and_extra_headers_last() {
        let opts = ClientOptions {
            extensions: Some("permessage-deflate; client_max_window_bits".into()),
            headers: vec![("Authorization".into(), "Bearer x".into())],
            ..Default::default()
        };
        let text = request_text("ws://h/", &opts);
        assert!(text.ends_with(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
             Authorization: Bearer x\r\n\r\n"
        ));
    }

    #[test]
    fn key_is_fresh_for_each_handshake_and_decodes_to_16_bytes() {
        let u = url("ws://h/");
        let a = ClientHandshake::new(&u, &ClientOptions::default()).unwrap();
        let b = ClientHandshake::new(&u, &ClientOptions::default()).unwrap();
        assert_ne!(a.key(), b.key());
        for hs in [&a, &b] {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(hs.key())
                .unwrap();
            assert_eq!(raw.len(), 16);
            let line = format!("\r\nSec-WebSocket-Key: {}\r\n", hs.key());
            assert!(String::from_utf8_lossy(hs.request()).contains(&line));
        }
    }

    #[test]
    fn request_refuses_header_injection() {
        let u = url("ws://h/");
        let bad = [
            ClientOptions {
                origin: Some("http://a\r\nX: y".into()),
                ..Default::default()
            },
            ClientOptions {
                extensions: Some("x\nX: y".into()),
                ..Default::default()
            },
            ClientOptions {
                headers: vec![("X-A".into(), "v\r\n\r\nGET /evil".into())],
                ..Default::default()
            },
        ];
        for opts in &bad {
            assert!(matches!(
                ClientHandshake::with_key(&u, opts, KEY),
                Err(HandshakeError::InvalidHeaderValue(_))
            ));
        }
        let opts = ClientOptions {
            headers: vec![("X-A\r\nEvil".into(), "v".into())],
            ..Default::default()
        };
        assert!(matches!(
            ClientHandshake::with_key(&u, &opts, KEY),
            Err(HandshakeError::InvalidHeaderName(_))
        ));
    }

    #[test]
    fn request_refuses_hand_built_url_with_line_breaks() {
        let mut u = url("ws://h/");
        u.resource = "/ HTTP/1.1\r\nX: y".into();
        assert!(ClientHandshake::with_key(&u, &ClientOptions::default(), KEY).is_err());
        let mut u = url("ws://h/");
        u.host = "h\r\nX: y".into();
        assert!(ClientHandshake::with_key(&u, &ClientOptions::default(), KEY).is_err());
    }

    #[test]
    fn request_refuses_headers_the_handshake_writes_itself() {
        for name in ["host", "Sec-WebSocket-Key", "CONNECTION", "Origin"] {
            let opts = ClientOptions {
                headers: vec![(name.into(), "x".into())],
                ..Default::default()
            };
            assert_eq!(
                ClientHandshake::with_key(&url("ws://h/"), &opts, KEY).unwrap_err(),
                HandshakeError::ReservedHeader(name.into())
            );
        }
    }

    #[test]
    fn subprotocols_must_be_unique_tokens_rfc6455_4_1_item_10() {
        for (list, expected) in [
            (
                vec!["a b"],
                HandshakeError::InvalidSubprotocol("a b".into()),
            ),
            (vec![""], HandshakeError::InvalidSubprotocol("".into())),
            (
                vec!["a,b"],
                HandshakeError::InvalidSubprotocol("a,b".into()),
            ),
            (
                vec!["x\r\n"],
                HandshakeError::InvalidSubprotocol("x\r\n".into()),
            ),
            (
                vec!["a", "b", "a"],
                HandshakeError::DuplicateSubprotocol("a".into()),
            ),
        ] {
            let opts = ClientOptions {
                subprotocols: list.into_iter().map(String::from).collect(),
                ..Default::default()
            };
            assert_eq!(
                ClientHandshake::with_key(&url("ws://h/"), &opts, KEY).unwrap_err(),
                expected
            );
        }
    }

    #[test]
    fn client_accepts_rfc_sample_response() {
        let resp = response("Sec-WebSocket-Protocol: chat\r\n");
        let ok = handshake(&with_protocols())
            .receive(&resp)
            .unwrap()
            .unwrap();
        assert_eq!(ok.status, 101);
        assert_eq!(ok.subprotocol.as_deref(), Some("chat"));
        assert_eq!(ok.extensions, None);
        assert_eq!(ok.headers.len(), 4);
        assert_eq!(ok.body_start, resp.len());
    }

    #[test]
    fn client_accepts_response_split_at_every_byte_position() {
        let resp = response("Sec-WebSocket-Protocol: superchat\r\n");
        let whole = handshake(&with_protocols())
            .receive(&resp)
            .unwrap()
            .unwrap();
        for cut in 1..resp.len() {
            let mut hs = handshake(&with_protocols());
            assert_eq!(hs.receive(&resp[..cut]).unwrap(), None, "cut {cut}");
            let got = hs.receive(&resp[cut..]).unwrap().unwrap();
            assert_eq!(got.body_start, resp.len() - cut);
            assert_eq!(
                ClientResponse {
                    body_start: whole.body_start,
                    ..got
                },
                whole
            );
        }
    }

    #[test]
    fn client_accepts_response_fed_in_every_chunk_size() {
        let mut resp = response("");
        resp.extend_from_slice(b"\x81\x02hi");
        for size in 1..=resp.len() {
            let mut hs = handshake(&ClientOptions::default());
            let mut result = None;
            for (i, chunk) in resp.chunks(size).enumerate() {
                if let Some(r) = hs.receive(chunk).unwrap() {
                    result = Some((i * size + r.body_start, r));
                    break;
                }
            }
            let (offset, _) = result.unwrap_or_else(|| panic!("size {size} never completed"));
            assert_eq!(&resp[offset..], b"\x81\x02hi", "size {size}");
        }
    }

    #[test]
    fn client_reports_frame_bytes_after_response_via_body_start() {
        let mut packet = response("");
        let header_len = packet.len();
        packet.extend_from_slice(b"\x81\x05hello");
        let ok = handshake(&ClientOptions::default())
            .receive(&packet)
            .unwrap()
            .unwrap();
        assert_eq!(ok.body_start, header_len);
        assert_eq!(&packet[ok.body_start..], b"\x81\x05hello");
    }

    #[test]
    fn client_fails_on_status_other_than_101_keeping_headers_and_body() {
        let resp = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nX-Why: origin\r\n\r\nnope";
        match err(&ClientOptions::default(), resp) {
            HandshakeError::Status {
                status,
                reason,
                headers,
                body,
            } => {
                assert_eq!((status, reason.as_str()), (403, "Forbidden"));
                assert_eq!(headers[1].name, "X-Why");
                assert_eq!(body, b"nope");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn client_fails_on_200_ok() {
        let e = err(&ClientOptions::default(), b"HTTP/1.1 200 OK\r\n\r\n");
        assert!(matches!(e, HandshakeError::Status { status: 200, .. }));
    }

    #[test]
    fn client_fails_without_upgrade_websocket_rfc6455_4_1_item_2() {
        let no_upgrade = format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        );
        let wrong = no_upgrade.replace("Connection:", "Upgrade: h2c\r\nConnection:");
        for resp in [no_upgrade, wrong] {
            assert_eq!(
                err(&ClientOptions::default(), resp.as_bytes()),
                HandshakeError::MissingUpgradeWebSocket
            );
        }
    }

    #[test]
    fn client_fails_without_connection_upgrade_rfc6455_4_1_item_3() {
        let resp = String::from_utf8(response("")).unwrap();
        for replacement in ["", "Connection: keep-alive\r\n"] {
            let r = resp.replace("Connection: Upgrade\r\n", replacement);
            assert_eq!(
                err(&ClientOptions::default(), r.as_bytes()),
                HandshakeError::MissingConnectionUpgrade
            );
        }
    }

    #[test]
    fn client_fails_without_accept_rfc6455_4_1_item_4() {
        let resp = String::from_utf8(response("")).unwrap();
        let r = resp.replace(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"), "");
        assert_eq!(
            err(&ClientOptions::default(), r.as_bytes()),
            HandshakeError::MissingAccept
        );
    }

    #[test]
    fn client_fails_on_wrong_accept_rfc6455_4_1_item_4() {
        let resp = String::from_utf8(response("")).unwrap();
        let r = resp.replace(ACCEPT, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(
            err(&ClientOptions::default(), r.as_bytes()),
            HandshakeError::AcceptMismatch {
                expected: ACCEPT.into(),
                received: "dGhlIHNhbXBsZSBub25jZQ==".into()
            }
        );
    }

    #[test]
    fn client_fails_on_two_accept_headers() {
        let resp = response(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"));
        assert_eq!(
            err(&ClientOptions::default(), &resp),
            HandshakeError::DuplicateHeader("Sec-WebSocket-Accept")
        );
    }

    #[test]
    fn client_fails_on_subprotocol_not_offered_rfc6455_4_1_item_6() {
        let resp = response("Sec-WebSocket-Protocol: chat\r\n");
        assert_eq!(
            err(&ClientOptions::default(), &resp),
            HandshakeError::UnexpectedSubprotocol("chat".into())
        );
        let resp = response("Sec-WebSocket-Protocol: other\r\n");
        assert_eq!(
            err(&with_protocols(), &resp),
            HandshakeError::UnexpectedSubprotocol("other".into())
        );
        // Subprotocol names are compared exactly, and the server picks one, not a list.
        for answer in ["Chat", "chat, superchat", ""] {
            let resp = response(&format!("Sec-WebSocket-Protocol: {answer}\r\n"));
            assert_eq!(
                err(&with_protocols(), &resp),
                HandshakeError::UnexpectedSubprotocol(answer.into())
            );
        }
    }

    #[test]
    fn client_fails_on_two_subprotocol_headers() {
        let resp = response("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n");
        assert_eq!(
            err(&with_protocols(), &resp),
            HandshakeError::DuplicateHeader("Sec-WebSocket-Protocol")
        );
    }

    #[test]
    fn client_fails_on_extensions_not_offered_rfc6455_4_1_item_5() {
        let resp = response("Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert_eq!(
            err(&ClientOptions::default(), &resp),
            HandshakeError::UnexpectedExtensions("permessage-deflate".into())
        );
    }

    #[test]
    fn client_returns_offered_extensions_answer_joined() {
        let opts = ClientOptions {
            extensions: Some("permessage-deflate; client_max_window_bits".into()),
            ..Default::default()
        };
        let resp = response(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\
             sec-websocket-extensions: x-other\r\n",
        );
        let ok = handshake(&opts).receive(&resp).unwrap().unwrap();
        assert_eq!(
            ok.extensions.as_deref(),
            Some("permessage-deflate; server_no_context_takeover, x-other")
        );
        let mut resp = response("Sec-WebSocket-Extensions: ?\r\n");
        if let Some(pos) = resp.iter().position(|&b| b == b'?') {
            resp[pos] = 0x80;
        }
        assert_eq!(
            err(&opts, &resp),
            HandshakeError::NonUtf8Header("Sec-WebSocket-Extensions")
        );
    }

    #[test]
    fn client_tokens_are_case_insensitive() {
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive, UPGRADE\r\n\
             sec-websocket-accept: {ACCEPT}\r\n\r\n"
        );
        assert!(handshake(&ClientOptions::default())
            .receive(resp.as_bytes())
            .unwrap()
            .is_some());
    }

    #[test]
    fn client_fails_on_garbage_and_oversized_responses() {
        assert!(matches!(
            err(&ClientOptions::default(), b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
            HandshakeError::Malformed(_)
        ));
        let opts = ClientOptions {
            limits: Limits {
                max_header_bytes: 64,
                max_headers: 64,
            },
            ..Default::default()
        };
        assert_eq!(
            err(&opts, &response("")),
            HandshakeError::HeaderTooLarge { limit: 64 }
        );
        let opts = ClientOptions {
            limits: Limits {
                max_header_bytes: 8192,
                max_headers: 2,
            },
            ..Default::default()
        };
        assert_eq!(
            err(&opts, &response("")),
            HandshakeError::TooManyHeaders { limit: 2 }
        );
    }

    #[test]
    fn client_receive_after_the_end_is_an_error() {
        let mut hs = handshake(&ClientOptions::default());
        assert!(hs.receive(&response("")).unwrap().is_some());
        assert_eq!(hs.receive(b"x").unwrap_err(), HandshakeError::Finished);
    }
}
