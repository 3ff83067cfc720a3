"""The blocking API: ``connect`` and ``serve``, a thread per server connection."""

from .._protocol import broadcast
from .client import ClientConnection, Reconnecting, connect
from .connection import Connection, State
from .server import Server, ServerConnection, serve

__all__ = [
    "connect",
    "serve",
    "broadcast",
    "ClientConnection",
    "Reconnecting",
    "ServerConnection",
    "Server",
    "Connection",
    "State",
]
