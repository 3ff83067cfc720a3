//! `tw_listen_options`: how a listener accepts connections (`tidewire_net::ListenOptions`).

use std::ffi::c_char;

use tidewire_net::{ConnectionRate, ListenOptions, PeerLimits, TlsAcceptor};

use crate::deflate::tw_deflate_config;
use crate::ffi::{
    free_handle, guard, guard_void, into_handle, try_bytes, try_cstr, try_mut, try_out, try_ref,
    Checked, Opaque, OK,
};
use crate::publish::slow_action;
use crate::status::tw_status;

/// Options of one listener. Create with `tw_listen_options_new`, adjust, pass to
/// `tw_context_listen` (which copies them), free with `tw_listen_options_free`.
#[allow(non_camel_case_types)]
pub struct tw_listen_options {
    _private: [u8; 0],
}

// SAFETY: every `*mut tw_listen_options` handed out is a `Box<ListenOptions>`.
unsafe impl Opaque for tw_listen_options {
    type Rust = ListenOptions;
}

/// # Safety
/// `options` is NULL or a live handle used by nobody else during the call.
unsafe fn set(
    options: *mut tw_listen_options,
    apply: impl FnOnce(&mut ListenOptions) -> Checked<()>,
) -> tw_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { try_mut(options, "options") }?;
        // tidewire-net checks a copy (`ListenOptions::validate`, the one home of those
        // rules); a refused value leaves the options as they were.
        let mut next = o.clone();
        apply(&mut next)?;
        next.validate()?;
        *o = next;
        OK
    })
}

/// Changes the peer limits.
///
/// # Safety
/// As for `set`.
unsafe fn set_peer_limits(
    options: *mut tw_listen_options,
    change: impl FnOnce(&mut PeerLimits),
) -> tw_status {
    // SAFETY: forwarded contract.
    unsafe {
        set(options, |o| {
            change(&mut o.peer_limits);
            Ok(())
        })
    }
}

/// A count where C says "0: no limit".
fn limit(count: usize) -> Option<usize> {
    (count > 0).then_some(count)
}

