//! tokio-tungstenite fan-out server for `fanout` (issue 14), written the usual way: one
//! `tokio::sync::broadcast` channel; the publisher's task (`/pub`) sends every message it
//! reads into it, and every subscriber's task (`/sub`) receives from its own receiver and
//! `send`s each message to its socket (a `Message` clone shares the payload's bytes), while
//! draining what the subscriber sends. On a single-threaded runtime so that it uses one core
//! like tidewire's server. tungstenite 0.30 has no permessage-deflate: no deflate cases.
//!
//! Usage: tungstenite_fanout --port P
//!
//! Prints `listening on 127.0.0.1:PORT`; a subscriber that lags behind the channel's
//! capacity (which the load generator's pacing never allows) is reported on stderr and
//! misses messages, which the load generator detects.

use futures_util::future::{select, Either};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// Far above the load generator's window of publishes in flight.
const CAPACITY: usize = 4096;

async fn serve(sock: TcpStream, tx: broadcast::Sender<Message>) {
    let mut path = String::new();
    // The error type is tungstenite's callback signature, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(sock, callback).await else {
        return;
    };
    let (mut write, mut read) = ws.split();
    if path != "/sub" {
        while let Some(Ok(msg)) = read.next().await {
            if msg.is_text() || msg.is_binary() {
                // No receivers is not an error for a publisher.
                let _ = tx.send(msg);
            }
        }
        return;
    }
    let mut rx = tx.subscribe();
    let forward = Box::pin(async move {
        loop {
            match rx.recv().await {
                Ok(msg) => {
                    if write.send(msg).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("a subscriber lagged and missed {n} messages");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let drain = Box::pin(async move { while let Some(Ok(_)) = read.next().await {} });
    match select(forward, drain).await {
        Either::Left(_) | Either::Right(_) => {}
    }
}

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .skip_while(|a| a != "--port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on {}", listener.local_addr()?);
        let (tx, _) = broadcast::channel::<Message>(CAPACITY);
        loop {
            let (sock, _) = listener.accept().await?;
            sock.set_nodelay(true)?;
            tokio::spawn(serve(sock, tx.clone()));
        }
    })
}
