//! `tw_status`: the result of every function that can fail, the mapping from the runtime's
//! errors, `tw_status_str`, `tw_last_error` and `tw_version`.
//!
//! Numbers are grouped by hundreds (caller mistakes, connection state, connecting, handshake,
//! TLS, engine refusals, I/O, bugs) and never reused: a retired status keeps its number as a
//! comment so that a C program compiled against an older header is never told something else.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

use tidewire_net::SendError;
use tidewire_net::{Error, TimeoutKind};

/// What a call did. `TW_STATUS_OK` (0) is success; every other value says what went wrong,
/// and `tw_last_error()` gives the detail. In C the type is `uint32_t`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tw_status {
    /// Success.
    TW_STATUS_OK = 0,
    /// The message was queued (do not send it again), but the connection's output buffer is
    /// now above the high water mark: stop sending to it until `TW_EVENT_WRITABLE`.
    TW_STATUS_AGAIN = 1,

    // 1xx: the caller passed something unusable. Nothing was changed.
    /// A required pointer argument was NULL.
    TW_STATUS_NULL_ARGUMENT = 100,
    /// An argument is out of range or malformed (`tw_last_error()` says which).
    TW_STATUS_INVALID_ARGUMENT = 101,
    /// Text that must be UTF-8 is not (text message, close reason, header, name).
    TW_STATUS_INVALID_UTF8 = 102,
    /// The connection or listener id names nothing alive: it ended (its terminal event was
    /// delivered) or was never valid. Ids are per context.
    TW_STATUS_STALE_ID = 103,
    /// The caller's output buffer is too small; nothing was written to it.
    TW_STATUS_BUFFER_TOO_SMALL = 104,
    /// The thing asked for does not exist (a header that was not sent, an index past the end).
    TW_STATUS_NOT_FOUND = 105,

    // 2xx: the call does not fit the state of the connection or context.
    /// The connection is not open (still handshaking, or closing): it cannot send data.
    TW_STATUS_NOT_OPEN = 200,
    /// The output buffer (or a sender's queue) is full: the message was NOT queued. Wait for
    /// `TW_EVENT_WRITABLE`.
    TW_STATUS_BUFFER_FULL = 201,
    /// The context already holds its maximum number of connections.
    TW_STATUS_TOO_MANY_CONNECTIONS = 202,
    /// The context is shutting down and takes no new connections or listeners.
    TW_STATUS_SHUTTING_DOWN = 203,
    /// The context behind a sender was freed.
    TW_STATUS_CONTEXT_GONE = 204,
    /// The application closed the connection before it opened.
    TW_STATUS_ABORTED = 205,

    // 3xx: opening a client connection.
    /// The URL cannot be used (scheme, host, port).
    TW_STATUS_INVALID_URL = 300,
    /// The host name could not be resolved.
    TW_STATUS_RESOLVE = 301,
    /// The TCP connection could not be established (refused, unreachable).
    TW_STATUS_CONNECT = 302,
    /// The TCP connection was not established in time.
    TW_STATUS_CONNECT_TIMEOUT = 303,
    /// The peer did not answer a close in time, or sent nothing for the idle timeout.
    TW_STATUS_TIMEOUT = 304,
    /// The proxy failed: unreachable, refused (HTTP status; for 407 the
    /// `Proxy-Authenticate` scheme), bad SOCKS reply, closed, TLS to an `https://` proxy
    /// failed (the error event's `data`, or `tw_last_error()`, says which).
    TW_STATUS_PROXY = 305,
    /// The proxy's resolution, connection or handshake did not complete within the connect
    /// timeout.
    TW_STATUS_PROXY_TIMEOUT = 306,

    // 4xx: the opening handshake.
    /// The opening handshake failed (malformed HTTP, bad accept key, ...).
    TW_STATUS_HANDSHAKE = 400,
    /// The server answered the upgrade with another HTTP status (in the event's `http_status`).
    TW_STATUS_HANDSHAKE_REJECTED = 401,
    /// The peer closed the TCP connection during the opening handshake.
    TW_STATUS_HANDSHAKE_EOF = 402,
    /// The opening handshake (TLS included) did not complete in time.
    TW_STATUS_HANDSHAKE_TIMEOUT = 403,
    /// The server's answer to the permessage-deflate offer was invalid.
    TW_STATUS_HANDSHAKE_EXTENSION = 404,

    // 5xx: TLS.
    /// TLS failed: bad certificate or key, name mismatch, protocol error.
    TW_STATUS_TLS = 500,

    // 6xx: the protocol engine refused what was asked.
    /// Another protocol-level refusal.
    TW_STATUS_PROTOCOL = 600,
    /// A ping, pong or close payload longer than 125 bytes (close: reason over 123 bytes).
    TW_STATUS_PAYLOAD_TOO_LONG = 601,
    /// A close code that may not be sent (1005, 1006, 1015, or outside the valid ranges).
    TW_STATUS_INVALID_CLOSE_CODE = 602,
    /// A whole message was sent while a fragmented one is still open.
    TW_STATUS_MESSAGE_IN_PROGRESS = 603,
    /// A fragment was sent with no fragmented message open.
    TW_STATUS_NO_MESSAGE_IN_PROGRESS = 604,
    /// The compressor failed; the connection was failed with 1011.
    TW_STATUS_COMPRESSION_FAILED = 605,

    // 7xx: the operating system.
    /// An I/O error on a socket or on the poller (`tw_last_error()` has the OS text).
    TW_STATUS_IO = 700,

    // 9xx: bugs.
    /// A bug inside tidewire was caught at the boundary (no panic crosses it). A context
    /// that reported it refuses further calls except `tw_context_free`.
    TW_STATUS_INTERNAL = 900,
}

