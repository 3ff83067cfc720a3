"""Echo round trips per second: tidewire's asyncio and blocking clients next to websockets
(asyncio and sync clients) and picows, all against the same echo server, in one run.

    python benchmarks/echo_bench.py [--duration 2] [--server auto|rust|python|PATH|URL]

The server runs in its own process: the Rust example ``build/bin/echo_server`` when it is
there (``auto``), else an echo server written on ``tidewire.Context`` (``python``); or the
echo server program at PATH (same command line as examples/rust/echo_server); or any server
given by URL. Every client uses one connection without compression and sends binary
messages of 256 B and 64 KiB, with 1 and with 64 messages in flight. Prints a Markdown table.
Clients whose package is not installed are reported as such.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

SIZES = (256, 64 * 1024)
INFLIGHT = (1, 64)
ROOT = Path(__file__).resolve().parents[3]

PY_SERVER = r"""
import signal, sys
from tidewire import Context, Message
ctx = Context(max_message_size=1 << 24)
listener = ctx.listen("127.0.0.1", 0)
print(ctx.local_addr(listener)[1], flush=True)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    for ev in ctx.poll(None):
        if type(ev) is Message:
            ctx.send(ev.conn, ev.data)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(kind: str) -> Tuple[str, Optional[subprocess.Popen], str]:
    if kind.startswith("ws://"):
        return kind, None, kind
    rust = ROOT / "build" / "bin" / "echo_server"
    if kind not in ("auto", "rust", "python"):
        rust, kind = Path(kind), "rust"
    if kind == "rust" or (kind == "auto" and rust.exists() and rust.stat().st_size > 0):
        port = free_port()
        proc = subprocess.Popen([str(rust), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return f"ws://127.0.0.1:{port}/", proc, f"Rust examples/rust/echo_server ({rust.name})"
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
        proc.kill()
        if kind == "rust":
            raise SystemExit("the Rust echo server did not start")
    proc = subprocess.Popen([sys.executable, "-c", PY_SERVER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return f"ws://127.0.0.1:{port}/", proc, "tidewire.Context poll loop (Python)"


# -- clients: each returns round trips per second -------------------------------------------


def run_tidewire_sync(url: str, size: int, inflight: int, duration: float) -> float:
    import tidewire

    payload = os.urandom(size)
    with tidewire.connect(url, compression=None, max_size=None, ping_interval=None) as ws:
        for _ in range(inflight):
            ws.send(payload)
        count = 0
        start = time.perf_counter()
        end = start + duration
        while True:
            ws.recv()
            count += 1
            if time.perf_counter() >= end:
                break
            ws.send(payload)
        elapsed = time.perf_counter() - start
        for _ in range(inflight - 1):
            ws.recv()
    return count / elapsed


async def tidewire_async(url: str, size: int, inflight: int, duration: float) -> float:
    import tidewire.asyncio

    payload = os.urandom(size)
    async with tidewire.asyncio.connect(url, compression=None, max_size=None,
                                        ping_interval=None) as ws:
        for _ in range(inflight):
            await ws.send(payload)
        count = 0
        start = time.perf_counter()
        end = start + duration
        while True:
            await ws.recv()
            count += 1
            if time.perf_counter() >= end:
                break
            await ws.send(payload)
        elapsed = time.perf_counter() - start
        for _ in range(inflight - 1):
            await ws.recv()
    return count / elapsed


async def websockets_async(url: str, size: int, inflight: int, duration: float) -> float:
    from websockets.asyncio.client import connect

    payload = os.urandom(size)
    async with connect(url, compression=None, max_size=None, ping_interval=None) as ws:
        for _ in range(inflight):
            await ws.send(payload)
        count = 0
        start = time.perf_counter()
        end = start + duration
        while True:
            await ws.recv()
            count += 1
            if time.perf_counter() >= end:
                break
            await ws.send(payload)
        elapsed = time.perf_counter() - start
        for _ in range(inflight - 1):
            await ws.recv()
    return count / elapsed


def run_websockets_sync(url: str, size: int, inflight: int, duration: float) -> float:
    from websockets.sync.client import connect

    payload = os.urandom(size)
    with connect(url, compression=None, max_size=None, ping_interval=None) as ws:
        for _ in range(inflight):
            ws.send(payload)
        count = 0
        start = time.perf_counter()
        end = start + duration
        while True:
            ws.recv()
            count += 1
            if time.perf_counter() >= end:
                break
            ws.send(payload)
        elapsed = time.perf_counter() - start
        for _ in range(inflight - 1):
            ws.recv()
    return count / elapsed


async def picows_async(url: str, size: int, inflight: int, duration: float) -> float:
    from picows import WSListener, WSMsgType, ws_connect

    payload = os.urandom(size)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()

    class Client(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.count = 0
            self.outstanding = 0
            self.start = 0.0
            self.end = 0.0
            self.elapsed = 0.0

        def on_ws_connected(self, transport) -> None:  # type: ignore[no-untyped-def]
            self.start = time.perf_counter()
            self.end = self.start + duration
            for _ in range(inflight):
                transport.send(WSMsgType.BINARY, payload)
            self.outstanding = inflight

        def on_ws_frame(self, transport, frame) -> None:  # type: ignore[no-untyped-def]
            if frame.msg_type != WSMsgType.BINARY or not frame.fin:
                return
            self.outstanding -= 1
            if self.elapsed:
                if self.outstanding == 0 and not done.done():
                    done.set_result(self.count / self.elapsed)
                return
            self.count += 1
            now = time.perf_counter()
            if now >= self.end:
                self.elapsed = now - self.start
                if self.outstanding == 0 and not done.done():
                    done.set_result(self.count / self.elapsed)
                return
            transport.send(WSMsgType.BINARY, payload)
            self.outstanding += 1

    transport, _ = await ws_connect(Client, url, max_frame_size=1 << 24)
    try:
        return await asyncio.wait_for(done, duration + 30)
    finally:
        transport.disconnect()
        await transport.wait_disconnected()


CLIENTS: List[Tuple[str, Callable[[str, int, int, float], float], str]] = [
    ("tidewire asyncio", lambda *a: asyncio.run(tidewire_async(*a)), "tidewire"),
    ("tidewire blocking", run_tidewire_sync, "tidewire"),
    ("websockets asyncio", lambda *a: asyncio.run(websockets_async(*a)), "websockets"),
    ("websockets sync", run_websockets_sync, "websockets"),
    ("picows (asyncio)", lambda *a: asyncio.run(picows_async(*a)), "picows"),
]


def installed(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--server", default="auto", help="auto, rust, python, a program path or a ws:// URL")
    args = parser.parse_args()
    logging.getLogger("picows").setLevel(logging.WARNING)  # its flow-control chatter

    url, proc, server_name = start_server(args.server)
    results: Dict[Tuple[str, int, int], Optional[float]] = {}
    try:
        for name, run, module in CLIENTS:
            for size in SIZES:
                for inflight in INFLIGHT:
                    if not installed(module):
                        results[(name, size, inflight)] = None
                        continue
                    run(url, size, inflight, 0.2)  # warm-up
                    results[(name, size, inflight)] = run(url, size, inflight, args.duration)
                    print(f"  {name:20} {size:>6} B x{inflight:<3} "
                          f"{results[(name, size, inflight)]:>10,.0f} round trips/s",
                          file=sys.stderr, flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)

    columns = [(s, n) for s in SIZES for n in INFLIGHT]
    print(f"Echo round trips per second; server: {server_name}; one connection; "
          f"{args.duration:g} s per cell; Python {sys.version.split()[0]}.\n")
    print("| client | " + " | ".join(f"{s // 1024 if s >= 1024 else s}{' KiB' if s >= 1024 else ' B'}, {n} in flight" for s, n in columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for name, _, _ in CLIENTS:
        cells = []
        for s, n in columns:
            value = results.get((name, s, n))
            cells.append("not installed" if value is None else f"{value:,.0f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
