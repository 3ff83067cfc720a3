//! `tw_io`: a context on its own I/O thread (`tidewire_net::Background`), for programs whose
//! main thread must never wait on the network (game engines, GUI programs). The application
//! drains owned events with `tw_io_poll` (`tw_io_event`, released with
//! `tw_io_event_release`) and sends from any thread.

use std::ffi::{c_char, c_void, CString};
use std::mem::ManuallyDrop;
use std::ptr;
use std::time::Duration;

use tidewire_net::{
    Background, BackgroundOptions, ConnId, Event, ListenOptions, ListenerId, MessageKind,
    OwnedEvent,
};

use crate::config::tw_config;
use crate::conn::message_kind;
use crate::connect_options::tw_connect_options;
use crate::event::{convert, error_text, tw_event, tw_event_kind};
use crate::ffi::{
    free_handle, guard, guard_void, into_handle, millis, try_bytes, try_cstr, try_mut, try_out,
    try_ref, try_text, Failure, Opaque, OK,
};
use crate::ids::{tw_conn, tw_listener};
use crate::listen_options::tw_listen_options;
use crate::status::{status_of, tw_status};

/// A context running on its own I/O thread, made by `tw_io_new`, freed by `tw_io_free`.
/// Connection ids of a `tw_io` are its own (allocated by `tw_io_connect` without waiting,
/// or with a connection's `TW_EVENT_OPEN` for accepted ones); they mean nothing to a
/// `tw_context`.
#[allow(non_camel_case_types)]
pub struct tw_io {
    _private: [u8; 0],
}

// SAFETY: every `*mut tw_io` handed out is a `Box<Background>` from `tw_io_new`.
unsafe impl Opaque for tw_io {
    type Rust = Background;
}

/// One event of a `tw_io`, owned by the caller until `tw_io_event_release`.
///
/// `event` has the fields of a `tw_poll` event (`userdata` is always NULL; there is no
/// `TW_EVENT_REQUEST`, `TW_EVENT_HTTP_REQUEST` or `TW_EVENT_WAKE`; `TW_EVENT_STOPPED` is
/// the last event of all). Every pointer in it stays valid until the event is released,
/// across any number of `tw_io_poll` calls and even after `tw_io_free`. The other fields
/// are private: do not modify them, and release each event exactly once (releasing a
/// released or zeroed event is a no-op).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct tw_io_event {
    /// The event.
    pub event: tw_event,
    /// Private: what `tw_io_event_release` frees.
    pub _owner: *mut c_void,
    /// Private.
    pub _capacity: usize,
    /// Private.
    pub _owner_kind: u32,
}

/// `_owner` is nothing.
const OWNER_NONE: u32 = 0;
/// `_owner` is the buffer of a `Vec<u8>` of capacity `_capacity` (one allocation per
/// message: the one the I/O thread made).
const OWNER_BYTES: u32 = 1;
/// `_owner` is a `Box<Kept>`.
const OWNER_BOX: u32 = 2;

/// An event whose fields point into it, with the text of its error.
struct Kept {
    event: OwnedEvent,
    texts: Vec<CString>,
}

impl tw_io_event {
    fn empty() -> tw_io_event {
        tw_io_event {
            event: tw_event::new(tw_event_kind::TW_EVENT_WAKE),
            _owner: ptr::null_mut(),
            _capacity: 0,
            _owner_kind: OWNER_NONE,
        }
    }
}

/// Converts one owned event; its memory moves into the returned `tw_io_event`.
fn to_c(event: OwnedEvent) -> tw_io_event {
    match event {
        OwnedEvent::Message { conn, kind, data } => owned_bytes(data, |d| Event::Message {
            conn,
            kind,
            data: d,
        }),
        OwnedEvent::Ping { conn, data } => owned_bytes(data, |d| Event::Ping { conn, data: d }),
        OwnedEvent::Pong { conn, data } => owned_bytes(data, |d| Event::Pong { conn, data: d }),
        OwnedEvent::Writable { conn } => {
            let mut texts = Vec::new();
            tw_io_event {
                event: convert(&Event::Writable { conn }, &mut texts),
                ..tw_io_event::empty()
            }
        }
        other => boxed(other),
    }
}

