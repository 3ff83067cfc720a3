//! The opening handshake (RFC 6455 section 4), both roles, sans-IO.
//!
//! * [`client::ClientHandshake`] builds the upgrade request for a [`url::Url`] and checks the
//!   server's answer.
//! * [`server::ServerHandshake`] reads a request and classifies it (valid upgrade, plain HTTP,
//!   or a broken upgrade with the response to send); [`server::accept_response`] and
//!   [`server::http_response`] write the answers.
//! * [`policy::Policy`] is what a server accepts (Origin, subprotocol) and
//!   [`Rejection`]'s constructors are the answers it gives otherwise.
//!
//! Both readers take bytes as they arrive, answer `Ok(None)` until the header block is
//! complete, never hold more than [`Limits::max_header_bytes`], and report where the
//! WebSocket data that came in the same read begins (`body_start`).

pub mod client;
pub(crate) mod head;
pub mod policy;
pub mod server;
pub mod url;

pub use client::{check_subprotocols, ClientHandshake, ClientOptions, ClientResponse};
pub use policy::Policy;
pub use server::{accept_response, http_response, Rejection, Request, ServerHandshake, Upgrade};
pub use url::{Url, UrlError};

use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::fmt;

/// The GUID that RFC 6455 section 1.3 appends to the client's key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version RFC 6455 defines (section 4.1, item 9).
pub const VERSION: &str = "13";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
///
/// `key` is the header value as sent (the base64 text, not the 16 decoded bytes).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Bounds on what a peer may make us buffer while reading a handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The whole header block: start line, header fields and the empty line. Default 8192.
    pub max_header_bytes: usize,
    /// Number of header fields. Default 64.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 8192,
            max_headers: 64,
        }
    }
}

/// One header field as received: name with its original case, value without the
/// surrounding whitespace, in the order of the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

