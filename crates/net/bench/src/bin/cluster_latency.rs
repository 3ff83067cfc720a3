//! Publish-to-delivery latency across two cluster nodes through Redis (issue 14).
//!
//! Node A is a `Cluster` bridge that only publishes; node B is a context with a listener,
//! its bridge, and one WebSocket client of its own subscribed to the topic. The main thread
//! publishes on A at a fixed rate, each message carrying its send time; B's client records
//! when it arrives. Both nodes live in this process, so one clock measures the whole path:
//! A's outbound thread, Redis, B's inbound thread, B's poll and publish, the loopback socket,
//! the client's read.
//!
//! Usage: cluster_latency --redis redis://127.0.0.1:PORT/ [--rate 1000] [--seconds 10]
//!                        [--size 64]

use std::time::{Duration, Instant};

use tidewire_net::{
    Cluster, ClusterOptions, Config, ConnectOptions, Context, Event, ListenOptions, MessageKind,
};

fn main() {
    let mut redis = String::new();
    let (mut rate, mut seconds, mut size) = (1000u64, 10u64, 64usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().expect("flag value");
        match flag.as_str() {
            "--redis" => redis = value,
            "--rate" => rate = value.parse().expect("--rate"),
            "--seconds" => seconds = value.parse().expect("--seconds"),
            "--size" => size = value.parse::<usize>().expect("--size").max(16),
            _ => panic!("unknown flag {flag}"),
        }
    }
    assert!(!redis.is_empty(), "--redis URL is required");
    let options = ClusterOptions {
        url: redis,
        channel: "tidewire-latency".into(),
        ..ClusterOptions::default()
    };

    // Node B on its own thread: server, bridge and the measuring client.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    let b_options = options.clone();
    let total = rate * seconds;
    let node_b = std::thread::spawn(move || {
        let mut ctx = Context::new(Config::default()).expect("context");
        let l = ctx
            .listen("127.0.0.1", 0, ListenOptions::default())
            .expect("listen");
        let port = ctx.local_addr(l).expect("addr").port();
        let cluster = Cluster::start(b_options, vec![ctx.sender()], |_| {}).expect("cluster B");
        let client = ctx
            .connect(
                &format!("ws://127.0.0.1:{port}/"),
                ConnectOptions::default(),
            )
            .expect("connect");
        let mut events = ctx.new_events();
        let mut latencies = Vec::with_capacity(total as usize);
        let mut told_ready = false;
        let deadline = Instant::now() + Duration::from_secs(seconds + 30);
        while Instant::now() < deadline && (latencies.len() as u64) < total {
            ctx.poll(&mut events, Some(Duration::from_millis(5)))
                .expect("poll");
            for ev in events.iter() {
                match ev {
                    Event::Open {
                        conn,
                        listener: Some(_),
                        ..
                    } => {
                        ctx.subscribe(conn, b"ticks").expect("subscribe");
                    }
                    Event::Message { conn, data, .. } if conn == client => {
                        let sent = u64::from_be_bytes(data[..8].try_into().expect("stamp"));
                        let now = start.elapsed().as_nanos() as u64;
                        latencies.push(now.saturating_sub(sent));
                    }
                    _ => {}
                }
            }
            if !told_ready && ctx.subscriber_count(b"ticks") == 1 && cluster.is_connected() {
                told_ready = true;
                ready_tx.send(()).expect("ready");
            }
        }
        (latencies, cluster.stats())
    });

    let a = Cluster::start(options, Vec::new(), |_| {}).expect("cluster A");
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("node B ready");
    while !a.is_connected() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let mut payload = vec![b'x'; size];
    let begin = Instant::now();
    for i in 0..total {
        let at = begin + interval * i as u32;
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let stamp = start.elapsed().as_nanos() as u64;
        payload[..8].copy_from_slice(&stamp.to_be_bytes());
        a.publish(b"ticks", MessageKind::Binary, &payload)
            .expect("publish");
    }
    let (mut latencies, b_stats) = node_b.join().expect("node B");
    let a_stats = a.stats();
    latencies.sort_unstable();
    let pick = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |&ns| ns as f64 / 1e6)
    };
    println!(
        "cluster latency: rate={rate}/s seconds={seconds} size={size} sent={} received={} \
         lost={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} (A sent {} dropped {}; B received {})",
        total,
        latencies.len(),
        total - latencies.len() as u64,
        pick(0.5),
        pick(0.99),
        pick(1.0),
        a_stats.sent,
        a_stats.dropped,
        b_stats.received,
    );
}
