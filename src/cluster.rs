//! The Redis cluster bridge (`tidewire_net::Cluster`): `tw_cluster_options` (where Redis is,
//! the channel, reconnects, and the status callback), `tw_cluster_status`,
//! `tw_cluster_stats`, and `tw_cluster`, the bridge of a program that drives its own
//! contexts. A `tw_server` starts its own bridge from the same options
//! (`tw_server_options_set_cluster`).
//!
//! The status callback runs on one of the bridge's two threads (`tidewire-cluster-in` or
//! `tidewire-cluster-out`), never on a context's or a worker's thread.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use tidewire_net::{Cluster, ClusterOptions, ClusterStats, ClusterStatus, Sender};

use crate::conn::message_kind;
use crate::ffi::{
    free_handle, guard, guard_void, into_handle, millis, try_array, try_bytes, try_cstr, try_mut,
    try_out, try_ref, Failure, Opaque, OK,
};
use crate::sender::tw_sender;
use crate::status::tw_status;

/// What a cluster status callback hears. In C the type is `uint32_t`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tw_cluster_status {
    /// Both links to Redis are up, the first time. `reason` is "".
    TW_CLUSTER_CONNECTED = 1,
    /// Cross-process delivery stopped: a link to Redis failed (`reason` says which and
    /// why). Local delivery goes on; the bridge reconnects with backoff. What is published
    /// meanwhile is lost for the other processes (Redis pub/sub keeps nothing).
    TW_CLUSTER_INTERRUPTED = 2,
    /// Both links are up again after an interruption. `reason` is "".
    TW_CLUSTER_RESUMED = 3,
}

/// Told when cross-process delivery starts, stops and resumes. `reason` is NUL-terminated
/// UTF-8, never NULL ("" unless `status` is `TW_CLUSTER_INTERRUPTED`), valid during the
/// call. `user` is the pointer given with the callback.
///
/// Thread: runs on a bridge thread (not a context's or worker's thread), one call at a
/// time per bridge. It may call `tw_sender_*`, `tw_server_publish` and `tw_cluster_*`
/// functions (except `tw_cluster_free` and `tw_server_free`/`_shutdown`, which wait for
/// this thread), and must return quickly.
#[allow(non_camel_case_types)]
pub type tw_cluster_status_callback = Option<
    unsafe extern "C" fn(status: tw_cluster_status, reason: *const c_char, user: *mut c_void),
>;

/// Counters of a cluster bridge.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct tw_cluster_stats {
    /// Messages this process published to Redis.
    pub sent: u64,
    /// Messages from other processes handed to this process's contexts.
    pub received: u64,
    /// Messages of this process lost for the others: a link was down, or the queue to
    /// Redis was full (`tw_cluster_options_set_queue_limit`).
    pub dropped: u64,
    /// Messages on the channel that were not tidewire's (ignored).
    pub malformed: u64,
}

impl From<ClusterStats> for tw_cluster_stats {
    fn from(s: ClusterStats) -> tw_cluster_stats {
        tw_cluster_stats {
            sent: s.sent,
            received: s.received,
            dropped: s.dropped,
            malformed: s.malformed,
        }
    }
}

/// A C pointer handed back to a C callback on another thread. The library never reads it.
#[derive(Clone, Copy)]
pub(crate) struct UserPtr(pub(crate) *mut c_void);

