"""``tidewire.serve(..., workers=N)``: N engines on one port (SO_REUSEPORT), topics and
``server.publish`` across all of them, shutdown of every engine."""

import os
import threading
import time

import pytest

import tidewire
from tidewire import PublishReport, broadcast, connect, serve

CLIENTS = 24


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.fixture
def news():
    """A two-worker server whose handler subscribes each connection to "news", records it,
    says "ready", and publishes what it receives to "news" (from its handler thread)."""
    connections = []
    lock = threading.Lock()

    def handler(ws):
        ws.subscribe("news")
        with lock:
            connections.append(ws)
        ws.send("ready")
        for message in ws:
            server.publish("news", f"relayed {message}")

    server = serve(handler, "127.0.0.1", 0, workers=2)
    try:
        yield server, connections
    finally:
        server.shutdown()


def join(server, count=CLIENTS):
    clients = [connect(f"ws://127.0.0.1:{server.port}/") for _ in range(count)]
    for ws in clients:
        assert ws.recv(timeout=5) == "ready"
    return clients


def engines_used(connections):
    """How many distinct engines (contexts) serve these server connections."""
    return len({id(ws._ctx) for ws in connections})


def test_connections_are_spread_over_the_workers(news):
    server, connections = news
    assert server.workers == 2
    clients = join(server)
    # The kernel hashes each connection's addresses onto one of the two listeners: with
    # 24 connections, all on one would happen once in 2**23 runs.
    assert engines_used(connections) == 2
    for ws in clients:
        ws.close()


def test_a_publish_reaches_the_subscribers_of_every_worker_once(news):
    server, connections = news
    clients = join(server)
    wait_for(lambda: server.subscriber_count("news") == CLIENTS)
    assert server.topic_count() == 1
    hello = "hello " * 40
    report = server.publish("news", hello)
    assert report.delivered == CLIENTS
    # Framed and compressed once per engine.
    assert report.compressions == 2
    # From a handler thread (one worker) to the subscribers of both.
    clients[0].send("from a client")
    for ws in clients:
        assert ws.recv(timeout=5) == hello
        assert ws.recv(timeout=5) == "relayed from a client"
    server.publish("news", b"last")
    for ws in clients:
        assert ws.recv(timeout=5) == b"last"  # nothing came twice
    # tidewire.broadcast groups connections by engine: one call per engine, summed.
    to_all = "to all " * 40
    assert broadcast(connections, to_all) == PublishReport(delivered=CLIENTS, compressions=2)
    for ws in clients:
        assert ws.recv(timeout=5) == to_all
    for ws in clients:
        ws.close()
    wait_for(lambda: server.subscriber_count("news") == 0)
    assert server.topic_count() == 0


def test_shutdown_closes_the_clients_of_every_worker_with_1001(news):
    server, connections = news
    clients = join(server)
    assert engines_used(connections) == 2
    started = time.monotonic()
    stopping = threading.Thread(target=server.shutdown)
    stopping.start()
    # Each client answers the close frame once it has read it (a client holds its reply
    # until the messages before the close are consumed).
    for ws in clients:
        with pytest.raises(tidewire.ConnectionClosedOK) as info:
            ws.recv(timeout=5)
        assert info.value.code == 1001
    stopping.join(10)
    assert not stopping.is_alive()
    assert time.monotonic() - started < 5
    assert server.publish("news", "after") == PublishReport()
    assert server.subscriber_count("news") == 0
    server.shutdown()  # idempotent


def test_workers_zero_means_one_per_cpu():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    with serve(lambda ws: None, "127.0.0.1", 0, workers=0) as server:
        assert server.workers >= 1
        if expected is not None and not hasattr(os, "process_cpu_count"):
            assert server.workers == expected
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            with pytest.raises(tidewire.ConnectionClosedOK):
                ws.recv(timeout=5)


def test_one_worker_is_the_default():
    with serve(lambda ws: None, "127.0.0.1", 0) as server:
        assert server.workers == 1


def test_bad_worker_counts_are_refused():
    with pytest.raises(ValueError, match="workers"):
        serve(lambda ws: None, "127.0.0.1", 0, workers=-1)
    with pytest.raises(TypeError, match="workers"):
        serve(lambda ws: None, "127.0.0.1", 0, workers="2")
    with pytest.raises(TypeError, match="workers"):
        serve(lambda ws: None, "127.0.0.1", 0, workers=2.0)


def test_a_busy_port_frees_the_workers_already_listening():
    with serve(lambda ws: None, "127.0.0.1", 0) as busy:
        # The other server listens without SO_REUSEPORT: the first worker's listen fails.
        with pytest.raises(OSError):
            serve(lambda ws: None, "127.0.0.1", busy.port, workers=3)
    # Nothing was left listening: the port can be taken again by a single worker.
    with serve(lambda ws: None, "127.0.0.1", busy.port) as again:
        assert again.port == busy.port
