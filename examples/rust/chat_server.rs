//! The `make demo` chat server: serves a small chat page at `/` and WebSockets at
//! `/chat/<room>` on the same port. Each connection subscribes to its room's topic; every
//! line a tab sends is published to the room, framed (and compressed) once for all of its
//! members however many there are. Open `/?room=NAME` for another room.
//!
//! A member that does not read what the room sends is closed with 1008 once 1 MiB waits for
//! it (`SlowAction::Close`): in a chat a silently skipped line is a bug, a reconnect is not.
//!
//! Usage: chat_server [--host H] [--port P]      (default 127.0.0.1:8080)

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidewire_net::{
    Config, Context, Event, ListenOptions, MessageKind, SlowAction, SlowSubscriber,
};

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tidewire demo</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  #log { border: 1px solid #ccc; border-radius: 6px; height: 20rem; overflow-y: auto; padding: .5rem; }
  #log p { margin: .2rem 0; }
  .sys { color: #777; font-style: italic; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  input { flex: 1; padding: .4rem; }
</style>
</head>
<body>
<h1>tidewire demo</h1>
<p>Type a message: it goes to the server over a WebSocket and comes back to every tab in the
same room. Open this page in a second tab to chat with yourself; add <code>?room=NAME</code> for
another room.</p>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something" autofocus>
<button>Send</button></form>
<script>
const log = document.getElementById("log");
function show(text, cls) {
  const p = document.createElement("p");
  p.textContent = text;
  if (cls) p.className = cls;
  log.appendChild(p);
  log.scrollTop = log.scrollHeight;
}
const scheme = location.protocol === "https:" ? "wss" : "ws";
const room = new URLSearchParams(location.search).get("room") || "lobby";
const ws = new WebSocket(`${scheme}://${location.host}/chat/${encodeURIComponent(room)}`);
ws.onopen = () => show(`connected to room ${room}`, "sys");
ws.onmessage = (e) => show(e.data);
ws.onclose = (e) => show(`disconnected (${e.code})`, "sys");
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  if (input.value && ws.readyState === WebSocket.OPEN) ws.send(input.value);
  input.value = "";
};
</script>
</body>
</html>
"#;

fn main() -> ExitCode {
    let mut host = String::from("127.0.0.1");
    let mut port: u16 = 8080;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value) {
            ("--host", Some(v)) => host = v,
            ("--port", Some(v)) => match v.parse() {
                Ok(p) => port = p,
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    match run(&host, port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: chat_server [--host H] [--port P]");
    ExitCode::from(2)
}

/// The room a WebSocket path names: `/chat/<room>`, or the lobby.
fn room_of(path: &str) -> &[u8] {
    let room = path.strip_prefix("/chat/").unwrap_or("");
    // The query string and fragment are not part of the room's name.
    let room = room.split(['?', '#']).next().unwrap_or("");
    if room.is_empty() {
        b"lobby"
    } else {
        room.as_bytes()
    }
}

fn run(host: &str, port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let mut ctx = Context::new(Config::default())?;
    let options = ListenOptions {
        handle_http: true,
        slow_subscriber: SlowSubscriber {
            limit: 1 << 20,
            action: SlowAction::Close,
        },
        ..ListenOptions::default()
    };
    let listener = ctx.listen(host, port, options)?;
    let addr = ctx.local_addr(listener)?;
    println!("tidewire chat: open http://{addr}/ in a browser (Ctrl-C to stop)");

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
                Event::HttpRequest { conn, request, .. } => {
                    let page = request.path == "/" || request.path.starts_with("/?");
                    if page || request.path == "/index.html" {
                        let headers = [("Content-Type", "text/html; charset=utf-8")];
                        ctx.respond(conn, 200, &headers, PAGE.as_bytes())?;
                    } else {
                        let headers = [("Content-Type", "text/plain; charset=utf-8")];
                        ctx.respond(conn, 404, &headers, b"not found\n")?;
                    }
                }
                Event::Open {
                    conn,
                    peer_addr,
                    path,
                    ..
                } => {
                    let room = room_of(path);
                    ctx.subscribe(conn, room)?;
                    println!(
                        "{peer_addr} joined {} ({} there)",
                        String::from_utf8_lossy(room),
                        ctx.subscriber_count(room)
                    );
                }
                Event::Message {
                    conn,
                    kind: MessageKind::Text,
                    data,
                } => {
                    // A connection is in exactly one room: the one it subscribed to on open.
                    for room in ctx.topics(conn)? {
                        let report = ctx.publish(&room, MessageKind::Text, data)?;
                        if report.closed_slow > 0 {
                            println!("{} member(s) too slow, closed", report.closed_slow);
                        }
                    }
                }
                Event::Closed { conn, .. } => {
                    // It has left its room already.
                    println!("{conn:?} left");
                }
                _ => {}
            }
        }
    }
    ctx.shutdown_blocking(Duration::from_secs(2))?;
    Ok(())
}
