"""The connection model that the blocking and the asyncio APIs share.

What a connection knows (its state, what the opening handshake settled, how it ended), how
each event of the context changes that, and the checks and bookkeeping around every action:
message and fragment types, ping payloads and the pongs that answer them, the closing
handshake, and the close frame the context holds for the application. In the manner of the
``websockets`` package's sans-I/O ``Protocol``: ``tidewire.sync`` and ``tidewire.asyncio``
subclass ``ConnectionModel`` and add only how a caller waits and how it is woken (the hooks
at the end of the class).

The context holds the close frame that answers the peer (``hold_close_replies``) until the
application has consumed the messages that arrived before the peer's close or its protocol
error, so that its answers to them still go first (RFC 6455 section 7.1.1 ordering).
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any, Callable, Generic, Optional, Protocol, TypeVar, Union

from ._queue import MessageQueue, QueueLimits
from ._tidewire import (
    CloseEvent,
    CloseHeldEvent,
    Context,
    ErrorEvent,
    MessageEvent,
    OpenEvent,
    PongEvent,
    PublishReport,
    WritableEvent,
)
from .datastructures import Request, Response
from .exceptions import ConcurrencyError, ConnectionClosed, InvalidState, closed_exception

__all__ = [
    "State",
    "Data",
    "Runner",
    "ConnectionModel",
    "ping_payload",
    "is_whole_message",
    "broadcast",
]

Data = Union[str, bytes]

#: What ``send`` takes as one message.
DATA_TYPES = (str, bytes, bytearray, memoryview)

#: How a caller waits for the pong of its ping: ``threading.Event``, ``asyncio.Future``.
W = TypeVar("W")


class State(enum.IntEnum):
    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


def ping_payload(data: Optional[Union[str, bytes]]) -> bytes:
    """The payload of a ping: ``data`` (text as UTF-8), or 4 random bytes."""
    if data is None:
        return os.urandom(4)
    if isinstance(data, str):
        return data.encode()
    return bytes(data)


def is_whole_message(message: object) -> bool:
    """Whether ``send`` sends ``message`` as one message (``str``, bytes-like) rather than
    as the fragments it iterates over."""
    if isinstance(message, DATA_TYPES):
        return True
    if isinstance(message, dict):
        raise TypeError("data must be str, bytes-like or an iterable of them")
    return False


class Runner(Protocol):
    """What runs the connections of a context: the blocking API's ``Engine``, the asyncio
    API's ``Driver``."""

    ctx: Context
    #: The connections the runner hands events to, by id.
    handlers: dict[int, Any]


