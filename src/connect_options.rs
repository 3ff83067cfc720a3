//! `tw_connect_options`: how a client connection is opened (`tidewire_net::ConnectOptions`),
//! with the TLS trust settings that become a `TlsConnector`.
//!
//! Building a connector reads the system's root certificates, so it is built once, at the
//! first `tw_context_connect` that needs it, and reused by every later connect with the same
//! options; a TLS setter drops it.

use std::ffi::c_char;
use std::sync::Mutex;

use tidewire_net::{ConnectOptions, Error, Proxy, ReconnectPolicy, TlsClientOptions, TlsConnector};

use crate::deflate::tw_deflate_config;
use crate::ffi::{
    free_handle, guard, guard_void, into_handle, millis, try_bytes, try_cstr, try_mut, try_out,
    try_ref, Checked, Failure, Opaque, OK,
};
use crate::status::tw_status;

/// Options of client connections. Create with `tw_connect_options_new`, adjust, pass to
/// `tw_context_connect` (which copies what it needs), free with `tw_connect_options_free`.
/// One options object may serve many connects; its TLS setup is built once and shared.
#[allow(non_camel_case_types)]
pub struct tw_connect_options {
    _private: [u8; 0],
}

#[derive(Default)]
pub(crate) struct ConnectOpts {
    net: ConnectOptions,
    tls: TlsClientOptions,
    /// A TLS setter was called: build a connector from `tls` instead of using the
    /// context's default one.
    tls_custom: bool,
    connector: Mutex<Option<TlsConnector>>,
}

impl ConnectOpts {
    /// The options for one connect, with the (cached) custom connector when there is one.
    pub(crate) fn resolve(&self) -> Checked<ConnectOptions> {
        let mut options = self.net.clone();
        if self.tls_custom {
            // A poisoned lock only means another thread panicked while building; the slot
            // is still either empty or a whole connector.
            let mut slot = self.connector.lock().unwrap_or_else(|p| p.into_inner());
            let connector = match &*slot {
                Some(c) => c.clone(),
                None => {
                    let c = TlsConnector::new(&self.tls)?;
                    *slot = Some(c.clone());
                    c
                }
            };
            options.tls = Some(connector);
        }
        Ok(options)
    }

    /// Builds the connector now (see `tw_connect_options_prepare_tls`).
    fn prepare(&mut self) -> Checked<()> {
        let connector = TlsConnector::new(&self.tls)?;
        self.tls_custom = true;
        *self.connector.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(connector);
        Ok(())
    }

    fn tls_changed(&mut self) {
        self.tls_custom = true;
        *self.connector.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

// SAFETY: every `*mut tw_connect_options` handed out is a `Box<ConnectOpts>`.
unsafe impl Opaque for tw_connect_options {
    type Rust = ConnectOpts;
}

/// # Safety
/// `options` is NULL or a live handle used by nobody else during the call.
unsafe fn set(
    options: *mut tw_connect_options,
    apply: impl FnOnce(&mut ConnectOpts) -> Checked<()>,
) -> tw_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { try_mut(options, "options") }?;
        // tidewire-net's rules (`ConnectOptions::validate`, their one home) check the
        // result; a refused value leaves the options as they were.
        let before = o.net.clone();
        apply(o)?;
        if let Err(e) = o.net.validate() {
            o.net = before;
            // A bad value given to a setter is a bad argument, whatever net calls it.
            let why = match e {
                Error::Handshake(e) => e.to_string(),
                Error::InvalidArgument(why) => why,
                other => other.to_string(),
            };
            return Err(Failure::invalid(why));
        }
        OK
    })
}