impl tw_listen_options {
    /// Creates listen options with the defaults: plain `ws://`, backlog 1024, no
    /// SO_REUSEPORT, no subprotocols, any origin, upgrades accepted automatically, plain
    /// HTTP requests answered with 426, permessage-deflate accepted when offered (RFC 7692's
    /// defaults with `server_no_context_takeover`, so an idle connection holds no
    /// compressor).
    ///
    /// Ownership: on success `*out_options` is a new handle owned by the caller (free with
    /// `tw_listen_options_free`); on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `out_options` is NULL or valid for writing one pointer.
    ///
    /// Thread safety: may be called from any thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_new(
        out_options: *mut *mut tw_listen_options,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_options, "out_options") }?;
            out.write(into_handle::<tw_listen_options>(ListenOptions::default()));
            OK
        })
    }

    /// Frees listen options. NULL is a no-op. Listeners created with them are not affected.
    ///
    /// Ownership: takes ownership of `options`; freeing twice is undefined behaviour.
    ///
    /// # Safety
    /// `options` is NULL or a live handle from `tw_listen_options_new`.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_free(options: *mut tw_listen_options) {
        // SAFETY: caller contract.
        guard_void(|| unsafe { free_handle(options) })
    }

    /// Sets SO_REUSEPORT so that several contexts (one per core) can listen on the same
    /// port and the kernel spreads connections over them. Default false.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_reuse_port(
        options: *mut tw_listen_options,
        on: bool,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.reuse_port = on;
                Ok(())
            })
        }
    }

    /// At most this many connections (handshaking or open) per peer address; IPv6
    /// addresses are counted by their /64. 0: no limit (the default: a NAT can put many
    /// users behind one address). A connection over a limit of this kind is closed right
    /// after accept, before anything is read (the client sees it closed or reset; no HTTP
    /// answer, no event).
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_max_connections_per_address(
        options: *mut tw_listen_options,
        count: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe { set_peer_limits(options, |p| p.max_connections_per_address = limit(count)) }
    }

    /// At most this many opening handshakes in progress (accepted, not yet open) per peer
    /// address: what a slow-handshake flood from one address can hold. 0: no limit.
    /// Default 4096. Over it: closed at once, as for
    /// `tw_listen_options_set_max_connections_per_address`.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_max_handshakes_per_address(
        options: *mut tw_listen_options,
        count: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe { set_peer_limits(options, |p| p.max_handshakes_per_address = limit(count)) }
    }

    /// At most this many opening handshakes in progress on the listener, all addresses
    /// together. 0: no limit. Default 16384. Over it: closed at once.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_max_handshakes(
        options: *mut tw_listen_options,
        count: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe { set_peer_limits(options, |p| p.max_handshakes = limit(count)) }
    }

    /// New connections per peer address: a token bucket holding `burst` connections,
    /// refilled at `per_second`. `per_second` 0 turns the limit off (the default); otherwise
    /// it must be finite and above 0, and `burst` at least 1. Over it: closed at once.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_connection_rate(
        options: *mut tw_listen_options,
        per_second: f64,
        burst: u32,
    ) -> tw_status {
        let rate = (per_second != 0.0).then_some(ConnectionRate { per_second, burst });
        // SAFETY: caller contract.
        unsafe { set_peer_limits(options, |p| p.connection_rate = rate) }
    }

    /// Length of the kernel's accept queue, 1 to 65535. Default 1024.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_backlog(
        options: *mut tw_listen_options,
        backlog: u32,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
                Ok(())
            })
        }
    }

    /// Serves `wss://` with a certificate chain (leaf first) and its private key (PKCS#8,
    /// PKCS#1 or SEC1), both PEM text in memory. Replaces an earlier TLS setting.
    ///
    /// Ownership: the PEM bytes are borrowed for the call and parsed; nothing is kept.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_TLS` (unusable
    /// certificate or key; the options are unchanged).
    ///
    /// # Safety
    /// `options` is NULL or a live handle; a non-NULL `cert_pem` / `key_pem` is readable for
    /// `cert_len` / `key_len` bytes.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_tls_pem(
        options: *mut tw_listen_options,
        cert_pem: *const u8,
        cert_len: usize,
        key_pem: *const u8,
        key_len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let o = unsafe { try_mut(options, "options") }?;
            // SAFETY: caller contract.
            let cert = unsafe { try_bytes(cert_pem, cert_len, "cert_pem") }?;
            // SAFETY: caller contract.
            let key = unsafe { try_bytes(key_pem, key_len, "key_pem") }?;
            o.tls = Some(TlsAcceptor::from_pem(cert, key)?);
            OK
        })
    }

    /// Serves `wss://` with a certificate chain and private key read from two PEM files.
    /// Reading the files blocks: call it at start-up. Replaces an earlier TLS setting.
    ///
    /// Ownership: the paths (NUL-terminated UTF-8) are borrowed for the call.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_TLS` (unreadable file, unusable certificate or key; options unchanged).
    ///
    /// # Safety
    /// `options` is NULL or a live handle; the paths are NULL or NUL-terminated strings.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_tls_pem_files(
        options: *mut tw_listen_options,
        cert_path: *const c_char,
        key_path: *const c_char,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let o = unsafe { try_mut(options, "options") }?;
            // SAFETY: caller contract.
            let cert = unsafe { try_cstr(cert_path, "cert_path") }?;
            // SAFETY: caller contract.
            let key = unsafe { try_cstr(key_path, "key_path") }?;
            o.tls = Some(TlsAcceptor::from_pem_files(cert, key)?);
            OK
        })
    }

    /// Adds a subprotocol this server speaks (in order of preference). The first one the
    /// client also offered is selected (given to `TW_EVENT_REQUEST` when the application
    /// handles requests). A client that offers none is served without a subprotocol unless
    /// `tw_listen_options_set_require_subprotocol` is on.
    ///
    /// Ownership: `name` (NUL-terminated UTF-8, not empty) is copied.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_INVALID_ARGUMENT` (not an HTTP token, e.g. empty or with spaces, or
    /// already added).
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `name` is NULL or a NUL-terminated string.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_add_subprotocol(
        options: *mut tw_listen_options,
        name: *const c_char,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                // SAFETY: caller contract.
                let name = try_cstr(name, "name")?;
                o.subprotocols.push(name.to_owned());
                Ok(())
            })
        }
    }

    /// Adds an allowed Origin. Once one is added, upgrade requests whose Origin is not in
    /// the list (compared without regard to ASCII case) are rejected with 403, before the
    /// application sees them. Requests without Origin are let through unless
    /// `tw_listen_options_set_require_origin` is on.
    ///
    /// Ownership: `origin` (NUL-terminated UTF-8) is copied.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `origin` is NULL or a NUL-terminated string.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_add_allowed_origin(
        options: *mut tw_listen_options,
        origin: *const c_char,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                // SAFETY: caller contract.
                let origin = try_cstr(origin, "origin")?;
                o.allowed_origins
                    .get_or_insert_with(Vec::new)
                    .push(origin.to_owned());
                Ok(())
            })
        }
    }

    /// When on, a client that offers none of the listener's subprotocols is refused with
    /// 400 (as python-websockets does). Default off: it is served without a subprotocol.
    /// Without subprotocols added, this changes nothing.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_require_subprotocol(
        options: *mut tw_listen_options,
        on: bool,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.require_subprotocol = on;
                Ok(())
            })
        }
    }

    /// When on, and allowed origins were added, an upgrade request without Origin is
    /// refused with 403. Default off: non-browser clients (which send no Origin) pass.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_require_origin(
        options: *mut tw_listen_options,
        on: bool,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.require_origin = on;
                Ok(())
            })
        }
    }

    /// When on, every valid upgrade request that passed the listener's Origin and
    /// subprotocol rules is delivered as `TW_EVENT_REQUEST` (with the subprotocol they
    /// selected in its `subprotocol`) and waits for `tw_conn_accept` or `tw_conn_reject`
    /// (the handshake timeout keeps running: a request still undecided when it runs out is
    /// answered 503 and reported as `TW_EVENT_ERROR` with `TW_STATUS_TIMEOUT`).
    /// Default off: requests are accepted automatically.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_handle_requests(
        options: *mut tw_listen_options,
        on: bool,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.handle_requests = on;
                Ok(())
            })
        }
    }

    /// When on, HTTP requests that are not upgrades are delivered as
    /// `TW_EVENT_HTTP_REQUEST`, to be answered with `tw_conn_respond` within the handshake
    /// timeout (else 503, as for `_handle_requests`). Default off: they are answered with
    /// 426 Upgrade Required.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_handle_http(
        options: *mut tw_listen_options,
        on: bool,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.handle_http = on;
                Ok(())
            })
        }
    }

    /// What `tw_context_publish` and `tw_context_broadcast` do with a connection of this
    /// listener that does not keep up: one whose output already holds `limit` bytes or
    /// more when a message for it comes. `action` is `TW_SLOW_SKIP` (it misses the message
    /// and stays open) or `TW_SLOW_CLOSE` (it is closed with `TW_SLOW_CLOSE_CODE`, 1008).
    /// Default: 1 MiB, `TW_SLOW_SKIP`. `limit` must be at least 1. Sends addressed to the
    /// connection alone (`tw_conn_send`) keep their own limits (`tw_config_set_max_buffered`).
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`
    /// (`limit` 0, or an unknown action; the options are unchanged).
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_slow_subscriber(
        options: *mut tw_listen_options,
        limit: usize,
        action: u32,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.slow_subscriber.limit = limit;
                o.slow_subscriber.action = slow_action(action)?;
                Ok(())
            })
        }
    }

    /// Accepts permessage-deflate when a client offers it, with these settings instead of
    /// the default ones; a config with `tw_deflate_config_set_enabled(d, false)` turns
    /// compression off for this listener.
    ///
    /// Ownership: `deflate` is copied; the caller still owns and frees it.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` and `deflate` are NULL or live handles.
    ///
    /// Thread safety: not while another thread uses `options`, or mutates `deflate`.
    #[no_mangle]
    pub unsafe extern "C" fn tw_listen_options_set_deflate(
        options: *mut tw_listen_options,
        deflate: *const tw_deflate_config,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let o = unsafe { try_mut(options, "options") }?;
            // SAFETY: caller contract.
            let d = unsafe { try_ref(deflate, "deflate") }?;
            o.deflate = Some(d.clone());
            OK
        })
    }
}
