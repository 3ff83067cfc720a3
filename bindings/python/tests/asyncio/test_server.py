"""The asyncio server: a coroutine per connection, failures, rejection, shutdown."""

import asyncio

import pytest

import tidewire
import tidewire.asyncio as tw
import tidewire.asyncio.server


@pytest.mark.parametrize("close_fails", [False, True])
async def test_handler_failure_closes_with_1011_and_the_server_keeps_serving(
    monkeypatch, caplog, close_fails
):
    if close_fails:
        # Closing fails too, once it has closed: the handler's task must still end well.
        close = tidewire.asyncio.server.ServerConnection.close

        async def close_then_fail(self, code=1000, reason=""):
            await close(self, code, reason)
            if code == 1011:
                raise RuntimeError("close failed")

        monkeypatch.setattr(tidewire.asyncio.server.ServerConnection, "close", close_then_fail)
    outcomes = []
    handle = tidewire.asyncio.server.Server._handle

    async def recording_handle(self, conn):
        try:
            await handle(self, conn)
        except BaseException as exc:
            outcomes.append(exc)
            raise
        outcomes.append(None)

    monkeypatch.setattr(tidewire.asyncio.server.Server, "_handle", recording_handle)

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
    assert outcomes == [None, None]
    assert "connection handler failed" in caplog.text


async def accept_all(ws, request):
    return None


@pytest.mark.parametrize("process_request", [None, accept_all])
async def test_origins_and_subprotocols_are_enforced(process_request):
    async def handler(ws):
        await ws.send(ws.subprotocol)

    async with tw.serve(
        handler,
        "127.0.0.1",
        0,
        origins=["https://ok"],
        subprotocols=["p"],
        process_request=process_request,
    ) as server:
        with pytest.raises(tidewire.InvalidStatus) as info:
            await tw.connect(f"ws://127.0.0.1:{server.port}/", subprotocols=["p"])
        assert info.value.status_code == 403
        with pytest.raises(tidewire.InvalidStatus) as info:
            await tw.connect(
                f"ws://127.0.0.1:{server.port}/", origin="https://no", subprotocols=["p"]
            )
        assert info.value.status_code == 403
        with pytest.raises(tidewire.InvalidStatus) as info:
            await tw.connect(f"ws://127.0.0.1:{server.port}/", origin="https://ok")
        assert info.value.status_code == 400
        async with tw.connect(
            f"ws://127.0.0.1:{server.port}/", origin="https://ok", subprotocols=["p"]
        ) as ws:
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


async def test_a_refused_connection_ends_closed_for_whoever_holds_it():
    refused = []

    async def process_request(ws, request):
        refused.append(ws)
        return tidewire.Response(401, "Unauthorized", body=b"no")

    async with tw.serve(
        lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=process_request
    ) as server:
        with pytest.raises(tidewire.InvalidStatus):
            await tw.connect(f"ws://127.0.0.1:{server.port}/")
    (ws,) = refused
    await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.state is tidewire.State.CLOSED and ws.close_code == 1006
    assert ws.response.status_code == 401
