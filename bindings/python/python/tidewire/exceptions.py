"""Exceptions raised by tidewire.

The tree follows the ``websockets`` package, so that code written for it catches the same
names::

    WebSocketException
    ├── ConnectionClosed (code, reason)
    │   ├── ConnectionClosedOK
    │   └── ConnectionClosedError
    ├── InvalidURI (uri)
    ├── InvalidHandshake
    │   ├── InvalidMessage
    │   ├── InvalidHeader (name, value)
    │   ├── InvalidStatus (status_code, response)
    │   ├── NegotiationError
    │   └── ProxyError (proxy, kind, status, field, authenticate), also an OSError
    │       └── ProxyTimeoutError, also a TimeoutError
    ├── ProtocolError
    ├── PayloadTooBig
    ├── InvalidState
    └── ConcurrencyError

Timeouts raise the built-in ``TimeoutError``; failures of the operating system (refused,
reset, unresolvable names, TLS) raise ``OSError`` subclasses (``ConnectionRefusedError``,
``socket.gaierror``, ``ssl.SSLError``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

from .datastructures import Headers, Response

__all__ = [
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

# Close codes that end a connection normally (RFC 6455 section 7.4.1); 1005 is what a close
# frame without a code reads as.
OK_CLOSE_CODES = frozenset({1000, 1001, 1005})

_CODE_NAMES = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received",
    1006: "connection closed abnormally",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failed",
}


class WebSocketException(Exception):
    """Base class of every exception defined by tidewire."""


class ConnectionClosed(WebSocketException):
    """The connection is closed: raised by every operation that needs an open connection.

    ``code`` is the close code (1005 when the peer's close frame had none, 1006 when the
    connection ended without a closing handshake) and ``reason`` the close reason.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        name = _CODE_NAMES.get(self.code, "registered" if self.code < 3000 else "private use")
        text = f"{self.code} ({name})"
        return f"{text} {self.reason}" if self.reason else text


class ConnectionClosedOK(ConnectionClosed):
    """The connection ended with a completed closing handshake and code 1000, 1001 or 1005."""


class ConnectionClosedError(ConnectionClosed):
    """The connection ended abnormally, or with an error code.

    When tidewire failed the connection because the peer broke the protocol, ``__cause__`` is
    a ``ProtocolError`` (or ``PayloadTooBig`` for code 1009).
    """


class InvalidURI(WebSocketException):
    """The URI is not a valid ``ws://`` or ``wss://`` URI."""

    def __init__(self, uri: str, msg: str = "") -> None:
        super().__init__(uri, msg)
        self.uri = uri
        self.msg = msg

    def __str__(self) -> str:
        return self.msg or f"{self.uri} isn't a valid URI"


class InvalidHandshake(WebSocketException):
    """The opening handshake failed."""


class InvalidMessage(InvalidHandshake):
    """The handshake's HTTP message was malformed, too large, or cut short."""


class InvalidHeader(InvalidHandshake):
    """A handshake header is missing or has a wrong value."""

    def __init__(self, name: str, value: Optional[str] = None) -> None:
        super().__init__(name, value)
        self.name = name
        self.value = value

    def __str__(self) -> str:
        if self.value is None:
            return f"missing {self.name} header"
        return (
            self.value if self.name in self.value else f"invalid {self.name} header: {self.value}"
        )


class InvalidStatus(InvalidHandshake):
    """The server answered the upgrade request with ``status_code`` instead of 101."""

    def __init__(
        self,
        status_code: int,
        reason_phrase: str = "",
        headers: Optional[Iterable[tuple[str, str]]] = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(status_code, reason_phrase)
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self._headers = list(headers or ())
        self._body = body

    @property
    def response(self) -> Response:
        """The server's response: status, reason, headers, and the part of the body that
        arrived with its header block."""
        return Response(self.status_code, self.reason_phrase, Headers(self._headers), self._body)

    def __str__(self) -> str:
        status = f"HTTP {self.status_code} {self.reason_phrase}".rstrip()
        return f"server rejected WebSocket connection: {status}"


class NegotiationError(InvalidHandshake):
    """Subprotocol or extension negotiation failed."""


class ProxyError(InvalidHandshake, OSError):
    """The connection failed on its way through a proxy (python-websockets also makes proxy
    failures an ``InvalidHandshake``; this one is an ``OSError`` as well, as a failed
    connection is). ``str()`` says what failed; the fields say it for programs:

    * ``proxy``: the proxy's URL without credentials;
    * ``kind``: ``"unreachable"`` (no TCP connection to the proxy), ``"resolve"`` (its name),
      ``"refused"`` (an HTTP status other than 2xx: ``status``, and for 407 the
      ``authenticate`` challenge), ``"auth"`` (SOCKS5 username/password rejected: ``status``
      is the RFC 1929 STATUS), ``"socks"`` (a SOCKS5 reply refusing the target: ``status``
      is the REP code, or one that breaks RFC 1928: ``field`` names the field),
      ``"malformed"`` (not the protocol expected), ``"tls"`` (TLS to an ``https://`` proxy
      failed), ``"closed"`` (it closed before answering), ``"io"``, ``"timeout"``;
    * ``status``, ``field``, ``authenticate``: ``None`` when they do not apply.
    """

    def __init__(
        self,
        message: str,
        *,
        proxy: Optional[str] = None,
        kind: str = "io",
        status: Optional[int] = None,
        field: Optional[str] = None,
        authenticate: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.proxy = proxy
        self.kind = kind
        self.status = status
        self.field = field
        self.authenticate = authenticate


class ProxyTimeoutError(ProxyError, TimeoutError):
    """The proxy (its name, the TCP connection to it, TLS to it or its answer) did not
    complete within the connect timeout (``open_timeout``)."""


class ProtocolError(WebSocketException):
    """A frame or message broke RFC 6455 (received, or refused when sending)."""


class PayloadTooBig(WebSocketException):
    """A message was larger than ``max_size``."""


class InvalidState(WebSocketException, AssertionError):
    """The operation does not fit the connection's state (or the context was freed)."""


class ConcurrencyError(WebSocketException, RuntimeError):
    """Two coroutines or threads called ``recv`` on one connection at the same time."""


def closed_exception(code: int, reason: str, clean: bool, remote: bool = False) -> ConnectionClosed:
    """The exception for a connection that ended with ``code``, with a cause when tidewire
    failed it because of the peer (``remote`` is False: the code is the one we sent)."""
    if clean and code in OK_CLOSE_CODES:
        return ConnectionClosedOK(code, reason)
    exc = ConnectionClosedError(code, reason)
    if remote:
        return exc
    if code == 1009:
        exc.__cause__ = PayloadTooBig(reason or "message too big")
    elif code in (1002, 1007):
        exc.__cause__ = ProtocolError(reason or _CODE_NAMES[code])
    return exc


def opening_failure(error: BaseException) -> BaseException:
    """What ``connect`` raises for the error that ended a connection before it opened. A
    server that resets the connection once it is established (one over its connection limit
    turns clients away so, as soon as it accepts them) refused the handshake as surely as
    one that closes it: both are ``InvalidMessage``, the ``OSError`` as its cause."""
    if isinstance(error, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        exc = InvalidMessage("peer reset the connection during the handshake")
        exc.__cause__ = error
        return exc
    return error
