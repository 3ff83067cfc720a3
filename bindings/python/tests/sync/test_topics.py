"""One message to many connections on the blocking server: ``tidewire.broadcast``, topics
(``subscribe``, ``unsubscribe``, ``topics``, ``Server.publish``), ``slow_subscriber``."""

import os
import threading
import time

import pytest

import tidewire
from tidewire import PublishReport, broadcast, connect, serve


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.fixture
def rooms():
    """A server whose handler subscribes each connection to the topic its path names,
    registers it, says "ready", then answers "leave" (unsubscribes, twice) and "topics"."""
    connections = []
    lock = threading.Lock()

    def handler(ws):
        topic = ws.request.path.strip("/")
        assert ws.subscribe(topic) is True
        assert ws.subscribe(topic.encode()) is False
        with lock:
            connections.append(ws)
        ws.send("ready")
        for message in ws:
            if message == "leave":
                ws.send(f"left {ws.unsubscribe(topic)} {ws.unsubscribe(topic)}")
            elif message == "topics":
                ws.send(repr(ws.topics))

    with serve(handler, "127.0.0.1", 0) as server:
        yield server, connections


def join(server, path, count):
    clients = [connect(f"ws://127.0.0.1:{server.port}/{path}") for _ in range(count)]
    for ws in clients:
        assert ws.recv(timeout=5) == "ready"
    return clients


def test_broadcast_frames_once_for_every_connection_of_a_server(rooms):
    server, connections = rooms
    clients = join(server, "a", 10)
    # Compressed once for the ten of them: one engine call, not ten sends.
    text = "broadcast " * 50
    assert broadcast(connections, text) == PublishReport(delivered=10, compressions=1)
    assert broadcast(connections, memoryview(b"binary")) == PublishReport(delivered=10)
    for ws in clients:
        assert ws.recv(timeout=5) == text
        assert ws.recv(timeout=5) == b"binary"
    assert broadcast([], "nobody") == PublishReport()
    for ws in clients:
        ws.close()


def test_broadcast_skips_connections_that_are_not_open(rooms):
    server, connections = rooms
    clients = join(server, "a", 3)
    clients[0].close()
    wait_for(lambda: any(c.state is tidewire.State.CLOSED for c in connections))
    assert broadcast(connections, "still here") == PublishReport(delivered=2, not_open=1)
    for ws in clients[1:]:
        assert ws.recv(timeout=5) == "still here"
    # Client connections have a context each: one engine call per context, reports summed.
    assert broadcast(clients, "to the server") == PublishReport(delivered=2, not_open=1)
    for ws in clients[1:]:
        ws.close()


def test_broadcast_checks_its_arguments(rooms):
    server, connections = rooms
    clients = join(server, "a", 1)
    for bad in (42, ["fragments"], {"a": 1}, None):
        with pytest.raises(TypeError):
            broadcast(connections, bad)
    with pytest.raises(TypeError):
        broadcast(["not a connection"], "x")
    with pytest.raises(UnicodeEncodeError):
        broadcast(connections, "\ud800")
    # Nothing was sent by the calls that failed.
    broadcast(connections, "only this")
    assert clients[0].recv(timeout=5) == "only this"
    clients[0].close()


def test_server_publish_reaches_the_subscribers_of_a_topic(rooms):
    server, _ = rooms
    a_clients, b_clients = join(server, "a", 3), join(server, "b", 2)
    assert (server.subscriber_count("a"), server.subscriber_count(b"b")) == (3, 2)
    assert server.topic_count() == 2
    assert server.publish("a", "for a") == PublishReport(delivered=3, compressions=0)
    assert server.publish("b", b"for b") == PublishReport(delivered=2)
    for ws in a_clients:
        assert ws.recv(timeout=5) == "for a"
    for ws in b_clients:
        assert ws.recv(timeout=5) == b"for b"  # and nothing for a before it
    a_clients[0].send("leave")
    assert a_clients[0].recv(timeout=5) == "left True False"
    a_clients[0].send("topics")
    assert a_clients[0].recv(timeout=5) == "[]"
    a_clients[1].send("topics")
    assert a_clients[1].recv(timeout=5) == "[b'a']"
    assert server.subscriber_count("a") == 2
    b_clients[0].close()
    wait_for(lambda: server.subscriber_count("b") == 1)
    assert server.publish("a", "again").delivered == 2
    assert server.publish("nobody", "lost") == PublishReport()
    for ws in a_clients[1:]:
        assert ws.recv(timeout=5) == "again"
    for ws in a_clients + b_clients[1:]:
        ws.close()


def test_a_closed_server_has_no_subscribers():
    server = serve(lambda ws: ws.subscribe("t") and ws.recv(), "127.0.0.1", 0)
    with connect(f"ws://127.0.0.1:{server.port}/"):
        wait_for(lambda: server.subscriber_count("t") == 1)
        server.shutdown()
    assert server.publish("t", "late") == PublishReport()
    assert (server.subscriber_count("t"), server.topic_count()) == (0, 0)


def test_subscribe_on_a_closed_connection_raises_connection_closed():
    done = threading.Event()
    outcome = []

    def handler(ws):
        ws.close()
        with pytest.raises(tidewire.ConnectionClosed):
            ws.subscribe("t")
        outcome.append((ws.unsubscribe("t"), ws.topics))
        done.set()

    with serve(handler, "127.0.0.1", 0) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            assert done.wait(5)
            del ws
    assert outcome == [(False, [])]


def test_slow_subscriber_is_checked_by_the_runtime():
    with pytest.raises(ValueError, match="slow_subscriber.limit must be at least 1"):
        serve(lambda ws: None, "127.0.0.1", 0, slow_subscriber=(0, "skip"))
    with pytest.raises(ValueError, match="close"):
        serve(lambda ws: None, "127.0.0.1", 0, slow_subscriber=(1, "drop"))


def test_a_slow_subscriber_is_closed_with_1008():
    ready = threading.Event()

    def handler(ws):
        ws.subscribe("feed")
        ready.set()
        for _ in ws:
            pass

    with serve(
        handler, "127.0.0.1", 0, compression=None, slow_subscriber=(1 << 16, "close")
    ) as server:
        # A client that reads nothing: its queue fills, then it stops reading the socket.
        ws = connect(f"ws://127.0.0.1:{server.port}/", max_size=None, compression=None)
        assert ready.wait(5)
        chunk = os.urandom(1 << 20)
        reports = []
        for _ in range(200):
            reports.append(server.publish("feed", chunk))
            if reports[-1].closed_slow:
                break
            time.sleep(0.002)
        assert reports[-1] == PublishReport(closed_slow=1)
        assert all(r == PublishReport(delivered=1) for r in reports[:-1])
        received = 0
        with pytest.raises(tidewire.ConnectionClosedError) as caught:
            while True:
                assert ws.recv(timeout=10) == chunk
                received += 1
        assert received == len(reports) - 1  # nothing missed silently before the close
        assert (caught.value.code, caught.value.reason) == (1008, "too slow")
