//! Topics, publish and broadcast: one message to many connections
//! (`tidewire_net::Context::{subscribe, unsubscribe, publish, broadcast}`), the report of
//! what one publish did (`tw_publish_report`) and the slow-subscriber policy
//! (`tw_slow_action`, set with `tw_listen_options_set_slow_subscriber`).
//!
//! Subscribing names a connection, so those functions take the context and the id like the
//! other `tw_conn_*` functions; publishing and counting are about the whole context
//! (`tw_context_*`). `tw_sender_publish` is in `sender.rs`.

use tidewire_net::{ConnId, PublishReport, SlowAction};

use crate::conn::message_kind;
use crate::context::{live_id, tw_context, with_ctx, with_ctx_ref};
use crate::ffi::{try_array, try_bytes, try_out, Checked, Failure, OK};
use crate::ids::tw_conn;
use crate::status::tw_status;

/// The close code a slow subscriber gets under `TW_SLOW_CLOSE` (1008, policy violation;
/// the reason is "too slow").
pub const TW_SLOW_CLOSE_CODE: u16 = 1008;

// The header's constant is the runtime's.
const _: () = assert!(TW_SLOW_CLOSE_CODE == tidewire_net::SLOW_CLOSE_CODE);

/// What a publish or broadcast does with a subscriber that does not keep up (one whose
/// output already holds the listener's slow-subscriber limit). In C the type is `uint32_t`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tw_slow_action {
    /// The slow connection misses the message and stays open; it gets the next ones once it
    /// has caught up (counted in `tw_publish_report.skipped_slow`). For feeds where the
    /// latest value replaces the previous one. The default.
    TW_SLOW_SKIP = 0,
    /// The slow connection is closed with `TW_SLOW_CLOSE_CODE` (1008, "too slow") instead
    /// (counted in `tw_publish_report.closed_slow`): nothing is missed silently. For chats
    /// and anything where a gap is a bug.
    TW_SLOW_CLOSE = 1,
}

/// The `tw_slow_action` of a C value.
pub(crate) fn slow_action(action: u32) -> Checked<SlowAction> {
    const SKIP: u32 = tw_slow_action::TW_SLOW_SKIP as u32;
    const CLOSE: u32 = tw_slow_action::TW_SLOW_CLOSE as u32;
    match action {
        SKIP => Ok(SlowAction::Skip),
        CLOSE => Ok(SlowAction::Close),
        other => Err(Failure::invalid(format!(
            "slow action {other} is neither TW_SLOW_SKIP (0) nor TW_SLOW_CLOSE (1)"
        ))),
    }
}

/// What one `tw_context_publish` or `tw_context_broadcast` did. Every connection it was
/// addressed to is counted in exactly one of `delivered`, `skipped_slow`, `closed_slow` and
/// `not_open`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct tw_publish_report {
    /// Connections the message was queued or written for.
    pub delivered: usize,
    /// Slow connections that missed the message (`TW_SLOW_SKIP`).
    pub skipped_slow: usize,
    /// Slow connections closed with `TW_SLOW_CLOSE_CODE` instead (`TW_SLOW_CLOSE`).
    pub closed_slow: usize,
    /// Connections that could not take a message: not open yet, closing, or in the middle
    /// of a fragmented message of their own; for a broadcast also ids that name no
    /// connection any more.
    pub not_open: usize,
    /// How many times the payload was compressed: at most once per set of
    /// permessage-deflate parameters among the subscribers without context takeover
    /// (tidewire's default for servers), 0 when nobody negotiated compression. A subscriber
    /// that agreed to context takeover compresses its own copy, not counted here.
    pub compressions: usize,
}

impl From<PublishReport> for tw_publish_report {
    fn from(r: PublishReport) -> tw_publish_report {
        tw_publish_report {
            delivered: r.delivered,
            skipped_slow: r.skipped_slow,
            closed_slow: r.closed_slow,
            not_open: r.not_open,
            compressions: r.compressions,
        }
    }
}

/// Writes an optional output: NULL means the caller does not want it.
///
/// # Safety
/// `out` is NULL or valid for writing one `T`.
unsafe fn write_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: caller contract (non-NULL: valid for writing one `T`).
        unsafe { out.write(value) }
    }
}

/// Subscribes `conn` to `topic` (any bytes, `topic_len` of them; the empty topic is a topic
/// too). A later `tw_context_publish` to the topic reaches it. A connection leaves all its
/// topics when it ends; a topic exists while it has subscribers. Any connection of the
/// context may subscribe, server or client side, open or not yet open (a publish skips
/// those not open and counts them in `not_open`).
///
/// Cost: a hash lookup of the topic plus O(1); the topic's name is copied once, when its
/// first subscriber comes.
///
/// Ownership: `topic` is copied when kept. `*out_added` (when `out_added` is not NULL) is
/// set to true when `conn` was not subscribed yet, false when it already was; on failure
/// it is untouched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `topic` is readable for `topic_len` bytes
/// (`topic` may be NULL when `topic_len` is 0); `out_added` is NULL or valid for writing a
/// bool.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_subscribe(
    ctx: *mut tw_context,
    conn: tw_conn,
    topic: *const u8,
    topic_len: usize,
    out_added: *mut bool,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let topic = try_bytes(topic, topic_len, "topic")?;
            let added = c.net.subscribe(live_id(&c.answered, conn)?, topic)?;
            // SAFETY: caller contract.
            write_opt(out_added, added);
            OK
        })
    }
}

