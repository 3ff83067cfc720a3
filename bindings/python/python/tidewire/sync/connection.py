"""The blocking ``Connection``, common to clients and servers."""

from __future__ import annotations

import enum
import os
import threading
import time
from typing import Any, Dict, Iterable, Iterator, NoReturn, Optional, Tuple, Union

from .._tidewire import (
    CloseEvent,
    CloseHeldEvent,
    ErrorEvent,
    MessageEvent,
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
from ._engine import Engine

__all__ = ["Connection", "State", "Data"]

Data = Union[str, bytes]


class State(enum.IntEnum):
    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class Connection(ClosingState):
    """A WebSocket connection used from threads: ``send``, ``recv``, iteration, ``ping``,
    ``close``. Any thread may call any method; ``recv`` may only be waited on by one thread
    at a time."""

    def __init__(self, engine: Engine, conn_id: int, *, close_timeout: Optional[float],
                 queue_limits: QueueLimits) -> None:
        self._engine = engine
        self._ctx = engine.ctx
        self.id = conn_id
        self._cond = threading.Condition(engine.lock)
        self._messages = MessageQueue(self._ctx, conn_id, queue_limits, self._wake_engine)
        self._state = State.CONNECTING
        #: The opening handshake completed (the connection may have closed since).
        self._opened = False
        self._over_high = False
        self._receiving = False
        self._init_closing()
        # A client's 101 response headers, from the open event.
        self._open_headers: list[tuple[str, str]] = []
        self._pings: Dict[bytes, threading.Event] = {}
        self._close_timeout = close_timeout
        #: The negotiated subprotocol, or None.
        self.subprotocol: Optional[str] = None
        #: The negotiated extensions (the Sec-WebSocket-Extensions value), or None.
        self.extensions: Optional[str] = None
        #: ``(host, port)`` of the peer.
        self.remote_address: Optional[Tuple[str, int]] = None
        #: The opening handshake request.
        self.request: Optional[Request] = None
        #: The opening handshake response.
        self.response: Optional[Response] = None
        #: The close code, once the connection is closed.
        self.close_code: Optional[int] = None
        #: The close reason, once the connection is closed.
        self.close_reason: Optional[str] = None

    # -- events, dispatched with the engine lock held ----------------------------------

    def wake(self) -> None:
        """Wakes the threads waiting on this connection; the engine calls it once per batch
        of events, for the connections whose ``on_event`` asked for it."""
        self._cond.notify_all()

    def on_event(self, event: Any) -> bool:
        """Applies an event; returns whether waiting threads may have waited for it."""
        kind = type(event)
        if kind is MessageEvent:
            self._messages.append(event.data)
            self._unanswered = True
        elif kind is CloseHeldEvent:
            self._close_held()
            return False
        elif kind is WritableEvent:
            self._over_high = False
        elif kind is PongEvent:
            self._on_pong(event.data)
            return False
        elif kind is OpenEvent:
            self._opened = True
            if self._state is State.CONNECTING:
                self._state = State.OPEN
            self.subprotocol = event.subprotocol
            self.extensions = event.extensions
            self.remote_address = tuple(event.peer_addr)  # type: ignore[assignment]
            self._open_headers = event.headers
            self._on_open()
        elif kind is CloseEvent:
            self._state = State.CLOSED
            self.close_code = event.code
            self.close_reason = event.reason
            self._clean = event.clean
            self._remote_close = event.remote
        elif kind is ErrorEvent:
            self._state = State.CLOSED
            self._error = event.error
            self.close_code = 1006
            self.close_reason = ""
        else:
            return False
        return True

    def on_abort(self, reason: str) -> None:
        if self._state is not State.CLOSED:
            self._state = State.CLOSED
            self.close_code = 1006
            self.close_reason = reason
        self._cond.notify_all()

    def _on_open(self) -> None:
        """Hook for the client, which builds its ``response`` here."""

    def _on_pong(self, data: bytes) -> None:
        # A pong acknowledges its ping and every ping sent before it.
        if data not in self._pings:
            return
        for key in list(self._pings):
            self._pings.pop(key).set()
            if key == data:
                break

    # -- helpers (lock held) -------------------------------------------------------------

    def _wake_engine(self) -> None:
        self._engine.kick()

    def _wait_closed(self, timeout: Optional[float]) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._state is not State.CLOSED:
            if deadline is None:
                self._engine.wait(self._cond, None)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._engine.wait(self._cond, remaining)
        return True

    def _closing_timeout(self) -> Optional[float]:
        # The engine enforces close_timeout itself and then reports the connection closed;
        # the margin only guards against a stuck engine.
        return None if self._close_timeout is None else self._close_timeout + 5.0

    def _raise_closed(self) -> NoReturn:
        self._wait_closed(self._closing_timeout())
        raise self._closed_exception()

    def _wait_writable(self) -> None:
        while self._over_high and self._state is not State.CLOSED:
            self._engine.wait(self._cond, None)

    # -- public API ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        """CONNECTING, OPEN, CLOSING or CLOSED."""
        return self._state

    def recv(self, timeout: Optional[float] = None) -> Data:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Raises ``TimeoutError`` when none came within ``timeout`` seconds,
        ``ConnectionClosedOK`` / ``ConnectionClosedError`` once the connection is closed and
        every message received before was returned, ``ConcurrencyError`` when another thread
        is already waiting in ``recv``.
        """
        with self._cond:
            if self._messages:
                return self._messages.popleft()
            if self._receiving:
                raise ConcurrencyError("another thread is already waiting in recv")
            self._back_for_more()
            self._receiving = True
            try:
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._messages:
                    if self._state is State.CLOSED:
                        raise self._closed_exception()
                    if deadline is None:
                        self._engine.wait(self._cond, None)
                    else:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise TimeoutError("timed out waiting for a message")
                        self._engine.wait(self._cond, remaining)
                return self._messages.popleft()
            finally:
                self._receiving = False

    def __iter__(self) -> Iterator[Data]:
        """Messages until the connection closes normally (an abnormal end raises
        ``ConnectionClosedError``)."""
        try:
            while True:
                yield self.recv()
        except ConnectionClosedOK:
            return

    def send(self, message: Union[Data, bytearray, memoryview, Iterable[Data]]) -> None:
        """Sends a message: ``str`` as text, bytes-like as binary, an iterable of either as
        one fragmented message.

        Blocks while the output buffer is over its high water mark. Raises
        ``ConnectionClosed`` when the connection is closing or closed.
        """
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            with self._cond:
                self._wait_writable()
                try:
                    self._over_high = self._ctx.send(self.id, message)
                except InvalidState:
                    self._raise_closed()
                self._engine.flush(self.id)
                self._wait_writable()
            return
        if isinstance(message, dict):
            raise TypeError("data must be str, bytes-like or an iterable of them")
        self._send_fragments(iter(message))

    def _send_fragments(self, fragments: Iterator[Data]) -> None:
        with self._cond:
            self._wait_writable()
            started = False
            text = False
            for fragment in fragments:
                if not started:
                    if not isinstance(fragment, (str, bytes, bytearray, memoryview)):
                        raise TypeError("fragments must be str or bytes-like")
                    text = isinstance(fragment, str)
                    try:
                        self._ctx.begin_message(self.id, text)
                    except InvalidState:
                        self._raise_closed()
                    started = True
                elif isinstance(fragment, str) != text:
                    raise TypeError("all fragments of a message must be of the same type")
                chunk = fragment.encode() if isinstance(fragment, str) else fragment
                try:
                    self._over_high = self._ctx.send_fragment(self.id, chunk, False)
                except InvalidState:
                    self._raise_closed()
                self._engine.kick()
                self._wait_writable()
            if started:
                try:
                    self._over_high = self._ctx.send_fragment(self.id, b"", True)
                except InvalidState:
                    self._raise_closed()
                self._engine.kick()
                self._wait_writable()

    def ping(self, data: Optional[Union[str, bytes]] = None) -> threading.Event:
        """Sends a ping; the returned event is set when the matching pong arrives."""
        payload = os.urandom(4) if data is None else (data.encode() if isinstance(data, str) else bytes(data))
        with self._cond:
            if payload in self._pings:
                raise ConcurrencyError("already waiting for a pong with the same data")
            try:
                self._ctx.ping(self.id, payload)
            except InvalidState:
                self._raise_closed()
            waiter = threading.Event()
            self._pings[payload] = waiter
            self._engine.kick()
            return waiter

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Performs the closing handshake and waits for it (at most ``close_timeout``).
        Idempotent."""
        with self._cond:
            if self._state in (State.OPEN, State.CONNECTING):
                try:
                    self._ctx.close(self.id, code, reason)
                    self._state = State.CLOSING
                except InvalidState:
                    pass
                self._messages.closing()
                self._engine.kick()
            self._wait_closed(self._closing_timeout())
        self._after_close()

    def _after_close(self) -> None:
        """Hook: the client stops its engine here."""

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id:#x} state={self._state.name}>"
