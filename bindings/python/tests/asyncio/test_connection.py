"""asyncio connections: messages, async iteration, fragments, ping, close, back-pressure,
cancellation and concurrency."""

import asyncio
import os

import pytest

import tidewire
import tidewire.asyncio as tw


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def test_text_and_binary_round_trip_with_their_types():
    async with tw.serve(echo, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            payload = os.urandom(200_000)
            await ws.send(payload)
            assert await ws.recv() == payload


async def test_sends_of_one_iteration_arrive_in_order():
    async with tw.serve(echo, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            for i in range(100):
                await ws.send(str(i))
            assert [await ws.recv() for _ in range(100)] == [str(i) for i in range(100)]


async def test_iterables_and_async_iterables_are_sent_fragmented():
    async def parts():
        yield b"as"
        yield b"ync"

    async with tw.serve(echo, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send(["a", "b", "c"])
            assert await ws.recv() == "abc"
            await ws.send(parts())
            assert await ws.recv() == b"async"


async def test_async_iteration_ends_on_normal_close():
    async def handler(ws):
        for i in range(3):
            await ws.send(str(i))

    async with tw.serve(handler, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            assert [m async for m in ws] == ["0", "1", "2"]
        assert ws.close_code == 1000
        with pytest.raises(tidewire.ConnectionClosedOK):
            await ws.recv()
        with pytest.raises(tidewire.ConnectionClosedOK):
            await ws.send("late")


async def test_ping_future_completes_with_the_pong():
    async with tw.serve(echo, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            pong = await ws.ping()
            await asyncio.wait_for(pong, 5)


async def test_ping_future_gives_the_round_trip_time_and_latency_follows():
    async with tw.serve(echo, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/", ping_interval=None) as ws:
            assert ws.latency == 0.0
            rtt = await asyncio.wait_for(await ws.ping(), 5)
            assert 0 < rtt < 1
            assert 0 < ws.latency < 1


@pytest.mark.parametrize("pinging", ["client", "server"])
async def test_keepalive_pings_measure_latency(pinging):
    # Only one side pings: a keepalive ping goes out after `ping_interval` without receiving
    # anything, so the side that hears the other's pings stays quiet.
    seen = []

    async def handler(ws):
        if pinging == "server":
            while ws.latency == 0.0:
                await asyncio.sleep(0.02)
            seen.append(ws.latency)
        await ws.send("measured")
        await ws.wait_closed()

    fast, off = 0.05, None
    server_ping = fast if pinging == "server" else off
    async with tw.serve(handler, "127.0.0.1", 0, ping_interval=server_ping) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        async with tw.connect(url, ping_interval=fast if pinging == "client" else off) as ws:
            assert await asyncio.wait_for(ws.recv(), 10) == "measured"
            if pinging == "client":
                for _ in range(500):
                    if ws.latency > 0:
                        break
                    await asyncio.sleep(0.02)
                seen.append(ws.latency)
    assert len(seen) == 1 and 0 < seen[0] < 1


async def test_concurrent_recv_raises_concurrency_error():
    async with tw.serve(echo, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            first = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0)
            with pytest.raises(tidewire.ConcurrencyError):
                await ws.recv()
            await ws.send("x")
            assert await first == "x"


async def test_cancelled_recv_loses_no_message():
    async with tw.serve(echo, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.1)
            await ws.send("kept")
            assert await asyncio.wait_for(ws.recv(), 5) == "kept"


async def test_send_waits_over_the_high_water_mark_and_resumes(raw_server, handshake):
    loop = asyncio.get_running_loop()
    release = asyncio.Event()

    def reader(conn):
        handshake(conn)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)
        total = 0
        while total < 64 * 256 * 1024:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)

    port = raw_server(reader)
    async with tw.connect(
        f"ws://127.0.0.1:{port}/",
        write_limit=(64 * 1024, 16 * 1024),
        compression=None,
        close_timeout=0.5,
    ) as ws:
        sent = 0
        chunk = b"x" * (256 * 1024)

        async def writer():
            nonlocal sent
            for _ in range(64):
                await ws.send(chunk)
                sent += 1

        task = asyncio.ensure_future(writer())
        await asyncio.sleep(0.5)
        assert sent < 64, "send never waited"
        assert ws._ctx.buffered_amount(ws.id) < 2 * 1024 * 1024  # bounded
        release.set()
        await asyncio.wait_for(task, 10)
        assert sent == 64


async def test_peer_close_code_and_reason():
    async def handler(ws):
        await ws.close(4002, "bye")

    async with tw.serve(handler, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            with pytest.raises(tidewire.ConnectionClosedError) as info:
                await ws.recv()
    assert (info.value.code, info.value.reason) == (4002, "bye")


async def test_200_concurrent_clients():
    async with tw.serve(echo, "127.0.0.1", 0, compression=None) as server:

        async def client(i):
            async with tw.connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
                for j in range(5):
                    await ws.send(f"{i}-{j}")
                    assert await ws.recv() == f"{i}-{j}"
            return i

        results = await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(200))), 60)
        assert sorted(results) == list(range(200))
