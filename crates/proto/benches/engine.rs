//! Per-message cost of the engine: a server parsing masked client messages, and a server
//! echoing them (parse + frame + queue + drain). Run with `make bench-engine`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tidewire_proto::{Config, Connection, Event, Role};

const BATCH: usize = 256;

/// `BATCH` masked binary messages of `size` bytes, as a client would send them.
fn client_stream(size: usize) -> Vec<u8> {
    let mut client = Connection::new(Role::Client, Config::default());
    let payload = vec![0x5Au8; size];
    for _ in 0..BATCH {
        client.send_binary(&payload).unwrap();
    }
    client.pending_output().to_vec()
}

fn parse_all(server: &mut Connection, input: &mut [u8]) -> usize {
    let mut pos = 0;
    let mut messages = 0;
    loop {
        let r = server.receive(&mut input[pos..]);
        pos += r.consumed;
        match r.event {
            Some(Event::Message { data, .. }) => {
                std::hint::black_box(data);
                messages += 1;
            }
            Some(_) => {}
            None => break,
        }
    }
    messages
}

fn bench(c: &mut Criterion) {
    for size in [16usize, 1024, 64 * 1024] {
        let stream = client_stream(size);
        let mut group = c.benchmark_group(format!("engine/{size}B"));
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function("receive", |b| {
            let mut server = Connection::new(Role::Server, Config::default());
            b.iter_batched_ref(
                || stream.clone(),
                |input| assert_eq!(parse_all(&mut server, input), BATCH),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("echo", |b| {
            let mut server = Connection::new(Role::Server, Config::default());
            let payload = vec![0x5Au8; size];
            b.iter_batched_ref(
                || stream.clone(),
                |input| {
                    let mut pos = 0;
                    loop {
                        let r = server.receive(&mut input[pos..]);
                        pos += r.consumed;
                        match r.event {
                            Some(Event::Message { .. }) => {}
                            Some(_) => unreachable!(),
                            None => break,
                        }
                        server.send_binary(&payload).unwrap();
                    }
                    let n = server.buffered_amount();
                    server.consume(n);
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("memcpy_baseline", |b| {
            let mut dst = vec![0u8; stream.len()];
            b.iter(|| dst.copy_from_slice(std::hint::black_box(&stream)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
