//! `tw_event` and `tw_poll`: the runtime's events converted to one flat C struct.
//!
//! The context keeps the runtime's `Events` of the current cycle and how many were handed
//! out. `tw_poll` first delivers what is left of the cycle (when the caller's array was
//! smaller than the number of events), and only runs a new cycle once everything was
//! delivered, so no event is lost or delivered twice, and payloads stay where the runtime
//! put them (no copy).

use std::ffi::{c_void, CString};
use std::ptr;
use std::time::Duration;

use tidewire_net::{Event, MessageKind, Source};

use crate::bytes::tw_bytes;
use crate::context::{tw_context, with_ctx, Ctx, UserData};
use crate::ffi::{try_out, Failure, OK};
use crate::ids::{tw_conn, tw_listener};
use crate::request::tw_request;
use crate::status::{status_of, tw_status};

/// What a `tw_event` reports. In C the type is `uint32_t`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tw_event_kind {
    /// A valid upgrade request on a listener with `tw_listen_options_set_handle_requests`:
    /// `conn`, `listener`, `request`. Answer with `tw_conn_accept` or `tw_conn_reject`.
    TW_EVENT_REQUEST = 1,
    /// A plain HTTP request on a listener with `tw_listen_options_set_handle_http`: `conn`,
    /// `listener`, `request`. Answer with `tw_conn_respond`; no further event comes for it.
    TW_EVENT_HTTP_REQUEST = 2,
    /// The opening handshake completed: `conn`, `listener` (0 for client connections),
    /// `subprotocol` and `extensions` (`data` NULL when none), `path`.
    TW_EVENT_OPEN = 3,
    /// A whole message: `conn`, `message_kind`, `data` (text is valid UTF-8).
    TW_EVENT_MESSAGE = 4,
    /// A ping arrived (the pong is already queued): `conn`, `data`.
    TW_EVENT_PING = 5,
    /// A pong arrived: `conn`, `data`.
    TW_EVENT_PONG = 6,
    /// The output buffer drained to the low water mark after a send returned
    /// `TW_STATUS_AGAIN`: sending may go on. `conn`.
    TW_EVENT_WRITABLE = 7,
    /// Terminal: the connection is over. `conn`, `close_code` (the peer's code, 1005 when
    /// it sent none, the code we failed the connection with when the peer broke the
    /// protocol, 1006 when the transport ended without a close frame), `data` (the reason,
    /// UTF-8), `clean` (the closing handshake completed). Close is never an error.
    TW_EVENT_CLOSE = 8,
    /// Something failed: `status`, `data` (a NUL-terminated UTF-8 description), and either
    /// `conn` (terminal: the connection never opened; `http_status` is set when the server
    /// answered the upgrade with another status) or `listener` (a report: it keeps
    /// listening).
    TW_EVENT_ERROR = 9,
    /// A command from a sender could not be applied (connection gone or closing, buffer
    /// full, invalid payload): `conn`, `status`, `data` (description). Not terminal.
    TW_EVENT_SEND_FAILED = 10,
    /// `tw_sender_wake` was called.
    TW_EVENT_WAKE = 11,
    /// `tw_io_poll` only, always the last event of a `tw_io`: its I/O thread ended, after
    /// `tw_io_shutdown` (`status` `TW_STATUS_OK`) or because the poller failed (`status` and
    /// `data` say how).
    TW_EVENT_STOPPED = 12,
    /// A client connection with `tw_connect_options_set_reconnect` failed or ended and will
    /// try again: `conn` (the same id, still valid: a reconnected connection keeps its id
    /// and its user data), `attempt` (1, 2, ... since the last reset), `delay_ms` (the wait
    /// before that attempt). Not terminal: it takes the place of the `TW_EVENT_CLOSE` or
    /// `TW_EVENT_ERROR` the connection would have ended with. The cause: an open
    /// connection that ended has `close_code` (1006 when the transport broke) and
    /// `status` `TW_STATUS_OK`; one that failed before opening has `status`, `data` (a
    /// NUL-terminated description) and `http_status` as a `TW_EVENT_ERROR` would. Next
    /// comes `TW_EVENT_OPEN` (same `conn`), another `TW_EVENT_RECONNECTING`, or a terminal
    /// `TW_EVENT_ERROR`. `tw_conn_close` or `tw_conn_stop_reconnecting` stop it.
    TW_EVENT_RECONNECTING = 13,
}

