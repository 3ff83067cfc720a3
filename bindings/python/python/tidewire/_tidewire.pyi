# Stubs of the native module (src/*.rs); checked against the built module by mypy.stubtest.

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, final

__all__ = [
    "__version__",
    "_init",
    "Backoff",
    "CloseEvent",
    "CloseHeldEvent",
    "Cluster",
    "ClusterStats",
    "ClusterStatus",
    "Context",
    "ErrorEvent",
    "HttpRequestEvent",
    "MessageEvent",
    "OpenEvent",
    "PingEvent",
    "PongEvent",
    "PublishReport",
    "RawRequest",
    "ReconnectPolicy",
    "ReconnectingEvent",
    "RequestEvent",
    "SendFailedEvent",
    "Sender",
    "WakeEvent",
    "WritableEvent",
]

__version__: str

def _init(*, exceptions: Mapping[str, type[BaseException]]) -> None:
    """Hands down the package's exception classes (called once, by ``tidewire``)."""

_Data = str | bytes | bytearray | memoryview
_Topic = str | bytes | bytearray | memoryview
_Headers = Mapping[str, str] | Iterable[tuple[str, str]]

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
        max_message_size: int | None = None,
        max_frame_size: int | None = None,
        handshake_timeout: float | None = None,
        connect_timeout: float | None = None,
        close_timeout: float | None = None,
        ping_interval: float | None = None,
        idle_timeout: float | None = None,
        high_water_mark: int | None = None,
        low_water_mark: int | None = None,
        max_buffered: int | None = None,
        max_connections: int | None = None,
        receive_buffer_size: int | None = None,
        hold_close_replies: bool = False,
    ) -> Context: ...
    def fileno(self) -> int: ...
    def next_timeout(self) -> float | None: ...
    def poll(self, timeout: float | None = None) -> list[Any]: ...
    def listen(
        self,
        host: str,
        port: int,
        *,
        certfile: str | None = None,
        keyfile: str | None = None,
        subprotocols: Sequence[str] | None = None,
        require_subprotocol: bool = False,
        origins: Sequence[str] | None = None,
        require_origin: bool = False,
        handle_requests: bool = False,
        handle_http: bool = False,
        compression: str | None = None,
        reuse_port: bool = False,
        backlog: int = 1024,
        max_connections_per_address: int | None = ...,
        max_handshakes_per_address: int | None = ...,
        max_handshakes: int | None = ...,
        connection_rate: tuple[float, int] | None = None,
        slow_subscriber: tuple[int, str] | None = None,
    ) -> int: ...
    def local_addr(self, listener: int) -> tuple[str, int]: ...
    def unlisten(self, listener: int) -> None: ...
    def connect(
        self,
        url: str,
        *,
        headers: _Headers | None = None,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        compression: str | None = None,
        cafile: str | None = None,
        cadata: str | bytes | None = None,
        verify: bool = True,
        connect_timeout: float | None = None,
        local_address: str | None = None,
        proxy: str | bool | None = True,
        reconnect: ReconnectPolicy | None = None,
    ) -> int: ...
    def accept(
        self, conn: int, subprotocol: str | None = None, headers: _Headers | None = None
    ) -> None: ...
    def reject(
        self,
        conn: int,
        status: int,
        headers: _Headers | None = None,
        body: _Data | None = None,
    ) -> None: ...
    def respond(
        self,
        conn: int,
        status: int,
        headers: _Headers | None = None,
        body: _Data | None = None,
    ) -> None: ...
    def send(self, conn: int, data: _Data) -> bool: ...
    def subscribe(self, conn: int, topic: _Topic) -> bool: ...
    def unsubscribe(self, conn: int, topic: _Topic) -> bool: ...
    def topics(self, conn: int) -> list[bytes]: ...
    def subscriber_count(self, topic: _Topic) -> int: ...
    def topic_count(self) -> int: ...
    def publish(self, topic: _Topic, data: _Data) -> PublishReport: ...
    def broadcast(self, conns: Iterable[int], data: _Data) -> PublishReport: ...
    def begin_message(self, conn: int, text: bool) -> None: ...
    def send_fragment(self, conn: int, data: _Data, fin: bool = False) -> bool: ...
    def ping(self, conn: int, data: _Data | None = None) -> bool: ...
    def close(self, conn: int, code: int = 1000, reason: str = "") -> None: ...
    def release_close_reply(self, conn: int) -> bool: ...
    def flush(self, conn: int) -> bool: ...
    def pause_reading(self, conn: int) -> None: ...
    def resume_reading(self, conn: int) -> None: ...
    def is_reading_paused(self, conn: int) -> bool: ...
    def buffered_amount(self, conn: int) -> int: ...
    def latency(self, conn: int) -> float: ...
    def peer_addr(self, conn: int) -> tuple[str, int]: ...
    def is_open(self, conn: int) -> bool: ...
    def stop_reconnecting(self, conn: int) -> None: ...
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
    def publish(self, topic: _Topic, data: _Data) -> None: ...
    def ping(self, conn: int, data: bytes | None = None) -> None: ...
    def close(self, conn: int, code: int = 1000, reason: str = "") -> None: ...
    def wake(self) -> None: ...

