"""The server side of the model both APIs share: what ``serve`` makes of its arguments, the
listener it opens, and how a connection's upgrade request is answered (accepted with its
101 response, or refused with the application's, and what the connection then knows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, TypeVar, Union

from ._options import (
    compression_name,
    context_kwargs,
    header_list,
    peer_limit_kwargs,
    select_subprotocol,
    server_tls_kwargs,
    subprotocol_list,
)
from ._protocol import ConnectionModel, Runner, State
from ._queue import QueueLimit, QueueLimits, queue_limits
from ._tidewire import Context, RawRequest
from .datastructures import Headers, Request, Response
from .exceptions import InvalidState

__all__ = ["ServerModel", "ServerSetup", "server_setup", "request_from_raw"]

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

    subprotocols: Optional[list[str]]
    origins: Optional[list[Optional[str]]]
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

    def check_request(self, raw: RawRequest) -> tuple[Optional[Response], Optional[str]]:
        """The server's policy for an upgrade request: a refusal, or the subprotocol."""
        if self.origins is not None and raw.origin not in self.origins:
            return plain_response(
                403, "Failed to open a WebSocket connection: invalid Origin header.\n"
            ), None
        subprotocol, error = select_subprotocol(raw.subprotocols, self.subprotocols)
        if error is not None:
            return plain_response(400, f"Failed to open a WebSocket connection: {error}.\n"), None
        return None, subprotocol


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
) -> ServerSetup:
    """Checks the arguments of ``serve`` (raising before anything is opened)."""
    return ServerSetup(
        subprotocols=subprotocol_list(subprotocols),
        origins=None if origins is None else list(origins),
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
            compression=compression_name(compression),
            reuse_port=reuse_port,
            **peer_limit_kwargs(peer_limits),
            **server_tls_kwargs(ssl),
        ),
    )


class ServerModel(ConnectionModel[W]):
    """A connection accepted by a server: its upgrade request, and the answer to it."""

    def __init__(
        self,
        runner: Runner,
        conn_id: int,
        raw: RawRequest,
        *,
        close_timeout: Optional[float],
        queue_limits: QueueLimits,
    ) -> None:
        # On to the I/O layer's connection class, then to ConnectionModel.
        super().__init__(runner, conn_id, close_timeout=close_timeout, queue_limits=queue_limits)
        #: The upgrade request as the engine read it.
        self.raw_request = raw
        self.request = request_from_raw(raw)

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

    def _decide(self, response: Optional[Response], setup: ServerSetup) -> bool:
        """Answers the upgrade request once ``process_request`` (if any) returned
        ``response``: refused with it, or by the server's policy, or accepted. Returns
        whether the connection is open."""
        subprotocol = None
        if response is None:
            response, subprotocol = setup.check_request(self.raw_request)
        if response is not None:
            self._reject(response)
            return False
        return self._accept(subprotocol)

    def _handshake_failed(self) -> None:
        """``process_request`` raised: refused with 500 unless already answered."""
        if self._state is State.CONNECTING:
            self._reject(plain_response(500, "Failed to open a WebSocket connection.\n"))

    def _on_open(self) -> None:
        if self.response is not None and self.extensions is not None:
            self.response.headers["Sec-WebSocket-Extensions"] = self.extensions