/// The type of a message. In C the type is `uint32_t`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tw_message_kind {
    /// Not a message event.
    TW_MESSAGE_NONE = 0,
    /// UTF-8 text.
    TW_MESSAGE_TEXT = 1,
    /// Binary data.
    TW_MESSAGE_BINARY = 2,
}

/// One event, written by `tw_poll` (or given to a `tw_server` handler). Fields that do not
/// apply to the event's `kind` are 0, NULL or `{NULL, 0}`.
///
/// Lifetime: every pointer in it (`data`, `subprotocol`, `extensions`, `path`, `request`)
/// is owned by the context and valid until the next `tw_poll` on the same context (or
/// `tw_context_free`); in a `tw_server` handler, until the handler returns. Copy what must
/// live longer. `userdata` is the caller's own pointer.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tw_event {
    /// What happened (`TW_EVENT_*`).
    pub kind: tw_event_kind,
    /// `TW_EVENT_ERROR`, `TW_EVENT_SEND_FAILED`: what failed. Otherwise `TW_STATUS_OK`.
    pub status: tw_status,
    /// The connection the event is about, or 0.
    pub conn: tw_conn,
    /// The listener the event is about (requests, server-side opens, listener errors), or 0.
    pub listener: tw_listener,
    /// The connection's user data (`tw_conn_set_userdata`), or NULL. On the terminal event
    /// this is the last time the library mentions it: free it there if it is yours.
    pub userdata: *mut c_void,
    /// Message, ping or pong payload; close reason; error description.
    pub data: tw_bytes,
    /// `TW_EVENT_REQUEST`, `TW_EVENT_HTTP_REQUEST`: the request, read with `tw_request_*`.
    pub request: *const tw_request,
    /// `TW_EVENT_OPEN`: the selected subprotocol. `TW_EVENT_REQUEST`: the subprotocol the
    /// listener's rules selected among the client's offers, to pass to `tw_accept` unless
    /// the application chooses another. `data` NULL when none.
    pub subprotocol: tw_bytes,
    /// `TW_EVENT_OPEN`: the negotiated Sec-WebSocket-Extensions value (`data` NULL when none).
    pub extensions: tw_bytes,
    /// `TW_EVENT_OPEN`: the request path (server: what the client asked for; client: the
    /// URL's resource).
    pub path: tw_bytes,
    /// `TW_EVENT_MESSAGE`: `TW_MESSAGE_TEXT` or `TW_MESSAGE_BINARY`.
    pub message_kind: tw_message_kind,
    /// `TW_EVENT_CLOSE`: the close code.
    pub close_code: u16,
    /// `TW_EVENT_ERROR` with `TW_STATUS_HANDSHAKE_REJECTED`: the server's HTTP status.
    pub http_status: u16,
    /// `TW_EVENT_CLOSE`: the closing handshake completed.
    pub clean: bool,
    /// `TW_EVENT_CLOSE`: `close_code` and the reason are the peer's (from its close frame);
    /// false when they are ours (we failed the connection because the peer broke the
    /// protocol, or closed first and got no answer) or 1006.
    pub remote: bool,
    /// `TW_EVENT_RECONNECTING`: the number of the attempt about to be made.
    pub attempt: u32,
    /// `TW_EVENT_RECONNECTING`: milliseconds before that attempt.
    pub delay_ms: u64,
}

impl tw_event {
    pub(crate) fn new(kind: tw_event_kind) -> tw_event {
        tw_event {
            kind,
            status: tw_status::TW_STATUS_OK,
            conn: 0,
            listener: 0,
            userdata: ptr::null_mut(),
            data: tw_bytes::NONE,
            request: ptr::null(),
            subprotocol: tw_bytes::NONE,
            extensions: tw_bytes::NONE,
            path: tw_bytes::NONE,
            message_kind: tw_message_kind::TW_MESSAGE_NONE,
            close_code: 0,
            http_status: 0,
            clean: false,
            remote: false,
            attempt: 0,
            delay_ms: 0,
        }
    }
}

