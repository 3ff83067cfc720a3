//! Opening a client connection up to its handshake: the resolver's answer, the
//! non-blocking TCP connect (from a chosen local address when asked), its completion. With
//! a proxy, the names to resolve and the address to connect to are the proxy's (and, for
//! `socks5://`, the target's name first); see `crate::proxy`.

use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::{Interest, Token};

use crate::conn::Stage;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::proxy::ProxyFailure;
use crate::sender::Resolved;
use crate::slab::split;

impl Context {
    /// Looks up the next name of a connection in the `Resolving` stage (the target's for
    /// `socks5://`, the proxy's, or the origin's), or connects at once to an IP literal.
    pub(crate) fn resolve_next(&mut self, id: u64) -> Result<()> {
        let c = self.conns.get_mut(id).ok_or(Error::StaleId)?;
        let Stage::Resolving(dial) = &mut c.stage else {
            return Err(Error::InvalidArgument("not resolving".into()));
        };
        let (host, port) = match dial.proxy.as_deref() {
            Some(p) if !p.resolving_target => (p.url.host.clone(), p.url.port),
            _ => (dial.url.host.clone(), dial.url.port),
        };
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                dial.addrs = vec![SocketAddr::new(ip, port)];
                dial.next = 0;
                self.start_connect(id)
            }
            Err(_) => self.resolver.submit(id, &host, port).map_err(Error::Io),
        }
    }

    pub(crate) fn on_resolved(&mut self, r: Resolved, ev: &mut Events) {
        let Some(c) = self.conns.get_mut(r.conn) else {
            return; // timed out or closed meanwhile
        };
        let Stage::Resolving(dial) = &mut c.stage else {
            return;
        };
        let proxy_name = dial.proxy_name();
        if let Some(p) = dial.proxy.as_deref_mut().filter(|p| p.resolving_target) {
            // `socks5://`: the target's address, which the proxy is then asked to reach.
            match r.result {
                Ok(addrs) => {
                    p.resolving_target = false;
                    p.target = addrs.first().map(|&a| a.into());
                    if let Err(e) = self.resolve_next(r.conn) {
                        self.finish(r.conn, ev, Some(e));
                    }
                }
                Err(error) => {
                    let host = dial.url.host.clone();
                    self.finish(r.conn, ev, Some(Error::Resolve { host, error }));
                }
            }
            return;
        }
        match r.result {
            Ok(addrs) => {
                dial.addrs = addrs;
                dial.next = 0;
                if let Err(e) = self.start_connect(r.conn) {
                    self.finish(r.conn, ev, Some(e));
                }
            }
            Err(error) => {
                let e = match proxy_name {
                    Some(proxy) => Error::Proxy {
                        proxy,
                        failure: ProxyFailure::Resolve(error),
                    },
                    None => Error::Resolve {
                        host: dial.url.host.clone(),
                        error,
                    },
                };
                self.finish(r.conn, ev, Some(e));
            }
        }
    }

    /// Starts a non-blocking connect to the next address of the list.
    pub(crate) fn start_connect(&mut self, id: u64) -> Result<()> {
        let (index, _) = split(id);
        loop {
            let c = self.conns.get_mut(id).ok_or(Error::StaleId)?;
            let stage = std::mem::replace(&mut c.stage, Stage::Answering);
            let mut dial = match stage {
                Stage::Resolving(d) | Stage::Connecting(d) => d,
                other => {
                    c.stage = other;
                    return Err(Error::InvalidArgument("not connecting".into()));
                }
            };
            let Some(&addr) = dial.addrs.get(dial.next) else {
                let e = dial.last_error.take().unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "no address to connect to")
                });
                let e = match dial.proxy_name() {
                    Some(proxy) => Error::Proxy {
                        proxy,
                        failure: ProxyFailure::Connect(e),
                    },
                    None => Error::Connect(e),
                };
                c.stage = Stage::Connecting(dial);
                return Err(e);
            };
            dial.next += 1;
            let from = dial.options.local_address;
            if let Some(ip) = from.filter(|ip| ip.is_ipv4() != addr.is_ipv4()) {
                dial.last_error = Some(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("local address {ip} cannot reach {addr}"),
                ));
                c.stage = Stage::Connecting(dial);
                continue;
            }
            let attempt = connect_from(from, addr).and_then(|mut sock| {
                let interest = Interest::READABLE | Interest::WRITABLE;
                self.poll
                    .registry()
                    .register(&mut sock, Token(index), interest)
                    .map(|_| sock)
            });
            match attempt {
                Ok(sock) => {
                    dial.peer = Some(addr);
                    c.sock = Some(sock);
                    c.stage = Stage::Connecting(dial);
                    return Ok(());
                }
                Err(e) => {
                    dial.last_error = Some(e);
                    c.stage = Stage::Connecting(dial);
                }
            }
        }
    }

    /// The socket of a connecting client became ready: connected, or failed (then the next
    /// address is tried).
    pub(crate) fn finish_connect(&mut self, id: u64, ev: &mut Events) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(sock) = c.sock.as_ref() else {
            return;
        };
        let error = match sock.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match sock.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return, // not yet
                Err(e) => Some(e),
            },
        };
        if let Some(e) = error {
            c.sock = None;
            if let Stage::Connecting(dial) = &mut c.stage {
                dial.last_error = Some(e);
            }
            if let Err(e) = self.start_connect(id) {
                self.finish(id, ev, Some(e));
            }
            return;
        }
        let _ = sock.set_nodelay(true);
        let stage = std::mem::replace(&mut c.stage, Stage::Answering);
        let Stage::Connecting(mut dial) = stage else {
            c.stage = stage;
            return;
        };
        if let Some(p) = dial.proxy.as_deref_mut() {
            // Through a proxy: its handshake first, within the connect deadline still armed.
            let first = p.start();
            let proxy = p.url.to_string();
            // `https://`: the proxy's handshake goes inside TLS to the proxy.
            c.outer = p.outer.take();
            c.stage = Stage::Proxying(dial);
            match first {
                Ok(bytes) => {
                    c.pre.set(bytes);
                    self.mark_dirty(id);
                }
                Err(e) => {
                    let failure = ProxyFailure::Handshake(e);
                    self.finish(id, ev, Some(Error::Proxy { proxy, failure }));
                }
            }
            return;
        }
        if let Some(hs) = &dial.handshake {
            c.pre.set(hs.request().to_vec());
        }
        c.stage = Stage::ClientHandshake(dial);
        let at = self.now + self.config.handshake_timeout;
        self.arm_phase(id, at);
        self.mark_dirty(id);
    }
}

/// Starts a non-blocking connect to `addr`, from `from` when given (bind first).
fn connect_from(
    from: Option<std::net::IpAddr>,
    addr: SocketAddr,
) -> io::Result<mio::net::TcpStream> {
    let Some(ip) = from else {
        return mio::net::TcpStream::connect(addr);
    };
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    sock.bind(&SocketAddr::new(ip, 0).into())?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        // The connect goes on in the background; the writable event says how it ended.
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(sock.into()))
}
