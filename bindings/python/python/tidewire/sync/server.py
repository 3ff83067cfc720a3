"""The blocking server: ``serve(handler, host, port) -> Server``, a thread per connection."""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, Union

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
    worker_count,
)
from .._tidewire import ClusterStatus, RequestEvent
from ..datastructures import Request, Response
from ..exceptions import ConnectionClosed
from ._engine import Engine
from .connection import Connection, State

__all__ = ["serve", "Server", "ServerConnection"]

logger = logging.getLogger("tidewire.server")


class ServerConnection(ServerModel[threading.Event], Connection):
    """A connection accepted by a ``Server``, handed to the handler in its own thread."""


Handler = Callable[[ServerConnection], Any]
ProcessRequest = Callable[[ServerConnection, Request], Optional[Response]]
_Spawn = tuple[ServerConnection, Optional[ProcessRequest]]


#: Set on a cluster bridge's thread while it runs ``on_cluster_status``.
_in_status_callback = threading.local()


class Server(ServerTopics):
    """A listening WebSocket server. Connections are served as soon as it exists;
    ``serve_forever`` just blocks until ``shutdown``.

    It runs ``workers`` engines (contexts), each on a background thread of its own that
    polls with the GIL released, all listening on one port; a connection stays on the
    engine that accepted it, and its handler thread talks to that engine only."""

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
        workers: int = 1,
        cluster: Optional[str] = None,
        cluster_channel: str = "tidewire",
        on_cluster_status: Optional[ClusterStatusCallback] = None,
    ) -> None:
        count = worker_count(workers)
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
        self._threads: set[threading.Thread] = set()
        #: Connections whose handler thread is to be started (None stops the spawner).
        self._to_spawn: queue.SimpleQueue[Optional[_Spawn]] = queue.SimpleQueue()
        self._spawner = threading.Thread(
            target=self._spawn_handlers, daemon=True, name="tidewire-spawner"
        )
        self._done = threading.Event()
        self._shutting_down = False
        self._lifecycle = threading.Lock()
        self._on_cluster_status = on_cluster_status
        # Empty until the engines exist (the cluster's callback may run before).
        self._engines: list[Engine] = []
        contexts, address = setup.listen_workers(host, port, count)
        if cluster is not None:
            try:
                self._cluster = start_cluster(
                    cluster, contexts, channel=cluster_channel, on_status=self._cluster_status
                )
            except BaseException:
                for ctx in contexts:
                    ctx.free()
                raise
        #: ``(host, port)`` the server listens on (the real port when 0 was asked).
        self.address: tuple[str, int] = address
        self._engines = [
            Engine(
                ctx,
                name="tidewire-server" if count == 1 else f"tidewire-server-{i}",
                on_request=functools.partial(self._on_request, i),
            )
            for i, ctx in enumerate(contexts)
        ]
        self._spawner.start()
        for engine in self._engines:
            engine.start()

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def workers(self) -> int:
        """How many engines serve this server's port."""
        return len(self._engines)

    # -- topics (ServerTopics) -----------------------------------------------------------

    def _runners(self) -> list[Engine]:
        return self._engines

    def _serialized(self, runner: Runner) -> threading.Lock:
        assert isinstance(runner, Engine)
        return runner.lock

    def _wake_after_publish(self, runner: Runner) -> None:
        assert isinstance(runner, Engine)
        runner.kick()

    # -- the cluster bridge's thread -----------------------------------------------------

    def _cluster_status(self, status: ClusterStatus) -> None:
        log_cluster_status(status)
        callback = self._on_cluster_status
        if callback is None:
            return
        _in_status_callback.active = True
        try:
            callback(status)
        except Exception:
            logger.exception("on_cluster_status failed")
        finally:
            _in_status_callback.active = False

    # -- engine side (lock held) ---------------------------------------------------------

    def _on_request(self, index: int, event: RequestEvent) -> None:
        """An upgrade request: answered here, on the engine's thread, unless
        ``process_request`` must see it first (in the handler's thread, since it may block).

        Threads are started by a thread of their own (``_spawn_handlers``): starting one
        takes up to a millisecond of contended GIL once thousands are alive, so under a flood
        of connections an engine that waited for them would answer only a thousand or so
        handshakes a second, and drop the ones that waited past the handshake timeout
        without an answer. Here the upgrade completes at once, and what comes before the
        handler runs waits in the connection's queue (bounded by ``max_queue``)."""
        conn = ServerConnection(
            self._engines[index],
            event,
            close_timeout=self._close_timeout,
            queue_limits=self._setup.queue_limits,
        )
        process_request = self._process_request
        if process_request is None and not conn._decide(None):
            return
        self._to_spawn.put((conn, process_request))

    # -- the spawner thread --------------------------------------------------------------

    def _spawn_handlers(self) -> None:
        while True:
            item = self._to_spawn.get()
            if item is None:
                return
            conn, process_request = item
            if self._shutting_down:
                continue  # the connection is being closed; nobody will handle it
            thread = threading.Thread(
                target=self._handle,
                args=(conn, process_request),
                daemon=True,
                name=f"tidewire-handler-{conn.id:#x}",
            )
            self._threads.add(thread)
            try:
                thread.start()
            except RuntimeError:  # can't start new thread: out of memory, or a limit reached
                self._threads.discard(thread)
                logger.error("no thread for a new connection: refused")
                with conn._cond:
                    self._refuse(conn)

    def _refuse(self, conn: ServerConnection) -> None:
        """A connection no thread can serve: refused with 503 if it is not open yet,
        closed with 1013 (try again later) if it is."""
        if conn.state is State.CONNECTING:
            conn._reject(conn.respond(503, "Server overloaded: try again later.\n"))
        else:
            conn._start_close(1013, "try again later")

    # -- handler threads -----------------------------------------------------------------

    def _process(self, conn: ServerConnection, process_request: ProcessRequest) -> None:
        """The opening handshake with ``process_request`` (in the handler's thread)."""
        try:
            response = process_request(conn, conn.request)  # type: ignore[arg-type]
            with conn._cond:
                conn._decide(response)
        except Exception:
            logger.exception("opening handshake failed")
            with conn._cond:
                conn._handshake_failed()

    def _handle(self, conn: ServerConnection, process_request: Optional[ProcessRequest]) -> None:
        try:
            if process_request is not None:
                self._process(conn, process_request)
            # Set before this thread started, or by `_process` just now.
            if not conn._opened:
                return  # refused, or gone before it opened
            try:
                self._handler(conn)
            except ConnectionClosed:
                pass  # the peer went away while the handler was talking to it: not a failure
            except Exception:
                logger.exception("connection handler failed")
                try:
                    conn.close(1011, "internal error")
                except Exception:
                    pass  # closing failed too: the connection is dropped, the server goes on
            else:
                conn.close()
        finally:
            self._threads.discard(threading.current_thread())

    # -- lifecycle -----------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Blocks until ``shutdown`` is called (from another thread or a handler)."""
        self._done.wait()

    def shutdown(self) -> None:
        """Stops listening, closes every connection with 1001 (going away), waits for the
        closing handshakes (at most ``close_timeout``) and for the handlers to return. The
        cluster bridge, if any, is closed first."""
        with self._lifecycle:
            if self._shutting_down:
                return
            self._shutting_down = True
        grace = 0.0 if self._close_timeout is None else self._close_timeout
        cluster = self._cluster
        if cluster is not None:
            if getattr(_in_status_callback, "active", False):
                # Called from on_cluster_status: the bridge cannot wait for its own thread.
                threading.Thread(target=cluster.close, daemon=True).start()
            else:
                cluster.close()
        # Every engine starts closing its connections, then all are waited for together.
        for engine in self._engines:
            with engine.lock:
                if engine.running:
                    engine.ctx.shutdown(grace)
                    for conn in list(engine.handlers.values()):
                        if isinstance(conn, Connection):
                            conn._messages.closing()  # to read the peers' close frames
                    engine.kick()
        deadline = time.monotonic() + grace + 1.0
        for engine in self._engines:
            with engine.lock:
                while engine.running and engine.handlers and time.monotonic() < deadline:
                    engine.changed.wait(max(0.0, deadline - time.monotonic()))
        for engine in self._engines:
            engine.stop()
        self._to_spawn.put(None)
        self._spawner.join()
        current = threading.current_thread()
        deadline = time.monotonic() + 1.0 + grace
        for thread in list(self._threads):
            if thread is not current:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._done.set()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<Server {self.address[0]}:{self.address[1]}>"


