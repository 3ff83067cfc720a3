"""The engine under the blocking API: one ``Context``, one background thread, one lock.

Every use of the context happens under ``Engine.lock``, so it runs on one thread at a time.
The background thread waits on the context's file descriptor *without* the lock, then takes
it to ``poll(0)`` and dispatch the events. A thread that sends takes the lock, queues the
message and calls ``poll(0)`` itself: the bytes leave from the caller's thread at once, with
no hand-off, and the send learns directly whether the output buffer is over its high water
mark. Threads that wait (``recv``, back-pressure, close) wait on conditions bound to the same
lock, notified by whichever thread dispatched the event.

When a caller's action arms a timer earlier than the background thread's wait (a close
timeout, say), it wakes the thread through the context's ``Sender``.
"""

from __future__ import annotations

import logging
import math
import select
import threading
import time
from typing import Callable, Dict, Optional, Protocol

from .._tidewire import Closed, Context, Error, Request

logger = logging.getLogger("tidewire")

__all__ = ["Engine"]


class Handler(Protocol):
    def on_event(self, event: object) -> None: ...

    def on_abort(self, reason: str) -> None: ...


class Engine:
    def __init__(
        self,
        ctx: Context,
        *,
        name: str,
        on_request: Optional[Callable[[Request], None]] = None,
        exit_when_idle: bool = False,
    ) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()
        #: Notified (under ``lock``) whenever a connection ends.
        self.changed = threading.Condition(self.lock)
        self.handlers: Dict[int, Handler] = {}
        self._sender = ctx.sender()
        self._on_request = on_request
        self._exit_when_idle = exit_when_idle
        self._stopping = False
        self._wait_until = math.inf
        self._poller = select.poll()
        self._poller.register(ctx.fileno(), select.POLLIN)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        #: Set when the background thread has stopped and freed the context.
        self.stopped = threading.Event()

    def start(self) -> None:
        self._thread.start()

    # -- called with the lock held ------------------------------------------------------

    def kick(self) -> None:
        """Flushes what was queued and dispatches what came in; call after every action."""
        self._dispatch()
        timeout = self.ctx.next_timeout()
        if timeout is not None and time.monotonic() + timeout < self._wait_until:
            self._sender.wake()

    def _dispatch(self) -> None:
        for event in self.ctx.poll(0):
            conn: Optional[int] = getattr(event, "conn", None)
            handler = self.handlers.get(conn) if conn is not None else None
            if handler is not None and conn is not None:
                if type(event) is Closed or type(event) is Error:
                    del self.handlers[conn]
                    handler.on_event(event)
                    self.changed.notify_all()
                else:
                    handler.on_event(event)
            elif type(event) is Request and self._on_request is not None:
                self._on_request(event)
            elif type(event) is Error:
                logger.warning("tidewire: %s", event.error)

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
                    if timeout == 0.0:
                        continue
                    self._wait_until = (
                        math.inf if timeout is None else time.monotonic() + timeout
                    )
                # Milliseconds rounded up, so that the wait never ends before the deadline.
                self._poller.poll(None if timeout is None else math.ceil(timeout * 1000))
        except BaseException:  # noqa: BLE001 - a dying engine must not hang its users
            logger.exception("tidewire: engine thread failed")
        finally:
            with self.lock:
                self._stopping = True
                for handler in list(self.handlers.values()):
                    handler.on_abort("connection dropped: the engine stopped")
                self.handlers.clear()
                self.changed.notify_all()
                self.ctx.free()
            self.stopped.set()

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stops the background thread (which frees the context) and waits for it."""
        with self.lock:
            if not self._stopping:
                self._stopping = True
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
            self.stopped.set()

    @property
    def running(self) -> bool:
        return not self._stopping
