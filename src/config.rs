//! `tw_config`: limits, timeouts and buffer sizes of a context (`tidewire_net::Config`).
//!
//! A builder: `tw_config_new`, any setters, `tw_context_new` (which copies it), then
//! `tw_config_free`. Setters check their range and leave the config unchanged on failure.

use tidewire_net::Config;

use crate::ffi::{
    free_handle, guard, guard_void, into_handle, millis, try_mut, try_out, Opaque, OK,
};
use crate::status::tw_status;

/// Settings for a context. Create with `tw_config_new`, change with the `tw_config_set_*`
/// functions, pass to `tw_context_new` (which copies it), free with `tw_config_free`.
#[allow(non_camel_case_types)]
pub struct tw_config {
    _private: [u8; 0],
}

// SAFETY: every `*mut tw_config` handed out is a `Box<Config>` from `tw_config_new`.
unsafe impl Opaque for tw_config {
    type Rust = Config;
}

/// Shared shape of the setters: check the handle, store the value in a copy, let
/// tidewire-net check the copy's ranges (`Config::check_ranges`, the one home of those
/// rules), keep it. A refused value leaves the config as it was.
///
/// # Safety
/// `config` is NULL or a live handle used by nobody else during the call.
unsafe fn set(config: *mut tw_config, apply: impl FnOnce(&mut Config)) -> tw_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { try_mut(config, "config") }?;
        let mut next = c.clone();
        apply(&mut next);
        next.check_ranges()?;
        *c = next;
        OK
    })
}

impl tw_config {
    /// Creates a config holding the defaults (each setter's doc gives its default).
    ///
    /// Ownership: on success `*out_config` is a new handle owned by the caller, to be freed
    /// with `tw_config_free`. On failure `*out_config` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, or `TW_STATUS_NULL_ARGUMENT` when `out_config` is NULL.
    ///
    /// # Safety
    /// `out_config` is NULL or valid for writing one pointer.
    ///
    /// Thread safety: may be called from any thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_new(out_config: *mut *mut tw_config) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_config, "out_config") }?;
            out.write(into_handle::<tw_config>(Config::default()));
            OK
        })
    }

    /// Frees a config. NULL is a no-op. Contexts created from it are not affected (they hold
    /// a copy).
    ///
    /// Ownership: takes ownership of `config`, which must not be used afterwards. Freeing
    /// the same handle twice is undefined behaviour.
    ///
    /// # Safety
    /// `config` is NULL or a live handle from `tw_config_new`.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_free(config: *mut tw_config) {
        // SAFETY: caller contract.
        guard_void(|| unsafe { free_handle(config) })
    }

    /// Largest message accepted from a peer, after reassembly and decompression; a larger
    /// one fails the connection with close code 1009. Default 16 MiB. At least 1.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_max_message_size(
        config: *mut tw_config,
        bytes: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.max_message_size = bytes;
            })
        }
    }

    /// Largest single frame accepted from a peer (1009 beyond). Default 16 MiB. At least 1.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_max_frame_size(
        config: *mut tw_config,
        bytes: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.max_frame_size = bytes;
            })
        }
    }

    /// Largest opening-handshake header block (request line, headers, empty line) accepted
    /// from a peer. Default 8192. At least 256.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_max_handshake_bytes(
        config: *mut tw_config,
        bytes: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.handshake_limits.max_header_bytes = bytes;
            })
        }
    }

    /// Most header fields accepted in an opening handshake. Default 64. At least 8.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_max_handshake_headers(
        config: *mut tw_config,
        count: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.handshake_limits.max_headers = count;
            })
        }
    }

    /// Time a connection gets to finish TLS and the HTTP upgrade, counted from accept
    /// (server) or from the TCP connection being established (client). Default 10000 ms.
    /// At least 1.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_handshake_timeout_ms(
        config: *mut tw_config,
        ms: u64,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.handshake_timeout = millis(ms);
            })
        }
    }

    /// Time for establishing a client's TCP connection, name resolution included. Default
    /// 10000 ms; `tw_connect_options_set_connect_timeout_ms` overrides it per connection.
    /// At least 1.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_connect_timeout_ms(
        config: *mut tw_config,
        ms: u64,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.connect_timeout = millis(ms);
            })
        }
    }

    /// Time the peer gets to answer a close frame; then the connection is dropped and
    /// reported by `TW_EVENT_CLOSE` with code 1006. Default 5000 ms. At least 1.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_close_timeout_ms(
        config: *mut tw_config,
        ms: u64,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.close_timeout = millis(ms);
            })
        }
    }

    /// Send a ping when nothing was received for this long. 0 turns it off. Default 20000
    /// (20 s). Its pong measures the round-trip time (`tw_conn_latency`).
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_ping_interval_ms(
        config: *mut tw_config,
        ms: u64,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.ping_interval = (ms > 0).then(|| millis(ms));
            })
        }
    }

    /// Drop a connection (reported with close code 1006) when nothing at all was received
    /// for this long: dead-peer detection, usually a few ping intervals, and the end of a
    /// peer that goes silent after the handshake. A live peer answers the keepalive ping.
    /// 0 turns it off. Default 60000 (60 s).
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_idle_timeout_ms(
        config: *mut tw_config,
        ms: u64,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.idle_timeout = (ms > 0).then(|| millis(ms));
            })
        }
    }

    /// Above this many buffered output bytes a send returns `TW_STATUS_AGAIN` (queued, but
    /// stop sending until `TW_EVENT_WRITABLE`). Default 1 MiB. Must not be below the low
    /// water mark when the context is created.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_high_water_mark(
        config: *mut tw_config,
        bytes: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.high_water_mark = bytes;
            })
        }
    }

    /// After `TW_STATUS_AGAIN`, `TW_EVENT_WRITABLE` comes once the output buffer drained to
    /// this many bytes or fewer. Default 256 KiB.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_low_water_mark(
        config: *mut tw_config,
        bytes: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.low_water_mark = bytes;
            })
        }
    }

    /// Hard cap: while this many output bytes or more are buffered, sends are refused with
    /// `TW_STATUS_BUFFER_FULL`. A send below it is taken whole. Default 16 MiB. At least 1.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_max_buffered(
        config: *mut tw_config,
        bytes: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.max_buffered = bytes;
            })
        }
    }

    /// Connections of all kinds (connecting, open, closing) the context holds at most;
    /// beyond it accepted sockets are closed at once and `tw_context_connect` returns
    /// `TW_STATUS_TOO_MANY_CONNECTIONS`. Default 100000. At least 1.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_max_connections(
        config: *mut tw_config,
        count: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.max_connections = count;
            })
        }
    }

    /// The receive buffer shared by every connection of the context: the reads of one poll
    /// go into it, and message payloads handed out by `tw_poll` point into it. Default
    /// 256 KiB. At least 16 KiB.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_receive_buffer_size(
        config: *mut tw_config,
        bytes: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.receive_buffer_size = bytes;
            })
        }
    }

    /// Payload bytes that senders (`tw_sender_*`) may have queued and not yet applied;
    /// beyond it they return `TW_STATUS_BUFFER_FULL`. Default 64 MiB. At least 1.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_sender_queue_limit(
        config: *mut tw_config,
        bytes: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.sender_queue_limit = bytes;
            })
        }
    }

    /// Helper threads for name resolution, started on demand (so that connecting never
    /// blocks the polling thread). Default 2. At least 1.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `config` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same config.
    #[no_mangle]
    pub unsafe extern "C" fn tw_config_set_resolver_threads(
        config: *mut tw_config,
        count: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(config, |c| {
                c.resolver_threads = count;
            })
        }
    }
}
