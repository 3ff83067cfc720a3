"""The low-level Context: listen, connect, poll(timeout) returning events, fileno,
next_timeout, Sender, free. Everything on one thread, as a game loop would."""

import os
import select
import signal
import threading
import time

import pytest

import tidewire
import tidewire.asyncio as tw
from tidewire import (
    CloseEvent,
    Context,
    ErrorEvent,
    HttpRequestEvent,
    MessageEvent,
    OpenEvent,
    PongEvent,
    ReconnectingEvent,
    ReconnectPolicy,
    RequestEvent,
    SendFailedEvent,
    WakeEvent,
)


def pump(ctxs, until, timeout=5.0):
    """Polls every context until ``until(events)`` is true for the events gathered so far."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ctx in ctxs:
            seen.extend(ctx.poll(0.01))
        if until(seen):
            return seen
    raise AssertionError(f"condition not reached; events: {seen}")


def of(kind, events):
    return [e for e in events if type(e) is kind]


@pytest.fixture
def pair():
    """A server context and a client context with one open connection between them."""
    server, client = Context(), Context()
    listener = server.listen("127.0.0.1", 0)
    port = server.local_addr(listener)[1]
    conn = client.connect(f"ws://127.0.0.1:{port}/game?x=1")
    events = pump([server, client], lambda ev: len(of(OpenEvent, ev)) == 2)
    server_conn = next(e.conn for e in of(OpenEvent, events) if e.listener is not None)
    yield server, client, server_conn, conn
    server.free()
    client.free()


def test_poll_returns_open_events_for_both_roles(pair):
    server, client, server_conn, conn = pair
    assert server.is_open(server_conn) and client.is_open(conn)
    assert server.peer_addr(server_conn)[0] == "127.0.0.1"
    assert server.connection_count() == 1


def test_text_and_binary_messages_keep_their_type(pair):
    server, client, server_conn, conn = pair
    assert client.send(conn, "héllo") is False
    client.send(conn, b"\x00\xff")
    client.send(conn, bytearray(b"ba"))
    client.send(conn, memoryview(b"mv"))
    events = pump([client, server], lambda ev: len(of(MessageEvent, ev)) == 4)
    assert [m.data for m in of(MessageEvent, events)] == ["héllo", b"\x00\xff", b"ba", b"mv"]
    assert all(m.conn == server_conn for m in of(MessageEvent, events))


def test_flush_writes_without_waiting_for_poll(pair):
    server, client, server_conn, conn = pair
    client.send(conn, b"now")
    assert client.flush(conn) is True  # written; the client is not polled again
    events = pump([server], lambda ev: len(of(MessageEvent, ev)) == 1)
    assert of(MessageEvent, events)[0].data == b"now"
    with pytest.raises(tidewire.InvalidState):
        client.flush(12345)


def test_send_rejects_other_types(pair):
    _, client, _, conn = pair
    with pytest.raises(TypeError):
        client.send(conn, 42)


def test_fragmented_message_arrives_whole(pair):
    server, client, _, conn = pair
    client.begin_message(conn, True)
    client.send_fragment(conn, b"frag")
    client.send_fragment(conn, b"ments", fin=True)
    events = pump([client, server], lambda ev: of(MessageEvent, ev))
    assert of(MessageEvent, events)[0].data == "fragments"


def test_ping_is_answered_with_pong(pair):
    server, client, _, conn = pair
    client.ping(conn, b"hi")
    events = pump([client, server], lambda ev: of(PongEvent, ev))
    assert of(PongEvent, events)[0].data == b"hi"


def test_latency_is_zero_until_a_pong_measures_it(pair):
    server, client, _, conn = pair
    assert client.latency(conn) == 0.0
    client.ping(conn, b"rtt")
    pump([client, server], lambda ev: of(PongEvent, ev))
    assert 0 < client.latency(conn) < 1


def test_close_ends_both_sides_with_closed_events(pair):
    server, client, server_conn, conn = pair
    client.close(conn, 4000, "bye")
    events = pump([client, server], lambda ev: len(of(CloseEvent, ev)) == 2)
    server_side = next(e for e in of(CloseEvent, events) if e.conn == server_conn)
    assert (server_side.code, server_side.reason, server_side.clean) == (4000, "bye", True)


def test_stale_id_raises_invalid_state(pair):
    server, client, server_conn, conn = pair
    client.close(conn)
    pump([client, server], lambda ev: len(of(CloseEvent, ev)) == 2)
    with pytest.raises(tidewire.InvalidState):
        client.send(conn, "late")


def test_invalid_close_code_raises_protocol_error(pair):
    _, client, _, conn = pair
    with pytest.raises(tidewire.ProtocolError):
        client.close(conn, 1005)


def test_request_events_let_the_application_accept(pair):
    server = Context()
    listener = server.listen("127.0.0.1", 0, handle_requests=True, subprotocols=["chat"])
    client = Context()
    conn = client.connect(
        f"ws://127.0.0.1:{server.local_addr(listener)[1]}/room?id=3",
        subprotocols=["chat", "other"],
        headers={"X-Token": "abc"},
        origin="https://example.com",
    )
    events = pump([server, client], lambda ev: of(RequestEvent, ev))
    request = of(RequestEvent, events)[0].request
    assert (request.method, request.path, request.query) == ("GET", "/room", "id=3")
    assert request.subprotocols == ["chat", "other"]
    assert request.origin == "https://example.com"
    assert ("X-Token", "abc") in request.headers
    server.accept(of(RequestEvent, events)[0].conn, "other", [("X-Extra", "1")])
    events = pump([server, client], lambda ev: len(of(OpenEvent, ev)) == 2)
    assert next(e for e in of(OpenEvent, events) if e.conn == conn).subprotocol == "other"
    server.free()
    client.free()


def test_rejected_request_is_an_error_event_with_invalid_status():
    server, client = Context(), Context()
    listener = server.listen("127.0.0.1", 0, handle_requests=True)
    conn = client.connect(f"ws://127.0.0.1:{server.local_addr(listener)[1]}/")
    events = pump([server, client], lambda ev: of(RequestEvent, ev))
    server.reject(of(RequestEvent, events)[0].conn, 401, {"WWW-Authenticate": "Basic"}, b"no")
    events = pump([server, client], lambda ev: of(ErrorEvent, ev))
    error = of(ErrorEvent, events)[0]
    assert error.conn == conn
    assert isinstance(error.error, tidewire.InvalidStatus)
    assert error.error.status_code == 401
    server.free()
    client.free()


def test_plain_http_requests_can_be_answered():
    server = Context()
    listener = server.listen("127.0.0.1", 0, handle_http=True)
    import socket

    with socket.create_connection(server.local_addr(listener)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        events = pump([server], lambda ev: of(HttpRequestEvent, ev))
        server.respond(
            of(HttpRequestEvent, events)[0].conn, 200, [("Content-Type", "text/plain")], "ok"
        )
        deadline = time.monotonic() + 5
        reply = b""
        while b"ok" not in reply and time.monotonic() < deadline:
            server.poll(0.01)
            sock.settimeout(0.05)
            try:
                reply += sock.recv(4096)
            except socket.timeout:
                pass
    assert reply.startswith(b"HTTP/1.1 200")
    server.free()


def test_connect_errors_are_terminal_error_events():
    ctx = Context()
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    conn = ctx.connect(f"ws://127.0.0.1:{port}/")
    events = pump([ctx], lambda ev: of(ErrorEvent, ev))
    assert of(ErrorEvent, events)[0].conn == conn
    assert isinstance(of(ErrorEvent, events)[0].error, ConnectionRefusedError)
    ctx.free()


def test_reconnect_keeps_the_id_and_reports_each_attempt():
    ctx = Context()
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # refused every time
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_attempts=2)
    conn = ctx.connect(f"ws://127.0.0.1:{port}/", reconnect=policy)
    events = pump([ctx], lambda ev: of(ErrorEvent, ev))
    retries = of(ReconnectingEvent, events)
    assert [e.attempt for e in retries] == [1, 2]
    assert all(e.conn == conn and 0 <= e.delay <= 0.02 for e in retries)
    assert all(isinstance(e.error, ConnectionRefusedError) and e.close_code == 0 for e in retries)
    assert isinstance(of(ErrorEvent, events)[0].error, ConnectionRefusedError)
    assert ctx.connection_count() == 0

    # Stopped while it waits: a final ErrorEvent, nothing more.
    conn = ctx.connect(f"ws://127.0.0.1:{port}/", reconnect=ReconnectPolicy(initial_delay=5))
    pump([ctx], lambda ev: of(ReconnectingEvent, ev))
    ctx.stop_reconnecting(conn)
    events = pump([ctx], lambda ev: of(ErrorEvent, ev), timeout=1)
    assert isinstance(of(ErrorEvent, events)[0].error, tidewire.InvalidState)  # aborted
    assert ctx.connection_count() == 0
    ctx.free()


def test_invalid_uri_is_raised_by_connect():
    ctx = Context()
    with pytest.raises(tidewire.InvalidURI):
        ctx.connect("http://127.0.0.1/")
    with pytest.raises(ValueError):
        ctx.connect("ws://127.0.0.1/", headers=[("Bad Name", "x")])
    ctx.free()


# A multi-byte character across byte 6 (where "wss://" ends), at other places near the
# start, and in a URL that is valid up to its scheme.
MULTIBYTE_URLS = [
    "wsséé://127.0.0.1:1/",
    "wssé://127.0.0.1:1/",
    "wss:/é/127.0.0.1:1/",
    "é",
    "ééé",
    "wss://é:1/",
    "wß://127.0.0.1:1/",
]


@pytest.mark.parametrize(
    "tls",
    [{}, {"verify": False}, {"cafile": "/nonexistent"}],
    ids=["system-roots", "no-verify", "cafile"],
)
@pytest.mark.parametrize("url", MULTIBYTE_URLS)
def test_multibyte_urls_raise_invalid_uri_whatever_the_tls_options(url, tls):
    ctx = Context()
    try:
        with pytest.raises(tidewire.InvalidURI):
            ctx.connect(url, **tls)
    finally:
        ctx.free()


def test_fileno_becomes_readable_when_poll_has_work(pair):
    server, client, server_conn, conn = pair
    client.send(conn, "wake up")
    client.poll(0)  # flush
    readable, _, _ = select.select([server.fileno()], [], [], 5)
    assert readable == [server.fileno()]
    assert of(MessageEvent, pump([server], lambda ev: of(MessageEvent, ev)))[0].data == "wake up"


def test_next_timeout_follows_the_engine_timers():
    ctx = Context(close_timeout=3.0)
    assert ctx.next_timeout() is None
    ctx.free()
    ctx = Context(ping_interval=0.5)
    listener = ctx.listen("127.0.0.1", 0)
    ctx.connect(f"ws://127.0.0.1:{ctx.local_addr(listener)[1]}/")
    pump([ctx], lambda ev: len(of(OpenEvent, ev)) == 2)
    timeout = ctx.next_timeout()
    assert timeout is not None and 0 <= timeout <= 10
    ctx.free()


def test_sender_sends_from_another_thread(pair):
    server, client, server_conn, conn = pair
    sender = client.sender()
    thread = threading.Thread(target=lambda: (sender.send(conn, "from thread"), sender.wake()))
    thread.start()
    events = pump([client, server], lambda ev: of(MessageEvent, ev))
    thread.join()
    assert of(MessageEvent, events)[0].data == "from thread"


def test_sender_failure_is_a_send_failed_event(pair):
    _, client, _, _ = pair
    client.sender().send(0x7FFF_FFFF_0000_0001, "nobody")
    events = pump([client], lambda ev: of(SendFailedEvent, ev))
    assert isinstance(of(SendFailedEvent, events)[0].error, tidewire.InvalidState)


def test_wake_interrupts_a_blocking_poll():
    ctx = Context()
    sender = ctx.sender()
    threading.Timer(0.1, sender.wake).start()
    start = time.monotonic()
    events = ctx.poll(5)
    assert time.monotonic() - start < 4
    assert any(type(e) is WakeEvent for e in events)
    ctx.free()


def test_keyboard_interrupt_ends_a_blocking_poll(sigint_raises):
    ctx = Context()
    threading.Timer(0.1, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        ctx.poll(None)
    ctx.free()


def test_freed_context_raises_invalid_state():
    ctx = Context()
    ctx.free()
    ctx.free()
    assert ctx.freed
    for call in (lambda: ctx.poll(0), ctx.fileno, lambda: ctx.listen("127.0.0.1", 0)):
        with pytest.raises(tidewire.InvalidState):
            call()


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError):
        Context(close_timeout=-1)
    with pytest.raises(ValueError):
        Context(high_water_mark=10, low_water_mark=20)
    ctx = Context()
    with pytest.raises(ValueError):
        ctx.listen("127.0.0.1", 0, compression="brotli")
    ctx.free()


def test_event_repr_and_match_args(pair):
    _, client, _, conn = pair
    client.send(conn, "x")
    server = pair[0]
    msg = of(MessageEvent, pump([client, server], lambda ev: of(MessageEvent, ev)))[0]
    assert repr(msg).startswith("<MessageEvent conn=")
    assert MessageEvent.__match_args__ == ["conn", "data"]


def test_sender_refuses_non_bytes_like_data(pair):
    _, client, _, conn = pair
    with pytest.raises(TypeError):
        client.sender().send(conn, 5)


@pytest.fixture
def limited_echo_server():
    """An echo server on a Context with ``max_connections=2``, polled by a thread; yields
    ``(context, url)``."""
    server = Context(max_connections=2)
    port = server.local_addr(server.listen("127.0.0.1", 0))[1]
    stop = threading.Event()

    def run():
        while not stop.is_set():
            for event in server.poll(0.02):
                if type(event) is MessageEvent:
                    server.send(event.conn, event.data)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield server, f"ws://127.0.0.1:{port}/"
    finally:
        stop.set()
        thread.join(5)
        server.free()


def wait_for_count(ctx, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while ctx.connection_count() != count:
        assert time.monotonic() < deadline, f"{ctx.connection_count()} connections"
        time.sleep(0.01)


def test_a_client_over_max_connections_is_turned_away_at_once(limited_echo_server):
    server, url = limited_echo_server
    with tidewire.connect(url) as first, tidewire.connect(url) as second:
        # Closed (or reset, when the request was already in) as soon as accepted: the
        # client raises InvalidHandshake either way, long before its open_timeout.
        for _ in range(5):
            start = time.monotonic()
            with pytest.raises(tidewire.InvalidHandshake):
                tidewire.connect(url, open_timeout=5)
            assert time.monotonic() - start < 2
        first.close()
        wait_for_count(server, 1)
        with tidewire.connect(url, open_timeout=5) as third:
            third.send("a slot freed up")
            assert third.recv(timeout=5) == "a slot freed up"
        second.send("still served")
        assert second.recv(timeout=5) == "still served"


async def test_an_asyncio_client_over_max_connections_is_turned_away_at_once(limited_echo_server):
    server, url = limited_echo_server
    async with tw.connect(url), tw.connect(url) as second:
        for _ in range(5):
            start = time.monotonic()
            with pytest.raises(tidewire.InvalidHandshake):
                await tw.connect(url, open_timeout=5)
            assert time.monotonic() - start < 2
        await second.close()
        wait_for_count(server, 1)
        async with tw.connect(url, open_timeout=5) as third:
            await third.send("a slot freed up")
            assert await third.recv() == "a slot freed up"


def poll_until(contexts, done, timeout=5.0):
    """Polls every context until ``done(event)`` returned True for some event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ctx in contexts:
            for event in ctx.poll(0.005):
                if done(event):
                    return event
    raise AssertionError("no such event in time")


