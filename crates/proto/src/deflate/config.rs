//! What an endpoint is willing to negotiate ([`DeflateConfig`]) and what was agreed for one
//! connection ([`DeflateParams`]).

use std::fmt;

/// Smallest and largest LZ77 window a peer may ask for (RFC 7692 section 7.1.2).
pub(crate) const MIN_WINDOW_BITS: u8 = 8;
pub(crate) const MAX_WINDOW_BITS: u8 = 15;

/// permessage-deflate settings of one endpoint, used for both roles.
///
/// As a client, the four negotiation fields say what to put in the offer; as a server, they say
/// what to insist on in every answer. Every valid offer can be honoured whatever the server's
/// settings are (a server may always use a smaller window or drop its context), so the server
/// only declines offers that are malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Offer (client) or accept (server) permessage-deflate at all. Default `true`.
    pub enabled: bool,
    /// zlib compression level, 0 (store only) to 9. Default 1, the fastest that compresses:
    /// zlib-rs runs it with static Huffman codes, so a sync flush needs no tree building. On
    /// 20,000 chat-like JSON messages of ~180 bytes with context takeover (release build),
    /// level 1 took 0.5 µs a message and sent 28.8% of the input; level 6 took 9.8 µs and sent
    /// 21.9%. On one 880 KB text message: 330 MB/s and 28.3% against 43 MB/s and 16.5%. Choose
    /// 6 when bandwidth costs more than CPU.
    pub level: u32,
    /// zlib memory level, 1 to 9. Default 8, zlib's own default. It sizes the compressor's
    /// symbol and pending buffers, `7 * 2^(mem_level + 6)` bytes (112 KiB at 8, 14 KiB at 5,
    /// under 1 KiB at 1); zlib-rs's hash table stays at 128 KiB whatever the level, so a
    /// compressor with a 15-bit window takes 371 KiB at 8 and 260 KiB at 1. Lower levels end
    /// deflate blocks sooner, which costs compression on large messages at level 6 (26.8% of
    /// the input instead of 23.8% at 1) but not at level 1 nor on short messages; the
    /// [module documentation](crate::deflate) has the measurements. Only our compressor uses it.
    pub mem_level: u8,
    /// Messages shorter than this many bytes are sent uncompressed. Default 32: without shared
    /// history, deflate rarely makes so little data shorter (static codes spend up to 9 bits a
    /// byte, plus the block header). With context takeover, short messages that repeat earlier
    /// ones do shrink; lower it when most traffic is short and repetitive.
    pub threshold: usize,
    /// Client: ask the server not to carry its LZ77 window across messages.
    /// Server: never carry our window across messages, whatever the client asks.
    pub server_no_context_takeover: bool,
    /// Client: promise not to carry our window across messages.
    /// Server: require the client not to carry its window across messages.
    pub client_no_context_takeover: bool,
    /// Client: ask the server to compress with at most `2^n` bytes of window (`None`: let it
    /// choose, up to 15). Server: never compress with more than this (`None`: 15, or what the
    /// client asked for).
    pub server_max_window_bits: Option<u8>,
    /// Client: compress with at most this window and say so in the offer; `None` offers
    /// `client_max_window_bits` without a value, which lets the server choose. Server: ask the
    /// client for at most this window when the client offered the parameter; a client that
    /// did not offer it is accepted with 15, because our inflater costs the same for every
    /// window size.
    pub client_max_window_bits: Option<u8>,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            enabled: true,
            level: 1,
            mem_level: 8,
            threshold: 32,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
        }
    }
}

impl DeflateConfig {
    /// Checks every field against its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.level > 9 {
            return Err(ConfigError::Level(self.level));
        }
        if !(1..=9).contains(&self.mem_level) {
            return Err(ConfigError::MemLevel(self.mem_level));
        }
        for (name, bits) in [
            ("server_max_window_bits", self.server_max_window_bits),
            ("client_max_window_bits", self.client_max_window_bits),
        ] {
            if let Some(bits) = bits {
                if !(MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&bits) {
                    return Err(ConfigError::WindowBits { name, bits });
                }
            }
        }
        Ok(())
    }

    /// Whether a message of `len` bytes is worth compressing (see [`DeflateConfig::threshold`]).
    pub fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold
    }
}

/// A [`DeflateConfig`] field outside its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `level` above 9.
    Level(u32),
    /// `mem_level` outside 1..=9.
    MemLevel(u8),
    /// A window size outside 8..=15.
    WindowBits { name: &'static str, bits: u8 },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Level(level) => write!(f, "deflate level {level} is not in 0..=9"),
            ConfigError::MemLevel(level) => write!(f, "deflate mem_level {level} is not in 1..=9"),
            ConfigError::WindowBits { name, bits } => write!(f, "{name}={bits} is not in 8..=15"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// What was agreed for one connection, seen from one end.
///
/// `*_max_window_bits` is the largest window each side compresses with. A server records the
/// window it will really use, which may be smaller than what its answer announced: a server
/// configured with `server_max_window_bits` does not announce it to a client that did not
/// offer the parameter (some clients fail on an unsolicited one), it just compresses with the
/// smaller window, which is always allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: u8,
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    /// What a bare `permessage-deflate` offer and answer agree on.
    fn default() -> Self {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(DeflateConfig::default().validate(), Ok(()));
    }

    #[test]
    fn config_rejects_values_out_of_range() {
        let bad = |f: fn(&mut DeflateConfig)| {
            let mut cfg = DeflateConfig::default();
            f(&mut cfg);
            cfg.validate()
        };
        assert_eq!(bad(|c| c.level = 10), Err(ConfigError::Level(10)));
        assert_eq!(bad(|c| c.mem_level = 0), Err(ConfigError::MemLevel(0)));
        assert_eq!(bad(|c| c.mem_level = 10), Err(ConfigError::MemLevel(10)));
        assert_eq!(
            bad(|c| c.server_max_window_bits = Some(7)),
            Err(ConfigError::WindowBits {
                name: "server_max_window_bits",
                bits: 7
            })
        );
        assert_eq!(
            bad(|c| c.client_max_window_bits = Some(16)),
            Err(ConfigError::WindowBits {
                name: "client_max_window_bits",
                bits: 16
            })
        );
        assert_eq!(bad(|c| c.client_max_window_bits = Some(8)), Ok(()));
        assert_eq!(bad(|c| c.level = 0), Ok(()));
    }

    #[test]
    fn threshold_compares_inclusively() {
        let cfg = DeflateConfig {
            threshold: 32,
            ..DeflateConfig::default()
        };
        assert!(!cfg.should_compress(31));
        assert!(cfg.should_compress(32));
    }
}
