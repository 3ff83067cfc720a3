//! Plumbing shared by every exported function: the opaque-handle casts, one checker per kind
//! of argument, and the panic boundary.
//!
//! Every exported body has the same shape: `guard(|| { check arguments with the `try_*`
//! helpers (each returns a `Failure` naming the argument); convert; call crates/net; write
//! the outputs last })`. `guard` catches panics and turns a `Failure` into its status and the
//! thread's `tw_last_error` text, so a reviewer checks "every pointer went through a `try_`
//! helper" instead of reading error handling.

use std::borrow::Cow;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use tidewire_net::Error;

use crate::status::{set_last_error, status_of, tw_status};

/// Why a call failed: the status returned to C and the detail for `tw_last_error`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: tw_status,
    pub(crate) detail: Cow<'static, str>,
}

impl Failure {
    pub(crate) fn new(status: tw_status, detail: impl Into<Cow<'static, str>>) -> Failure {
        Failure {
            status,
            detail: detail.into(),
        }
    }

    pub(crate) fn null(name: &'static str) -> Failure {
        Failure::new(
            tw_status::TW_STATUS_NULL_ARGUMENT,
            format!("argument `{name}` is NULL"),
        )
    }

    pub(crate) fn invalid(detail: impl Into<Cow<'static, str>>) -> Failure {
        Failure::new(tw_status::TW_STATUS_INVALID_ARGUMENT, detail)
    }

    pub(crate) fn internal() -> Failure {
        Failure::new(
            tw_status::TW_STATUS_INTERNAL,
            "internal error (a bug in tidewire was caught at the C boundary)",
        )
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::new(status_of(&e), e.to_string())
    }
}

pub(crate) type Checked<T> = Result<T, Failure>;

/// Runs an exported body: panics become `TW_STATUS_INTERNAL`, failures set `tw_last_error`.
pub(crate) fn guard(body: impl FnOnce() -> Checked<tw_status>) -> tw_status {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| Err(Failure::internal()));
    match outcome {
        Ok(status) => status,
        Err(f) => {
            set_last_error(&f.detail);
            f.status
        }
    }
}

/// For bodies that return nothing (`_free`): a panic is swallowed, never propagated.
pub(crate) fn guard_void(body: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(body)).is_err() {
        set_last_error("internal error while freeing (a bug in tidewire)");
    }
}

pub(crate) const OK: Checked<tw_status> = Ok(tw_status::TW_STATUS_OK);

/// Ties an opaque C type to the Rust value behind it. Every handle the library gives out is
/// a `Box<Self::Rust>` turned into a pointer (no reference counting across the boundary),
/// except `tw_request`, which is only ever borrowed.
///
/// # Safety
/// `Rust` must be the only type ever stored behind a pointer of type `*mut Self`.
pub(crate) unsafe trait Opaque {
    type Rust;
}

/// Gives a new handle to C.
pub(crate) fn into_handle<T: Opaque>(value: T::Rust) -> *mut T {
    Box::into_raw(Box::new(value)).cast()
}

/// Takes a handle back and drops it. NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from `into_handle` and was not freed before.
pub(crate) unsafe fn free_handle<T: Opaque>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: per the contract, `p` is a live `Box<T::Rust>` (Opaque guarantees the type).
        drop(unsafe { Box::from_raw(p.cast::<T::Rust>()) });
    }
}

/// A shared borrow of a handle.
///
/// # Safety
/// `p` is NULL or a live handle of type `T` that nobody mutates during the borrow.
pub(crate) unsafe fn try_ref<'a, T: Opaque>(
    p: *const T,
    name: &'static str,
) -> Checked<&'a T::Rust> {
    // SAFETY: per the contract, a non-NULL `p` points to a live `T::Rust`.
    unsafe { p.cast::<T::Rust>().as_ref() }.ok_or_else(|| Failure::null(name))
}

/// An exclusive borrow of a handle.
///
/// # Safety
/// `p` is NULL or a live handle of type `T` that nobody else uses during the borrow.
pub(crate) unsafe fn try_mut<'a, T: Opaque>(
    p: *mut T,
    name: &'static str,
) -> Checked<&'a mut T::Rust> {
    // SAFETY: per the contract, a non-NULL `p` points to a live `T::Rust`, used only here.
    unsafe { p.cast::<T::Rust>().as_mut() }.ok_or_else(|| Failure::null(name))
}

