//! Payload masking (RFC 6455 section 5.3): payload byte `i` is XORed with byte `i % 4` of the
//! masking key. The same operation masks and unmasks.
//!
//! A server runs this over every byte it receives, so it has to keep up with memory: the bulk
//! of the buffer is XORed one aligned word (or one AVX2 register) at a time with the key
//! repeated across it; only the few bytes before the first aligned word and after the last go
//! one at a time.

/// XOR `buf` with the 4-byte masking key, starting at byte `phase` (0..=3) of the key.
///
/// `phase` is the position of `buf[0]` within the payload modulo 4 (larger values are taken
/// modulo 4), so a payload that arrives in pieces can be unmasked piece by piece: pass the
/// number of payload bytes already unmasked. Applying the same mask twice restores the input.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], phase: usize) {
    let key = rotated(key, phase);
    #[cfg(target_arch = "x86_64")]
    if buf.len() >= x86::AVX2_MIN_LEN && x86::has_avx2() {
        // SAFETY: the CPU has just been checked to support AVX2.
        unsafe { x86::apply_mask_avx2(buf, key) };
        return;
    }
    apply_mask_words(buf, key);
}

/// Reference one-line byte loop, kept for tests and the benchmark.
pub fn apply_mask_reference(buf: &mut [u8], key: [u8; 4], phase: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(i + phase) % 4];
    }
}

/// The key as seen from a byte at payload position `phase`: its byte 0 applies there.
/// (Shifting the bytes left is a right rotation of their little-endian number.)
fn rotated(key: [u8; 4], phase: usize) -> [u8; 4] {
    let bits = 8 * (phase % 4) as u32;
    u32::from_le_bytes(key).rotate_right(bits).to_le_bytes()
}

/// Portable path, one `u64` at a time. SSE2 (x86_64) and NEON (aarch64) are baseline, so LLVM
/// vectorizes the middle loop with them without any target-specific code here.
fn apply_mask_words(buf: &mut [u8], key: [u8; 4]) {
    // SAFETY: `u64` is plain data: every bit pattern is valid and it has no padding.
    let (head, words, tail) = unsafe { buf.align_to_mut::<u64>() };
    apply_mask_short(head, key);
    let key = rotated(key, head.len());
    let narrow = u64::from(u32::from_ne_bytes(key));
    let wide = narrow << 32 | narrow; // the key twice, in memory order on either endianness
    words.iter_mut().for_each(|w| *w ^= wide);
    // The words cover a multiple of 4 bytes, so the key phase is the same after them.
    apply_mask_short(tail, key);
}

/// The ends around the aligned words, fewer than 8 bytes each in practice (`align_to_mut`
/// does not promise it, so any length is handled): 4 bytes at a time, then the rest.
fn apply_mask_short(buf: &mut [u8], key: [u8; 4]) {
    let xor = |bytes: &mut [u8]| bytes.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
    let mut fours = buf.chunks_exact_mut(4);
    fours.by_ref().for_each(xor);
    xor(fours.into_remainder());
}

