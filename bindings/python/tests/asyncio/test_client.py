"""The asyncio client: awaitable and context manager, handshake details and failures."""

import asyncio
import socket
import time

import pytest

import tidewire
import tidewire.asyncio as tw


async def test_connect_is_awaitable_and_reports_the_handshake():
    async def handler(ws):
        await ws.send(ws.request.headers["X-Token"])

    async with tw.serve(handler, "127.0.0.1", 0, subprotocols=["b", "a"]) as server:
        ws = await tw.connect(
            f"ws://127.0.0.1:{server.port}/x",
            subprotocols=["a"],
            additional_headers=[("X-Token", "t")],
        )
        assert await ws.recv() == "t"
        assert ws.subprotocol == "a"
        assert ws.response.status_code == 101
        assert ws.request.path == "/x"
        assert ws.remote_address == ("127.0.0.1", server.port)
        await ws.close()
        assert ws.state is tidewire.State.CLOSED


async def test_invalid_uri():
    with pytest.raises(tidewire.InvalidURI):
        await tw.connect("ftp://127.0.0.1/")


async def test_multibyte_uri_with_tls_options_raises_invalid_uri():
    with pytest.raises(tidewire.InvalidURI):
        await tw.connect("wsséé://127.0.0.1:1/", ssl=False)


async def test_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionRefusedError):
        await tw.connect(f"ws://127.0.0.1:{port}/")


async def test_open_timeout(raw_server):
    port = raw_server(lambda conn: time.sleep(2))
    with pytest.raises(TimeoutError):
        await tw.connect(f"ws://127.0.0.1:{port}/", open_timeout=0.3)


async def test_http_status_raises_invalid_status():
    async def process_request(ws, request):
        await asyncio.sleep(0)
        return ws.respond(418, "teapot\n")

    async with tw.serve(echo_never, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(tidewire.InvalidStatus) as info:
            await tw.connect(f"ws://127.0.0.1:{server.port}/")
    assert info.value.status_code == 418


async def echo_never(ws):  # pragma: no cover - never reached
    raise AssertionError("handler ran for a rejected request")


async def test_too_big_message_is_a_connection_closed_error_caused_by_payload_too_big():
    async def handler(ws):
        await ws.send("x" * 5000)
        await ws.wait_closed()

    async with tw.serve(handler, "127.0.0.1", 0) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/", max_size=1000) as ws:
            with pytest.raises(tidewire.ConnectionClosedError) as info:
                await ws.recv()
    assert info.value.code == 1009
    assert isinstance(info.value.__cause__, tidewire.PayloadTooBig)
