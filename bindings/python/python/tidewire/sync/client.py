"""The blocking client: ``connect(uri) -> ClientConnection``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Optional, Union, overload

from .._client_model import ERROR_GRACE, ClientModel, ClientSetup, client_setup
from .._options import DEFAULT_MAX_SIZE
from .._queue import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_BYTES, QueueLimit
from .._tidewire import ReconnectPolicy
from ..datastructures import HeadersLike
from ._engine import Engine
from .connection import Connection, State

__all__ = ["connect", "ClientConnection", "Reconnecting"]

logger = logging.getLogger("tidewire.client")


class ClientConnection(ClientModel[threading.Event], Connection):
    """A client connection; it owns its engine thread, which ends with the connection."""

    def _after_close(self) -> None:
        self._engine.stop()

    def _wait_open(self, timeout: Optional[float]) -> None:
        with self._cond:
            done = self._cond.wait_for(lambda: self._state is not State.CONNECTING, timeout)
            if not done:
                # The runtime's own timeout error is due now and says what did not answer.
                done = self._cond.wait_for(lambda: self._state is not State.CONNECTING, ERROR_GRACE)
            if done and self._opened:
                # Open, or already closed again: messages that came with the handshake are
                # delivered by recv, then the close.
                return
            if not done:
                try:
                    self._ctx.close(self.id)
                except Exception:
                    pass
                self._engine.kick()
            error = self._opening_error(timed_out=not done)
        self._engine.stop()
        raise error


class Reconnecting:
    """What ``connect(uri, reconnect=...)`` returns: ``for ws in connect(uri, reconnect=True)``
    yields a new open connection each time one opens, as ``async for`` over
    ``tidewire.asyncio.connect`` does. When the body of the loop is done with a connection
    (typically after catching ``ConnectionClosed`` and going on with ``continue``), it is
    closed and the next one opened. A failure to connect that the runtime classifies as
    retryable (network failures, timeouts, a 5xx or 429 answer, whose ``Retry-After`` is
    honoured) is retried after the policy's delay; any other failure (a 4xx, a TLS
    certificate failure, a bad URI, ...), or one after ``max_attempts`` attempts in a row,
    is raised. Leaving the loop stops it; ``stop()`` (from any thread) ends it at the next
    step, also during a delay. The schedule and the classification are tidewire-net's."""

    def __init__(self, setup: ClientSetup, policy: ReconnectPolicy) -> None:
        self._setup = setup
        self._policy = policy
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Ends the loop: no further attempt; a delay in progress ends at once."""
        self._stopped.set()

    def __iter__(self) -> Iterator[ClientConnection]:
        backoff = self._policy.backoff()
        while not self._stopped.is_set():
            try:
                conn = _open(self._setup)
            except Exception as exc:
                delay = backoff.next_delay(exc)
                if delay is None:
                    raise
                logger.info(
                    "connect failed; reconnecting in %.3f s (attempt %d): %s",
                    delay,
                    backoff.attempt,
                    exc,
                )
                if self._stopped.wait(delay):
                    return
                continue
            backoff.opened()
            try:
                yield conn
            finally:
                conn.close()
            delay = backoff.next_delay(None)
            if delay is None or self._stopped.wait(delay):
                return


def _open(setup: ClientSetup) -> ClientConnection:
    ctx, conn_id = setup.start()
    engine = Engine(ctx, name="tidewire-client", exit_when_idle=True, user_watches=True)
    conn = ClientConnection(
        engine, conn_id, close_timeout=setup.close_timeout, queue_limits=setup.queue_limits
    )
    conn.request = setup.request()
    engine.handlers[conn_id] = conn
    engine.start()
    conn._wait_open(setup.open_timeout)
    return conn


_Reconnect = Union[bool, ReconnectPolicy, None]


@overload
def connect(
    uri: str,
    *,
    subprotocols: Optional[Sequence[str]] = ...,
    additional_headers: Optional[HeadersLike] = ...,
    origin: Optional[str] = ...,
    compression: Optional[str] = ...,
    max_size: Optional[int] = ...,
    open_timeout: Optional[float] = ...,
    close_timeout: Optional[float] = ...,
    ping_interval: Optional[float] = ...,
    ping_timeout: Optional[float] = ...,
    ssl: Any = ...,
    write_limit: Union[int, tuple[int, int], None] = ...,
    max_queue: QueueLimit = ...,
    max_queue_bytes: QueueLimit = ...,
    proxy: Union[str, Literal[True], None] = ...,
    reconnect: Literal[False, None] = ...,
) -> ClientConnection: ...


@overload
def connect(
    uri: str,
    *,
    subprotocols: Optional[Sequence[str]] = ...,
    additional_headers: Optional[HeadersLike] = ...,
    origin: Optional[str] = ...,
    compression: Optional[str] = ...,
    max_size: Optional[int] = ...,
    open_timeout: Optional[float] = ...,
    close_timeout: Optional[float] = ...,
    ping_interval: Optional[float] = ...,
    ping_timeout: Optional[float] = ...,
    ssl: Any = ...,
    write_limit: Union[int, tuple[int, int], None] = ...,
    max_queue: QueueLimit = ...,
    max_queue_bytes: QueueLimit = ...,
    proxy: Union[str, Literal[True], None] = ...,
    reconnect: Union[Literal[True], ReconnectPolicy],
) -> Reconnecting: ...


def connect(
    uri: str,
    *,
    subprotocols: Optional[Sequence[str]] = None,
    additional_headers: Optional[HeadersLike] = None,
    origin: Optional[str] = None,
    compression: Optional[str] = "deflate",
    max_size: Optional[int] = DEFAULT_MAX_SIZE,
    open_timeout: Optional[float] = 10,
    close_timeout: Optional[float] = 10,
    ping_interval: Optional[float] = 20,
    ping_timeout: Optional[float] = 20,
    ssl: Any = None,
    write_limit: Union[int, tuple[int, int], None] = None,
    max_queue: QueueLimit = DEFAULT_MAX_QUEUE,
    max_queue_bytes: QueueLimit = DEFAULT_MAX_QUEUE_BYTES,
    proxy: Union[str, Literal[True], None] = True,
    reconnect: _Reconnect = None,
) -> Union[ClientConnection, Reconnecting]:
    """Opens a WebSocket connection to ``uri`` (``ws://`` or ``wss://``) and returns it
    once the opening handshake completed.

    ``max_queue`` (default 16 messages) and ``max_queue_bytes`` (default 1 MiB; characters
    for text) bound the messages received and not yet returned by ``recv``: above either,
    the connection stops reading until ``recv`` has brought both down to their low water
    marks (a quarter of the high ones, or give ``(high, low)`` pairs). TCP then slows the
    peer down; nothing is dropped. ``None`` removes a bound.

    Raises ``InvalidURI``, ``InvalidHandshake`` (``InvalidStatus`` when the server refused
    with an HTTP status, ``InvalidMessage`` when it closed or reset the connection without
    answering, as a server over its connection limit does), ``TimeoutError`` after
    ``open_timeout``, ``OSError`` when the connection failed.

    ``proxy``: ``True`` (the default) takes the proxy from the environment as
    python-websockets does (``no_proxy``; then ``wss_proxy``/``https_proxy`` for ``wss://``,
    ``ws_proxy``/``http_proxy`` for ``ws://``; then ``all_proxy``; lower case first),
    ``None`` connects directly, a string is a proxy URL: ``http://``, ``https://`` (TLS to
    the proxy, trusting what ``ssl`` trusts), ``socks5://`` (the target resolved here) or
    ``socks5h://`` (resolved by the proxy), with ``user:password@`` when the proxy asks for
    them. A failing proxy raises ``ProxyError`` (``ProxyTimeoutError`` when it did not
    answer within ``open_timeout``).

    ``reconnect=True`` (the default ``tidewire.ReconnectPolicy()``) or a
    ``ReconnectPolicy``: returns a ``Reconnecting`` instead, for
    ``for ws in connect(uri, reconnect=True):`` loops that reconnect with backoff (see
    there). Nothing is opened before the loop starts; the arguments are checked at once.
    """
    if reconnect is not None and not isinstance(reconnect, (bool, ReconnectPolicy)):
        raise TypeError("reconnect must be a bool, a tidewire.ReconnectPolicy or None")
    setup = client_setup(
        uri,
        subprotocols=subprotocols,
        additional_headers=additional_headers,
        origin=origin,
        compression=compression,
        max_size=max_size,
        open_timeout=open_timeout,
        close_timeout=close_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        ssl=ssl,
        write_limit=write_limit,
        max_queue=max_queue,
        max_queue_bytes=max_queue_bytes,
        proxy=proxy,
    )
    if isinstance(reconnect, ReconnectPolicy):
        return Reconnecting(setup, reconnect)
    if reconnect:
        return Reconnecting(setup, ReconnectPolicy())
    return _open(setup)
