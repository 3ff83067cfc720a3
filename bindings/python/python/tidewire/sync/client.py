"""The blocking client: ``connect(uri) -> ClientConnection``."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from .._options import (
    DEFAULT_MAX_SIZE,
    client_tls_kwargs,
    compression_name,
    context_kwargs,
    header_list,
    subprotocol_list,
)
from .._queue import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_BYTES, QueueLimit, queue_limits
from .._tidewire import Context
from ..datastructures import Headers, HeadersLike, Request, Response
from ..exceptions import opening_failure
from .connection import Connection, State
from ._engine import Engine

__all__ = ["connect", "ClientConnection"]

#: The receive buffer of a client context: enough for a 64 KiB message per read cycle
#: without the 256 KiB a server context uses for many connections.
CLIENT_RECEIVE_BUFFER = 128 * 1024


def handshake_request(uri: str, headers: Sequence[Tuple[str, str]], origin: Optional[str],
                      subprotocols: Optional[Sequence[str]]) -> Request:
    """The opening request as far as the caller decided it (the engine adds the key,
    version and extension offer)."""
    parts = urlsplit(uri)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    h = Headers([("Host", parts.netloc.rsplit("@", 1)[-1])])
    if origin is not None:
        h["Origin"] = origin
    if subprotocols:
        h["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
    h.update(headers)
    return Request(path, h)


def handshake_response(headers: list[tuple[str, str]]) -> Response:
    """The server's 101 response, with its headers as received."""
    return Response(101, "Switching Protocols", Headers(headers))


class ClientConnection(Connection):
    """A client connection; it owns its engine thread, which ends with the connection."""

    def _on_open(self) -> None:
        self.response = handshake_response(self._open_headers)

    def _after_close(self) -> None:
        self._engine.stop()

    def _wait_open(self, timeout: Optional[float]) -> None:
        with self._cond:
            done = self._cond.wait_for(lambda: self._state is not State.CONNECTING, timeout)
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
            error: BaseException
            if not done:
                error = TimeoutError("timed out during the opening handshake")
            elif self._error is not None:
                error = opening_failure(self._error)
            else:
                error = self._closed_exception()
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
    write_limit: Union[int, Tuple[int, int], None] = None,
    max_queue: QueueLimit = DEFAULT_MAX_QUEUE,
    max_queue_bytes: QueueLimit = DEFAULT_MAX_QUEUE_BYTES,
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
    """
    headers = header_list(additional_headers)
    protocols = subprotocol_list(subprotocols)
    limits = queue_limits(max_queue, max_queue_bytes)
    ctx = Context(
        **context_kwargs(
            max_size=max_size,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            open_timeout=open_timeout,
            write_limit=write_limit,
            receive_buffer_size=CLIENT_RECEIVE_BUFFER,
        )
    )
    try:
        conn_id = ctx.connect(
            uri,
            headers=headers,
            origin=origin,
            subprotocols=protocols,
            compression=compression_name(compression),
            **client_tls_kwargs(ssl),
        )
    except BaseException:
        ctx.free()
        raise
    engine = Engine(ctx, name="tidewire-client", exit_when_idle=True, user_watches=True)
    conn = ClientConnection(engine, conn_id, close_timeout=close_timeout, queue_limits=limits)
    conn.request = handshake_request(uri, headers, origin, protocols)
    engine.handlers[conn_id] = conn
    engine.start()
    conn._wait_open(open_timeout)
    return conn