/// A fresh masking key. RFC 6455 section 5.3 wants keys from a strong source of entropy that
/// a script cannot predict; they come from the OS generator, fetched in batches so that a key
/// costs a few nanoseconds instead of a system call.
pub(crate) fn mask_key() -> [u8; 4] {
    use std::cell::RefCell;
    const BATCH: usize = 1024;
    thread_local! {
        static POOL: RefCell<([u8; BATCH], usize)> = const { RefCell::new(([0; BATCH], BATCH)) };
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let (bytes, used) = &mut *pool;
        if *used + 4 > BATCH {
            if getrandom::getrandom(bytes).is_err() {
                // The OS generator failing is not recoverable in any sound way; a predictable
                // mask would break the RFC's security argument, so refuse to go on.
                panic!("the operating system's random number generator failed");
            }
            *used = 0;
        }
        let key = [
            bytes[*used],
            bytes[*used + 1],
            bytes[*used + 2],
            bytes[*used + 3],
        ];
        *used += 4;
        key
    })
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{__m256i, _mm256_set1_epi32, _mm256_xor_si256};

    /// Below this the word path is as fast (measured): the AVX2 path pays for two calls of it
    /// for the unaligned ends.
    pub(super) const AVX2_MIN_LEN: usize = 512;

    /// std caches the CPUID answer in a static atomic, so this is one relaxed load per call.
    pub(super) fn has_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn apply_mask_avx2(buf: &mut [u8], key: [u8; 4]) {
        // SAFETY: `__m256i` is 32 bytes of plain data: every bit pattern is valid, no padding.
        let (head, vectors, tail) = unsafe { buf.align_to_mut::<__m256i>() };
        super::apply_mask_words(head, key);
        let key = super::rotated(key, head.len());
        let wide = _mm256_set1_epi32(i32::from_ne_bytes(key));
        vectors
            .iter_mut()
            .for_each(|v| *v = _mm256_xor_si256(*v, wide));
        super::apply_mask_words(tail, key); // same key phase as after the head
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The key of the RFC 6455 section 5.7 example; all four bytes differ, so a wrong phase shows.
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    type Kernel = fn(&mut [u8], [u8; 4], usize);

    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
            .collect()
    }

    /// Unmask `payload` in pieces of the given sizes (cycled), as frames arriving in chunks.
    fn unmask_in_pieces(payload: &mut [u8], key: [u8; 4], sizes: &[usize]) {
        let mut done = 0;
        for &size in sizes.iter().cycle() {
            if done == payload.len() {
                break;
            }
            let end = payload.len().min(done + size.max(1));
            apply_mask(&mut payload[done..end], key, done % 4);
            done = end;
        }
    }

    #[test]
    fn rfc6455_5_7_masked_hello_example() {
        let mut frame_payload = *b"Hello";
        apply_mask(&mut frame_payload, KEY, 0);
        assert_eq!(frame_payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        apply_mask(&mut frame_payload, KEY, 0);
        assert_eq!(&frame_payload, b"Hello");
    }

    /// Every way `apply_mask` can split the work, each also called directly so that every
    /// path sees every length and alignment, whichever one `apply_mask` picks on this machine.
    fn paths() -> Vec<(&'static str, Kernel)> {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut paths: Vec<(&'static str, Kernel)> = vec![
            ("apply_mask", apply_mask),
            ("words", |buf, key, phase| {
                apply_mask_words(buf, rotated(key, phase))
            }),
            ("short", |buf, key, phase| {
                apply_mask_short(buf, rotated(key, phase))
            }),
        ];
        #[cfg(target_arch = "x86_64")]
        if x86::has_avx2() {
            paths.push(("avx2", |buf, key, phase| {
                // SAFETY: AVX2 support was checked before this path was listed.
                unsafe { x86::apply_mask_avx2(buf, rotated(key, phase)) }
            }));
        }
        paths
    }

    /// Every length up to 64 and some larger (around the AVX2 threshold too), every phase,
    /// every start alignment modulo 32 (the widest word used); the bytes around the slice must
    /// stay untouched.
    #[test]
    fn masking_matches_reference_at_every_length_phase_and_alignment() {
        let lengths = (0..=64).chain([100, 511, 512, 513, 1000, 4097, 65536 + 3]);
        let paths = paths();
        for len in lengths {
            let original = pattern(len + 96);
            // Start from a 64-aligned address so that `offset - base` is the alignment.
            let base = original.as_ptr().align_offset(64);
            for phase in 0..4 {
                for offset in base..base + 32 {
                    let mut expected = original.clone();
                    apply_mask_reference(&mut expected[offset..offset + len], KEY, phase);
                    for &(name, path) in &paths {
                        let mut actual = original.clone();
                        path(&mut actual[offset..offset + len], KEY, phase);
                        assert!(
                            actual == expected,
                            "{name}: len {len} phase {phase} offset {}",
                            offset - base
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn phase_is_taken_modulo_4() {
        for phase in 0..16 {
            let (mut a, mut b) = (pattern(300), pattern(300));
            apply_mask(&mut a, KEY, phase);
            apply_mask(&mut b, KEY, phase % 4);
            assert_eq!(a, b, "phase {phase}");
        }
    }

    #[test]
    fn masking_twice_restores_the_payload() {
        for len in [0, 1, 7, 31, 64, 65, 1000, 4097] {
            for phase in 0..4 {
                let original = pattern(len);
                let mut buf = original.clone();
                apply_mask(&mut buf, KEY, phase);
                assert!(
                    len < 4 || buf != original,
                    "len {len}: mask changed nothing"
                );
                apply_mask(&mut buf, KEY, phase);
                assert_eq!(buf, original, "len {len} phase {phase}");
            }
        }
    }

    #[test]
    fn unmasking_in_pieces_equals_unmasking_whole() {
        let mut whole = pattern(5000);
        let original = whole.clone();
        apply_mask(&mut whole, KEY, 0);
        // Fixed-seed xorshift: piece sizes from 1 byte to past the AVX2 threshold.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let sizes: Vec<usize> = (0..64)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 200) as usize
            })
            .collect();
        for sizes in [&[1][..], &[3], &[5, 1, 2], &sizes] {
            let mut pieces = original.clone();
            unmask_in_pieces(&mut pieces, KEY, sizes);
            assert_eq!(pieces, whole, "piece sizes {sizes:?}");
        }
    }

    /// Keys come from a pool refilled from the OS every 256 keys: across several refills
    /// they stay unpredictable, not one batch repeated (1,000 random 32-bit keys hold a
    /// repeat about once in 8,600 runs, more than a few practically never).
    #[test]
    fn mask_keys_do_not_repeat_across_pool_refills() {
        let keys: std::collections::HashSet<[u8; 4]> = (0..1000).map(|_| mask_key()).collect();
        assert!(keys.len() >= 995, "{} distinct keys of 1000", keys.len());
    }

    proptest! {
        #[test]
        fn prop_matches_reference_whole_and_in_pieces(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
            key in any::<[u8; 4]>(),
            phase in 0usize..4,
            offset in 0usize..32,
            sizes in proptest::collection::vec(0usize..300, 1..16),
        ) {
            let mut expected = data.clone();
            apply_mask_reference(&mut expected, key, phase);

            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(&data);
            apply_mask(&mut shifted[offset..], key, phase);
            prop_assert_eq!(&shifted[offset..], &expected[..]);

            let mut expected_from_0 = data.clone();
            apply_mask_reference(&mut expected_from_0, key, 0);
            let mut pieces = data;
            unmask_in_pieces(&mut pieces, key, &sizes);
            prop_assert_eq!(pieces, expected_from_0);
        }
    }
}
