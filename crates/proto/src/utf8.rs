//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! RFC 6455 section 8.1 asks an endpoint to fail a text message as soon as it stops being valid
//! UTF-8; Autobahn (cases 6.4.*) checks that this happens at the first bad byte, even inside a
//! frame that has not fully arrived. The validator therefore looks at every chunk as it comes
//! and carries at most three bytes of an unfinished code point to the next chunk.
//!
//! The bulk of the work is done by `simdutf8` (SIMD with runtime detection). Its `compat` API
//! tells an invalid sequence (`error_len() == Some(_)`) apart from one cut short by the end of
//! the chunk (`None`), which is exactly the distinction fail-fast needs.

use simdutf8::compat::from_utf8;

/// The bytes can no longer be the start of valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Error;

/// Validates a stream of chunks. `Default` gives a fresh validator.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

/// The length of the sequence a leading byte starts, or 0 for a byte that cannot lead.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

impl Utf8Validator {
    /// Checks the next chunk. An error means no continuation can make the text valid.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len > 0 {
            // Finish the code point that the previous chunk cut short.
            let have = self.partial_len as usize;
            let need = sequence_len(self.partial[0]);
            let take = (need - have).min(chunk.len());
            self.partial[have..have + take].copy_from_slice(&chunk[..take]);
            let len = have + take;
            match from_utf8(&self.partial[..len]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_some() => return Err(Utf8Error),
                Err(_) => {
                    self.partial_len = len as u8;
                    return Ok(());
                }
            }
            chunk = &chunk[take..];
        }
        match from_utf8(chunk) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(Utf8Error),
            Err(e) => {
                let tail = &chunk[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Whether the text so far ends on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    /// Ends the message: an unfinished code point is an error. The validator is reset.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let complete = self.is_complete();
        *self = Self::default();
        if complete {
            Ok(())
        } else {
            Err(Utf8Error)
        }
    }

    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Validates a whole text at once (the fast path for messages that arrive in one piece).
pub fn validate(text: &[u8]) -> Result<(), Utf8Error> {
    simdutf8::basic::from_utf8(text)
        .map(|_| ())
        .map_err(|_| Utf8Error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `bytes` split at every position; returns the first chunk index that failed.
    fn feed_split(bytes: &[u8], at: usize) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::default();
        v.feed(&bytes[..at])?;
        v.feed(&bytes[at..])?;
        v.finish()
    }

    #[test]
    fn valid_text_passes_in_every_split() {
        let text = "κόσμε Hello-µ@ßöäüàá-UTF-8!! 𝄞 \u{10FFFF}".as_bytes();
        for at in 0..=text.len() {
            assert_eq!(feed_split(text, at), Ok(()), "split at {at}");
        }
    }

    #[test]
    fn valid_text_passes_byte_by_byte() {
        let text = "𝄞€ña\u{FFFF}".as_bytes();
        let mut v = Utf8Validator::default();
        for b in text {
            v.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn fails_at_the_first_impossible_byte_not_at_the_end() {
        // Each prefix below can no longer start valid UTF-8, so feeding it alone must fail
        // without waiting for more input (Autobahn 6.4.1-6.4.4).
        let cases: &[&[u8]] = &[
            &[0xF4, 0x90],       // above U+10FFFF
            &[0xED, 0xA0],       // UTF-16 surrogate
            &[0xE0, 0x80],       // overlong 3-byte form
            &[0xF0, 0x80],       // overlong 4-byte form
            &[0xC0],             // overlong 2-byte lead
            &[0xC1],             //
            &[0xF5],             // lead byte beyond U+10FFFF
            &[0xFF],             //
            &[0x80],             // continuation without a lead
            &[0xCE, 0xBA, 0xE1], // fine so far ...
        ];
        for (i, case) in cases.iter().enumerate() {
            let mut v = Utf8Validator::default();
            let result = v.feed(case);
            if i == cases.len() - 1 {
                assert_eq!(result, Ok(()), "valid prefix must not fail");
                assert_eq!(
                    v.feed(&[0x41]),
                    Err(Utf8Error),
                    "... until a bad byte comes"
                );
            } else {
                assert_eq!(result, Err(Utf8Error), "case {case:02x?}");
            }
        }
    }

    #[test]
    fn fails_inside_a_carried_code_point() {
        let mut v = Utf8Validator::default();
        v.feed(&[0xF4]).unwrap();
        assert_eq!(v.feed(&[0x90]), Err(Utf8Error));
    }

    #[test]
    fn unfinished_code_point_at_the_end_fails() {
        let mut v = Utf8Validator::default();
        v.feed(&[0x61, 0xE2, 0x82]).unwrap();
        assert_eq!(v.finish(), Err(Utf8Error));
        // finish() resets.
        assert_eq!(v.feed(b"ok"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    proptest! {
        #[test]
        fn chunked_validation_agrees_with_std(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            cuts in proptest::collection::vec(0usize..64, 0..6),
        ) {
            let expected = std::str::from_utf8(&bytes).is_ok();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut v = Utf8Validator::default();
            let mut start = 0;
            let mut ok = true;
            for cut in cuts.into_iter().chain(std::iter::once(bytes.len())) {
                if v.feed(&bytes[start..cut]).is_err() {
                    ok = false;
                    break;
                }
                start = cut;
            }
            let ok = ok && v.finish().is_ok();
            prop_assert_eq!(ok, expected);
            prop_assert_eq!(validate(&bytes).is_ok(), expected);
        }

        #[test]
        fn valid_strings_pass_in_any_chunking(s in "\\PC{0,40}", cut in 0usize..200) {
            let bytes = s.as_bytes();
            let at = cut % (bytes.len() + 1);
            prop_assert_eq!(feed_split(bytes, at), Ok(()));
        }
    }
}
