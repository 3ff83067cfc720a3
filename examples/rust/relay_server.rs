//! A position relay for `examples/c/game_client.c`: every connection on `/game` subscribes to
//! the topic `game`, and every message it sends is published to that topic (framed once for
//! all players). Connections on `/storm` are closed (1000) right after they open: the game
//! client's reconnect storm.
//!
//! Usage: relay_server --host H --port P [--tls-port P2 --tls-cert F --tls-key F]
//!
//! Prints `listening on ws://H:P` (and `listening on wss://H:P2`) with the real ports once it
//! accepts connections; port 0 picks a free one. Exits 0 on SIGINT or SIGTERM after closing
//! its connections with 1001.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidewire_net::{Config, Context, Event, ListenOptions, TlsAcceptor};

const TOPIC: &[u8] = b"game";

fn usage() -> ExitCode {
    eprintln!("usage: relay_server --host H --port P [--tls-port P2 --tls-cert F --tls-key F]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let (mut host, mut port, mut tls_port) = ("127.0.0.1".to_owned(), None, None::<u16>);
    let (mut cert, mut key) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            return usage();
        };
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = value.parse::<u16>().ok(),
            "--tls-port" => tls_port = value.parse::<u16>().ok(),
            "--tls-cert" => cert = Some(value),
            "--tls-key" => key = Some(value),
            _ => return usage(),
        }
    }
    let Some(port) = port else {
        return usage();
    };
    let tls = match (tls_port, cert, key) {
        (Some(p), Some(c), Some(k)) => Some((p, c, k)),
        (None, None, None) => None,
        _ => return usage(),
    };
    match run(&host, port, tls) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    host: &str,
    port: u16,
    tls: Option<(u16, String, String)>,
) -> Result<(), Box<dyn std::error::Error>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut ctx = Context::new(Config::default())?;
    let sender = ctx.sender();
    {
        let stop = stop.clone();
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])?;
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                stop.store(true, Ordering::SeqCst);
                let _ = sender.wake();
            }
        });
    }
    let plain = ctx.listen(host, port, ListenOptions::default())?;
    println!("listening on ws://{}", ctx.local_addr(plain)?);
    if let Some((tls_port, cert, key)) = tls {
        let options = ListenOptions {
            tls: Some(TlsAcceptor::from_pem_files(cert, key)?),
            ..ListenOptions::default()
        };
        let secure = ctx.listen(host, tls_port, options)?;
        println!("listening on wss://{}", ctx.local_addr(secure)?);
    }
    let mut events = ctx.new_events();
    while !stop.load(Ordering::SeqCst) {
        ctx.poll(&mut events, Some(Duration::from_millis(500)))?;
        for event in events.iter() {
            match event {
                Event::Open { conn, path, .. } if path.starts_with("/storm") => {
                    let _ = ctx.close(conn, 1000, "storm");
                }
                Event::Open { conn, .. } => {
                    ctx.subscribe(conn, TOPIC)?;
                }
                Event::Message { kind, data, .. } => {
                    ctx.publish(TOPIC, kind, data)?;
                }
                _ => {}
            }
        }
    }
    ctx.shutdown_blocking(Duration::from_secs(2))?;
    Ok(())
}
