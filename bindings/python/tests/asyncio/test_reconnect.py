"""``async for ws in connect(uri)``: reconnects as python-websockets' does, with the
runtime's schedule and classification."""

import asyncio
import time

import pytest

import tidewire
import tidewire.asyncio as tw
from tidewire import ReconnectPolicy

FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)


async def test_reconnects_after_the_server_process_is_killed_and_restarted(reconnect_kit):
    port = reconnect_kit.free_port()
    server = reconnect_kit.ServerProcess(port)
    seen = []
    restarted = []

    async def restart():
        await asyncio.sleep(0.6)
        restarted.append(await asyncio.to_thread(reconnect_kit.ServerProcess, port))

    task = None
    try:
        async for ws in tw.connect(f"ws://127.0.0.1:{port}/", reconnect=FAST, open_timeout=2):
            await ws.send(f"hello {len(seen)}")
            seen.append(await asyncio.wait_for(ws.recv(), 5))
            if len(seen) == 2:
                break
            server.kill()
            task = asyncio.ensure_future(restart())
            with pytest.raises(tidewire.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
    finally:
        if task is not None:
            await task
        server.kill()
        for s in restarted:
            s.kill()
    assert seen == ["hello 0", "hello 1"]


async def test_a_4xx_is_raised_without_retrying(reconnect_kit):
    port, seen, stop = reconnect_kit.http_server(lambda n: reconnect_kit.status(403))
    try:
        with pytest.raises(tidewire.InvalidStatus):
            async for _ in tw.connect(f"ws://127.0.0.1:{port}/", reconnect=FAST):
                pytest.fail("should not open")
        assert len(seen) == 1
    finally:
        stop()


async def test_a_503_retry_after_is_honoured(reconnect_kit):
    kit = reconnect_kit
    port, seen, stop = kit.http_server(lambda n: kit.status(503, 1) if n == 1 else kit.status(401))
    try:
        with pytest.raises(tidewire.InvalidStatus):
            async for _ in tw.connect(f"ws://127.0.0.1:{port}/", reconnect=FAST):
                pytest.fail("should not open")
        assert len(seen) == 2
        assert seen[1] - seen[0] >= 0.95
    finally:
        stop()


async def test_cancelling_mid_backoff_stops_it(reconnect_kit):
    port, seen, stop = reconnect_kit.http_server(lambda n: reconnect_kit.status(503, 30))

    async def loop():
        async for _ in tw.connect(f"ws://127.0.0.1:{port}/"):
            pytest.fail("should not open")

    try:
        task = asyncio.ensure_future(loop())
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t0 < 1
        await asyncio.sleep(0.2)
        assert len(seen) == 1
    finally:
        stop()