use tw_status::*;

impl tw_status {
    /// Every status, for `tw_status_str` and the tests.
    pub(crate) const ALL: [tw_status; 35] = [
        TW_STATUS_OK,
        TW_STATUS_AGAIN,
        TW_STATUS_NULL_ARGUMENT,
        TW_STATUS_INVALID_ARGUMENT,
        TW_STATUS_INVALID_UTF8,
        TW_STATUS_STALE_ID,
        TW_STATUS_BUFFER_TOO_SMALL,
        TW_STATUS_NOT_FOUND,
        TW_STATUS_NOT_OPEN,
        TW_STATUS_BUFFER_FULL,
        TW_STATUS_TOO_MANY_CONNECTIONS,
        TW_STATUS_SHUTTING_DOWN,
        TW_STATUS_CONTEXT_GONE,
        TW_STATUS_ABORTED,
        TW_STATUS_INVALID_URL,
        TW_STATUS_RESOLVE,
        TW_STATUS_CONNECT,
        TW_STATUS_CONNECT_TIMEOUT,
        TW_STATUS_TIMEOUT,
        TW_STATUS_PROXY,
        TW_STATUS_PROXY_TIMEOUT,
        TW_STATUS_HANDSHAKE,
        TW_STATUS_HANDSHAKE_REJECTED,
        TW_STATUS_HANDSHAKE_EOF,
        TW_STATUS_HANDSHAKE_TIMEOUT,
        TW_STATUS_HANDSHAKE_EXTENSION,
        TW_STATUS_TLS,
        TW_STATUS_PROTOCOL,
        TW_STATUS_PAYLOAD_TOO_LONG,
        TW_STATUS_INVALID_CLOSE_CODE,
        TW_STATUS_MESSAGE_IN_PROGRESS,
        TW_STATUS_NO_MESSAGE_IN_PROGRESS,
        TW_STATUS_COMPRESSION_FAILED,
        TW_STATUS_IO,
        TW_STATUS_INTERNAL,
    ];

