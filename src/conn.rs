//! `tw_conn` functions: sending, closing, server decisions, per-connection user data.
//!
//! A connection is named by its `tw_conn` id (an integer carrying a generation), so these
//! are free functions taking the context first and the id second.

use std::ffi::{c_char, c_void};

use tidewire_net::{ConnId, MessageKind, SendStatus};

use crate::bytes::tw_header;
use crate::context::{live_id, tw_context, with_ctx, with_ctx_ref};
use crate::ffi::{
    non_null, try_array, try_bytes, try_cstr, try_opt_cstr, try_out, try_text, write_text, Checked,
    Failure, OK,
};
use crate::ids::tw_conn;
use crate::status::tw_status;

fn sent(status: SendStatus) -> Checked<tw_status> {
    Ok(match status {
        SendStatus::Queued => tw_status::TW_STATUS_OK,
        SendStatus::Backpressure => tw_status::TW_STATUS_AGAIN,
    })
}

pub(crate) fn message_kind(kind: u32) -> Checked<MessageKind> {
    match kind {
        1 => Ok(MessageKind::Text),
        2 => Ok(MessageKind::Binary),
        other => Err(Failure::invalid(format!(
            "message kind {other} is neither TW_MESSAGE_TEXT (1) nor TW_MESSAGE_BINARY (2)"
        ))),
    }
}

/// Headers from C, checked and borrowed for the call.
///
/// # Safety
/// `headers` is NULL or valid for reading `count` `tw_header`s whose strings are NULL or
/// NUL-terminated.
unsafe fn headers<'a>(headers: *const tw_header, count: usize) -> Checked<Vec<(&'a str, &'a str)>> {
    // SAFETY: caller contract.
    let list = unsafe { try_array(headers, count, "headers") }?;
    list.iter()
        .map(|h| {
            // SAFETY: caller contract.
            let name = unsafe { try_cstr(h.name, "headers[].name") }?;
            // SAFETY: caller contract.
            let value = unsafe { try_cstr(h.value, "headers[].value") }?;
            Ok((name, value))
        })
        .collect()
}

/// Queues a message of `kind` (`TW_MESSAGE_TEXT` or `TW_MESSAGE_BINARY`; text must be
/// UTF-8). Never blocks: the bytes leave during the next `tw_poll`, together with everything
/// else sent to the connection meanwhile.
///
/// Ownership: `data` is copied during the call (it may point into an event's payload).
///
/// Returns `TW_STATUS_OK` (queued), `TW_STATUS_AGAIN` (queued, but the output buffer is
/// above the high water mark: stop sending to it until `TW_EVENT_WRITABLE`),
/// `TW_STATUS_BUFFER_FULL` (not queued: the buffer is at its hard cap),
/// `TW_STATUS_NOT_OPEN` (not open yet, or closing), `TW_STATUS_STALE_ID`,
/// `TW_STATUS_INVALID_UTF8`, `TW_STATUS_INVALID_ARGUMENT` (unknown kind),
/// `TW_STATUS_MESSAGE_IN_PROGRESS`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `data` is readable for `len` bytes (`data`
/// may be NULL when `len` is 0).
///
/// Thread safety: the thread that owns the context (other threads: `tw_sender_*`).
#[no_mangle]
pub unsafe extern "C" fn tw_conn_send(
    ctx: *mut tw_context,
    conn: tw_conn,
    kind: u32,
    data: *const u8,
    len: usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            let kind = message_kind(kind)?;
            // SAFETY: caller contract.
            let data = try_bytes(data, len, "data")?;
            sent(c.net.send(live_id(&c.answered, conn)?, kind, data)?)
        })
    }
}

/// Queues a message like `tw_conn_send`, but never compressed, even on a connection that
/// negotiated permessage-deflate (for data that is already compressed, or where latency
/// matters more than bytes).
///
/// Ownership: `data` is copied during the call.
///
/// Returns as `tw_conn_send`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `data` is readable for `len` bytes.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_send_uncompressed(
    ctx: *mut tw_context,
    conn: tw_conn,
    kind: u32,
    data: *const u8,
    len: usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            let kind = message_kind(kind)?;
            // SAFETY: caller contract.
            let data = try_bytes(data, len, "data")?;
            sent(
                c.net
                    .send_with(live_id(&c.answered, conn)?, kind, data, false)?,
            )
        })
    }
}

