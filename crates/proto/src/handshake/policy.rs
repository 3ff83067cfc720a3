//! What a server accepts: the rules a listener applies to a valid upgrade request before it
//! opens the connection, and the answers it gives when a request fails one.
//!
//! * Origin (RFC 6455 section 10.2): a server that only serves some web origins refuses the
//!   others with 403. Requests without Origin come from non-browser clients; whether they
//!   pass is the server's choice ([`Policy::require_origin`]).
//! * Subprotocol (section 4.2.2, item 5, `/subprotocol/`): the server picks the first of its
//!   own subprotocols, in its order of preference, that the client offered. Whether a client
//!   that offers none of them is refused (400) or served without a subprotocol is the
//!   server's choice ([`Policy::require_subprotocol`]).
//!
//! Every face of tidewire gets these rules from here (through the runtime's listen options):
//! none re-checks a request itself.

use super::server::{Rejection, Request};

/// A listener's acceptance rules. Borrowed, so that the runtime builds one per request from
/// its options without copying them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy<'a> {
    /// Subprotocols the server speaks, in its order of preference.
    pub subprotocols: &'a [String],
    /// Refuse (400) a client that offers none of `subprotocols`. Ignored when
    /// `subprotocols` is empty.
    pub require_subprotocol: bool,
    /// Web origins allowed to connect, compared without regard to ASCII case (RFC 6454
    /// serializes origins in lower case, browsers send them so). `None`: any origin.
    pub allowed_origins: Option<&'a [String]>,
    /// With `allowed_origins`, also refuse (403) a request without Origin.
    pub require_origin: bool,
}

impl Policy<'_> {
    /// Applies the rules to a request that [`super::ServerHandshake`] classified as a valid
    /// upgrade. Answers the subprotocol to select (borrowed from the request's offers), or
    /// the rejection to send. Origin is checked first: a forbidden origin learns nothing
    /// about the subprotocols.
    pub fn check<'r>(&self, request: &'r Request) -> Result<Option<&'r str>, Rejection> {
        if let Some(allowed) = self.allowed_origins {
            match &request.origin {
                Some(origin) if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) => {}
                Some(_) => return Err(Rejection::forbidden_origin()),
                None if self.require_origin => return Err(Rejection::missing_origin()),
                None => {}
            }
        }
        if self.subprotocols.is_empty() {
            return Ok(None);
        }
        let selected = self
            .subprotocols
            .iter()
            .find_map(|p| request.subprotocols.iter().find(|o| *o == p));
        match selected {
            Some(p) => Ok(Some(p.as_str())),
            None if !self.require_subprotocol => Ok(None),
            None if request.subprotocols.is_empty() => Err(Rejection::missing_subprotocol()),
            None => Err(Rejection::unsupported_subprotocol()),
        }
    }
}

/// The answers a server gives to requests it does not upgrade. Each is a complete
/// [`Rejection`]; [`Rejection::write_response`] writes it.
impl Rejection {
    fn new(status: u16, reason: &'static str) -> Rejection {
        Rejection {
            status,
            reason,
            headers: Vec::new(),
        }
    }

    /// 400: the request breaks RFC 6455 section 4.2.1 or HTTP itself.
    pub fn bad_request(reason: &'static str) -> Rejection {
        Rejection::new(400, reason)
    }

    /// 426 for a request that is not an upgrade at all, on a server that only speaks
    /// WebSocket: names the protocol and version to upgrade to (RFC 9110 section 15.5.22,
    /// RFC 6455 section 4.4).
    pub fn not_upgrade() -> Rejection {
        Rejection {
            status: 426,
            reason: "This is a WebSocket endpoint.",
            headers: vec![
                ("Upgrade".into(), "websocket".into()),
                ("Sec-WebSocket-Version".into(), super::VERSION.into()),
            ],
        }
    }

    /// 426 for an upgrade in another protocol version, with the version this server speaks
    /// (RFC 6455 section 4.2.2, item 4, and section 4.4).
    pub fn unsupported_version() -> Rejection {
        Rejection {
            status: 426,
            reason: "unsupported Sec-WebSocket-Version",
            headers: vec![("Sec-WebSocket-Version".into(), super::VERSION.into())],
        }
    }

    /// 400 for an extension offer that breaks its grammar (RFC 6455 section 9.1, RFC 7692
    /// section 5): a header the server cannot read makes the request bad.
    pub fn bad_extensions() -> Rejection {
        Rejection::new(400, "Malformed Sec-WebSocket-Extensions.")
    }

    /// 403 for an Origin the server does not serve (RFC 6455 section 4.2.2, item 4).
    pub fn forbidden_origin() -> Rejection {
        Rejection::new(403, "Origin not allowed.")
    }

    /// 403 for a request without Origin on a server that requires one.
    pub fn missing_origin() -> Rejection {
        Rejection::new(403, "Origin required.")
    }

    /// 400 for a client that offered no subprotocol to a server that requires one.
    pub fn missing_subprotocol() -> Rejection {
        Rejection::new(400, "Missing subprotocol.")
    }

