//! `tw_deflate_config`: permessage-deflate (RFC 7692) settings, given to listen options
//! (accept it when a client offers it) or connect options (offer it).

use tidewire_net::DeflateConfig;

use crate::ffi::{
    free_handle, guard, guard_void, into_handle, try_mut, try_out, Checked, Failure, Opaque, OK,
};
use crate::status::tw_status;

/// permessage-deflate settings, to replace the defaults of listen or connect options (both
/// negotiate compression unless told otherwise). Create with `tw_deflate_config_new`
/// (enabled, level 1), adjust, hand to `tw_listen_options_set_deflate` or
/// `tw_connect_options_set_deflate` (both copy it), free with `tw_deflate_config_free`.
#[allow(non_camel_case_types)]
pub struct tw_deflate_config {
    _private: [u8; 0],
}

// SAFETY: every `*mut tw_deflate_config` handed out is a `Box<DeflateConfig>`.
unsafe impl Opaque for tw_deflate_config {
    type Rust = DeflateConfig;
}

/// # Safety
/// `deflate` is NULL or a live handle used by nobody else during the call.
unsafe fn set(
    deflate: *mut tw_deflate_config,
    apply: impl FnOnce(&mut DeflateConfig) -> Checked<()>,
) -> tw_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let d = unsafe { try_mut(deflate, "deflate") }?;
        // Validate a copy so that a refused value leaves the config as it was.
        let mut next = d.clone();
        apply(&mut next)?;
        next.validate()
            .map_err(|e| Failure::invalid(e.to_string()))?;
        *d = next;
        OK
    })
}

/// 0 means "not set" for the window-bits setters.
fn window_bits(bits: u8) -> Option<u8> {
    (bits != 0).then_some(bits)
}

impl tw_deflate_config {
    /// Creates deflate settings with RFC 7692's defaults: enabled, level 1, mem_level 8,
    /// threshold 32 bytes, context takeover on both sides, window bits left to the peer.
    /// (A listener's own default differs in one point: `server_no_context_takeover`.)
    ///
    /// Ownership: on success `*out_deflate` is a new handle owned by the caller (free with
    /// `tw_deflate_config_free`); on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `out_deflate` is NULL or valid for writing one pointer.
    ///
    /// Thread safety: may be called from any thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_deflate_config_new(
        out_deflate: *mut *mut tw_deflate_config,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_deflate, "out_deflate") }?;
            out.write(into_handle::<tw_deflate_config>(DeflateConfig::default()));
            OK
        })
    }

    /// Frees deflate settings. NULL is a no-op. Options it was given to keep their copy.
    ///
    /// Ownership: takes ownership of `deflate`; freeing twice is undefined behaviour.
    ///
    /// # Safety
    /// `deflate` is NULL or a live handle from `tw_deflate_config_new`.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_deflate_config_free(deflate: *mut tw_deflate_config) {
        // SAFETY: caller contract.
        guard_void(|| unsafe { free_handle(deflate) })
    }

    /// Offer (client) or accept (server) permessage-deflate at all. Default true; false
    /// keeps the other settings but negotiates nothing.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `deflate` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_deflate_config_set_enabled(
        deflate: *mut tw_deflate_config,
        enabled: bool,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(deflate, |d| {
                d.enabled = enabled;
                Ok(())
            })
        }
    }

    /// zlib compression level, 0 (store only) to 9. Default 1 (fastest that compresses).
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `deflate` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_deflate_config_set_level(
        deflate: *mut tw_deflate_config,
        level: u32,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(deflate, |d| {
                d.level = level;
                Ok(())
            })
        }
    }

    /// zlib memory level of the compressor, 1 to 9. Default 8. Lower levels shrink the
    /// compressor's buffers (at most about 110 KiB saved per connection; the hash table
    /// stays 128 KiB) for a slightly worse ratio at high compression levels.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `deflate` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_deflate_config_set_mem_level(
        deflate: *mut tw_deflate_config,
        mem_level: u8,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(deflate, |d| {
                d.mem_level = mem_level;
                Ok(())
            })
        }
    }

    /// Messages shorter than this many bytes are sent uncompressed. Default 32.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `deflate` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_deflate_config_set_threshold(
        deflate: *mut tw_deflate_config,
        bytes: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(deflate, |d| {
                d.threshold = bytes;
                Ok(())
            })
        }
    }

    /// `server_max_window_bits`, 8 to 15, or 0 for "not set" (the default). Client: ask
    /// the server to compress with at most `2^bits` bytes of window. Server: never compress
    /// with more.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `deflate` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_deflate_config_set_server_max_window_bits(
        deflate: *mut tw_deflate_config,
        bits: u8,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(deflate, |d| {
                d.server_max_window_bits = window_bits(bits);
                Ok(())
            })
        }
    }

    /// `client_max_window_bits`, 8 to 15, or 0 for "not set" (the default). Client:
    /// compress with at most this window and say so. Server: ask a client that offered the
    /// parameter for at most this window.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`.
    ///
    /// # Safety
    /// `deflate` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_deflate_config_set_client_max_window_bits(
        deflate: *mut tw_deflate_config,
        bits: u8,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(deflate, |d| {
                d.client_max_window_bits = window_bits(bits);
                Ok(())
            })
        }
    }

    /// `server_no_context_takeover`. Client: ask the server not to carry its window across
    /// messages. Server: never carry ours. Default false.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `deflate` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_deflate_config_set_server_no_context_takeover(
        deflate: *mut tw_deflate_config,
        on: bool,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(deflate, |d| {
                d.server_no_context_takeover = on;
                Ok(())
            })
        }
    }

    /// `client_no_context_takeover`. Client: promise not to carry our window across
    /// messages. Server: require it from the client. Default false.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `deflate` is NULL or a live handle.
    ///
    /// Thread safety: not while another thread uses the same handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_deflate_config_set_client_no_context_takeover(
        deflate: *mut tw_deflate_config,
        on: bool,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(deflate, |d| {
                d.client_no_context_takeover = on;
                Ok(())
            })
        }
    }
}