/// Queues a text message (`len` bytes of UTF-8, not NUL-terminated). Same rules and
/// statuses as `tw_conn_send`.
///
/// Ownership: `text` is copied during the call.
///
/// Returns as `tw_conn_send`; `TW_STATUS_INVALID_UTF8` when `text` is not UTF-8.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `text` is readable for `len` bytes.
///
/// Thread safety: the thread that owns the context (other threads: `tw_sender_*`).
#[no_mangle]
pub unsafe extern "C" fn tw_conn_send_text(
    ctx: *mut tw_context,
    conn: tw_conn,
    text: *const c_char,
    len: usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract. The engine checks UTF-8 (once) and refuses bad text.
            let data = try_bytes(text.cast(), len, "text")?;
            sent(
                c.net
                    .send(live_id(&c.answered, conn)?, MessageKind::Text, data)?,
            )
        })
    }
}

/// Queues a binary message. Same rules and statuses as `tw_conn_send`.
///
/// Ownership: `data` is copied during the call.
///
/// Returns as `tw_conn_send`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `data` is readable for `len` bytes.
///
/// Thread safety: the thread that owns the context (other threads: `tw_sender_*`).
#[no_mangle]
pub unsafe extern "C" fn tw_conn_send_binary(
    ctx: *mut tw_context,
    conn: tw_conn,
    data: *const u8,
    len: usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let data = try_bytes(data, len, "data")?;
            sent(
                c.net
                    .send(live_id(&c.answered, conn)?, MessageKind::Binary, data)?,
            )
        })
    }
}

/// Queues a ping with up to 125 bytes of payload; the peer's pong comes as
/// `TW_EVENT_PONG`.
///
/// Ownership: `data` is copied during the call.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_AGAIN`, `TW_STATUS_NOT_OPEN`, `TW_STATUS_STALE_ID`,
/// `TW_STATUS_PAYLOAD_TOO_LONG`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `data` is readable for `len` bytes.
///
/// Thread safety: the thread that owns the context (other threads: `tw_sender_ping`).
#[no_mangle]
pub unsafe extern "C" fn tw_conn_ping(
    ctx: *mut tw_context,
    conn: tw_conn,
    data: *const u8,
    len: usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let data = try_bytes(data, len, "data")?;
            sent(c.net.ping(live_id(&c.answered, conn)?, data)?)
        })
    }
}

/// Starts the closing handshake with `code` (1000 normal, 1001 going away, 3000-4999 for
/// applications) and a reason of up to 123 bytes of UTF-8 (`len` bytes, not
/// NUL-terminated). The connection ends with `TW_EVENT_CLOSE` when the peer answers or after
/// the close timeout; sending is refused (`TW_STATUS_NOT_OPEN`) from now on. A connection
/// that is not open yet is dropped instead, and ends with a `TW_EVENT_ERROR` carrying
/// `TW_STATUS_ABORTED`. A reconnecting connection stops reconnecting (also while it waits
/// for its next attempt: it then ends with that `TW_EVENT_ERROR`).
///
/// Ownership: `reason` is copied during the call.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NOT_OPEN` (already closing),
/// `TW_STATUS_INVALID_CLOSE_CODE`, `TW_STATUS_PAYLOAD_TOO_LONG`, `TW_STATUS_INVALID_UTF8`,
/// `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `reason` is readable for `len` bytes.
///
/// Thread safety: the thread that owns the context (other threads: `tw_sender_close`).
#[no_mangle]
pub unsafe extern "C" fn tw_conn_close(
    ctx: *mut tw_context,
    conn: tw_conn,
    code: u16,
    reason: *const c_char,
    len: usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let reason = try_text(reason, len, "reason")?;
            c.net.close(live_id(&c.answered, conn)?, code, reason)?;
            OK
        })
    }
}

/// Stops reconnecting `conn` (opened with `tw_connect_options_set_reconnect`): an open
/// connection stays open and its end becomes final; one waiting for its next attempt ends
/// at the next `tw_poll` with a terminal `TW_EVENT_ERROR` carrying `TW_STATUS_ABORTED`; one
/// being set up goes on and its failure is final. `tw_conn_close` also stops reconnecting.
/// A connection without a reconnect policy is left as it is.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_stop_reconnecting(
    ctx: *mut tw_context,
    conn: tw_conn,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            c.net.stop_reconnecting(live_id(&c.answered, conn)?)?;
            OK
        })
    }
}

/// Starts a message that is sent as several frames with `tw_conn_send_fragment` (for
/// messages produced piece by piece). Pings and closes may go in between; whole messages
/// may not (`TW_STATUS_MESSAGE_IN_PROGRESS`) until the last fragment.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_NOT_OPEN`, `TW_STATUS_STALE_ID`,
/// `TW_STATUS_MESSAGE_IN_PROGRESS`, `TW_STATUS_INVALID_ARGUMENT` (unknown kind),
/// `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_begin_message(
    ctx: *mut tw_context,
    conn: tw_conn,
    kind: u32,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            let kind = message_kind(kind)?;
            c.net.begin_message(live_id(&c.answered, conn)?, kind)?;
            OK
        })
    }
}

