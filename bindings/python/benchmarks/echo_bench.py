"""Echo round trips per second: tidewire's asyncio and blocking clients next to websockets
(asyncio and sync clients) and picows, all against the same echo server, in one run.

    python benchmarks/echo_bench.py [--duration 2] [--server auto|rust|python|PATH|URL]
                                    [--cpus any|one|two]

The server runs in its own process: the Rust example ``build/bin/echo_server`` when it is
there (``auto``), else an echo server written on ``tidewire.Context`` (``python``); or the
echo server program at PATH (same command line as examples/rust/echo_server); or any server
given by URL. Every client uses one connection without compression and sends binary
messages of 256 B and 64 KiB, with 1 and with 64 messages in flight. Prints two Markdown
tables: round trips per second, and the client process's CPU time per round trip (user +
system, which includes the kernel's work for its sends).

Two more rows frame the others. ``tidewire Context (callbacks)`` is tidewire's low-level
API driven from ``loop.add_reader``, the same callback style as picows's ``WSListener``
(no future or task per message). ``C client, no Python`` is examples/c/echo_bench.c
(``build/bin/echo_bench_c``) on one connection: what the server and the machine allow
when the client costs next to nothing, the ceiling for every Python client.

With one message in flight a round trip is two process wake-ups, and on a small machine
their latency decides the rate more than any client does. ``--cpus`` sets where the
processes run: ``one`` puts server and clients on CPU 0 (a wake-up is a context switch, so
the rate follows the CPU each side spends), ``two`` puts the server on CPU 0 and the
clients on CPU 1 (every wake-up crosses CPUs), ``any`` leaves it to the scheduler.
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
from typing import Callable, Optional

SIZES = (256, 64 * 1024)
INFLIGHT = (1, 64)
ROOT = Path(__file__).resolve().parents[3]

PY_SERVER = r"""
import signal, sys
from tidewire import Context, MessageEvent
ctx = Context(max_message_size=1 << 24)
listener = ctx.listen("127.0.0.1", 0)
print(ctx.local_addr(listener)[1], flush=True)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    for ev in ctx.poll(None):
        if type(ev) is MessageEvent:
            ctx.send(ev.conn, ev.data)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(pid: int, cpus: Optional[set]) -> None:
    if cpus is not None:
        os.sched_setaffinity(pid, cpus)


