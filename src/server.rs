//! `tw_server`: every core of one machine (`tidewire_net::Workers`), and optionally several
//! processes joined through Redis (`tidewire_net::Cluster`, see `cluster.rs`).
//!
//! Each worker thread owns one runtime context and calls the application's C handler for
//! each of its events. The handler gets that worker's `tw_context *`: a handle like any
//! other, so every `tw_conn_*`, `tw_listener_*` and `tw_context_*` function works on it,
//! except that the worker's thread polls it (`tw_poll` is refused) and the server owns it
//! (`tw_context_free` is refused). The handle is lent: the runtime context behind it is
//! only reachable during a handler call, on that worker's thread; between calls, calls on it
//! fail with `TW_STATUS_INVALID_ARGUMENT`. Its user data and answered-ids bookkeeping live
//! in the same `Ctx` as for `tw_context_new`'s contexts, one per worker for the server's
//! whole life, so the pointer is stable and identifies the worker.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

use tidewire_net::{Bus, Config, Context, Event, Events, ListenOptions, WorkerOptions, Workers};

use crate::cluster::{tw_cluster_options, tw_cluster_stats, ClusterOpts, UserPtr};
use crate::config::tw_config;
use crate::conn::message_kind;
use crate::context::{tw_context, with_ctx, Ctx, Net};
use crate::event::{to_c, tw_event};
use crate::ffi::{
    free_handle, guard, guard_void, into_handle, millis, non_null, try_bytes, try_cstr, try_mut,
    try_out, try_ref, write_text, Checked, Failure, Opaque, OK,
};
use crate::listen_options::tw_listen_options;
use crate::publish::tw_publish_report;
use crate::sender::tw_sender;
use crate::status::{set_last_error, tw_status};

/// A worker's link to the other workers (and the cluster), lent to the handler with each
/// event: valid during the handler call only, on that worker's thread. Never freed by the
/// application.
#[allow(non_camel_case_types)]
pub struct tw_bus {
    _private: [u8; 0],
}

// SAFETY: every `*const tw_bus` handed out is the `&Bus` of a running handler call.
unsafe impl Opaque for tw_bus {
    type Rust = Bus;
}

/// The handler of a `tw_server`: called on worker thread `i` (see `tw_bus_worker`) for each
/// event of worker `i`'s context, one call at a time per worker, workers in parallel.
///
/// `ctx` is worker `i`'s context, the same pointer for every call on that worker: use it
/// with any `tw_conn_*`, `tw_listener_*` or `tw_context_*` function during the call (not
/// `tw_poll` or `tw_context_free`). `bus` publishes across workers (`tw_bus_publish`).
/// `event` and everything it points to are valid until the handler returns. `user` is the
/// pointer given to `tw_server_new`, shared by all workers: what it points to must be safe
/// to use from several threads at once.
///
/// The handler must not block for long (it holds up every connection of its worker), and
/// must not call `tw_server_shutdown` or `tw_server_free` (they wait for the workers). The
/// last events a handler sees are those of the shutdown: the closes with 1001.
#[allow(non_camel_case_types)]
pub type tw_server_handler = Option<
    unsafe extern "C" fn(
        ctx: *mut tw_context,
        bus: *const tw_bus,
        event: *const tw_event,
        user: *mut c_void,
    ),
>;

/// How a `tw_server` is set up: threads, each worker's context config, the listener's
/// options, and the cluster. Create with `tw_server_options_new`, adjust, pass to
/// `tw_server_new` (which copies it), free with `tw_server_options_free`.
#[allow(non_camel_case_types)]
pub struct tw_server_options {
    _private: [u8; 0],
}

#[derive(Clone, Default)]
pub(crate) struct ServerOpts {
    threads: usize,
    config: Config,
    listen: ListenOptions,
    cluster: Option<ClusterOpts>,
}

// SAFETY: every `*mut tw_server_options` handed out is a `Box<ServerOpts>`.
unsafe impl Opaque for tw_server_options {
    type Rust = ServerOpts;
}