/// Queues the next fragment of the message started by `tw_conn_begin_message`; `fin` ends
/// the message. Text fragments are checked as UTF-8 across fragment boundaries. Buffer
/// rules as `tw_conn_send`.
///
/// Ownership: `data` is copied during the call.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_AGAIN`, `TW_STATUS_BUFFER_FULL`,
/// `TW_STATUS_NOT_OPEN`, `TW_STATUS_STALE_ID`, `TW_STATUS_NO_MESSAGE_IN_PROGRESS`,
/// `TW_STATUS_INVALID_UTF8`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `data` is readable for `len` bytes.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_send_fragment(
    ctx: *mut tw_context,
    conn: tw_conn,
    data: *const u8,
    len: usize,
    fin: bool,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let data = try_bytes(data, len, "data")?;
            sent(
                c.net
                    .send_fragment(live_id(&c.answered, conn)?, data, fin)?,
            )
        })
    }
}

/// Writes what is queued for `conn` now instead of at the next `tw_poll`: for a
/// request/response exchange (a game client's input, an RPC) that should not wait for the
/// end of the frame. `tw_poll` flushes everything anyway; this call is never needed for
/// correctness, and many sends followed by one `tw_poll` cost fewer system calls than a
/// flush after each.
///
/// `*out_done` (when `out_done` is not NULL) is set to true when everything went out and
/// the next `tw_poll` has nothing left to do for this connection; false means something is
/// left for `tw_poll` (the rest of a partial write, a failed socket, a close to complete, a
/// `TW_EVENT_WRITABLE` owed after back-pressure, or a connection not open yet): call
/// `tw_poll` soon. Failures of the socket itself are reported by `tw_poll` as the
/// connection's events, never here.
///
/// Ownership: on failure `*out_done` is untouched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `out_done` is NULL or valid for writing a bool.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_flush(
    ctx: *mut tw_context,
    conn: tw_conn,
    out_done: *mut bool,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            let done = c.net.flush(live_id(&c.answered, conn)?)?;
            if !out_done.is_null() {
                // SAFETY: caller contract (non-NULL: valid for writing).
                out_done.write(done);
            }
            OK
        })
    }
}

/// Bytes queued for the peer and not yet written to the socket (or to TLS).
///
/// Ownership: on failure `*out_bytes` is untouched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `out_bytes` is NULL or valid for writing a size_t.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_buffered_amount(
    ctx: *const tw_context,
    conn: tw_conn,
    out_bytes: *mut usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx_ref(ctx, |c| {
            // SAFETY: caller contract.
            let out = try_out(out_bytes, "out_bytes")?;
            out.write(c.net.buffered_amount(live_id(&c.answered, conn)?)?);
            OK
        })
    }
}

/// The last round-trip time measured on the connection, in microseconds.
///
/// It is measured from pongs that answer a ping whose send time is known: the keepalive
/// pings (`tw_config_set_ping_interval_ms`; their payload names them, so an unsolicited or
/// late pong measures nothing) and the latest few pings sent with `tw_conn_ping` (matched by
/// payload). It runs from when the ping was queued to the `tw_poll` that read its pong.
/// Before the first measurement `*out_known` is false and `*out_us` is 0.
///
/// Ownership: on failure `*out_us` and `*out_known` are untouched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `out_us` is NULL or valid for writing a uint64_t;
/// `out_known` is NULL or valid for writing a bool.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_latency(
    ctx: *const tw_context,
    conn: tw_conn,
    out_us: *mut u64,
    out_known: *mut bool,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx_ref(ctx, |c| {
            // SAFETY: caller contract.
            let us = try_out(out_us, "out_us")?;
            // SAFETY: caller contract.
            let known = try_out(out_known, "out_known")?;
            let rtt = c.net.latency(live_id(&c.answered, conn)?)?;
            us.write(rtt.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)));
            known.write(rtt.is_some());
            OK
        })
    }
}

/// Whether the connection is open: handshake done, no close frame sent or received.
///
/// Ownership: on failure `*out_open` is untouched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `out_open` is NULL or valid for writing a bool.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_is_open(
    ctx: *const tw_context,
    conn: tw_conn,
    out_open: *mut bool,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx_ref(ctx, |c| {
            // SAFETY: caller contract.
            let out = try_out(out_open, "out_open")?;
            if !c.alive(conn) {
                return Err(tidewire_net::Error::StaleId.into());
            }
            out.write(c.net.is_open(ConnId(conn)));
            OK
        })
    }
}