def start_server(kind: str, cpus: Optional[set]) -> tuple[str, Optional[subprocess.Popen], str]:
    if kind.startswith("ws://"):
        return kind, None, kind
    rust = ROOT / "build" / "bin" / "echo_server"
    if kind not in ("auto", "rust", "python"):
        rust, kind = Path(kind), "rust"
    if kind == "rust" or (kind == "auto" and rust.exists() and rust.stat().st_size > 0):
        port = free_port()
        proc = subprocess.Popen(
            [str(rust), "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL
        )
        pin(proc.pid, cpus)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return (
                    f"ws://127.0.0.1:{port}/",
                    proc,
                    f"Rust examples/rust/echo_server ({rust.name})",
                )
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
        proc.kill()
        if kind == "rust":
            raise SystemExit("the Rust echo server did not start")
    proc = subprocess.Popen([sys.executable, "-c", PY_SERVER], stdout=subprocess.PIPE, text=True)
    pin(proc.pid, cpus)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return f"ws://127.0.0.1:{port}/", proc, "tidewire.Context poll loop (Python)"


# -- clients: each returns round trips per second -------------------------------------------


# The same loop for every websockets-style client: keep `inflight` messages out, count the
# echoes for `duration` seconds, then collect the ones still out.


def echo_loop(ws, size: int, inflight: int, duration: float) -> float:  # type: ignore[no-untyped-def]
    payload = os.urandom(size)
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


async def echo_loop_async(ws, size: int, inflight: int, duration: float) -> float:  # type: ignore[no-untyped-def]
    payload = os.urandom(size)
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


OPTIONS = dict(compression=None, max_size=None, ping_interval=None)


def run_tidewire_sync(url: str, size: int, inflight: int, duration: float) -> float:
    import tidewire

    with tidewire.connect(url, **OPTIONS) as ws:
        return echo_loop(ws, size, inflight, duration)


async def tidewire_async(url: str, size: int, inflight: int, duration: float) -> float:
    import tidewire.asyncio

    async with tidewire.asyncio.connect(url, **OPTIONS) as ws:
        return await echo_loop_async(ws, size, inflight, duration)


async def websockets_async(url: str, size: int, inflight: int, duration: float) -> float:
    from websockets.asyncio.client import connect

    async with connect(url, **OPTIONS) as ws:
        return await echo_loop_async(ws, size, inflight, duration)


def run_websockets_sync(url: str, size: int, inflight: int, duration: float) -> float:
    from websockets.sync.client import connect

    with connect(url, **OPTIONS) as ws:
        return echo_loop(ws, size, inflight, duration)


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


async def tidewire_context(url: str, size: int, inflight: int, duration: float) -> float:
    """tidewire's low-level Context on the asyncio loop, in the callback style of picows."""
    from tidewire import CloseEvent, Context, ErrorEvent, MessageEvent, OpenEvent

    payload = os.urandom(size)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()
    ctx = Context(max_message_size=1 << 24)
    conn = ctx.connect(url, compression=None)
    state = {"count": 0, "outstanding": 0, "start": 0.0, "end": 0.0, "elapsed": 0.0}

    def finish_if_drained() -> None:
        if state["outstanding"] == 0 and not done.done():
            done.set_result(state["count"] / state["elapsed"])

    def on_readable() -> None:
        for event in ctx.poll(0):
            kind = type(event)
            if kind is MessageEvent:
                state["outstanding"] -= 1
                if state["elapsed"]:
                    finish_if_drained()
                    continue
                state["count"] += 1
                now = time.perf_counter()
                if now >= state["end"]:
                    state["elapsed"] = now - state["start"]
                    finish_if_drained()
                    continue
                ctx.send(conn, payload)
                state["outstanding"] += 1
            elif kind is OpenEvent:
                state["start"] = time.perf_counter()
                state["end"] = state["start"] + duration
                for _ in range(inflight):
                    ctx.send(conn, payload)
                state["outstanding"] = inflight
            elif (kind is CloseEvent or kind is ErrorEvent) and not done.done():
                done.set_exception(RuntimeError(repr(event)))
        # Write now; when the engine has more to do (or a timer is due), poll again soon.
        if not (ctx.is_open(conn) and ctx.flush(conn)) or ctx.next_timeout() == 0:
            loop.call_soon(on_readable)

    loop.add_reader(ctx.fileno(), on_readable)
    on_readable()
    try:
        return await asyncio.wait_for(done, duration + 30)
    finally:
        loop.remove_reader(ctx.fileno())
        ctx.free()


C_CLIENT = ROOT / "build" / "bin" / "echo_bench_c"
#: CPU seconds of the last C client run (it is a child process: os.wait4 gives its usage).
_c_client_cpu = [0.0]


def run_c_client(url: str, size: int, inflight: int, duration: float) -> float:
    proc = subprocess.Popen(
        [
            str(C_CLIENT),
            url,
            "--conns",
            "1",
            "--inflight",
            str(inflight),
            "--size",
            str(size),
            "--seconds",
            str(duration),
            "--binary",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or "msg/s" not in out:
        raise RuntimeError(f"echo_bench_c failed: {out!r}")
    _c_client_cpu[0] = usage.ru_utime + usage.ru_stime
    return float(out.split(": ")[-1].split(" msg/s")[0])


CLIENTS: list[tuple[str, Callable[[str, int, int, float], float], str]] = [
    ("tidewire asyncio", lambda *a: asyncio.run(tidewire_async(*a)), "tidewire"),
    ("tidewire blocking", run_tidewire_sync, "tidewire"),
    ("websockets asyncio", lambda *a: asyncio.run(websockets_async(*a)), "websockets"),
    ("websockets sync", run_websockets_sync, "websockets"),
    ("picows (asyncio)", lambda *a: asyncio.run(picows_async(*a)), "picows"),
    ("tidewire Context (callbacks)", lambda *a: asyncio.run(tidewire_context(*a)), "tidewire"),
    ("C client, no Python", run_c_client, "echo_bench_c"),
]


def installed(module: str) -> bool:
    if module == "echo_bench_c":
        return C_CLIENT.exists()
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def measure(
    run: Callable[[str, int, int, float], float],
    module: str,
    url: str,
    size: int,
    inflight: int,
    duration: float,
) -> tuple[float, float]:
    """Round trips per second, and the client's CPU microseconds per round trip."""
    run(url, size, inflight, 0.2)  # warm-up
    cpu = time.process_time()
    rate = run(url, size, inflight, duration)
    cpu = _c_client_cpu[0] if module == "echo_bench_c" else time.process_time() - cpu
    return rate, cpu / (rate * duration) * 1e6


def table(
    title: str,
    results: dict[tuple[str, int, int], Optional[tuple[float, float]]],
    index: int,
    fmt: str,
) -> None:
    columns = [(s, n) for s in SIZES for n in INFLIGHT]
    print(title + "\n")
    print(
        "| client | "
        + " | ".join(
            f"{s // 1024 if s >= 1024 else s}{' KiB' if s >= 1024 else ' B'}, {n} in flight"
            for s, n in columns
        )
        + " |"
    )
    print("| --- |" + " ---: |" * len(columns))
    for name, _, _ in CLIENTS:
        cells = []
        for s, n in columns:
            value = results.get((name, s, n))
            cells.append("not installed" if value is None else format(value[index], fmt))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument(
        "--server", default="auto", help="auto, rust, python, a program path or a ws:// URL"
    )
    parser.add_argument(
        "--cpus",
        choices=("any", "one", "two"),
        default="any",
        help="server and clients on CPU 0 (one), on CPUs 0 and 1 (two), or anywhere",
    )
    args = parser.parse_args()
    logging.getLogger("picows").setLevel(logging.WARNING)  # its flow-control chatter
    logging.getLogger("picows.picows").setLevel(logging.ERROR)

    server_cpus = None if args.cpus == "any" else {0}
    client_cpus = {"any": None, "one": {0}, "two": {1}}[args.cpus]
    url, proc, server_name = start_server(args.server, server_cpus)
    pin(0, client_cpus)  # C clients inherit it
    results: dict[tuple[str, int, int], Optional[tuple[float, float]]] = {}
    try:
        for name, run, module in CLIENTS:
            for size in SIZES:
                for inflight in INFLIGHT:
                    if not installed(module):
                        results[(name, size, inflight)] = None
                        continue
                    rate, cpu = measure(run, module, url, size, inflight, args.duration)
                    results[(name, size, inflight)] = (rate, cpu)
                    print(
                        f"  {name:28} {size:>6} B x{inflight:<3} {rate:>10,.0f} round trips/s"
                        f" {cpu:>8.2f} us CPU each",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)

    where = {
        "any": "CPUs left to the scheduler",
        "one": "server and client on CPU 0",
        "two": "server on CPU 0, client on CPU 1",
    }[args.cpus]
    setting = (
        f"server: {server_name}; one connection; {args.duration:g} s per cell; {where}; "
        f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}"
    )
    table(f"Echo round trips per second ({setting}).", results, 0, ",.0f")
    table("Client CPU time per round trip, microseconds (user + system).", results, 1, ".1f")


if __name__ == "__main__":
    main()
