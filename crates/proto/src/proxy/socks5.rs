//! A SOCKS5 `CONNECT`, client side (RFC 1928), with username/password authentication (RFC
//! 1929).
//!
//! The exchange is lock-step: the client speaks, the proxy answers, and only then does the
//! client speak again.
//!
//! ```text
//! client                                  proxy
//! greeting     05 nmethods methods  --->
//!                                   <---  05 method               method selection
//! (method 02)  01 ulen user plen pass --->
//!                                   <---  01 status               authentication status
//! request      05 01 00 atyp addr port --->
//!                                   <---  05 rep 00 atyp addr port   reply
//!              tunnel data          <-->
//! ```
//!
//! [`Socks5`] holds the bytes to send next ([`Socks5::output`]) and reads each answer as it
//! arrives ([`Socks5::receive`]):
//!
//! ```
//! use tidewire_proto::proxy::{Credentials, Progress, Socks5, Target};
//!
//! let target = Target::domain("echo.example", 443)?;
//! let mut socks = Socks5::new(&target, Some(&Credentials::new("alice", "s3cret")))?;
//! // What a proxy answers, one read at a time; the last read also holds tunnel data.
//! let mut reads: Vec<&[u8]> = vec![
//!     b"\x05\x02",
//!     b"\x01\x00",
//!     b"\x05\x00\x00\x01\xc0\x00\x02\x01\x01\xbb\x16\x03\x01",
//! ];
//! reads.reverse();
//! let mut sent = Vec::new();
//! let tunnel_data = loop {
//!     // Write everything the machine has queued, then read.
//!     let out = socks.output();
//!     sent.extend_from_slice(out); // socket.write(out), here all of it at once
//!     let n = out.len();
//!     socks.consume_output(n);
//!     let input = reads.pop().expect("the proxy answers");
//!     match socks.receive(input)? {
//!         Progress::NeedMore | Progress::Send => continue,
//!         Progress::Done { body_start } => break &input[body_start..],
//!     }
//! };
//! assert_eq!(tunnel_data, b"\x16\x03\x01");
//! assert_eq!(&sent[..4], b"\x05\x02\x00\x02"); // offers no-auth and username/password
//! # Ok::<(), tidewire_proto::proxy::ProxyError>(())
//! ```

use super::{Credentials, ProxyError, Target};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The protocol version (RFC 1928 section 3: `X'05'`).
const VERSION: u8 = 5;
/// The username/password sub-negotiation's version (RFC 1929 section 2: `X'01'`).
const AUTH_VERSION: u8 = 1;

// Methods (RFC 1928 section 3).
const NO_AUTH: u8 = 0x00;
const USERNAME_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xFF;

/// CMD `CONNECT` (RFC 1928 section 4).
const CMD_CONNECT: u8 = 1;

// Address types (RFC 1928 section 5).
const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;

/// The longest answer a proxy can give (the reply: VER REP RSV ATYP, a length octet and 255
/// bytes of name, the port), and so the most a [`Socks5`] ever buffers.
pub const MAX_REPLY_LEN: usize = 4 + 1 + 255 + 2;

/// The client's side of one SOCKS5 handshake.
///
/// How to drive it:
///
/// 1. Send [`output`](Socks5::output) (after [`new`](Socks5::new) it holds the greeting) and
///    call [`consume_output`](Socks5::consume_output) with the number of bytes written.
/// 2. Feed every byte the proxy sends to [`receive`](Socks5::receive):
///    * [`Progress::NeedMore`]: the answer is incomplete; read more.
///    * [`Progress::Send`]: new output is ready; go to 1.
///    * [`Progress::Done`]: the tunnel is open, and `input[body_start..]` of that call is
///      already tunnel data.
///
/// Any error ends the handshake: close the connection. After the end, `receive` answers
/// [`ProxyError::Finished`]. The machine checks the lock-step order itself: bytes that arrive
/// while output is still unsent, or beyond the answer expected, are an error
/// ([`ProxyError::UnexpectedBytes`]), never silently taken as the next answer.
pub struct Socks5 {
    step: Step,
    /// Bytes queued for the proxy; `output[written..]` is still to be sent.
    output: Vec<u8>,
    written: usize,
    /// The answer read so far: at most [`MAX_REPLY_LEN`] bytes.
    answer: Vec<u8>,
    /// The RFC 1929 request, kept until the proxy selects username/password.
    auth_request: Option<Vec<u8>>,
    connect_request: Vec<u8>,
    bound: Option<Bound>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    MethodSelection,
    AuthStatus,
    Reply,
    Done,
    Failed,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::MethodSelection => "method selection",
            Step::AuthStatus => "authentication status",
            Step::Reply | Step::Done | Step::Failed => "CONNECT reply",
        }
    }
}

