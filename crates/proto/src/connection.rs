//! One WebSocket connection after the opening handshake: bytes in, events out, messages in,
//! bytes out (RFC 6455 sections 5-7).
//!
//! Receiving is zero-copy where it can be: a message that arrives as one whole frame inside the
//! caller's input is unmasked in place and handed out as a slice of that input. Only messages
//! that span frames or reads are copied, once, into the connection's reassembly buffer, which is
//! reused from message to message. Sending appends complete frames to one output buffer that the
//! transport drains with [`Connection::pending_output`] and [`Connection::consume`], so everything
//! sent between two flushes goes out in one write.

use crate::close::{parse_close_payload, write_close_payload, CloseCode};
use crate::deflate::shared::{self, CompressorKey};
use crate::deflate::{Compressor, Decompressor, DeflateConfig, DeflateError, DeflateParams};
use crate::error::{ProtocolError, SendError};
use crate::frame::mask::mask_key;
use crate::frame::{
    apply_mask, EncodedHeader, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN,
};
use crate::prepared::Prepared;
use crate::utf8::{self, Utf8Validator};
use crate::Role;
use std::ops::Range;
use std::sync::Arc;

/// Unsent output from which a new pong replaces the previous unsent one instead of joining
/// it (see `Connection::answer_ping`): 125 pongs of the largest size. Below it every ping is
/// answered, as Autobahn's cases 2.10 and 2.11 expect of a peer that reads.
pub const PONG_BACKLOG: usize = 16 << 10;

/// Limits of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest frame payload accepted; a longer frame fails the connection with 1009.
    /// Default: 16 MiB.
    pub max_frame_size: usize,
    /// Largest message accepted (after inflation); a longer one fails the connection with
    /// 1009 as soon as it passes the limit. Default: 16 MiB.
    pub max_message_size: usize,
    /// Hold back the close frames that `receive` would queue by itself (the reply to the
    /// peer's close, and the close that fails the connection) until
    /// [`Connection::queue_close_reply`]. A runtime that hands the application a whole batch
    /// of events at once needs this, so that the application can still answer the messages
    /// that arrived before the close or the bad frame (RFC 6455 section 7.1.1 orders the close
    /// after everything sent before it). Default: false (queued at once).
    pub defer_close_replies: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 16 << 20,
            defer_close_replies: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Text,
    Binary,
}

impl MessageKind {
    fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

/// How [`Connection::send_message_or_head`] sent a message.
#[must_use = "a direct message is on the wire only once the caller writes it"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The frame is queued in [`Connection::pending_output`], behind what was queued before.
    Queued,
    /// Nothing was queued: the caller writes this header, then the payload exactly as it
    /// passed it, before any byte the connection queues from now on.
    Direct(EncodedHeader),
}

/// How [`Connection::send_prepared`] sent a message.
#[must_use = "a shared frame is on the wire only once the caller writes it"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SentFrame<'p> {
    /// The frame is queued in [`Connection::pending_output`], behind what was queued before.
    Queued,
    /// Nothing was queued: the caller sends this frame (shared with the other connections
    /// the message goes to) after every byte the connection queued before this call and
    /// before any byte it queues from now on.
    Shared(&'p Arc<[u8]>),
}

/// Where a connection is in its life. The opening handshake (the "connecting" state) is the
/// business of [`crate::handshake`]; a `Connection` starts open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Open,
    /// One close frame has been sent or received, not both.
    Closing,
    /// Both close frames exchanged, or the connection failed.
    Closed,
}

/// What one call to [`Connection::receive`] produced.
#[derive(Debug)]
pub struct Received<'a> {
    /// Bytes of the input consumed by this call.
    pub consumed: usize,
    /// At most one event. `None` means every byte of the input was consumed.
    pub event: Option<Event<'a>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole message. Text has been validated as UTF-8 ([`Event::as_text`]).
    ///
    /// `buffered == false`: `data` is a slice of the input given to `receive` (zero copy).
    /// `buffered == true`: `data` is in the connection's reassembly buffer and stays there
    /// until the next `receive` (or [`Connection::take_message_buffer`]).
    Message {
        kind: MessageKind,
        data: &'a [u8],
        buffered: bool,
    },
    /// A ping; the pong has already been queued.
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// The peer sent a close frame (1005 when it carried no code). If we had not sent one, the
    /// reply (the same code, or 1000 for none) has been queued.
    Close {
        code: CloseCode,
        reason: &'a str,
    },
    /// The peer broke the protocol. A close frame with `error.close_code()` has been queued
    /// and the connection is closed; flush the output, then close the transport.
    Failed {
        error: ProtocolError,
    },
}

