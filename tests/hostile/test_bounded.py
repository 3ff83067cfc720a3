"""Issue 12: one peer must not grow a server's memory without bound or stall its accepting.

Each test attacks the echo server of every face over raw sockets and checks that the server
stays up, that a control connection still echoes, and that memory (VmRSS) stays bounded.
"""

import os
import socket
import struct
import threading
import time

from wsraw import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    echo_roundtrip,
    fd_count,
    frame,
    open_ws,
    read_frame,
    read_response_head,
    rss_kib,
    start_server,
    upgrade_request,
)

MIB = 1024

# 200,000 pings of 125 bytes (26 MB on the wire): before the fix every one queued a pong
# (+22 MiB on the Rust server); RFC 6455 5.5.3 lets a server answer only the latest.
PINGS = int(os.environ.get("HOSTILE_PINGS", "200000"))
PING_GROWTH_LIMIT_KIB = 8 * MIB


def test_ping_flood_from_a_peer_that_never_reads(server):
    echo_roundtrip(server.port)
    base = rss_kib(server.pid)
    burst = frame(OP_PING, b"p" * 125, key=os.urandom(4)) * 1000
    with open_ws(server.port, timeout=30, rcvbuf=4096) as sock:
        for _ in range(PINGS // 1000):
            sock.sendall(burst)  # a server that stopped reading times this out
        echo_roundtrip(server.port)
        growth = rss_kib(server.pid) - base
    print(f"{server.face}: +{growth} KiB after {PINGS} unread pings")
    assert growth < PING_GROWTH_LIMIT_KIB, f"{server.face}: +{growth} KiB after {PINGS} pings"
    echo_roundtrip(server.port)


# Unread 64 KiB messages for a few seconds: before the fix the Python servers queued every
# message (+2.1 GB in 5 s) and the native examples dropped echoes once their buffer was full.
FLOOD_SECONDS = float(os.environ.get("HOSTILE_FLOOD_SECONDS", "4"))
FLOOD_GROWTH_LIMIT_KIB = 64 * MIB
MESSAGE = 64 * 1024


def test_peer_that_sends_without_reading_loses_no_echo(server):
    echo_roundtrip(server.port)
    base = rss_kib(server.pid)
    sock = open_ws(server.port, timeout=20)
    stop = threading.Event()
    sent = []  # sequence numbers of the messages sent whole
    errors = []
    filler = os.urandom(MESSAGE - 4)

    def writer():
        try:
            seq = 0
            while not stop.is_set():
                sock.sendall(frame(OP_BINARY, struct.pack("!I", seq) + filler))
                sent.append(seq)
                seq += 1
        except OSError as e:
            errors.append(e)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    peak = 0
    end = time.monotonic() + FLOOD_SECONDS
    while time.monotonic() < end:
        peak = max(peak, rss_kib(server.pid) - base)
        if peak > FLOOD_GROWTH_LIMIT_KIB:
            break  # fail now rather than let the machine swap
        time.sleep(0.05)
    stop.set()
    flooded = len(sent)
    print(f"{server.face}: +{peak} KiB at most while {flooded} messages went unread")
    assert peak <= FLOOD_GROWTH_LIMIT_KIB, f"{server.face}: +{peak} KiB, unbounded"

    # Now read: every echo must come back, in order, and the writer finishes its message.
    got = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not thread.is_alive() and got == len(sent):
            break
        op, payload = read_frame(sock)
        if op != OP_BINARY:
            continue
        assert len(payload) == MESSAGE and payload[4:] == filler, "echo corrupted"
        (seq,) = struct.unpack("!I", payload[:4])
        assert seq == got, f"{server.face}: echo {seq} came where {got} was due (lost echoes)"
        got += 1
    thread.join(timeout=5)
    assert not errors, errors
    assert got == len(sent) and got >= flooded, f"{server.face}: {got} echoes of {len(sent)}"
    sock.sendall(frame(OP_CLOSE, struct.pack("!H", 1000)))
    sock.close()
    echo_roundtrip(server.port)


# Descriptor exhaustion: with the server at its open-files limit, clients wait in the listen
# backlog. Before the fix none was taken when descriptors freed up (the edge-triggered
# listener saw no new readiness), only when yet another client connected.
NOFILE = 128
WAITING = 20
RECOVERY_LIMIT_S = 2.0


def test_accepting_resumes_when_descriptors_free_up(face):
    srv = start_server(face, nofile=NOFILE)
    held, waiting = [], []
    try:
        echo_roundtrip(srv.port)
        # Fill the server up: upgrade connections until one gets no answer.
        while len(held) < NOFILE:
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            sock.sendall(upgrade_request(srv.port))
            sock.settimeout(1.0)
            try:
                head = read_response_head(sock)
            except (TimeoutError, socket.timeout):
                waiting.append(sock)  # in the backlog: the server is out of descriptors
                break
            except (EOFError, ConnectionError) as e:
                raise AssertionError(f"{face}: a client was dropped instead of kept waiting: {e}")
            assert head.startswith(b"HTTP/1.1 101"), head
            held.append(sock)
        assert waiting, f"{face}: {len(held)} connections and the limit was never reached"
        for _ in range(WAITING - 1):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            sock.sendall(upgrade_request(srv.port))
            waiting.append(sock)
        time.sleep(0.3)
        # Free descriptors: close some held connections (more than are waiting).
        for sock in held[: WAITING + 10]:
            sock.close()
        del held[: WAITING + 10]
        start = time.monotonic()
        for sock in waiting:
            sock.settimeout(max(0.1, start + RECOVERY_LIMIT_S - time.monotonic()))
            try:
                head = read_response_head(sock)
            except (TimeoutError, socket.timeout):
                raise AssertionError(f"{face}: waiting clients not accepted within {RECOVERY_LIMIT_S} s")
            assert head.startswith(b"HTTP/1.1 101"), head
        took = time.monotonic() - start
        print(f"{face}: {len(waiting)} waiting clients accepted {took * 1000:.0f} ms after descriptors freed up")
        assert srv.alive()
        for sock in waiting + held:
            sock.close()
        waiting, held = [], []
        # Saturation must not have cost a spinning CPU or leaked descriptors for good.
        deadline = time.monotonic() + 10
        while fd_count(srv.pid) > NOFILE // 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        echo_roundtrip(srv.port)
    finally:
        for sock in held + waiting:
            sock.close()
        alive = srv.alive()
        srv.stop()
        srv.log.unlink(missing_ok=True)
        assert alive, f"{face} echo server died during the test"
