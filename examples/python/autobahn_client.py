#!/usr/bin/env python3
"""Autobahn|Testsuite client (the DESIGN.md contract): asks the fuzzing server for its case
count, runs every case by echoing each message, then asks it to write the reports.

    autobahn_client.py ws://127.0.0.1:9001 [--agent tidewire-python]
"""

import argparse
import sys
from urllib.parse import quote

import tidewire

OPTIONS = dict(compression="deflate", max_size=64 * 2**20, ping_interval=None, open_timeout=30)


def run_case(base: str, case: int, agent: str) -> None:
    try:
        with tidewire.connect(f"{base}/runCase?case={case}&agent={quote(agent)}", **OPTIONS) as ws:
            for message in ws:
                ws.send(message)
    except tidewire.ConnectionClosed:
        pass  # cases that end in a failed connection are judged by the server
    except (tidewire.InvalidHandshake, OSError, TimeoutError) as exc:
        print(f"case {case}: {exc}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description="tidewire Autobahn client (Python)")
    parser.add_argument("url", help="the fuzzing server, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--agent", default="tidewire-python")
    args = parser.parse_args()
    base = args.url.rstrip("/")

    with tidewire.connect(f"{base}/getCaseCount", **OPTIONS) as ws:
        count = int(ws.recv(timeout=30))
    print(f"{count} cases", flush=True)
    for case in range(1, count + 1):
        run_case(base, case, args.agent)
        if case % 50 == 0 or case == count:
            print(f"ran {case}/{count}", flush=True)
    with tidewire.connect(f"{base}/updateReports?agent={quote(args.agent)}", **OPTIONS) as ws:
        try:
            ws.recv(timeout=30)
        except tidewire.ConnectionClosed:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
