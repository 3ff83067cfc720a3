//! Reading an HTTP/1.1 header block that may arrive in any number of pieces.
//!
//! Shared by both roles. Bytes are kept only while the block is incomplete, and never more
//! than `max_header_bytes` of them: whatever follows the block in the same read stays in the
//! caller's buffer and is reported as an offset (`body_start`).

use super::{HandshakeError, Header, Limits};

/// The first line of the block.
#[derive(Debug)]
pub(crate) enum StartLine {
    Request { method: String, target: String },
    Response { status: u16, reason: String },
}

/// A complete, owned header block.
#[derive(Debug)]
pub(crate) struct Head {
    pub start: StartLine,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    pub headers: Vec<Header>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    Response,
}

/// Accumulates a header block until httparse finds its end.
#[derive(Debug)]
pub(crate) struct HeadReader {
    kind: Kind,
    limits: super::Limits,
    buf: Vec<u8>,
    finished: bool,
}

/// Header storage on the stack for the default limit; larger limits go to the heap.
const STACK_HEADERS: usize = 64;

impl HeadReader {
    pub fn new(kind: Kind, limits: Limits) -> Self {
        HeadReader {
            kind,
            limits,
            buf: Vec::new(),
            finished: false,
        }
    }

    /// Feeds the next bytes. `Ok(Some((head, body_start)))` once the block is complete, where
    /// `input[body_start..]` is what followed it. After that, or after an error, every call
    /// answers [`HandshakeError::Finished`].
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<(Head, usize)>, HandshakeError> {
        if self.finished {
            return Err(HandshakeError::Finished);
        }
        if input.is_empty() {
            return Ok(None);
        }
        let result = self.feed_inner(input);
        if !matches!(result, Ok(None)) {
            self.finished = true;
            self.buf = Vec::new();
        }
        result
    }

    fn feed_inner(&mut self, input: &[u8]) -> Result<Option<(Head, usize)>, HandshakeError> {
        let limit = self.limits.max_header_bytes;
        let old = self.buf.len();
        // Never look at (or keep) bytes past the limit: the block must end before it.
        let chunk = &input[..input.len().min(limit.saturating_sub(old))];
        // A block can only end, and httparse can only decide anything new, once a line has
        // ended; a peer trickling one byte at a time thus costs one parse per line.
        let line_ended = chunk.contains(&b'\n');
        let parsed = if !line_ended {
            None
        } else if old == 0 {
            // The usual case: the whole block in one read, parsed where it lies.
            self.parse(chunk)?
        } else {
            self.buf.extend_from_slice(chunk);
            self.parse(&self.buf)?
        };
        match parsed {
            Some((len, head)) => {
                // The previous call ended with an incomplete block, so this one ends inside
                // `chunk`: `len > old`. Checked anyway, so that a slip here cannot turn
                // into an out-of-bounds offset for the caller.
                match len.checked_sub(old) {
                    Some(start) if start > 0 => Ok(Some((head, start))),
                    _ => Err(HandshakeError::Malformed(
                        "header block ended before new input",
                    )),
                }
            }
            None => {
                if old == 0 || !line_ended {
                    self.buf.extend_from_slice(chunk);
                }
                if self.buf.len() >= limit {
                    return Err(HandshakeError::HeaderTooLarge { limit });
                }
                Ok(None)
            }
        }
    }

    /// Runs httparse over `data`; `Some((block length, head))` when complete.
    fn parse(&self, data: &[u8]) -> Result<Option<(usize, Head)>, HandshakeError> {
        let max = self.limits.max_headers;
        let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
        let mut heap;
        let storage: &mut [httparse::Header<'_>] = if max <= STACK_HEADERS {
            &mut stack[..max]
        } else {
            heap = vec![httparse::EMPTY_HEADER; max];
            &mut heap
        };
        let too_many = HandshakeError::TooManyHeaders { limit: max };
        match self.kind {
            Kind::Request => {
                let mut req = httparse::Request::new(storage);
                let len = match req.parse(data) {
                    Ok(httparse::Status::Complete(len)) => len,
                    Ok(httparse::Status::Partial) => return Ok(None),
                    Err(httparse::Error::TooManyHeaders) => return Err(too_many),
                    Err(e) => return Err(malformed(e)),
                };
                let (Some(method), Some(target), Some(version)) =
                    (req.method, req.path, req.version)
                else {
                    return Err(HandshakeError::Malformed("incomplete request line"));
                };
                let start = StartLine::Request {
                    method: method.to_owned(),
                    target: target.to_owned(),
                };
                Ok(Some((len, owned(start, version, req.headers))))
            }
            Kind::Response => {
                let mut resp = httparse::Response::new(storage);
                let len = match resp.parse(data) {
                    Ok(httparse::Status::Complete(len)) => len,
                    Ok(httparse::Status::Partial) => return Ok(None),
                    Err(httparse::Error::TooManyHeaders) => return Err(too_many),
                    Err(e) => return Err(malformed(e)),
                };
                let (Some(status), Some(version)) = (resp.code, resp.version) else {
                    return Err(HandshakeError::Malformed("incomplete status line"));
                };
                let start = StartLine::Response {
                    status,
                    reason: resp.reason.unwrap_or("").to_owned(),
                };
                Ok(Some((len, owned(start, version, resp.headers))))
            }
        }
    }
}

