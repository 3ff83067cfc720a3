"""Hostile peers against the Python servers (issue 12), replayed on both faces (the asyncio
and the blocking server of examples/python/echo_server.py, run as processes): a peer that
sends without reading must not grow the server's memory, and a flood of clients must each
open (or be refused with an HTTP status) and leave no descriptor behind once they close.
Loopback only; servers are stopped by PID."""

import os
import resource
import select
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tidewire
from tidewire import CloseEvent, Context, ErrorEvent, MessageEvent, OpenEvent

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "python"

FACES = pytest.mark.parametrize("api", [[], ["--blocking"]], ids=["asyncio", "blocking"])


def start_echo_server(*args):
    proc = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "echo_server.py"),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, int(line.strip().rstrip("/").rsplit(":", 1)[1])


def stop(proc):
    proc.terminate()
    try:
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture
def fd_limit():
    """``fd_limit(needed)`` raises this process's descriptor limit (servers started after
    inherit it) for the test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def raise_to(needed):
        if soft != resource.RLIM_INFINITY and soft < needed:
            if hard != resource.RLIM_INFINITY and hard < needed:
                pytest.skip(f"needs {needed} descriptors, the hard limit is {hard}")
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))

    yield raise_to
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- a peer that sends 64 KiB messages and does not read -------------------------------

MESSAGE = 64 * 1024


def upgrade(sock):
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head


def frame(seq):
    """A masked binary frame of MESSAGE bytes starting with its sequence number (the mask
    key is zero, so the payload goes as it is)."""
    payload = seq.to_bytes(8, "big") + bytes(MESSAGE - 8)
    return b"\x82\xff" + struct.pack("!Q", MESSAGE) + b"\0\0\0\0" + payload


def echoes(buf):
    """Takes the server's complete (unmasked) frames off the front of ``buf``, a bytearray;
    returns their payloads."""
    out = []
    while len(buf) >= 2:
        length, at = buf[1] & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                break
            length, at = struct.unpack("!H", buf[2:4])[0], 4
        elif length == 127:
            if len(buf) < 10:
                break
            length, at = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < at + length:
            break
        assert buf[0] == 0x82, f"unexpected frame {buf[:2]!r}"
        out.append(bytes(buf[at : at + length]))
        del buf[: at + length]
    return out


@FACES
def test_unread_flood_of_64k_messages_keeps_memory_bounded_and_loses_no_echo(api):
    proc, port = start_echo_server(*api)
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            flood_then_read(sock, proc.pid)
    finally:
        stop(proc)


def flood_then_read(sock, pid):
    """Sends for 3 s without reading (checking the server's memory), then reads every echo
    while it finishes its last frame."""
    upgrade(sock)
    sock.setblocking(False)
    base = peak = rss_kib(pid)
    sent, pending = 0, memoryview(b"")
    deadline = time.monotonic() + 3.0
    next_sample = 0.0
    while time.monotonic() < deadline:
        if not pending:
            pending = memoryview(frame(sent))
        _, writable, _ = select.select([], [sock], [], 0.05)
        if writable:
            try:
                pending = pending[sock.send(pending) :]
            except BlockingIOError:
                pass
            if not pending:
                sent += 1
        if time.monotonic() >= next_sample:
            peak = max(peak, rss_kib(pid))
            next_sample = time.monotonic() + 0.1
    peak = max(peak, rss_kib(pid))
    # Unbounded, this is +2 GB after 3 s; bounded, the queue (16 messages, 1 MiB), the
    # output buffer (1 MiB) and the allocator's slack.
    assert (peak - base) < 48 * 1024, f"server RSS grew by {(peak - base) // 1024} MiB"

    got, buf = [], bytearray()
    deadline = time.monotonic() + 20
    while (pending or len(got) < sent) and time.monotonic() < deadline:
        readable, writable, _ = select.select([sock], [sock] if pending else [], [], 0.5)
        if writable:
            pending = pending[sock.send(pending) :]
            if not pending:
                sent += 1
        if readable:
            chunk = sock.recv(1 << 20)
            assert chunk, "the server closed the connection"
            buf += chunk
            got.extend(echoes(buf))
    assert len(got) == sent, f"{len(got)} of {sent} echoes"
    assert [int.from_bytes(p[:8], "big") for p in got] == list(range(sent))
    assert all(len(p) == MESSAGE for p in got)


# -- a flood of clients ----------------------------------------------------------------

CLIENTS = 1500


@pytest.mark.timeout(90)
@FACES
def test_connection_flood_opens_every_client_and_releases_every_descriptor(api, fd_limit):
    fd_limit(2 * CLIENTS + 256)
    proc, port = start_echo_server(*api)
    ctx = Context(max_connections=CLIENTS + 10, handshake_timeout=30, connect_timeout=30)
    try:
        baseline = fd_count(proc.pid)
        url = f"ws://127.0.0.1:{port}/"
        conns = {ctx.connect(url, compression=None) for _ in range(CLIENTS)}
        opened, refused, failed = set(), 0, []
        deadline = time.monotonic() + 25
        while len(opened) + refused + len(failed) < CLIENTS and time.monotonic() < deadline:
            for event in ctx.poll(0.1):
                if type(event) is OpenEvent:
                    opened.add(event.conn)
                elif type(event) is ErrorEvent and event.conn in conns:
                    if isinstance(event.error, tidewire.InvalidStatus):
                        refused += 1
                    else:
                        failed.append(repr(event.error))
                elif type(event) is CloseEvent:
                    failed.append(f"closed after opening: {event.code}")
        assert not failed, f"{len(failed)} failed, e.g. {failed[:3]}"
        assert len(opened) + refused == CLIENTS, f"{len(opened)} opened, {refused} refused"
        assert len(opened) > CLIENTS // 2

        # Every handler runs: each client gets its echo.
        for conn in opened:
            ctx.send(conn, b"%d" % conn)
        echoed = set()
        deadline = time.monotonic() + 20
        while len(echoed) < len(opened) and time.monotonic() < deadline:
            for event in ctx.poll(0.1):
                if type(event) is MessageEvent:
                    assert event.data == b"%d" % event.conn
                    echoed.add(event.conn)
        assert echoed == opened, f"{len(opened) - len(echoed)} echoes missing"

        for conn in opened:
            ctx.close(conn)
        deadline = time.monotonic() + 15
        while ctx.connection_count() and time.monotonic() < deadline:
            ctx.poll(0.1)
        assert ctx.connection_count() == 0
        ctx.free()
        deadline = time.monotonic() + 5
        while fd_count(proc.pid) > baseline and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fd_count(proc.pid) <= baseline, f"{fd_count(proc.pid) - baseline} descriptors left"
    finally:
        ctx.free()
        stop(proc)
