"""The asyncio ``Connection``, common to clients and servers."""

from __future__ import annotations

import asyncio
import os
from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Dict,
    Iterable,
    NoReturn,
    Optional,
    Tuple,
    Union,
)

from .._tidewire import (
    CloseEvent,
    CloseHeldEvent,
    ErrorEvent,
    OpenEvent,
    PongEvent,
    WritableEvent,
)
from ..datastructures import Request, Response
from .._closing import ClosingState
from .._queue import MessageQueue, QueueLimits
from ..exceptions import (
    ConcurrencyError,
    ConnectionClosedOK,
    InvalidState,
)
from ..sync.connection import State
from ._driver import Driver

__all__ = ["Connection", "Data"]

Data = Union[str, bytes]

# Result of the recv waiter when the connection closed instead of delivering a message: a
# sentinel rather than an exception, so that no future ever holds an unretrieved exception.
_CLOSED: Any = object()


class Connection(ClosingState):
    """A WebSocket connection on an asyncio loop: ``await send``, ``await recv``,
    ``async for``, ``ping``, ``close``."""

    def __init__(self, driver: Driver, conn_id: int, *, close_timeout: Optional[float],
                 queue_limits: QueueLimits) -> None:
        self._driver = driver
        self._ctx = driver.ctx
        self._loop = driver.loop
        self.id = conn_id
        self._messages = MessageQueue(self._ctx, conn_id, queue_limits, self._wake_engine)
        self._recv_waiter: Optional[asyncio.Future[Any]] = None
        self._drain_waiter: Optional[asyncio.Future[None]] = None
        self._state_waiter: asyncio.Future[None] = self._loop.create_future()
        self._closed_waiter: asyncio.Future[None] = self._loop.create_future()
        self._state = State.CONNECTING
        self._opened = False
        self._init_closing()
        # A client's 101 response headers, from the open event.
        self._open_headers: list[tuple[str, str]] = []
        self._pings: Dict[bytes, asyncio.Future[None]] = {}
        self._close_timeout = close_timeout
        self.subprotocol: Optional[str] = None
        self.extensions: Optional[str] = None
        self.remote_address: Optional[Tuple[str, int]] = None
        self.request: Optional[Request] = None
        self.response: Optional[Response] = None
        self.close_code: Optional[int] = None
        self.close_reason: Optional[str] = None

    # -- events (called by the driver) ---------------------------------------------------

    def _on_message(self, data: Data) -> None:
        self._unanswered = True
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            self._recv_waiter = None
            waiter.set_result(data)
        else:
            self._messages.append(data)

    def _on_event(self, event: Any) -> None:
        kind = type(event)
        if kind is CloseHeldEvent:
            self._close_held()
        elif kind is WritableEvent:
            self._release_drain()
        elif kind is PongEvent:
            self._on_pong(event.data)
        elif kind is OpenEvent:
            self._opened = True
            if self._state is State.CONNECTING:
                self._state = State.OPEN
            self.subprotocol = event.subprotocol
            self.extensions = event.extensions
            self.remote_address = tuple(event.peer_addr)  # type: ignore[assignment]
            self._open_headers = event.headers
            self._on_open()
            if not self._state_waiter.done():
                self._state_waiter.set_result(None)
        elif kind is CloseEvent:
            self.close_code = event.code
            self.close_reason = event.reason
            self._clean = event.clean
            self._remote_close = event.remote
            self._set_closed()
        elif kind is ErrorEvent:
            self._error = event.error
            self.close_code = 1006
            self.close_reason = ""
            self._set_closed()

    def _on_abort(self, reason: str) -> None:
        if self._state is not State.CLOSED:
            self.close_code = 1006
            self.close_reason = reason
            self._set_closed()

    def _on_open(self) -> None:
        """Hook for the client, which builds its ``response`` here."""

    def _set_closed(self) -> None:
        self._state = State.CLOSED
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            self._recv_waiter = None
            waiter.set_result(_CLOSED)
        self._release_drain()
        for pong in self._pings.values():
            if not pong.done():
                pong.cancel()
        self._pings.clear()
        for fut in (self._state_waiter, self._closed_waiter):
            if not fut.done():
                fut.set_result(None)
        self._after_close()

    def _after_close(self) -> None:
        """Hook: the client closes its driver here."""

    def _release_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _on_pong(self, data: bytes) -> None:
        if data not in self._pings:
            return
        for key in list(self._pings):
            fut = self._pings.pop(key)
            if not fut.done():
                fut.set_result(None)
            if key == data:
                break

    # -- helpers -------------------------------------------------------------------------

    def _wake_engine(self) -> None:
        self._driver.request_run()

    async def _raise_closed(self) -> NoReturn:
        await self.wait_closed()
        raise self._closed_exception()

    async def _drain(self) -> None:
        while self._drain_waiter is not None:
            await asyncio.shield(self._drain_waiter)

    # -- public API ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

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
            await self._drain()
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            try:
                over = self._ctx.send(self.id, message)
            except InvalidState:
                await self._raise_closed()
            self._driver.after_send(self.id)
            if over:
                if self._drain_waiter is None:
                    self._drain_waiter = self._loop.create_future()
                await self._drain()
            return
        if isinstance(message, dict):
            raise TypeError("data must be str, bytes-like or an iterable of them")
        if hasattr(message, "__aiter__"):
            await self._send_fragments(message.__aiter__())  # type: ignore[union-attr]
        else:
            await self._send_fragments(_aiter(message))  # type: ignore[arg-type]

    async def _send_fragments(self, fragments: AsyncIterator[Data]) -> None:
        started = False
        text = False
        async for fragment in fragments:
            if not started:
                if not isinstance(fragment, (str, bytes, bytearray, memoryview)):
                    raise TypeError("fragments must be str or bytes-like")
                text = isinstance(fragment, str)
                try:
                    self._ctx.begin_message(self.id, text)
                except InvalidState:
                    await self._raise_closed()
                started = True
            elif isinstance(fragment, str) != text:
                raise TypeError("all fragments of a message must be of the same type")
            await self._fragment(fragment.encode() if isinstance(fragment, str) else fragment, False)
        if started:
            await self._fragment(b"", True)

    async def _fragment(self, chunk: Any, fin: bool) -> None:
        try:
            over = self._ctx.send_fragment(self.id, chunk, fin)
        except InvalidState:
            await self._raise_closed()
        self._driver.request_run()
        if over:
            if self._drain_waiter is None:
                self._drain_waiter = self._loop.create_future()
            await self._drain()

    async def ping(self, data: Optional[Union[str, bytes]] = None) -> "asyncio.Future[None]":
        """Sends a ping; returns a future that completes when the matching pong arrives
        (``await (await ws.ping())`` waits for it)."""
        if data is None:
            payload = os.urandom(4)
        elif isinstance(data, str):
            payload = data.encode()
        else:
            payload = bytes(data)
        if payload in self._pings:
            raise ConcurrencyError("already waiting for a pong with the same data")
        try:
            self._ctx.ping(self.id, payload)
        except InvalidState:
            await self._raise_closed()
        pong = self._loop.create_future()
        self._pings[payload] = pong
        self._driver.request_run()
        return pong

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Performs the closing handshake and waits for it (the engine gives up after
        ``close_timeout``). Idempotent."""
        if self._state in (State.OPEN, State.CONNECTING):
            try:
                self._ctx.close(self.id, code, reason)
                self._state = State.CLOSING
            except InvalidState:
                pass
            self._messages.closing()
            self._driver.request_run()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Waits until the connection is closed."""
        await asyncio.shield(self._closed_waiter)

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id:#x} state={self._state.name}>"


async def _aiter(items: Iterable[Data]) -> AsyncIterator[Data]:
    for item in items:
        yield item
