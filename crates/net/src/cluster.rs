//! Many machines: a bridge that carries topic publishes between server processes over Redis
//! pub/sub (the `redis` crate's synchronous client, on two threads of its own).
//!
//! Every node publishes its cross-node messages to one Redis channel and subscribes to it.
//! A message on the channel is an envelope: the sending node's id, the message kind, the
//! topic and the payload. A node drops its own messages (Redis echoes them to every
//! subscriber, the sender included), and hands the others to its contexts through their
//! [`Sender`]s, which publish them locally at their next poll. So a publish on any node
//! reaches every subscriber on every node exactly once while Redis is up; each node receives
//! every cross-node message, whether or not it has subscribers for that topic.
//!
//! Nothing here runs on an event loop thread: [`Cluster::publish`] only queues (bounded),
//! the outbound thread publishes to Redis, the inbound thread reads from it.
//!
//! # Faults
//! When Redis is unreachable or restarts, local delivery goes on untouched; the bridge
//! reconnects with exponential backoff (full jitter, `backoff_initial` to `backoff_max`)
//! and subscribes again, and the application's status callback hears
//! [`ClusterStatus::Interrupted`] once when cross-node delivery stops and
//! [`ClusterStatus::Resumed`] once it works again. Redis pub/sub is at-most-once: what is
//! published while a link is down is lost for the other nodes — messages queued or
//! published by this node (counted in [`ClusterStats::dropped`]) and messages other nodes
//! published while this node was not subscribed. Nothing is replayed after a reconnect.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tidewire_proto::MessageKind;

use crate::error::{Error, Result};
use crate::sender::Sender;

/// How a [`Cluster`] reaches Redis and the other nodes.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// `redis://[user:password@]host[:port][/db]` (or `rediss://` when the `redis` crate is
    /// built with TLS; this build is not). Required.
    pub url: String,
    /// The Redis channel every node of this cluster uses, not empty. Default `"tidewire"`;
    /// nodes of different applications sharing one Redis need different channels.
    pub channel: String,
    /// First reconnect delay (a random delay up to it, doubling per failure), above 0.
    /// Default 100 ms.
    pub backoff_initial: Duration,
    /// Largest reconnect delay, at least `backoff_initial`. Default 5 s.
    pub backoff_max: Duration,
    /// Time to connect to Redis (each attempt), above 0. Default 2 s.
    pub connect_timeout: Duration,
    /// Messages waiting for the outbound thread at most, above 0; a publish beyond is
    /// refused with [`Error::BufferFull`]. Default 10,000.
    pub queue_limit: usize,
}

impl ClusterOptions {
    /// Checks every setting ([`Cluster::start`] does before it starts anything): the URL
    /// is a Redis URL ([`Error::InvalidUrl`]), and the others as in
    /// [`ClusterOptions::check_ranges`].
    pub fn validate(&self) -> Result<()> {
        self.check_ranges()?;
        self.client().map(drop)
    }

    /// Checks the settings other than the URL ([`Error::InvalidArgument`] names the one out
    /// of range): a channel that is not empty, `queue_limit`, `backoff_initial` and
    /// `connect_timeout` above 0, and `backoff_max` at least `backoff_initial`. For options
    /// built one setting at a time, before the URL is known.
    pub fn check_ranges(&self) -> Result<()> {
        let invalid = |what: &str| Err(Error::InvalidArgument(format!("cluster {what}")));
        if self.channel.is_empty() {
            return invalid("channel is empty");
        }
        if self.queue_limit == 0 {
            return invalid("queue_limit must be above 0");
        }
        if self.backoff_initial.is_zero() {
            return invalid("backoff_initial must be above 0");
        }
        if self.backoff_max < self.backoff_initial {
            return invalid("backoff_max must be at least backoff_initial");
        }
        if self.connect_timeout.is_zero() {
            return invalid("connect_timeout must be above 0");
        }
        Ok(())
    }

    /// The Redis client for the URL (parsing only, no connection).
    fn client(&self) -> Result<redis::Client> {
        redis::Client::open(self.url.as_str())
            .map_err(|e| Error::InvalidUrl(format!("{}: {e}", redacted(&self.url))))
    }
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            url: String::new(),
            channel: "tidewire".into(),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            queue_limit: 10_000,
        }
    }
}

