//! A small command-line client: connects, sends each MESSAGE as a text message, prints every
//! message it receives until it has as many replies as it sent, then closes.
//!
//! Usage: ws_client URL [--no-deflate] [--insecure] [--timeout SECONDS] MESSAGE...
//!
//! Output, one line each: `open extensions=<value or ->`, `< <received text>` (binary
//! messages as `< binary <n> bytes`), and `closed <code> <clean|unclean>`. Exit status 0 when
//! every reply arrived and the close was clean.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tidewire_net::{Config, ConnectOptions, Context, Event, TlsClientOptions, TlsConnector};

const USAGE: &str =
    "usage: ws_client URL [--no-deflate] [--insecure] [--timeout SECONDS] MESSAGE...";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut options = ConnectOptions::default();
    let mut timeout = Duration::from_secs(10);
    let mut messages = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-deflate" => options.deflate = None,
            "--insecure" => {
                let tls = TlsConnector::new(&TlsClientOptions {
                    dangerous_skip_verification: true,
                    ..TlsClientOptions::default()
                });
                match tls {
                    Ok(tls) => options.tls = Some(tls),
                    Err(e) => {
                        eprintln!("ws_client: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            "--timeout" => match args.next().and_then(|s| s.parse::<f64>().ok()) {
                Some(secs) if secs > 0.0 => timeout = Duration::from_secs_f64(secs),
                _ => {
                    eprintln!("{USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ => messages.push(arg),
        }
    }
    match run(&url, options, timeout, &messages) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ws_client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Returns whether every reply came and the close was clean.
fn run(
    url: &str,
    options: ConnectOptions,
    timeout: Duration,
    messages: &[String],
) -> Result<bool, Box<dyn std::error::Error>> {
    let mut ctx = Context::new(Config::default())?;
    let mut events = ctx.new_events();
    let conn = ctx.connect(url, options)?;
    let deadline = Instant::now() + timeout;
    let mut replies = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out after {timeout:?}").into());
        }
        ctx.poll(&mut events, Some(left))?;
        for event in events.iter() {
            match event {
                Event::Open { extensions, .. } => {
                    println!("open extensions={}", extensions.unwrap_or("-"));
                    for m in messages {
                        ctx.send_text(conn, m)?;
                    }
                    if messages.is_empty() {
                        ctx.close(conn, 1000, "")?;
                    }
                }
                Event::Message { data, .. } => {
                    match event.text() {
                        Some(text) => println!("< {text}"),
                        None => println!("< binary {} bytes", data.len()),
                    }
                    replies += 1;
                    if replies == messages.len() {
                        ctx.close(conn, 1000, "")?;
                    }
                }
                Event::Closed { code, clean, .. } => {
                    let how = if clean { "clean" } else { "unclean" };
                    println!("closed {code} {how}");
                    return Ok(clean && replies >= messages.len());
                }
                Event::Error { error, .. } => return Err(error.to_string().into()),
                _ => {}
            }
        }
    }
}
