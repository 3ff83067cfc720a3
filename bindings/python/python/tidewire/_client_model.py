"""The client side of the model both APIs share: what ``connect`` makes of its arguments,
the opening request and response it reports, and what it raises when the handshake fails."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional, TypeVar, Union
from urllib.parse import urlsplit

from ._options import (
    client_tls_kwargs,
    compression_name,
    context_kwargs,
    header_list,
    subprotocol_list,
)
from ._protocol import ConnectionModel
from ._queue import QueueLimit, QueueLimits, queue_limits
from ._tidewire import Context
from .datastructures import Headers, HeadersLike, Request, Response
from .exceptions import opening_failure

__all__ = ["ClientModel", "ClientSetup", "client_setup"]

#: The receive buffer of a client context: enough for a 64 KiB message per read cycle
#: without the 256 KiB a server context uses for many connections.
CLIENT_RECEIVE_BUFFER = 128 * 1024

#: How long ``connect`` waits past ``open_timeout`` for the runtime's own timeout error,
#: which says what did not answer (``ProxyTimeoutError`` for a proxy): the runtime's timers
#: run ``open_timeout`` from the start of the connect, so that error is due at the same time
#: as the wait's own end, and only thread or loop scheduling can put it behind.
ERROR_GRACE = 0.25

W = TypeVar("W")


def handshake_request(
    uri: str,
    headers: Sequence[tuple[str, str]],
    origin: Optional[str],
    subprotocols: Optional[Sequence[str]],
) -> Request:
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


@dataclass(frozen=True)
class ClientSetup:
    """The arguments of ``connect``, checked and translated for the context."""

    uri: str
    headers: list[tuple[str, str]]
    subprotocols: Optional[list[str]]
    origin: Optional[str]
    compression: Optional[str]
    tls: dict[str, Any]
    open_timeout: Optional[float]
    close_timeout: Optional[float]
    queue_limits: QueueLimits
    context_kwargs: dict[str, Any]
    proxy: Union[str, bool, None] = True

    def start(self) -> tuple[Context, int]:
        """A context of its own with the connection started on it: ``(context, id)``."""
        ctx = Context(**self.context_kwargs)
        try:
            conn_id = ctx.connect(
                self.uri,
                headers=self.headers,
                origin=self.origin,
                subprotocols=self.subprotocols,
                compression=self.compression,
                proxy=self.proxy,
                **self.tls,
            )
        except BaseException:
            ctx.free()
            raise
        return ctx, conn_id

    def request(self) -> Request:
        return handshake_request(self.uri, self.headers, self.origin, self.subprotocols)


def client_setup(
    uri: str,
    *,
    subprotocols: Optional[Sequence[str]],
    additional_headers: Optional[HeadersLike],
    origin: Optional[str],
    compression: Optional[str],
    max_size: Optional[int],
    open_timeout: Optional[float],
    close_timeout: Optional[float],
    ping_interval: Optional[float],
    ping_timeout: Optional[float],
    ssl: Any,
    write_limit: Union[int, tuple[int, int], None],
    max_queue: QueueLimit,
    max_queue_bytes: QueueLimit,
    proxy: Union[str, Literal[True], None] = True,
) -> ClientSetup:
    """Checks the arguments of ``connect`` (raising before anything is opened)."""
    if proxy is not True and proxy is not None and not isinstance(proxy, str):
        raise TypeError(f"proxy must be True, None or a proxy URL, not {type(proxy).__name__}")
    return ClientSetup(
        uri=uri,
        headers=header_list(additional_headers),
        subprotocols=subprotocol_list(subprotocols),
        origin=origin,
        compression=compression_name(compression),
        tls=client_tls_kwargs(ssl),
        open_timeout=open_timeout,
        close_timeout=close_timeout,
        queue_limits=queue_limits(max_queue, max_queue_bytes),
        context_kwargs=context_kwargs(
            max_size=max_size,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            open_timeout=open_timeout,
            write_limit=write_limit,
            receive_buffer_size=CLIENT_RECEIVE_BUFFER,
        ),
        proxy=proxy,
    )


class ClientModel(ConnectionModel[W]):
    """A client connection: it owns its context, which ends with it."""

    def _on_open(self) -> None:
        self.response = Response(101, "Switching Protocols", Headers(self._open_headers))

    def _opening_error(self, timed_out: bool) -> BaseException:
        """What ``connect`` raises when the connection did not open."""
        if timed_out:
            return TimeoutError("timed out during the opening handshake")
        if self._error is not None:
            return opening_failure(self._error)
        return self._closed_exception()
