//! Offers and answers (RFC 7692 sections 5 and 7.1).
//!
//! Header strings here are field values, without `Sec-WebSocket-Extensions:`.

use std::fmt;
use std::fmt::Write as _;

use super::config::{DeflateConfig, DeflateParams, MAX_WINDOW_BITS};
use super::extlist::{self, Param};
use super::EXTENSION_NAME;

const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// Why an answer (client side) or a whole header (server side) was refused.
///
/// A client that gets one fails the connection (RFC 7692 section 7.1: "_Fail the WebSocket
/// Connection_"; close code 1010 if it gets that far). A server gets only [`Syntax`]: the
/// request does not match RFC 6455 section 4.2.1, so it answers 400. Offers that are merely
/// unacceptable are declined one by one, never reported.
///
/// [`Syntax`]: NegotiationError::Syntax
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NegotiationError {
    /// The value does not follow the extension-list grammar (RFC 6455 section 9.1), or a
    /// server answer was empty; `at` is the byte offset of the first unreadable byte.
    Syntax { at: usize },
    /// The server answered with an extension the client did not offer (RFC 6455 section
    /// 4.1), including permessage-deflate when the client offered nothing.
    UnexpectedExtension(String),
    /// The server accepted permessage-deflate more than once (RFC 7692 section 5).
    DuplicateExtension,
    /// A parameter RFC 7692 does not define.
    UnknownParameter(String),
    /// The same parameter twice.
    DuplicateParameter(&'static str),
    /// A value where none is allowed, no value where one is required, or a window size that
    /// is not a decimal 8..=15 without leading zeros.
    InvalidValue(&'static str),
    /// A parameter the client offered and the server had to echo (`server_no_context_takeover`,
    /// `server_max_window_bits`) is missing.
    MissingParameter(&'static str),
    /// `client_max_window_bits` in an answer to an offer without it (RFC 7692 section 7.1.2.2).
    UnsolicitedParameter(&'static str),
    /// A window larger than the client offered.
    WindowTooLarge(&'static str),
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NegotiationError::Syntax { at } => {
                write!(f, "malformed Sec-WebSocket-Extensions at byte {at}")
            }
            NegotiationError::UnexpectedExtension(name) => {
                write!(f, "server accepted extension {name:?} that was not offered")
            }
            NegotiationError::DuplicateExtension => {
                f.write_str("server accepted permessage-deflate twice")
            }
            NegotiationError::UnknownParameter(name) => {
                write!(f, "unknown permessage-deflate parameter {name:?}")
            }
            NegotiationError::DuplicateParameter(name) => write!(f, "duplicate parameter {name}"),
            NegotiationError::InvalidValue(name) => write!(f, "invalid value for {name}"),
            NegotiationError::MissingParameter(name) => {
                write!(f, "server did not answer {name}")
            }
            NegotiationError::UnsolicitedParameter(name) => {
                write!(f, "server sent {name} that was not offered")
            }
            NegotiationError::WindowTooLarge(name) => {
                write!(f, "server answered {name} larger than offered")
            }
        }
    }
}

impl std::error::Error for NegotiationError {}

impl From<extlist::SyntaxError> for NegotiationError {
    fn from(e: extlist::SyntaxError) -> Self {
        NegotiationError::Syntax { at: e.at }
    }
}

/// `client_max_window_bits` in an offer: absent, bare (the client supports the parameter and
/// lets the server pick), or with the client's own limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientWindow {
    Absent,
    Bare,
    Value(u8),
}

/// The permessage-deflate parameters of one offer or answer, checked for duplicates and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: ClientWindow,
}

impl Params {
    /// Reads one element's parameters. `is_offer`: a bare `client_max_window_bits` is allowed
    /// (only in offers, RFC 7692 section 7.1.2.2).
    fn read(params: &[Param<'_>], is_offer: bool) -> Result<Params, NegotiationError> {
        let mut out = Params {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: ClientWindow::Absent,
        };
        for param in params {
            let value = param.value.as_deref();
            match param.name {
                SERVER_NO_CONTEXT_TAKEOVER => flag(
                    &mut out.server_no_context_takeover,
                    SERVER_NO_CONTEXT_TAKEOVER,
                    value,
                )?,
                CLIENT_NO_CONTEXT_TAKEOVER => flag(
                    &mut out.client_no_context_takeover,
                    CLIENT_NO_CONTEXT_TAKEOVER,
                    value,
                )?,
                SERVER_MAX_WINDOW_BITS => {
                    if out.server_max_window_bits.is_some() {
                        return Err(NegotiationError::DuplicateParameter(SERVER_MAX_WINDOW_BITS));
                    }
                    let bits = value.and_then(window_bits);
                    let bits =
                        bits.ok_or(NegotiationError::InvalidValue(SERVER_MAX_WINDOW_BITS))?;
                    out.server_max_window_bits = Some(bits);
                }
                CLIENT_MAX_WINDOW_BITS => {
                    if out.client_max_window_bits != ClientWindow::Absent {
                        return Err(NegotiationError::DuplicateParameter(CLIENT_MAX_WINDOW_BITS));
                    }
                    out.client_max_window_bits = match value {
                        None if is_offer => ClientWindow::Bare,
                        _ => match value.and_then(window_bits) {
                            Some(bits) => ClientWindow::Value(bits),
                            None => {
                                return Err(NegotiationError::InvalidValue(CLIENT_MAX_WINDOW_BITS))
                            }
                        },
                    };
                }
                other => return Err(NegotiationError::UnknownParameter(other.to_owned())),
            }
        }
        Ok(out)
    }

    /// The offer a client with this configuration sends.
    fn offer(cfg: &DeflateConfig) -> Params {
        Params {
            server_no_context_takeover: cfg.server_no_context_takeover,
            client_no_context_takeover: cfg.client_no_context_takeover,
            server_max_window_bits: cfg.server_max_window_bits,
            client_max_window_bits: match cfg.client_max_window_bits {
                None => ClientWindow::Bare,
                Some(bits) => ClientWindow::Value(bits),
            },
        }
    }

    /// Renders `permessage-deflate; ...` in the order of RFC 7692 section 7.1.
    fn render(&self) -> String {
        let mut s = String::with_capacity(128);
        s.push_str(EXTENSION_NAME);
        if self.server_no_context_takeover {
            s.push_str("; ");
            s.push_str(SERVER_NO_CONTEXT_TAKEOVER);
        }
        if self.client_no_context_takeover {
            s.push_str("; ");
            s.push_str(CLIENT_NO_CONTEXT_TAKEOVER);
        }
        if let Some(bits) = self.server_max_window_bits {
            // Writing to a String cannot fail.
            let _ = write!(s, "; {SERVER_MAX_WINDOW_BITS}={bits}");
        }
        match self.client_max_window_bits {
            ClientWindow::Absent => {}
            ClientWindow::Bare => {
                s.push_str("; ");
                s.push_str(CLIENT_MAX_WINDOW_BITS);
            }
            ClientWindow::Value(bits) => {
                let _ = write!(s, "; {CLIENT_MAX_WINDOW_BITS}={bits}");
            }
        }
        s
    }
}

fn flag(seen: &mut bool, name: &'static str, value: Option<&str>) -> Result<(), NegotiationError> {
    if *seen {
        return Err(NegotiationError::DuplicateParameter(name));
    }
    if value.is_some() {
        return Err(NegotiationError::InvalidValue(name));
    }
    *seen = true;
    Ok(())
}

/// "a decimal integer value without leading zeroes between 8 to 15, inclusive"
/// (RFC 7692 section 7.1.2); a quoted value has already been unescaped.
fn window_bits(value: &str) -> Option<u8> {
    match value.as_bytes() {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// The value of the client's `Sec-WebSocket-Extensions` request header: one offer, e.g.
/// `permessage-deflate; client_max_window_bits`. Empty when `cfg.enabled` is false, in which
/// case no header should be sent.
pub fn client_offer(cfg: &DeflateConfig) -> String {
    if !cfg.enabled {
        return String::new();
    }
    Params::offer(cfg).render()
}

/// Checks the server's `Sec-WebSocket-Extensions` answer against what [`client_offer`] sent
/// for the same `cfg`, and returns what the connection will use.
///
/// Call it only when the response has the header (no header: no compression). Every error
/// means the client must fail the connection (RFC 7692 section 7.1, RFC 6455 section 4.1).
pub fn client_accept(
    cfg: &DeflateConfig,
    response: &str,
) -> Result<DeflateParams, NegotiationError> {
    let offer = cfg.enabled.then(|| Params::offer(cfg));
    accept_answer(offer.as_ref(), response)
}

/// [`client_accept`] against an explicit offer (`None`: nothing was offered).
fn accept_answer(
    offer: Option<&Params>,
    response: &str,
) -> Result<DeflateParams, NegotiationError> {
    let list = extlist::parse(response)?;
    let mut answer = None;
    for ext in &list {
        if ext.name != EXTENSION_NAME || offer.is_none() {
            return Err(NegotiationError::UnexpectedExtension(ext.name.to_owned()));
        }
        if answer.is_some() {
            return Err(NegotiationError::DuplicateExtension);
        }
        answer = Some(Params::read(&ext.params, false)?);
    }
    // A present but empty header is not a valid 1#extension list.
    let (Some(offer), Some(answer)) = (offer, answer) else {
        return Err(NegotiationError::Syntax { at: response.len() });
    };

    // Section 7.1.1.1: the server may add it, and must keep it if offered.
    if offer.server_no_context_takeover && !answer.server_no_context_takeover {
        return Err(NegotiationError::MissingParameter(
            SERVER_NO_CONTEXT_TAKEOVER,
        ));
    }
    // Section 7.1.2.1: an offered limit must be answered with the same or a smaller value; the
    // server may announce a limit it was not asked for.
    let server_max_window_bits = match (offer.server_max_window_bits, answer.server_max_window_bits)
    {
        (Some(_), None) => return Err(NegotiationError::MissingParameter(SERVER_MAX_WINDOW_BITS)),
        (Some(offered), Some(bits)) if bits > offered => {
            return Err(NegotiationError::WindowTooLarge(SERVER_MAX_WINDOW_BITS))
        }
        (_, Some(bits)) => bits,
        (None, None) => MAX_WINDOW_BITS,
    };
    // Section 7.1.2.2: only if offered; a value never above the one offered; without an answer
    // the client keeps the limit it announced.
    let client_max_window_bits = match (offer.client_max_window_bits, answer.client_max_window_bits)
    {
        (ClientWindow::Absent, ClientWindow::Absent) => MAX_WINDOW_BITS,
        (ClientWindow::Absent, _) => {
            return Err(NegotiationError::UnsolicitedParameter(
                CLIENT_MAX_WINDOW_BITS,
            ))
        }
        (ClientWindow::Value(offered), ClientWindow::Value(bits)) if bits > offered => {
            return Err(NegotiationError::WindowTooLarge(CLIENT_MAX_WINDOW_BITS))
        }
        (_, ClientWindow::Value(bits)) => bits,
        (ClientWindow::Value(offered), _) => offered,
        (ClientWindow::Bare, _) => MAX_WINDOW_BITS,
    };
    Ok(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        // Section 7.1.1.2: offered, it was a promise; answered, it is an order.
        client_no_context_takeover: answer.client_no_context_takeover
            || offer.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    })
}

/// Picks the first permessage-deflate offer the server can honour and builds the answer.
///
/// `offers` is every `Sec-WebSocket-Extensions` request value joined with ", ". Offers with
/// unknown, duplicate or invalid parameters are declined and the next one is tried (RFC 7692
/// section 7.1); other extensions are ignored. `Ok(None)`: decline, send no header.
/// `Err` only for a value that breaks the grammar of RFC 6455 section 9.1, which makes the
/// whole request invalid (section 4.2.1: answer 400).
pub fn server_negotiate(
    cfg: &DeflateConfig,
    offers: &str,
) -> Result<Option<(DeflateParams, String)>, NegotiationError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let list = extlist::parse(offers)?;
    let accepted = list
        .iter()
        .filter(|ext| ext.name == EXTENSION_NAME)
        .find_map(|ext| Params::read(&ext.params, true).ok());
    Ok(accepted.map(|offer| answer_offer(cfg, &offer)))
}

fn answer_offer(cfg: &DeflateConfig, offer: &Params) -> (DeflateParams, String) {
    let ours = cfg.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS);
    // Announced only when asked: a server may always compress with less than the agreed
    // maximum, and some clients fail on an unsolicited server_max_window_bits.
    let server_max_window_bits = offer.server_max_window_bits.map(|asked| asked.min(ours));
    let client_max_window_bits = match (offer.client_max_window_bits, cfg.client_max_window_bits) {
        (ClientWindow::Absent, _) | (ClientWindow::Bare, None) => ClientWindow::Absent,
        (ClientWindow::Bare, Some(wanted)) => ClientWindow::Value(wanted),
        (ClientWindow::Value(offered), wanted) => {
            ClientWindow::Value(offered.min(wanted.unwrap_or(MAX_WINDOW_BITS)))
        }
    };
    let answer = Params {
        server_no_context_takeover: offer.server_no_context_takeover
            || cfg.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || cfg.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    };
    let params = DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        client_no_context_takeover: answer.client_no_context_takeover,
        server_max_window_bits: server_max_window_bits.unwrap_or(ours),
        client_max_window_bits: match client_max_window_bits {
            ClientWindow::Value(bits) => bits,
            _ => MAX_WINDOW_BITS,
        },
    };
    (params, answer.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::{Compressor, Decompressor};
    use crate::Role;

    fn cfg() -> DeflateConfig {
        DeflateConfig::default()
    }

    fn params(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: sbits,
            client_max_window_bits: cbits,
        }
    }

    fn accepted(cfg: &DeflateConfig, offers: &str) -> (DeflateParams, String) {
        server_negotiate(cfg, offers)
            .unwrap()
            .unwrap_or_else(|| panic!("declined {offers:?}"))
    }

    fn declined(cfg: &DeflateConfig, offers: &str) -> bool {
        server_negotiate(cfg, offers).unwrap().is_none()
    }

    #[test]
    fn client_offers_client_max_window_bits_so_the_server_may_choose() {
        assert_eq!(
            client_offer(&cfg()),
            "permessage-deflate; client_max_window_bits"
        );
        let all = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(12),
            ..cfg()
        };
        assert_eq!(
            client_offer(&all),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12"
        );
        assert_eq!(
            client_offer(&DeflateConfig {
                enabled: false,
                ..cfg()
            }),
            ""
        );
    }

    #[test]
    fn server_accepts_a_bare_offer_with_a_bare_answer() {
        assert_eq!(
            accepted(&cfg(), "permessage-deflate"),
            (DeflateParams::default(), EXTENSION_NAME.into())
        );
    }

    #[test]
    fn rfc7692_section_5_2_example_first_offer_with_server_max_window_bits() {
        let offers = "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
                      permessage-deflate; client_max_window_bits";
        let (p, answer) = accepted(&cfg(), offers);
        assert_eq!(answer, "permessage-deflate; server_max_window_bits=10");
        assert_eq!(p, params(false, false, 10, 15));
        assert_eq!(
            client_accept(&cfg(), &answer).unwrap(),
            params(false, false, 10, 15)
        );
    }

    #[test]
    fn server_skips_offers_it_must_decline_and_takes_the_next() {
        for first in [
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits",
        ] {
            let offers = format!("{first}, permessage-deflate; server_no_context_takeover");
            let (p, answer) = accepted(&cfg(), &offers);
            assert_eq!(
                answer, "permessage-deflate; server_no_context_takeover",
                "{first}"
            );
            assert_eq!(p, params(true, false, 15, 15));
        }
    }

    #[test]
    fn server_reads_quoted_values() {
        let (p, answer) = accepted(
            &cfg(),
            r#"permessage-deflate; client_max_window_bits="10"; server_max_window_bits = "9""#,
        );
        assert_eq!(
            answer,
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10"
        );
        assert_eq!(p, params(false, false, 9, 10));
        assert!(declined(
            &cfg(),
            r#"permessage-deflate; client_max_window_bits="1 0""#
        ));
    }

    #[test]
    fn server_declines_duplicate_parameters() {
        for offer in [
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits",
        ] {
            assert!(declined(&cfg(), offer), "{offer}");
        }
    }

    #[test]
    fn server_declines_unknown_parameters() {
        for offer in [
            "permessage-deflate; foo",
            "permessage-deflate; foo=1",
            "permessage-deflate; Server_No_Context_Takeover",
        ] {
            assert!(declined(&cfg(), offer), "{offer}");
        }
    }

    #[test]
    fn server_declines_window_bits_out_of_range_or_not_canonical() {
        for value in [
            "7", "16", "0", "08", "010", "1a", "+9", "-9", "9.0", "\"\"", "\"8 \"", "255",
        ] {
            for name in [SERVER_MAX_WINDOW_BITS, CLIENT_MAX_WINDOW_BITS] {
                let offer = format!("permessage-deflate; {name}={value}");
                assert!(declined(&cfg(), &offer), "{offer}");
            }
        }
        for bits in 8..=15 {
            assert!(!declined(
                &cfg(),
                &format!("permessage-deflate; server_max_window_bits={bits}")
            ));
        }
    }

    #[test]
    fn server_declines_no_context_takeover_with_a_value() {
        assert!(declined(
            &cfg(),
            "permessage-deflate; server_no_context_takeover=true"
        ));
        assert!(declined(
            &cfg(),
            "permessage-deflate; client_no_context_takeover=\"\""
        ));
    }

    #[test]
    fn server_declines_server_max_window_bits_without_value() {
        assert!(declined(
            &cfg(),
            "permessage-deflate; server_max_window_bits"
        ));
    }

    #[test]
    fn server_limits_the_client_window_only_when_the_client_offered_the_parameter() {
        let limited = DeflateConfig {
            client_max_window_bits: Some(10),
            ..cfg()
        };
        // Bare: the client lets the server choose.
        let (p, answer) = accepted(&limited, "permessage-deflate; client_max_window_bits");
        assert_eq!(answer, "permessage-deflate; client_max_window_bits=10");
        assert_eq!(p.client_max_window_bits, 10);
        // With a value: the smaller of both.
        let (_, answer) = accepted(&limited, "permessage-deflate; client_max_window_bits=12");
        assert_eq!(answer, "permessage-deflate; client_max_window_bits=10");
        let (p, answer) = accepted(&limited, "permessage-deflate; client_max_window_bits=9");
        assert_eq!(answer, "permessage-deflate; client_max_window_bits=9");
        assert_eq!(p.client_max_window_bits, 9);
        // Not offered: it may not be sent (section 7.1.2.2); the client is accepted with 15.
        let (p, answer) = accepted(&limited, "permessage-deflate");
        assert_eq!(answer, "permessage-deflate");
        assert_eq!(p.client_max_window_bits, 15);
        // No server preference: a bare offer gets no value.
        let (p, answer) = accepted(&cfg(), "permessage-deflate; client_max_window_bits");
        assert_eq!(answer, "permessage-deflate");
        assert_eq!(p.client_max_window_bits, 15);
    }

    #[test]
    fn server_caps_its_own_window_and_announces_it_only_when_asked() {
        let small = DeflateConfig {
            server_max_window_bits: Some(12),
            ..cfg()
        };
        let (p, answer) = accepted(&small, "permessage-deflate");
        assert_eq!(answer, "permessage-deflate");
        assert_eq!(p.server_max_window_bits, 12);
        let (p, answer) = accepted(&small, "permessage-deflate; server_max_window_bits=15");
        assert_eq!(answer, "permessage-deflate; server_max_window_bits=12");
        assert_eq!(p.server_max_window_bits, 12);
        let (p, answer) = accepted(&small, "permessage-deflate; server_max_window_bits=8");
        assert_eq!(answer, "permessage-deflate; server_max_window_bits=8");
        assert_eq!(p.server_max_window_bits, 8);
    }

    #[test]
    fn server_honours_and_imposes_no_context_takeover() {
        let (p, answer) = accepted(
            &cfg(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        );
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(p, params(true, true, 15, 15));
        let strict = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..cfg()
        };
        let (p, answer) = accepted(&strict, "permessage-deflate");
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(p, params(true, true, 15, 15));
    }

    #[test]
    fn server_ignores_other_extensions() {
        let (p, answer) = accepted(
            &cfg(),
            "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits, foo",
        );
        assert_eq!(
            (p, answer.as_str()),
            (DeflateParams::default(), "permessage-deflate")
        );
        assert!(declined(
            &cfg(),
            "x-webkit-deflate-frame; no_context_takeover"
        ));
        assert!(declined(&cfg(), ""));
        assert!(declined(&cfg(), "Permessage-Deflate"));
    }

    #[test]
    fn server_with_compression_disabled_declines_everything() {
        let off = DeflateConfig {
            enabled: false,
            ..cfg()
        };
        assert!(declined(&off, "permessage-deflate"));
        assert!(declined(&off, "permessage-deflate;;"));
    }

    #[test]
    fn server_fails_the_handshake_on_a_malformed_header() {
        for bad in [
            "permessage-deflate;",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate x",
            "permessage-deflate; a=\"1",
        ] {
            assert!(
                matches!(
                    server_negotiate(&cfg(), bad),
                    Err(NegotiationError::Syntax { .. })
                ),
                "{bad}"
            );
        }
        // Even when a good offer comes first: the request as a whole is invalid.
        assert!(server_negotiate(&cfg(), "permessage-deflate, @").is_err());
    }

    #[test]
    fn server_can_honour_every_valid_offer_and_both_ends_agree() {
        let windows = [None, Some(8), Some(12), Some(15)];
        let mut configs = Vec::new();
        for snct in [false, true] {
            for cnct in [false, true] {
                for sbits in windows {
                    for cbits in windows {
                        configs.push(DeflateConfig {
                            server_no_context_takeover: snct,
                            client_no_context_takeover: cnct,
                            server_max_window_bits: sbits,
                            client_max_window_bits: cbits,
                            ..cfg()
                        });
                    }
                }
            }
        }
        let mut exchanged = 0;
        for (i, client) in configs.iter().enumerate() {
            for (j, server) in configs.iter().enumerate() {
                let (sp, answer) = accepted(server, &client_offer(client));
                let cp = client_accept(client, &answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
                // The server may compress with less than it announced; the rest is shared.
                assert!(sp.server_max_window_bits <= cp.server_max_window_bits);
                assert_eq!(
                    DeflateParams {
                        server_max_window_bits: cp.server_max_window_bits,
                        ..sp
                    },
                    cp
                );
                if let Some(bits) = client.client_max_window_bits {
                    assert!(cp.client_max_window_bits <= bits);
                }
                if let Some(bits) = server.server_max_window_bits {
                    assert!(sp.server_max_window_bits <= bits);
                }
                if (i * configs.len() + j) % 13 == 0 {
                    exchange(&sp, &cp);
                    exchanged += 1;
                }
            }
        }
        assert!(exchanged > 300);
    }

    /// A few messages each way with what each end agreed.
    fn exchange(server: &DeflateParams, client: &DeflateParams) {
        let msg = b"permessage-deflate permessage-deflate, hello hello world".repeat(8);
        for (params_out, role_out, params_in, role_in) in [
            (server, Role::Server, client, Role::Client),
            (client, Role::Client, server, Role::Server),
        ] {
            let mut c = Compressor::new(params_out, role_out, 1, 8);
            let mut d = Decompressor::new(params_in, role_in);
            for _ in 0..3 {
                let mut wire = Vec::new();
                c.compress(&msg, true, &mut wire).unwrap();
                let mut out = Vec::new();
                d.decompress(&wire, &mut out, usize::MAX).unwrap();
                d.finish(&mut out, usize::MAX).unwrap();
                assert_eq!(out, msg);
            }
        }
    }

    #[test]
    fn client_accepts_what_the_rfc_lets_a_server_answer() {
        let ok = |cfg: &DeflateConfig, answer: &str| {
            client_accept(cfg, answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
        };
        assert_eq!(ok(&cfg(), "permessage-deflate"), DeflateParams::default());
        // Unsolicited server_no_context_takeover and server_max_window_bits (7.1.1.1, 7.1.2.1).
        assert_eq!(
            ok(&cfg(), "permessage-deflate; server_no_context_takeover"),
            params(true, false, 15, 15)
        );
        assert_eq!(
            ok(&cfg(), "permessage-deflate; server_max_window_bits=10"),
            params(false, false, 10, 15)
        );
        // The server orders no context takeover, or picks the client window we let it pick.
        assert_eq!(
            ok(&cfg(), "permessage-deflate; client_no_context_takeover"),
            params(false, true, 15, 15)
        );
        assert_eq!(
            ok(&cfg(), "permessage-deflate; client_max_window_bits=9"),
            params(false, false, 15, 9)
        );
        assert_eq!(
            ok(&cfg(), r#"permessage-deflate; client_max_window_bits="8""#),
            params(false, false, 15, 8)
        );
        // Our own limit and promise hold even when the answer does not repeat them.
        let own = DeflateConfig {
            client_max_window_bits: Some(12),
            client_no_context_takeover: true,
            ..cfg()
        };
        assert_eq!(ok(&own, "permessage-deflate"), params(false, true, 15, 12));
        assert_eq!(
            ok(&own, "permessage-deflate; client_max_window_bits=10"),
            params(false, true, 15, 10)
        );
        // A smaller server window than asked is fine.
        let asked = DeflateConfig {
            server_max_window_bits: Some(10),
            server_no_context_takeover: true,
            ..cfg()
        };
        assert_eq!(
            ok(
                &asked,
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
            ),
            params(true, false, 9, 15)
        );
    }

    #[test]
    fn client_fails_on_every_bad_answer() {
        use NegotiationError as E;
        let asked = DeflateConfig {
            server_max_window_bits: Some(10),
            server_no_context_takeover: true,
            client_max_window_bits: Some(12),
            ..cfg()
        };
        let good = "permessage-deflate; server_no_context_takeover; server_max_window_bits=10";
        assert!(client_accept(&asked, good).is_ok());
        for (cfg, answer, error) in [
            (
                cfg(),
                "x-webkit-deflate-frame",
                E::UnexpectedExtension("x-webkit-deflate-frame".into()),
            ),
            (
                cfg(),
                "permessage-deflate, foo",
                E::UnexpectedExtension("foo".into()),
            ),
            (
                cfg(),
                "permessage-deflate, permessage-deflate",
                E::DuplicateExtension,
            ),
            (
                cfg(),
                "permessage-deflate; foo",
                E::UnknownParameter("foo".into()),
            ),
            (
                cfg(),
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                E::DuplicateParameter(SERVER_NO_CONTEXT_TAKEOVER),
            ),
            (
                cfg(),
                "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9",
                E::DuplicateParameter(SERVER_MAX_WINDOW_BITS),
            ),
            (
                cfg(),
                "permessage-deflate; server_max_window_bits",
                E::InvalidValue(SERVER_MAX_WINDOW_BITS),
            ),
            (
                cfg(),
                "permessage-deflate; server_max_window_bits=16",
                E::InvalidValue(SERVER_MAX_WINDOW_BITS),
            ),
            (
                cfg(),
                "permessage-deflate; server_max_window_bits=08",
                E::InvalidValue(SERVER_MAX_WINDOW_BITS),
            ),
            (
                cfg(),
                "permessage-deflate; client_max_window_bits",
                E::InvalidValue(CLIENT_MAX_WINDOW_BITS),
            ),
            (
                cfg(),
                "permessage-deflate; client_max_window_bits=7",
                E::InvalidValue(CLIENT_MAX_WINDOW_BITS),
            ),
            (
                cfg(),
                "permessage-deflate; client_no_context_takeover=1",
                E::InvalidValue(CLIENT_NO_CONTEXT_TAKEOVER),
            ),
            (
                asked.clone(),
                "permessage-deflate; server_max_window_bits=10",
                E::MissingParameter(SERVER_NO_CONTEXT_TAKEOVER),
            ),
            (
                asked.clone(),
                "permessage-deflate; server_no_context_takeover",
                E::MissingParameter(SERVER_MAX_WINDOW_BITS),
            ),
            (
                asked.clone(),
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
                E::WindowTooLarge(SERVER_MAX_WINDOW_BITS),
            ),
            (
                asked.clone(),
                &format!("{good}; client_max_window_bits=13"),
                E::WindowTooLarge(CLIENT_MAX_WINDOW_BITS),
            ),
            (
                DeflateConfig {
                    enabled: false,
                    ..cfg()
                },
                "permessage-deflate",
                E::UnexpectedExtension(EXTENSION_NAME.into()),
            ),
            (cfg(), "", E::Syntax { at: 0 }),
            (cfg(), " , ", E::Syntax { at: 3 }),
            (cfg(), "permessage-deflate;", E::Syntax { at: 19 }),
        ] {
            assert_eq!(client_accept(&cfg, answer), Err(error), "{answer:?}");
        }
    }

    #[test]
    fn client_fails_on_client_max_window_bits_it_did_not_offer() {
        let offer = Params {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: ClientWindow::Absent,
        };
        assert_eq!(
            accept_answer(
                Some(&offer),
                "permessage-deflate; client_max_window_bits=10"
            ),
            Err(NegotiationError::UnsolicitedParameter(
                CLIENT_MAX_WINDOW_BITS
            ))
        );
        assert_eq!(
            accept_answer(Some(&offer), "permessage-deflate"),
            Ok(DeflateParams::default())
        );
        assert_eq!(offer.render(), "permessage-deflate");
    }

    #[test]
    fn errors_say_what_went_wrong() {
        assert_eq!(
            NegotiationError::Syntax { at: 3 }.to_string(),
            "malformed Sec-WebSocket-Extensions at byte 3"
        );
        assert_eq!(
            NegotiationError::WindowTooLarge(SERVER_MAX_WINDOW_BITS).to_string(),
            "server answered server_max_window_bits larger than offered"
        );
    }
}