/// A multi-core server: N worker threads, each with its own context, listening on one port
/// (the kernel spreads connections over them), with publishes that reach every worker and,
/// with a cluster, every process. Create with `tw_server_new`, stop with
/// `tw_server_shutdown`, free with `tw_server_free`.
#[allow(non_camel_case_types)]
pub struct tw_server {
    _private: [u8; 0],
}

pub(crate) struct Server {
    /// Tells this server's worker threads apart from other threads (see `WORKER_OF`).
    id: u64,
    /// `None` once shut down.
    workers: RwLock<Option<Workers>>,
    addr: SocketAddr,
    threads: usize,
}

// SAFETY: every `*mut tw_server` handed out is a `Box<Server>` from `tw_server_new`.
unsafe impl Opaque for tw_server {
    type Rust = Server;
}

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The id of the server whose worker this thread is (0: none).
    static WORKER_OF: Cell<u64> = const { Cell::new(0) };
}

impl Server {
    fn workers(&self) -> Checked<RwLockReadGuard<'_, Option<Workers>>> {
        let guard = self.workers.read().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            return Err(Failure::new(
                tw_status::TW_STATUS_SHUTTING_DOWN,
                "the server was shut down",
            ));
        }
        Ok(guard)
    }

    fn on_own_worker(&self) -> bool {
        WORKER_OF.with(Cell::get) == self.id
    }
}

/// What one worker thread keeps for the C handler: its lent `Ctx` and the callback.
struct WorkerSide {
    /// A `tw_context` handle (from `into_handle`) whose `net` is lent during each call.
    ctx: *mut tw_context,
    handler: unsafe extern "C" fn(*mut tw_context, *const tw_bus, *const tw_event, *mut c_void),
    user: UserPtr,
    server: u64,
}

// SAFETY: the `Ctx` behind `ctx` (user data pointers, a lent context pointer) is created on
// the starting thread before any use, then moved with this value to its worker thread,
// which alone uses it; `user` is documented as shared across threads.
unsafe impl Send for WorkerSide {}

impl Drop for WorkerSide {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from `into_handle` and is freed only here.
        unsafe { free_handle(self.ctx) };
    }
}

impl WorkerSide {
    fn new(worker: usize, handler: WorkerSideFn, user: UserPtr, server: u64) -> WorkerSide {
        let ctx = Ctx {
            net: Net::Lent {
                context: std::ptr::null_mut(),
                worker,
            },
            events: Events::default(),
            cursor: 0,
            texts: Vec::new(),
            userdata: Default::default(),
            answered: Default::default(),
            poisoned: false,
        };
        WorkerSide {
            ctx: into_handle::<tw_context>(ctx),
            handler,
            user,
            server,
        }
    }

    fn call(&mut self, net: &mut Context, bus: &Bus, event: Event<'_>) {
        WORKER_OF.with(|w| w.set(self.server));
        let raw = self.ctx.cast::<Ctx>();
        let prepared = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `raw` is this worker's live `Ctx`; no other reference to it exists
            // outside this call.
            let c = unsafe { &mut *raw };
            if c.poisoned {
                return None;
            }
            if let Net::Lent { context, .. } = &mut c.net {
                *context = std::ptr::from_mut(net);
            }
            c.texts.clear();
            c.prune_answered();
            Some(to_c(&event, &mut c.texts, &mut c.userdata))
        }));
        let Ok(Some(e)) = prepared else {
            // SAFETY: as above.
            unsafe { (*raw).poisoned = true };
            return;
        };
        // SAFETY: the application's handler, called as documented; every pointer is valid
        // for the call (the context is lent until it returns).
        unsafe {
            (self.handler)(
                self.ctx,
                std::ptr::from_ref(bus).cast::<tw_bus>(),
                &e,
                self.user.0,
            );
        }
        // SAFETY: as above; the handler has returned, nothing else refers to the `Ctx`.
        if let Net::Lent { context, .. } = unsafe { &mut (*raw).net } {
            *context = std::ptr::null_mut();
        }
    }
}

