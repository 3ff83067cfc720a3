//! `tw_context`: one `tidewire_net::Context` plus what the C face keeps beside it: the
//! events of the current poll cycle and how many of them were handed out, the texts of error
//! events, and the per-connection user data.

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, c_void, CString};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};

use tidewire_net::{ConnId, Context, Error, Events, ListenOptions};

use crate::config::tw_config;
use crate::connect_options::tw_connect_options;
use crate::ffi::{
    free_handle, guard, guard_void, into_handle, millis, try_cstr, try_mut, try_out, try_ref,
    Checked, Failure, Opaque, OK,
};
use crate::ids::{tw_conn, tw_listener};
use crate::listen_options::tw_listen_options;
use crate::sender::tw_sender;
use crate::status::tw_status;

/// The runtime: owns the sockets, TLS state and timers of its listeners and connections,
/// and is driven by `tw_poll` on the caller's thread. Create with `tw_context_new`, free with
/// `tw_context_free`.
#[allow(non_camel_case_types)]
pub struct tw_context {
    _private: [u8; 0],
}

/// Hashes connection ids (already unique integers) with one multiplication.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The runtime context behind a `tw_context`: its own (from `tw_context_new`), or a
/// worker's of a `tw_server`, lent to the C face for the duration of one handler call.
// `Ctx` is boxed already; boxing the owned context too would add a pointer hop to every call.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Net {
    Owned(Context),
    /// Worker `worker`'s context while its handler runs; NULL between handler calls.
    Lent {
        context: *mut Context,
        worker: usize,
    },
}

impl Net {
    /// The worker number when this is a worker's context.
    pub(crate) fn worker(&self) -> Option<usize> {
        match self {
            Net::Owned(_) => None,
            Net::Lent { worker, .. } => Some(*worker),
        }
    }

    /// False for a worker's context outside its handler calls.
    fn usable(&self) -> bool {
        match self {
            Net::Owned(_) => true,
            Net::Lent { context, .. } => !context.is_null(),
        }
    }
}

impl std::ops::Deref for Net {
    type Target = Context;
    fn deref(&self) -> &Context {
        match self {
            Net::Owned(c) => c,
            // SAFETY: a non-NULL lent pointer is the worker's `&mut Context` of the handler
            // call running now on this thread (`with_ctx` refuses a NULL one first).
            Net::Lent { context, .. } => unsafe { context.as_ref() }
                .expect("a worker's context is only usable inside its handler"),
        }
    }
}

impl std::ops::DerefMut for Net {
    fn deref_mut(&mut self) -> &mut Context {
        match self {
            Net::Owned(c) => c,
            // SAFETY: as in `deref`; the handler call lent it exclusively.
            Net::Lent { context, .. } => unsafe { context.as_mut() }
                .expect("a worker's context is only usable inside its handler"),
        }
    }
}

/// Connections answered with `tw_conn_reject` / `tw_conn_respond` (see `Ctx::answered`).
///
/// cbindgen:ignore
pub(crate) type Answered = HashSet<u64, BuildHasherDefault<IdHasher>>;

/// The runtime id of a connection the application may still use: `TW_STATUS_STALE_ID`
/// for ids it answered (reject / respond), whose end it will never hear of. Borrows only
/// the answered set, so that `c.net` may be borrowed mutably beside it.
pub(crate) fn live_id(answered: &Answered, conn: tw_conn) -> Checked<ConnId> {
    if answered.contains(&conn) {
        return Err(Error::StaleId.into());
    }
    Ok(ConnId(conn))
}

/// The user data of connections, by id.
///
/// cbindgen:ignore
pub(crate) type UserData = HashMap<u64, *mut c_void, BuildHasherDefault<IdHasher>>;