/// What [`Socks5::receive`] did with the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The proxy's answer is not complete: feed more bytes.
    NeedMore,
    /// The answer was read and the next request is in [`Socks5::output`]: send it.
    Send,
    /// The tunnel is open. `input[body_start..]`, in the call that returned this, is the
    /// first tunnel data; the handshake has no more output.
    Done { body_start: usize },
}

/// The address the proxy connected from (BND.ADDR and BND.PORT of the reply, RFC 1928
/// section 6). Informational: nothing in the handshake depends on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound {
    Addr(SocketAddr),
    /// A host name, as bytes: RFC 1928 does not say what it may hold.
    Domain {
        name: Vec<u8>,
        port: u16,
    },
}

/// The REP field of a failed reply (RFC 1928 section 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplyCode {
    /// `X'01'`: general SOCKS server failure.
    GeneralFailure,
    /// `X'02'`: connection not allowed by ruleset.
    NotAllowed,
    /// `X'03'`: network unreachable.
    NetworkUnreachable,
    /// `X'04'`: host unreachable.
    HostUnreachable,
    /// `X'05'`: connection refused.
    ConnectionRefused,
    /// `X'06'`: TTL expired.
    TtlExpired,
    /// `X'07'`: command not supported.
    CommandNotSupported,
    /// `X'08'`: address type not supported.
    AddressTypeNotSupported,
    /// `X'09'` to `X'FF'`: unassigned.
    Unassigned(u8),
}

impl ReplyCode {
    /// The failure a non-zero REP stands for; `None` for `X'00'` (succeeded).
    pub fn from_rep(rep: u8) -> Option<ReplyCode> {
        Some(match rep {
            0 => return None,
            1 => ReplyCode::GeneralFailure,
            2 => ReplyCode::NotAllowed,
            3 => ReplyCode::NetworkUnreachable,
            4 => ReplyCode::HostUnreachable,
            5 => ReplyCode::ConnectionRefused,
            6 => ReplyCode::TtlExpired,
            7 => ReplyCode::CommandNotSupported,
            8 => ReplyCode::AddressTypeNotSupported,
            other => ReplyCode::Unassigned(other),
        })
    }

    /// The REP octet.
    pub fn rep(self) -> u8 {
        match self {
            ReplyCode::GeneralFailure => 1,
            ReplyCode::NotAllowed => 2,
            ReplyCode::NetworkUnreachable => 3,
            ReplyCode::HostUnreachable => 4,
            ReplyCode::ConnectionRefused => 5,
            ReplyCode::TtlExpired => 6,
            ReplyCode::CommandNotSupported => 7,
            ReplyCode::AddressTypeNotSupported => 8,
            ReplyCode::Unassigned(rep) => rep,
        }
    }

    /// RFC 1928's words for the code.
    pub fn meaning(self) -> &'static str {
        match self {
            ReplyCode::GeneralFailure => "general SOCKS server failure",
            ReplyCode::NotAllowed => "connection not allowed by ruleset",
            ReplyCode::NetworkUnreachable => "network unreachable",
            ReplyCode::HostUnreachable => "host unreachable",
            ReplyCode::ConnectionRefused => "connection refused",
            ReplyCode::TtlExpired => "TTL expired",
            ReplyCode::CommandNotSupported => "command not supported",
            ReplyCode::AddressTypeNotSupported => "address type not supported",
            ReplyCode::Unassigned(_) => "unassigned reply code",
        }
    }
}

/// `connection refused (REP 0x05)`.
impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (REP {:#04x})", self.meaning(), self.rep())
    }
}

impl Socks5 {
    /// Prepares the handshake; [`output`](Socks5::output) then holds the greeting. Without
    /// credentials the greeting offers "no authentication" only; with them it offers
    /// username/password too, and the proxy picks. RFC 1929 section 2 carries each of
    /// username and password in 1 to 255 bytes: anything else is
    /// [`ProxyError::InvalidCredentials`].
    ///
    /// `target` is a domain name for `socks5h://` (the proxy resolves it) or an address for
    /// `socks5://` (the client resolved it).
    pub fn new(target: &Target, credentials: Option<&Credentials>) -> Result<Socks5, ProxyError> {
        let auth_request = credentials.map(auth_request).transpose()?;
        let greeting = match auth_request {
            Some(_) => vec![VERSION, 2, NO_AUTH, USERNAME_PASSWORD],
            None => vec![VERSION, 1, NO_AUTH],
        };
        Ok(Socks5 {
            step: Step::MethodSelection,
            output: greeting,
            written: 0,
            answer: Vec::new(),
            auth_request,
            connect_request: connect_request(target),
            bound: None,
        })
    }