impl<'a> Event<'a> {
    /// The text of a text message.
    pub fn as_text(&self) -> Option<&'a str> {
        match *self {
            Event::Message {
                kind: MessageKind::Text,
                data,
                ..
            } => {
                // SAFETY: the connection hands out text messages only after validating them as
                // UTF-8 (utf8::validate or a finished Utf8Validator).
                Some(unsafe { std::str::from_utf8_unchecked(data) })
            }
            _ => None,
        }
    }
}

/// Where an event's payload lives; turned into a borrow only when `receive` returns, so that
/// the parsing loop itself never holds a borrow.
enum Outcome {
    Message(MessageKind, Source),
    Ping(Source),
    Pong(Source),
    Close,
    Failed(ProtocolError),
}

enum Source {
    Input(Range<usize>),
    Message,
    Control,
}

/// The frame whose payload is being received.
struct Frame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload length.
    len: u64,
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes already seen, modulo 4: the masking key's phase.
    phase: usize,
}

/// The data message being reassembled.
struct Partial {
    kind: MessageKind,
    compressed: bool,
}

/// Permessage-deflate state, only on connections that negotiated it. Each codec is created
/// on first use and, where it carries no context from one message to the next, dropped again
/// by [`Connection::shrink`]: an idle connection then holds only these few bytes.
struct Deflate {
    params: DeflateParams,
    role: Role,
    level: u32,
    mem_level: u8,
    threshold: usize,
    compressor: Option<Compressor>,
    decompressor: Option<Decompressor>,
}

impl Deflate {
    fn compressor(&mut self) -> &mut Compressor {
        let (params, role, level, mem_level) =
            (&self.params, self.role, self.level, self.mem_level);
        self.compressor
            .get_or_insert_with(|| Compressor::new(params, role, level, mem_level))
    }

    fn decompressor(&mut self) -> &mut Decompressor {
        let (params, role) = (&self.params, self.role);
        self.decompressor
            .get_or_insert_with(|| Decompressor::new(params, role))
    }

    /// The shared compressor whole messages use when our side has no context takeover
    /// (see [`crate::deflate::shared`]); `None` with takeover.
    fn shared_key(&self) -> Option<CompressorKey> {
        if self.keeps_send_context() {
            return None;
        }
        let bits = match self.role {
            Role::Server => self.params.server_max_window_bits,
            Role::Client => self.params.client_max_window_bits,
        };
        Some(CompressorKey::new(bits, self.level, self.mem_level))
    }

    /// Whether our compressor's window must survive between messages.
    fn keeps_send_context(&self) -> bool {
        match self.role {
            Role::Server => !self.params.server_no_context_takeover,
            Role::Client => !self.params.client_no_context_takeover,
        }
    }

    /// Whether the peer may refer back to earlier messages.
    fn keeps_receive_context(&self) -> bool {
        match self.role {
            Role::Server => !self.params.client_no_context_takeover,
            Role::Client => !self.params.server_no_context_takeover,
        }
    }
}

pub struct Connection {
    role: Role,
    config: Config,

    // Receiving.
    header: [u8; MAX_HEADER_LEN],
    header_len: u8,
    frame: Option<Frame>,
    message: Option<Partial>,
    message_buf: Vec<u8>,
    /// `message_buf` holds a delivered message to clear at the next `receive`.
    delivered: bool,
    spare_buf: Vec<u8>,
    control: [u8; MAX_CONTROL_PAYLOAD],
    control_len: u8,
    utf8: Utf8Validator,
    peer_close: Option<(CloseCode, String)>,
    failed: bool,
    /// A close frame `receive` decided to send but held back (`defer_close_replies`).
    owed_close: Option<(CloseCode, &'static str)>,

    // Sending.
    out: Vec<u8>,
    out_pos: usize,
    sent_close: Option<(CloseCode, String)>,
    /// Where the last pong queued in answer to a ping sits in `out` (start, end), while not a
    /// byte of it has been consumed: a newer ping replaces it (see `answer_ping`).
    unsent_pong: Option<(usize, usize)>,
    streaming: Option<Streaming>,
    send_utf8: Utf8Validator,
    scratch: Vec<u8>,

    deflate: Option<Box<Deflate>>,
}

struct Streaming {
    kind: MessageKind,
    compressed: bool,
    first: bool,
}

impl Connection {
    pub fn new(role: Role, config: Config) -> Connection {
        Connection {
            role,
            config,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            message: None,
            message_buf: Vec::new(),
            delivered: false,
            spare_buf: Vec::new(),
            control: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
            utf8: Utf8Validator::default(),
            peer_close: None,
            failed: false,
            owed_close: None,
            out: Vec::new(),
            out_pos: 0,
            sent_close: None,
            unsent_pong: None,
            streaming: None,
            send_utf8: Utf8Validator::default(),
            scratch: Vec::new(),
            deflate: None,
        }
    }

