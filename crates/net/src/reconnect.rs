//! Reconnecting client connections: the policy, its schedule and which failures it retries.
//!
//! This file is the one home of those rules. The context uses it for connections opened
//! with [`crate::ConnectOptions::reconnect`] (see [`crate::Event::Reconnecting`]); the faces
//! use the same [`Backoff`] and [`classify`] (Python's `for ws in connect(...)` loops)
//! instead of deciding again.
//!
//! **The schedule.** Exponential backoff with full jitter: before attempt `n` (1, 2, ...)
//! the delay is drawn uniformly from `[0, min(max_delay, initial_delay * 2^(n-1))]`.
//! A `Retry-After` (a 503 or 429 answer, in seconds or as an HTTP-date) raises the delay to
//! at least its value (at most [`MAX_RETRY_AFTER`]). A connection that stayed open for
//! [`ReconnectPolicy::reset_after`] starts the schedule again at attempt 1. After
//! [`ReconnectPolicy::max_attempts`] attempts in a row without an open, the next failure is
//! final.
//!
//! **What is retried** ([`classify`], [`classify_close`]): network failures (resolution,
//! connect refused or unreachable, socket errors, the peer closing during the handshake,
//! an unreachable proxy or one answering 5xx), every timeout, an upgrade answered with 5xx or
//! 429, and the end of an open connection that the application did not ask for, unless the
//! peer's close code blames this client (1002, 1003, 1007, 1008, 1009, 1010). Never retried:
//! other HTTP statuses (4xx rejections, 3xx), TLS failures (certificates, names), a malformed
//! or unacceptable handshake, bad arguments, a close or an abort the application asked for,
//! and anything during [`crate::Context::shutdown`].

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime};

use tidewire_proto::proxy::ProxyError;

use crate::error::Error;
use crate::proxy::ProxyFailure;

/// Smallest [`ReconnectPolicy::initial_delay`].
pub const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(1);
/// Largest [`ReconnectPolicy::max_delay`] and [`ReconnectPolicy::reset_after`]: one day.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(24 * 3600);
/// The longest `Retry-After` honoured; a longer one waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How a client connection reconnects (opt-in: [`crate::ConnectOptions::reconnect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// The ceiling of the first delay. Default 1 s; at least [`MIN_RECONNECT_DELAY`].
    pub initial_delay: Duration,
    /// The largest ceiling; the ceiling doubles from `initial_delay` up to it. Default 30 s;
    /// at least `initial_delay`, at most [`MAX_RECONNECT_DELAY`].
    pub max_delay: Duration,
    /// Attempts in a row without an open before giving up; `None` retries forever (until
    /// the application closes the connection). Default `None`; `Some(0)` is refused.
    pub max_attempts: Option<u32>,
    /// A connection that stayed open this long resets the schedule to attempt 1. Default
    /// 10 s; at most [`MAX_RECONNECT_DELAY`].
    pub reset_after: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
            reset_after: Duration::from_secs(10),
        }
    }
}

impl ReconnectPolicy {
    /// Checks the ranges ([`MIN_RECONNECT_DELAY`], [`MAX_RECONNECT_DELAY`], `max_delay >=
    /// initial_delay`, `max_attempts` not 0). [`crate::ConnectOptions::validate`] calls it.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::InvalidArgument(what));
        if self.initial_delay < MIN_RECONNECT_DELAY {
            return bad(format!(
                "reconnect initial_delay must be at least {} ms",
                MIN_RECONNECT_DELAY.as_millis()
            ));
        }
        if self.max_delay < self.initial_delay {
            return bad("reconnect max_delay must be at least initial_delay".into());
        }
        if self.max_delay > MAX_RECONNECT_DELAY || self.reset_after > MAX_RECONNECT_DELAY {
            return bad(format!(
                "reconnect max_delay and reset_after must be at most {} s",
                MAX_RECONNECT_DELAY.as_secs()
            ));
        }
        if self.max_attempts == Some(0) {
            return bad("reconnect max_attempts must be at least 1 (None: unlimited)".into());
        }
        Ok(())
    }

    /// The ceiling of the delay before attempt `n` (1-based): `initial_delay * 2^(n-1)`,
    /// at most `max_delay`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(40);
        let nanos = (self.initial_delay.as_nanos()).saturating_mul(1u128 << shift);
        let max = self.max_delay.as_nanos();
        Duration::from_nanos(nanos.min(max).min(u64::MAX as u128) as u64)
    }
}

