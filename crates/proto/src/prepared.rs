//! A message framed once for many connections: what a publish or a broadcast sends.
//!
//! A server's frames are not masked, so the bytes of one message on the wire are the same for
//! every connection that sends it the same way: uncompressed, or compressed without context
//! takeover with the same window, level and `mem_level`. [`Prepared`] builds each of those
//! frames once, at the first connection that needs it, and
//! [`Connection::send_prepared`](crate::Connection::send_prepared) hands the same bytes to
//! every connection: a transport that can keep a reference to a frame queues the frame itself
//! (reference-counted, no copy per connection); otherwise it is copied into the connection's
//! output.
//!
//! What cannot be shared is sent by each connection as an ordinary message: a client masks
//! every frame with a key of its own, and a compressor with context takeover is the history of
//! its one connection.

use std::sync::Arc;

use crate::connection::MessageKind;
use crate::deflate::shared::{self, CompressorKey};
use crate::deflate::DeflateError;
use crate::error::SendError;
use crate::frame::{FrameHeader, OpCode};
use crate::utf8;

/// One message and the frames built from it so far. Build it with [`Prepared::new`] for each
/// publish; it borrows the payload.
#[derive(Debug)]
pub struct Prepared<'a> {
    kind: MessageKind,
    data: &'a [u8],
    /// The uncompressed frame, header and payload; built when first needed.
    plain: Option<Arc<[u8]>>,
    /// The compressed frames, one per compressor parameter set.
    compressed: Vec<(CompressorKey, Arc<[u8]>)>,
    compressions: usize,
}

impl<'a> Prepared<'a> {
    /// Checks the message once (text must be valid UTF-8); nothing is framed yet.
    pub fn new(kind: MessageKind, data: &'a [u8]) -> Result<Prepared<'a>, SendError> {
        if kind == MessageKind::Text && utf8::validate(data).is_err() {
            return Err(SendError::InvalidUtf8);
        }
        Ok(Prepared {
            kind,
            data,
            plain: None,
            compressed: Vec::new(),
            compressions: 0,
        })
    }

    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// How many times the payload was compressed: once per parameter set among the
    /// connections it went to without context takeover (connections with takeover compress
    /// their own copy and are not counted here).
    pub fn compressions(&self) -> usize {
        self.compressions
    }

    /// Frames built so far and their total size, for memory accounting.
    pub fn framed_bytes(&self) -> usize {
        self.plain.as_ref().map_or(0, |f| f.len())
            + self.compressed.iter().map(|(_, f)| f.len()).sum::<usize>()
    }

    /// The uncompressed server frame.
    pub(crate) fn plain_frame(&mut self) -> &Arc<[u8]> {
        let (kind, data) = (self.kind, self.data);
        self.plain.get_or_insert_with(|| {
            let header = header(kind, false, data.len());
            let mut frame = Vec::with_capacity(header.encoded_len() + data.len());
            header.write_to(&mut frame);
            frame.extend_from_slice(data);
            frame.into()
        })
    }

    /// The server frame compressed with the shared compressor for `key`.
    pub(crate) fn compressed_frame(
        &mut self,
        key: CompressorKey,
    ) -> Result<&Arc<[u8]>, DeflateError> {
        let index = match self.compressed.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                let mut payload = Vec::new();
                shared::compress_message(key, self.data, &mut payload)?;
                self.compressions += 1;
                let header = header(self.kind, true, payload.len());
                let mut frame = Vec::with_capacity(header.encoded_len() + payload.len());
                header.write_to(&mut frame);
                frame.extend_from_slice(&payload);
                self.compressed.push((key, frame.into()));
                self.compressed.len() - 1
            }
        };
        Ok(&self.compressed[index].1)
    }
}

fn header(kind: MessageKind, rsv1: bool, len: usize) -> FrameHeader {
    FrameHeader {
        fin: true,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode: match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        },
        mask: None,
        payload_len: len as u64,
    }
}
