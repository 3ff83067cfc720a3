//! The cross-thread side of a context: the [`Sender`] handle and the inbox it shares with the
//! name resolver threads.
//!
//! Other threads never touch a connection. They append a command to the inbox and wake the
//! Poll through its `mio::Waker`; the context applies the commands in order on its own thread
//! during the next `poll`. The waker is rung only when the inbox goes from empty to non-empty,
//! so a burst of sends costs one syscall, and the lock is held for a push or a swap only.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::slab::ConnId;
use tidewire_proto::{MessageKind, SendError};

pub(crate) enum Command {
    Text(ConnId, String),
    Binary(ConnId, Vec<u8>),
    Ping(ConnId, Vec<u8>),
    Close(ConnId, u16, String),
    Publish(Box<[u8]>, MessageKind, Vec<u8>),
    /// A publish shared by several contexts (`Workers`): one copy of the payload for all.
    PublishShared(Arc<[u8]>, MessageKind, Arc<[u8]>),
    Wake,
}

impl Command {
    fn cost(&self) -> usize {
        match self {
            Command::Text(_, s) | Command::Close(_, _, s) => s.len(),
            Command::Binary(_, v) | Command::Ping(_, v) => v.len(),
            Command::Publish(topic, _, v) => topic.len() + v.len(),
            Command::PublishShared(topic, _, v) => topic.len() + v.len(),
            Command::Wake => 0,
        }
    }
}

/// The result of one name resolution, for the connection that asked.
pub(crate) struct Resolved {
    pub(crate) conn: u64,
    pub(crate) result: io::Result<Vec<SocketAddr>>,
}

#[derive(Default)]
pub(crate) struct Inbox {
    pub(crate) commands: VecDeque<Command>,
    pub(crate) resolved: Vec<Resolved>,
    queued_bytes: usize,
}

impl Inbox {
    fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.resolved.is_empty()
    }
}

pub(crate) struct Shared {
    inbox: Mutex<Inbox>,
    waker: mio::Waker,
    closed: AtomicBool,
    queue_limit: usize,
}

impl Shared {
    pub(crate) fn new(waker: mio::Waker, queue_limit: usize) -> Shared {
        Shared {
            inbox: Mutex::new(Inbox::default()),
            waker,
            closed: AtomicBool::new(false),
            queue_limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inbox> {
        // A thread that panicked while holding the lock left the inbox in a usable state
        // (every update is a single push), so poisoning is ignored.
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves everything queued into `into` (whose previous content must have been consumed).
    pub(crate) fn take(&self, into: &mut Inbox) {
        let mut inbox = self.lock();
        std::mem::swap(&mut *inbox, into);
        inbox.queued_bytes = 0;
    }

    pub(crate) fn push_resolved(&self, r: Resolved) {
        let was_empty = {
            let mut inbox = self.lock();
            let was_empty = inbox.is_empty();
            inbox.resolved.push(r);
            was_empty
        };
        if was_empty {
            // If waking fails the poll thread is gone or broken; nothing to do about it here.
            let _ = self.waker.wake();
        }
    }

    fn push_command(&self, cmd: Command) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::ContextGone);
        }
        let was_empty = {
            let mut inbox = self.lock();
            let cost = cmd.cost();
            if inbox.queued_bytes > 0 && inbox.queued_bytes + cost > self.queue_limit {
                return Err(Error::BufferFull {
                    buffered: inbox.queued_bytes,
                    limit: self.queue_limit,
                });
            }
            inbox.queued_bytes += cost;
            let was_empty = inbox.is_empty();
            inbox.commands.push_back(cmd);
            was_empty
        };
        if was_empty {
            self.waker.wake()?;
        }
        Ok(())
    }

    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// A handle that any thread may use to send to and close the connections of one
/// [`crate::Context`]. `Send + Sync + Clone`; cheap to clone.
///
/// Commands are applied in order, on the context's thread, during its next `poll`. A command
/// for a connection that is gone or cannot take it (closed, buffer over
/// [`crate::Config::max_buffered`]) is reported by a [`crate::Event::SendFailed`] event,
/// never silently dropped. The inbox holds at most [`crate::Config::sender_queue_limit`] bytes
/// of payload; beyond it a call returns [`Error::BufferFull`].
#[derive(Clone)]
pub struct Sender {
    pub(crate) shared: Arc<Shared>,
}

impl Sender {
    pub fn send_text(&self, conn: ConnId, text: impl Into<String>) -> Result<()> {
        self.shared.push_command(Command::Text(conn, text.into()))
    }

    pub fn send_binary(&self, conn: ConnId, data: impl Into<Vec<u8>>) -> Result<()> {
        self.shared.push_command(Command::Binary(conn, data.into()))
    }

    /// A ping of at most 125 bytes (longer ones fail when applied).
    pub fn ping(&self, conn: ConnId, data: impl Into<Vec<u8>>) -> Result<()> {
        self.shared.push_command(Command::Ping(conn, data.into()))
    }

    pub fn close(&self, conn: ConnId, code: u16, reason: impl Into<String>) -> Result<()> {
        self.shared
            .push_command(Command::Close(conn, code, reason.into()))
    }

    /// Publishes a message to `topic` (see [`crate::Context::publish`]) from any thread.
    /// Text is checked here ([`Error::Send`] when it is not UTF-8); the publish happens in
    /// the context's next `poll`, and its [`crate::PublishReport`] is not reported back.
    pub fn publish(
        &self,
        topic: impl Into<Vec<u8>>,
        kind: MessageKind,
        data: impl Into<Vec<u8>>,
    ) -> Result<()> {
        let data = data.into();
        if kind == MessageKind::Text && std::str::from_utf8(&data).is_err() {
            return Err(Error::Send(SendError::InvalidUtf8));
        }
        let topic = topic.into().into_boxed_slice();
        self.shared
            .push_command(Command::Publish(topic, kind, data))
    }

    /// [`Sender::publish`] of a payload that other contexts publish too (checked already).
    pub(crate) fn publish_shared(
        &self,
        topic: Arc<[u8]>,
        kind: MessageKind,
        data: Arc<[u8]>,
    ) -> Result<()> {
        self.shared
            .push_command(Command::PublishShared(topic, kind, data))
    }

    /// Wakes the context: its next `poll` returns soon with an [`crate::Event::Wake`].
    /// Meant for "look at your own queues" signals (and safe to call from a signal-handling
    /// thread).
    pub fn wake(&self) -> Result<()> {
        self.shared.push_command(Command::Wake)
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sender")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn sender_is_send_sync_clone_and_context_can_move_between_threads() {
        assert_send_sync_clone::<Sender>();
        assert_send::<crate::Context>();
        assert_send::<crate::Events>();
    }
}