/// Why a handshake failed, or why a request or response could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    // Reading, either role.
    /// The header block did not end within `limit` bytes.
    HeaderTooLarge { limit: usize },
    /// More than `limit` header fields.
    TooManyHeaders { limit: usize },
    /// Not HTTP/1.x: the text says which part was wrong.
    Malformed(&'static str),
    /// `receive` was called again after the handshake completed or failed.
    Finished,

    // Client role: the server's response (RFC 6455 section 4.1, "the client MUST Fail the
    // WebSocket Connection" items 1-6).
    /// The status was not 101. The headers and whatever body arrived with them are kept so
    /// that the application can show them (a 401 or a redirect, say).
    Status {
        status: u16,
        reason: String,
        headers: Vec<Header>,
        /// Bytes that followed the header block in the same read; possibly only part of the
        /// body announced by Content-Length.
        body: Vec<u8>,
    },
    /// No `Upgrade` header, or none whose token list holds `websocket`.
    MissingUpgradeWebSocket,
    /// No `Connection` header, or none whose token list holds `upgrade`.
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Accept` header.
    MissingAccept,
    /// `Sec-WebSocket-Accept` does not match the key that was sent.
    AcceptMismatch { expected: String, received: String },
    /// A header that must appear at most once appeared more than once.
    DuplicateHeader(&'static str),
    /// The server selected a subprotocol that the client did not offer (or offered none).
    UnexpectedSubprotocol(String),
    /// The server answered with extensions although the client offered none.
    UnexpectedExtensions(String),
    /// A header whose value must be text was not UTF-8.
    NonUtf8Header(&'static str),

    // Building a request or a response.
    /// A header name that is not an RFC 7230 token.
    InvalidHeaderName(String),
    /// A header value with CR, LF or another control character (named by its header).
    InvalidHeaderValue(String),
    /// A header that the handshake writes itself, given again by the caller.
    ReservedHeader(String),
    /// A subprotocol name that is not a token (RFC 6455 section 4.1, item 10).
    InvalidSubprotocol(String),
    /// The same subprotocol offered twice (RFC 6455 section 4.1, item 10: "MUST all be
    /// unique").
    DuplicateSubprotocol(String),
    /// A status code outside 100-999.
    InvalidStatus(u16),
    /// A body given with a status that may not carry one (1xx, 204, 304).
    BodyNotAllowed(u16),
    /// The operating system's random generator failed, so no key could be made.
    RandomUnavailable,
}

impl HandshakeError {
    /// For errors found while a server reads a request: the response to send before closing
    /// (431 for limits, 400 for malformed HTTP). `None` for every other error.
    pub fn rejection(&self) -> Option<Rejection> {
        let (status, reason) = match self {
            HandshakeError::HeaderTooLarge { .. } => (431, "request header block too large"),
            HandshakeError::TooManyHeaders { .. } => (431, "too many request header fields"),
            HandshakeError::Malformed(what) => (400, *what),
            _ => return None,
        };
        Some(Rejection {
            status,
            reason,
            headers: Vec::new(),
        })
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HandshakeError as E;
        match self {
            E::HeaderTooLarge { limit } => {
                write!(f, "handshake header block longer than {limit} bytes")
            }
            E::TooManyHeaders { limit } => {
                write!(f, "handshake has more than {limit} header fields")
            }
            E::Malformed(what) => write!(f, "malformed HTTP: {what}"),
            E::Finished => f.write_str("the handshake is already over"),
            E::Status { status, reason, .. } => {
                write!(f, "server answered {status} {reason} instead of 101")
            }
            E::MissingUpgradeWebSocket => f.write_str("response lacks Upgrade: websocket"),
            E::MissingConnectionUpgrade => f.write_str("response lacks Connection: upgrade"),
            E::MissingAccept => f.write_str("response lacks Sec-WebSocket-Accept"),
            E::AcceptMismatch { expected, received } => write!(
                f,
                "Sec-WebSocket-Accept is {received:?}, expected {expected:?}"
            ),
            E::DuplicateHeader(name) => write!(f, "more than one {name} header"),
            E::UnexpectedSubprotocol(p) => {
                write!(
                    f,
                    "server selected subprotocol {p:?}, which was not offered"
                )
            }
            E::UnexpectedExtensions(e) => {
                write!(f, "server answered extensions {e:?}, none were offered")
            }
            E::NonUtf8Header(name) => write!(f, "{name} header is not UTF-8"),
            E::InvalidHeaderName(name) => write!(f, "invalid header name {name:?}"),
            E::InvalidHeaderValue(name) => write!(f, "invalid value for header {name:?}"),
            E::ReservedHeader(name) => {
                write!(f, "header {name:?} is written by the handshake itself")
            }
            E::InvalidSubprotocol(p) => write!(f, "invalid subprotocol name {p:?}"),
            E::DuplicateSubprotocol(p) => write!(f, "subprotocol {p:?} offered twice"),
            E::InvalidStatus(s) => write!(f, "invalid HTTP status {s}"),
            E::BodyNotAllowed(s) => write!(f, "HTTP status {s} may not carry a body"),
            E::RandomUnavailable => f.write_str("the OS random generator failed"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Whether a comma-separated header value (`Connection: keep-alive, Upgrade`) holds `token`,
/// compared without regard to ASCII case, with optional whitespace around each element.
pub fn header_has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| trim_ows(item).eq_ignore_ascii_case(token.as_bytes()))
}

/// Strips optional whitespace (SP, HTAB) from both ends (RFC 7230 section 3.2.3).
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// An RFC 7230 `token`: one or more `tchar`. Header names and subprotocols are tokens.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A header value we may write: visible ASCII, obs-text, SP and HTAB, and nothing that could
/// end the line (CR, LF) or confuse a peer (NUL and other controls).
pub(crate) fn is_valid_value(s: &[u8]) -> bool {
    s.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Checks a caller-supplied header: name a token, value writable, name not among `reserved`.
pub(crate) fn check_header(
    name: &str,
    value: &str,
    reserved: &[&str],
) -> Result<(), HandshakeError> {
    if !is_token(name.as_bytes()) {
        return Err(HandshakeError::InvalidHeaderName(name.to_owned()));
    }
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(HandshakeError::ReservedHeader(name.to_owned()));
    }
    if !is_valid_value(value.as_bytes()) {
        return Err(HandshakeError::InvalidHeaderValue(name.to_owned()));
    }
    Ok(())
}

/// Appends `name: value\r\n`.
pub(crate) fn write_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Headers named `name` (ASCII case-insensitive), in order.
pub(crate) fn values<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_section_1_3_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn limits_default_to_8k_and_64_headers() {
        let l = Limits::default();
        assert_eq!((l.max_header_bytes, l.max_headers), (8192, 64));
    }

    #[test]
    fn token_lists_are_comma_separated_case_insensitive_with_ows() {
        assert!(header_has_token(b"Upgrade", "upgrade"));
        assert!(header_has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(header_has_token(b"keep-alive,\tUPGRADE  ", "upgrade"));
        assert!(header_has_token(b" ,,websocket,", "websocket"));
        assert!(!header_has_token(b"keep-alive", "upgrade"));
        assert!(!header_has_token(b"upgrade-insecure", "upgrade"));
        assert!(!header_has_token(b"up grade", "upgrade"));
        assert!(!header_has_token(b"", "upgrade"));
    }

    #[test]
    fn trim_ows_strips_only_spaces_and_tabs() {
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b"\r\nx"), b"\r\nx");
    }

    #[test]
    fn tokens_exclude_separators_and_controls() {
        assert!(is_token(b"chat.v2+json"));
        assert!(is_token(b"Sec-WebSocket-Key"));
        for bad in [
            &b""[..],
            b"a b",
            b"a,b",
            b"a:b",
            b"a\r",
            b"a/b",
            b"\xc3\xa9",
            b"(x)",
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn header_values_refuse_line_breaks_and_controls() {
        assert!(is_valid_value(b"text\twith tab and \x80 obs-text"));
        for bad in [&b"a\rb"[..], b"a\nb", b"a\0b", b"a\x7fb", b"\x1b"] {
            assert!(!is_valid_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn check_header_names_each_failure() {
        assert_eq!(check_header("X-A", "1", &["Host"]), Ok(()));
        assert_eq!(
            check_header("X A", "1", &[]),
            Err(HandshakeError::InvalidHeaderName("X A".into()))
        );
        assert_eq!(
            check_header("host", "1", &["Host"]),
            Err(HandshakeError::ReservedHeader("host".into()))
        );
        assert_eq!(
            check_header("X-A", "1\r\nEvil: yes", &[]),
            Err(HandshakeError::InvalidHeaderValue("X-A".into()))
        );
    }

    #[test]
    fn read_errors_map_to_431_and_400_rejections() {
        let r = HandshakeError::HeaderTooLarge { limit: 1 }
            .rejection()
            .map(|r| r.status);
        assert_eq!(r, Some(431));
        let r = HandshakeError::TooManyHeaders { limit: 1 }
            .rejection()
            .map(|r| r.status);
        assert_eq!(r, Some(431));
        let r = HandshakeError::Malformed("x").rejection().map(|r| r.status);
        assert_eq!(r, Some(400));
        assert_eq!(HandshakeError::MissingAccept.rejection(), None);
    }

    #[test]
    fn errors_display_their_details() {
        let e = HandshakeError::Status {
            status: 403,
            reason: "Forbidden".into(),
            headers: vec![],
            body: vec![],
        };
        assert_eq!(
            e.to_string(),
            "server answered 403 Forbidden instead of 101"
        );
        let e: Box<dyn std::error::Error> = Box::new(HandshakeError::DuplicateHeader("Host"));
        assert_eq!(e.to_string(), "more than one Host header");
    }
}
