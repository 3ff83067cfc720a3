"""The server side of the model both APIs share: what ``serve`` makes of its arguments, the
listener it opens, and how a connection's upgrade request is answered (accepted with its
101 response, or refused with the application's, and what the connection then knows).

The handshake policy (origins, subprotocol selection) is the engine's: ``serve``'s
``websockets``-style arguments become the listener's rules, applied before a request
reaches ``process_request``, and the request event carries the subprotocol they selected."""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar, Union

from ._options import (
    compression_name,
    context_kwargs,
    header_list,
    peer_limit_kwargs,
    server_tls_kwargs,
    subprotocol_list,
)
from ._protocol import ConnectionModel, Data, Runner, State
from ._queue import QueueLimit, QueueLimits, queue_limits
from ._tidewire import Cluster, ClusterStatus, Context, PublishReport, RawRequest, RequestEvent
from .datastructures import Headers, Request, Response
from .exceptions import InvalidState

__all__ = [
    "ServerModel",
    "ServerSetup",
    "ServerTopics",
    "server_setup",
    "request_from_raw",
    "worker_count",
    "start_cluster",
    "log_cluster_status",
    "Topic",
    "ClusterStatusCallback",
]

logger = logging.getLogger("tidewire.server")

#: A topic: any bytes; ``str`` is taken as its UTF-8 encoding.
Topic = Union[str, bytes, bytearray, memoryview]

#: ``serve(..., on_cluster_status=...)``: told when cross-process delivery is connected,
#: interrupted and resumed.
ClusterStatusCallback = Callable[[ClusterStatus], object]

W = TypeVar("W")


def request_from_raw(raw: RawRequest) -> Request:
    path = raw.path if raw.query is None else f"{raw.path}?{raw.query}"
    return Request(path, Headers(raw.headers))


def plain_response(status: int, text: str) -> Response:
    """A plain-text HTTP response."""
    headers = Headers([("Content-Type", "text/plain; charset=utf-8")])
    return Response(status, "", headers, text.encode())


@dataclass(frozen=True)
class ServerSetup:
    """The arguments of ``serve``, checked and translated for the context and listener."""

    close_timeout: Optional[float]
    queue_limits: QueueLimits
    context_kwargs: dict[str, Any]
    listen_kwargs: dict[str, Any]

    def listen(self, host: str, port: int) -> tuple[Context, tuple[str, int]]:
        """A context listening on ``host:port``: ``(context, (host, bound port))``."""
        ctx = Context(**self.context_kwargs)
        try:
            listener = ctx.listen(host, port, **self.listen_kwargs)
            bound_host, bound_port = ctx.local_addr(listener)
        except BaseException:
            ctx.free()
            raise
        return ctx, (bound_host, bound_port)

    def listen_workers(
        self, host: str, port: int, workers: int
    ) -> tuple[list[Context], tuple[str, int]]:
        """``workers`` contexts listening on one port: ``([context, ...], (host, bound
        port))``. With more than one, every listener sets ``reuse_port`` (SO_REUSEPORT: the
        kernel spreads incoming connections over them); the first one picks the port when
        ``port`` is 0 and the others bind the address it got."""
        if workers == 1:
            ctx, address = self.listen(host, port)
            return [ctx], address
        kwargs = dict(self.listen_kwargs, reuse_port=True)
        contexts: list[Context] = []
        try:
            for _ in range(workers):
                ctx = Context(**self.context_kwargs)
                contexts.append(ctx)
                listener = ctx.listen(host, port, **kwargs)
                host, port = ctx.local_addr(listener)
        except BaseException:
            for ctx in contexts:
                ctx.free()
            raise
        return contexts, (host, port)


def worker_count(workers: int) -> int:
    """The number of engines ``serve(..., workers=N)`` runs: ``N``, or one per CPU this
    process may use for 0."""
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers must be an int, not {type(workers).__name__}")
    if workers < 0:
        raise ValueError(f"workers must be 0 (one per CPU) or more, not {workers}")
    if workers > 0:
        return workers
    counted: Optional[int] = None
    process_cpu_count = getattr(os, "process_cpu_count", None)  # Python 3.13
    if process_cpu_count is not None:
        counted = process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        counted = len(os.sched_getaffinity(0))
    else:
        counted = os.cpu_count()
    return counted or 1


def log_cluster_status(status: ClusterStatus) -> None:
    """The package logger's line for a change of the cluster bridge's state."""
    if status.kind == "interrupted":
        logger.warning(
            "cluster: delivery to and from other processes interrupted (%s); local delivery "
            "goes on, reconnecting",
            status.reason,
        )
    elif status.kind == "resumed":
        logger.warning("cluster: delivery to and from other processes resumed")
    else:
        logger.info("cluster: connected to Redis")


