//! `Workers`: several event loops on one port. Connections spread over the workers, a
//! publish on one worker (or from outside) reaches subscribers on all of them once, and
//! shutdown closes every connection with 1001 on every worker.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TEST_DEADLINE;
use tidewire_net::{
    Bus, ClusterOptions, Config, ConnId, ConnectOptions, Context, Error, Event, MessageKind,
    WorkerOptions, Workers, MAX_WORKER_THREADS,
};

const CLIENTS: usize = 64;

/// Polls the clients' context until `f` says done or the deadline passes.
fn run(ctx: &mut Context, mut f: impl FnMut(&mut Context, Event<'_>) -> bool) -> bool {
    let mut events = ctx.new_events();
    let end = Instant::now() + TEST_DEADLINE;
    while Instant::now() < end {
        ctx.poll(&mut events, Some(Duration::from_millis(20)))
            .expect("poll");
        let mut done = false;
        for ev in events.iter() {
            done |= f(ctx, ev);
        }
        if done {
            return true;
        }
    }
    false
}

#[test]
fn workers_share_a_port_and_a_publish_reaches_subscribers_on_every_worker() {
    let per_worker: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let counts = per_worker.clone();
    let options = WorkerOptions {
        threads: 2,
        ..WorkerOptions::default()
    };
    let workers = Workers::start("127.0.0.1", 0, options, move |_| {
        let counts = counts.clone();
        move |ctx: &mut Context, bus: &tidewire_net::Bus, ev: Event<'_>| match ev {
            Event::Open {
                conn,
                listener: Some(_),
                ..
            } => {
                ctx.subscribe(conn, b"all").expect("subscribe");
                counts[bus.worker()].fetch_add(1, Ordering::SeqCst);
            }
            Event::Message { kind, data, .. } => {
                bus.publish(ctx, b"all", kind, data).expect("publish");
            }
            _ => {}
        }
    })
    .expect("start");
    assert_eq!(workers.threads(), 2);
    let url = format!("ws://{}/", workers.local_addr());

    let mut clients = Context::new(Config::default()).expect("context");
    let ids: Vec<ConnId> = (0..CLIENTS)
        .map(|_| {
            clients
                .connect(&url, ConnectOptions::default())
                .expect("connect")
        })
        .collect();
    let mut open = 0;
    assert!(run(&mut clients, |_, ev| {
        if let Event::Open { .. } = ev {
            open += 1;
        }
        open == CLIENTS
    }));
    // The server counts a connection when its handler sees it open, a moment later.
    let end = Instant::now() + TEST_DEADLINE;
    while per_worker
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum::<usize>()
        < CLIENTS
    {
        assert!(Instant::now() < end, "server-side opens");
        std::thread::sleep(Duration::from_millis(5));
    }
    let spread: Vec<usize> = per_worker
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .collect();
    assert!(
        spread.iter().all(|&n| n > 0),
        "connections spread: {spread:?}"
    );

    // One client's message is published by its worker to every subscriber on both workers,
    // and a publish from a thread outside the workers reaches them too.
    clients.send_text(ids[0], "from a client").expect("send");
    workers
        .publish(b"all", MessageKind::Binary, b"from outside")
        .expect("publish");
    let mut got: HashMap<ConnId, Vec<Vec<u8>>> = HashMap::new();
    let mut complete = 0;
    assert!(run(&mut clients, |_, ev| {
        if let Event::Message { conn, data, .. } = ev {
            let list = got.entry(conn).or_default();
            list.push(data.to_vec());
            assert!(list.len() <= 2, "a message arrived twice");
            if list.len() == 2 {
                complete += 1;
            }
        }
        complete == CLIENTS
    }));
    for id in &ids {
        let mut list = got[id].clone();
        list.sort();
        assert_eq!(
            list,
            vec![b"from a client".to_vec(), b"from outside".to_vec()]
        );
    }
    assert!(workers.publish(b"all", MessageKind::Text, &[0xff]).is_err());

    // Shutdown blocks until the closing handshakes end, which needs the clients polled.
    let stopper = std::thread::spawn(move || workers.shutdown(Duration::from_secs(5)));
    let mut closed = 0;
    assert!(run(&mut clients, |_, ev| {
        if let Event::Closed { code, .. } = ev {
            assert_eq!(code, 1001, "going away");
            closed += 1;
        }
        closed == CLIENTS
    }));
    stopper.join().expect("stopper").expect("shutdown");
}

#[test]
fn too_many_threads_are_refused_before_anything_starts() {
    for threads in [MAX_WORKER_THREADS + 1, usize::MAX] {
        let options = WorkerOptions {
            threads,
            ..WorkerOptions::default()
        };
        let err = options.validate().expect_err("validate");
        assert!(
            err.to_string().contains("threads must be at most 4096"),
            "{err}"
        );
        let started = Workers::start("127.0.0.1", 0, options, |_| {
            |_: &mut Context, _: &Bus, _: Event<'_>| {}
        });
        assert!(matches!(started, Err(Error::InvalidArgument(_))));
    }
    let fine = WorkerOptions {
        threads: MAX_WORKER_THREADS,
        ..WorkerOptions::default()
    };
    fine.validate().expect("at the bound");
}

#[test]
fn bad_cluster_options_are_refused_before_anything_starts() {
    let options = WorkerOptions {
        threads: 1,
        cluster: Some(ClusterOptions {
            url: "redis://127.0.0.1:1/".into(),
            queue_limit: 0,
            ..ClusterOptions::default()
        }),
        ..WorkerOptions::default()
    };
    let started = Workers::start("127.0.0.1", 0, options, |_| {
        |_: &mut Context, _: &Bus, _: Event<'_>| {}
    });
    match started {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("queue_limit"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started"),
    }
}

#[test]
fn a_busy_port_is_reported_by_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let result = Workers::start("127.0.0.1", port, WorkerOptions::default(), |_| {
        |_: &mut Context, _: &tidewire_net::Bus, _: Event<'_>| {}
    });
    assert!(result.is_err(), "the port is taken without SO_REUSEPORT");
}
