"""Server processes joined through Redis: ``tidewire.Cluster`` and ``serve(...,
cluster=URL)`` of both APIs. Each test starts its own ``redis-server`` (``redis_server``
fixture, skipped without one); two servers in one process stand for two processes (each
has its own bridge, with its own node id)."""

import asyncio
import threading
import time

import pytest

import tidewire
import tidewire.asyncio
from tidewire import Cluster, ClusterStats, Context, connect, serve


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


class Statuses:
    """Records what an ``on_cluster_status`` callback hears, and on which thread."""

    def __init__(self):
        self.kinds = []
        self.reasons = []
        self.threads = set()
        self._cond = threading.Condition()

    def __call__(self, status):
        with self._cond:
            self.kinds.append(status.kind)
            self.reasons.append(status.reason)
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def wait(self, kind, count=1, timeout=15.0):
        with self._cond:
            ok = self._cond.wait_for(lambda: self.kinds.count(kind) >= count, timeout)
        assert ok, f"no {kind!r} status {count} time(s); heard {self.kinds}"


def subscriber(ws):
    """Subscribes to "news", says "ready", then reads until the client leaves."""
    ws.subscribe("news")
    ws.send("ready")
    for _ in ws:
        pass


# -- the native bridge ------------------------------------------------------------------


def test_a_bad_url_raises_invalid_uri_with_the_runtime_message():
    ctx = Context()
    try:
        with pytest.raises(tidewire.InvalidURI) as info:
            Cluster("http://not-redis", [ctx])
        assert "http://not-redis" in str(info.value)
        assert "Redis URL" in str(info.value)
    finally:
        ctx.free()


def test_bad_arguments_are_refused():
    ctx = Context()
    try:
        with pytest.raises(TypeError, match="Context or Sender"):
            Cluster("redis://127.0.0.1:1", [object()])
        with pytest.raises(TypeError, match="callable"):
            Cluster("redis://127.0.0.1:1", [ctx], on_status=42)
        with pytest.raises(ValueError, match="channel"):
            Cluster("redis://127.0.0.1:1", [ctx], channel="")
        with pytest.raises(ValueError, match="backoff_initial"):
            Cluster("redis://127.0.0.1:1", [ctx], backoff_initial=-1)
        freed = Context()
        freed.free()
        with pytest.raises(tidewire.InvalidState):
            Cluster("redis://127.0.0.1:1", [freed])
    finally:
        ctx.free()


def test_serve_with_a_bad_cluster_url_raises_and_frees_its_listeners():
    with pytest.raises(tidewire.InvalidURI):
        serve(subscriber, "127.0.0.1", 0, workers=2, cluster="http://not-redis")
    with pytest.raises(TypeError, match="redis://"):
        serve(subscriber, "127.0.0.1", 0, cluster=6379)


def test_the_bridge_delivers_to_contexts_and_closes(redis_server):
    """Two bare bridges: what one publishes reaches the other's context (at its next poll),
    never its own; counters, ``is_connected``, ``close``."""
    statuses = Statuses()
    ctx_a, ctx_b = Context(), Context()
    listener = ctx_b.listen("127.0.0.1", 0)
    port = ctx_b.local_addr(listener)[1]
    a = Cluster(redis_server.url, [ctx_a], on_status=statuses)
    with Cluster(redis_server.url, [ctx_b.sender()], channel="tidewire") as b:
        statuses.wait("connected")
        wait_for(b.is_connected)
        assert a.node_id != b.node_id
        assert "connected" in repr(a)
        # A client of ctx_b (connecting in a thread while ctx_b is polled here),
        # subscribed through the low-level API.
        opened = []
        connecting = threading.Thread(
            target=lambda: opened.append(connect(f"ws://127.0.0.1:{port}/"))
        )
        connecting.start()
        server_conn = None
        deadline = time.monotonic() + 5
        while server_conn is None or connecting.is_alive():
            assert time.monotonic() < deadline
            for event in ctx_b.poll(0.05):
                if isinstance(event, tidewire.OpenEvent):
                    server_conn = event.conn
        client = opened[0]
        assert ctx_b.subscribe(server_conn, "news")
        assert a.publish("news", "from a") is True
        deadline = time.monotonic() + 5
        while b.stats().received < 1:
            assert time.monotonic() < deadline
            ctx_b.poll(0.05)
        ctx_b.poll(0.05)  # the publish is applied at this poll, and written
        assert client.recv(timeout=5) == "from a"
        assert a.stats() == a.stats()
        assert a.stats().sent == 1 and b.stats().received == 1 and a.stats().received == 0
        a.close()
        a.close()  # harmless
        assert a.closed and not a.is_connected()
        assert a.stats().sent == 1  # kept after close
        with pytest.raises(tidewire.InvalidState):
            a.publish("news", "closed")
    assert b.closed
    assert isinstance(b.stats(), ClusterStats)
    # Every status came from a bridge thread, not from this one.
    assert threading.current_thread().name not in statuses.threads
    ctx_a.free()
    ctx_b.free()  # drops the client's connection
    client.close()


# -- blocking servers ---------------------------------------------------------------------


def join(port, count):
    clients = [connect(f"ws://127.0.0.1:{port}/") for _ in range(count)]
    for ws in clients:
        assert ws.recv(timeout=5) == "ready"
    return clients


def expect(clients, message):
    for ws in clients:
        assert ws.recv(timeout=5) == message


