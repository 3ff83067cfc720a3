"""The asyncio server: ``async with serve(handler, host, port) as server``, one handler
coroutine per connection, no threads."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import (Any, Awaitable, Callable, Generator, Mapping, Optional, Sequence, Set, Tuple,
                    Union)

from .._options import (
    DEFAULT_MAX_SIZE,
    compression_name,
    context_kwargs,
    header_list,
    peer_limit_kwargs,
    select_subprotocol,
    server_tls_kwargs,
    subprotocol_list,
)
from .._queue import (
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_QUEUE_BYTES,
    QueueLimit,
    QueueLimits,
    queue_limits,
)
from .._tidewire import Context, RawRequest, RequestEvent
from ..datastructures import Headers, Request, Response
from ..exceptions import ConnectionClosed, InvalidState
from ..sync.connection import State
from ..sync.server import request_from_raw
from ._driver import Driver
from .connection import Connection

__all__ = ["serve", "Server", "ServerConnection"]

logger = logging.getLogger("tidewire.server")


class ServerConnection(Connection):
    """A connection accepted by a ``Server``, handed to the handler coroutine."""

    def __init__(self, driver: Driver, conn_id: int, raw: RawRequest, *,
                 close_timeout: Optional[float], queue_limits: QueueLimits) -> None:
        super().__init__(driver, conn_id, close_timeout=close_timeout,
                         queue_limits=queue_limits)
        self.raw_request = raw
        self.request = request_from_raw(raw)

    def respond(self, status: int, text: str) -> Response:
        """A plain-text response for ``process_request`` to return."""
        headers = Headers([("Content-Type", "text/plain; charset=utf-8")])
        return Response(status, "", headers, text.encode())

    def _reject(self, response: Response) -> None:
        try:
            self._ctx.reject(self.id, response.status_code, header_list(response.headers),
                             response.body)
        except InvalidState:
            pass
        self._driver.handlers.pop(self.id, None)
        self.response = response
        self.close_code = 1006
        self._set_closed()
        self._driver.request_run()

    def _accept(self, subprotocol: Optional[str]) -> bool:
        try:
            self._ctx.accept(self.id, subprotocol)
        except InvalidState:
            self._driver.handlers.pop(self.id, None)
            self.close_code = 1006
            self._set_closed()
            return False
        self._state = State.OPEN
        self._opened = True
        self.subprotocol = subprotocol
        self.remote_address = tuple(self._ctx.peer_addr(self.id))  # type: ignore[assignment]
        h = Headers([("Upgrade", "websocket"), ("Connection", "Upgrade")])
        if subprotocol is not None:
            h["Sec-WebSocket-Protocol"] = subprotocol
        self.response = Response(101, "Switching Protocols", h)
        self._driver.request_run()
        return True

    def _on_open(self) -> None:
        if self.response is not None and self.extensions is not None:
            self.response.headers["Sec-WebSocket-Extensions"] = self.extensions


Handler = Callable[[ServerConnection], Awaitable[Any]]
ProcessRequest = Callable[[ServerConnection, Request],
                          Union[Optional[Response], Awaitable[Optional[Response]]]]


class Server:
    """A listening WebSocket server on the running loop."""

    def __init__(self, handler: Handler, host: str, port: int, *, ssl: Any = None,
                 subprotocols: Optional[Sequence[str]] = None,
                 origins: Optional[Sequence[Optional[str]]] = None,
                 process_request: Optional[ProcessRequest] = None,
                 compression: Optional[str] = "deflate",
                 max_size: Optional[int] = DEFAULT_MAX_SIZE,
                 open_timeout: Optional[float] = 10, close_timeout: Optional[float] = 10,
                 ping_interval: Optional[float] = 20, ping_timeout: Optional[float] = 20,
                 write_limit: Union[int, Tuple[int, int], None] = None,
                 max_queue: QueueLimit = DEFAULT_MAX_QUEUE,
                 max_queue_bytes: QueueLimit = DEFAULT_MAX_QUEUE_BYTES,
                 reuse_port: bool = False,
                 peer_limits: Optional[Mapping[str, Any]] = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._handler = handler
        self._subprotocols = subprotocol_list(subprotocols)
        self._origins = None if origins is None else list(origins)
        self._process_request = process_request
        self._close_timeout = close_timeout
        self._queue_limits = queue_limits(max_queue, max_queue_bytes)
        self._tasks: Set["asyncio.Task[None]"] = set()
        self._closing = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._ctx = Context(**context_kwargs(
            max_size=max_size, ping_interval=ping_interval, ping_timeout=ping_timeout,
            close_timeout=close_timeout, open_timeout=open_timeout, write_limit=write_limit))
        try:
            self._listener = self._ctx.listen(
                host, port, handle_requests=True, compression=compression_name(compression),
                reuse_port=reuse_port, **peer_limit_kwargs(peer_limits),
                **server_tls_kwargs(ssl))
            bound_host, bound_port = self._ctx.local_addr(self._listener)
            self._driver = Driver(self._ctx, self._loop, on_request=self._on_request)
        except BaseException:
            self._ctx.free()
            raise
        self._driver.on_close = self._on_driver_close
        #: ``(host, port)`` the server listens on (the real port when 0 was asked).
        self.address: Tuple[str, int] = (bound_host, bound_port)

    @property
    def port(self) -> int:
        return self.address[1]

    def _on_request(self, event: RequestEvent) -> None:
        conn = ServerConnection(self._driver, event.conn, event.request,
                                close_timeout=self._close_timeout,
                                queue_limits=self._queue_limits)
        self._driver.handlers[event.conn] = conn
        task = self._loop.create_task(self._handle(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check_request(self, conn: ServerConnection) -> Tuple[Optional[Response], Optional[str]]:
        raw = conn.raw_request
        if self._origins is not None and raw.origin not in self._origins:
            return conn.respond(403, "Failed to open a WebSocket connection: invalid Origin header.\n"), None
        subprotocol, error = select_subprotocol(raw.subprotocols, self._subprotocols)
        if error is not None:
            return conn.respond(400, f"Failed to open a WebSocket connection: {error}.\n"), None
        return None, subprotocol

    async def _handle(self, conn: ServerConnection) -> None:
        try:
            response = None
            if self._process_request is not None:
                result = self._process_request(conn, conn.request)  # type: ignore[arg-type]
                response = await result if inspect.isawaitable(result) else result
            subprotocol = None
            if response is None:
                response, subprotocol = self._check_request(conn)
            if response is not None:
                conn._reject(response)  # type: ignore[arg-type]
                return
            if not conn._accept(subprotocol):
                return
        except Exception:
            logger.exception("opening handshake failed")
            conn._reject(conn.respond(500, "Failed to open a WebSocket connection.\n"))
            return
        try:
            await self._handler(conn)
        except ConnectionClosed:
            pass  # the peer went away while the handler was talking to it: not a failure
        except Exception:
            logger.exception("connection handler failed")
            await conn.close(1011, "internal error")
        else:
            await conn.close()

    def _on_driver_close(self) -> None:
        if not self._closed.done():
            self._closed.set_result(None)

    def close(self) -> None:
        """Stops listening and closes every connection with 1001 (going away); see
        ``wait_closed``."""
        if self._closing:
            return
        self._closing = True
        if self._driver.closed:
            return
        grace = 0.0 if self._close_timeout is None else self._close_timeout
        self._ctx.shutdown(grace)
        for conn in self._driver.handlers.values():
            conn._messages.closing()  # to read the peers' close frames
        self._driver.request_run()
        self._loop.create_task(self._finish(grace))

    async def _finish(self, grace: float) -> None:
        deadline = self._loop.time() + grace + 1.0
        while self._driver.handlers and self._loop.time() < deadline:
            waiters = [c._closed_waiter for c in self._driver.handlers.values()]
            await asyncio.wait(waiters, timeout=max(0.0, deadline - self._loop.time()))
        self._driver.close()

    async def wait_closed(self) -> None:
        """Waits until the server is closed and every handler has returned."""
        await asyncio.shield(self._closed)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0 + (self._close_timeout or 0.0))

    async def serve_forever(self) -> None:
        """Waits until the server is closed; cancelling it closes the server."""
        try:
            await asyncio.shield(self._closed)
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<Server {self.address[0]}:{self.address[1]}>"


class serve:
    """Starts a server: ``server = await serve(handler, host, port)`` or
    ``async with serve(handler, host, port) as server:`` (closed at the end).

    ``handler(connection)`` is a coroutine run for every connection; the connection is
    closed when it returns (1011 when it raised; the error is logged and the server keeps
    serving). Same options as ``tidewire.serve`` (among them ``max_queue``, default 16
    messages, and ``max_queue_bytes``, default 1 MiB: what waits for ``recv`` before the
    connection stops reading); ``process_request`` may be a coroutine.
    """

    def __init__(self, handler: Handler, host: Optional[str] = None,
                 port: Optional[int] = None, **kwargs: Any) -> None:
        self._args = (handler, "127.0.0.1" if host is None else host, 0 if port is None else port)
        self._kwargs = kwargs
        self._server: Optional[Server] = None

    async def _create(self) -> Server:
        return Server(*self._args, **self._kwargs)

    def __await__(self) -> Generator[Any, None, Server]:
        return self._create().__await__()

    async def __aenter__(self) -> Server:
        self._server = await self._create()
        return self._server

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
