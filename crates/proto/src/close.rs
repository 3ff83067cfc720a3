//! Close codes and close frame payloads (RFC 6455 section 5.5.1 and 7.4).

use crate::error::ProtocolError;
use crate::frame::MAX_CONTROL_PAYLOAD;

/// A close status code. Plain `u16` underneath so that every code a peer may send can be
/// represented; [`CloseCode::is_valid_on_wire`] says whether it may appear in a close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    pub const NORMAL: CloseCode = CloseCode(1000);
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// Reserved: "no status code was present". Never sent on the wire.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// Reserved: "the connection closed without a close frame". Never sent on the wire.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// Reserved: "the TLS handshake failed". Never sent on the wire.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether a peer may put this code in a close frame: 1000-1003, 1007-1011 (1012-1014 are
    /// registered with IANA since the RFC), 3000-4999. Everything else (0-999, 1004-1006,
    /// 1015, 1016-2999, 5000+) is a protocol error when received and refused when sent.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Splits a close payload into code and reason (RFC 6455 section 5.5.1, 7.4).
pub(crate) fn parse_close_payload(payload: &[u8]) -> Result<(CloseCode, &str), ProtocolError> {
    match payload {
        [] => Ok((CloseCode::NO_STATUS, "")),
        [_] => Err(ProtocolError::CloseFrameTooShort),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok((code, reason))
        }
    }
}

/// Writes the payload of a close frame (code, then reason) into `out` and returns its length.
/// The reason must fit (at most 123 bytes); callers check what the application gives them.
pub(crate) fn write_close_payload(
    code: CloseCode,
    reason: &str,
    out: &mut [u8; MAX_CONTROL_PAYLOAD],
) -> usize {
    out[..2].copy_from_slice(&code.0.to_be_bytes());
    out[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
    2 + reason.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_payload_means_no_status_code() {
        assert_eq!(parse_close_payload(&[]), Ok((CloseCode::NO_STATUS, "")));
    }

    #[test]
    fn one_byte_payload_is_too_short() {
        assert_eq!(
            parse_close_payload(&[3]),
            Err(ProtocolError::CloseFrameTooShort)
        );
    }

    #[test]
    fn codes_that_may_not_be_sent_are_refused_on_receipt() {
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            let payload = code.to_be_bytes();
            assert_eq!(
                parse_close_payload(&payload),
                Err(ProtocolError::InvalidCloseCode(code)),
                "code {code}"
            );
        }
    }

    #[test]
    fn reason_must_be_utf8() {
        assert_eq!(
            parse_close_payload(&[0x03, 0xE8, 0xFF]),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn written_payload_parses_back_at_every_reason_length() {
        let reason = "é".repeat(61) + "x"; // 123 bytes, two-byte code points
        for len in [0, 1, 2, 3, 122, 123] {
            let reason = match reason.get(..len) {
                Some(r) => r,
                None => continue, // inside a code point
            };
            let mut out = [0u8; MAX_CONTROL_PAYLOAD];
            let n = write_close_payload(CloseCode::GOING_AWAY, reason, &mut out);
            assert_eq!(n, 2 + reason.len());
            assert_eq!(&out[..2], &[0x03, 0xE9]);
            assert_eq!(
                parse_close_payload(&out[..n]),
                Ok((CloseCode::GOING_AWAY, reason))
            );
        }
    }
}
