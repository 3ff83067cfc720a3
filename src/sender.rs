//! `tw_sender`: the handle other threads use to send to, publish to and close a context's
//! connections (`tidewire_net::Sender`). Commands are queued and applied, in order, by the context's
//! next `tw_poll` on its own thread.

use std::ffi::c_char;

use tidewire_net::{ConnId, Sender};

use crate::conn::message_kind;
use crate::ffi::{free_handle, guard, guard_void, try_bytes, try_ref, try_text, Opaque, OK};
use crate::ids::tw_conn;
use crate::status::tw_status;

/// A thread-safe handle on one context, made by `tw_context_sender`, freed by
/// `tw_sender_free`. Any number of threads may use one sender at the same time.
#[allow(non_camel_case_types)]
pub struct tw_sender {
    _private: [u8; 0],
}

// SAFETY: every `*mut tw_sender` handed out is a `Box<Sender>` from `tw_context_sender`.
unsafe impl Opaque for tw_sender {
    type Rust = Sender;
}

impl tw_sender {
    /// Frees a sender. NULL is a no-op. Commands it queued are still applied.
    ///
    /// Ownership: takes ownership of `sender`; freeing twice is undefined behaviour.
    ///
    /// # Safety
    /// `sender` is NULL or a live handle from `tw_context_sender`.
    ///
    /// Thread safety: any thread, once no other thread uses this sender.
    #[no_mangle]
    pub unsafe extern "C" fn tw_sender_free(sender: *mut tw_sender) {
        // SAFETY: caller contract.
        guard_void(|| unsafe { free_handle(sender) })
    }

