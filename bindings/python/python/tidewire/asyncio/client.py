"""The asyncio client: ``await connect(uri)`` or ``async with connect(uri) as ws``."""

from __future__ import annotations

import asyncio
from typing import Any, Generator, Optional, Sequence, Tuple, Union

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
from ..datastructures import HeadersLike
from ..exceptions import opening_failure
from ..sync.client import CLIENT_RECEIVE_BUFFER, handshake_request, handshake_response
from ..sync.connection import State
from ._driver import Driver
from .connection import Connection

__all__ = ["connect", "ClientConnection"]


class ClientConnection(Connection):
    """A client connection; it owns its context, freed when the connection ends."""

    def _on_open(self) -> None:
        self.response = handshake_response(self._open_headers)

    def _after_close(self) -> None:
        # The driver frees the context once its last connection is gone (after dispatch).
        pass


class connect:
    """Opens a WebSocket connection: ``ws = await connect(uri)``, or
    ``async with connect(uri) as ws:`` which closes it at the end.

    Same arguments as ``tidewire.connect`` (``max_queue``, default 16 messages, and
    ``max_queue_bytes``, default 1 MiB, bound what waits for ``recv``: see there). Raises
    ``InvalidURI``, ``InvalidHandshake`` (``InvalidStatus`` for an HTTP refusal),
    ``TimeoutError`` after ``open_timeout``, ``OSError`` when the connection failed.
    """

    def __init__(
        self,
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
    ) -> None:
        self._uri = uri
        self._headers = header_list(additional_headers)
        self._subprotocols = subprotocol_list(subprotocols)
        self._origin = origin
        self._compression = compression_name(compression)
        self._tls = client_tls_kwargs(ssl)
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._queue_limits = queue_limits(max_queue, max_queue_bytes)
        self._context_kwargs = context_kwargs(
            max_size=max_size,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            open_timeout=open_timeout,
            write_limit=write_limit,
            receive_buffer_size=CLIENT_RECEIVE_BUFFER,
        )
        self._connection: Optional[ClientConnection] = None

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._create().__await__()

    async def __aenter__(self) -> ClientConnection:
        self._connection = await self._create()
        return self._connection

    async def __aexit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _create(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        ctx = Context(**self._context_kwargs)
        try:
            conn_id = ctx.connect(
                self._uri,
                headers=self._headers,
                origin=self._origin,
                subprotocols=self._subprotocols,
                compression=self._compression,
                **self._tls,
            )
            driver = Driver(ctx, loop, exit_when_idle=True)
        except BaseException:
            ctx.free()
            raise
        conn = ClientConnection(driver, conn_id, close_timeout=self._close_timeout,
                                queue_limits=self._queue_limits)
        conn.request = handshake_request(self._uri, self._headers, self._origin, self._subprotocols)
        driver.handlers[conn_id] = conn
        driver.request_run()
        try:
            if self._open_timeout is None:
                await asyncio.shield(conn._state_waiter)
            else:
                await asyncio.wait_for(asyncio.shield(conn._state_waiter), self._open_timeout)
        except asyncio.TimeoutError:
            driver.close()
            raise TimeoutError("timed out during the opening handshake") from None
        except BaseException:
            driver.close()
            raise
        if not conn._opened:
            driver.close()
            if conn._error is not None:
                raise opening_failure(conn._error)
            raise conn._closed_exception()
        return conn