    /// The bytes to send now; empty while the machine waits for the proxy.
    pub fn output(&self) -> &[u8] {
        &self.output[self.written..]
    }

    /// Marks the first `n` bytes of [`output`](Socks5::output) as sent (a larger `n` counts
    /// as all of them).
    pub fn consume_output(&mut self, n: usize) {
        self.written = self.output.len().min(self.written.saturating_add(n));
        if self.written == self.output.len() {
            self.output.clear();
            self.written = 0;
        }
    }

    /// Where the proxy connected from, once the handshake is done.
    pub fn bound(&self) -> Option<&Bound> {
        self.bound.as_ref()
    }

    /// Feeds the proxy's bytes as they arrive; see [`Progress`] for the answers.
    pub fn receive(&mut self, input: &[u8]) -> Result<Progress, ProxyError> {
        if matches!(self.step, Step::Done | Step::Failed) {
            return Err(ProxyError::Finished);
        }
        if input.is_empty() {
            return Ok(Progress::NeedMore);
        }
        let result = if self.output().is_empty() {
            self.receive_inner(input)
        } else {
            // The proxy cannot answer a request it has not heard in full.
            Err(ProxyError::UnexpectedBytes {
                step: self.step.name(),
            })
        };
        if let Err(e) = result {
            self.step = Step::Failed;
            self.output = Vec::new();
            self.written = 0;
            self.answer = Vec::new();
            self.auth_request = None;
            return Err(e);
        }
        result
    }

    fn receive_inner(&mut self, input: &[u8]) -> Result<Progress, ProxyError> {
        let mut pos = 0;
        // Each pass copies what the fields known so far say is missing: at most three passes
        // for a reply (fixed part, name length, the rest).
        loop {
            let need = self.answer_len()?;
            if self.answer.len() >= need {
                break;
            }
            let take = (need - self.answer.len()).min(input.len() - pos);
            if take == 0 {
                return Ok(Progress::NeedMore);
            }
            self.answer.extend_from_slice(&input[pos..pos + take]);
            pos += take;
        }
        let answer = std::mem::take(&mut self.answer);
        match self.step {
            Step::MethodSelection => {
                let next = match answer[1] {
                    NO_AUTH => Step::Reply,
                    USERNAME_PASSWORD if self.auth_request.is_some() => Step::AuthStatus,
                    NO_ACCEPTABLE => return Err(ProxyError::NoAcceptableMethods),
                    other => return Err(ProxyError::UnofferedMethod(other)),
                };
                self.expect_end(input, pos)?;
                self.output = match next {
                    Step::AuthStatus => self.auth_request.take().unwrap_or_default(),
                    _ => std::mem::take(&mut self.connect_request),
                };
                self.auth_request = None;
                self.step = next;
                Ok(Progress::Send)
            }
            Step::AuthStatus => {
                // RFC 1929 section 2: X'00' is success, anything else failure.
                if answer[1] != 0 {
                    return Err(ProxyError::AuthFailed { status: answer[1] });
                }
                self.expect_end(input, pos)?;
                self.output = std::mem::take(&mut self.connect_request);
                self.step = Step::Reply;
                Ok(Progress::Send)
            }
            Step::Reply => {
                self.bound = Some(bound(&answer));
                self.step = Step::Done;
                Ok(Progress::Done { body_start: pos })
            }
            Step::Done | Step::Failed => Err(ProxyError::Finished),
        }
    }

    /// Before the reply the proxy has nothing more to say until it hears from us.
    fn expect_end(&self, input: &[u8], pos: usize) -> Result<(), ProxyError> {
        if pos < input.len() {
            return Err(ProxyError::UnexpectedBytes {
                step: self.step.name(),
            });
        }
        Ok(())
    }