/// The handler once checked non-NULL.
///
/// cbindgen:ignore
type WorkerSideFn =
    unsafe extern "C" fn(*mut tw_context, *const tw_bus, *const tw_event, *mut c_void);

/// # Safety
/// `options` is NULL or a live handle used by nobody else during the call.
unsafe fn set(
    options: *mut tw_server_options,
    apply: impl FnOnce(&mut ServerOpts) -> Checked<()>,
) -> tw_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { try_mut(options, "options") }?;
        apply(o)?;
        OK
    })
}

impl tw_server_options {
    /// Creates server options with the defaults: one worker per CPU this process may use,
    /// `tw_config_new`'s config, `tw_listen_options_new`'s listener, no cluster.
    ///
    /// Ownership: on success `*out_options` is a new handle owned by the caller (free with
    /// `tw_server_options_free`); on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `out_options` is NULL or valid for writing a pointer.
    ///
    /// Thread safety: any thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_options_new(
        out_options: *mut *mut tw_server_options,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_options, "out_options") }?;
            out.write(into_handle::<tw_server_options>(ServerOpts::default()));
            OK
        })
    }

    /// Frees server options. NULL is a no-op.
    ///
    /// Ownership: takes ownership of `options`; freeing twice is undefined behaviour.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: any thread, with no other call on these options running.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_options_free(options: *mut tw_server_options) {
        // SAFETY: caller contract.
        guard_void(|| unsafe { free_handle(options) })
    }

    /// The number of worker threads, at most 4096; 0 (the default) takes the number of CPUs
    /// this process may use. Each worker has its own context, listening socket and buffers.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT` (more
    /// than 4096; the options are unchanged), `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: any thread, not concurrently with other calls on these options.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_options_set_threads(
        options: *mut tw_server_options,
        threads: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                // tidewire-net's rule (`WorkerOptions::validate`).
                WorkerOptions {
                    threads,
                    ..WorkerOptions::default()
                }
                .validate()?;
                o.threads = threads;
                Ok(())
            })
        }
    }

    /// Every worker's context settings (each worker gets its own copy: limits such as
    /// `tw_config_set_max_connections` apply per worker). NULL restores the defaults.
    ///
    /// Ownership: `config` is copied; the caller keeps owning it.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT` (`options`), `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `config` is NULL or a live handle.
    ///
    /// Thread safety: any thread, not concurrently with other calls on these options or
    /// changes of `config`.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_options_set_config(
        options: *mut tw_server_options,
        config: *const tw_config,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.config = if config.is_null() {
                    Config::default()
                } else {
                    // SAFETY: caller contract; non-NULL.
                    try_ref(config, "config")?.clone()
                };
                Ok(())
            })
        }
    }

    /// The options of every worker's listener (TLS, limits, deflate, slow subscribers,
    /// ...); `SO_REUSEPORT` is set whatever they say. NULL restores the defaults.
    ///
    /// Ownership: `listen` is copied; the caller keeps owning it.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT` (`options`), `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `listen` is NULL or a live handle.
    ///
    /// Thread safety: any thread, not concurrently with other calls on these options or
    /// changes of `listen`.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_options_set_listen_options(
        options: *mut tw_server_options,
        listen: *const tw_listen_options,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.listen = if listen.is_null() {
                    ListenOptions::default()
                } else {
                    // SAFETY: caller contract; non-NULL.
                    try_ref(listen, "listen")?.clone()
                };
                Ok(())
            })
        }
    }

    /// Joins a cluster of server processes over Redis: publishes through `tw_bus_publish`
    /// and `tw_server_publish` then reach the other processes too, and theirs reach this
    /// one's workers. NULL leaves the cluster (the default: this process only). The status
    /// callback of `cluster` runs on a bridge thread.
    ///
    /// Ownership: `cluster` is copied; the caller keeps owning it.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT` (`options`), `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `cluster` is NULL or a live handle.
    ///
    /// Thread safety: any thread, not concurrently with other calls on these options or
    /// changes of `cluster`.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_options_set_cluster(
        options: *mut tw_server_options,
        cluster: *const tw_cluster_options,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.cluster = if cluster.is_null() {
                    None
                } else {
                    // SAFETY: caller contract; non-NULL.
                    Some(try_ref(cluster, "cluster")?.clone())
                };
                Ok(())
            })
        }
    }
}

