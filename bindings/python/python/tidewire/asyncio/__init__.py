"""The asyncio API: ``connect`` and ``serve``, driven by the running loop through
``loop.add_reader`` on each context's file descriptor (no threads)."""

from .._protocol import broadcast
from .client import ClientConnection, connect
from .connection import Connection
from .server import Server, ServerConnection, serve

__all__ = [
    "connect",
    "serve",
    "broadcast",
    "ClientConnection",
    "ServerConnection",
    "Server",
    "Connection",
]
