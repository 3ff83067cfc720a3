//! Masking throughput next to memcpy, so GB/s can be read against the memory speed of the
//! machine: `apply_mask` should reach at least half of `memcpy` on the 1 MiB buffer.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use tidewire_proto::frame::{apply_mask, mask::apply_mask_reference};

const SIZES: [(usize, &str); 3] = [(16, "16B"), (1024, "1KiB"), (1 << 20, "1MiB")];
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

type Kernel = fn(&mut [u8], [u8; 4], usize);

fn bench_mask(c: &mut Criterion) {
    let kernels: [(&str, Kernel); 2] = [
        ("mask/apply_mask", apply_mask),
        ("mask/reference_bytewise", apply_mask_reference),
    ];
    for (name, kernel) in kernels {
        let mut group = c.benchmark_group(name);
        for (size, label) in SIZES {
            let mut buf = vec![0x5a_u8; size];
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| kernel(black_box(&mut buf), black_box(KEY), black_box(1)))
            });
        }
        group.finish();
    }

    let mut group = c.benchmark_group("mask/memcpy");
    for (size, label) in SIZES {
        let src = vec![0x5a_u8; size];
        let mut dst = vec![0_u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| black_box(&mut dst).copy_from_slice(black_box(&src)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_mask);
criterion_main!(benches);
