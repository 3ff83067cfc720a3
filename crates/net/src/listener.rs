//! Listening sockets: bound through socket2 (SO_REUSEADDR always, SO_REUSEPORT on request),
//! then handed to mio.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::ListenOptions;
use crate::limits::AddrTable;

pub(crate) struct Listener {
    pub(crate) sock: mio::net::TcpListener,
    pub(crate) options: Arc<ListenOptions>,
    pub(crate) local_addr: SocketAddr,
    /// `accept` failed for lack of descriptors or memory, and the backlog has not been
    /// emptied since: accepting is retried when a connection ends and on a short timer.
    pub(crate) stalled: bool,
    /// What each peer address holds of this listener (`ListenOptions::peer_limits`).
    pub(crate) addrs: AddrTable,
}

/// Binds and listens on `addr` without blocking flags surprises: the socket is non-blocking
/// from the start.
pub(crate) fn bind(addr: SocketAddr, options: &ListenOptions) -> io::Result<mio::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Restarting a server must not fail because of connections in TIME_WAIT.
    sock.set_reuse_address(true)?;
    if options.reuse_port {
        sock.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        // `[::]` listens on IPv6 only; callers wanting both bind 0.0.0.0 too. Explicit, so
        // that the behaviour does not depend on the system's bindv6only default.
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(options.backlog.max(1))?;
    Ok(mio::net::TcpListener::from_std(sock.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_a_free_port_on_ipv4_and_ipv6() {
        let opts = ListenOptions::default();
        let v4 = bind("127.0.0.1:0".parse().expect("addr"), &opts).expect("bind v4");
        assert_ne!(v4.local_addr().expect("addr").port(), 0);
        // IPv6 may be disabled in a container; only check when ::1 exists.
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            let v6 = bind("[::1]:0".parse().expect("addr"), &opts).expect("bind v6");
            assert!(v6.local_addr().expect("addr").is_ipv6());
        }
    }

    #[test]
    fn reuse_port_lets_two_listeners_share_a_port() {
        let opts = ListenOptions {
            reuse_port: true,
            ..ListenOptions::default()
        };
        let a = bind("127.0.0.1:0".parse().expect("addr"), &opts).expect("bind a");
        let addr = a.local_addr().expect("addr");
        let b = bind(addr, &opts);
        assert!(b.is_ok(), "second bind with SO_REUSEPORT: {:?}", b.err());
        let plain = bind(addr, &ListenOptions::default());
        assert!(plain.is_err(), "without SO_REUSEPORT the port is taken");
    }
}
