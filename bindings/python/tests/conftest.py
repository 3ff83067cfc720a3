"""Shared fixtures. Every test is loopback-only, binds port 0 and runs under a timeout
(pytest-timeout, see pyproject.toml); coroutine tests run in a fresh event loop each."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional

import pytest

DATA = Path(__file__).parent / "data"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> object:
    """Runs ``async def`` tests with ``asyncio.run`` (no plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        kwargs = {name: pyfuncitem.funcargs[name] for name in names}
        asyncio.run(pyfuncitem.obj(**kwargs))
        return True
    return None


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Python's own SIGINT handler (KeyboardInterrupt) for the test, whatever the suite was
    started with: under ``nohup`` or ``make test &`` SIGINT comes in ignored, and Python then
    leaves it ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def certs() -> tuple[str, str, str]:
    """``(ca.pem, server.pem, server.key)``: a test CA and a certificate for 127.0.0.1."""
    return str(DATA / "ca.pem"), str(DATA / "server.pem"), str(DATA / "server.key")


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """Starts a plain TCP server on 127.0.0.1 whose single connection is handed to the given
    function in a thread (to script misbehaving peers); returns its port."""
    sockets = []
    threads = []

    def start(script: Callable[[socket.socket], None]) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sockets.append(listener)

        def run() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    script(conn)
                except OSError:
                    pass

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return int(listener.getsockname()[1])

    yield start
    for s in sockets:
        s.close()
    for t in threads:
        t.join(5)


def read_request(conn: socket.socket) -> bytes:
    """Reads an HTTP request head from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def accept_key(request: bytes) -> str:
    import base64
    import hashlib

    for line in request.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            key = line.split(b":", 1)[1].strip()
            digest = hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            return base64.b64encode(digest).decode()
    raise AssertionError("no Sec-WebSocket-Key in request")


@pytest.fixture
def handshake() -> Callable[[socket.socket, str], bytes]:
    """Answers a client's upgrade request on a raw socket with a 101 (plus extra header
    lines); returns the request."""

    def answer(conn: socket.socket, extra: str = "") -> bytes:
        request = read_request(conn)
        conn.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(request)}\r\n"
                f"{extra}\r\n"
            ).encode()
        )
        return request

    return answer


class RedisServer:
    """A ``redis-server`` of the test's own on a free loopback port, without persistence;
    stopped (SIGKILL, by PID) and started again on the same port at will."""

    def __init__(self, executable: str, tmp: Path) -> None:
        self._executable = executable
        self._tmp = tmp
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}"
        self._proc: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> None:
        assert self._proc is None
        self._proc = subprocess.Popen(
            [
                self._executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self._tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """Kills the server (SIGKILL to its PID) and waits for it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running ``redis-server`` (see ``RedisServer``); the test is skipped without one
    (``make redis-tools`` installs it)."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed (make redis-tools installs it)")
    server = RedisServer(executable, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# --- reconnecting clients (tests/sync/test_reconnect.py, tests/asyncio/test_reconnect.py) ---
# A real echo server process (killed by its PID, restarted on the same port) and a raw HTTP
# server that answers every upgrade with a scripted status.

RECONNECT_SERVER = """
import sys, tidewire
def echo(ws):
    for m in ws:
        ws.send(m)
with tidewire.serve(echo, "127.0.0.1", int(sys.argv[1])) as server:
    print("listening", flush=True)
    server.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -c SERVER PORT``: an echo server in a process of its own."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECONNECT_SERVER, str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening" in line, "the server process did not start"

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL, this PID only
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def http_server(answer: Callable[[int], bytes]) -> tuple[int, list[float], Callable[[], None]]:
    """Answers connection number n (1, 2, ...) with ``answer(n)``; returns the port, the
    times the requests arrived at (``time.monotonic``) and a function that stops it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    seen: list[float] = []

    def run() -> None:
        while True:
            try:
                s, _ = listener.accept()
            except OSError:
                return
            with s:
                s.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                seen.append(time.monotonic())
                s.sendall(answer(len(seen)))

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1], seen, listener.close


def status(code: int, retry_after: int | None = None) -> bytes:
    extra = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
    return f"HTTP/1.1 {code} X\r\n{extra}Content-Length: 0\r\n\r\n".encode()


@pytest.fixture
def reconnect_kit() -> object:
    """``free_port``, ``ServerProcess``, ``http_server``, ``status`` for the reconnect tests."""
    import types

    return types.SimpleNamespace(
        free_port=free_port, ServerProcess=ServerProcess, http_server=http_server, status=status
    )


#: tests/proxies.py of the repository: the real proxies the faces' proxy tests go through.
PROXIES_SCRIPT = Path(__file__).resolve().parents[3] / "tests" / "proxies.py"


@pytest.fixture(scope="session")
def proxies() -> Iterator[dict[str, str]]:
    """tinyproxy (with and without Basic auth, and one refusing with 403), stunnel in front
    of tinyproxy (an HTTPS proxy, ``TW_PROXY_HTTPS_CA`` its CA), danted (with and without
    username auth) and fakes answering garbage or nothing, started once on free loopback
    ports and stopped by PID at the end (see tests/proxies.py for the names). Skips without
    them, unless ``TIDEWIRE_REQUIRE_PROXIES=1``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tidewire_test_proxies", PROXIES_SCRIPT)
    if spec is None or spec.loader is None:
        pytest.skip(f"{PROXIES_SCRIPT} not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    running = module.Proxies()
    try:
        env = running.start()
    except Exception as e:  # noqa: BLE001 - a missing program is a skip (or a failure)
        if os.environ.get("TIDEWIRE_REQUIRE_PROXIES") == "1":
            pytest.fail(f"proxies required (TIDEWIRE_REQUIRE_PROXIES=1): {e}")
        pytest.skip(f"no proxies: {e} (`make proxy-tools`)")
    try:
        yield env
    finally:
        running.stop()