def test_per_address_limits_turn_away_one_address_and_not_the_others():
    server, client = Context(), Context()
    try:
        port = server.local_addr(server.listen("127.0.0.1", 0, max_connections_per_address=1))[1]
        url = f"ws://127.0.0.1:{port}/"
        ends = {}

        def outcome(conn):
            def done(event):
                if getattr(event, "conn", None) == conn and type(event).__name__ in (
                    "OpenEvent",
                    "ErrorEvent",
                ):
                    ends[conn] = type(event).__name__
                    return True
                return False

            return done

        first = client.connect(url, local_address="127.0.0.2")
        poll_until([server, client], outcome(first))
        second = client.connect(url, local_address="127.0.0.2")
        poll_until([server, client], outcome(second))
        other = client.connect(url, local_address="127.0.0.3")
        poll_until([server, client], outcome(other))
        assert (ends[first], ends[second], ends[other]) == ("OpenEvent", "ErrorEvent", "OpenEvent")
    finally:
        server.free()
        client.free()


def test_bad_limits_and_local_addresses_are_refused_with_an_exception():
    ctx = Context()
    try:
        with pytest.raises(ValueError):
            ctx.listen("127.0.0.1", 0, connection_rate=(0.0, 5))
        with pytest.raises(ValueError):
            ctx.listen("127.0.0.1", 0, max_handshakes=0)
        with pytest.raises(ValueError):
            ctx.connect("ws://127.0.0.1:9/", local_address="not an address")
    finally:
        ctx.free()
