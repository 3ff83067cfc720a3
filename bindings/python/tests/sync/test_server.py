"""The blocking server: a thread per connection, rejection, handler failures, shutdown."""

import threading
import time

import pytest

import tidewire
from tidewire import Response, connect, serve


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


def test_a_handler_that_raises_closes_with_1011_and_the_server_keeps_serving(caplog):
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
        with connect(f"ws://127.0.0.1:{server.port}/",
                     additional_headers=[("Authorization", "Bearer ok")]) as ws:
            assert ws.recv(timeout=5) == "in"


def test_origins_are_checked():
    with serve(lambda ws: ws.send("in"), "127.0.0.1", 0, origins=["https://good"]) as server:
        with pytest.raises(tidewire.InvalidStatus) as info:
            connect(f"ws://127.0.0.1:{server.port}/", origin="https://evil")
        assert info.value.status_code == 403
        with connect(f"ws://127.0.0.1:{server.port}/", origin="https://good") as ws:
            assert ws.recv(timeout=5) == "in"


def test_server_with_subprotocols_refuses_clients_without_one():
    with serve(lambda ws: ws.send(ws.subprotocol), "127.0.0.1", 0, subprotocols=["chat"]) as server:
        with pytest.raises(tidewire.InvalidStatus) as info:
            connect(f"ws://127.0.0.1:{server.port}/")
        assert info.value.status_code == 400
        with connect(f"ws://127.0.0.1:{server.port}/", subprotocols=["chat"]) as ws:
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
