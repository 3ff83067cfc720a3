//! The two small view types that cross the boundary by value: `tw_bytes` (out) and
//! `tw_header` (in).

use std::ffi::c_char;
use std::ptr;

/// A borrowed view of bytes handed out by the library: `data` points to `len` bytes, not
/// NUL-terminated. Where a field is optional, `data` is NULL when it is absent (an empty
/// but present value has a non-NULL `data` and `len` 0). Who owns the bytes and how long
/// they stay valid is said where each view is handed out (usually: until the next `tw_poll`
/// on the same context).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tw_bytes {
    pub data: *const u8,
    pub len: usize,
}

/// Non-NULL target for empty views, so that C code may pass `data` to `memcpy` and friends.
static EMPTY: [u8; 1] = [0];

impl tw_bytes {
    pub(crate) const NONE: tw_bytes = tw_bytes {
        data: ptr::null(),
        len: 0,
    };

    pub(crate) fn of(bytes: &[u8]) -> tw_bytes {
        if bytes.is_empty() {
            return tw_bytes {
                data: EMPTY.as_ptr(),
                len: 0,
            };
        }
        tw_bytes {
            data: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    pub(crate) fn opt(bytes: Option<&[u8]>) -> tw_bytes {
        bytes.map_or(tw_bytes::NONE, tw_bytes::of)
    }
}

/// One HTTP header given to the library (`tw_conn_accept`, `tw_conn_reject`,
/// `tw_conn_respond`): NUL-terminated UTF-8 `name` and `value`, both required. The library
/// copies them during the call.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tw_header {
    pub name: *const c_char,
    pub value: *const c_char,
}
