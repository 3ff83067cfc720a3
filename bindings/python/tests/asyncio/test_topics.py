"""One message to many connections on the asyncio server: ``tidewire.broadcast`` (also
across the blocking and asyncio APIs), topics, ``Server.publish``, ``slow_subscriber``."""

import asyncio
import os

import pytest

import tidewire
import tidewire.asyncio as tw
from tidewire import PublishReport, broadcast


async def wait_for(condition, timeout=5.0):
    async def poll():
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def rooms_handler(connections):
    """Subscribes each connection to the topic its path names, registers it, says "ready",
    then answers "leave" (unsubscribes, twice) and "topics"."""

    async def handler(ws):
        topic = ws.request.path.strip("/")
        assert ws.subscribe(topic) is True
        assert ws.subscribe(topic.encode()) is False
        connections.append(ws)
        await ws.send("ready")
        async for message in ws:
            if message == "leave":
                await ws.send(f"left {ws.unsubscribe(topic)} {ws.unsubscribe(topic)}")
            elif message == "topics":
                await ws.send(repr(ws.topics))

    return handler


async def join(port, path, count):
    clients = [await tw.connect(f"ws://127.0.0.1:{port}/{path}") for _ in range(count)]
    for ws in clients:
        assert await ws.recv() == "ready"
    return clients


async def test_broadcast_frames_once_for_every_connection_of_a_server():
    connections = []
    async with tw.serve(rooms_handler(connections), "127.0.0.1", 0) as server:
        clients = await join(server.port, "a", 10)
        text = "broadcast " * 50
        assert broadcast(connections, text) == PublishReport(delivered=10, compressions=1)
        assert tw.broadcast(connections, b"binary") == PublishReport(delivered=10)
        for ws in clients:
            assert await ws.recv() == text
            assert await ws.recv() == b"binary"
        await clients[0].close()
        await wait_for(lambda: any(c.state is tidewire.State.CLOSED for c in connections))
        assert broadcast(connections, "left") == PublishReport(delivered=9, not_open=1)
        with pytest.raises(TypeError):
            broadcast(connections, 3.5)
        for ws in clients[1:]:
            assert await ws.recv() == "left"
            await ws.close()


async def test_server_publish_reaches_the_subscribers_of_a_topic():
    connections = []
    async with tw.serve(rooms_handler(connections), "127.0.0.1", 0) as server:
        a_clients = await join(server.port, "a", 3)
        b_clients = await join(server.port, "b", 2)
        assert (server.subscriber_count("a"), server.subscriber_count(b"b")) == (3, 2)
        assert server.topic_count() == 2
        assert server.publish("a", "for a") == PublishReport(delivered=3)
        assert server.publish(b"b", bytearray(b"for b")) == PublishReport(delivered=2)
        for ws in a_clients:
            assert await ws.recv() == "for a"
        for ws in b_clients:
            assert await ws.recv() == b"for b"
        await a_clients[0].send("leave")
        assert await a_clients[0].recv() == "left True False"
        await a_clients[0].send("topics")
        assert await a_clients[0].recv() == "[]"
        assert server.subscriber_count("a") == 2
        await b_clients[0].close()
        await wait_for(lambda: server.subscriber_count("b") == 1)
        assert server.publish("nobody", "lost") == PublishReport()
        for ws in a_clients + b_clients[1:]:
            await ws.close()
    assert server.publish("a", "closed") == PublishReport()
    assert server.subscriber_count("a") == 0


async def test_broadcast_mixes_blocking_and_asyncio_connections():
    async_connections = []
    sync_connections = []

    def sync_handler(ws):
        ws.subscribe("t")
        sync_connections.append(ws)
        ws.send("ready")
        for _ in ws:
            pass

    with tidewire.serve(sync_handler, "127.0.0.1", 0) as sync_server:
        async with tw.serve(rooms_handler(async_connections), "127.0.0.1", 0) as server:
            clients = await join(server.port, "t", 3) + await join(sync_server.port, "", 2)
            everyone = async_connections + sync_connections
            # One engine call per server, each compressing once.
            assert broadcast(everyone, "to all " * 20) == PublishReport(delivered=5, compressions=2)
            for ws in clients:
                assert await ws.recv() == "to all " * 20
            for ws in clients:
                await ws.close()


async def test_slow_subscriber_policy_on_the_asyncio_server():
    with pytest.raises(ValueError, match="slow_subscriber.limit must be at least 1"):
        await tw.serve(lambda ws: None, "127.0.0.1", 0, slow_subscriber=(0, "close"))

    subscribed = asyncio.Event()

    async def handler(ws):
        ws.subscribe("feed")
        subscribed.set()
        await ws.wait_closed()

    async with tw.serve(
        handler, "127.0.0.1", 0, compression=None, slow_subscriber=(1 << 16, "skip")
    ) as server:
        # The client reads nothing while the server publishes: its queue fills, then it
        # stops reading the socket, and the server's output for it grows past the limit.
        ws = await tw.connect(f"ws://127.0.0.1:{server.port}/", max_size=None, compression=None)
        await asyncio.wait_for(subscribed.wait(), 5)
        chunk = os.urandom(1 << 20)
        reports = []
        for _ in range(200):
            reports.append(server.publish("feed", chunk))
            if reports[-1].skipped_slow:
                break
            await asyncio.sleep(0.002)
        assert reports[-1] == PublishReport(skipped_slow=1)
        # Skipped, not closed: once it has caught up, it receives again.
        for _ in range(len(reports) - 1):
            assert await asyncio.wait_for(ws.recv(), 10) == chunk
        await wait_for(lambda: server.publish("feed", b"caught up").delivered == 1)
        assert await asyncio.wait_for(ws.recv(), 5) == b"caught up"
        await ws.close()