impl UserPtr {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    pub(crate) fn get(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: the library only passes the pointer back to the application's callback; what it
// points to, and whether that may be used from the callback's thread, is the application's
// business (the documentation says which thread calls).
unsafe impl Send for UserPtr {}
// SAFETY: as above; the pointer itself is never dereferenced here.
unsafe impl Sync for UserPtr {}

/// The cluster settings behind a `tw_cluster_options`.
#[derive(Clone)]
pub(crate) struct ClusterOpts {
    pub(crate) net: ClusterOptions,
    pub(crate) on_status: tw_cluster_status_callback,
    pub(crate) user: UserPtr,
}

impl ClusterOpts {
    /// The status callback as the runtime takes it.
    pub(crate) fn status_fn(&self) -> Option<Arc<dyn Fn(ClusterStatus) + Send + Sync>> {
        let callback = self.on_status?;
        let user = self.user;
        Some(Arc::new(move |status: ClusterStatus| {
            let (code, reason) = match status {
                ClusterStatus::Connected => {
                    (tw_cluster_status::TW_CLUSTER_CONNECTED, String::new())
                }
                ClusterStatus::Interrupted(why) => (tw_cluster_status::TW_CLUSTER_INTERRUPTED, why),
                ClusterStatus::Resumed => (tw_cluster_status::TW_CLUSTER_RESUMED, String::new()),
            };
            let reason = CString::new(reason.replace('\0', "\u{fffd}")).unwrap_or_default();
            // SAFETY: the application gave this callback and its pointer for this use; the
            // reason outlives the call.
            unsafe { callback(code, reason.as_ptr(), user.get()) };
        }))
    }
}

/// Settings of a cluster bridge: the Redis URL (required), the channel, reconnects, the
/// queue to Redis and the status callback. Create with `tw_cluster_options_new`, adjust,
/// hand to `tw_server_options_set_cluster` or `tw_cluster_new` (both copy it), free with
/// `tw_cluster_options_free`. Each setter lets the runtime check the value and refuses
/// one out of range (`TW_STATUS_INVALID_URL`, `TW_STATUS_INVALID_ARGUMENT`), leaving the
/// options unchanged; options without a URL are refused by `tw_server_new` and
/// `tw_cluster_new` with `TW_STATUS_INVALID_URL`.
#[allow(non_camel_case_types)]
pub struct tw_cluster_options {
    _private: [u8; 0],
}

// SAFETY: every `*mut tw_cluster_options` handed out is a `Box<ClusterOpts>`.
unsafe impl Opaque for tw_cluster_options {
    type Rust = ClusterOpts;
}

/// The bridge of a program that drives its own contexts: delivers the other processes'
/// publishes to the senders it was given, and carries this program's publishes to them
/// (`tw_cluster_publish`). Create with `tw_cluster_new`, free with `tw_cluster_free`.
#[allow(non_camel_case_types)]
pub struct tw_cluster {
    _private: [u8; 0],
}

// SAFETY: every `*mut tw_cluster` handed out is a `Box<Cluster>` from `tw_cluster_new`.
unsafe impl Opaque for tw_cluster {
    type Rust = Cluster;
}

/// # Safety
/// `options` is NULL or a live handle used by nobody else during the call.
unsafe fn set(
    options: *mut tw_cluster_options,
    apply: impl FnOnce(&mut ClusterOpts) -> Result<(), Failure>,
) -> tw_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let o = unsafe { try_mut(options, "options") }?;
        let mut next = o.clone();
        apply(&mut next)?;
        // tidewire-net checks a copy (`ClusterOptions::check_ranges`, the one home of those
        // rules); a refused value leaves the options as they were.
        next.net.check_ranges()?;
        *o = next;
        OK
    })
}

