//! Frame headers (RFC 6455 section 5.2) and masking (section 5.3).
//!
//! Decoding is structural: it knows the opcode table, the length encodings and the rules that
//! hold for every control frame. Rules that depend on the connection (role, negotiated
//! extensions, an open fragmented message, size limits) are checked by the connection.

pub mod mask;

pub use mask::apply_mask;

use crate::error::ProtocolError;

/// The longest header: 2 bytes, 8 bytes of extended length, 4 bytes of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// Control frames carry at most 125 bytes (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

impl OpCode {
    /// Opcodes 0x3-0x7 and 0xB-0xF are reserved.
    pub fn from_u8(value: u8) -> Result<OpCode, ProtocolError> {
        match value {
            0x0 => Ok(OpCode::Continuation),
            0x1 => Ok(OpCode::Text),
            0x2 => Ok(OpCode::Binary),
            0x8 => Ok(OpCode::Close),
            0x9 => Ok(OpCode::Ping),
            0xA => Ok(OpCode::Pong),
            other => Err(ProtocolError::ReservedOpcode(other)),
        }
    }

    /// Control opcodes have the high bit of the nibble set.
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub rsv1: bool,
    pub rsv2: bool,
    pub rsv3: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; nothing is consumed. `Ok(Some((header, n)))`
    /// gives the header and its length `n`. Errors are raised as early as the bytes allow:
    /// a reserved opcode or a malformed control frame fails on the first two bytes.
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let fin = b0 & 0x80 != 0;
        let Some(&b1) = buf.get(1) else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            if len7 > MAX_CONTROL_PAYLOAD as u8 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
        }
        let (payload_len, mut n) = match len7 {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(b);
                    let len = u64::from_be_bytes(be);
                    if len >> 63 != 0 {
                        return Err(ProtocolError::LengthTopBitSet);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        let mask = if masked {
            match buf.get(n..n + 4) {
                Some(b) => {
                    n += 4;
                    Some([b[0], b[1], b[2], b[3]])
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        let header = FrameHeader {
            fin,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, n)))
    }

    /// The length of the encoded header, always using the shortest length encoding.
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes into `out` and returns the number of bytes written. Lengths use the minimal
    /// encoding (RFC 6455 section 5.2: "the minimal number of bytes MUST be used").
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (self.fin as u8) << 7
            | (self.rsv1 as u8) << 6
            | (self.rsv2 as u8) << 5
            | (self.rsv3 as u8) << 4
            | self.opcode as u8;
        let mask_bit = (self.mask.is_some() as u8) << 7;
        let mut n = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }

    /// The encoded header, on the stack.
    #[inline]
    pub fn encoded(&self) -> EncodedHeader {
        let mut bytes = [0u8; MAX_HEADER_LEN];
        let len = self.encode(&mut bytes) as u8;
        EncodedHeader { bytes, len }
    }

    /// Appends the encoded header to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = self.encode(&mut buf);
        out.extend_from_slice(&buf[..n]);
    }
}

/// An encoded frame header (2 to 14 bytes) kept on the stack, for a transport that writes
/// the header and the payload from where they are (one `writev`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedHeader {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl EncodedHeader {
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn decodes_the_rfc_single_frame_unmasked_text() {
        // RFC 6455 section 5.7: "Hello", unmasked.
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, n) = FrameHeader::decode(&bytes).unwrap().unwrap();
        assert_eq!(n, 2);
        assert_eq!(h, header(OpCode::Text, 5, None));
    }

    #[test]
    fn decodes_the_rfc_masked_text() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = FrameHeader::decode(&bytes).unwrap().unwrap();
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        let mut payload = bytes[6..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn decodes_16_and_64_bit_lengths() {
        // RFC 6455 section 5.7: 256 bytes and 64 KiB binary messages.
        let (h, n) = FrameHeader::decode(&[0x82, 0x7E, 0x01, 0x00])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, n), (256, 4));
        let bytes = [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
        let (h, n) = FrameHeader::decode(&bytes).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn every_truncation_of_a_header_asks_for_more() {
        let full = [0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for cut in 0..full.len() {
            assert_eq!(FrameHeader::decode(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(FrameHeader::decode(&full).unwrap().is_some());
    }

    #[test]
    fn reserved_opcodes_fail_on_the_first_byte() {
        for op in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(
                FrameHeader::decode(&[0x80 | op]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn control_frame_longer_than_125_bytes_fails() {
        assert_eq!(
            FrameHeader::decode(&[0x89, 126, 0, 126]),
            Err(ProtocolError::ControlFrameTooLong)
        );
    }

    #[test]
    fn fragmented_control_frame_fails() {
        assert_eq!(
            FrameHeader::decode(&[0x09, 0]),
            Err(ProtocolError::FragmentedControlFrame)
        );
    }

    #[test]
    fn length_with_the_top_bit_set_fails() {
        let bytes = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::decode(&bytes),
            Err(ProtocolError::LengthTopBitSet)
        );
    }

    #[test]
    fn encoding_uses_the_minimal_length_form() {
        for (len, expected) in [
            (0u64, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (1 << 40, 10),
        ] {
            let h = header(OpCode::Binary, len, None);
            let mut buf = [0u8; MAX_HEADER_LEN];
            assert_eq!(h.encode(&mut buf), expected, "len {len}");
            assert_eq!(h.encoded_len(), expected);
        }
    }

    fn arb_header() -> impl Strategy<Value = FrameHeader> {
        let opcode = prop_oneof![
            Just(OpCode::Continuation),
            Just(OpCode::Text),
            Just(OpCode::Binary),
            Just(OpCode::Close),
            Just(OpCode::Ping),
            Just(OpCode::Pong),
        ];
        (
            any::<[bool; 4]>(),
            opcode,
            any::<Option<[u8; 4]>>(),
            prop_oneof![0u64..=125, 126u64..=65535, 65536u64..(1 << 63)],
        )
            .prop_map(|(bits, opcode, mask, len)| {
                let control = opcode.is_control();
                FrameHeader {
                    fin: bits[0] || control,
                    rsv1: bits[1],
                    rsv2: bits[2],
                    rsv3: bits[3],
                    opcode,
                    mask,
                    payload_len: if control { len % 126 } else { len },
                }
            })
    }

    proptest! {
        #[test]
        fn random_headers_round_trip(h in arb_header()) {
            let mut buf = Vec::new();
            h.write_to(&mut buf);
            prop_assert_eq!(buf.len(), h.encoded_len());
            let encoded = h.encoded();
            prop_assert_eq!(encoded.as_bytes(), &buf[..]);
            prop_assert_eq!(FrameHeader::decode(&buf), Ok(Some((h, buf.len()))));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = FrameHeader::decode(&bytes);
        }
    }
}
