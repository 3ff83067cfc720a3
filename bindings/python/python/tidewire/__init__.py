"""tidewire: WebSockets (RFC 6455, permessage-deflate) over a Rust engine.

Blocking API (a thread per server connection)::

    from tidewire import connect, serve

    def echo(ws):
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 8765) as server:
        server.serve_forever()

asyncio API: ``tidewire.asyncio.connect`` and ``tidewire.asyncio.serve``.
Low level, for custom loops: ``tidewire.Context`` with ``listen``, ``connect`` and
``poll(timeout)`` returning event objects.
"""

from . import _tidewire, exceptions as _exceptions

# The native module raises the package's exception classes: hand them down once, before
# anything can raise them (it never imports the package itself).
_tidewire._init(exceptions={name: getattr(_exceptions, name) for name in _exceptions.__all__})

from ._options import ClientTLS, ServerTLS
from ._tidewire import (
    Closed,
    Context,
    Error,
    HttpRequest,
    Message,
    Open,
    Ping,
    Pong,
    RawRequest,
    Request as RequestEvent,
    Sender,
    SendFailed,
    Wake,
    Writable,
    CloseHeld,
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
    WebSocketException,
)
from .sync import ClientConnection, Server, ServerConnection, State, connect, serve

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
    # HTTP
    "Headers",
    "Request",
    "Response",
    # low level
    "Context",
    "Sender",
    "Open",
    "Message",
    "Ping",
    "Pong",
    "Writable",
    "CloseHeld",
    "Closed",
    "Error",
    "SendFailed",
    "Wake",
    "RequestEvent",
    "HttpRequest",
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
    "ProtocolError",
    "PayloadTooBig",
    "InvalidState",
    "ConcurrencyError",
]
