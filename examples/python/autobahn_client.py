#!/usr/bin/env python3
"""Autobahn|Testsuite client (the docs/DESIGN.md contract): asks the fuzzing server for its case
count, runs every case by echoing each message, then asks it to write the reports.

    autobahn_client.py ws://127.0.0.1:9001 [--agent tidewire-python] [--blocking]

With the asyncio API by default; ``--blocking`` runs the same cases with the blocking API
(``build/bin/autobahn_client_pysync``).
"""

import argparse
import asyncio
import sys
from urllib.parse import quote

import tidewire
import tidewire.asyncio

OPTIONS = dict(compression="deflate", max_size=64 * 2**20, ping_interval=None, open_timeout=30)


async def run_case(base: str, case: int, agent: str) -> None:
    # Either API sends the echo of a message before the engine answers a close or a bad
    # frame that followed it (strict ordering, Autobahn 3.2, 4.x, 5.15): the reply is held
    # until the application comes back to recv for more.
    try:
        url = f"{base}/runCase?case={case}&agent={quote(agent)}"
        async with tidewire.asyncio.connect(url, **OPTIONS) as ws:
            async for message in ws:
                await ws.send(message)
    except tidewire.ConnectionClosed:
        pass  # cases that end in a failed connection are judged by the server
    except (tidewire.InvalidHandshake, OSError, TimeoutError) as exc:
        print(f"case {case}: {exc}", file=sys.stderr)


async def run(base: str, agent: str) -> None:
    async with tidewire.asyncio.connect(f"{base}/getCaseCount", **OPTIONS) as ws:
        count = int(await asyncio.wait_for(ws.recv(), 30))
    print(f"{count} cases", flush=True)
    for case in range(1, count + 1):
        await run_case(base, case, agent)
        if case % 50 == 0 or case == count:
            print(f"ran {case}/{count}", flush=True)
    async with tidewire.asyncio.connect(f"{base}/updateReports?agent={quote(agent)}", **OPTIONS) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 30)
        except tidewire.ConnectionClosed:
            pass


def run_case_blocking(base: str, case: int, agent: str) -> None:
    try:
        url = f"{base}/runCase?case={case}&agent={quote(agent)}"
        with tidewire.connect(url, **OPTIONS) as ws:
            for message in ws:
                ws.send(message)
    except tidewire.ConnectionClosed:
        pass
    except (tidewire.InvalidHandshake, OSError, TimeoutError) as exc:
        print(f"case {case}: {exc}", file=sys.stderr)


def run_blocking(base: str, agent: str) -> None:
    with tidewire.connect(f"{base}/getCaseCount", **OPTIONS) as ws:
        count = int(ws.recv(timeout=30))
    print(f"{count} cases", flush=True)
    for case in range(1, count + 1):
        run_case_blocking(base, case, agent)
        if case % 50 == 0 or case == count:
            print(f"ran {case}/{count}", flush=True)
    with tidewire.connect(f"{base}/updateReports?agent={quote(agent)}", **OPTIONS) as ws:
        try:
            ws.recv(timeout=30)
        except tidewire.ConnectionClosed:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description="tidewire Autobahn client (Python)")
    parser.add_argument("url", help="the fuzzing server, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--agent", default="tidewire-python")
    parser.add_argument("--blocking", action="store_true", help="use the blocking API")
    args = parser.parse_args()
    if args.blocking:
        run_blocking(args.url.rstrip("/"), args.agent)
    else:
        asyncio.run(run(args.url.rstrip("/"), args.agent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