pub(crate) struct Ctx {
    pub(crate) net: Net,
    /// The events of the current cycle; `events[cursor..]` are not delivered yet.
    pub(crate) events: Events,
    pub(crate) cursor: usize,
    /// NUL-terminated texts of this cycle's error events (their `data` points here).
    pub(crate) texts: Vec<CString>,
    /// User data of connections, removed when their terminal event is delivered (or when
    /// they are rejected / answered, after which no event comes).
    pub(crate) userdata: UserData,
    /// Connections answered with `tw_conn_reject` / `tw_conn_respond`: the runtime still
    /// flushes their answer, but for the application they are over, so their ids are
    /// stale at once. Pruned when the runtime drops them.
    pub(crate) answered: Answered,
    /// A panic happened inside: the runtime's state may be half-updated, so every later
    /// call is refused with `TW_STATUS_INTERNAL`.
    pub(crate) poisoned: bool,
}

impl Ctx {
    /// Whether `conn` names a connection the application may still use (its terminal event
    /// may be ready but not yet delivered).
    pub(crate) fn alive(&self, conn: tw_conn) -> bool {
        !self.answered.contains(&conn) && self.net.buffered_amount(ConnId(conn)).is_ok()
    }

    /// Forgets answered connections the runtime has dropped.
    pub(crate) fn prune_answered(&mut self) {
        if !self.answered.is_empty() {
            let net = &self.net;
            self.answered
                .retain(|id| net.buffered_amount(ConnId(*id)).is_ok());
        }
    }
}

// SAFETY: every `*mut tw_context` handed out is a `Box<Ctx>` from `tw_context_new`.
unsafe impl Opaque for tw_context {
    type Rust = Ctx;
}

fn poisoned() -> Failure {
    Failure::new(
        tw_status::TW_STATUS_INTERNAL,
        "the context hit an internal error earlier and can only be freed",
    )
}

fn unusable(c: &Ctx) -> Option<Failure> {
    if c.poisoned {
        return Some(poisoned());
    }
    if !c.net.usable() {
        return Some(Failure::invalid(
            "a worker's tw_context is only usable inside its handler call, on its thread",
        ));
    }
    None
}

/// Runs a body that uses a context exclusively. A panic inside poisons the context.
///
/// # Safety
/// `ctx` is NULL or a live handle used by nobody else during the call.
pub(crate) unsafe fn with_ctx(
    ctx: *mut tw_context,
    body: impl FnOnce(&mut Ctx) -> Checked<tw_status>,
) -> tw_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { try_mut(ctx, "ctx") }?;
        if let Some(f) = unusable(c) {
            return Err(f);
        }
        match catch_unwind(AssertUnwindSafe(|| body(&mut *c))) {
            Ok(r) => r,
            Err(_) => {
                c.poisoned = true;
                Err(Failure::internal())
            }
        }
    })
}

/// Runs a body that only reads a context.
///
/// # Safety
/// `ctx` is NULL or a live handle that nobody mutates during the call.
pub(crate) unsafe fn with_ctx_ref(
    ctx: *const tw_context,
    body: impl FnOnce(&Ctx) -> Checked<tw_status>,
) -> tw_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { try_ref(ctx, "ctx") }?;
        if let Some(f) = unusable(c) {
            return Err(f);
        }
        body(c)
    })
}

