"""The received messages a connection holds for ``recv``: the part of flow control that the
blocking and the asyncio connection classes share.

The queue is bounded twice, like the ``websockets`` package's ``max_queue`` and more: in
messages (``max_queue``) and in bytes (``max_queue_bytes``; characters for text messages).
When either count goes above its high water mark, the engine stops reading the connection
(``Context.pause_reading``): the kernel's buffers fill, TCP slows the peer down, and nothing
is dropped. Reading resumes once ``recv`` has brought both counts down to their low water
marks. A poll that was already reading may still deliver what it had read, so the queue can
pass a high water mark by one poll's worth of messages (at most the context's receive
buffer, or one message of up to ``max_size``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, Union

from ._tidewire import Context
from .exceptions import InvalidState

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_MAX_QUEUE_BYTES",
    "QueueLimit",
    "QueueLimits",
    "MessageQueue",
    "queue_limits",
]

#: Messages a connection queues before it stops reading: 16, as in ``websockets``.
DEFAULT_MAX_QUEUE = 16
#: Bytes a connection queues before it stops reading: 1 MiB (the default ``max_size``).
DEFAULT_MAX_QUEUE_BYTES = 2**20

#: A high water mark (the low one is a quarter of it), a ``(high, low)`` pair, or None for no
#: limit.
QueueLimit = Union[int, tuple[int, int], None]

Data = Union[str, bytes]


@dataclass(frozen=True)
class QueueLimits:
    """The water marks of a receive queue (``math.inf`` when unbounded)."""

    high: float
    low: float
    high_bytes: float
    low_bytes: float


def _marks(limit: QueueLimit, name: str) -> tuple[float, float]:
    if limit is None:
        return math.inf, math.inf
    if isinstance(limit, tuple):
        high, low = limit
    else:
        high, low = limit, limit // 4
    if not (isinstance(high, int) and isinstance(low, int)) or not 0 <= low <= high:
        raise ValueError(
            f"{name} must be None, an int >= 0 or a (high, low) pair of ints "
            f"with 0 <= low <= high, not {limit!r}"
        )
    return high, low


def queue_limits(max_queue: QueueLimit, max_queue_bytes: QueueLimit) -> QueueLimits:
    """Checks the ``max_queue`` / ``max_queue_bytes`` arguments of ``connect`` and ``serve``."""
    high, low = _marks(max_queue, "max_queue")
    high_bytes, low_bytes = _marks(max_queue_bytes, "max_queue_bytes")
    return QueueLimits(high, low, high_bytes, low_bytes)


class MessageQueue:
    """Messages received and not returned by ``recv`` yet; pauses reading the connection
    while it is over a high water mark (see the module's docstring).

    Called with whatever serializes the connection held (the engine lock, or the event loop's
    thread). ``wake`` makes the engine poll soon: after a resume, what waited in the kernel is
    read by the next poll. ``append`` and ``popleft`` are on every message's path: they do
    as little as a bare deque's unless a mark is crossed.
    """

    __slots__ = (
        "_ctx",
        "_conn",
        "_wake",
        "_items",
        "_bytes",
        "_paused",
        "_closing",
        "_high",
        "_low",
        "_high_bytes",
        "_low_bytes",
    )

    def __init__(
        self, ctx: Context, conn: int, limits: QueueLimits, wake: Callable[[], None]
    ) -> None:
        self._ctx = ctx
        self._conn = conn
        self._wake = wake
        self._items: deque[Data] = deque()
        self._bytes = 0
        self._paused = False
        #: The application closes the connection: it reads on, to receive the peer's close.
        self._closing = False
        self._high = limits.high
        self._low = limits.low
        self._high_bytes = limits.high_bytes
        self._low_bytes = limits.low_bytes

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def paused(self) -> bool:
        """Whether this queue paused reading."""
        return self._paused

    def append(self, data: Data) -> None:
        """Queues a message that just arrived."""
        items = self._items
        if len(items) > self._high or self._bytes > self._high_bytes:
            if self._closing:
                return  # see `closing`
        items.append(data)
        self._bytes += len(data)
        if len(items) > self._high or self._bytes > self._high_bytes:
            self._pause()

    def appendleft(self, data: Data) -> None:
        """Puts back a message that was taken but not delivered (a cancelled ``recv``)."""
        self._items.appendleft(data)
        self._bytes += len(data)
        if len(self._items) > self._high or self._bytes > self._high_bytes:
            self._pause()

    def popleft(self) -> Data:
        """The oldest message; resumes reading once the queue is down to its low marks."""
        data = self._items.popleft()
        self._bytes -= len(data)
        if self._paused and len(self._items) <= self._low and self._bytes <= self._low_bytes:
            self._resume()
        return data

    def closing(self) -> None:
        """The application started the closing handshake: reading resumes so that the peer's
        close frame arrives, and from now on the messages that come while the queue is over
        its high water marks are discarded (the application is done with the connection;
        what was queued before stays for ``recv``)."""
        self._closing = True
        if self._paused:
            self._resume()

    def _pause(self) -> None:
        if not self._paused and not self._closing:
            self._paused = True
            self._call(self._ctx.pause_reading)

    def _resume(self) -> None:
        self._paused = False
        self._call(self._ctx.resume_reading)
        self._wake()

    def _call(self, action: Callable[[int], None]) -> None:
        try:
            action(self._conn)
        except InvalidState:
            pass  # the connection is over (or no longer open): nothing left to read
