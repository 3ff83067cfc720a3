# Stubs of the native module (src/*.rs); checked against the built module by mypy.stubtest.

from typing import Any, ClassVar, Iterable, Mapping, Optional, Sequence, Tuple, Union, final

__all__ = [
    "__version__",
    "_init",
    "CloseEvent",
    "CloseHeldEvent",
    "Context",
    "ErrorEvent",
    "HttpRequestEvent",
    "MessageEvent",
    "OpenEvent",
    "PingEvent",
    "PongEvent",
    "RawRequest",
    "RequestEvent",
    "SendFailedEvent",
    "Sender",
    "WakeEvent",
    "WritableEvent",
]

__version__: str

def _init(*, exceptions: Mapping[str, type[BaseException]]) -> None:
    """Hands down the package's exception classes (called once, by ``tidewire``)."""

_Data = Union[str, bytes, bytearray, memoryview]
_Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]]]

@final
class Context:
    """A WebSocket runtime: listeners and connections driven by `poll`.

    Defaults: max_message_size / max_frame_size 16 MiB, handshake_timeout and
    connect_timeout 10 s, close_timeout 5 s, no ping_interval / idle_timeout,
    high_water_mark 1 MiB, low_water_mark 256 KiB, max_buffered 16 MiB,
    max_connections 100000, receive_buffer_size 256 KiB. hold_close_replies (default False):
    the close frame answering the peer waits for `release_close_reply` (or close_timeout).
    """

    def __new__(
        cls,
        *,
        max_message_size: Optional[int] = None,
        max_frame_size: Optional[int] = None,
        handshake_timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        close_timeout: Optional[float] = None,
        ping_interval: Optional[float] = None,
        idle_timeout: Optional[float] = None,
        high_water_mark: Optional[int] = None,
        low_water_mark: Optional[int] = None,
        max_buffered: Optional[int] = None,
        max_connections: Optional[int] = None,
        receive_buffer_size: Optional[int] = None,
        hold_close_replies: bool = False,
    ) -> Context: ...
    def fileno(self) -> int: ...
    def next_timeout(self) -> Optional[float]: ...
    def poll(self, timeout: Optional[float] = None) -> list[Any]: ...
    def listen(
        self,
        host: str,
        port: int,
        *,
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
        subprotocols: Optional[Sequence[str]] = None,
        origins: Optional[Sequence[str]] = None,
        handle_requests: bool = False,
        handle_http: bool = False,
        compression: Optional[str] = None,
        reuse_port: bool = False,
        backlog: int = 1024,
        max_connections_per_address: Optional[int] = ...,
        max_handshakes_per_address: Optional[int] = ...,
        max_handshakes: Optional[int] = ...,
        connection_rate: Optional[Tuple[float, int]] = None,
    ) -> int: ...
    def local_addr(self, listener: int) -> Tuple[str, int]: ...
    def unlisten(self, listener: int) -> None: ...
    def connect(
        self,
        url: str,
        *,
        headers: Optional[_Headers] = None,
        origin: Optional[str] = None,
        subprotocols: Optional[Sequence[str]] = None,
        compression: Optional[str] = None,
        cafile: Optional[str] = None,
        cadata: Optional[Union[str, bytes]] = None,
        verify: bool = True,
        connect_timeout: Optional[float] = None,
        local_address: Optional[str] = None,
    ) -> int: ...
    def accept(
        self, conn: int, subprotocol: Optional[str] = None, headers: Optional[_Headers] = None
    ) -> None: ...
    def reject(
        self,
        conn: int,
        status: int,
        headers: Optional[_Headers] = None,
        body: Optional[_Data] = None,
    ) -> None: ...
    def respond(
        self,
        conn: int,
        status: int,
        headers: Optional[_Headers] = None,
        body: Optional[_Data] = None,
    ) -> None: ...
    def send(self, conn: int, data: _Data) -> bool: ...
    def begin_message(self, conn: int, text: bool) -> None: ...
    def send_fragment(self, conn: int, data: _Data, fin: bool = False) -> bool: ...
    def ping(self, conn: int, data: Optional[_Data] = None) -> bool: ...
    def close(self, conn: int, code: int = 1000, reason: str = "") -> None: ...
    def release_close_reply(self, conn: int) -> bool: ...
    def flush(self, conn: int) -> bool: ...
    def pause_reading(self, conn: int) -> None: ...
    def resume_reading(self, conn: int) -> None: ...
    def is_reading_paused(self, conn: int) -> bool: ...
    def buffered_amount(self, conn: int) -> int: ...
    def peer_addr(self, conn: int) -> Tuple[str, int]: ...
    def is_open(self, conn: int) -> bool: ...
    def connection_count(self) -> int: ...
    def sender(self) -> Sender: ...
    def shutdown(self, grace: float) -> None: ...
    def free(self) -> None: ...
    @property
    def freed(self) -> bool: ...

@final
class Sender:
    """Sends to and closes connections of one Context from any thread."""

    def send(self, conn: int, data: _Data) -> None: ...
    def ping(self, conn: int, data: Optional[bytes] = None) -> None: ...
    def close(self, conn: int, code: int = 1000, reason: str = "") -> None: ...
    def wake(self) -> None: ...

@final
class RawRequest:
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> Optional[str]: ...
    @property
    def headers(self) -> list[Tuple[str, str]]: ...
    @property
    def host(self) -> Optional[str]: ...
    @property
    def origin(self) -> Optional[str]: ...
    @property
    def subprotocols(self) -> list[str]: ...
    @property
    def extensions(self) -> Optional[str]: ...

@final
class RequestEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def listener(self) -> int: ...
    @property
    def request(self) -> RawRequest: ...

@final
class HttpRequestEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def listener(self) -> int: ...
    @property
    def request(self) -> RawRequest: ...

@final
class OpenEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def listener(self) -> Optional[int]: ...
    @property
    def subprotocol(self) -> Optional[str]: ...
    @property
    def extensions(self) -> Optional[str]: ...
    @property
    def peer_addr(self) -> Tuple[str, int]: ...
    @property
    def path(self) -> str: ...
    @property
    def headers(self) -> list[Tuple[str, str]]: ...

@final
class MessageEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def data(self) -> Union[str, bytes]: ...

@final
class PingEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def data(self) -> bytes: ...

@final
class PongEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def data(self) -> bytes: ...

@final
class WritableEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...

@final
class CloseEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def code(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def clean(self) -> bool: ...
    @property
    def remote(self) -> bool: ...

@final
class ErrorEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> Optional[int]: ...
    @property
    def listener(self) -> Optional[int]: ...
    @property
    def error(self) -> BaseException: ...

@final
class SendFailedEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def error(self) -> BaseException: ...

@final
class WakeEvent:
    __match_args__: ClassVar[Any]

@final
class CloseHeldEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
