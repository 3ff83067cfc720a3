"""Blocking connections: messages, iteration, fragments, ping, close, back-pressure,
timeouts, concurrency and KeyboardInterrupt."""

import os
import signal
import threading
import time

import pytest

import tidewire
from tidewire import connect, serve


def echo(ws):
    for message in ws:
        ws.send(message)


@pytest.fixture
def echo_server():
    with serve(echo, "127.0.0.1", 0) as server:
        yield server


def url(server, path="/"):
    return f"ws://127.0.0.1:{server.port}{path}"


def test_text_and_binary_round_trip_with_their_types(echo_server):
    with connect(url(echo_server)) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=5) == b"\x00\x01"
        ws.send(bytearray(b"ba"))
        assert ws.recv(timeout=5) == b"ba"


def test_large_compressed_message_round_trips(echo_server):
    payload = os.urandom(300_000)
    with connect(url(echo_server), max_size=2**20) as ws:
        assert ws.extensions is not None and "permessage-deflate" in ws.extensions
        ws.send(payload)
        assert ws.recv(timeout=5) == payload


def test_iterable_is_sent_as_one_fragmented_message(echo_server):
    with connect(url(echo_server)) as ws:
        ws.send(["frag", "men", "ted"])
        assert ws.recv(timeout=5) == "fragmented"
        ws.send(iter([b"a", b"b"]))
        assert ws.recv(timeout=5) == b"ab"
        with pytest.raises(TypeError):
            ws.send(["a", b"b"])


def test_iteration_ends_when_the_server_closes_normally():
    def handler(ws):
        for i in range(3):
            ws.send(str(i))

    with serve(handler, "127.0.0.1", 0) as server:
        with connect(url(server)) as ws:
            assert list(ws) == ["0", "1", "2"]
            assert ws.close_code == 1000


def test_recv_after_close_raises_connection_closed_ok(echo_server):
    ws = connect(url(echo_server))
    ws.close()
    assert ws.state is tidewire.State.CLOSED
    with pytest.raises(tidewire.ConnectionClosedOK) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1000
    with pytest.raises(tidewire.ConnectionClosedOK):
        ws.send("late")
    ws.close()  # idempotent


def test_close_code_and_reason_of_the_peer_are_reported():
    def handler(ws):
        ws.close(4001, "custom reason")

    with serve(handler, "127.0.0.1", 0) as server:
        with connect(url(server)) as ws:
            with pytest.raises(tidewire.ConnectionClosedError) as info:
                ws.recv(timeout=5)
            assert (info.value.code, info.value.reason) == (4001, "custom reason")
            assert (ws.close_code, ws.close_reason) == (4001, "custom reason")


def test_ping_event_is_set_by_the_pong(echo_server):
    with connect(url(echo_server)) as ws:
        assert ws.ping().wait(5)
        assert ws.ping(b"data").wait(5)


def test_latency_is_known_after_a_pong(echo_server):
    with connect(url(echo_server), ping_interval=None) as ws:
        assert ws.latency == 0.0
        assert ws.ping().wait(5)
        assert 0 < ws.latency < 1


@pytest.mark.parametrize("pinging", ["client", "server"])
def test_keepalive_pings_measure_latency(pinging):
    # Only one side pings: a keepalive ping goes out after `ping_interval` without receiving
    # anything, so the side that hears the other's pings stays quiet.
    seen = []

    def wait_measured(ws):
        deadline = time.monotonic() + 10
        while ws.latency == 0.0 and time.monotonic() < deadline:
            time.sleep(0.02)
        seen.append(ws.latency)

    def handler(ws):
        if pinging == "server":
            wait_measured(ws)
        ws.send("measured")
        for _ in ws:
            pass

    fast, off = 0.05, None
    server_ping = fast if pinging == "server" else off
    with serve(handler, "127.0.0.1", 0, ping_interval=server_ping) as server:
        with connect(url(server), ping_interval=fast if pinging == "client" else off) as ws:
            assert ws.recv(timeout=10) == "measured"
            if pinging == "client":
                wait_measured(ws)
    assert len(seen) == 1 and 0 < seen[0] < 1


def test_recv_timeout_raises_timeout_error(echo_server):
    with connect(url(echo_server)) as ws:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)
        assert 0.15 < time.monotonic() - start < 3
        ws.send("still usable")
        assert ws.recv(timeout=5) == "still usable"


