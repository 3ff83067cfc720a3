"""Options shared by the blocking and asyncio APIs: TLS settings and the translation of
``websockets``-style keyword arguments into ``Context`` settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

from .datastructures import Headers, HeadersLike

__all__ = ["ServerTLS", "ClientTLS", "DEFAULT_MAX_SIZE"]

#: Largest message accepted by default: 1 MiB, like ``websockets``.
DEFAULT_MAX_SIZE = 2**20
#: What ``max_size=None`` means: no limit worth the name.
UNLIMITED = 1 << 62


@dataclass(frozen=True)
class ServerTLS:
    """Serve ``wss://`` with this certificate chain and private key (PEM files; the key may
    sit in ``certfile`` too)."""

    certfile: str
    keyfile: Optional[str] = None


@dataclass(frozen=True)
class ClientTLS:
    """How a ``wss://`` client verifies the server: against the system's roots by default,
    against ``cafile`` / ``cadata`` (PEM) instead when given. ``verify=False`` accepts any
    certificate: encrypted but not authenticated, for tests only."""

    cafile: Optional[str] = None
    cadata: Optional[Union[str, bytes]] = None
    verify: bool = True


def context_kwargs(
    *,
    max_size: Optional[int],
    ping_interval: Optional[float],
    ping_timeout: Optional[float],
    close_timeout: Optional[float],
    open_timeout: Optional[float],
    write_limit: Union[int, tuple[int, int], None] = None,
    receive_buffer_size: Optional[int] = None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        # Messages are handed to handler threads / tasks: the close frame that answers the
        # peer waits until they have consumed what came before it (see `recv`).
        "hold_close_replies": True,
        "max_message_size": UNLIMITED if max_size is None else max_size,
        "ping_interval": ping_interval,
        # Keepalive as in websockets: a ping every `ping_interval`, and the connection is
        # dropped when nothing (no pong either) came back within `ping_timeout` after it.
        "idle_timeout": (
            ping_interval + ping_timeout
            if ping_interval is not None and ping_timeout is not None
            else None
        ),
    }
    if close_timeout is not None:
        kwargs["close_timeout"] = close_timeout
    if open_timeout is not None:
        kwargs["handshake_timeout"] = open_timeout
        kwargs["connect_timeout"] = open_timeout
    if write_limit is not None:
        if isinstance(write_limit, tuple):
            high, low = write_limit
        else:
            high, low = write_limit, write_limit // 4
        kwargs["high_water_mark"] = high
        kwargs["low_water_mark"] = low
    if receive_buffer_size is not None:
        kwargs["receive_buffer_size"] = receive_buffer_size
    return kwargs


def compression_name(compression: Optional[str]) -> Optional[str]:
    if compression not in (None, "deflate"):
        raise ValueError(f"unsupported compression: {compression!r}")
    return compression


def client_tls_kwargs(ssl: Any) -> dict[str, Any]:
    if ssl is None or ssl is True:
        return {}
    if ssl is False:
        return {"verify": False}
    if isinstance(ssl, ClientTLS):
        return {"cafile": ssl.cafile, "cadata": ssl.cadata, "verify": ssl.verify}
    raise TypeError(
        "ssl must be None, True, False or tidewire.ClientTLS (tidewire uses rustls, not the "
        f"ssl module), not {type(ssl).__name__}"
    )


#: The per-address limits a server takes in ``peer_limits`` (those of ``Context.listen``).
PEER_LIMITS = (
    "max_connections_per_address",
    "max_handshakes_per_address",
    "max_handshakes",
    "connection_rate",
)


def peer_limit_kwargs(peer_limits: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Checks the names of ``serve(..., peer_limits={...})``; the runtime checks the values
    and keeps its defaults for the limits not given."""
    given = dict(peer_limits or {})
    unknown = sorted(set(given) - set(PEER_LIMITS))
    if unknown:
        raise ValueError(f"unknown peer limits {unknown}; known: {list(PEER_LIMITS)}")
    return given


def server_tls_kwargs(ssl: Any) -> dict[str, Any]:
    if ssl is None:
        return {}
    if isinstance(ssl, ServerTLS):
        return {"certfile": ssl.certfile, "keyfile": ssl.keyfile}
    if isinstance(ssl, tuple) and len(ssl) == 2:
        return {"certfile": ssl[0], "keyfile": ssl[1]}
    raise TypeError(
        "ssl must be None, tidewire.ServerTLS or a (certfile, keyfile) tuple (tidewire uses "
        f"rustls, not the ssl module), not {type(ssl).__name__}"
    )


def header_list(headers: Optional[HeadersLike]) -> list[tuple[str, str]]:
    if headers is None:
        return []
    return Headers(headers).raw_items()


def subprotocol_list(subprotocols: Optional[Sequence[str]]) -> Optional[list[str]]:
    if subprotocols is None:
        return None
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols must be a sequence of str, not a str")
    return list(subprotocols)