/// An output slot, checked before any work so that a NULL output fails without effects.
///
/// # Safety
/// `p` is NULL or valid for writing one `T`.
pub(crate) unsafe fn try_out<'a, T>(p: *mut T, name: &'static str) -> Checked<Out<'a, T>> {
    if p.is_null() {
        return Err(Failure::null(name));
    }
    Ok(Out {
        p,
        _life: std::marker::PhantomData,
    })
}

/// Checks a pointer that is used later (an output buffer) without borrowing it.
pub(crate) fn non_null<T>(p: *const T, name: &'static str) -> Checked<()> {
    if p.is_null() {
        return Err(Failure::null(name));
    }
    Ok(())
}

/// A checked output pointer: written once, at the end of a successful call.
pub(crate) struct Out<'a, T> {
    p: *mut T,
    _life: std::marker::PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    pub(crate) fn write(self, value: T) {
        // SAFETY: `p` is non-NULL and, per `try_out`'s contract, valid for one write. The
        // old value is not read or dropped (it may be uninitialised C memory).
        unsafe { self.p.write(value) }
    }
}

/// Bytes from C: `(data, len)`. `data` may be NULL only when `len` is 0.
///
/// # Safety
/// A non-NULL `data` is valid for reading `len` bytes during the call.
pub(crate) unsafe fn try_bytes<'a>(
    data: *const u8,
    len: usize,
    name: &'static str,
) -> Checked<&'a [u8]> {
    if data.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Failure::null(name))
        };
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!(
            "`{name}` length {len} is too large"
        )));
    }
    // SAFETY: per the contract, `data` points to `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// UTF-8 text from C as `(text, len)` (not NUL-terminated).
///
/// # Safety
/// As `try_bytes`.
pub(crate) unsafe fn try_text<'a>(
    text: *const c_char,
    len: usize,
    name: &'static str,
) -> Checked<&'a str> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { try_bytes(text.cast(), len, name) }?;
    utf8(bytes, name)
}

/// NUL-terminated UTF-8 text from C.
///
/// # Safety
/// A non-NULL `s` points to a NUL-terminated string readable during the call.
pub(crate) unsafe fn try_cstr<'a>(s: *const c_char, name: &'static str) -> Checked<&'a str> {
    if s.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract.
    let bytes = unsafe { CStr::from_ptr(s) }.to_bytes();
    utf8(bytes, name)
}

/// Like `try_cstr`, but NULL means "none".
///
/// # Safety
/// As `try_cstr`.
pub(crate) unsafe fn try_opt_cstr<'a>(
    s: *const c_char,
    name: &'static str,
) -> Checked<Option<&'a str>> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { try_cstr(s, name) }.map(Some)
}

pub(crate) fn utf8<'a>(bytes: &'a [u8], name: &'static str) -> Checked<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            tw_status::TW_STATUS_INVALID_UTF8,
            format!("`{name}` is not valid UTF-8 ({e})"),
        )
    })
}

/// A C array `(items, count)`. `items` may be NULL only when `count` is 0.
///
/// # Safety
/// A non-NULL `items` is valid for reading `count` values during the call.
pub(crate) unsafe fn try_array<'a, T>(
    items: *const T,
    count: usize,
    name: &'static str,
) -> Checked<&'a [T]> {
    if items.is_null() {
        return if count == 0 {
            Ok(&[])
        } else {
            Err(Failure::null(name))
        };
    }
    if count > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Failure::invalid(format!(
            "`{name}` count {count} is too large"
        )));
    }
    // SAFETY: per the contract, `items` points to `count` initialised values.
    Ok(unsafe { std::slice::from_raw_parts(items, count) })
}

/// Writes `text` and a NUL into a caller buffer `(buf, cap)` and returns the length without
/// the NUL; `TW_STATUS_BUFFER_TOO_SMALL` (buffer untouched) when it does not fit.
///
/// # Safety
/// `buf` is non-NULL and valid for writing `cap` bytes.
pub(crate) unsafe fn write_text(text: &str, buf: *mut c_char, cap: usize) -> Checked<usize> {
    let n = text.len();
    if n >= cap {
        return Err(Failure::new(
            tw_status::TW_STATUS_BUFFER_TOO_SMALL,
            format!("{} bytes needed (with the NUL), buffer has {cap}", n + 1),
        ));
    }
    // SAFETY: `buf` has room for `cap > n` bytes; the source is a distinct Rust string.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
        buf.add(n).write(0);
    }
    Ok(n)
}

/// Milliseconds from C as a `Duration`.
pub(crate) fn millis(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms)
}