    /// Queues a text message (`len` bytes of UTF-8) for `conn`. Checked here: the handle
    /// and the UTF-8. Checked when the context applies it (a `TW_EVENT_SEND_FAILED` event
    /// reports a refusal): the id, the connection's state, its buffer.
    ///
    /// Ownership: `text` is copied during the call.
    ///
    /// Returns `TW_STATUS_OK` (queued), `TW_STATUS_INVALID_UTF8`, `TW_STATUS_BUFFER_FULL`
    /// (the sender queue is at `tw_config_set_sender_queue_limit`), `TW_STATUS_CONTEXT_GONE`,
    /// `TW_STATUS_IO` (waking the context failed), `TW_STATUS_NULL_ARGUMENT`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `sender` is NULL or a live handle; a non-NULL `text` is readable for `len` bytes.
    ///
    /// Thread safety: any thread, concurrently with other `tw_sender_*` calls and with the
    /// context's own thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_sender_send_text(
        sender: *const tw_sender,
        conn: tw_conn,
        text: *const c_char,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let s = unsafe { try_ref(sender, "sender") }?;
            // SAFETY: caller contract.
            let text = unsafe { try_text(text, len, "text") }?;
            s.send_text(ConnId(conn), text)?;
            OK
        })
    }

    /// Queues a binary message for `conn`. As `tw_sender_send_text`, without the UTF-8
    /// check.
    ///
    /// Ownership: `data` is copied during the call.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_BUFFER_FULL`, `TW_STATUS_CONTEXT_GONE`,
    /// `TW_STATUS_IO`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `sender` is NULL or a live handle; a non-NULL `data` is readable for `len` bytes.
    ///
    /// Thread safety: any thread, concurrently with other `tw_sender_*` calls and with the
    /// context's own thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_sender_send_binary(
        sender: *const tw_sender,
        conn: tw_conn,
        data: *const u8,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let s = unsafe { try_ref(sender, "sender") }?;
            // SAFETY: caller contract.
            let data = unsafe { try_bytes(data, len, "data") }?;
            s.send_binary(ConnId(conn), data)?;
            OK
        })
    }

    /// Queues a ping (at most 125 bytes; a longer one is reported by
    /// `TW_EVENT_SEND_FAILED`) for `conn`.
    ///
    /// Ownership: `data` is copied during the call.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_BUFFER_FULL`, `TW_STATUS_CONTEXT_GONE`,
    /// `TW_STATUS_IO`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `sender` is NULL or a live handle; a non-NULL `data` is readable for `len` bytes.
    ///
    /// Thread safety: any thread, concurrently with other `tw_sender_*` calls and with the
    /// context's own thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_sender_ping(
        sender: *const tw_sender,
        conn: tw_conn,
        data: *const u8,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let s = unsafe { try_ref(sender, "sender") }?;
            // SAFETY: caller contract.
            let data = unsafe { try_bytes(data, len, "data") }?;
            s.ping(ConnId(conn), data)?;
            OK
        })
    }

    /// Queues the start of the closing handshake for `conn` (as `tw_conn_close`).
    ///
    /// Ownership: `reason` (`len` bytes of UTF-8) is copied during the call.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_INVALID_UTF8`, `TW_STATUS_BUFFER_FULL`,
    /// `TW_STATUS_CONTEXT_GONE`, `TW_STATUS_IO`, `TW_STATUS_NULL_ARGUMENT`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `sender` is NULL or a live handle; a non-NULL `reason` is readable for `len` bytes.
    ///
    /// Thread safety: any thread, concurrently with other `tw_sender_*` calls and with the
    /// context's own thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_sender_close(
        sender: *const tw_sender,
        conn: tw_conn,
        code: u16,
        reason: *const c_char,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let s = unsafe { try_ref(sender, "sender") }?;
            // SAFETY: caller contract.
            let reason = unsafe { try_text(reason, len, "reason") }?;
            s.close(ConnId(conn), code, reason)?;
            OK
        })
    }

    /// Queues a publish of one message of `kind` (`TW_MESSAGE_TEXT` or `TW_MESSAGE_BINARY`)
    /// to every subscriber of `topic`, as `tw_context_publish` does on the context's thread.
    /// Checked here: the handle, the kind and the UTF-8 of text. The publish happens during
    /// the context's next `tw_poll`, in order with the sender's other commands, and reaches
    /// the subscribers the topic has at that moment; its `tw_publish_report` is not
    /// reported back (no `TW_EVENT_SEND_FAILED` either: slow and closing subscribers are
    /// handled as for `tw_context_publish`).
    ///
    /// Cost here: one copy of `topic` and `data` into the queue (counted against
    /// `tw_config_set_sender_queue_limit`) and a wake-up of the context when its queue was
    /// empty; on the context's thread, the cost of `tw_context_publish`.
    ///
    /// Ownership: `topic` and `data` are copied during the call.
    ///
    /// Returns `TW_STATUS_OK` (queued), `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_INVALID_ARGUMENT` (unknown kind), `TW_STATUS_BUFFER_FULL` (the sender
    /// queue is at its limit), `TW_STATUS_CONTEXT_GONE`, `TW_STATUS_IO`,
    /// `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `sender` is NULL or a live handle; a non-NULL `topic` is readable for `topic_len`
    /// bytes (`topic` may be NULL when `topic_len` is 0) and a non-NULL `data` for `len`
    /// bytes.
    ///
    /// Thread safety: any thread, concurrently with other `tw_sender_*` calls and with the
    /// context's own thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_sender_publish(
        sender: *const tw_sender,
        topic: *const u8,
        topic_len: usize,
        kind: u32,
        data: *const u8,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let s = unsafe { try_ref(sender, "sender") }?;
            // SAFETY: caller contract.
            let topic = unsafe { try_bytes(topic, topic_len, "topic") }?;
            let kind = message_kind(kind)?;
            // SAFETY: caller contract.
            let data = unsafe { try_bytes(data, len, "data") }?;
            s.publish(topic, kind, data)?;
            OK
        })
    }

    /// Wakes the context: its current or next `tw_poll` returns soon with a
    /// `TW_EVENT_WAKE`. For "look at your own queues" signals, and for asking the owner
    /// thread to shut down.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_CONTEXT_GONE`, `TW_STATUS_IO`,
    /// `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `sender` is NULL or a live handle.
    ///
    /// Thread safety: any thread, concurrently with other `tw_sender_*` calls and with the
    /// context's own thread. Not async-signal-safe: from a signal, wake a thread that calls
    /// it (see examples/c/echo_server.c).
    #[no_mangle]
    pub unsafe extern "C" fn tw_sender_wake(sender: *const tw_sender) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let s = unsafe { try_ref(sender, "sender") }?;
            s.wake()?;
            OK
        })
    }
}