    /// Turns on permessage-deflate with the parameters agreed in the handshake. The codec
    /// state is allocated here, so connections without the extension pay nothing for it.
    pub fn set_deflate(&mut self, params: DeflateParams, cfg: &DeflateConfig) {
        self.deflate = Some(Box::new(Deflate {
            params,
            role: self.role,
            level: cfg.level,
            mem_level: cfg.mem_level,
            threshold: cfg.threshold,
            compressor: None,
            decompressor: None,
        }));
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn deflate_enabled(&self) -> bool {
        self.deflate.is_some()
    }

    pub fn state(&self) -> State {
        match (self.sent_close.is_some(), self.peer_close.is_some()) {
            _ if self.failed => State::Closed,
            (true, true) => State::Closed,
            (false, false) => State::Open,
            _ => State::Closing,
        }
    }

    /// True once the transport should be closed (RFC 6455 section 7.1.1): both close frames
    /// have been exchanged, or the connection failed. A server closes TCP as soon as the output
    /// is flushed; a client gives the server time to close first.
    pub fn wants_transport_close(&self) -> bool {
        self.state() == State::Closed && self.owed_close.is_none()
    }

    /// Queues the close frame held back by `defer_close_replies`, if any. Until then data may
    /// still be sent: it logically precedes the close.
    pub fn queue_close_reply(&mut self) {
        if let Some((code, reason)) = self.owed_close.take() {
            self.write_close(code, reason);
        }
    }

    /// Whether a close frame is held back (see [`Connection::queue_close_reply`]).
    pub fn close_reply_owed(&self) -> bool {
        self.owed_close.is_some()
    }

    /// The peer's close code and reason, once its close frame has arrived.
    pub fn peer_close(&self) -> Option<(CloseCode, &str)> {
        self.peer_close.as_ref().map(|(c, r)| (*c, r.as_str()))
    }

    /// The close code and reason we sent, once sent.
    pub fn sent_close(&self) -> Option<(CloseCode, &str)> {
        self.sent_close.as_ref().map(|(c, r)| (*c, r.as_str()))
    }

    // ---------------------------------------------------------------------------------------
    // Receiving
    // ---------------------------------------------------------------------------------------

    /// Parses `input` up to the next event. Frames are unmasked in place.
    ///
    /// Returns the bytes consumed and at most one event; with no event, all of `input` was
    /// consumed (an unfinished frame is kept inside). Call again with the rest of the input
    /// after handling each event. After a close or a failure, further input is discarded.
    pub fn receive<'a>(&'a mut self, input: &'a mut [u8]) -> Received<'a> {
        if self.delivered {
            self.message_buf.clear();
            self.delivered = false;
        }
        if self.failed || self.peer_close.is_some() {
            return Received {
                consumed: input.len(),
                event: None,
            };
        }
        let (consumed, outcome) = self.parse(input);
        let Some(outcome) = outcome else {
            return Received {
                consumed,
                event: None,
            };
        };
        let event = match outcome {
            Outcome::Message(kind, source) => {
                let buffered = !matches!(source, Source::Input(_));
                let data = self.payload(input, source);
                Event::Message {
                    kind,
                    data,
                    buffered,
                }
            }
            Outcome::Ping(source) => Event::Ping(self.payload(input, source)),
            Outcome::Pong(source) => Event::Pong(self.payload(input, source)),
            Outcome::Close => {
                let (code, reason) = self.peer_close.as_ref().expect("close recorded");
                return Received {
                    consumed: input.len(),
                    event: Some(Event::Close {
                        code: *code,
                        reason,
                    }),
                };
            }
            Outcome::Failed(error) => {
                return Received {
                    consumed: input.len(),
                    event: Some(Event::Failed { error }),
                }
            }
        };
        Received {
            consumed,
            event: Some(event),
        }
    }

    fn payload<'a>(&'a self, input: &'a [u8], source: Source) -> &'a [u8] {
        match source {
            Source::Input(range) => &input[range],
            Source::Message => &self.message_buf,
            Source::Control => &self.control[..self.control_len as usize],
        }
    }

    /// The parsing loop: frames until an event or the end of the input.
    fn parse(&mut self, input: &mut [u8]) -> (usize, Option<Outcome>) {
        let mut pos = 0;
        loop {
            if self.frame.is_none() {
                match self.next_header(input, &mut pos) {
                    Ok(true) => {}
                    Ok(false) => return (input.len(), None),
                    Err(error) => return (input.len(), Some(self.fail(error))),
                }
            }
            let Some(frame) = self.frame.as_mut() else {
                unreachable!("a header was just parsed")
            };
            let available =
                (input.len() - pos).min(usize::try_from(frame.remaining).unwrap_or(usize::MAX));
            let chunk = pos..pos + available;
            pos += available;
            frame.remaining -= available as u64;
            if let Some(key) = frame.mask {
                apply_mask(&mut input[chunk.clone()], key, frame.phase);
                frame.phase = (frame.phase + available) % 4;
            }
            let complete = frame.remaining == 0;
            let result = if frame.opcode.is_control() {
                self.control_chunk(input, chunk, complete)
            } else {
                self.data_chunk(input, chunk, complete)
            };
            match result {
                Ok(None) if !complete => return (pos, None),
                Ok(None) => {}
                Ok(Some(outcome)) => return (pos, Some(outcome)),
                Err(error) => return (input.len(), Some(self.fail(error))),
            }
            if pos == input.len() && self.frame.is_none() {
                return (pos, None);
            }
        }
    }

    /// Reads the next frame header into `self.frame`. `Ok(false)`: need more input (the
    /// partial header is kept, and all input was consumed).
    fn next_header(&mut self, input: &[u8], pos: &mut usize) -> Result<bool, ProtocolError> {
        let rest = &input[*pos..];
        let decoded = if self.header_len == 0 {
            match FrameHeader::decode(rest)? {
                Some((header, n)) => {
                    *pos += n;
                    header
                }
                None => {
                    self.header[..rest.len()].copy_from_slice(rest);
                    self.header_len = rest.len() as u8;
                    *pos = input.len();
                    return Ok(false);
                }
            }
        } else {
            let have = self.header_len as usize;
            let take = (MAX_HEADER_LEN - have).min(rest.len());
            self.header[have..have + take].copy_from_slice(&rest[..take]);
            match FrameHeader::decode(&self.header[..have + take])? {
                Some((header, n)) => {
                    *pos += n - have;
                    self.header_len = 0;
                    header
                }
                None => {
                    self.header_len = (have + take) as u8;
                    *pos = input.len();
                    return Ok(false);
                }
            }
        };
        self.start_frame(decoded)?;
        Ok(true)
    }

    /// Checks a header against the connection's state (RFC 6455 sections 5.1-5.5).
    fn start_frame(&mut self, h: FrameHeader) -> Result<(), ProtocolError> {
        if h.rsv2 || h.rsv3 {
            return Err(ProtocolError::ReservedBits);
        }
        let control = h.opcode.is_control();
        if control {
            self.control_len = 0;
        }
        if h.rsv1 {
            if self.deflate.is_none() {
                return Err(ProtocolError::ReservedBits);
            }
            // RFC 7692 section 6: RSV1 marks the first frame of a compressed message only.
            if control || h.opcode == OpCode::Continuation {
                return Err(ProtocolError::CompressedControlOrContinuation);
            }
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if !control {
            match (h.opcode, &self.message) {
                (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Text | OpCode::Binary, Some(_)) => {
                    return Err(ProtocolError::UnexpectedDataFrame)
                }
                _ => {}
            }
            if h.payload_len > self.config.max_frame_size as u64 {
                return Err(ProtocolError::FrameTooBig);
            }
            let compressed = h.rsv1
                || self
                    .message
                    .as_ref()
                    .is_some_and(|partial| partial.compressed);
            // Uncompressed messages can be refused before their payload arrives.
            if !compressed
                && self.message_buf.len() as u64 + h.payload_len
                    > self.config.max_message_size as u64
            {
                return Err(ProtocolError::MessageTooBig);
            }
            if self.message.is_none() {
                let kind = if h.opcode == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                self.message = Some(Partial { kind, compressed });
                self.utf8.reset();
            }
        }
        self.frame = Some(Frame {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            len: h.payload_len,
            remaining: h.payload_len,
            phase: 0,
        });
        Ok(())
    }

    /// A piece of a control frame's (unmasked) payload, `input[range]`.
    fn control_chunk(
        &mut self,
        input: &[u8],
        range: Range<usize>,
        complete: bool,
    ) -> Result<Option<Outcome>, ProtocolError> {
        // A control frame that arrived whole is handed out from the input; one split across
        // reads is gathered in the (125-byte) control buffer.
        let whole_in_input = self.control_len == 0 && complete;
        if !whole_in_input {
            let start = self.control_len as usize;
            self.control[start..start + range.len()].copy_from_slice(&input[range.clone()]);
            self.control_len += range.len() as u8;
        }
        if !complete {
            return Ok(None);
        }
        let Some(frame) = self.frame.take() else {
            unreachable!("a control chunk belongs to a frame")
        };
        let (payload, source) = if whole_in_input {
            (&input[range.clone()], Source::Input(range))
        } else {
            (&self.control[..self.control_len as usize], Source::Control)
        };
        let outcome = match frame.opcode {
            OpCode::Ping => {
                if self.sent_close.is_none() {
                    let mut copy = [0u8; MAX_CONTROL_PAYLOAD];
                    copy[..payload.len()].copy_from_slice(payload);
                    self.answer_ping(&copy[..payload.len()]);
                }
                Outcome::Ping(source)
            }
            OpCode::Pong => Outcome::Pong(source),
            OpCode::Close => {
                let (code, reason) = parse_close_payload(payload)?;
                let reason = reason.to_owned();
                if self.sent_close.is_none() {
                    let reply = if code == CloseCode::NO_STATUS {
                        CloseCode::NORMAL
                    } else {
                        code
                    };
                    self.owe_close(reply, "");
                }
                self.peer_close = Some((code, reason));
                Outcome::Close
            }
            _ => unreachable!("only control opcodes reach control_chunk"),
        };
        Ok(Some(outcome))
    }

    /// A piece of a data frame's (unmasked) payload, `input[range]`.
    fn data_chunk(
        &mut self,
        input: &[u8],
        range: Range<usize>,
        complete: bool,
    ) -> Result<Option<Outcome>, ProtocolError> {
        let (Some(frame), Some(partial)) = (self.frame.as_ref(), self.message.as_ref()) else {
            unreachable!("a data chunk belongs to a frame of an open message")
        };
        let (kind, compressed, fin) = (partial.kind, partial.compressed, frame.fin);
        let chunk = &input[range.clone()];

        // Fast path: the whole (uncompressed) message is this one frame, all in the input.
        if complete
            && fin
            && !compressed
            && self.message_buf.is_empty()
            && frame.len == chunk.len() as u64
        {
            if kind == MessageKind::Text
                && (!self.utf8.is_complete() || utf8::validate(chunk).is_err())
            {
                return Err(ProtocolError::InvalidUtf8);
            }
            self.frame = None;
            self.message = None;
            return Ok(Some(Outcome::Message(kind, Source::Input(range))));
        }

        let limit = self.config.max_message_size;
        let start = self.message_buf.len();
        if compressed {
            let Some(deflate) = self.deflate.as_mut() else {
                unreachable!("compressed messages need the extension")
            };
            let decompressor = deflate.decompressor();
            decompressor
                .decompress(chunk, &mut self.message_buf, limit)
                .map_err(inflate_error)?;
            if complete && fin {
                decompressor
                    .finish(&mut self.message_buf, limit)
                    .map_err(inflate_error)?;
            }
        } else {
            self.message_buf.extend_from_slice(chunk);
        }
        if kind == MessageKind::Text {
            self.utf8
                .feed(&self.message_buf[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if !complete {
            return Ok(None);
        }
        self.frame = None;
        if !fin {
            return Ok(None);
        }
        if kind == MessageKind::Text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        self.message = None;
        self.delivered = true;
        Ok(Some(Outcome::Message(kind, Source::Message)))
    }

    /// Fails the connection: queues a close frame with the error's code (unless one was sent)
    /// and discards everything the peer sends from now on.
    fn fail(&mut self, error: ProtocolError) -> Outcome {
        if self.sent_close.is_none() {
            self.owe_close(error.close_code(), error.as_str());
        }
        self.failed = true;
        self.frame = None;
        self.message = None;
        Outcome::Failed(error)
    }

    // ---------------------------------------------------------------------------------------
    // Sending
    // ---------------------------------------------------------------------------------------

    /// Queues a whole text message (compressed when deflate is on and it reaches the threshold).
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_message(MessageKind::Text, text.as_bytes(), true)
    }

    /// Queues a whole binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_message(MessageKind::Binary, data, true)
    }

    /// Queues a whole message as one frame. `compress: false` sends this one message
    /// uncompressed even where permessage-deflate is on. Text must be valid UTF-8.
    pub fn send_message(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        compress: bool,
    ) -> Result<(), SendError> {
        self.check_message(kind, data)?;
        self.queue_message(kind, data, compress)
    }

    /// [`Connection::send_message`] for a transport that can write a message from the
    /// caller's buffer instead of having it copied into the output: `transport_direct` says
    /// it can now (it holds nothing of its own to write first, encrypts nothing, and finds
    /// the message large enough to be worth a write of its own).
    ///
    /// Every check of `send_message` runs first. Then the message goes direct when its bytes
    /// on the wire are a header and the payload as is, and nothing may have to go before it:
    /// a server (no mask), no permessage-deflate, open, no streamed message, and nothing
    /// queued in the output (frame order). Otherwise it is queued as by `send_message`.
    #[inline]
    pub fn send_message_or_head(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        compress: bool,
        transport_direct: bool,
    ) -> Result<Sent, SendError> {
        self.check_message(kind, data)?;
        if transport_direct && self.may_write_direct() {
            let header = FrameHeader {
                fin: true,
                rsv1: false,
                rsv2: false,
                rsv3: false,
                opcode: kind.opcode(),
                mask: None,
                payload_len: data.len() as u64,
            };
            return Ok(Sent::Direct(header.encoded()));
        }
        self.queue_message(kind, data, compress)?;
        Ok(Sent::Queued)
    }

    /// Sends a message framed once for many connections (see [`Prepared`]): a server sends
    /// the frame `msg` built for its compression parameters (or the uncompressed one), shared
    /// with every other connection that sends it the same way. With `transport_shares` (the
    /// transport can queue a reference to the frame behind the output it already holds) the
    /// frame is handed back as [`SentFrame::Shared`] and nothing is copied; otherwise it is
    /// copied into the output.
    ///
    /// A client (which masks every frame with its own key) and a server whose compressor has
    /// context takeover send the message as [`Connection::send_message`] would: queued.
    pub fn send_prepared<'p>(
        &mut self,
        msg: &'p mut Prepared<'_>,
        transport_shares: bool,
    ) -> Result<SentFrame<'p>, SendError> {
        self.check_can_send()?;
        if self.streaming.is_some() {
            return Err(SendError::MessageInProgress);
        }
        let compress = self.should_compress(true, msg.data().len());
        let shared_key = self.deflate.as_ref().and_then(|d| d.shared_key());
        if self.role == Role::Client || (compress && shared_key.is_none()) {
            self.queue_message(msg.kind(), msg.data(), true)?;
            return Ok(SentFrame::Queued);
        }
        let frame = match shared_key.filter(|_| compress) {
            // The shared compressor's state is its own: a failure there is not this
            // connection's, which goes on.
            Some(key) => msg
                .compressed_frame(key)
                .map_err(|_| SendError::CompressionFailed)?,
            None => msg.plain_frame(),
        };
        if transport_shares && self.state() == State::Open {
            // What is queued now goes out before the frame: it may no longer be rewritten
            // (a newer pong replacing an unsent one, see `answer_ping`).
            self.unsent_pong = None;
            return Ok(SentFrame::Shared(frame));
        }
        self.out.extend_from_slice(frame);
        Ok(SentFrame::Queued)
    }

    /// Starts a message that will be sent as several frames with [`Connection::send_fragment`].
    /// Control frames (ping, pong, close) may still be sent in between.
    pub fn begin_message(&mut self, kind: MessageKind, compress: bool) -> Result<(), SendError> {
        self.check_can_send()?;
        if self.streaming.is_some() {
            return Err(SendError::MessageInProgress);
        }
        // The threshold applies to whole messages; a stream's size is unknown.
        let compressed = compress && self.deflate.is_some();
        self.streaming = Some(Streaming {
            kind,
            compressed,
            first: true,
        });
        self.send_utf8.reset();
        Ok(())
    }

    /// Queues the next frame of the message opened by `begin_message`; `fin` ends it. A text
    /// fragment may end inside a code point, but the whole text must be valid UTF-8: a
    /// fragment that makes it invalid is refused and nothing is queued.
    pub fn send_fragment(&mut self, data: &[u8], fin: bool) -> Result<(), SendError> {
        self.check_can_send()?;
        let Some(stream) = self.streaming.as_ref() else {
            return Err(SendError::NoMessageInProgress);
        };
        let (kind, compressed, first) = (stream.kind, stream.compressed, stream.first);
        if kind == MessageKind::Text {
            let mut check = self.send_utf8;
            let valid = check.feed(data).is_ok() && (!fin || check.is_complete());
            if !valid {
                return Err(SendError::InvalidUtf8);
            }
            self.send_utf8 = check;
        }
        let opcode = if first {
            kind.opcode()
        } else {
            OpCode::Continuation
        };
        if compressed {
            self.write_compressed(opcode, fin, first, data, false)?;
        } else {
            self.write_frame(opcode, fin, false, data);
        }
        if fin {
            self.streaming = None;
        } else if let Some(stream) = self.streaming.as_mut() {
            stream.first = false;
        }
        Ok(())
    }

    /// Queues a ping (payload at most 125 bytes).
    pub fn send_ping(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Ping, data)
    }