/// Stores an error's text for the rest of the cycle and returns a view of it.
pub(crate) fn error_text(texts: &mut Vec<CString>, error: &tidewire_net::Error) -> tw_bytes {
    let text = CString::new(error.to_string().replace('\0', "\u{fffd}")).unwrap_or_default();
    let view = tw_bytes {
        data: text.as_ptr().cast(),
        len: text.as_bytes().len(),
    };
    // The CString's heap buffer does not move when `texts` grows.
    texts.push(text);
    view
}

/// The server's HTTP status of a rejected upgrade, or 0.
fn http_status_of(error: &tidewire_net::Error) -> u16 {
    match error {
        tidewire_net::Error::HandshakeRejected { status, .. } => *status,
        _ => 0,
    }
}

pub(crate) fn convert(event: &Event<'_>, texts: &mut Vec<CString>) -> tw_event {
    use tw_event_kind::*;
    match *event {
        Event::Request {
            conn,
            listener,
            request,
            subprotocol,
        } => tw_event {
            conn: conn.0,
            listener: listener.0,
            request: ptr::from_ref(request).cast(),
            subprotocol: tw_bytes::opt(subprotocol.map(str::as_bytes)),
            ..tw_event::new(TW_EVENT_REQUEST)
        },
        Event::HttpRequest {
            conn,
            listener,
            request,
        } => tw_event {
            conn: conn.0,
            listener: listener.0,
            request: ptr::from_ref(request).cast(),
            ..tw_event::new(TW_EVENT_HTTP_REQUEST)
        },
        Event::Open {
            conn,
            listener,
            subprotocol,
            extensions,
            path,
            ..
        } => tw_event {
            conn: conn.0,
            listener: listener.map_or(0, |l| l.0),
            subprotocol: tw_bytes::opt(subprotocol.map(str::as_bytes)),
            extensions: tw_bytes::opt(extensions.map(str::as_bytes)),
            path: tw_bytes::of(path.as_bytes()),
            ..tw_event::new(TW_EVENT_OPEN)
        },
        Event::Message { conn, kind, data } => tw_event {
            conn: conn.0,
            data: tw_bytes::of(data),
            message_kind: match kind {
                MessageKind::Text => tw_message_kind::TW_MESSAGE_TEXT,
                MessageKind::Binary => tw_message_kind::TW_MESSAGE_BINARY,
            },
            ..tw_event::new(TW_EVENT_MESSAGE)
        },
        Event::Ping { conn, data } => tw_event {
            conn: conn.0,
            data: tw_bytes::of(data),
            ..tw_event::new(TW_EVENT_PING)
        },
        Event::Pong { conn, data } => tw_event {
            conn: conn.0,
            data: tw_bytes::of(data),
            ..tw_event::new(TW_EVENT_PONG)
        },
        Event::Writable { conn } => tw_event {
            conn: conn.0,
            ..tw_event::new(TW_EVENT_WRITABLE)
        },
        Event::Closed {
            conn,
            code,
            reason,
            clean,
            remote,
        } => tw_event {
            conn: conn.0,
            close_code: code,
            data: tw_bytes::of(reason.as_bytes()),
            clean,
            remote,
            ..tw_event::new(TW_EVENT_CLOSE)
        },
        Event::Error { source, error } => {
            let (conn, listener) = match source {
                Source::Conn(c) => (c.0, 0),
                Source::Listener(l) => (0, l.0),
            };
            let http_status = http_status_of(error);
            tw_event {
                conn,
                listener,
                status: status_of(error),
                http_status,
                data: error_text(texts, error),
                ..tw_event::new(TW_EVENT_ERROR)
            }
        }
        Event::SendFailed { conn, error } => tw_event {
            conn: conn.0,
            status: status_of(error),
            data: error_text(texts, error),
            ..tw_event::new(TW_EVENT_SEND_FAILED)
        },
        Event::Reconnecting {
            conn,
            attempt,
            delay,
            error,
            close_code,
        } => {
            let (status, http_status, data) = match error {
                Some(e) => (status_of(e), http_status_of(e), error_text(texts, e)),
                None => (tw_status::TW_STATUS_OK, 0, tw_bytes::NONE),
            };
            tw_event {
                conn: conn.0,
                status,
                http_status,
                data,
                close_code,
                attempt,
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                ..tw_event::new(TW_EVENT_RECONNECTING)
            }
        }
        Event::Wake => tw_event::new(TW_EVENT_WAKE),
    }
}

