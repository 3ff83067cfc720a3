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

#[test]
fn an_idle_open_ws_connection_costs_at_most_2_kib() {
    const PAIRS: usize = 1000;
    let mut h = Harness::new(Config::default(), ListenOptions::default());
    // Warm up the poll machinery so that its one-time allocations are in the baseline.
    h.run_until(Duration::from_millis(50), |_, _| false);
    let baseline = LIVE.load(Ordering::Relaxed);

    let clients: Vec<_> = (0..PAIRS)
        .map(|_| {
            h.ctx
                .connect(&h.url("/"), ConnectOptions::default())
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
                    ctx.send_text(conn, "hello").expect("send");
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
        opened == 2 * PAIRS && echoed == PAIRS
    }));
    // Idle for longer than the sweep period: buffers of idle connections are released.
    let idle_until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < idle_until {
        h.ctx
            .poll(&mut h.events, Some(Duration::from_millis(100)))
            .expect("poll");
    }
    let used = LIVE.load(Ordering::Relaxed) - baseline;
    let conns = (2 * PAIRS) as isize;
    let per_conn = used / conns;
    eprintln!("idle memory: {used} bytes for {conns} open connections = {per_conn} bytes each");
    assert_eq!(h.ctx.connection_count(), 2 * PAIRS);
    assert!(per_conn <= 2048, "{per_conn} bytes per idle connection");
}
