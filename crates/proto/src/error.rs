//! Errors of the engine. A [`ProtocolError`] is something the peer did wrong: the connection
//! fails itself with the matching close code. A [`SendError`] is something the application
//! asked for that cannot be done; nothing is sent and the connection is unchanged.

use crate::close::CloseCode;
use std::fmt;

/// Why the engine failed a connection. Each variant maps to the close code it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// An opcode of 3-7 or 11-15.
    ReservedOpcode(u8),
    /// RSV1, RSV2 or RSV3 set without an extension that defines it.
    ReservedBits,
    /// RSV1 set on a control frame or a continuation frame.
    CompressedControlOrContinuation,
    /// A control frame with a payload longer than 125 bytes.
    ControlFrameTooLong,
    /// A control frame without FIN.
    FragmentedControlFrame,
    /// A 64-bit payload length with its most significant bit set.
    LengthTopBitSet,
    /// A server received a frame without a mask.
    UnmaskedFrame,
    /// A client received a masked frame.
    MaskedFrame,
    /// A text or binary frame arrived while a fragmented message was still open.
    UnexpectedDataFrame,
    /// A continuation frame arrived with no fragmented message open.
    UnexpectedContinuation,
    /// A text message (or a close reason) that is not valid UTF-8.
    InvalidUtf8,
    /// A close frame with a one-byte payload.
    CloseFrameTooShort,
    /// A close frame with a code that may not be sent (see `CloseCode::is_valid_on_wire`).
    InvalidCloseCode(u16),
    /// A frame longer than the configured maximum frame size.
    FrameTooBig,
    /// A message longer than the configured maximum message size (after inflation).
    MessageTooBig,
    /// A compressed message that does not inflate.
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code sent when failing the connection for this reason.
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            ProtocolError::FrameTooBig | ProtocolError::MessageTooBig => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short static description, also used as the close reason sent to the peer.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::ReservedBits => "reserved bits set",
            ProtocolError::CompressedControlOrContinuation => {
                "RSV1 on a control or continuation frame"
            }
            ProtocolError::ControlFrameTooLong => "control frame longer than 125 bytes",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::LengthTopBitSet => "64-bit length with the top bit set",
            ProtocolError::UnmaskedFrame => "unmasked frame from client",
            ProtocolError::MaskedFrame => "masked frame from server",
            ProtocolError::UnexpectedDataFrame => "data frame inside a fragmented message",
            ProtocolError::UnexpectedContinuation => "continuation frame without a message",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::CloseFrameTooShort => "close frame with a 1-byte payload",
            ProtocolError::InvalidCloseCode(_) => "invalid close code",
            ProtocolError::FrameTooBig => "frame too big",
            ProtocolError::MessageTooBig => "message too big",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why a send, ping or close was refused. Nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// A close frame was already sent (or the connection failed): nothing more may be sent.
    Closed,
    /// A ping, pong or close payload longer than 125 bytes.
    ControlPayloadTooLong,
    /// A close code that may not be sent (1005, 1006, 1015, or outside the valid ranges).
    InvalidCloseCode(u16),
    /// Text that is not valid UTF-8 (streamed text fragments are checked as they go).
    InvalidUtf8,
    /// A whole message or a new streamed message while a streamed message is still open.
    MessageInProgress,
    /// A fragment sent with no streamed message open.
    NoMessageInProgress,
    /// The compressor failed (an internal error of zlib); the connection has been failed
    /// with 1011 because the peer could no longer decode what follows.
    CompressionFailed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("the connection is closing or closed"),
            SendError::ControlPayloadTooLong => {
                f.write_str("control frame payload longer than 125 bytes")
            }
            SendError::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            SendError::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            SendError::MessageInProgress => f.write_str("a streamed message is still open"),
            SendError::NoMessageInProgress => f.write_str("no streamed message is open"),
            SendError::CompressionFailed => f.write_str("compression failed"),
        }
    }
}

impl std::error::Error for SendError {}
