"""The received-message queue of both APIs: ``max_queue`` / ``max_queue_bytes`` stop reading
a connection whose handler does not keep up (TCP then slows the peer down), nothing is lost,
and reading resumes as ``recv`` drains the queue."""

import asyncio
import threading
import time

import pytest

import tidewire
import tidewire.asyncio as tw

MESSAGE = 64 * 1024
COUNT = 256  # 16 MiB: more than the kernel's buffers and the client's output buffer hold


def message(seq):
    return seq.to_bytes(4, "big") + bytes(MESSAGE - 4)


def seqs(messages):
    return [int.from_bytes(m[:4], "big") for m in messages]


def test_a_handler_that_does_not_read_stops_its_peer_and_loses_nothing():
    release = threading.Event()
    seen = {}

    def handler(ws):
        release.wait(10)
        seen["queued"] = len(ws._messages)
        seen["paused"] = ws._ctx.is_reading_paused(ws.id)
        seen["received"] = [ws.recv(timeout=10) for _ in range(COUNT)]
        ws.send("done")

    with tidewire.serve(
        handler, "127.0.0.1", 0, max_queue=4, max_queue_bytes=None, compression=None
    ) as server:
        with tidewire.connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
            sent = []

            def writer():
                for seq in range(COUNT):
                    ws.send(message(seq))
                    sent.append(seq)

            thread = threading.Thread(target=writer)
            thread.start()
            time.sleep(1.0)
            assert len(sent) < COUNT, "the server read everything: its queue is not bounded"
            release.set()
            thread.join(20)
            assert len(sent) == COUNT
            assert ws.recv(timeout=10) == "done"
    # One poll may deliver what it already read after the pause: up to its receive buffer
    # (256 KiB, 4 messages) more than the mark.
    assert seen["paused"] and seen["queued"] <= 4 + 1 + 4, seen["queued"]
    assert seqs(seen["received"]) == list(range(COUNT))


async def test_an_asyncio_handler_that_does_not_read_stops_its_peer_and_loses_nothing():
    release = asyncio.Event()
    seen = {}

    async def handler(ws):
        await release.wait()
        seen["queued"] = len(ws._messages)
        seen["paused"] = ws._ctx.is_reading_paused(ws.id)
        seen["received"] = [await ws.recv() for _ in range(COUNT)]
        await ws.send("done")

    async with tw.serve(
        handler, "127.0.0.1", 0, max_queue=None, max_queue_bytes=(256 * 1024, 0), compression=None
    ) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
            sent = []

            async def writer():
                for seq in range(COUNT):
                    await ws.send(message(seq))
                    sent.append(seq)

            task = asyncio.ensure_future(writer())
            await asyncio.sleep(1.0)
            assert len(sent) < COUNT, "the server read everything: its queue is not bounded"
            release.set()
            await asyncio.wait_for(task, 20)
            assert await asyncio.wait_for(ws.recv(), 10) == "done"
    assert seen["paused"] and seen["queued"] * MESSAGE <= 256 * 1024 + 5 * MESSAGE
    assert seqs(seen["received"]) == list(range(COUNT))


def test_closing_a_connection_whose_reading_is_paused_completes_the_handshake():
    closed = {}

    def handler(ws):
        deadline = time.monotonic() + 10
        while not ws._messages.paused and time.monotonic() < deadline:
            time.sleep(0.01)
        start = time.monotonic()
        ws.close()
        closed.update(code=ws.close_code, took=time.monotonic() - start)

    with tidewire.serve(handler, "127.0.0.1", 0, max_queue=2, compression=None) as server:
        with tidewire.connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
            with pytest.raises(tidewire.ConnectionClosedOK):
                for seq in range(COUNT):
                    ws.send(message(seq))
    # The peer's close frame came behind the unread messages: reading resumed to get it.
    assert closed["code"] == 1000 and closed["took"] < 5, closed


async def test_closing_an_asyncio_connection_whose_reading_is_paused_completes_the_handshake():
    closed = {}

    async def handler(ws):
        deadline = time.monotonic() + 10
        while not ws._messages.paused and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        start = time.monotonic()
        await ws.close()
        closed.update(code=ws.close_code, took=time.monotonic() - start)

    async with tw.serve(handler, "127.0.0.1", 0, max_queue=2, compression=None) as server:
        async with tw.connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
            with pytest.raises(tidewire.ConnectionClosedOK):
                for seq in range(COUNT):
                    await ws.send(message(seq))
    assert closed["code"] == 1000 and closed["took"] < 5, closed


@pytest.mark.parametrize(
    "limits",
    [{"max_queue": -1}, {"max_queue": (4, 8)}, {"max_queue_bytes": (1, -1)}, {"max_queue": 2.5}],
)
def test_bad_queue_limits_raise_value_error(limits):
    with pytest.raises(ValueError):
        tidewire.serve(lambda ws: None, "127.0.0.1", 0, **limits)
    with pytest.raises(ValueError):
        tidewire.connect("ws://127.0.0.1:1/", **limits)
