//! The `make demo` chat server: serves a small chat page at `/` and WebSockets at
//! `/chat/<room>` on the same port. Each connection subscribes to its room's topic; every
//! line a tab sends is published to the room, framed (and compressed) once for all of its
//! members however many there are. Open `/?room=NAME` for another room.
//!
//! A member that does not read what the room sends is closed with 1008 once 1 MiB waits for
//! it (`SlowAction::Close`): in a chat a silently skipped line is a bug, a reconnect is not.
//!
//! It runs on `Workers`: `--threads N` event loops sharing the port (default 1, 0: one per
//! CPU), and with `--cluster redis://HOST:PORT` it joins the other chat servers on that
//! Redis, so a room spans processes and machines (see examples/deploy/).
//!
//! Usage: chat_server [--host H] [--port P] [--threads N] [--cluster URL]
//!                    (default 127.0.0.1:8080, one thread, no cluster)

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tidewire_net::{
    Bus, ClusterOptions, ClusterStatus, Context, Event, ListenOptions, MessageKind, SlowAction,
    SlowSubscriber, WorkerOptions, Workers,
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

struct Args {
    host: String,
    port: u16,
    threads: usize,
    cluster: Option<String>,
}

fn main() -> ExitCode {
    let mut args = Args {
        host: String::from("127.0.0.1"),
        port: 8080,
        threads: 1,
        cluster: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            return usage();
        };
        match flag.as_str() {
            "--host" => args.host = value,
            "--port" => match value.parse() {
                Ok(p) => args.port = p,
                Err(_) => return usage(),
            },
            "--threads" => match value.parse() {
                Ok(n) => args.threads = n,
                Err(_) => return usage(),
            },
            "--cluster" => args.cluster = Some(value),
            _ => return usage(),
        }
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: chat_server [--host H] [--port P] [--threads N] [--cluster redis://HOST:PORT]"
    );
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

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let listen = ListenOptions {
        handle_http: true,
        slow_subscriber: SlowSubscriber {
            limit: 1 << 20,
            action: SlowAction::Close,
        },
        ..ListenOptions::default()
    };
    let cluster = args.cluster.map(|url| ClusterOptions {
        url,
        channel: "tidewire-chat".into(),
        ..ClusterOptions::default()
    });
    let on_status: Arc<dyn Fn(ClusterStatus) + Send + Sync> = Arc::new(|status| match status {
        ClusterStatus::Connected => println!("cluster: connected"),
        ClusterStatus::Interrupted(why) => {
            println!("cluster: interrupted ({why}); rooms are local until it resumes");
        }
        ClusterStatus::Resumed => println!("cluster: resumed"),
    });
    let options = WorkerOptions {
        threads: args.threads,
        listen,
        cluster,
        on_cluster_status: Some(on_status),
        ..WorkerOptions::default()
    };
    let workers = Workers::start(&args.host, args.port, options, |_| handle)?;
    println!(
        "tidewire chat: open http://{}/ in a browser (Ctrl-C to stop)",
        workers.local_addr()
    );
    signals.forever().next();
    workers.shutdown(Duration::from_secs(2))?;
    Ok(())
}

/// One event of one worker. Errors concern one connection (closing meanwhile, or refused
/// input): they are reported, and the server goes on.
fn handle(ctx: &mut Context, bus: &Bus, event: Event<'_>) {
    if let Err(e) = on_event(ctx, bus, event) {
        eprintln!("chat_server: {e}");
    }
}

fn on_event(ctx: &mut Context, bus: &Bus, event: Event<'_>) -> Result<(), tidewire_net::Error> {
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
                "{peer_addr} joined {} on worker {}",
                String::from_utf8_lossy(room),
                bus.worker()
            );
        }
        Event::Message {
            conn,
            kind: MessageKind::Text,
            data,
        } => {
            // A connection is in exactly one room: the one it subscribed to on open. The
            // publish reaches the room on every worker and every process of the cluster.
            for room in ctx.topics(conn)? {
                let report = bus.publish(ctx, &room, MessageKind::Text, data)?;
                if report.closed_slow > 0 {
                    println!("{} member(s) too slow, closed", report.closed_slow);
                }
            }
        }
        Event::Closed { conn, .. } => println!("{conn:?} left"),
        _ => {}
    }
    Ok(())
}