def start_cluster(
    url: str,
    contexts: Sequence[Context],
    *,
    channel: str,
    on_status: Callable[[ClusterStatus], None],
) -> Cluster:
    """The Redis bridge of a server whose engines run ``contexts`` (see ``serve``'s
    ``cluster``); ``on_status``, a method of the server, runs on a bridge thread. The
    bridge holds it weakly: the server owns the bridge, and a server dropped without being
    closed still closes its bridge when it is collected."""
    if not isinstance(url, str):
        raise TypeError(f"cluster must be a redis:// URL (str), not {type(url).__name__}")
    method = weakref.WeakMethod(on_status)  # type: ignore[arg-type]

    def tell(status: ClusterStatus) -> None:
        bound = method()
        if bound is not None:
            bound(status)

    return Cluster(url, contexts, on_status=tell, channel=channel)


def policy_kwargs(
    subprotocols: Optional[Sequence[str]], origins: Optional[Sequence[Optional[str]]]
) -> dict[str, Any]:
    """The listener's rules for ``websockets``' ``subprotocols`` and ``origins``: a server
    with subprotocols refuses (400) a client that offers none of them; ``None`` among the
    origins lets requests without Origin in, which are refused (403) otherwise."""
    kwargs: dict[str, Any] = {}
    protocols = subprotocol_list(subprotocols)
    if protocols:
        kwargs.update(subprotocols=protocols, require_subprotocol=True)
    if origins is not None:
        if isinstance(origins, str):
            raise TypeError("origins must be a sequence of str or None, not a str")
        allowed = list(origins)
        kwargs.update(
            origins=[o for o in allowed if o is not None], require_origin=None not in allowed
        )
    return kwargs


def server_setup(
    *,
    ssl: Any,
    subprotocols: Optional[Sequence[str]],
    origins: Optional[Sequence[Optional[str]]],
    compression: Optional[str],
    max_size: Optional[int],
    open_timeout: Optional[float],
    close_timeout: Optional[float],
    ping_interval: Optional[float],
    ping_timeout: Optional[float],
    write_limit: Union[int, tuple[int, int], None],
    max_queue: QueueLimit,
    max_queue_bytes: QueueLimit,
    reuse_port: bool,
    peer_limits: Optional[Mapping[str, Any]],
    slow_subscriber: Optional[tuple[int, str]] = None,
) -> ServerSetup:
    """Checks the arguments of ``serve`` (raising before anything is opened)."""
    return ServerSetup(
        close_timeout=close_timeout,
        queue_limits=queue_limits(max_queue, max_queue_bytes),
        context_kwargs=context_kwargs(
            max_size=max_size,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            open_timeout=open_timeout,
            write_limit=write_limit,
        ),
        listen_kwargs=dict(
            handle_requests=True,
            **policy_kwargs(subprotocols, origins),
            compression=compression_name(compression),
            reuse_port=reuse_port,
            **peer_limit_kwargs(peer_limits),
            **server_tls_kwargs(ssl),
            slow_subscriber=slow_subscriber,
        ),
    )


class ServerTopics:
    """What both servers offer for topics: ``publish`` to the connections that subscribed
    (``ServerConnection.subscribe``) on every engine of the server, and through the
    server's cluster bridge to the other processes; the subscriber counts. The I/O layer
    lists its engines (``Runner``: a context and its connections) and says how calls on a
    context are serialized and how its engine is woken after a publish."""

    _cluster: Optional[Cluster] = None

    @property
    def cluster(self) -> Optional[Cluster]:
        """The Redis bridge to the other processes (``serve(..., cluster=URL)``), for its
        ``stats()`` and ``is_connected()``; None without one."""
        return self._cluster

    def publish(self, topic: Topic, message: Union[Data, bytearray, memoryview]) -> PublishReport:
        """Sends ``message`` (``str`` as text, bytes-like as binary) to every connection
        subscribed to ``topic``, on every engine (``workers``), framed once per engine and
        compressed at most once per engine, without waiting (no back-pressure: the
        ``slow_subscriber`` policy of ``serve`` deals with connections that do not keep
        up). Returns what happened here, summed over the engines; a topic nobody subscribed
        to (or a closed server) gives a report of zeros. With a ``cluster``, the message is
        also queued for the other processes (not counted in the report; see
        ``cluster.stats()``)."""
        report = PublishReport()
        for runner in self._runners():
            with self._serialized(runner):
                try:
                    here = runner.ctx.publish(topic, message)
                except InvalidState:  # the server is closed: nobody is subscribed
                    continue
                self._wake_after_publish(runner)
            report = report + here
        cluster = self._cluster
        if cluster is not None:
            try:
                cluster.publish(topic, message)
            except InvalidState:  # the server is closed, and its bridge with it
                pass
        return report

    def subscriber_count(self, topic: Topic) -> int:
        """How many connections are subscribed to ``topic`` (on this process)."""
        count = 0
        for runner in self._runners():
            with self._serialized(runner):
                try:
                    count += runner.ctx.subscriber_count(topic)
                except InvalidState:
                    pass
        return count

    def topic_count(self) -> int:
        """How many topics have at least one subscriber (on this process). With several
        workers this asks every connection for its topics."""
        runners = self._runners()
        if len(runners) == 1:
            with self._serialized(runners[0]):
                try:
                    return runners[0].ctx.topic_count()
                except InvalidState:
                    return 0
        topics: set[bytes] = set()
        for runner in runners:
            with self._serialized(runner):
                for conn in list(runner.handlers):
                    try:
                        topics.update(runner.ctx.topics(conn))
                    except InvalidState:
                        pass
        return len(topics)

    def _runners(self) -> Sequence[Runner]:
        raise NotImplementedError

    def _serialized(self, runner: Runner) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _wake_after_publish(self, runner: Runner) -> None:
        """Has ``runner``'s engine write what a publish queued (called serialized)."""
        raise NotImplementedError