    /// Static NUL-terminated text (the `\0` is part of each literal).
    fn text(self) -> &'static str {
        match self {
            TW_STATUS_OK => "ok\0",
            TW_STATUS_AGAIN => "queued, above the high water mark\0",
            TW_STATUS_NULL_ARGUMENT => "null argument\0",
            TW_STATUS_INVALID_ARGUMENT => "invalid argument\0",
            TW_STATUS_INVALID_UTF8 => "invalid utf-8\0",
            TW_STATUS_STALE_ID => "stale id\0",
            TW_STATUS_BUFFER_TOO_SMALL => "buffer too small\0",
            TW_STATUS_NOT_FOUND => "not found\0",
            TW_STATUS_NOT_OPEN => "not open\0",
            TW_STATUS_BUFFER_FULL => "buffer full\0",
            TW_STATUS_TOO_MANY_CONNECTIONS => "too many connections\0",
            TW_STATUS_SHUTTING_DOWN => "shutting down\0",
            TW_STATUS_CONTEXT_GONE => "context gone\0",
            TW_STATUS_ABORTED => "aborted\0",
            TW_STATUS_INVALID_URL => "invalid url\0",
            TW_STATUS_RESOLVE => "name resolution failed\0",
            TW_STATUS_CONNECT => "connect failed\0",
            TW_STATUS_CONNECT_TIMEOUT => "connect timeout\0",
            TW_STATUS_TIMEOUT => "timeout\0",
            TW_STATUS_PROXY => "proxy failed\0",
            TW_STATUS_PROXY_TIMEOUT => "proxy timeout\0",
            TW_STATUS_HANDSHAKE => "handshake failed\0",
            TW_STATUS_HANDSHAKE_REJECTED => "handshake rejected\0",
            TW_STATUS_HANDSHAKE_EOF => "connection closed during handshake\0",
            TW_STATUS_HANDSHAKE_TIMEOUT => "handshake timeout\0",
            TW_STATUS_HANDSHAKE_EXTENSION => "extension negotiation failed\0",
            TW_STATUS_TLS => "tls error\0",
            TW_STATUS_PROTOCOL => "refused by the protocol\0",
            TW_STATUS_PAYLOAD_TOO_LONG => "control payload too long\0",
            TW_STATUS_INVALID_CLOSE_CODE => "invalid close code\0",
            TW_STATUS_MESSAGE_IN_PROGRESS => "a fragmented message is in progress\0",
            TW_STATUS_NO_MESSAGE_IN_PROGRESS => "no fragmented message in progress\0",
            TW_STATUS_COMPRESSION_FAILED => "compression failed\0",
            TW_STATUS_IO => "i/o error\0",
            TW_STATUS_INTERNAL => "internal error\0",
        }
    }
}

/// The status of a runtime error. Unknown future variants (the enum is non-exhaustive) are
/// reported as `TW_STATUS_PROTOCOL` rather than as a bug: the text still says what happened.
pub(crate) fn status_of(error: &Error) -> tw_status {
    match error {
        Error::StaleId => TW_STATUS_STALE_ID,
        Error::NotOpen => TW_STATUS_NOT_OPEN,
        Error::BufferFull { .. } => TW_STATUS_BUFFER_FULL,
        Error::TooManyConnections => TW_STATUS_TOO_MANY_CONNECTIONS,
        Error::InvalidArgument(_) => TW_STATUS_INVALID_ARGUMENT,
        Error::InvalidUrl(_) => TW_STATUS_INVALID_URL,
        Error::Resolve { .. } => TW_STATUS_RESOLVE,
        Error::Connect(_) => TW_STATUS_CONNECT,
        Error::Timeout(TimeoutKind::Connect) => TW_STATUS_CONNECT_TIMEOUT,
        Error::Timeout(TimeoutKind::Handshake) => TW_STATUS_HANDSHAKE_TIMEOUT,
        Error::Timeout(TimeoutKind::Proxy) => TW_STATUS_PROXY_TIMEOUT,
        Error::Proxy { .. } => TW_STATUS_PROXY,
        Error::Timeout(_) => TW_STATUS_TIMEOUT,
        Error::Tls(_) => TW_STATUS_TLS,
        Error::HandshakeRejected { .. } => TW_STATUS_HANDSHAKE_REJECTED,
        Error::Handshake(_) => TW_STATUS_HANDSHAKE,
        Error::HandshakeEof => TW_STATUS_HANDSHAKE_EOF,
        Error::Extension(_) => TW_STATUS_HANDSHAKE_EXTENSION,
        Error::Send(e) => status_of_send(e),
        Error::Io(_) => TW_STATUS_IO,
        Error::ContextGone => TW_STATUS_CONTEXT_GONE,
        Error::ShuttingDown => TW_STATUS_SHUTTING_DOWN,
        Error::Aborted => TW_STATUS_ABORTED,
        _ => TW_STATUS_PROTOCOL,
    }
}

fn status_of_send(error: &SendError) -> tw_status {
    match error {
        SendError::Closed => TW_STATUS_NOT_OPEN,
        SendError::ControlPayloadTooLong => TW_STATUS_PAYLOAD_TOO_LONG,
        SendError::InvalidCloseCode(_) => TW_STATUS_INVALID_CLOSE_CODE,
        SendError::InvalidUtf8 => TW_STATUS_INVALID_UTF8,
        SendError::MessageInProgress => TW_STATUS_MESSAGE_IN_PROGRESS,
        SendError::NoMessageInProgress => TW_STATUS_NO_MESSAGE_IN_PROGRESS,
        SendError::CompressionFailed => TW_STATUS_COMPRESSION_FAILED,
        #[allow(unreachable_patterns)]
        _ => TW_STATUS_PROTOCOL,
    }
}