def test_two_blocking_servers_share_publishes_and_survive_a_redis_restart(redis_server):
    heard_a, heard_b = Statuses(), Statuses()
    a = serve(
        subscriber, "127.0.0.1", 0, workers=2, cluster=redis_server.url, on_cluster_status=heard_a
    )
    b = serve(subscriber, "127.0.0.1", 0, cluster=redis_server.url, on_cluster_status=heard_b)
    try:
        heard_a.wait("connected")
        heard_b.wait("connected")
        assert a.cluster is not None and a.cluster.is_connected()
        clients_a, clients_b = join(a.port, 6), join(b.port, 3)
        wait_for(lambda: a.subscriber_count("news") == 6 and b.subscriber_count("news") == 3)

        # Each direction, once: the publishing server's report counts its own subscribers.
        assert a.publish("news", "one from a").delivered == 6
        expect(clients_a + clients_b, "one from a")
        assert b.publish("news", b"one from b").delivered == 3
        expect(clients_a + clients_b, b"one from b")
        wait_for(lambda: b.cluster.stats().received == 1 and a.cluster.stats().received == 1)

        # Redis goes away: both are told, local delivery goes on.
        redis_server.kill()
        heard_a.wait("interrupted")
        heard_b.wait("interrupted")
        assert not a.cluster.is_connected()
        assert any(reason for reason in heard_a.reasons)
        assert a.publish("news", "local only").delivered == 6
        expect(clients_a, "local only")

        # Back on the same port: both resume, and publishes cross again.
        redis_server.start()
        heard_a.wait("resumed")
        heard_b.wait("resumed")
        wait_for(lambda: a.cluster.is_connected() and b.cluster.is_connected())
        b.publish("news", "two from b")
        expect(clients_a + clients_b, "two from b")
        a.publish("news", "two from a")
        expect(clients_a + clients_b, "two from a")
        # Nothing came twice, and "local only" never reached b.
        a.publish("news", "end")
        b.publish("news", "end")
        for ws in clients_a + clients_b:
            assert ws.recv(timeout=5) == "end"
            assert ws.recv(timeout=5) == "end"
        assert heard_a.kinds == ["connected", "interrupted", "resumed"]
        for ws in clients_a + clients_b:
            ws.close()
    finally:
        a.shutdown()
        b.shutdown()
    assert a.cluster.closed and b.cluster.closed
    assert a.publish("news", "after") == tidewire.PublishReport()


def test_cluster_status_is_logged(redis_server, caplog):
    caplog.set_level("INFO", logger="tidewire.server")
    with serve(subscriber, "127.0.0.1", 0, cluster=redis_server.url) as server:
        wait_for(lambda: server.cluster.is_connected())
        wait_for(lambda: "connected to Redis" in caplog.text)
        redis_server.kill()
        wait_for(lambda: "interrupted" in caplog.text, timeout=15)
        records = [r for r in caplog.records if "interrupted" in r.getMessage()]
        assert records[0].levelname == "WARNING"


def test_a_failing_status_callback_is_logged_not_raised(redis_server, caplog):
    def broken(status):
        raise RuntimeError("broken callback")

    with serve(subscriber, "127.0.0.1", 0, cluster=redis_server.url, on_cluster_status=broken):
        wait_for(lambda: "on_cluster_status failed" in caplog.text)


# -- asyncio servers ----------------------------------------------------------------------


async def async_subscriber(ws):
    ws.subscribe("news")
    await ws.send("ready")
    async for _ in ws:
        pass


async def async_clients(port, count):
    return [await tidewire.asyncio.connect(f"ws://127.0.0.1:{port}/") for _ in range(count)]


async def test_an_asyncio_server_and_a_blocking_one_share_publishes(redis_server):
    loop = asyncio.get_running_loop()
    heard_async = Statuses()
    loop_thread = threading.current_thread().name
    blocking = serve(subscriber, "127.0.0.1", 0, workers=2, cluster=redis_server.url)
    try:
        async with tidewire.asyncio.serve(
            async_subscriber,
            "127.0.0.1",
            0,
            cluster=redis_server.url,
            on_cluster_status=heard_async,
        ) as server:
            deadline = loop.time() + 10
            while "connected" not in heard_async.kinds or not blocking.cluster.is_connected():
                assert loop.time() < deadline
                await asyncio.sleep(0.02)
            # Called on the loop's thread.
            assert heard_async.threads == {loop_thread}
            near = await async_clients(server.port, 3)
            far = await async_clients(blocking.port, 4)
            for ws in near + far:
                assert await asyncio.wait_for(ws.recv(), 5) == "ready"
            while server.subscriber_count("news") < 3 or blocking.subscriber_count("news") < 4:
                assert loop.time() < deadline
                await asyncio.sleep(0.02)

            assert server.publish("news", "from asyncio").delivered == 3
            for ws in near + far:
                assert await asyncio.wait_for(ws.recv(), 5) == "from asyncio"
            # The blocking server publishes from another thread, as a handler thread would.
            await loop.run_in_executor(None, blocking.publish, "news", "from blocking")
            for ws in near + far:
                assert await asyncio.wait_for(ws.recv(), 5) == "from blocking"
            for ws in near + far:
                await ws.close()
        assert server.cluster is not None and server.cluster.closed
    finally:
        await loop.run_in_executor(None, blocking.shutdown)


async def test_an_asyncio_status_callback_may_be_a_coroutine(redis_server):
    told = asyncio.Event()

    async def on_status(status):
        await asyncio.sleep(0)
        if status.kind == "connected":
            told.set()

    async with tidewire.asyncio.serve(
        async_subscriber, "127.0.0.1", 0, cluster=redis_server.url, on_cluster_status=on_status
    ):
        await asyncio.wait_for(told.wait(), 10)


async def test_asyncio_serve_has_no_workers():
    with pytest.raises(TypeError, match="workers"):
        async with tidewire.asyncio.serve(async_subscriber, "127.0.0.1", 0, workers=2):
            pass
