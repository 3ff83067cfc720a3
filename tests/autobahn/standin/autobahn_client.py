"""Stand-in for the project's autobahn_client, built on the `websockets` package.

Same command line as the autobahn_client of "The example-program contract" in docs/DESIGN.md:

    autobahn_client.py ws://127.0.0.1:9001 [--agent NAME]

Asks the fuzzing server for the number of cases, runs each case by echoing every message it
receives, then asks the server to write its reports. Exits 0 when the case count and the
report update worked (a case's own verdict is in the report); non-zero otherwise.
"""

import argparse
import asyncio
import json
import sys
from urllib.parse import quote

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

# Case 9.1.6 sends a 16 MiB message; leave room above it.
MAX_MESSAGE = 32 * 1024 * 1024


async def case_count(base):
    async with connect(f"{base}/getCaseCount") as websocket:
        return int(json.loads(await websocket.recv()))


async def run_case(base, number, agent):
    url = f"{base}/runCase?case={number}&agent={quote(agent)}"
    # Default permessage-deflate offer of websockets: "permessage-deflate; client_max_window_bits",
    # which lets the suite's 13.* cases answer with each of their parameter sets.
    async with connect(url, max_size=MAX_MESSAGE, compression="deflate", ping_interval=None) as websocket:
        try:
            async for message in websocket:
                await websocket.send(message)
        except ConnectionClosed:
            pass


async def update_reports(base, agent):
    # The server writes every report before it answers, which takes a while for 500 cases.
    async with connect(f"{base}/updateReports?agent={quote(agent)}", open_timeout=300):
        pass


async def run(base, agent):
    count = await case_count(base)
    print(f"autobahn_client (websockets stand-in): {count} cases, agent {agent!r}", flush=True)
    for number in range(1, count + 1):
        try:
            await run_case(base, number, agent)
        except (WebSocketException, OSError, asyncio.TimeoutError) as exc:
            # Some cases are meant to break the connection or the handshake.
            print(f"case {number}: {type(exc).__name__}: {exc}", flush=True)
    await update_reports(base, agent)
    print("reports updated", flush=True)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the fuzzing server, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--agent", default="tidewire-standin")
    args = parser.parse_args(argv)
    asyncio.run(run(args.url.rstrip("/"), args.agent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
