//! `tw_request`: read-only view of an HTTP request delivered by `TW_EVENT_REQUEST` or
//! `TW_EVENT_HTTP_REQUEST` (`tidewire_net::Request`).

use std::ffi::c_char;

use tidewire_net::Request;

use crate::bytes::tw_bytes;
use crate::ffi::{guard, try_cstr, try_out, try_ref, Checked, Failure, Opaque, OK};
use crate::status::tw_status;

/// An HTTP request, borrowed from the context that delivered it: valid until the next
/// `tw_poll` on that context. Never freed by the caller. Every view read from it has the
/// same lifetime.
#[allow(non_camel_case_types)]
pub struct tw_request {
    _private: [u8; 0],
}

// SAFETY: `*const tw_request` values are only made by `tw_poll` from `&Request`.
unsafe impl Opaque for tw_request {
    type Rust = Request;
}

fn not_found(what: String) -> Failure {
    Failure::new(tw_status::TW_STATUS_NOT_FOUND, what)
}

/// Shared shape: check the request and the output, read, write the output.
///
/// # Safety
/// `request` is NULL or a live request from an event; `out` is NULL or writable.
unsafe fn read<T>(
    request: *const tw_request,
    out: *mut T,
    out_name: &'static str,
    get: impl FnOnce(&Request) -> Checked<T>,
) -> tw_status {
    guard(|| {
        // SAFETY: caller contract.
        let r = unsafe { try_ref(request, "request") }?;
        // SAFETY: caller contract.
        let out = unsafe { try_out(out, out_name) }?;
        out.write(get(r)?);
        OK
    })
}

