#![no_main]

use libfuzzer_sys::fuzz_target;
use tidewire_proto::fuzzing::TrackingAlloc;

// Counts the heap the engine allocates, for the harness's memory checks.
#[global_allocator]
static ALLOC: TrackingAlloc = TrackingAlloc;

fuzz_target!(|data: &[u8]| tidewire_proto::fuzzing::proxy_http_connect_reply(data));
