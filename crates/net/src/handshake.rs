//! The opening handshake as the context runs it: a server reading a request, applying the
//! listener's rules (proto's `handshake::Policy`) and answering it, or handing it to the
//! application; a client checking the server's answer. Either way the connection then opens
//! with its protocol engine, or ends with the answer a rejection deserves.

use std::net::{Ipv4Addr, SocketAddr};

use tidewire_proto::deflate::{client_accept, server_negotiate};
use tidewire_proto::handshake::{accept_response, ClientResponse, Rejection, Request, Upgrade};
use tidewire_proto::{Connection, Role};

use crate::config::SlowAction;
use crate::conn::{flag, Stage};
use crate::context::{push_open, Context};
use crate::error::{Error, Result};
use crate::events::{Events, OpenInfo, Raw};
use crate::slab::ConnId;

impl Context {
    /// The server accepted: opens the connection. False if the answer was unacceptable
    /// (the connection is then gone).
    pub(crate) fn open_client(
        &mut self,
        id: u64,
        response: ClientResponse,
        ev: &mut Events,
    ) -> bool {
        let proto_config = self.proto_config.clone();
        let Some(c) = self.conns.get_mut(id) else {
            return false;
        };
        let stage = std::mem::replace(&mut c.stage, Stage::Open);
        let Stage::ClientHandshake(dial) = stage else {
            c.stage = stage;
            return false;
        };
        let mut ws = Connection::new(Role::Client, proto_config);
        if let (Some(cfg), Some(answer)) = (&dial.options.deflate, &response.extensions) {
            match client_accept(cfg, answer) {
                Ok(params) => ws.set_deflate(params, cfg),
                Err(e) => {
                    // RFC 7692 7.1: a bad answer fails the connection before it opens.
                    c.stage = Stage::ClientHandshake(dial);
                    self.finish(id, ev, Some(Error::Extension(e.to_string())));
                    return false;
                }
            }
        }
        c.ws = Some(ws);
        c.deadline = None;
        let info = OpenInfo {
            listener: None,
            subprotocol: response.subprotocol,
            extensions: response.extensions,
            peer_addr: dial
                .peer
                .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))),
            path: dial.url.resource,
            headers: response.headers,
        };
        push_open(ev, ConnId(id), info);
        self.arm_keepalive(id);
        if !self.reconnects.is_empty() {
            if let Some(r) = self.reconnects.get_mut(&id) {
                r.backoff.opened(self.now);
            }
        }
        true
    }

    /// A complete request arrived at `ev.arena[start..end]`.
    pub(crate) fn on_request(
        &mut self,
        id: u64,
        request: Request,
        start: usize,
        end: usize,
        ev: &mut Events,
    ) -> bool {
        let body = start + request.body_start.min(end - start);
        let Some(c) = self.conns.get_mut(id) else {
            return false;
        };
        let Stage::ServerHandshake(acc) = &mut c.stage else {
            return false;
        };
        let options = acc.options.clone();
        let listener = acc.listener;
        let key = match &request.upgrade {
            Upgrade::Invalid(rejection) => {
                self.answer(id, rejection);
                return true;
            }
            Upgrade::NotUpgrade if options.handle_http => {
                self.await_decision(id, ev);
                ev.requests.push(request);
                let index = ev.requests.len() - 1;
                ev.list.push(Raw::HttpRequest {
                    conn: ConnId(id),
                    listener,
                    index,
                });
                return false;
            }
            Upgrade::NotUpgrade => {
                self.answer(id, &Rejection::not_upgrade());
                return false;
            }
            Upgrade::WebSocket { key } => key.clone(),
        };
        let subprotocol = match options.policy().check(&request) {
            Ok(selected) => selected.map(|p| request.subprotocols.iter().position(|o| o == p)),
            Err(rejection) => {
                self.answer(id, &rejection);
                return true;
            }
        };
        let subprotocol = subprotocol.flatten();
        acc.key = key;
        acc.path = request.path.clone();
        if let (Some(cfg), Some(offers)) = (&options.deflate, &request.extensions) {
            match server_negotiate(cfg, offers) {
                Ok(agreed) => acc.deflate = agreed,
                Err(_) => {
                    self.answer(id, &Rejection::bad_extensions());
                    return true;
                }
            }
        }
        if options.handle_requests {
            if body < end {
                c.stash.extend_from_slice(&ev.arena[body..end]);
            }
            self.await_decision(id, ev);
            ev.requests.push(request);
            let index = ev.requests.len() - 1;
            ev.list.push(Raw::Request {
                conn: ConnId(id),
                listener,
                index,
                subprotocol,
            });
            return false;
        }
        let subprotocol = subprotocol.map(|i| request.subprotocols[i].as_str());
        match self.open_server(id, subprotocol, &[]) {
            Ok(info) => {
                push_open(ev, ConnId(id), info);
                ev.used = end;
                body >= end || self.feed_ws(id, body, end, ev)
            }
            Err(_) => {
                self.finish(id, ev, None);
                false
            }
        }
    }

    /// Answers a request that is not upgraded with `rejection`, then closes the connection
    /// once the answer is out (whatever the peer sends meanwhile is read and dropped).
    pub(crate) fn answer(&mut self, id: u64, rejection: &Rejection) {
        if let Some(c) = self.conns.get_mut(id) {
            rejection.write_response(c.pre.vec());
            c.stage = Stage::Answering;
            self.mark_dirty(id);
        }
    }

    pub(crate) fn await_decision(&mut self, id: u64, _ev: &mut Events) {
        if let Some(c) = self.conns.get_mut(id) {
            let stage = std::mem::replace(&mut c.stage, Stage::Answering);
            c.stage = match stage {
                Stage::ServerHandshake(acc) => Stage::AwaitingDecision(acc),
                other => other,
            };
            c.set(flag::VISIBLE);
        }
    }

    /// Writes the 101 answer and opens the connection (server side).
    pub(crate) fn open_server(
        &mut self,
        id: u64,
        subprotocol: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<OpenInfo> {
        let proto_config = self.proto_config.clone();
        let c = self.conns.get_mut(id).ok_or(Error::StaleId)?;
        let (Stage::ServerHandshake(acc) | Stage::AwaitingDecision(acc)) = &c.stage else {
            return Err(Error::InvalidArgument("no upgrade request".into()));
        };
        let answer = acc.deflate.as_ref().map(|(_, answer)| answer.as_str());
        accept_response(&acc.key, subprotocol, answer, headers, c.pre.vec())?;
        let stage = std::mem::replace(&mut c.stage, Stage::Open);
        let (Stage::ServerHandshake(acc) | Stage::AwaitingDecision(acc)) = stage else {
            c.stage = stage;
            return Err(Error::InvalidArgument("no upgrade request".into()));
        };
        let mut ws = Connection::new(Role::Server, proto_config);
        let acc = *acc;
        let mut extensions = None;
        if let (Some((params, answer)), Some(cfg)) = (acc.deflate, &acc.options.deflate) {
            ws.set_deflate(params, cfg);
            extensions = Some(answer);
        }
        c.ws = Some(ws);
        c.deadline = None;
        c.set(flag::VISIBLE);
        c.slow_limit = acc.options.slow_subscriber.limit;
        if acc.options.slow_subscriber.action == SlowAction::Close {
            c.set(flag::CLOSE_WHEN_SLOW);
        }
        if let Some((lid, key)) = c.counted {
            if let Some(l) = self.listeners.get_mut(lid) {
                l.addrs.opened(key);
            }
        }
        let info = OpenInfo {
            listener: Some(acc.listener),
            subprotocol: subprotocol.map(str::to_owned),
            extensions,
            peer_addr: acc.peer,
            path: acc.path,
            headers: Vec::new(),
        };
        self.arm_keepalive(id);
        self.mark_dirty(id);
        Ok(info)
    }
}