/// Unsubscribes `conn` from `topic`. A topic left without subscribers is forgotten.
///
/// Cost: a hash lookup of the topic plus O(the connection's topics).
///
/// Ownership: `topic` is borrowed for the call. `*out_removed` (when `out_removed` is not
/// NULL) is set to true when `conn` was subscribed, false when it was not; on failure it is
/// untouched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_STALE_ID`, `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `topic` is readable for `topic_len` bytes;
/// `out_removed` is NULL or valid for writing a bool.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_conn_unsubscribe(
    ctx: *mut tw_context,
    conn: tw_conn,
    topic: *const u8,
    topic_len: usize,
    out_removed: *mut bool,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let topic = try_bytes(topic, topic_len, "topic")?;
            let removed = c.net.unsubscribe(live_id(&c.answered, conn)?, topic)?;
            // SAFETY: caller contract.
            write_opt(out_removed, removed);
            OK
        })
    }
}

/// Sends one message of `kind` (`TW_MESSAGE_TEXT`, which must be UTF-8, or
/// `TW_MESSAGE_BINARY`) to every subscriber of `topic`. A topic without subscribers is not
/// an error: the report says 0 delivered. Never blocks: the bytes leave during the next
/// `tw_poll` (or at once, on a `ws://` connection with nothing queued).
///
/// Cost: O(subscribers). The message is framed once for all of them, and with
/// permessage-deflate compressed once per parameter set (`out_report->compressions`)
/// among the subscribers without context takeover; a `wss://` subscriber encrypts its own
/// copy. A subscriber whose output already holds the slow-subscriber limit of its listener
/// (`tw_listen_options_set_slow_subscriber`, default 1 MiB) is skipped or closed as the
/// listener says, so one slow reader never holds an unbounded backlog; the back-pressure
/// statuses of `tw_conn_send` do not apply (a subscriber above the high water mark still
/// gets `TW_EVENT_WRITABLE` once it drained).
///
/// Ownership: `topic` and `data` are borrowed for the call (`data` may point into an
/// event's payload). `*out_report` (when `out_report` is not NULL) receives what happened
/// to each subscriber; on failure it is untouched and nothing was sent.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_INVALID_UTF8` (text that is not UTF-8),
/// `TW_STATUS_INVALID_ARGUMENT` (unknown kind), `TW_STATUS_NULL_ARGUMENT`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `topic` is readable for `topic_len` bytes and
/// a non-NULL `data` for `len` bytes; `out_report` is NULL or valid for writing a
/// `tw_publish_report`.
///
/// Thread safety: the thread that owns the context (other threads: `tw_sender_publish`).
#[no_mangle]
pub unsafe extern "C" fn tw_context_publish(
    ctx: *mut tw_context,
    topic: *const u8,
    topic_len: usize,
    kind: u32,
    data: *const u8,
    len: usize,
    out_report: *mut tw_publish_report,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let topic = try_bytes(topic, topic_len, "topic")?;
            let kind = message_kind(kind)?;
            // SAFETY: caller contract.
            let data = try_bytes(data, len, "data")?;
            let report = c.net.publish(topic, kind, data)?;
            // SAFETY: caller contract.
            write_opt(out_report, report.into());
            OK
        })
    }
}

/// Sends one message to each of the `count` connections in `conns`, framed and compressed
/// once as `tw_context_publish` does for a topic, with the same slow-subscriber rules. Ids
/// that name no open connection (stale, not open yet, closing) are counted in
/// `out_report->not_open`, not refused; a connection listed twice gets the message twice.
///
/// Cost: O(count), plus one copy of the id array.
///
/// Ownership: `conns` and `data` are borrowed for the call. `*out_report` (when
/// `out_report` is not NULL) receives what happened to each connection; on failure it is
/// untouched and nothing was sent.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_INVALID_UTF8`, `TW_STATUS_INVALID_ARGUMENT` (unknown
/// kind), `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `conns` is readable for `count` ids (`conns`
/// may be NULL when `count` is 0); a non-NULL `data` is readable for `len` bytes;
/// `out_report` is NULL or valid for writing a `tw_publish_report`.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_context_broadcast(
    ctx: *mut tw_context,
    conns: *const tw_conn,
    count: usize,
    kind: u32,
    data: *const u8,
    len: usize,
    out_report: *mut tw_publish_report,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            // SAFETY: caller contract.
            let ids = try_array(conns, count, "conns")?;
            let kind = message_kind(kind)?;
            // SAFETY: caller contract.
            let data = try_bytes(data, len, "data")?;
            let ids: Vec<ConnId> = ids.iter().map(|&id| ConnId(id)).collect();
            let report = c.net.broadcast(&ids, kind, data)?;
            // SAFETY: caller contract.
            write_opt(out_report, report.into());
            OK
        })
    }
}

/// How many connections are subscribed to `topic` (0 for a topic nobody subscribed to).
///
/// Cost: a hash lookup of the topic.
///
/// Ownership: `topic` is borrowed for the call. On failure `*out_count` is untouched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; a non-NULL `topic` is readable for `topic_len` bytes;
/// `out_count` is NULL or valid for writing a size_t.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_context_subscriber_count(
    ctx: *const tw_context,
    topic: *const u8,
    topic_len: usize,
    out_count: *mut usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx_ref(ctx, |c| {
            // SAFETY: caller contract.
            let out = try_out(out_count, "out_count")?;
            // SAFETY: caller contract.
            let topic = try_bytes(topic, topic_len, "topic")?;
            out.write(c.net.subscriber_count(topic));
            OK
        })
    }
}

/// How many topics have at least one subscriber.
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
pub unsafe extern "C" fn tw_context_topic_count(
    ctx: *const tw_context,
    out_count: *mut usize,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx_ref(ctx, |c| {
            // SAFETY: caller contract.
            let out = try_out(out_count, "out_count")?;
            out.write(c.net.topic_count());
            OK
        })
    }
}