/// Whether a failure is worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Final: do not reconnect.
    Never,
    /// Reconnect after the schedule's delay.
    Backoff,
    /// Reconnect after the schedule's delay, but not before this (`Retry-After`).
    After(Duration),
}

impl Retry {
    pub fn is_retryable(self) -> bool {
        !matches!(self, Retry::Never)
    }
}

/// Whether a failure of a connection that never opened (or an error event's error) is
/// retried. See the [module](self) for the list.
pub fn classify(error: &Error) -> Retry {
    match error {
        Error::Resolve { .. }
        | Error::Connect(_)
        | Error::Timeout(_)
        | Error::HandshakeEof
        | Error::Io(_) => Retry::Backoff,
        Error::Proxy { failure, .. } => match failure {
            ProxyFailure::Resolve(_)
            | ProxyFailure::Connect(_)
            | ProxyFailure::Closed
            | ProxyFailure::Io(_) => Retry::Backoff,
            ProxyFailure::Handshake(ProxyError::Refused { status, .. })
                if *status >= 500 || *status == 429 =>
            {
                Retry::Backoff
            }
            _ => Retry::Never,
        },
        Error::HandshakeRejected {
            status, headers, ..
        } if (500..600).contains(status) || *status == 429 => {
            let after = headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("retry-after"))
                .and_then(|h| retry_after(&h.value));
            match after {
                Some(d) => Retry::After(d),
                None => Retry::Backoff,
            }
        }
        _ => Retry::Never,
    }
}

/// Whether the end of an open connection that the application did not close is retried,
/// from the close code of its `Closed` event: yes unless the code blames this client (1002
/// protocol error, 1003 unacceptable data, 1007 invalid payload, 1008 policy violation, 1009
/// too big, 1010 missing extension).
pub fn classify_close(code: u16) -> Retry {
    match code {
        1002 | 1003 | 1007 | 1008 | 1009 | 1010 => Retry::Never,
        _ => Retry::Backoff,
    }
}

/// The wait a `Retry-After` value asks for (RFC 9110 section 10.2.3), at most
/// [`MAX_RETRY_AFTER`]: delay-seconds, or an HTTP-date (any of the three formats a recipient
/// must accept, section 5.6.7) measured from the system clock now; a date in the past is no
/// wait. `None` for anything else (the schedule's delay applies).
pub fn retry_after(value: &[u8]) -> Option<Duration> {
    retry_after_at(value, SystemTime::now())
}

/// [`retry_after`] with the current time given.
pub fn retry_after_at(value: &[u8], now: SystemTime) -> Option<Duration> {
    let v = std::str::from_utf8(value).ok()?.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let date = httpdate::parse_http_date(v).ok()?;
    let wait = date.duration_since(now).unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The state of one reconnecting connection: the attempt count, when it last opened, and
/// its random generator (full jitter).
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: ReconnectPolicy,
    attempt: u32,
    opened: Option<Instant>,
    rng: u64,
}

impl Backoff {
    /// A schedule seeded from the process's random hasher keys.
    pub fn new(policy: ReconnectPolicy) -> Backoff {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Backoff::with_seed(policy, seed)
    }

    /// A schedule with a fixed seed (tests: the same seed gives the same delays).
    pub fn with_seed(policy: ReconnectPolicy, seed: u64) -> Backoff {
        Backoff {
            policy,
            attempt: 0,
            opened: None,
            rng: seed,
        }
    }

    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Attempts made since the last reset (the number of the last one).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The connection opened at `now`.
    pub fn opened(&mut self, now: Instant) {
        self.opened = Some(now);
    }

    /// The connection failed or ended at `now` with this verdict: the delay before the next
    /// attempt (whose number [`Backoff::attempt`] then gives), or `None` when it is final
    /// (not retryable, or `max_attempts` reached). Resets the count first when the
    /// connection had stayed open for `reset_after`; any open counts as a success, so the
    /// attempts in a row start again after it.
    pub fn next_delay(&mut self, retry: Retry, now: Instant) -> Option<Duration> {
        if let Some(at) = self.opened.take() {
            if now.saturating_duration_since(at) >= self.policy.reset_after {
                self.attempt = 0;
            }
        }
        let floor = match retry {
            Retry::Never => return None,
            Retry::Backoff => Duration::ZERO,
            Retry::After(d) => d.min(MAX_RETRY_AFTER),
        };
        if self
            .policy
            .max_attempts
            .is_some_and(|max| self.attempt >= max)
        {
            return None;
        }
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self.policy.ceiling(self.attempt).as_nanos() as u64;
        let jitter = Duration::from_nanos(self.next_u64() % ceiling.saturating_add(1));
        Some(jitter.max(floor))
    }

