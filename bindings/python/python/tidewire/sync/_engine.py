"""The engine under the blocking API: one ``Context``, one background thread, one lock.

Every use of the context happens under ``Engine.lock``, so it runs on one thread at a time.
The background thread waits on the context's file descriptor *without* the lock, then takes
it to ``poll(0)`` and dispatch the events. Threads that wait for something from the network
(``recv``, back-pressure, close) wait on conditions bound to the same lock (``Engine.wait``),
notified by whichever thread dispatched the event.

A client's engine serves one connection, and its user thread does better to read for
itself: in ``Engine.wait`` it watches the descriptor itself when nobody else does, so that a
``recv`` loop reads its own messages with no hand-off between threads (two thread wake-ups
and a contended lock per message otherwise). The background thread then stands by until no
user thread has waited for ``LINGER``, and serves the connection (keepalive, pongs, the
peer's close) between ``recv`` calls. A thread that waits while another watches is woken by
that thread's dispatch, or looks again after ``LINGER``. A server's engine, shared by every
handler thread, leaves the watching to the background thread.

A thread that sends takes the lock, queues the message and flushes it itself (``flush``, or
a ``poll(0)`` when that leaves work behind): the bytes leave from the caller's thread at
once, and the send learns directly whether the output buffer is over its high water mark.
When a caller's action arms a timer earlier than the background thread's wait (a close
timeout, say), it wakes the thread.
"""

from __future__ import annotations

import logging
import math
import select
import threading
import time
from collections import deque
from typing import Callable, Optional, Protocol

from .._tidewire import CloseEvent, Context, ErrorEvent, RequestEvent

logger = logging.getLogger("tidewire")

#: How long a client's background thread leaves the descriptor to a user thread that waited
#: on it, and how often a thread that waits behind another looks again.
LINGER = 0.02

#: How many threads of ended connections the engine wakes between two polls (see
#: ``Engine._wake_ended``).
ENDED_BATCH = 64

__all__ = ["Engine"]


class Handler(Protocol):
    def on_event(self, event: object) -> bool: ...

    def wake(self) -> None: ...

    def on_abort(self, reason: str) -> None: ...


