//! `tw_conn` and `tw_listener`: the ids of connections and listeners. Plain integers that
//! every other file of the C face uses, kept apart so that none of them imports another's
//! handle type just for an id.

/// A connection: a 64-bit id carrying a generation, valid from `tw_context_connect` (or its
/// first event) until its terminal event (`TW_EVENT_CLOSE`, or `TW_EVENT_ERROR` about it)
/// has been delivered. After that every call with it returns `TW_STATUS_STALE_ID`. 0 is
/// never a valid id.
#[allow(non_camel_case_types)]
pub type tw_conn = u64;

/// A listening socket: a 64-bit id carrying a generation, valid until `tw_listener_close`
/// or `tw_context_shutdown`. 0 is never a valid id.
#[allow(non_camel_case_types)]
pub type tw_listener = u64;
