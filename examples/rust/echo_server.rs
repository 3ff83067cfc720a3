//! Echo server (the docs/DESIGN.md contract): echoes every message with its own type, answers
//! pings (the engine does), negotiates permessage-deflate when a client offers it, and exits
//! 0 on SIGINT or SIGTERM after closing its connections with 1001.
//!
//! Usage: echo_server --host H --port P [--tls-cert F --tls-key F] [--threads N] [--verbose]
//!
//! `--threads N` runs N event loops on N threads sharing the port (`Workers`; 0: one per
//! CPU); the default is one loop on the main thread.
//!
//! Prints `listening on ws://H:P` (or wss://) once ready, with the real port when 0 was asked;
//! with `--verbose`, also `open PEER PATH extensions=VALUE` for every connection.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidewire_net::{
    Bus, Config, ConnId, Context, DeflateConfig, Error, Event, ListenOptions, MessageKind,
    SendError, SendStatus, TlsAcceptor, WorkerOptions, Workers,
};

struct Args {
    host: String,
    port: u16,
    tls: Option<(String, String)>,
    threads: Option<usize>,
    verbose: bool,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: echo_server --host H --port P [--tls-cert F --tls-key F] [--threads N] [--verbose]"
    );
    ExitCode::from(2)
}

fn parse_args() -> Option<Args> {
    let mut host = String::from("127.0.0.1");
    let mut port = None;
    let (mut cert, mut key) = (None, None);
    let mut verbose = false;
    let mut threads = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--verbose" {
            verbose = true;
            continue;
        }
        let value = args.next()?;
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = Some(value.parse().ok()?),
            "--tls-cert" => cert = Some(value),
            "--tls-key" => key = Some(value),
            "--threads" => threads = Some(value.parse().ok()?),
            _ => return None,
        }
    }
    let tls = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return None,
    };
    Some(Args {
        host,
        port: port?,
        tls,
        threads,
        verbose,
    })
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        return usage();
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let tls = match &args.tls {
        Some((cert, key)) => Some(TlsAcceptor::from_pem_files(cert, key)?),
        None => None,
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let options = ListenOptions {
        tls,
        deflate: Some(DeflateConfig::default()),
        ..ListenOptions::default()
    };
    if let Some(threads) = args.threads {
        return run_workers(&args, threads, options, scheme);
    }
    let mut ctx = Context::new(Config::default())?;
    let listener = ctx.listen(&args.host, args.port, options)?;
    let addr = ctx.local_addr(listener)?;
    println!("listening on {scheme}://{addr}");

    // A signal thread sets the flag and wakes the poll; no async runtime, no self-pipe to
    // manage by hand.
    let stop = Arc::new(AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let sender = ctx.sender();
    let flag = stop.clone();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            flag.store(true, Ordering::SeqCst);
            let _ = sender.wake();
        }
    });

    let mut events = ctx.new_events();
    while !stop.load(Ordering::SeqCst) {
        ctx.poll(&mut events, None)?;
        for event in events.iter() {
            match event {
                Event::Message { conn, kind, data } => echo(&mut ctx, conn, kind, data)?,
                // The peer read enough of its echoes: take its messages again.
                Event::Writable { conn } => ignore_gone(ctx.resume_reading(conn))?,
                Event::Open {
                    peer_addr,
                    path,
                    extensions,
                    ..
                } if args.verbose => {
                    println!(
                        "open {peer_addr} {path} extensions={}",
                        extensions.unwrap_or("-")
                    );
                }
                _ => {}
            }
        }
    }
    ctx.shutdown_blocking(Duration::from_secs(2))?;
    Ok(())
}

/// The same server on `threads` event loops (`Workers`): each worker runs the handler
/// below for its own connections; the main thread waits for the signal.
fn run_workers(
    args: &Args,
    threads: usize,
    listen: ListenOptions,
    scheme: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let options = WorkerOptions {
        threads,
        listen,
        ..WorkerOptions::default()
    };
    let verbose = args.verbose;
    let workers = Workers::start(&args.host, args.port, options, |_| {
        move |ctx: &mut Context, _: &Bus, event: Event<'_>| {
            let result = match event {
                Event::Message { conn, kind, data } => echo(ctx, conn, kind, data),
                Event::Writable { conn } => ignore_gone(ctx.resume_reading(conn)),
                Event::Open {
                    peer_addr,
                    path,
                    extensions,
                    ..
                } if verbose => {
                    println!(
                        "open {peer_addr} {path} extensions={}",
                        extensions.unwrap_or("-")
                    );
                    Ok(())
                }
                _ => Ok(()),
            };
            // A worker serves many connections: one that fails is reported, not fatal.
            if let Err(e) = result {
                eprintln!("echo_server: {e}");
            }
        }
    })?;
    println!("listening on {scheme}://{}", workers.local_addr());
    signals.forever().next();
    workers.shutdown(Duration::from_secs(2))?;
    Ok(())
}

/// Echoes one message with back-pressure: once the connection's output passes the high
/// water mark, stop reading from it until it drains (`Event::Writable`), so that a peer that
/// sends without reading is slowed down by TCP instead of losing echoes. The messages of
/// the batch being handled still fit: a send is refused only at `Config::max_buffered`,
/// far above the high water mark.
fn echo(ctx: &mut Context, conn: ConnId, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
    let done = match ctx.send(conn, kind, data) {
        Ok(SendStatus::Queued) => Ok(()),
        Ok(SendStatus::Backpressure) => ctx.pause_reading(conn),
        // Over the hard cap all the same (a batch of large inflated messages): close with
        // a reason rather than drop an echo silently.
        Err(Error::BufferFull { .. }) => ctx.close(conn, 1008, "output buffer full"),
        Err(e) => Err(e),
    };
    ignore_gone(done)
}

/// Errors that only say the connection is closing or gone (its close, failure or end is
/// in the same batch of events): nobody is left to answer, which is not a server error.
fn ignore_gone(result: Result<(), Error>) -> Result<(), Error> {
    match result {
        Err(Error::StaleId | Error::NotOpen | Error::Send(SendError::Closed)) => Ok(()),
        other => other,
    }
}
