"""The blocking server: a thread per connection, rejection, handler failures, shutdown."""

import sys
import threading
import time

import pytest

import tidewire
import tidewire.sync.server
from tidewire import (
    CloseEvent,
    Context,
    ErrorEvent,
    MessageEvent,
    OpenEvent,
    Response,
    connect,
    serve,
)


def test_each_handler_runs_in_its_own_thread():
    threads = set()
    lock = threading.Lock()

    def handler(ws):
        with lock:
            threads.add(threading.get_ident())
        ws.send(ws.recv())

    with serve(handler, "127.0.0.1", 0) as server:
        clients = [connect(f"ws://127.0.0.1:{server.port}/") for _ in range(5)]
        for i, ws in enumerate(clients):
            ws.send(str(i))
        assert [ws.recv(timeout=5) for ws in clients] == [str(i) for i in range(5)]
        for ws in clients:
            ws.close()
    assert len(threads) == 5 and threading.get_ident() not in threads


@pytest.mark.parametrize("close_fails", [False, True])
def test_a_handler_that_raises_closes_with_1011_and_the_server_keeps_serving(
    monkeypatch, caplog, close_fails
):
    if close_fails:
        # Closing fails too, once it has closed: the handler's thread must not die of it
        # (an exception that ends a thread fails the test).
        close = tidewire.sync.server.ServerConnection.close

        def close_then_fail(self, code=1000, reason=""):
            close(self, code, reason)
            if code == 1011:
                raise RuntimeError("close failed")

        monkeypatch.setattr(tidewire.sync.server.ServerConnection, "close", close_then_fail)

    def handler(ws):
        if ws.recv() == "boom":
            raise ValueError("handler failure")
        ws.send("fine")

    with serve(handler, "127.0.0.1", 0) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            ws.send("boom")
            with pytest.raises(tidewire.ConnectionClosedError) as info:
                ws.recv(timeout=5)
            assert info.value.code == 1011
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "fine"
    assert "connection handler failed" in caplog.text