/// What the status callback hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterStatus {
    /// Both links are up (the first time).
    Connected,
    /// Cross-node delivery stopped, or could not start: a link to Redis failed (the reason
    /// says which and why). Local delivery goes on; the bridge reconnects. Told once per
    /// outage.
    Interrupted(String),
    /// Both links are up again after an interruption.
    Resumed,
}

/// Counters of a [`Cluster`], readable at any time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Messages this node published to Redis.
    pub sent: u64,
    /// Messages from other nodes handed to the contexts.
    pub received: u64,
    /// Messages of this node lost because the link was down (see the module docs).
    pub dropped: u64,
    /// Envelopes on the channel that were not tidewire's (ignored).
    pub malformed: u64,
}

type StatusFn = dyn Fn(ClusterStatus) + Send + Sync;

struct Shared {
    node: u64,
    stop: AtomicBool,
    sent: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    malformed: AtomicU64,
    links: Mutex<Links>,
    on_status: Box<StatusFn>,
}

/// Which links are up, and what the application was last told.
#[derive(Default)]
struct Links {
    inbound: bool,
    outbound: bool,
    told_up: bool,
    /// An interruption was reported and no resumption since (also when Redis could not be
    /// reached at start).
    told_down: bool,
    ever_up: bool,
}

impl Shared {
    /// Records a link's state and tells the application when the pair changes.
    fn link(&self, inbound: bool, up: bool, why: Option<String>) {
        let message = {
            let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
            if inbound {
                links.inbound = up;
            } else {
                links.outbound = up;
            }
            let both = links.inbound && links.outbound;
            if both && !links.told_up {
                links.told_up = true;
                links.told_down = false;
                let first = !links.ever_up;
                links.ever_up = true;
                Some(if first {
                    ClusterStatus::Connected
                } else {
                    ClusterStatus::Resumed
                })
            } else if !up && !links.told_down {
                // Once per outage, also when Redis cannot be reached from the start.
                links.told_up = false;
                links.told_down = true;
                Some(ClusterStatus::Interrupted(why.unwrap_or_default()))
            } else {
                None
            }
        };
        if let Some(status) = message {
            (self.on_status)(status);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// The bridge of one node. Dropping it stops its threads.
pub struct Cluster {
    shared: Arc<Shared>,
    queue: SyncSender<Vec<u8>>,
    queue_limit: usize,
    threads: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Starts the bridge: messages from other nodes go to every sender in `targets` (one
    /// per context of this node, e.g. every worker). `on_status` runs on a bridge thread.
    /// Fails with [`Error::InvalidUrl`] when the URL is not a Redis URL; an unreachable
    /// Redis is not an error here (the bridge keeps trying and reports the interruption).
    pub fn start(
        options: ClusterOptions,
        targets: Vec<Sender>,
        on_status: impl Fn(ClusterStatus) + Send + Sync + 'static,
    ) -> Result<Cluster> {
        options.check_ranges()?;
        let client = options.client()?;
        let shared = Arc::new(Shared {
            node: node_id(),
            stop: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            links: Mutex::new(Links::default()),
            on_status: Box::new(on_status),
        });
        let (queue, outbox) = sync_channel(options.queue_limit);
        let mut cluster = Cluster {
            shared,
            queue,
            queue_limit: options.queue_limit,
            threads: Vec::new(),
        };
        let (c, o, s) = (client.clone(), options.clone(), cluster.shared.clone());
        let inbound = std::thread::Builder::new()
            .name("tidewire-cluster-in".into())
            .spawn(move || run_inbound(&c, &o, &s, &targets));
        // On an error, dropping `cluster` stops and joins what was started.
        cluster.threads.push(inbound.map_err(Error::Io)?);
        let s = cluster.shared.clone();
        let outbound = std::thread::Builder::new()
            .name("tidewire-cluster-out".into())
            .spawn(move || run_outbound(&client, &options, &s, &outbox));
        cluster.threads.push(outbound.map_err(Error::Io)?);
        Ok(cluster)
    }

    /// This node's id (random per start), carried in every envelope it publishes.
    pub fn node_id(&self) -> u64 {
        self.shared.node
    }

    /// Sends a publish to the other nodes (the caller publishes on its own contexts, e.g.
    /// with `Context::publish` or `Bus::publish`). Queued for the outbound thread; refused
    /// with [`Error::BufferFull`] (counting messages) when `queue_limit` messages already
    /// wait, and with
    /// [`Error::Send`] for text that is not UTF-8. While Redis is down the message is dropped
    /// (counted in [`ClusterStats::dropped`]).
    pub fn publish(&self, topic: &[u8], kind: MessageKind, data: &[u8]) -> Result<()> {
        if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
            return Err(Error::Send(tidewire_proto::SendError::InvalidUtf8));
        }
        let envelope = encode(self.shared.node, topic, kind, data)?;
        match self.queue.try_send(envelope) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                // Counted in messages here, not bytes.
                Err(Error::BufferFull {
                    buffered: self.queue_limit,
                    limit: self.queue_limit,
                })
            }
            Err(TrySendError::Disconnected(_)) => Err(Error::ContextGone),
        }
    }

    /// Whether both links to Redis are up now.
    pub fn is_connected(&self) -> bool {
        let links = self.shared.links.lock().unwrap_or_else(|p| p.into_inner());
        links.inbound && links.outbound
    }

    /// The counters so far (see [`ClusterStats`]).
    pub fn stats(&self) -> ClusterStats {
        let s = &self.shared;
        ClusterStats {
            sent: s.sent.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            malformed: s.malformed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // The threads look at the flag at least every POLL_EVERY.
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// How often a bridge thread blocked on Redis or on its queue looks at the stop flag.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Envelope: magic, node id, kind, topic length, topic, payload.
const MAGIC: &[u8; 4] = b"TWC1";
const HEADER: usize = 4 + 8 + 1 + 4;

fn encode(node: u64, topic: &[u8], kind: MessageKind, data: &[u8]) -> Result<Vec<u8>> {
    let topic_len = u32::try_from(topic.len())
        .map_err(|_| Error::InvalidArgument("topic longer than 4 GiB".into()))?;
    let mut out = Vec::with_capacity(HEADER + topic.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&node.to_be_bytes());
    out.push(match kind {
        MessageKind::Text => 1,
        MessageKind::Binary => 2,
    });
    out.extend_from_slice(&topic_len.to_be_bytes());
    out.extend_from_slice(topic);
    out.extend_from_slice(data);
    Ok(out)
}

/// (node, kind, topic, payload) of an envelope; `None` for anything else.
fn decode(bytes: &[u8]) -> Option<(u64, MessageKind, &[u8], &[u8])> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let node = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let kind = match rest.get(8)? {
        1 => MessageKind::Text,
        2 => MessageKind::Binary,
        _ => return None,
    };
    let topic_len = u32::from_be_bytes(rest.get(9..13)?.try_into().ok()?) as usize;
    let rest = rest.get(13..)?;
    if topic_len > rest.len() {
        return None;
    }
    let (topic, payload) = rest.split_at(topic_len);
    Some((node, kind, topic, payload))
}

/// `url` with its password (if any) replaced, for error messages and logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{}{user}{hidden}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// A random id per bridge, from the standard library's randomly keyed hasher.
fn node_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Reconnect delays: full jitter over an exponentially growing bound.
struct Backoff {
    initial: Duration,
    max: Duration,
    bound: Duration,
    seed: u64,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            bound: initial,
            seed: node_id() | 1,
        }
    }

    fn reset(&mut self) {
        self.bound = self.initial;
    }

    fn next(&mut self) -> Duration {
        // xorshift64: enough to spread nodes that lost Redis at the same moment.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let bound_ms = self.bound.as_millis().max(1) as u64;
        let delay = Duration::from_millis(self.seed % (bound_ms + 1));
        self.bound = (self.bound * 2).min(self.max);
        delay
    }
}

/// Sleeps `d` in steps, returning early (true) when the bridge stops.
fn sleep_unless_stopped(shared: &Shared, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if shared.stopped() {
            return true;
        }
        std::thread::sleep(POLL_EVERY.min(end.saturating_duration_since(Instant::now())));
    }
    shared.stopped()
}