    /// 400 for a client that offered only subprotocols the server does not speak, on a
    /// server that requires one.
    pub fn unsupported_subprotocol() -> Rejection {
        Rejection::new(400, "None of the offered subprotocols is supported.")
    }

    /// 503 for a request the application was asked to decide on (accept, reject, respond)
    /// and did not within the handshake time: the server could not serve it (RFC 9110
    /// section 15.6.4), said rather than closing without a word.
    pub fn not_decided() -> Rejection {
        Rejection::new(503, "The server did not answer in time.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{Limits, ServerHandshake, Upgrade};

    fn request(origin: Option<&str>, protocols: Option<&str>) -> Request {
        let mut text = String::from(
            "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        );
        if let Some(o) = origin {
            text.push_str(&format!("Origin: {o}\r\n"));
        }
        if let Some(p) = protocols {
            text.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
        }
        text.push_str("\r\n");
        let req = ServerHandshake::new(Limits::default())
            .receive(text.as_bytes())
            .unwrap()
            .unwrap();
        assert!(matches!(req.upgrade, Upgrade::WebSocket { .. }));
        req
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn response(r: &Rejection) -> String {
        let mut out = Vec::new();
        r.write_response(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn default_policy_accepts_anything_without_a_subprotocol() {
        let policy = Policy::default();
        assert_eq!(policy.check(&request(None, None)), Ok(None));
        assert_eq!(
            policy.check(&request(Some("http://x"), Some("chat"))),
            Ok(None)
        );
    }

    #[test]
    fn server_preference_decides_among_offers() {
        let ours = strings(&["v2", "v1"]);
        let policy = Policy {
            subprotocols: &ours,
            ..Policy::default()
        };
        assert_eq!(policy.check(&request(None, Some("v1, v2"))), Ok(Some("v2")));
        assert_eq!(policy.check(&request(None, Some("v1, x"))), Ok(Some("v1")));
        // Tokens are compared exactly (RFC 6455 section 11.3.4 registers them as given).
        assert_eq!(policy.check(&request(None, Some("V2"))), Ok(None));
    }

    #[test]
    fn optional_subprotocol_lets_clients_without_one_through() {
        let ours = strings(&["chat"]);
        let policy = Policy {
            subprotocols: &ours,
            ..Policy::default()
        };
        assert_eq!(policy.check(&request(None, None)), Ok(None));
        assert_eq!(policy.check(&request(None, Some("other"))), Ok(None));
    }

    #[test]
    fn required_subprotocol_refuses_with_400() {
        let ours = strings(&["chat"]);
        let policy = Policy {
            subprotocols: &ours,
            require_subprotocol: true,
            ..Policy::default()
        };
        assert_eq!(policy.check(&request(None, Some("chat"))), Ok(Some("chat")));
        let missing = policy.check(&request(None, None)).unwrap_err();
        assert_eq!(missing, Rejection::missing_subprotocol());
        assert!(response(&missing).starts_with("HTTP/1.1 400 Bad Request\r\n"));
        let other = policy.check(&request(None, Some("x, y"))).unwrap_err();
        assert_eq!(other, Rejection::unsupported_subprotocol());
        assert_eq!(other.status, 400);
        // Without subprotocols of its own, a server has nothing to require.
        let none = Policy {
            require_subprotocol: true,
            ..Policy::default()
        };
        assert_eq!(none.check(&request(None, Some("chat"))), Ok(None));
    }

    #[test]
    fn origin_outside_the_list_gets_403_whatever_the_case() {
        let allowed = strings(&["https://app.example"]);
        let policy = Policy {
            allowed_origins: Some(&allowed),
            ..Policy::default()
        };
        assert_eq!(
            policy.check(&request(Some("https://APP.example"), None)),
            Ok(None)
        );
        let other = policy
            .check(&request(Some("https://evil.example"), None))
            .unwrap_err();
        assert_eq!(other, Rejection::forbidden_origin());
        let text = response(&other);
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nOrigin not allowed.\n"), "{text}");
        // Without Origin: a non-browser client, let through unless required.
        assert_eq!(policy.check(&request(None, None)), Ok(None));
        let strict = Policy {
            require_origin: true,
            ..policy
        };
        assert_eq!(
            strict.check(&request(None, None)),
            Err(Rejection::missing_origin())
        );
    }

    #[test]
    fn origin_is_checked_before_the_subprotocol() {
        let allowed = strings(&["https://app.example"]);
        let ours = strings(&["chat"]);
        let policy = Policy {
            subprotocols: &ours,
            require_subprotocol: true,
            allowed_origins: Some(&allowed),
            require_origin: false,
        };
        let evil = request(Some("https://evil.example"), None);
        assert_eq!(policy.check(&evil), Err(Rejection::forbidden_origin()));
    }

    #[test]
    fn not_upgrade_names_protocol_and_version() {
        let text = response(&Rejection::not_upgrade());
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nUpgrade: websocket\r\n"), "{text}");
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\nThis is a WebSocket endpoint.\n"),
            "{text}"
        );
    }

    #[test]
    fn bad_extensions_is_a_400() {
        let text = response(&Rejection::bad_extensions());
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(
            text.ends_with("Malformed Sec-WebSocket-Extensions.\n"),
            "{text}"
        );
    }
}
