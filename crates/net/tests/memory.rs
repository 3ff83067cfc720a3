//! The memory an idle open ws:// connection costs, counted by a global allocator: the
//! protocol engine, the runtime's per-connection state and its slot, its timers.
//! (The kernel's socket buffers are not the process's heap and are not counted.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use common::Harness;
use tidewire_net::{Config, ConnectOptions, Event, ListenOptions};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Opens `pairs` client/server pairs on one context, exchanges one message of `message`
/// each way, lets them idle past the sweep period, and returns the heap bytes per open
/// connection (both ends counted, so this is the mean of a client's and a server's cost).
fn idle_bytes_per_connection(
    pairs: usize,
    listen: ListenOptions,
    connect: &ConnectOptions,
    message: &str,
) -> isize {
    let mut h = Harness::new(Config::default(), listen);
    // Warm up the poll machinery so that its one-time allocations are in the baseline.
    h.run_until(Duration::from_millis(50), |_, _| false);
    let baseline = LIVE.load(Ordering::Relaxed);

    let clients: Vec<_> = (0..pairs)
        .map(|_| {
            h.ctx
                .connect(&h.url("/"), connect.clone())
                .expect("connect")
        })
        .collect();
    let mut opened = 0;
    let mut echoed = 0;
    assert!(h.run_until(Duration::from_secs(60), |ctx, ev| {
        match ev {
            Event::Open { conn, listener, .. } => {
                opened += 1;
                if listener.is_none() {
                    // Some traffic, so that buffers were used before going idle.
                    ctx.send_text(conn, message).expect("send");
                }
            }
            Event::Message { conn, kind, data } => {
                if clients.contains(&conn) {
                    echoed += 1;
                } else {
                    ctx.send(conn, kind, data).expect("echo");
                }
            }
            Event::Error { error, .. } => panic!("{error}"),
            _ => {}
        }
        opened == 2 * pairs && echoed == pairs
    }));
    // Idle for longer than the sweep period: buffers of idle connections are released.
    let idle_until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < idle_until {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(100)))
            .expect("poll");
    }
    assert_eq!(h.ctx.connection_count(), 2 * pairs);
    let used = LIVE.load(Ordering::Relaxed) - baseline;
    used / (2 * pairs) as isize
}

// One test, run in sequence: the allocation counter is global to the test binary.
#[test]
fn idle_connections_cost_little_memory_with_and_without_deflate() {
    let compressible = "tidewire idle memory, compressible text. ".repeat(40);

    let no_deflate = ConnectOptions {
        deflate: None,
        ..ConnectOptions::default()
    };
    let plain = idle_bytes_per_connection(1000, ListenOptions::default(), &no_deflate, "hello");
    eprintln!("idle memory, no deflate: {plain} bytes per connection");
    assert!(plain <= 2048, "{plain} bytes per idle connection");

    // Deflate negotiated with the defaults (the client keeps its context, as browsers do; the
    // server compresses each message on its own): the client's compressor and the server's
    // inflater keep their windows; the server's compressor and the client's inflater go.
    let defaults = idle_bytes_per_connection(
        100,
        ListenOptions::default(),
        &ConnectOptions::default(),
        &compressible,
    );
    eprintln!(
        "idle memory, deflate with defaults: {defaults} bytes per connection (mean of both ends)"
    );
    assert!(
        defaults <= 256 * 1024,
        "{defaults} bytes per idle connection"
    );

    // No context takeover either way: every codec is released when the connection idles.
    let mut reset = tidewire_net::server_deflate_default();
    reset.client_no_context_takeover = true;
    let connect = ConnectOptions {
        deflate: Some(reset.clone()),
        ..ConnectOptions::default()
    };
    let listen = ListenOptions {
        deflate: Some(reset),
        ..ListenOptions::default()
    };
    let released = idle_bytes_per_connection(100, listen, &connect, &compressible);
    eprintln!("idle memory, deflate without context takeover: {released} bytes per connection");
    assert!(released <= 4096, "{released} bytes per idle connection");
}