def serve(
    handler: Handler,
    host: Optional[str] = None,
    port: Optional[int] = None,
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
    workers: int = 1,
    cluster: Optional[str] = None,
    cluster_channel: str = "tidewire",
    on_cluster_status: Optional[ClusterStatusCallback] = None,
) -> Server:
    """Listens on ``host:port`` and runs ``handler(connection)`` in a thread of its own for
    every accepted connection; the connection is closed when the handler returns (with
    1011 if it raised, which is logged; the server keeps serving).

    ``process_request(connection, request)`` may return a ``Response`` to refuse the
    upgrade. ``origins`` lists the accepted Origin values (``None`` in the list accepts
    requests without one; others get 403). With ``subprotocols``, the first of them that the
    client offered is selected, and clients offering none of them are refused (400). The
    engine applies both before ``process_request`` sees a request.

    ``max_queue`` (default 16 messages) and ``max_queue_bytes`` (default 1 MiB; characters
    for text) bound, per connection, the messages received and not yet returned by
    ``recv``: above either, the connection stops reading until ``recv`` has brought both
    down to their low water marks (a quarter of the high ones, or give ``(high, low)``
    pairs). TCP then slows the peer down; nothing is dropped. ``None`` removes a bound.

    ``peer_limits`` bounds what one client address may take (IPv6 by /64), with the names
    and defaults of ``Context.listen``: ``max_connections_per_address`` (no limit),
    ``max_handshakes_per_address`` (4096), ``max_handshakes`` (16384), ``connection_rate``
    (``(per_second, burst)``, no limit). A connection over one is closed at once.

    Topics: a handler calls ``connection.subscribe(topic)``, and ``server.publish(topic,
    message)`` sends to every subscriber, framing (and compressing) the message once.
    ``slow_subscriber=(limit, action)`` says what a publish or ``tidewire.broadcast`` does
    with a connection that already has ``limit`` bytes waiting to be written: ``"skip"``
    (it misses that message) or ``"close"`` (closed with 1008). Default ``(1048576,
    "skip")``, the runtime's.

    ``workers``: how many engines serve the port (default 1; 0 for one per CPU). Each is a
    context with its own background thread, which polls with the GIL released, and its own
    lock; the listeners share the port (``SO_REUSEPORT``) and the kernel spreads incoming
    connections over them. Handlers run as with one engine (a thread per connection).
    ``server.publish`` reaches the subscribers of every engine.

    ``cluster="redis://host:port"``: joins the other server processes that use the same
    Redis (and ``cluster_channel``, default ``"tidewire"``): ``server.publish`` reaches
    their subscribers too, and theirs reach this server's. Redis pub/sub is at-most-once:
    what is published while a link to Redis is down is lost for the other processes;
    local delivery never waits for Redis. Interruptions and resumptions are logged
    (``tidewire.server`` logger, warning) and passed to ``on_cluster_status(status)``
    (``status.kind``: ``"connected"``, ``"interrupted"``, ``"resumed"``; ``status.reason``),
    which runs on a thread of the bridge's (with the GIL): keep it short. A URL that is not
    a Redis URL raises ``InvalidURI``; an unreachable Redis does not raise.
    """
    return Server(
        handler,
        "127.0.0.1" if host is None else host,
        0 if port is None else port,
        ssl=ssl,
        subprotocols=subprotocols,
        origins=origins,
        process_request=process_request,
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
        workers=workers,
        cluster=cluster,
        cluster_channel=cluster_channel,
        on_cluster_status=on_cluster_status,
    )
