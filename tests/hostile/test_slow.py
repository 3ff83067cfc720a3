"""Issue 16, section 2: peers that are slow or silent must not hold a server's slots forever.

One test for every face at once (they all wait on the same clocks): slowloris requests at one
byte per second, TLS clients that never speak, and peers that complete the handshake and then
go silent. The control connection must keep echoing all along; every slow peer must be
dropped within its timeout (handshake: 10 s; silence after the upgrade: the keepalive,
60 s idle timeout natively, 20 s ping + 20 s pong timeout in Python).
"""

import os
import socket
import time

import pytest

from wsraw import FACES, echo_roundtrip, open_ws, rss_kib, start_server, upgrade_request

SLOWLORIS = int(os.environ.get("HOSTILE_SLOWLORIS", "200"))  # per face
TLS_SILENT = 10
WS_SILENT = 5
HANDSHAKE_BOUND_S = 10 + 4
SILENT_BOUND_S = 60 + 6
GROWTH_LIMIT_KIB = 32 * 1024


class Peer:
    def __init__(self, sock: socket.socket, drip: bytes = b""):
        sock.setblocking(False)
        self.sock, self.drip, self.ended = sock, drip, None

    def poll(self, now: float) -> None:
        """Sends the next byte of the drip, and notes when the server ended the connection."""
        if self.ended is not None:
            return
        try:
            while True:
                data = self.sock.recv(65536)  # pings, a close frame, an alert: then EOF
                if not data:
                    self.ended = now
                    return
        except BlockingIOError:
            pass
        except OSError:
            self.ended = now
            return
        if self.drip:
            try:
                self.sock.send(self.drip[:1])
                self.drip = self.drip[1:]
            except BlockingIOError:
                pass
            except OSError:
                self.ended = now


@pytest.fixture
def servers():
    faces = os.environ.get("HOSTILE_FACES", ",".join(FACES)).split(",")
    started = []
    try:
        for face in faces:
            started.append((face, start_server(face), start_server(face, tls=True)))
        yield started
    finally:
        for face, plain, tls in started:
            alive = plain.alive() and tls.alive()
            for srv in (plain, tls):
                srv.stop()
                srv.log.unlink(missing_ok=True)
            assert alive, f"{face} echo server died during the test"


def test_slow_and_silent_peers_are_dropped_in_time(servers):
    start = time.monotonic()
    peers = []  # (face, kind, Peer)
    base = {face: rss_kib(plain.pid) for face, plain, _ in servers}
    for face, plain, tls in servers:
        request = upgrade_request(plain.port)
        for _ in range(SLOWLORIS):
            sock = socket.create_connection(("127.0.0.1", plain.port), timeout=5)
            peers.append((face, "slowloris", Peer(sock, request)))
        for _ in range(TLS_SILENT):
            sock = socket.create_connection(("127.0.0.1", tls.port), timeout=5)
            peers.append((face, "tls-silent", Peer(sock)))
        for _ in range(WS_SILENT):
            peers.append((face, "ws-silent", Peer(open_ws(plain.port))))
    peak = {face: 0 for face in base}
    while time.monotonic() - start < SILENT_BOUND_S + 1:
        now = time.monotonic() - start
        for _, _, peer in peers:
            peer.poll(now)
        for face, plain, _ in servers:
            echo_roundtrip(plain.port, f"still serving at {now:.0f} s")
            peak[face] = max(peak[face], rss_kib(plain.pid) - base[face])
        if all(p.ended is not None for _, _, p in peers):
            break
        time.sleep(max(0.0, 1.0 - (time.monotonic() - start - now)))
    bounds = {"slowloris": HANDSHAKE_BOUND_S, "tls-silent": HANDSHAKE_BOUND_S, "ws-silent": SILENT_BOUND_S}
    report = {}
    for face, kind, peer in peers:
        report.setdefault((face, kind), []).append(peer.ended)
        peer.sock.close()
    failures = []
    for (face, kind), ended in sorted(report.items()):
        left = sum(e is None for e in ended)
        latest = max((e for e in ended if e is not None), default=None)
        print(f"{face} {kind}: {len(ended) - left}/{len(ended)} dropped, the last after "
              f"{latest if latest is None else round(latest, 1)} s; +{peak[face]} KiB at most")
        if left or latest > bounds[kind]:
            failures.append(f"{face} {kind}: {left} still open, last dropped at {latest}")
    for face in peak:
        if peak[face] > GROWTH_LIMIT_KIB:
            failures.append(f"{face}: +{peak[face]} KiB")
    assert not failures, failures