impl tw_server {
    /// Starts a server: creates every worker's context and listener on `host:port` on the
    /// calling thread (so a bad option or a busy port is reported here), starts the cluster
    /// bridge when the options have one, then starts one thread per worker, which polls its
    /// context and calls `handler` for each event (see `tw_server_handler`). Port 0 picks a
    /// free port shared by all workers (`tw_server_local_port`).
    ///
    /// Ownership: `host` is borrowed for the call; `options` (NULL for the defaults) is
    /// copied. `user` is passed to every handler call on every worker; the library never
    /// reads or frees it. On success `*out_server` is a new handle owned by the caller
    /// (stop it with `tw_server_shutdown`, free it with `tw_server_free`); on failure it is
    /// untouched and nothing runs.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT` (`host`, `handler`, `out_server`),
    /// `TW_STATUS_INVALID_UTF8`, `TW_STATUS_INVALID_ARGUMENT` (a config the runtime refuses,
    /// cluster settings out of range), `TW_STATUS_INVALID_URL` (the cluster URL is not a
    /// Redis URL; `tw_last_error` has the runtime's message), `TW_STATUS_RESOLVE`,
    /// `TW_STATUS_IO` (address in use, a thread that could not start), `TW_STATUS_TLS`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `host` is NULL or NUL-terminated; `options` is NULL or a live handle; `handler` is
    /// NULL or a function that may be called from the worker threads with `user` until
    /// `tw_server_shutdown` or `tw_server_free` returns; `out_server` is NULL or valid for
    /// writing a pointer.
    ///
    /// Thread safety: any thread (it becomes no worker); `options` must not change meanwhile.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_new(
        host: *const c_char,
        port: u16,
        options: *const tw_server_options,
        handler: tw_server_handler,
        user: *mut c_void,
        out_server: *mut *mut tw_server,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_server, "out_server") }?;
            // SAFETY: caller contract.
            let host = unsafe { try_cstr(host, "host") }?;
            let handler = handler.ok_or_else(|| Failure::null("handler"))?;
            let o = if options.is_null() {
                ServerOpts::default()
            } else {
                // SAFETY: caller contract; non-NULL.
                unsafe { try_ref(options, "options") }?.clone()
            };
            let id = NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed);
            let user = UserPtr(user);
            let on_cluster_status = o.cluster.as_ref().and_then(ClusterOpts::status_fn);
            let worker_options = WorkerOptions {
                threads: o.threads,
                config: o.config,
                listen: o.listen,
                cluster: o.cluster.map(|c| c.net),
                on_cluster_status,
            };
            let workers = Workers::start(host, port, worker_options, |i| {
                let mut side = WorkerSide::new(i, handler, user, id);
                move |net: &mut Context, bus: &Bus, event: Event<'_>| side.call(net, bus, event)
            })?;
            let server = Server {
                id,
                addr: workers.local_addr(),
                threads: workers.threads(),
                workers: RwLock::new(Some(workers)),
            };
            out.write(into_handle::<tw_server>(server));
            OK
        })
    }

    /// Frees a server. When it was not shut down yet, it is first, with a grace of 1 s (as
    /// `tw_server_shutdown(server, 1000)`, the status lost). NULL is a no-op.
    ///
    /// Ownership: takes ownership of `server`; freeing twice is undefined behaviour.
    /// Senders from `tw_server_sender` stay valid (they answer `TW_STATUS_CONTEXT_GONE`).
    ///
    /// # Safety
    /// `server` is NULL or a live handle from `tw_server_new`.
    ///
    /// Thread safety: any thread but the server's workers (a handler calling it only sets
    /// `tw_last_error`: the server is not freed), once no other thread uses the handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_free(server: *mut tw_server) {
        guard_void(|| {
            // SAFETY: caller contract.
            if let Ok(s) = unsafe { try_ref(server.cast_const(), "server") } {
                if s.on_own_worker() {
                    set_last_error("tw_server_free: called from one of the server's own workers");
                    return;
                }
            }
            // SAFETY: caller contract.
            unsafe { free_handle(server) }
        })
    }

    /// Stops the server and waits for it: every worker stops listening, closes its
    /// connections with 1001 (the handlers see their `TW_EVENT_CLOSE`), gives the closing
    /// handshakes `grace_ms`, and its thread ends; the cluster bridge stops. Afterwards the
    /// other `tw_server_*` calls answer `TW_STATUS_SHUTTING_DOWN`; free the handle with
    /// `tw_server_free`.
    ///
    /// Returns `TW_STATUS_OK`, the status of the first error a worker ended with (a poll
    /// failure, `TW_STATUS_IO`; a panic inside the library, `TW_STATUS_INTERNAL`),
    /// `TW_STATUS_SHUTTING_DOWN` (already shut down), `TW_STATUS_INVALID_ARGUMENT` (called
    /// from one of its own workers, which would wait for itself), `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `server` is NULL or a live handle.
    ///
    /// Thread safety: any thread but the server's workers, concurrently with
    /// `tw_server_publish` and the other getters.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_shutdown(
        server: *const tw_server,
        grace_ms: u64,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let s = unsafe { try_ref(server, "server") }?;
            if s.on_own_worker() {
                return Err(Failure::invalid(
                    "tw_server_shutdown: called from one of the server's own workers",
                ));
            }
            // Taken out under the lock, joined without it: handlers that call
            // tw_server_publish meanwhile get TW_STATUS_SHUTTING_DOWN instead of waiting.
            let workers = s
                .workers
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .ok_or_else(|| {
                    Failure::new(
                        tw_status::TW_STATUS_SHUTTING_DOWN,
                        "the server was shut down",
                    )
                })?;
            workers.shutdown(millis(grace_ms))?;
            OK
        })
    }

    /// How many workers run (the number of threads asked for, or of CPUs).
    ///
    /// Ownership: on failure `*out_threads` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `server` is NULL or a live handle; `out_threads` is NULL or valid for writing a
    /// size_t.
    ///
    /// Thread safety: any thread, handlers included.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_threads(
        server: *const tw_server,
        out_threads: *mut usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_threads, "out_threads") }?;
            // SAFETY: caller contract.
            let s = unsafe { try_ref(server, "server") }?;
            out.write(s.threads);
            OK
        })
    }

    /// The port every worker listens on (the real one when 0 was asked).
    ///
    /// Ownership: on failure `*out_port` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `server` is NULL or a live handle; `out_port` is NULL or valid for writing a
    /// uint16_t.
    ///
    /// Thread safety: any thread, handlers included.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_local_port(
        server: *const tw_server,
        out_port: *mut u16,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_port, "out_port") }?;
            // SAFETY: caller contract.
            let s = unsafe { try_ref(server, "server") }?;
            out.write(s.addr.port());
            OK
        })
    }

    /// The address every worker listens on as NUL-terminated text, `127.0.0.1:9001` or
    /// `[::1]:9001`. 64 bytes are always enough.
    ///
    /// Ownership: the text is written into the caller's `buf` of `cap` bytes, and its
    /// length without the NUL into `*out_len`. On failure neither is touched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_BUFFER_TOO_SMALL`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `server` is NULL or a live handle; `buf` is NULL or valid for writing `cap` bytes;
    /// `out_len` is NULL or valid for writing a size_t.
    ///
    /// Thread safety: any thread, handlers included.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_local_addr(
        server: *const tw_server,
        buf: *mut c_char,
        cap: usize,
        out_len: *mut usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_len, "out_len") }?;
            non_null(buf, "buf")?;
            // SAFETY: caller contract.
            let s = unsafe { try_ref(server, "server") }?;
            // SAFETY: `buf` is non-NULL and writable for `cap` bytes (caller contract).
            let n = unsafe { write_text(&s.addr.to_string(), buf, cap) }?;
            out.write(n);
            OK
        })
    }

    /// Publishes to `topic` on every worker (each publishes one shared copy at its next
    /// poll) and, with a cluster, on the other processes. Messages published by one thread
    /// arrive in order. Never blocks.
    ///
    /// Ownership: `topic` and `data` are copied once during the call.
    ///
    /// Returns `TW_STATUS_OK` (queued; a full cluster queue or a Redis outage loses it for
    /// the other processes only, counted in `tw_cluster_stats.dropped`),
    /// `TW_STATUS_INVALID_UTF8`, `TW_STATUS_INVALID_ARGUMENT` (unknown kind),
    /// `TW_STATUS_BUFFER_FULL` (a worker's sender queue is at
    /// `tw_config_set_sender_queue_limit`), `TW_STATUS_SHUTTING_DOWN`,
    /// `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `server` is NULL or a live handle; a non-NULL `topic` is readable for `topic_len`
    /// bytes and a non-NULL `data` for `len` bytes.
    ///
    /// Thread safety: any thread, handlers included (in a handler, `tw_bus_publish` is
    /// quicker for its own worker), concurrently with every call but `tw_server_free`.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_publish(
        server: *const tw_server,
        topic: *const u8,
        topic_len: usize,
        kind: u32,
        data: *const u8,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let s = unsafe { try_ref(server, "server") }?;
            // SAFETY: caller contract.
            let topic = unsafe { try_bytes(topic, topic_len, "topic") }?;
            let kind = message_kind(kind)?;
            // SAFETY: caller contract.
            let data = unsafe { try_bytes(data, len, "data") }?;
            let workers = s.workers()?;
            if let Some(w) = workers.as_ref() {
                w.publish(topic, kind, data)?;
            }
            OK
        })
    }

    /// A sender on worker `worker`'s context (its connections only), for threads that are
    /// not workers: see `tw_sender_send_text`. Connection ids name a connection of one
    /// worker only (the worker whose handler saw it).
    ///
    /// Ownership: on success `*out_sender` is a new handle owned by the caller (free with
    /// `tw_sender_free`; it may outlive the server); on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NOT_FOUND` (`worker` is not below
    /// `tw_server_threads`), `TW_STATUS_SHUTTING_DOWN`, `TW_STATUS_NULL_ARGUMENT`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `server` is NULL or a live handle; `out_sender` is NULL or valid for writing a
    /// pointer.
    ///
    /// Thread safety: any thread, handlers included.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_sender(
        server: *const tw_server,
        worker: usize,
        out_sender: *mut *mut tw_sender,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_sender, "out_sender") }?;
            // SAFETY: caller contract.
            let s = unsafe { try_ref(server, "server") }?;
            let workers = s.workers()?;
            let sender = workers
                .as_ref()
                .and_then(|w| w.sender(worker))
                .ok_or_else(|| {
                    Failure::new(
                        tw_status::TW_STATUS_NOT_FOUND,
                        format!("no worker {worker}: the server has {}", s.threads),
                    )
                })?;
            out.write(into_handle::<tw_sender>(sender));
            OK
        })
    }

    /// The counters of the server's cluster bridge, and whether both its links to Redis are
    /// up now (`out_connected` may be NULL).
    ///
    /// Ownership: on failure the outputs are untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NOT_FOUND` (the server has no cluster),
    /// `TW_STATUS_SHUTTING_DOWN`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `server` is NULL or a live handle; `out_stats` is NULL or valid for writing a
    /// `tw_cluster_stats`; `out_connected` is NULL or valid for writing a bool.
    ///
    /// Thread safety: any thread, handlers included.
    #[no_mangle]
    pub unsafe extern "C" fn tw_server_cluster_stats(
        server: *const tw_server,
        out_stats: *mut tw_cluster_stats,
        out_connected: *mut bool,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_stats, "out_stats") }?;
            // SAFETY: caller contract.
            let s = unsafe { try_ref(server, "server") }?;
            let workers = s.workers()?;
            let cluster = workers.as_ref().and_then(Workers::cluster).ok_or_else(|| {
                Failure::new(tw_status::TW_STATUS_NOT_FOUND, "the server has no cluster")
            })?;
            let connected = cluster.is_connected();
            out.write(cluster.stats().into());
            if !out_connected.is_null() {
                // SAFETY: non-NULL, valid for one write (caller contract).
                unsafe { out_connected.write(connected) };
            }
            OK
        })
    }
}

