"""The asyncio server: ``async with serve(handler, host, port) as server``, one handler
coroutine per connection, no threads."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Generator, Mapping, Sequence
from typing import (
    Any,
    Callable,
    Optional,
    Union,
)

from .._options import DEFAULT_MAX_SIZE
from .._protocol import Runner
from .._queue import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_BYTES, QueueLimit
from .._server_model import (
    ClusterStatusCallback,
    ServerModel,
    ServerTopics,
    log_cluster_status,
    server_setup,
    start_cluster,
)
from .._tidewire import ClusterStatus, RequestEvent
from ..datastructures import Request, Response
from ..exceptions import ConnectionClosed
from ._driver import Driver
from .connection import Connection

__all__ = ["serve", "Server", "ServerConnection"]

logger = logging.getLogger("tidewire.server")


class ServerConnection(ServerModel["asyncio.Future[float]"], Connection):
    """A connection accepted by a ``Server``, handed to the handler coroutine."""


Handler = Callable[[ServerConnection], Awaitable[Any]]
ProcessRequest = Callable[
    [ServerConnection, Request], Union[Optional[Response], Awaitable[Optional[Response]]]
]


class Server(ServerTopics):
    """A listening WebSocket server on the running loop."""

    def __init__(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        ssl: Any = None,
        subprotocols: Optional[Sequence[str]] = None,
        origins: Optional[Sequence[Optional[str]]] = None,
        process_request: Optional[ProcessRequest] = None,
        compression: Optional[str] = "deflate",
        max_size: Optional[int] = DEFAULT_MAX_SIZE,
        open_timeout: Optional[float] = 10,
        close_timeout: Optional[float] = 10,
        ping_interval: Optional[float] = 20,
        ping_timeout: Optional[float] = 20,
        write_limit: Union[int, tuple[int, int], None] = None,
        max_queue: QueueLimit = DEFAULT_MAX_QUEUE,
        max_queue_bytes: QueueLimit = DEFAULT_MAX_QUEUE_BYTES,
        reuse_port: bool = False,
        peer_limits: Optional[Mapping[str, Any]] = None,
        slow_subscriber: Optional[tuple[int, str]] = None,
        cluster: Optional[str] = None,
        cluster_channel: str = "tidewire",
        on_cluster_status: Optional[ClusterStatusCallback] = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._setup = setup = server_setup(
            ssl=ssl,
            subprotocols=subprotocols,
            origins=origins,
            compression=compression,
            max_size=max_size,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            write_limit=write_limit,
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            reuse_port=reuse_port,
            peer_limits=peer_limits,
            slow_subscriber=slow_subscriber,
        )
        self._handler = handler
        self._process_request = process_request
        self._close_timeout = close_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._on_cluster_status = on_cluster_status
        #: The cluster bridge closing, in a thread of the loop's executor.
        self._cluster_closed: Optional[asyncio.Future[None]] = None
        self._ctx, address = setup.listen(host, port)
        try:
            self._driver = Driver(self._ctx, self._loop, on_request=self._on_request)
            if cluster is not None:
                self._cluster = start_cluster(
                    cluster, [self._ctx], channel=cluster_channel, on_status=self._cluster_status
                )
        except BaseException:
            if hasattr(self, "_driver"):
                self._driver.close()
            else:
                self._ctx.free()
            raise
        self._driver.on_close = self._on_driver_close
        #: ``(host, port)`` the server listens on (the real port when 0 was asked).
        self.address: tuple[str, int] = address

    @property
    def port(self) -> int:
        return self.address[1]

    # -- topics (ServerTopics) -----------------------------------------------------------

    def _runners(self) -> list[Driver]:
        return [self._driver]

    def _serialized(self, runner: Runner) -> contextlib.AbstractContextManager[None]:
        # Everything runs on the loop's thread.
        return contextlib.nullcontext()

    def _wake_after_publish(self, runner: Runner) -> None:
        self._driver.request_run()

    # -- the cluster bridge --------------------------------------------------------------

    def _cluster_status(self, status: ClusterStatus) -> None:
        """On a bridge thread: handed to the loop."""
        try:
            self._loop.call_soon_threadsafe(self._tell_cluster_status, status)
        except RuntimeError:  # the loop is closed
            pass

    def _tell_cluster_status(self, status: ClusterStatus) -> None:
        log_cluster_status(status)
        callback = self._on_cluster_status
        if callback is None:
            return
        try:
            result = callback(status)
            if inspect.isawaitable(result):
                task = self._loop.create_task(self._await_status_callback(result))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except Exception:
            logger.exception("on_cluster_status failed")

    @staticmethod
    async def _await_status_callback(result: Awaitable[Any]) -> None:
        try:
            await result
        except Exception:
            logger.exception("on_cluster_status failed")

    def _on_request(self, event: RequestEvent) -> None:
        conn = ServerConnection(
            self._driver,
            event,
            close_timeout=self._close_timeout,
            queue_limits=self._setup.queue_limits,
        )
        task = self._loop.create_task(self._handle(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, conn: ServerConnection) -> None:
        try:
            response = None
            if self._process_request is not None:
                result = self._process_request(conn, conn.request)  # type: ignore[arg-type]
                response = await result if inspect.isawaitable(result) else result
            if not conn._decide(response):  # type: ignore[arg-type]
                return  # refused, or gone before it opened
        except Exception:
            logger.exception("opening handshake failed")
            conn._handshake_failed()
            return
        try:
            await self._handler(conn)
        except ConnectionClosed:
            pass  # the peer went away while the handler was talking to it: not a failure
        except Exception:
            logger.exception("connection handler failed")
            try:
                await conn.close(1011, "internal error")
            except Exception:
                pass  # closing failed too: the connection is dropped, the server goes on
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
        if self._cluster is not None:
            # Joining the bridge's threads may take up to its connect timeout: not on the loop.
            self._cluster_closed = self._loop.run_in_executor(None, self._cluster.close)
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
        """Waits until the server is closed (its cluster bridge too) and every handler has
        returned."""
        await asyncio.shield(self._closed)
        if self._cluster_closed is not None:
            await asyncio.shield(self._cluster_closed)
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

    async def __aenter__(self) -> Server:
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
    connection stops reading, and ``slow_subscriber`` for ``server.publish`` and
    ``tidewire.broadcast``); ``process_request`` may be a coroutine.

    ``cluster``, ``cluster_channel`` and ``on_cluster_status`` join other server processes
    through Redis as in ``tidewire.serve``; here ``on_cluster_status`` is called on the
    loop's thread (it may be a coroutine function). There is no ``workers``: an event loop
    is one thread, so more contexts on it would add no core. For more cores, run one
    process per core with ``reuse_port=True`` on the same port and the same ``cluster``.
    """

    def __init__(
        self,
        handler: Handler,
        host: Optional[str] = None,
        port: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
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
