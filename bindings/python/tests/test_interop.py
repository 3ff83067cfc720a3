"""Interoperability with the `websockets` package as the peer, in both directions, for both
of tidewire's APIs, with permessage-deflate negotiated on both sides."""

import asyncio
import os
import threading

import pytest

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.asyncio.server import serve as ws_serve  # noqa: E402
from websockets.sync.client import connect as ws_sync_connect  # noqa: E402
from websockets.sync.server import serve as ws_sync_serve  # noqa: E402

import tidewire  # noqa: E402
import tidewire.asyncio as tw  # noqa: E402

MESSAGES = ["text", b"\x00binary", "ü" * 1000, os.urandom(100_000)]


async def ws_echo(ws):
    async for message in ws:
        await ws.send(message)


def ws_sync_echo(ws):
    for message in ws:
        ws.send(message)


async def test_tidewire_asyncio_client_with_websockets_server():
    async with ws_serve(ws_echo, "127.0.0.1", 0, subprotocols=["chat"]) as server:
        port = server.sockets[0].getsockname()[1]
        async with tw.connect(f"ws://127.0.0.1:{port}/", subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.extensions is not None and "permessage-deflate" in ws.extensions
            for message in MESSAGES:
                await ws.send(message)
                assert await ws.recv() == message
            pong = await ws.ping()
            await asyncio.wait_for(pong, 5)
        assert ws.close_code == 1000


async def test_websockets_client_with_tidewire_asyncio_server():
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with tw.serve(echo, "127.0.0.1", 0, subprotocols=["chat"]) as server:
        async with ws_connect(f"ws://127.0.0.1:{server.port}/", subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            for message in MESSAGES:
                await ws.send(message)
                assert await ws.recv() == message
            await ws.ping()
        assert ws.close_code == 1000


def test_tidewire_sync_client_with_websockets_sync_server():
    with ws_sync_serve(ws_sync_echo, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.socket.getsockname()[1]
        try:
            with tidewire.connect(f"ws://127.0.0.1:{port}/") as ws:
                for message in MESSAGES:
                    ws.send(message)
                    assert ws.recv(timeout=5) == message
        finally:
            server.shutdown()
            thread.join(5)


def test_websockets_sync_client_with_tidewire_sync_server():
    with tidewire.serve(lambda ws: [ws.send(m) for m in ws], "127.0.0.1", 0) as server:
        with ws_sync_connect(f"ws://127.0.0.1:{server.port}/") as ws:
            for message in MESSAGES:
                ws.send(message)
                assert ws.recv(timeout=5) == message


async def test_websockets_client_sees_tidewire_rejection_status():
    async def process_request(conn, request):
        return conn.respond(403, "go away\n")

    async with tw.serve(ws_echo, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            await ws_connect(f"ws://127.0.0.1:{server.port}/")
        assert info.value.response.status_code == 403


async def test_tidewire_client_sees_websockets_close_code():
    async def handler(ws):
        await ws.close(4010, "from websockets")

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with tw.connect(f"ws://127.0.0.1:{port}/") as ws:
            with pytest.raises(tidewire.ConnectionClosedError) as info:
                await ws.recv()
    assert (info.value.code, info.value.reason) == (4010, "from websockets")