    /// Checks the fields of the answer read so far, in the order they arrive, and gives the
    /// answer's length as far as those fields tell it.
    fn answer_len(&self) -> Result<usize, ProxyError> {
        let a = &self.answer;
        let version = |expected: u8, field: &'static str| match a.first() {
            Some(&got) if got != expected => Err(ProxyError::BadVersion {
                field,
                expected,
                got,
            }),
            _ => Ok(()),
        };
        match self.step {
            Step::MethodSelection => {
                version(VERSION, "method selection VER")?;
                Ok(2)
            }
            Step::AuthStatus => {
                // Some servers answer with the SOCKS version here rather than the
                // sub-negotiation's; curl, for one, does not look at this octet at all.
                if a.first() != Some(&VERSION) {
                    version(AUTH_VERSION, "authentication status VER")?;
                }
                Ok(2)
            }
            Step::Reply => {
                version(VERSION, "reply VER")?;
                if let Some(code) = a.get(1).and_then(|&rep| ReplyCode::from_rep(rep)) {
                    return Err(ProxyError::ConnectFailed(code));
                }
                match a.get(2) {
                    Some(&rsv) if rsv != 0 => return Err(ProxyError::BadReserved(rsv)),
                    _ => {}
                }
                Ok(match a.get(3) {
                    None => 4,
                    Some(&ATYP_IPV4) => 4 + 4 + 2,
                    Some(&ATYP_IPV6) => 4 + 16 + 2,
                    Some(&ATYP_DOMAIN) => match a.get(4) {
                        None => 5,
                        Some(&len) => 4 + 1 + usize::from(len) + 2,
                    },
                    Some(&other) => return Err(ProxyError::UnknownAddressType(other)),
                })
            }
            Step::Done | Step::Failed => Err(ProxyError::Finished),
        }
    }
}

/// The session is over once the reply is in; the queued requests hold credentials, so only
/// the step is shown.
impl fmt::Debug for Socks5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socks5")
            .field("step", &self.step)
            .field("output_len", &self.output().len())
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

/// `VER ULEN UNAME PLEN PASSWD` (RFC 1929 section 2).
fn auth_request(c: &Credentials) -> Result<Vec<u8>, ProxyError> {
    let (Ok(ulen), Ok(plen)) = (
        u8::try_from(c.username.len()),
        u8::try_from(c.password.len()),
    ) else {
        return Err(ProxyError::InvalidCredentials(
            "SOCKS5 username and password are 255 bytes at most (RFC 1929 section 2)",
        ));
    };
    if ulen == 0 || plen == 0 {
        return Err(ProxyError::InvalidCredentials(
            "SOCKS5 username and password are 1 byte at least (RFC 1929 section 2)",
        ));
    }
    let mut req = Vec::with_capacity(3 + c.username.len() + c.password.len());
    req.extend_from_slice(&[AUTH_VERSION, ulen]);
    req.extend_from_slice(&c.username);
    req.push(plen);
    req.extend_from_slice(&c.password);
    Ok(req)
}

/// `VER CMD RSV ATYP DST.ADDR DST.PORT` (RFC 1928 section 4).
fn connect_request(target: &Target) -> Vec<u8> {
    let mut req = Vec::with_capacity(4 + 1 + 255 + 2);
    req.extend_from_slice(&[VERSION, CMD_CONNECT, 0]);
    match (target.ip_addr(), target.domain_name()) {
        (Some(IpAddr::V4(v4)), _) => {
            req.push(ATYP_IPV4);
            req.extend_from_slice(&v4.octets());
        }
        (Some(IpAddr::V6(v6)), _) => {
            req.push(ATYP_IPV6);
            req.extend_from_slice(&v6.octets());
        }
        (None, name) => {
            // `Target::domain` holds names to 1..=255 bytes, so the length fits its octet.
            let name = name.unwrap_or_default().as_bytes();
            req.push(ATYP_DOMAIN);
            req.push(name.len().min(255) as u8);
            req.extend_from_slice(&name[..name.len().min(255)]);
        }
    }
    req.extend_from_slice(&target.port().to_be_bytes());
    req
}