/// The C event of a runtime event, with the connection's user data (forgotten here when the
/// event is terminal). Error texts are kept in `texts` until it is cleared.
pub(crate) fn to_c(
    event: &Event<'_>,
    texts: &mut Vec<CString>,
    userdata: &mut UserData,
) -> tw_event {
    let mut e = convert(event, texts);
    if e.conn != 0 && !userdata.is_empty() {
        e.userdata = if event.is_terminal() {
            userdata.remove(&e.conn)
        } else {
            userdata.get(&e.conn).copied()
        }
        .unwrap_or(ptr::null_mut());
    }
    e
}

/// Runs one cycle of the runtime when everything of the previous one was delivered.
fn refill(c: &mut Ctx, timeout_ms: i32) -> Result<(), Failure> {
    if c.cursor < c.events.len() {
        return Ok(());
    }
    c.texts.clear();
    c.cursor = 0;
    c.prune_answered();
    let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
    // On an error the runtime may still have recorded events (opens made by accept, ends
    // found while flushing): they stay in `events` and the next call delivers them.
    c.net.poll(&mut c.events, timeout)?;
    Ok(())
}

/// Drives the context and fills `events` with up to `max` events.
///
/// One call: when events of an earlier cycle are still undelivered (the array was smaller
/// than their number), it returns the next ones at once without waiting. Otherwise it
/// flushes what was sent since the last call, waits up to `timeout_ms` for readiness
/// (0: not at all, negative: until something happens; never past the next timer), reads
/// and writes every ready connection, runs due timers, and returns the events. No event is
/// lost or delivered twice, whatever `max` is.
///
/// A host loop that waits itself calls it with `timeout_ms` 0 (see `tw_context_fd` and
/// `tw_context_next_timeout_ms`); with 0 it never blocks.
///
/// Ownership: `events` is the caller's array of `max` (at least 1) entries; entries
/// `[0, *out_count)` are written, the rest are untouched. The payloads they point to are
/// owned by the context and stay valid until the next `tw_poll` on the same context (or
/// `tw_context_free`). On failure `*out_count` is untouched; events already gathered are
/// kept for the next call.
///
/// Returns `TW_STATUS_OK` (possibly with `*out_count` 0 after the timeout),
/// `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT` (`max` is 0, or `ctx` is a
/// `tw_server` worker's context, which its own thread polls), `TW_STATUS_IO` (the poller
/// failed), `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `events` is NULL or valid for writing `max` events;
/// `out_count` is NULL or valid for writing a size_t.
///
/// Thread safety: the thread that owns the context; not concurrently with any other call
/// on it.
#[no_mangle]
pub unsafe extern "C" fn tw_poll(
    ctx: *mut tw_context,
    events: *mut tw_event,
    max: usize,
    timeout_ms: i32,
    out_count: *mut usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let out = try_out(out_count, "out_count")?;
            if events.is_null() {
                return Err(Failure::null("events"));
            }
            if max == 0 {
                return Err(Failure::invalid("max must be at least 1"));
            }
            if let Some(worker) = c.net.worker() {
                return Err(Failure::invalid(format!(
                    "this is worker {worker}'s context of a tw_server: its thread polls it"
                )));
            }
            refill(c, timeout_ms)?;
            let Ctx {
                events: ready,
                cursor,
                texts,
                userdata,
                ..
            } = c;
            let mut n = 0;
            while n < max && *cursor < ready.len() {
                let Some(event) = ready.get(*cursor) else {
                    break;
                };
                *cursor += 1;
                let e = to_c(&event, texts, userdata);
                // SAFETY: `events` is valid for `max` writes and `n < max`; the entry may be
                // uninitialised, so it is written without reading or dropping the old one.
                events.add(n).write(e);
                n += 1;
            }
            out.write(n);
            OK
        })
    }
}