    /// Queues an unsolicited pong (a heartbeat that needs no answer). Pings are answered
    /// automatically; there is no need to call this for them.
    pub fn send_pong(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Pong, data)
    }

    /// Starts the closing handshake. The reason is UTF-8 of at most 123 bytes; the code must
    /// be one that may be sent (not 1005, 1006, 1015). Nothing else can be sent afterwards.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), SendError> {
        self.check_can_send()?;
        if !CloseCode(code).is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code));
        }
        if reason.len() > MAX_CONTROL_PAYLOAD - 2 {
            return Err(SendError::ControlPayloadTooLong);
        }
        self.owed_close = None;
        self.write_close(CloseCode(code), reason);
        Ok(())
    }

    /// Bytes queued for the transport and not yet consumed.
    pub fn pending_output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Marks `n` bytes of [`Connection::pending_output`] as written.
    pub fn consume(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self
            .unsent_pong
            .is_some_and(|(start, _)| start < self.out_pos)
        {
            self.unsent_pong = None; // on its way: a later ping gets a pong of its own
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos >= 64 * 1024 && self.out_pos * 2 >= self.out.len() {
            // Move the unsent rest to the front once the sent part dominates, so the buffer
            // does not grow while the transport drains it slowly (amortised O(1) per byte).
            self.out.drain(..self.out_pos);
            if let Some((start, end)) = self.unsent_pong.as_mut() {
                *start -= self.out_pos;
                *end -= self.out_pos;
            }
            self.out_pos = 0;
        }
    }

    /// Bytes queued and not yet consumed (WebSocket's `bufferedAmount`).
    pub fn buffered_amount(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Takes the reassembly buffer holding the last message delivered with `buffered: true`,
    /// without copying it. The connection goes on with the buffer last given to
    /// [`Connection::recycle_buffer`], or with a new one.
    pub fn take_message_buffer(&mut self) -> Vec<u8> {
        self.delivered = false;
        let spare = std::mem::take(&mut self.spare_buf);
        std::mem::replace(&mut self.message_buf, spare)
    }

    /// Gives a spare buffer back for the next reassembly.
    pub fn recycle_buffer(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        if buf.capacity() > self.spare_buf.capacity() {
            self.spare_buf = buf;
        }
    }

    /// Releases the capacity of empty buffers, and the compression state that holds no
    /// context between messages, so an idle connection costs little memory.
    pub fn shrink(&mut self) {
        if let Some(deflate) = self.deflate.as_mut() {
            if !deflate.keeps_send_context() && self.streaming.is_none() {
                deflate.compressor = None;
            }
            if !deflate.keeps_receive_context() && self.message.is_none() {
                deflate.decompressor = None;
            }
        }
        if self.message.is_none() {
            if self.delivered {
                self.message_buf.clear();
                self.delivered = false;
            }
            self.message_buf = Vec::new();
        }
        if self.out_pos == self.out.len() {
            self.out = Vec::new();
            self.out_pos = 0;
            self.unsent_pong = None;
        }
        self.spare_buf = Vec::new();
        self.scratch = Vec::new();
    }

    fn check_can_send(&self) -> Result<(), SendError> {
        // While a deferred close is owed, the application is still answering events that came
        // before it, so sending is allowed.
        if self.sent_close.is_some() || (self.failed && self.owed_close.is_none()) {
            Err(SendError::Closed)
        } else {
            Ok(())
        }
    }

    /// What a whole message must pass, however it is sent.
    fn check_message(&self, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        self.check_can_send()?;
        if self.streaming.is_some() {
            return Err(SendError::MessageInProgress);
        }
        if kind == MessageKind::Text && utf8::validate(data).is_err() {
            return Err(SendError::InvalidUtf8);
        }
        Ok(())
    }

    /// Whether a checked whole message may bypass the output (see `send_message_or_head`).
    /// `State::Open` also rules out a held-back close and a failed connection.
    fn may_write_direct(&self) -> bool {
        self.role == Role::Server
            && self.deflate.is_none()
            && self.state() == State::Open
            && self.streaming.is_none()
            && self.buffered_amount() == 0
    }

    /// Queues a checked whole message as one frame.
    fn queue_message(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        compress: bool,
    ) -> Result<(), SendError> {
        if self.should_compress(compress, data.len()) {
            self.write_compressed(kind.opcode(), true, true, data, true)
        } else {
            self.write_frame(kind.opcode(), true, false, data);
            Ok(())
        }
    }

    fn send_control(&mut self, opcode: OpCode, data: &[u8]) -> Result<(), SendError> {
        self.check_can_send()?;
        if data.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlPayloadTooLong);
        }
        self.write_frame(opcode, true, false, data);
        Ok(())
    }

    fn should_compress(&self, requested: bool, len: usize) -> bool {
        requested
            && self
                .deflate
                .as_ref()
                .is_some_and(|deflate| len >= deflate.threshold)
    }

    /// Compresses `data` into the scratch buffer and queues it as one frame. A `whole`
    /// message uses the thread's shared compressor when our side has no context takeover.
    fn write_compressed(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv1: bool,
        data: &[u8],
        whole: bool,
    ) -> Result<(), SendError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let Some(deflate) = self.deflate.as_mut() else {
            unreachable!("compression needs the extension")
        };
        let result = match deflate.shared_key().filter(|_| whole) {
            Some(key) => shared::compress_message(key, data, &mut scratch),
            None => deflate.compressor().compress(data, fin, &mut scratch),
        };
        if result.is_ok() {
            self.write_frame(opcode, fin, rsv1, &scratch);
        }
        self.scratch = scratch;
        result.map_err(|_| {
            // zlib only fails on internal errors. The compression context is then unknown,
            // so no later message could be decoded by the peer: end the connection (1011).
            self.write_close(CloseCode::INTERNAL_ERROR, "compression failed");
            self.failed = true;
            SendError::CompressionFailed
        })
    }

    /// Queues a close decided by `receive`, or holds it back (`defer_close_replies`).
    fn owe_close(&mut self, code: CloseCode, reason: &'static str) {
        if self.config.defer_close_replies {
            self.owed_close = Some((code, reason));
        } else {
            self.write_close(code, reason);
        }
    }

    /// Queues the pong that answers a ping. Every ping gets its pong while the peer reads
    /// what we send; once [`PONG_BACKLOG`] bytes wait unsent, a pong for an earlier ping that
    /// is still the last thing queued, with none of it written yet, is replaced instead of
    /// joined: RFC 6455 section 5.5.3 lets an endpoint answer only the most recent of several
    /// pings. So a peer that floods pings and never reads makes us hold at most that backlog
    /// and one pong, not one pong per ping.
    fn answer_ping(&mut self, payload: &[u8]) {
        if let Some((start, end)) = self.unsent_pong.take() {
            let backlog = self.buffered_amount() >= PONG_BACKLOG;
            if backlog && end == self.out.len() && start >= self.out_pos {
                self.out.truncate(start);
            }
        }
        let start = self.out.len();
        self.write_frame(OpCode::Pong, true, false, payload);
        self.unsent_pong = Some((start, self.out.len()));
    }

    fn write_close(&mut self, code: CloseCode, reason: &str) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let len = write_close_payload(code, reason, &mut payload);
        self.write_frame(OpCode::Close, true, false, &payload[..len]);
        self.sent_close = Some((code, reason.to_owned()));
    }

    /// Appends one frame, masking it when we are the client.
    fn write_frame(&mut self, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) {
        let mask = match self.role {
            Role::Client => Some(mask_key()),
            Role::Server => None,
        };
        let header = FrameHeader {
            fin,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        header.write_to(&mut self.out);
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.out[start..], key, 0);
        }
    }
}

fn inflate_error(error: DeflateError) -> ProtocolError {
    match error {
        DeflateError::TooBig => ProtocolError::MessageTooBig,
        _ => ProtocolError::InvalidCompressedData,
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
