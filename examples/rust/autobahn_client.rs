//! Autobahn|Testsuite client (the docs/DESIGN.md contract): asks the fuzzing server how many cases
//! it has, runs each one echoing every message with its own type, then asks it to write the
//! reports.
//!
//! Usage: autobahn_client URL [--agent NAME]     (URL like ws://127.0.0.1:9001)

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tidewire_net::{Config, ConnectOptions, Context, DeflateConfig, Event, Events};

/// Longest a single case may take before we give up on it (the suite's own limits are
/// shorter; this only stops a hang).
const CASE_LIMIT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(base) = args.next() else {
        eprintln!("usage: autobahn_client URL [--agent NAME]");
        return ExitCode::from(2);
    };
    let mut agent = String::from("tidewire-rust");
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--agent", Some(name)) => agent = name,
            _ => {
                eprintln!("usage: autobahn_client URL [--agent NAME]");
                return ExitCode::from(2);
            }
        }
    }
    match run(base.trim_end_matches('/'), &agent) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobahn_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(base: &str, agent: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut ctx = Context::new(Config::default())?;
    let mut events = ctx.new_events();

    let mut count = None;
    session(
        &mut ctx,
        &mut events,
        &format!("{base}/getCaseCount"),
        |text| {
            count = text.and_then(|t| t.trim().parse::<u32>().ok());
        },
    )?;
    let count = count.ok_or("getCaseCount gave no number")?;
    println!("{count} cases");

    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        if let Err(e) = session(&mut ctx, &mut events, &url, |_| {}) {
            eprintln!("case {case}: {e}");
        }
    }
    session(
        &mut ctx,
        &mut events,
        &format!("{base}/updateReports?agent={agent}"),
        |_| {},
    )?;
    println!("reports updated for agent {agent}");
    Ok(())
}

/// Opens `url`, echoes every message until the connection is over, and shows each text
/// message to `on_text` first.
fn session(
    ctx: &mut Context,
    events: &mut Events,
    url: &str,
    mut on_text: impl FnMut(Option<&str>),
) -> Result<(), Box<dyn std::error::Error>> {
    let options = ConnectOptions {
        deflate: Some(DeflateConfig::default()),
        ..ConnectOptions::default()
    };
    let conn = ctx.connect(url, options)?;
    let start = Instant::now();
    loop {
        if start.elapsed() > CASE_LIMIT {
            let _ = ctx.close(conn, 1000, "");
            return Err(format!("{url}: no end after {CASE_LIMIT:?}").into());
        }
        ctx.poll(events, Some(Duration::from_millis(500)))?;
        for event in events.iter() {
            match event {
                Event::Message {
                    conn: c,
                    kind,
                    data,
                } if c == conn => {
                    on_text(event.text());
                    // Refused sends (connection already closing) are part of some cases.
                    let _ = ctx.send(conn, kind, data);
                }
                Event::Closed { conn: c, .. } if c == conn => return Ok(()),
                Event::Error { error, .. } if event.conn() == Some(conn) => {
                    return Err(format!("{url}: {error}").into());
                }
                _ => {}
            }
        }
    }
}
