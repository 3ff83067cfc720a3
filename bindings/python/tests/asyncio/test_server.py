"""The asyncio server: a coroutine per connection, failures, rejection, shutdown."""

import asyncio

import pytest

import tidewire
import tidewire.asyncio as tw


async def test_handler_failure_closes_with_1011_and_the_server_keeps_serving(caplog):
    async def handler(ws):
        if await ws.recv() == "boom":
            raise ValueError("handler failure")
        await ws.send("fine")

    async with tw.serve(handler, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("boom")
            with pytest.raises(tidewire.ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1011
        async with tw.connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("ok")
            assert await ws.recv() == "fine"
    assert "connection handler failed" in caplog.text


async def test_origins_and_subprotocols_are_enforced():
    async def handler(ws):
        await ws.send(ws.subprotocol)

    async with tw.serve(handler, "127.0.0.1", 0, origins=["https://ok"],
                        subprotocols=["p"]) as server:
        with pytest.raises(tidewire.InvalidStatus) as info:
            await tw.connect(f"ws://127.0.0.1:{server.port}/", origin="https://no",
                             subprotocols=["p"])
        assert info.value.status_code == 403
        with pytest.raises(tidewire.InvalidStatus) as info:
            await tw.connect(f"ws://127.0.0.1:{server.port}/", origin="https://ok")
        assert info.value.status_code == 400
        async with tw.connect(f"ws://127.0.0.1:{server.port}/", origin="https://ok",
                              subprotocols=["p"]) as ws:
            assert await ws.recv() == "p"


async def test_closing_the_server_closes_connections_with_going_away():
    started = asyncio.Event()

    async def handler(ws):
        started.set()
        await ws.wait_closed()

    server = await tw.serve(handler, "127.0.0.1", 0)
    ws = await tw.connect(f"ws://127.0.0.1:{server.port}/")
    await asyncio.wait_for(started.wait(), 5)
    serving = asyncio.ensure_future(server.serve_forever())
    server.close()
    await asyncio.wait_for(server.wait_closed(), 10)
    await asyncio.wait_for(serving, 5)
    with pytest.raises(tidewire.ConnectionClosedOK) as info:
        await ws.recv()
    assert info.value.code == 1001


async def test_sync_client_against_asyncio_server():
    async def handler(ws):
        async for message in ws:
            await ws.send(message)

    async with tw.serve(handler, "127.0.0.1", 0) as server:
        def client():
            with tidewire.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                ws.send("cross")
                return ws.recv(timeout=5)

        assert await asyncio.get_running_loop().run_in_executor(None, client) == "cross"