impl tw_cluster_options {
    /// Creates cluster settings with the defaults: no URL yet (set one with
    /// `tw_cluster_options_set_url`), channel "tidewire", reconnect backoff from 100 ms up
    /// to 5 s, connect timeout 2 s, queue limit 10,000 messages, no status callback.
    ///
    /// Ownership: on success `*out_options` is a new handle owned by the caller (free with
    /// `tw_cluster_options_free`); on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `out_options` is NULL or valid for writing a pointer.
    ///
    /// Thread safety: any thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_options_new(
        out_options: *mut *mut tw_cluster_options,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_options, "out_options") }?;
            out.write(into_handle::<tw_cluster_options>(ClusterOpts {
                net: ClusterOptions::default(),
                on_status: None,
                user: UserPtr(std::ptr::null_mut()),
            }));
            OK
        })
    }

    /// Frees cluster settings. NULL is a no-op.
    ///
    /// Ownership: takes ownership of `options`; freeing twice is undefined behaviour.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: any thread, with no other call on these options running.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_options_free(options: *mut tw_cluster_options) {
        // SAFETY: caller contract.
        guard_void(|| unsafe { free_handle(options) })
    }

    /// The Redis server: `redis://[user:password@]host[:port][/db]` (this build has no
    /// `rediss://`). Required.
    ///
    /// Ownership: `url` (NUL-terminated UTF-8) is copied.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_INVALID_URL` (not a Redis URL; the options are unchanged),
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `url` is NULL or NUL-terminated.
    ///
    /// Thread safety: any thread, not concurrently with other calls on these options.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_options_set_url(
        options: *mut tw_cluster_options,
        url: *const c_char,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                // SAFETY: caller contract.
                o.net.url = try_cstr(url, "url")?.to_owned();
                o.net.validate()?;
                Ok(())
            })
        }
    }

    /// The Redis channel every process of this cluster uses (default "tidewire");
    /// applications sharing one Redis need different channels. Must not be empty.
    ///
    /// Ownership: `channel` (NUL-terminated UTF-8) is copied.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_INVALID_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `channel` is NULL or NUL-terminated.
    ///
    /// Thread safety: any thread, not concurrently with other calls on these options.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_options_set_channel(
        options: *mut tw_cluster_options,
        channel: *const c_char,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                // SAFETY: caller contract.
                o.net.channel = try_cstr(channel, "channel")?.to_owned();
                Ok(())
            })
        }
    }

    /// Reconnect delays after a Redis failure: a random delay up to `initial_ms`, the bound
    /// doubling per failure up to `max_ms` (defaults 100 and 5000). `initial_ms` must be
    /// above 0 and `max_ms` at least `initial_ms`.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: any thread, not concurrently with other calls on these options.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_options_set_backoff_ms(
        options: *mut tw_cluster_options,
        initial_ms: u64,
        max_ms: u64,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.net.backoff_initial = millis(initial_ms);
                o.net.backoff_max = millis(max_ms);
                Ok(())
            })
        }
    }

    /// Time allowed for each connection attempt to Redis (default 2000 ms), above 0.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: any thread, not concurrently with other calls on these options.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_options_set_connect_timeout_ms(
        options: *mut tw_cluster_options,
        ms: u64,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.net.connect_timeout = millis(ms);
                Ok(())
            })
        }
    }

    /// Messages that may wait for the thread that publishes to Redis (default 10,000);
    /// beyond, a publish is dropped for the other processes (counted in
    /// `tw_cluster_stats.dropped`). Must be above 0.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_ARGUMENT`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle.
    ///
    /// Thread safety: any thread, not concurrently with other calls on these options.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_options_set_queue_limit(
        options: *mut tw_cluster_options,
        messages: usize,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.net.queue_limit = messages;
                Ok(())
            })
        }
    }

    /// The callback told when cross-process delivery starts (`TW_CLUSTER_CONNECTED`),
    /// stops (`TW_CLUSTER_INTERRUPTED`, with the reason) and resumes
    /// (`TW_CLUSTER_RESUMED`); NULL for none (the default). It runs on a bridge thread:
    /// see `tw_cluster_status_callback`.
    ///
    /// Ownership: `user` is passed back to each call; the library never reads or frees it.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT` (`options`), `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `callback` is NULL or a function that may be
    /// called from another thread with `user` for as long as a bridge made from these
    /// options runs.
    ///
    /// Thread safety: any thread, not concurrently with other calls on these options.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_options_set_status_callback(
        options: *mut tw_cluster_options,
        callback: tw_cluster_status_callback,
        user: *mut c_void,
    ) -> tw_status {
        // SAFETY: caller contract.
        unsafe {
            set(options, |o| {
                o.on_status = callback;
                o.user = UserPtr(user);
                Ok(())
            })
        }
    }
}

