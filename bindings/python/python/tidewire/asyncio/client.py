"""The asyncio client: ``await connect(uri)`` or ``async with connect(uri) as ws``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Generator, Sequence
from typing import Any, Literal, Optional, Union

from .._client_model import ERROR_GRACE, ClientModel, client_setup
from .._options import DEFAULT_MAX_SIZE
from .._queue import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_BYTES, QueueLimit
from .._tidewire import ReconnectPolicy
from ..datastructures import HeadersLike
from ._driver import Driver
from .connection import Connection

__all__ = ["connect", "ClientConnection"]

logger = logging.getLogger("tidewire.client")


class ClientConnection(ClientModel["asyncio.Future[float]"], Connection):
    """A client connection; it owns its context, which the driver frees once the connection
    is gone."""


class connect:
    """Opens a WebSocket connection: ``ws = await connect(uri)``, or
    ``async with connect(uri) as ws:`` which closes it at the end, or
    ``async for ws in connect(uri):`` which reconnects.

    ``async for`` behaves as python-websockets' does: it yields a new connection each time
    one opens, and when the body of the loop is done with it (typically after catching
    ``ConnectionClosed`` and going on with ``continue``) the connection is closed and the
    next one is opened. A failure to connect that the runtime classifies as retryable
    (network failures, timeouts, a 5xx or 429 answer, whose ``Retry-After`` is honoured)
    is retried after the delay of ``reconnect`` (a ``tidewire.ReconnectPolicy``; default
    ``ReconnectPolicy()``: full-jitter exponential backoff from 1 s up to 30 s, unlimited
    attempts); any other failure (a 4xx, a TLS certificate failure, a bad URI, ...), or one
    after ``max_attempts`` attempts in a row, is raised. Leaving the loop (``break``, an
    exception) stops it. The schedule and the classification are tidewire-net's.

    Same arguments as ``tidewire.connect`` (``max_queue``, default 16 messages, and
    ``max_queue_bytes``, default 1 MiB, bound what waits for ``recv``: see there). Raises
    ``InvalidURI``, ``InvalidHandshake`` (``InvalidStatus`` for an HTTP refusal),
    ``TimeoutError`` after ``open_timeout``, ``OSError`` when the connection failed.

    ``proxy``: ``True`` (the default) takes the proxy from the environment as
    python-websockets does (``no_proxy``; then ``wss_proxy``/``https_proxy`` for ``wss://``,
    ``ws_proxy``/``http_proxy`` for ``ws://``; then ``all_proxy``; lower case first),
    ``None`` connects directly, a string is a proxy URL: ``http://``, ``https://`` (TLS to
    the proxy, trusting what ``ssl`` trusts), ``socks5://`` (the target resolved here) or
    ``socks5h://`` (resolved by the proxy), with ``user:password@`` when the proxy asks for
    them. A failing proxy raises ``ProxyError`` (``ProxyTimeoutError`` when it did not
    answer within ``open_timeout``).
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
        write_limit: Union[int, tuple[int, int], None] = None,
        max_queue: QueueLimit = DEFAULT_MAX_QUEUE,
        max_queue_bytes: QueueLimit = DEFAULT_MAX_QUEUE_BYTES,
        reconnect: Optional[ReconnectPolicy] = None,
        proxy: Union[str, Literal[True], None] = True,
    ) -> None:
        if reconnect is not None and not isinstance(reconnect, ReconnectPolicy):
            raise TypeError("reconnect must be a tidewire.ReconnectPolicy or None")
        self._reconnect = reconnect
        self._setup = client_setup(
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
        self._connection: Optional[ClientConnection] = None

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._create().__await__()

    async def __aenter__(self) -> ClientConnection:
        self._connection = await self._create()
        return self._connection

    async def __aexit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        backoff = (self._reconnect or ReconnectPolicy()).backoff()
        while True:
            try:
                conn = await self._create()
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
                await asyncio.sleep(delay)
                continue
            backoff.opened()
            try:
                yield conn
            finally:
                await conn.close()
            delay = backoff.next_delay(None)
            if delay is None:
                return
            await asyncio.sleep(delay)

    async def _create(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        setup = self._setup
        ctx, conn_id = setup.start()
        try:
            driver = Driver(ctx, loop, exit_when_idle=True)
        except BaseException:
            ctx.free()
            raise
        conn = ClientConnection(
            driver, conn_id, close_timeout=setup.close_timeout, queue_limits=setup.queue_limits
        )
        conn.request = setup.request()
        driver.handlers[conn_id] = conn
        driver.request_run()
        timed_out = False
        try:
            if setup.open_timeout is None:
                await asyncio.shield(conn._state_waiter)
            else:
                await asyncio.wait_for(asyncio.shield(conn._state_waiter), setup.open_timeout)
        except asyncio.TimeoutError:
            # The runtime's own timeout error is due now and says what did not answer.
            try:
                await asyncio.wait_for(asyncio.shield(conn._state_waiter), ERROR_GRACE)
                timed_out = False
            except asyncio.TimeoutError:
                timed_out = True
        except BaseException:
            driver.close()
            raise
        if not conn._opened:
            driver.close()
            raise conn._opening_error(timed_out)
        return conn
