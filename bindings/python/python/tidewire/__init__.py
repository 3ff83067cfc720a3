"""tidewire: WebSockets (RFC 6455, permessage-deflate) over a Rust engine.

Blocking API (a thread per server connection)::

    from tidewire import connect, serve

    def echo(ws):
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 8765) as server:
        server.serve_forever()

asyncio API: ``tidewire.asyncio.connect`` and ``tidewire.asyncio.serve``.
One message to many connections, of either API: ``tidewire.broadcast(connections,
message)``, or topics (``connection.subscribe(topic)``, ``server.publish(topic, message)``),
on every core (``serve(..., workers=N)``) and across processes (``serve(...,
cluster="redis://...")``, ``tidewire.Cluster``).
Low level, for custom loops: ``tidewire.Context`` with ``listen``, ``connect`` and
``poll(timeout)`` returning event objects (``OpenEvent``, ``MessageEvent``, ``CloseEvent``,
``ErrorEvent``, ...).
"""

import warnings as _warnings
from typing import Any as _Any

from . import _tidewire
from . import exceptions as _exceptions
from ._options import ClientTLS, ServerTLS
from ._protocol import broadcast
from ._tidewire import (
    CloseEvent,
    CloseHeldEvent,
    Cluster,
    ClusterStats,
    ClusterStatus,
    Context,
    ErrorEvent,
    HttpRequestEvent,
    MessageEvent,
    OpenEvent,
    PingEvent,
    PongEvent,
    PublishReport,
    RawRequest,
    ReconnectingEvent,
    ReconnectPolicy,
    RequestEvent,
    Sender,
    SendFailedEvent,
    WakeEvent,
    WritableEvent,
    __version__,
)
from .datastructures import Headers, Request, Response
from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidState,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    ProxyTimeoutError,
    WebSocketException,
)
from .sync import ClientConnection, Server, ServerConnection, State, connect, serve

# The native module raises the package's exception classes: they are handed down once, at
# import, before anything can raise them (it never imports the package itself).
_tidewire._init(exceptions={name: getattr(_exceptions, name) for name in _exceptions.__all__})

__all__ = [
    "__version__",
    # blocking API
    "connect",
    "serve",
    "ClientConnection",
    "ServerConnection",
    "Server",
    "State",
    "ClientTLS",
    "ServerTLS",
    "ReconnectPolicy",
    "broadcast",
    "PublishReport",
    # several processes
    "Cluster",
    "ClusterStatus",
    "ClusterStats",
    # HTTP
    "Headers",
    "Request",
    "Response",
    # low level
    "Context",
    "Sender",
    "OpenEvent",
    "MessageEvent",
    "PingEvent",
    "PongEvent",
    "WritableEvent",
    "CloseHeldEvent",
    "CloseEvent",
    "ErrorEvent",
    "SendFailedEvent",
    "WakeEvent",
    "ReconnectingEvent",
    "RequestEvent",
    "HttpRequestEvent",
    "RawRequest",
    # exceptions
    "WebSocketException",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidHeader",
    "InvalidStatus",
    "NegotiationError",
    "ProxyError",
    "ProxyTimeoutError",
    "ProtocolError",
    "PayloadTooBig",
    "InvalidState",
    "ConcurrencyError",
]

# The event classes had no ``Event`` suffix in 0.1 (``tidewire.Error`` read as an exception
# class, and ``except tidewire.Error:`` raised TypeError). The old names stay for one more
# release, each access with a DeprecationWarning.
_DEPRECATED_EVENT_NAMES = {
    "Open": "OpenEvent",
    "Message": "MessageEvent",
    "Ping": "PingEvent",
    "Pong": "PongEvent",
    "Writable": "WritableEvent",
    "CloseHeld": "CloseHeldEvent",
    "Closed": "CloseEvent",
    "Error": "ErrorEvent",
    "SendFailed": "SendFailedEvent",
    "Wake": "WakeEvent",
    "HttpRequest": "HttpRequestEvent",
}


def __getattr__(name: str) -> _Any:
    new = _DEPRECATED_EVENT_NAMES.get(name)
    if new is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _warnings.warn(
        f"tidewire.{name} is deprecated and will be removed in the next release: "
        f"use tidewire.{new}",
        DeprecationWarning,
        stacklevel=2,
    )
    return globals()[new]