impl tw_connect_options {
    /// Creates connect options with the defaults: no extra headers, no Origin, no
    /// subprotocols, the context's connect timeout, permessage-deflate offered with RFC
    /// 7692's defaults, and for `wss://` verification against the system's root
    /// certificates.
    ///
    /// Ownership: on success `*out_options` is a new handle owned by the caller (free with
    /// `tw_connect_options_free`); on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `out_options` is NULL or valid for writing one pointer.
    ///
    /// Thread safety: may be called from any thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_new(
        out_options: *mut *mut tw_connect_options,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_options, "out_options") }?;
            out.write(into_handle::<tw_connect_options>(ConnectOpts::default()));
            OK
        })
    }

    /// Frees connect options. NULL is a no-op. Connections opened with them are not affected.
    ///
    /// Ownership: takes ownership of `options`; freeing twice is undefined behaviour.
    ///
    /// # Safety
    /// `options` is NULL or a live handle from `tw_connect_options_new`.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_free(options: *mut tw_connect_options) {
        // SAFETY: caller contract.
        guard_void(|| unsafe { free_handle(options) })
    }

    /// Adds a header to the upgrade request.
    ///
    /// Ownership: `name` and `value` (NUL-terminated UTF-8) are copied.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_INVALID_ARGUMENT` (a name that is not an HTTP token, a value with CR, LF
    /// or other control characters, or a header the handshake sets itself: Host, Upgrade,
    /// Connection, Origin, Sec-WebSocket-*). The options are unchanged then.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `name`, `value` are NULL or NUL-terminated.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_add_header(
        options: *mut tw_connect_options,
        name: *const c_char,
        value: *const c_char,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                // SAFETY: caller contract.
                let name = try_cstr(name, "name")?;
                // SAFETY: caller contract.
                let value = try_cstr(value, "value")?;
                o.net.headers.push((name.to_owned(), value.to_owned()));
                Ok(())
            })
        }
    }

    /// Sets the Origin header of the upgrade request. Default: none.
    ///
    /// Ownership: `origin` (NUL-terminated UTF-8) is copied.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `origin` is NULL or NUL-terminated.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_set_origin(
        options: *mut tw_connect_options,
        origin: *const c_char,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                // SAFETY: caller contract.
                o.net.origin = Some(try_cstr(origin, "origin")?.to_owned());
                Ok(())
            })
        }
    }

    /// Connects from this local IP address (bind before connect): an IPv4 or IPv6 literal,
    /// such as one of several interfaces or loopback addresses. NULL: the system chooses
    /// (the default). A server of the other address family cannot be reached from it.
    ///
    /// Ownership: `address` (NUL-terminated) is read during the call.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT` (`options` NULL),
    /// `TW_STATUS_INVALID_UTF8`, `TW_STATUS_INVALID_ARGUMENT` (not an IP literal).
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `address` is NULL or NUL-terminated.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_set_local_address(
        options: *mut tw_connect_options,
        address: *const c_char,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.net.local_address =
                    if address.is_null() {
                        None
                    } else {
                        // SAFETY: caller contract.
                        let text = try_cstr(address, "address")?;
                        Some(text.parse().map_err(|_| {
                            Failure::invalid(format!("{text:?} is not an IP address"))
                        })?)
                    };
                Ok(())
            })
        }
    }

    /// The proxy this connection goes through. NULL (the default): from the environment
    /// at connect, as curl reads it (`no_proxy`/`NO_PROXY` first; for `wss://`
    /// `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`; for `ws://` `ws_proxy`,
    /// `WS_PROXY`, `http_proxy`, `HTTP_PROXY`; then `all_proxy`, `ALL_PROXY`). `""`: no
    /// proxy, whatever the environment says (as curl's empty proxy). Otherwise a proxy URL:
    /// `http://[user:password@]host:port` (HTTP CONNECT, Basic auth), `socks5://...` (the
    /// target's name resolved here), `socks5h://...` (resolved by the proxy),
    /// `https://...` (HTTP CONNECT inside TLS to the proxy; `wss://` through it is TLS
    /// inside TLS). TLS to an `https://` proxy trusts what these options trust for the
    /// origin (the system's roots, `tw_connect_options_add_tls_ca_pem`,
    /// `_set_tls_ca_file`) and checks the proxy's host name. A failing proxy ends the
    /// connection with `TW_STATUS_PROXY` (the event's `data` says what failed: "proxy
    /// unreachable", the HTTP status of a refusal, the SOCKS field, "TLS to the proxy
    /// failed: ...") or `TW_STATUS_PROXY_TIMEOUT` (the connect timeout covers the whole
    /// way to the tunnel).
    ///
    /// Ownership: `proxy` (NUL-terminated) is read during the call.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT` (`options` NULL),
    /// `TW_STATUS_INVALID_UTF8`, `TW_STATUS_INVALID_ARGUMENT` (not a usable proxy URL).
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `proxy` is NULL or NUL-terminated.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_set_proxy(
        options: *mut tw_connect_options,
        proxy: *const c_char,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.net.proxy = if proxy.is_null() {
                    Proxy::FromEnv
                } else {
                    // SAFETY: caller contract.
                    match try_cstr(proxy, "proxy")? {
                        "" => Proxy::Direct,
                        url => Proxy::parse(url).map_err(|e| Failure::invalid(e.to_string()))?,
                    }
                };
                Ok(())
            })
        }
    }

    /// Adds a subprotocol to offer, in order of preference. The one the server selected
    /// comes in `TW_EVENT_OPEN`'s `subprotocol`.
    ///
    /// Ownership: `name` (NUL-terminated UTF-8, not empty) is copied.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_INVALID_ARGUMENT` (not an HTTP token, e.g. empty or with spaces, or
    /// already added).
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `name` is NULL or NUL-terminated.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_add_subprotocol(
        options: *mut tw_connect_options,
        name: *const c_char,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                // SAFETY: caller contract.
                let name = try_cstr(name, "name")?;
                o.net.subprotocols.push(name.to_owned());
                Ok(())
            })
        }
    }

    /// Time for name resolution and the TCP connection of connections opened with these
    /// options; 0 means the context's setting (`tw_config_set_connect_timeout_ms`, the
    /// default).
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_set_connect_timeout_ms(
        options: *mut tw_connect_options,
        ms: u64,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.net.connect_timeout = (ms > 0).then(|| millis(ms));
                Ok(())
            })
        }
    }

    /// Reconnects connections opened with these options after a retryable failure or end
    /// (network failures, timeouts, a 5xx or 429 answer honouring its `Retry-After`, an
    /// open connection that ended without the application closing it; never a 4xx, a TLS
    /// failure or the application's own close): exponential backoff with full jitter, each
    /// delay drawn from 0 to `initial_delay_ms * 2^(attempt-1)`, at most `max_delay_ms`;
    /// `max_attempts` attempts in a row (0: unlimited); a connection that stayed open
    /// `reset_after_ms` starts again at attempt 1. `initial_delay_ms` 0 turns reconnecting
    /// off (the default). Each attempt is reported as `TW_EVENT_RECONNECTING`; the
    /// connection keeps its `tw_conn` id (and its user data) across attempts.
    ///
    /// Ranges (tidewire-net's `ReconnectPolicy::validate`): `initial_delay_ms` at least 1,
    /// `max_delay_ms` at least `initial_delay_ms`, it and `reset_after_ms` at most one day.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT` (a
    /// value out of range; the options are unchanged).
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_set_reconnect(
        options: *mut tw_connect_options,
        initial_delay_ms: u64,
        max_delay_ms: u64,
        max_attempts: u32,
        reset_after_ms: u64,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.net.reconnect = (initial_delay_ms > 0).then(|| ReconnectPolicy {
                    initial_delay: millis(initial_delay_ms),
                    max_delay: millis(max_delay_ms),
                    max_attempts: (max_attempts > 0).then_some(max_attempts),
                    reset_after: millis(reset_after_ms),
                });
                Ok(())
            })
        }
    }

    /// Offers permessage-deflate with these settings instead of the default ones; a config
    /// with `tw_deflate_config_set_enabled(d, false)` offers nothing.
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
    pub unsafe extern "C" fn tw_connect_options_set_deflate(
        options: *mut tw_connect_options,
        deflate: *const tw_deflate_config,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let o = unsafe { try_mut(options, "options") }?;
            // SAFETY: caller contract.
            let d = unsafe { try_ref(deflate, "deflate") }?;
            o.net.deflate = Some(d.clone());
            OK
        })
    }

    /// Whether `wss://` servers may be verified against the operating system's root
    /// certificates. Default true. With false, add a CA (`tw_connect_options_add_tls_ca_pem`
    /// or `_set_tls_ca_file`), or `tw_context_connect` fails with `TW_STATUS_TLS`.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_set_tls_use_system_roots(
        options: *mut tw_connect_options,
        on: bool,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.tls.use_system_roots = on;
                o.tls_changed();
                Ok(())
            })
        }
    }

    /// Trusts the CA certificates in this PEM text (a private CA, a test certificate), in
    /// addition to the others. May be called several times. Bad PEM is reported by
    /// `tw_context_connect` (`TW_STATUS_TLS`).
    ///
    /// Ownership: the PEM bytes are copied.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; a non-NULL `pem` is readable for `len` bytes.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_add_tls_ca_pem(
        options: *mut tw_connect_options,
        pem: *const u8,
        len: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                // SAFETY: caller contract.
                let pem = try_bytes(pem, len, "pem")?;
                let all = o.tls.extra_ca_pem.get_or_insert_with(Vec::new);
                all.extend_from_slice(pem);
                all.push(b'\n');
                o.tls_changed();
                Ok(())
            })
        }
    }

    /// Trusts the CA certificates of a PEM file, read at the first connect that needs it
    /// (that read blocks once). Replaces an earlier file. An unreadable file is reported by
    /// `tw_context_connect` (`TW_STATUS_TLS`).
    ///
    /// Ownership: `path` (NUL-terminated UTF-8) is copied.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `path` is NULL or NUL-terminated.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_set_tls_ca_file(
        options: *mut tw_connect_options,
        path: *const c_char,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                // SAFETY: caller contract.
                o.tls.extra_ca_file = Some(try_cstr(path, "path")?.into());
                o.tls_changed();
                Ok(())
            })
        }
    }

    /// Builds the TLS setup of these options now: reads the system's root certificates
    /// (unless turned off) and the CA files, and checks them. Optional: otherwise the first
    /// `wss://` connect does it, which costs a few milliseconds of file reading on the
    /// polling thread. Call it at start-up when a frame budget matters (see
    /// examples/c/game_loop.c); a later TLS setter undoes it.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_TLS` (unreadable or bad
    /// CA, no trusted root at all; the options are unchanged).
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_prepare_tls(
        options: *mut tw_connect_options,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe { set(options, |o| o.prepare()) }
    }

    /// **Dangerous**: accept any server certificate for any name. The connection is then
    /// encrypted but not authenticated: anyone on the path can impersonate the server. For
    /// tests only. Default false.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_connect_options_dangerous_skip_verification(
        options: *mut tw_connect_options,
        on: bool,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.tls.dangerous_skip_verification = on;
                o.tls_changed();
                Ok(())
            })
        }
    }
}