/// The peer's address as NUL-terminated text, `127.0.0.1:50312` or `[::1]:50312`. 64 bytes
/// are always enough.
///
/// Ownership: the text is written into the caller's `buf` of `cap` bytes, its length
/// without the NUL into `*out_len`. On failure neither is touched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NOT_OPEN` (no socket yet),
/// `TW_STATUS_BUFFER_TOO_SMALL`, `TW_STATUS_IO`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `buf` is NULL or valid for writing `cap` bytes;
/// `out_len` is NULL or valid for writing a size_t.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_peer_addr(
    ctx: *const tw_context,
    conn: tw_conn,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx_ref(ctx, |c| {
            // SAFETY: caller contract.
            let out = try_out(out_len, "out_len")?;
            non_null(buf, "buf")?;
            let addr = c.net.peer_addr(live_id(&c.answered, conn)?)?;
            // SAFETY: `buf` is non-NULL and writable for `cap` bytes (caller contract).
            let n = write_text(&addr.to_string(), buf, cap)?;
            out.write(n);
            OK
        })
    }
}

/// Our own address on the connection's socket as NUL-terminated text (as
/// `tw_conn_peer_addr`).
///
/// Ownership: the text is written into the caller's `buf` of `cap` bytes, its length
/// without the NUL into `*out_len`. On failure neither is touched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NOT_OPEN` (no socket yet),
/// `TW_STATUS_BUFFER_TOO_SMALL`, `TW_STATUS_IO`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `buf` is NULL or valid for writing `cap` bytes;
/// `out_len` is NULL or valid for writing a size_t.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_local_addr(
    ctx: *const tw_context,
    conn: tw_conn,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx_ref(ctx, |c| {
            // SAFETY: caller contract.
            let out = try_out(out_len, "out_len")?;
            non_null(buf, "buf")?;
            let addr = c.net.conn_local_addr(live_id(&c.answered, conn)?)?;
            // SAFETY: `buf` is non-NULL and writable for `cap` bytes (caller contract).
            let n = write_text(&addr.to_string(), buf, cap)?;
            out.write(n);
            OK
        })
    }
}

/// Stops reading from an open connection: nothing more is received (the kernel's buffer
/// fills, then TCP flow control slows the peer down) until `tw_conn_resume_reading`.
/// Sending and timers go on. Receive-side back-pressure for an application that gets
/// messages faster than it can handle them. Pausing twice is the same as once.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NOT_OPEN`,
/// `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_pause_reading(ctx: *mut tw_context, conn: tw_conn) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            c.net.pause_reading(live_id(&c.answered, conn)?)?;
            OK
        })
    }
}

/// Reads again from a connection paused with `tw_conn_pause_reading`; what arrived
/// meanwhile is delivered by the next `tw_poll`. Resuming a connection that is not paused
/// does nothing.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_resume_reading(ctx: *mut tw_context, conn: tw_conn) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            c.net.resume_reading(live_id(&c.answered, conn)?)?;
            OK
        })
    }
}

/// Whether reading is paused on the connection (`tw_conn_pause_reading`).
///
/// Ownership: on failure `*out_paused` is untouched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `out_paused` is NULL or valid for writing a bool.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_is_reading_paused(
    ctx: *const tw_context,
    conn: tw_conn,
    out_paused: *mut bool,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx_ref(ctx, |c| {
            // SAFETY: caller contract.
            let out = try_out(out_paused, "out_paused")?;
            out.write(c.net.is_reading_paused(live_id(&c.answered, conn)?)?);
            OK
        })
    }
}