    /// splitmix64.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A reconnecting client connection, kept by the context beside the connection.
pub(crate) struct Redial {
    pub(crate) url: String,
    pub(crate) options: crate::ConnectOptions,
    pub(crate) backoff: Backoff,
    /// When the pending attempt is due (the timer's entry is stale otherwise).
    pub(crate) due: Option<Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewire_proto::handshake::Header;

    fn policy(initial: u64, max: u64, attempts: Option<u32>) -> ReconnectPolicy {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(initial),
            max_delay: Duration::from_millis(max),
            max_attempts: attempts,
            reset_after: Duration::from_millis(1000),
        }
    }

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let p = policy(100, 1000, None);
        let ms: Vec<u128> = (1..=6).map(|n| p.ceiling(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.ceiling(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn delays_are_full_jitter_below_the_ceiling_and_seeded() {
        let p = policy(100, 1000, None);
        let now = Instant::now();
        let mut a = Backoff::with_seed(p, 42);
        let mut b = Backoff::with_seed(p, 42);
        let mut seen_low = false;
        for n in 1..=50u32 {
            let d = a.next_delay(Retry::Backoff, now).unwrap();
            assert_eq!(Some(d), b.next_delay(Retry::Backoff, now));
            assert_eq!(a.attempt(), n);
            assert!(d <= p.ceiling(n), "attempt {n}: {d:?}");
            seen_low |= d < p.ceiling(n) / 2;
        }
        assert!(seen_low, "full jitter draws from the whole range");
    }

    #[test]
    fn max_attempts_then_final_and_reset_after_a_long_open() {
        let p = policy(10, 100, Some(2));
        let t0 = Instant::now();
        let mut b = Backoff::with_seed(p, 1);
        assert!(b.next_delay(Retry::Backoff, t0).is_some());
        assert!(b.next_delay(Retry::Backoff, t0).is_some());
        assert_eq!(b.next_delay(Retry::Backoff, t0), None);
        // A short open does not reset...
        b.opened(t0);
        assert_eq!(
            b.next_delay(Retry::Backoff, t0 + Duration::from_millis(10)),
            None
        );
        // ...one that lasted reset_after does.
        b.opened(t0);
        assert!(b.next_delay(Retry::Backoff, t0 + p.reset_after).is_some());
        assert_eq!(b.attempt(), 1);
        assert_eq!(b.next_delay(Retry::Never, t0), None);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut b = Backoff::with_seed(policy(10, 100, None), 7);
        let d = b.next_delay(Retry::After(Duration::from_secs(2)), Instant::now());
        assert_eq!(d, Some(Duration::from_secs(2)));
        assert_eq!(retry_after(b" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(b"-1"), None);
        assert_eq!(retry_after(b"soon"), None);
        assert_eq!(retry_after(b""), None);
        assert_eq!(retry_after(b"99999999999999999999"), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn retry_after_as_an_http_date() {
        // 2015-10-21 07:28:00 UTC.
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let now = at - Duration::from_secs(90);
        // The three formats of RFC 9110 section 5.6.7.
        for date in [
            &b"Wed, 21 Oct 2015 07:28:00 GMT"[..],
            b"Wednesday, 21-Oct-15 07:28:00 GMT",
            b"Wed Oct 21 07:28:00 2015",
        ] {
            assert_eq!(
                retry_after_at(date, now),
                Some(Duration::from_secs(90)),
                "{}",
                String::from_utf8_lossy(date)
            );
        }
        // In the past: no wait beyond the schedule's. Far ahead: capped.
        let past = b"Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(
            retry_after_at(past, at + Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after_at(b"Fri, 31 Dec 2100 23:59:59 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        // Not a date.
        assert_eq!(retry_after_at(b"Wed, 32 Oct 2015 07:28:00 GMT", now), None);
        assert_eq!(retry_after_at(b"Wed, 21 Oct 2015 07:28:00 CET", now), None);
    }

    #[test]
    fn classification() {
        let rejected = |status: u16, headers: Vec<Header>| Error::HandshakeRejected {
            status,
            reason: String::new(),
            headers,
            body: Vec::new(),
        };
        let ra = vec![Header {
            name: "Retry-After".into(),
            value: b"5".to_vec(),
        }];
        assert_eq!(
            classify(&rejected(503, ra.clone())),
            Retry::After(Duration::from_secs(5))
        );
        let dated = vec![Header {
            name: "retry-after".into(),
            value: b"Fri, 31 Dec 2100 23:59:59 GMT".to_vec(),
        }];
        assert_eq!(
            classify(&rejected(429, dated)),
            Retry::After(MAX_RETRY_AFTER)
        );
        assert_eq!(classify(&rejected(429, vec![])), Retry::Backoff);
        assert_eq!(classify(&rejected(502, vec![])), Retry::Backoff);
        for s in [400, 401, 403, 404, 302] {
            assert_eq!(classify(&rejected(s, ra.clone())), Retry::Never, "{s}");
        }
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&Error::Connect(io())), Retry::Backoff);
        assert_eq!(
            classify(&Error::Timeout(crate::TimeoutKind::Handshake)),
            Retry::Backoff
        );
        assert_eq!(
            classify(&Error::Tls("bad certificate".into())),
            Retry::Never
        );
        assert_eq!(classify(&Error::Aborted), Retry::Never);
        assert_eq!(classify(&Error::ShuttingDown), Retry::Never);
        assert_eq!(classify_close(1006), Retry::Backoff);
        assert_eq!(classify_close(1001), Retry::Backoff);
        assert_eq!(classify_close(1008), Retry::Never);
    }

    /// A reconnected connection keeps its id, so the keepalive entry of its previous
    /// incarnation still names it: the new incarnation continues that chain instead of
    /// adding one per reconnect.
    #[test]
    fn a_reconnected_connection_keeps_one_keepalive_chain() {
        use crate::timer::TimerKind;
        use crate::{Config, ConnectOptions, Context, Event, ListenOptions, Proxy};
        let config = Config {
            ping_interval: Some(Duration::from_millis(40)),
            idle_timeout: None,
            ..Config::default()
        };
        let mut ctx = Context::new(config).expect("context");
        let l = ctx
            .listen("127.0.0.1", 0, ListenOptions::default())
            .expect("listen");
        let port = ctx.local_addr(l).expect("addr").port();
        let options = ConnectOptions {
            reconnect: Some(policy(1, 1, None)),
            proxy: Proxy::Direct,
            ..ConnectOptions::default()
        };
        let client = ctx
            .connect(&format!("ws://127.0.0.1:{port}/"), options)
            .expect("connect");
        let mut events = ctx.new_events();
        let (mut opens, mut closing) = (0, true);
        let end = Instant::now() + Duration::from_secs(10);
        let mut open_since = None;
        while Instant::now() < end {
            ctx.poll(&mut events, Some(Duration::from_millis(2)))
                .expect("poll");
            let mut servers = Vec::new();
            for ev in events.iter() {
                match ev {
                    Event::Open {
                        conn,
                        listener: Some(_),
                        ..
                    } => servers.push(conn),
                    Event::Open { conn, .. } => {
                        assert_eq!(conn, client);
                        opens += 1;
                        open_since = Some(Instant::now());
                    }
                    _ => {}
                }
            }
            if closing {
                for s in servers {
                    ctx.close(s, 1001, "again").expect("close");
                }
            }
            closing = opens < 8;
            if !closing && open_since.is_some_and(|t| t.elapsed() > Duration::from_millis(300)) {
                break;
            }
        }
        assert!(opens >= 8, "reconnected {opens} times");
        assert!(ctx.is_open(client));
        assert_eq!(ctx.timers.count(client.0, TimerKind::Keepalive), 1);
    }

    #[test]
    fn validation() {
        assert!(ReconnectPolicy::default().validate().is_ok());
        assert!(policy(0, 10, None).validate().is_err());
        assert!(policy(20, 10, None).validate().is_err());
        assert!(policy(10, 10, Some(0)).validate().is_err());
        let mut p = policy(10, 10, None);
        p.reset_after = MAX_RECONNECT_DELAY + Duration::from_secs(1);
        assert!(p.validate().is_err());
    }
}