impl tw_cluster {
    /// Starts a bridge for a program that drives its own contexts (with `tw_poll`): the
    /// other processes' publishes are handed to each of the `count` senders in `senders`
    /// (one per context, made with `tw_context_sender`), whose contexts publish them to
    /// their subscribers at their next `tw_poll`. Publishing is the program's own: it
    /// publishes locally (`tw_context_publish`) and calls `tw_cluster_publish` for the
    /// other processes. Starts two threads; an unreachable Redis is not an error (the
    /// bridge keeps trying and reports `TW_CLUSTER_INTERRUPTED`).
    ///
    /// Ownership: `options` and the senders are copied (the caller may free its senders
    /// at once). On success `*out_cluster` is a new handle owned by the caller (free with
    /// `tw_cluster_free`); on failure it is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INVALID_URL` (not a
    /// Redis URL; `tw_last_error` has the runtime's message), `TW_STATUS_INVALID_ARGUMENT`
    /// (empty channel, zero queue limit or initial backoff), `TW_STATUS_IO` (a thread could
    /// not start), `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `options` is NULL or a live handle; `senders` is NULL (only when `count` is 0) or
    /// readable for `count` live sender handles; `out_cluster` is NULL or valid for
    /// writing a pointer.
    ///
    /// Thread safety: any thread.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_new(
        options: *const tw_cluster_options,
        senders: *const *const tw_sender,
        count: usize,
        out_cluster: *mut *mut tw_cluster,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_cluster, "out_cluster") }?;
            // SAFETY: caller contract.
            let o = unsafe { try_ref(options, "options") }?;
            // SAFETY: caller contract.
            let handles = unsafe { try_array(senders, count, "senders") }?;
            let mut targets: Vec<Sender> = Vec::with_capacity(handles.len());
            for &h in handles {
                // SAFETY: caller contract: each entry is a live sender.
                targets.push(unsafe { try_ref(h, "senders[i]") }?.clone());
            }
            let tell = o.status_fn();
            let cluster = Cluster::start(o.net.clone(), targets, move |status| {
                if let Some(tell) = &tell {
                    tell(status);
                }
            })?;
            out.write(into_handle::<tw_cluster>(cluster));
            OK
        })
    }

    /// Stops the bridge: its threads end (within about 100 ms) and queued publishes not yet
    /// sent to Redis are dropped. NULL is a no-op.
    ///
    /// Ownership: takes ownership of `cluster`; freeing twice is undefined behaviour.
    ///
    /// # Safety
    /// `cluster` is NULL or a live handle from `tw_cluster_new`.
    ///
    /// Thread safety: any thread except the bridge's own (not from its status callback),
    /// once no other thread uses the handle.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_free(cluster: *mut tw_cluster) {
        // SAFETY: caller contract.
        guard_void(|| unsafe { free_handle(cluster) })
    }

    /// Sends a publish to the other processes of the cluster (this program publishes on its
    /// own contexts itself). Queued for the bridge's thread; never blocks.
    ///
    /// Ownership: `topic` and `data` are copied during the call.
    ///
    /// Returns `TW_STATUS_OK` (queued; lost for the others if Redis is down meanwhile,
    /// counted in `tw_cluster_stats.dropped`), `TW_STATUS_BUFFER_FULL` (the queue holds
    /// its limit: dropped and counted), `TW_STATUS_INVALID_UTF8`,
    /// `TW_STATUS_INVALID_ARGUMENT` (unknown kind), `TW_STATUS_NULL_ARGUMENT`,
    /// `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `cluster` is NULL or a live handle; a non-NULL `topic` is readable for `topic_len`
    /// bytes and a non-NULL `data` for `len` bytes.
    ///
    /// Thread safety: any thread, concurrently with other `tw_cluster_*` calls except
    /// `tw_cluster_free`.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_publish(
        cluster: *const tw_cluster,
        topic: *const u8,
        topic_len: usize,
        kind: u32,
        data: *const u8,
        len: usize,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let c = unsafe { try_ref(cluster, "cluster") }?;
            // SAFETY: caller contract.
            let topic = unsafe { try_bytes(topic, topic_len, "topic") }?;
            let kind = message_kind(kind)?;
            // SAFETY: caller contract.
            let data = unsafe { try_bytes(data, len, "data") }?;
            c.publish(topic, kind, data)?;
            OK
        })
    }

    /// The bridge's counters.
    ///
    /// Ownership: on failure `*out_stats` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `cluster` is NULL or a live handle; `out_stats` is NULL or valid for writing a
    /// `tw_cluster_stats`.
    ///
    /// Thread safety: any thread, concurrently with other `tw_cluster_*` calls except
    /// `tw_cluster_free`.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_get_stats(
        cluster: *const tw_cluster,
        out_stats: *mut tw_cluster_stats,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_stats, "out_stats") }?;
            // SAFETY: caller contract.
            let c = unsafe { try_ref(cluster, "cluster") }?;
            out.write(c.stats().into());
            OK
        })
    }

    /// Whether both links to Redis are up now.
    ///
    /// Ownership: on failure `*out_connected` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `cluster` is NULL or a live handle; `out_connected` is NULL or valid for writing a
    /// bool.
    ///
    /// Thread safety: any thread, concurrently with other `tw_cluster_*` calls except
    /// `tw_cluster_free`.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_is_connected(
        cluster: *const tw_cluster,
        out_connected: *mut bool,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_connected, "out_connected") }?;
            // SAFETY: caller contract.
            let c = unsafe { try_ref(cluster, "cluster") }?;
            out.write(c.is_connected());
            OK
        })
    }

    /// This process's node id in the cluster: random per bridge, carried in every message
    /// it publishes (a process drops its own messages when Redis echoes them).
    ///
    /// Ownership: on failure `*out_node_id` is untouched.
    ///
    /// Returns `TW_STATUS_OK`, `TW_STATUS_NULL_ARGUMENT`, `TW_STATUS_INTERNAL`.
    ///
    /// # Safety
    /// `cluster` is NULL or a live handle; `out_node_id` is NULL or valid for writing a
    /// uint64_t.
    ///
    /// Thread safety: any thread, concurrently with other `tw_cluster_*` calls except
    /// `tw_cluster_free`.
    #[no_mangle]
    pub unsafe extern "C" fn tw_cluster_node_id(
        cluster: *const tw_cluster,
        out_node_id: *mut u64,
    ) -> tw_status {
        guard(|| {
            // SAFETY: caller contract.
            let out = unsafe { try_out(out_node_id, "out_node_id") }?;
            // SAFETY: caller contract.
            let c = unsafe { try_ref(cluster, "cluster") }?;
            out.write(c.node_id());
            OK
        })
    }
}