class Engine:
    def __init__(
        self,
        ctx: Context,
        *,
        name: str,
        on_request: Optional[Callable[[RequestEvent], None]] = None,
        exit_when_idle: bool = False,
        user_watches: bool = False,
    ) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()
        #: Notified (under ``lock``) whenever a connection ends.
        self.changed = threading.Condition(self.lock)
        self.handlers: dict[int, Handler] = {}
        self._sender = ctx.sender()
        self._on_request = on_request
        self._exit_when_idle = exit_when_idle
        self._stopping = False
        #: The context was freed (the background thread ended): nothing to dispatch.
        self._freed = False
        self._wait_until = math.inf
        # One poll object each for the background thread and the user thread watching (a
        # poll object must not be waited on by two threads at once).
        self._poller = select.poll()
        self._poller.register(ctx.fileno(), select.POLLIN)
        self._user_poller = select.poll()
        self._user_poller.register(ctx.fileno(), select.POLLIN)
        #: Threads that wait in ``wait`` may watch the descriptor themselves (clients).
        self._user_watches = user_watches
        #: A user thread is waiting on the descriptor (without the lock).
        self._watched = False
        #: The background thread is waiting on the descriptor (without the lock).
        self._bg_watching = False
        #: Notified when the background thread stops waiting on the descriptor.
        self._handover = threading.Condition(self.lock)
        #: The background thread leaves the descriptor alone until then.
        self._quiet_until = 0.0
        #: The background thread stands by on this (notified to make it look again).
        self._bg_wake = threading.Condition(self.lock)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        #: Set when the background thread has stopped and freed the context.
        self.stopped = threading.Event()
        #: Events are being dispatched (see ``_dispatch``).
        self._dispatching = False
        #: Handlers of ended connections whose threads are still to be woken.
        self._ended: deque[Handler] = deque()

    def start(self) -> None:
        self._thread.start()

    # -- called with the lock held ------------------------------------------------------

    def flush(self, conn: int) -> None:
        """After a send: writes it at once, from the caller's thread, or leaves what could
        not be written (and whatever it led to) to a full ``kick``."""
        if not self.ctx.flush(conn):
            self.kick()

    def kick(self) -> None:
        """Flushes what was queued and dispatches what came in; call after every action."""
        if self._freed:
            return
        self._dispatch()
        timeout = 0.0 if self._ended else self.ctx.next_timeout()
        if timeout is not None and time.monotonic() + timeout < self._wait_until:
            self._wake_background()

    def _wake_background(self) -> None:
        self._bg_wake.notify()
        self._sender.wake()

    def wait(self, cond: threading.Condition, timeout: Optional[float]) -> None:
        """Waits (lock held, on ``cond``, bound to ``lock``) until an event may have come for
        the caller, or ``timeout`` seconds; callers check their condition again after it.
        See the module's docstring for who watches the descriptor."""
        if not self._user_watches or self._stopping:
            cond.wait(timeout)
            return
        now = time.monotonic()
        self._quiet_until = now + LINGER
        short = LINGER if timeout is None else min(timeout, LINGER)
        if self._watched:
            # Another user thread watches; its dispatch notifies ``cond``.
            cond.wait(short)
            return
        if self._bg_watching:
            # Ask the background thread to step aside (it then stands by); the caller's
            # next wait watches.
            self._sender.wake()
            self._handover.wait(short)
            return
        deadline = self.ctx.next_timeout()
        if timeout is None or (deadline is not None and deadline < timeout):
            timeout = deadline
        self._watched = True
        self.lock.release()
        try:
            # Milliseconds rounded up, so that the wait never ends before the deadline.
            self._user_poller.poll(None if timeout is None else math.ceil(timeout * 1000))
        finally:
            self.lock.acquire()
            self._watched = False
            self._quiet_until = time.monotonic() + LINGER
        self._dispatch()

    def _dispatch(self) -> None:
        # A handler that acts on an event (releases a held close, accepts a request) kicks
        # the engine, which lands here again: that nested call does nothing, since what the
        # action queued makes ``next_timeout()`` zero, and the engine polls again at once
        # for that (the background thread looks at it after every dispatch, and ``kick``
        # wakes it). Recursing instead would nest one dispatch per event of a batch
        # (thousands when many peers close at once) and overflow the stack.
        if self._freed or self._dispatching:
            return
        self._dispatching = True
        try:
            events = self.ctx.poll(0)
            if events and self._watched:
                # The thread waiting on the descriptor may have been waiting for one of
                # these, and this poll took the readiness that would have woken it.
                self._sender.wake()
            # Waiting threads are woken once the whole batch is dispatched, once each: a
            # woken thread wants the GIL at once, and thousands of them woken one event at a
            # time (peers closing together) would take it from this loop after every event.
            woken: dict[int, Handler] = {}
            for event in events:
                conn: Optional[int] = getattr(event, "conn", None)
                handler = self.handlers.get(conn) if conn is not None else None
                if handler is not None and conn is not None:
                    if type(event) is CloseEvent or type(event) is ErrorEvent:
                        del self.handlers[conn]
                        handler.on_event(event)
                        self._ended.append(handler)
                    elif handler.on_event(event):
                        woken[conn] = handler
                elif type(event) is RequestEvent and self._on_request is not None:
                    self._on_request(event)
                elif type(event) is ErrorEvent:
                    logger.warning("tidewire: %s", event.error)
            for handler in woken.values():
                handler.wake()
        finally:
            self._dispatching = False
        self._wake_ended(ENDED_BATCH)

    def _wake_ended(self, limit: float = math.inf) -> None:
        """Wakes the threads of connections that ended, at most ``limit`` of them (the rest
        at the next dispatch: the background thread comes back at once while any are left).
        Each woken thread wants the GIL, at once, to finish; thousands of peers leaving
        together would otherwise hold the engine, and the lock, for seconds, and with them
        the polls that close the other sockets."""
        if not self._ended:
            return
        ended = self._ended
        count = 0
        while ended and count < limit:
            ended.popleft().wake()
            count += 1
        self.changed.notify_all()

    # -- the background thread ----------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self.lock:
                    if self._stopping:
                        break
                    self._dispatch()
                    if self._exit_when_idle and not self.handlers:
                        break
                    timeout = self.ctx.next_timeout()
                    if timeout == 0.0 or self._ended:
                        continue
                    if self._stand_by(timeout):
                        continue
                    self._wait_until = math.inf if timeout is None else time.monotonic() + timeout
                    self._bg_watching = True
                try:
                    # Milliseconds rounded up, so that the wait never ends before the deadline.
                    self._poller.poll(None if timeout is None else math.ceil(timeout * 1000))
                finally:
                    with self.lock:
                        self._bg_watching = False
                        self._handover.notify_all()
        except BaseException:  # noqa: BLE001 - a dying engine must not hang its users
            logger.exception("tidewire: engine thread failed")
        finally:
            with self.lock:
                self._stopping = True
                self._wake_ended()
                for handler in list(self.handlers.values()):
                    handler.on_abort("connection dropped: the engine stopped")
                self.handlers.clear()
                self.changed.notify_all()
                self.ctx.free()
                self._freed = True
            self.stopped.set()

    def _stand_by(self, timeout: Optional[float]) -> bool:
        """While a user thread watches the descriptor, or waited on the engine a moment ago,
        waits (lock held) for that to change or for the next timer. Returns whether it
        waited (the caller then starts over)."""
        now = time.monotonic()
        if not (self._watched or now < self._quiet_until):
            return False
        # A watching user thread does not say when it stops: look again every LINGER.
        wait = LINGER if self._watched else self._quiet_until - now
        if timeout is not None and timeout < wait:
            wait = timeout
        self._wait_until = now + wait
        self._bg_wake.wait(wait)
        return True

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stops the background thread (which frees the context) and waits for it."""
        with self.lock:
            if not self._stopping:
                self._stopping = True
                self._bg_wake.notify()
                try:
                    self._sender.wake()
                except Exception:  # the context is already gone
                    pass
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        elif not self._thread.is_alive() and not self.stopped.is_set():
            # Never started: free the context here.
            with self.lock:
                self.ctx.free()
                self._freed = True
            self.stopped.set()

    @property
    def running(self) -> bool:
        return not self._stopping