fn owned_bytes(data: Vec<u8>, view: impl FnOnce(&[u8]) -> Event<'_>) -> tw_io_event {
    let mut texts = Vec::new();
    let event = convert(&view(&data), &mut texts);
    if data.capacity() == 0 {
        return tw_io_event {
            event,
            ..tw_io_event::empty()
        };
    }
    let mut data = ManuallyDrop::new(data);
    tw_io_event {
        event,
        _owner: data.as_mut_ptr().cast(),
        _capacity: data.capacity(),
        _owner_kind: OWNER_BYTES,
    }
}

fn boxed(event: OwnedEvent) -> tw_io_event {
    let mut kept = Box::new(Kept {
        event,
        texts: Vec::new(),
    });
    let Kept { event, texts } = &mut *kept;
    // Every pointer the C event gets points into `kept`'s heap data (strings, vectors, the
    // error), which does not move when the box does.
    let c = match event {
        OwnedEvent::Open {
            conn,
            listener,
            subprotocol,
            extensions,
            peer_addr,
            path,
            headers,
        } => convert(
            &Event::Open {
                conn: *conn,
                listener: *listener,
                subprotocol: subprotocol.as_deref(),
                extensions: extensions.as_deref(),
                peer_addr: *peer_addr,
                path,
                headers,
            },
            texts,
        ),
        OwnedEvent::Closed {
            conn,
            code,
            reason,
            clean,
            remote,
        } => convert(
            &Event::Closed {
                conn: *conn,
                code: *code,
                reason,
                clean: *clean,
                remote: *remote,
            },
            texts,
        ),
        OwnedEvent::Error { source, error } => convert(
            &Event::Error {
                source: *source,
                error,
            },
            texts,
        ),
        OwnedEvent::SendFailed { conn, error } => {
            convert(&Event::SendFailed { conn: *conn, error }, texts)
        }
        OwnedEvent::Reconnecting {
            conn,
            attempt,
            delay,
            error,
            close_code,
        } => convert(
            &Event::Reconnecting {
                conn: *conn,
                attempt: *attempt,
                delay: *delay,
                error: error.as_ref(),
                close_code: *close_code,
            },
            texts,
        ),
        OwnedEvent::Stopped { error } => {
            let mut e = tw_event::new(tw_event_kind::TW_EVENT_STOPPED);
            if let Some(error) = error {
                e.status = status_of(error);
                e.data = error_text(texts, error);
            }
            e
        }
        // Not boxed (see `to_c`); kept total.
        OwnedEvent::Message { .. }
        | OwnedEvent::Ping { .. }
        | OwnedEvent::Pong { .. }
        | OwnedEvent::Writable { .. } => tw_event::new(tw_event_kind::TW_EVENT_WAKE),
    };
    tw_io_event {
        event: c,
        _owner: Box::into_raw(kept).cast(),
        _capacity: 0,
        _owner_kind: OWNER_BOX,
    }
}

/// Frees what one event owns and leaves it zeroed.
///
/// # Safety
/// `e` was filled by `tw_io_poll` and not modified since (or is already released/zeroed).
unsafe fn release(e: &mut tw_io_event) {
    match e._owner_kind {
        OWNER_BYTES if !e._owner.is_null() => {
            // SAFETY: `_owner` and `_capacity` are a `Vec<u8>`'s buffer and capacity, given
            // up in `owned_bytes` and not freed since (the caller's contract); length 0 is
            // always valid for `u8`.
            drop(unsafe { Vec::from_raw_parts(e._owner.cast::<u8>(), 0, e._capacity) });
        }
        OWNER_BOX if !e._owner.is_null() => {
            // SAFETY: `_owner` is the `Box<Kept>` leaked in `boxed`, not freed since.
            drop(unsafe { Box::from_raw(e._owner.cast::<Kept>()) });
        }
        _ => {}
    }
    let kind = e.event.kind;
    *e = tw_io_event::empty();
    e.event.kind = kind;
}