@final
class PublishReport:
    """What one publish or broadcast did (reports add up with ``+``)."""

    def __new__(
        cls,
        *,
        delivered: int = 0,
        skipped_slow: int = 0,
        closed_slow: int = 0,
        not_open: int = 0,
        compressions: int = 0,
    ) -> PublishReport: ...
    @property
    def delivered(self) -> int: ...
    @property
    def skipped_slow(self) -> int: ...
    @property
    def closed_slow(self) -> int: ...
    @property
    def not_open(self) -> int: ...
    @property
    def compressions(self) -> int: ...
    def __add__(self, value: PublishReport, /) -> PublishReport: ...
    def __radd__(self, value: PublishReport, /) -> PublishReport: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Cluster:
    """This process's node of a cluster of servers joined through Redis pub/sub: publishes
    from other nodes reach the target contexts' subscribers (at each context's next poll),
    and ``publish`` sends this node's to the others. ``on_status`` runs on a bridge thread,
    with the GIL taken for the call."""

    def __new__(
        cls,
        url: str,
        targets: Iterable[Context | Sender],
        *,
        on_status: Callable[[ClusterStatus], object] | None = None,
        channel: str = "tidewire",
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        connect_timeout: float = 2.0,
        queue_limit: int = 10000,
    ) -> Cluster: ...
    @property
    def node_id(self) -> int: ...
    def publish(self, topic: _Topic, data: _Data) -> bool: ...
    def is_connected(self) -> bool: ...
    def stats(self) -> ClusterStats: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Cluster: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
        /,
    ) -> None: ...

@final
class ClusterStatus:
    """What a cluster's ``on_status`` hears: ``kind`` is ``"connected"``, ``"interrupted"``
    (with a ``reason``) or ``"resumed"``."""

    @property
    def kind(self) -> str: ...
    @property
    def reason(self) -> str: ...
    def __eq__(self, value: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class ClusterStats:
    """Counters of a cluster: ``sent``, ``received``, ``dropped``, ``malformed``."""

    @property
    def sent(self) -> int: ...
    @property
    def received(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def malformed(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class RawRequest:
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> str | None: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def host(self) -> str | None: ...
    @property
    def origin(self) -> str | None: ...
    @property
    def subprotocols(self) -> list[str]: ...
    @property
    def extensions(self) -> str | None: ...

@final
class RequestEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def listener(self) -> int: ...
    @property
    def request(self) -> RawRequest: ...
    @property
    def subprotocol(self) -> str | None: ...

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
    def listener(self) -> int | None: ...
    @property
    def subprotocol(self) -> str | None: ...
    @property
    def extensions(self) -> str | None: ...
    @property
    def peer_addr(self) -> tuple[str, int]: ...
    @property
    def path(self) -> str: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...

@final
class MessageEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def data(self) -> str | bytes: ...

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
    def conn(self) -> int | None: ...
    @property
    def listener(self) -> int | None: ...
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
class ReconnectingEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
    @property
    def attempt(self) -> int: ...
    @property
    def delay(self) -> float: ...
    @property
    def error(self) -> BaseException | None: ...
    @property
    def close_code(self) -> int: ...

@final
class ReconnectPolicy:
    """How to reconnect: exponential backoff with full jitter, checked by the runtime."""

    def __new__(
        cls,
        *,
        initial_delay: float = 1.0,
        max_delay: float = 30.0,
        max_attempts: int | None = None,
        reset_after: float = 10.0,
    ) -> ReconnectPolicy: ...
    @property
    def initial_delay(self) -> float: ...
    @property
    def max_delay(self) -> float: ...
    @property
    def max_attempts(self) -> int | None: ...
    @property
    def reset_after(self) -> float: ...
    def backoff(self, seed: int | None = None) -> Backoff: ...

@final
class Backoff:
    """One reconnecting loop's schedule (the runtime's)."""

    @property
    def attempt(self) -> int: ...
    def opened(self) -> None: ...
    def next_delay(self, exc: BaseException | None = None) -> float | None: ...

@final
class CloseHeldEvent:
    __match_args__: ClassVar[Any]
    @property
    def conn(self) -> int: ...