thread_local! {
    /// Detail of the most recent failed call on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records the detail of a failure for `tw_last_error`. Interior NULs (from peer-supplied
/// text inside an error) are replaced so the message is never cut short silently.
pub(crate) fn set_last_error(detail: &str) {
    let text = CString::new(detail.replace('\0', "\u{fffd}")).unwrap_or_default();
    // `try_with` fails only while the thread is being torn down; then there is nobody to
    // read the message anyway.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = text;
        }
    });
}

/// Static text naming a status: `"ok"`, `"stale id"`, ... Unknown values give
/// `"unknown status"`; never NULL.
///
/// Ownership: the string is static; do not free it. Lifetime: the whole program.
///
/// Thread safety: may be called from any thread.
#[no_mangle]
pub extern "C" fn tw_status_str(status: u32) -> *const c_char {
    guard_ptr(|| {
        let text = tw_status::ALL
            .iter()
            .find(|s| **s as u32 == status)
            .map_or("unknown status\0", |s| s.text());
        text.as_ptr().cast()
    })
}

/// Detail of the most recent call on this thread that did not return `TW_STATUS_OK` (or
/// `TW_STATUS_AGAIN`), as NUL-terminated UTF-8: which argument was NULL, what the OS said,
/// which certificate failed. An empty string when no call has failed on this thread.
///
/// Ownership: owned by the library; do not free it. Lifetime: valid until the next failing
/// `tw_` call on this thread (successful calls leave it alone) or the thread's end.
///
/// Thread safety: may be called from any thread; each thread has its own message.
#[no_mangle]
pub extern "C" fn tw_last_error() -> *const c_char {
    guard_ptr(|| {
        LAST_ERROR
            .try_with(|slot| match slot.try_borrow() {
                // The CString's buffer lives in the thread-local and is replaced, not
                // mutated, by the next failure, so the pointer stays valid until then.
                Ok(s) => s.as_ptr(),
                Err(_) => EMPTY.as_ptr().cast(),
            })
            .unwrap_or(EMPTY.as_ptr().cast())
    })
}

/// The library's version as static NUL-terminated text, `"MAJOR.MINOR.PATCH"`. Compare
/// with the header's `TW_VERSION_MAJOR` / `_MINOR` / `_PATCH` to detect a mismatch between
/// the header a program was built with and the library it runs with.
///
/// Ownership: static; do not free it. Lifetime: the whole program.
///
/// Thread safety: may be called from any thread.
#[no_mangle]
pub extern "C" fn tw_version() -> *const c_char {
    guard_ptr(|| concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast())
}

static EMPTY: &[u8; 1] = b"\0";

/// The panic boundary of the functions that return static text: "" if anything panicked.
fn guard_ptr(body: impl FnOnce() -> *const c_char) -> *const c_char {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(EMPTY.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn text(p: *const c_char) -> String {
        // SAFETY: both functions return static NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    #[test]
    fn every_status_has_its_own_nul_terminated_name() {
        let mut seen = std::collections::HashSet::new();
        for s in tw_status::ALL {
            let t = s.text();
            assert!(
                t.ends_with('\0') && !t[..t.len() - 1].contains('\0'),
                "{s:?}"
            );
            assert!(seen.insert(t), "{s:?} shares its text");
            assert_eq!(text(tw_status_str(s as u32)), t.trim_end_matches('\0'));
        }
    }

    #[test]
    fn numbers_are_unique_and_grouped() {
        let mut numbers: Vec<u32> = tw_status::ALL.iter().map(|s| *s as u32).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), tw_status::ALL.len());
    }

    #[test]
    fn unknown_status_has_a_name_too() {
        assert_eq!(text(tw_status_str(7)), "unknown status");
        assert_eq!(text(tw_status_str(u32::MAX)), "unknown status");
    }

    #[test]
    fn last_error_is_per_thread_and_survives_nul_bytes() {
        set_last_error("bad\0thing");
        assert_eq!(text(tw_last_error()), "bad\u{fffd}thing");
        let other = std::thread::spawn(|| text(tw_last_error())).join().ok();
        assert_eq!(other.as_deref(), Some(""));
    }

    #[test]
    fn version_matches_the_crate() {
        assert_eq!(text(tw_version()), env!("CARGO_PKG_VERSION"));
    }
}
