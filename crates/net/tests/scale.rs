//! Many connections at once: 1,000 clients echoing through one context.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{pattern, Harness};
use tidewire_net::{Config, ConnId, ConnectOptions, Event, ListenOptions};

#[test]
fn a_thousand_concurrent_connections_echo() {
    const CONNS: usize = 1000;
    const MESSAGES: usize = 10;
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    let clients: Vec<ConnId> = (0..CONNS)
        .map(|_| {
            h.ctx
                .connect(&h.url("/"), ConnectOptions::default())
                .expect("connect")
        })
        .collect();
    let mut received: HashMap<ConnId, usize> = clients.iter().map(|&c| (c, 0)).collect();
    let mut opened = 0;
    let mut done = 0;
    let ok = h.run_until(Duration::from_secs(60), |ctx, ev| {
        match ev {
            Event::Open {
                conn,
                listener: None,
                ..
            } => {
                opened += 1;
                for i in 0..MESSAGES {
                    ctx.send_binary(conn, &pattern(1024, i as u8))
                        .expect("send");
                }
            }
            Event::Message { conn, kind, data } => match received.get_mut(&conn) {
                Some(n) => {
                    assert!(data == pattern(1024, *n as u8), "order kept per connection");
                    *n += 1;
                    if *n == MESSAGES {
                        done += 1;
                    }
                }
                None => {
                    ctx.send(conn, kind, data).expect("echo");
                }
            },
            Event::Error { error, .. } => panic!("{error}"),
            Event::Closed { code, .. } => panic!("closed {code}"),
            _ => {}
        }
        done == CONNS
    });
    assert!(ok, "opened {opened}, finished {done} of {CONNS}");
    assert_eq!(h.ctx.connection_count(), 2 * CONNS);
}