fn run_inbound(
    client: &redis::Client,
    options: &ClusterOptions,
    shared: &Shared,
    targets: &[Sender],
) {
    let mut backoff = Backoff::new(options.backoff_initial, options.backoff_max);
    while !shared.stopped() {
        let why = match subscribe_and_read(client, options, shared, targets, &mut backoff) {
            Ok(()) => return,
            Err(e) => e,
        };
        shared.link(true, false, Some(format!("subscriber: {why}")));
        if sleep_unless_stopped(shared, backoff.next()) {
            return;
        }
    }
}

/// One life of the subscribing link: until an error (returned) or stop (`Ok`).
fn subscribe_and_read(
    client: &redis::Client,
    options: &ClusterOptions,
    shared: &Shared,
    targets: &[Sender],
    backoff: &mut Backoff,
) -> std::result::Result<(), redis::RedisError> {
    let mut con = client.get_connection_with_timeout(options.connect_timeout)?;
    let mut pubsub = con.as_pubsub();
    pubsub.subscribe(options.channel.as_str())?;
    pubsub.set_read_timeout(Some(POLL_EVERY))?;
    backoff.reset();
    shared.link(true, true, None);
    loop {
        if shared.stopped() {
            return Ok(());
        }
        let msg = match pubsub.get_message() {
            Ok(msg) => msg,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e),
        };
        let bytes = msg.get_payload_bytes();
        let Some((node, kind, topic, data)) = decode(bytes) else {
            shared.malformed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if node == shared.node {
            continue;
        }
        shared.received.fetch_add(1, Ordering::Relaxed);
        let topic: Arc<[u8]> = topic.into();
        let data: Arc<[u8]> = data.into();
        for target in targets {
            // A context that is gone has no subscribers left to miss this.
            let _ = target.publish_shared(topic.clone(), kind, data.clone());
        }
    }
}