impl tw_request {
    /// The request method (`GET`, ...).
    ///
    /// Ownership: `*out_method` borrows from the request (valid until the next `tw_poll`);
    /// on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `request` is NULL or a live request from an event of the current poll;
    /// `out_method` is NULL or valid for writing a `tw_bytes`.
    ///
    /// Thread safety: the thread that owns the context that delivered it.
    #[no_mangle]
    pub unsafe extern "C" fn tw_request_method(
        request: *const tw_request,
        out_method: *mut tw_bytes,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            read(request, out_method, "out_method", |r| {
                Ok(tw_bytes::of(r.method.as_bytes()))
            })
        }
    }

    /// The request target up to `?` (`/chat`).
    ///
    /// Ownership: `*out_path` borrows from the request (valid until the next `tw_poll`);
    /// on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `request` is NULL or a live request from an event of the current poll; `out_path`
    /// is NULL or valid for writing a `tw_bytes`.
    ///
    /// Thread safety: the thread that owns the context that delivered it.
    #[no_mangle]
    pub unsafe extern "C" fn tw_request_path(
        request: *const tw_request,
        out_path: *mut tw_bytes,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            read(request, out_path, "out_path", |r| {
                Ok(tw_bytes::of(r.path.as_bytes()))
            })
        }
    }

    /// What follows the first `?` of the target: `data` is NULL when there was no `?`, and
    /// non-NULL with `len` 0 for a bare `?`.
    ///
    /// Ownership: `*out_query` borrows from the request (valid until the next `tw_poll`);
    /// on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `request` is NULL or a live request from an event of the current poll; `out_query`
    /// is NULL or valid for writing a `tw_bytes`.
    ///
    /// Thread safety: the thread that owns the context that delivered it.
    #[no_mangle]
    pub unsafe extern "C" fn tw_request_query(
        request: *const tw_request,
        out_query: *mut tw_bytes,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            read(request, out_query, "out_query", |r| {
                Ok(tw_bytes::opt(r.query.as_deref().map(str::as_bytes)))
            })
        }
    }

    /// Number of header fields, in the order received (repeated names included).
    ///
    /// Ownership: on failure `*out_count` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `request` is NULL or a live request from an event of the current poll; `out_count`
    /// is NULL or valid for writing a size_t.
    ///
    /// Thread safety: the thread that owns the context that delivered it.
    #[no_mangle]
    pub unsafe extern "C" fn tw_request_header_count(
        request: *const tw_request,
        out_count: *mut usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe { read(request, out_count, "out_count", |r| Ok(r.headers.len())) }
    }

    /// The header field at `index` (0-based, in the order received): its name as sent (any
    /// case) and its value without surrounding whitespace (bytes, usually but not always
    /// UTF-8).
    ///
    /// Ownership: both views borrow from the request (valid until the next `tw_poll`); on
    /// failure both outputs are untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_NOT_FOUND` (index past
    /// the end).
    ///
    /// # Safety
    /// `request` is NULL or a live request from an event of the current poll; `out_name`
    /// and `out_value` are NULL or valid for writing a `tw_bytes` each.
    ///
    /// Thread safety: the thread that owns the context that delivered it.
    #[no_mangle]
    pub unsafe extern "C" fn tw_request_header_at(
        request: *const tw_request,
        index: usize,
        out_name: *mut tw_bytes,
        out_value: *mut tw_bytes,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let r = unsafe { try_ref(request, "request") }?;
            // SAFETY: caller contract.
            let name = unsafe { try_out(out_name, "out_name") }?;
            // SAFETY: caller contract.
            let value = unsafe { try_out(out_value, "out_value") }?;
            let h = r
                .headers
                .get(index)
                .ok_or_else(|| not_found(format!("header index {index} of {}", r.headers.len())))?;
            name.write(tw_bytes::of(h.name.as_bytes()));
            value.write(tw_bytes::of(&h.value));
            OK
        })
    }

    /// The value of the first header field called `name` (compared without regard to
    /// ASCII case), e.g. `"Origin"`, `"Cookie"`, `"Sec-WebSocket-Protocol"`.
    ///
    /// Ownership: `name` (NUL-terminated) is borrowed for the call; `*out_value` borrows
    /// from the request (valid until the next `tw_poll`); on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_NOT_FOUND` (no such header).
    ///
    /// # Safety
    /// `request` is NULL or a live request from an event of the current poll; `name` is
    /// NULL or NUL-terminated; `out_value` is NULL or valid for writing a `tw_bytes`.
    ///
    /// Thread safety: the thread that owns the context that delivered it.
    #[no_mangle]
    pub unsafe extern "C" fn tw_request_header(
        request: *const tw_request,
        name: *const c_char,
        out_value: *mut tw_bytes,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let r = unsafe { try_ref(request, "request") }?;
            // SAFETY: caller contract.
            let name = unsafe { try_cstr(name, "name") }?;
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_value, "out_value") }?;
            let h = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| not_found(format!("no {name:?} header")))?;
            out.write(tw_bytes::of(&h.value));
            OK
        })
    }

    /// Number of subprotocols the client offered (from every Sec-WebSocket-Protocol
    /// header, in order).
    ///
    /// Ownership: on failure `*out_count` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `request` is NULL or a live request from an event of the current poll; `out_count`
    /// is NULL or valid for writing a size_t.
    ///
    /// Thread safety: the thread that owns the context that delivered it.
    #[no_mangle]
    pub unsafe extern "C" fn tw_request_subprotocol_count(
        request: *const tw_request,
        out_count: *mut usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            read(request, out_count, "out_count", |r| {
                Ok(r.subprotocols.len())
            })
        }
    }

    /// The offered subprotocol at `index` (0-based, in the client's order of preference).
    ///
    /// Ownership: `*out_name` borrows from the request (valid until the next `tw_poll`);
    /// on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_NOT_FOUND`.
    ///
    /// # Safety
    /// `request` is NULL or a live request from an event of the current poll; `out_name`
    /// is NULL or valid for writing a `tw_bytes`.
    ///
    /// Thread safety: the thread that owns the context that delivered it.
    #[no_mangle]
    pub unsafe extern "C" fn tw_request_subprotocol_at(
        request: *const tw_request,
        index: usize,
        out_name: *mut tw_bytes,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            read(request, out_name, "out_name", |r| {
                r.subprotocols
                    .get(index)
                    .map(|s| tw_bytes::of(s.as_bytes()))
                    .ok_or_else(|| {
                        not_found(format!(
                            "subprotocol index {index} of {}",
                            r.subprotocols.len()
                        ))
                    })
            })
        }
    }
}