fn owned(start: StartLine, version: u8, headers: &[httparse::Header<'_>]) -> Head {
    Head {
        start,
        version,
        headers: headers
            .iter()
            .map(|h| Header {
                name: h.name.to_owned(),
                value: super::trim_ows(h.value).to_vec(),
            })
            .collect(),
    }
}

fn malformed(e: httparse::Error) -> HandshakeError {
    HandshakeError::Malformed(match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status code",
        httparse::Error::Token => "invalid method or token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: usize, headers: usize) -> Limits {
        Limits {
            max_header_bytes: bytes,
            max_headers: headers,
        }
    }

    const REQ: &[u8] = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Y:  v \r\n\r\nBODY";

    #[test]
    fn complete_block_in_one_read_reports_body_start() {
        let mut r = HeadReader::new(Kind::Request, Limits::default());
        let (head, start) = r.feed(REQ).unwrap().unwrap();
        assert_eq!(&REQ[start..], b"BODY");
        assert_eq!(head.version, 1);
        assert_eq!(head.headers[1].value, b"v");
        assert!(matches!(head.start, StartLine::Request { ref target, .. } if target == "/x"));
    }

    #[test]
    fn every_split_gives_the_same_block_and_body_offset() {
        let body = REQ.len() - 4;
        for chunk in 1..=REQ.len() {
            let mut r = HeadReader::new(Kind::Request, Limits::default());
            let mut done = None;
            for (i, piece) in REQ.chunks(chunk).enumerate() {
                if let Some((head, start)) = r.feed(piece).unwrap() {
                    assert_eq!(i * chunk + start, body, "chunk {chunk}");
                    done = Some(head);
                    break;
                }
            }
            let head = done.unwrap_or_else(|| panic!("chunk {chunk} never completed"));
            assert_eq!(head.headers.len(), 2);
        }
    }

    #[test]
    fn block_of_exactly_the_limit_is_accepted_one_more_byte_is_not() {
        let block = &REQ[..REQ.len() - 4];
        let mut r = HeadReader::new(Kind::Request, limits(block.len(), 8));
        assert!(r.feed(REQ).unwrap().is_some());
        let mut r = HeadReader::new(Kind::Request, limits(block.len() - 1, 8));
        assert_eq!(
            r.feed(REQ).unwrap_err(),
            HandshakeError::HeaderTooLarge {
                limit: block.len() - 1
            }
        );
    }

    #[test]
    fn limit_is_enforced_without_a_line_end_in_sight() {
        let mut r = HeadReader::new(Kind::Request, limits(16, 8));
        assert!(r.feed(b"GET /aaaaaaa").unwrap().is_none());
        assert!(matches!(
            r.feed(b"aaaaaaaaaaaa"),
            Err(HandshakeError::HeaderTooLarge { limit: 16 })
        ));
        assert!(matches!(r.feed(b"x"), Err(HandshakeError::Finished)));
    }

    #[test]
    fn header_count_limit_is_enforced() {
        let mut r = HeadReader::new(Kind::Request, limits(8192, 1));
        assert_eq!(
            r.feed(REQ).unwrap_err(),
            HandshakeError::TooManyHeaders { limit: 1 }
        );
    }

    #[test]
    fn header_count_limit_above_the_stack_array_works() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            req.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let mut r = HeadReader::new(Kind::Request, limits(8192, 100));
        assert_eq!(r.feed(&req).unwrap().unwrap().0.headers.len(), 100);
        let mut r = HeadReader::new(Kind::Request, limits(8192, 99));
        assert!(matches!(
            r.feed(&req),
            Err(HandshakeError::TooManyHeaders { .. })
        ));
    }

    #[test]
    fn garbage_is_malformed_once_its_line_ends() {
        let mut r = HeadReader::new(Kind::Request, Limits::default());
        assert!(r.feed(b"\x16\x03\x01 tls hello").unwrap().is_none());
        assert!(matches!(r.feed(b"\r\n"), Err(HandshakeError::Malformed(_))));
    }

    #[test]
    fn empty_input_needs_more() {
        let mut r = HeadReader::new(Kind::Response, limits(0, 0));
        assert!(r.feed(b"").unwrap().is_none());
    }
}