def test_two_threads_in_recv_raise_concurrency_error(echo_server):
    with connect(url(echo_server)) as ws:
        got = []
        thread = threading.Thread(target=lambda: got.append(ws.recv(timeout=5)))
        thread.start()
        time.sleep(0.2)
        with pytest.raises(tidewire.ConcurrencyError):
            ws.recv(timeout=1)
        ws.send("release")
        thread.join()
        assert got == ["release"]


def test_keyboard_interrupt_during_recv_leaves_the_connection_usable(echo_server, sigint_raises):
    with connect(url(echo_server)) as ws:
        threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            ws.recv()
        ws.send("after interrupt")
        assert ws.recv(timeout=5) == "after interrupt"


def test_send_blocks_over_the_high_water_mark_until_the_peer_reads(raw_server, handshake):
    release = threading.Event()
    received = []

    def reader_after_release(conn):
        handshake(conn)
        release.wait(10)
        total = 0
        while total < 64 * 256 * 1024:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        received.append(total)

    port = raw_server(reader_after_release)
    with connect(
        f"ws://127.0.0.1:{port}/",
        write_limit=(64 * 1024, 16 * 1024),
        compression=None,
        close_timeout=0.5,
    ) as ws:
        sent = []
        chunk = b"x" * (256 * 1024)

        def writer():
            for _ in range(64):  # 16 MiB: more than the kernel buffers hold
                ws.send(chunk)
                sent.append(1)

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.5)
        assert len(sent) < 64, "send never blocked"
        release.set()
        thread.join(10)
        assert len(sent) == 64


def test_many_threads_share_one_connection_for_sending(echo_server):
    with connect(url(echo_server)) as ws:
        threads = [
            threading.Thread(target=lambda i=i: [ws.send(f"{i}") for _ in range(50)])
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        received = [ws.recv(timeout=5) for _ in range(200)]
        assert sorted(set(received)) == ["0", "1", "2", "3"]


def _read_frame(conn):
    """One frame from a client (masked), as (opcode, payload)."""

    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    b0, b1 = exactly(2)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(exactly(2), "big")
    elif length == 127:
        length = int.from_bytes(exactly(8), "big")
    mask = exactly(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(exactly(length)))
    return b0 & 0x0F, payload


def test_between_recv_calls_pings_are_still_answered(raw_server, handshake):
    # The thread in recv reads for itself; once it stops calling recv, the background thread
    # takes over and answers the peer's ping without any call from the application.
    pong_after = []

    def script(conn):
        handshake(conn)
        conn.sendall(b"\x81\x05hello")
        assert _read_frame(conn) == (0x1, b"ack")
        sent = time.monotonic()
        conn.sendall(b"\x89\x04ping")
        assert _read_frame(conn) == (0xA, b"ping")
        pong_after.append(time.monotonic() - sent)
        conn.sendall(b"\x81\x04more")
        _read_frame(conn)  # the client's close
        conn.sendall(b"\x88\x02\x03\xe8")

    port = raw_server(script)
    with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        assert ws.recv(timeout=5) == "hello"
        ws.send("ack")
        time.sleep(1.0)  # not in recv: nobody but the background thread reads
        assert pong_after and pong_after[0] < 0.5, pong_after
        assert ws.recv(timeout=5) == "more"


def test_a_sender_held_by_back_pressure_is_released_while_another_thread_waits_in_recv(
    raw_server, handshake
):
    release = threading.Event()

    def script(conn):
        handshake(conn)
        release.wait(10)
        total = 0
        while total < 16 * 256 * 1024:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        conn.sendall(b"\x81\x04done")
        time.sleep(1)

    port = raw_server(script)
    with connect(
        f"ws://127.0.0.1:{port}/",
        write_limit=(64 * 1024, 16 * 1024),
        compression=None,
        close_timeout=0.5,
    ) as ws:
        got = []
        receiver = threading.Thread(target=lambda: got.append(ws.recv(timeout=10)))
        receiver.start()  # this thread watches the socket while the sender waits
        sent = []

        def writer():
            for _ in range(16):
                ws.send(b"x" * (256 * 1024))
                sent.append(1)

        sender = threading.Thread(target=writer)
        sender.start()
        time.sleep(0.3)
        assert len(sent) < 16, "send never blocked"
        release.set()
        sender.join(10)
        receiver.join(10)
        assert len(sent) == 16
        assert got == ["done"]


def test_a_recv_loop_and_a_sending_thread_exchange_many_messages(echo_server):
    with connect(url(echo_server)) as ws:
        count = 2000
        sender = threading.Thread(target=lambda: [ws.send(str(i)) for i in range(count)])
        sender.start()
        received = [ws.recv(timeout=10) for _ in range(count)]
        sender.join(10)
        assert received == [str(i) for i in range(count)]