def test_process_request_can_reject_with_a_status():
    def process_request(ws, request):
        if request.headers.get("Authorization") != "Bearer ok":
            return Response(401, "Unauthorized", body=b"no")
        return None

    with serve(lambda ws: ws.send("in"), "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(tidewire.InvalidStatus) as info:
            connect(f"ws://127.0.0.1:{server.port}/")
        assert info.value.status_code == 401
        assert info.value.response.body == b"no"
        assert info.value.response.headers["Content-Length"] == "2"
        with connect(
            f"ws://127.0.0.1:{server.port}/", additional_headers=[("Authorization", "Bearer ok")]
        ) as ws:
            assert ws.recv(timeout=5) == "in"


def accept_all(ws, request):
    return None


@pytest.mark.parametrize("process_request", [None, accept_all])
def test_origins_are_checked(process_request):
    with serve(
        lambda ws: ws.send("in"),
        "127.0.0.1",
        0,
        origins=["https://good"],
        process_request=process_request,
    ) as server:
        for origin in ("https://evil", None):  # without None in origins, Origin is required
            with pytest.raises(tidewire.InvalidStatus) as info:
                connect(f"ws://127.0.0.1:{server.port}/", origin=origin)
            assert info.value.status_code == 403
        with connect(f"ws://127.0.0.1:{server.port}/", origin="https://good") as ws:
            assert ws.recv(timeout=5) == "in"


def test_none_among_the_origins_lets_requests_without_origin_in():
    with serve(lambda ws: ws.send("in"), "127.0.0.1", 0, origins=["https://a", None]) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            assert ws.recv(timeout=5) == "in"


@pytest.mark.parametrize("process_request", [None, accept_all])
def test_server_with_subprotocols_refuses_clients_without_one(process_request):
    with serve(
        lambda ws: ws.send(ws.subprotocol),
        "127.0.0.1",
        0,
        subprotocols=["chat", "v2"],
        process_request=process_request,
    ) as server:
        for offered in (None, ["other"]):
            with pytest.raises(tidewire.InvalidStatus) as info:
                connect(f"ws://127.0.0.1:{server.port}/", subprotocols=offered)
            assert info.value.status_code == 400
        with connect(f"ws://127.0.0.1:{server.port}/", subprotocols=["v2", "chat"]) as ws:
            assert ws.subprotocol == "chat"  # the server's order of preference
            assert ws.recv(timeout=5) == "chat"


def test_shutdown_closes_connections_with_going_away():
    started = threading.Event()

    def handler(ws):
        started.set()
        for _ in ws:
            pass

    server = serve(handler, "127.0.0.1", 0)
    ws = connect(f"ws://127.0.0.1:{server.port}/")
    assert started.wait(5)
    threading.Timer(0.1, server.shutdown).start()
    server.serve_forever()
    with pytest.raises(tidewire.ConnectionClosedOK) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1001
    ws.close()
    server.shutdown()  # idempotent


def test_process_request_failure_answers_500(caplog):
    def process_request(ws, request):
        raise RuntimeError("bug")

    with serve(lambda ws: None, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(tidewire.InvalidStatus) as info:
            connect(f"ws://127.0.0.1:{server.port}/")
        assert info.value.status_code == 500
    assert "opening handshake failed" in caplog.text


def test_server_address_reports_the_bound_port():
    with serve(lambda ws: None, "127.0.0.1", 0) as server:
        assert server.address == ("127.0.0.1", server.port) and server.port > 0
        with pytest.raises(OSError):
            serve(lambda ws: None, "127.0.0.1", server.port)


def test_a_close_code_sent_by_the_peer_carries_no_cause():
    # 1009 from the peer is its decision, not a PayloadTooBig of ours.
    with serve(lambda ws: ws.close(1009, "too big for me"), "127.0.0.1", 0) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            with pytest.raises(tidewire.ConnectionClosedError) as info:
                ws.recv(timeout=5)
    assert info.value.code == 1009
    assert info.value.reason == "too big for me"
    assert info.value.__cause__ is None


def test_a_message_over_max_size_fails_with_payload_too_big_as_the_cause():
    with serve(lambda ws: (ws.send("x" * 2000), ws.recv(timeout=5)), "127.0.0.1", 0) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", max_size=1000) as ws:
            with pytest.raises(tidewire.ConnectionClosedError) as info:
                ws.recv(timeout=5)
    assert info.value.code == 1009
    assert isinstance(info.value.__cause__, tidewire.PayloadTooBig)


# -- many connections at once ------------------------------------------------------------


def echo(ws):
    for message in ws:
        ws.send(message)


def open_clients(port, count, timeout=10.0):
    """``count`` clients on one Context, connected at once; returns the context, the ids
    that opened and the errors of the others."""
    ctx = Context(max_connections=count + 10)
    conns = {ctx.connect(f"ws://127.0.0.1:{port}/", compression=None) for _ in range(count)}
    opened, errors = set(), []
    deadline = time.monotonic() + timeout
    while len(opened) + len(errors) < count and time.monotonic() < deadline:
        for event in ctx.poll(0.05):
            if type(event) is OpenEvent:
                opened.add(event.conn)
            elif type(event) in (ErrorEvent, CloseEvent) and event.conn in conns:
                errors.append(getattr(event, "error", event))
    return ctx, opened, errors


def slow_thread_starts(monkeypatch, delay, fail=lambda: False):
    """Starting a thread in the server module takes ``delay`` seconds (as it does when
    thousands of threads are alive), and a handler's thread fails to start (RuntimeError, as
    at a thread limit) while ``fail()`` says so."""

    class Thread(threading.Thread):
        def start(self):
            time.sleep(delay)
            if self.name.startswith("tidewire-handler") and fail():
                raise RuntimeError("can't start new thread")
            super().start()

    class Threading:
        def __getattr__(self, name):
            return Thread if name == "Thread" else getattr(threading, name)

    monkeypatch.setattr(tidewire.sync.server, "threading", Threading())


def test_handshakes_complete_however_slowly_handler_threads_start(monkeypatch):
    # 120 threads at 10 ms each: 1.2 s, past the open timeout, which the upgrades must not
    # wait for (they used to be answered from each handler's thread, once it ran).
    slow_thread_starts(monkeypatch, 0.01)
    with serve(echo, "127.0.0.1", 0, open_timeout=0.5, compression=None) as server:
        ctx, opened, errors = open_clients(server.port, 120)
        try:
            assert not errors and len(opened) == 120, errors[:3]
            for conn in opened:
                ctx.send(conn, str(conn))
            echoed = set()
            deadline = time.monotonic() + 10
            while len(echoed) < len(opened) and time.monotonic() < deadline:
                echoed.update(e.conn for e in ctx.poll(0.05) if type(e) is MessageEvent)
            assert echoed == opened, "every handler runs once its thread has started"
        finally:
            ctx.free()


@pytest.mark.parametrize("decide", ["engine", "process_request"])
def test_a_connection_no_thread_can_serve_is_refused_and_the_server_goes_on(
    monkeypatch, caplog, decide
):
    failing = True
    slow_thread_starts(monkeypatch, 0, fail=lambda: failing)
    options = {"process_request": lambda ws, request: None} if decide != "engine" else {}
    with serve(echo, "127.0.0.1", 0, **options) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        if decide == "engine":
            # Open already (the engine accepted it): closed with 1013, try again later.
            with connect(url) as ws:
                with pytest.raises(tidewire.ConnectionClosedError) as info:
                    ws.recv(timeout=5)
            assert info.value.code == 1013
        else:
            # Its process_request never ran: refused with 503.
            with pytest.raises(tidewire.InvalidStatus) as refused:
                connect(url)
            assert refused.value.status_code == 503
        failing = False
        with connect(url) as ws:
            ws.send("served")
            assert ws.recv(timeout=5) == "served"
    assert "no thread for a new connection" in caplog.text


def test_peers_closing_together_never_nest_the_engine_dispatch(monkeypatch):
    # A peer's close is answered from the dispatch of its event; that used to poll and
    # dispatch again recursively, one level per event, and peers closing together by the
    # thousand overflowed the stack and killed the engine thread (every connection lost).
    depth = []
    on_event = tidewire.sync.server.ServerConnection.on_event

    def counting_on_event(self, event):
        frame, nested = sys._getframe(), 0
        while frame is not None:
            nested += frame.f_code.co_name == "_dispatch"
            frame = frame.f_back
        depth.append(nested)
        return on_event(self, event)

    monkeypatch.setattr(tidewire.sync.server.ServerConnection, "on_event", counting_on_event)
    with serve(echo, "127.0.0.1", 0, compression=None) as server:
        ctx, opened, errors = open_clients(server.port, 200)
        try:
            assert not errors and len(opened) == 200
            for conn in opened:
                ctx.close(conn)
            deadline = time.monotonic() + 10
            while ctx.connection_count() and time.monotonic() < deadline:
                ctx.poll(0.05)
            assert ctx.connection_count() == 0
        finally:
            ctx.free()
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            ws.send("still serving")
            assert ws.recv(timeout=5) == "still serving"
    assert depth and max(depth) == 1, f"dispatch nested {max(depth)} deep"


def test_peer_limits_reach_the_listener_and_unknown_ones_are_refused():
    def echo(ws):
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 0, peer_limits={"max_connections_per_address": 1}) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with connect(url) as first:
            # The same address again: closed at once, before any answer.
            with pytest.raises(tidewire.InvalidHandshake):
                connect(url, open_timeout=5)
            first.send("still served")
            assert first.recv(timeout=5) == "still served"
    with pytest.raises(ValueError, match="unknown peer limits"):
        serve(echo, "127.0.0.1", 0, peer_limits={"max_conections": 1})
    with pytest.raises(ValueError):
        serve(echo, "127.0.0.1", 0, peer_limits={"connection_rate": (-1.0, 1)})


def test_a_refused_connection_ends_closed_for_whoever_holds_it():
    refused = []

    def process_request(ws, request):
        refused.append(ws)
        return Response(401, "Unauthorized", body=b"no")

    with serve(lambda ws: None, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(tidewire.InvalidStatus):
            connect(f"ws://127.0.0.1:{server.port}/")
    (ws,) = refused
    assert ws.state is tidewire.State.CLOSED and ws.close_code == 1006
    assert ws.response.status_code == 401
    ws.close()  # over already: returns at once
