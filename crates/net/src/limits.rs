//! Limits per peer address on a listener (issue 16): connections and handshakes in progress
//! per address (IPv6 counted by /64, since one host usually owns a whole /64), handshakes in
//! progress in total, and a token-bucket rate of new connections per address.
//!
//! A connection over a limit is closed right after `accept`, before anything is read from
//! it or allocated for it: it costs the others nothing. No HTTP answer (a 503 would mean
//! reading the request first, which is what an attacker wants the server to spend on).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::config::PeerLimits;

/// An address as the limits count it: IPv4 (and IPv4-mapped IPv6) whole, IPv6 by its /64.
pub(crate) type AddrKey = [u8; 16];

pub(crate) fn addr_key(ip: IpAddr) -> AddrKey {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_ipv6_mapped().octets(),
            None => {
                let mut key = v6.octets();
                key[8..].fill(0);
                key
            }
        },
    }
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    ConnectionsPerAddress,
    HandshakesPerAddress,
    Handshakes,
    Rate,
}

#[derive(Debug)]
struct Entry {
    conns: u32,
    handshakes: u32,
    tokens: f64,
    refilled: Instant,
}

/// The counters of one listener.
#[derive(Debug, Default)]
pub(crate) struct AddrTable {
    entries: HashMap<AddrKey, Entry>,
    handshakes: usize,
}

impl AddrTable {
    /// Counts a new connection from `key` (as a handshake in progress), or refuses it.
    pub(crate) fn admit(
        &mut self,
        key: AddrKey,
        limits: &PeerLimits,
        now: Instant,
    ) -> Result<(), Refusal> {
        if limits
            .max_handshakes
            .is_some_and(|max| self.handshakes >= max)
        {
            return Err(Refusal::Handshakes);
        }
        let burst = limits.connection_rate.map_or(0.0, |r| f64::from(r.burst));
        let e = self.entries.entry(key).or_insert(Entry {
            conns: 0,
            handshakes: 0,
            tokens: burst,
            refilled: now,
        });
        if limits
            .max_connections_per_address
            .is_some_and(|max| e.conns as usize >= max)
        {
            return Err(Refusal::ConnectionsPerAddress);
        }
        if limits
            .max_handshakes_per_address
            .is_some_and(|max| e.handshakes as usize >= max)
        {
            return Err(Refusal::HandshakesPerAddress);
        }
        if let Some(rate) = limits.connection_rate {
            let elapsed = now.saturating_duration_since(e.refilled).as_secs_f64();
            e.tokens = (e.tokens + elapsed * rate.per_second).min(burst);
            e.refilled = now;
            if e.tokens < 1.0 {
                return Err(Refusal::Rate);
            }
            e.tokens -= 1.0;
        }
        e.conns += 1;
        e.handshakes += 1;
        self.handshakes += 1;
        Ok(())
    }

    /// The handshake of a connection from `key` is over: it opened.
    pub(crate) fn opened(&mut self, key: AddrKey) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.handshakes = e.handshakes.saturating_sub(1);
            self.handshakes = self.handshakes.saturating_sub(1);
        }
    }

    /// A connection from `key` ended (`open`: after its handshake).
    pub(crate) fn ended(&mut self, key: AddrKey, open: bool) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.conns = e.conns.saturating_sub(1);
            if !open {
                e.handshakes = e.handshakes.saturating_sub(1);
                self.handshakes = self.handshakes.saturating_sub(1);
            }
        }
    }

    /// Forgets the addresses that hold no connection and whose rate bucket is full again,
    /// so the table only holds addresses seen recently (called about once a second).
    pub(crate) fn prune(&mut self, limits: &PeerLimits, now: Instant) {
        let rate = limits.connection_rate;
        self.entries.retain(|_, e| {
            if e.conns > 0 {
                return true;
            }
            rate.is_some_and(|r| {
                let elapsed = now.saturating_duration_since(e.refilled).as_secs_f64();
                e.tokens + elapsed * r.per_second < f64::from(r.burst)
            })
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConnectionRate;
    use std::time::Duration;

    fn ip(s: &str) -> AddrKey {
        addr_key(s.parse().expect("ip"))
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_key_and_mapped_ipv4_is_ipv4() {
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.1"), ip("192.0.2.1"));
        assert_ne!(ip("192.0.2.1"), ip("192.0.2.2"));
    }

    #[test]
    fn connections_and_handshakes_per_address_are_counted_until_they_end() {
        let limits = PeerLimits {
            max_connections_per_address: Some(3),
            max_handshakes_per_address: Some(2),
            max_handshakes: Some(10),
            connection_rate: None,
        };
        let now = Instant::now();
        let mut t = AddrTable::default();
        let a = ip("10.0.0.1");
        assert_eq!(t.admit(a, &limits, now), Ok(()));
        assert_eq!(t.admit(a, &limits, now), Ok(()));
        assert_eq!(t.admit(a, &limits, now), Err(Refusal::HandshakesPerAddress));
        assert_eq!(
            t.admit(ip("10.0.0.2"), &limits, now),
            Ok(()),
            "others go on"
        );
        t.opened(a);
        assert_eq!(t.admit(a, &limits, now), Ok(()));
        t.opened(a);
        assert_eq!(
            t.admit(a, &limits, now),
            Err(Refusal::ConnectionsPerAddress)
        );
        t.ended(a, true);
        assert_eq!(t.admit(a, &limits, now), Ok(()));
    }

    #[test]
    fn handshakes_in_total_are_bounded() {
        let limits = PeerLimits {
            max_handshakes: Some(2),
            ..PeerLimits::default()
        };
        let now = Instant::now();
        let mut t = AddrTable::default();
        assert_eq!(t.admit(ip("10.0.0.1"), &limits, now), Ok(()));
        assert_eq!(t.admit(ip("10.0.0.2"), &limits, now), Ok(()));
        assert_eq!(
            t.admit(ip("10.0.0.3"), &limits, now),
            Err(Refusal::Handshakes)
        );
        t.ended(ip("10.0.0.1"), false);
        assert_eq!(t.admit(ip("10.0.0.3"), &limits, now), Ok(()));
    }

    #[test]
    fn the_rate_allows_a_burst_then_refills_and_survives_closing() {
        let limits = PeerLimits {
            connection_rate: Some(ConnectionRate {
                per_second: 10.0,
                burst: 3,
            }),
            ..PeerLimits::default()
        };
        let start = Instant::now();
        let mut t = AddrTable::default();
        let a = ip("10.0.0.1");
        for _ in 0..3 {
            assert_eq!(t.admit(a, &limits, start), Ok(()));
            t.ended(a, false); // connect-and-close loops do not reset the bucket
        }
        t.prune(&limits, start);
        assert_eq!(t.len(), 1, "kept while its bucket refills");
        assert_eq!(t.admit(a, &limits, start), Err(Refusal::Rate));
        let later = start + Duration::from_millis(150);
        assert_eq!(t.admit(a, &limits, later), Ok(()), "one token after 100 ms");
        assert_eq!(t.admit(a, &limits, later), Err(Refusal::Rate));
        t.ended(a, false);
        t.prune(&limits, later + Duration::from_secs(1));
        assert_eq!(t.len(), 0, "forgotten once full again");
    }
}
