"""A WebSocket peer written on raw sockets, for attacking the example servers.

No WebSocket library on this side: the attacks send what a well-behaved library never would
(floods, half-read streams, backlogged handshakes). Frames are built and parsed here with
the few lines RFC 6455 section 5.2 needs.
"""

from __future__ import annotations

import base64
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(os.environ.get("TIDEWIRE_BIN", Path(__file__).resolve().parents[2] / "build" / "bin"))

# The echo servers of every face ("The example-program contract" in docs/DESIGN.md).
FACES = {
    "rust": "echo_server",
    "c": "echo_server_c",
    "cpp": "echo_server_cpp",
    "py": "echo_server_py",
    "pysync": "echo_server_pysync",
}

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10

# What the server answered in the current test ("close 1002", "HTTP 431"), for the report.
ANSWERS: list[str] = []


def frame(opcode: int, payload: bytes, fin: bool = True, key: bytes = b"\0\0\0\0") -> bytes:
    """A masked frame as a client sends it. The default all-zero key leaves the payload as
    it is (a valid key; the servers unmask it like any other)."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    if key != b"\0\0\0\0":
        whole = (key * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(whole, "big")).to_bytes(n, "big")
    return head + key + payload


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One unmasked frame from the server: (opcode, payload)."""
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", recv_exact(sock, 2))
    elif n == 127:
        (n,) = struct.unpack("!Q", recv_exact(sock, 8))
    return b0 & 0x0F, recv_exact(sock, n)


def upgrade_request(port: int, path: str = "/", extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    ).encode()


def read_response_head(sock: socket.socket) -> bytes:
    """The HTTP response head, read byte-exact so no frame behind it is consumed."""
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        c = sock.recv(1)
        if not c:
            raise EOFError(f"closed during the handshake after {bytes(head)!r}")
        head += c
    return bytes(head)


def open_ws(
    port: int, timeout: float = 10.0, rcvbuf: int | None = None, extra: str = ""
) -> socket.socket:
    """A connected, upgraded socket (101 checked); `extra`: more header lines."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    sock.sendall(upgrade_request(port, extra=extra))
    head = read_response_head(sock)
    if not head.startswith(b"HTTP/1.1 101"):
        raise AssertionError(f"upgrade refused: {head!r}")
    return sock


def expect_close(sock: socket.socket, codes: set[int], within: float) -> int:
    """Reads (and drops) frames until the server's close frame; checks its code is one of
    `codes`, and that the server then ends the TCP connection. Returns the code."""
    sock.settimeout(within)
    end = time.monotonic() + within
    while True:
        op, payload = read_frame(sock)
        if op == OP_CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            ANSWERS.append(f"close {code}")
            assert code in codes, f"closed with {code}, expected one of {sorted(codes)}: {payload[2:]!r}"
            break
        assert time.monotonic() < end, "no close frame in time"
    sock.settimeout(max(0.1, end - time.monotonic()) + 2)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return code


def echo_roundtrip(port: int, text: str = "still there?") -> None:
    """A fresh control connection: one message echoed, then a clean close."""
    with open_ws(port) as sock:
        sock.sendall(frame(OP_TEXT, text.encode(), key=os.urandom(4)))
        while True:
            op, payload = read_frame(sock)
            if op == OP_TEXT:
                assert payload == text.encode()
                break
        sock.sendall(frame(OP_CLOSE, struct.pack("!H", 1000)))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Server:
    face: str
    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


DATA = Path(__file__).resolve().parents[1] / "c" / "data"
TLS_ARGS = ["--tls-cert", str(DATA / "server.pem"), "--tls-key", str(DATA / "server.key")]


def start_server(face: str, nofile: int | None = None, tls: bool = False) -> Server:
    """Starts the face's echo_server on a free port of 127.0.0.1; `nofile` lowers its
    open-files limit (soft and hard); `tls` serves wss:// with the test certificate."""
    program = BIN / FACES[face]
    if not program.exists():
        raise FileNotFoundError(f"{program} is missing: run `make examples`")

    def limits() -> None:
        # The test may run with SIGINT ignored (nohup); the servers stop on SIGTERM anyway.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    log = Path(tempfile.mkstemp(prefix=f"hostile-{face}-", suffix=".log")[1])
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(program), "--host", "127.0.0.1", "--port", "0", *(TLS_ARGS if tls else [])],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limits,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(rb"listening on wss?://[^\s]*:(\d+)", log.read_bytes())
        if m:
            return Server(face, proc, int(m.group(1)), log)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{program} did not start: {log.read_text(errors='replace')}")