impl tw_bus {
    /// The number of the worker whose handler was given `bus`, 0 to `workers - 1`, and how
    /// many workers run (either output may be NULL).
    ///
    /// Ownership: on failure the outputs are untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT` (`bus`), `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `bus` is NULL or the bus of the running handler call; each output is NULL or valid
    /// for writing a size_t.
    ///
    /// Thread safety: inside the handler call that was given `bus`, on its worker's thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_bus_worker(
        bus: *const tw_bus,
        out_worker: *mut usize,
        out_workers: *mut usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let b = unsafe { try_ref(bus, "bus") }?;
            if !out_worker.is_null() {
                // SAFETY: non-NULL, valid for one write (caller contract).
                unsafe { out_worker.write(b.worker()) };
            }
            if !out_workers.is_null() {
                // SAFETY: non-NULL, valid for one write (caller contract).
                unsafe { out_workers.write(b.workers()) };
            }
            OK
        })
    }

    /// Publishes to `topic` on every worker: on this one now (`ctx` must be the context the
    /// handler was given with `bus`; the report is this worker's, as `tw_context_publish`
    /// gives it), on the others at their next poll (one shared copy), and with a cluster on
    /// the other processes (a full cluster queue or a Redis outage loses it for them only).
    ///
    /// Ownership: `topic` and `data` are borrowed for the call (`data` may point into the
    /// event's payload). `*out_report` (when not NULL) receives this worker's report; on
    /// failure it is untouched and nothing was sent.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_INVALID_UTF8` (nothing was sent anywhere),
    /// `TW_STATUS_INVALID_ARGUMENT` (unknown kind, or `ctx` is not this worker's context),
    /// `TW_STATUS_BUFFER_FULL` (another worker's sender queue is full: that worker and the
    /// ones after it missed the message), `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `bus` and `ctx` are NULL or the bus and context of the running handler call; a
    /// non-NULL `topic` is readable for `topic_len` bytes and a non-NULL `data` for `len`
    /// bytes; `out_report` is NULL or valid for writing a `tw_publish_report`.
    ///
    /// Thread safety: inside the handler call that was given `bus` and `ctx`.
    #[no_mangle]
    pub unsafe extern "C" fn tw_bus_publish(
        bus: *const tw_bus,
        ctx: *mut tw_context,
        topic: *const u8,
        topic_len: usize,
        kind: u32,
        data: *const u8,
        len: usize,
        out_report: *mut tw_publish_report,
    ) -> tw_status {
        // SAFETY: caller contract.
        let b = match unsafe { try_ref(bus, "bus") } {
            Ok(b) => b,
            Err(f) => return guard(|| Err(f)),
        };
        // SAFETY: caller contract.
        unsafe {
            with_ctx(ctx, |c| {
                if c.net.worker() != Some(b.worker()) {
                    return Err(Failure::invalid(format!(
                        "`ctx` is not the context of worker {}, whose bus this is",
                        b.worker()
                    )));
                }
                // SAFETY: caller contract.
                let topic = try_bytes(topic, topic_len, "topic")?;
                let kind = message_kind(kind)?;
                // SAFETY: caller contract.
                let data = try_bytes(data, len, "data")?;
                let report = b.publish(&mut c.net, topic, kind, data)?;
                if !out_report.is_null() {
                    // SAFETY: non-NULL, valid for one write (caller contract).
                    out_report.write(report.into());
                }
                OK
            })
        }
    }
}
