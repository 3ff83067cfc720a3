"""The asyncio API: ``connect`` and ``serve``, driven by the running loop through
``loop.add_reader`` on each context's file descriptor (no threads)."""

from .client import ClientConnection, connect
from .connection import Connection
from .server import Server, ServerConnection, serve

__all__ = ["connect", "serve", "ClientConnection", "ServerConnection", "Server", "Connection"]
