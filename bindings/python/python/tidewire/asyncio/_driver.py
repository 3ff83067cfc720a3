"""Runs a ``Context`` on an asyncio event loop, without threads.

The loop watches the context's file descriptor (``loop.add_reader``) and calls ``poll(0)``
when it becomes readable; one timer (``loop.call_at``) follows ``next_timeout()`` for the
engine's own deadlines.

A send queues its bytes in the engine, and then: the first send since the last ``poll``
writes them at once (``flush``: a request/response exchange waits for no loop iteration);
any later send schedules one ``poll(0)`` with ``call_soon``, so that a burst of sends leaves
together, in as few writes as possible.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Optional

from .._tidewire import CloseEvent, Context, ErrorEvent, MessageEvent, RequestEvent

logger = logging.getLogger("tidewire")

__all__ = ["Driver"]


class Driver:
    def __init__(
        self,
        ctx: Context,
        loop: asyncio.AbstractEventLoop,
        *,
        on_request: Optional[Callable[[RequestEvent], None]] = None,
        exit_when_idle: bool = False,
    ) -> None:
        self.ctx = ctx
        self.loop = loop
        self.handlers: dict[int, Any] = {}
        self._on_request = on_request
        self._exit_when_idle = exit_when_idle
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_when = 0.0
        self._scheduled = False
        self._wrote_at_once = False
        self._closed = False
        self._fd = ctx.fileno()
        #: Called (once) when the driver has closed and freed its context.
        self.on_close: Optional[Callable[[], None]] = None
        loop.add_reader(self._fd, self._run)

    def request_run(self) -> None:
        """Schedules one ``poll(0)`` for this loop iteration (after an action)."""
        if not self._scheduled and not self._closed:
            self._scheduled = True
            self.loop.call_soon(self._run)

    def after_send(self, conn: int) -> None:
        """Gets what a send queued on its way (see the module's docstring)."""
        if self._scheduled or self._closed:
            return
        if not self._wrote_at_once:
            self._wrote_at_once = True
            if self.ctx.flush(conn):
                return
        self.request_run()

    def _run(self) -> None:
        self._scheduled = False
        self._wrote_at_once = False
        if self._closed:
            return
        try:
            events = self.ctx.poll(0)
        except Exception:  # the context failed (or was freed): nothing more can happen
            logger.exception("tidewire: poll failed")
            self.close()
            return
        handlers = self.handlers
        for event in events:
            kind = type(event)
            if kind is MessageEvent:
                handler = handlers.get(event.conn)
                if handler is not None:
                    handler._on_message(event.data)
            elif kind is CloseEvent or kind is ErrorEvent:
                handler = handlers.pop(event.conn, None) if event.conn is not None else None
                if handler is not None:
                    handler.on_event(event)
                elif kind is ErrorEvent:
                    logger.warning("tidewire: %s", event.error)
            elif kind is RequestEvent:
                if self._on_request is not None:
                    self._on_request(event)
            else:
                conn = getattr(event, "conn", None)
                handler = handlers.get(conn) if conn is not None else None
                if handler is not None:
                    handler.on_event(event)
        if self._exit_when_idle and not handlers:
            self.close()
            return
        self._arm()

    def _arm(self) -> None:
        timeout = self.ctx.next_timeout()
        if timeout is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        elif timeout <= 0.0:
            self.request_run()
        else:
            when = self.loop.time() + timeout
            # A timer that fires too early only costs an empty poll; keep it unless the new
            # deadline is earlier.
            if self._timer is None or when < self._timer_when:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = self.loop.call_at(when, self._on_timer)
                self._timer_when = when

    def _on_timer(self) -> None:
        self._timer = None
        self._run()

    def close(self) -> None:
        """Stops watching the context and frees it (every connection is dropped)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.loop.is_closed():
            self.loop.remove_reader(self._fd)
        for handler in list(self.handlers.values()):
            handler.on_abort("connection dropped: its context was closed")
        self.handlers.clear()
        self.ctx.free()
        if self.on_close is not None:
            self.on_close()

    @property
    def closed(self) -> bool:
        return self._closed
