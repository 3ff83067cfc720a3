"""The blocking ``Connection``, common to clients and servers: the shared connection model
(``tidewire._protocol``) with threads that wait on a condition of the engine's lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import NoReturn, Optional, Union

from .._protocol import ConnectionModel, Data, State, is_whole_message
from .._queue import QueueLimits
from ..exceptions import ConcurrencyError, ConnectionClosedOK, InvalidState
from ._engine import Engine

__all__ = ["Connection", "State", "Data"]


class Connection(ConnectionModel[threading.Event]):
    """A WebSocket connection used from threads: ``send``, ``recv``, iteration, ``ping``,
    ``close``. Any thread may call any method; ``recv`` may only be waited on by one thread
    at a time."""

    def __init__(
        self,
        engine: Engine,
        conn_id: int,
        *,
        close_timeout: Optional[float],
        queue_limits: QueueLimits,
    ) -> None:
        self._engine = engine
        self._cond = threading.Condition(engine.lock)
        self._over_high = False
        self._receiving = False
        super().__init__(engine, conn_id, close_timeout=close_timeout, queue_limits=queue_limits)

    # -- waking (engine lock held) -------------------------------------------------------

    def wake(self) -> None:
        """Wakes the threads waiting on this connection; the engine calls it once per batch
        of events, for the connections whose ``on_event`` asked for it (and in batches for
        the connections that ended)."""
        self._cond.notify_all()

    def on_abort(self, reason: str) -> None:
        super().on_abort(reason)
        self._cond.notify_all()

    def _wake_engine(self) -> None:
        self._engine.kick()

    def _serialized(self) -> threading.Condition:
        return self._cond

    def _writable(self) -> None:
        self._over_high = False

    def _pong_arrived(self, waiter: threading.Event, latency: float) -> None:
        waiter.set()

    # -- waiting (engine lock held) ------------------------------------------------------

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
        if not is_whole_message(message):
            self._send_fragments(iter(message))  # type: ignore[arg-type]
            return
        with self._cond:
            self._wait_writable()
            try:
                self._over_high = self._ctx.send(self.id, message)  # type: ignore[arg-type]
            except InvalidState:
                self._raise_closed()
            self._engine.flush(self.id)
            self._wait_writable()

    def _send_fragments(self, fragments: Iterator[Data]) -> None:
        with self._cond:
            self._wait_writable()
            text: Optional[bool] = None
            for fragment in fragments:
                try:
                    text, self._over_high = self._queue_fragment(fragment, text)
                except InvalidState:
                    self._raise_closed()
                self._engine.kick()
                self._wait_writable()
            if text is not None:
                try:
                    self._over_high = self._end_fragments()
                except InvalidState:
                    self._raise_closed()
                self._engine.kick()
                self._wait_writable()

    def ping(self, data: Optional[Union[str, bytes]] = None) -> threading.Event:
        """Sends a ping; the returned event is set when the matching pong arrives."""
        with self._cond:
            try:
                return self._queue_ping(data, threading.Event)
            except InvalidState:
                self._raise_closed()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Performs the closing handshake and waits for it (at most ``close_timeout``).
        Idempotent."""
        with self._cond:
            self._start_close(code, reason)
            self._wait_closed(self._closing_timeout())
        self._after_close()

    def _after_close(self) -> None:
        """Hook: the client stops its engine here."""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
