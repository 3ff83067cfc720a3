//! `tw_listener` functions: a listener's address, and stopping it.

use std::ffi::c_char;

use tidewire_net::ListenerId;

use crate::context::{tw_context, with_ctx, with_ctx_ref};
use crate::ffi::{non_null, try_out, write_text, OK};
use crate::ids::tw_listener;
use crate::status::tw_status;

// A listener is named by its `tw_listener` id (an integer), so its functions are free
// functions rather than methods of an opaque type.

/// The port a listener is bound to (the real one when 0 was asked).
///
/// Ownership: on failure `*out_port` is untouched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_STALE_ID`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `out_port` is NULL or valid for writing a uint16_t.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_listener_port(
    ctx: *const tw_context,
    listener: tw_listener,
    out_port: *mut u16,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx_ref(ctx, |c| {
            // SAFETY: caller contract.
            let out = try_out(out_port, "out_port")?;
            let addr = c.net.local_addr(ListenerId(listener))?;
            out.write(addr.port());
            OK
        })
    }
}

/// The address a listener is bound to as NUL-terminated text, `127.0.0.1:9001` or
/// `[::1]:9001`. 64 bytes are always enough.
///
/// Ownership: the text is written into the caller's `buf` of `cap` bytes, and its
/// length without the NUL into `*out_len`. On failure neither is touched.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_STALE_ID`,
/// `TW_STATUS_BUFFER_TOO_SMALL`, `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle; `buf` is NULL or valid for writing `cap` bytes;
/// `out_len` is NULL or valid for writing a size_t.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_listener_local_addr(
    ctx: *const tw_context,
    listener: tw_listener,
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
            let addr = c.net.local_addr(ListenerId(listener))?;
            // SAFETY: `buf` is non-NULL and writable for `cap` bytes (caller contract).
            let n = write_text(&addr.to_string(), buf, cap)?;
            out.write(n);
            OK
        })
    }
}

/// Stops a listener: no new connections are accepted; connections it accepted go on.
/// Its id is stale afterwards.
///
/// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_STALE_ID`,
/// `TW_STATUS_INTERNAL`.
///
/// # Safety
/// `ctx` is NULL or a live handle.
///
/// Thread safety: the thread that owns the context.
#[no_mangle]
pub unsafe extern "C" fn tw_listener_close(
    ctx: *mut tw_context,
    listener: tw_listener,
) -> tw_status {
    // SAFETY: caller contract.
    unsafe {
        with_ctx(ctx, |c| {
            c.net.unlisten(ListenerId(listener))?;
            OK
        })
    }
}