class ServerModel(ConnectionModel[W]):
    """A connection accepted by a server: its upgrade request, and the answer to it."""

    def __init__(
        self,
        runner: Runner,
        event: RequestEvent,
        *,
        close_timeout: Optional[float],
        queue_limits: QueueLimits,
    ) -> None:
        # On to the I/O layer's connection class, then to ConnectionModel.
        super().__init__(runner, event.conn, close_timeout=close_timeout, queue_limits=queue_limits)
        #: The upgrade request as the engine read it.
        self.raw_request = event.request
        self.request = request_from_raw(event.request)
        # The subprotocol the listener's rules selected, accepted unless refused.
        self._selected = event.subprotocol
        self._handlers[self.id] = self

    # -- topics ----------------------------------------------------------------------------

    def subscribe(self, topic: Topic) -> bool:
        """Subscribes the connection to ``topic`` (any bytes; ``str`` as UTF-8): the server's
        ``publish(topic, ...)`` then reaches it. Returns False when it already was. The
        connection leaves all its topics when it closes. Raises ``ConnectionClosed`` once it
        is closed."""
        with self._serialized():
            try:
                return self._ctx.subscribe(self.id, topic)
            except InvalidState:
                pass
        raise self._closed_exception()

    def unsubscribe(self, topic: Topic) -> bool:
        """Unsubscribes the connection from ``topic``; returns False when it was not
        subscribed (a closed connection is subscribed to nothing)."""
        with self._serialized():
            try:
                return self._ctx.unsubscribe(self.id, topic)
            except InvalidState:
                return False

    @property
    def topics(self) -> list[bytes]:
        """The topics the connection is subscribed to, as bytes (empty once closed)."""
        with self._serialized():
            try:
                return self._ctx.topics(self.id)
            except InvalidState:
                return []

    def respond(self, status: int, text: str) -> Response:
        """A plain-text response for ``process_request`` to return."""
        return plain_response(status, text)

    def _reject(self, response: Response) -> None:
        """Refuses the upgrade with ``response``; the connection is then closed (1006)."""
        try:
            self._ctx.reject(
                self.id, response.status_code, header_list(response.headers), response.body
            )
        except InvalidState:
            pass  # the handshake timed out or the server shut down meanwhile
        self._forget()
        self.response = response
        self.close_code = 1006
        self._set_closed()
        self._wake_engine()

    def _accept(self, subprotocol: Optional[str]) -> bool:
        """Accepts the upgrade; returns whether the connection is open (it may have gone:
        the handshake timed out or the server shut down meanwhile)."""
        try:
            self._ctx.accept(self.id, subprotocol)
        except InvalidState:
            self._forget()
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
        self._wake_engine()
        return True

    def _decide(self, response: Optional[Response]) -> bool:
        """Answers the upgrade request once ``process_request`` (if any) returned
        ``response``: refused with it, or accepted with the selected subprotocol. Returns
        whether the connection is open."""
        if response is not None:
            self._reject(response)
            return False
        return self._accept(self._selected)

    def _handshake_failed(self) -> None:
        """``process_request`` raised: refused with 500 unless already answered."""
        if self._state is State.CONNECTING:
            self._reject(plain_response(500, "Failed to open a WebSocket connection.\n"))

    def _on_open(self) -> None:
        if self.response is not None and self.extensions is not None:
            self.response.headers["Sec-WebSocket-Extensions"] = self.extensions