impl tw_context {
    /// Creates a context (a mio poller and its waker; no thread is started until a host
    /// name must be resolved).
    ///
    /// Ownership: `config` is copied and may be NULL for the defaults; the caller keeps
    /// owning it. On success `*out_ctx` is a new handle owned by the caller (free with
    /// `tw_context_free`); on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT` (`out_ctx`),
    /// `TW_STATUS_INVALID_ARGUMENT` (low water mark above high water mark), `TW_STATUS_IO`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle; `out_ctx` is NULL or valid for writing a pointer.
    ///
    /// Thread safety: may be called from any thread; the new context belongs to the calling
    /// thread until handed to another one.
    #[no_mangle]
    pub unsafe extern "C" fn tw_context_new(
        config: *const tw_config,
        out_ctx: *mut *mut tw_context,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_ctx, "out_ctx") }?;
            let config = if config.is_null() {
                tidewire_net::Config::default()
            } else {
                // SAFETY: caller contract; non-NULL.
                unsafe { try_ref(config, "config") }?.clone()
            };
            let net = Context::new(config)?;
            let events = net.new_events();
            let ctx = Ctx {
                net: Net::Owned(net),
                events,
                cursor: 0,
                texts: Vec::new(),
                userdata: HashMap::default(),
                answered: HashSet::default(),
                poisoned: false,
            };
            out.write(into_handle::<tw_context>(ctx));
            OK
        })
    }

    /// Frees a context at once: every connection's socket is closed without a close
    /// handshake, listeners stop, and ids and event payloads of this context become
    /// invalid. For a clean end, call `tw_context_shutdown` and poll until
    /// `tw_context_connection_count` is 0 first. NULL is a no-op. Senders of this context
    /// stay valid handles and answer `TW_STATUS_CONTEXT_GONE`. User data pointers are not
    /// touched (the library never owned them).
    ///
    /// Ownership: takes ownership of `ctx`; freeing twice is undefined behaviour. A
    /// worker's context (the `ctx` of a `tw_server` handler) belongs to its server and is
    /// never freed here: the call only sets `tw_last_error`.
    ///
    /// # Safety
    /// `ctx` is NULL or a live handle from `tw_context_new`.
    ///
    /// Thread safety: the thread that owns the context, with no other call on it running.
    #[no_mangle]
    pub unsafe extern "C" fn tw_context_free(ctx: *mut tw_context) {
        guard_void(|| {
            // SAFETY: caller contract.
            if let Ok(c) = unsafe { try_ref(ctx.cast_const(), "ctx") } {
                if c.net.worker().is_some() {
                    crate::status::set_last_error(
                        "tw_context_free: a worker's context belongs to its tw_server",
                    );
                    return;
                }
            }
            // SAFETY: caller contract.
            unsafe { free_handle(ctx) }
        })
    }

    /// The poller's file descriptor, for host loops (epoll, libuv, asyncio, a game engine):
    /// it becomes readable when `tw_poll(ctx, events, max, 0)` has work. Wait on it with the
    /// deadline from `tw_context_next_timeout_ms`, then call `tw_poll` with timeout 0.
    ///
    /// Ownership: the descriptor belongs to the context: do not close or read it; it is
    /// valid until `tw_context_free`. On failure `*out_fd` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `ctx` is NULL or a live handle; `out_fd` is NULL or valid for writing an int.
    ///
    /// Thread safety: the thread that owns the context.
    #[no_mangle]
    pub unsafe extern "C" fn tw_context_fd(
        ctx: *const tw_context,
        out_fd: *mut c_int,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            with_ctx_ref(ctx, |c| {
                // SAFETY: caller contract.
                let out = try_out(out_fd, "out_fd")?;
                out.write(c.net.fd());
                OK
            })
        }
    }

    /// How long a host loop may wait on `tw_context_fd` before calling `tw_poll` again, in
    /// milliseconds rounded up: 0 when work is pending (events not yet delivered, output to
    /// flush), -1 when no timer is armed (wait for the descriptor alone).
    ///
    /// Ownership: on failure `*out_ms` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `ctx` is NULL or a live handle; `out_ms` is NULL or valid for writing an int32_t.
    ///
    /// Thread safety: the thread that owns the context.
    #[no_mangle]
    pub unsafe extern "C" fn tw_context_next_timeout_ms(
        ctx: *const tw_context,
        out_ms: *mut i32,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            with_ctx_ref(ctx, |c| {
                // SAFETY: caller contract.
                let out = try_out(out_ms, "out_ms")?;
                let ms = if c.cursor < c.events.len() {
                    0
                } else {
                    match c.net.next_timeout() {
                        None => -1,
                        Some(d) => {
                            // Round up: waking a little late is harmless, waking early
                            // spins the host loop until the deadline.
                            let ms = d.as_nanos().div_ceil(1_000_000);
                            i32::try_from(ms).unwrap_or(i32::MAX)
                        }
                    }
                };
                out.write(ms);
                OK
            })
        }
    }

    /// Starts shutting down: stops every listener, sends close 1001 on every open
    /// connection, drops the ones not open yet, and gives the close handshakes `grace_ms`;
    /// then the next `tw_poll` drops what is left (`TW_EVENT_CLOSE` with 1006). Keep calling
    /// `tw_poll` until `tw_context_connection_count` gives 0. Later listens and connects
    /// return `TW_STATUS_SHUTTING_DOWN`. Calling it again can only shorten the grace.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `ctx` is NULL or a live handle.
    ///
    /// Thread safety: the thread that owns the context (other threads use a sender's
    /// `tw_sender_wake` to ask the owner to do it).
    #[no_mangle]
    pub unsafe extern "C" fn tw_context_shutdown(ctx: *mut tw_context, grace_ms: u64) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            with_ctx(ctx, |c| {
                c.net.shutdown(millis(grace_ms));
                OK
            })
        }
    }

    /// Connections of every kind the context holds (connecting, handshaking, open,
    /// closing), including ones whose terminal event is ready but not yet delivered.
    ///
    /// Ownership: on failure `*out_count` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `ctx` is NULL or a live handle; `out_count` is NULL or valid for writing a size_t.
    ///
    /// Thread safety: the thread that owns the context.
    #[no_mangle]
    pub unsafe extern "C" fn tw_context_connection_count(
        ctx: *const tw_context,
        out_count: *mut usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            with_ctx_ref(ctx, |c| {
                // SAFETY: caller contract.
                let out = try_out(out_count, "out_count")?;
                let undelivered = c.events.len().saturating_sub(c.cursor);
                // Ended connections whose terminal event is still queued count too, so a
                // shutdown loop keeps polling until it has seen every end.
                let pending_ends = if undelivered == 0 {
                    0
                } else {
                    (c.cursor..c.events.len())
                        .filter_map(|i| c.events.get(i))
                        .filter(|e| e.is_terminal())
                        .count()
                };
                out.write(c.net.connection_count() + pending_ends);
                OK
            })
        }
    }

    /// Listeners the context holds.
    ///
    /// Ownership: on failure `*out_count` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `ctx` is NULL or a live handle; `out_count` is NULL or valid for writing a size_t.
    ///
    /// Thread safety: the thread that owns the context.
    #[no_mangle]
    pub unsafe extern "C" fn tw_context_listener_count(
        ctx: *const tw_context,
        out_count: *mut usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            with_ctx_ref(ctx, |c| {
                // SAFETY: caller contract.
                let out = try_out(out_count, "out_count")?;
                out.write(c.net.listener_count());
                OK
            })
        }
    }

    /// Listens on `host:port`. `host` is an IP literal (`127.0.0.1`, `::1`, `0.0.0.0`,
    /// `::`) or a name resolved here with the system resolver (this blocks: call it at
    /// start-up). Port 0 picks a free port: read it with `tw_listener_port`.
    ///
    /// Ownership: `host` (NUL-terminated UTF-8) is borrowed for the call; `options` is
    /// copied and may be NULL for the defaults. On success `*out_listener` is the new
    /// listener's id; on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_RESOLVE`, `TW_STATUS_IO` (address in use, permission),
    /// `TW_STATUS_SHUTTING_DOWN`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `ctx` is NULL or a live handle; `host` is NULL or NUL-terminated; `options` is NULL
    /// or a live handle; `out_listener` is NULL or valid for writing a `tw_listener`.
    ///
    /// Thread safety: the thread that owns the context.
    #[no_mangle]
    pub unsafe extern "C" fn tw_context_listen(
        ctx: *mut tw_context,
        host: *const c_char,
        port: u16,
        options: *const tw_listen_options,
        out_listener: *mut tw_listener,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            with_ctx(ctx, |c| {
                // SAFETY: caller contract.
                let out = try_out(out_listener, "out_listener")?;
                // SAFETY: caller contract.
                let host = try_cstr(host, "host")?;
                let options = if options.is_null() {
                    ListenOptions::default()
                } else {
                    // SAFETY: caller contract; non-NULL.
                    try_ref(options, "options")?.clone()
                };
                let id = c.net.listen(host, port, options)?;
                out.write(id.0);
                OK
            })
        }
    }

    /// Opens a client connection to a `ws://` or `wss://` URL. Returns at once: name
    /// resolution, TCP, TLS and the upgrade run inside later `tw_poll` calls, which report
    /// `TW_EVENT_OPEN`, or a terminal `TW_EVENT_ERROR` whose `status` says what failed
    /// (`TW_STATUS_RESOLVE`, `_CONNECT`, `_CONNECT_TIMEOUT`, `_TLS`, `_HANDSHAKE_REJECTED`
    /// with the HTTP status, ...). The id is usable at once (user data, close); sending
    /// waits for the open.
    ///
    /// Ownership: `url` (NUL-terminated UTF-8) is borrowed for the call; `options` may be
    /// NULL for the defaults and is copied (its TLS setup is built on first use and shared
    /// with later connects). On success `*out_conn` is the new connection's id; on failure
    /// it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_INVALID_URL`, `TW_STATUS_INVALID_ARGUMENT` or `TW_STATUS_HANDSHAKE` (a
    /// header or subprotocol that cannot be sent), `TW_STATUS_TLS` (TLS settings),
    /// `TW_STATUS_TOO_MANY_CONNECTIONS`, `TW_STATUS_SHUTTING_DOWN`, `TW_STATUS_IO`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `ctx` is NULL or a live handle; `url` is NULL or NUL-terminated; `options` is NULL
    /// or a live handle; `out_conn` is NULL or valid for writing a `tw_conn`.
    ///
    /// Thread safety: the thread that owns the context; `options` must not be mutated
    /// meanwhile.
    #[no_mangle]
    pub unsafe extern "C" fn tw_context_connect(
        ctx: *mut tw_context,
        url: *const c_char,
        options: *const tw_connect_options,
        out_conn: *mut tw_conn,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            with_ctx(ctx, |c| {
                // SAFETY: caller contract.
                let out = try_out(out_conn, "out_conn")?;
                // SAFETY: caller contract.
                let url = try_cstr(url, "url")?;
                let options = if options.is_null() {
                    tidewire_net::ConnectOptions::default()
                } else {
                    // SAFETY: caller contract; non-NULL.
                    try_ref(options, "options")?.resolve()?
                };
                let id = c.net.connect(url, options)?;
                out.write(id.0);
                OK
            })
        }
    }

    /// Creates a sender: a handle through which any thread may send to and close this
    /// context's connections (see `tw_sender_send_text`).
    ///
    /// Ownership: on success `*out_sender` is a new handle owned by the caller, to be
    /// freed with `tw_sender_free`; it may outlive the context (it then answers
    /// `TW_STATUS_CONTEXT_GONE`). On failure `*out_sender` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `ctx` is NULL or a live handle; `out_sender` is NULL or valid for writing a pointer.
    ///
    /// Thread safety: the thread that owns the context; the sender itself may then be used
    /// from any thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_context_sender(
        ctx: *const tw_context,
        out_sender: *mut *mut tw_sender,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            with_ctx_ref(ctx, |c| {
                // SAFETY: caller contract.
                let out = try_out(out_sender, "out_sender")?;
                out.write(into_handle::<tw_sender>(c.net.sender()));
                OK
            })
        }
    }
}
