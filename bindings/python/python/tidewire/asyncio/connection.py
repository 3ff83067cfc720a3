"""The asyncio ``Connection``, common to clients and servers: the shared connection model
(``tidewire._protocol``) with coroutines that wait on futures of the running loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, NoReturn, Optional, Union

from .._protocol import ConnectionModel, Data, State, is_whole_message
from .._queue import QueueLimits
from ..exceptions import ConcurrencyError, ConnectionClosedOK, InvalidState
from ._driver import Driver

__all__ = ["Connection", "Data"]

# Result of the recv waiter when the connection closed instead of delivering a message: a
# sentinel rather than an exception, so that no future ever holds an unretrieved exception.
_CLOSED: Any = object()


class Connection(ConnectionModel["asyncio.Future[float]"]):
    """A WebSocket connection on an asyncio loop: ``await send``, ``await recv``,
    ``async for``, ``ping``, ``close``."""

    def __init__(
        self,
        driver: Driver,
        conn_id: int,
        *,
        close_timeout: Optional[float],
        queue_limits: QueueLimits,
    ) -> None:
        self._driver = driver
        self._loop = loop = driver.loop
        self._recv_waiter: Optional[asyncio.Future[Any]] = None
        self._drain_waiter: Optional[asyncio.Future[None]] = None
        self._state_waiter: asyncio.Future[None] = loop.create_future()
        self._closed_waiter: asyncio.Future[None] = loop.create_future()
        super().__init__(driver, conn_id, close_timeout=close_timeout, queue_limits=queue_limits)

    # -- waking (from the driver's dispatch) ---------------------------------------------

    def _on_message(self, data: Data) -> None:
        self._unanswered = True
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            self._recv_waiter = None
            waiter.set_result(data)
        else:
            self._messages.append(data)

    def _wake_engine(self) -> None:
        self._driver.request_run()

    def _serialized(self) -> contextlib.AbstractContextManager[None]:
        # Everything runs on the loop's thread.
        return contextlib.nullcontext()

    def _writable(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _pong_arrived(self, waiter: asyncio.Future[float], latency: float) -> None:
        if not waiter.done():
            waiter.set_result(latency)

    def _wake_open(self) -> None:
        if not self._state_waiter.done():
            self._state_waiter.set_result(None)

    def _wake_closed(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            self._recv_waiter = None
            waiter.set_result(_CLOSED)
        self._writable()
        for pong in self._pings.values():
            if not pong.done():
                pong.cancel()
        self._pings.clear()
        self._ping_times.clear()
        for fut in (self._state_waiter, self._closed_waiter):
            if not fut.done():
                fut.set_result(None)

    # -- waiting -------------------------------------------------------------------------

    async def _raise_closed(self) -> NoReturn:
        await self.wait_closed()
        raise self._closed_exception()

    async def _drain(self, over: bool = True) -> None:
        """Waits while the output buffer is over its high water mark (``over``: it just
        went over)."""
        if over and self._drain_waiter is None:
            self._drain_waiter = self._loop.create_future()
        while self._drain_waiter is not None:
            await asyncio.shield(self._drain_waiter)

    # -- public API ----------------------------------------------------------------------

    async def recv(self) -> Data:
        """The next message: ``str`` for text, ``bytes`` for binary. Raises
        ``ConnectionClosedOK`` / ``ConnectionClosedError`` once the connection is closed and
        every earlier message was returned; ``ConcurrencyError`` when another coroutine is
        already waiting. Cancelling it loses no message."""
        if self._messages:
            return self._messages.popleft()
        if self._state is State.CLOSED:
            raise self._closed_exception()
        if self._recv_waiter is not None:
            raise ConcurrencyError("another coroutine is already waiting in recv")
        self._back_for_more()
        waiter = self._loop.create_future()
        self._recv_waiter = waiter
        try:
            data = await waiter
        except asyncio.CancelledError:
            if self._recv_waiter is waiter:
                self._recv_waiter = None
            elif waiter.done() and not waiter.cancelled():
                # The message arrived just as we were cancelled: keep it for the next recv.
                result = waiter.result()
                if result is not _CLOSED:
                    self._messages.appendleft(result)
            raise
        if data is _CLOSED:
            raise self._closed_exception()
        return data  # type: ignore[no-any-return]

    async def __aiter__(self) -> AsyncIterator[Data]:
        """Messages until the connection closes normally (an abnormal end raises
        ``ConnectionClosedError``)."""
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    async def send(
        self,
        message: Union[Data, bytearray, memoryview, Iterable[Data], AsyncIterable[Data]],
    ) -> None:
        """Sends a message: ``str`` as text, bytes-like as binary, an iterable or async
        iterable of either as one fragmented message.

        Waits while the output buffer is over its high water mark (back-pressure). Raises
        ``ConnectionClosed`` once the connection is closing or closed.
        """
        if self._drain_waiter is not None:
            await self._drain(over=False)
        if not is_whole_message(message):
            if hasattr(message, "__aiter__"):
                await self._send_fragments(message.__aiter__())  # type: ignore[union-attr]
            else:
                await self._send_fragments(_aiter(message))  # type: ignore[arg-type]
            return
        try:
            over = self._ctx.send(self.id, message)  # type: ignore[arg-type]
        except InvalidState:
            await self._raise_closed()
        self._driver.after_send(self.id)
        if over:
            await self._drain()

    async def _send_fragments(self, fragments: AsyncIterator[Data]) -> None:
        text: Optional[bool] = None
        async for fragment in fragments:
            try:
                text, over = self._queue_fragment(fragment, text)
            except InvalidState:
                await self._raise_closed()
            self._driver.request_run()
            if over:
                await self._drain()
        if text is not None:
            try:
                over = self._end_fragments()
            except InvalidState:
                await self._raise_closed()
            self._driver.request_run()
            if over:
                await self._drain()

    async def ping(self, data: Optional[Union[str, bytes]] = None) -> asyncio.Future[float]:
        """Sends a ping; returns a future that completes when the matching pong arrives,
        with the round-trip time in seconds (``latency = await (await ws.ping())``)."""
        try:
            return self._queue_ping(data, self._loop.create_future)
        except InvalidState:
            await self._raise_closed()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Performs the closing handshake and waits for it (the engine gives up after
        ``close_timeout``). Idempotent."""
        self._start_close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Waits until the connection is closed."""
        await asyncio.shield(self._closed_waiter)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _aiter(items: Iterable[Data]) -> AsyncIterator[Data]:
    for item in items:
        yield item