/// BND.ADDR and BND.PORT of a complete reply, whose length `answer_len` has fixed.
fn bound(reply: &[u8]) -> Bound {
    let (head, port) = reply.split_at(reply.len().saturating_sub(2));
    let port = match *port {
        [hi, lo] => u16::from_be_bytes([hi, lo]),
        _ => 0,
    };
    let addr = head.get(4..).unwrap_or_default();
    let ip = match head.get(3) {
        Some(&ATYP_IPV4) => <[u8; 4]>::try_from(addr).ok().map(IpAddr::from),
        Some(&ATYP_IPV6) => <[u8; 16]>::try_from(addr).ok().map(IpAddr::from),
        _ => None,
    };
    match ip {
        Some(ip) => Bound::Addr(SocketAddr::new(ip, port)),
        // A domain: the length octet, then the name.
        None => Bound::Domain {
            name: addr.get(1..).unwrap_or_default().to_vec(),
            port,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    /// 2001:db8::1
    const V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    const NO_AUTH_CHOSEN: &[u8] = b"\x05\x00";
    const USERPASS_CHOSEN: &[u8] = b"\x05\x02";
    const AUTH_OK: &[u8] = b"\x01\x00";
    /// Bound to 192.0.2.1:8080.
    const REPLY_V4: &[u8] = b"\x05\x00\x00\x01\xc0\x00\x02\x01\x1f\x90";
    /// Bound to [2001:db8::1]:443.
    const REPLY_V6: &[u8] = b"\x05\x00\x00\x04\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01\x01\xbb";
    /// Bound to proxy.example:1080.
    const REPLY_DOMAIN: &[u8] = b"\x05\x00\x00\x03\x0dproxy.example\x04\x38";
    /// A TLS ClientHello's first bytes, as the tunnel's first data.
    const TUNNEL: &[u8] = b"\x16\x03\x01\x02\x00\x01";

    fn domain() -> Target {
        Target::domain("echo.example", 443).unwrap()
    }

    fn alice() -> Credentials {
        Credentials::new("alice", "s3cret")
    }

    /// Takes everything queued, as a transport that writes it all.
    fn take(s: &mut Socks5) -> Vec<u8> {
        let out = s.output().to_vec();
        s.consume_output(out.len());
        out
    }

    /// Runs a handshake: each answer fed in pieces of `size` once the request before it was
    /// taken. Returns what was sent and the tunnel data that came with the last answer.
    fn run(
        target: &Target,
        credentials: Option<&Credentials>,
        answers: &[&[u8]],
        size: usize,
    ) -> Result<(Vec<u8>, Vec<u8>, Socks5), ProxyError> {
        let mut s = Socks5::new(target, credentials)?;
        let mut sent = take(&mut s);
        for (i, answer) in answers.iter().enumerate() {
            let last = i + 1 == answers.len();
            for (j, chunk) in answer.chunks(size).enumerate() {
                let progress = s.receive(chunk)?;
                let at_end = (j + 1) * size >= answer.len();
                match progress {
                    Progress::NeedMore => assert!(!at_end, "answer {i} incomplete"),
                    Progress::Send => {
                        assert!(at_end && !last, "Send before the end of answer {i}");
                        assert!(!s.output().is_empty());
                        sent.extend_from_slice(&take(&mut s));
                    }
                    Progress::Done { body_start } => {
                        assert!(last, "Done before the last answer");
                        assert!(s.output().is_empty());
                        return Ok((sent, chunk[body_start..].to_vec(), s));
                    }
                }
            }
        }
        panic!("the handshake never finished");
    }

    fn fail(credentials: Option<&Credentials>, answers: &[&[u8]]) -> ProxyError {
        run(&domain(), credentials, answers, usize::MAX).unwrap_err()
    }

    #[test]
    fn greeting_offers_no_auth_and_user_pass_only_with_credentials_rfc1928_3() {
        let mut s = Socks5::new(&domain(), None).unwrap();
        assert_eq!(s.output(), b"\x05\x01\x00");
        assert_eq!(take(&mut s), b"\x05\x01\x00");
        assert_eq!(s.output(), b"");
        let s = Socks5::new(&domain(), Some(&alice())).unwrap();
        assert_eq!(s.output(), b"\x05\x02\x00\x02");
    }

    #[test]
    fn connect_request_carries_ipv4_ipv6_or_domain_rfc1928_4_and_5() {
        for (target, expected) in [
            (
                Target::ip(V4.into(), 80),
                &b"\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x50"[..],
            ),
            (
                Target::ip(V6.into(), 443),
                b"\x05\x01\x00\x04\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01\x01\xbb",
            ),
            (domain(), b"\x05\x01\x00\x03\x0cecho.example\x01\xbb"),
        ] {
            let (sent, _, _) = run(&target, None, &[NO_AUTH_CHOSEN, REPLY_V4], 64).unwrap();
            assert_eq!(&sent[3..], expected, "{target}");
        }
    }

    #[test]
    fn connect_request_takes_a_255_byte_domain() {
        let name = "a".repeat(255);
        let target = Target::domain(&name, 1).unwrap();
        let (sent, _, _) = run(&target, None, &[NO_AUTH_CHOSEN, REPLY_V4], 64).unwrap();
        let request = &sent[3..];
        assert_eq!(&request[..5], b"\x05\x01\x00\x03\xff");
        assert_eq!(&request[5..260], name.as_bytes());
        assert_eq!(&request[260..], b"\x00\x01");
    }

    #[test]
    fn user_pass_subnegotiation_is_byte_exact_rfc1929_2() {
        let (sent, _, _) = run(
            &domain(),
            Some(&alice()),
            &[USERPASS_CHOSEN, AUTH_OK, REPLY_V4],
            64,
        )
        .unwrap();
        let expected = [
            &b"\x05\x02\x00\x02"[..],
            b"\x01\x05alice\x06s3cret",
            b"\x05\x01\x00\x03\x0cecho.example\x01\xbb",
        ]
        .concat();
        assert_eq!(sent, expected);
    }

    #[test]
    fn proxy_may_skip_authentication_when_credentials_are_given() {
        let (sent, _, _) = run(&domain(), Some(&alice()), &[NO_AUTH_CHOSEN, REPLY_V4], 64).unwrap();
        assert_eq!(&sent[4..7], b"\x05\x01\x00");
    }

    #[test]
    fn credentials_are_1_to_255_bytes_each_rfc1929_2() {
        let long = vec![b'x'; 256];
        let max = vec![b'x'; 255];
        for (user, pass, ok) in [
            (&max, &max, true),
            (&long, &max, false),
            (&max, &long, false),
            (&vec![], &max, false),
            (&max, &vec![], false),
        ] {
            let c = Credentials::new(user.clone(), pass.clone());
            let made = Socks5::new(&domain(), Some(&c));
            assert_eq!(made.is_ok(), ok, "{} {}", user.len(), pass.len());
            if !ok {
                assert!(matches!(made, Err(ProxyError::InvalidCredentials(_))));
            }
        }
    }

    #[test]
    fn reply_of_each_address_type_reports_bound_address_and_tunnel_data() {
        for (reply, bound) in [
            (REPLY_V4, Bound::Addr(SocketAddr::new(V4.into(), 8080))),
            (REPLY_V6, Bound::Addr(SocketAddr::new(V6.into(), 443))),
            (
                REPLY_DOMAIN,
                Bound::Domain {
                    name: b"proxy.example".to_vec(),
                    port: 1080,
                },
            ),
            (
                b"\x05\x00\x00\x03\x00\x00\x00",
                Bound::Domain {
                    name: vec![],
                    port: 0,
                },
            ),
        ] {
            let last = [reply, TUNNEL].concat();
            let (_, tunnel, s) = run(&domain(), None, &[NO_AUTH_CHOSEN, &last], 64).unwrap();
            assert_eq!(tunnel, TUNNEL);
            assert_eq!(s.bound(), Some(&bound));
            let (_, tunnel, _) = run(&domain(), None, &[NO_AUTH_CHOSEN, reply], 64).unwrap();
            assert_eq!(tunnel, b"");
        }
    }

    #[test]
    fn every_answer_fed_in_every_chunk_size_gives_the_same_result() {
        for reply in [REPLY_V4, REPLY_V6, REPLY_DOMAIN] {
            let last = [reply, TUNNEL].concat();
            let answers = [USERPASS_CHOSEN, AUTH_OK, &last];
            let whole = run(&domain(), Some(&alice()), &answers, usize::MAX).unwrap();
            for size in 1..=last.len() {
                let (sent, tunnel, s) = run(&domain(), Some(&alice()), &answers, size).unwrap();
                assert_eq!(
                    (&sent, s.bound()),
                    (&whole.0, whole.2.bound()),
                    "size {size}"
                );
                // The tunnel data is what followed the reply in the chunk that ended it.
                let chunk_start = (reply.len() - 1) / size * size;
                let chunk_end = (chunk_start + size).min(last.len());
                assert_eq!(tunnel, &last[reply.len()..chunk_end], "size {size}");
            }
        }
    }

    #[test]
    fn reply_split_at_every_byte_position_reports_body_start_in_the_last_piece() {
        for reply in [REPLY_V4, REPLY_V6, REPLY_DOMAIN] {
            let last = [reply, TUNNEL].concat();
            for cut in 1..reply.len() {
                let mut s = Socks5::new(&domain(), None).unwrap();
                take(&mut s);
                assert_eq!(s.receive(NO_AUTH_CHOSEN), Ok(Progress::Send));
                take(&mut s);
                assert_eq!(s.receive(&last[..cut]), Ok(Progress::NeedMore), "cut {cut}");
                let body_start = reply.len() - cut;
                assert_eq!(s.receive(&last[cut..]), Ok(Progress::Done { body_start }));
                assert_eq!(s.receive(b"x"), Err(ProxyError::Finished));
            }
        }
    }

    #[test]
    fn proxy_not_speaking_socks5_fails_on_the_version_rfc1928_3() {
        assert_eq!(
            fail(None, &[b"HTTP/1.1 400 Bad Request\r\n\r\n"]),
            ProxyError::BadVersion {
                field: "method selection VER",
                expected: 5,
                got: b'H'
            }
        );
        // SOCKS4's reply version is 0; it fails at the first byte, before the rest arrives.
        let mut s = Socks5::new(&domain(), None).unwrap();
        take(&mut s);
        assert!(matches!(
            s.receive(b"\x00"),
            Err(ProxyError::BadVersion { got: 0, .. })
        ));
    }

    #[test]
    fn no_acceptable_methods_is_its_own_error_rfc1928_3() {
        assert_eq!(
            fail(Some(&alice()), &[b"\x05\xff"]),
            ProxyError::NoAcceptableMethods
        );
    }

    #[test]
    fn a_method_that_was_not_offered_fails() {
        assert_eq!(
            fail(None, &[USERPASS_CHOSEN]),
            ProxyError::UnofferedMethod(2)
        );
        assert_eq!(
            fail(Some(&alice()), &[b"\x05\x01"]),
            ProxyError::UnofferedMethod(1)
        );
        assert_eq!(
            fail(None, &[b"\x05\x80"]),
            ProxyError::UnofferedMethod(0x80)
        );
    }

    #[test]
    fn authentication_failure_names_the_status_rfc1929_2() {
        assert_eq!(
            fail(Some(&alice()), &[USERPASS_CHOSEN, b"\x01\x01"]),
            ProxyError::AuthFailed { status: 1 }
        );
        assert_eq!(
            fail(Some(&alice()), &[USERPASS_CHOSEN, b"\x01\xff"]),
            ProxyError::AuthFailed { status: 0xff }
        );
    }

    #[test]
    fn authentication_status_version_is_1_or_the_socks_version() {
        assert_eq!(
            fail(Some(&alice()), &[USERPASS_CHOSEN, b"\x02\x00"]),
            ProxyError::BadVersion {
                field: "authentication status VER",
                expected: 1,
                got: 2
            }
        );
        let answers = [USERPASS_CHOSEN, b"\x05\x00", REPLY_V4];
        assert!(run(&domain(), Some(&alice()), &answers, 1).is_ok());
    }

    #[test]
    fn each_reply_code_fails_with_its_rfc1928_6_meaning() {
        for (rep, code, text) in [
            (
                1u8,
                ReplyCode::GeneralFailure,
                "general SOCKS server failure",
            ),
            (
                2,
                ReplyCode::NotAllowed,
                "connection not allowed by ruleset",
            ),
            (3, ReplyCode::NetworkUnreachable, "network unreachable"),
            (4, ReplyCode::HostUnreachable, "host unreachable"),
            (5, ReplyCode::ConnectionRefused, "connection refused"),
            (6, ReplyCode::TtlExpired, "TTL expired"),
            (7, ReplyCode::CommandNotSupported, "command not supported"),
            (
                8,
                ReplyCode::AddressTypeNotSupported,
                "address type not supported",
            ),
            (9, ReplyCode::Unassigned(9), "unassigned reply code"),
            (0xff, ReplyCode::Unassigned(0xff), "unassigned reply code"),
        ] {
            assert_eq!(ReplyCode::from_rep(rep), Some(code));
            assert_eq!(code.rep(), rep);
            assert_eq!(code.meaning(), text);
            assert_eq!(code.to_string(), format!("{text} (REP {rep:#04x})"));
            // The failure is known from the second byte: proxies often close right after it.
            assert_eq!(
                fail(None, &[NO_AUTH_CHOSEN, &[5, rep]]),
                ProxyError::ConnectFailed(code)
            );
            let mut reply = REPLY_V4.to_vec();
            reply[1] = rep;
            assert_eq!(
                fail(None, &[NO_AUTH_CHOSEN, &reply]),
                ProxyError::ConnectFailed(code)
            );
        }
        assert_eq!(ReplyCode::from_rep(0), None);
    }

    #[test]
    fn reply_fields_are_checked_in_order_ver_rep_rsv_atyp() {
        for (reply, expected) in [
            (
                &b"\x04\x01\x01\x09"[..],
                ProxyError::BadVersion {
                    field: "reply VER",
                    expected: 5,
                    got: 4,
                },
            ),
            (
                b"\x05\x03\x01\x09",
                ProxyError::ConnectFailed(ReplyCode::NetworkUnreachable),
            ),
            (b"\x05\x00\x01\x09", ProxyError::BadReserved(1)),
            (b"\x05\x00\x00\x09", ProxyError::UnknownAddressType(9)),
            (b"\x05\x00\x00\x00", ProxyError::UnknownAddressType(0)),
            (b"\x05\x00\x00\x02", ProxyError::UnknownAddressType(2)),
        ] {
            assert_eq!(fail(None, &[NO_AUTH_CHOSEN, reply]), expected, "{reply:?}");
            assert_eq!(
                run(&domain(), None, &[NO_AUTH_CHOSEN, reply], 1).unwrap_err(),
                expected
            );
        }
    }

    #[test]
    fn bytes_beyond_an_answer_before_the_reply_are_refused() {
        assert_eq!(
            fail(None, &[b"\x05\x00\x05"]),
            ProxyError::UnexpectedBytes {
                step: "method selection"
            }
        );
        assert_eq!(
            fail(Some(&alice()), &[USERPASS_CHOSEN, b"\x01\x00\x05\x00"]),
            ProxyError::UnexpectedBytes {
                step: "authentication status"
            }
        );
    }

    #[test]
    fn bytes_while_output_is_unsent_are_refused() {
        let mut s = Socks5::new(&domain(), None).unwrap();
        assert_eq!(
            s.receive(NO_AUTH_CHOSEN),
            Err(ProxyError::UnexpectedBytes {
                step: "method selection"
            })
        );
        assert_eq!(s.output(), b"");
        assert_eq!(s.receive(NO_AUTH_CHOSEN), Err(ProxyError::Finished));
        // Half written is not written.
        let mut s = Socks5::new(&domain(), None).unwrap();
        s.consume_output(2);
        assert_eq!(s.output(), b"\x00");
        assert!(s.receive(NO_AUTH_CHOSEN).is_err());
    }

    #[test]
    fn consume_output_in_pieces_and_past_the_end() {
        let mut s = Socks5::new(&domain(), Some(&alice())).unwrap();
        s.consume_output(1);
        assert_eq!(s.output(), b"\x02\x00\x02");
        s.consume_output(usize::MAX);
        assert_eq!(s.output(), b"");
        s.consume_output(5);
        assert_eq!(s.receive(USERPASS_CHOSEN), Ok(Progress::Send));
        assert_eq!(s.output(), b"\x01\x05alice\x06s3cret");
    }

    #[test]
    fn empty_input_needs_more_and_errors_end_the_handshake() {
        let mut s = Socks5::new(&domain(), None).unwrap();
        assert_eq!(s.receive(b""), Ok(Progress::NeedMore));
        take(&mut s);
        assert_eq!(s.receive(b""), Ok(Progress::NeedMore));
        assert!(s.receive(b"\x05\xff").is_err());
        assert_eq!(s.receive(b""), Err(ProxyError::Finished));
        assert_eq!(s.bound(), None);
    }

    #[test]
    fn debug_does_not_show_the_credentials() {
        let mut s = Socks5::new(&domain(), Some(&alice())).unwrap();
        take(&mut s);
        assert_eq!(s.receive(USERPASS_CHOSEN), Ok(Progress::Send));
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("115, 51"),
            "{shown}"
        );
    }

    #[test]
    fn the_answer_buffer_never_exceeds_the_longest_reply() {
        let mut s = Socks5::new(&domain(), None).unwrap();
        take(&mut s);
        assert_eq!(s.receive(NO_AUTH_CHOSEN), Ok(Progress::Send));
        take(&mut s);
        let mut reply = b"\x05\x00\x00\x03\xff".to_vec();
        reply.extend_from_slice(&[b'n'; 255]);
        reply.extend_from_slice(b"\x00\x50");
        assert_eq!(reply.len(), MAX_REPLY_LEN);
        assert_eq!(
            s.receive(&reply[..MAX_REPLY_LEN - 1]),
            Ok(Progress::NeedMore)
        );
        assert!(s.answer.len() < MAX_REPLY_LEN);
        let packet = [&reply[MAX_REPLY_LEN - 1..], &[0u8; 1000][..]].concat();
        assert_eq!(s.receive(&packet), Ok(Progress::Done { body_start: 1 }));
    }
}
