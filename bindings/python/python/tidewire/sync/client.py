"""The blocking client: ``connect(uri) -> ClientConnection``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Literal, Optional, Union

from .._client_model import ERROR_GRACE, ClientModel, client_setup
from .._options import DEFAULT_MAX_SIZE
from .._queue import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_BYTES, QueueLimit
from ..datastructures import HeadersLike
from ._engine import Engine
from .connection import Connection, State

__all__ = ["connect", "ClientConnection"]


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
) -> ClientConnection:
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
    """
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
    ctx, conn_id = setup.start()
    engine = Engine(ctx, name="tidewire-client", exit_when_idle=True, user_watches=True)
    conn = ClientConnection(
        engine, conn_id, close_timeout=close_timeout, queue_limits=setup.queue_limits
    )
    conn.request = setup.request()
    engine.handlers[conn_id] = conn
    engine.start()
    conn._wait_open(open_timeout)
    return conn