/// Attaches the caller's pointer to a connection; it comes back in the `userdata` field of
/// every later event about the connection, for the last time in its terminal event. NULL
/// detaches. The library never dereferences or frees it.
///
/// Ownership: `userdata` stays the caller's (free it, if needed, on the terminal event, or
/// after `tw_conn_reject` / `tw_conn_respond`, after which no event comes).
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT` (`ctx`),
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle. `userdata` may be anything.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_set_userdata(
    ctx: *mut tw_context,
    conn: tw_conn,
    userdata: *mut c_void,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            if !c.alive(conn) {
                return Err(tidewire_net::Error::StaleId.into());
            }
            if userdata.is_null() {
                c.userdata.remove(&conn);
            } else {
                c.userdata.insert(conn, userdata);
            }
            OK
        })
    }
}

/// The pointer attached with `tw_conn_set_userdata`, or NULL when none is.
///
/// Ownership: the pointer is the caller's own. On failure `*out_userdata` is untouched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `out_userdata` is NULL or valid for writing a pointer.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_userdata(
    ctx: *const tw_context,
    conn: tw_conn,
    out_userdata: *mut *mut c_void,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx_ref(ctx, |c| {
            // SAFETY: caller contract.
            let out = try_out(out_userdata, "out_userdata")?;
            // An entry outlives the runtime's connection until the terminal event is
            // delivered, so look there first.
            let value = match c.userdata.get(&conn) {
                Some(p) => *p,
                None if c.alive(conn) => std::ptr::null_mut(),
                None => return Err(tidewire_net::Error::StaleId.into()),
            };
            out.write(value);
            OK
        })
    }
}

/// Accepts an upgrade request delivered as `TW_EVENT_REQUEST`: selects `subprotocol` (one
/// the client offered, or NULL for none) and adds `headers` to the 101 response. The
/// connection is open when this returns (sending is allowed); its `TW_EVENT_OPEN` comes with
/// the next `tw_poll`.
///
/// Ownership: `subprotocol` and `headers` (an array of `count`, NULL when `count` is 0) are
/// copied during the call.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_INVALID_ARGUMENT` (no request
/// waiting, or a header that cannot be sent), `TW_STATUS_INVALID_UTF8`,
/// `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `subprotocol` is NULL or NUL-terminated; `headers` is
/// NULL or valid for reading `count` entries.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_accept(
    ctx: *mut tw_context,
    conn: tw_conn,
    subprotocol: *const c_char,
    headers: *const tw_header,
    count: usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let subprotocol = try_opt_cstr(subprotocol, "subprotocol")?;
            // SAFETY: caller contract.
            let list = self::headers(headers, count)?;
            c.net
                .accept(live_id(&c.answered, conn)?, subprotocol, &list)?;
            OK
        })
    }
}

/// Refuses an upgrade request delivered as `TW_EVENT_REQUEST` with an HTTP `status` (e.g.
/// 403), `headers` and `body`, then closes the connection. No further event comes for it
/// and its id is stale from now on (user data attached to it is forgotten: free it now if
/// it is yours).
///
/// Ownership: `headers` (an array of `count`, NULL when `count` is 0) and `body` are copied
/// during the call.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_INVALID_ARGUMENT` (no request
/// waiting, bad status or header), `TW_STATUS_INVALID_UTF8`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `headers` is NULL or valid for reading `count` entries;
/// a non-NULL `body` is readable for `body_len` bytes.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_reject(
    ctx: *mut tw_context,
    conn: tw_conn,
    status: u16,
    headers: *const tw_header,
    count: usize,
    body: *const u8,
    body_len: usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe { answer(ctx, conn, status, headers, count, body, body_len) }
}

/// Answers a plain HTTP request delivered as `TW_EVENT_HTTP_REQUEST` with `status`,
/// `headers` and `body` (Content-Length is added), then closes the connection. No further
/// event comes for it and its id is stale from now on.
///
/// Ownership: `headers` (an array of `count`, NULL when `count` is 0) and `body` are copied
/// during the call.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_INVALID_ARGUMENT` (no request
/// waiting, bad status or header), `TW_STATUS_INVALID_UTF8`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `headers` is NULL or valid for reading `count` entries;
/// a non-NULL `body` is readable for `body_len` bytes.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_respond(
    ctx: *mut tw_context,
    conn: tw_conn,
    status: u16,
    headers: *const tw_header,
    count: usize,
    body: *const u8,
    body_len: usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe { answer(ctx, conn, status, headers, count, body, body_len) }
}

/// `tw_conn_reject` and `tw_conn_respond` do the same thing; the names say where each fits.
///
/// # Safety
/// As `tw_conn_reject`.
unsafe fn answer(
    ctx: *mut tw_context,
    conn: tw_conn,
    status: u16,
    headers: *const tw_header,
    count: usize,
    body: *const u8,
    body_len: usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let list = self::headers(headers, count)?;
            // SAFETY: caller contract.
            let body = try_bytes(body, body_len, "body")?;
            if !(100..=999).contains(&status) {
                return Err(Failure::invalid(format!(
                    "HTTP status {status} is not in 100..=999"
                )));
            }
            c.net
                .reject(live_id(&c.answered, conn)?, status, &list, body)?;
            // No event will name this connection again: for the application it is over.
            c.userdata.remove(&conn);
            c.answered.insert(conn);
            OK
        })
    }
}
