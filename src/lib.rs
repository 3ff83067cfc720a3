//! `tidewire`: the C face of tidewire (`libtidewire.so`, `libtidewire.a`, `tidewire.h`).
//!
//! This crate only checks, converts and calls `tidewire-net`; no protocol logic lives here.
//! One file per C type, each exported function inside the `impl` of its opaque type (or a
//! free function where the C type is an id): `config.rs`, `deflate.rs`,
//! `listen_options.rs`, `connect_options.rs`, `context.rs`, `event.rs` (`tw_poll`),
//! `request.rs`, `conn.rs`, `listener.rs`, `publish.rs` (topics, publish, broadcast,
//! `tw_publish_report`), `sender.rs`, `io.rs` (`tw_io`: a context on its own I/O thread), `server.rs` (`tw_server`: worker threads, `tw_bus`),
//! `cluster.rs` (the Redis bridge: `tw_cluster_options`, `tw_cluster`), `status.rs`; `ids.rs` holds the connection and
//! listener ids; `ffi.rs` holds the argument checkers and the panic boundary every function
//! goes through.
//!
//! The conventions every function obeys are written at the top of `include/tidewire.h`
//! (from `cbindgen.toml`).

// The C names are the API: `tw_context`, `TW_STATUS_OK`, ...
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod bytes;
mod cluster;
mod config;
mod conn;
mod connect_options;
mod context;
mod deflate;
mod event;
mod ffi;
mod ids;
mod io;
mod listen_options;
mod listener;
mod publish;
mod request;
mod sender;
mod server;
mod status;

#[cfg(test)]
mod tests;
