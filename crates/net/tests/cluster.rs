//! The cluster bridge with a real `redis-server` (started and stopped by PID here): two
//! nodes, clients on each, publishes from both sides arrive once everywhere; Redis killed
//! and restarted mid-test: local delivery goes on, the bridge recovers, the application is
//! told. `make test` installs redis-server (Debian package) and sets
//! TIDEWIRE_REQUIRE_REDIS=1, so a missing server fails there; a plain `cargo test` without
//! it prints SKIPPED.

mod common;

use std::collections::HashMap;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TEST_DEADLINE;
use tidewire_net::{
    Cluster, ClusterOptions, ClusterStatus, Config, ConnId, ConnectOptions, Context, Event, Events,
    ListenOptions, MessageKind,
};

struct Redis {
    child: Child,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "redis-server did not start on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_redis() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("TIDEWIRE_REQUIRE_REDIS").is_none(),
            "redis-server is not installed (make redis-tools installs it)"
        );
        eprintln!("SKIPPED: redis-server is not installed (make redis-tools installs it)");
    }
    found
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One server process of the cluster, simulated by one context and its bridge.
struct Node {
    ctx: Context,
    events: Events,
    port: u16,
    cluster: Cluster,
    told: Arc<Mutex<Vec<ClusterStatus>>>,
}

impl Node {
    fn start(redis_port: u16) -> Node {
        let mut ctx = Context::new(Config::default()).expect("context");
        let l = ctx
            .listen("127.0.0.1", 0, ListenOptions::default())
            .expect("listen");
        let port = ctx.local_addr(l).expect("addr").port();
        let told = Arc::new(Mutex::new(Vec::new()));
        let sink = told.clone();
        let options = ClusterOptions {
            url: format!("redis://127.0.0.1:{redis_port}/"),
            channel: "tidewire-test".into(),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
            ..ClusterOptions::default()
        };
        let cluster = Cluster::start(options, vec![ctx.sender()], move |status| {
            sink.lock().unwrap().push(status);
        })
        .expect("cluster");
        let events = ctx.new_events();
        Node {
            ctx,
            events,
            port,
            cluster,
            told,
        }
    }

    /// Polls once; every server-side connection that opens joins `room`.
    fn poll(&mut self) {
        self.ctx
            .poll(&mut self.events, Some(Duration::from_millis(2)))
            .expect("poll");
        for ev in self.events.iter() {
            if let Event::Open { conn, .. } = ev {
                self.ctx.subscribe(conn, b"room").expect("subscribe");
            }
        }
    }

    /// A publish as an application does it: locally, then to the other nodes.
    fn publish(&mut self, text: &str) {
        self.ctx
            .publish(b"room", MessageKind::Text, text.as_bytes())
            .expect("local publish");
        self.cluster
            .publish(b"room", MessageKind::Text, text.as_bytes())
            .expect("cluster publish");
    }

    fn told(&self) -> Vec<ClusterStatus> {
        self.told.lock().unwrap().clone()
    }
}

struct World {
    nodes: [Node; 2],
    clients: Context,
    events: Events,
    /// client -> node index
    on: HashMap<ConnId, usize>,
    got: HashMap<ConnId, Vec<String>>,
}

impl World {
    fn turn(&mut self) {
        for n in &mut self.nodes {
            n.poll();
        }
        self.clients
            .poll(&mut self.events, Some(Duration::from_millis(2)))
            .expect("poll");
        for ev in self.events.iter() {
            match ev {
                Event::Message { conn, data, .. } => self
                    .got
                    .entry(conn)
                    .or_default()
                    .push(String::from_utf8(data.to_vec()).unwrap()),
                Event::Closed { code, .. } => panic!("client closed {code}"),
                Event::Error { error, .. } => panic!("{error}"),
                _ => {}
            }
        }
    }

    fn until(&mut self, what: &str, mut done: impl FnMut(&World) -> bool) {
        let end = Instant::now() + TEST_DEADLINE;
        while !done(self) {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            self.turn();
        }
    }

    /// Waits until every client on the given nodes has `text`, then checks nobody got it
    /// twice and (after a short grace) that clients elsewhere did not get it.
    fn expect_on(&mut self, text: &str, nodes: &[usize]) {
        let want: Vec<ConnId> = self
            .on
            .iter()
            .filter(|(_, n)| nodes.contains(n))
            .map(|(c, _)| *c)
            .collect();
        self.until(text, |w| {
            want.iter()
                .all(|c| w.got.get(c).is_some_and(|l| l.iter().any(|m| m == text)))
        });
        let end = Instant::now() + Duration::from_millis(300);
        while Instant::now() < end {
            self.turn();
        }
        for (c, n) in &self.on {
            let count = self
                .got
                .get(c)
                .map_or(0, |l| l.iter().filter(|m| *m == text).count());
            let expected = usize::from(nodes.contains(n));
            assert_eq!(count, expected, "{text:?} on a client of node {n}");
        }
    }
}

#[test]
fn publishes_cross_nodes_once_and_survive_a_redis_restart() {
    if !have_redis() {
        return;
    }
    let redis_port = free_port();
    let redis = Redis::start(redis_port);
    let nodes = [Node::start(redis_port), Node::start(redis_port)];
    assert_ne!(nodes[0].cluster.node_id(), nodes[1].cluster.node_id());
    let mut clients = Context::new(Config::default()).expect("context");
    let mut on = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        for _ in 0..3 {
            let url = format!("ws://127.0.0.1:{}/", node.port);
            on.insert(clients.connect(&url, ConnectOptions::default()).unwrap(), i);
        }
    }
    let events = clients.new_events();
    let mut w = World {
        nodes,
        clients,
        events,
        on,
        got: HashMap::new(),
    };
    w.until("subscribers and bridges", |w| {
        w.nodes.iter().all(|n| n.ctx.subscriber_count(b"room") == 3)
            && w.nodes.iter().all(|n| n.cluster.is_connected())
    });
    for n in &w.nodes {
        assert_eq!(n.told(), vec![ClusterStatus::Connected]);
    }

    w.nodes[0].publish("from node 0");
    w.expect_on("from node 0", &[0, 1]);
    w.nodes[1].publish("from node 1");
    w.expect_on("from node 1", &[0, 1]);

    // Redis goes away: both bridges say so, local delivery goes on.
    redis.kill();
    w.until("interruption", |w| {
        w.nodes
            .iter()
            .all(|n| matches!(n.told().last(), Some(ClusterStatus::Interrupted(_))))
    });
    w.nodes[0].publish("during the outage");
    w.expect_on("during the outage", &[0]);

    // Redis is back on the same port: the bridges reconnect, resubscribe and say so.
    let redis = Redis::start(redis_port);
    w.until("resumption", |w| {
        w.nodes
            .iter()
            .all(|n| n.told().last() == Some(&ClusterStatus::Resumed))
    });
    w.nodes[1].publish("after the restart");
    w.expect_on("after the restart", &[0, 1]);
    w.nodes[0].publish("and back");
    w.expect_on("and back", &[0, 1]);
    for n in &w.nodes {
        let stats = n.cluster.stats();
        assert_eq!(stats.malformed, 0);
        assert!(stats.sent >= 2, "{stats:?}");
        assert!(stats.received >= 2, "{stats:?}");
    }
    drop(redis);
}