fn run_outbound(
    client: &redis::Client,
    options: &ClusterOptions,
    shared: &Shared,
    outbox: &Receiver<Vec<u8>>,
) {
    let mut link = Outbound {
        client,
        options,
        shared,
        con: None,
        backoff: Backoff::new(options.backoff_initial, options.backoff_max),
        retry_at: Instant::now(),
        last_used: Instant::now(),
    };
    while !shared.stopped() {
        link.connect_when_due();
        let envelope = match outbox.recv_timeout(POLL_EVERY) {
            Ok(envelope) => envelope,
            Err(RecvTimeoutError::Timeout) => {
                link.ping_when_idle();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        link.publish(&envelope);
    }
}

/// The publishing link: a connection that is (re)made when due, checked when idle.
struct Outbound<'a> {
    client: &'a redis::Client,
    options: &'a ClusterOptions,
    shared: &'a Shared,
    con: Option<redis::Connection>,
    backoff: Backoff,
    retry_at: Instant,
    last_used: Instant,
}

/// An idle publishing link is checked this often, so an outage is reported even by a node
/// that publishes nothing, and the first publish after it does not hit a dead connection.
const IDLE_CHECK: Duration = Duration::from_secs(1);

impl Outbound<'_> {
    fn connect_when_due(&mut self) {
        if self.con.is_some() || Instant::now() < self.retry_at {
            return;
        }
        match self
            .client
            .get_connection_with_timeout(self.options.connect_timeout)
        {
            Ok(c) => {
                self.backoff.reset();
                self.con = Some(c);
                self.last_used = Instant::now();
                self.shared.link(false, true, None);
            }
            Err(e) => self.down(&e),
        }
    }

    fn down(&mut self, e: &redis::RedisError) {
        self.con = None;
        self.retry_at = Instant::now() + self.backoff.next();
        self.shared
            .link(false, false, Some(format!("publisher: {e}")));
    }

    fn ping_when_idle(&mut self) {
        if self.last_used.elapsed() < IDLE_CHECK {
            return;
        }
        self.last_used = Instant::now();
        if let Some(c) = self.con.as_mut() {
            let pong: redis::RedisResult<String> = redis::cmd("PING").query(c);
            if let Err(e) = pong {
                self.down(&e);
            }
        }
    }

    /// Publishes one envelope. A connection that turns out dead is replaced at once and the
    /// envelope tried once more on the new one (Redis may have restarted since the last
    /// use); only then is it dropped.
    fn publish(&mut self, envelope: &[u8]) {
        for attempt in 0..2 {
            if attempt == 1 {
                self.retry_at = Instant::now();
                self.connect_when_due();
            }
            let Some(c) = self.con.as_mut() else {
                break;
            };
            self.last_used = Instant::now();
            let result: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(self.options.channel.as_str())
                .arg(envelope)
                .query(c);
            match result {
                Ok(_) => {
                    self.shared.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => self.down(&e),
            }
        }
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_setting_by_setting_and_whole() {
        let ok = ClusterOptions {
            url: "redis://127.0.0.1:6379/0".into(),
            ..ClusterOptions::default()
        };
        ok.validate().expect("valid");
        // Without a URL the others still pass (options built one setting at a time).
        ClusterOptions::default().check_ranges().expect("defaults");
        let e = ClusterOptions::default().validate().unwrap_err();
        assert!(matches!(e, Error::InvalidUrl(_)), "{e}");
        let bad_url = ClusterOptions {
            url: "http://user:secret@not-redis".into(),
            ..ClusterOptions::default()
        };
        match bad_url.validate() {
            Err(Error::InvalidUrl(m)) => assert!(!m.contains("secret"), "{m}"),
            other => panic!("{other:?}"),
        }
        type Spoil = fn(&mut ClusterOptions);
        let cases: [(&str, Spoil); 5] = [
            ("channel", |o| o.channel.clear()),
            ("queue_limit", |o| o.queue_limit = 0),
            ("backoff_initial", |o| o.backoff_initial = Duration::ZERO),
            ("backoff_max", |o| o.backoff_max = o.backoff_initial / 2),
            ("connect_timeout", |o| o.connect_timeout = Duration::ZERO),
        ];
        for (name, spoil) in cases {
            let mut o = ok.clone();
            spoil(&mut o);
            for result in [o.check_ranges(), o.validate()] {
                match result {
                    Err(Error::InvalidArgument(m)) => assert!(m.contains(name), "{name}: {m}"),
                    other => panic!("{name}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn envelopes_round_trip_and_garbage_is_refused() {
        let e = encode(42, b"room", MessageKind::Text, b"hello").unwrap();
        assert_eq!(
            decode(&e),
            Some((42, MessageKind::Text, &b"room"[..], &b"hello"[..]))
        );
        let e = encode(7, b"", MessageKind::Binary, b"").unwrap();
        assert_eq!(
            decode(&e),
            Some((7, MessageKind::Binary, &b""[..], &b""[..]))
        );
        assert_eq!(decode(b"hello"), None);
        assert_eq!(decode(&e[..HEADER - 1]), None);
        let mut bad_kind = e.clone();
        bad_kind[12] = 9;
        assert_eq!(decode(&bad_kind), None);
        let mut long_topic = encode(1, b"ab", MessageKind::Binary, b"").unwrap();
        long_topic[16] = 200;
        assert_eq!(decode(&long_topic), None);
    }

    #[test]
    fn backoff_grows_to_its_bound_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        for _ in 0..20 {
            assert!(b.next() <= Duration::from_millis(800));
        }
        assert_eq!(b.bound, Duration::from_millis(800));
        b.reset();
        assert!(b.next() <= Duration::from_millis(100));
    }

    #[test]
    fn passwords_stay_out_of_error_messages() {
        assert_eq!(
            redacted("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redacted("redis://:secret@host"), "redis://:***@host");
        assert_eq!(redacted("redis://host:6379"), "redis://host:6379");
        let result = Cluster::start(
            ClusterOptions {
                url: "redis://user:secret@host:notaport/".into(),
                ..ClusterOptions::default()
            },
            Vec::new(),
            |_| {},
        );
        match result {
            Err(e) => assert!(!e.to_string().contains("secret"), "{e}"),
            Ok(_) => panic!("a bad port is refused"),
        }
    }

    #[test]
    fn an_unreachable_redis_is_reported_once_at_start() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let told = Arc::new(Mutex::new(Vec::new()));
        let sink = told.clone();
        let cluster = Cluster::start(
            ClusterOptions {
                url: format!("redis://127.0.0.1:{port}/"),
                backoff_initial: Duration::from_millis(20),
                backoff_max: Duration::from_millis(40),
                ..ClusterOptions::default()
            },
            Vec::new(),
            move |status| sink.lock().unwrap().push(status),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        drop(cluster);
        let told = told.lock().unwrap();
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(matches!(told[0], ClusterStatus::Interrupted(_)));
    }

    #[test]
    fn a_bad_url_is_refused_at_start() {
        let result = Cluster::start(
            ClusterOptions {
                url: "http://not-redis".into(),
                ..ClusterOptions::default()
            },
            Vec::new(),
            |_| {},
        );
        assert!(matches!(result, Err(Error::InvalidUrl(_))));
    }
}