impl tw_io {
    /// Creates a context (with `config`, NULL for the defaults) and starts its I/O thread.
    /// Name resolution hand-off, TCP, TLS handshakes, compression, timers and keepalive all
    /// run on that thread; the caller's threads drain events with `tw_io_poll` and send with
    /// `tw_io_send_*` without ever waiting on the network.
    ///
    /// `event_queue_limit` bounds the bytes of event payload queued toward the application
    /// (0: the default, 16 MiB; otherwise at least 64 KiB): above it the I/O thread pauses
    /// reading every connection (TCP then slows the peers down) until `tw_io_poll` has
    /// drained the queue to half of it. Nothing is dropped; the queue may exceed the limit by
    /// one poll's worth (a receive buffer plus at most the maximum message size of
    /// reassembled or inflated data). The command queue toward the I/O thread is bounded by
    /// `tw_config_set_sender_queue_limit`.
    ///
    /// Ownership: `config` is copied; on success `*out_io` is a new handle owned by the
    /// caller (free with `tw_io_free`); on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT` (`out_io`),
    /// `TW_STATUS_INVALID_ARGUMENT` (a config or limit out of range), `TW_STATUS_IO` (the
    /// poller or the thread could not be created), `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle; `out_io` is NULL or valid for writing a pointer.
    ///
    /// Thread safety: any thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_new(
        config: *const tw_config,
        event_queue_limit: usize,
        out_io: *mut *mut tw_io,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_io, "out_io") }?;
            let config = if config.is_null() {
                tidewire_net::Config::default()
            } else {
                // SAFETY: caller contract; non-NULL.
                unsafe { try_ref(config, "config") }?.clone()
            };
            let mut options = BackgroundOptions::default();
            if event_queue_limit != 0 {
                options.event_queue_limit = event_queue_limit;
            }
            let bg = Background::with_options(config, options)?;
            out.write(into_handle::<tw_io>(bg));
            OK
        })
    }

    /// Shuts down (as `tw_io_shutdown` with a grace of 1 s) and frees the handle. Events
    /// not yet taken by `tw_io_poll` are freed; events already taken stay valid until
    /// released. NULL is a no-op.
    ///
    /// Ownership: takes ownership of `io`; freeing twice is undefined behaviour.
    ///
    /// # Safety
    /// `io` is NULL or a live handle from `tw_io_new`.
    ///
    /// Thread safety: any thread, once no other thread uses this handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_free(io: *mut tw_io) {
        // SAFETY: caller contract.
        guard_void(|| unsafe { free_handle(io) })
    }

    /// Closes every connection with 1001, gives the close handshakes `grace_ms`, stops the
    /// I/O thread and joins it. The events of the closes and the final `TW_EVENT_STOPPED`
    /// stay readable with `tw_io_poll`; later commands return `TW_STATUS_SHUTTING_DOWN`.
    /// Calling it again does nothing.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_IO` (the I/O thread
    /// failed), `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `io` is NULL or a live handle.
    ///
    /// Thread safety: any thread, with no other call on this handle running.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_shutdown(io: *mut tw_io, grace_ms: u64) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_mut(io, "io") }?;
            bg.shutdown(millis(grace_ms))?;
            OK
        })
    }

    /// Listens on `host:port` (see `tw_context_listen`; a host name is resolved blocking).
    /// This is the one call of a `tw_io` that waits for its I/O thread: a short round trip
    /// to bind the socket, so that it can return the listener and its port. Call it at
    /// start-up, not per frame. Listeners of a `tw_io` accept by their options' rules;
    /// `tw_listen_options_set_handle_requests` and `_handle_http` are refused.
    ///
    /// Ownership: `host` is borrowed for the call; `options` (NULL for the defaults) is
    /// copied. On success `*out_listener` and, when `out_port` is not NULL, `*out_port` (the
    /// bound port) are written.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_INVALID_ARGUMENT`, `TW_STATUS_RESOLVE`, `TW_STATUS_IO`,
    /// `TW_STATUS_SHUTTING_DOWN`, `TW_STATUS_CONTEXT_GONE` (the I/O thread ended),
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `io` is NULL or a live handle; `host` is NULL or NUL-terminated; `options` is NULL or
    /// a live handle; `out_listener` is NULL or valid for writing a `tw_listener`; `out_port`
    /// is NULL or valid for writing a `uint16_t`.
    ///
    /// Thread safety: any thread, concurrently with other calls on this handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_listen(
        io: *const tw_io,
        host: *const c_char,
        port: u16,
        options: *const tw_listen_options,
        out_listener: *mut tw_listener,
        out_port: *mut u16,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_ref(io, "io") }?;
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_listener, "out_listener") }?;
            // SAFETY: caller contract.
            let host = unsafe { try_cstr(host, "host") }?;
            let options = if options.is_null() {
                ListenOptions::default()
            } else {
                // SAFETY: caller contract; non-NULL.
                unsafe { try_ref(options, "options") }?.clone()
            };
            let (id, addr) = bg.listen(host, port, options)?;
            out.write(id.0);
            if !out_port.is_null() {
                // SAFETY: caller contract; non-NULL.
                unsafe { out_port.write(addr.port()) };
            }
            OK
        })
    }

    /// Stops listening; a stale id is reported by a `TW_EVENT_ERROR` about the listener.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_SHUTTING_DOWN`,
    /// `TW_STATUS_CONTEXT_GONE`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `io` is NULL or a live handle.
    ///
    /// Thread safety: any thread, concurrently with other calls on this handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_unlisten(io: *const tw_io, listener: tw_listener) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_ref(io, "io") }?;
            bg.unlisten(ListenerId(listener))?;
            OK
        })
    }

    /// Opens a client connection to a `ws://` or `wss://` URL and returns its id at once,
    /// without waiting for the I/O thread (the id is allocated here). The URL and options
    /// are checked here; everything else is reported by the connection's `TW_EVENT_OPEN` or
    /// terminal `TW_EVENT_ERROR` (as for `tw_context_connect`). Sending waits for the open
    /// (a send before it comes back as `TW_EVENT_SEND_FAILED`).
    ///
    /// Ownership: `url` is borrowed for the call; `options` (NULL for the defaults) is
    /// copied. On success `*out_conn` is written.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_INVALID_URL`, `TW_STATUS_INVALID_ARGUMENT`, `TW_STATUS_TLS` (TLS settings),
    /// `TW_STATUS_BUFFER_FULL` (command queue), `TW_STATUS_SHUTTING_DOWN`,
    /// `TW_STATUS_CONTEXT_GONE`, `TW_STATUS_IO`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `io` is NULL or a live handle; `url` is NULL or NUL-terminated; `options` is NULL or
    /// a live handle; `out_conn` is NULL or valid for writing a `tw_conn`.
    ///
    /// Thread safety: any thread, concurrently with other calls on this handle; `options`
    /// must not be mutated meanwhile.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_connect(
        io: *const tw_io,
        url: *const c_char,
        options: *const tw_connect_options,
        out_conn: *mut tw_conn,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_ref(io, "io") }?;
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_conn, "out_conn") }?;
            // SAFETY: caller contract.
            let url = unsafe { try_cstr(url, "url") }?;
            let options = if options.is_null() {
                tidewire_net::ConnectOptions::default()
            } else {
                // SAFETY: caller contract; non-NULL.
                unsafe { try_ref(options, "options") }?.resolve()?
            };
            let id = bg.connect(url, options)?;
            out.write(id.0);
            OK
        })
    }

    /// Queues a text message (`len` bytes of UTF-8, checked here) for `conn`. Never waits
    /// for the network: the I/O thread sends it. A refusal there (stale id, not open,
    /// output buffer full) comes back as `TW_EVENT_SEND_FAILED`.
    ///
    /// Ownership: `text` is copied during the call.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_INVALID_UTF8`, `TW_STATUS_BUFFER_FULL` (the command
    /// queue is at `tw_config_set_sender_queue_limit`), `TW_STATUS_SHUTTING_DOWN`,
    /// `TW_STATUS_CONTEXT_GONE`, `TW_STATUS_IO`, `TW_STATUS_NULL_ARGUMENT`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `io` is NULL or a live handle; a non-NULL `text` is readable for `len` bytes.
    ///
    /// Thread safety: any thread, concurrently with other calls on this handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_send_text(
        io: *const tw_io,
        conn: tw_conn,
        text: *const c_char,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_ref(io, "io") }?;
            // SAFETY: caller contract.
            let text = unsafe { try_text(text, len, "text") }?;
            bg.send(ConnId(conn), MessageKind::Text, text.as_bytes())?;
            OK
        })
    }

    /// Queues a binary message for `conn`; as `tw_io_send_text` without the UTF-8 check.
    ///
    /// Ownership: `data` is copied during the call.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_BUFFER_FULL`, `TW_STATUS_SHUTTING_DOWN`,
    /// `TW_STATUS_CONTEXT_GONE`, `TW_STATUS_IO`, `TW_STATUS_NULL_ARGUMENT`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `io` is NULL or a live handle; a non-NULL `data` is readable for `len` bytes.
    ///
    /// Thread safety: any thread, concurrently with other calls on this handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_send_binary(
        io: *const tw_io,
        conn: tw_conn,
        data: *const u8,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_ref(io, "io") }?;
            // SAFETY: caller contract.
            let data = unsafe { try_bytes(data, len, "data") }?;
            bg.send(ConnId(conn), MessageKind::Binary, data)?;
            OK
        })
    }

    /// Queues a message of `kind` (`TW_MESSAGE_TEXT` or `TW_MESSAGE_BINARY`); as
    /// `tw_io_send_text` or `tw_io_send_binary`.
    ///
    /// Ownership: `data` is copied during the call.
    ///
    /// Returns as `tw_io_send_text`, and `TW_STATUS_INVALID_ARGUMENT` for an unknown kind.
    ///
    /// # Safety
    /// `io` is NULL or a live handle; a non-NULL `data` is readable for `len` bytes.
    ///
    /// Thread safety: any thread, concurrently with other calls on this handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_send(
        io: *const tw_io,
        conn: tw_conn,
        kind: u32,
        data: *const u8,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_ref(io, "io") }?;
            let kind = message_kind(kind)?;
            // SAFETY: caller contract.
            let data = unsafe { try_bytes(data, len, "data") }?;
            if kind == MessageKind::Text {
                crate::ffi::utf8(data, "data")?;
            }
            bg.send(ConnId(conn), kind, data)?;
            OK
        })
    }

    /// Queues a ping (at most 125 bytes; a longer one comes back as
    /// `TW_EVENT_SEND_FAILED`).
    ///
    /// Ownership: `data` is copied during the call.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_BUFFER_FULL`, `TW_STATUS_SHUTTING_DOWN`,
    /// `TW_STATUS_CONTEXT_GONE`, `TW_STATUS_IO`, `TW_STATUS_NULL_ARGUMENT`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `io` is NULL or a live handle; a non-NULL `data` is readable for `len` bytes.
    ///
    /// Thread safety: any thread, concurrently with other calls on this handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_ping(
        io: *const tw_io,
        conn: tw_conn,
        data: *const u8,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_ref(io, "io") }?;
            // SAFETY: caller contract.
            let data = unsafe { try_bytes(data, len, "data") }?;
            bg.ping(ConnId(conn), data)?;
            OK
        })
    }

    /// Queues the start of the closing handshake for `conn` (as `tw_conn_close`; a
    /// connection not open yet is dropped and ends with `TW_EVENT_ERROR`).
    ///
    /// Ownership: `reason` (`len` bytes of UTF-8) is copied during the call.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_INVALID_UTF8`, `TW_STATUS_BUFFER_FULL`,
    /// `TW_STATUS_SHUTTING_DOWN`, `TW_STATUS_CONTEXT_GONE`, `TW_STATUS_IO`,
    /// `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `io` is NULL or a live handle; a non-NULL `reason` is readable for `len` bytes.
    ///
    /// Thread safety: any thread, concurrently with other calls on this handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_close(
        io: *const tw_io,
        conn: tw_conn,
        code: u16,
        reason: *const c_char,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_ref(io, "io") }?;
            // SAFETY: caller contract.
            let reason = unsafe { try_text(reason, len, "reason") }?;
            bg.close(ConnId(conn), code, reason)?;
            OK
        })
    }

    /// Moves up to `max` queued events into `events`. With `timeout_ms` 0 it never waits
    /// (once per frame); otherwise it waits at most `timeout_ms` (negative: without limit)
    /// for the first event when none is queued, and returns as soon as there is one.
    /// Per connection, events come in order; each event is delivered once.
    ///
    /// Ownership: `events` is the caller's array of `max` (at least 1) entries; entries
    /// `[0, *out_count)` are written (the others untouched) and each then owns its data until
    /// `tw_io_event_release` (or `tw_io_events_release`). Forgetting to release leaks it.
    ///
    /// Returns `TW_STATUS_OK` (possibly with `*out_count` 0), `TW_STATUS_NULL_ARGUMENT`,
    /// `TW_STATUS_INVALID_ARGUMENT` (`max` is 0), `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `io` is NULL or a live handle; `events` is NULL or valid for writing `max` entries;
    /// `out_count` is NULL or valid for writing a size_t.
    ///
    /// Thread safety: any thread, concurrently with the other calls on this handle (sends
    /// included). Two threads polling at once split the events between them, so one thread
    /// should drain.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_poll(
        io: *const tw_io,
        events: *mut tw_io_event,
        max: usize,
        timeout_ms: i32,
        out_count: *mut usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_ref(io, "io") }?;
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_count, "out_count") }?;
            if events.is_null() {
                return Err(Failure::null("events"));
            }
            if max == 0 {
                return Err(Failure::invalid("max must be at least 1"));
            }
            let mut first = None;
            if timeout_ms != 0 && bg.pending_events() == 0 {
                let wait = u64::try_from(timeout_ms)
                    .map(Duration::from_millis)
                    .unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
                first = bg.recv_timeout(wait);
            }
            let mut n = 0;
            while n < max {
                let Some(e) = first.take().or_else(|| bg.try_recv()) else {
                    break;
                };
                // SAFETY: `events` is valid for `max` writes and `n < max`; the entry may be
                // uninitialised, so it is written without reading or dropping the old one.
                unsafe { events.add(n).write(to_c(e)) };
                n += 1;
            }
            out.write(n);
            OK
        })
    }

    /// Frees what one event owns and zeroes its pointers. Releasing a released or zeroed
    /// event does nothing; NULL is a no-op.
    ///
    /// Ownership: ends the event's ownership of its data.
    ///
    /// # Safety
    /// `event` is NULL or an entry written by `tw_io_poll` and not modified since (or
    /// released, or zeroed).
    ///
    /// Thread safety: any thread, even after `tw_io_free`; one call per event.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_event_release(event: *mut tw_io_event) {
        guard_void(|| {
            // SAFETY: caller contract.
            if let Some(e) = unsafe { event.as_mut() } {
                // SAFETY: caller contract.
                unsafe { release(e) };
            }
        })
    }

    /// `tw_io_event_release` for `count` events in a row.
    ///
    /// Ownership: ends the events' ownership of their data.
    ///
    /// # Safety
    /// `events` is NULL or valid for `count` entries, each as for `tw_io_event_release`.
    ///
    /// Thread safety: any thread, even after `tw_io_free`; one call per event.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_events_release(events: *mut tw_io_event, count: usize) {
        guard_void(|| {
            if events.is_null() {
                return;
            }
            for i in 0..count {
                // SAFETY: caller contract: `events` is valid for `count` entries.
                unsafe { release(&mut *events.add(i)) };
            }
        })
    }

    /// The number of events waiting to be taken by `tw_io_poll`.
    ///
    /// Ownership: `*out_count` is written on success; nothing is handed over.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `io` is NULL or a live handle; `out_count` is NULL or valid for writing a size_t.
    ///
    /// Thread safety: any thread, concurrently with other calls on this handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_io_pending(io: *const tw_io, out_count: *mut usize) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let bg = unsafe { try_ref(io, "io") }?;
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_count, "out_count") }?;
            out.write(bg.pending_events());
            OK
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_own_their_data_until_released() {
        let mut e = to_c(OwnedEvent::Message {
            conn: ConnId(7),
            kind: MessageKind::Text,
            data: b"hello".to_vec(),
        });
        assert_eq!(e._owner_kind, OWNER_BYTES);
        assert_eq!(e.event.conn, 7);
        // SAFETY: written by to_c just above.
        let data = unsafe { std::slice::from_raw_parts(e.event.data.data, e.event.data.len) };
        assert_eq!(data, b"hello");
        // SAFETY: as above; released twice on purpose.
        unsafe {
            release(&mut e);
            release(&mut e);
        }
        assert!(e._owner.is_null());
        let mut s = to_c(OwnedEvent::Stopped {
            error: Some(tidewire_net::Error::Aborted),
        });
        assert_eq!(s.event.kind, tw_event_kind::TW_EVENT_STOPPED);
        assert_ne!(s.event.status, tw_status::TW_STATUS_OK);
        // SAFETY: written by to_c.
        unsafe { release(&mut s) };
    }
}