class ConnectionModel(Generic[W]):
    """One connection of a ``Context``: its state and every rule that does not wait.

    Called with whatever serializes the connection held (the blocking engine's lock, or the
    event loop's thread).
    """

    def __init__(
        self,
        runner: Runner,
        conn_id: int,
        *,
        close_timeout: Optional[float],
        queue_limits: QueueLimits,
    ) -> None:
        self._ctx = ctx = runner.ctx
        #: The runner's connections by id (this one leaves when it is refused).
        self._handlers = runner.handlers
        self.id = conn_id
        self._messages = MessageQueue(ctx, conn_id, queue_limits, self._wake_engine)
        self._state = State.CONNECTING
        #: The opening handshake completed (the connection may have closed since).
        self._opened = False
        self._error: Optional[BaseException] = None
        self._clean = False
        # The close code came from the peer (not one we failed the connection with).
        self._remote_close = False
        # A message was handed to the application and it has not come back to `recv` since:
        # it may still answer, so a held close frame waits.
        self._unanswered = False
        self._close_owed = False
        # A client's 101 response headers, from the open event.
        self._open_headers: list[tuple[str, str]] = []
        #: Pings waiting for their pong, oldest first, and when each was queued.
        self._pings: dict[bytes, W] = {}
        self._ping_times: dict[bytes, float] = {}
        #: The last round-trip time measured, in seconds (0.0 before the first): from the
        #: pong of a keepalive ping or of a ``ping`` call, as the context measures it
        #: (``Context.latency``), refreshed at every pong.
        self.latency: float = 0.0
        self._close_timeout = close_timeout
        #: The negotiated subprotocol, or None.
        self.subprotocol: Optional[str] = None
        #: The negotiated extensions (the Sec-WebSocket-Extensions value), or None.
        self.extensions: Optional[str] = None
        #: ``(host, port)`` of the peer.
        self.remote_address: Optional[tuple[str, int]] = None
        #: The opening handshake request.
        self.request: Optional[Request] = None
        #: The opening handshake response.
        self.response: Optional[Response] = None
        #: The close code, once the connection is closed.
        self.close_code: Optional[int] = None
        #: The close reason, once the connection is closed.
        self.close_reason: Optional[str] = None

    @property
    def state(self) -> State:
        """CONNECTING, OPEN, CLOSING or CLOSED."""
        return self._state

    # -- events of the context -----------------------------------------------------------

    def on_event(self, event: Any) -> bool:
        """Applies an event; returns whether a caller may have waited for it."""
        kind = type(event)
        if kind is MessageEvent:
            self._on_message(event.data)
        elif kind is CloseHeldEvent:
            self._close_held()
            return False
        elif kind is WritableEvent:
            self._writable()
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
            self._wake_open()
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
        else:
            return False
        return True

    def _on_message(self, data: Data) -> None:
        self._unanswered = True
        self._messages.append(data)

    def on_abort(self, reason: str) -> None:
        """The engine stopped (or its context was freed) with the connection still on it."""
        if self._state is not State.CLOSED:
            self.close_code = 1006
            self.close_reason = reason
            self._set_closed()

    def _on_open(self) -> None:
        """The handshake completed: each role completes its ``response`` here."""

    def _on_pong(self, data: bytes) -> None:
        now = time.monotonic()
        try:
            self.latency = self._ctx.latency(self.id)
        except InvalidState:
            pass  # the connection is already over
        # A pong acknowledges its ping and every ping sent before it; each waiter gets the
        # time since its own ping.
        pings = self._pings
        if data not in pings:
            return
        for key in list(pings):
            sent = self._ping_times.pop(key, now)
            self._pong_arrived(pings.pop(key), now - sent)
            if key == data:
                break

    def _set_closed(self) -> None:
        self._state = State.CLOSED
        self._wake_closed()

    def _forget(self) -> None:
        """Leaves the engine's connections: no event will come for this one."""
        self._handlers.pop(self.id, None)

    # -- the held close frame ------------------------------------------------------------

    def _close_held(self) -> None:
        """The peer closed (or broke the protocol): answer now, unless messages before it
        may still be answered."""
        self._close_owed = True
        if not self._unanswered and not self._messages:
            self._release_close_reply()

    def _back_for_more(self) -> None:
        """`recv` found nothing queued: everything received so far was answered."""
        self._unanswered = False
        if self._close_owed:
            self._release_close_reply()

    def _release_close_reply(self) -> None:
        self._close_owed = False
        try:
            if self._ctx.release_close_reply(self.id):
                self._wake_engine()
        except InvalidState:
            pass  # the connection is already over

    # -- actions: checks and bookkeeping, InvalidState once the connection is over ------

    def _queue_fragment(self, fragment: Any, text: Optional[bool]) -> tuple[bool, bool]:
        """Queues one fragment of a message sent in pieces; ``text`` is None for the first,
        whose type (text or binary) every other must have. Returns ``(text, whether the
        output buffer is over its high water mark)``."""
        if text is None:
            if not isinstance(fragment, DATA_TYPES):
                raise TypeError("fragments must be str or bytes-like")
            text = isinstance(fragment, str)
            self._ctx.begin_message(self.id, text)
        elif isinstance(fragment, str) != text:
            raise TypeError("all fragments of a message must be of the same type")
        chunk = fragment.encode() if isinstance(fragment, str) else fragment
        return text, self._ctx.send_fragment(self.id, chunk, False)

    def _end_fragments(self) -> bool:
        """Ends a message sent in pieces; returns whether over the high water mark."""
        return self._ctx.send_fragment(self.id, b"", True)

    def _queue_ping(self, data: Optional[Union[str, bytes]], new_waiter: Callable[[], W]) -> W:
        """Sends a ping; returns what ``_pong_arrived`` gets when its pong arrives."""
        payload = ping_payload(data)
        if payload in self._pings:
            raise ConcurrencyError("already waiting for a pong with the same data")
        self._ctx.ping(self.id, payload)
        self._ping_times[payload] = time.monotonic()
        waiter = self._pings[payload] = new_waiter()
        self._wake_engine()
        return waiter

    def _start_close(self, code: int, reason: str) -> None:
        """Starts the closing handshake unless it started already (never raises)."""
        if self._state not in (State.OPEN, State.CONNECTING):
            return
        try:
            self._ctx.close(self.id, code, reason)
            self._state = State.CLOSING
        except InvalidState:
            pass
        self._messages.closing()
        self._wake_engine()

    def _closed_exception(self) -> ConnectionClosed:
        code = 1006 if self.close_code is None else self.close_code
        exc = closed_exception(code, self.close_reason or "", self._clean, self._remote_close)
        if self._error is not None and exc.__cause__ is None:
            exc.__cause__ = self._error
        return exc

    # -- one message to many connections ---------------------------------------------------

    def _broadcast(self, conns: list[int], message: Any) -> PublishReport:
        """Sends ``message`` to ``conns``, connections of this one's context, in one engine
        call (serialized as the I/O layer requires), and has the engine write it. A context
        that is gone (its server or client ended) has none of them open."""
        with self._serialized():
            try:
                report = self._ctx.broadcast(conns, message)
            except InvalidState:  # the context was freed
                return PublishReport(not_open=len(conns))
            self._wake_engine()
        return report

    # -- waking, which each I/O layer does its own way -----------------------------------

    def _serialized(self) -> AbstractContextManager[Any]:
        """What serializes the calls on the context: held around them."""
        raise NotImplementedError

    def _wake_engine(self) -> None:
        """Has the engine write what was just queued, and poll soon."""
        raise NotImplementedError

    def _writable(self) -> None:
        """The output buffer went back under its low water mark: senders may go on."""
        raise NotImplementedError

    def _pong_arrived(self, waiter: W, latency: float) -> None:
        """Completes a waiter made by ``_queue_ping``; ``latency`` is the time since its
        ping was queued, in seconds."""
        raise NotImplementedError

    def _wake_open(self) -> None:
        """The handshake completed (the caller that opened the connection may wait)."""

    def _wake_closed(self) -> None:
        """The connection is closed: nothing more will come."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id:#x} state={self._state.name}>"


def broadcast(
    connections: Iterable[ConnectionModel[Any]],
    message: Union[str, bytes, bytearray, memoryview],
) -> PublishReport:
    """Sends ``message`` to every connection of ``connections`` (blocking or asyncio, clients
    or servers, mixed as you like): ``str`` as text, bytes-like as binary. Returns what
    happened as a ``PublishReport``, summed over the connections.

    As ``websockets.broadcast``: the message is pushed at once, without back-pressure (the
    call never waits); connections that are not open (not yet, closing, closed, or in the
    middle of a fragmented message) are skipped silently; fragmented messages are not
    supported (``TypeError``). Connections that share a context (those of one server) get
    the message from one engine call that frames it, and compresses it, once. A server's
    ``slow_subscriber`` policy applies: a connection with that many bytes already waiting
    misses the message (``"skip"``) or is closed with 1008 (``"close"``).

    From the asyncio API, call it on the event loop's thread; from the blocking API, from
    any thread. Unlike ``websockets.broadcast``, there is no ``raise_exceptions``: nothing
    fails per connection (the engine writes, later), and what each connection's outcome
    was is counted in the report.
    """
    if not isinstance(message, DATA_TYPES):
        raise TypeError(f"data must be str or bytes-like, not {type(message).__name__}")
    # Connections by context, in their order: one engine call each.
    groups: dict[int, tuple[ConnectionModel[Any], list[int]]] = {}
    for conn in connections:
        if not isinstance(conn, ConnectionModel):
            raise TypeError(f"not a tidewire connection: {conn!r}")
        group = groups.get(id(conn._ctx))
        if group is None:
            groups[id(conn._ctx)] = (conn, [conn.id])
        else:
            group[1].append(conn.id)
    report = PublishReport()
    for first, ids in groups.values():
        report += first._broadcast(ids, message)
    return report
